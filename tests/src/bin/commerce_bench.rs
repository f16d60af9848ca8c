//! Commerce benchmark: durable sales per second on this disk (against a bare SQLite insert with
//! the same durability as the peer), and sales synced per second to the local sandbox after
//! 10,000 were taken offline. Prints a table; asserts nothing.
//!
//! `cargo run --release -p fieldcast-tests --bin commerce_bench -- [--sales N] [--offline N]`

use std::time::{Duration, Instant};

use fieldcast_core::{NewSale, Sales, Store, SyncConfig, SyncEngine};
use fieldcast_sandbox::{Sandbox, SandboxOptions};

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The peer: one bare INSERT per transaction, WAL + synchronous=FULL, no stock or outbox.
fn bare_sqlite_inserts(dir: &std::path::Path, n: usize) -> f64 {
    let conn = rusqlite::Connection::open(dir.join("bare.db")).expect("open");
    conn.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;
         CREATE TABLE sales (id TEXT PRIMARY KEY, product TEXT, quantity INTEGER, price INTEGER, taken_at TEXT);",
    )
    .expect("schema");
    let started = Instant::now();
    for i in 0..n {
        conn.execute(
            "INSERT INTO sales VALUES (?1, 'orange-box', 1, 2500, '2026-01-01T00:00:00Z')",
            [format!("sale-{i}")],
        )
        .expect("insert");
    }
    n as f64 / started.elapsed().as_secs_f64()
}

fn durable_sales(dir: &std::path::Path, n: usize) -> f64 {
    let store = Store::open(dir.join("durable.db")).expect("store");
    fieldcast_tests::seed_catalog(&store, n as i64 * 2);
    let sales = Sales::new(store);
    let products = ["orange-box", "honey-jar", "egg-tray"];
    let started = Instant::now();
    for i in 0..n {
        sales
            .record_sale(NewSale::new(products[i % 3], 1))
            .expect("sale");
    }
    n as f64 / started.elapsed().as_secs_f64()
}

fn synced_after_offline(dir: &std::path::Path, n: usize) -> (f64, usize) {
    let sandbox = Sandbox::start(SandboxOptions {
        ingest: false,
        ..Default::default()
    })
    .expect("sandbox");
    let store = Store::open(dir.join("offline.db")).expect("store");
    let engine = SyncEngine::start(
        store.clone(),
        SyncConfig::new(sandbox.base_url(), sandbox.token()),
    )
    .expect("engine");
    engine.set_network_available(false);
    engine.refresh_catalog().expect("catalog from the sandbox");
    let sales = Sales::new(store.clone());
    let products = ["orange-box", "honey-jar", "egg-tray"];
    for i in 0..n {
        sales
            .record_sale(NewSale {
                allow_oversell: true,
                ..NewSale::new(products[i % 3], 1)
            })
            .expect("sale");
    }
    let started = Instant::now();
    engine.set_network_available(true);
    let drained = engine.wait_idle(Duration::from_secs(600));
    let secs = started.elapsed().as_secs_f64();
    let synced = store.outbox_counts().expect("counts").synced as usize;
    engine.stop();
    sandbox.stop();
    assert!(drained, "the outbox did not drain in 10 minutes");
    (synced as f64 / secs, synced)
}

fn main() {
    let n = arg("--sales", 2000);
    let offline = arg("--offline", 10_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let bare = bare_sqlite_inserts(dir.path(), n);
    let ours = durable_sales(dir.path(), n);
    let (synced_rate, synced) = synced_after_offline(dir.path(), offline);
    println!(
        "commerce bench ({} sales; {} taken offline, then synced)",
        n, offline
    );
    println!(
        "  durable sales/s (record_sale: sale + stock + outbox, one fsync'd transaction): {ours:.0}"
    );
    println!(
        "  bare SQLite inserts/s (same WAL + synchronous=FULL, one row per transaction):   {bare:.0}"
    );
    println!("  ratio record_sale / bare insert: {:.2}x", ours / bare);
    println!(
        "  synced sales/s to the local sandbox after {offline} offline: {synced_rate:.0} ({synced} synced)"
    );
}
