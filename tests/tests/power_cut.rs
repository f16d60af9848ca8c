//! Power cuts: a child process sells and syncs its outbox on a store kept on a filesystem that
//! can cut the power (`fieldcast_tests::powerfs`). At random moments the power goes: every
//! request fails, the child is SIGKILLed, everything that was not fsynced is lost and the
//! filesystem is mounted afresh. After each cut the store must hold every sale the child
//! acknowledged, exactly once, in a sound file whose stock adds up, and its outbox must still
//! reach the platform (a real sandbox) exactly once.
//!
//! `FIELDCAST_POWER_CUTS` sets the number of cuts (default 100). The seed decides how long the
//! child runs before each cut; each run prints it, and `FIELDCAST_POWER_CUT_SEED` runs the same
//! times again (where exactly they fall in the child's work still varies with the scheduling).

mod sync_support;

use std::collections::HashSet;
use std::fs::File;
use std::io::{Read, Write};
use std::ops::RangeInclusive;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use fieldcast_core::{Sale, Store, SyncEngine};
use fieldcast_tests::powerfs::PowerFs;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sync_support::{PRODUCTS, Platform, check_reopened_store, local_store};

const DEFAULT_CUTS: usize = 100;
const STOCK: i64 = 1_000_000;
/// How long the child runs before the power goes, start-up included (so some cuts fall while
/// it opens the store or starts its relay).
const RUN_MS: RangeInclusive<u64> = 10..=250;
/// Longest wait for the outbox to drain after a cut.
const SYNC_TIMEOUT: Duration = Duration::from_secs(30);

#[test]
fn a_power_cut_keeps_synced_writes_and_loses_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let mut disk = PowerFs::mount(dir.path()).expect("the power-cut filesystem mounts");
    let kept = disk.path().join("kept");
    let mut file = File::create(&kept).unwrap();
    file.write_all(b"synced").unwrap();
    file.sync_all().unwrap();
    file.write_all(b", then not").unwrap();
    std::fs::write(disk.path().join("created-later"), b"never synced").unwrap();
    assert_eq!(std::fs::read(&kept).unwrap(), b"synced, then not");

    disk.cut_power();
    let refused = file.write_all(b"!").unwrap_err();
    assert_eq!(refused.raw_os_error(), Some(libc::EIO), "{refused}");
    let refused = file.sync_all().unwrap_err();
    assert_eq!(refused.raw_os_error(), Some(libc::EIO), "{refused}");
    drop(file);
    disk.restart().expect("the filesystem mounts again");

    assert_eq!(std::fs::read(&kept).unwrap(), b"synced");
    let names: Vec<_> = std::fs::read_dir(disk.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(
        names,
        ["kept"],
        "the file created after the last sync is gone"
    );

    drop(disk);
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let path = dir.path().to_str().unwrap();
    assert!(!mounts.contains(path), "still mounted: {mounts}");
}

#[test]
fn acknowledged_sales_survive_power_cuts_and_sync_exactly_once() {
    let cuts = env_number("FIELDCAST_POWER_CUTS").map_or(DEFAULT_CUTS, |n| n as usize);
    let seed = env_number("FIELDCAST_POWER_CUT_SEED").unwrap_or_else(rand::random);
    println!("power cut: seed {seed} (FIELDCAST_POWER_CUT_SEED={seed} repeats these cut times)");
    let mut rng = StdRng::seed_from_u64(seed);
    let platform = Platform::start(STOCK);
    let dir = tempfile::tempdir().unwrap();
    let mut disk = PowerFs::mount(dir.path()).expect("the power-cut filesystem mounts");
    let db = disk.path().join("fieldcast.db");
    drop(local_store(disk.path(), STOCK));
    let products: Vec<&str> = PRODUCTS.iter().map(|(id, _)| *id).collect();
    let mut acknowledged = Acknowledged::default();
    let mut taken = PlatformSales::open(&platform);
    let mut interrupted = 0;
    let mut stored = 0;
    let started = Instant::now();

    for cut in 1..=cuts {
        let mut seller = Seller::start(&db, &products, &platform);
        thread::sleep(Duration::from_millis(rng.random_range(RUN_MS)));
        seller.assert_running(cut);
        disk.cut_power();
        acknowledged.extend(seller.kill(cut), cut);
        disk.restart()
            .unwrap_or_else(|e| panic!("cut {cut}: the filesystem does not come back: {e}"));

        let store =
            Store::open(&db).unwrap_or_else(|e| panic!("cut {cut}: the store does not open: {e}"));
        let sales = check_reopened_store(&store, &acknowledged.ids, STOCK, &format!("cut {cut}"));
        interrupted += sync_exactly_once(&store, &platform, &mut taken, &sales, cut);
        stored = sales.len();
    }

    println!(
        "power cut: {cuts} cuts in {:.1} s, {} sales acknowledged, {} durable but unacknowledged, \
         {interrupted} syncs interrupted (the platform had the sale, the phone had not recorded \
         it as synced)",
        started.elapsed().as_secs_f64(),
        acknowledged.ids.len(),
        stored - acknowledged.ids.len(),
    );
}

/// A number from the environment, if set; panics on one that is not a number.
fn env_number(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value} is not a number")),
    )
}

