//! The recording with the adaptive bitrate on: one encoder while the live stream is at full
//! quality, two only while it is below.
//!
//! While the live rendition equals the recording's (size, frame rate and bitrate), the
//! recording takes the live encoder's frames. When the adaptive bitrate lowers the live stream,
//! raw frames also go to an encoder of the recording's own, and the recording hands over to it
//! at its first keyframe; when the live stream is back at full quality, the recording hands back
//! at a live keyframe and the own encoder gets no more frames. Each hand-over is a cut in time
//! ([`switch::Switch`]): no frame is lost or doubled. The recording's video is `avc3` (parameter
//! sets at every keyframe), so the two encoders' SPS/PPS may differ and players still seek
//! across a hand-over.
//!
//! ```text
//! raw caps --(probe, while fed)--> appsrc rec-input-own ! encoder ! h264parse ! caps ! fakesink
//!                                                                                  |(probe)
//! live video tee sink --(probe)--> [switch] --> appsrc rec-input-video ! h264parse ! avc3 caps
//! ```
//!
//! When the own encoder cannot run (the configuration says the device has one video encoder, or
//! it fails to start), the recording follows the live rendition and the session says so.

mod switch;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;

use super::elements::make;
use super::encoded::{Encoded, in_running_time};
use super::sources::link_err;
use crate::error::Result;
pub use switch::Origin;
use switch::{Handover, Switch, Timed};

/// Names of the appsrcs the switch feeds: not the session's sources.
pub(crate) const INPUT_PREFIX: &str = "rec-input-";
/// How long a hand-over may hold one encoding's frames while it waits for the other's keyframe.
const MAX_HELD_SECS: u32 = 3;
/// Raw frames waiting for the own encoder before new ones are dropped (counted, and logged).
const OWN_INPUT_FRAMES: u64 = 8;
/// Latency the recording's video source reports, so that a live muxer waits for held frames.
const OUTPUT_LATENCY_MS: u64 = 1000;

impl Timed for Encoded {
    fn pts(&self) -> u64 {
        self.buffer.pts().map_or(0, gst::ClockTime::nseconds)
    }

    fn keyframe(&self) -> bool {
        !self.buffer.flags().contains(gst::BufferFlags::DELTA_UNIT)
    }
}

/// The own encoder's branch: an appsrc taking raw frames, the encoding, and a fakesink.
struct OwnBranch {
    /// Takes the raw frames while the own encoder runs.
    input: gst_app::AppSrc,
    /// The encoder: asked for a keyframe when it starts again.
    encoder: gst::Element,
    /// Every element of the branch, input to sink.
    elements: Vec<gst::Element>,
}

struct State {
    switch: Switch<Encoded>,
    /// Caps of the last frame given to the recording.
    caps: Option<gst::Caps>,
    live_ended: bool,
    own_ended: bool,
    ended: bool,
}

/// Chooses the encoder the recording takes, and starts and stops the own one.
pub(crate) struct RecordSwitch {
    state: Mutex<State>,
    /// The recording's video.
    output: gst_app::AppSrc,
    own: OwnBranch,
    /// True while raw frames go to the own encoder.
    feeding: AtomicBool,
    /// Set when the own encoder may not run; the recording then follows the live rendition.
    refused: AtomicBool,
    /// Raw frames the own encoder was too slow to take.
    own_dropped: AtomicU64,
}

/// The recording's video as the switch delivers it.
pub(crate) struct RecordVideo {
    pub switch: Arc<RecordSwitch>,
    /// AVC (`avc3`) access units for the recording's muxer leave this element.
    pub output: gst::Element,
    /// The own encoder's AVC access units leave this element (where in-stream messages go in).
    pub own_output: gst::Element,
}

