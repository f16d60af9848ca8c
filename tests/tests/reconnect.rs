//! Staying live through a vanished ingest: the session reconnects by itself when the server is
//! back, the new connection starts on a keyframe, and the local recording has no gap.

use std::time::{Duration, Instant};

use fieldcast_core::*;
use fieldcast_sandbox::LocalIngest;
use fieldcast_tests::*;

#[test]
fn a_vanished_ingest_is_reconnected_and_the_recording_has_no_gap() {
    let mut ingest = ingest();
    let port = ingest.port();
    let replay = tempfile::tempdir().unwrap();
    let config = SessionConfig::builder(ingest.url("back"))
        .profile(StreamProfile::P270)
        .record_to(replay.path())
        .build()
        .unwrap();
    let (session, mut rx) = start_live(config);
    std::thread::sleep(Duration::from_secs(3));

    ingest.kill();
    let err =
        wait_error(&mut rx, Duration::from_secs(15)).expect("an error event after the ingest died");
    assert!(matches!(err, Error::IngestDisconnected { .. }), "{err}");
    assert!(wait_state(
        &mut rx,
        SessionState::Reconnecting,
        Duration::from_secs(5)
    ));
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(
        session.state(),
        SessionState::Reconnecting,
        "the session waits, it does not end"
    );

    let recordings = tempfile::tempdir().unwrap();
    let restarted = LocalIngest::start_at(port, recordings.path()).unwrap();
    let back = Instant::now();
    session.set_network_available(true);
    assert!(
        wait_state(&mut rx, SessionState::Live, Duration::from_secs(10)),
        "not live again"
    );
    let resumed_in = back.elapsed();
    assert!(
        resumed_in < Duration::from_secs(5),
        "live again only after {resumed_in:?}"
    );
    std::thread::sleep(Duration::from_secs(4));
    session.stop();
    assert_eq!(
        session.wait(Some(Duration::from_secs(15))).unwrap(),
        SessionState::Ended
    );
    let connected_for = back.elapsed().as_secs_f64();
    let stats = session.stats();
    assert!(stats.dropped_frames > 0, "the outage dropped no video");

    // The second connection: a decodable stream that starts on a keyframe, about 4 s long.
    let again = report(&restarted.recording("back"));
    eprintln!(
        "second connection: {:.2} s of media, {connected_for:.2} s after the ingest came back",
        again.duration_secs
    );
    assert!(
        starts_on_keyframe(&restarted.recording("back")),
        "the new connection starts on a keyframe"
    );
    let video = again.stream("video").expect("video after the reconnect");
    assert_eq!(video.size, Some((480, 270)));
    assert!(again.stream("audio").is_some());
    assert!(video.frames >= 90, "{again}");
    // Over 5 s without a connection the send window kept at most ~2 s and dropped the older
    // video as whole GOPs: the second connection carries about the time since the ingest came
    // back plus that window. Queueing the outage would have added all of it.
    assert!(
        again.duration_secs
            <= connected_for
                + fieldcast_core::uplink::send_window::SendWindow::<()>::DEFAULT_CAPACITY
                    .as_secs_f64()
                + 1.0,
        "the new connection sent {:.2} s of media {connected_for:.2} s after the ingest came back: the outage was queued",
        again.duration_secs
    );
    // The replay went on through the outage: one frame per 1/30 s over the whole session.
    let mp4 = report(&replay.path().join("fieldcast-00000.mp4"));
    assert!(
        (mp4.duration_secs - stats.uptime.as_secs_f64()).abs() < 1.0,
        "replay {:.2} s, session {:.2} s",
        mp4.duration_secs,
        stats.uptime.as_secs_f64()
    );
    assert_frame_count(
        mp4.stream("video").unwrap().frames,
        mp4.duration_secs,
        30.0,
        0.02,
    );
}
