//! [`NetLab`]: a publisher namespace and an ingest namespace joined by a shaped veth pair.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::NetLabError;
use super::ns;
use super::profile::Profile;
use super::relay::Relay;
use super::shaping::{INGEST_IF, PUBLISHER_IF, Shaper, ShapingMode};
use super::timeline::{self, AppliedChange, ChangeObserver, History, Timeline};

/// Every namespace the lab creates is named `fcl-<pid>-<n>-pub` or `fcl-<pid>-<n>-ing`.
pub(crate) const PREFIX: &str = "fcl-";
/// The publisher's end of the private /30 (it exists only inside the lab's namespaces).
const PUBLISHER_ADDR: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
/// The ingest's end of the private /30.
const INGEST_ADDR: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
/// The tools the lab runs, and the Debian package of each.
/// Set in the environment, it turns a lab test's skip into a failure (see
/// [`NetLab::available_or_skip`]).
pub const REQUIRE_LAB_ENV: &str = "FIELDCAST_REQUIRE_LAB";
const TOOLS: [(&str, &str); 3] = [("ip", "iproute2"), ("tc", "iproute2"), ("nft", "nftables")];

/// Numbers the labs of this process.
static NEXT_LAB: AtomicU32 = AtomicU32::new(0);

/// A running network lab. Everything it made (namespaces, veth, qdiscs, rules, relays, the
/// timeline thread, processes left inside its namespaces) is removed when it is dropped,
/// including while a panic unwinds.
pub struct NetLab {
    publisher: String,
    ingest: String,
    created: Vec<String>,
    profile: Profile,
    shaper: Option<Arc<Shaper>>,
    relay_delay_ms: Arc<AtomicU32>,
    relays: Mutex<Vec<Relay>>,
    timeline: Option<Timeline>,
    history: History,
    started: Instant,
}

