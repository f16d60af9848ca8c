//! The error type of fieldcast-core: every failure a caller can act on has its own variant.

use crate::commerce::CommerceError;
use crate::events::SessionState;
use crate::frame::FrameError;

/// Convenience alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in a live session, with a message a developer can act on.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// The session configuration is inconsistent or out of range.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// The ingest URL could not be parsed or lacks a part the protocol needs.
    #[error("invalid ingest URL `{url}`: {reason}")]
    InvalidUrl { url: String, reason: String },
    /// The ingest URL uses a protocol FieldCast does not publish to.
    #[error("unsupported ingest URL scheme `{scheme}://` (use rtmp://, rtmps:// or srt://)")]
    UnsupportedScheme { scheme: String },
    /// A GStreamer element the pipeline needs is not installed. The message says what to do on
    /// this platform: add `plugin` to the app's GStreamer build on a phone, install the Debian
    /// `package` on a desktop.
    #[error(
        "GStreamer element `{element}` is missing: {}",
        crate::media::platform::install_hint(
            crate::media::platform::Platform::CURRENT,
            .plugin.as_deref(),
            .package,
        )
    )]
    MissingElement {
        element: String,
        /// The GStreamer plugin that provides it (`None` when FieldCast does not know it).
        plugin: Option<String>,
        /// The Debian package that ships it.
        package: String,
    },
    /// GStreamer itself could not be initialised.
    #[error("GStreamer could not be initialised: {0}")]
    Init(String),
    /// The app must initialise GStreamer before FieldCast uses it (Android), and has not.
    #[error("GStreamer is not initialised: call {call} before using FieldCast")]
    NotInitialized { call: &'static str },
    /// The chosen capture source (camera, microphone, file) cannot be opened.
    #[error("source unavailable: {0}")]
    SourceUnavailable(String),
    /// The ingest server could not be reached or refused the connection.
    #[error("cannot reach ingest {url}: {reason}")]
    IngestUnreachable { url: String, reason: String },
    /// The connection to the ingest broke while live (the session reconnects by itself).
    #[error("lost the connection to ingest {url}: {reason}")]
    IngestDisconnected { url: String, reason: String },
    /// The ingest refused the stream for good (authentication, stream key): not retried.
    #[error("ingest {url} rejected the stream: {reason} (check the stream key and credentials)")]
    IngestRejected { url: String, reason: String },
    /// An app-pushed frame or audio buffer was rejected; the session goes on.
    #[error("rejected media: {0}")]
    InvalidFrame(#[from] FrameError),
    /// The call is not allowed in the session's current state.
    #[error("cannot {action} while the session is {state:?}")]
    InvalidState {
        state: SessionState,
        action: &'static str,
    },
    /// The local recording could not be written.
    #[error("recording failed: {0}")]
    Recording(String),
    /// Any other error reported by the media pipeline.
    #[error("media pipeline error in `{element}`: {message}")]
    Pipeline { element: String, message: String },
    /// A catalog, sale or pin operation failed (see the inner error).
    #[error(transparent)]
    Commerce(#[from] CommerceError),
    /// A file or directory operation failed.
    #[error("{context}: {message}")]
    Io { context: String, message: String },
}

impl Error {
    /// Wraps an I/O error with what was being done.
    pub fn io(context: impl Into<String>, err: &std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            message: err.to_string(),
        }
    }
}
