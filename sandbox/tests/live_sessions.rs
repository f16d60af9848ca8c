//! Live sessions against the supervised nginx-rtmp ingest: usable publish URLs, recordings, the
//! restart after nginx is killed, ending, pins and per-session sales.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Client, sale, sandbox, sandbox_with_ingest};
use fieldcast_sandbox::MediaReport;
use serde_json::{Value, json};

/// Publishes 1.5 s of H.264 + AAC test media to `url` with ffmpeg.
fn publish(url: &str) {
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc=size=320x240:rate=15"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"])
        .args([
            "-t",
            "1.5",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "15",
        ])
        .args(["-c:a", "aac", "-f", "flv", url])
        .stdin(Stdio::null())
        .status()
        .expect("ffmpeg runs (Debian package ffmpeg)");
    assert!(status.success(), "ffmpeg could not publish to {url}");
}

fn create_session(c: &Client, title: &str) -> Value {
    let reply = c.json("POST", "/v1/live-sessions", &json!({ "title": title }));
    assert_eq!(reply.status, 201, "{reply:?}");
    reply.json()
}

/// Polls (bounded) until `f` gives `Some`.
fn wait_for<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(v) = f() {
            return Some(v);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

#[test]
fn a_new_session_has_a_publish_url_that_the_ingest_records() {
    let sb = sandbox_with_ingest();
    let c = Client::new(&sb);
    let session = create_session(&c, "Morning oranges");
    let ingest_url = sb.ingest_url().unwrap();
    assert!(ingest_url.starts_with("rtmp://127.0.0.1:") && ingest_url.ends_with("/live"));
    assert_eq!(session["ingest_url"], ingest_url.as_str());
    let key = session["stream_key"].as_str().unwrap();
    assert_eq!(key.len(), 32, "128 random bits in hex");
    assert_eq!(session["publish_url"], format!("{ingest_url}/{key}"));
    assert_eq!(session["state"], "created");
    assert_eq!(session["ended_at"], json!(null));
    assert_eq!(session["pins"], json!([]));
    let other = create_session(&c, "Afternoon honey");
    assert_ne!(
        other["stream_key"], session["stream_key"],
        "a fresh key per session"
    );

    publish(session["publish_url"].as_str().unwrap());
    let recording =
        wait_for(Duration::from_secs(3), || sb.ingest_recording(key)).expect("recorded");
    let report = MediaReport::probe(&recording).unwrap();
    assert_eq!(report.stream("video").unwrap().codec, "h264");
    assert_eq!(report.stream("video").unwrap().size, Some((320, 240)));
    assert!(sb.ingest_recording("never-published").is_none());
}

#[test]
fn the_ingest_is_restarted_on_the_same_port_after_nginx_is_killed() {
    let sb = sandbox_with_ingest();
    let c = Client::new(&sb);
    let session = create_session(&c, "Restart");
    let before = sb.ingest_pid().expect("nginx runs");
    // SAFETY: kill(2) on the pid of the sandbox's own nginx child.
    assert_eq!(
        unsafe { libc::kill(before as libc::pid_t, libc::SIGKILL) },
        0
    );
    let after = wait_for(Duration::from_secs(5), || {
        sb.ingest_pid().filter(|p| *p != before)
    })
    .expect("a new nginx within 5 s");
    assert_ne!(after, before);
    // The URL handed out before the crash still works.
    publish(session["publish_url"].as_str().unwrap());
    let key = session["stream_key"].as_str().unwrap();
    assert!(wait_for(Duration::from_secs(3), || sb.ingest_recording(key)).is_some());
    assert_eq!(
        create_session(&c, "After")["ingest_url"],
        session["ingest_url"]
    );
}

#[test]
fn ending_is_idempotent_and_pins_come_in_stream_order() {
    let sb = sandbox_with_ingest();
    let c = Client::new(&sb);
    let session = create_session(&c, "Pins");
    let id = session["id"].as_str().unwrap();
    for (event_id, at, action) in [("e2", 9000, "unpin"), ("e1", 3000, "pin")] {
        let event = json!({"id": event_id, "pin_id": "p1", "session_id": id, "product_id": "honey-jar",
                           "action": action, "stream_time_ms": at, "wall_time": "2025-05-01T08:30:00Z"});
        let reply = c
            .post_keyed("/v1/pin-events", event_id, &event.to_string())
            .unwrap();
        assert_eq!(reply.status, 201, "{reply:?}");
    }
    let mut unknown = json!({"id": "e3", "pin_id": "p2", "session_id": "nope", "product_id": "honey-jar",
                             "action": "pin", "stream_time_ms": 1, "wall_time": "2025-05-01T08:30:00Z"});
    let reply = c
        .post_keyed("/v1/pin-events", "e3", &unknown.to_string())
        .unwrap();
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (422, "unknown_session")
    );
    unknown["id"] = json!("e4");
    unknown["session_id"] = json!(id);
    unknown["product_id"] = json!("durian");
    let reply = c
        .post_keyed("/v1/pin-events", "e4", &unknown.to_string())
        .unwrap();
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (422, "unknown_product")
    );

    let fetched = c.get(&format!("/v1/live-sessions/{id}")).json();
    let order: Vec<&str> = fetched["pins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["e1", "e2"]);

    let ended = c
        .call("POST", &format!("/v1/live-sessions/{id}/end"), &[], b"")
        .json();
    assert_eq!(ended["state"], "ended");
    let ended_at = ended["ended_at"].as_str().unwrap().to_owned();
    std::thread::sleep(Duration::from_millis(20));
    let again = c
        .call("POST", &format!("/v1/live-sessions/{id}/end"), &[], b"")
        .json();
    assert_eq!(
        again["ended_at"],
        ended_at.as_str(),
        "the first end time stays"
    );
    assert_eq!(
        c.call("POST", "/v1/live-sessions/nope/end", &[], b"")
            .status,
        404
    );

    let mut offline = sale("late-sale", 2);
    offline["session_id"] = json!(id);
    assert_eq!(
        c.post_sale(&offline).status,
        201,
        "sales sync after the session ended"
    );
    assert_eq!(c.post_sale(&sale("no-session", 1)).status, 201);
    let of_session = c.get(&format!("/v1/sales?session_id={id}")).json();
    assert_eq!(of_session.as_array().unwrap().len(), 1);
    assert_eq!(of_session[0]["id"], "late-sale");
}

#[test]
fn without_the_ingest_live_sessions_are_503() {
    let sb = sandbox();
    assert_eq!(sb.ingest_url(), None);
    assert_eq!(sb.ingest_pid(), None);
    let c = Client::new(&sb);
    let reply = c.json("POST", "/v1/live-sessions", &json!({"title": "t"}));
    assert_eq!(reply.status, 503);
    assert_eq!(reply.code(), "ingest_unavailable");
    assert!(
        reply.message().contains("--no-ingest"),
        "{}",
        reply.message()
    );
}
