//! The latency probe's receiver: plays a stream back from the ingest and reads the capture-time
//! stamps painted into the test source's frames
//! ([`SessionConfigBuilder::latency_stamp`](crate::config::SessionConfigBuilder::latency_stamp)),
//! once ([`measure_latency`], [`play_frames`]) or across publisher outages ([`follow_frames`]).
//! It also reads the FieldCast messages a stream carries ([`read_stream_messages`]). QA only
//! (feature `qa`): a phone app publishes, it never plays its own stream back.

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;
use gstreamer_video::prelude::*;

use crate::error::{Error, Result};
use crate::media::elements::{init, is_available, make, missing};
use crate::media::sources::link_err;
use crate::probe::{self, LatencyReport};
use crate::uplink::target::IngestTarget;

/// How long [`follow_frames`] waits after a play ended before it opens the stream again.
pub const RETRY_PAUSE: Duration = Duration::from_millis(200);
/// How often a playing pipeline's bus is read (and decoded frames handed on).
const POLL: Duration = Duration::from_millis(50);

/// One decoded frame as the receiver saw it (one line of `fieldcast probe --frames`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FrameArrival {
    /// When the frame came out of the decoder, ms since the Unix epoch ([`probe::now_ms`]).
    pub wall_ms: u64,
    /// The capture time stamped into the frame, when it could be read.
    pub capture_ms: Option<u64>,
    /// `wall_ms - capture_ms`, when the stamp could be read.
    pub latency_ms: Option<u64>,
    /// The buffer's presentation time in the player, ms.
    pub pts_ms: Option<u64>,
    /// Frame width in pixels.
    pub width: u32,
    /// Frame height in pixels.
    pub height: u32,
}

impl FrameArrival {
    /// A frame decoded at `wall_ms`; its latency follows from the stamp, if any.
    pub fn new(
        wall_ms: u64,
        capture_ms: Option<u64>,
        pts_ms: Option<u64>,
        (width, height): (u32, u32),
    ) -> Self {
        FrameArrival {
            wall_ms,
            capture_ms,
            latency_ms: capture_ms.map(|c| wall_ms.saturating_sub(c)),
            pts_ms,
            width,
            height,
        }
    }
}

/// Latency samples gathered frame by frame.
#[derive(Debug, Default)]
struct LatencySamples {
    latencies: Vec<u64>,
    unreadable: usize,
}

impl LatencySamples {
    fn add(&mut self, frame: &FrameArrival) {
        match frame.latency_ms {
            Some(ms) => self.latencies.push(ms),
            None => self.unreadable += 1,
        }
    }

    fn frames(&self) -> usize {
        self.latencies.len() + self.unreadable
    }

    fn report(self) -> LatencyReport {
        LatencyReport::from_samples(self.latencies, self.unreadable)
    }
}

/// What [`follow_frames`] saw over its whole duration.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FollowReport {
    /// Latency over every frame of every play.
    #[serde(flatten)]
    pub latency: LatencyReport,
    /// Times the stream was opened: the first play and every retry.
    pub plays: u32,
    /// Plays that delivered at least one frame.
    pub plays_with_frames: u32,
    /// Why the last play that ended before the duration ended (end of stream or an error).
    pub last_interruption: Option<String>,
}

/// How one play of the stream ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PlayEnd {
    /// The deadline came first.
    Deadline,
    /// The server ended the stream.
    EndOfStream,
    /// The pipeline failed (could not start, connection refused or closed, decode error...).
    Failed(String),
}

impl PlayEnd {
    /// Why the play stopped before the deadline, if it did.
    fn interruption(self) -> Option<String> {
        match self {
            PlayEnd::Deadline => None,
            PlayEnd::EndOfStream => Some("end of stream".into()),
            PlayEnd::Failed(reason) => Some(reason),
        }
    }
}

/// Plays `url` (rtmp:// or srt://, as a player would) for `duration` and reports the latency from
/// capture to decoded frame. Stops early with an error if the stream cannot be played.
pub fn measure_latency(url: &str, duration: Duration) -> Result<LatencyReport> {
    play_frames(url, duration, |_| {})
}

/// Like [`measure_latency`], also handing every decoded frame to `on_frame` (on the calling
/// thread). Stops when the stream ends.
pub fn play_frames(
    url: &str,
    duration: Duration,
    mut on_frame: impl FnMut(FrameArrival),
) -> Result<LatencyReport> {
    let player = Player::new(url)?;
    let (tx, frames) = mpsc::channel();
    let pipeline = player.build(tx)?;
    let mut samples = LatencySamples::default();
    let end = play(&pipeline, Instant::now() + duration, || {
        deliver(&frames, &mut samples, &mut on_frame)
    });
    deliver(&frames, &mut samples, &mut on_frame);
    match end {
        PlayEnd::Failed(reason) if samples.latencies.is_empty() => Err(Error::IngestUnreachable {
            url: player.redacted.clone(),
            cause: crate::uplink::reconnect::classify(&reason),
            reason,
        }),
        _ => Ok(samples.report()),
    }
}

