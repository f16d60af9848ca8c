//! Device profiles: the CPU and memory of a phone class, read from JSON (shipped ones in
//! `qa/device-profiles/`), held by a [`crate::cage::DeviceCage`] and calibrated by
//! [`crate::calibrate::calibrate`]. See docs/QA.md, "Field lab".

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The profiles shipped in `qa/device-profiles/`, embedded in the binary.
const BUILTIN: [(&str, &str); 3] = [
    (
        "entry-2019",
        include_str!("../device-profiles/entry-2019.json"),
    ),
    ("mid-2021", include_str!("../device-profiles/mid-2021.json")),
    ("desktop", include_str!("../device-profiles/desktop.json")),
];

/// The smallest share of a host core a modelled core may get; the kernel's CFS quota cannot
/// go below 1 ms per 100 ms period.
const MIN_PER_CORE: f64 = 0.01;
/// The smallest memory limit, in MiB: below it not even a shell starts.
const MIN_MEMORY_MB: u64 = 8;

/// The CPU of a device: `cores` modelled cores (the cage's cpuset: the first `cores` CPUs of
/// the host), each worth `per_core` of one host core (the cage's CFS quota is
/// `cores × per_core` host cores, shared by all its threads).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CpuLimit {
    /// Modelled cores: the size of the cpuset, at most the host's CPUs.
    pub cores: u32,
    /// The fraction of one host core each modelled core gets, 0.01 to 1.
    pub per_core: f64,
}

/// How a profile's figures were obtained: a measurement with [`crate::calibrate::calibrate`]
/// on a named host, the target it was tuned to, and where the target comes from.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CalibrationNote {
    /// The machine the measurement was made on.
    pub host: String,
    /// x264 `ultrafast` 1280x720 frames per second measured in a cage of this profile.
    pub measured_fps_720p: f64,
    /// The same at 854x480.
    pub measured_fps_480p: f64,
    /// The 720p frames per second the profile was tuned to reach (none for a profile that
    /// does not model a phone).
    #[serde(default)]
    pub target_fps_720p: Option<f64>,
    /// The published figures behind the target and how they were converted.
    pub reference: String,
}

/// A device profile: a named CPU and memory budget (see the module).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceProfile {
    /// Short name, e.g. `entry-2019`.
    pub name: String,
    /// What the profile emulates, and its limits.
    #[serde(default)]
    pub description: String,
    /// The CPU limit; none gives the whole host.
    #[serde(default)]
    pub cpu: Option<CpuLimit>,
    /// The memory limit in MiB (page cache included, see [`crate::cage::DeviceCage`]); none
    /// sets no limit.
    #[serde(default)]
    pub memory_mb: Option<u64>,
    /// How the figures were obtained.
    #[serde(default)]
    pub calibration: Option<CalibrationNote>,
}

/// Why a device profile or its cage could not be used.
#[derive(Debug)]
pub enum DeviceError {
    /// Neither a readable file nor a shipped profile.
    UnknownProfile(String),
    /// A profile that does not parse or does not make sense.
    Profile {
        /// The file or name it came from.
        origin: String,
        /// What is wrong, with line and column for JSON errors.
        reason: String,
    },
    /// Not root, or the cgroup controllers are missing; says which.
    Unavailable(String),
    /// The profile models more cores than the cage's parent cpuset has.
    TooManyCores {
        /// The profile's name.
        profile: String,
        /// The cores it models.
        cores: u32,
        /// The CPUs there are.
        available: usize,
    },
    /// A cgroup file or directory could not be made, written or read.
    Cgroup {
        /// What was being done, e.g. ``write `50000` to``.
        action: String,
        /// The file or directory.
        path: PathBuf,
        /// The system's error.
        source: std::io::Error,
    },
    /// A cgroup file held something unexpected.
    Parse {
        /// The file.
        path: PathBuf,
        /// What was expected.
        reason: String,
    },
    /// A calibration run failed; says which command and why.
    Calibration(String),
}

