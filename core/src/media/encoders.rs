//! Choosing and configuring the H.264 and AAC encoders.
//!
//! H.264 encoders are found by capability: every element factory whose class names a video encoder
//! ("Encoder" and "Video") and whose source pads can produce `video/x-h264`
//! ([`find_h264_encoders`]). Each one found is matched to a row of [`FAMILIES`], which says how
//! that family takes a bitrate (property, unit, whether it applies while playing), a keyframe
//! interval, constant-bitrate rate control and its low-latency settings. An H.264 encoder found by
//! capability without a row (for example `vaapih264enc` or NVIDIA's `nvv4l2h264enc`) is skipped:
//! its property names and units are unknown, and a bitrate in the wrong unit would flood or starve
//! the uplink.
//!
//! With [`EncoderPreference::Auto`] the hardware families come first, in table order (Android
//! MediaCodec, Apple VideoToolbox, VA-API, V4L2, NVENC, Quick Sync); a hardware encoder counts only
//! if its device opens (the element reaches READY). Then software: openh264, the only software
//! encoder of a build without x264 (the phone library); a build with x264 (the desktop) tries x264
//! before it, because x264 keeps to the bitrate asked for where openh264, unless it skips frames,
//! overshoots detailed moving pictures at 30 fps (up to twice the bitrate on the test pattern),
//! which the adaptive bitrate would read as congestion.
//!
//! x264 is licensed under the GPL. It is used only when fieldcast-core is built with the cargo
//! feature `x264` (off by default): the desktop command and the end-to-end tests turn it on, the
//! phone library (fieldcast-ffi) does not. Without the feature [`EncoderPreference::X264`] is a
//! configuration error that says so.

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;

use super::elements::{is_available, make, missing};
use crate::config::{EncoderPreference, SessionConfig, X264Preset};
use crate::error::{Error, Result};
use crate::events::FixedBitrate;

/// The unit of an encoder's bitrate property.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BitrateUnit {
    /// Bits per second.
    BitsPerSecond,
    /// Kilobits (1000 bits) per second.
    KilobitsPerSecond,
}

impl BitrateUnit {
    /// `kbps` (kbit/s) in this unit.
    pub const fn from_kbps(self, kbps: u32) -> u64 {
        match self {
            BitrateUnit::BitsPerSecond => kbps as u64 * 1000,
            BitrateUnit::KilobitsPerSecond => kbps as u64,
        }
    }
}

/// Whether a running encoder takes a new bitrate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveChange {
    /// Applied while playing, although the property's spec does not say so (checked in the
    /// element's source).
    Always,
    /// Applied while playing when the property's spec says so (`GST_PARAM_MUTABLE_PLAYING`). Some
    /// elements set that flag per device or per GStreamer version.
    WhenFlagged,
    /// Only when the encoder is configured: at the start and when its input caps change.
    OnRenegotiation,
}

impl LiveChange {
    /// True when a bitrate set while playing takes effect at once; `flagged` tells whether the
    /// property's spec carries `GST_PARAM_MUTABLE_PLAYING`.
    pub fn applies_while_playing(self, flagged: bool) -> bool {
        match self {
            LiveChange::Always => true,
            LiveChange::WhenFlagged => flagged,
            LiveChange::OnRenegotiation => false,
        }
    }
}

/// How a family takes its bitrate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BitrateProperty {
    /// The element property.
    pub name: &'static str,
    /// Its unit.
    pub unit: BitrateUnit,
    /// Whether a change reaches the running encoder.
    pub live: LiveChange,
}

/// The unit of an encoder's keyframe interval property.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyframeUnit {
    /// Frames between keyframes.
    Frames,
    /// Seconds between keyframes.
    Seconds,
}

impl KeyframeUnit {
    /// A keyframe every `secs` seconds at `fps` frames per second, in this unit.
    pub const fn interval(self, secs: u32, fps: u32) -> u32 {
        match self {
            KeyframeUnit::Frames => secs * fps,
            KeyframeUnit::Seconds => secs,
        }
    }
}

/// How a family takes its keyframe interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyframeProperty {
    /// The element property.
    pub name: &'static str,
    /// Its unit.
    pub unit: KeyframeUnit,
}

/// An element property and its value, written as `gst-launch-1.0` would (`"true"`, `"cbr"`, `"0"`).
/// A setting whose property the installed element lacks (another GStreamer version, a driver
/// without that mode) is skipped.
pub type Setting = (&'static str, &'static str);

