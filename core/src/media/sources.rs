//! Capture sources: test pattern, camera, media file and app-pushed media via appsrc.
//!
//! The camera is GStreamer's capture on each platform: v4l2src with PulseAudio or ALSA on Linux,
//! ahcsrc with openslessrc on Android, avfvideosrc with osxaudiosrc on iOS. On phones the apps
//! push frames from their own capture (`Source::App`): the bindings offer only that, the test
//! pattern and a file, and the Kotlin and Swift shells pump Camera2 / AVFoundation frames.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;

use super::elements::make;
use super::y4m;
use crate::config::{AppAudioFormat, AppVideoFormat, Source};
use crate::error::{Error, Result};
use crate::frame::{FrameError, PlaneLayout, VideoFrame, check_audio};

/// Frames the app may have queued before new ones are dropped (about 170 ms at 30 fps).
pub const APP_VIDEO_QUEUE_FRAMES: u64 = 5;
/// Audio buffers the app may have queued before new ones are dropped.
const APP_AUDIO_QUEUE_BUFFERS: u64 = 50;

/// Raw media entry points of a source: elements whose `src` pad carries raw video / audio.
pub(crate) struct SourceOutputs {
    pub video: gst::Element,
    pub audio: gst::Element,
    pub app: Option<AppInput>,
    /// True when the source runs at its own pace (file) and needs pacing to the clock.
    pub needs_pacing: bool,
    /// True when the source's frame rate is not ours (camera, file) and needs `videorate`.
    pub needs_rate: bool,
}

/// Adds the source elements for `source` to the pipeline.
pub(crate) fn add_source(
    pipeline: &gst::Pipeline,
    source: &Source,
    size: (u32, u32),
    fps: u32,
) -> Result<SourceOutputs> {
    match source {
        Source::Test => {
            let video = make("videotestsrc", "src-video")?;
            video.set_property("is-live", true);
            video.set_property_from_str("pattern", "smpte");
            video.set_property("horizontal-speed", 4i32);
            let caps = make("capsfilter", "src-video-caps")?;
            caps.set_property(
                "caps",
                gst::Caps::builder("video/x-raw")
                    .field("format", "I420")
                    .field("width", size.0 as i32)
                    .field("height", size.1 as i32)
                    .field("framerate", gst::Fraction::new(fps as i32, 1))
                    .build(),
            );
            let audio = make("audiotestsrc", "src-audio")?;
            audio.set_property("is-live", true);
            audio.set_property("volume", 0.3f64);
            pipeline
                .add_many([&video, &caps, &audio])
                .map_err(link_err)?;
            video.link(&caps).map_err(link_err)?;
            Ok(SourceOutputs {
                video: caps,
                audio,
                app: None,
                needs_pacing: false,
                needs_rate: false,
            })
        }
        Source::Camera { device } => add_camera(pipeline, device.as_deref()),
        Source::File(path) => add_file_source(pipeline, path, fps),
        Source::App { video, audio } => add_app_source(pipeline, *video, *audio, fps),
    }
}

/// A V4L2 camera (`/dev/video0` by default), decoded (raw or MJPEG), with the default microphone.
#[cfg(not(any(target_os = "android", target_os = "ios")))]
fn add_camera(pipeline: &gst::Pipeline, device: Option<&Path>) -> Result<SourceOutputs> {
    let path = device.unwrap_or(Path::new("/dev/video0"));
    if !path.exists() {
        return Err(Error::SourceUnavailable(format!(
            "camera {} does not exist (is a V4L2 camera connected?)",
            path.display()
        )));
    }
    let cam = make("v4l2src", "src-camera")?;
    cam.set_property("device", path.to_string_lossy().as_ref());
    let decode = make("decodebin", "src-camera-decode")?;
    let video = make("videoconvert", "src-video-entry")?;
    let audio = microphone()?;
    pipeline
        .add_many([&cam, &decode, &video, &audio])
        .map_err(link_err)?;
    cam.link(&decode).map_err(link_err)?;
    link_decoded_pads(&decode, Some(video.clone()), None);
    Ok(SourceOutputs {
        video,
        audio,
        app: None,
        needs_pacing: false,
        needs_rate: true,
    })
}

