//! Records and enums that mirror the core's session types, with `From` both ways where needed.

use fieldcast_core as core;

use crate::error::FieldCastError;

/// Where a live session is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum SessionState {
    /// Built, not started.
    Idle,
    /// Capturing and encoding, waiting for the ingest to take media.
    Connecting,
    /// Media reaches the ingest.
    Live,
    /// The connection broke; the session reconnects by itself.
    Reconnecting,
    /// Stop requested: draining so the ingest and the recording close cleanly.
    Ending,
    /// Stopped cleanly.
    Ended,
    /// Stopped by an error.
    Failed,
}

impl From<core::SessionState> for SessionState {
    fn from(s: core::SessionState) -> Self {
        match s {
            core::SessionState::Idle => SessionState::Idle,
            core::SessionState::Connecting => SessionState::Connecting,
            core::SessionState::Live => SessionState::Live,
            core::SessionState::Reconnecting => SessionState::Reconnecting,
            core::SessionState::Ending => SessionState::Ending,
            core::SessionState::Ended => SessionState::Ended,
            core::SessionState::Failed => SessionState::Failed,
        }
    }
}

/// A rung of the stream ladder (size and default bitrate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
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

impl From<StreamProfile> for core::StreamProfile {
    fn from(p: StreamProfile) -> Self {
        match p {
            StreamProfile::P270 => core::StreamProfile::P270,
            StreamProfile::P360 => core::StreamProfile::P360,
            StreamProfile::P480 => core::StreamProfile::P480,
            StreamProfile::P540 => core::StreamProfile::P540,
            StreamProfile::P720 => core::StreamProfile::P720,
        }
    }
}

impl From<core::StreamProfile> for StreamProfile {
    fn from(p: core::StreamProfile) -> Self {
        match p {
            core::StreamProfile::P270 => StreamProfile::P270,
            core::StreamProfile::P360 => StreamProfile::P360,
            core::StreamProfile::P480 => StreamProfile::P480,
            core::StreamProfile::P540 => StreamProfile::P540,
            core::StreamProfile::P720 => StreamProfile::P720,
        }
    }
}

/// Which H.264 encoder to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum EncoderPreference {
    /// Hardware when present, else software.
    Auto,
    /// Software x264 only. x264 is GPL-licensed and not in the phone library: there this
    /// configuration is rejected as invalid.
    X264,
    /// Software openh264 only.
    OpenH264,
}

impl From<EncoderPreference> for core::EncoderPreference {
    fn from(e: EncoderPreference) -> Self {
        match e {
            EncoderPreference::Auto => core::EncoderPreference::Auto,
            EncoderPreference::X264 => core::EncoderPreference::X264,
            EncoderPreference::OpenH264 => core::EncoderPreference::OpenH264,
        }
    }
}

/// Pixel layouts an app may push.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum PixelFormat {
    /// Planar Y, U, V (pixel stride 1).
    I420,
    /// Android `YUV_420_888`: three planes, chroma pixel stride 1 or 2.
    Yuv420Flexible,
    /// Y plane and interleaved UV plane (iOS bi-planar 420).
    Nv12,
    /// Y plane and interleaved VU plane.
    Nv21,
    /// One plane of R, G, B, A bytes.
    Rgba,
    /// One plane of B, G, R, A bytes (iOS 32BGRA).
    Bgra,
}

impl From<PixelFormat> for core::PixelFormat {
    fn from(f: PixelFormat) -> Self {
        match f {
            PixelFormat::I420 => core::PixelFormat::I420,
            PixelFormat::Yuv420Flexible => core::PixelFormat::Yuv420Flexible,
            PixelFormat::Nv12 => core::PixelFormat::Nv12,
            PixelFormat::Nv21 => core::PixelFormat::Nv21,
            PixelFormat::Rgba => core::PixelFormat::Rgba,
            PixelFormat::Bgra => core::PixelFormat::Bgra,
        }
    }
}

/// Format of the raw video an app pushes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct VideoFormat {
    /// Pixel layout of every frame.
    pub format: PixelFormat,
    /// Frame width in pixels.
    pub width: u32,
    /// Frame height in pixels.
    pub height: u32,
}

/// Format of the PCM (S16LE, interleaved) audio an app pushes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct AudioFormat {
    /// Samples per second.
    pub rate: u32,
    /// Channels.
    pub channels: u32,
}

/// Where the pictures and sound come from.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum MediaSource {
    /// Frames and audio pushed by the app (camera callbacks); silence when `audio` is null.
    App {
        video: VideoFormat,
        audio: Option<AudioFormat>,
    },
    /// A moving test pattern and a tone.
    TestPattern,
    /// A media file, played in real time.
    File { path: String },
}

