//! One connection to the ingest, whatever the protocol: RTMP(S) on the publisher's own socket,
//! or SRT through srtsink. The supervisor sees only this.

use std::os::fd::RawFd;
use std::sync::Arc;
use std::time::Instant;

use gstreamer as gst;

use super::delivery::SocketReading;
use super::publisher::{RtmpConnection, RtmpEndpoint};
use super::srt::SrtConnection;
use super::supervisor::LinkFailure;
use super::target::IngestTarget;
use super::waker::{Readiness, Waker};
use crate::error::{IngestCause, Result};
use crate::media::elements::{is_available, missing};
use crate::media::encoded::{Encoded, Track};

/// Fails early, with the package to install, when an element a connection needs is missing
/// (RTMP needs none: the publisher writes FLV over its own socket).
pub(crate) fn check_elements(target: &IngestTarget) -> Result<()> {
    let needed: &[&str] = match target {
        IngestTarget::Rtmp { .. } => &[],
        IngestTarget::Srt { .. } => &["appsrc", "h264parse", "mpegtsmux", "srtsink"],
    };
    match needed.iter().find(|f| !is_available(f)) {
        Some(f) => Err(missing(f)),
        None => Ok(()),
    }
}

/// Where a connection goes, resolved once per uplink.
#[derive(Clone)]
pub(crate) enum Endpoint {
    Rtmp(RtmpEndpoint),
    Srt { uri: String },
}

impl Endpoint {
    /// Where `target` leads; `ca_pem` adds CAs trusted for `rtmps://`.
    pub fn of(target: &IngestTarget, ca_pem: Option<&str>) -> Result<Self> {
        match target {
            IngestTarget::Rtmp { url, secure } => Ok(Endpoint::Rtmp(RtmpEndpoint::of(
                url,
                *secure,
                ca_pem,
                &target.redacted(),
            )?)),
            IngestTarget::Srt { uri } => Ok(Endpoint::Srt { uri: uri.clone() }),
        }
    }
}

/// A live connection to the ingest.
pub(crate) enum Connection {
    Rtmp(Box<RtmpConnection>),
    Srt(SrtConnection),
}

impl Connection {
    /// Opens a connection: connects (RTMP: before `deadline`, unless `stopped`) or starts the
    /// SRT pipeline for the encoded streams' caps.
    pub fn open(
        endpoint: &Endpoint,
        caps: (&gst::Caps, &gst::Caps),
        main: &gst::Pipeline,
        waker: &Arc<Waker>,
        deadline: Instant,
        stopped: &dyn Fn() -> bool,
    ) -> std::result::Result<Self, LinkFailure> {
        match endpoint {
            Endpoint::Rtmp(rtmp) => RtmpConnection::open(rtmp, waker, deadline, stopped)
                .map(|c| Self::Rtmp(Box::new(c))),
            Endpoint::Srt { uri } => SrtConnection::open(uri, caps.0, caps.1, main, waker)
                .map(Connection::Srt)
                .map_err(|e| LinkFailure {
                    cause: IngestCause::Other,
                    reason: e.to_string(),
                }),
        }
    }

    /// The socket to wait on, and whether to wait until it takes more (SRT: none; its sink
    /// wakes the uplink itself).
    pub fn wait_on(&self) -> Option<(RawFd, bool)> {
        match self {
            Connection::Rtmp(c) => Some(c.wait_on()),
            Connection::Srt(_) => None,
        }
    }

    /// Does the connection's I/O after a wait; an error means the connection is gone.
    pub fn service(&mut self, ready: Readiness) -> std::result::Result<(), LinkFailure> {
        match self {
            Connection::Rtmp(c) => c.service(ready),
            Connection::Srt(c) => c.error().map_or(Ok(()), Err),
        }
    }

    /// True once the connection can take media (RTMP: the server accepted the publish; SRT's
    /// caller connects while starting).
    pub fn is_live(&self) -> bool {
        match self {
            Connection::Rtmp(c) => c.is_live(),
            Connection::Srt(_) => true,
        }
    }

    /// True when the connection takes another packet now.
    pub fn wants_media(&self) -> bool {
        match self {
            Connection::Rtmp(c) => c.wants_media(),
            Connection::Srt(c) => c.wants_media(),
        }
    }

    /// Hands one encoded buffer over.
    pub fn push(&mut self, track: Track, media: Encoded) -> std::result::Result<(), LinkFailure> {
        match self {
            Connection::Rtmp(c) => c.push(track, media),
            Connection::Srt(c) => c.push(track, media),
        }
    }

    /// Bytes this connection wrote to the network.
    pub fn bytes_sent(&self) -> u64 {
        match self {
            Connection::Rtmp(c) => c.bytes_sent(),
            Connection::Srt(c) => c.bytes_sent(),
        }
    }

    /// What the socket holds not yet sent, where the system can tell.
    pub fn backlog(&self) -> Option<u64> {
        match self {
            Connection::Rtmp(c) => c.backlog(),
            Connection::Srt(_) => None,
        }
    }

    /// The socket's unsent and acknowledged bytes, where the connection has a socket and the
    /// platform counts both.
    pub fn reading(&self) -> Option<SocketReading> {
        match self {
            Connection::Rtmp(c) => c.reading(),
            Connection::Srt(_) => None,
        }
    }

    /// True once media, not only the set-up, has left the phone.
    pub fn media_flowing(&self) -> bool {
        match self {
            Connection::Rtmp(c) => c.media_flowing(),
            Connection::Srt(c) => c.media_flowing(),
        }
    }

    /// Video frames a failed connection took with it.
    pub fn lost_video(&self) -> u64 {
        match self {
            Connection::Rtmp(c) => c.lost_video(),
            Connection::Srt(c) => c.lost_video(),
        }
    }

    /// True when nothing waits in the connection.
    pub fn is_drained(&self) -> bool {
        match self {
            Connection::Rtmp(c) => c.is_drained(),
            Connection::Srt(c) => c.is_drained(),
        }
    }

    /// Caps the sending rate (kbit/s; 0 lifts the cap) where the connection has a socket.
    pub fn set_pacing(&self, kbps: u32) {
        if let Connection::Rtmp(c) = self {
            c.set_pacing(kbps);
        }
    }

    /// Makes closing a reset, where the connection has a socket.
    pub fn abort(&self) {
        if let Connection::Rtmp(c) = self {
            c.abort();
        }
    }

    /// Sends what waits and ends the stream; true when the ingest has everything by `deadline`.
    pub fn finish(&mut self, waker: &Waker, deadline: Instant) -> bool {
        match self {
            Connection::Rtmp(c) => c.finish(waker, deadline),
            Connection::Srt(c) => c.finish(deadline),
        }
    }
}