impl NetLab {
    /// Whether labs can run here: root, and `ip`, `tc` and `nft` on the PATH; else why not.
    pub fn available() -> Result<(), String> {
        // SAFETY: geteuid(2) has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err("the network lab needs root (network namespaces, tc, nftables)".into());
        }
        let path = std::env::var_os("PATH").unwrap_or_default();
        for (tool, package) in TOOLS {
            if !std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()) {
                return Err(format!(
                    "`{tool}` is not on the PATH: install the Debian package {package}"
                ));
            }
        }
        if !std::path::Path::new("/proc/self/ns/net").exists() {
            return Err("this kernel has no network namespaces".into());
        }
        Ok(())
    }

    /// For tests: true where labs can run; false, with the reason printed, where they cannot.
    /// With `FIELDCAST_REQUIRE_LAB` set (CI sets it), a lab that cannot run panics with the
    /// reason instead, so that a lab test never passes by skipping there.
    pub fn available_or_skip() -> bool {
        match NetLab::available() {
            Ok(()) => true,
            Err(reason) if std::env::var_os(REQUIRE_LAB_ENV).is_some() => {
                panic!("{REQUIRE_LAB_ENV} is set, and the network lab cannot run: {reason}")
            }
            Err(reason) => {
                println!("skipped: {reason}");
                eprintln!("skipped: {reason}");
                false
            }
        }
    }

    /// Builds the lab, puts the profile's first step in force and starts its timeline; every
    /// applied change is logged (`log::info!`).
    pub fn start(profile: Profile) -> Result<NetLab, NetLabError> {
        NetLab::start_observed(profile, Box::new(|c| log::info!("netlab: {c}")))
    }

    /// Like [`NetLab::start`], calling `observer` with every applied change instead of logging.
    pub fn start_observed(
        profile: Profile,
        mut observer: ChangeObserver,
    ) -> Result<NetLab, NetLabError> {
        NetLab::available().map_err(NetLabError::Unavailable)?;
        let id = format!(
            "{PREFIX}{}-{}",
            std::process::id(),
            NEXT_LAB.fetch_add(1, Ordering::Relaxed)
        );
        let mut lab = NetLab {
            publisher: format!("{id}-pub"),
            ingest: format!("{id}-ing"),
            created: Vec::new(),
            profile,
            shaper: None,
            relay_delay_ms: Arc::new(AtomicU32::new(0)),
            relays: Mutex::new(Vec::new()),
            timeline: None,
            history: History::default(),
            started: Instant::now(),
        };
        // On any error below, dropping `lab` removes what was made so far.
        for name in [lab.publisher.clone(), lab.ingest.clone()] {
            ns::add(&name)?;
            lab.created.push(name);
        }
        lab.wire()?;
        let shaper = Arc::new(Shaper::new(
            &lab.publisher,
            &lab.ingest,
            lab.relay_delay_ms.clone(),
        ));
        lab.shaper = Some(shaper.clone());
        lab.started = Instant::now();
        let first = lab
            .profile
            .change(0)
            .expect("a valid profile has a first step");
        let applied = timeline::apply(&shaper, first, lab.started, &lab.history, &mut observer);
        if let Some(error) = applied.error {
            return Err(NetLabError::Shaping(error));
        }
        if lab.profile.change(1).is_some() {
            lab.timeline = Some(Timeline::start(
                lab.profile.clone(),
                shaper,
                lab.started,
                lab.history.clone(),
                observer,
            )?);
        }
        Ok(lab)
    }

    /// The veth pair, the /30 and loopback in both namespaces.
    fn wire(&self) -> Result<(), NetLabError> {
        let (p, i) = (self.publisher.as_str(), self.ingest.as_str());
        let ip = |args: &[&str]| ns::tool("ip", args, None).map(drop);
        ip(&[
            "link",
            "add",
            "name",
            PUBLISHER_IF,
            "netns",
            p,
            "type",
            "veth",
            "peer",
            "name",
            INGEST_IF,
            "netns",
            i,
        ])?;
        for (ns, dev, addr) in [
            (p, PUBLISHER_IF, PUBLISHER_ADDR),
            (i, INGEST_IF, INGEST_ADDR),
        ] {
            ip(&["-n", ns, "addr", "add", &format!("{addr}/30"), "dev", dev])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
            // One packet per buffer, as a real path's bottleneck sees them: with segmentation
            // offload, TCP hands the veth buffers of up to 64 KB, which the rate limiter splits
            // and drops by the dozen when its queue is short (a 300 ms queue at 1000 kbit/s
            // holds 25 packets), and the flow stalls on retransmission timeouts.
            ip(&["-n", ns, "link", "set", "dev", dev, "gso_max_segs", "1"])?;
            ip(&["-n", ns, "link", "set", dev, "up"])?;
        }
        Ok(())
    }

    /// The publisher namespace's name (for `ip netns exec`).
    pub fn publisher_ns(&self) -> &str {
        &self.publisher
    }

    /// The ingest namespace's name.
    pub fn ingest_ns(&self) -> &str {
        &self.ingest
    }

    /// The publisher's address on the lab link.
    pub fn publisher_addr(&self) -> IpAddr {
        PUBLISHER_ADDR.into()
    }

    /// The address the publisher dials to reach the ingest side; ports come from [`NetLab::forward`].
    pub fn ingest_addr(&self) -> IpAddr {
        INGEST_ADDR.into()
    }

    /// Exposes a TCP and UDP server listening on the ingest namespace's loopback (or on all of
    /// its addresses) at `port`, through a relay that adds the profile's delay when netem is
    /// missing; returns the address the publisher dials (TCP and UDP).
    pub fn forward(&self, port: u16) -> Result<SocketAddr, NetLabError> {
        let delay = match self.shaping_mode() {
            ShapingMode::Relay => self.relay_delay_ms.clone(),
            ShapingMode::Netem => Arc::new(AtomicU32::new(0)),
        };
        let relay = Relay::start(&self.ingest, self.ingest_addr(), port, delay)?;
        let addr = relay.addr();
        self.relays
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(relay);
        Ok(addr)
    }

    /// Makes `cmd` run inside the publisher namespace (the child enters it before exec).
    pub fn command_in_publisher<'c>(
        &self,
        cmd: &'c mut Command,
    ) -> Result<&'c mut Command, NetLabError> {
        command_in(&self.publisher, cmd)
    }

    /// Makes `cmd` run inside the ingest namespace.
    pub fn command_in_ingest<'c>(
        &self,
        cmd: &'c mut Command,
    ) -> Result<&'c mut Command, NetLabError> {
        command_in(&self.ingest, cmd)
    }

    /// Runs `f` on a thread inside the publisher namespace: sockets it makes, and processes it
    /// spawns, live there.
    pub fn in_publisher<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T, NetLabError> {
        ns::run_in(&self.publisher, f)
    }

    /// Runs `f` on a thread inside the ingest namespace, e.g. to start a server there.
    pub fn in_ingest<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T, NetLabError> {
        ns::run_in(&self.ingest, f)
    }

    /// How delay and loss are emulated on this kernel.
    pub fn shaping_mode(&self) -> ShapingMode {
        self.shaper
            .as_ref()
            .map_or(ShapingMode::Relay, |s| s.mode())
    }

    /// The profile the lab runs.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// When the profile's time 0 was (its first step was applied just after).
    pub fn started(&self) -> Instant {
        self.started
    }

    /// The changes applied so far, oldest first.
    pub fn applied(&self) -> Vec<AppliedChange> {
        let history = self.history.lock().unwrap_or_else(|p| p.into_inner());
        history.iter().cloned().collect()
    }
}

impl Drop for NetLab {
    fn drop(&mut self) {
        drop(self.timeline.take());
        self.relays
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        for name in self.created.drain(..) {
            ns::remove(&name);
        }
    }
}

fn command_in<'c>(ns: &str, cmd: &'c mut Command) -> Result<&'c mut Command, NetLabError> {
    let fd = ns::open(ns)?;
    // SAFETY: the hook only calls setns(2), which is async-signal-safe, on an fd opened
    // (close-on-exec) before the fork.
    unsafe { cmd.pre_exec(move || ns::enter(&fd)) };
    Ok(cmd)
}

/// Removes labs left behind by processes that are gone (killed before they could clean up):
/// namespaces named with the lab prefix whose PID no longer runs. Returns the names removed.
pub fn cleanup_stale() -> Vec<String> {
    let mut removed = Vec::new();
    for name in ns::list() {
        let Some(pid) = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<libc::pid_t>().ok())
        else {
            continue;
        };
        // SAFETY: kill(2) with signal 0 only checks whether the PID exists.
        let gone = unsafe { libc::kill(pid, 0) } != 0
            && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
        if gone {
            ns::remove(&name);
            removed.push(name);
        }
    }
    removed
}