impl fmt::Display for DeviceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceError::UnknownProfile(name) => write!(
                f,
                "no device profile file or shipped profile named `{name}` (shipped: {})",
                DeviceProfile::builtin_names().join(", ")
            ),
            DeviceError::Profile { origin, reason } => {
                write!(f, "invalid device profile {origin}: {reason}")
            }
            DeviceError::Unavailable(reason) => {
                write!(f, "the device lab cannot run here: {reason}")
            }
            DeviceError::TooManyCores {
                profile,
                cores,
                available,
            } => write!(
                f,
                "device profile {profile} models {cores} cores, but this machine has only \
                 {available} CPU(s) to give it: use a profile with at most {available} `cores`"
            ),
            DeviceError::Cgroup {
                action,
                path,
                source,
            } => write!(f, "cannot {action} {}: {source}", path.display()),
            DeviceError::Parse { path, reason } => {
                write!(f, "unexpected content in {}: {reason}", path.display())
            }
            DeviceError::Calibration(reason) => write!(f, "calibration failed: {reason}"),
        }
    }
}

impl std::error::Error for DeviceError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DeviceError::Cgroup { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl DeviceProfile {
    /// The names of the shipped profiles.
    pub fn builtin_names() -> Vec<&'static str> {
        BUILTIN.iter().map(|(name, _)| *name).collect()
    }

    /// A shipped profile by name (`entry-2019`, `mid-2021`, `desktop`).
    pub fn builtin(name: &str) -> Result<DeviceProfile, DeviceError> {
        let (_, json) = BUILTIN
            .iter()
            .find(|(n, _)| *n == name)
            .ok_or_else(|| DeviceError::UnknownProfile(name.to_string()))?;
        DeviceProfile::parse(json, name)
    }

    /// A profile from a JSON file if `path_or_name` is an existing file, else a shipped profile.
    pub fn load(path_or_name: &str) -> Result<DeviceProfile, DeviceError> {
        let path = Path::new(path_or_name);
        if path.is_file() {
            let json = std::fs::read_to_string(path).map_err(|e| DeviceError::Profile {
                origin: path_or_name.to_string(),
                reason: e.to_string(),
            })?;
            DeviceProfile::parse(&json, path_or_name)
        } else {
            DeviceProfile::builtin(path_or_name)
        }
    }

    /// Parses and validates a profile; `source` names it in errors (a path or a name).
    pub fn parse(json: &str, source: &str) -> Result<DeviceProfile, DeviceError> {
        let invalid = |reason: String| DeviceError::Profile {
            origin: source.to_string(),
            reason,
        };
        let profile: DeviceProfile =
            serde_json::from_str(json).map_err(|e| invalid(e.to_string()))?;
        profile.validate().map_err(invalid)?;
        Ok(profile)
    }

    fn validate(&self) -> Result<(), String> {
        if self.name.trim().is_empty() {
            return Err("`name` is empty".into());
        }
        if let Some(cpu) = &self.cpu {
            if cpu.cores == 0 {
                return Err("`cpu.cores` must be at least 1".into());
            }
            if !(MIN_PER_CORE..=1.0).contains(&cpu.per_core) {
                return Err(format!(
                    "`cpu.per_core` must be within {MIN_PER_CORE} to 1 (a share of one host core), \
                     not {}",
                    cpu.per_core
                ));
            }
        }
        if self.memory_mb.is_some_and(|mb| mb < MIN_MEMORY_MB) {
            return Err(format!("`memory_mb` must be at least {MIN_MEMORY_MB}"));
        }
        if let Some(note) = &self.calibration {
            let figures = [
                ("measured_fps_720p", Some(note.measured_fps_720p)),
                ("measured_fps_480p", Some(note.measured_fps_480p)),
                ("target_fps_720p", note.target_fps_720p),
            ];
            for (field, value) in figures {
                if value.is_some_and(|v| !(v.is_finite() && v > 0.0)) {
                    return Err(format!("`calibration.{field}` must be a positive number"));
                }
            }
        }
        Ok(())
    }

    /// The CPU the device has, in host cores: `cores × per_core`, or the host's online CPUs
    /// when the profile sets no CPU limit. A process's CPU use divided by this is its use in
    /// "percent of the device".
    pub fn host_cores(&self) -> f64 {
        match &self.cpu {
            Some(cpu) => f64::from(cpu.cores) * cpu.per_core,
            None => online_cpus() as f64,
        }
    }

