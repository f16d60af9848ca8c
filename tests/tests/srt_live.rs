//! Going live over SRT to srt-live-transmit as the listener.

use std::net::UdpSocket;
use std::process::{Command, Stdio};

use fieldcast_core::{SessionConfig, StreamProfile};
use fieldcast_tests::*;

#[test]
fn publishes_h264_and_aac_over_srt() {
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("received.ts");
    let mut listener = Command::new("srt-live-transmit")
        .arg(format!("srt://127.0.0.1:{port}?mode=listener"))
        .arg("file://con")
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .expect("srt-live-transmit (Debian package srt-tools) runs");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let config = SessionConfig::builder(format!("srt://127.0.0.1:{port}"))
        .profile(StreamProfile::P360)
        .build()
        .unwrap();
    let stats = run_live(config, 6.0);
    std::thread::sleep(std::time::Duration::from_millis(500));
    let _ = listener.kill();
    let _ = listener.wait();
    assert!(stats.bytes_sent > 100_000, "{stats:?}");
    let r = report(&out);
    let video = r.stream("video").expect("video stream");
    assert_eq!(video.codec, "h264");
    assert_eq!(r.stream("audio").expect("audio stream").codec, "aac");
    assert_eq!(video.size, Some((640, 360)));
    assert!(r.duration_secs > 5.5, "{r}");
    assert_frame_count(video.frames, r.duration_secs, 30.0, 0.02);
}
