//! One RTMP(S) publish on a socket of our own: FLV tags built from the encoded H.264 and AAC,
//! carried by the [`Publish`] conversation over a [`Link`], written at the pace the socket
//! allows. At most one serialized message waits here; the rest waits in the send window, where
//! it can still be dropped by whole GOPs.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gstreamer as gst;
use rml_rtmp::sessions::StreamMetadata;

use super::delivery::SocketReading;
use super::flv;
use super::link::{Link, Received};
use super::rtmp::{Phase, Publish, PublishPoint};
use super::socket::{UNSENT_LIMIT, WRITE_CHUNK};
use super::supervisor::LinkFailure;
use super::tls;
use super::waker::{Readiness, Waker};
use crate::error::{Error, IngestCause, Result};
use crate::media::encoded::{Encoded, Track};

/// Where to publish, and how to trust the server.
#[derive(Clone)]
pub(crate) struct RtmpEndpoint {
    pub host: String,
    pub port: u16,
    pub point: PublishPoint,
    /// TLS settings for `rtmps://`.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl RtmpEndpoint {
    /// The endpoint of an `rtmp[s]://host[:port]/app/stream` URL; `ca_pem` adds trusted CAs for
    /// TLS. `shown` is the URL as people may see it (redacted), for errors.
    pub fn of(url: &str, secure: bool, ca_pem: Option<&str>, shown: &str) -> Result<Self> {
        let bad = |reason: &str| Error::InvalidUrl {
            url: shown.to_string(),
            reason: reason.to_string(),
        };
        let parsed = url::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
        let host = match parsed.host() {
            Some(url::Host::Ipv6(address)) => address.to_string(),
            Some(host) => host.to_string(),
            None => return Err(bad("it has no host")),
        };
        let point = PublishPoint::of(&parsed).ok_or_else(|| {
            bad("RTMP needs an application and a stream key: rtmp://host/app/key")
        })?;
        Ok(RtmpEndpoint {
            host,
            port: parsed.port().unwrap_or(if secure { 443 } else { 1935 }),
            point,
            tls: if secure {
                Some(tls::client_config(ca_pem)?)
            } else {
                None
            },
        })
    }
}

/// A live RTMP connection.
pub(crate) struct RtmpConnection {
    link: Link,
    publish: Publish,
    /// Serialized bytes not yet handed to the kernel, from `written` on.
    out: Vec<u8>,
    written: usize,
    /// End offsets (in `out`) of the video messages in it.
    video_ends: VecDeque<usize>,
    /// Bytes written when the server accepted the publish.
    sent_at_live: Option<u64>,
    /// The codec configurations last sent: video, audio.
    configs: [Option<Bytes>; 2],
    /// The stream's description (`onMetaData`) was sent.
    described: bool,
    /// The first media timestamp: the publish's time zero.
    base: Option<Duration>,
    video_pushed: u64,
}

impl RtmpConnection {
    /// Connects and starts the handshake (the rest happens as the socket allows).
    pub fn open(
        endpoint: &RtmpEndpoint,
        waker: &Waker,
        deadline: Instant,
        stopped: &dyn Fn() -> bool,
    ) -> std::result::Result<Self, LinkFailure> {
        let link = Link::connect(
            &endpoint.host,
            endpoint.port,
            endpoint.tls.clone(),
            waker,
            deadline,
            stopped,
        )?;
        let mut publish = Publish::start(endpoint.point.clone())?;
        let mut out = Vec::new();
        publish.take_outbox(&mut out);
        Ok(RtmpConnection {
            link,
            publish,
            out,
            written: 0,
            video_ends: VecDeque::new(),
            sent_at_live: None,
            configs: [None, None],
            described: false,
            base: None,
            video_pushed: 0,
        })
    }

    /// The descriptor to wait on, and whether to wait until it takes more.
    pub fn wait_on(&self) -> (std::os::fd::RawFd, bool) {
        (
            self.link.fd(),
            self.pending() > 0 || self.link.tls_pending(),
        )
    }