/// One row of the encoder table: the element factories of a family and how to configure them.
#[derive(Debug, Clone, Copy)]
pub struct EncoderFamily {
    /// A short name for messages and tests, e.g. `amc` or `x264`.
    pub name: &'static str,
    /// True for the element factories of this family (some carry a device in their name).
    pub matches: fn(&str) -> bool,
    /// True for a hardware encoder, tried before software with [`EncoderPreference::Auto`].
    pub hardware: bool,
    /// The bitrate property; `None` when the family has none FieldCast can set.
    pub bitrate: Option<BitrateProperty>,
    /// The keyframe interval property.
    pub keyframe_interval: Option<KeyframeProperty>,
    /// Constant-bitrate rate control, so that the bitrate asked for is what the uplink carries.
    pub rate_control: &'static [Setting],
    /// Settings that cut the encoder's delay.
    pub low_latency: &'static [Setting],
    /// Settings that favour speed over quality (a phone's CPU, real time).
    pub realtime: &'static [Setting],
    /// Settings that turn frame reordering (B-frames) off: no added delay, and FLV needs no
    /// composition times.
    pub no_reordering: &'static [Setting],
    /// Settings of the recording's own encoder, which codes the same pictures while the live
    /// stream is below full quality: cheaper ones where the replay stays within 1 dB PSNR of the
    /// live encoder's (`scripts/psnr-presets.sh` measures it); empty: the live encoder's own.
    pub recording: &'static [Setting],
}

/// Apple VideoToolbox's hardware encoder; `vtenc_h264` takes the same settings.
const VTENC_HW: EncoderFamily = EncoderFamily {
    name: "vtenc-hw",
    matches: |f| f == "vtenc_h264_hw",
    hardware: true,
    bitrate: Some(BitrateProperty {
        name: "bitrate",
        unit: BitrateUnit::KilobitsPerSecond,
        live: LiveChange::Always,
    }),
    keyframe_interval: Some(KeyframeProperty {
        name: "max-keyframe-interval",
        unit: KeyframeUnit::Frames,
    }),
    rate_control: &[],
    low_latency: &[],
    realtime: &[("realtime", "true")],
    no_reordering: &[("allow-frame-reordering", "false")],
    recording: &[],
};

