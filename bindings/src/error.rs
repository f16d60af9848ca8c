//! The one public error of the bindings: few variants, each one a thing the app can act on.

use fieldcast_core as core;

use crate::types::SessionState;

/// Why an ingest connection failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum IngestFailure {
    /// The ingest could not be reached before the first connection.
    Unreachable,
    /// The connection broke while live (the session reconnects by itself).
    Disconnected,
    /// The ingest refused the stream key or credentials: final.
    Rejected,
}

/// What made an ingest connection fail (`IngestFailure` says when). Only `Rejected` is final
/// while live; the session retries every other cause by itself once the stream has been on air.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum IngestCause {
    /// Nothing accepts connections at the address (connection refused).
    Refused,
    /// The host could not be reached: its name does not resolve, there is no route, or it did not
    /// answer in time.
    Unreachable,
    /// TLS (`rtmps://`): the server's certificate is not valid for the host name in the URL.
    TlsNameMismatch,
    /// TLS (`rtmps://`): the server's certificate does not chain to a trusted CA (an unknown or
    /// private CA: give it to the session in `SessionConfig`'s `ingest_ca_pem`, `ingestCaPem`).
    TlsUnknownIssuer,
    /// TLS (`rtmps://`): the server's certificate has expired or is not valid yet.
    TlsExpired,
    /// TLS (`rtmps://`): any other TLS failure (protocol, alert, bad certificate).
    TlsOther,
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
    /// Anything else the network reported.
    Other,
}

impl From<core::IngestCause> for IngestCause {
    fn from(cause: core::IngestCause) -> Self {
        use core::TlsFailure;
        match cause {
            core::IngestCause::Refused => IngestCause::Refused,
            core::IngestCause::Unreachable => IngestCause::Unreachable,
            core::IngestCause::Tls(TlsFailure::NameMismatch) => IngestCause::TlsNameMismatch,
            core::IngestCause::Tls(TlsFailure::UnknownIssuer) => IngestCause::TlsUnknownIssuer,
            core::IngestCause::Tls(TlsFailure::Expired) => IngestCause::TlsExpired,
            core::IngestCause::Tls(TlsFailure::Other) => IngestCause::TlsOther,
            core::IngestCause::Handshake => IngestCause::Handshake,
            core::IngestCause::Rejected => IngestCause::Rejected,
            core::IngestCause::AlreadyPublishing => IngestCause::AlreadyPublishing,
            core::IngestCause::Broken => IngestCause::Broken,
            core::IngestCause::Stalled => IngestCause::Stalled,
            core::IngestCause::Other => IngestCause::Other,
        }
    }
}

/// Why a commerce call was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum CommerceFailure {
    /// A field has a value the call cannot accept (see `field`).
    InvalidField,
    /// The quantity is below 1.
    InvalidQuantity,
    /// The product is not in the local catalog.
    UnknownProduct,
    /// Not enough stock; sell fewer or confirm an oversell.
    InsufficientStock,
    /// No pin with this id.
    UnknownPin,
    /// The pin was already ended.
    PinAlreadyEnded,
}

/// Why the local database failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum StorageFailure {
    /// The phone's storage is full; nothing was written.
    DiskFull,
    /// The database file is damaged.
    Corrupt,
    /// Another process holds the database.
    Busy,
    /// The file cannot be opened, read or written, or a record is missing or refused.
    Other,
}

/// Why a sync call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum SyncFailure {
    /// The sync configuration cannot work.
    InvalidConfig,
    /// Another sync engine already runs on this store.
    AlreadyRunning,
    /// The engine stopped before the call finished.
    Stopped,
    /// The platform refused the token (401/403): set a new one.
    Unauthorized,
    /// The platform could not be reached.
    Network,
    /// The platform refused the request for good.
    Refused,
    /// The platform's answer or a local file could not be read, or the call does not apply.
    Other,
}

