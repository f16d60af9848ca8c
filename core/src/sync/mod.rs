//! The outbox relay and the replay upload: what the phone recorded reaches the platform exactly once,
//! through drop-outs, server errors, restarts and kills.
//!
//! - Each outbox record is posted with `Idempotency-Key` = its id (the sale id, the pin event id),
//!   with the body frozen when it was written, so a repeated request is never counted twice.
//! - 2xx: synced, the platform's answer kept as a receipt. A business refusal (409/422 `oversold`,
//!   `price_changed`, `idempotency_key_mismatch`, `unknown_product`…): conflicted, reported with
//!   [`SyncEvent::Conflict`], never retried automatically (the platform stores its answer under the
//!   key, so the same request would get the same answer); the app shows it to the farmer and may
//!   [`SyncEngine::discard_conflicted`] it. 409 `idempotency_in_flight`, 5xx, timeouts, dropped
//!   connections and unreadable answers: retried with exponential backoff and full jitter.
//!   401/403 from the platform: the whole relay pauses ([`SyncEvent::Paused`]) until
//!   [`SyncEngine::resume`] or [`SyncEngine::set_token`].
//! - Only the platform's own voice refuses a record: a JSON `{code, message}` body declared as JSON.
//!   A captive portal or an operator's proxy answering in its place (a login page, a redirect, which
//!   is never followed, 407, 511, a TLS certificate for another name) pauses the relay with
//!   [`PauseReason::CaptivePortal`]: one record at a time is tried again with backoff, and the
//!   pause lifts by itself as soon as the platform answers as itself.
//! - Every request carries the phone's clock in its `Date` header, so the platform can tell how far
//!   off the phone's clock is; the records keep the phone's own times.
//! - Per-product order: a record is not sent while an earlier record with the same product is
//!   pending, in flight or waiting to retry. A conflicted record does not hold back later ones:
//!   they are independent sales the platform judges on their own.
//! - Records in flight when the process died are sent again when the store is opened.
//!
//! Everything runs on a small tokio runtime on the relay's own thread; the public calls only queue
//! a command or read the store, except [`SyncEngine::upload_file`] and
//! [`SyncEngine::refresh_catalog`], which wait for their result.

mod backoff;
mod engine;
mod error;
mod platform;
mod queue;
mod relay;
mod response;
#[cfg(test)]
mod response_props;
mod schedule;
mod shared;
mod tus;
mod upload;

use std::fmt;
use std::time::Duration;

pub use backoff::{Backoff, BackoffPolicy};
pub use engine::SyncEngine;
pub use error::SyncError;
#[cfg(feature = "fuzzing")]
pub(crate) use response::{Answer, Outcome, classify};
pub use upload::UploadResult;

use crate::store::outbox::{OutboxItem, RecordKind};

/// Where and how the relay talks to the platform.
#[derive(Clone)]
pub struct SyncConfig {
    /// The platform API root, e.g. `https://api.example.com` (no trailing `/v1`).
    pub base_url: String,
    /// The bearer token.
    pub token: String,
    /// Longest wait for one request, connection included (default 10 s).
    pub request_timeout: Duration,
    /// Retry delays (default 0.5 s to 60 s).
    pub backoff: BackoffPolicy,
    /// Records of different products sent at the same time (default 4).
    pub max_concurrent_sends: usize,
    /// Bytes per upload request (default 256 KiB).
    pub upload_chunk_size: usize,
    /// CA certificates (PEM) trusted for an `https://` platform besides the built-in roots, for a
    /// platform behind a private CA (default none).
    pub platform_ca_pem: Option<String>,
}

impl SyncConfig {
    /// A configuration with the defaults.
    pub fn new(base_url: impl Into<String>, token: impl Into<String>) -> Self {
        SyncConfig {
            base_url: base_url.into(),
            token: token.into(),
            request_timeout: Duration::from_secs(10),
            backoff: BackoffPolicy::default(),
            max_concurrent_sends: 4,
            upload_chunk_size: 256 * 1024,
            platform_ca_pem: None,
        }
    }
}

