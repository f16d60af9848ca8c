//! The outbox relay against the real sandbox and its injected faults: nothing lost, nothing
//! counted twice, the right events, bounded retries, pauses, offline queueing, per-product order.

mod sync_support;

use std::time::{Duration, Instant};

use fieldcast_core::{
    BackoffPolicy, Catalog, NewSale, OutboxState, PauseReason, Sales, Store, SyncConfig,
    SyncEngine, SyncEvent,
};
use sync_support::{Platform, assert_platform_holds_exactly, drain, local_store, wait_event};

const SALES: &str = "/v1/sales";

/// Records `n` sales cycling over the products; returns their ids in order.
fn sell(store: &Store, n: usize) -> Vec<String> {
    let sales = Sales::new(store.clone());
    (0..n)
        .map(|i| {
            let product = sync_support::PRODUCTS[i % 3].0;
            sales
                .record_sale(NewSale::new(product, 1))
                .expect("sale recorded")
                .id
        })
        .collect()
}

/// Injects `count` faults of `mode` into the next sales requests, syncs three sales and checks
/// that each reached the platform exactly once after exactly `count` failed attempts.
fn transient_fault_is_retried(mode: &str, hang_ms: Option<u64>) {
    let platform = Platform::start(1000);
    let dir = tempfile::tempdir().unwrap();
    let store = local_store(dir.path(), 1000);
    let ids = sell(&store, 3);
    let count = 2;
    platform.fault(mode, count, &[SALES], hang_ms);

    let engine = SyncEngine::start(store.clone(), platform.config()).unwrap();
    let mut events = engine.subscribe();
    assert!(
        engine.wait_idle(Duration::from_secs(15)),
        "{mode}: not synced"
    );

    // Read before listing the platform's sales: the listing is a request to the same route.
    assert_eq!(
        platform.requests(SALES),
        ids.len() as u64 + count,
        "{mode}: one request per sale plus one per fault"
    );
    assert_platform_holds_exactly(&platform, &ids);
    let events = drain(&mut events);
    let retries = events
        .iter()
        .filter(|e| matches!(e, SyncEvent::Retrying { .. }))
        .count();
    let synced = events
        .iter()
        .filter(|e| matches!(e, SyncEvent::Synced { .. }))
        .count();
    assert_eq!(retries as u64, count, "{mode}: {events:?}");
    assert_eq!(synced, ids.len(), "{mode}: {events:?}");
    let state = engine.queue_state().unwrap();
    assert_eq!((state.synced, state.pending, state.conflicted), (3, 0, 0));
    assert!(
        Sales::new(store)
            .list()
            .unwrap()
            .iter()
            .all(|s| s.sync_state == OutboxState::Synced)
    );
}

#[test]
fn server_errors_are_retried() {
    transient_fault_is_retried("status500", None);
}

#[test]
fn dropped_connections_are_retried() {
    transient_fault_is_retried("close", None);
}

#[test]
fn garbage_answers_are_retried() {
    transient_fault_is_retried("garbage", None);
}

#[test]
fn hanging_requests_time_out_and_are_retried() {
    // The sandbox holds each request 4 s; the client gives up after 1.5 s.
    transient_fault_is_retried("hang", Some(4000));
}

#[test]
fn conflicts_are_reported_once_and_do_not_block_later_sales() {
    let platform = Platform::start(1000);
    platform.put_product("mango-crate", 2400, 1);
    let dir = tempfile::tempdir().unwrap();
    let store = local_store(dir.path(), 1000);
    let sales = Sales::new(store.clone());
    let sell = |product: &str, quantity| {
        sales
            .record_sale(NewSale::new(product, quantity))
            .unwrap()
            .id
    };
    // Injected 409: not stored under the key, yet final for the relay.
    let injected = sell("orange-box", 1);
    let after_injected = sell("orange-box", 1);
    // Real business conflicts: the platform has 1 mango left, and a new avocado price.
    let oversold = sell("mango-crate", 2);
    let after_oversold = sell("mango-crate", 1);
    platform.put_product("avocado-tray", 1900, 1000);
    let price_changed = sell("avocado-tray", 1);
    platform.fault("conflict", 1, &[SALES], None);

    // One request at a time, oldest first, so the injected 409 meets the first sale.
    let config = SyncConfig {
        max_concurrent_sends: 1,
        ..platform.config()
    };
    let engine = SyncEngine::start(store.clone(), config).unwrap();
    let mut events = engine.subscribe();
    assert!(engine.wait_idle(Duration::from_secs(10)));

    let mut conflicts: Vec<(String, String)> = drain(&mut events)
        .into_iter()
        .filter_map(|e| match e {
            SyncEvent::Conflict {
                record_id, code, ..
            } => Some((record_id, code)),
            _ => None,
        })
        .collect();
    conflicts.sort();
    let mut expected = vec![
        (injected.clone(), "oversold".to_string()),
        (oversold.clone(), "oversold".to_string()),
        (price_changed.clone(), "price_changed".to_string()),
    ];
    expected.sort();
    assert_eq!(conflicts, expected);

    // Never retried: another sync sends nothing.
    assert_eq!(platform.requests(SALES), 5);
    engine.sync_now();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(platform.requests(SALES), 5);
    assert_platform_holds_exactly(&platform, &[after_injected, after_oversold]);

    let state = engine.queue_state().unwrap();
    assert_eq!((state.conflicted, state.synced, state.pending), (3, 2, 0));
    let item = state
        .items
        .iter()
        .find(|i| i.record.record_id == price_changed)
        .unwrap();
    let conflict = item.record.conflict.as_ref().unwrap();
    assert_eq!(conflict.code, "price_changed");
    assert!(conflict.message.contains("1900"), "{}", conflict.message);

    // Discarding a refused sale gives its stock back.
    let catalog = Catalog::new(store.clone());
    let mango_before = catalog.get("mango-crate").unwrap().stock;
    engine.discard_conflicted(&oversold).unwrap();
    assert_eq!(catalog.get("mango-crate").unwrap().stock, mango_before + 2);
    assert!(engine.discard_conflicted(&oversold).is_err(), "only once");
    let state = engine.queue_state().unwrap();
    assert_eq!((state.conflicted, state.discarded), (2, 1));
}

