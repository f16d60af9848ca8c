//! Store tests: upgrades from every earlier schema, a full disk, crash leftovers, concurrency.

use std::path::Path;

use rusqlite::Connection;

use super::outbox::{self, OutboxState, Transition};
use super::*;
use crate::commerce::testing::store_with_oranges;
use crate::commerce::{Catalog, CommerceError, NewSale, Pins, Sales};

/// Rows a phone could hold at schema version 1 (written with that version's SQL).
const ROWS_V1: &str = r#"
INSERT INTO products VALUES ('orange-box', 'Oranges, 5 kg box', 1250, 'KES', 'box', 6,
    '/sdcard/oranges.jpg', '2025-01-02T10:00:00Z');
INSERT INTO sales VALUES ('0190a000-0000-7000-8000-000000000001', 'orange-box', 'live-1', 3, 1250,
    'KES', '2025-01-02T10:05:00Z', 0, 'Wanjiru', 7);
INSERT INTO sales VALUES ('0190a000-0000-7000-8000-000000000002', 'orange-box', NULL, 1, 1200,
    'KES', '2025-01-02T10:06:00Z', 0, NULL, 6);
INSERT INTO outbox (record_id, kind, order_key, body, state, attempts, response, created_at, settled_at)
VALUES ('0190a000-0000-7000-8000-000000000001', 'sale', 'orange-box', '{"id":"0190a000-0000-7000-8000-000000000001"}',
    'synced', 1, '{"stock_after":7}', '2025-01-02T10:05:00Z', '2025-01-02T10:05:01Z');
INSERT INTO outbox (record_id, kind, order_key, body, state, attempts, created_at)
VALUES ('0190a000-0000-7000-8000-000000000002', 'sale', 'orange-box', '{"id":"0190a000-0000-7000-8000-000000000002"}',
    'in_flight', 2, '2025-01-02T10:06:00Z');
"#;

/// Rows added at schema version 2.
const ROWS_V2: &str = r#"
INSERT INTO pins (id, session_id, product_id, stream_time_ms, wall_time, start_event_id)
VALUES ('0190a000-0000-7000-8000-0000000000a1', 'live-1', 'orange-box', 61000,
    '2025-01-02T10:04:00Z', '0190a000-0000-7000-8000-0000000000e1');
INSERT INTO outbox (record_id, kind, order_key, body, created_at)
VALUES ('0190a000-0000-7000-8000-0000000000e1', 'pin_event', 'orange-box', '{"action":"pin"}',
    '2025-01-02T10:04:00Z');
"#;

/// Creates a database at schema `version` holding the rows of every version up to it.
fn database_at_version(path: &Path, version: u32) {
    let mut conn = Connection::open(path).unwrap();
    assert_eq!(migrations::migrate(&mut conn, version).unwrap(), version);
    for (since, rows) in [(1, ROWS_V1), (2, ROWS_V2)] {
        if version >= since {
            conn.execute_batch(rows).unwrap();
        }
    }
}

#[test]
fn every_earlier_schema_upgrades_with_its_data() {
    for version in 0..LATEST_VERSION {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        database_at_version(&path, version);

        let store = Store::open(&path).unwrap();
        assert_eq!(
            store.schema_version().unwrap(),
            LATEST_VERSION,
            "from v{version}"
        );
        assert_eq!(store.integrity_check().unwrap(), "ok");
        let catalog = Catalog::new(store.clone());
        let sales = Sales::new(store.clone());
        let pins = Pins::new(store.clone());

        if version >= 1 {
            let oranges = catalog.get("orange-box").unwrap();
            assert_eq!(oranges.stock, 6);
            assert_eq!(oranges.image_path.as_deref(), Some("/sdcard/oranges.jpg"));
            let old = sales.list().unwrap();
            assert_eq!(old.len(), 2);
            assert_eq!(old[0].buyer.as_deref(), Some("Wanjiru"));
            assert_eq!(old[0].sync_state, OutboxState::Synced);
            assert_eq!(
                old[1].sync_state,
                OutboxState::Pending,
                "left in flight: queued again"
            );
            assert_eq!(old[1].unit_price_minor, 1200);
        } else {
            catalog
                .upsert(&crate::commerce::testing::oranges())
                .unwrap();
        }
        let chapters = pins.pins("live-1").unwrap();
        if version >= 2 {
            assert_eq!(chapters.len(), 1);
            assert_eq!(chapters[0].stream_time_ms, 61_000);
        } else {
            assert!(chapters.is_empty());
        }

        // Everything of the current schema works on the upgraded file.
        sales.record_sale(NewSale::new("orange-box", 1)).unwrap();
        pins.start_pin("live-1", "orange-box", 90_000).unwrap();
        store
            .write(|tx| {
                tx.execute(
                    "INSERT INTO uploads (id, path, session_id, size, created_at)
                     VALUES ('u1', '/r.mp4', 'live-1', 10, '2025-01-02T11:00:00Z')",
                    [],
                )
                .map_err(StoreError::from)
            })
            .unwrap();
        assert_eq!(store.integrity_check().unwrap(), "ok");
    }
}

