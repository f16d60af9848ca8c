//! Entry points to the parsers of untrusted input, for the cargo-fuzz targets in `fuzz/` (cargo
//! feature `fuzzing`, off by default). They reach crate-internal code without making it public
//! API: access units from encoders, frames from apps, answers from the platform and bytes from
//! an RTMP server.

use bytes::Bytes;

use crate::error::IngestCause;
use crate::frame::{FrameError, VideoFrame};
use crate::sync::{Answer, Outcome, classify};
use crate::uplink::rtmp::{Phase, Publish, PublishPoint};

pub use crate::media::sei::{build_nal, find_in_au, insert_into_au, length_size};

/// Validates `frame` and packs it as the pipeline would: its tightly packed bytes, or why not.
pub fn pack_frame(frame: &VideoFrame<'_>) -> Result<Vec<u8>, FrameError> {
    frame.validate_and_pack().map(|packed| packed.bytes)
}

/// Checks an interleaved S16LE audio buffer of `channels` channels, as a push of audio does.
pub fn check_audio(data: &[u8], channels: u32) -> Result<(), FrameError> {
    crate::frame::check_audio(data, channels)
}

/// The publishing side of one RTMP connection, fed with what a server sends.
pub struct RtmpPublish(Publish);

impl RtmpPublish {
    /// Starts publishing to `url` (`rtmp://host/app/stream`); `None` when the URL names no
    /// application and stream.
    pub fn start(url: &str) -> Option<Self> {
        let point = PublishPoint::of(&url::Url::parse(url).ok()?)?;
        Publish::start(point).ok().map(RtmpPublish)
    }

    /// Takes bytes from the server: what they amount to, as the cause and reason of a failure.
    pub fn receive(&mut self, bytes: &[u8]) -> Result<(), (IngestCause, String)> {
        self.0
            .receive(bytes)
            .map_err(|failure| (failure.cause, failure.reason))
    }

    /// The bytes waiting to be sent to the server.
    pub fn take_outbox(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        self.0.take_outbox(&mut out);
        out
    }

    /// True once the server accepted the publish.
    pub fn is_live(&self) -> bool {
        self.0.phase() == Phase::Live
    }

    /// The cause of a failure when the server closes the connection now.
    pub fn closed_by_server(&self) -> IngestCause {
        self.0.closed_by_server().cause
    }
}

/// Reads an HTTP answer to the `POST` of an outbox record as the sync does: the receipt kept
/// when the answer accepts the record, `None` for any other verdict.
pub fn sync_receipt(
    status: u16,
    content_type: Option<&str>,
    location: Option<&str>,
    body: &[u8],
) -> Option<String> {
    let answer = Answer {
        status,
        content_type: content_type.map(str::to_owned),
        location: location.map(str::to_owned),
        body: Bytes::copy_from_slice(body),
    };
    match classify(&answer, false) {
        Outcome::Accepted { response, .. } => Some(response),
        _ => None,
    }
}