/// Everything that can fail in FieldCast, with a message for developers in `detail`.
#[derive(Debug, Clone, PartialEq, thiserror::Error, uniffi::Error)]
pub enum FieldCastError {
    /// The session configuration is inconsistent or out of range.
    #[error("{detail}")]
    InvalidConfig { detail: String },
    /// The ingest URL cannot be used (bad syntax, missing part, unsupported scheme).
    #[error("{detail}")]
    InvalidUrl { detail: String },
    /// A pushed frame or audio buffer was rejected (format, size, strides); the session goes on.
    #[error("{detail}")]
    InvalidFrame { detail: String },
    /// The call is not allowed in the session's current state (e.g. on an ended session).
    #[error("{detail}")]
    InvalidState { state: SessionState, detail: String },
    /// A part FieldCast needs is missing (a GStreamer element: `detail` names the plugin to add
    /// to the app's GStreamer build) or could not be initialised (on Android: GStreamer was not
    /// initialised by `FieldCast.init(context)` first).
    #[error("{detail}")]
    MissingComponent { component: String, detail: String },
    /// The camera, microphone or file cannot be opened.
    #[error("{detail}")]
    SourceUnavailable { detail: String },
    /// The ingest could not be reached, the connection broke, or the key was rejected: `failure`
    /// says when, `cause` what (`ingestCause` in Kotlin, where `cause` is `Throwable`'s).
    #[error("{detail}")]
    Ingest {
        failure: IngestFailure,
        cause: IngestCause,
        detail: String,
    },
    /// The media pipeline or the recording failed.
    #[error("{detail}")]
    Media { detail: String },
    /// A catalog, sale or pin call was refused.
    #[error("{detail}")]
    Commerce {
        failure: CommerceFailure,
        detail: String,
    },
    /// The local database failed.
    #[error("{detail}")]
    Storage {
        failure: StorageFailure,
        detail: String,
    },
    /// A sync call failed.
    #[error("{detail}")]
    Sync {
        failure: SyncFailure,
        detail: String,
    },
    /// The object was closed by the app; make a new one.
    #[error("{detail}")]
    Closed { detail: String },
    /// An app listener failed in a way FieldCast did not expect.
    #[error("{detail}")]
    Unexpected { detail: String },
}

impl From<core::Error> for FieldCastError {
    fn from(err: core::Error) -> Self {
        let detail = err.to_string();
        match err {
            core::Error::InvalidConfig(_) => FieldCastError::InvalidConfig { detail },
            core::Error::InvalidUrl { .. } | core::Error::UnsupportedScheme { .. } => {
                FieldCastError::InvalidUrl { detail }
            }
            core::Error::MissingElement { element, .. } => FieldCastError::MissingComponent {
                component: element,
                detail,
            },
            core::Error::Init(_) | core::Error::NotInitialized { .. } => {
                FieldCastError::MissingComponent {
                    component: "gstreamer".into(),
                    detail,
                }
            }
            core::Error::SourceUnavailable(_) => FieldCastError::SourceUnavailable { detail },
            core::Error::IngestUnreachable { cause, .. } => FieldCastError::Ingest {
                failure: IngestFailure::Unreachable,
                cause: cause.into(),
                detail,
            },
            core::Error::IngestDisconnected { cause, .. } => FieldCastError::Ingest {
                failure: IngestFailure::Disconnected,
                cause: cause.into(),
                detail,
            },
            core::Error::IngestRejected { cause, .. } => FieldCastError::Ingest {
                failure: IngestFailure::Rejected,
                cause: cause.into(),
                detail,
            },
            core::Error::InvalidFrame(_) => FieldCastError::InvalidFrame { detail },
            core::Error::InvalidState { state, .. } => FieldCastError::InvalidState {
                state: state.into(),
                detail,
            },
            core::Error::Recording(_) | core::Error::Pipeline { .. } | core::Error::Io { .. } => {
                FieldCastError::Media { detail }
            }
            core::Error::Commerce(e) => e.into(),
        }
    }
}

impl From<core::CommerceError> for FieldCastError {
    fn from(err: core::CommerceError) -> Self {
        let detail = err.to_string();
        let failure = match err {
            core::CommerceError::Store(e) => return e.into(),
            core::CommerceError::Invalid { .. } => CommerceFailure::InvalidField,
            core::CommerceError::InvalidQuantity { .. } => CommerceFailure::InvalidQuantity,
            core::CommerceError::UnknownProduct { .. } => CommerceFailure::UnknownProduct,
            core::CommerceError::InsufficientStock { .. } => CommerceFailure::InsufficientStock,
            core::CommerceError::UnknownPin { .. } => CommerceFailure::UnknownPin,
            core::CommerceError::PinAlreadyEnded { .. } => CommerceFailure::PinAlreadyEnded,
        };
        FieldCastError::Commerce { failure, detail }
    }
}

impl From<core::StoreError> for FieldCastError {
    fn from(err: core::StoreError) -> Self {
        let failure = match err {
            core::StoreError::DiskFull => StorageFailure::DiskFull,
            core::StoreError::Corrupt { .. } => StorageFailure::Corrupt,
            core::StoreError::Busy { .. } => StorageFailure::Busy,
            _ => StorageFailure::Other,
        };
        FieldCastError::Storage {
            failure,
            detail: err.to_string(),
        }
    }
}