/// Builds the switch. `raw` is the element whose src pad carries the full-quality raw frames,
/// `live_tee` the tee of the live stream's encoded video, and `own_chain` the own encoding
/// (encoder first, AVC access units out of the last), built but not yet added. The own encoder
/// is set up only when it first gets frames.
pub(crate) fn install(
    pipeline: &gst::Pipeline,
    raw: &gst::Element,
    live_tee: &gst::Element,
    own_chain: &[gst::Element],
    fps: u32,
) -> Result<RecordVideo> {
    let output = input_appsrc("video")?;
    output.set_property("max-buffers", 0u64);
    output.set_property("min-latency", (OUTPUT_LATENCY_MS * 1_000_000) as i64);
    pipeline.add(&output).map_err(link_err)?;
    let caps = add_avc3_output(pipeline, output.upcast_ref())?;

    let input = input_appsrc("own")?;
    let sink = make("fakesink", "rec-own-sink")?;
    sink.set_property("sync", false);
    sink.set_property("async", false);
    let mut elements: Vec<gst::Element> = vec![input.clone().upcast()];
    elements.extend(own_chain.iter().cloned());
    elements.push(sink.clone());
    pipeline.add_many(&elements).map_err(link_err)?;
    gst::Element::link_many(&elements).map_err(link_err)?;
    let own_output = own_chain.last().expect("an encoding has elements").clone();
    let own = OwnBranch {
        input,
        encoder: own_chain[0].clone(),
        elements,
    };
    let switch = Arc::new(RecordSwitch {
        state: Mutex::new(State {
            switch: Switch::new(Origin::Live, (MAX_HELD_SECS * fps.max(1)) as usize),
            caps: None,
            live_ended: false,
            own_ended: false,
            ended: false,
        }),
        output,
        own,
        feeding: AtomicBool::new(false),
        refused: AtomicBool::new(false),
        own_dropped: AtomicU64::new(0),
    });
    feed_raw_frames(raw, &switch);
    for (origin, pad) in [
        (Origin::Live, live_tee.static_pad("sink")),
        (Origin::Own, sink.static_pad("sink")),
    ] {
        let pad = pad.expect("tee and fakesink have a sink pad");
        watch(
            &pad,
            &switch,
            move |switch, pad, buffer| {
                if let Some(frame) = in_running_time(pad, buffer.clone()) {
                    switch.offer(origin, frame);
                }
            },
            move |switch| switch.ended(origin),
        );
    }
    Ok(RecordVideo {
        switch,
        output: caps,
        own_output,
    })
}

/// An appsrc the switch feeds, named [`INPUT_PREFIX`]`name`: live, in time, never blocking
/// the thread that pushes, unbounded in bytes and time (the switch bounds what it holds).
fn input_appsrc(name: &str) -> Result<gst_app::AppSrc> {
    let src = make("appsrc", &format!("{INPUT_PREFIX}{name}"))?
        .downcast::<gst_app::AppSrc>()
        .expect("appsrc is an AppSrc");
    src.set_format(gst::Format::Time);
    src.set_is_live(true);
    src.set_property("block", false);
    src.set_property("max-bytes", 0u64);
    src.set_property("max-time", 0u64);
    Ok(src)
}

/// Adds `h264parse ! video/x-h264,stream-format=avc3` after `upstream` and returns the
/// capsfilter: the recording's video with SPS/PPS at every keyframe, so that changes of parameter
/// sets (and of size, when the recording follows the live rendition) stay playable and seekable
/// in one MP4.
pub(crate) fn add_avc3_output(
    pipeline: &gst::Pipeline,
    upstream: &gst::Element,
) -> Result<gst::Element> {
    let parse = make("h264parse", "rec-video-parse")?;
    parse.set_property("config-interval", -1i32);
    let caps = make("capsfilter", "rec-video-h264-caps")?;
    caps.set_property(
        "caps",
        gst::Caps::builder("video/x-h264")
            .field("stream-format", "avc3")
            .field("alignment", "au")
            .build(),
    );
    pipeline.add_many([&parse, &caps]).map_err(link_err)?;
    gst::Element::link_many([upstream, &parse, &caps]).map_err(link_err)?;
    Ok(caps)
}

/// Hands the raw frames to the own encoder while it runs, and ends its input with the video.
fn feed_raw_frames(raw: &gst::Element, switch: &Arc<RecordSwitch>) {
    let pad = raw.static_pad("src").expect("the raw video has a src pad");
    watch(
        &pad,
        switch,
        |switch, pad, buffer| {
            if switch.feeding() {
                switch.feed(pad, buffer);
            }
        },
        |switch| {
            let _ = switch.own.input.end_of_stream();
        },
    );
}

