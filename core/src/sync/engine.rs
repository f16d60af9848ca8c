//! [`SyncEngine`]: the handle the app holds. It owns the relay's thread and runtime.

use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::sync_channel;
use std::time::{Duration, Instant};

use tokio::sync::{broadcast, mpsc};

use super::error::SyncError;
use super::platform::Platform;
use super::relay::{Command, Relay};
use super::shared::Shared;
use super::upload::UploadResult;
use super::{QueueItem, QueueState, SyncConfig, SyncEvent};
use crate::commerce::sales;
use crate::store::outbox::{self, RecordKind, Transition};
use crate::store::{Store, StoreError};
use crate::worker::Worker;

/// How often [`SyncEngine::wait_idle`] looks at the queue.
const IDLE_POLL: Duration = Duration::from_millis(20);

/// Sends a store's outbox to the platform in the background. One engine per store; dropping it
/// stops it (records on the wire go back to pending and are sent at the next start).
pub struct SyncEngine {
    store: Store,
    shared: Arc<Shared>,
    commands: mpsc::UnboundedSender<Command>,
    thread: Worker,
}

impl SyncEngine {
    /// Starts the relay on its own thread and runtime; it begins with whatever the outbox holds.
    pub fn start(store: Store, config: SyncConfig) -> Result<SyncEngine, SyncError> {
        let shared = Arc::new(Shared::new());
        let platform = Platform::new(&config, shared.clone())?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| SyncError::Start(format!("runtime: {e}")))?;
        if !store.attach_relay() {
            return Err(SyncError::AlreadyRunning);
        }
        let (commands, receiver) = mpsc::unbounded_channel();
        let relay = Relay::new(store.clone(), shared.clone(), platform, &config, receiver);
        let relay_store = store.clone();
        let thread = std::thread::Builder::new()
            .name("fieldcast-sync".into())
            .spawn(move || {
                runtime.block_on(relay.run());
                relay_store.detach_relay();
            })
            .map_err(|e| {
                store.detach_relay();
                SyncError::Start(format!("thread: {e}"))
            })?;
        Ok(SyncEngine {
            store,
            shared,
            commands,
            thread: Worker::new(thread),
        })
    }

    /// A new subscription to the relay's events (a slow subscriber loses the oldest ones).
    pub fn subscribe(&self) -> broadcast::Receiver<SyncEvent> {
        self.shared.subscribe()
    }

    /// Tells the relay whether the phone has a network: `false` holds every request back
    /// (uploads included); `true` cuts any retry wait short and sends at once.
    pub fn set_network_available(&self, available: bool) {
        self.shared.set_network_available(available);
        self.wake();
    }

    /// Sends what is waiting now, cutting retry waits short, behind a captive portal too (nothing
    /// goes while offline or paused for credentials).
    pub fn sync_now(&self) {
        self.shared.cut_waits_short();
        self.wake();
    }

    /// Lifts a pause caused by a refused token (401/403) and sends again.
    pub fn resume(&self) {
        self.shared.resume();
        self.wake();
    }

    /// Uses a new bearer token from now on and lifts a credentials pause.
    pub fn set_token(&self, token: impl Into<String>) {
        // The relay resumes once it has switched tokens, so no request goes with the old one.
        let _ = self.commands.send(Command::SetToken(token.into()));
    }

    /// Counts per state, why nothing is sent (if so), and every record not settled yet.
    pub fn queue_state(&self) -> Result<QueueState, SyncError> {
        let (counts, items) = self
            .store
            .read(|c| Ok::<_, StoreError>((outbox::counts(c)?, outbox::open_items(c)?)))?;
        let now = Instant::now();
        let items = items
            .into_iter()
            .map(|record| QueueItem {
                retry_in: self
                    .shared
                    .ready_at(&record.record_id)
                    .filter(|_| record.state == outbox::OutboxState::Pending)
                    .map(|t| t.saturating_duration_since(now)),
                record,
            })
            .collect();
        Ok(QueueState {
            pending: counts.pending,
            in_flight: counts.in_flight,
            conflicted: counts.conflicted,
            synced: counts.synced,
            discarded: counts.discarded,
            paused_reason: self.shared.paused_reason(),
            items,
        })
    }

    /// Waits until nothing is pending or in flight (conflicted records do not count); false if
    /// `timeout` passed first.
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            match self.store.outbox_counts() {
                Ok(c) if c.pending == 0 && c.in_flight == 0 => return true,
                Ok(_) => {}
                Err(e) => log::warn!("sync: cannot read the outbox: {e}"),
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            std::thread::sleep(IDLE_POLL.min(deadline - now));
        }
    }

    /// Drops a conflicted record for good; a dropped sale gives its stock back, since the
    /// platform never counted it.
    pub fn discard_conflicted(&self, record_id: &str) -> Result<(), SyncError> {
        self.store.write(|tx| {
            let kind = outbox::kind_of(tx, record_id)?.ok_or_else(|| StoreError::NotFound {
                what: format!("outbox record {record_id}"),
            })?;
            outbox::apply(tx, record_id, &Transition::Discard)??;
            if kind == RecordKind::Sale {
                sales::restore_stock(tx, record_id)?;
            }
            Ok(())
        })
    }

    /// Replaces the local catalog's platform fields with `GET /v1/products` (see
    /// [`crate::commerce::Catalog::apply_remote`]); returns how many products were written.
    /// Blocks the calling thread until done.
    pub fn refresh_catalog(&self) -> Result<usize, SyncError> {
        let (reply, result) = sync_channel(1);
        self.command(Command::RefreshCatalog(reply))?;
        result.recv().map_err(|_| SyncError::Stopped)?
    }

    /// Uploads a replay file for a live session, resuming an earlier upload of the same file;
    /// progress comes as [`SyncEvent::UploadProgress`]. Blocks the calling thread until the
    /// file is on the platform, the upload fails, or the engine stops ([`SyncError::Stopped`]).
    pub fn upload_file(
        &self,
        path: impl AsRef<Path>,
        session_id: &str,
    ) -> Result<UploadResult, SyncError> {
        let (reply, result) = sync_channel(1);
        self.command(Command::Upload {
            path: path.as_ref().to_path_buf(),
            session_id: session_id.to_string(),
            reply,
        })?;
        result.recv().map_err(|_| SyncError::Stopped)?
    }

    /// Stops the relay and waits for its thread: requests on the wire are abandoned (their records
    /// go back to pending), waiting uploads and refreshes return [`SyncError::Stopped`].
    pub fn stop(&self) {
        let _ = self.commands.send(Command::Stop);
        if !self.thread.join("sync relay") {
            self.store.detach_relay();
        }
    }

    fn wake(&self) {
        let _ = self.commands.send(Command::Wake);
    }

    fn command(&self, command: Command) -> Result<(), SyncError> {
        self.commands.send(command).map_err(|_| SyncError::Stopped)
    }
}

impl Drop for SyncEngine {
    fn drop(&mut self) {
        self.stop();
    }
}

impl std::fmt::Debug for SyncEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncEngine")
            .field("store", &self.store)
            .field("paused_reason", &self.shared.paused_reason())
            .finish()
    }
}
