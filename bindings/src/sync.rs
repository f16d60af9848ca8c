//! The sync engine: the outbox relay to the platform and the replay upload.

use std::sync::Arc;
use std::time::Duration;

use fieldcast_core as core;

use crate::commerce::{OutboxState, Store};
use crate::error::{FieldCastError, thread_error};
use crate::session::Subscription;

/// Where and how the relay talks to the platform.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SyncConfig {
    /// The platform API root, e.g. `https://api.example.com`.
    pub base_url: String,
    /// The bearer token.
    pub token: String,
    /// Longest wait for one request, ms.
    #[uniffi(default = 10000)]
    pub request_timeout_ms: u64,
    /// Shortest retry delay, ms.
    #[uniffi(default = 500)]
    pub backoff_min_ms: u64,
    /// Longest retry delay, ms.
    #[uniffi(default = 60000)]
    pub backoff_max_ms: u64,
    /// CA certificates (PEM) trusted for an `https://` platform besides the built-in roots.
    #[uniffi(default = None)]
    pub platform_ca_pem: Option<String>,
}

impl From<SyncConfig> for core::SyncConfig {
    fn from(c: SyncConfig) -> Self {
        let mut config = core::SyncConfig::new(c.base_url, c.token);
        config.request_timeout = Duration::from_millis(c.request_timeout_ms);
        config.backoff = core::BackoffPolicy {
            min: Duration::from_millis(c.backoff_min_ms),
            max: Duration::from_millis(c.backoff_max_ms),
        };
        config.platform_ca_pem = c.platform_ca_pem;
        config
    }
}

/// Why the relay is not sending.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum PauseReason {
    /// The app reported no network.
    Offline,
    /// The platform refused the token (401): set a new one.
    Unauthorized { message: String },
    /// The token may not write (403).
    Forbidden { message: String },
    /// A captive portal or the network's proxy answers instead of the platform: ask the user to
    /// sign in to the network. Lifts by itself once the platform answers again.
    CaptivePortal { message: String },
}

impl From<core::PauseReason> for PauseReason {
    fn from(r: core::PauseReason) -> Self {
        match r {
            core::PauseReason::Offline => PauseReason::Offline,
            core::PauseReason::Unauthorized { message } => PauseReason::Unauthorized { message },
            core::PauseReason::Forbidden { message } => PauseReason::Forbidden { message },
            core::PauseReason::CaptivePortal { message } => PauseReason::CaptivePortal { message },
        }
    }
}

/// Something the relay did, for the app to show.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum SyncEvent {
    /// The platform accepted a record (`replayed`: it had already).
    Synced {
        record_id: String,
        is_sale: bool,
        replayed: bool,
    },
    /// The platform refused a record for good (`oversold`, `price_changed`...): show `message`.
    Conflict {
        record_id: String,
        code: String,
        message: String,
    },
    /// An attempt failed in a way that may pass; the next goes after `delay_ms`.
    Retrying {
        record_id: String,
        attempt: u32,
        delay_ms: u64,
        reason: String,
    },
    /// The relay stopped sending.
    Paused { reason: PauseReason },
    /// The relay sends again.
    Resumed,
    /// Bytes of a replay upload the platform has.
    UploadProgress {
        upload_id: String,
        sent: u64,
        total: u64,
    },
}

impl From<core::SyncEvent> for SyncEvent {
    fn from(e: core::SyncEvent) -> Self {
        match e {
            core::SyncEvent::Synced {
                record_id,
                kind,
                replayed,
            } => SyncEvent::Synced {
                record_id,
                is_sale: kind == core::RecordKind::Sale,
                replayed,
            },
            core::SyncEvent::Conflict {
                record_id,
                code,
                message,
            } => SyncEvent::Conflict {
                record_id,
                code,
                message,
            },
            core::SyncEvent::Retrying {
                record_id,
                attempt,
                delay,
                reason,
            } => SyncEvent::Retrying {
                record_id,
                attempt,
                delay_ms: delay.as_millis() as u64,
                reason,
            },
            core::SyncEvent::Paused { reason } => SyncEvent::Paused {
                reason: reason.into(),
            },
            core::SyncEvent::Resumed => SyncEvent::Resumed,
            core::SyncEvent::UploadProgress {
                upload_id,
                sent,
                total,
            } => SyncEvent::UploadProgress {
                upload_id,
                sent,
                total,
            },
        }
    }
}

/// One record not yet settled.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct QueueItem {
    /// The record id (the sale or pin event id).
    pub record_id: String,
    /// True for a sale, false for a pin event.
    pub is_sale: bool,
    /// Where it is.
    pub state: OutboxState,
    /// Requests started so far.
    pub attempts: u32,
    /// The last transient failure.
    pub last_error: Option<String>,
    /// The platform's refusal code, when conflicted.
    pub conflict_code: Option<String>,
    /// The platform's refusal message, when conflicted.
    pub conflict_message: Option<String>,
    /// Ms before the next attempt, while waiting after a failure.
    pub retry_in_ms: Option<u64>,
}

