//! The live output branch: FLV over RTMP(S) via rtmp2sink, or MPEG-TS over SRT via srtsink.

use gstreamer as gst;
use gstreamer::prelude::*;

use super::target::IngestTarget;
use crate::error::Result;
use crate::media::elements::make;
use crate::media::sources::link_err;

/// Name of the element that writes to the ingest; errors from it are connection errors.
pub const LIVE_SINK: &str = "live-sink";

/// Seconds rtmp2sink waits on a blocked socket before it reports an error.
const RTMP_TIMEOUT_SECS: u32 = 10;

/// Adds the muxer and network sink for `target`, fed from the encoded tees; returns the sink.
pub(crate) fn add_live_branch(
    pipeline: &gst::Pipeline,
    target: &IngestTarget,
    video_tee: &gst::Element,
    audio_tee: &gst::Element,
) -> Result<gst::Element> {
    let vq = make("queue", "live-video-queue")?;
    let aq = make("queue", "live-audio-queue")?;
    let (video_in, mux, sink) = match target {
        IngestTarget::Rtmp { url, .. } => {
            let mux = make("flvmux", "live-mux")?;
            mux.set_property("streamable", true);
            let sink = make("rtmp2sink", LIVE_SINK)?;
            sink.set_property("location", url.as_str());
            sink.set_property("timeout", RTMP_TIMEOUT_SECS);
            (None, mux, sink)
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
            let sink = make("srtsink", LIVE_SINK)?;
            sink.set_property("uri", uri.as_str());
            (Some((parse, caps)), mux, sink)
        }
    };
    pipeline
        .add_many([&vq, &aq, &mux, &sink])
        .map_err(link_err)?;
    video_tee.link(&vq).map_err(link_err)?;
    audio_tee.link(&aq).map_err(link_err)?;
    match &video_in {
        Some((parse, caps)) => {
            pipeline.add_many([parse, caps]).map_err(link_err)?;
            gst::Element::link_many([&vq, parse, caps]).map_err(link_err)?;
            caps.link(&mux).map_err(link_err)?;
            aq.link(&mux).map_err(link_err)?;
        }
        None => {
            vq.link_pads(Some("src"), &mux, Some("video"))
                .map_err(link_err)?;
            aq.link_pads(Some("src"), &mux, Some("audio"))
                .map_err(link_err)?;
        }
    }
    mux.link(&sink).map_err(link_err)?;
    Ok(sink)
}

/// Bytes an RTMP connection writes before any media: handshake (C0+C1+C2 = 3073 bytes) and the
/// connect / createStream / publish commands (well under 1 KiB).
const RTMP_SETUP_BYTES: u64 = 4096;

/// True once media bytes (not just the protocol set-up) have reached the ingest.
pub(crate) fn media_flowing(target: &IngestTarget, sink: &gst::Element) -> bool {
    let setup = match target {
        IngestTarget::Rtmp { .. } => RTMP_SETUP_BYTES,
        // srtsink counts payload only; the SRT handshake is not in `bytes-sent-total`.
        IngestTarget::Srt { .. } => 0,
    };
    bytes_sent(sink) > setup
}

/// Bytes the sink has written to the network so far, from its `stats` structure.
pub(crate) fn bytes_sent(sink: &gst::Element) -> u64 {
    let stats = sink.property::<Option<gst::Structure>>("stats");
    let Some(stats) = stats else { return 0 };
    for field in ["out-bytes-total", "bytes-sent-total", "bytes-sent"] {
        if let Ok(v) = stats.get::<u64>(field) {
            return v;
        }
        if let Ok(v) = stats.get::<i64>(field) {
            return v.max(0) as u64;
        }
    }
    0
}