/// The known H.264 encoder families, hardware first in the order [`EncoderPreference::Auto`]
/// tries them (its software order is its own, see the module's documentation). Property names, units and live behaviour were checked against each element's
/// source in GStreamer 1.22 and later; where versions differ, both names are listed (a setting
/// the installed element lacks is skipped).
pub static FAMILIES: [EncoderFamily; 9] = [
    // Android MediaCodec (androidmedia, gstamcvideoenc.c): one element per device codec,
    // `amcvidenc-<codec name>` (e.g. amcvidenc-omxqcomvideoencoderavc,
    // amcvidenc-c2exynosh264encoder). "bitrate" is bit/s; it is flagged changeable while playing
    // exactly when the device supports MediaCodec's dynamic bitrate (Android 4.4+), otherwise the
    // value is kept and used when the codec is configured again (a size change). "i-frame-interval"
    // is in seconds.
    EncoderFamily {
        name: "amc",
        matches: |f| f.starts_with("amcvidenc-"),
        hardware: true,
        bitrate: Some(BitrateProperty {
            name: "bitrate",
            unit: BitrateUnit::BitsPerSecond,
            live: LiveChange::WhenFlagged,
        }),
        keyframe_interval: Some(KeyframeProperty {
            name: "i-frame-interval",
            unit: KeyframeUnit::Seconds,
        }),
        rate_control: &[],
        low_latency: &[],
        realtime: &[],
        no_reordering: &[],
        recording: &[],
    },
    // Apple VideoToolbox, hardware only (applemedia, vtenc.c). "bitrate" is kbit/s and reaches
    // the running compression session (set at once in 1.22, before the next frame later), though
    // its spec is not flagged. "max-keyframe-interval" counts frames.
    VTENC_HW,
    // Apple VideoToolbox, hardware when there is one, else Apple's own software encoder: still
    // preferred to openh264 on Apple devices. Same element and settings as vtenc_h264_hw.
    EncoderFamily {
        name: "vtenc",
        matches: |f| f == "vtenc_h264",
        ..VTENC_HW
    },
    // VA-API (va, gstvah264enc.c): vah264enc, vah264lpenc (low power) and va<device>h264[lp]enc
    // for further GPUs; not the older gstreamer-vaapi's vaapih264enc. "bitrate" is kbit/s, flagged
    // changeable while playing (the encoder reconfigures). "target-usage" 7 is the fastest.
    // "rate-control" is only offered when the driver has rate control; "cbr" is skipped without it.
    EncoderFamily {
        name: "va",
        matches: |f| {
            f.starts_with("va")
                && !f.starts_with("vaapi")
                && (f.ends_with("h264enc") || f.ends_with("h264lpenc"))
        },
        hardware: true,
        bitrate: Some(BitrateProperty {
            name: "bitrate",
            unit: BitrateUnit::KilobitsPerSecond,
            live: LiveChange::WhenFlagged,
        }),
        keyframe_interval: Some(KeyframeProperty {
            name: "key-int-max",
            unit: KeyframeUnit::Frames,
        }),
        rate_control: &[("rate-control", "cbr")],
        low_latency: &[],
        realtime: &[("target-usage", "7")],
        no_reordering: &[("b-frames", "0")],
        recording: &[],
    },
    // V4L2 stateful encoders (v4l2, gstv4l2videoenc.c): v4l2h264enc, or v4l2<device>h264enc when
    // several devices encode; not the stateless v4l2sl* elements. Up to GStreamer 1.26 they have no
    // bitrate or GOP property, only "extra-controls" with driver controls, which FieldCast does not
    // set: the bitrate is then the driver's and the adaptive bitrate follows by rung. Later
    // versions add "bitrate" (bit/s, flagged changeable while playing) and "gop-size" (frames).
    EncoderFamily {
        name: "v4l2",
        matches: |f| f.starts_with("v4l2") && !f.starts_with("v4l2sl") && f.ends_with("h264enc"),
        hardware: true,
        bitrate: Some(BitrateProperty {
            name: "bitrate",
            unit: BitrateUnit::BitsPerSecond,
            live: LiveChange::WhenFlagged,
        }),
        keyframe_interval: Some(KeyframeProperty {
            name: "gop-size",
            unit: KeyframeUnit::Frames,
        }),
        rate_control: &[],
        low_latency: &[],
        realtime: &[],
        no_reordering: &[],
        recording: &[],
    },
    // NVIDIA NVENC (nvcodec): nvh264enc, nvcudah264enc, nvautogpuh264enc, nvd3d11h264enc and
    // their device<N> variants, from both the older nvbaseenc and the newer nvencoder classes;
    // not nvv4l2h264enc (NVIDIA's Jetson plugin, bitrate in bit/s). "bitrate" is kbit/s, flagged
    // changeable while playing in both classes. B-frames and zero reorder delay are named
    // differently across versions; the "low-latency-hp" preset exists in both (deprecated in
    // newer versions in favour of "tune").
    EncoderFamily {
        name: "nvenc",
        matches: |f| {
            f.starts_with("nv")
                && !f.starts_with("nvv4l2")
                && f.contains("h264")
                && f.ends_with("enc")
        },
        hardware: true,
        bitrate: Some(BitrateProperty {
            name: "bitrate",
            unit: BitrateUnit::KilobitsPerSecond,
            live: LiveChange::WhenFlagged,
        }),
        keyframe_interval: Some(KeyframeProperty {
            name: "gop-size",
            unit: KeyframeUnit::Frames,
        }),
        rate_control: &[("rc-mode", "cbr")],
        low_latency: &[("preset", "low-latency-hp"), ("tune", "ultra-low-latency")],
        realtime: &[],
        no_reordering: &[
            ("bframes", "0"),
            ("b-frames", "0"),
            ("zerolatency", "true"),
            ("zero-reorder-delay", "true"),
        ],
        recording: &[],
    },
    // Intel Quick Sync (qsv, gstqsvh264enc.cpp): qsvh264enc and qsvh264device<N>enc. "bitrate"
    // is kbit/s; its spec is not flagged, but a change marks the bitrate for an encoder reset
    // before the next frame. "target-usage" 7 is the fastest.
    EncoderFamily {
        name: "qsv",
        matches: |f| f.starts_with("qsvh264") && f.ends_with("enc"),
        hardware: true,
        bitrate: Some(BitrateProperty {
            name: "bitrate",
            unit: BitrateUnit::KilobitsPerSecond,
            live: LiveChange::Always,
        }),
        keyframe_interval: Some(KeyframeProperty {
            name: "gop-size",
            unit: KeyframeUnit::Frames,
        }),
        rate_control: &[("rate-control", "cbr")],
        low_latency: &[("low-latency", "true")],
        realtime: &[("target-usage", "7")],
        no_reordering: &[("b-frames", "0")],
        recording: &[],
    },
    // Cisco openh264 (openh264, gstopenh264enc.cpp), BSD-licensed software. "bitrate" is bit/s,
    // flagged changeable while playing (applied on the next frame); it needs rate control
    // "bitrate" to be followed. No B-frames.
    EncoderFamily {
        name: "openh264",
        matches: |f| f == "openh264enc",
        hardware: false,
        bitrate: Some(BitrateProperty {
            name: "bitrate",
            unit: BitrateUnit::BitsPerSecond,
            live: LiveChange::WhenFlagged,
        }),
        keyframe_interval: Some(KeyframeProperty {
            name: "gop-size",
            unit: KeyframeUnit::Frames,
        }),
        rate_control: &[("rate-control", "bitrate")],
        low_latency: &[],
        realtime: &[("complexity", "low")],
        no_reordering: &[],
        recording: &[],
    },
    // x264 (x264, gstx264enc.c), GPL-licensed software: used only with the cargo feature `x264`.
    // "bitrate" is kbit/s, flagged changeable while playing (the encoder reconfigures). Its speed
    // preset comes from `SessionConfig::x264_preset`.
    EncoderFamily {
        name: "x264",
        matches: |f| f == "x264enc",
        hardware: false,
        bitrate: Some(BitrateProperty {
            name: "bitrate",
            unit: BitrateUnit::KilobitsPerSecond,
            live: LiveChange::WhenFlagged,
        }),
        keyframe_interval: Some(KeyframeProperty {
            name: "key-int-max",
            unit: KeyframeUnit::Frames,
        }),
        rate_control: &[],
        low_latency: &[("tune", "zerolatency")],
        realtime: &[],
        no_reordering: &[("bframes", "0")],
        // The replay at ultrafast is within 0.21 dB (480p) and 0.06 dB (720p) of veryfast's, for
        // about 40 % less CPU. Used only when the live preset is veryfast or faster (measured).
        recording: &[("speed-preset", "ultrafast")],
    },
];

