//! Village networks between the phone and the platform: a captive portal's login page, its
//! redirect, an operator's proxy asking to sign in (407), a network asking to sign in (511), a
//! portal intercepting HTTPS with a certificate for another name, and a phone whose clock is days
//! off. A sale is never refused for any of them; the app is told to sign in to the network; once
//! the platform answers again the sync resumes by itself and each sale reaches it exactly once.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fieldcast_core::{
    BackoffPolicy, NewSale, PauseReason, Sales, Store, SyncConfig, SyncEngine, SyncError, SyncEvent,
};
use fieldcast_sandbox::{Sandbox, SandboxOptions};
use reqwest::blocking::Client;
use serde_json::{Value, json};
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::TryRecvError;

const SALES: &str = "/v1/sales";
/// Enough faults that the portal stays until the test takes it away.
const FOR_GOOD: u64 = 10_000;

/// A sandbox with its TLS port, and a client for its QA endpoints.
struct Network {
    sandbox: Sandbox,
    http: Client,
}

impl Network {
    fn start() -> Network {
        let sandbox = Sandbox::start(SandboxOptions {
            ingest: false,
            tls_port: Some(0),
            ..SandboxOptions::default()
        })
        .expect("sandbox starts");
        let http = Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        Network { sandbox, http }
    }

    /// Sync over plain HTTP, with test-sized timeouts and backoff.
    fn config(&self) -> SyncConfig {
        SyncConfig {
            request_timeout: Duration::from_secs(2),
            backoff: BackoffPolicy {
                min: Duration::from_millis(50),
                max: Duration::from_millis(400),
            },
            ..SyncConfig::new(self.sandbox.base_url(), self.sandbox.token())
        }
    }

    /// Sync over the TLS port, trusting the sandbox's private CA.
    fn tls_config(&self) -> SyncConfig {
        SyncConfig {
            base_url: self.sandbox.tls_base_url().expect("a TLS port"),
            platform_ca_pem: self.sandbox.tls_ca_pem().map(str::to_string),
            ..self.config()
        }
    }

    fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.sandbox.base_url()))
            .bearer_auth(self.sandbox.token());
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().unwrap_or_else(|e| panic!("{path}: {e}"));
        let status = response.status();
        let text = response.text().unwrap();
        assert!(status.is_success(), "{path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// Makes the next `count` requests to `paths` (or TLS handshakes) misbehave as `mode`.
    fn fault(&self, mode: &str, count: u64, paths: Option<&[&str]>) {
        let mut rule = json!({ "mode": mode, "count": count });
        if let Some(paths) = paths {
            rule["paths"] = json!(paths);
        }
        self.call(reqwest::Method::POST, "/v1/_sandbox/faults", Some(rule));
    }

    /// The network lets the platform through again.
    fn clear_faults(&self) {
        self.call(reqwest::Method::DELETE, "/v1/_sandbox/faults", None);
    }

    fn stats(&self) -> Value {
        self.call(reqwest::Method::GET, "/v1/_sandbox/stats", None)
    }

    fn sales(&self) -> Vec<Value> {
        self.call(reqwest::Method::GET, SALES, None)
            .as_array()
            .expect("a list of sales")
            .clone()
    }

    /// Asserts the platform holds exactly the sales `ids`, each once.
    fn assert_holds_exactly(&self, ids: &[String]) {
        let mut on_platform: Vec<String> = self
            .sales()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_string())
            .collect();
        on_platform.sort();
        let mut expected = ids.to_vec();
        expected.sort();
        assert_eq!(on_platform, expected, "each sale exactly once");
        assert_eq!(self.stats()["sales"], ids.len());
    }
}

/// A phone's store at `dir` with the sandbox's seed catalog.
fn shop(dir: &Path) -> Store {
    let store = Store::open(dir.join("fieldcast.db")).expect("store opens");
    fieldcast_tests::seed_catalog(&store, 10);
    store
}

/// One sale of each of the first `n` seed products; their ids.
fn sell(store: &Store, n: usize) -> Vec<String> {
    let sales = Sales::new(store.clone());
    fieldcast_sandbox::SEED_CATALOG[..n]
        .iter()
        .map(|(product, ..)| sales.record_sale(NewSale::new(*product, 1)).unwrap().id)
        .collect()
}

/// Waits up to `timeout` for an event matching `pred`, keeping every event received in `seen`.
fn wait_for(
    events: &mut Receiver<SyncEvent>,
    seen: &mut Vec<SyncEvent>,
    timeout: Duration,
    pred: impl Fn(&SyncEvent) -> bool,
) -> Option<SyncEvent> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        match events.try_recv() {
            Ok(event) => {
                seen.push(event.clone());
                if pred(&event) {
                    return Some(event);
                }
            }
            Err(TryRecvError::Empty) => std::thread::sleep(Duration::from_millis(5)),
            Err(TryRecvError::Lagged(n)) => panic!("lost {n} events"),
            Err(TryRecvError::Closed) => return None,
        }
    }
    None
}

