//! The viewer's side without a browser: the page and HLS need no token and never show the stream
//! key, the HLS fragments keep the stream's SEI user data, and the event stream follows the
//! publisher (through an nginx crash), the sales and the end of the session.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use common::{Client, sale, sandbox_with_ingest};
use serde_json::{Value, json};

/// FieldCast's SEI UUID, as ffmpeg's h264_metadata filter takes it.
const FIELDCAST_UUID: &str = "f1e1dca5-7000-4a11-9e5e-0f1e1dca57ed";
const FIELDCAST_UUID_BYTES: [u8; 16] = [
    0xf1, 0xe1, 0xdc, 0xa5, 0x70, 0x00, 0x4a, 0x11, 0x9e, 0x5e, 0x0f, 0x1e, 0x1d, 0xca, 0x57, 0xed,
];
/// The user data ffmpeg puts behind the UUID on every keyframe.
const USER_DATA: &[u8] = b"pin-probe";

/// Publishes `secs` of test video with a FieldCast SEI on every keyframe, in the background.
fn publish(url: &str, secs: u32) -> Child {
    Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc=size=320x240:rate=15"])
        .args(["-t", &secs.to_string(), "-c:v", "libx264"])
        .args(["-preset", "ultrafast", "-g", "15", "-bsf:v"])
        .arg(format!(
            "h264_metadata=sei_user_data={FIELDCAST_UUID}+{}",
            String::from_utf8_lossy(USER_DATA)
        ))
        .args(["-f", "flv", url])
        .stdin(Stdio::null())
        .spawn()
        .expect("ffmpeg runs (Debian package ffmpeg)")
}

/// Opens `/watch/{id}/events` without a token; its events as (name, data) on a channel.
fn events(c: &Client, session_id: &str) -> Receiver<(String, Value)> {
    let mut stream = c
        .with_timeout(Duration::from_secs(60))
        .connect()
        .expect("connects");
    let head = c
        .with_token(None)
        .head("GET", &format!("/watch/{session_id}/events"), &[], None);
    stream.write_all(&head).expect("request sent");
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        let mut name = String::new();
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { return };
            if let Some(event) = line.strip_prefix("event: ") {
                name = event.to_owned();
            } else if let Some(data) = line.strip_prefix("data: ") {
                let data = serde_json::from_str(data).expect("event data is JSON");
                if tx.send((std::mem::take(&mut name), data)).is_err() {
                    return;
                }
            }
        }
    });
    rx
}

/// The next event named `name` within 15 s, skipping others.
fn next(rx: &Receiver<(String, Value)>, name: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((event, data)) if event == name => return data,
            Ok(_) => {}
            Err(e) => panic!("no {name} event: {e}"),
        }
    }
}

#[test]
fn hls_keeps_the_sei_and_the_events_follow_publisher_sales_and_end() {
    let sb = sandbox_with_ingest();
    let c = Client::new(&sb);
    let viewer = c.with_token(None);
    let reply = c.json("POST", "/v1/live-sessions", &json!({"title": "Honey"}));
    assert_eq!(reply.status, 201, "{reply:?}");
    let session = reply.json();
    let (id, key, url) = (
        session["id"].as_str().unwrap(),
        session["stream_key"].as_str().unwrap(),
        session["publish_url"].as_str().unwrap(),
    );

    let page = viewer.get(&format!("/watch/{id}"));
    assert_eq!(page.status, 200);
    assert!(String::from_utf8_lossy(&page.body).contains("/watch/assets/viewer.js"));
    assert_eq!(viewer.get("/watch/no-such-session").status, 404);
    assert_eq!(
        viewer.get(&format!("/watch/{id}/../sandbox.db")).status,
        404
    );
    assert_eq!(viewer.get("/watch/assets/viewer.js").status, 200);

    let rx = events(&c, id);
    let first = next(&rx, "session");
    assert_eq!(first["state"], "waiting", "{first}");
    assert_eq!(first["title"], "Honey");
    assert!(next(&rx, "products").as_array().unwrap().len() >= 3);

    let mut ffmpeg = publish(url, 30);
    assert_eq!(next(&rx, "state")["state"], "live");

    // The HLS, under the session id: the playlist never names the key, the fragments keep the SEI.
    let deadline = Instant::now() + Duration::from_secs(10);
    let fragments = loop {
        let playlist = viewer.get(&format!("/watch/{id}/index.m3u8"));
        let text = String::from_utf8_lossy(&playlist.body).into_owned();
        let names: Vec<String> = text
            .lines()
            .filter(|l| l.ends_with(".ts"))
            .map(str::to_owned)
            .collect();
        if playlist.status == 200 && names.len() >= 2 {
            assert!(!text.contains(key), "the playlist shows the stream key");
            break names;
        }
        assert!(Instant::now() < deadline, "no playlist: {playlist:?}");
        std::thread::sleep(Duration::from_millis(200));
    };
    for name in &fragments[..2] {
        let fragment = viewer.get(&format!("/watch/{id}/{name}"));
        assert_eq!(fragment.status, 200, "{name}");
        assert_eq!(fragment.header("content-type"), Some("video/mp2t"));
        let body = &fragment.body;
        let at = body
            .windows(16)
            .position(|w| w == FIELDCAST_UUID_BYTES)
            .unwrap_or_else(|| panic!("{name} has no FieldCast SEI"));
        assert!(
            body[at + 16..].starts_with(USER_DATA),
            "{name}: the user data after the UUID changed"
        );
    }

    // A sale in this session: the sale and the product's new stock.
    let mut sold = sale("0196a1c2-0000-7000-8000-00000000aa01", 2);
    sold["session_id"] = json!(id);
    assert_eq!(c.post_sale(&sold).status, 201);
    assert_eq!(next(&rx, "sale")["id"], sold["id"]);
    let product = next(&rx, "product");
    assert_eq!(
        (&product["id"], &product["stock"]),
        (&json!("orange-box"), &json!(38))
    );

    // nginx dies: its publishers are gone until one publishes to the restarted nginx.
    let before = sb.ingest_pid().expect("nginx runs");
    // SAFETY: kill(2) on the pid of the sandbox's own nginx child.
    assert_eq!(
        unsafe { libc::kill(before as libc::pid_t, libc::SIGKILL) },
        0
    );
    assert_eq!(next(&rx, "state")["state"], "reconnecting");
    let _ = ffmpeg.wait();
    let deadline = Instant::now() + Duration::from_secs(10);
    while sb.ingest_pid().is_none_or(|p| p == before) {
        assert!(Instant::now() < deadline, "nginx was not restarted");
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut again = publish(url, 3);
    assert_eq!(next(&rx, "state")["state"], "live");
    assert!(again.wait().unwrap().success());
    assert_eq!(next(&rx, "state")["state"], "reconnecting");

    let ended = c.call("POST", &format!("/v1/live-sessions/{id}/end"), &[], b"");
    assert_eq!(ended.status, 200, "{ended:?}");
    assert_eq!(next(&rx, "state")["state"], "ended");
}