    /// Reads what the server sent and writes what waits, as far as the socket allows.
    pub fn service(&mut self, ready: Readiness) -> std::result::Result<(), LinkFailure> {
        if ready.readable || ready.failed {
            let mut input = Vec::new();
            let received = self.link.read(&mut input)?;
            self.publish.receive(&input)?;
            if received == Received::Closed {
                return Err(self.publish.closed_by_server());
            }
        }
        self.publish.take_outbox(&mut self.out);
        if self.sent_at_live.is_none() && self.publish.phase() == Phase::Live {
            self.sent_at_live = Some(self.link.sent());
        }
        self.write_out()
    }

    /// Hands waiting bytes to the kernel, [`WRITE_CHUNK`] at a time, while it holds less than
    /// [`UNSENT_LIMIT`] unsent: the kernel never holds more than the limit plus one chunk.
    fn write_out(&mut self) -> std::result::Result<(), LinkFailure> {
        let control = self.link.control();
        while self.written < self.out.len() {
            if control
                .unsent_bytes()
                .is_some_and(|b| b >= u64::from(UNSENT_LIMIT))
            {
                break;
            }
            let end = (self.written + WRITE_CHUNK).min(self.out.len());
            let taken = self.link.write(&self.out[self.written..end])?;
            if taken == 0 {
                break;
            }
            self.written += taken;
        }
        self.link.flush()?;
        while self
            .video_ends
            .front()
            .is_some_and(|&end| end <= self.written)
        {
            self.video_ends.pop_front();
        }
        if self.written == self.out.len() {
            self.out.clear();
            self.written = 0;
        }
        Ok(())
    }

    /// Bytes serialized here and not yet handed to the kernel.
    fn pending(&self) -> usize {
        self.out.len() - self.written
    }

    /// True once the server accepted the publish.
    pub fn is_live(&self) -> bool {
        self.publish.phase() == Phase::Live
    }

    /// True when the connection takes another message now: live, and less than a chunk waits.
    pub fn wants_media(&self) -> bool {
        self.is_live() && self.pending() < WRITE_CHUNK && !self.link.tls_pending()
    }

    /// Queues one encoded buffer as an FLV tag, with the codec configuration first when it is
    /// new (the first frame, or a new rung).
    pub fn push(&mut self, track: Track, media: Encoded) -> std::result::Result<(), LinkFailure> {
        let buffer = &media.buffer;
        let Some(pts) = buffer.pts() else {
            return Ok(());
        };
        let dts = buffer.dts().unwrap_or(pts);
        let decode_at = Duration::from_nanos(dts.nseconds());
        let base = *self
            .base
            .get_or_insert_with(|| Duration::from_nanos(dts.nseconds()));
        if !self.described && track == Track::Video {
            self.send_metadata(&media.caps)?;
            self.described = true;
        }
        if let Some(config) = codec_data(&media.caps)
            && Some(&config) != self.sent_config(track)
        {
            let tag = match track {
                Track::Video => flv::avc_sequence_header(&config),
                Track::Audio => flv::aac_sequence_header(&config),
            };
            self.send(track, tag, decode_at.saturating_sub(base), false)?;
            self.configs[track as usize] = Some(config);
        }
        let map = buffer
            .map_readable()
            .map_err(|_| local_failure("an encoded buffer cannot be read"))?;
        let at = decode_at.saturating_sub(base);
        let tag = match track {
            Track::Video => {
                self.video_pushed += 1;
                let keyframe = !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
                let composition = pts.nseconds() as i64 - dts.nseconds() as i64;
                flv::avc_frame(keyframe, (composition / 1_000_000) as i32, &map)
            }
            Track::Audio => flv::aac_frame(&map),
        };
        self.send(track, tag, at, true)?;
        self.write_out()
    }

    fn sent_config(&self, track: Track) -> Option<&Bytes> {
        self.configs[track as usize].as_ref()
    }

    fn send(
        &mut self,
        track: Track,
        tag: Bytes,
        at: Duration,
        counts: bool,
    ) -> std::result::Result<(), LinkFailure> {
        match track {
            Track::Video => self.publish.video(tag, at)?,
            Track::Audio => self.publish.audio(tag, at)?,
        }
        self.publish.take_outbox(&mut self.out);
        if counts && track == Track::Video {
            self.video_ends.push_back(self.out.len());
        }
        Ok(())
    }

