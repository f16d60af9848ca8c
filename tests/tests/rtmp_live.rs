//! Going live over RTMP to a real nginx-rtmp: codecs, resolution, frame count, recording, probe.

use std::time::Duration;

use fieldcast_core::{LiveSession, SessionConfig, SessionState, Source, StreamProfile, receiver};
use fieldcast_tests::*;

fn check_profile(profile: StreamProfile, key: &str) {
    let ingest = ingest();
    let config = SessionConfig::builder(ingest.url(key))
        .profile(profile)
        .build()
        .unwrap();
    let stats = run_live(config, 8.0);
    assert_eq!(stats.dropped_frames, 0);
    assert!(stats.bytes_sent > 100_000, "{stats:?}");
    let r = report(&ingest.recording(key));
    let video = r.stream("video").expect("video stream");
    let audio = r.stream("audio").expect("audio stream");
    assert_eq!(video.codec, "h264");
    assert_eq!(audio.codec, "aac");
    assert_eq!(video.size, Some(profile.size()));
    assert!(r.duration_secs > 7.5, "{r}");
    assert_frame_count(video.frames, r.duration_secs, 30.0, 0.02);
}

#[test]
fn publishes_h264_and_aac_at_270p() {
    check_profile(StreamProfile::P270, "p270");
}

#[test]
fn publishes_h264_and_aac_at_480p() {
    check_profile(StreamProfile::P480, "p480");
}

#[test]
fn publishes_h264_and_aac_at_720p() {
    check_profile(StreamProfile::P720, "p720");
}

#[test]
fn recording_is_a_playable_mp4_as_long_as_the_session() {
    let ingest = ingest();
    let dir = tempfile::tempdir().unwrap();
    let config = SessionConfig::builder(ingest.url("rec"))
        .profile(StreamProfile::P360)
        .record_to(dir.path())
        .build()
        .unwrap();
    run_live(config, 6.0);
    let live = report(&ingest.recording("rec"));
    let mp4 = report(&dir.path().join("fieldcast-00000.mp4"));
    assert_eq!(mp4.stream("video").unwrap().codec, "h264");
    assert_eq!(mp4.stream("audio").unwrap().codec, "aac");
    assert_eq!(mp4.stream("video").unwrap().size, Some((640, 360)));
    assert!(
        (mp4.duration_secs - live.duration_secs).abs() < 0.5,
        "mp4 {:.2} s vs live {:.2} s",
        mp4.duration_secs,
        live.duration_secs
    );
    assert_frame_count(
        mp4.stream("video").unwrap().frames,
        mp4.duration_secs,
        30.0,
        0.02,
    );
}

#[test]
fn latency_probe_reads_capture_stamps_at_the_player() {
    let ingest = ingest();
    let config = SessionConfig::builder(ingest.url("probe"))
        .profile(StreamProfile::P360)
        .source(Source::Test)
        .latency_stamp(true)
        .build()
        .unwrap();
    let (session, _events) = start_live(config);
    let report = receiver::measure_latency(&ingest.url("probe"), Duration::from_secs(5)).unwrap();
    session.stop();
    session.wait(Some(Duration::from_secs(10))).unwrap();
    assert!(report.samples >= 90, "{report:?}");
    assert!(report.unreadable <= report.samples / 10, "{report:?}");
    assert!(report.p50_ms < 2000, "{report:?}");
}

#[test]
fn a_file_source_plays_in_real_time_and_ends_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("clip.mp4");
    let made = std::process::Command::new("gst-launch-1.0")
        .args([
            "-q",
            "videotestsrc",
            "num-buffers=75",
            "!",
            "video/x-raw,width=320,height=240,framerate=25/1",
        ])
        .args(["!", "x264enc", "!", "mp4mux", "!", "filesink"])
        .arg(format!("location={}", clip.display()))
        .status()
        .unwrap();
    assert!(made.success());
    let ingest = ingest();
    let config = SessionConfig::builder(ingest.url("file"))
        .profile(StreamProfile::P360)
        .source(Source::File(clip))
        .build()
        .unwrap();
    let session = LiveSession::new(config).unwrap();
    let started = std::time::Instant::now();
    session.start().unwrap();
    assert_eq!(
        session.wait(Some(Duration::from_secs(20))).unwrap(),
        SessionState::Ended
    );
    let took = started.elapsed().as_secs_f64();
    assert!(
        took > 2.5,
        "a 3 s file ended after {took:.1} s: not paced in real time"
    );
    let r = report(&ingest.recording("file"));
    assert_eq!(r.stream("video").unwrap().size, Some((640, 360)));
    assert!(
        r.stream("audio").is_some(),
        "silence is added for a file without sound"
    );
    assert!((r.duration_secs - 3.0).abs() < 0.5, "{r}");
}