/// Calls `on_buffer` for each buffer passing `pad` and `on_eos` at its end-of-stream, while the
/// switch lives (the probes hold it weakly).
fn watch(
    pad: &gst::Pad,
    switch: &Arc<RecordSwitch>,
    on_buffer: impl Fn(&RecordSwitch, &gst::Pad, &gst::Buffer) + Send + Sync + 'static,
    on_eos: impl Fn(&RecordSwitch) + Send + Sync + 'static,
) {
    let weak = Arc::downgrade(switch);
    pad.add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM,
        move |pad, info| {
            let Some(switch) = weak.upgrade() else {
                return gst::PadProbeReturn::Ok;
            };
            match &info.data {
                Some(gst::PadProbeData::Buffer(buffer)) => on_buffer(&switch, pad, buffer),
                Some(gst::PadProbeData::Event(e)) if e.type_() == gst::EventType::Eos => {
                    on_eos(&switch)
                }
                _ => {}
            }
            gst::PadProbeReturn::Ok
        },
    );
}

impl RecordSwitch {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// True while the own encoder takes raw frames.
    pub fn feeding(&self) -> bool {
        self.feeding.load(Ordering::Relaxed)
    }

    /// Video encoders at work for this session: the live one, and the own one while it runs.
    pub fn encoders(&self) -> u32 {
        1 + u32::from(self.feeding())
    }

    /// True when `element` belongs to the own encoder's branch.
    pub fn owns(&self, element: &gst::Object) -> bool {
        self.own
            .elements
            .iter()
            .any(|e| e.upcast_ref::<gst::Object>() == element)
    }

    /// The live stream went below full quality: the own encoder starts (asked for a keyframe
    /// first) and the recording hands over to it. Returns false when the own encoder may not
    /// run; nothing happens when it already does.
    pub fn use_own(&self) -> bool {
        if self.refused.load(Ordering::Relaxed) {
            return false;
        }
        let mut out = Vec::new();
        let mut state = self.lock();
        if state.ended || state.switch.target() == Origin::Own {
            return true;
        }
        if !self.feeding.swap(true, Ordering::Relaxed) {
            log::info!("recording: the live stream is below full quality; own encoder started");
            if let Some(pad) = self.own.encoder.static_pad("src") {
                let _ = pad.send_event(
                    gst_video::UpstreamForceKeyUnitEvent::builder()
                        .all_headers(true)
                        .build(),
                );
            }
        }
        state.switch.switch_to(Origin::Own, &mut out);
        self.push(&mut state, out);
        true
    }

    /// The live stream is back at full quality: the recording hands back to the live encoder at
    /// its next keyframe. Returns true when a hand-over started (the caller asks the live
    /// encoder for a keyframe).
    pub fn use_live(&self) -> bool {
        let mut out = Vec::new();
        let mut state = self.lock();
        if state.ended || state.switch.target() == Origin::Live {
            return false;
        }
        state.switch.switch_to(Origin::Live, &mut out);
        let handing_over =
            state.switch.target() == Origin::Live && state.switch.current() == Origin::Own;
        if !handing_over {
            // Called off before the own encoder's keyframe: it is not needed.
            self.feeding.store(false, Ordering::Relaxed);
        }
        self.push(&mut state, out);
        handing_over
    }

    /// The own encoder failed (a device may refuse a second hardware session): its branch is
    /// taken out of `pipeline`, and from now on the recording follows the live rendition, from
    /// the live encoder's next keyframe (the caller asks for one). Returns false when it had
    /// failed before.
    pub fn fail_own(&self, pipeline: &gst::Pipeline) -> bool {
        if self.refused.swap(true, Ordering::Relaxed) {
            return false;
        }
        self.feeding.store(false, Ordering::Relaxed);
        for element in &self.own.elements {
            let _ = element.set_state(gst::State::Null);
        }
        let _ = pipeline.remove_many(&self.own.elements);
        let mut out = Vec::new();
        let mut state = self.lock();
        state.switch.switch_to(Origin::Live, &mut out);
        state.switch.ended(Origin::Own, &mut out);
        self.push(&mut state, out);
        drop(state);
        self.ended(Origin::Own);
        true
    }

    fn feed(&self, pad: &gst::Pad, buffer: &gst::Buffer) {
        if self.own.input.current_level_buffers() >= OWN_INPUT_FRAMES {
            if self.own_dropped.fetch_add(1, Ordering::Relaxed) == 0 {
                log::warn!("the recording's own encoder is behind; dropping raw frames for it");
            }
            return;
        }
        let Some(running) = buffer.pts().and_then(|t| running_time(pad, t)) else {
            return;
        };
        if let Some(caps) = pad.current_caps()
            && self.own.input.caps().as_ref() != Some(&caps)
        {
            // The raw pictures' own caps, so that the own encoder's output describes them as the
            // live encoder's does.
            self.own.input.set_caps(Some(&caps));
        }
        let mut buffer = buffer.clone();
        buffer.make_mut().set_pts(running);
        let _ = self.own.input.push_buffer(buffer);
    }