/// Plays `url` until `duration` has passed, opening it again [`RETRY_PAUSE`] after every end of
/// stream or error (a publisher outage: the ingest closes its players), and hands every decoded
/// frame to `on_frame` on the calling thread. `Err` only for a URL it cannot play at all (bad
/// URL, missing GStreamer element); a stream that never comes is a report without frames.
pub fn follow_frames(
    url: &str,
    duration: Duration,
    mut on_frame: impl FnMut(FrameArrival),
) -> Result<FollowReport> {
    let player = Player::new(url)?;
    let deadline = Instant::now() + duration;
    let (tx, frames) = mpsc::channel();
    let mut samples = LatencySamples::default();
    let (mut plays, mut plays_with_frames, mut last_interruption) = (0, 0, None);
    while Instant::now() < deadline {
        let before = samples.frames();
        let end = match player.build(tx.clone()) {
            Ok(pipeline) => play(&pipeline, deadline, || {
                deliver(&frames, &mut samples, &mut on_frame)
            }),
            Err(e) => PlayEnd::Failed(e.to_string()),
        };
        deliver(&frames, &mut samples, &mut on_frame);
        plays += 1;
        plays_with_frames += u32::from(samples.frames() > before);
        if let Some(why) = end.interruption() {
            log::debug!("probe: play {plays} of {} ended: {why}", player.redacted);
            last_interruption = Some(why);
        }
        std::thread::sleep(RETRY_PAUSE.min(deadline.saturating_duration_since(Instant::now())));
    }
    Ok(FollowReport {
        latency: samples.report(),
        plays,
        plays_with_frames,
        last_interruption,
    })
}

/// Hands every frame waiting in the channel to the samples and to `on_frame`.
fn deliver(
    frames: &Receiver<FrameArrival>,
    samples: &mut LatencySamples,
    on_frame: &mut impl FnMut(FrameArrival),
) {
    for frame in frames.try_iter() {
        samples.add(&frame);
        on_frame(frame);
    }
}

/// The elements that play one kind of URL: checked once, built for every play.
struct Player {
    source: &'static str,
    property: &'static str,
    location: String,
    /// The URL without its stream key, for messages.
    redacted: String,
    demux: &'static str,
}

impl Player {
    /// Parses `url` and checks that every element a play needs is installed.
    fn new(url: &str) -> Result<Self> {
        init()?;
        let target = IngestTarget::parse(url)?;
        let redacted = target.redacted();
        let player = match target {
            IngestTarget::Rtmp { url, .. } => Player {
                source: "rtmp2src",
                property: "location",
                location: url,
                redacted,
                demux: "flvdemux",
            },
            IngestTarget::Srt { uri } => Player {
                source: "srtsrc",
                property: "uri",
                location: uri,
                redacted,
                demux: "tsdemux",
            },
        };
        let needed = [
            player.source,
            player.demux,
            "h264parse",
            "avdec_h264",
            "appsink",
            "fakesink",
        ];
        match needed.iter().find(|f| !is_available(f)) {
            Some(m) => Err(missing(m)),
            None => Ok(player),
        }
    }

    /// A new pipeline, source -> demux -> decode -> appsink, that sends every decoded frame to
    /// `frames`; audio goes to a fakesink.
    fn build(&self, frames: Sender<FrameArrival>) -> Result<gst::Pipeline> {
        let pipeline = gst::Pipeline::with_name("fieldcast-probe");
        let source = make(self.source, "probe-source")?;
        source.set_property(self.property, self.location.as_str());
        let demux = make(self.demux, "probe-demux")?;
        let video: Vec<gst::Element> = vec![
            make("queue", "probe-video-queue")?,
            make("h264parse", "probe-parse")?,
            make("avdec_h264", "probe-decode")?,
            make("videoconvert", "probe-convert")?,
            make("capsfilter", "probe-caps")?,
            make("appsink", "probe-sink")?,
        ];
        video[4].set_property(
            "caps",
            gst::Caps::builder("video/x-raw")
                .field("format", "I420")
                .build(),
        );
        video[5].set_property("sync", false);
        video[5].set_property("async", false);
        let audio = make("fakesink", "probe-audio-sink")?;
        audio.set_property("sync", false);
        // Neither sink waits for preroll: the demuxer would block on audio before video arrives.
        audio.set_property("async", false);
        pipeline
            .add_many([&source, &demux, &audio])
            .map_err(link_err)?;
        pipeline.add_many(&video).map_err(link_err)?;
        source.link(&demux).map_err(link_err)?;
        gst::Element::link_many(&video).map_err(link_err)?;
        link_by_kind(&demux, video[0].clone(), audio);
        let sink = video[5]
            .clone()
            .downcast::<gst_app::AppSink>()
            .expect("appsink is an AppSink");
        sink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    if let Some(frame) = arrival(&sample, probe::now_ms()) {
                        // The receiving side is gone only once the play is over.
                        let _ = frames.send(frame);
                    }
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
        Ok(pipeline)
    }
}