/// The sale ids the child printed, in order, each once.
#[derive(Default)]
struct Acknowledged {
    ids: Vec<String>,
    seen: HashSet<String>,
}

impl Acknowledged {
    fn extend(&mut self, ids: Vec<String>, cut: usize) {
        for id in ids {
            assert!(
                self.seen.insert(id.clone()),
                "cut {cut}: {id} printed twice"
            );
            self.ids.push(id);
        }
    }
}

/// The child selling and syncing on the store: `sale_loop --sync`, its output read as it comes.
struct Seller {
    child: Child,
    stdout: Option<JoinHandle<String>>,
    stderr: Option<JoinHandle<String>>,
}

impl Seller {
    fn start(db: &Path, products: &[&str], platform: &Platform) -> Seller {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sale_loop"))
            .arg("--sync")
            .arg(platform.url())
            .arg(platform.sandbox.token())
            .arg(db)
            .args(products)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("sale_loop starts");
        let stdout = child.stdout.take().map(read_all);
        let stderr = child.stderr.take().map(read_all);
        Seller {
            child,
            stdout,
            stderr,
        }
    }

    /// Fails the test if the child ended while the power was still on.
    fn assert_running(&mut self, cut: usize) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!(
                "cut {cut}: the child ended before the power went ({status}): {}",
                joined(&mut self.stderr)
            );
        }
    }

    /// SIGKILLs the child (after the cut) and returns the ids it acknowledged. It may have ended
    /// just before, failing on the I/O errors of the cut. Only complete lines count: a line cut
    /// by the kill was not fully printed.
    fn kill(mut self, cut: usize) -> Vec<String> {
        self.child.kill().unwrap();
        let status = self.child.wait().unwrap();
        let stderr = joined(&mut self.stderr);
        assert!(
            status.signal() == Some(libc::SIGKILL) || status.code() == Some(1),
            "cut {cut}: the child ended with {status}: {stderr}"
        );
        let stdout = joined(&mut self.stdout);
        let complete = stdout.rfind('\n').map_or("", |end| &stdout[..end]);
        complete.lines().map(str::to_string).collect()
    }
}

impl Drop for Seller {
    fn drop(&mut self) {
        // Also on a failed assertion: no child may outlive the test (a reaped one is not signalled).
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads a pipe of the child to its end on a thread of its own, so the child never blocks on it.
fn read_all(mut output: impl Read + Send + 'static) -> JoinHandle<String> {
    thread::spawn(move || {
        let mut text = String::new();
        output.read_to_string(&mut text).unwrap();
        text
    })
}

fn joined(reader: &mut Option<JoinHandle<String>>) -> String {
    reader.take().map(|r| r.join().unwrap()).unwrap_or_default()
}

/// Syncs the outbox and checks that the platform then holds every local sale exactly once and
/// nothing else. Returns how many sales the platform had taken whose acknowledgement the cut lost
/// (they were sent again, and taken once).
fn sync_exactly_once(
    store: &Store,
    platform: &Platform,
    taken: &mut PlatformSales,
    sales: &[Sale],
    cut: usize,
) -> u64 {
    let synced_before = store.outbox_counts().unwrap().synced;
    taken.catch_up(cut);
    let taken_before = taken.ids.len() as u64;
    let engine = SyncEngine::start(store.clone(), platform.config()).unwrap();
    assert!(
        engine.wait_idle(SYNC_TIMEOUT),
        "cut {cut}: the outbox did not drain"
    );
    engine.stop();
    let counts = store.outbox_counts().unwrap();
    assert_eq!(
        (counts.synced, counts.conflicted),
        (sales.len() as u64, 0),
        "cut {cut}: every sale synced, none refused"
    );
    taken.catch_up(cut);
    if let Some(missing) = sales.iter().find(|s| !taken.ids.contains(&s.id)) {
        panic!(
            "cut {cut}: sale {} is synced but not on the platform",
            missing.id
        );
    }
    assert_eq!(
        taken.ids.len(),
        sales.len(),
        "cut {cut}: the platform holds sales the phone does not have"
    );
    taken_before.saturating_sub(synced_before)
}

/// The sales the platform recorded, read from the sandbox's database as they come (the platform
/// lists them in the order it recorded them, `seq`), so that each check reads only what is new.
struct PlatformSales {
    db: rusqlite::Connection,
    last_seq: i64,
    ids: HashSet<String>,
}

impl PlatformSales {
    fn open(platform: &Platform) -> PlatformSales {
        let path = platform.sandbox.data_dir().join("sandbox.db");
        let db = rusqlite::Connection::open_with_flags(
            &path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        PlatformSales {
            db,
            last_seq: 0,
            ids: HashSet::new(),
        }
    }

    /// Reads the sales recorded since the last call; panics on one the platform took twice.
    fn catch_up(&mut self, cut: usize) {
        let mut stmt = self
            .db
            .prepare_cached("SELECT seq, id FROM sales WHERE seq > ?1 ORDER BY seq")
            .unwrap();
        let rows = stmt
            .query_map([self.last_seq], |row| Ok((row.get(0)?, row.get(1)?)))
            .unwrap();
        for row in rows {
            let (seq, id): (i64, String) = row.unwrap();
            assert!(
                self.ids.insert(id.clone()),
                "cut {cut}: the platform took sale {id} twice"
            );
            self.last_seq = seq;
        }
    }
}