/// The default microphone: PulseAudio when a server answers, else ALSA's default device.
#[cfg(not(any(target_os = "android", target_os = "ios")))]
fn microphone() -> Result<gst::Element> {
    let pulse = make("pulsesrc", "src-audio");
    if let Ok(p) = &pulse
        && p.set_state(gst::State::Ready).is_ok()
    {
        let _ = p.set_state(gst::State::Null);
        return pulse;
    }
    let alsa = make("alsasrc", "src-audio")?;
    if alsa.set_state(gst::State::Ready).is_err() {
        return Err(Error::SourceUnavailable(
            "no microphone: neither PulseAudio nor ALSA's default device opens".into(),
        ));
    }
    let _ = alsa.set_state(gst::State::Null);
    Ok(alsa)
}

/// The phone's camera and microphone through GStreamer's own capture elements. Apps normally push
/// frames from their own capture (`Source::App`, what the Kotlin and Swift shells do); this source
/// is for an app that lets GStreamer capture. The app must hold the camera and microphone
/// permissions (and, on iOS, have configured its audio session).
#[cfg(any(target_os = "android", target_os = "ios"))]
mod phone {
    /// Android: `android.hardware.Camera` (plugin `androidmedia`), camera index in `device`.
    #[cfg(target_os = "android")]
    pub const CAMERA: (&str, &str) = ("ahcsrc", "device");
    /// Android: OpenSL ES capture (plugin `opensles`).
    #[cfg(target_os = "android")]
    pub const MICROPHONE: &str = "openslessrc";
    /// iOS: AVFoundation capture (plugin `applemedia`), camera index in `device-index`.
    #[cfg(target_os = "ios")]
    pub const CAMERA: (&str, &str) = ("avfvideosrc", "device-index");
    /// iOS: Core Audio capture (plugin `osxaudio`).
    #[cfg(target_os = "ios")]
    pub const MICROPHONE: &str = "osxaudiosrc";
}

/// The phone's camera (`device`: its index, e.g. `1` for the front camera of most phones; the
/// platform's default camera when `None`) with its default microphone. Both capture elements give
/// raw video and audio, so no decoder sits between them and the pipeline.
#[cfg(any(target_os = "android", target_os = "ios"))]
fn add_camera(pipeline: &gst::Pipeline, device: Option<&Path>) -> Result<SourceOutputs> {
    let (factory, index_property) = phone::CAMERA;
    let cam = make(factory, "src-camera")?;
    if let Some(device) = device {
        let index = camera_index(device)?;
        cam.set_property_from_str(index_property, &index.to_string());
    }
    let video = make("videoconvert", "src-video-entry")?;
    let audio = make(phone::MICROPHONE, "src-audio")?;
    pipeline
        .add_many([&cam, &video, &audio])
        .map_err(link_err)?;
    cam.link(&video).map_err(link_err)?;
    Ok(SourceOutputs {
        video,
        audio,
        app: None,
        needs_pacing: false,
        needs_rate: true,
    })
}

/// A phone camera's index from `Source::Camera`'s `device` (`0`, `1`, ...).
#[cfg(any(test, target_os = "android", target_os = "ios"))]
fn camera_index(device: &Path) -> Result<u32> {
    device
        .to_str()
        .and_then(|d| d.trim().parse::<u32>().ok())
        .ok_or_else(|| {
            Error::SourceUnavailable(format!(
                "camera `{}`: on a phone the camera is chosen by its index (0, 1, ...)",
                device.display()
            ))
        })
}