/// The frame in a decoded sample, with its stamp read if it carries one.
fn arrival(sample: &gst::Sample, wall_ms: u64) -> Option<FrameArrival> {
    let buffer = sample.buffer()?;
    let info = gst_video::VideoInfo::from_caps(sample.caps()?).ok()?;
    let capture_ms = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, &info)
        .ok()
        .filter(|f| probe::fits(f.width() as usize, f.height() as usize))
        .and_then(|f| probe::read(f.plane_data(0).ok()?, f.plane_stride()[0] as usize));
    Some(FrameArrival::new(
        wall_ms,
        capture_ms,
        buffer.pts().map(gst::ClockTime::mseconds),
        (info.width(), info.height()),
    ))
}

/// A FieldCast message found in a received stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamMessage {
    /// Time of the carrying frame, ms since the first video frame received.
    pub stream_ms: u64,
    /// The JSON payload.
    pub json: String,
}

/// A location for messages: an `rtmp[s]://` URL without its stream key, a file path as it is.
fn shown_location(location: &str) -> String {
    if location.contains("://") {
        crate::uplink::target::redact_url(location)
    } else {
        location.to_string()
    }
}

/// Reads every FieldCast SEI message from an FLV stream (a file, e.g. what the ingest recorded,
/// or an `rtmp://` URL played for at most `limit`) or an MP4 file (the replay). Messages repeated
/// on keyframes appear once per carrying frame.
pub fn read_stream_messages(location: &str, limit: Duration) -> Result<Vec<StreamMessage>> {
    init()?;
    let pipeline = gst::Pipeline::with_name("fieldcast-sei-reader");
    let source = if location.starts_with("rtmp://") || location.starts_with("rtmps://") {
        let s = make("rtmp2src", "sei-source")?;
        s.set_property("location", location);
        s
    } else {
        let s = make("filesrc", "sei-source")?;
        s.set_property("location", location);
        s
    };
    let demux = make(
        if is_mp4_file(location) {
            "qtdemux"
        } else {
            "flvdemux"
        },
        "sei-demux",
    )?;
    let video = make("appsink", "sei-video")?;
    let audio = make("fakesink", "sei-audio")?;
    for sink in [&video, &audio] {
        sink.set_property("sync", false);
        sink.set_property("async", false);
    }
    pipeline
        .add_many([&source, &demux, &video, &audio])
        .map_err(link_err)?;
    source.link(&demux).map_err(link_err)?;
    link_by_kind(&demux, video.clone(), audio.clone());
    let found = Arc::new(Mutex::new((None::<u64>, Vec::<StreamMessage>::new())));
    let collected = found.clone();
    let sink = video
        .downcast::<gst_app::AppSink>()
        .expect("appsink is an AppSink");
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let (Some(buffer), Some(pts)) =
                    (sample.buffer(), sample.buffer().and_then(|b| b.pts()))
                else {
                    return Ok(gst::FlowSuccess::Ok);
                };
                let codec_data = sample
                    .caps()
                    .and_then(|c| c.structure(0))
                    .and_then(|s| s.get::<gst::Buffer>("codec_data").ok());
                let codec_map = codec_data.as_ref().and_then(|b| b.map_readable().ok());
                let length_size = crate::media::sei::length_size(codec_map.as_deref());
                let Ok(map) = buffer.map_readable() else {
                    return Ok(gst::FlowSuccess::Ok);
                };
                let mut state = collected.lock().unwrap_or_else(|p| p.into_inner());
                let first = *state.0.get_or_insert(pts.mseconds());
                for json in crate::media::sei::find_in_au(&map, length_size) {
                    state.1.push(StreamMessage {
                        stream_ms: pts.mseconds() - first,
                        json: String::from_utf8_lossy(&json).into_owned(),
                    });
                }
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    if let PlayEnd::Failed(reason) = play(&pipeline, Instant::now() + limit, || {}) {
        return Err(Error::Pipeline {
            element: "sei-reader".into(),
            message: format!("cannot read {}: {reason}", shown_location(location)),
        });
    }
    let messages = std::mem::take(&mut found.lock().unwrap_or_else(|p| p.into_inner()).1);
    Ok(messages)
}

