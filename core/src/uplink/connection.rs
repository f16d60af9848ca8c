//! One connection to the ingest: a small pipeline of its own (appsrc -> mux -> network sink) fed
//! from the send window, so that it can fail, be torn down and be rebuilt while capture, encoding
//! and the recording go on in the main pipeline.

use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::feed::Encoded;
use super::socket::IngestSockets;
use super::target::IngestTarget;
use crate::error::Result;
use crate::media::bus::describe;
use crate::media::elements::{is_available, make, missing};
use crate::media::sources::link_err;

/// Seconds rtmp2sink waits on a blocked socket before it reports an error; stalls shorter than
/// this are caught by the supervisor's own stall check.
const RTMP_TIMEOUT_SECS: u32 = 10;
/// Buffers an appsrc of the connection may hold before the supervisor stops feeding it (the rest
/// waits in the send window, where it can be dropped by whole GOPs).
const MAX_QUEUED_BUFFERS: u64 = 8;
/// Bytes an RTMP connection may still count after the server's first answer before any media:
/// createStream, releaseStream, FCPublish and publish, each with the stream name (at most the
/// URL's length), and a set chunk size. rtmp2sink does not count the handshake; the connect
/// command is sent before the answer that makes the connection ready.
fn rtmp_commands_after_ready(url: &str) -> u64 {
    512 + 3 * url.len() as u64
}

/// Which elementary stream a buffer belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Track {
    Video,
    Audio,
}

/// Fails early, with the package to install, when an element a connection needs is missing.
pub(crate) fn check_elements(target: &IngestTarget) -> Result<()> {
    let needed: &[&str] = match target {
        IngestTarget::Rtmp { .. } => &["appsrc", "flvmux", "rtmp2sink"],
        IngestTarget::Srt { .. } => &["appsrc", "h264parse", "mpegtsmux", "srtsink"],
    };
    match needed.iter().find(|f| !is_available(f)) {
        Some(f) => Err(missing(f)),
        None => Ok(()),
    }
}

/// A live connection to the ingest.
pub(crate) struct Connection {
    pipeline: gst::Pipeline,
    video: gst_app::AppSrc,
    audio: gst_app::AppSrc,
    sink: gst::Element,
    target: IngestTarget,
    /// Video buffers handed to this connection.
    video_pushed: std::cell::Cell<u64>,
    /// Bytes counted when the connection was first seen ready: the protocol set-up so far.
    setup_bytes: std::cell::Cell<Option<u64>>,
    /// The caps each appsrc announces now: video and audio.
    caps: [std::cell::RefCell<gst::Caps>; 2],
    /// The network sink's TCP socket(s), once connected (RTMP on Linux and Android).
    pub sockets: std::cell::RefCell<IngestSockets>,
}

impl Connection {
    /// Builds and starts the connection's pipeline for the encoded streams' caps.
    ///
    /// It runs on the main pipeline's clock and base time, so the feed's running-time stamps hold
    /// here too, and the muxer, being live, never waits for a stream that has paused.
    pub fn open(
        target: &IngestTarget,
        video_caps: &gst::Caps,
        audio_caps: &gst::Caps,
        main: &gst::Pipeline,
    ) -> Result<Self> {
        let pipeline = gst::Pipeline::with_name("fieldcast-uplink");
        if let Some(clock) = main.clock() {
            pipeline.use_clock(Some(&clock));
            pipeline.set_base_time(main.base_time().unwrap_or(gst::ClockTime::ZERO));
            pipeline.set_start_time(gst::ClockTime::NONE);
        }
        let video = appsrc("uplink-video", video_caps)?;
        let audio = appsrc("uplink-audio", audio_caps)?;
        let (mux, sink, video_chain) = match target {
            IngestTarget::Rtmp { url, .. } => {
                let mux = make("flvmux", "live-mux")?;
                mux.set_property("streamable", true);
                let sink = make("rtmp2sink", "live-sink")?;
                sink.set_property("location", url.as_str());
                sink.set_property("timeout", RTMP_TIMEOUT_SECS);
                (mux, sink, vec![])
            }
            IngestTarget::Srt { uri } => {
                let parse = make("h264parse", "live-video-parse")?;
                let caps = make("capsfilter", "live-video-caps")?;
                caps.set_property(
                    "caps",
                    gst::Caps::builder("video/x-h264")
                        .field("stream-format", "byte-stream")
                        .build(),
                );
                let mux = make("mpegtsmux", "live-mux")?;
                mux.set_property("alignment", 7i32);
                let sink = make("srtsink", "live-sink")?;
                sink.set_property("uri", uri.as_str());
                (mux, sink, vec![parse, caps])
            }
        };
        // The encoded media arrives as fast as it is produced; nothing here waits on a clock.
        sink.set_property("sync", false);
        pipeline
            .add_many([video.upcast_ref(), audio.upcast_ref(), &mux, &sink])
            .map_err(link_err)?;
        pipeline.add_many(&video_chain).map_err(link_err)?;
        let mut chain: Vec<gst::Element> = vec![video.clone().upcast()];
        chain.extend(video_chain);
        gst::Element::link_many(&chain).map_err(link_err)?;
        let last = chain.last().expect("the chain starts with the appsrc");
        match target {
            IngestTarget::Rtmp { .. } => {
                last.link_pads(Some("src"), &mux, Some("video"))
                    .map_err(link_err)?;
                audio
                    .link_pads(Some("src"), &mux, Some("audio"))
                    .map_err(link_err)?;
            }
            IngestTarget::Srt { .. } => {
                last.link(&mux).map_err(link_err)?;
                audio.link(&mux).map_err(link_err)?;
            }
        }
        mux.link(&sink).map_err(link_err)?;
        let connection = Connection {
            pipeline,
            video,
            audio,
            sink,
            target: target.clone(),
            video_pushed: std::cell::Cell::new(0),
            setup_bytes: std::cell::Cell::new(None),
            caps: [
                std::cell::RefCell::new(video_caps.clone()),
                std::cell::RefCell::new(audio_caps.clone()),
            ],
            sockets: std::cell::RefCell::default(),
        };
        if let Err(e) = connection.pipeline.set_state(gst::State::Playing) {
            log::debug!("uplink refused PLAYING: {e}");
        }
        Ok(connection)
    }

