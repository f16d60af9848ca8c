//! One SRT connection: a small pipeline of its own (appsrc -> h264parse -> mpegtsmux -> srtsink)
//! fed from the send window, so that it can fail, be torn down and be rebuilt while capture,
//! encoding and the recording go on in the main pipeline. Its errors and its need for more media
//! wake the uplink thread.

use std::sync::Arc;
use std::time::Instant;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::supervisor::LinkFailure;
use super::waker::Waker;
use crate::error::Result;
use crate::media::bus::describe;
use crate::media::elements::make;
use crate::media::encoded::{Encoded, Track};
use crate::media::sources::link_err;

/// Buffers an appsrc of the connection may hold before the uplink stops feeding it (the rest
/// waits in the send window, where it can be dropped by whole GOPs).
const MAX_QUEUED_BUFFERS: u64 = 8;

/// A live SRT connection.
pub(crate) struct SrtConnection {
    pipeline: gst::Pipeline,
    video: gst_app::AppSrc,
    audio: gst_app::AppSrc,
    sink: gst::Element,
    video_pushed: u64,
    /// The caps each appsrc announces now: video and audio.
    caps: [gst::Caps; 2],
}

impl SrtConnection {
    /// Builds and starts the connection's pipeline for the encoded streams' caps, on the main
    /// pipeline's clock and base time, so the feed's running-time stamps hold here too.
    pub fn open(
        uri: &str,
        video_caps: &gst::Caps,
        audio_caps: &gst::Caps,
        main: &gst::Pipeline,
        waker: &Arc<Waker>,
    ) -> Result<Self> {
        let pipeline = gst::Pipeline::with_name("fieldcast-uplink");
        if let Some(clock) = main.clock() {
            pipeline.use_clock(Some(&clock));
            pipeline.set_base_time(main.base_time().unwrap_or(gst::ClockTime::ZERO));
            pipeline.set_start_time(gst::ClockTime::NONE);
        }
        let video = appsrc("uplink-video", video_caps, waker)?;
        let audio = appsrc("uplink-audio", audio_caps, waker)?;
        let parse = make("h264parse", "live-video-parse")?;
        let byte_stream = make("capsfilter", "live-video-caps")?;
        byte_stream.set_property(
            "caps",
            gst::Caps::builder("video/x-h264")
                .field("stream-format", "byte-stream")
                .build(),
        );
        let mux = make("mpegtsmux", "live-mux")?;
        mux.set_property("alignment", 7i32);
        let sink = make("srtsink", "live-sink")?;
        sink.set_property("uri", uri);
        // The encoded media arrives as fast as it is produced; nothing here waits on a clock.
        sink.set_property("sync", false);
        pipeline
            .add_many([
                video.upcast_ref(),
                audio.upcast_ref(),
                &parse,
                &byte_stream,
                &mux,
                &sink,
            ])
            .map_err(link_err)?;
        gst::Element::link_many([video.upcast_ref(), &parse, &byte_stream, &mux, &sink])
            .map_err(link_err)?;
        audio.link(&mux).map_err(link_err)?;
        if let Some(bus) = pipeline.bus() {
            let waker = waker.clone();
            bus.set_sync_handler(move |_, msg| {
                if msg.type_() == gst::MessageType::Error {
                    waker.wake();
                }
                gst::BusSyncReply::Pass
            });
        }
        if let Err(e) = pipeline.set_state(gst::State::Playing) {
            log::debug!("uplink refused PLAYING: {e}");
        }
        Ok(SrtConnection {
            pipeline,
            video,
            audio,
            sink,
            video_pushed: 0,
            caps: [video_caps.clone(), audio_caps.clone()],
        })
    }

    /// True when both appsrcs take another buffer.
    pub fn wants_media(&self) -> bool {
        self.video
            .current_level_buffers()
            .max(self.audio.current_level_buffers())
            < MAX_QUEUED_BUFFERS
    }

    /// True when both appsrcs have handed everything on.
    pub fn is_drained(&self) -> bool {
        self.video.current_level_buffers() == 0 && self.audio.current_level_buffers() == 0
    }

    /// Queues one encoded buffer, announcing its caps first when they changed (a new rung).
    pub fn push(&mut self, track: Track, media: Encoded) -> std::result::Result<(), LinkFailure> {
        let src = match track {
            Track::Video => {
                self.video_pushed += 1;
                &self.video
            }
            Track::Audio => &self.audio,
        };
        let caps = &mut self.caps[track as usize];
        // Consecutive buffers share one caps object: compare contents only when it changes.
        if caps.as_ptr() != media.caps.as_ptr() {
            if *caps != media.caps {
                src.set_caps(Some(&media.caps));
            }
            *caps = media.caps;
        }
        src.push_buffer(media.buffer).map(|_| ()).map_err(|e| {
            LinkFailure::from_text(format!("the connection no longer takes media ({e:?})"))
        })
    }

    /// The first error the connection reported, if any (never blocks).
    pub fn error(&self) -> Option<LinkFailure> {
        let bus = self.pipeline.bus()?;
        let msg = bus.pop_filtered(&[gst::MessageType::Error])?;
        match msg.view() {
            gst::MessageView::Error(err) => Some(LinkFailure::from_text(describe(err))),
            _ => None,
        }
    }

    /// Payload bytes srtsink has sent.
    pub fn bytes_sent(&self) -> u64 {
        self.sink
            .property::<Option<gst::Structure>>("stats")
            .and_then(|s| s.get::<u64>("bytes-sent-total").ok())
            .unwrap_or(0)
    }

    /// True once media reached the network (srtsink counts payload only, not its handshake).
    pub fn media_flowing(&self) -> bool {
        self.bytes_sent() > 0
    }

    /// Video frames a failed connection took with it.
    pub fn lost_video(&self) -> u64 {
        if self.media_flowing() {
            self.video.current_level_buffers()
        } else {
            self.video_pushed
        }
    }

    /// Ends both streams and waits (at most until `deadline`) until the ingest has everything.
    pub fn finish(&self, deadline: Instant) -> bool {
        let _ = self.video.end_of_stream();
        let _ = self.audio.end_of_stream();
        let Some(bus) = self.pipeline.bus() else {
            return false;
        };
        let left = deadline.saturating_duration_since(Instant::now());
        let wait = gst::ClockTime::from_mseconds(left.as_millis() as u64);
        bus.timed_pop_filtered(wait, &[gst::MessageType::Eos, gst::MessageType::Error])
            .is_some_and(|msg| matches!(msg.view(), gst::MessageView::Eos(_)))
    }
}

impl Drop for SrtConnection {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

fn appsrc(name: &str, caps: &gst::Caps, waker: &Arc<Waker>) -> Result<gst_app::AppSrc> {
    let src = make("appsrc", name)?
        .downcast::<gst_app::AppSrc>()
        .expect("appsrc is an AppSrc");
    src.set_caps(Some(caps));
    src.set_format(gst::Format::Time);
    src.set_is_live(true);
    src.set_property("block", false);
    src.set_property("max-bytes", 0u64);
    // An empty appsrc asks for data: the uplink, which stopped at MAX_QUEUED_BUFFERS, goes on.
    let waker = waker.clone();
    src.set_callbacks(
        gst_app::AppSrcCallbacks::builder()
            .need_data(move |_, _| waker.wake())
            .build(),
    );
    Ok(src)
}
