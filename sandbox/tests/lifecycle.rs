//! Starting and stopping: free or fixed ports, a kept data directory, tokens, clean shutdown.

mod common;

use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Client, sale};
use fieldcast_sandbox::{Sandbox, SandboxError, SandboxOptions};
use serde_json::json;

fn options(data_dir: Option<std::path::PathBuf>) -> SandboxOptions {
    SandboxOptions {
        data_dir,
        ingest: false,
        ..SandboxOptions::default()
    }
}

#[test]
fn data_survives_a_restart_in_the_same_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let sb = Sandbox::start(options(Some(dir.path().to_path_buf()))).unwrap();
    assert_eq!(sb.data_dir(), dir.path());
    let c = Client::new(&sb);
    assert_eq!(c.post_sale(&sale("kept", 4)).status, 201);
    sb.stop();

    let sb = Sandbox::start(options(Some(dir.path().to_path_buf()))).unwrap();
    let c = Client::new(&sb);
    assert_eq!(c.stock("orange-box"), 36, "not reseeded");
    let replay = c.post_sale(&sale("kept", 4));
    assert_eq!(
        replay.header("Idempotent-Replayed"),
        Some("true"),
        "keys are kept"
    );
}

#[test]
fn a_temp_data_dir_is_removed_on_stop_and_the_port_freed() {
    let sb = Sandbox::start(options(None)).unwrap();
    let dir = sb.data_dir().to_path_buf();
    let addr = sb.base_url().trim_start_matches("http://").to_owned();
    assert!(dir.join("sandbox.db").exists());
    // A request in progress when the sandbox stops does not hold it up for long.
    let c = Client::new(&sb);
    c.fault(json!({"mode": "hang", "hang_ms": 60000}));
    let hanging = std::thread::spawn(move || {
        c.post_keyed("/v1/sales", "h", &sale("h", 1).to_string())
            .is_err()
    });
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    sb.stop();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "stopped in {:?}",
        started.elapsed()
    );
    assert!(!dir.exists());
    assert!(TcpStream::connect(&addr).is_err());
    assert!(hanging.join().unwrap(), "the hanging request got no answer");
}

#[test]
fn a_fixed_port_and_custom_tokens() {
    let port = fieldcast_sandbox::ingest::free_port().unwrap();
    let sb = Sandbox::start(SandboxOptions {
        port,
        tokens: vec!["farm-write".into()],
        read_only_tokens: vec!["farm-read".into()],
        ..options(None)
    })
    .unwrap();
    assert_eq!(sb.base_url(), format!("http://127.0.0.1:{port}"));
    assert_eq!(sb.token(), "farm-write");
    let c = Client::new(&sb);
    assert_eq!(c.get("/v1/products").status, 200);
    assert_eq!(
        c.with_token(Some("sandbox-token"))
            .get("/v1/products")
            .status,
        401
    );
    assert_eq!(
        c.with_token(Some("farm-read")).get("/v1/products").status,
        200
    );
    let taken = Sandbox::start(SandboxOptions {
        port,
        ..options(None)
    });
    assert!(matches!(taken, Err(SandboxError::Bind { .. })));
    let no_token = Sandbox::start(SandboxOptions {
        tokens: vec![],
        ..options(None)
    });
    assert!(matches!(no_token, Err(SandboxError::NoToken)));
}

#[test]
fn starts_from_inside_a_tokio_runtime() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let sb = Sandbox::start(options(None)).unwrap();
        let url = sb.base_url();
        let status = tokio::task::spawn_blocking(move || {
            let c = Client::new(&sb);
            c.get("/v1/health").status
        })
        .await
        .unwrap();
        assert_eq!(status, 200, "{url}");
    });
}