    /// How many more buffers both appsrcs take before either would grow past its limit.
    pub fn room(&self) -> u64 {
        let fullest = self
            .video
            .current_level_buffers()
            .max(self.audio.current_level_buffers());
        MAX_QUEUED_BUFFERS.saturating_sub(fullest)
    }

    /// True when both appsrcs have handed everything on.
    pub fn is_drained(&self) -> bool {
        self.video.current_level_buffers() == 0 && self.audio.current_level_buffers() == 0
    }

    /// Queues one encoded buffer, announcing its caps first when they changed (a new rung); an
    /// error means the connection is gone.
    pub fn push(&self, track: Track, media: Encoded) -> std::result::Result<(), String> {
        if track == Track::Video {
            self.video_pushed.set(self.video_pushed.get() + 1);
        }
        let src = self.src(track);
        let mut caps = self.caps[track as usize].borrow_mut();
        // Consecutive buffers share one caps object: compare contents only when it changes.
        if caps.as_ptr() != media.caps.as_ptr() {
            if *caps != media.caps {
                src.set_caps(Some(&media.caps));
            }
            *caps = media.caps;
        }
        src.push_buffer(media.buffer)
            .map(|_| ())
            .map_err(|e| format!("the connection no longer takes media ({e:?})"))
    }

    fn src(&self, track: Track) -> &gst_app::AppSrc {
        match track {
            Track::Video => &self.video,
            Track::Audio => &self.audio,
        }
    }

    /// The first error the connection reported, if any (never blocks).
    pub fn error(&self) -> Option<String> {
        let bus = self.pipeline.bus()?;
        while let Some(msg) = bus.pop_filtered(&[gst::MessageType::Error]) {
            if let gst::MessageView::Error(err) = msg.view() {
                return Some(describe(err));
            }
        }
        None
    }

    /// Bytes written to the network by this connection.
    pub fn bytes_sent(&self) -> u64 {
        self.stat("out-bytes-total")
            .or_else(|| self.stat("bytes-sent-total"))
            .unwrap_or(0)
    }

    /// A counter from the network sink's statistics.
    fn stat(&self, field: &str) -> Option<u64> {
        self.sink
            .property::<Option<gst::Structure>>("stats")?
            .get::<u64>(field)
            .ok()
    }

    /// True once the connection can take media: for RTMP, once the server has answered after the
    /// handshake (rtmp2sink connects on start, before any media), so that media is not handed
    /// to a connection that will never open; SRT's caller connects while starting.
    pub fn ready(&self) -> bool {
        let ready = match self.target {
            IngestTarget::Rtmp { .. } => self.stat("in-bytes-total").is_some_and(|b| b > 0),
            IngestTarget::Srt { .. } => true,
        };
        if ready && self.setup_bytes.get().is_none() {
            self.setup_bytes.set(Some(self.bytes_sent()));
        }
        ready
    }

    /// Video frames a failed connection took with it: all it was given when no media ever
    /// reached the ingest, else those still waiting in its appsrc.
    pub fn lost_video(&self) -> u64 {
        if self.media_flowing() {
            self.video.current_level_buffers()
        } else {
            self.video_pushed.get()
        }
    }

    /// True once media bytes (not just the protocol set-up) have reached the ingest: more than
    /// the set-up counted when the connection became ready plus the commands that may follow it.
    /// Media is handed over only once it is ready (see [`Connection::ready`]).
    pub fn media_flowing(&self) -> bool {
        let Some(at_ready) = self.setup_bytes.get() else {
            return false;
        };
        let setup = match &self.target {
            IngestTarget::Rtmp { url, .. } => at_ready + rtmp_commands_after_ready(url),
            // srtsink counts payload only; the SRT handshake is not in `bytes-sent-total`.
            IngestTarget::Srt { .. } => 0,
        };
        self.bytes_sent() > setup
    }

    /// Ends both streams and waits (at most `limit`) until the ingest has everything.
    pub fn finish(&self, limit: Duration) -> bool {
        let _ = self.video.end_of_stream();
        let _ = self.audio.end_of_stream();
        let Some(bus) = self.pipeline.bus() else {
            return false;
        };
        let deadline = Instant::now() + limit;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            let wait = gst::ClockTime::from_mseconds(left.as_millis().min(100) as u64);
            if let Some(msg) =
                bus.timed_pop_filtered(wait, &[gst::MessageType::Eos, gst::MessageType::Error])
            {
                return matches!(msg.view(), gst::MessageView::Eos(_));
            }
        }
        false
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

fn appsrc(name: &str, caps: &gst::Caps) -> Result<gst_app::AppSrc> {
    let src = make("appsrc", name)?
        .downcast::<gst_app::AppSrc>()
        .expect("appsrc is an AppSrc");
    src.set_caps(Some(caps));
    src.set_format(gst::Format::Time);
    src.set_is_live(true);
    src.set_property("block", false);
    src.set_property("max-bytes", 0u64);
    Ok(src)
}
