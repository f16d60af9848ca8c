//! FieldCast for Kotlin and Swift: uniffi wrappers of `fieldcast-core`, and nothing else.
//!
//! Objects wrap the core's types (`Arc` inside), records and enums mirror the core's with `From`,
//! and every failure is one [`FieldCastError`]. Listeners are foreign traits delivered on a thread
//! of their own (never under a core lock); subscribing returns a [`Subscription`] that stops the
//! delivery when cancelled or dropped. Times are epoch milliseconds, durations milliseconds.
//!
//! Generated bindings are not committed: `make bindings` builds this library and runs the
//! `uniffi-bindgen` of `bindings/bindgen` (the same uniffi version) in library mode.

mod commerce;
mod error;
mod session;
mod sync;
mod types;

pub use commerce::{NewSale, OutboxCounts, Pin, Product, Sale, Store};
pub use error::{
    CommerceFailure, FieldCastError, IngestCause, IngestFailure, StorageFailure, SyncFailure,
};
pub use session::{LiveSession, SessionListener, Subscription};
pub use sync::{
    PauseReason, QueueItem, QueueState, SyncConfig, SyncEngine, SyncEvent, SyncListener,
    UploadResult,
};
pub use types::*;

uniffi::setup_scaffolding!();

/// The version of the FieldCast library.
#[uniffi::export]
pub fn fieldcast_version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}
