//! [`DeviceCage`]: the cgroups that hold a [`DeviceProfile`]'s CPU and memory, and the way a
//! child process is started inside them.
//!
//! cgroup v1 (a hierarchy per controller, as on this project's machines): the cage is a group
//! named `fieldcast-qa-<pid>-<n>` in each of the `cpu`, `cpuacct`, `cpuset` and `memory`
//! hierarchies (once per hierarchy where controllers share one), nested in the creating
//! process's own group there, so that it stays within any limit that process is under.
//! cgroup v2 (the unified hierarchy): one group of that name at the top of the hierarchy (a
//! group with processes in it cannot hand controllers to children), with `cpu`, `cpuset` and
//! `memory` enabled in the top's `cgroup.subtree_control` if they are not already.
//!
//! Limits: the CPU is a CFS quota of `cores × per_core` host cores per 100 ms, shared by every
//! thread of the cage, on a cpuset of the first `cores` CPUs; the memory limit is
//! `memory.limit_in_bytes` (and `memory.memsw.limit_in_bytes`, so swap does not extend it) or
//! `memory.max` (and `memory.swap.max` 0). A process over the memory limit is killed by the
//! kernel's OOM killer (SIGKILL).

use std::ffi::{CStr, CString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use fieldcast_sandbox::netlab::REQUIRE_LAB_ENV;

use crate::device::{DeviceError, DeviceProfile};

/// Every group a cage creates is named `fieldcast-qa-<pid>-<n>`.
const PREFIX: &str = "fieldcast-qa-";
/// The CFS period, in microseconds.
const CFS_PERIOD_US: u64 = 100_000;
/// The smallest CFS quota the kernel takes, in microseconds.
const MIN_QUOTA_US: u64 = 1_000;
/// How long removing a cage waits for its killed processes to leave it.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// How often removing a cage looks again.
const DRAIN_POLL: Duration = Duration::from_millis(10);
/// The cgroup v1 controllers a cage uses.
const V1_CONTROLLERS: [&str; 4] = ["cpu", "cpuacct", "cpuset", "memory"];
/// The cgroup v2 controllers a cage enables.
const V2_CONTROLLERS: [&str; 3] = ["cpu", "cpuset", "memory"];
/// How deep [`cleanup_stale`] looks for left-over cages in a hierarchy.
const MAX_WALK_DEPTH: usize = 16;

/// Numbers the cages of this process.
static NEXT_CAGE: AtomicU32 = AtomicU32::new(0);

/// How much the CPU limit held the cage back so far (`cpu.stat`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Throttling {
    /// CFS periods in which the cage had runnable threads.
    pub periods: u64,
    /// Of those, the periods in which it used up its quota and was stopped.
    pub throttled_periods: u64,
    /// Seconds its threads spent stopped for lack of quota (summed over threads' CPUs).
    pub throttled_seconds: f64,
}

/// The cgroups of one device profile. Children join it with [`DeviceCage::command_in`]; it
/// counts their CPU and memory. Dropping it (also while a panic unwinds) SIGKILLs whatever
/// still runs inside, by PID, waits until the groups are empty (at most 5 s) and removes
/// them; failures are logged, never raised.
pub struct DeviceCage {
    profile: DeviceProfile,
    files: Files,
    groups: Groups,
}

/// Where a cage's counters are.
#[derive(Debug)]
enum Files {
    /// cgroup v1: the cage's group in the `cpu`, `cpuacct` and `memory` hierarchies (the same
    /// directory where hierarchies are shared).
    V1 {
        cpu: PathBuf,
        cpuacct: PathBuf,
        memory: PathBuf,
    },
    /// cgroup v2: the cage's one group.
    V2(PathBuf),
}

/// The directories a cage made, emptied and removed (in reverse order) on drop.
#[derive(Debug, Default)]
struct Groups {
    dirs: Vec<PathBuf>,
    /// Each directory's `cgroup.procs`, ready for the pre-exec hook.
    procs: Vec<CString>,
}

/// The groups the cage's groups are made in, found from the mounts and the creating process's
/// own groups.
#[derive(Debug, Clone, PartialEq)]
enum Layout {
    /// cgroup v1: the parent directory in each hierarchy the cage uses.
    V1 {
        cpu: PathBuf,
        cpuacct: PathBuf,
        cpuset: PathBuf,
        memory: PathBuf,
    },
    /// cgroup v2: the top of the unified hierarchy.
    V2(PathBuf),
}

