//! Choosing and configuring the H.264 and AAC encoders.

use gstreamer as gst;
use gstreamer::prelude::*;

use super::elements::{is_available, make, missing};
use crate::config::{EncoderPreference, SessionConfig};
use crate::error::Result;

/// Hardware H.264 encoders tried first, in order, when `EncoderPreference::Auto`.
const HARDWARE_H264: [&str; 4] = ["vah264enc", "v4l2h264enc", "nvh264enc", "qsvh264enc"];

/// The H.264 encoder family in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoEncoderKind {
    /// A hardware encoder element (its factory name).
    Hardware(&'static str),
    /// x264 (software).
    X264,
    /// Cisco openh264 (software).
    OpenH264,
}

impl VideoEncoderKind {
    /// The GStreamer factory name.
    pub fn factory(self) -> &'static str {
        match self {
            VideoEncoderKind::Hardware(f) => f,
            VideoEncoderKind::X264 => "x264enc",
            VideoEncoderKind::OpenH264 => "openh264enc",
        }
    }
}

/// Picks the first usable encoder for the preference.
pub fn choose_video_encoder(pref: EncoderPreference) -> Result<VideoEncoderKind> {
    let software = |kinds: &[VideoEncoderKind]| {
        kinds
            .iter()
            .copied()
            .find(|k| is_available(k.factory()))
            .ok_or_else(|| missing(kinds[0].factory()))
    };
    match pref {
        EncoderPreference::X264 => software(&[VideoEncoderKind::X264]),
        EncoderPreference::OpenH264 => software(&[VideoEncoderKind::OpenH264]),
        EncoderPreference::Auto => {
            if let Some(hw) = HARDWARE_H264.into_iter().find(|f| hardware_usable(f)) {
                return Ok(VideoEncoderKind::Hardware(hw));
            }
            software(&[VideoEncoderKind::X264, VideoEncoderKind::OpenH264])
        }
    }
}

/// A hardware encoder counts only when its device opens (READY succeeds).
fn hardware_usable(factory: &str) -> bool {
    let Ok(element) = gst::ElementFactory::make(factory).build() else {
        return false;
    };
    let ok = element.set_state(gst::State::Ready).is_ok();
    let _ = element.set_state(gst::State::Null);
    ok
}

/// Creates the configured H.264 encoder element, named `name`.
pub fn make_video_encoder(
    kind: VideoEncoderKind,
    config: &SessionConfig,
    name: &str,
) -> Result<gst::Element> {
    let enc = make(kind.factory(), name)?;
    let gop = config.fps * config.keyframe_interval_secs;
    match kind {
        VideoEncoderKind::X264 => {
            enc.set_property_from_str("tune", "zerolatency");
            enc.set_property_from_str("speed-preset", "veryfast");
            enc.set_property("key-int-max", gop);
            enc.set_property("bframes", 0u32);
        }
        VideoEncoderKind::OpenH264 => {
            enc.set_property_from_str("rate-control", "bitrate");
            enc.set_property_from_str("complexity", "low");
            enc.set_property("gop-size", gop);
        }
        VideoEncoderKind::Hardware(_) => {
            for name in ["key-int-max", "gop-size", "iframe-period"] {
                if enc.find_property(name).is_some() {
                    enc.set_property_from_str(name, &gop.to_string());
                }
            }
        }
    }
    set_video_bitrate(kind, &enc, config.video_kbps);
    Ok(enc)
}

/// Applies a video bitrate in kbit/s, in the unit the element expects.
pub fn set_video_bitrate(kind: VideoEncoderKind, enc: &gst::Element, kbps: u32) {
    match kind {
        VideoEncoderKind::OpenH264 => enc.set_property("bitrate", kbps * 1000),
        _ if enc.find_property("bitrate").is_some() => {
            enc.set_property_from_str("bitrate", &kbps.to_string())
        }
        _ => {}
    }
}

/// Creates the AAC encoder: avenc_aac, else voaacenc.
pub fn make_audio_encoder(kbps: u32) -> Result<gst::Element> {
    let factory = ["avenc_aac", "voaacenc"]
        .into_iter()
        .find(|f| is_available(f))
        .ok_or_else(|| missing("avenc_aac"))?;
    let enc = make(factory, "audio-encoder")?;
    enc.set_property_from_str("bitrate", &(kbps * 1000).to_string());
    Ok(enc)
}