    fn offer(&self, origin: Origin, frame: Encoded) {
        let mut out = Vec::new();
        let mut state = self.lock();
        if state.ended {
            return;
        }
        let handover = state.switch.offer(origin, frame, &mut out);
        self.push(&mut state, out);
        drop(state);
        match handover {
            Some(Handover::Done {
                to: Origin::Live,
                at,
            }) => {
                self.feeding.store(false, Ordering::Relaxed);
                log::info!("recording: back on the live encoder at {at} ns; own encoder idle");
            }
            Some(Handover::Done {
                to: Origin::Own,
                at,
            }) => {
                log::info!("recording: on its own encoder from {at} ns");
            }
            Some(Handover::GaveUp { to, held }) => {
                log::warn!(
                    "recording: no keyframe from the {to:?} encoder in {held} frames; staying"
                );
                if to == Origin::Own {
                    self.feeding.store(false, Ordering::Relaxed);
                }
            }
            None => {}
        }
    }

    /// `origin` gives no more frames (its end-of-stream, or the own encoder failed). Once both
    /// have ended, whatever is still held goes to the recording and it ends too.
    fn ended(&self, origin: Origin) {
        let mut out = Vec::new();
        let mut state = self.lock();
        match origin {
            Origin::Live => state.live_ended = true,
            Origin::Own => state.own_ended = true,
        }
        state.switch.ended(origin, &mut out);
        let finished = state.live_ended && state.own_ended && !state.ended;
        if finished {
            state.switch.finish(&mut out);
            state.ended = true;
        }
        self.push(&mut state, out);
        if finished {
            let _ = self.output.end_of_stream();
            let dropped = self.own_dropped.load(Ordering::Relaxed);
            if dropped > 0 {
                log::warn!("the recording's own encoder was too slow for {dropped} frames");
            }
        }
    }

    /// Gives `frames` to the recording, in order (under the state lock).
    fn push(&self, state: &mut State, frames: Vec<Encoded>) {
        for frame in frames {
            if !state
                .caps
                .as_ref()
                .is_some_and(|c| same_stream(c, &frame.caps))
            {
                log::debug!("recording's video: {}", frame.caps);
                self.output.set_caps(Some(&frame.caps));
                state.caps = Some(frame.caps);
            }
            if let Err(e) = self.output.push_buffer(frame.buffer) {
                log::debug!("recording's video input refused a frame: {e:?}");
            }
        }
    }
}

/// True when two encodings' caps describe the same stream for the recording: the same size and
/// parameter sets. Other fields (colorimetry, multiview) may differ between two encoders of the
/// same pictures, and a caps change would make the muxer start a new file.
fn same_stream(a: &gst::Caps, b: &gst::Caps) -> bool {
    let key = |caps: &gst::Caps| {
        caps.structure(0).map(|s| {
            let codec_data = s.get::<gst::Buffer>("codec_data").ok();
            (
                s.get::<i32>("width").ok(),
                s.get::<i32>("height").ok(),
                codec_data.and_then(|b| b.map_readable().ok().map(|m| m.to_vec())),
            )
        })
    };
    a == b || key(a) == key(b)
}

/// `pts` of a buffer on `pad` in running time.
fn running_time(pad: &gst::Pad, pts: gst::ClockTime) -> Option<gst::ClockTime> {
    pad.sticky_event::<gst::event::Segment>(0).and_then(|e| {
        e.segment()
            .downcast_ref::<gst::format::Time>()
            .and_then(|s| s.to_running_time(pts))
    })
}

#[cfg(test)]
mod tests {
    use std::process::Command;
    use std::time::Duration;

    use super::*;
    use crate::config::{SessionConfig, StreamProfile};
    use crate::media::encoded::{EncodedOutput, KeyframeRequest, Track};

    /// The live output of a pipeline without a connection: keeps the way to ask for keyframes.
    #[derive(Default)]
    struct Keyframes(Mutex<Option<KeyframeRequest>>);