/// A media file played in real time: raw y4m pictures through our reader ([`y4m`]), anything
/// else through decodebin. A file without sound gets silence. A y4m file at the stream's frame
/// rate `fps` goes without `videorate`.
fn add_file_source(pipeline: &gst::Pipeline, path: &Path, fps: u32) -> Result<SourceOutputs> {
    if y4m::is_y4m(path) {
        let (video, header) = y4m::add_source(pipeline, path, "src-file-y4m")?;
        let audio = add_silence(pipeline, &video)?;
        let (num, den) = header.fps;
        return Ok(SourceOutputs {
            video,
            audio,
            app: None,
            needs_pacing: true,
            needs_rate: i64::from(num) != i64::from(fps) * i64::from(den),
        });
    }
    let src = make("filesrc", "src-file")?;
    src.set_property("location", path.to_string_lossy().as_ref());
    let video = make("videoconvert", "src-video-entry")?;
    let audio = make("audioconvert", "src-audio-entry")?;
    let decode = make("decodebin", "src-file-decode")?;
    pipeline
        .add_many([&src, &decode, &video, &audio])
        .map_err(link_err)?;
    src.link(&decode).map_err(link_err)?;
    link_decoded_pads(&decode, Some(video.clone()), Some(audio.clone()));
    let pipeline_weak = pipeline.downgrade();
    let (audio_entry, video_entry) = (audio.clone(), video.clone());
    decode.connect_no_more_pads(move |_| {
        let sink = audio_entry
            .static_pad("sink")
            .expect("audioconvert has a sink pad");
        if let Some(pipeline) = pipeline_weak.upgrade()
            && !sink.is_linked()
            && let Err(e) = add_silence(&pipeline, &video_entry).and_then(|silence| {
                silence.link(&audio_entry).map_err(link_err)?;
                silence.sync_state_with_parent().map_err(link_err)
            })
        {
            log::warn!("no silence for a file without sound: {e}");
        }
    });
    Ok(SourceOutputs {
        video,
        audio,
        app: None,
        needs_pacing: true,
        needs_rate: true,
    })
}

/// Samples per buffer of the silence for a file without sound: 100 ms at 44.1 kHz.
const SILENCE_SAMPLES_PER_BUFFER: i32 = 4410;

/// Adds silence for a file without sound, so players see H.264 + AAC, which ends with the video
/// leaving `video`.
fn add_silence(pipeline: &gst::Pipeline, video: &gst::Element) -> Result<gst::Element> {
    let silence = make("audiotestsrc", "src-file-silence")?;
    silence.set_property_from_str("wave", "silence");
    // Each buffer is a wait on the clock (the pacing) and a hand-over to the encoder's queue:
    // a tenth of a second per buffer instead of 1024 samples makes those four times rarer.
    silence.set_property("samplesperbuffer", SILENCE_SAMPLES_PER_BUFFER);
    pipeline.add(&silence).map_err(link_err)?;
    end_with_video(video, &silence);
    Ok(silence)
}

/// Ends the generated `silence` when the video leaving `video` ends, so the file's end ends the session.
fn end_with_video(video: &gst::Element, silence: &gst::Element) {
    let silence = silence.downgrade();
    let pad = video
        .static_pad("src")
        .expect("a video source has a src pad");
    pad.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |_, info| {
        if let Some(gst::PadProbeData::Event(ev)) = &info.data
            && ev.type_() == gst::EventType::Eos
            && let Some(silence) = silence.upgrade()
        {
            silence.send_event(gst::event::Eos::new());
        }
        gst::PadProbeReturn::Ok
    });
}

/// Links decodebin's raw video / audio pads, as they appear, to the given entry elements.
fn link_decoded_pads(
    decode: &gst::Element,
    video: Option<gst::Element>,
    audio: Option<gst::Element>,
) {
    decode.connect_pad_added(move |_, pad| {
        let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
        let Some(name) = caps.structure(0).map(|s| s.name().to_string()) else {
            return;
        };
        let target = if name.starts_with("video/") {
            video.as_ref()
        } else if name.starts_with("audio/") {
            audio.as_ref()
        } else {
            None
        };
        if let Some(sink) = target.and_then(|t| t.static_pad("sink"))
            && !sink.is_linked()
            && let Err(e) = pad.link(&sink)
        {
            log::warn!("could not link decoded {name}: {e:?}");
        }
    });
}