impl fmt::Debug for SyncConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncConfig")
            .field("base_url", &self.base_url)
            .field("token", &"<redacted>")
            .field("request_timeout", &self.request_timeout)
            .field("backoff", &self.backoff)
            .field("max_concurrent_sends", &self.max_concurrent_sends)
            .field("upload_chunk_size", &self.upload_chunk_size)
            .field("platform_ca_pem", &self.platform_ca_pem.is_some())
            .finish()
    }
}

/// Why the relay is not sending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PauseReason {
    /// The app reported no network ([`SyncEngine::set_network_available`]).
    Offline,
    /// The platform answered 401: the token is missing, wrong or expired; set a new one.
    Unauthorized {
        /// The platform's message.
        message: String,
    },
    /// The platform answered 403: the token may not write (e.g. a read-only token).
    Forbidden {
        /// The platform's message.
        message: String,
    },
    /// A captive portal or the network's proxy answers instead of the platform: the phone must
    /// sign in to the network. Records are still tried, one at a time with backoff, and the pause
    /// lifts by itself once the platform answers ([`SyncEngine::sync_now`] tries at once).
    CaptivePortal {
        /// What answered (e.g. `HTTP 302: redirected to http://portal/login`).
        message: String,
    },
}

impl fmt::Display for PauseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PauseReason::Offline => f.write_str("no network"),
            PauseReason::Unauthorized { message } => {
                write!(f, "the platform refused the token (401): {message}")
            }
            PauseReason::Forbidden { message } => {
                write!(f, "the token may not send records (403): {message}")
            }
            PauseReason::CaptivePortal { message } => write!(
                f,
                "sign in to the network (a captive portal or proxy answers instead of the platform): {message}"
            ),
        }
    }
}

/// Something the relay did, for the app to show.
#[derive(Debug, Clone, PartialEq)]
pub enum SyncEvent {
    /// The platform accepted a record (`replayed`: it had already, this was its stored answer).
    Synced {
        /// The record id.
        record_id: String,
        /// What it is.
        kind: RecordKind,
        /// The platform answered with `Idempotent-Replayed: true`.
        replayed: bool,
    },
    /// The platform refused a record for good; show `message` to the farmer.
    Conflict {
        /// The record id.
        record_id: String,
        /// Machine code (`oversold`, `price_changed`…).
        code: String,
        /// Human message from the platform.
        message: String,
    },
    /// An attempt failed in a way that may pass; the next one goes after `delay`.
    Retrying {
        /// The record id (or the upload id).
        record_id: String,
        /// Failed attempts in a row.
        attempt: u32,
        /// Wait before the next attempt.
        delay: Duration,
        /// What went wrong.
        reason: String,
    },
    /// The relay stopped sending.
    Paused {
        /// Why.
        reason: PauseReason,
    },
    /// The relay sends again.
    Resumed,
    /// Bytes of a replay upload the platform has.
    UploadProgress {
        /// The local upload id.
        upload_id: String,
        /// Bytes on the platform.
        sent: u64,
        /// File size.
        total: u64,
    },
}

/// The outbox at a glance, with every record not yet settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueState {
    /// Waiting to be sent.
    pub pending: u64,
    /// On the wire.
    pub in_flight: u64,
    /// Refused by the platform, waiting for the app.
    pub conflicted: u64,
    /// Accepted by the platform.
    pub synced: u64,
    /// Dropped by the app after a conflict.
    pub discarded: u64,
    /// Why nothing is sent, if so.
    pub paused_reason: Option<PauseReason>,
    /// The pending, in-flight and conflicted records, oldest first.
    pub items: Vec<QueueItem>,
}

/// One record of [`QueueState::items`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueItem {
    /// The record.
    pub record: OutboxItem,
    /// Time left before its next attempt, while it waits after a failure.
    pub retry_in: Option<Duration>,
}
