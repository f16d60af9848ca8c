//! The replay at full quality for the price of one encoder while the link is good: with the
//! adaptive bitrate on, the recording takes the live encoder's frames while the live stream is at
//! full quality, and runs an encoder of its own only while the live stream is below it.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use fieldcast_core::receiver::read_stream_messages;
use fieldcast_core::*;
use fieldcast_tests::relay::Relay;
use fieldcast_tests::*;
use tokio::sync::broadcast::Receiver;

/// The full-quality rendition: 480p30 at 1000 kbit/s.
const FULL: (u32, u32, u32) = (854, 480, 1000);
/// The poor link, kbit/s: well below the full-quality stream.
const POOR_KBIT: u32 = 350;

/// Which part of the run a second of statistics belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Good,
    /// The link is poor; `settled` once the recording has its own encoder.
    Poor {
        settled: bool,
    },
    /// The link is good again; `settled` once the recording is back on the live encoder.
    GoodAgain {
        settled: bool,
    },
}

/// Collects the stats events for `secs`, or until `until` holds for one of them.
fn collect(
    rx: &mut Receiver<SessionEvent>,
    phase: Phase,
    secs: u64,
    log: &mut Vec<(Phase, LiveStats)>,
    until: impl Fn(&LiveStats) -> bool,
) -> bool {
    let mut met = false;
    wait_event(rx, Duration::from_secs(secs), |e| {
        if let SessionEvent::Stats(s) = e {
            log.push((phase, *s));
            met = until(s);
        }
        met
    });
    met
}

/// The sizes of every decoded video frame of `path`.
fn frame_sizes(path: &Path) -> Vec<String> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
        .args(["frame=width,height", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    // A frame with side data (the SEI of a pin) ends its line with a comma and adds an empty one.
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| line.trim_end_matches(',').to_string())
        .filter(|line| !line.is_empty())
        .collect()
}

/// What ffmpeg says when it decodes the whole of `path` (nothing for a clean file).
fn decode_errors(path: &Path) -> String {
    decode_errors_from(path, 0.0, None)
}

/// What ffmpeg says when it seeks `path` to `at_secs` and decodes from there (`frames` of it, or
/// to the end).
fn decode_errors_from(path: &Path, at_secs: f64, frames: Option<u32>) -> String {
    let mut ffmpeg = Command::new("ffmpeg");
    ffmpeg.args([
        "-v",
        "error",
        "-nostdin",
        "-ss",
        &format!("{at_secs:.3}"),
        "-i",
    ]);
    ffmpeg.arg(path);
    if let Some(frames) = frames {
        ffmpeg.args(["-frames:v", &frames.to_string()]);
    }
    let out = ffmpeg
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg runs");
    let mut said = String::from_utf8_lossy(&out.stderr).trim().to_string();
    if !out.status.success() {
        said.push_str(&format!(" ({})", out.status));
    }
    said
}

