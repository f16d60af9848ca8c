//! The adaptive bitrate at work: every 500 ms the uplink is sampled, the pure controller
//! ([`crate::uplink::abr`]) decides, and its decisions are carried out on the live stream's
//! encoder, its size and frame rate, and the feed (audio only).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use gstreamer::prelude::*;

use crate::config::{SessionConfig, StreamProfile};
use crate::media::encoders::set_video_bitrate;
use crate::media::pipeline::{MediaPipeline, raw_video_caps};
use crate::uplink::abr::{AbrConfig, AbrController, AbrDecision, AbrReason, AbrSample};
use crate::uplink::supervisor::Uplink;

/// What the live stream is sent at now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LiveRendition {
    /// Video bitrate asked of the encoder, kbit/s.
    pub video_kbps: u32,
    /// Resolution rung.
    pub profile: StreamProfile,
    /// Frames per second.
    pub fps: u32,
    /// True while the live stream carries audio only.
    pub audio_only: bool,
}

/// Samples the uplink and steers the live encoding.
pub(super) struct Adaptation {
    controller: AbrController,
    period: Duration,
    started: Instant,
    next_sample: Instant,
    last_bytes: u64,
    last_failures: u64,
    last_gops: u64,
    rendition: LiveRendition,
    max_fps: u32,
    keyframe_interval: Duration,
    last_keyframe_request: Instant,
}

impl Adaptation {
    /// The adaptation for `config`, starting at its profile and bitrate; `None` when the
    /// configuration turns the adaptive bitrate off.
    pub fn new(config: &SessionConfig, started: Instant) -> Option<Self> {
        if !config.adaptive {
            return None;
        }
        let mut abr = AbrConfig::for_profile(config.profile);
        abr.audio_kbps = config.audio_kbps;
        if let Some(top) = abr.ladder.last_mut() {
            top.max_kbps = config.video_kbps.max(top.min_kbps);
        }
        let period = abr.sample_period;
        let controller = AbrController::new(abr);
        let rendition = LiveRendition {
            video_kbps: controller.kbps(),
            profile: config.profile,
            fps: config.fps,
            audio_only: false,
        };
        Some(Adaptation {
            controller,
            period,
            started,
            next_sample: started + period,
            last_bytes: 0,
            last_failures: 0,
            last_gops: 0,
            rendition,
            max_fps: config.fps,
            keyframe_interval: Duration::from_secs(config.keyframe_interval_secs.into()),
            last_keyframe_request: started,
        })
    }

    /// What the live stream is sent at now.
    pub fn rendition(&self) -> LiveRendition {
        self.rendition
    }

    /// Samples the uplink when a period has passed, applies the controller's decisions and
    /// returns them (for events); nothing between samples.
    pub fn tick(&mut self, media: &MediaPipeline, uplink: &Uplink) -> Vec<AbrDecision> {
        let now = Instant::now();
        if now < self.next_sample {
            return Vec::new();
        }
        self.next_sample = now + self.period;
        let bytes = uplink.bytes_sent();
        let failures = uplink.failures();
        let gops = media.feed.dropped_gops.load(Ordering::Relaxed);
        let sample = AbrSample {
            at: now.duration_since(self.started),
            bytes_accepted: bytes.saturating_sub(self.last_bytes),
            queue_level: media.feed.lock().window.level(),
            send_errors: u32::try_from(failures - self.last_failures).unwrap_or(u32::MAX),
            dropped_gops: u32::try_from(gops - self.last_gops).unwrap_or(u32::MAX),
        };
        (self.last_bytes, self.last_failures, self.last_gops) = (bytes, failures, gops);
        let decisions = self.controller.step(sample);
        self.apply(media, &decisions);
        self.keep_keyframe_interval(media, now);
        decisions
    }

    fn apply(&mut self, media: &MediaPipeline, decisions: &[AbrDecision]) {
        let before = self.rendition;
        for decision in decisions {
            match *decision {
                AbrDecision::SetBitrate { kbps, .. } => {
                    self.rendition.video_kbps = kbps;
                    set_video_bitrate(media.encoder_kind, &media.live.encoder, kbps);
                }
                AbrDecision::SetRung { profile, .. } => self.rendition.profile = profile,
                AbrDecision::SetFps { fps, .. } => self.rendition.fps = fps.min(self.max_fps),
                AbrDecision::AudioOnly { on, reason } => {
                    // An outage is the reconnect's business: the send window already bounds
                    // what waits, and the new connection must start with audio and video.
                    if !matches!(reason, AbrReason::Outage | AbrReason::LinkBack) {
                        self.rendition.audio_only = on;
                        media.feed.set_audio_only(on);
                    }
                }
            }
        }
        let resized = (before.profile, before.fps) != (self.rendition.profile, self.rendition.fps);
        if let (true, Some(caps)) = (resized, &media.live.caps) {
            caps.set_property(
                "caps",
                raw_video_caps(self.rendition.profile.size(), self.rendition.fps),
            );
        }
    }

    /// The encoder counts its keyframe interval in frames of the configured rate; at a lower
    /// frame rate the interval would stretch, so keyframes are asked for on time.
    fn keep_keyframe_interval(&mut self, media: &MediaPipeline, now: Instant) {
        if self.rendition.fps < self.max_fps
            && now.duration_since(self.last_keyframe_request) >= self.keyframe_interval
        {
            self.last_keyframe_request = now;
            media.feed.request_keyframe();
        }
    }
}
