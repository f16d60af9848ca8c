//! Keeps the nginx-rtmp ingest running: when nginx dies it is restarted on the same port (so
//! publish URLs handed out stay valid), with bounded attempts and exponential backoff.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::ingest::{IngestError, LocalIngest, ViewerOutput, free_port};

/// How often nginx is checked.
const POLL: Duration = Duration::from_millis(100);
/// Restart attempts in a row before giving up.
const MAX_ATTEMPTS: u32 = 5;
/// The wait before the first restart attempt; doubled after each failed attempt.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// How long a restarted nginx must stay up for its restarts to be forgiven.
const STABLE_AFTER: Duration = Duration::from_secs(30);

/// A supervised nginx-rtmp ingest on a fixed loopback port.
pub struct IngestSupervisor {
    shared: Arc<Shared>,
    stop: Mutex<Option<(Sender<()>, JoinHandle<()>)>>,
}

/// Called after nginx exited, before it is restarted: its publishers are gone.
pub type OnExit = Box<dyn Fn() + Send + Sync>;

struct Shared {
    port: u16,
    recordings: PathBuf,
    viewers: ViewerOutput,
    on_exit: OnExit,
    ingest: Mutex<Option<LocalIngest>>,
    failure: Mutex<Option<String>>,
}

impl Shared {
    fn ingest(&self) -> MutexGuard<'_, Option<LocalIngest>> {
        self.ingest.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn failure(&self) -> MutexGuard<'_, Option<String>> {
        self.failure.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl IngestSupervisor {
    /// Starts nginx on a free loopback port, recording into `recordings` and writing HLS for
    /// `viewers`, and watches it; `on_exit` runs each time nginx is found dead.
    pub fn start(
        recordings: &Path,
        viewers: ViewerOutput,
        on_exit: OnExit,
    ) -> Result<Self, IngestError> {
        let port = free_port()?;
        let ingest = LocalIngest::start_with_viewers(port, recordings, &viewers)?;
        log::info!(
            "sandbox: RTMP ingest (nginx pid {}) on 127.0.0.1:{port}",
            ingest.pid().unwrap_or_default()
        );
        let shared = Arc::new(Shared {
            port,
            recordings: recordings.to_path_buf(),
            viewers,
            on_exit,
            ingest: Mutex::new(Some(ingest)),
            failure: Mutex::new(None),
        });
        let (tx, rx) = mpsc::channel();
        let watched = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("fieldcast-ingest-supervisor".into())
            .spawn(move || supervise(&watched, &rx))?;
        Ok(IngestSupervisor {
            shared,
            stop: Mutex::new(Some((tx, thread))),
        })
    }

    /// Where to publish: `rtmp://127.0.0.1:PORT/live`.
    pub fn url(&self) -> String {
        format!("rtmp://127.0.0.1:{}/live", self.shared.port)
    }

    /// Why the ingest is down for good, once restarts have been given up.
    pub fn failure(&self) -> Option<String> {
        self.shared.failure().clone()
    }

    /// The current nginx process id.
    pub fn pid(&self) -> Option<u32> {
        self.shared.ingest().as_ref().and_then(LocalIngest::pid)
    }

    /// Where the HLS of the stream published under `key` is written (`index.m3u8`, `<n>.ts`).
    pub fn hls_dir(&self, key: &str) -> PathBuf {
        self.shared.viewers.hls_dir.join(key)
    }

    /// Where the stream published under `key` is recorded.
    pub fn recording(&self, key: &str) -> PathBuf {
        self.shared.recordings.join(format!("{key}.flv"))
    }

    /// Stops watching and stops nginx (SIGTERM by PID, then SIGKILL).
    pub fn stop(&self) {
        let stop = self.stop.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some((tx, thread)) = stop {
            drop(tx);
            let _ = thread.join();
        }
        if let Some(mut ingest) = self.shared.ingest().take() {
            ingest.stop();
        }
    }
}

impl Drop for IngestSupervisor {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The watch loop; returns when `stop` is dropped or restarts are given up.
fn supervise(shared: &Shared, stop: &mpsc::Receiver<()>) {
    let mut attempts = 0;
    let mut started = Instant::now();
    loop {
        if stop.recv_timeout(POLL) != Err(RecvTimeoutError::Timeout) {
            return;
        }
        if attempts > 0 && started.elapsed() >= STABLE_AFTER {
            attempts = 0;
        }
        let exited = shared.ingest().as_mut().is_none_or(LocalIngest::exited);
        if !exited {
            continue;
        }
        let log = shared
            .ingest()
            .take()
            .map(|dead| dead.log())
            .unwrap_or_default();
        log::warn!(
            "sandbox: the RTMP ingest on port {} exited; restarting it. nginx log tail: {}",
            shared.port,
            tail(&log)
        );
        (shared.on_exit)();
        loop {
            attempts += 1;
            if attempts > MAX_ATTEMPTS {
                let reason = format!(
                    "nginx exited and {MAX_ATTEMPTS} restarts on port {} failed",
                    shared.port
                );
                log::error!("sandbox: {reason}; live sessions cannot be created any more");
                *shared.failure() = Some(reason);
                return;
            }
            let backoff = FIRST_BACKOFF * 2u32.pow(attempts - 1);
            if stop.recv_timeout(backoff) != Err(RecvTimeoutError::Timeout) {
                return;
            }
            match LocalIngest::start_with_viewers(shared.port, &shared.recordings, &shared.viewers)
            {
                Ok(ingest) => {
                    log::info!(
                        "sandbox: RTMP ingest restarted (nginx pid {}) on 127.0.0.1:{} after {attempts} attempt(s)",
                        ingest.pid().unwrap_or_default(),
                        shared.port
                    );
                    *shared.ingest() = Some(ingest);
                    started = Instant::now();
                    break;
                }
                Err(e) => log::warn!("sandbox: restarting the RTMP ingest failed: {e}"),
            }
        }
    }
}

/// The last few lines of a log, stream keys masked.
fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    without_stream_keys(&lines[lines.len().saturating_sub(3)..].join(" | "))
}

/// nginx-rtmp's log with the values of `name='…'` (the stream key of a publish or a play) and
/// `args='…'` (its query) masked as `***`.
fn without_stream_keys(log: &str) -> String {
    let mut out = String::with_capacity(log.len());
    let mut rest = log;
    while let Some(at) = ["name='", "args='"]
        .iter()
        .filter_map(|field| rest.find(field).map(|i| i + field.len()))
        .min()
    {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let end = rest.find('\'').unwrap_or(rest.len());
        if end > 0 {
            out.push_str("***");
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_tail_masks_stream_keys() {
        let log = "a\nb\n[info] *2 connect: app='live' args='' tc_url='rtmp://127.0.0.1:1/live'\n\
                   [info] *2 publish: name='sk_live_1' args='t=sk_live_2' type=live\n\
                   [info] *2 play: name='sk_live_3";
        let shown = tail(log);
        assert!(!shown.contains("sk_live"), "{shown}");
        assert!(
            shown.contains("app='live' args='' tc_url='rtmp://127.0.0.1:1/live'"),
            "{shown}"
        );
        assert!(
            shown.contains("publish: name='***' args='***' type=live"),
            "{shown}"
        );
        assert!(shown.ends_with("play: name='***"), "{shown}");
    }
}
