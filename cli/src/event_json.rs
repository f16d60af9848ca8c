//! `fieldcast live --json-events`: each session event as one JSON object per line, stamped with
//! the wall clock, for QA scripts and the network benchmarks.

use std::time::{SystemTime, UNIX_EPOCH};

use fieldcast_core::uplink::abr::{AbrDecision, AbrReason};
use fieldcast_core::{FixedBitrate, LiveStats, SessionEvent, SessionState};
use serde_json::{Value, json};

/// Milliseconds since the UNIX epoch.
fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The JSON line of `event`, stamped now.
pub fn event(event: &SessionEvent) -> Value {
    let mut value = match event {
        SessionEvent::StateChanged { from, to } => {
            json!({"event": "state", "from": state(*from), "to": state(*to)})
        }
        SessionEvent::Stats(s) => stats(s),
        SessionEvent::Error(e) => json!({"event": "error", "message": e.to_string()}),
        SessionEvent::Adapted(decision) => adapt(decision),
        SessionEvent::EncoderBitrateFixed { encoder, reason } => json!({
            "event": "encoder_bitrate_fixed",
            "encoder": encoder,
            "reason": match reason {
                FixedBitrate::OnRenegotiation => "on_renegotiation",
                FixedBitrate::NoProperty => "no_property",
            },
            "follows": "rung",
        }),
        SessionEvent::ReplayAtLiveQuality { reason } => json!({
            "event": "replay_at_live_quality",
            "reason": reason,
        }),
    };
    value["wall_ms"] = json!(wall_ms());
    value
}

/// The last line: the session's final figures.
pub fn ended(stats: &LiveStats) -> Value {
    json!({
        "wall_ms": wall_ms(),
        "event": "ended",
        "uptime_ms": stats.uptime.as_millis() as u64,
        "frames_encoded": stats.frames_encoded,
        "bytes_sent": stats.bytes_sent,
        "dropped_frames": stats.dropped_frames,
    })
}

fn state(state: SessionState) -> String {
    format!("{state:?}").to_lowercase()
}

fn stats(s: &LiveStats) -> Value {
    json!({
        "event": "stats",
        "uptime_ms": s.uptime.as_millis() as u64,
        "input_fps": s.input_fps,
        "output_fps": s.output_fps,
        "video_kbps": s.video_kbps,
        "audio_kbps": s.audio_kbps,
        "bytes_sent": s.bytes_sent,
        "dropped_frames": s.dropped_frames,
        "frames_encoded": s.frames_encoded,
        "target_video_kbps": s.target_video_kbps,
        "width": s.width,
        "height": s.height,
        "fps": s.fps,
        "audio_only": s.audio_only,
        "send_queue_ms": s.send_queue.as_millis() as u64,
        "link_kbps": s.link_kbps,
        "video_encoders": s.video_encoders,
    })
}

fn adapt(decision: &AbrDecision) -> Value {
    let (mut value, reason) = match *decision {
        AbrDecision::SetBitrate { kbps, reason } => {
            (json!({"action": "bitrate", "kbps": kbps}), reason)
        }
        AbrDecision::SetRung { profile, reason } => {
            (json!({"action": "rung", "profile": profile.name()}), reason)
        }
        AbrDecision::SetFps { fps, reason } => (json!({"action": "fps", "fps": fps}), reason),
        AbrDecision::AudioOnly { on, reason } => {
            (json!({"action": "audio_only", "on": on}), reason)
        }
    };
    value["event"] = json!("adapt");
    match reason {
        AbrReason::Congestion {
            measured_kbps,
            queue,
        } => {
            value["reason"] = json!("congestion");
            value["measured_kbps"] = json!(measured_kbps);
            value["queue_ms"] = json!(queue.as_millis() as u64);
        }
        AbrReason::Recovered => value["reason"] = json!("recovered"),
        AbrReason::Outage => value["reason"] = json!("outage"),
        AbrReason::LinkBack => value["reason"] = json!("link_back"),
    }
    value
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use fieldcast_core::StreamProfile;

    use super::*;

    #[test]
    fn events_become_one_line_objects_with_their_fields() {
        let line = event(&SessionEvent::StateChanged {
            from: SessionState::Connecting,
            to: SessionState::Live,
        });
        assert_eq!(
            (line["event"].as_str(), line["to"].as_str()),
            (Some("state"), Some("live"))
        );
        assert!(line["wall_ms"].as_u64().unwrap() > 1_600_000_000_000);

        let cut = event(&SessionEvent::Adapted(AbrDecision::SetBitrate {
            kbps: 240,
            reason: AbrReason::Congestion {
                measured_kbps: 310,
                queue: Duration::from_millis(900),
            },
        }));
        assert_eq!(cut["action"], "bitrate");
        assert_eq!(cut["kbps"], 240);
        assert_eq!(cut["reason"], "congestion");
        assert_eq!(
            (cut["measured_kbps"].as_u64(), cut["queue_ms"].as_u64()),
            (Some(310), Some(900))
        );
        assert!(!cut.to_string().contains('\n'));

        let rung = event(&SessionEvent::Adapted(AbrDecision::SetRung {
            profile: StreamProfile::P270,
            reason: AbrReason::Recovered,
        }));
        assert_eq!(
            (rung["profile"].as_str(), rung["reason"].as_str()),
            (Some("270p"), Some("recovered"))
        );

        let fixed = event(&SessionEvent::EncoderBitrateFixed {
            encoder: "amcvidenc-omxqcomvideoencoderavc".into(),
            reason: FixedBitrate::OnRenegotiation,
        });
        assert_eq!(
            (
                fixed["event"].as_str(),
                fixed["reason"].as_str(),
                fixed["follows"].as_str()
            ),
            (
                Some("encoder_bitrate_fixed"),
                Some("on_renegotiation"),
                Some("rung")
            )
        );
        assert_eq!(fixed["encoder"], "amcvidenc-omxqcomvideoencoderavc");
        assert!(fixed["wall_ms"].as_u64().is_some());

        let stats = event(&SessionEvent::Stats(LiveStats {
            width: 480,
            height: 270,
            send_queue: Duration::from_millis(1500),
            ..LiveStats::default()
        }));
        assert_eq!(
            (stats["width"].as_u64(), stats["send_queue_ms"].as_u64()),
            (Some(480), Some(1500))
        );
    }
}