/// One cgroup filesystem from `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq)]
struct Mount {
    /// Where it is mounted.
    point: PathBuf,
    /// The group it shows at its top (`/` unless a subtree is mounted).
    root: String,
    /// cgroup v1: its mount options, the controllers among them; cgroup v2: empty.
    options: Vec<String>,
    /// Whether it is the unified (v2) hierarchy.
    unified: bool,
}

impl DeviceCage {
    /// Whether cages can be made here: root, and the cgroup controllers mounted; else a
    /// sentence saying what is missing.
    pub fn available() -> Result<(), String> {
        check().map(|_| ())
    }

    /// For tests: true where cages can be made; false, with the reason printed, where they
    /// cannot. With `FIELDCAST_REQUIRE_LAB` set (CI sets it), it panics with the reason
    /// instead, so that a device lab test never passes by skipping there.
    pub fn available_or_skip() -> bool {
        match DeviceCage::available() {
            Ok(()) => true,
            Err(reason) if std::env::var_os(REQUIRE_LAB_ENV).is_some() => {
                panic!("{REQUIRE_LAB_ENV} is set, and the device lab cannot run: {reason}")
            }
            Err(reason) => {
                println!("skipped: {reason}");
                eprintln!("skipped: {reason}");
                false
            }
        }
    }

    /// Makes the cage's groups and puts the profile's limits on them. A profile that models
    /// more cores than there are CPUs fails with [`DeviceError::TooManyCores`]; whatever was
    /// made before an error is removed.
    pub fn create(profile: DeviceProfile) -> Result<DeviceCage, DeviceError> {
        let layout = check().map_err(DeviceError::Unavailable)?;
        let name = format!(
            "{PREFIX}{}-{}",
            std::process::id(),
            NEXT_CAGE.fetch_add(1, Ordering::Relaxed)
        );
        let mut groups = Groups::default();
        let files = match layout {
            Layout::V1 {
                cpu,
                cpuacct,
                cpuset,
                memory,
            } => {
                // cpuset first: in v1 a process can join a cpuset only once it has CPUs and
                // memory nodes.
                let cpuset_dir = groups.make(&cpuset, &name)?;
                let cpus = choose_cpus(&profile, &read_cpus_v1(&cpuset)?)?;
                write(&cpuset_dir.join("cpuset.cpus"), &format_cpu_list(&cpus))?;
                let mems = read_first(&cpuset, &["cpuset.effective_mems", "cpuset.mems"])?;
                write(&cpuset_dir.join("cpuset.mems"), &mems)?;

                let cpu_dir = groups.make(&cpu, &name)?;
                write(
                    &cpu_dir.join("cpu.cfs_period_us"),
                    &CFS_PERIOD_US.to_string(),
                )?;
                let quota = cfs_quota_us(&profile).map_or("-1".to_string(), |q| q.to_string());
                write(&cpu_dir.join("cpu.cfs_quota_us"), &quota)?;

                let cpuacct_dir = groups.make(&cpuacct, &name)?;
                let memory_dir = groups.make(&memory, &name)?;
                if let Some(bytes) = profile.memory_limit_bytes() {
                    write(
                        &memory_dir.join("memory.limit_in_bytes"),
                        &bytes.to_string(),
                    )?;
                    let memsw = memory_dir.join("memory.memsw.limit_in_bytes");
                    if memsw.exists() {
                        write(&memsw, &bytes.to_string())?;
                    }
                }
                Files::V1 {
                    cpu: cpu_dir,
                    cpuacct: cpuacct_dir,
                    memory: memory_dir,
                }
            }
            Layout::V2(top) => {
                enable_v2_controllers(&top)?;
                let dir = groups.make(&top, &name)?;
                let cpus = choose_cpus(&profile, &read_cpus_v2(&top)?)?;
                write(&dir.join("cpuset.cpus"), &format_cpu_list(&cpus))?;
                write(&dir.join("cpu.max"), &cpu_max_v2(&profile))?;
                if let Some(bytes) = profile.memory_limit_bytes() {
                    write(&dir.join("memory.max"), &bytes.to_string())?;
                    let swap = dir.join("memory.swap.max");
                    if swap.exists() {
                        write(&swap, "0")?;
                    }
                }
                Files::V2(dir)
            }
        };
        Ok(DeviceCage {
            profile,
            files,
            groups,
        })
    }

    /// The profile the cage holds.
    pub fn profile(&self) -> &DeviceProfile {
        &self.profile
    }

