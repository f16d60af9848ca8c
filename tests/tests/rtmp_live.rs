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

#[test]
fn a_raw_y4m_file_goes_out_whole_with_silence_as_long_as_its_pictures() {
    // 854 pixels wide: rows GStreamer pads (to 856), and pictures of 615 KB that often span two of
    // the file source's reads; 90 pictures at 30 fps.
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("clip.y4m");
    // ffmpeg writes rows of the picture's width, as YUV4MPEG2 says (GStreamer 1.22's y4menc writes
    // its own padded rows, which no reader takes at this width).
    let made = std::process::Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=854x480:rate=30",
        ])
        .args(["-frames:v", "90", "-pix_fmt", "yuv420p"])
        .arg(&clip)
        .status()
        .unwrap();
    assert!(made.success());
    let ingest = ingest();
    let config = SessionConfig::builder(ingest.url("y4m"))
        .profile(StreamProfile::P480)
        .source(Source::File(clip))
        .build()
        .unwrap();
    let session = LiveSession::new(config).unwrap();
    session.start().unwrap();
    assert_eq!(
        session.wait(Some(Duration::from_secs(20))).unwrap(),
        SessionState::Ended
    );
    let stats = session.stats();
    assert_eq!(stats.dropped_frames, 0, "{stats:?}");
    let r = report(&ingest.recording("y4m"));
    let video = r.stream("video").expect("video stream");
    assert_eq!(video.size, Some((854, 480)));
    assert_eq!(video.frames, 90, "every picture of the file is sent: {r}");
    let audio = r.stream("audio").expect("silence is added for a raw file");
    // 3 s of AAC at 44.1 kHz is 129 frames of 1024 samples; the silence ends with the pictures.
    assert!(
        (125..=135).contains(&audio.frames),
        "{} AAC frames for 3 s of pictures: {r}",
        audio.frames
    );
}
