//! Catalog refresh and pin events against the sandbox.

mod sync_support;

use std::time::Duration;

use fieldcast_core::{Catalog, NewSale, Pins, RecordKind, Sales, SyncEngine, SyncEvent};
use sync_support::{Platform, assert_platform_holds_exactly, drain, local_store};

#[test]
fn a_catalog_refresh_takes_platform_fields_and_keeps_local_ones() {
    let platform = Platform::start(50);
    platform.put_product("orange-box", 1300, 50);
    let dir = tempfile::tempdir().unwrap();
    let store = local_store(dir.path(), 7);
    let catalog = Catalog::new(store.clone());
    let mut oranges = catalog.get("orange-box").unwrap();
    oranges.image_path = Some("/sdcard/DCIM/oranges.jpg".into());
    catalog.upsert(&oranges).unwrap();

    let engine = SyncEngine::start(store.clone(), platform.config()).unwrap();
    engine.set_network_available(false);
    let sale = Sales::new(store.clone())
        .record_sale(NewSale::new("orange-box", 2))
        .unwrap();
    assert_eq!(
        sale.unit_price_minor, 1250,
        "the local price until refreshed"
    );

    let written = engine.refresh_catalog().unwrap();
    assert!(written >= 3, "{written}");
    let refreshed = catalog.get("orange-box").unwrap();
    assert_eq!(refreshed.price_minor, 1300);
    assert_eq!(refreshed.title, "orange-box (platform)");
    assert_eq!(refreshed.image_path, oranges.image_path);
    assert_eq!(
        refreshed.stock, 48,
        "50 on the platform minus the unsent sale"
    );

    // Sent at the old price, the sale is a conflict the farmer sees.
    engine.set_network_available(true);
    assert!(engine.wait_idle(Duration::from_secs(5)));
    let state = engine.queue_state().unwrap();
    assert_eq!(state.conflicted, 1);
    assert_eq!(
        state.items[0].record.conflict.as_ref().unwrap().code,
        "price_changed"
    );

    // At the new price it goes through. The refused sale still holds its 2 boxes on the phone
    // until the farmer discards it; then both sides agree.
    Sales::new(store)
        .record_sale(NewSale::new("orange-box", 2))
        .unwrap();
    assert!(engine.wait_idle(Duration::from_secs(5)));
    engine.refresh_catalog().unwrap();
    assert_eq!(platform.product("orange-box")["stock"], 48);
    assert_eq!(catalog.get("orange-box").unwrap().stock, 46);
    engine.discard_conflicted(&sale.id).unwrap();
    assert_eq!(catalog.get("orange-box").unwrap().stock, 48);
    engine.refresh_catalog().unwrap();
    assert_eq!(catalog.get("orange-box").unwrap().stock, 48);
}

#[test]
fn pin_events_are_posted_with_their_ids_and_refusals_do_not_block_sales() {
    // A sandbox without its RTMP ingest creates no live sessions, so the platform refuses these
    // pin events as `unknown_session`: each is reported once, and later records of the same
    // products still go through.
    let platform = Platform::start(50);
    let dir = tempfile::tempdir().unwrap();
    let store = local_store(dir.path(), 50);
    let pins = Pins::new(store.clone());
    let first = pins.start_pin("live-1", "orange-box", 5_000).unwrap();
    let second = pins.start_pin("live-1", "mango-crate", 65_000).unwrap();
    pins.end_pin(&second.id, 90_000).unwrap();
    let sales = Sales::new(store.clone());
    let after = [
        sales.record_sale(NewSale::new("orange-box", 1)).unwrap().id,
        sales
            .record_sale(NewSale::new("mango-crate", 1))
            .unwrap()
            .id,
    ];

    let engine = SyncEngine::start(store, platform.config()).unwrap();
    let mut events = engine.subscribe();
    assert!(engine.wait_idle(Duration::from_secs(5)));
    let state = engine.queue_state().unwrap();
    assert_eq!((state.conflicted, state.synced), (4, 2));
    assert!(state.items.iter().all(|i| {
        i.record.kind == RecordKind::PinEvent
            && i.record.conflict.as_ref().unwrap().code == "unknown_session"
    }));
    let conflicts = drain(&mut events)
        .into_iter()
        .filter(|e| matches!(e, SyncEvent::Conflict { code, .. } if code == "unknown_session"))
        .count();
    assert_eq!(conflicts, 4);
    assert_eq!(platform.requests("/v1/pin-events"), 4);
    assert_platform_holds_exactly(&platform, &after);
    assert_eq!(pins.pins("live-1").unwrap()[0].id, first.id);
}
