//! The `fieldcast` command as a user runs it: exit codes and messages.

use std::process::{Command, Output};

use fieldcast_sandbox::LocalIngest;
use fieldcast_sandbox::ingest::free_port;

fn fieldcast(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fieldcast"))
        .args(args)
        .output()
        .expect("fieldcast runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `fieldcast ARGS` on the store `db`, with no platform or CA from the environment.
fn on_store(db: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fieldcast"))
        .args(args)
        .env("FIELDCAST_STORE", db)
        .env_remove("FIELDCAST_PLATFORM")
        .env_remove("FIELDCAST_PLATFORM_CA")
        .output()
        .unwrap()
}

/// Adds orange-box at 25.00 with `stock` to the store `db`.
fn add_oranges(db: &std::path::Path, stock: &str) {
    let added = on_store(
        db,
        &[
            "products",
            "add",
            "orange-box",
            "--title",
            "Oranges",
            "--price-minor",
            "2500",
            "--stock",
            stock,
        ],
    );
    assert!(added.status.success(), "{}", stderr(&added));
}

#[test]
fn goes_live_for_a_duration_and_exits_zero() {
    let ingest = LocalIngest::start().unwrap();
    let url = ingest.url("cli");
    let out = fieldcast(&[
        "live",
        "--ingest",
        &url,
        "--profile",
        "270p",
        "--duration",
        "3",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("ended:"), "{text}");
    assert!(stderr(&out).contains("state: Live"), "{}", stderr(&out));
}

#[test]
fn an_unsupported_url_exits_non_zero_with_the_reason() {
    let out = fieldcast(&["live", "--ingest", "http://127.0.0.1/live/key"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("unsupported ingest URL scheme `http://`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn an_unknown_source_or_profile_exits_non_zero() {
    let out = fieldcast(&[
        "live",
        "--ingest",
        "rtmp://127.0.0.1/live/k",
        "--source",
        "webcam",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("unknown source"), "{}", stderr(&out));
    let out = fieldcast(&[
        "live",
        "--ingest",
        "rtmp://127.0.0.1/live/k",
        "--profile",
        "4k",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("unknown profile"), "{}", stderr(&out));
}

#[test]
fn an_unreachable_ingest_exits_non_zero() {
    let url = format!("rtmp://127.0.0.1:{}/live/k", free_port().unwrap());
    let out = fieldcast(&["live", "--ingest", &url, "--duration", "10"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("cannot reach ingest"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_missing_gstreamer_element_names_its_debian_package() {
    // A GStreamer that finds no plugins at all: the first element needed is reported.
    let empty = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_fieldcast"))
        .args([
            "live",
            "--ingest",
            "rtmp://127.0.0.1/live/k",
            "--duration",
            "1",
        ])
        .env("GST_PLUGIN_SYSTEM_PATH_1_0", empty.path())
        .env("GST_PLUGIN_PATH_1_0", empty.path())
        .env("GST_REGISTRY_1_0", empty.path().join("registry.bin"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("GStreamer element `videotestsrc` is missing"),
        "{err}"
    );
    assert!(
        err.contains("install the Debian package `gstreamer1.0-plugins-base`"),
        "{err}"
    );
}

#[test]
fn products_sell_and_queue_work_offline_then_sync() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("shop.db");
    let run = |args: &[&str]| on_store(&db, args);
    add_oranges(&db, "3");
    let sold = run(&["sell", "orange-box", "--qty", "2"]);
    assert!(sold.status.success(), "{}", stderr(&sold));
    assert!(String::from_utf8_lossy(&sold.stdout).contains("stock now 1"));
    let refused = run(&["sell", "orange-box", "--qty", "5"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("only 1 left"),
        "{}",
        stderr(&refused)
    );
    let queue = run(&["queue"]);
    assert!(
        String::from_utf8_lossy(&queue.stdout).contains("pending 1,"),
        "{}",
        String::from_utf8_lossy(&queue.stdout)
    );
    let no_platform = run(&["queue", "--sync"]);
    assert_eq!(no_platform.status.code(), Some(1));

    let sandbox = fieldcast_sandbox::Sandbox::start(fieldcast_sandbox::SandboxOptions {
        ingest: false,
        ..Default::default()
    })
    .unwrap();
    let synced = run(&[
        "queue",
        "--sync",
        "--platform",
        &sandbox.base_url(),
        "--token",
        sandbox.token(),
    ]);
    let text = String::from_utf8_lossy(&synced.stdout);
    assert!(synced.status.success(), "{}", stderr(&synced));
    assert!(
        text.contains("pending 0,") && text.contains("synced 1,"),
        "{text}"
    );
}

#[test]
fn the_store_option_is_accepted_after_the_subcommand_too() {
    let dir = tempfile::tempdir().unwrap();
    let (before, after) = (dir.path().join("before.db"), dir.path().join("after.db"));
    let add = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_fieldcast"))
            .args(args)
            .env_remove("FIELDCAST_STORE")
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    };
    let product = [
        "add",
        "egg-tray",
        "--title",
        "Eggs",
        "--price-minor",
        "3600",
    ];
    let before_arg = before.to_str().unwrap();
    let after_arg = after.to_str().unwrap();
    add(&[&["products", "--store", before_arg][..], &product[..]].concat());
    add(&[&["products"][..], &product[..], &["--store", after_arg][..]].concat());
    add(&["sell", "egg-tray", "--oversell", "--store", after_arg]);
    for db in [&before, &after] {
        assert!(db.is_file(), "{} was written", db.display());
    }
    let queue = fieldcast(&["queue", "--store", after_arg]);
    assert!(
        String::from_utf8_lossy(&queue.stdout).contains("pending 1,"),
        "{}",
        String::from_utf8_lossy(&queue.stdout)
    );
}

#[test]
fn json_events_print_each_state_change_once() {
    let ingest = LocalIngest::start().unwrap();
    let out = fieldcast(&[
        "live",
        "--ingest",
        &ingest.url("json"),
        "--profile",
        "270p",
        "--duration",
        "2",
        "--json-events",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let states: Vec<(String, String)> = stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("a JSON line"))
        .filter(|v| v["event"] == "state")
        .map(|v| (v["from"].to_string(), v["to"].to_string()))
        .collect();
    let expected = [
        ("idle", "connecting"),
        ("connecting", "live"),
        ("live", "ending"),
        ("ending", "ended"),
    ]
    .map(|(a, b)| (format!("\"{a}\""), format!("\"{b}\"")));
    assert_eq!(states, expected, "{stdout}");
    assert!(
        !stderr(&out).contains("state:"),
        "no second copy on stderr: {}",
        stderr(&out)
    );
    assert_eq!(
        stdout
            .lines()
            .last()
            .map(|l| l.contains("\"event\":\"ended\"")),
        Some(true),
        "the final figures come last: {stdout}"
    );
}

/// The children of `pid` (from /proc).
fn children(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

#[test]
fn ingest_stops_its_nginx_and_removes_its_files_on_sigterm() {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(env!("CARGO_BIN_EXE_fieldcast"))
        .args(["ingest", "--key", "term"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let recordings = lines.next().unwrap().unwrap();
    let dir = std::path::PathBuf::from(recordings.trim_start_matches("recordings: "));
    let temp = dir.parent().unwrap().to_path_buf();
    assert!(
        lines
            .next()
            .unwrap()
            .unwrap()
            .contains("publish to rtmp://")
    );
    let nginx = children(child.id());
    assert_eq!(nginx.len(), 1, "one nginx child: {nginx:?}");
    assert!(temp.is_dir(), "{}", temp.display());

    // SAFETY: kill(2) on our own child's PID.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let status = child.wait().unwrap();
    assert!(status.success(), "exits cleanly on SIGTERM: {status}");
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(err.contains("SIGTERM"), "{err}");
    assert!(
        !std::path::Path::new(&format!("/proc/{}", nginx[0])).exists(),
        "nginx {} is gone",
        nginx[0]
    );
    assert!(!temp.exists(), "{} is removed", temp.display());
}

#[test]
fn queue_syncs_to_a_platform_behind_a_private_ca() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("shop.db");
    let ca = dir.path().join("ca.pem");
    let sandbox = fieldcast_sandbox::Sandbox::start(fieldcast_sandbox::SandboxOptions {
        ingest: false,
        tls_port: Some(0),
        ..Default::default()
    })
    .unwrap();
    std::fs::write(&ca, sandbox.tls_ca_pem().unwrap()).unwrap();
    let url = sandbox.tls_base_url().unwrap();
    let run = |args: &[&str]| on_store(&db, args);
    let sync = |extra: &[&str]| {
        let args = [
            &["queue", "--sync", "--wait", "3", "--platform", &url][..],
            extra,
        ]
        .concat();
        run(&args)
    };
    add_oranges(&db, "5");
    let sold = run(&["sell", "orange-box"]);
    assert!(sold.status.success(), "{}", stderr(&sold));

    let untrusted = sync(&[]);
    assert!(
        String::from_utf8_lossy(&untrusted.stdout).contains("pending 1,"),
        "not sent to a server it cannot trust: {}{}",
        String::from_utf8_lossy(&untrusted.stdout),
        stderr(&untrusted)
    );
    let trusted = sync(&["--platform-ca", ca.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&trusted.stdout);
    assert!(trusted.status.success(), "{text}{}", stderr(&trusted));
    assert!(text.contains("synced 1,"), "{text}");

    let missing = sync(&["--platform-ca", "/nonexistent/ca.pem"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).contains("--platform-ca /nonexistent/ca.pem"),
        "{}",
        stderr(&missing)
    );
}
