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
    /// The ingest URL could not be parsed or lacks a part the protocol needs. `url` is redacted
    /// as far as it can be read (no stream key; see [`crate::uplink::target::redact_url`]).
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
    /// The ingest server could not be reached or refused the connection. `url` is redacted
    /// (no stream key); `cause` says what failed.
    #[error("cannot reach ingest {url}: {reason}")]
    IngestUnreachable {
        url: String,
        cause: IngestCause,
        reason: String,
    },
    /// The connection to the ingest broke while live (the session reconnects by itself).
    #[error("lost the connection to ingest {url}: {reason}")]
    IngestDisconnected {
        url: String,
        cause: IngestCause,
        reason: String,
    },
    /// The ingest refused the stream for good (authentication, stream key): not retried.
    #[error("ingest {url} rejected the stream: {reason} (check the stream key and credentials)")]
    IngestRejected {
        url: String,
        cause: IngestCause,
        reason: String,
    },
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

/// Why a connection to the ingest failed. Only [`IngestCause::Rejected`] is final while live;
/// every other cause is retried with backoff once the stream has been on air.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestCause {
    /// Nothing accepts connections at the address (connection refused).
    Refused,
    /// The host could not be reached: its name does not resolve, there is no route, or it did
    /// not answer in time.
    Unreachable,
    /// The TLS session of an `rtmps://` ingest could not be set up.
    Tls(TlsFailure),
    /// The server did not complete the RTMP handshake, or answered with bytes that are not RTMP.
    Handshake,
    /// The server refused the stream key or the credentials.
    Rejected,
    /// The server still holds an earlier publish of the same stream; it frees it by itself.
    AlreadyPublishing,
    /// The connection broke after it was set up (reset or closed by the peer).
    Broken,
    /// No byte reached the ingest for too long while media waited.
    Stalled,
    /// Anything else the network sink reported.
    Other,
}

/// Why a TLS session with the ingest failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsFailure {
    /// The server's certificate is not valid for the host name in the URL.
    NameMismatch,
    /// The server's certificate does not chain to a trusted root (an unknown or private CA; add
    /// it with `SessionConfigBuilder::ingest_ca_pem`).
    UnknownIssuer,
    /// The server's certificate has expired or is not valid yet.
    Expired,
    /// Any other TLS failure (protocol, alert, bad certificate).
    Other,
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
