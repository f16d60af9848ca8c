//! Stream profiles (the resolution/bitrate ladder) and the session configuration builder.

use std::path::PathBuf;
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::frame::{PixelFormat, check_dimensions};
use crate::uplink::target::{IngestTarget, RawIngestUrl};

/// One rung of the resolution ladder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamProfile {
    /// 480x270, 350 kbit/s.
    P270,
    /// 640x360, 600 kbit/s.
    P360,
    /// 854x480, 900 kbit/s.
    P480,
    /// 960x540, 1200 kbit/s.
    P540,
    /// 1280x720, 1800 kbit/s.
    P720,
}

impl StreamProfile {
    /// Every rung, lowest first.
    pub const LADDER: [StreamProfile; 5] = [
        StreamProfile::P270,
        StreamProfile::P360,
        StreamProfile::P480,
        StreamProfile::P540,
        StreamProfile::P720,
    ];

    /// Output size in pixels (width, height).
    pub fn size(self) -> (u32, u32) {
        match self {
            StreamProfile::P270 => (480, 270),
            StreamProfile::P360 => (640, 360),
            StreamProfile::P480 => (854, 480),
            StreamProfile::P540 => (960, 540),
            StreamProfile::P720 => (1280, 720),
        }
    }

    /// Default video bitrate in kbit/s at 30 fps.
    pub fn default_video_kbps(self) -> u32 {
        match self {
            StreamProfile::P270 => 350,
            StreamProfile::P360 => 600,
            StreamProfile::P480 => 900,
            StreamProfile::P540 => 1200,
            StreamProfile::P720 => 1800,
        }
    }

    /// The short name used on the command line, e.g. `480p`.
    pub fn name(self) -> &'static str {
        match self {
            StreamProfile::P270 => "270p",
            StreamProfile::P360 => "360p",
            StreamProfile::P480 => "480p",
            StreamProfile::P540 => "540p",
            StreamProfile::P720 => "720p",
        }
    }
}

impl FromStr for StreamProfile {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        StreamProfile::LADDER
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(s) || p.name().trim_end_matches('p') == s)
            .ok_or_else(|| {
                Error::InvalidConfig(format!(
                    "unknown profile `{s}` (use 270p, 360p, 480p, 540p or 720p)"
                ))
            })
    }
}

/// Format of the raw video an app pushes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppVideoFormat {
    /// Pixel layout of every frame.
    pub format: PixelFormat,
    /// Frame width in pixels.
    pub width: u32,
    /// Frame height in pixels.
    pub height: u32,
}

/// Format of the PCM S16LE audio an app pushes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppAudioFormat {
    /// Samples per second.
    pub rate: u32,
    /// Interleaved channels.
    pub channels: u32,
}

/// Where the pictures and sound come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A moving test pattern and a tone.
    Test,
    /// The camera with the default microphone, captured by GStreamer. Linux: a V4L2 device path
    /// (`None`: `/dev/video0`) with PulseAudio or ALSA. Android (ahcsrc + openslessrc) and iOS
    /// (avfvideosrc + osxaudiosrc): the camera's index, e.g. `1` (`None`: the default camera).
    /// Phone apps normally push their own capture instead ([`Source::App`]).
    Camera { device: Option<PathBuf> },
    /// A media file, played in real time.
    File(PathBuf),
    /// Frames and audio pushed by the app; silence is sent when `audio` is `None`.
    App {
        video: AppVideoFormat,
        audio: Option<AppAudioFormat>,
    },
}

impl Source {
    /// A short label for messages.
    pub fn label(&self) -> String {
        match self {
            Source::Test => "the test pattern".into(),
            Source::Camera { device } => match device {
                Some(d) => format!("camera {}", d.display()),
                None => "the default camera".into(),
            },
            Source::File(p) => format!("file {}", p.display()),
            Source::App { .. } => "app-pushed media".into(),
        }
    }
}

