//! The adaptive bitrate at work: every 500 ms the uplink is sampled, the pure controller
//! ([`crate::uplink::abr`]) decides, and its decisions are carried out on the live stream's
//! encoder, its size and frame rate, and the feed (audio only).
//!
//! An encoder that cannot take a new bitrate while it runs (see
//! [`crate::media::encoders::bitrate_control`]) follows by resolution rung instead: the live
//! stream takes the highest rung, up to the controller's, whose bitrate fits the bitrate asked
//! for. A rung change alters the caps and renegotiates the encoder, which then starts at that
//! rung's bitrate when it has a bitrate property at all. The session says so once
//! ([`SessionEvent::EncoderBitrateFixed`]).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use gstreamer::prelude::*;

use crate::config::{SessionConfig, StreamProfile};
use crate::events::{FixedBitrate, SessionEvent};
use crate::media::encoders::{BitrateControl, set_video_bitrate};
use crate::media::pipeline::{MediaPipeline, raw_video_caps};
use crate::uplink::abr::{
    AbrConfig, AbrController, AbrDecision, AbrReason, AbrSample, MIN_SATURATED, PathSample,
};
use crate::uplink::feed::Feed;
use crate::uplink::supervisor::Uplink;

/// After a cut for congestion, video waiting longer than this to drain at the throughput just
/// measured is skipped: the link fell well below the bitrate it was encoded for. So is video
/// that waited through an outage.
const SKIP_BACKLOG_OVER: Duration = Duration::from_millis(500);