    /// The memory limit in bytes, if the profile sets one.
    pub fn memory_limit_bytes(&self) -> Option<u64> {
        self.memory_mb.map(|mb| mb * 1024 * 1024)
    }
}

/// The host's online CPUs (at least 1).
fn online_cpus() -> usize {
    // SAFETY: sysconf(3) has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    usize::try_from(n).unwrap_or(1).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_parse_and_are_calibrated() {
        for name in DeviceProfile::builtin_names() {
            let p = DeviceProfile::builtin(name).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(p.name, name);
            let note = p.calibration.as_ref().expect("calibration");
            assert!(
                !note.reference.is_empty() && !note.host.is_empty(),
                "{name}"
            );
        }
        let entry = DeviceProfile::builtin("entry-2019").unwrap();
        let mid = DeviceProfile::builtin("mid-2021").unwrap();
        assert_eq!(entry.memory_mb, Some(1024));
        assert_eq!(mid.memory_mb, Some(3072));
        assert_eq!(entry.cpu.as_ref().map(|c| c.cores), Some(2));
        assert!(entry.host_cores() < mid.host_cores());
        // A phone's target is met within 10 % on the host the profile was calibrated on.
        for p in [&entry, &mid] {
            let note = p.calibration.as_ref().unwrap();
            let target = note.target_fps_720p.expect("phones have a target");
            let off = (note.measured_fps_720p - target).abs() / target;
            assert!(
                off < 0.10,
                "{}: measured {} for {target}",
                p.name,
                note.measured_fps_720p
            );
        }
        let desktop = DeviceProfile::builtin("desktop").unwrap();
        assert_eq!((desktop.cpu.as_ref(), desktop.memory_mb), (None, None));
        assert_eq!(desktop.host_cores(), online_cpus() as f64);
    }

    #[test]
    fn host_cores_is_cores_times_the_share() {
        let json = r#"{"name":"t","cpu":{"cores":2,"per_core":0.25},"memory_mb":64}"#;
        let p = DeviceProfile::parse(json, "t").unwrap();
        assert_eq!(p.host_cores(), 0.5);
        assert_eq!(p.memory_limit_bytes(), Some(64 * 1024 * 1024));
    }

    #[test]
    fn invalid_profiles_say_what_is_wrong() {
        let cases = [
            (r#"{"name":""}"#, "`name` is empty"),
            (
                r#"{"name":"t","cpu":{"cores":0,"per_core":0.5}}"#,
                "at least 1",
            ),
            (
                r#"{"name":"t","cpu":{"cores":1,"per_core":1.5}}"#,
                "per_core",
            ),
            (r#"{"name":"t","cpu":{"cores":1,"per_core":0}}"#, "per_core"),
            (
                r#"{"name":"t","cpu":{"cores":1}}"#,
                "missing field `per_core`",
            ),
            (r#"{"name":"t","memory_mb":4}"#, "memory_mb"),
            (r#"{"name":"t","ram_mb":512}"#, "unknown field"),
            (
                r#"{"name":"t","calibration":{"host":"h","measured_fps_720p":-1,
                   "measured_fps_480p":1,"reference":"r"}}"#,
                "positive",
            ),
            ("{", "EOF"),
        ];
        for (json, expected) in cases {
            let err = DeviceProfile::parse(json, "mine.json")
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{json}: {err}");
            assert!(err.contains("mine.json"), "{err}");
        }
    }

    #[test]
    fn load_reads_a_file_or_names_the_shipped_profiles() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tiny.json");
        std::fs::write(&path, r#"{"name":"tiny","memory_mb":64}"#).unwrap();
        let p = DeviceProfile::load(path.to_str().unwrap()).unwrap();
        assert_eq!((p.name.as_str(), p.memory_mb), ("tiny", Some(64)));
        let err = DeviceProfile::load("no-such-device")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("entry-2019") && err.contains("desktop"),
            "{err}"
        );
    }
}