/// Adds every event received so far to `seen`.
fn drain(events: &mut Receiver<SyncEvent>, seen: &mut Vec<SyncEvent>) {
    loop {
        match events.try_recv() {
            Ok(event) => seen.push(event),
            Err(TryRecvError::Lagged(n)) => panic!("lost {n} events"),
            Err(TryRecvError::Empty | TryRecvError::Closed) => return,
        }
    }
}

fn is_portal_pause(event: &SyncEvent) -> bool {
    matches!(
        event,
        SyncEvent::Paused {
            reason: PauseReason::CaptivePortal { .. }
        }
    )
}

/// Two sales meet a portal (`fault` on `/v1/sales` until the test clears it): the sync pauses
/// with a message containing `says`, nothing is refused, the attempts go one at a time with
/// backoff; once the portal is gone the sync resumes by itself and each sale arrives once.
fn behind_a_portal(net: &Network, config: SyncConfig, says: &str) {
    let dir = tempfile::tempdir().unwrap();
    let store = shop(dir.path());
    let ids = sell(&store, 2);
    let engine = SyncEngine::start(store, config).unwrap();
    let mut events = engine.subscribe();
    let mut seen = Vec::new();
    let paused = wait_for(
        &mut events,
        &mut seen,
        Duration::from_secs(5),
        is_portal_pause,
    )
    .unwrap_or_else(|| panic!("no captive-portal pause: {seen:?}"));
    let SyncEvent::Paused { reason } = paused else {
        unreachable!("matched above")
    };
    // What the app shows.
    let shown = reason.to_string();
    assert!(
        shown.starts_with("sign in to the network") && shown.contains(says),
        "{shown}"
    );

    // The portal stays a while: attempts go on, spaced out, and nothing is refused.
    std::thread::sleep(Duration::from_millis(800));
    let state = engine.queue_state().unwrap();
    assert!(
        matches!(
            &state.paused_reason,
            Some(PauseReason::CaptivePortal { .. })
        ),
        "{:?}",
        state.paused_reason
    );
    assert_eq!((state.conflicted, state.synced), (0, 0));
    assert_eq!(state.pending + state.in_flight, 2);
    drain(&mut events, &mut seen);
    let retries = seen
        .iter()
        .filter(|e| matches!(e, SyncEvent::Retrying { .. }))
        .count();
    assert!(
        (2..=20).contains(&retries),
        "{retries} attempts behind the portal in 0.8 s: {seen:?}"
    );

    net.clear_faults();
    assert!(
        engine.wait_idle(Duration::from_secs(5)),
        "not synced after the portal left"
    );
    wait_for(&mut events, &mut seen, Duration::from_millis(100), |_| {
        false
    });
    assert!(seen.contains(&SyncEvent::Resumed), "{seen:?}");
    assert!(
        !seen.iter().any(|e| matches!(e, SyncEvent::Conflict { .. })),
        "{seen:?}"
    );
    let state = engine.queue_state().unwrap();
    assert_eq!((state.synced, state.conflicted, state.pending), (2, 0, 0));
    assert_eq!(state.paused_reason, None);
    net.assert_holds_exactly(&ids);
}

#[test]
fn a_login_page_instead_of_the_platform_pauses_and_never_refuses() {
    let net = Network::start();
    net.fault("portal_login", FOR_GOOD, Some(&[SALES]));
    behind_a_portal(&net, net.config(), "Village Wi-Fi: sign in");
}

#[test]
fn a_redirect_to_a_login_page_is_not_followed() {
    let net = Network::start();
    net.fault("portal_redirect", FOR_GOOD, Some(&[SALES]));
    behind_a_portal(&net, net.config(), "redirected to /portal/login");
    assert_eq!(
        net.stats()["requests"]["/portal/login"],
        Value::Null,
        "nobody went to the login page"
    );
}

#[test]
fn a_proxy_asking_to_sign_in_pauses_and_never_refuses() {
    let net = Network::start();
    net.fault("proxy_auth", FOR_GOOD, Some(&[SALES]));
    behind_a_portal(&net, net.config(), "407");
}

#[test]
fn network_authentication_required_pauses_and_never_refuses() {
    let net = Network::start();
    net.fault("network_auth", FOR_GOOD, Some(&[SALES]));
    behind_a_portal(&net, net.config(), "511");
}

#[test]
fn a_certificate_for_another_name_pauses_and_never_refuses() {
    let net = Network::start();
    net.fault("tls_wrong_name", FOR_GOOD, None);
    // The client trusts the sandbox's CA, so only the name is wrong.
    behind_a_portal(&net, net.tls_config(), "for another name");
    assert!(net.stats()["faults_injected"].as_u64().unwrap() >= 2);
}