impl From<core::QueueItem> for QueueItem {
    fn from(i: core::QueueItem) -> Self {
        let r = i.record;
        QueueItem {
            record_id: r.record_id,
            is_sale: r.kind == core::RecordKind::Sale,
            state: r.state.into(),
            attempts: r.attempts,
            last_error: r.last_error,
            conflict_code: r.conflict.as_ref().map(|c| c.code.clone()),
            conflict_message: r.conflict.map(|c| c.message),
            retry_in_ms: i.retry_in.map(|d| d.as_millis() as u64),
        }
    }
}

/// The outbox at a glance.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct QueueState {
    /// Waiting to be sent.
    pub pending: u64,
    /// On the wire.
    pub in_flight: u64,
    /// Refused, waiting for the app.
    pub conflicted: u64,
    /// Accepted.
    pub synced: u64,
    /// Dropped by the app.
    pub discarded: u64,
    /// Why nothing is sent, if so.
    pub paused_reason: Option<PauseReason>,
    /// The unsettled records, oldest first.
    pub items: Vec<QueueItem>,
}

impl From<core::QueueState> for QueueState {
    fn from(q: core::QueueState) -> Self {
        QueueState {
            pending: q.pending,
            in_flight: q.in_flight,
            conflicted: q.conflicted,
            synced: q.synced,
            discarded: q.discarded,
            paused_reason: q.paused_reason.map(PauseReason::from),
            items: q.items.into_iter().map(QueueItem::from).collect(),
        }
    }
}

/// A finished replay upload.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct UploadResult {
    /// The local upload id.
    pub upload_id: String,
    /// The platform's upload URL.
    pub upload_url: String,
    /// Bytes uploaded in total.
    pub size: u64,
    /// Bytes the platform already had when the call started.
    pub resumed_from: u64,
}

impl From<core::UploadResult> for UploadResult {
    fn from(u: core::UploadResult) -> Self {
        UploadResult {
            upload_id: u.upload_id,
            upload_url: u.upload_url,
            size: u.size,
            resumed_from: u.resumed_from,
        }
    }
}

/// Receives the relay's events, in order, on a FieldCast thread.
#[uniffi::export(with_foreign)]
pub trait SyncListener: Send + Sync {
    /// One event.
    fn on_event(&self, event: SyncEvent);
}

/// Sends the store's outbox to the platform exactly once, through drop-outs and restarts.
#[derive(uniffi::Object)]
pub struct SyncEngine {
    inner: core::SyncEngine,
}

#[uniffi::export]
impl SyncEngine {
    /// Starts relaying `store`'s outbox (one engine per store).
    #[uniffi::constructor]
    pub fn start(store: Arc<Store>, config: SyncConfig) -> Result<Arc<Self>, FieldCastError> {
        Ok(Arc::new(SyncEngine {
            inner: core::SyncEngine::start(store.core(), config.into())?,
        }))
    }

    /// Delivers every event from now on to `listener` until the subscription is cancelled.
    pub fn subscribe(
        &self,
        listener: Arc<dyn SyncListener>,
    ) -> Result<Arc<Subscription>, FieldCastError> {
        let delivery =
            core::Delivery::spawn("fieldcast-sync-events", self.inner.subscribe(), move |e| {
                listener.on_event(SyncEvent::from(e))
            })
            .map_err(thread_error)?;
        Ok(Subscription::new(delivery))
    }

    /// Whether the device has a network (from the app's connectivity callback).
    pub fn set_network_available(&self, available: bool) {
        self.inner.set_network_available(available)
    }

    /// Sends what waits now instead of after its backoff.
    pub fn sync_now(&self) {
        self.inner.sync_now()
    }

    /// Resumes after a pause for credentials.
    pub fn resume(&self) {
        self.inner.resume()
    }

    /// Replaces the token (after a refresh) and resumes.
    pub fn set_token(&self, token: String) {
        self.inner.set_token(token)
    }

    /// The outbox at a glance.
    pub fn queue_state(&self) -> Result<QueueState, FieldCastError> {
        Ok(self.inner.queue_state()?.into())
    }

    /// Blocks until nothing is pending or in flight, or `timeout_ms` passes; true when idle.
    pub fn wait_idle(&self, timeout_ms: u64) -> bool {
        self.inner.wait_idle(Duration::from_millis(timeout_ms))
    }

    /// Drops a conflicted record after the farmer saw it.
    pub fn discard_conflicted(&self, record_id: String) -> Result<(), FieldCastError> {
        Ok(self.inner.discard_conflicted(&record_id)?)
    }

    /// Replaces the local catalog with the platform's (keeping local pictures); blocks until
    /// done and returns how many products it holds.
    pub fn refresh_catalog(&self) -> Result<u64, FieldCastError> {
        Ok(self.inner.refresh_catalog()? as u64)
    }

    /// Uploads a replay file for a live session, resuming an earlier upload; blocks until done.
    pub fn upload_replay(
        &self,
        path: String,
        session_id: String,
    ) -> Result<UploadResult, FieldCastError> {
        Ok(self.inner.upload_file(path, &session_id)?.into())
    }

    /// Stops the relay; records on the wire go back to pending. Idempotent.
    pub fn stop(&self) {
        self.inner.stop()
    }
}
