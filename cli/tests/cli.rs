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
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_fieldcast"))
            .args(args)
            .env("FIELDCAST_STORE", &db)
            .env_remove("FIELDCAST_PLATFORM")
            .output()
            .unwrap()
    };
    let added = run(&[
        "products",
        "add",
        "orange-box",
        "--title",
        "Oranges",
        "--price-minor",
        "2500",
        "--stock",
        "3",
    ]);
    assert!(added.status.success(), "{}", stderr(&added));
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