/// True when `location` is a file in the ISO/MP4 format (its first box is `ftyp`).
fn is_mp4_file(location: &str) -> bool {
    let mut head = [0u8; 8];
    std::fs::File::open(location)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
        .is_ok_and(|()| &head[4..] == b"ftyp")
}

/// Plays `pipeline` until end-of-stream, an error or `deadline`, calling `tick` at least every
/// [`POLL`], then stops it.
fn play(pipeline: &gst::Pipeline, deadline: Instant, mut tick: impl FnMut()) -> PlayEnd {
    if let Err(e) = pipeline.set_state(gst::State::Playing) {
        let _ = pipeline.set_state(gst::State::Null);
        return PlayEnd::Failed(format!("cannot start playing: {e}"));
    }
    let bus = pipeline.bus().expect("a pipeline has a bus");
    let mut end = PlayEnd::Deadline;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let wait = gst::ClockTime::from_mseconds(left.min(POLL).as_millis() as u64);
        let message = bus.timed_pop(wait);
        tick();
        let Some(message) = message else {
            continue;
        };
        match message.view() {
            gst::MessageView::Eos(_) => end = PlayEnd::EndOfStream,
            gst::MessageView::Error(e) => end = PlayEnd::Failed(crate::media::bus::describe(e)),
            _ => continue,
        }
        break;
    }
    let _ = pipeline.set_state(gst::State::Null);
    end
}

/// Links each pad the demuxer announces (audio often first) to the video or audio branch.
fn link_by_kind(demux: &gst::Element, video: gst::Element, audio: gst::Element) {
    demux.connect_pad_added(move |_, pad| {
        let target = if pad.name().starts_with("video") {
            &video
        } else {
            &audio
        };
        if let Some(sink) = target.static_pad("sink").filter(|p| !p.is_linked()) {
            let _ = pad.link(&sink);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_knows_its_latency_when_its_stamp_was_read() {
        let stamped = FrameArrival::new(10_250, Some(10_000), Some(40), (480, 270));
        assert_eq!(stamped.latency_ms, Some(250));
        let plain = FrameArrival::new(10_250, None, None, (480, 270));
        assert_eq!(plain.latency_ms, None);
        // A sender clock ahead of the receiver's reads as no latency, not as a wrapped number.
        let ahead = FrameArrival::new(10_000, Some(10_005), None, (480, 270));
        assert_eq!(ahead.latency_ms, Some(0));
    }

    #[test]
    fn frames_serialise_as_one_flat_json_object() {
        let frame = FrameArrival::new(1_000, Some(900), Some(33), (640, 360));
        assert_eq!(
            serde_json::to_string(&frame).unwrap(),
            r#"{"wall_ms":1000,"capture_ms":900,"latency_ms":100,"pts_ms":33,"width":640,"height":360}"#
        );
        let plain = FrameArrival::new(1_000, None, None, (640, 360));
        assert_eq!(
            serde_json::to_string(&plain).unwrap(),
            r#"{"wall_ms":1000,"capture_ms":null,"latency_ms":null,"pts_ms":null,"width":640,"height":360}"#
        );
    }

    #[test]
    fn samples_count_stamped_and_unreadable_frames() {
        let mut samples = LatencySamples::default();
        for (i, stamp) in [Some(900), None, Some(800), Some(950)]
            .into_iter()
            .enumerate()
        {
            samples.add(&FrameArrival::new(1_000, stamp, Some(i as u64), (480, 270)));
        }
        assert_eq!(samples.frames(), 4);
        let report = samples.report();
        assert_eq!(
            (
                report.samples,
                report.unreadable,
                report.p50_ms,
                report.max_ms
            ),
            (3, 1, 100, 200)
        );
    }

    #[test]
    fn the_follow_report_flattens_the_percentiles() {
        let report = FollowReport {
            latency: LatencyReport::from_samples(vec![100, 200], 0),
            plays: 3,
            plays_with_frames: 2,
            last_interruption: Some("end of stream".into()),
        };
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["p95_ms"], 200);
        assert_eq!(json["samples"], 2);
        assert_eq!(json["plays"], 3);
        assert_eq!(json["last_interruption"], "end of stream");
    }

    #[test]
    fn only_an_early_end_is_an_interruption() {
        assert_eq!(PlayEnd::Deadline.interruption(), None);
        assert_eq!(
            PlayEnd::EndOfStream.interruption().as_deref(),
            Some("end of stream")
        );
        assert_eq!(
            PlayEnd::Failed("refused".into()).interruption().as_deref(),
            Some("refused")
        );
    }

    #[test]
    fn unplayable_urls_are_refused_before_any_play() {
        let err =
            follow_frames("http://example.com/live", Duration::from_secs(1), |_| {}).unwrap_err();
        assert!(
            matches!(
                err,
                Error::InvalidUrl { .. } | Error::UnsupportedScheme { .. }
            ),
            "{err}"
        );
    }
}
