//! The latency probe's receiver: plays a stream back from the ingest and reads the capture-time
//! stamps painted by the test source (`Source::Test { latency_stamp: true }`).

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

/// Plays `url` (rtmp:// or srt://, as a player would) for `duration` and reports the latency from
/// capture to decoded frame. Stops early with an error if the stream cannot be played.
pub fn measure_latency(url: &str, duration: Duration) -> Result<LatencyReport> {
    init()?;
    let target = IngestTarget::parse(url)?;
    let (source_factory, source_property, location, demux_factory) = match target {
        IngestTarget::Rtmp { url, .. } => ("rtmp2src", "location", url, "flvdemux"),
        IngestTarget::Srt { uri } => ("srtsrc", "uri", uri, "tsdemux"),
    };
    let needed = [
        source_factory,
        demux_factory,
        "h264parse",
        "avdec_h264",
        "appsink",
        "fakesink",
    ];
    if let Some(m) = needed.iter().find(|f| !is_available(f)) {
        return Err(missing(m));
    }
    let pipeline = gst::Pipeline::with_name("fieldcast-probe");
    let source = make(source_factory, "probe-source")?;
    source.set_property(source_property, location.as_str());
    let demux = make(demux_factory, "probe-demux")?;
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
    link_by_kind(&demux, video[0].clone(), audio.clone());
    let sink = video[5]
        .clone()
        .downcast::<gst_app::AppSink>()
        .expect("appsink is an AppSink");
    let samples = Arc::new(Mutex::new((Vec::<u64>::new(), 0usize)));
    let collected = samples.clone();
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let arrived = probe::now_ms();
                let (Some(buffer), Some(caps)) = (sample.buffer(), sample.caps()) else {
                    return Ok(gst::FlowSuccess::Ok);
                };
                let Ok(info) = gst_video::VideoInfo::from_caps(caps) else {
                    return Ok(gst::FlowSuccess::Ok);
                };
                let stamp = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, &info)
                    .ok()
                    .filter(|f| probe::fits(f.width() as usize, f.height() as usize))
                    .and_then(|f| probe::read(f.plane_data(0).ok()?, f.plane_stride()[0] as usize));
                let mut s = collected.lock().unwrap_or_else(|p| p.into_inner());
                match stamp {
                    Some(ms) => s.0.push(arrived.saturating_sub(ms)),
                    None => s.1 += 1,
                }
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    let failure = play_until(&pipeline, duration, |reason| Error::IngestUnreachable {
        url: url.to_string(),
        reason,
    })?;
    let (latencies, unreadable) =
        std::mem::take(&mut *samples.lock().unwrap_or_else(|p| p.into_inner()));
    match failure {
        Some(e) if latencies.is_empty() => Err(e),
        _ => Ok(LatencyReport::from_samples(latencies, unreadable)),
    }
}

/// A FieldCast message found in a received stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamMessage {
    /// Time of the carrying frame, ms since the first video frame received.
    pub stream_ms: u64,
    /// The JSON payload.
    pub json: String,
}

/// Reads every FieldCast SEI message from an FLV stream: a file (e.g. what the ingest recorded)
/// or an `rtmp://` URL played for at most `limit`. Messages repeated on keyframes appear once per
/// carrying frame.
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
    let demux = make("flvdemux", "sei-demux")?;
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
    let failure = play_until(&pipeline, limit, |reason| Error::Pipeline {
        element: "sei-reader".into(),
        message: format!("cannot read {location}: {reason}"),
    })?;
    if let Some(e) = failure {
        return Err(e);
    }
    let messages = std::mem::take(&mut found.lock().unwrap_or_else(|p| p.into_inner()).1);
    Ok(messages)
}

/// Plays `pipeline` until end-of-stream, an error (turned into an [`Error`] by `on_error`) or
/// `limit`, then stops it. `Err` only when it cannot start.
fn play_until(
    pipeline: &gst::Pipeline,
    limit: Duration,
    on_error: impl Fn(String) -> Error,
) -> Result<Option<Error>> {
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| Error::Pipeline {
            element: pipeline.name().to_string(),
            message: e.to_string(),
        })?;
    let bus = pipeline.bus().expect("a pipeline has a bus");
    let deadline = Instant::now() + limit;
    let mut failure = None;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(
            left.as_millis().min(200) as u64
        )) else {
            continue;
        };
        match msg.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => {
                failure = Some(on_error(crate::media::bus::describe(e)));
                break;
            }
            _ => {}
        }
    }
    let _ = pipeline.set_state(gst::State::Null);
    Ok(failure)
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