/// Which H.264 encoder to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EncoderPreference {
    /// Hardware when present (and its device opens), else software: x264 when built in, then
    /// openh264.
    #[default]
    Auto,
    /// Software x264 only. x264 is GPL-licensed and only in builds with the cargo feature `x264`
    /// of fieldcast-core; without it the configuration is rejected.
    X264,
    /// Software openh264 only.
    OpenH264,
}

/// x264's speed preset (used only with x264): faster presets spend less CPU for less quality at
/// the same bitrate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum X264Preset {
    /// The fastest.
    Ultrafast,
    /// Faster than `Veryfast`.
    Superfast,
    /// The default: fast enough for live on a desktop.
    #[default]
    Veryfast,
    /// Slower than `Veryfast`.
    Faster,
    /// x264's `fast`.
    Fast,
    /// x264's own default.
    Medium,
    /// x264's `slow`.
    Slow,
    /// x264's `slower`.
    Slower,
    /// x264's `veryslow`.
    Veryslow,
}

impl X264Preset {
    /// True when this preset is `other` or faster.
    pub fn at_most(self, other: X264Preset) -> bool {
        let rank = |p| Self::ALL.iter().position(|q| *q == p);
        rank(self) <= rank(other)
    }

    /// Every preset, fastest first.
    pub const ALL: [X264Preset; 9] = [
        X264Preset::Ultrafast,
        X264Preset::Superfast,
        X264Preset::Veryfast,
        X264Preset::Faster,
        X264Preset::Fast,
        X264Preset::Medium,
        X264Preset::Slow,
        X264Preset::Slower,
        X264Preset::Veryslow,
    ];

    /// x264's name for it, e.g. `veryfast` (as x264enc's `speed-preset` and ffmpeg's `-preset`
    /// spell it).
    pub fn name(self) -> &'static str {
        match self {
            X264Preset::Ultrafast => "ultrafast",
            X264Preset::Superfast => "superfast",
            X264Preset::Veryfast => "veryfast",
            X264Preset::Faster => "faster",
            X264Preset::Fast => "fast",
            X264Preset::Medium => "medium",
            X264Preset::Slow => "slow",
            X264Preset::Slower => "slower",
            X264Preset::Veryslow => "veryslow",
        }
    }
}

impl FromStr for X264Preset {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        X264Preset::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                Error::InvalidConfig(format!(
                    "unknown x264 preset `{s}` (use ultrafast, superfast, veryfast, faster, fast, \
                     medium, slow, slower or veryslow)"
                ))
            })
    }
}

/// Local recording of the encoded stream into MP4 segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordConfig {
    /// Directory for `fieldcast-00000.mp4`, `fieldcast-00001.mp4`, ...
    pub dir: PathBuf,
    /// Longest segment, in seconds.
    pub segment_secs: u32,
}

/// Everything a live session needs; build it with [`SessionConfig::builder`]. Not a literal
/// outside this crate: some fields exist only with a cargo feature (`latency_stamp` with `qa`).
/// Its `Debug` shows the ingest URL redacted (see [`IngestTarget::redacted`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionConfig {
    /// Where to publish.
    pub target: IngestTarget,
    /// What to capture.
    pub source: Source,
    /// Output resolution rung.
    pub profile: StreamProfile,
    /// Video bitrate in kbit/s.
    pub video_kbps: u32,
    /// AAC bitrate in kbit/s.
    pub audio_kbps: u32,
    /// Output frame rate.
    pub fps: u32,
    /// Seconds between keyframes.
    pub keyframe_interval_secs: u32,
    /// Encoder choice.
    pub encoder: EncoderPreference,
    /// x264's speed preset, when x264 encodes (`veryfast` by default).
    pub x264_preset: X264Preset,
    /// Optional local recording.
    pub record: Option<RecordConfig>,
    /// Adapt the live stream's bitrate, size and frame rate to the uplink (on by default);
    /// off keeps `video_kbps`, `profile` and `fps` fixed.
    pub adaptive: bool,
    /// The device runs one video encoder at a time (many entry phones allow one or two hardware
    /// encoder sessions). With a recording and the adaptive bitrate, the recording then follows
    /// the live rendition, instead of running an encoder of its own while the live stream is
    /// below full quality. Off by default.
    pub one_video_encoder: bool,
    /// Extra certificate authorities (PEM) trusted for an `rtmps://` ingest, besides the
    /// system's roots: for an ingest with a private CA, and for tests.
    pub ingest_ca_pem: Option<String>,
    /// Paint every frame's capture time into it for the latency probe (the test source, or
    /// carried from the stamps an app painted; QA).
    #[cfg(feature = "qa")]
    pub latency_stamp: bool,
}