    /// Makes `cmd`'s child join the cage between fork and exec (a pre-exec hook that writes
    /// `0` to each group's `cgroup.procs`), so that it runs inside from its first instruction,
    /// and every thread and child it makes later is inside too. Hooks compose: `cmd` may carry
    /// others (a network namespace's `setns`, `PR_SET_PDEATHSIG`). Spawning fails if the cage
    /// is gone by then.
    pub fn command_in<'c>(&self, cmd: &'c mut Command) -> &'c mut Command {
        let procs = self.groups.procs.clone();
        // SAFETY: the hook only calls open(2), write(2) and close(2), which are
        // async-signal-safe, on paths made before the fork; it allocates nothing.
        unsafe { cmd.pre_exec(move || procs.iter().try_for_each(|path| join(path))) };
        cmd
    }

    /// CPU seconds used by everything that ran in the cage so far, exited processes included
    /// (`cpuacct.usage`; v2: `usage_usec` of `cpu.stat`).
    pub fn cpu_seconds(&self) -> Result<f64, DeviceError> {
        match &self.files {
            Files::V1 { cpuacct, .. } => Ok(read_u64(&cpuacct.join("cpuacct.usage"))? as f64 / 1e9),
            Files::V2(dir) => {
                let path = dir.join("cpu.stat");
                Ok(stat_field(&path, &read(&path)?, "usage_usec")? as f64 / 1e6)
            }
        }
    }

    /// The memory charged to the cage now, in bytes (`memory.usage_in_bytes`; v2:
    /// `memory.current`). It counts the page cache of files the cage read or wrote as well as
    /// its processes' own memory, so it is higher than the sum of their RSS.
    pub fn memory_bytes(&self) -> Result<u64, DeviceError> {
        match &self.files {
            Files::V1 { memory, .. } => read_u64(&memory.join("memory.usage_in_bytes")),
            Files::V2(dir) => read_u64(&dir.join("memory.current")),
        }
    }

    /// The most memory charged to the cage at any time, in bytes (`memory.max_usage_in_bytes`;
    /// v2: `memory.peak`, `None` on kernels before 5.19 that do not keep it). Page cache
    /// included, as in [`DeviceCage::memory_bytes`].
    pub fn memory_peak_bytes(&self) -> Result<Option<u64>, DeviceError> {
        match &self.files {
            Files::V1 { memory, .. } => {
                read_u64(&memory.join("memory.max_usage_in_bytes")).map(Some)
            }
            Files::V2(dir) => {
                let path = dir.join("memory.peak");
                if path.exists() {
                    read_u64(&path).map(Some)
                } else {
                    Ok(None)
                }
            }
        }
    }

    /// How much the CPU limit held the cage back so far (`cpu.stat`).
    pub fn throttled(&self) -> Result<Throttling, DeviceError> {
        let (path, time_field, time_unit) = match &self.files {
            Files::V1 { cpu, .. } => (cpu.join("cpu.stat"), "throttled_time", 1e9),
            Files::V2(dir) => (dir.join("cpu.stat"), "throttled_usec", 1e6),
        };
        let text = read(&path)?;
        Ok(Throttling {
            periods: stat_field(&path, &text, "nr_periods")?,
            throttled_periods: stat_field(&path, &text, "nr_throttled")?,
            throttled_seconds: stat_field(&path, &text, time_field)? as f64 / time_unit,
        })
    }
}

impl Groups {
    /// Makes `parent/name` and keeps it for removal; returns it.
    fn make(&mut self, parent: &Path, name: &str) -> Result<PathBuf, DeviceError> {
        let dir = parent.join(name);
        std::fs::create_dir(&dir).map_err(|source| DeviceError::Cgroup {
            action: "create".into(),
            path: dir.clone(),
            source,
        })?;
        let procs = dir.join("cgroup.procs");
        self.dirs.push(dir.clone());
        let procs = CString::new(procs.as_os_str().as_bytes()).map_err(|_| DeviceError::Parse {
            path: procs.clone(),
            reason: "a NUL byte in the path".into(),
        })?;
        self.procs.push(procs);
        Ok(dir)
    }
}

impl Drop for Groups {
    fn drop(&mut self) {
        remove_groups(&self.dirs);
    }
}

/// Joins the calling process to the group whose `cgroup.procs` is `path`. Runs between fork
/// and exec: raw system calls only.
fn join(path: &CStr) -> std::io::Result<()> {
    // SAFETY: `path` is a valid NUL-terminated string; the descriptor is closed below.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: writes one byte from a static buffer to the descriptor opened above.
    let written = unsafe { libc::write(fd, b"0".as_ptr().cast(), 1) };
    let result = if written == 1 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    };
    // SAFETY: `fd` is open and owned here.
    unsafe { libc::close(fd) };
    result
}