#[test]
fn the_catalog_and_uploads_wait_out_a_portal() {
    let net = Network::start();
    let dir = tempfile::tempdir().unwrap();
    let store = shop(dir.path());
    let config = SyncConfig {
        backoff: BackoffPolicy {
            min: Duration::from_millis(10),
            max: Duration::from_millis(40),
        },
        ..net.config()
    };
    let engine = SyncEngine::start(store, config).unwrap();

    net.fault("portal_login", 1, Some(&["/v1/products"]));
    match engine.refresh_catalog() {
        Err(SyncError::Network(message)) => {
            assert!(message.contains("sign in to the network"), "{message}")
        }
        other => panic!("the catalog behind a portal: {other:?}"),
    }
    assert_eq!(engine.refresh_catalog().unwrap(), 3, "the portal is gone");

    // More answers from the portal than an upload's failures allowed in a row: they do not count.
    let file = dir.path().join("replay.mp4");
    std::fs::write(&file, vec![7u8; 4096]).unwrap();
    net.fault("network_auth", 12, Some(&["/v1/uploads"]));
    let uploaded = engine.upload_file(&file, "live-1").unwrap();
    assert_eq!(uploaded.size, 4096);
    assert_eq!(net.stats()["faults_injected"], 1 + 12);
    assert_eq!(engine.queue_state().unwrap().paused_reason, None);
}

/// Runs the `fieldcast` command with the phone's clock `offset` off (libfaketime), monotonic time
/// left alone as a phone's uptime would be.
fn fieldcast_at(offset: &str, args: &[&str]) -> Output {
    let output = Command::new("faketime")
        .args(["-f", offset])
        .arg(fieldcast_tests::fieldcast_binary())
        .args(args)
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
        .env_remove("FIELDCAST_STORE")
        .env_remove("FIELDCAST_PLATFORM")
        .output()
        .expect("faketime runs (Debian package faketime)");
    assert!(
        output.status.success(),
        "fieldcast {args:?}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[test]
fn a_phone_days_off_syncs_with_its_own_times_and_the_skew_the_platform_saw() {
    const DAY_MS: i64 = 24 * 3600 * 1000;
    let net = Network::start();
    let dir = tempfile::tempdir().unwrap();
    let url = net.sandbox.base_url();
    let token = net.sandbox.token().to_string();
    let now_ms = || {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
    };

    for (offset, days) in [("-3d", -3), ("+2d", 2)] {
        let store = dir.path().join(format!("phone{offset}.db"));
        let store = store.to_str().unwrap();
        let platform = ["--store", store, "--platform", &url, "--token", &token];
        fieldcast_at(offset, &[&["products", "sync"], &platform[..]].concat());
        let sold = fieldcast_at(offset, &["sell", "honey-jar", "--store", store]);
        let sold = String::from_utf8_lossy(&sold.stdout);
        let sale_id = sold
            .strip_prefix("sale ")
            .and_then(|rest| rest.split(':').next())
            .unwrap_or_else(|| panic!("no sale id in {sold:?}"));
        let synced = fieldcast_at(
            offset,
            &[&["queue", "--sync", "--wait", "10"], &platform[..]].concat(),
        );
        let synced = String::from_utf8_lossy(&synced.stdout);
        assert!(synced.contains("synced 1,"), "{synced}");

        // The phone's clock was off: its sale says so.
        let local = Sales::new(Store::open(store).unwrap()).list().unwrap();
        let taken_at = local[0].taken_at;
        let taken_ms = (taken_at.unix_timestamp_nanos() / 1_000_000) as i64;
        let off_ms = taken_ms - now_ms();
        assert!(
            (off_ms - days * DAY_MS).abs() < 60_000,
            "{offset}: the phone's sale was taken {off_ms} ms from now"
        );

        // The platform has the phone's time as it was sent, and the skew it saw.
        let on_platform = net.sales();
        let sale = on_platform
            .iter()
            .find(|s| s["id"] == sale_id)
            .unwrap_or_else(|| panic!("{sale_id} not on the platform: {on_platform:?}"));
        let phone_time = format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            taken_at.year(),
            u8::from(taken_at.month()),
            taken_at.day(),
            taken_at.hour(),
            taken_at.minute(),
            taken_at.second()
        );
        let platform_time = sale["taken_at"].as_str().unwrap();
        assert!(
            platform_time.starts_with(&phone_time),
            "{offset}: platform {platform_time}, phone {phone_time}"
        );
        let skew = sale["client_clock_skew_ms"]
            .as_i64()
            .unwrap_or_else(|| panic!("no skew: {sale}"));
        assert!(
            (skew - days * DAY_MS).abs() < 60_000,
            "{offset}: skew {skew} ms"
        );
        println!("phone at {offset}: taken_at {platform_time}, skew {skew} ms");
    }
    assert_eq!(net.stats()["sales"], 2);
}