#[test]
fn the_replay_keeps_full_quality_through_a_poor_link_with_a_second_encoder_only_meanwhile() {
    let ingest = ingest();
    let relay = Relay::start(SocketAddr::from((Ipv4Addr::LOCALHOST, ingest.port())));
    let replay = tempfile::tempdir().unwrap();
    let config = SessionConfig::builder(format!("rtmp://127.0.0.1:{}/live/replay", relay.port()))
        .profile(StreamProfile::P480)
        .video_kbps(FULL.2)
        .fps(30)
        .record_to(replay.path())
        .build()
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let (_store, pins) = test_shop(dir.path(), &["oranges", "honey"]);
    let session = LiveSession::new(config).unwrap();
    let mut rx = session.subscribe();
    let start = Instant::now();
    session.start().unwrap();
    session.link_commerce(pins.clone(), "live-replay");
    assert!(wait_state(
        &mut rx,
        SessionState::Live,
        Duration::from_secs(10)
    ));
    let live_at = Instant::now();
    let mut log = Vec::new();
    let mut pinned = Vec::new();

    collect(&mut rx, Phase::Good, 6, &mut log, |_| false);
    pinned.push(session.pin_product("oranges").unwrap());

    relay.limit_upstream(Some(POOR_KBIT));
    let own = collect(&mut rx, Phase::Poor { settled: false }, 20, &mut log, |s| {
        s.video_encoders == 2
    });
    let own_after = live_at.elapsed();
    collect(&mut rx, Phase::Poor { settled: true }, 3, &mut log, |_| {
        false
    });
    pinned.push(session.pin_product("honey").unwrap());
    collect(&mut rx, Phase::Poor { settled: true }, 5, &mut log, |_| {
        false
    });

    relay.limit_upstream(None);
    let back = collect(
        &mut rx,
        Phase::GoodAgain { settled: false },
        50,
        &mut log,
        |s| s.video_encoders == 1,
    );
    collect(
        &mut rx,
        Phase::GoodAgain { settled: true },
        4,
        &mut log,
        |_| false,
    );
    pinned.push(session.pin_product("oranges").unwrap());
    collect(
        &mut rx,
        Phase::GoodAgain { settled: true },
        3,
        &mut log,
        |_| false,
    );
    // The media the session took in: from its start to the stop (ending drains what waits to be
    // sent and records nothing more).
    let uptime = start.elapsed().as_secs_f64();
    session.stop();
    assert_eq!(
        session.wait(Some(Duration::from_secs(15))).unwrap(),
        SessionState::Ended
    );

    for (phase, s) in &log {
        eprintln!(
            "{phase:?}: {:.0} s, live {}x{} at {} kbit/s, {} video encoder(s)",
            s.uptime.as_secs_f64(),
            s.width,
            s.height,
            s.target_video_kbps,
            s.video_encoders
        );
    }
    eprintln!("own encoder after {own_after:?}");
    assert!(
        own,
        "no second encoder within 20 s of the link turning poor"
    );
    assert!(
        back,
        "still two encoders 50 s after the link was good again"
    );
    let encoders_in = |phase: Phase| -> Vec<u32> {
        log.iter()
            .filter(|(p, _)| *p == phase)
            .map(|(_, s)| s.video_encoders)
            .collect()
    };
    let good = encoders_in(Phase::Good);
    assert!(
        good.iter().all(|&n| n == 1),
        "one encoder while the link is good: {good:?}"
    );
    let poor = encoders_in(Phase::Poor { settled: true });
    assert!(
        !poor.is_empty() && poor.iter().all(|&n| n == 2),
        "two encoders while the link is poor: {poor:?}"
    );
    let lowered = log
        .iter()
        .any(|(p, s)| matches!(p, Phase::Poor { .. }) && s.target_video_kbps < FULL.2);
    assert!(lowered, "the poor link lowered the live stream");
    let again = encoders_in(Phase::GoodAgain { settled: true });
    assert!(
        again.iter().all(|&n| n == 1),
        "one encoder once the link is good again: {again:?}"
    );

    // One continuous MP4 at full quality, every frame present, read and decoded cleanly.
    let segments: Vec<PathBuf> = std::fs::read_dir(replay.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "mp4"))
        .collect();
    assert_eq!(segments.len(), 1, "{segments:?}");
    let mp4 = &segments[0];
    let errors = decode_errors(mp4);
    assert!(errors.is_empty(), "decoding the replay: {errors}");
    let r = report(mp4);
    let video = r.stream("video").expect("video in the replay");
    assert!(r.stream("audio").is_some(), "{r}");
    eprintln!("replay: {r}");
    let packets = packets(mp4);
    let (v0, v1) = span(&packets, "video").unwrap();
    let step = largest_step(&packets, "video");
    eprintln!(
        "replay video {v0:.3}-{v1:.3} s for {uptime:.2} s of session, largest step {:.1} ms",
        step * 1000.0
    );
    assert!(
        step <= 1.0 / 30.0 + 0.005,
        "a {:.1} ms step between frames",
        step * 1000.0
    );
    assert!(
        ((v1 - v0) - uptime).abs() < 1.0,
        "{:.2} s of video for {uptime:.2} s of session",
        v1 - v0
    );
    assert_frame_count(video.frames, v1 - v0, 30.0, 0.02);
    let sizes = frame_sizes(mp4);
    let full = format!("{},{}", FULL.0, FULL.1);
    let other: Vec<&String> = sizes.iter().filter(|s| **s != full).collect();
    assert_eq!(sizes.len() as u64, video.frames, "every frame decoded");
    assert!(
        other.is_empty(),
        "{} of {} frames not at {full}: {:?}",
        other.len(),
        sizes.len(),
        other.iter().take(5).collect::<Vec<_>>()
    );

    // A player seeks into the own encoder's part and back into the live encoder's: each starts
    // at a keyframe with its own parameter sets.
    let seconds_of = |phase: Phase| {
        log.iter()
            .find(|(p, _)| *p == phase)
            .map(|(_, s)| s.uptime.as_secs_f64() + 1.5)
            .unwrap()
    };
    for at in [
        seconds_of(Phase::Poor { settled: true }),
        seconds_of(Phase::GoodAgain { settled: true }),
    ] {
        let errors = decode_errors_from(mp4, at, Some(30));
        assert!(
            errors.is_empty(),
            "seeking the replay to {at:.1} s: {errors}"
        );
    }

    // The chapters: each pin is in the replay, first carried within a frame of its stored time,
    // from the live encoder (good link) and from the own one (poor link) alike.
    let messages = read_stream_messages(mp4.to_str().unwrap(), Duration::from_secs(30)).unwrap();
    let mut start = None;
    for pin in &pinned {
        let seen = messages.iter().find(|m| {
            serde_json::from_str::<serde_json::Value>(&m.json)
                .is_ok_and(|v| v["type"] == "pin" && v["pin"] == pin.id.as_str())
        });
        let seen = seen.unwrap_or_else(|| panic!("pin {} not in the replay", pin.id));
        let seen_ms = seen.stream_ms
            + *start.get_or_insert_with(|| recording_start_ms(pin.stream_time_ms, seen.stream_ms));
        eprintln!(
            "pin {} stored at {} ms, in the replay at {seen_ms} ms",
            pin.id, pin.stream_time_ms
        );
        assert!(
            seen_ms.abs_diff(pin.stream_time_ms) <= 34,
            "pin stored at {} ms, carried by the frame at {seen_ms} ms",
            pin.stream_time_ms
        );
    }
}

