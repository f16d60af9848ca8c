//! A child process of a QA run (the seller's app, the viewer) whose stdout lines go to a callback as they come and whose
//! stderr goes to a file. It dies with the thread that spawned it (`PR_SET_PDEATHSIG`), and is
//! stopped by its PID (SIGTERM, then SIGKILL) when dropped, so nothing outlives the run.

use std::io::Write;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{ChildStdin, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a child gets between SIGTERM and SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// A running child; see the module.
pub struct Child {
    name: &'static str,
    child: Option<std::process::Child>,
    stdin: Option<ChildStdin>,
    status: Option<ExitStatus>,
    reader: Option<JoinHandle<()>>,
}

impl Child {
    /// Spawns `cmd` with its stdout read line by line into `on_line` on a thread of its own and
    /// its stderr written to `stderr_log`.
    pub fn spawn(
        name: &'static str,
        cmd: &mut Command,
        stderr_log: &Path,
        on_line: impl FnMut(&str) + Send + 'static,
    ) -> std::io::Result<Child> {
        cmd.stdin(Stdio::null());
        Child::start(name, cmd, stderr_log, on_line)
    }

    /// Like [`Child::spawn`], with the child's stdin kept open for [`Child::send`].
    pub fn spawn_commanded(
        name: &'static str,
        cmd: &mut Command,
        stderr_log: &Path,
        on_line: impl FnMut(&str) + Send + 'static,
    ) -> std::io::Result<Child> {
        cmd.stdin(Stdio::piped());
        Child::start(name, cmd, stderr_log, on_line)
    }

    fn start(
        name: &'static str,
        cmd: &mut Command,
        stderr_log: &Path,
        mut on_line: impl FnMut(&str) + Send + 'static,
    ) -> std::io::Result<Child> {
        let log = std::fs::File::create(stderr_log)?;
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
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .map_err(|e| std::io::Error::new(e.kind(), format!("{name} does not start: {e}")))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let reader = std::thread::Builder::new()
            .name(format!("{name}-stdout"))
            .spawn(move || {
                // Until the child closes its stdout; a line that is not UTF-8 is kept, mangled.
                for line in BufReader::new(stdout).split(b'\n').map_while(Result::ok) {
                    on_line(&String::from_utf8_lossy(&line));
                }
            })?;
        Ok(Child {
            name,
            stdin: child.stdin.take(),
            child: Some(child),
            status: None,
            reader: Some(reader),
        })
    }

    /// The child's process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(std::process::Child::id)
    }

    /// The child's exit status once it has exited (it is reaped then), else `None`.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        if self.status.is_none()
            && let Some(child) = self.child.as_mut()
            && let Ok(Some(status)) = child.try_wait()
        {
            self.status = Some(status);
            self.child = None;
            self.join_reader();
        }
        self.status
    }

    /// Waits up to `timeout` for the child to exit by itself; its status, or `None` if it runs on.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exited() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Writes `line` to the child's stdin (see [`Child::spawn_commanded`]).
    pub fn send(&mut self, line: &str) -> std::io::Result<()> {
        let stdin = self.stdin.as_mut().ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                format!("{} takes no input", self.name),
            )
        })?;
        stdin
            .write_all(line.as_bytes())
            .and_then(|()| stdin.flush())
    }

    /// Closes the child's stdin: it reads the end of its input.
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Kills the child at once with SIGKILL by its PID (as the system or a power cut would),
    /// reaps it and waits until its stdout has been read to the end.
    pub fn kill(&mut self) {
        self.stdin = None;
        if let Some(mut child) = self.child.take() {
            log::info!("killing {} (pid {})", self.name, child.id());
            // std's kill sends SIGKILL to the child's PID.
            let _ = child.kill();
            self.status = child.wait().ok();
        }
        self.join_reader();
    }

    /// Stops the child if it still runs (SIGTERM by its PID, SIGKILL after 3 s), reaps it and
    /// waits until its stdout has been read to the end.
    pub fn stop(&mut self) {
        self.stdin = None;
        if let Some(mut child) = self.child.take() {
            log::info!("stopping {} (pid {})", self.name, child.id());
            fieldcast_sandbox::ingest::terminate(&mut child, STOP_GRACE);
        }
        self.join_reader();
    }

    fn join_reader(&mut self) {
        if let Some(reader) = self.reader.take()
            && reader.join().is_err()
        {
            eprintln!("the reader of {}'s output panicked", self.name);
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        self.stop();
    }
}
