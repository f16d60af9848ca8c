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

/// After a cut for congestion, video waiting longer than this to drain at the throughput just
/// measured is skipped: the link fell well below the bitrate it was encoded for.
const SKIP_BACKLOG_OVER: Duration = Duration::from_millis(500);

/// The socket may send this much faster than the stream's bitrate: room for keyframes and to
/// drain a backlog, not for flooding a link that just fell.
const PACING_HEADROOM: f64 = 1.5;

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
    last_unsent: u64,
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
            last_unsent: 0,
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
        let unsent = uplink.take_socket_backlog();
        let failures = uplink.failures();
        let gops = media.feed.dropped_gops.load(Ordering::Relaxed);
        // What TCP took on since the last sample: the bytes the socket accepted, less its
        // backlog. Media in the socket waits as long as media in the window.
        let sent = (bytes + self.last_unsent)
            .saturating_sub(self.last_bytes)
            .saturating_sub(unsent);
        let in_socket = backlog_drain(unsent as usize, self.sent_kbps());
        let sample = AbrSample {
            at: now.duration_since(self.started),
            bytes_accepted: sent,
            queue_level: media.feed.lock().window.level() + in_socket,
            send_errors: u32::try_from(failures - self.last_failures).unwrap_or(u32::MAX),
            dropped_gops: u32::try_from(gops - self.last_gops).unwrap_or(u32::MAX),
        };
        (self.last_bytes, self.last_unsent) = (bytes, unsent);
        (self.last_failures, self.last_gops) = (failures, gops);
        let decisions = self.controller.step(sample);
        self.apply(media, &decisions);
        uplink.set_pacing_kbps((f64::from(self.sent_kbps()) * PACING_HEADROOM).round() as u32);
        self.keep_keyframe_interval(media, now);
        decisions
    }

    /// The live stream's bitrate now, audio included, kbit/s.
    fn sent_kbps(&self) -> u32 {
        let video = if self.rendition.audio_only {
            0
        } else {
            self.rendition.video_kbps
        };
        video + self.controller.audio_kbps()
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
        if let Some(measured_kbps) = decisions.iter().find_map(congestion_throughput) {
            let bytes = media.feed.lock().window.bytes();
            if backlog_drain(bytes, measured_kbps) > SKIP_BACKLOG_OVER {
                let dropped = media.feed.skip_backlog();
                log::info!(
                    "skipped {dropped} video frames ({bytes} bytes waiting, {measured_kbps} kbit/s)"
                );
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

/// The throughput measured by a decision taken for congestion, kbit/s.
fn congestion_throughput(decision: &AbrDecision) -> Option<u32> {
    let reason = match *decision {
        AbrDecision::SetBitrate { reason, .. }
        | AbrDecision::SetRung { reason, .. }
        | AbrDecision::SetFps { reason, .. }
        | AbrDecision::AudioOnly { reason, .. } => reason,
    };
    match reason {
        AbrReason::Congestion { measured_kbps, .. } => Some(measured_kbps),
        _ => None,
    }
}

/// How long `bytes` take to leave at `kbps`; forever when nothing leaves.
fn backlog_drain(bytes: usize, kbps: u32) -> Duration {
    if kbps == 0 {
        return Duration::MAX;
    }
    Duration::from_secs_f64(bytes as f64 * 8.0 / (f64::from(kbps) * 1000.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backlog_drains_at_the_measured_rate() {
        assert_eq!(backlog_drain(37_500, 300), Duration::from_secs(1));
        assert_eq!(backlog_drain(0, 300), Duration::ZERO);
        assert_eq!(backlog_drain(1, 0), Duration::MAX);
    }

    #[test]
    fn only_congestion_carries_a_throughput() {
        let congestion = AbrReason::Congestion {
            measured_kbps: 325,
            queue: Duration::from_millis(1400),
        };
        let cut = AbrDecision::SetBitrate {
            kbps: 200,
            reason: congestion,
        };
        let rise = AbrDecision::SetBitrate {
            kbps: 220,
            reason: AbrReason::Recovered,
        };
        assert_eq!(congestion_throughput(&cut), Some(325));
        assert_eq!(congestion_throughput(&rise), None);
    }
}