/// The software encoders [`EncoderPreference::Auto`] falls back to, in order.
#[cfg(feature = "x264")]
const SOFTWARE_H264: &[&str] = &["x264enc", "openh264enc"];
/// The software encoders [`EncoderPreference::Auto`] falls back to, in order.
#[cfg(not(feature = "x264"))]
const SOFTWARE_H264: &[&str] = &["openh264enc"];

/// The table row of an element factory, or `None` for an encoder FieldCast does not know.
pub fn family_of(factory: &str) -> Option<&'static EncoderFamily> {
    FAMILIES.iter().find(|family| (family.matches)(factory))
}

/// True when this build can use x264 (the cargo feature `x264`, GPL).
pub const fn x264_built() -> bool {
    cfg!(feature = "x264")
}

/// The error for [`EncoderPreference::X264`] in a build without x264.
pub(crate) fn x264_not_built() -> Error {
    Error::InvalidConfig(
        "this build of FieldCast has no x264 encoder: x264 is GPL-licensed and only built with \
         the cargo feature `x264` of fieldcast-core (e.g. `fieldcast-core = { ..., features = \
         [\"x264\"] }`); use the openh264 or automatic encoder choice otherwise"
            .into(),
    )
}

/// The H.264 encoder a session uses: its element factory and its family's row of [`FAMILIES`].
/// Printed (`{:?}` or `{}`) it is the factory name, e.g. `openh264enc`.
#[derive(Clone, Copy)]
pub struct VideoEncoderKind {
    factory: &'static str,
    family: &'static EncoderFamily,
}

impl VideoEncoderKind {
    /// The encoder for an element factory name, or `None` when no family of [`FAMILIES`] knows
    /// it.
    pub fn for_factory(factory: &str) -> Option<Self> {
        let family = family_of(factory)?;
        // GLib interns quark strings for the life of the process; a handful of factory names.
        let factory = glib::Quark::from_str(factory).as_str().as_str();
        Some(VideoEncoderKind { factory, family })
    }

    /// The GStreamer factory name.
    pub fn factory(self) -> &'static str {
        self.factory
    }

    /// Its row of the encoder table.
    pub fn family(self) -> &'static EncoderFamily {
        self.family
    }

    /// True for a hardware encoder.
    pub fn is_hardware(self) -> bool {
        self.family.hardware
    }
}

impl PartialEq for VideoEncoderKind {
    fn eq(&self, other: &Self) -> bool {
        self.factory == other.factory
    }
}

impl Eq for VideoEncoderKind {}

impl std::fmt::Debug for VideoEncoderKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.factory)
    }
}

impl std::fmt::Display for VideoEncoderKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.factory)
    }
}

/// An installed H.264 encoder found by capability.
struct Candidate {
    factory: gst::ElementFactory,
    family: Option<&'static EncoderFamily>,
}