#[test]
fn retries_stay_bounded_per_minute() {
    let platform = Platform::start(1000);
    let dir = tempfile::tempdir().unwrap();
    let store = local_store(dir.path(), 1000);
    let ids = sell(&store, 1);
    platform.fault("status500", 1000, &[SALES], None);
    let config = SyncConfig {
        backoff: BackoffPolicy::default(),
        ..platform.config()
    };
    let engine = SyncEngine::start(store.clone(), config).unwrap();
    let mut events = engine.subscribe();
    let window = Duration::from_secs(6);
    std::thread::sleep(window);
    let attempts = platform.requests(SALES);
    let per_minute = attempts as f64 * 60.0 / window.as_secs_f64();
    assert!(
        (2..12).contains(&attempts),
        "{attempts} attempts in {window:?} ({per_minute:.0}/min)"
    );
    let delays: Vec<Duration> = drain(&mut events)
        .into_iter()
        .filter_map(|e| match e {
            SyncEvent::Retrying { delay, .. } => Some(delay),
            _ => None,
        })
        .collect();
    assert!(
        delays.iter().all(|d| *d >= Duration::from_millis(500)),
        "{delays:?}"
    );
    let state = engine.queue_state().unwrap();
    assert!(state.items[0].record.attempts >= 2);
    assert!(
        state.items[0]
            .record
            .last_error
            .as_deref()
            .unwrap()
            .contains("500")
    );

    // The platform recovers; "sync now" does not wait out the backoff.
    platform.clear_faults();
    let started = Instant::now();
    engine.sync_now();
    assert!(engine.wait_idle(Duration::from_secs(2)));
    println!(
        "bounded retries: {attempts} attempts in {window:?} ({per_minute:.0}/min); synced {:?} after sync_now",
        started.elapsed()
    );
    assert_platform_holds_exactly(&platform, &ids);
}

