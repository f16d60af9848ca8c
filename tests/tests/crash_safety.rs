//! Crash safety: a child process recording sales is SIGKILLed at random moments, again and again.
//! After each kill the store must hold every sale the child acknowledged, exactly once, with its
//! stock change and its outbox record, in a sound file. At the end everything is synced to a real
//! sandbox, which must hold exactly the store's sales.

mod sync_support;

use std::collections::HashSet;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fieldcast_core::{Sales, Store, SyncEngine};
use rand::Rng;
use sync_support::{
    PRODUCTS, Platform, assert_platform_holds_exactly, check_reopened_store, local_store,
};

const KILLS: usize = 200;
const STOCK: i64 = 1_000_000;

#[test]
fn acknowledged_sales_survive_sigkill_and_sync_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("fieldcast.db");
    drop(local_store(dir.path(), STOCK));
    let products: Vec<&str> = PRODUCTS.iter().map(|(id, _)| *id).collect();
    let mut acknowledged: Vec<String> = Vec::new();
    let mut rng = rand::rng();
    let started = Instant::now();

    for round in 0..KILLS {
        let child = Command::new(env!("CARGO_BIN_EXE_sale_loop"))
            .arg(&db)
            .args(&products)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("sale_loop starts");
        std::thread::sleep(Duration::from_millis(rng.random_range(5..=60)));
        let pid = libc::pid_t::try_from(child.id()).unwrap();
        // SAFETY: kill(2) on the PID of our own child, which has not been reaped yet.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
        let output = child.wait_with_output().unwrap();
        assert_eq!(
            output.status.signal(),
            Some(libc::SIGKILL),
            "round {round}: the child ended on its own: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        // Only complete lines were acknowledged: a line cut by the kill was not fully printed.
        let stdout = String::from_utf8(output.stdout).unwrap();
        let complete = stdout.rfind('\n').map_or("", |end| &stdout[..end]);
        acknowledged.extend(complete.lines().map(str::to_string));

        let mut seen = HashSet::new();
        if let Some(twice) = acknowledged.iter().find(|id| !seen.insert(*id)) {
            panic!("round {round}: {twice} printed twice");
        }
        check_reopened_store(
            &Store::open(&db).unwrap(),
            &acknowledged,
            STOCK,
            &format!("round {round}"),
        );
    }
    let kill_phase = started.elapsed();

    let store = Store::open(&db).unwrap();
    let sales = Sales::new(store.clone()).list().unwrap();
    let ids: Vec<String> = sales.iter().map(|s| s.id.clone()).collect();
    let platform = Platform::start(STOCK);
    let engine = SyncEngine::start(store.clone(), platform.config()).unwrap();
    let sync_started = Instant::now();
    assert!(engine.wait_idle(Duration::from_secs(60)), "not synced");
    let sync_time = sync_started.elapsed();
    assert_eq!(store.outbox_counts().unwrap().synced, ids.len() as u64);
    assert_platform_holds_exactly(&platform, &ids);
    println!(
        "crash safety: {KILLS} kills in {kill_phase:?}, {} sales acknowledged, {} in the store \
         (sold but killed before printing: {}); synced in {sync_time:?} ({:.0} sales/s)",
        acknowledged.len(),
        ids.len(),
        ids.len() - acknowledged.len(),
        ids.len() as f64 / sync_time.as_secs_f64()
    );
}