/// Every installed element factory that is a video encoder (its class has "Encoder" and "Video")
/// able to produce `video/x-h264`, known to [`FAMILIES`] or not, by name. GStreamer must be
/// initialised.
pub fn find_h264_encoders() -> Vec<String> {
    candidates()
        .into_iter()
        .map(|c| c.factory.name().to_string())
        .collect()
}

fn candidates() -> Vec<Candidate> {
    let h264 = gst::Caps::new_empty_simple("video/x-h264");
    let mut found: Vec<Candidate> =
        gst::ElementFactory::factories_with_type(gst::ElementFactoryType::ENCODER, gst::Rank::NONE)
            .into_iter()
            .filter(|factory| {
                let klass = factory.klass();
                klass.contains("Encoder") && klass.contains("Video")
            })
            .filter(|factory| {
                factory.static_pad_templates().iter().any(|template| {
                    template.direction() == gst::PadDirection::Src
                        && template.caps().can_intersect(&h264)
                })
            })
            .map(|factory| {
                let family = family_of(&factory.name());
                if family.is_none() {
                    log::debug!(
                        "H.264 encoder `{}` has no row in the encoder table: not used",
                        factory.name()
                    );
                }
                Candidate { factory, family }
            })
            .collect();
    // Within a family: elements that say they are hardware first (MediaCodec also lists
    // Android's software codecs), then by rank, then by name.
    found.sort_by_key(|c| {
        (
            !c.factory.klass().contains("Hardware"),
            std::cmp::Reverse(c.factory.rank()),
            c.factory.name().to_string(),
        )
    });
    found
}

/// Picks the first usable encoder for the preference.
pub fn choose_video_encoder(pref: EncoderPreference) -> Result<VideoEncoderKind> {
    let found = candidates();
    let installed = |factory: &str| {
        found
            .iter()
            .any(|c| c.factory.name() == factory && c.family.is_some())
            .then(|| VideoEncoderKind::for_factory(factory))
            .flatten()
            .ok_or_else(|| missing(factory))
    };
    match pref {
        EncoderPreference::X264 if !x264_built() => Err(x264_not_built()),
        EncoderPreference::X264 => installed("x264enc"),
        EncoderPreference::OpenH264 => installed("openh264enc"),
        EncoderPreference::Auto => {
            for family in FAMILIES.iter().filter(|f| f.hardware) {
                let usable = found
                    .iter()
                    .filter(|c| c.family.is_some_and(|f| f.name == family.name))
                    .find(|c| hardware_usable(&c.factory));
                if let Some(kind) =
                    usable.and_then(|c| VideoEncoderKind::for_factory(&c.factory.name()))
                {
                    return Ok(kind);
                }
            }
            SOFTWARE_H264
                .iter()
                .find_map(|factory| installed(factory).ok())
                .ok_or_else(|| missing("openh264enc"))
        }
    }
}

/// A hardware encoder counts only when its device opens (READY succeeds).
fn hardware_usable(factory: &gst::ElementFactory) -> bool {
    let Ok(element) = factory.create().build() else {
        return false;
    };
    let ok = element.set_state(gst::State::Ready).is_ok();
    let _ = element.set_state(gst::State::Null);
    ok
}

/// Creates the configured H.264 encoder element, named `name`: constant bitrate, low latency,
/// no B-frames, the keyframe interval and the bitrate of `config`, as its family's row says.
pub fn make_video_encoder(
    kind: VideoEncoderKind,
    config: &SessionConfig,
    name: &str,
) -> Result<gst::Element> {
    let enc = make(kind.factory(), name)?;
    let family = kind.family();
    for settings in [
        family.rate_control,
        family.low_latency,
        family.realtime,
        family.no_reordering,
    ] {
        apply_settings(&enc, settings);
    }
    if family.name == "x264" {
        apply_settings(&enc, &[("speed-preset", config.x264_preset.name())]);
    }
    if let Some(keyframes) = family.keyframe_interval {
        let interval = keyframes
            .unit
            .interval(config.keyframe_interval_secs, config.fps);
        if !set_number(&enc, keyframes.name, u64::from(interval)) {
            log::debug!("{}: no keyframe interval property", kind.factory());
        }
    }
    set_video_bitrate(kind, &enc, config.video_kbps);
    Ok(enc)
}

/// Creates the recording's own encoder: the live encoder's settings, then the family's
/// [`EncoderFamily::recording`] ones (for x264 only where they were measured: a live preset of
/// veryfast or faster).
pub fn make_recording_encoder(
    kind: VideoEncoderKind,
    config: &SessionConfig,
    name: &str,
) -> Result<gst::Element> {
    let enc = make_video_encoder(kind, config, name)?;
    let family = kind.family();
    let measured = family.name != "x264" || config.x264_preset.at_most(X264Preset::Veryfast);
    if measured {
        apply_settings(&enc, family.recording);
    }
    Ok(enc)
}

