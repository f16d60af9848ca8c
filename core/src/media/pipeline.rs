//! The media graph: source -> convert/scale -> H.264 / AAC -> tee -> live output (+ recording,
//! see [`super::record_switch`] for its video with the adaptive bitrate on).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use gstreamer as gst;
use gstreamer::prelude::*;

use super::elements::make;
use super::encoded::{EncodedOutput, add_taps};
use super::encoders::{
    BitrateControl, VideoEncoderKind, bitrate_control, choose_video_encoder, make_audio_encoder,
    make_recording_encoder, make_video_encoder,
};
use super::record_switch::{self, RecordSwitch};
use super::sources::{AppInput, add_source, link_err};
use super::tagging::StreamTagger;
use crate::config::{RecordConfig, SessionConfig};
use crate::error::{Error, Result};

/// Sample rate of the encoded audio (AAC in FLV wants 44.1 kHz).
const AUDIO_RATE: i32 = 44_100;

/// Counters updated by pad probes on the streaming threads and read once per second.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub input_frames: AtomicU64,
    pub output_frames: AtomicU64,
    pub video_bytes: AtomicU64,
    pub audio_bytes: AtomicU64,
}

/// A built, not yet started pipeline and the handles the session needs.
pub(crate) struct MediaPipeline {
    pub pipeline: gst::Pipeline,
    pub counters: Arc<Counters>,
    pub app: Option<AppInput>,
    pub encoder_kind: VideoEncoderKind,
    pub videorate: Option<gst::Element>,
    pub tagger: Arc<StreamTagger>,
    pub live: LiveVideo,
    /// The recording's choice of encoder, with a recording and the adaptive bitrate on (unless
    /// the device runs one video encoder at a time).
    pub record: Option<Arc<RecordSwitch>>,
}

/// The live stream's video encoding, which the adaptive bitrate steers.
pub(crate) struct LiveVideo {
    pub encoder: gst::Element,
    /// Whether the encoder takes a new bitrate while it runs.
    pub bitrate: BitrateControl,
    /// Size and frame rate of the live stream (only with the adaptive bitrate on).
    pub caps: Option<gst::Element>,
}