/// Builder for [`SessionConfig`], with the defaults of the ladder. Its `Debug` shows the ingest
/// URL redacted.
#[derive(Debug, Clone)]
pub struct SessionConfigBuilder {
    ingest: RawIngestUrl,
    source: Source,
    profile: StreamProfile,
    video_kbps: Option<u32>,
    audio_kbps: u32,
    fps: u32,
    keyframe_interval_secs: u32,
    encoder: EncoderPreference,
    x264_preset: X264Preset,
    record: Option<RecordConfig>,
    adaptive: bool,
    one_video_encoder: bool,
    ingest_ca_pem: Option<String>,
    #[cfg(feature = "qa")]
    latency_stamp: bool,
}

impl SessionConfig {
    /// Starts a configuration publishing to `ingest_url` from the test source at 480p30.
    pub fn builder(ingest_url: impl Into<String>) -> SessionConfigBuilder {
        SessionConfigBuilder {
            ingest: RawIngestUrl(ingest_url.into()),
            source: Source::Test,
            profile: StreamProfile::P480,
            video_kbps: None,
            audio_kbps: 64,
            fps: 30,
            keyframe_interval_secs: 2,
            encoder: EncoderPreference::Auto,
            x264_preset: X264Preset::default(),
            adaptive: true,
            one_video_encoder: false,
            record: None,
            ingest_ca_pem: None,
            #[cfg(feature = "qa")]
            latency_stamp: false,
        }
    }
}

impl SessionConfigBuilder {
    /// Sets the capture source.
    pub fn source(mut self, source: Source) -> Self {
        self.source = source;
        self
    }
    /// Sets the output rung; its default bitrate applies unless [`Self::video_kbps`] is set.
    pub fn profile(mut self, profile: StreamProfile) -> Self {
        self.profile = profile;
        self
    }
    /// Overrides the video bitrate (kbit/s).
    pub fn video_kbps(mut self, kbps: u32) -> Self {
        self.video_kbps = Some(kbps);
        self
    }
    /// Sets the AAC bitrate (kbit/s).
    pub fn audio_kbps(mut self, kbps: u32) -> Self {
        self.audio_kbps = kbps;
        self
    }
    /// Sets the output frame rate.
    pub fn fps(mut self, fps: u32) -> Self {
        self.fps = fps;
        self
    }
    /// Sets the keyframe interval in seconds.
    pub fn keyframe_interval_secs(mut self, secs: u32) -> Self {
        self.keyframe_interval_secs = secs;
        self
    }
    /// Chooses the encoder.
    pub fn encoder(mut self, encoder: EncoderPreference) -> Self {
        self.encoder = encoder;
        self
    }
    /// Sets x264's speed preset; it applies only when x264 encodes.
    pub fn x264_preset(mut self, preset: X264Preset) -> Self {
        self.x264_preset = preset;
        self
    }
    /// Records the encoded stream into MP4 segments in `dir` (created if missing). Each segment's
    /// index is rewritten every second into room reserved at its start, so a segment stays
    /// readable up to its last second when the app is killed or the power fails; a session
    /// recording into a directory that already holds segments continues their numbering instead
    /// of writing over them.
    pub fn record_to(mut self, dir: impl Into<PathBuf>) -> Self {
        self.record = Some(RecordConfig {
            dir: dir.into(),
            segment_secs: 600,
        });
        self
    }

