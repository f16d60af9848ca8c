//! Timed messages in the video: SEI inserted while live arrives at the ingest at its stream time.

use std::process::Command;
use std::time::Duration;

use fieldcast_core::receiver::read_stream_messages;
use fieldcast_core::*;
use fieldcast_tests::*;

#[test]
fn sei_messages_arrive_at_their_stream_time_and_repeat_on_keyframes() {
    let ingest = ingest();
    let config = SessionConfig::builder(ingest.url("sei"))
        .profile(StreamProfile::P270)
        .build()
        .unwrap();
    let (session, _events) = start_live(config);
    let mut sent = Vec::new();
    for n in 0..3 {
        std::thread::sleep(Duration::from_millis(1300));
        let t = session
            .insert_stream_message(|t| format!(r#"{{"n":{n},"t":{t}}}"#).into_bytes())
            .unwrap();
        sent.push((format!(r#"{{"n":{n},"t":{t}}}"#), t));
    }
    std::thread::sleep(Duration::from_secs(7));
    session.stop();
    session.wait(Some(Duration::from_secs(15))).unwrap();

    let path = ingest.recording("sei");
    let received = read_stream_messages(path.to_str().unwrap(), Duration::from_secs(20)).unwrap();
    let first_sent = received
        .iter()
        .find(|m| m.json == sent[0].0)
        .expect("the first message");
    let start = recording_start_ms(sent[0].1, first_sent.stream_ms);
    for (json, t) in &sent {
        let copies: Vec<_> = received.iter().filter(|m| &m.json == json).collect();
        assert!(
            copies.len() > 2,
            "{json}: {} copies (first frame + keyframes)",
            copies.len()
        );
        let first = copies[0].stream_ms + start;
        assert!(
            first.abs_diff(*t) <= 34,
            "{json} arrived at stream time {first} ms, sent for {t} ms"
        );
    }
    // An independent decoder sees well-formed user_data_unregistered SEI and decodes every frame.
    let trace = Command::new("ffmpeg")
        .args(["-v", "trace", "-i"])
        .arg(&path)
        .args([
            "-map",
            "0:v",
            "-c",
            "copy",
            "-bsf:v",
            "trace_headers",
            "-f",
            "null",
            "-",
        ])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&trace.stderr);
    assert!(trace.status.success());
    let sei_count = log.matches("User Data Unregistered").count();
    assert!(
        sei_count >= 9,
        "ffmpeg found {sei_count} user_data_unregistered SEI"
    );
    let r = report(&path);
    assert_frame_count(
        r.stream("video").unwrap().frames,
        r.duration_secs,
        30.0,
        0.02,
    );
}
