//! A session whose threads cannot start fails with the reason instead of staying `Connecting`.
//!
//! The device's limit is real: each case runs in a child process (this test binary again) that
//! moves itself into a cgroup of its own whose `pids.max` leaves room for no more threads (or
//! for one more), then calls `start()`. This needs root and the cgroup v1 `pids` controller;
//! without them each test prints `skipped: <reason>` and passes, or fails where
//! `FIELDCAST_REQUIRE_LAB` is set (CI).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use fieldcast_core::*;
use fieldcast_sandbox::netlab::REQUIRE_LAB_ENV;

/// Where the child finds its cgroup and how many more threads it may start.
const CHILD_ENV: &str = "FIELDCAST_START_FAILURE_CGROUP";
const SLACK_ENV: &str = "FIELDCAST_START_FAILURE_SLACK";
/// The cgroup v1 hierarchy of the `pids` controller.
const PIDS_ROOT: &str = "/sys/fs/cgroup/pids";

/// A cgroup of this process's own, removed on drop.
struct PidsCgroup(PathBuf);

impl PidsCgroup {
    /// A new cgroup, or why there cannot be one here.
    fn create(name: &str) -> Result<PidsCgroup, String> {
        // SAFETY: geteuid(2) has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err("limiting threads needs root (a pids cgroup)".into());
        }
        let path = Path::new(PIDS_ROOT).join(format!("fieldcast-{name}-{}", std::process::id()));
        std::fs::create_dir(&path)
            .map_err(|e| format!("cannot create the cgroup {}: {e}", path.display()))?;
        Ok(PidsCgroup(path))
    }
}

impl Drop for PidsCgroup {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir(&self.0) {
            eprintln!("cannot remove {}: {e}", self.0.display());
        }
    }
}

/// Runs `test` of this binary in a child inside a fresh pids cgroup that lets it start `slack`
/// more threads; the child's own assertions decide. False (printed) where it cannot run.
fn run_limited(test: &str, slack: u32) -> bool {
    let cgroup = match PidsCgroup::create(test) {
        Ok(cgroup) => cgroup,
        Err(reason) if std::env::var_os(REQUIRE_LAB_ENV).is_some() => {
            panic!("{REQUIRE_LAB_ENV} is set, and this test cannot run: {reason}")
        }
        Err(reason) => {
            println!("skipped: {reason}");
            return false;
        }
    };
    let out = Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, &cgroup.0)
        .env(SLACK_ENV, slack.to_string())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "the limited child failed:\n{text}");
    assert!(text.contains("1 passed"), "the child ran no test:\n{text}");
    true
}

/// In the child: joins the cgroup, caps it at the threads running now plus the slack, calls
/// `start()` and checks the session failed with `expected` in its message.
fn start_limited(cgroup: &Path, slack: u32, expected: &str) {
    let session = LiveSession::new(
        SessionConfig::builder("rtmp://127.0.0.1:9/live/limited")
            .profile(StreamProfile::P270)
            .build()
            .unwrap(),
    )
    .unwrap();
    let mut events = session.subscribe();
    let write = |file: &str, value: String| {
        std::fs::write(cgroup.join(file), &value)
            .unwrap_or_else(|e| panic!("{file} <- {value}: {e}"))
    };
    write("cgroup.procs", std::process::id().to_string());
    let running: u32 = std::fs::read_to_string(cgroup.join("pids.current"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    write("pids.max", (running + slack).to_string());

    let err = session
        .start()
        .expect_err("start() with no thread to spare");
    write("pids.max", "max".into());
    println!("start() failed: {err}");
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
    assert!(err.to_string().contains(expected), "{err}");
    assert_eq!(session.state(), SessionState::Failed);
    let waited = session.wait(Some(Duration::from_secs(1)));
    assert_eq!(waited.unwrap_err(), err, "wait() returns the start failure");
    let mut seen = Vec::new();
    while let Ok(event) = events.try_recv() {
        seen.push(event);
    }
    assert!(
        seen.iter().any(|e| matches!(
            e,
            SessionEvent::StateChanged {
                from: SessionState::Connecting,
                to: SessionState::Failed
            }
        )),
        "the app hears Connecting -> Failed: {seen:?}"
    );
    assert!(
        seen.iter()
            .any(|e| matches!(e, SessionEvent::Error(e) if *e == err)),
        "the app hears the error: {seen:?}"
    );
    session.stop();
    assert_eq!(
        session.state(),
        SessionState::Failed,
        "stop() after a failure"
    );
}

/// The child's cgroup and slack, when this process is the limited child.
fn child() -> Option<(PathBuf, u32)> {
    let cgroup = std::env::var_os(CHILD_ENV)?;
    let slack = std::env::var(SLACK_ENV).ok()?.parse().ok()?;
    Some((PathBuf::from(cgroup), slack))
}

#[test]
fn no_thread_for_the_uplink_fails_the_session() {
    match child() {
        Some((cgroup, slack)) => start_limited(&cgroup, slack, "uplink thread"),
        None => {
            run_limited("no_thread_for_the_uplink_fails_the_session", 0);
        }
    }
}

#[test]
fn no_thread_for_the_session_fails_it_and_stops_the_uplink() {
    match child() {
        Some((cgroup, slack)) => start_limited(&cgroup, slack, "session thread"),
        None => {
            run_limited("no_thread_for_the_session_fails_it_and_stops_the_uplink", 1);
        }
    }
}
