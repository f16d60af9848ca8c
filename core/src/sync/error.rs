//! Errors of the sync calls that wait for a result (start, catalog refresh, upload, discard).

use crate::commerce::CommerceError;
use crate::store::StoreError;
use crate::store::outbox::InvalidTransition;

/// Why a sync call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyncError {
    /// The configuration cannot work (base URL, timeouts).
    #[error("invalid sync configuration: {0}")]
    InvalidConfig(String),
    /// Another relay already sends this store's outbox.
    #[error("a sync engine is already running on this store; stop it first")]
    AlreadyRunning,
    /// The relay's thread or runtime could not start.
    #[error("cannot start the sync engine: {0}")]
    Start(String),
    /// The engine stopped before the call finished; it goes on where it was at the next start.
    #[error("the sync engine stopped before this finished; start it again to continue")]
    Stopped,
    /// The platform refused the token (401) or its rights (403); the relay is paused.
    #[error("the platform refused the credentials (HTTP {status}): {message}; set a new token")]
    Unauthorized {
        /// 401 or 403.
        status: u16,
        /// The platform's message.
        message: String,
    },
    /// The platform could not be reached or kept failing.
    #[error("cannot reach the platform: {0}")]
    Network(String),
    /// The platform refused the request for good.
    #[error("the platform refused the request (HTTP {status} {code}): {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// Machine code.
        code: String,
        /// Human message.
        message: String,
    },
    /// The platform's answer cannot be read.
    #[error("unexpected answer from the platform: {0}")]
    InvalidResponse(String),
    /// A local file cannot be read.
    #[error("cannot read {path}: {message}")]
    File {
        /// The file.
        path: String,
        /// What failed.
        message: String,
    },
    /// The outbox record is not in a state that allows the call.
    #[error(transparent)]
    InvalidTransition(#[from] InvalidTransition),
    /// The local database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The platform's catalog holds a product the local catalog cannot take.
    #[error(transparent)]
    Commerce(#[from] CommerceError),
}
