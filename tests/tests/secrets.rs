//! Stream keys and platform tokens never leak. Sessions and syncs that fail in several ways
//! (nothing listening, a TLS certificate from an unknown CA, a rejected stream key, an outage, a
//! token the platform refuses) run through the `fieldcast` command with every log on
//! (`RUST_LOG=trace`, `GST_DEBUG=3`); neither secret is in anything it prints, and the same
//! failures in-process carry neither in their errors, events, logs or `Debug`. Each case also
//! checks that it failed the way it was meant to and that the redacted URL is what is shown.

mod sync_support;

use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, MutexGuard, Once};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use fieldcast_core::uplink::target::{IngestTarget, redact_url};
use fieldcast_core::{
    Catalog, Error, IngestCause, LiveSession, NewSale, PauseReason, Product, Sales, SessionConfig,
    SessionEvent, SessionState, Store, StreamProfile, SyncConfig, SyncEngine, SyncError, SyncEvent,
};
use fieldcast_sandbox::ingest::free_port;
use fieldcast_sandbox::{Sandbox, SandboxOptions};
use fieldcast_tests::relay::Relay;
use fieldcast_tests::tls_front::{TestCa, TlsFront, session_config};
use fieldcast_tests::*;
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::TryRecvError;

/// The stream key every session publishes with.
const KEY: &str = "sk_live_7f3a9c41d2e8b605";
/// The SRT passphrase (10 to 79 characters) and stream id, secrets as well.
const PASSPHRASE: &str = "pp_live_5e8d2c7a9b1f";
/// The platform token the syncs send (the platform refuses it).
const TOKEN: &str = "pt_live_91c4e7b2a05d3f68";
/// The token the platform accepts.
const PLATFORM_TOKEN: &str = "pt_live_c3d9a7e1f04b6d25";
/// What must appear nowhere: each secret, and pieces of it, so that a secret cut short or
/// stripped of its prefix is caught too.
const SECRETS: [&str; 12] = [
    KEY,
    "7f3a9c41",
    "d2e8b605",
    PASSPHRASE,
    "5e8d2c7a",
    "7a9b1f",
    TOKEN,
    "91c4e7b2",
    "a05d3f68",
    PLATFORM_TOKEN,
    "c3d9a7e1",
    "f04b6d25",
];

/// Longest a failing `fieldcast live` may run.
const FAIL_LIMIT: Duration = Duration::from_secs(60);

/// Live sessions one at a time: each encodes, and two cores are shared with the ingest.
static SESSIONS: Mutex<()> = Mutex::new(());

fn one_session_at_a_time() -> MutexGuard<'static, ()> {
    SESSIONS.lock().unwrap_or_else(|p| p.into_inner())
}

/// Panics, with where and around what, if `text` holds a secret (shown as `<secret>`, so that
/// the test's own output does not print it either).
fn assert_no_secret(what: &str, text: &str) {
    for secret in SECRETS {
        if let Some(at) = text.find(secret) {
            let from = text.floor_char_boundary(at.saturating_sub(300));
            let to = text.ceil_char_boundary((at + 300).min(text.len()));
            panic!(
                "{what} shows a secret at byte {at} of {}:\n…{}…",
                text.len(),
                masked(&text[from..to])
            );
        }
    }
}

/// `text` with every secret replaced by `<secret>`.
fn masked(text: &str) -> String {
    SECRETS.iter().fold(text.to_string(), |text, secret| {
        text.replace(secret, "<secret>")
    })
}

/// Every log record of this process, at every level (installed once).
static LOGS: Mutex<String> = Mutex::new(String::new());

struct CaptureLogs;

impl log::Log for CaptureLogs {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }

    fn log(&self, record: &log::Record) {
        let line = format!(
            "{} {}: {}\n",
            record.level(),
            record.target(),
            record.args()
        );
        LOGS.lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_str(&line);
    }

    fn flush(&self) {}
}

static CAPTURE: CaptureLogs = CaptureLogs;

fn capture_logs() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        log::set_logger(&CAPTURE).expect("no other logger in this test");
        log::set_max_level(log::LevelFilter::Trace);
    });
}