/// Root, and a layout whose controllers are there; else why not.
fn check() -> Result<Layout, String> {
    // SAFETY: geteuid(2) has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("the device lab needs root (cgroups): run it as root, e.g. with sudo".into());
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| format!("cannot read /proc/self/mountinfo: {e}"))?;
    let own = std::fs::read_to_string("/proc/self/cgroup")
        .map_err(|e| format!("cannot read /proc/self/cgroup: {e}"))?;
    let layout = layout(&mountinfo, &own)?;
    if let Layout::V2(top) = &layout {
        let path = top.join("cgroup.controllers");
        let offered = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        for controller in V2_CONTROLLERS {
            if !offered.split_whitespace().any(|c| c == controller) {
                return Err(format!(
                    "cgroup v2 at {} offers no `{controller}` controller",
                    top.display()
                ));
            }
        }
    }
    Ok(layout)
}

/// Where the cage's groups go: cgroup v1 wherever a v1 hierarchy has the `cpu` controller
/// (each of the four controllers must then be mounted), else cgroup v2.
fn layout(mountinfo: &str, own_cgroups: &str) -> Result<Layout, String> {
    let mounts = parse_mountinfo(mountinfo);
    let v1 = |controller: &str| {
        mounts
            .iter()
            .find(|m| !m.unified && m.options.iter().any(|o| o == controller))
    };
    if v1("cpu").is_none() {
        let unified = mounts.iter().find(|m| m.unified).ok_or(
            "no cgroup filesystem is mounted (neither v1 hierarchies nor the v2 unified one)",
        )?;
        return Ok(Layout::V2(unified.point.clone()));
    }
    let own = parse_proc_cgroup(own_cgroups);
    let parent = |controller: &str| -> Result<PathBuf, String> {
        let mount = v1(controller).ok_or_else(|| {
            format!("no cgroup v1 hierarchy with the `{controller}` controller is mounted")
        })?;
        let path = own
            .iter()
            .find(|(controllers, _)| controllers.iter().any(|c| c == controller))
            .map_or("/", |(_, path)| path.as_str());
        Ok(within(mount, path))
    };
    Ok(Layout::V1 {
        cpu: parent("cpu")?,
        cpuacct: parent("cpuacct")?,
        cpuset: parent("cpuset")?,
        memory: parent("memory")?,
    })
}

/// The cgroup filesystems in `/proc/self/mountinfo`.
fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let left: Vec<&str> = left.split(' ').collect();
            let mut right = right.split(' ');
            let unified = match right.next()? {
                "cgroup2" => true,
                "cgroup" => false,
                _ => return None,
            };
            let options = right.nth(1).unwrap_or_default();
            Some(Mount {
                point: PathBuf::from(unescape(left.get(4)?)),
                root: unescape(left.get(3)?),
                options: if unified {
                    Vec::new()
                } else {
                    options.split(',').map(String::from).collect()
                },
                unified,
            })
        })
        .collect()
}