    /// Says that the device runs one video encoder at a time: with a recording and the adaptive
    /// bitrate, the recording follows the live rendition (see
    /// [`SessionConfig::one_video_encoder`]).
    pub fn one_video_encoder(mut self, on: bool) -> Self {
        self.one_video_encoder = on;
        self
    }

    /// Trusts the certificate authorities in `pem` (one or more PEM certificates) for an
    /// `rtmps://` ingest, besides the system's roots: an ingest behind a private CA, or a test.
    pub fn ingest_ca_pem(mut self, pem: impl Into<String>) -> Self {
        self.ingest_ca_pem = Some(pem.into());
        self
    }

    /// Turns the adaptive bitrate on (the default) or off. Off, the live stream keeps the
    /// configured bitrate, size and frame rate whatever the uplink does.
    pub fn adaptive_bitrate(mut self, on: bool) -> Self {
        self.adaptive = on;
        self
    }

    /// Stamps every frame of the test source with its capture time (wall clock), read back by
    /// the probe's player ([`crate::receiver`]) to measure capture-to-player latency. With
    /// app-pushed frames the app paints the stamp at capture ([`crate::probe::paint`]) and the
    /// session carries it to the live stream's final size, so it stays readable on every rung.
    #[cfg(feature = "qa")]
    pub fn latency_stamp(mut self, on: bool) -> Self {
        self.latency_stamp = on;
        self
    }

    /// Validates and returns the configuration.
    pub fn build(self) -> Result<SessionConfig> {
        let target = IngestTarget::parse(&self.ingest.0)?;
        let config = SessionConfig {
            target,
            video_kbps: self.video_kbps.unwrap_or(self.profile.default_video_kbps()),
            source: self.source,
            profile: self.profile,
            audio_kbps: self.audio_kbps,
            fps: self.fps,
            keyframe_interval_secs: self.keyframe_interval_secs,
            encoder: self.encoder,
            x264_preset: self.x264_preset,
            record: self.record,
            adaptive: self.adaptive,
            one_video_encoder: self.one_video_encoder,
            ingest_ca_pem: self.ingest_ca_pem,
            #[cfg(feature = "qa")]
            latency_stamp: self.latency_stamp,
        };
        config.validate()?;
        Ok(config)
    }
}

