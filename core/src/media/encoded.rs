//! The encoded output of the media graph: the H.264 and AAC tees' buffers, taken off by appsinks
//! and handed to whoever sends them (the live connection), stamped in running time. Taking media
//! never blocks the encoder. The receiver can ask the video encoder for a keyframe.

use std::sync::Arc;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;

use super::elements::make;
use super::sources::link_err;
use crate::error::Result;

/// Which elementary stream a buffer belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Track {
    Video,
    Audio,
}

/// An encoded buffer, its timestamps in running time, and the caps it was produced under (a
/// rung change changes them).
pub(crate) struct Encoded {
    pub buffer: gst::Buffer,
    pub caps: gst::Caps,
}

/// Asks the live video encoder for a keyframe (with its headers).
#[derive(Clone)]
pub(crate) struct KeyframeRequest {
    tap: gst::glib::WeakRef<gst::Element>,
}

impl KeyframeRequest {
    /// Sends the request upstream from the video tap; nothing when the pipeline is gone.
    pub fn request(&self) {
        if let Some(pad) = self.tap.upgrade().and_then(|t| t.static_pad("sink")) {
            let event = gst_video::UpstreamForceKeyUnitEvent::builder()
                .all_headers(true)
                .build();
            pad.push_event(event);
        }
    }
}

/// Where the encoded media goes. Called on the encoders' streaming threads: must not block.
pub(crate) trait EncodedOutput: Send + Sync {
    /// One encoded buffer of `track`.
    fn take(&self, track: Track, media: Encoded);
    /// `track` ended.
    fn end(&self, track: Track);
    /// The way to ask for keyframes, once the taps exist.
    fn attach(&self, keyframes: KeyframeRequest);
}

/// Adds the two appsinks that hand the encoded tees' buffers to `output`.
pub(crate) fn add_taps(
    pipeline: &gst::Pipeline,
    video_tee: &gst::Element,
    audio_tee: &gst::Element,
    output: Arc<dyn EncodedOutput>,
) -> Result<()> {
    for (track, tee) in [(Track::Video, video_tee), (Track::Audio, audio_tee)] {
        let name = match track {
            Track::Video => "live-video",
            Track::Audio => "live-audio",
        };
        let sink = make("appsink", &format!("{name}-tap"))?
            .downcast::<gst_app::AppSink>()
            .expect("appsink is an AppSink");
        sink.set_property("sync", false);
        sink.set_property("async", false);
        // No queue: the callback only moves the buffer on, so the encoder's thread can run it
        // without waiting on anything.
        pipeline.add(&sink).map_err(link_err)?;
        tee.link(&sink).map_err(link_err)?;
        let (on_sample, on_eos) = (output.clone(), output.clone());
        sink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    if let Some(media) = sample_in_running_time(&sample) {
                        on_sample.take(track, media);
                    }
                    Ok(gst::FlowSuccess::Ok)
                })
                .eos(move |_| on_eos.end(track))
                .build(),
        );
        if track == Track::Video {
            output.attach(KeyframeRequest {
                tap: sink.upcast_ref::<gst::Element>().downgrade(),
            });
        }
    }
    Ok(())
}

/// The sample's buffer with its timestamps in running time: the encoders' segments do not start
/// at zero (x264 offsets by 1000 h), and the receiver has segments of its own.
fn sample_in_running_time(sample: &gst::Sample) -> Option<Encoded> {
    let segment = sample
        .segment()
        .and_then(|s| s.downcast_ref::<gst::format::Time>());
    with_running_time(sample.buffer_owned()?, segment, sample.caps_owned()?)
}

/// A buffer passing `pad`, with its timestamps in running time and the pad's caps.
pub(crate) fn in_running_time(pad: &gst::Pad, buffer: gst::Buffer) -> Option<Encoded> {
    let event = pad.sticky_event::<gst::event::Segment>(0)?;
    let segment = event.segment().downcast_ref::<gst::format::Time>();
    with_running_time(buffer, segment, pad.current_caps()?)
}

fn with_running_time(
    mut buffer: gst::Buffer,
    segment: Option<&gst::FormattedSegment<gst::format::Time>>,
    caps: gst::Caps,
) -> Option<Encoded> {
    let running =
        |t: Option<gst::ClockTime>| t.and_then(|t| segment.and_then(|s| s.to_running_time(t)));
    let (Some(pts), dts) = (running(buffer.pts()), running(buffer.dts())) else {
        return None;
    };
    {
        let b = buffer.make_mut();
        b.set_pts(pts);
        b.set_dts(dts);
    }
    Some(Encoded { buffer, caps })
}