/// The element's property `name` when it can be set after construction.
fn writable(enc: &gst::Element, name: &str) -> Option<glib::ParamSpec> {
    enc.find_property(name).filter(|p| {
        p.flags().contains(glib::ParamFlags::WRITABLE)
            && !p.flags().contains(glib::ParamFlags::CONSTRUCT_ONLY)
    })
}

/// True unless `value` is a number outside the range of `pspec`.
fn in_range(pspec: &glib::ParamSpec, value: &glib::Value) -> bool {
    fn within<T: PartialOrd + for<'a> glib::value::FromValue<'a>>(
        value: &glib::Value,
        min: T,
        max: T,
    ) -> bool {
        value.get::<T>().is_ok_and(|v| min <= v && v <= max)
    }
    if let Some(p) = pspec.downcast_ref::<glib::ParamSpecUInt>() {
        within(value, p.minimum(), p.maximum())
    } else if let Some(p) = pspec.downcast_ref::<glib::ParamSpecInt>() {
        within(value, p.minimum(), p.maximum())
    } else if let Some(p) = pspec.downcast_ref::<glib::ParamSpecUInt64>() {
        within(value, p.minimum(), p.maximum())
    } else if let Some(p) = pspec.downcast_ref::<glib::ParamSpecInt64>() {
        within(value, p.minimum(), p.maximum())
    } else if let Some(p) = pspec.downcast_ref::<glib::ParamSpecDouble>() {
        within(value, p.minimum(), p.maximum())
    } else if let Some(p) = pspec.downcast_ref::<glib::ParamSpecFloat>() {
        within(value, p.minimum(), p.maximum())
    } else {
        // Enums, flags and booleans only deserialise from values they have.
        true
    }
}

/// Applies each setting whose property the element has and whose value it takes; the others are
/// skipped (logged).
fn apply_settings(enc: &gst::Element, settings: &[Setting]) {
    for &(name, value) in settings {
        let parsed = writable(enc, name).and_then(|pspec| {
            glib::Value::deserialize_with_pspec(value, &pspec)
                .ok()
                .filter(|v| in_range(&pspec, v))
        });
        match parsed {
            Some(v) => enc.set_property_from_value(name, &v),
            None => log::debug!("{}: setting {name}={value} skipped", enc.name()),
        }
    }
}

/// Sets a numeric property to `value`, clamped to its range; false when the element has no such
/// writable property of an integer type.
fn set_number(enc: &gst::Element, name: &str, value: u64) -> bool {
    let Some(pspec) = writable(enc, name) else {
        return false;
    };
    let wide = i128::from(value);
    let clamp = |min: i128, max: i128| wide.clamp(min, max);
    let v = if let Some(p) = pspec.downcast_ref::<glib::ParamSpecUInt>() {
        (clamp(p.minimum().into(), p.maximum().into()) as u32).to_value()
    } else if let Some(p) = pspec.downcast_ref::<glib::ParamSpecInt>() {
        (clamp(p.minimum().into(), p.maximum().into()) as i32).to_value()
    } else if let Some(p) = pspec.downcast_ref::<glib::ParamSpecUInt64>() {
        (clamp(p.minimum().into(), p.maximum().into()) as u64).to_value()
    } else if let Some(p) = pspec.downcast_ref::<glib::ParamSpecInt64>() {
        (clamp(p.minimum().into(), p.maximum().into()) as i64).to_value()
    } else {
        log::debug!("{}: {name} is not an integer property", enc.name());
        return false;
    };
    enc.set_property_from_value(name, &v);
    true
}

/// Sets the video bitrate to `kbps` kbit/s in the unit and property of the encoder's family.
/// Returns false when the element has no bitrate property FieldCast can set. Whether a running
/// encoder applies it at once is [`bitrate_control`]'s answer.
pub fn set_video_bitrate(kind: VideoEncoderKind, enc: &gst::Element, kbps: u32) -> bool {
    match kind.family().bitrate {
        Some(bitrate) => set_number(enc, bitrate.name, bitrate.unit.from_kbps(kbps)),
        None => false,
    }
}

/// How a running encoder follows the adaptive bitrate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BitrateControl {
    /// A new bitrate reaches the running encoder.
    Live,
    /// It does not: the adaptive bitrate steps the resolution rung instead.
    Fixed(FixedBitrate),
}