/// `/proc/self/cgroup`: (controllers, path) per hierarchy; the v2 line has no controllers.
fn parse_proc_cgroup(text: &str) -> Vec<(Vec<String>, String)> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let _id = parts.next()?;
            let controllers = parts.next()?;
            let path = parts.next()?;
            let controllers = controllers
                .split(',')
                .filter(|c| !c.is_empty())
                .map(String::from)
                .collect();
            Some((controllers, path.to_string()))
        })
        .collect()
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|d| {
            std::str::from_utf8(d)
                .ok()
                .and_then(|d| u8::from_str_radix(d, 8).ok())
        });
        match (bytes[i], octal) {
            (b'\\', Some(byte)) => {
                out.push(byte);
                i += 4;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The directory of group `path` in `mount` (the mount's top when the group is outside it).
fn within(mount: &Mount, path: &str) -> PathBuf {
    let relative = if mount.root == "/" {
        Some(path)
    } else {
        path.strip_prefix(mount.root.as_str())
            .filter(|rest| rest.is_empty() || rest.starts_with('/'))
    };
    match relative.map(|r| r.trim_start_matches('/')) {
        Some(rest) if !rest.is_empty() => mount.point.join(rest),
        _ => mount.point.clone(),
    }
}

/// A kernel CPU list (`0-3,8,10-11`) as CPU numbers.
fn parse_cpu_list(list: &str) -> Option<Vec<u32>> {
    let mut cpus = Vec::new();
    for part in list.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((first, last)) => {
                let (first, last) = (first.parse::<u32>().ok()?, last.parse::<u32>().ok()?);
                if last < first {
                    return None;
                }
                cpus.extend(first..=last);
            }
            None => cpus.push(part.parse().ok()?),
        }
    }
    Some(cpus)
}

/// CPU numbers as a kernel CPU list (`0,1,4` as `0-1,4`).
fn format_cpu_list(cpus: &[u32]) -> String {
    let mut ranges: Vec<(u32, u32)> = Vec::new();
    for &cpu in cpus {
        match ranges.last_mut() {
            Some((_, last)) if *last + 1 == cpu => *last = cpu,
            _ => ranges.push((cpu, cpu)),
        }
    }
    ranges
        .iter()
        .map(|&(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}-{b}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The profile's cpuset: the first `cores` of the CPUs the parent has, or all of them.
fn choose_cpus(profile: &DeviceProfile, available: &[u32]) -> Result<Vec<u32>, DeviceError> {
    let Some(cpu) = &profile.cpu else {
        return Ok(available.to_vec());
    };
    let cores = cpu.cores as usize;
    if cores > available.len() {
        return Err(DeviceError::TooManyCores {
            profile: profile.name.clone(),
            cores: cpu.cores,
            available: available.len(),
        });
    }
    Ok(available[..cores].to_vec())
}

/// The profile's CFS quota per [`CFS_PERIOD_US`], in microseconds; `None` without a CPU limit.
fn cfs_quota_us(profile: &DeviceProfile) -> Option<u64> {
    profile.cpu.as_ref().map(|cpu| {
        let quota = f64::from(cpu.cores) * cpu.per_core * CFS_PERIOD_US as f64;
        (quota.round() as u64).max(MIN_QUOTA_US)
    })
}

/// cgroup v2's `cpu.max` for the profile: `QUOTA PERIOD`, or `max PERIOD`.
fn cpu_max_v2(profile: &DeviceProfile) -> String {
    match cfs_quota_us(profile) {
        Some(quota) => format!("{quota} {CFS_PERIOD_US}"),
        None => format!("max {CFS_PERIOD_US}"),
    }
}

/// The CPUs of a v1 cpuset group.
fn read_cpus_v1(group: &Path) -> Result<Vec<u32>, DeviceError> {
    let list = read_first(group, &["cpuset.effective_cpus", "cpuset.cpus"])?;
    parse_cpus(&group.join("cpuset.cpus"), &list)
}

/// The CPUs the top of the v2 hierarchy has.
fn read_cpus_v2(top: &Path) -> Result<Vec<u32>, DeviceError> {
    let path = top.join("cpuset.cpus.effective");
    match std::fs::read_to_string(&path) {
        Ok(list) => parse_cpus(&path, &list),
        // The root group has no cpuset files: every online CPU is its own.
        Err(_) => {
            let path = PathBuf::from("/sys/devices/system/cpu/online");
            parse_cpus(&path, &read(&path)?)
        }
    }
}

fn parse_cpus(path: &Path, list: &str) -> Result<Vec<u32>, DeviceError> {
    parse_cpu_list(list)
        .filter(|cpus| !cpus.is_empty())
        .ok_or_else(|| DeviceError::Parse {
            path: path.to_path_buf(),
            reason: format!("`{}` is not a CPU list", list.trim()),
        })
}

/// Turns on the controllers a cage needs for the top's children, where they are off.
fn enable_v2_controllers(top: &Path) -> Result<(), DeviceError> {
    let path = top.join("cgroup.subtree_control");
    let enabled = read(&path)?;
    for controller in V2_CONTROLLERS {
        if !enabled.split_whitespace().any(|c| c == controller) {
            write(&path, &format!("+{controller}"))?;
        }
    }
    Ok(())
}

/// The trimmed content of the first of `names` in `dir` that exists and is not empty.
fn read_first(dir: &Path, names: &[&str]) -> Result<String, DeviceError> {
    let mut last = None;
    for name in names {
        let path = dir.join(name);
        match std::fs::read_to_string(&path) {
            Ok(text) if !text.trim().is_empty() => return Ok(text.trim().to_string()),
            Ok(_) => last = Some((path, std::io::ErrorKind::InvalidData.into())),
            Err(e) => last = Some((path, e)),
        }
    }
    let (path, source) =
        last.unwrap_or_else(|| (dir.to_path_buf(), std::io::ErrorKind::NotFound.into()));
    Err(DeviceError::Cgroup {
        action: "read".into(),
        path,
        source,
    })
}

fn read(path: &Path) -> Result<String, DeviceError> {
    std::fs::read_to_string(path).map_err(|source| DeviceError::Cgroup {
        action: "read".into(),
        path: path.to_path_buf(),
        source,
    })
}

fn read_u64(path: &Path) -> Result<u64, DeviceError> {
    let text = read(path)?;
    text.trim().parse().map_err(|_| DeviceError::Parse {
        path: path.to_path_buf(),
        reason: format!("`{}` is not a number", text.trim()),
    })
}

fn write(path: &Path, value: &str) -> Result<(), DeviceError> {
    std::fs::write(path, value).map_err(|source| DeviceError::Cgroup {
        action: format!("write `{value}` to"),
        path: path.to_path_buf(),
        source,
    })
}

/// A `name value` line's value in a `cpu.stat`-style file.
fn stat_field(path: &Path, text: &str, name: &str) -> Result<u64, DeviceError> {
    text.lines()
        .filter_map(|line| line.split_once(' '))
        .find(|(key, _)| *key == name)
        .and_then(|(_, value)| value.trim().parse().ok())
        .ok_or_else(|| DeviceError::Parse {
            path: path.to_path_buf(),
            reason: format!("no `{name}` number"),
        })
}

/// The processes in `dirs` now.
fn pids_in(dirs: &[PathBuf]) -> Vec<libc::pid_t> {
    let mut pids: Vec<libc::pid_t> = dirs
        .iter()
        .filter_map(|dir| std::fs::read_to_string(dir.join("cgroup.procs")).ok())
        .flat_map(|text| {
            text.lines()
                .filter_map(|line| line.trim().parse().ok())
                .collect::<Vec<_>>()
        })
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// SIGKILLs everything in `dirs` (never this process) until they are empty, for at most
/// [`DRAIN_TIMEOUT`], then removes them, last made first. Logs what it could not do.
fn remove_groups(dirs: &[PathBuf]) {
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    // SAFETY: getpid(2) has no preconditions.
    let own = unsafe { libc::getpid() };
    loop {
        let pids: Vec<_> = pids_in(dirs).into_iter().filter(|&p| p != own).collect();
        if pids.is_empty() {
            break;
        }
        if Instant::now() >= deadline {
            log::warn!("device lab: processes {pids:?} are still in the cage after SIGKILL");
            break;
        }
        for pid in pids {
            // SAFETY: kill(2) on a PID read from the cage's own cgroup.procs.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        std::thread::sleep(DRAIN_POLL);
    }
    for dir in dirs.iter().rev() {
        loop {
            match std::fs::remove_dir(dir) {
                Ok(()) => break,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                    std::thread::sleep(DRAIN_POLL);
                }
                Err(e) => {
                    log::warn!("device lab: cannot remove {}: {e}", dir.display());
                    break;
                }
            }
        }
    }
}

/// The PID in a cage's group name `fieldcast-qa-<pid>-<n>`.
fn owner_pid(name: &str) -> Option<libc::pid_t> {
    let (pid, n) = name.strip_prefix(PREFIX)?.split_once('-')?;
    n.parse::<u32>().ok()?;
    pid.parse().ok()
}

/// Cage groups (`fieldcast-qa-<pid>-*`) under `dir` whose PID no longer runs.
fn stale_groups(dir: &Path, depth: usize, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let path = entry.path();
        match entry.file_name().to_str().and_then(owner_pid) {
            Some(pid) => {
                // SAFETY: kill(2) with signal 0 only checks whether the PID exists.
                let gone = unsafe { libc::kill(pid, 0) } != 0
                    && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
                if gone {
                    found.push(path);
                }
            }
            None if depth < MAX_WALK_DEPTH => stale_groups(&path, depth + 1, found),
            None => {}
        }
    }
}

/// Removes cages left behind by processes that are gone (killed before they could clean
/// up): groups named `fieldcast-qa-<pid>-*` in any cgroup hierarchy whose PID no longer runs,
/// after SIGKILLing what still runs in them. Returns the directories removed; does nothing
/// without root. The PIDs are this PID namespace's: a cage made from another PID namespace
/// can look stale here (its processes are not visible, so none is killed, and a group that
/// still holds any is not removed).
pub fn cleanup_stale() -> Vec<String> {
    if check().is_err() {
        return Vec::new();
    }
    let Ok(mountinfo) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let mut points: Vec<PathBuf> = parse_mountinfo(&mountinfo)
        .into_iter()
        .filter(|m| {
            m.unified
                || m.options
                    .iter()
                    .any(|o| V1_CONTROLLERS.contains(&o.as_str()))
        })
        .map(|m| m.point)
        .collect();
    points.sort();
    points.dedup();
    let mut stale = Vec::new();
    for point in &points {
        stale_groups(point, 0, &mut stale);
    }
    let mut removed = Vec::new();
    for dir in stale {
        remove_groups(std::slice::from_ref(&dir));
        if !dir.exists() {
            removed.push(dir.display().to_string());
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    /// This machine's kind: cgroup v1 hierarchies, the unified one beside them, and the
    /// memory group of the process nested.
    const V1_MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const V1_OWN: &str =
        "9:name=systemd:/\n4:memory:/api/49e7\n3:cpuset:/\n2:cpuacct:/\n1:cpu:/\n0::/\n";

    #[test]
    fn v1_groups_nest_in_the_processes_own_groups() {
        let layout = layout(V1_MOUNTINFO, V1_OWN).unwrap();
        assert_eq!(
            layout,
            Layout::V1 {
                cpu: "/sys/fs/cgroup/cpu".into(),
                cpuacct: "/sys/fs/cgroup/cpuacct".into(),
                cpuset: "/sys/fs/cgroup/cpuset".into(),
                memory: "/sys/fs/cgroup/memory/api/49e7".into(),
            }
        );
    }

    #[test]
    fn shared_v1_hierarchies_give_one_directory() {
        let mountinfo = "\
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
";
        let own = "4:memory:/\n3:cpuset:/\n2:cpu,cpuacct:/user.slice\n";
        let Layout::V1 { cpu, cpuacct, .. } = layout(mountinfo, own).unwrap() else {
            panic!("v1 expected");
        };
        assert_eq!(cpu, PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/user.slice"));
        assert_eq!(cpu, cpuacct);
    }

    #[test]
    fn unified_only_is_v2_at_its_mount() {
        let mountinfo = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
        assert_eq!(
            layout(mountinfo, "0::/user.slice/user-1000.slice\n").unwrap(),
            Layout::V2("/sys/fs/cgroup".into())
        );
        assert!(layout("", "").unwrap_err().contains("no cgroup filesystem"));
    }

    #[test]
    fn a_missing_v1_controller_is_named() {
        let mountinfo: String = V1_MOUNTINFO
            .lines()
            .filter(|l| !l.contains("memory"))
            .map(|l| format!("{l}\n"))
            .collect();
        let err = layout(&mountinfo, V1_OWN).unwrap_err();
        assert!(err.contains("`memory`"), "{err}");
    }

    #[test]
    fn mount_fields_are_unescaped_and_subtrees_joined() {
        let mounts =
            parse_mountinfo("50 1 0:40 /lxc/c1 /mnt/my\\040cgroups rw - cgroup cgroup rw,memory\n");
        assert_eq!(mounts[0].point, PathBuf::from("/mnt/my cgroups"));
        assert_eq!(
            within(&mounts[0], "/lxc/c1/app"),
            PathBuf::from("/mnt/my cgroups/app")
        );
        assert_eq!(
            within(&mounts[0], "/lxc/c1"),
            PathBuf::from("/mnt/my cgroups")
        );
        // A group outside the mounted subtree (or a name that only starts alike) is its top.
        assert_eq!(
            within(&mounts[0], "/lxc/c10"),
            PathBuf::from("/mnt/my cgroups")
        );
    }

    #[test]
    fn cpu_lists_read_and_write() {
        assert_eq!(
            parse_cpu_list("0-3,8,10-11\n"),
            Some(vec![0, 1, 2, 3, 8, 10, 11])
        );
        assert_eq!(parse_cpu_list(""), Some(vec![]));
        assert_eq!(parse_cpu_list("3-1"), None);
        assert_eq!(parse_cpu_list("a"), None);
        assert_eq!(format_cpu_list(&[0, 1, 2, 4, 6, 7]), "0-2,4,6-7");
        assert_eq!(format_cpu_list(&[5]), "5");
    }

    fn profile(json: &str) -> DeviceProfile {
        DeviceProfile::parse(json, "test").unwrap()
    }

    #[test]
    fn limits_follow_the_profile() {
        let phone = profile(r#"{"name":"p","cpu":{"cores":2,"per_core":0.3}}"#);
        assert_eq!(cfs_quota_us(&phone), Some(60_000));
        assert_eq!(cpu_max_v2(&phone), "60000 100000");
        assert_eq!(choose_cpus(&phone, &[2, 3, 5]).unwrap(), vec![2, 3]);
        let desktop = profile(r#"{"name":"d"}"#);
        assert_eq!(cfs_quota_us(&desktop), None);
        assert_eq!(cpu_max_v2(&desktop), "max 100000");
        assert_eq!(choose_cpus(&desktop, &[0, 1]).unwrap(), vec![0, 1]);
        let big = profile(r#"{"name":"big","cpu":{"cores":8,"per_core":0.5}}"#);
        let err = choose_cpus(&big, &[0, 1]).unwrap_err().to_string();
        assert!(
            err.contains("models 8 cores") && err.contains("only 2"),
            "{err}"
        );
    }

    #[test]
    fn cpu_stat_fields_of_both_versions() {
        let path = Path::new("cpu.stat");
        let v1 = "nr_periods 120\nnr_throttled 80\nthrottled_time 3500000000\n";
        assert_eq!(stat_field(path, v1, "nr_throttled").unwrap(), 80);
        assert_eq!(
            stat_field(path, v1, "throttled_time").unwrap(),
            3_500_000_000
        );
        let v2 = "usage_usec 1500000\nuser_usec 1000000\nnr_periods 9\nthrottled_usec 20\n";
        assert_eq!(stat_field(path, v2, "usage_usec").unwrap(), 1_500_000);
        let err = stat_field(path, v2, "nr_throttled")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("nr_throttled") && err.contains("cpu.stat"),
            "{err}"
        );
    }

    #[test]
    fn only_cage_names_have_an_owner() {
        assert_eq!(owner_pid("fieldcast-qa-4242-7"), Some(4242));
        assert_eq!(owner_pid("fieldcast-qa-4242"), None);
        assert_eq!(owner_pid("fieldcast-qa-x-1"), None);
        assert_eq!(owner_pid("user.slice"), None);
    }

    /// A hook of another kind on the same command, as the network lab and `Child` add.
    fn die_with_parent(cmd: &mut Command) {
        // SAFETY: the hook only calls prctl(2), which is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            })
        };
    }

    #[test]
    fn the_cpu_quota_holds_a_busy_cage_and_drop_leaves_nothing() {
        if !DeviceCage::available_or_skip() {
            return;
        }
        let cage = DeviceCage::create(DeviceProfile::builtin("entry-2019").unwrap()).unwrap();
        let expected = cage.profile().host_cores();
        // Two busy loops: the shell and a child of it, both inside by inheritance.
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "while :; do :; done & while :; do :; done"]);
        die_with_parent(&mut cmd);
        let mut child = cage.command_in(&mut cmd).spawn().unwrap();
        let (start, before) = (Instant::now(), cage.cpu_seconds().unwrap());
        std::thread::sleep(Duration::from_secs(2));
        let used = cage.cpu_seconds().unwrap() - before;
        let share = used / start.elapsed().as_secs_f64();
        assert!(
            (share - expected).abs() <= 0.2 * expected,
            "the cage used {share:.3} host cores, its quota is {expected:.3}"
        );
        assert!(cage.throttled().unwrap().throttled_periods > 0);
        assert!(cage.memory_bytes().unwrap() > 0);
        let dirs = cage.groups.dirs.clone();
        assert_eq!(dirs.len(), 4);
        drop(cage);
        assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));
        for dir in dirs {
            assert!(!dir.exists(), "{} is left", dir.display());
        }
    }

    #[test]
    fn a_child_over_the_memory_limit_is_killed() {
        if !DeviceCage::available_or_skip() {
            return;
        }
        let cage = DeviceCage::create(profile(r#"{"name":"tiny","memory_mb":64}"#)).unwrap();
        // dd fills a 256 MiB buffer of its own.
        let status = cage
            .command_in(Command::new("dd").args([
                "if=/dev/zero",
                "of=/dev/null",
                "bs=256M",
                "count=1",
            ]))
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{status}");
        let peak = cage.memory_peak_bytes().unwrap().expect("a peak");
        assert!(peak > 32 << 20 && peak <= 64 << 20, "peak {peak}");
    }

    #[test]
    fn more_cores_than_the_host_has_is_refused() {
        if !DeviceCage::available_or_skip() {
            return;
        }
        let big = profile(r#"{"name":"big","cpu":{"cores":4096,"per_core":0.5}}"#);
        let err = DeviceCage::create(big).err().expect("refused").to_string();
        assert!(err.contains("models 4096 cores"), "{err}");
    }

    #[test]
    fn cages_of_gone_processes_are_removed() {
        if !DeviceCage::available_or_skip() {
            return;
        }
        let mut gone = Command::new("true").spawn().unwrap();
        let pid = gone.id();
        gone.wait().unwrap();
        let (Layout::V1 { cpuacct: top, .. } | Layout::V2(top)) = check().unwrap();
        let dir = top.join(format!("{PREFIX}{pid}-0"));
        std::fs::create_dir(&dir).unwrap();
        let removed = cleanup_stale();
        assert!(removed.contains(&dir.display().to_string()), "{removed:?}");
        assert!(!dir.exists());
    }
}
