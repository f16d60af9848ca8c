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
use crate::media::elements::{init, is_available, missing};
use crate::probe::{self, LatencyReport};
use crate::uplink::target::IngestTarget;

/// Plays `url` (rtmp:// or srt://, as a player would) for `duration` and reports the latency from
/// capture to decoded frame. Stops early with an error if the stream cannot be played.
pub fn measure_latency(url: &str, duration: Duration) -> Result<LatencyReport> {
    init()?;
    let target = IngestTarget::parse(url)?;
    let (source, demux) = match &target {
        IngestTarget::Rtmp { url, .. } => (format!("rtmp2src location=\"{url}\""), "flvdemux"),
        IngestTarget::Srt { uri } => (format!("srtsrc uri=\"{uri}\""), "tsdemux"),
    };
    let needed = [
        source.split(' ').next().unwrap_or_default(),
        demux,
        "h264parse",
        "avdec_h264",
        "appsink",
    ];
    if let Some(m) = needed.iter().find(|f| !is_available(f)) {
        return Err(missing(m));
    }
    let description = format!(
        "{source} ! {demux} name=demux demux. ! queue ! h264parse ! avdec_h264 ! videoconvert ! \
         video/x-raw,format=I420 ! appsink name=probe-sink sync=false"
    );
    let pipeline = gst::parse::launch(&description)
        .map_err(|e| Error::Pipeline {
            element: "probe-receiver".into(),
            message: e.to_string(),
        })?
        .downcast::<gst::Pipeline>()
        .expect("a launch line with several elements is a pipeline");
    let sink = pipeline
        .by_name("probe-sink")
        .and_downcast::<gst_app::AppSink>()
        .expect("the launch line has an appsink");
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
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| Error::Pipeline {
            element: "probe-receiver".into(),
            message: e.to_string(),
        })?;
    let bus = pipeline.bus().expect("a pipeline has a bus");
    let deadline = Instant::now() + duration;
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
                failure = Some(Error::IngestUnreachable {
                    url: url.to_string(),
                    reason: e.error().to_string(),
                });
                break;
            }
            _ => {}
        }
    }
    let _ = pipeline.set_state(gst::State::Null);
    let (latencies, unreadable) =
        std::mem::take(&mut *samples.lock().unwrap_or_else(|p| p.into_inner()));
    match failure {
        Some(e) if latencies.is_empty() => Err(e),
        _ => Ok(LatencyReport::from_samples(latencies, unreadable)),
    }
}