impl SessionConfig {
    /// Checks every field's range; called by the builder.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::InvalidConfig(m));
        if !(50..=20_000).contains(&self.video_kbps) {
            return bad(format!(
                "video bitrate {} kbit/s is outside 50..=20000",
                self.video_kbps
            ));
        }
        if !(16..=320).contains(&self.audio_kbps) {
            return bad(format!(
                "audio bitrate {} kbit/s is outside 16..=320",
                self.audio_kbps
            ));
        }
        if !(1..=60).contains(&self.fps) {
            return bad(format!("frame rate {} is outside 1..=60", self.fps));
        }
        if !(1..=10).contains(&self.keyframe_interval_secs) {
            return bad(format!(
                "keyframe interval {} s is outside 1..=10",
                self.keyframe_interval_secs
            ));
        }
        if self.encoder == EncoderPreference::X264 && !crate::media::encoders::x264_built() {
            return Err(crate::media::encoders::x264_not_built());
        }
        if let Some(record) = &self.record
            && !(1..=3600).contains(&record.segment_secs)
        {
            return bad(format!(
                "segment length {} s is outside 1..=3600",
                record.segment_secs
            ));
        }
        match &self.source {
            Source::App { video, audio } => {
                check_dimensions(video.format, video.width, video.height)?;
                if let Some(a) = audio
                    && (!(8_000..=96_000).contains(&a.rate) || !(1..=2).contains(&a.channels))
                {
                    return bad(format!(
                        "app audio {} Hz x {} channels is outside 8000..=96000 Hz, 1..=2 channels",
                        a.rate, a.channels
                    ));
                }
            }
            Source::File(path) if !path.is_file() => {
                return Err(Error::SourceUnavailable(format!(
                    "{} is not a readable file",
                    path.display()
                )));
            }
            _ => {}
        }
        #[cfg(feature = "qa")]
        if self.latency_stamp && !matches!(self.source, Source::Test | Source::App { .. }) {
            return bad(format!(
                "the latency stamp works with the test source and app-pushed frames only, not {}",
                self.source.label()
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_ladder() {
        let c = SessionConfig::builder("rtmp://127.0.0.1/live/k")
            .profile(StreamProfile::P720)
            .build()
            .unwrap();
        assert_eq!((c.video_kbps, c.fps, c.audio_kbps), (1800, 30, 64));
        assert_eq!(StreamProfile::P270.size(), (480, 270));
        assert_eq!(
            "540p".parse::<StreamProfile>().unwrap(),
            StreamProfile::P540
        );
        assert!("1080p".parse::<StreamProfile>().is_err());
    }

    #[test]
    fn x264_presets_parse_and_x264_needs_its_feature() {
        let b = || SessionConfig::builder("rtmp://127.0.0.1/live/k");
        assert_eq!(b().build().unwrap().x264_preset, X264Preset::Veryfast);
        for preset in X264Preset::ALL {
            assert_eq!(preset.name().parse::<X264Preset>().unwrap(), preset);
        }
        assert_eq!(
            "UltraFast".parse::<X264Preset>().unwrap(),
            X264Preset::Ultrafast
        );
        assert!("placebo".parse::<X264Preset>().is_err());
        let fast = b().x264_preset(X264Preset::Ultrafast).build().unwrap();
        assert_eq!(fast.x264_preset.name(), "ultrafast");
        let x264 = b().encoder(EncoderPreference::X264).build();
        if crate::media::encoders::x264_built() {
            assert!(x264.is_ok());
        } else {
            let err = x264.unwrap_err();
            assert!(matches!(err, Error::InvalidConfig(_)), "{err}");
            assert!(err.to_string().contains("GPL"), "{err}");
        }
    }

    #[test]
    fn out_of_range_values_are_rejected() {
        let b = || SessionConfig::builder("rtmp://127.0.0.1/live/k");
        assert!(matches!(b().fps(0).build(), Err(Error::InvalidConfig(_))));
        assert!(matches!(
            b().video_kbps(10).build(),
            Err(Error::InvalidConfig(_))
        ));
        let app = Source::App {
            video: AppVideoFormat {
                format: PixelFormat::I420,
                width: 0,
                height: 480,
            },
            audio: None,
        };
        assert!(matches!(
            b().source(app).build(),
            Err(Error::InvalidFrame(_))
        ));
        let missing = Source::File("/nonexistent/clip.mp4".into());
        assert!(matches!(
            b().source(missing).build(),
            Err(Error::SourceUnavailable(_))
        ));
    }

    #[cfg(feature = "qa")]
    #[test]
    fn the_latency_stamp_is_for_the_test_source_and_app_frames() {
        let b = || SessionConfig::builder("rtmp://127.0.0.1/live/k").latency_stamp(true);
        assert!(b().build().unwrap().latency_stamp);
        let app = Source::App {
            video: AppVideoFormat {
                format: crate::PixelFormat::I420,
                width: 640,
                height: 360,
            },
            audio: None,
        };
        assert!(b().source(app).build().unwrap().latency_stamp);
        let camera = Source::Camera { device: None };
        assert!(matches!(
            b().source(camera).build(),
            Err(Error::InvalidConfig(_))
        ));
    }
}