/// Builds the whole graph for a configuration; the live stream's encoded media goes to `output`.
pub(crate) fn build(
    config: &SessionConfig,
    output: Arc<dyn EncodedOutput>,
) -> Result<MediaPipeline> {
    let pipeline = gst::Pipeline::with_name("fieldcast");
    let counters = Arc::new(Counters::default());
    let size = config.profile.size();
    let source = add_source(&pipeline, &config.source, size, config.fps)?;

    // Video: [clocksync] [videorate] videoconvert videoscale caps queue encoder h264parse caps tee
    let mut chain: Vec<gst::Element> = vec![source.video.clone()];
    if source.needs_pacing {
        chain.push(make("clocksync", "video-pace")?);
    }
    let videorate = if source.needs_rate {
        let rate = make("videorate", "video-rate")?;
        chain.push(rate.clone());
        Some(rate)
    } else {
        None
    };
    let convert = make("videoconvert", "video-convert")?;
    let scale = make("videoscale", "video-scale")?;
    scale.set_property("add-borders", true);
    let raw_caps = make("capsfilter", "video-raw-caps")?;
    raw_caps.set_property("caps", raw_video_caps(size, config.fps));
    chain.extend([convert, scale, raw_caps.clone()]);
    pipeline.add_many(&chain[1..]).map_err(link_err)?;
    gst::Element::link_many(&chain).map_err(link_err)?;

    let encoder_kind = choose_video_encoder(config.encoder)?;
    // Live: [videoscale videorate caps] queue encoder h264parse caps tee
    let mut live = Vec::new();
    let live_caps = if config.adaptive {
        let scale = make("videoscale", "live-video-scale")?;
        scale.set_property("add-borders", true);
        let rate = make("videorate", "live-video-rate")?;
        rate.set_property("drop-only", true);
        let caps = make("capsfilter", "live-video-caps")?;
        caps.set_property("caps", raw_video_caps(size, config.fps));
        live.extend([scale, rate, caps.clone()]);
        Some(caps)
    } else {
        None
    };
    let encoded = encode_chain(
        "video",
        make_video_encoder(encoder_kind, config, "video-encoder")?,
    )?;
    live.push(make("queue", "video-encode-queue")?);
    live.extend(encoded.elements.iter().cloned());
    let video_tee = make("tee", "video-tee")?;
    live.push(video_tee.clone());
    pipeline.add_many(&live).map_err(link_err)?;
    raw_caps.link(&live[0]).map_err(link_err)?;
    gst::Element::link_many(&live).map_err(link_err)?;
    let encoder = encoded.encoder.clone();

    // Audio: [clocksync] audioconvert audioresample caps queue aac aacparse tee
    let mut achain: Vec<gst::Element> = vec![source.audio.clone()];
    if source.needs_pacing {
        achain.push(make("clocksync", "audio-pace")?);
    }
    let audio_caps = make("capsfilter", "audio-raw-caps")?;
    audio_caps.set_property(
        "caps",
        gst::Caps::builder("audio/x-raw")
            .field("rate", AUDIO_RATE)
            .field("channels", 1i32)
            .build(),
    );
    let audio_encoder = make_audio_encoder(config.audio_kbps)?;
    let audio_tee = make("tee", "audio-tee")?;
    achain.extend([
        make("audioconvert", "audio-convert")?,
        make("audioresample", "audio-resample")?,
        audio_caps,
        make("queue", "audio-encode-queue")?,
        audio_encoder.clone(),
        make("aacparse", "audio-parse")?,
        audio_tee.clone(),
    ]);
    pipeline.add_many(&achain[1..]).map_err(link_err)?;
    gst::Element::link_many(&achain).map_err(link_err)?;

    add_taps(&pipeline, &video_tee, &audio_tee, output)?;
    let mut tagged = vec![encoded.output.clone()];
    let mut record_switch = None;
    if let Some(record) = &config.record {
        let record_video = if !config.adaptive {
            video_tee.clone()
        } else if config.one_video_encoder {
            // The recording follows the live rendition.
            record_switch::add_avc3_output(&pipeline, &video_tee)?
        } else {
            // The adaptive bitrate changes the live stream's bitrate, size and frame rate; the
            // recording keeps full quality with an encoder of its own while it does.
            let own = encode_chain(
                "rec-own-video",
                make_recording_encoder(encoder_kind, config, "rec-own-video-encoder")?,
            )?;
            let video = record_switch::install(
                &pipeline,
                &raw_caps,
                &video_tee,
                &own.elements,
                config.fps,
            )?;
            tagged.push(video.own_output);
            record_switch = Some(video.switch);
            video.output
        };
        add_record_branch(&pipeline, record, &record_video, &audio_tee)?;
    }

    count_buffers(&source.video, &counters, |c, _| {
        c.input_frames.fetch_add(1, Ordering::Relaxed);
    });
    count_buffers(&encoder, &counters, |c, bytes| {
        c.output_frames.fetch_add(1, Ordering::Relaxed);
        c.video_bytes.fetch_add(bytes, Ordering::Relaxed);
    });
    count_buffers(&audio_encoder, &counters, |c, bytes| {
        c.audio_bytes.fetch_add(bytes, Ordering::Relaxed);
    });
    let tagger = StreamTagger::install(&tagged.iter().collect::<Vec<_>>(), config.fps);
    #[cfg(feature = "qa")]
    if config.latency_stamp {
        // Painted where the live stream has its final size, so the receiver can read it: the
        // test source's frames with the time they pass, an app's with the time it stamped.
        let final_size = live_caps.as_ref().unwrap_or(&raw_caps);
        match &config.source {
            crate::config::Source::App { .. } => {
                crate::probe::carry_app_stamps(&source.video, final_size, size)?
            }
            _ => crate::probe::stamp_capture_time(final_size, size)?,
        }
    }

    Ok(MediaPipeline {
        pipeline,
        counters,
        app: source.app,
        encoder_kind,
        videorate,
        tagger,
        live: LiveVideo {
            bitrate: bitrate_control(encoder_kind, &encoder),
            encoder,
            caps: live_caps,
        },
        record: record_switch,
    })
}

impl MediaPipeline {
    /// Ends the stream at the source, so that everything downstream drains and closes.
    pub fn end_of_stream(&self) {
        match &self.app {
            Some(app) => app.end_of_stream(),
            // Every source element but the recording's own inputs, which end when what feeds
            // them has ended (the pipeline's own end-of-stream would end them at once).
            None => {
                for source in self.pipeline.iterate_sources().into_iter().flatten() {
                    if !source.name().starts_with(record_switch::INPUT_PREFIX) {
                        source.send_event(gst::event::Eos::new());
                    }
                }
            }
        }
    }
}

/// Raw I420 video caps of `size` at `fps`.
pub(crate) fn raw_video_caps(size: (u32, u32), fps: u32) -> gst::Caps {
    gst::Caps::builder("video/x-raw")
        .field("format", "I420")
        .field("width", size.0 as i32)
        .field("height", size.1 as i32)
        .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
        .field("framerate", gst::Fraction::new(fps as i32, 1))
        .build()
}

/// An encoding of the raw video: encoder, h264parse, AVC caps.
struct EncodeChain {
    elements: Vec<gst::Element>,
    encoder: gst::Element,
    /// The last element: AVC access units leave here.
    output: gst::Element,
}