#[test]
fn opening_uses_wal_full_sync_and_foreign_keys() {
    let (_dir, store) = store_with_oranges();
    store
        .write(|tx| {
            let mode: String = tx.pragma_query_value(None, "journal_mode", |r| r.get(0))?;
            let sync: i64 = tx.pragma_query_value(None, "synchronous", |r| r.get(0))?;
            let fk: i64 = tx.pragma_query_value(None, "foreign_keys", |r| r.get(0))?;
            assert_eq!(mode, "wal");
            assert_eq!(sync, 2, "FULL");
            assert_eq!(fk, 1);
            Ok::<_, StoreError>(())
        })
        .unwrap();
    let orphan = store.write(|tx| {
        tx.execute(
            "INSERT INTO sales VALUES ('x', 'no-such-product', NULL, 1, 1, 'KES', 't', 0, NULL, 0)",
            [],
        )
        .map_err(StoreError::from)
    });
    assert!(
        matches!(orphan, Err(StoreError::Constraint { .. })),
        "{orphan:?}"
    );
}

#[test]
fn a_full_disk_fails_cleanly_and_recovers() {
    let (_dir, store) = store_with_oranges();
    let catalog = Catalog::new(store.clone());
    let mut oranges = catalog.get("orange-box").unwrap();
    oranges.stock = 1_000_000;
    catalog.upsert(&oranges).unwrap();
    let sales = Sales::new(store.clone());
    store.set_size_limit(Some(256 * 1024)).unwrap();

    let mut accepted = Vec::new();
    let failure = loop {
        let sale = NewSale {
            buyer: Some("a buyer with a fairly long name to fill pages faster".into()),
            session_id: Some("live-1".into()),
            ..NewSale::new("orange-box", 2)
        };
        match sales.record_sale(sale) {
            Ok(s) => accepted.push(s.id),
            Err(e) => break e,
        }
        assert!(accepted.len() < 100_000, "the size limit never hit");
    };
    assert_eq!(failure, CommerceError::Store(StoreError::DiskFull));
    assert!(accepted.len() > 10, "only {} sales fit", accepted.len());

    // Nothing of the failed sale was kept; everything before it is intact.
    let stored = sales.list().unwrap();
    assert_eq!(
        stored.iter().map(|s| s.id.clone()).collect::<Vec<_>>(),
        accepted
    );
    let counts = store.read(outbox::counts).unwrap();
    assert_eq!(counts.pending as usize, accepted.len());
    assert_eq!(
        catalog.get("orange-box").unwrap().stock,
        1_000_000 - 2 * accepted.len() as i64
    );
    assert_eq!(store.integrity_check().unwrap(), "ok");

    store.set_size_limit(None).unwrap();
    sales.record_sale(NewSale::new("orange-box", 1)).unwrap();
    assert_eq!(sales.list().unwrap().len(), accepted.len() + 1);
    assert_eq!(store.integrity_check().unwrap(), "ok");
}

#[test]
fn records_left_in_flight_are_pending_after_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fc.db");
    let id = {
        let (_keep, store) = ((), Store::open(&path).unwrap());
        Catalog::new(store.clone())
            .upsert(&crate::commerce::testing::oranges())
            .unwrap();
        let sale = Sales::new(store.clone())
            .record_sale(NewSale::new("orange-box", 1))
            .unwrap();
        store
            .write(|tx| outbox::apply(tx, &sale.id, &Transition::Send))
            .unwrap()
            .unwrap();
        assert_eq!(
            Sales::new(store).get(&sale.id).unwrap().sync_state,
            OutboxState::InFlight
        );
        sale.id
    };
    let store = Store::open(&path).unwrap();
    assert_eq!(
        Sales::new(store).get(&id).unwrap().sync_state,
        OutboxState::Pending
    );
}

#[test]
fn damaged_or_unreachable_files_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, vec![0x5a; 8192]).unwrap();
    assert!(
        matches!(Store::open(&junk), Err(StoreError::Corrupt { .. })),
        "{:?}",
        Store::open(&junk)
    );
    let missing = dir.path().join("no/such/folder/fc.db");
    assert!(
        matches!(Store::open(&missing), Err(StoreError::Io { .. })),
        "{:?}",
        Store::open(&missing)
    );
}

#[test]
fn concurrent_sales_from_many_threads_all_land() {
    let (_dir, store) = store_with_oranges();
    let catalog = Catalog::new(store.clone());
    let mut oranges = catalog.get("orange-box").unwrap();
    oranges.stock = 400;
    catalog.upsert(&oranges).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let sales = Sales::new(store.clone());
            std::thread::spawn(move || {
                for _ in 0..25 {
                    sales.record_sale(NewSale::new("orange-box", 1)).unwrap();
                    sales.list().unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(Sales::new(store.clone()).list().unwrap().len(), 100);
    assert_eq!(catalog.get("orange-box").unwrap().stock, 300);
}
