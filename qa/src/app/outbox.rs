//! The outbox reported every second, as an app's "waiting to sync" badge would follow it.

use std::time::Duration;

use fieldcast_core::Store;
use fieldcast_core::probe::now_ms;

use super::report_error;
use crate::events::AppEvent;

/// Time between outbox reports.
const OUTBOX_EVERY: Duration = Duration::from_secs(1);

/// Prints the outbox every second on a thread of its own until dropped, as an app's
/// "waiting to sync" badge would follow it.
pub struct OutboxReports {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl OutboxReports {
    /// Starts reporting the outbox of `store`.
    pub fn start(store: Store) -> Result<OutboxReports, String> {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("outbox-reports".into())
            .spawn(move || {
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(OUTBOX_EVERY)
                {
                    match store.outbox_counts() {
                        Ok(counts) => AppEvent::Outbox {
                            wall_ms: now_ms(),
                            pending: counts.pending,
                            in_flight: counts.in_flight,
                            synced: counts.synced,
                            conflicted: counts.conflicted,
                        }
                        .print(),
                        Err(e) => report_error("read the outbox", &e.to_string()),
                    }
                }
            })
            .map_err(|e| format!("outbox thread: {e}"))?;
        Ok(OutboxReports {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for OutboxReports {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