impl From<core::SyncError> for FieldCastError {
    fn from(err: core::SyncError) -> Self {
        let detail = err.to_string();
        let failure = match err {
            core::SyncError::Store(e) => return e.into(),
            core::SyncError::InvalidConfig(_) => SyncFailure::InvalidConfig,
            core::SyncError::AlreadyRunning => SyncFailure::AlreadyRunning,
            core::SyncError::Stopped => SyncFailure::Stopped,
            core::SyncError::Unauthorized { .. } => SyncFailure::Unauthorized,
            core::SyncError::Network(_) => SyncFailure::Network,
            core::SyncError::Refused { .. } => SyncFailure::Refused,
            _ => SyncFailure::Other,
        };
        FieldCastError::Sync { failure, detail }
    }
}

impl From<uniffi::UnexpectedUniFFICallbackError> for FieldCastError {
    fn from(err: uniffi::UnexpectedUniFFICallbackError) -> Self {
        FieldCastError::Unexpected { detail: err.reason }
    }
}

/// A spawned thread that could not start.
pub(crate) fn thread_error(err: std::io::Error) -> FieldCastError {
    FieldCastError::Media {
        detail: format!("cannot start a FieldCast thread: {err}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "rtmps://ingest.example:443/live/…";

    #[test]
    fn every_ingest_cause_crosses_with_its_tls_failure() {
        use fieldcast_core::TlsFailure;
        let pairs = [
            (core::IngestCause::Refused, IngestCause::Refused),
            (core::IngestCause::Unreachable, IngestCause::Unreachable),
            (
                core::IngestCause::Tls(TlsFailure::NameMismatch),
                IngestCause::TlsNameMismatch,
            ),
            (
                core::IngestCause::Tls(TlsFailure::UnknownIssuer),
                IngestCause::TlsUnknownIssuer,
            ),
            (
                core::IngestCause::Tls(TlsFailure::Expired),
                IngestCause::TlsExpired,
            ),
            (
                core::IngestCause::Tls(TlsFailure::Other),
                IngestCause::TlsOther,
            ),
            (core::IngestCause::Handshake, IngestCause::Handshake),
            (core::IngestCause::Rejected, IngestCause::Rejected),
            (
                core::IngestCause::AlreadyPublishing,
                IngestCause::AlreadyPublishing,
            ),
            (core::IngestCause::Broken, IngestCause::Broken),
            (core::IngestCause::Stalled, IngestCause::Stalled),
            (core::IngestCause::Other, IngestCause::Other),
        ];
        for (cause, expected) in pairs {
            assert_eq!(IngestCause::from(cause), expected, "{cause:?}");
        }
    }

    #[test]
    fn ingest_errors_carry_when_and_what() {
        let unreachable = core::Error::IngestUnreachable {
            url: URL.into(),
            cause: core::IngestCause::Tls(core::TlsFailure::UnknownIssuer),
            reason: "certificate signed by an unknown authority".into(),
        };
        let detail = unreachable.to_string();
        assert_eq!(
            FieldCastError::from(unreachable),
            FieldCastError::Ingest {
                failure: IngestFailure::Unreachable,
                cause: IngestCause::TlsUnknownIssuer,
                detail,
            }
        );

        let disconnected = core::Error::IngestDisconnected {
            url: URL.into(),
            cause: core::IngestCause::Stalled,
            reason: "no byte sent for 5 s".into(),
        };
        assert!(matches!(
            FieldCastError::from(disconnected),
            FieldCastError::Ingest {
                failure: IngestFailure::Disconnected,
                cause: IngestCause::Stalled,
                ..
            }
        ));

        let rejected = core::Error::IngestRejected {
            url: URL.into(),
            cause: core::IngestCause::Rejected,
            reason: "NetStream.Publish.BadName".into(),
        };
        match FieldCastError::from(rejected) {
            FieldCastError::Ingest {
                failure: IngestFailure::Rejected,
                cause: IngestCause::Rejected,
                detail,
            } => {
                assert!(detail.contains("NetStream.Publish.BadName"), "{detail}");
                assert!(detail.contains(URL), "{detail}");
            }
            other => panic!("expected a rejected ingest, got {other:?}"),
        }
    }

    #[test]
    fn other_core_errors_keep_their_variant() {
        assert!(matches!(
            FieldCastError::from(core::Error::InvalidConfig("fps 0".into())),
            FieldCastError::InvalidConfig { .. }
        ));
        assert!(matches!(
            FieldCastError::from(core::Error::UnsupportedScheme {
                scheme: "http".into()
            }),
            FieldCastError::InvalidUrl { .. }
        ));
    }
}