impl From<MediaSource> for core::Source {
    fn from(s: MediaSource) -> Self {
        match s {
            MediaSource::App { video, audio } => core::Source::App {
                video: core::AppVideoFormat {
                    format: video.format.into(),
                    width: video.width,
                    height: video.height,
                },
                audio: audio.map(|a| core::AppAudioFormat {
                    rate: a.rate,
                    channels: a.channels,
                }),
            },
            MediaSource::TestPattern => core::Source::Test,
            MediaSource::File { path } => core::Source::File(path.into()),
        }
    }
}

/// Everything a live session needs, flat; fields left null take the ladder's defaults.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SessionConfig {
    /// Where to publish: `rtmp://`, `rtmps://` or `srt://`.
    pub ingest_url: String,
    /// What to capture.
    pub source: MediaSource,
    /// The rung to start at (and the recording's size); null takes 480p.
    #[uniffi(default)]
    pub profile: Option<StreamProfile>,
    /// Video bitrate in kbit/s; null takes the profile's.
    #[uniffi(default)]
    pub video_kbps: Option<u32>,
    /// AAC bitrate in kbit/s; null takes 64.
    #[uniffi(default)]
    pub audio_kbps: Option<u32>,
    /// Frames per second; null takes 30.
    #[uniffi(default)]
    pub fps: Option<u32>,
    /// Seconds between keyframes; null takes 2.
    #[uniffi(default)]
    pub keyframe_interval_secs: Option<u32>,
    /// The H.264 encoder; null picks hardware first.
    #[uniffi(default)]
    pub encoder: Option<EncoderPreference>,
    /// A folder for the full-quality MP4 replay; null records nothing.
    #[uniffi(default)]
    pub record_dir: Option<String>,
    /// The bitrate, size and frame rate follow the uplink.
    #[uniffi(default = true)]
    pub adaptive_bitrate: bool,
    /// The device runs one video encoder at a time: the replay then follows the live rendition
    /// instead of running a second encoder while the live stream is below full quality.
    #[uniffi(default = false)]
    pub one_video_encoder: bool,
    /// Extra CA certificates (one or more, PEM) trusted for an `rtmps://` ingest besides the
    /// system's roots, for an ingest behind a private CA; null trusts the system's roots only.
    #[uniffi(default)]
    pub ingest_ca_pem: Option<String>,
}

impl TryFrom<SessionConfig> for core::SessionConfig {
    type Error = FieldCastError;
    fn try_from(c: SessionConfig) -> Result<Self, FieldCastError> {
        let mut builder = core::SessionConfig::builder(c.ingest_url)
            .source(c.source.into())
            .adaptive_bitrate(c.adaptive_bitrate)
            .one_video_encoder(c.one_video_encoder);
        if let Some(profile) = c.profile {
            builder = builder.profile(profile.into());
        }
        if let Some(encoder) = c.encoder {
            builder = builder.encoder(encoder.into());
        }
        if let Some(kbps) = c.video_kbps {
            builder = builder.video_kbps(kbps);
        }
        if let Some(kbps) = c.audio_kbps {
            builder = builder.audio_kbps(kbps);
        }
        if let Some(fps) = c.fps {
            builder = builder.fps(fps);
        }
        if let Some(secs) = c.keyframe_interval_secs {
            builder = builder.keyframe_interval_secs(secs);
        }
        if let Some(dir) = c.record_dir {
            builder = builder.record_to(dir);
        }
        if let Some(pem) = c.ingest_ca_pem {
            builder = builder.ingest_ca_pem(pem);
        }
        Ok(builder.build()?)
    }
}

/// How one plane of a pushed frame is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct PlaneLayout {
    /// Bytes from the start of one row to the next.
    pub row_stride: u32,
    /// Bytes from one sample to the next in a row (1 planar, 2 interleaved, 4 RGBA).
    pub pixel_stride: u32,
}

/// What a pushed frame is; its planes' bytes travel beside it, borrowed.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct FrameInfo {
    /// Pixel layout.
    pub format: PixelFormat,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// One layout per plane, in the format's order.
    pub planes: Vec<PlaneLayout>,
    /// Capture time in microseconds on a monotonic clock shared with the audio; null stamps on
    /// arrival.
    #[uniffi(default)]
    pub timestamp_us: Option<u64>,
}

/// What happened to pushed media.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum PushOutcome {
    /// Queued for encoding.
    Queued,
    /// The encoder is behind: dropped and counted, the caller never waits.
    Dropped,
}

impl From<core::PushOutcome> for PushOutcome {
    fn from(o: core::PushOutcome) -> Self {
        match o {
            core::PushOutcome::Queued => PushOutcome::Queued,
            core::PushOutcome::Dropped => PushOutcome::Dropped,
        }
    }
}