/// How long the live stream stays at full quality before the recording hands back to the live
/// encoder and its own encoder stops: the adaptive bitrate's probes above full quality and back
/// would otherwise start and stop it every few seconds.
const RECORD_HANDS_BACK_AFTER: Duration = Duration::from_secs(3);

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
    /// The configured rung and bitrate: the top of the ladder.
    top: (StreamProfile, u32),
    /// True once the session said that the encoder cannot follow a bitrate.
    told_fixed: bool,
    /// Since when the live stream has been at full quality (`None` while below it).
    full_since: Option<Instant>,
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
            top: (config.profile, rendition.video_kbps),
            told_fixed: false,
            full_since: Some(started),
        })
    }

    /// What the live stream is sent at now.
    pub fn rendition(&self) -> LiveRendition {
        self.rendition
    }

    /// The uplink's capacity as estimated from its delivery samples, kbit/s.
    pub fn capacity_kbps(&self) -> Option<u32> {
        self.controller.capacity_kbps()
    }

    /// When the next sample of the uplink is due.
    pub fn next_sample(&self) -> Instant {
        self.next_sample
    }

    /// Samples the uplink when a period has passed, applies the controller's decisions and
    /// returns the events that tell them; nothing between samples.
    pub fn tick(&mut self, media: &MediaPipeline, uplink: &Uplink) -> Vec<SessionEvent> {
        let now = Instant::now();
        if now < self.next_sample {
            return Vec::new();
        }
        self.next_sample = now + self.period;
        let bytes = uplink.bytes_sent();
        let unsent = uplink.take_socket_backlog();
        let failures = uplink.failures();
        let gops = uplink.feed().dropped_gops.load(Ordering::Relaxed);
        // What TCP took on since the last sample: the bytes the socket accepted, less its
        // backlog. Media in the socket waits as long as media in the window.
        let sent = (bytes + self.last_unsent)
            .saturating_sub(self.last_bytes)
            .saturating_sub(unsent);
        let in_socket = backlog_drain(
            usize::try_from(unsent).unwrap_or(usize::MAX),
            self.sent_kbps(),
        );
        let sample = AbrSample {
            at: now.duration_since(self.started),
            bytes_accepted: sent,
            queue_level: uplink.feed().lock().window.level() + in_socket,
            send_errors: u32::try_from(failures - self.last_failures).unwrap_or(u32::MAX),
            dropped_gops: u32::try_from(gops - self.last_gops).unwrap_or(u32::MAX),
            path: uplink
                .take_delivery(MIN_SATURATED)
                .map(|(kbps, measured_for)| PathSample {
                    delivery_kbps: kbps,
                    measured_for,
                }),
        };
        (self.last_bytes, self.last_unsent) = (bytes, unsent);
        (self.last_failures, self.last_gops) = (failures, gops);
        log::debug!("sample: {sample:?}");
        let decisions = self.controller.step(sample);
        if decisions.iter().any(|d| self.lowers(d))
            && let Some(record) = &media.record
        {
            // Before the live encoder changes: the recording's own encoder then has every frame
            // the live one encodes below full quality.
            record.use_own();
        }
        let events = self.apply(media, uplink.feed(), &decisions);
        self.steer_recording(media, uplink.feed(), now);
        uplink.set_pacing_kbps(self.controller.pacing_kbps(self.sent_kbps()));
        self.keep_keyframe_interval(uplink.feed(), now);
        events
    }

    /// True when the live stream is at full quality: the configured rung, frame rate and bitrate.
    fn at_full_quality(&self) -> bool {
        let r = self.rendition;
        (r.profile, r.fps) == (self.top.0, self.max_fps) && r.video_kbps >= self.top.1
    }

    /// True when `decision` may take the live encoding below full quality.
    fn lowers(&self, decision: &AbrDecision) -> bool {
        match *decision {
            AbrDecision::SetBitrate { kbps, .. } => kbps < self.top.1,
            AbrDecision::SetRung { profile, .. } => profile != self.top.0,
            AbrDecision::SetFps { fps, .. } => fps < self.max_fps,
            AbrDecision::AudioOnly { .. } => false,
        }
    }

    /// Keeps the recording at full quality: its own encoder while the live stream is below it,
    /// the live encoder once the live stream has been back at full quality for
    /// [`RECORD_HANDS_BACK_AFTER`].
    fn steer_recording(&mut self, media: &MediaPipeline, feed: &Feed, now: Instant) {
        let Some(record) = &media.record else {
            return;
        };
        if !self.at_full_quality() {
            self.full_since = None;
            record.use_own();
            return;
        }
        let since = *self.full_since.get_or_insert(now);
        if now.duration_since(since) >= RECORD_HANDS_BACK_AFTER && record.use_live() {
            // The hand-back happens at the live encoder's next keyframe.
            feed.request_keyframe();
        }
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

    /// Carries the decisions out and returns their events. With an encoder that cannot follow a
    /// bitrate, the controller's bitrate picks the rung (and the controller's own rung changes
    /// give way to it).
    fn apply(
        &mut self,
        media: &MediaPipeline,
        feed: &Feed,
        decisions: &[AbrDecision],
    ) -> Vec<SessionEvent> {
        let before = self.rendition;
        let fixed = match media.live.bitrate {
            BitrateControl::Live => None,
            BitrateControl::Fixed(why) => Some(why),
        };
        let mut events = Vec::with_capacity(decisions.len() + 1);
        // With a fixed-bitrate encoder: the reason of the last decision that moved the
        // controller's bitrate or rung.
        let mut follow = None;
        for decision in decisions {
            match (*decision, fixed) {
                (AbrDecision::SetBitrate { kbps, .. }, None) => {
                    self.rendition.video_kbps = kbps;
                    set_video_bitrate(media.encoder_kind, &media.live.encoder, kbps);
                }
                (AbrDecision::SetBitrate { reason, .. }, Some(why)) => {
                    if !self.told_fixed {
                        self.told_fixed = true;
                        log::warn!(
                            "{} cannot change its bitrate while running ({why:?}): following the \
                             uplink by resolution rung",
                            media.encoder_kind
                        );
                        events.push(SessionEvent::EncoderBitrateFixed {
                            encoder: media.encoder_kind.factory().to_string(),
                            reason: why,
                        });
                    }
                    follow = Some(reason);
                }
                (AbrDecision::SetRung { profile, .. }, None) => self.rendition.profile = profile,
                (AbrDecision::SetRung { reason, .. }, Some(_)) => {
                    follow = Some(reason);
                    continue;
                }
                (AbrDecision::SetFps { fps, .. }, _) => self.rendition.fps = fps.min(self.max_fps),
                (AbrDecision::AudioOnly { on, reason }, _) => {
                    // An outage is the reconnect's business: the send window already bounds
                    // what waits, and the new connection must start with audio and video.
                    if !matches!(reason, AbrReason::Outage | AbrReason::LinkBack) {
                        self.rendition.audio_only = on;
                        feed.set_audio_only(on);
                    }
                }
            }
            events.push(SessionEvent::Adapted(*decision));
        }
        if let (Some(reason), Some(why)) = (follow, fixed) {
            let top = self.top;
            let rung_kbps = |rung| fixed_rung_kbps(rung, top);
            let rung = fitting_rung(
                self.controller.kbps(),
                self.controller.rung().profile,
                rung_kbps,
            );
            if rung != self.rendition.profile {
                self.rendition.profile = rung;
                self.rendition.video_kbps = rung_kbps(rung);
                if why == FixedBitrate::OnRenegotiation {
                    // Kept by the encoder, and used when the new caps reconfigure it.
                    set_video_bitrate(
                        media.encoder_kind,
                        &media.live.encoder,
                        self.rendition.video_kbps,
                    );
                }
                events.push(SessionEvent::Adapted(AbrDecision::SetRung {
                    profile: rung,
                    reason,
                }));
            }
        }
        // After a cut, the backlog drains at what the link carried as it congested; after an
        // outage, at the link's capacity as it was: media that would wait longer is stale.
        let link_back = decisions.iter().any(|d| {
            matches!(
                d,
                AbrDecision::AudioOnly {
                    on: false,
                    reason: AbrReason::LinkBack
                }
            )
        });
        let drains_at = decisions
            .iter()
            .find_map(congestion_throughput)
            .or_else(|| {
                link_back.then(|| self.controller.capacity_kbps().unwrap_or(self.sent_kbps()))
            });
        if let Some(kbps) = drains_at {
            let bytes = feed.lock().window.bytes();
            if backlog_drain(bytes, kbps) > SKIP_BACKLOG_OVER {
                let dropped = feed.skip_backlog();
                log::info!("skipped {dropped} video frames ({bytes} bytes waiting, {kbps} kbit/s)");
            }
        }
        let resized = (before.profile, before.fps) != (self.rendition.profile, self.rendition.fps);
        if let (true, Some(caps)) = (resized, &media.live.caps) {
            caps.set_property(
                "caps",
                raw_video_caps(self.rendition.profile.size(), self.rendition.fps),
            );
        }
        events
    }

    /// The encoder counts its keyframe interval in frames of the configured rate; at a lower
    /// frame rate the interval would stretch, so keyframes are asked for on time.
    fn keep_keyframe_interval(&mut self, feed: &Feed, now: Instant) {
        if self.rendition.fps < self.max_fps
            && now.duration_since(self.last_keyframe_request) >= self.keyframe_interval
        {
            self.last_keyframe_request = now;
            feed.request_keyframe();
        }
    }
}