fn add_app_source(
    pipeline: &gst::Pipeline,
    video: AppVideoFormat,
    audio: Option<AppAudioFormat>,
    fps: u32,
) -> Result<SourceOutputs> {
    let vsrc = make("appsrc", "src-app-video")?
        .downcast::<gst_app::AppSrc>()
        .expect("appsrc is an AppSrc");
    vsrc.set_caps(Some(
        &gst::Caps::builder("video/x-raw")
            .field("format", video.format.gst_name())
            .field("width", video.width as i32)
            .field("height", video.height as i32)
            // Nominal rate; every frame carries its own capture timestamp.
            .field("framerate", gst::Fraction::new(fps as i32, 1))
            .build(),
    ));
    configure_live_appsrc(&vsrc, APP_VIDEO_QUEUE_FRAMES);
    let (asrc, audio_format) = match audio {
        Some(a) => {
            let asrc = make("appsrc", "src-app-audio")?
                .downcast::<gst_app::AppSrc>()
                .expect("appsrc is an AppSrc");
            asrc.set_caps(Some(
                &gst::Caps::builder("audio/x-raw")
                    .field("format", "S16LE")
                    .field("layout", "interleaved")
                    .field("rate", a.rate as i32)
                    .field("channels", a.channels as i32)
                    .build(),
            ));
            configure_live_appsrc(&asrc, APP_AUDIO_QUEUE_BUFFERS);
            (Some(asrc), Some(a))
        }
        None => (None, None),
    };
    let audio_out: gst::Element = match &asrc {
        Some(a) => a.clone().upcast(),
        None => {
            let silence = make("audiotestsrc", "src-app-silence")?;
            silence.set_property("is-live", true);
            silence.set_property_from_str("wave", "silence");
            silence
        }
    };
    pipeline
        .add_many([vsrc.upcast_ref(), &audio_out])
        .map_err(link_err)?;
    let audio_out_for_eos = audio_out.clone();
    Ok(SourceOutputs {
        video: vsrc.clone().upcast(),
        audio: audio_out,
        app: Some(AppInput {
            video: vsrc,
            video_format: video,
            layout: Arc::new(plane_layout(video)?),
            silence: asrc.is_none().then_some(audio_out_for_eos),
            audio: asrc,
            audio_format,
            pipeline: pipeline.clone(),
            base: Arc::new(TimeBase::default()),
            dropped: Arc::new(AtomicU64::new(0)),
        }),
        needs_pacing: false,
        needs_rate: false,
    })
}

fn configure_live_appsrc(src: &gst_app::AppSrc, max_buffers: u64) {
    src.set_format(gst::Format::Time);
    src.set_is_live(true);
    src.set_property("block", false);
    src.set_property("max-buffers", max_buffers);
    src.set_property("max-bytes", 0u64);
    src.set_property("max-time", 0u64);
}

/// Maps the app's capture clock onto the pipeline's running time, shared by audio and video:
/// (first app timestamp in µs, running time in ns when it arrived).
type TimeBase = Mutex<Option<(u64, u64)>>;

/// What happened to a pushed frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushOutcome {
    /// The frame is queued for encoding.
    Queued,
    /// The queue was full (the encoder is behind); the frame was dropped and counted.
    Dropped,
}

/// GStreamer's layout of a buffer of `format`: the strides and offsets its caps promise.
fn plane_layout(format: AppVideoFormat) -> Result<PlaneLayout> {
    let gst_format = gst_video::VideoFormat::from_string(format.format.gst_name());
    let info = gst_video::VideoInfo::builder(gst_format, format.width, format.height)
        .build()
        .map_err(|e| {
            Error::InvalidConfig(format!(
                "{} {}x{} has no GStreamer layout: {e}",
                format.format, format.width, format.height
            ))
        })?;
    Ok(PlaneLayout::of(&info))
}

/// The appsrc handles through which an app pushes media.
#[derive(Clone)]
pub(crate) struct AppInput {
    video: gst_app::AppSrc,
    video_format: AppVideoFormat,
    /// Where GStreamer expects the planes of `video_format` in a buffer.
    layout: Arc<PlaneLayout>,
    audio: Option<gst_app::AppSrc>,
    audio_format: Option<AppAudioFormat>,
    /// The generated silence when the app pushes no audio.
    silence: Option<gst::Element>,
    pipeline: gst::Pipeline,
    base: Arc<TimeBase>,
    pub dropped: Arc<AtomicU64>,
}