    impl EncodedOutput for Keyframes {
        fn take(&self, _: Track, _: Encoded) {}
        fn end(&self, _: Track) {}
        fn attach(&self, keyframes: KeyframeRequest) {
            *self.0.lock().unwrap() = Some(keyframes);
        }
    }

    /// Presentation times of the video packets of `path`, seconds, with what ffmpeg says when it
    /// decodes the file (nothing for a clean one).
    fn video_times(path: &std::path::Path) -> (Vec<f64>, String) {
        let probe = Command::new("ffprobe")
            .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
            .args(["packet=pts_time", "-of", "csv=p=0"])
            .arg(path)
            .output()
            .expect("ffprobe (Debian ffmpeg) runs");
        let mut times: Vec<f64> = String::from_utf8_lossy(&probe.stdout)
            .lines()
            .filter_map(|l| l.trim_end_matches(',').parse().ok())
            .collect();
        times.sort_by(f64::total_cmp);
        let decode = Command::new("ffmpeg")
            .args(["-v", "error", "-nostdin", "-i"])
            .arg(path)
            .args(["-f", "null", "-"])
            .output()
            .expect("ffmpeg runs");
        (
            times,
            String::from_utf8_lossy(&decode.stderr).trim().to_string(),
        )
    }

    #[test]
    fn a_failed_own_encoder_leaves_the_recording_on_the_live_encoder() {
        crate::media::elements::init().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let config = SessionConfig::builder("rtmp://127.0.0.1:1935/live/unused")
            .profile(StreamProfile::P270)
            .record_to(dir.path())
            .build()
            .unwrap();
        let keyframes = Arc::new(Keyframes::default());
        let media = crate::media::pipeline::build(&config, keyframes.clone()).unwrap();
        let record = media
            .record
            .clone()
            .expect("recording + adaptive bitrate: a switch");
        let bus = media.pipeline.bus().unwrap();
        media.pipeline.set_state(gst::State::Playing).unwrap();
        std::thread::sleep(Duration::from_secs(1));
        assert_eq!(record.encoders(), 1, "one encoder at full quality");
        assert!(record.use_own());
        assert_eq!(record.encoders(), 2);
        std::thread::sleep(Duration::from_millis(1500));

        // The device takes the second encoder session back.
        let encoder = media.pipeline.by_name("rec-own-video-encoder").unwrap();
        encoder.post_error_message(gst::error_msg!(
            gst::LibraryError::Init,
            ["no second encoder session"]
        ));
        let message = bus
            .timed_pop_filtered(gst::ClockTime::from_seconds(5), &[gst::MessageType::Error])
            .expect("the error reaches the bus");
        let gst::MessageView::Error(err) = message.view() else {
            unreachable!("filtered for errors")
        };
        assert!(
            record.owns(err.src().unwrap()),
            "the error is the own encoder's"
        );
        assert!(record.fail_own(&media.pipeline));
        assert!(!record.fail_own(&media.pipeline), "handled once");
        assert_eq!(record.encoders(), 1);
        assert!(!record.use_own(), "a failed own encoder does not run again");
        keyframes.0.lock().unwrap().as_ref().unwrap().request();
        std::thread::sleep(Duration::from_secs(2));

        // The session ends as ever: the branch taken out does not hold up the end-of-stream.
        media.end_of_stream();
        let end = bus
            .timed_pop_filtered(
                gst::ClockTime::from_seconds(10),
                &[gst::MessageType::Eos, gst::MessageType::Error],
            )
            .expect("the pipeline drains");
        assert!(matches!(end.view(), gst::MessageView::Eos(_)), "{end:?}");
        media.pipeline.set_state(gst::State::Null).unwrap();

        let (times, errors) = video_times(&dir.path().join("fieldcast-00000.mp4"));
        assert!(errors.is_empty(), "decoding the replay: {errors}");
        let largest = times.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
        let secs = times.last().unwrap() - times[0];
        eprintln!(
            "replay: {} frames over {secs:.2} s, largest step {:.0} ms",
            times.len(),
            largest * 1000.0
        );
        assert!(secs > 4.0, "{secs:.2} s of video");
        // What the failed encoder never gave is missing: the frames until the live encoder's
        // keyframe, asked for at once.
        assert!(largest < 0.5, "a {:.0} ms gap", largest * 1000.0);
    }
}