#[test]
fn a_refused_token_pauses_until_a_new_one() {
    let platform = Platform::start(1000);
    let dir = tempfile::tempdir().unwrap();
    let store = local_store(dir.path(), 1000);
    let ids = sell(&store, 2);
    let config = SyncConfig {
        token: "wrong-token".into(),
        max_concurrent_sends: 1,
        ..platform.config()
    };
    let engine = SyncEngine::start(store.clone(), config).unwrap();
    let mut events = engine.subscribe();
    let paused = wait_event(&mut events, Duration::from_secs(5), |e| {
        matches!(e, SyncEvent::Paused { .. })
    });
    assert!(
        matches!(
            paused,
            Some(SyncEvent::Paused {
                reason: PauseReason::Unauthorized { .. }
            })
        ),
        "{paused:?}"
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(platform.requests(SALES), 1, "paused: no more requests");
    let state = engine.queue_state().unwrap();
    assert!(matches!(
        state.paused_reason,
        Some(PauseReason::Unauthorized { .. })
    ));
    assert_eq!(state.pending, 2);

    // A read-only token gets 403, another pause; resuming with it pauses again.
    engine.set_token("sandbox-readonly");
    let forbidden = wait_event(&mut events, Duration::from_secs(5), |e| {
        matches!(
            e,
            SyncEvent::Paused {
                reason: PauseReason::Forbidden { .. }
            }
        )
    });
    assert!(forbidden.is_some());
    engine.resume();
    assert!(
        wait_event(&mut events, Duration::from_secs(5), |e| {
            matches!(
                e,
                SyncEvent::Paused {
                    reason: PauseReason::Forbidden { .. }
                }
            )
        })
        .is_some()
    );

    engine.set_token(platform.sandbox.token());
    assert!(engine.wait_idle(Duration::from_secs(5)));
    assert_eq!(engine.queue_state().unwrap().paused_reason, None);
    assert_eq!(platform.requests(SALES), 3 + 2);
    assert_platform_holds_exactly(&platform, &ids);
}

#[test]
fn ten_sales_taken_offline_are_flushed_when_the_network_returns() {
    let platform = Platform::start(1000);
    let dir = tempfile::tempdir().unwrap();
    let store = local_store(dir.path(), 1000);
    let engine = SyncEngine::start(store.clone(), platform.config()).unwrap();
    let mut events = engine.subscribe();
    engine.set_network_available(false);
    let ids = sell(&store, 10);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(platform.requests(SALES), 0);
    let state = engine.queue_state().unwrap();
    assert_eq!(state.pending, 10);
    assert_eq!(state.paused_reason, Some(PauseReason::Offline));
    assert_eq!(state.items.len(), 10);

    let started = Instant::now();
    engine.set_network_available(true);
    assert!(engine.wait_idle(Duration::from_secs(3)));
    let flush = started.elapsed();
    println!("10 offline sales flushed in {flush:?}");
    assert!(flush < Duration::from_secs(2), "{flush:?}");
    assert_platform_holds_exactly(&platform, &ids);
    let events = drain(&mut events);
    assert_eq!(
        events[0],
        SyncEvent::Paused {
            reason: PauseReason::Offline
        }
    );
    assert!(events.contains(&SyncEvent::Resumed));
}

#[test]
fn network_back_cuts_a_long_backoff_short() {
    let platform = Platform::start(1000);
    let dir = tempfile::tempdir().unwrap();
    let store = local_store(dir.path(), 1000);
    let ids = sell(&store, 1);
    platform.fault("status500", 1, &[SALES], None);
    let config = SyncConfig {
        backoff: BackoffPolicy {
            min: Duration::from_secs(30),
            max: Duration::from_secs(60),
        },
        ..platform.config()
    };
    let engine = SyncEngine::start(store, config).unwrap();
    let mut events = engine.subscribe();
    let retry = wait_event(&mut events, Duration::from_secs(5), |e| {
        matches!(e, SyncEvent::Retrying { .. })
    });
    assert!(
        matches!(retry, Some(SyncEvent::Retrying { delay, .. }) if delay >= Duration::from_secs(30))
    );
    let retry_in = engine.queue_state().unwrap().items[0].retry_in;
    assert!(
        retry_in.is_some_and(|d| d > Duration::from_secs(20)),
        "{retry_in:?}"
    );
    engine.set_network_available(false);
    engine.set_network_available(true);
    assert!(engine.wait_idle(Duration::from_secs(2)));
    assert_platform_holds_exactly(&platform, &ids);
}

#[test]
fn per_product_order_holds_through_faults() {
    let platform = Platform::start(1000);
    let dir = tempfile::tempdir().unwrap();
    let store = local_store(dir.path(), 1000);
    let ids = sell(&store, 12);
    platform.fault("status500", 3, &[SALES], None);
    platform.fault("close", 2, &[SALES], None);
    let engine = SyncEngine::start(store.clone(), platform.config()).unwrap();
    assert!(engine.wait_idle(Duration::from_secs(15)));
    assert_platform_holds_exactly(&platform, &ids);

    let on_platform = platform.sales();
    let local = Sales::new(store).list().unwrap();
    for (product, _) in sync_support::PRODUCTS {
        let local_order: Vec<&str> = local
            .iter()
            .filter(|s| s.product_id == product)
            .map(|s| s.id.as_str())
            .collect();
        let platform_order: Vec<&str> = on_platform
            .iter()
            .filter(|s| s["product_id"] == product)
            .map(|s| s["id"].as_str().unwrap())
            .collect();
        assert_eq!(platform_order, local_order, "order of {product}");
    }
}

#[test]
fn unsent_sales_go_out_after_a_restart() {
    let platform = Platform::start(1000);
    let dir = tempfile::tempdir().unwrap();
    let ids = {
        let store = local_store(dir.path(), 1000);
        let engine = SyncEngine::start(store.clone(), platform.config()).unwrap();
        engine.set_network_available(false);
        let ids = sell(&store, 4);
        assert!(
            SyncEngine::start(store.clone(), platform.config()).is_err(),
            "one engine per store"
        );
        engine.stop();
        ids
    };
    let store = Store::open(dir.path().join("fieldcast.db")).unwrap();
    assert_eq!(store.outbox_counts().unwrap().pending, 4);
    let engine = SyncEngine::start(store, platform.config()).unwrap();
    assert!(engine.wait_idle(Duration::from_secs(5)));
    assert_platform_holds_exactly(&platform, &ids);
}
