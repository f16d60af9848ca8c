//! FieldCast core: capture, encode and publish a live stream from a phone or a desktop.
//!
//! ```no_run
//! use fieldcast_core::{LiveSession, SessionConfig, StreamProfile};
//! let config = SessionConfig::builder("rtmp://127.0.0.1:1935/live/farm")
//!     .profile(StreamProfile::P480)
//!     .build()?;
//! let session = LiveSession::new(config)?;
//! let mut events = session.subscribe();
//! session.start()?;
//! std::thread::sleep(std::time::Duration::from_secs(10));
//! session.stop();
//! session.wait(None)?;
//! # Ok::<(), fieldcast_core::Error>(())
//! ```
//!
//! The cargo feature `qa` (off by default) adds what only QA and the desktop tools use, never the
//! library inside a phone app: the latency stamp (`SessionConfigBuilder::latency_stamp`, module
//! `probe`) and the probe's player (module `receiver`), which plays a stream back from the ingest.

pub mod commerce;
pub mod config;
pub mod delivery;
pub mod error;
pub mod events;
pub mod frame;
#[cfg(test)]
mod frame_props;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod media;
#[cfg(feature = "qa")]
pub mod probe;
#[cfg(feature = "qa")]
pub mod receiver;
pub mod session;
pub mod state;
pub mod store;
pub mod sync;
pub mod uplink;
pub mod worker;

pub use commerce::{
    Catalog, CommerceError, NewSale, Pin, Pins, Product, RemoteProduct, Sale, Sales,
};
pub use config::{
    AppAudioFormat, AppVideoFormat, EncoderPreference, RecordConfig, SessionConfig, Source,
    StreamProfile, X264Preset,
};
pub use delivery::Delivery;
pub use error::{Error, IngestCause, Result, TlsFailure};
pub use events::{FixedBitrate, LiveStats, SessionEvent, SessionState};
pub use frame::{FrameError, PixelFormat, Plane, VideoFrame, packed_planes};
pub use media::sources::PushOutcome;
#[cfg(feature = "qa")]
pub use probe::LatencyReport;
pub use session::LiveSession;
pub use store::outbox::{OutboxCounts, OutboxItem, OutboxState, RecordKind};
pub use store::{Store, StoreError};
pub use sync::{
    BackoffPolicy, PauseReason, QueueItem, QueueState, SyncConfig, SyncEngine, SyncError,
    SyncEvent, UploadResult,
};
