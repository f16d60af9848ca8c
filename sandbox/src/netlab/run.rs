//! `fieldcast netlab run PROFILE -- COMMAND`: a lab with nginx-rtmp in the ingest namespace and
//! COMMAND in the publisher namespace.

use std::os::unix::process::ExitStatusExt;
use std::process::Command;

use super::NetLabError;
use super::lab::{NetLab, cleanup_stale};
use super::profile::Profile;
use crate::ingest::LocalIngest;

/// The environment variable that gives COMMAND the ingest URL, `rtmp://ADDR:PORT/live`.
pub const INGEST_ENV: &str = "FIELDCAST_NETLAB_INGEST";

/// Runs `argv` in the publisher namespace of a lab shaped by `profile` (a file or a shipped
/// name), with nginx-rtmp in the ingest namespace and its URL in [`INGEST_ENV`]; prints each
/// change of conditions to stderr as it is applied, tears everything down, and returns
/// COMMAND's exit code (128 + the signal if a signal ended it). While COMMAND runs, SIGINT and
/// SIGQUIT are left to it (as system(3) does), so Ctrl-C ends COMMAND and the lab still cleans up.
pub fn run_command(profile: &str, argv: &[String]) -> Result<i32, NetLabError> {
    let (program, args) = argv.split_first().ok_or(NetLabError::NoCommand)?;
    let profile = Profile::load(profile)?;
    for name in cleanup_stale() {
        eprintln!("netlab: removed the stale namespace {name}");
    }
    eprintln!("netlab: profile {}: {}", profile.name, profile.description);
    let lab = NetLab::start_observed(profile, Box::new(|c| eprintln!("netlab: {c}")))?;
    let ingest = lab.in_ingest(LocalIngest::start)??;
    let url = format!("rtmp://{}/live", lab.forward(ingest.port())?);
    eprintln!(
        "netlab: shaping by {:?}; publisher namespace {}; {INGEST_ENV}={url}",
        lab.shaping_mode(),
        lab.publisher_ns()
    );
    let mut cmd = Command::new(program);
    cmd.args(args).env(INGEST_ENV, &url);
    lab.command_in_publisher(&mut cmd)?;
    let mut child = cmd.spawn()?;
    // SAFETY: signal(2) swaps dispositions; the previous ones are put back below.
    let previous =
        unsafe { [libc::SIGINT, libc::SIGQUIT].map(|s| (s, libc::signal(s, libc::SIG_IGN))) };
    let status = child.wait();
    for (signal, handler) in previous {
        // SAFETY: restores the disposition saved above.
        unsafe { libc::signal(signal, handler) };
    }
    let status = status?;
    drop(ingest);
    drop(lab);
    Ok(status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}