/// The bitrate (kbit/s) a fixed-bitrate encoder is given on `rung`: the configured one on the
/// configured (top) rung, the rung's default below it (never more than the configured one).
fn fixed_rung_kbps(rung: StreamProfile, (top, top_kbps): (StreamProfile, u32)) -> u32 {
    if rung == top {
        top_kbps
    } else {
        rung.default_video_kbps().min(top_kbps)
    }
}

/// The rung for an encoder that cannot change its bitrate while running: the highest rung up to
/// `ceiling` whose bitrate (`rung_kbps`) fits `kbps`, else the lowest.
fn fitting_rung(
    kbps: u32,
    ceiling: StreamProfile,
    rung_kbps: impl Fn(StreamProfile) -> u32,
) -> StreamProfile {
    let ladder = StreamProfile::LADDER;
    let top = ladder
        .iter()
        .position(|&p| p == ceiling)
        .unwrap_or(ladder.len() - 1);
    ladder[..=top]
        .iter()
        .rev()
        .copied()
        .find(|&rung| rung_kbps(rung) <= kbps)
        .unwrap_or(ladder[0])
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
    fn a_fixed_bitrate_encoder_takes_the_rung_that_fits() {
        let top = (StreamProfile::P720, 1800);
        let fit = |kbps, ceiling| fitting_rung(kbps, ceiling, |r| fixed_rung_kbps(r, top));
        assert_eq!(fit(1800, StreamProfile::P720), StreamProfile::P720);
        assert_eq!(fit(1500, StreamProfile::P720), StreamProfile::P540);
        assert_eq!(fit(1000, StreamProfile::P720), StreamProfile::P480);
        assert_eq!(fit(700, StreamProfile::P720), StreamProfile::P360);
        assert_eq!(fit(400, StreamProfile::P720), StreamProfile::P270);
        // Below the lowest rung's bitrate the lowest rung is all there is.
        assert_eq!(fit(150, StreamProfile::P720), StreamProfile::P270);
        // Never above the controller's rung (its hysteresis holds a step up).
        assert_eq!(fit(1800, StreamProfile::P480), StreamProfile::P480);

        // A configured bitrate above the rung's default holds the top rung until it fits...
        let top = (StreamProfile::P480, 1500);
        let fit = |kbps| fitting_rung(kbps, StreamProfile::P480, |r| fixed_rung_kbps(r, top));
        assert_eq!(fit(1500), StreamProfile::P480);
        assert_eq!(fit(1200), StreamProfile::P360);
        // ...and one below it caps every rung.
        let low = (StreamProfile::P480, 500);
        assert_eq!(fixed_rung_kbps(StreamProfile::P360, low), 500);
        assert_eq!(fixed_rung_kbps(StreamProfile::P270, low), 350);
        assert_eq!(fixed_rung_kbps(StreamProfile::P480, low), 500);
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