/// Builds (does not add) an encode chain of `encoder`, whose element names start with `prefix`.
fn encode_chain(prefix: &str, encoder: gst::Element) -> Result<EncodeChain> {
    let parse = make("h264parse", &format!("{prefix}-parse"))?;
    parse.set_property("config-interval", -1i32);
    let output = make("capsfilter", &format!("{prefix}-h264-caps"))?;
    output.set_property(
        "caps",
        gst::Caps::builder("video/x-h264")
            .field("stream-format", "avc")
            .field("alignment", "au")
            .build(),
    );
    Ok(EncodeChain {
        elements: vec![encoder.clone(), parse, output.clone()],
        encoder,
        output,
    })
}

/// How often the recording's index is rewritten, ns: at most this much is lost when the app is
/// killed.
const RECORD_INDEX_EVERY_NS: u64 = 1_000_000_000;
/// Index room reserved beyond a segment's length, seconds.
const RECORD_RESERVE_EXTRA_S: u64 = 60;

/// Records the encoded streams into MP4 segments, independent of the live output.
fn add_record_branch(
    pipeline: &gst::Pipeline,
    record: &RecordConfig,
    video: &gst::Element,
    audio_tee: &gst::Element,
) -> Result<()> {
    std::fs::create_dir_all(&record.dir)
        .map_err(|e| Error::Recording(format!("cannot create {}: {e}", record.dir.display())))?;
    let mux = make("splitmuxsink", "rec-sink")?;
    mux.set_property(
        "location",
        record
            .dir
            .join("fieldcast-%05d.mp4")
            .to_string_lossy()
            .as_ref(),
    );
    // Robust muxing: the index has room reserved at the start of each segment and is rewritten
    // every second, so a segment stays readable up to its last second when the app is killed
    // or the power fails (a plain MP4 has no index until it is finished: the whole segment would
    // be lost). The reserve covers a whole segment (about 0.7 MB of header for 10 minutes).
    let muxer = make("mp4mux", "rec-mux")?;
    muxer.set_property(
        "reserved-max-duration",
        (u64::from(record.segment_secs) + RECORD_RESERVE_EXTRA_S) * 1_000_000_000,
    );
    muxer.set_property("reserved-moov-update-period", RECORD_INDEX_EVERY_NS);
    mux.set_property("muxer", &muxer);
    mux.set_property("use-robust-muxing", true);
    // A session recording into a directory that already holds segments (the app was killed
    // and started again) continues their numbering instead of writing over them.
    mux.set_property("start-index", next_segment_index(&record.dir) as i32);
    mux.set_property("max-size-time", record.segment_secs as u64 * 1_000_000_000);
    let vq = make("queue", "rec-video-queue")?;
    let aq = make("queue", "rec-audio-queue")?;
    pipeline.add_many([&mux, &vq, &aq]).map_err(link_err)?;
    video.link(&vq).map_err(link_err)?;
    audio_tee.link(&aq).map_err(link_err)?;
    vq.link_pads(Some("src"), &mux, Some("video"))
        .map_err(link_err)?;
    aq.link_pads(Some("src"), &mux, Some("audio_%u"))
        .map_err(link_err)?;
    Ok(())
}

/// The index after the highest `fieldcast-NNNNN.mp4` in `dir`; 0 when there is none.
fn next_segment_index(dir: &std::path::Path) -> u32 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            let name = entry.ok()?.file_name();
            let digits = name
                .to_str()?
                .strip_prefix("fieldcast-")?
                .strip_suffix(".mp4")?;
            (digits.len() == 5).then(|| digits.parse::<u32>().ok())?
        })
        .max()
        .map_or(0, |n| n + 1)
}

/// Adds a buffer probe on `element`'s src pad calling `f(counters, buffer size)`.
fn count_buffers(element: &gst::Element, counters: &Arc<Counters>, f: fn(&Counters, u64)) {
    let counters = counters.clone();
    if let Some(pad) = element.static_pad("src") {
        pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(gst::PadProbeData::Buffer(buffer)) = &info.data {
                f(&counters, buffer.size() as u64);
            }
            gst::PadProbeReturn::Ok
        });
    }
}

#[cfg(test)]
mod tests {
    use super::next_segment_index;

    #[test]
    fn recording_continues_after_the_segments_already_in_its_directory() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(next_segment_index(dir.path()), 0);
        assert_eq!(next_segment_index(&dir.path().join("absent")), 0);
        for name in [
            "fieldcast-00000.mp4",
            "fieldcast-00003.mp4",
            "fieldcast-7.mp4",
            "notes.txt",
        ] {
            std::fs::write(dir.path().join(name), b"").unwrap();
        }
        assert_eq!(next_segment_index(dir.path()), 4);
    }
}
