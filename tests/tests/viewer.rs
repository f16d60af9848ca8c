//! The viewer's page in a real browser (Debian's headless Chromium over WebDriver): it plays the
//! live session's HLS, shows each pinned product's card within 200 ms of the playback time of the
//! pin's frame and takes it away at the unpin, lists the sales as they are taken, and its badge
//! follows the publisher through an outage to the end of the session.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use fieldcast_core::*;
use fieldcast_sandbox::{Sandbox, SandboxOptions};
use fieldcast_tests::browser::Browser;
use fieldcast_tests::relay::Relay;
use fieldcast_tests::*;
use serde_json::{Value, json};

/// How far the card may be from the playback time of its pin's frame.
const CARD_TOLERANCE_SECS: f64 = 0.2;
/// A phone's screen, in CSS pixels.
const PHONE: (u32, u32) = (412, 860);
/// With `FIELDCAST_VIEWER_SCREENSHOT=PATH`, the page with a card showing is saved there.
const SCREENSHOT_ENV: &str = "FIELDCAST_VIEWER_SCREENSHOT";

fn badge(browser: &Browser, state: &str, timeout: Duration) -> bool {
    let script = format!("return document.getElementById('badge').dataset.state === '{state}'");
    browser.wait_for(&script, timeout).is_some()
}

/// (currentTime, decoded frames) of the page's video.
fn playback(browser: &Browser) -> (f64, u64) {
    let v = browser.run(
        "const v = document.getElementById('video');
         return [v.currentTime, v.getVideoPlaybackQuality().totalVideoFrames];",
    );
    (v[0].as_f64().unwrap(), v[1].as_u64().unwrap())
}

/// Waits up to `timeout` for the video to play steadily: 1.5 s of playback and 30 decoded frames
/// within 2 s. Returns how long it took.
fn wait_playing(browser: &Browser, what: &str, timeout: Duration) -> Duration {
    let start = Instant::now();
    let mut last = playback(browser);
    loop {
        std::thread::sleep(Duration::from_secs(2));
        let now = playback(browser);
        if now.0 - last.0 >= 1.5 && now.1 >= last.1 + 30 {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < timeout,
            "{what}: the video does not play: {:.2} s -> {:.2} s, {} -> {} frames decoded in 2 s; page log: {}",
            last.0,
            now.0,
            last.1,
            now.1,
            browser.run("return window.__fieldcast")
        );
        last = now;
    }
}

fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    match n % 2 {
        1 => sorted[n / 2],
        _ => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

#[test]
fn the_viewer_page_plays_shows_cards_in_step_lists_sales_and_follows_the_publisher() {
    // Started first, so that a missing browser fails at once.
    let browser = Browser::start(PHONE.0, PHONE.1);

    // The platform, a live session, and a relay in front of its ingest to cut the publisher off.
    let sandbox = Sandbox::start(SandboxOptions::default()).unwrap();
    let http = reqwest::blocking::Client::new();
    let live: Value = http
        .post(format!("{}/v1/live-sessions", sandbox.base_url()))
        .bearer_auth(sandbox.token())
        .json(&json!({"title": "Oranges from the hill"}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let live_id = live["id"].as_str().unwrap();
    let key = live["stream_key"].as_str().unwrap();
    let ingest: SocketAddr = live["ingest_url"]
        .as_str()
        .unwrap()
        .trim_start_matches("rtmp://")
        .trim_end_matches("/live")
        .parse()
        .unwrap();
    let relay = Relay::start(ingest);
    let publish_url = format!("rtmp://127.0.0.1:{}/live/{key}", relay.port());

    // The phone: the platform's catalog, a store, the relay to the platform.
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("fieldcast.db")).unwrap();
    let engine = SyncEngine::start(
        store.clone(),
        SyncConfig::new(sandbox.base_url(), sandbox.token()),
    )
    .unwrap();
    assert!(engine.refresh_catalog().unwrap() >= 2);

    // Keyframes every second, so nginx cuts 1 s fragments.
    let config = SessionConfig::builder(&publish_url)
        .profile(StreamProfile::P360)
        .keyframe_interval_secs(1)
        .build()
        .unwrap();
    let session = LiveSession::new(config).unwrap();
    session.link_commerce(Pins::new(store.clone()), live_id);
    let mut events = session.subscribe();
    session.start().unwrap();
    assert!(wait_state(
        &mut events,
        SessionState::Live,
        Duration::from_secs(10)
    ));

    browser.open(&sandbox.watch_url(live_id));
    assert!(
        badge(&browser, "live", Duration::from_secs(5)),
        "the badge does not say live"
    );
    let started = browser.wait_for(
        "return window.__fieldcast.playing && document.getElementById('video').currentTime > 0.5",
        Duration::from_secs(20),
    );
    assert!(
        started.is_some(),
        "playback did not start: {}",
        browser.run("return window.__fieldcast")
    );
    wait_playing(&browser, "after the start", Duration::from_secs(2));
    let size = browser
        .run("const v = document.getElementById('video'); return [v.videoWidth, v.videoHeight];");
    assert_eq!(size, json!([640, 360]), "the decoded picture's size");

    // The farmer: two products pinned and unpinned, three sales while the second is pinned.
    let oranges = session.pin_product("orange-box").unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    let oranges_end = session.unpin_product(&oranges.id).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let honey = session.pin_product("honey-jar").unwrap();
    let sales = Sales::new(store.clone());
    let mut sold = Vec::new();
    for (product, quantity) in [("honey-jar", 1), ("orange-box", 2), ("honey-jar", 3)] {
        let sale = sales
            .record_sale(NewSale {
                session_id: Some(live_id.to_owned()),
                ..NewSale::new(product, quantity)
            })
            .unwrap();
        sold.push(sale.id);
        std::thread::sleep(Duration::from_millis(400));
    }
    std::thread::sleep(Duration::from_millis(1500));
    let honey_end = session.unpin_product(&honey.id).unwrap();

    // The honey card on the phone's screen, with the sales under the video.
    let honey_shown = browser.wait_for(
        "const c = document.getElementById('card');
         return !c.hidden && c.dataset.product === 'honey-jar'
             && document.querySelectorAll('#sales li').length === 3",
        Duration::from_secs(20),
    );
    assert!(
        honey_shown.is_some(),
        "no honey card with three sales: {}",
        browser.run("return window.__fieldcast")
    );
    let card_text = browser.run("return document.getElementById('card').innerText");
    let card_text = card_text.as_str().unwrap();
    assert!(
        card_text.contains("Wildflower honey") && card_text.contains("48.00"),
        "the card shows {card_text:?}"
    );
    if let Ok(path) = std::env::var(SCREENSHOT_ENV) {
        std::fs::write(&path, browser.screenshot()).unwrap();
        eprintln!("screenshot saved to {path}");
    }

    // Each card: shown at its pin's frame, gone at its unpin's frame.
    let done = browser.wait_for(
        "const cards = window.__fieldcast.cards;
         return cards.length >= 2 && cards.every(c => c.hiddenAt !== undefined) && cards",
        Duration::from_secs(20),
    );
    let cards = done.unwrap_or_else(|| {
        panic!(
            "the cards did not come and go: {}",
            browser.run("return window.__fieldcast")
        )
    });
    let cards = cards.as_array().unwrap();
    assert_eq!(cards.len(), 2, "{cards:?}");
    let expected = [
        (&oranges, "orange-box", &oranges_end),
        (&honey, "honey-jar", &honey_end),
    ];
    let mut offsets = Vec::new();
    for (card, (pin, product, ended)) in cards.iter().zip(expected) {
        assert_eq!(card["pin"], pin.id.as_str(), "{card}");
        assert_eq!(card["product"], product, "{card}");
        assert_eq!(card["t"].as_u64(), Some(pin.stream_time_ms), "{card}");
        assert_eq!(
            card["unpinT"].as_u64(),
            ended.ended_stream_time_ms,
            "{card}"
        );
        let f = |name: &str| card[name].as_f64().unwrap();
        let shown = f("shownAt") - f("frameTime");
        let hidden = f("hiddenAt") - f("unpinFrameTime");
        eprintln!(
            "{product}: pin frame at {:.3} s, shown at {:.3} s ({:+.0} ms); unpin frame at {:.3} s, hidden at {:.3} s ({:+.0} ms)",
            f("frameTime"),
            f("shownAt"),
            shown * 1000.0,
            f("unpinFrameTime"),
            f("hiddenAt"),
            hidden * 1000.0
        );
        for offset in [shown, hidden] {
            assert!(
                offset.abs() <= CARD_TOLERANCE_SECS,
                "{product}: {:+.0} ms from its frame: {card}",
                offset * 1000.0
            );
        }
        // The page timed the card by the frame that carries the pin: the frames' playback times
        // are as far apart as the pins' stream times.
        let stream_secs =
            (ended.ended_stream_time_ms.unwrap() - pin.stream_time_ms) as f64 / 1000.0;
        let playback_secs = f("unpinFrameTime") - f("frameTime");
        assert!(
            (playback_secs - stream_secs).abs() < 0.05,
            "{product}: pinned for {stream_secs:.3} s of stream, {playback_secs:.3} s of playback"
        );
        offsets.extend([shown, hidden]);
    }
    offsets.sort_by(f64::total_cmp);
    eprintln!(
        "card offsets from their frames over {} pin and unpin events: min {:+.0} ms, median {:+.0} ms, max {:+.0} ms",
        offsets.len(),
        offsets[0] * 1000.0,
        median(&offsets) * 1000.0,
        offsets[offsets.len() - 1] * 1000.0
    );

    // The three sales, as the platform pushed them.
    let listed = browser.run("return window.__fieldcast.sales");
    assert_eq!(listed, json!(sold), "the page lists the sales taken");

    // An outage of the publisher: the badge says so, and live again when it is back.
    relay.cut();
    assert!(
        badge(&browser, "reconnecting", Duration::from_secs(10)),
        "the badge does not follow the outage: {}",
        browser.run("return window.__fieldcast.states")
    );
    assert!(wait_state(
        &mut events,
        SessionState::Reconnecting,
        Duration::from_secs(10)
    ));
    std::thread::sleep(Duration::from_secs(2));
    relay.restore();
    session.set_network_available(true);
    assert!(
        badge(&browser, "live", Duration::from_secs(15)),
        "the badge does not come back to live: {}",
        browser.run("return window.__fieldcast.states")
    );
    let resumed = wait_playing(&browser, "after the outage", Duration::from_secs(15));
    eprintln!("playing steadily again {resumed:?} after the badge said live");

    // The end.
    session.stop();
    session.wait(Some(Duration::from_secs(15))).unwrap();
    http.post(format!(
        "{}/v1/live-sessions/{live_id}/end",
        sandbox.base_url()
    ))
    .bearer_auth(sandbox.token())
    .send()
    .unwrap()
    .error_for_status()
    .unwrap();
    assert!(
        badge(&browser, "ended", Duration::from_secs(5)),
        "the badge does not say ended: {}",
        browser.run("return window.__fieldcast.states")
    );
    let errors = browser.run("return window.__fieldcast.errors");
    eprintln!(
        "page states: {}",
        browser.run("return window.__fieldcast.states.map(s => s.state)")
    );
    eprintln!("page errors: {errors}");
    engine.stop();
}