/// How `enc`, an element of `kind`, takes a bitrate change while playing.
pub fn bitrate_control(kind: VideoEncoderKind, enc: &gst::Element) -> BitrateControl {
    let pspec = kind
        .family()
        .bitrate
        .and_then(|bitrate| writable(enc, bitrate.name).map(|p| (bitrate, p)));
    match pspec {
        None => BitrateControl::Fixed(FixedBitrate::NoProperty),
        Some((bitrate, pspec)) => {
            let flagged = pspec.flags().contains(gst::PARAM_FLAG_MUTABLE_PLAYING);
            if bitrate.live.applies_while_playing(flagged) {
                BitrateControl::Live
            } else {
                BitrateControl::Fixed(FixedBitrate::OnRenegotiation)
            }
        }
    }
}

/// The AAC encoders tried in turn: libav's on a desktop; on phones GStreamer's binary
/// distributions ship voaacenc (plugin `voaacenc`), so a missing one is named after it there.
const AAC_ENCODERS: [&str; 2] = if cfg!(any(target_os = "android", target_os = "ios")) {
    ["voaacenc", "avenc_aac"]
} else {
    ["avenc_aac", "voaacenc"]
};

/// Creates the AAC encoder, the first of [`AAC_ENCODERS`] that is installed.
pub fn make_audio_encoder(kbps: u32) -> Result<gst::Element> {
    let factory = AAC_ENCODERS
        .into_iter()
        .find(|f| is_available(f))
        .ok_or_else(|| missing(AAC_ENCODERS[0]))?;
    let enc = make(factory, "audio-encoder")?;
    enc.set_property_from_str(
        "bitrate",
        &BitrateUnit::BitsPerSecond.from_kbps(kbps).to_string(),
    );
    Ok(enc)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn family(factory: &str) -> &'static str {
        family_of(factory).map_or("unknown", |f| f.name)
    }

    #[test]
    fn every_known_factory_has_its_family() {
        for (factory, name) in [
            ("amcvidenc-omxqcomvideoencoderavc", "amc"),
            ("amcvidenc-c2exynosh264encoder", "amc"),
            ("amcvidenc-omxmtkvideoencoderavc", "amc"),
            ("amcvidenc-c2androidavcencoder", "amc"),
            ("vtenc_h264_hw", "vtenc-hw"),
            ("vtenc_h264", "vtenc"),
            ("v4l2h264enc", "v4l2"),
            ("v4l2video11h264enc", "v4l2"),
            ("vah264enc", "va"),
            ("vah264lpenc", "va"),
            ("varenderD129h264enc", "va"),
            ("nvh264enc", "nvenc"),
            ("nvcudah264enc", "nvenc"),
            ("nvh264device1enc", "nvenc"),
            ("nvautogpuh264enc", "nvenc"),
            ("qsvh264enc", "qsv"),
            ("qsvh264device1enc", "qsv"),
            ("openh264enc", "openh264"),
            ("x264enc", "x264"),
        ] {
            assert_eq!(family(factory), name, "{factory}");
        }
    }

    #[test]
    fn encoders_without_a_row_are_unknown() {
        for factory in [
            "vaapih264enc",
            "nvv4l2h264enc",
            "v4l2slh264enc",
            "vtenc_h265",
            "vtenc_prores",
            "x265enc",
            "avenc_h264_omx",
            "amcviddec-omxqcomvideodecoderavc",
        ] {
            assert_eq!(family(factory), "unknown", "{factory}");
        }
        assert!(VideoEncoderKind::for_factory("vaapih264enc").is_none());
    }

    #[test]
    fn every_family_is_reached_and_hardware_comes_first() {
        let hardware: Vec<bool> = FAMILIES.iter().map(|f| f.hardware).collect();
        let first_software = hardware.iter().position(|h| !h).unwrap();
        assert!(hardware[first_software..].iter().all(|h| !h));
        for factory in SOFTWARE_H264 {
            assert!(!family_of(factory).unwrap().hardware, "{factory}");
        }
        let mut names: Vec<&str> = FAMILIES.iter().map(|f| f.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), FAMILIES.len(), "family names are unique");
        assert_eq!(SOFTWARE_H264.last(), Some(&"openh264enc"));
        assert_eq!(SOFTWARE_H264.contains(&"x264enc"), x264_built());
        assert_eq!(SOFTWARE_H264.len(), 1 + usize::from(x264_built()));
    }

    #[test]
    fn bitrates_are_converted_into_each_familys_unit() {
        let unit = |factory: &str| family_of(factory).unwrap().bitrate.unwrap().unit;
        for (factory, kbps, expected) in [
            ("amcvidenc-c2exynosh264encoder", 900, 900_000),
            ("openh264enc", 350, 350_000),
            ("v4l2h264enc", 600, 600_000),
            ("x264enc", 900, 900),
            ("vtenc_h264_hw", 1200, 1200),
            ("vah264enc", 1800, 1800),
            ("nvh264enc", 600, 600),
            ("qsvh264enc", 350, 350),
        ] {
            assert_eq!(unit(factory).from_kbps(kbps), expected, "{factory}");
        }
        assert_eq!(
            BitrateUnit::BitsPerSecond.from_kbps(u32::MAX),
            u64::from(u32::MAX) * 1000
        );
    }

    #[test]
    fn keyframe_intervals_are_counted_in_each_familys_unit() {
        let keyframes = |factory: &str| family_of(factory).unwrap().keyframe_interval.unwrap();
        let amc = keyframes("amcvidenc-omxqcomvideoencoderavc");
        assert_eq!(
            (amc.name, amc.unit.interval(2, 30)),
            ("i-frame-interval", 2)
        );
        let x264 = keyframes("x264enc");
        assert_eq!((x264.name, x264.unit.interval(2, 30)), ("key-int-max", 60));
        let vt = keyframes("vtenc_h264_hw");
        assert_eq!(
            (vt.name, vt.unit.interval(2, 15)),
            ("max-keyframe-interval", 30)
        );
        assert_eq!(keyframes("openh264enc").name, "gop-size");
        assert_eq!(keyframes("vah264enc").name, "key-int-max");
    }

    #[test]
    fn families_that_cannot_always_change_live_say_when() {
        let live = |factory: &str| family_of(factory).unwrap().bitrate.unwrap().live;
        // MediaCodec: only on devices that flag a dynamic bitrate; V4L2: only where the bitrate
        // property exists and is flagged (GStreamer after 1.26).
        for factory in ["amcvidenc-c2exynosh264encoder", "v4l2h264enc"] {
            assert_eq!(live(factory), LiveChange::WhenFlagged, "{factory}");
            assert!(!live(factory).applies_while_playing(false));
            assert!(live(factory).applies_while_playing(true));
        }
        // VideoToolbox and Quick Sync apply it though their specs are not flagged.
        for factory in ["vtenc_h264_hw", "vtenc_h264", "qsvh264enc"] {
            assert!(live(factory).applies_while_playing(false), "{factory}");
        }
        // The software encoders flag it and follow at once.
        for factory in ["openh264enc", "x264enc"] {
            assert!(live(factory).applies_while_playing(true), "{factory}");
        }
        assert!(!LiveChange::OnRenegotiation.applies_while_playing(true));
    }

    #[test]
    fn low_latency_settings_turn_reordering_off() {
        for family in &FAMILIES {
            for &(name, value) in family
                .no_reordering
                .iter()
                .chain(family.low_latency)
                .chain(family.realtime)
                .chain(family.rate_control)
            {
                assert!(!name.is_empty() && !value.is_empty(), "{}", family.name);
            }
        }
        let x264 = family_of("x264enc").unwrap();
        assert!(x264.no_reordering.contains(&("bframes", "0")));
        assert!(x264.low_latency.contains(&("tune", "zerolatency")));
        let openh264 = family_of("openh264enc").unwrap();
        assert!(openh264.rate_control.contains(&("rate-control", "bitrate")));
    }

    #[test]
    fn x264_needs_its_feature() {
        crate::media::elements::init().unwrap();
        let chosen = choose_video_encoder(EncoderPreference::X264);
        if x264_built() {
            if let Ok(kind) = chosen {
                assert_eq!(kind.factory(), "x264enc");
            }
        } else {
            let err = chosen.unwrap_err();
            assert!(matches!(err, Error::InvalidConfig(_)), "{err}");
            let message = err.to_string();
            assert!(
                message.contains("GPL") && message.contains("`x264`"),
                "{message}"
            );
        }
    }

    #[test]
    fn encoders_print_as_their_factory() {
        let kind = VideoEncoderKind::for_factory("amcvidenc-c2exynosh264encoder").unwrap();
        assert_eq!(
            format!("{kind:?} {kind}"),
            "amcvidenc-c2exynosh264encoder amcvidenc-c2exynosh264encoder"
        );
        assert_eq!(kind.family().name, "amc");
        assert!(kind.is_hardware());
        assert_eq!(
            kind,
            VideoEncoderKind::for_factory("amcvidenc-c2exynosh264encoder").unwrap()
        );
    }
}