impl AppInput {
    /// Validates, copies and queues one video frame without ever blocking.
    pub fn push_video(&self, frame: &VideoFrame<'_>) -> Result<PushOutcome> {
        let expected = self.video_format;
        if (frame.format, frame.width, frame.height)
            != (expected.format, expected.width, expected.height)
        {
            return Err(FrameError::Mismatch {
                got: format!("{} {}x{}", frame.format, frame.width, frame.height),
                expected: format!("{} {}x{}", expected.format, expected.width, expected.height),
            }
            .into());
        }
        let packed = frame.validate_and_pack()?;
        if self.video.current_level_buffers() >= APP_VIDEO_QUEUE_FRAMES {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return Ok(PushOutcome::Dropped);
        }
        let mut buffer = gst::Buffer::from_mut_slice(packed.into_layout(&self.layout));
        buffer
            .get_mut()
            .expect("new buffer is writable")
            .set_pts(self.running_time(frame.timestamp_us));
        self.push(&self.video, buffer)
    }

    /// Validates and queues interleaved S16LE audio.
    pub fn push_audio(&self, data: &[u8], timestamp_us: Option<u64>) -> Result<PushOutcome> {
        let (Some(src), Some(format)) = (&self.audio, self.audio_format) else {
            return Err(FrameError::NotAppSource("app video with generated silence".into()).into());
        };
        check_audio(data, format.channels)?;
        if src.current_level_buffers() >= APP_AUDIO_QUEUE_BUFFERS {
            return Ok(PushOutcome::Dropped);
        }
        let samples = (data.len() / (2 * format.channels as usize)) as u64;
        let mut buffer = gst::Buffer::from_slice(data.to_vec());
        {
            let b = buffer.get_mut().expect("new buffer is writable");
            b.set_pts(self.running_time(timestamp_us));
            b.set_duration(gst::ClockTime::from_nseconds(
                samples * 1_000_000_000 / format.rate as u64,
            ));
        }
        self.push(src, buffer)
    }

    /// Ends both streams after everything already queued, so no pushed frame is lost.
    pub fn end_of_stream(&self) {
        let _ = self.video.end_of_stream();
        if let Some(a) = &self.audio {
            let _ = a.end_of_stream();
        }
        if let Some(s) = &self.silence {
            s.send_event(gst::event::Eos::new());
        }
    }

    fn push(&self, src: &gst_app::AppSrc, buffer: gst::Buffer) -> Result<PushOutcome> {
        src.push_buffer(buffer).map_err(|e| Error::Pipeline {
            element: src.name().to_string(),
            message: format!("the pipeline no longer takes media ({e:?})"),
        })?;
        Ok(PushOutcome::Queued)
    }

    /// Running time for a capture timestamp; the first pushed timestamp anchors both streams.
    fn running_time(&self, timestamp_us: Option<u64>) -> Option<gst::ClockTime> {
        let now = self.pipeline.current_running_time()?;
        let Some(ts) = timestamp_us else {
            return Some(now);
        };
        let (origin, running_origin) = *self
            .base
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert((ts, now.nseconds()));
        let offset_ns = ts.saturating_sub(origin).saturating_mul(1000);
        Some(gst::ClockTime::from_nseconds(running_origin + offset_ns))
    }
}

pub(crate) fn link_err(e: impl std::fmt::Debug) -> Error {
    Error::Pipeline {
        element: "pipeline".into(),
        message: format!("could not assemble the pipeline: {e:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_cameras_are_chosen_by_index() {
        assert_eq!(camera_index(Path::new("0")).unwrap(), 0);
        assert_eq!(camera_index(Path::new("1")).unwrap(), 1);
        assert!(matches!(
            camera_index(Path::new("/dev/video0")),
            Err(Error::SourceUnavailable(_))
        ));
    }
}