/// Statistics of the last second of a live session.
#[derive(Debug, Clone, Copy, PartialEq, uniffi::Record)]
pub struct LiveStats {
    /// Milliseconds since the session started.
    pub uptime_ms: u64,
    /// Frames per second entering from the source.
    pub input_fps: f64,
    /// Frames per second leaving the encoder.
    pub output_fps: f64,
    /// Encoded video bitrate, kbit/s.
    pub video_kbps: f64,
    /// Encoded audio bitrate, kbit/s.
    pub audio_kbps: f64,
    /// Bytes written to the ingest since the start.
    pub bytes_sent: u64,
    /// Frames dropped since the start (queue full, rate adaptation, GOPs dropped on a slow link).
    pub dropped_frames: u64,
    /// Frames encoded since the start.
    pub frames_encoded: u64,
    /// Video bitrate the live encoder is asked for, kbit/s.
    pub target_video_kbps: u32,
    /// Live video width now.
    pub width: u32,
    /// Live video height now.
    pub height: u32,
    /// Live frame rate now.
    pub fps: u32,
    /// True while the live stream carries audio only.
    pub audio_only: bool,
    /// Milliseconds of media waiting to be sent.
    pub send_queue_ms: u64,
    /// The uplink's capacity as the adaptive bitrate estimates it, kbit/s; 0 when unknown.
    pub link_kbps: u32,
    /// Video encoders at work: 2 while the recording runs its own (the live stream is below
    /// full quality), else 1.
    pub video_encoders: u32,
}

impl From<core::LiveStats> for LiveStats {
    fn from(s: core::LiveStats) -> Self {
        LiveStats {
            uptime_ms: s.uptime.as_millis() as u64,
            input_fps: s.input_fps,
            output_fps: s.output_fps,
            video_kbps: s.video_kbps,
            audio_kbps: s.audio_kbps,
            bytes_sent: s.bytes_sent,
            dropped_frames: s.dropped_frames,
            frames_encoded: s.frames_encoded,
            target_video_kbps: s.target_video_kbps,
            width: s.width,
            height: s.height,
            fps: s.fps,
            audio_only: s.audio_only,
            send_queue_ms: s.send_queue.as_millis() as u64,
            link_kbps: s.link_kbps,
            video_encoders: s.video_encoders,
        }
    }
}

/// Why the adaptive bitrate changed the live stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum AdaptationReason {
    /// The link cannot carry the stream; `measured_kbps` got through, `queue_ms` waited.
    Congestion { measured_kbps: u32, queue_ms: u64 },
    /// The link stayed calm long enough to try more.
    Recovered,
    /// Nothing left the phone for a while.
    Outage,
    /// The link carries media again.
    LinkBack,
}

impl From<core::uplink::abr::AbrReason> for AdaptationReason {
    fn from(r: core::uplink::abr::AbrReason) -> Self {
        use core::uplink::abr::AbrReason;
        match r {
            AbrReason::Congestion {
                measured_kbps,
                queue,
            } => AdaptationReason::Congestion {
                measured_kbps,
                queue_ms: queue.as_millis() as u64,
            },
            AbrReason::Recovered => AdaptationReason::Recovered,
            AbrReason::Outage => AdaptationReason::Outage,
            AbrReason::LinkBack => AdaptationReason::LinkBack,
        }
    }
}

/// A change the adaptive bitrate made to the live stream.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum Adaptation {
    /// The video bitrate, kbit/s.
    Bitrate { kbps: u32, reason: AdaptationReason },
    /// The resolution rung.
    Rung {
        profile: StreamProfile,
        reason: AdaptationReason,
    },
    /// The frame rate.
    FrameRate { fps: u32, reason: AdaptationReason },
    /// Video left out (`on`) or back; audio always goes.
    AudioOnly { on: bool, reason: AdaptationReason },
    /// The encoder (its element, e.g. `amcvidenc-omxqcomvideoencoderavc`) cannot change its
    /// bitrate while live, so the resolution rung follows the uplink instead (`Rung` changes).
    /// `on_renegotiation`: each rung change carries the rung's bitrate; false: the encoder has no
    /// bitrate to set. Sent once.
    EncoderBitrateFixed {
        encoder: String,
        on_renegotiation: bool,
    },
    /// The replay follows the live rendition from now on, so it is at live quality while the
    /// live stream is below full quality: the device runs one video encoder at a time
    /// (`oneVideoEncoder`), or the recording's own encoder failed (`reason` says which). Sent once.
    ReplayAtLiveQuality { reason: String },
}