/// A device with one video encoder session: the replay follows the live rendition (smaller
/// pictures while the link is poor), stays whole and playable, and the app is told once.
#[test]
fn with_one_encoder_the_replay_follows_the_live_rendition_and_the_app_is_told() {
    let ingest = ingest();
    let relay = Relay::start(SocketAddr::from((Ipv4Addr::LOCALHOST, ingest.port())));
    let replay = tempfile::tempdir().unwrap();
    let config = SessionConfig::builder(format!("rtmp://127.0.0.1:{}/live/one", relay.port()))
        .profile(StreamProfile::P480)
        .video_kbps(FULL.2)
        .record_to(replay.path())
        .one_video_encoder(true)
        .build()
        .unwrap();
    let session = LiveSession::new(config).unwrap();
    let mut rx = session.subscribe();
    let start = Instant::now();
    session.start().unwrap();
    let told = wait_event(&mut rx, Duration::from_secs(10), |e| {
        matches!(e, SessionEvent::ReplayAtLiveQuality { .. })
    });
    assert!(
        matches!(&told, Some(SessionEvent::ReplayAtLiveQuality { reason }) if reason.contains("one video encoder")),
        "{told:?}"
    );
    let mut log = Vec::new();
    collect(&mut rx, Phase::Good, 4, &mut log, |_| false);
    relay.limit_upstream(Some(POOR_KBIT));
    let lowered = collect(&mut rx, Phase::Poor { settled: false }, 20, &mut log, |s| {
        s.width < FULL.0
    });
    collect(&mut rx, Phase::Poor { settled: true }, 4, &mut log, |_| {
        false
    });
    // The media the session took in: from its start to the stop (ending drains what waits to be
    // sent and records nothing more).
    let uptime = start.elapsed().as_secs_f64();
    session.stop();
    assert_eq!(
        session.wait(Some(Duration::from_secs(15))).unwrap(),
        SessionState::Ended
    );
    assert!(lowered, "the poor link did not lower the live rendition");
    let encoders: Vec<u32> = log.iter().map(|(_, s)| s.video_encoders).collect();
    assert!(encoders.iter().all(|&n| n == 1), "{encoders:?}");

    let mut segments: Vec<PathBuf> = std::fs::read_dir(replay.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "mp4"))
        .collect();
    segments.sort();
    let mut recorded = 0.0;
    let mut sizes = Vec::new();
    for mp4 in &segments {
        let errors = decode_errors(mp4);
        assert!(errors.is_empty(), "decoding {}: {errors}", mp4.display());
        let packets = packets(mp4);
        let (v0, v1) = span(&packets, "video").unwrap();
        recorded += v1 - v0;
        sizes.extend(frame_sizes(mp4));
        eprintln!(
            "{}: {:.2} s, largest step {:.1} ms",
            mp4.display(),
            v1 - v0,
            largest_step(&packets, "video") * 1000.0
        );
    }
    sizes.dedup();
    eprintln!(
        "{} segment(s), {recorded:.2} s for {uptime:.2} s; sizes {sizes:?}",
        segments.len()
    );
    assert!(
        (recorded - uptime).abs() < 1.0,
        "{recorded:.2} s recorded for {uptime:.2} s"
    );
    assert!(
        sizes
            .first()
            .is_some_and(|s| *s == format!("{},{}", FULL.0, FULL.1))
            && sizes.len() > 1,
        "the replay follows the live rendition: {sizes:?}"
    );
}
