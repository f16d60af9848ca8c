//! Network namespaces: made and removed with `ip netns`, entered by threads with setns(2), and
//! the `ip` / `tc` / `nft` runner the rest of the lab uses.

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::NetLabError;

/// Where `ip netns add` mounts named namespaces.
const NETNS_DIR: &str = "/run/netns";

/// Runs a tool (`ip`, `tc`, `nft`...) with `args`, feeding `stdin` if given; its stdout, or an
/// error carrying the command line and its stderr.
pub(crate) fn tool(
    program: &str,
    args: &[&str],
    stdin: Option<&str>,
) -> Result<String, NetLabError> {
    let line = || format!("{program} {}", args.join(" "));
    let mut child = Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| NetLabError::Tool {
            command: line(),
            output: e.to_string(),
        })?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(NetLabError::Tool {
            command: line(),
            output: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// Creates the named namespace.
pub(crate) fn add(name: &str) -> Result<(), NetLabError> {
    tool("ip", &["netns", "add", name], None).map(drop)
}

/// Kills the processes still inside the namespace (by PID: SIGTERM, SIGKILL after 1 s), then
/// deletes it, which also removes its interfaces and firewall rules.
pub(crate) fn remove(name: &str) {
    let pids = || -> Vec<libc::pid_t> {
        tool("ip", &["netns", "pids", name], None)
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    };
    let mut signal = libc::SIGTERM;
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let left = pids();
        if left.is_empty() {
            break;
        }
        if Instant::now() >= deadline {
            signal = libc::SIGKILL;
        }
        for pid in left {
            // SAFETY: kill(2) by PID on a process that `ip netns pids` found inside our namespace.
            unsafe { libc::kill(pid, signal) };
        }
        std::thread::sleep(Duration::from_millis(50));
        if signal == libc::SIGKILL {
            break;
        }
    }
    if let Err(e) = tool("ip", &["netns", "delete", name], None) {
        log::warn!("netlab: {e}");
    }
}

/// The names of all named network namespaces.
pub(crate) fn list() -> Vec<String> {
    tool("ip", &["netns", "list"], None)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// An open handle on a named namespace, for setns(2).
pub(crate) fn open(name: &str) -> std::io::Result<OwnedFd> {
    Ok(File::open(format!("{NETNS_DIR}/{name}"))?.into())
}

/// Moves the calling thread into the namespace `fd` refers to.
pub(crate) fn enter(fd: &OwnedFd) -> std::io::Result<()> {
    // SAFETY: setns(2) on an open namespace fd; it only changes the calling thread's namespace.
    if unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Runs `f` on a new thread inside the namespace and returns its result; sockets made by `f`
/// stay in that namespace wherever they are used later.
pub(crate) fn run_in<T: Send>(name: &str, f: impl FnOnce() -> T + Send) -> Result<T, NetLabError> {
    let fd = open(name)?;
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                enter(&fd)?;
                Ok(f())
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// Starts a named thread inside the namespace; fails if the thread cannot enter it.
pub(crate) fn spawn_in(
    name: &str,
    thread: &str,
    f: impl FnOnce() + Send + 'static,
) -> Result<JoinHandle<()>, NetLabError> {
    let fd = open(name)?;
    let (entered_tx, entered) = std::sync::mpsc::sync_channel(1);
    let handle = std::thread::Builder::new()
        .name(thread.to_string())
        .spawn(move || {
            let result = enter(&fd);
            let ok = result.is_ok();
            let _ = entered_tx.send(result);
            if ok {
                f();
            }
        })?;
    match entered.recv() {
        Ok(Ok(())) => Ok(handle),
        Ok(Err(e)) => Err(e.into()),
        Err(_) => Err(std::io::Error::other("namespace thread ended before entering").into()),
    }
}