impl From<core::uplink::abr::AbrDecision> for Adaptation {
    fn from(d: core::uplink::abr::AbrDecision) -> Self {
        use core::uplink::abr::AbrDecision;
        match d {
            AbrDecision::SetBitrate { kbps, reason } => Adaptation::Bitrate {
                kbps,
                reason: reason.into(),
            },
            AbrDecision::SetRung { profile, reason } => Adaptation::Rung {
                profile: profile.into(),
                reason: reason.into(),
            },
            AbrDecision::SetFps { fps, reason } => Adaptation::FrameRate {
                fps,
                reason: reason.into(),
            },
            AbrDecision::AudioOnly { on, reason } => Adaptation::AudioOnly {
                on,
                reason: reason.into(),
            },
        }
    }
}

/// Something that happened in a live session.
#[derive(Debug, Clone, PartialEq, uniffi::Enum)]
pub enum SessionEvent {
    /// The state changed.
    StateChanged {
        from: SessionState,
        to: SessionState,
    },
    /// The statistics of the last second.
    Stats { stats: LiveStats },
    /// An error; a fatal one is followed by a change to `Failed`.
    Failure { error: FieldCastError },
    /// The adaptive bitrate changed the live stream.
    Adapted { change: Adaptation },
}

impl From<core::SessionEvent> for SessionEvent {
    fn from(e: core::SessionEvent) -> Self {
        match e {
            core::SessionEvent::StateChanged { from, to } => SessionEvent::StateChanged {
                from: from.into(),
                to: to.into(),
            },
            core::SessionEvent::Stats(stats) => SessionEvent::Stats {
                stats: stats.into(),
            },
            core::SessionEvent::Error(error) => SessionEvent::Failure {
                error: error.into(),
            },
            core::SessionEvent::Adapted(decision) => SessionEvent::Adapted {
                change: decision.into(),
            },
            core::SessionEvent::EncoderBitrateFixed { encoder, reason } => SessionEvent::Adapted {
                change: Adaptation::EncoderBitrateFixed {
                    encoder,
                    on_renegotiation: reason == core::FixedBitrate::OnRenegotiation,
                },
            },
            core::SessionEvent::ReplayAtLiveQuality { reason } => SessionEvent::Adapted {
                change: Adaptation::ReplayAtLiveQuality { reason },
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{IngestCause, IngestFailure};

    /// A test-pattern session to `url` with every optional field left null.
    fn config(url: &str) -> SessionConfig {
        SessionConfig {
            ingest_url: url.into(),
            source: MediaSource::TestPattern,
            profile: None,
            video_kbps: None,
            audio_kbps: None,
            fps: None,
            keyframe_interval_secs: None,
            encoder: None,
            record_dir: None,
            adaptive_bitrate: true,
            one_video_encoder: false,
            ingest_ca_pem: None,
        }
    }

    /// PEM-shaped text: the configuration carries it as given, the session parses it.
    const PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

    #[test]
    fn the_ingest_ca_reaches_the_core_config() {
        let none = core::SessionConfig::try_from(config("rtmps://ingest.example/live/k")).unwrap();
        assert_eq!(none.ingest_ca_pem, None);

        let with_ca = SessionConfig {
            ingest_ca_pem: Some(PEM.into()),
            ..config("rtmps://ingest.example/live/k")
        };
        let core_config = core::SessionConfig::try_from(with_ca).unwrap();
        assert_eq!(core_config.ingest_ca_pem.as_deref(), Some(PEM));
    }

    #[test]
    fn null_fields_take_the_core_defaults() {
        let c = core::SessionConfig::try_from(config("rtmp://127.0.0.1/live/k")).unwrap();
        let defaults = core::SessionConfig::builder("rtmp://127.0.0.1/live/k")
            .build()
            .unwrap();
        assert_eq!(
            (c.profile, c.video_kbps, c.audio_kbps, c.fps, c.adaptive),
            (
                defaults.profile,
                defaults.video_kbps,
                defaults.audio_kbps,
                defaults.fps,
                defaults.adaptive
            )
        );
        let bad = SessionConfig {
            fps: Some(0),
            ..config("rtmp://127.0.0.1/live/k")
        };
        assert!(matches!(
            core::SessionConfig::try_from(bad),
            Err(FieldCastError::InvalidConfig { .. })
        ));
    }

    #[test]
    fn an_error_event_carries_the_ingest_cause() {
        let event = core::SessionEvent::Error(core::Error::IngestDisconnected {
            url: "rtmp://127.0.0.1/live/…".into(),
            cause: core::IngestCause::Broken,
            reason: "connection reset by peer".into(),
        });
        match SessionEvent::from(event) {
            SessionEvent::Failure {
                error: FieldCastError::Ingest { failure, cause, .. },
            } => assert_eq!(
                (failure, cause),
                (IngestFailure::Disconnected, IngestCause::Broken)
            ),
            other => panic!("expected an ingest failure, got {other:?}"),
        }
    }
}