/// Everything logged in this process so far.
fn logs() -> String {
    LOGS.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

/// A `fieldcast` command running with every log on; its stdout and stderr are gathered line by
/// line as they come.
struct Run {
    what: String,
    child: Child,
    output: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
}

/// How a [`Run`] ended.
struct Finished {
    status: ExitStatus,
    output: String,
}

impl Run {
    fn start(args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut command = Command::new(fieldcast_binary());
        command
            .args(args)
            .env("RUST_LOG", "trace")
            .env("GST_DEBUG", "3")
            .env("GST_DEBUG_NO_COLOR", "1")
            .env_remove("FIELDCAST_TOKEN")
            .env_remove("FIELDCAST_PLATFORM")
            .env_remove("FIELDCAST_STORE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (name, value) in env {
            command.env(name, value);
        }
        let what = masked(&format!("fieldcast {}", args.join(" ")));
        let mut child = command.spawn().expect("fieldcast runs");
        let output = Arc::new(Mutex::new(String::new()));
        let pipes: [Box<dyn Read + Send>; 2] = [
            Box::new(child.stdout.take().expect("piped stdout")),
            Box::new(child.stderr.take().expect("piped stderr")),
        ];
        let readers = pipes
            .into_iter()
            .map(|pipe| {
                let output = output.clone();
                std::thread::spawn(move || {
                    for line in BufReader::new(pipe).split(b'\n').map_while(Result::ok) {
                        let mut output = output.lock().unwrap_or_else(|p| p.into_inner());
                        output.push_str(&String::from_utf8_lossy(&line));
                        output.push('\n');
                    }
                })
            })
            .collect();
        Run {
            what,
            child,
            output,
            readers,
        }
    }

    fn output(&self) -> String {
        self.output
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// True once the output holds `needle`, within `timeout`.
    fn wait_for(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.output().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// Waits for the command to exit (killing it, by its PID, after `limit`), and checks that
    /// nothing it printed holds a secret.
    fn finish(mut self, limit: Duration) -> Finished {
        let deadline = Instant::now() + limit;
        let status = loop {
            match self.child.try_wait().expect("the child can be waited for") {
                Some(status) => break status,
                None if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
                None => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    panic!(
                        "{} still ran after {limit:?}:\n{}",
                        self.what,
                        tail(&self.output())
                    );
                }
            }
        };
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        let output = self.output();
        eprintln!(
            "{}: {status}, {} lines printed",
            self.what,
            output.lines().count()
        );
        assert_no_secret(&self.what, &output);
        Finished { status, output }
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The last lines of an output, secrets masked, for a failure message.
fn tail(output: &str) -> String {
    let lines: Vec<&str> = output.lines().collect();
    masked(&lines[lines.len().saturating_sub(40)..].join("\n"))
}

impl Finished {
    /// Asserts that the command failed and printed each of `expected`.
    fn failed_with(&self, what: &str, expected: &[&str]) {
        assert!(
            !self.status.success(),
            "{what}: the command succeeded:\n{}",
            tail(&self.output)
        );
        self.printed(what, expected);
    }

    /// Asserts that the command succeeded and printed each of `expected`.
    fn succeeded_with(&self, what: &str, expected: &[&str]) {
        assert!(
            self.status.success(),
            "{what}: the command failed ({}):\n{}",
            self.status,
            tail(&self.output)
        );
        self.printed(what, expected);
    }

    fn printed(&self, what: &str, expected: &[&str]) {
        for needle in expected {
            assert!(
                self.output.contains(needle),
                "{what}: `{needle}` was not printed:\n{}",
                tail(&self.output)
            );
        }
    }
}

/// `fieldcast live` to `url` for at most `secs`, with JSON events, and `extra` options.
fn live(url: &str, secs: u32, extra: &[&str]) -> Run {
    let secs = secs.to_string();
    let mut args = vec![
        "live",
        "--ingest",
        url,
        "--profile",
        "270p",
        "--json-events",
        "--duration",
        &secs,
    ];
    args.extend_from_slice(extra);
    Run::start(&args, &[])
}

/// Writes `pem` to a file in `dir` and returns its path as text.
fn pem_file(dir: &Path, name: &str, pem: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, pem).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn configurations_and_their_errors_show_no_secret() {
    capture_logs();
    let urls = [
        format!("rtmp://127.0.0.1:1935/live/{KEY}"),
        format!("rtmps://user:{PASSPHRASE}@ingest.example/app/{KEY}?auth={PASSPHRASE}"),
        format!("srt://ingest.example:9000?streamid=publish:{KEY}&passphrase={PASSPHRASE}"),
    ];
    let shown = [
        "rtmp://127.0.0.1:1935/live/***",
        "rtmps://ingest.example/app/***?***",
        "srt://ingest.example:9000?streamid=***&passphrase=***&mode=caller",
    ];
    for (url, shown) in urls.iter().zip(shown) {
        let builder = SessionConfig::builder(url).profile(StreamProfile::P270);
        let debug = format!("{builder:?}");
        assert_no_secret("the builder's Debug", &debug);
        assert!(debug.contains(&redact_url(url)), "{debug}");
        let config = builder.build().unwrap();
        assert_eq!(config.target.redacted(), shown);
        let debug = format!("{config:?} {config:#?}");
        assert_no_secret("the configuration's Debug", &debug);
        assert!(debug.contains(shown), "{debug}");
        // The code that connects still has the whole URL.
        match &config.target {
            IngestTarget::Rtmp { url: full, .. } => assert_eq!(full, url),
            IngestTarget::Srt { uri } => assert!(uri.contains(KEY) && uri.contains(PASSPHRASE)),
        }
    }

    for (url, shown) in [
        (
            format!("rtmp://ingest.example/{KEY}"),
            "rtmp://ingest.example/***",
        ),
        (
            format!("rtmp://ingest.example:70000/live/{KEY}"),
            "rtmp://ingest.example:70000/***",
        ),
        (
            format!("srt://ingest.example?passphrase={PASSPHRASE}"),
            "srt://ingest.example?passphrase=***",
        ),
        (format!("live/{KEY}"), "***"),
    ] {
        let err = SessionConfig::builder(&url).build().unwrap_err();
        let text = format!("{err} {err:?}");
        assert_no_secret("an invalid URL's error", &text);
        assert!(
            matches!(&err, Error::InvalidUrl { url, .. } if url == shown),
            "{url}: {err:?}"
        );
    }

    let mut sync = SyncConfig::new("https://api.example", TOKEN);
    sync.request_timeout = Duration::from_secs(3);
    let debug = format!("{sync:?} {sync:#?}");
    assert_no_secret("SyncConfig's Debug", &debug);
    assert!(debug.contains("https://api.example"), "{debug}");
    assert_eq!(sync.token, TOKEN, "the relay still has the token");
    assert_no_secret("the logs", &logs());
}

#[test]
fn failed_sessions_print_no_stream_key() {
    let _one = one_session_at_a_time();
    let dir = tempfile::tempdir().unwrap();

    // A URL the session cannot use, and CA files that cannot be used: refused before connecting.
    let url = format!("rtmp://ingest.example/{KEY}");
    live(&url, 5, &[]).finish(FAIL_LIMIT).failed_with(
        "an invalid URL",
        &["invalid ingest URL `rtmp://ingest.example/***`"],
    );
    let missing = dir.path().join("missing-ca.pem");
    let url = format!("rtmps://localhost:1/live/{KEY}");
    live(&url, 5, &["--ingest-ca", missing.to_str().unwrap()])
        .finish(FAIL_LIMIT)
        .failed_with(
            "a missing CA file",
            &["--ingest-ca: cannot read", "missing-ca.pem"],
        );
    let not_pem = pem_file(dir.path(), "not-a-ca.pem", "hello\n");
    live(&url, 5, &["--ingest-ca", &not_pem])
        .finish(FAIL_LIMIT)
        .failed_with(
            "a CA file without a certificate",
            &["holds no PEM certificate"],
        );

    // Nothing listening.
    let port = free_port().unwrap();
    let shown = format!("rtmp://127.0.0.1:{port}/live/***");
    live(&format!("rtmp://127.0.0.1:{port}/live/{KEY}"), 20, &[])
        .finish(FAIL_LIMIT)
        .failed_with(
            "refused",
            &[
                &format!("going live to {shown}"),
                "\"event\":\"error\"",
                &format!("cannot reach ingest {shown}"),
            ],
        );
    let shown = format!("rtmps://127.0.0.1:{port}/live/***?***");
    live(
        &format!("rtmps://127.0.0.1:{port}/live/{KEY}?auth={TOKEN}"),
        20,
        &[],
    )
    .finish(FAIL_LIMIT)
    .failed_with(
        "refused over RTMPS",
        &[&format!("cannot reach ingest {shown}")],
    );

    // TLS in front of a real ingest, with a certificate from a CA the command does not trust.
    let ingest = ingest();
    let ca = TestCa::new();
    let front = TlsFront::start(&ca, ingest.port());
    let shown = format!("rtmps://localhost:{}/live/***", front.port);
    let url = format!("rtmps://localhost:{}/live/{KEY}", front.port);
    let unrelated = pem_file(dir.path(), "unrelated.pem", &TestCa::unrelated_ca_pem());
    let run = live(&url, 20, &["--ingest-ca", &unrelated]).finish(FAIL_LIMIT);
    run.failed_with(
        "an unknown CA",
        &[
            &format!("going live to {shown}"),
            &format!("cannot reach ingest {shown}"),
        ],
    );
    let lower = run.output.to_lowercase();
    assert!(
        lower.contains("certificate") || lower.contains("issuer") || lower.contains("tls:"),
        "the failure is not about TLS:\n{}",
        tail(&run.output)
    );
    assert!(
        !ingest.recording(KEY).exists(),
        "the stream reached the ingest through an untrusted TLS front"
    );

    // A stream key the ingest refuses.
    let picky = LocalIngest::start_with_key_check("accepted_key_0")
        .unwrap_or_else(|e| panic!("local ingest: {e}"));
    let shown = format!("rtmp://127.0.0.1:{}/live/***", picky.port());
    live(&picky.url(KEY), 20, &[])
        .finish(FAIL_LIMIT)
        .failed_with(
            "a rejected key",
            &[&format!("ingest {shown} rejected the stream")],
        );
    assert_eq!(
        picky.checked_keys(),
        [KEY],
        "the ingest was asked about the key"
    );
}

#[test]
fn srt_failures_print_no_stream_id_or_passphrase() {
    let _one = one_session_at_a_time();
    let port = free_port().unwrap();
    let url = format!("srt://127.0.0.1:{port}?streamid=publish:{KEY}&passphrase={PASSPHRASE}");
    let shown = format!("srt://127.0.0.1:{port}?streamid=***&passphrase=***&mode=caller");
    let run = live(&url, 20, &[]).finish(FAIL_LIMIT);
    run.failed_with(
        "SRT to nothing listening",
        &[
            &format!("going live to {shown}"),
            &format!("ingest {shown}"),
        ],
    );
}

#[test]
fn an_outage_and_a_session_over_rtmps_print_no_stream_key() {
    let _one = one_session_at_a_time();
    let ingest = ingest();

    // Live through a relay that then cuts the publisher off for a while.
    let relay = Relay::start(SocketAddr::from((Ipv4Addr::LOCALHOST, ingest.port())));
    let shown = format!("rtmp://127.0.0.1:{}/live/***", relay.port());
    let run = live(
        &format!("rtmp://127.0.0.1:{}/live/{KEY}", relay.port()),
        16,
        &[],
    );
    assert!(
        run.wait_for("\"to\":\"live\"", Duration::from_secs(20)),
        "not live:\n{}",
        tail(&run.output())
    );
    std::thread::sleep(Duration::from_secs(2));
    relay.cut();
    assert!(
        run.wait_for("lost the connection to ingest", Duration::from_secs(20)),
        "the outage was not noticed:\n{}",
        tail(&run.output())
    );
    std::thread::sleep(Duration::from_secs(3));
    relay.restore();
    run.finish(FAIL_LIMIT).succeeded_with(
        "an outage",
        &[
            &format!("going live to {shown}"),
            &format!("lost the connection to ingest {shown}"),
            "\"to\":\"reconnecting\"",
            "\"event\":\"ended\"",
        ],
    );
    assert!(
        ingest.recording(KEY).exists(),
        "the stream reached the ingest"
    );

    // RTMPS with the test CA trusted through --ingest-ca: live, then a clean end.
    let ca = TestCa::new();
    let front = TlsFront::start(&ca, ingest.port());
    let dir = tempfile::tempdir().unwrap();
    let ca_file = pem_file(dir.path(), "ca.pem", &ca.ca_pem());
    let shown = format!("rtmps://localhost:{}/live/***", front.port);
    live(
        &format!("rtmps://localhost:{}/live/{KEY}", front.port),
        4,
        &["--ingest-ca", &ca_file],
    )
    .finish(FAIL_LIMIT)
    .succeeded_with(
        "RTMPS with a trusted CA",
        &[
            &format!("going live to {shown}"),
            "\"to\":\"live\"",
            "\"event\":\"ended\"",
        ],
    );
}

/// Starts `config`, waits up to `limit` for it to fail, and returns its error after checking
/// that neither it nor any event holds a secret.
fn fails_in_process(config: SessionConfig, limit: Duration) -> Error {
    let session = LiveSession::new(config).unwrap();
    let mut events = session.subscribe();
    session.start().unwrap();
    let result = session.wait(Some(limit));
    assert_eq!(
        session.state(),
        SessionState::Failed,
        "no failure within {limit:?}: {result:?}"
    );
    let err = result.unwrap_err();
    assert_no_secret("the session's error", &format!("{err} {err:?}"));
    assert_no_secret("the session's events", &session_events(&mut events));
    assert_no_secret("the session's status", &format!("{:?}", session.stats()));
    err
}

/// Every event received so far, as `Debug` and, for errors, as `Display`.
fn session_events(rx: &mut Receiver<SessionEvent>) -> String {
    let mut text = String::new();
    loop {
        match rx.try_recv() {
            Ok(SessionEvent::Error(e)) => text.push_str(&format!("{e} {e:?}\n")),
            Ok(event) => text.push_str(&format!("{event:?}\n")),
            Err(TryRecvError::Lagged(_)) => {}
            Err(TryRecvError::Empty | TryRecvError::Closed) => return text,
        }
    }
}

#[test]
fn failed_sessions_carry_no_stream_key_in_process() {
    capture_logs();
    let _one = one_session_at_a_time();

    let port = free_port().unwrap();
    let err = fails_in_process(
        session_config(format!("rtmp://127.0.0.1:{port}/live/{KEY}"), None),
        Duration::from_secs(15),
    );
    assert!(
        matches!(&err, Error::IngestUnreachable { url, cause: IngestCause::Refused, .. }
            if *url == format!("rtmp://127.0.0.1:{port}/live/***")),
        "{err:?}"
    );

    let ingest = ingest();
    let ca = TestCa::new();
    let front = TlsFront::start(&ca, ingest.port());
    // Trusting only the system's roots, or also a CA that signed nothing the front presents.
    for extra_ca in [None, Some(TestCa::unrelated_ca_pem())] {
        let err = fails_in_process(
            session_config(
                format!("rtmps://localhost:{}/live/{KEY}", front.port),
                extra_ca,
            ),
            Duration::from_secs(15),
        );
        assert!(
            matches!(&err, Error::IngestUnreachable { url, cause: IngestCause::Tls(_), .. }
                if *url == format!("rtmps://localhost:{}/live/***", front.port)),
            "{err:?}"
        );
    }

    let picky = LocalIngest::start_with_key_check("accepted_key_0")
        .unwrap_or_else(|e| panic!("local ingest: {e}"));
    let err = fails_in_process(
        session_config(picky.url(KEY), None),
        Duration::from_secs(15),
    );
    assert!(
        matches!(&err, Error::IngestRejected { url, .. }
            if *url == format!("rtmp://127.0.0.1:{}/live/***", picky.port())),
        "{err:?}"
    );
    assert_eq!(picky.checked_keys(), [KEY]);

    // An outage while live: the loss is an event, and the session comes back.
    let relay = Relay::start(SocketAddr::from((Ipv4Addr::LOCALHOST, ingest.port())));
    let (session, mut events) = start_live(session_config(
        format!("rtmp://127.0.0.1:{}/live/{KEY}", relay.port()),
        None,
    ));
    std::thread::sleep(Duration::from_secs(2));
    relay.cut();
    let lost = wait_error(&mut events, Duration::from_secs(20)).expect("an error event");
    assert!(
        matches!(&lost, Error::IngestDisconnected { url, .. }
            if *url == format!("rtmp://127.0.0.1:{}/live/***", relay.port())),
        "{lost:?}"
    );
    assert_no_secret("the outage's error", &format!("{lost} {lost:?}"));
    std::thread::sleep(Duration::from_secs(2));
    relay.restore();
    session.set_network_available(true);
    assert!(
        wait_state(&mut events, SessionState::Live, Duration::from_secs(20)),
        "not live again"
    );
    session.stop();
    assert_eq!(
        session.wait(Some(Duration::from_secs(15))).unwrap(),
        SessionState::Ended
    );
    assert_no_secret("the session's events", &session_events(&mut events));
    assert_no_secret("the configuration", &format!("{:?}", session.config()));
    assert_no_secret("the logs", &logs());
}

/// A store with one product and one sale waiting for the platform.
fn store_with_a_sale(path: &Path) -> Store {
    let store = Store::open(path).unwrap();
    Catalog::new(store.clone())
        .upsert(&Product {
            id: "orange-box".into(),
            title: "Oranges".into(),
            price_minor: 1250,
            currency: "KES".into(),
            unit: "box".into(),
            stock: 10,
            image_path: None,
        })
        .unwrap();
    Sales::new(store.clone())
        .record_sale(NewSale::new("orange-box", 1))
        .unwrap();
    store
}

#[test]
fn a_refused_platform_token_is_shown_nowhere() {
    capture_logs();
    let sandbox = Sandbox::start(SandboxOptions {
        ingest: false,
        tokens: vec![PLATFORM_TOKEN.into()],
        ..SandboxOptions::default()
    })
    .expect("sandbox starts");
    let base = sandbox.base_url();
    let dir = tempfile::tempdir().unwrap();

    // Through the command: the outbox paused on 401, the catalog refused, the token given by
    // the environment and by option.
    let db = dir.path().join("cli.db");
    store_with_a_sale(&db);
    let db = db.to_str().unwrap();
    Run::start(
        &["queue", "--sync", "--wait", "5", "--platform", &base],
        &[("FIELDCAST_STORE", db), ("FIELDCAST_TOKEN", TOKEN)],
    )
    .finish(FAIL_LIMIT)
    .succeeded_with(
        "the outbox with a refused token",
        &["paused: the platform refused the token (401)", "pending 1"],
    );
    Run::start(
        &["products", "sync", "--platform", &base, "--token", TOKEN],
        &[("FIELDCAST_STORE", db)],
    )
    .finish(FAIL_LIMIT)
    .failed_with(
        "the catalog with a refused token",
        &["the platform refused the credentials (HTTP 401)"],
    );
    // The accepted token is not shown either when everything works.
    Run::start(
        &["queue", "--sync", "--wait", "10", "--platform", &base],
        &[("FIELDCAST_STORE", db), ("FIELDCAST_TOKEN", PLATFORM_TOKEN)],
    )
    .finish(FAIL_LIMIT)
    .succeeded_with("the outbox with the platform's token", &["pending 0"]);

    // In-process: the pause, the refused catalog, the queue, the configuration, the logs.
    let store = store_with_a_sale(&dir.path().join("app.db"));
    let config = SyncConfig {
        request_timeout: Duration::from_secs(3),
        ..SyncConfig::new(&base, TOKEN)
    };
    assert_no_secret("SyncConfig's Debug", &format!("{config:?}"));
    let engine = SyncEngine::start(store, config).unwrap();
    let mut events = engine.subscribe();
    let paused = sync_support::wait_event(&mut events, Duration::from_secs(10), |e| {
        matches!(e, SyncEvent::Paused { .. })
    });
    assert!(
        matches!(
            &paused,
            Some(SyncEvent::Paused {
                reason: PauseReason::Unauthorized { .. }
            })
        ),
        "{paused:?}"
    );
    let err = engine.refresh_catalog().unwrap_err();
    assert!(
        matches!(err, SyncError::Unauthorized { status: 401, .. }),
        "{err:?}"
    );
    let state = engine.queue_state().unwrap();
    let mut text = format!("{paused:?} {err} {err:?} {state:?}");
    if let Some(reason) = &state.paused_reason {
        text.push_str(&reason.to_string());
    }
    engine.set_token(PLATFORM_TOKEN);
    assert!(
        engine.wait_idle(Duration::from_secs(10)),
        "not synced with the right token"
    );
    engine.stop();
    loop {
        match events.try_recv() {
            Ok(event) => text.push_str(&format!("{event:?}\n")),
            Err(TryRecvError::Lagged(_)) => {}
            Err(TryRecvError::Empty | TryRecvError::Closed) => break,
        }
    }
    assert_no_secret("the sync's events and errors", &text);
    assert_no_secret("the logs", &logs());
}