    /// Describes the stream once, before its first frame (size, frame rate, codecs).
    fn send_metadata(&mut self, video_caps: &gst::Caps) -> std::result::Result<(), LinkFailure> {
        let mut metadata = StreamMetadata::new();
        if let Some(s) = video_caps.structure(0) {
            metadata.video_width = s.get::<i32>("width").ok().map(|w| w as u32);
            metadata.video_height = s.get::<i32>("height").ok().map(|h| h as u32);
            metadata.video_frame_rate = s
                .get::<gst::Fraction>("framerate")
                .ok()
                .filter(|f| f.denom() > 0)
                .map(|f| f.numer() as f32 / f.denom() as f32);
        }
        metadata.video_codec_id = Some(flv::VIDEO_CODEC_AVC);
        metadata.audio_codec_id = Some(flv::AUDIO_CODEC_AAC);
        metadata.encoder = Some(format!("FieldCast {}", env!("CARGO_PKG_VERSION")));
        self.publish.metadata(&metadata)?;
        self.publish.take_outbox(&mut self.out);
        Ok(())
    }

    /// Bytes written to the socket (handshake and TLS included).
    pub fn bytes_sent(&self) -> u64 {
        self.link.sent()
    }

    /// What the kernel holds not yet sent, of the bytes counted by [`Self::bytes_sent`];
    /// `None` when the system cannot tell.
    pub fn backlog(&self) -> Option<u64> {
        self.link.control().unsent_bytes()
    }

    /// The socket's unsent and acknowledged bytes; `None` where the platform lacks either.
    pub fn reading(&self) -> Option<SocketReading> {
        let control = self.link.control();
        Some(SocketReading {
            unsent: control.unsent_bytes()?,
            delivered: control.delivered_bytes()?,
        })
    }

    /// True once media bytes, not just the set-up, have left the phone.
    pub fn media_flowing(&self) -> bool {
        let Some(at_live) = self.sent_at_live else {
            return false;
        };
        let unsent = self.link.control().unsent_bytes().unwrap_or(0);
        self.base.is_some() && self.link.sent().saturating_sub(unsent) > at_live
    }

    /// Video frames a failed connection took with it: all it was given when no media ever
    /// left, else those still waiting here.
    pub fn lost_video(&self) -> u64 {
        if self.media_flowing() {
            self.video_ends.len() as u64
        } else {
            self.video_pushed
        }
    }

    /// True when nothing waits here.
    pub fn is_drained(&self) -> bool {
        self.pending() == 0 && !self.link.tls_pending()
    }

    /// Caps the socket's sending rate (kbit/s; 0 lifts the cap).
    pub fn set_pacing(&self, kbps: u32) {
        self.link.control().limit_pacing(kbps);
    }

    /// Makes the close a reset: nothing stale is delivered later.
    pub fn abort(&self) {
        self.link.control().abort_on_close();
    }

    /// Sends what waits, ends the publish and closes in order; waits at most until `deadline`
    /// for the server to have it all. True when everything left.
    pub fn finish(&mut self, waker: &Waker, deadline: Instant) -> bool {
        if self.is_live() && self.publish.finish().is_ok() {
            self.publish.take_outbox(&mut self.out);
        }
        let mut ready = Readiness::default();
        while Instant::now() < deadline {
            if self.service(ready).is_err() {
                return false;
            }
            if self.is_drained() && self.link.control().unsent_bytes().unwrap_or(0) == 0 {
                self.link.shutdown();
                return true;
            }
            ready = waker.wait(
                Some(self.wait_on()),
                Some(deadline.min(Instant::now() + Duration::from_millis(100))),
            );
        }
        false
    }
}

/// The codec configuration a caps carries (`codec_data`).
fn codec_data(caps: &gst::Caps) -> Option<Bytes> {
    let buffer = caps.structure(0)?.get::<gst::Buffer>("codec_data").ok()?;
    let map = buffer.map_readable().ok()?;
    Some(Bytes::copy_from_slice(&map))
}

fn local_failure(reason: &str) -> LinkFailure {
    LinkFailure {
        cause: IngestCause::Other,
        reason: reason.into(),
    }
}
