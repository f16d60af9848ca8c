//! Pinning products while live: every stored pin is found in the stream at its stored time.

use std::time::Duration;

use fieldcast_core::receiver::read_stream_messages;
use fieldcast_core::*;
use fieldcast_sandbox::{Sandbox, SandboxOptions};
use fieldcast_tests::*;
use serde_json::{Value, json};

#[test]
fn pins_are_stored_found_in_the_stream_within_one_frame_and_reach_the_platform() {
    // The platform: a live session on the sandbox, which also runs the ingest.
    let sandbox = Sandbox::start(SandboxOptions::default()).unwrap();
    let http = reqwest::blocking::Client::new();
    for id in ["oranges", "honey"] {
        http.put(format!("{}/v1/products/{id}", sandbox.base_url()))
            .bearer_auth(sandbox.token())
            .json(&json!({"title": id, "price_minor": 1500, "currency": "CNY", "unit": "box", "stock": 10}))
            .send()
            .unwrap()
            .error_for_status()
            .unwrap();
    }
    let live: Value = http
        .post(format!("{}/v1/live-sessions", sandbox.base_url()))
        .bearer_auth(sandbox.token())
        .json(&json!({"title": "pins"}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let (live_id, publish_url) = (
        live["id"].as_str().unwrap(),
        live["publish_url"].as_str().unwrap(),
    );
    let key = publish_url.rsplit('/').next().unwrap();

    // The phone: its store and relay.
    let dir = tempfile::tempdir().unwrap();
    let (store, pins) = test_shop(dir.path(), &["oranges", "honey"]);
    let engine = SyncEngine::start(
        store.clone(),
        SyncConfig::new(sandbox.base_url(), sandbox.token()),
    )
    .unwrap();

    let config = SessionConfig::builder(publish_url)
        .profile(StreamProfile::P270)
        .build()
        .unwrap();
    let session = LiveSession::new(config).unwrap();
    assert!(matches!(
        session.pin_product("oranges"),
        Err(Error::InvalidState { .. })
    ));
    let mut rx = session.subscribe();
    session.start().unwrap();
    assert!(
        matches!(session.pin_product("oranges"), Err(Error::InvalidConfig(_))),
        "no store linked yet"
    );
    session.link_commerce(pins.clone(), live_id);
    assert!(wait_state(
        &mut rx,
        SessionState::Live,
        Duration::from_secs(10)
    ));
    std::thread::sleep(Duration::from_millis(1500));
    let first = session.pin_product("oranges").unwrap();
    std::thread::sleep(Duration::from_millis(1700));
    let second = session.pin_product("honey").unwrap();
    std::thread::sleep(Duration::from_millis(1300));
    let ended = session.unpin_product(&second.id).unwrap();
    assert!(matches!(
        session.pin_product("no-such-product"),
        Err(Error::Commerce(CommerceError::UnknownProduct { .. }))
    ));
    std::thread::sleep(Duration::from_secs(6));
    session.stop();
    session.wait(Some(Duration::from_secs(15))).unwrap();

    // Stored: two chapters, the first ended where the second began.
    let chapters = pins.pins(live_id).unwrap();
    assert_eq!(chapters.len(), 2);
    assert_eq!(chapters[0].id, first.id);
    assert_eq!(
        chapters[0].ended_stream_time_ms,
        Some(second.stream_time_ms)
    );
    assert_eq!(chapters[1].ended_stream_time_ms, ended.ended_stream_time_ms);
    assert!(first.stream_time_ms >= 1400, "{first:?}");

    // In the stream: each pin and the unpin, first seen within one frame of the stored time.
    let path = sandbox.ingest_recording(key).unwrap();
    let messages = read_stream_messages(path.to_str().unwrap(), Duration::from_secs(20)).unwrap();
    let expect = [
        ("pin", &first.id, first.stream_time_ms),
        ("pin", &second.id, second.stream_time_ms),
        ("unpin", &second.id, ended.ended_stream_time_ms.unwrap()),
    ];
    let mut start = None;
    for (kind, id, at) in expect {
        let found: Vec<(u64, serde_json::Value)> = messages
            .iter()
            .map(|m| {
                (
                    m.stream_ms,
                    serde_json::from_str::<serde_json::Value>(&m.json).unwrap(),
                )
            })
            .filter(|(_, v)| v["type"] == kind && v["pin"] == id.as_str())
            .collect();
        assert!(!found.is_empty(), "{kind} {id} not in the stream");
        let (seen_ms, value) = &found[0];
        assert_eq!(value["t"].as_u64(), Some(at));
        let seen_ms = seen_ms + *start.get_or_insert_with(|| recording_start_ms(at, *seen_ms));
        assert!(
            seen_ms.abs_diff(at) <= 34,
            "{kind} stored at {at} ms, carried by the frame at stream time {seen_ms} ms"
        );
        assert!(found.len() >= 2, "{kind} {id} is repeated on a keyframe");
    }
    // Each pin event reaches the platform: pin, unpin (ended by the next pin), pin, unpin.
    assert!(
        engine.wait_idle(Duration::from_secs(15)),
        "{:?}",
        engine.queue_state()
    );
    assert_eq!(store.outbox_counts().unwrap().synced, 4);
    let on_platform: Value = http
        .get(format!("{}/v1/live-sessions/{live_id}", sandbox.base_url()))
        .bearer_auth(sandbox.token())
        .send()
        .unwrap()
        .json()
        .unwrap();
    let events: Vec<(String, String, u64)> = on_platform["pins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().into(),
                e["pin_id"].as_str().unwrap().into(),
                e["stream_time_ms"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(
        events.contains(&("pin".into(), first.id.clone(), first.stream_time_ms)),
        "{events:?}"
    );
    assert!(
        events.contains(&("unpin".into(), first.id.clone(), second.stream_time_ms)),
        "{events:?}"
    );
    assert!(
        events.contains(&(
            "unpin".into(),
            second.id.clone(),
            ended.ended_stream_time_ms.unwrap()
        )),
        "{events:?}"
    );
    assert_eq!(events.len(), 4, "{events:?}");
    engine.stop();
}
