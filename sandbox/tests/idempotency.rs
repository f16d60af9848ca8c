//! Idempotency-Key semantics on POST /v1/sales and POST /v1/pin-events.

mod common;

use std::time::Duration;

use common::{Client, sale, sandbox, sandbox_with_ingest};
use serde_json::json;

#[test]
fn first_use_is_processed_and_a_retry_is_replayed_with_the_header() {
    let sb = sandbox();
    let c = Client::new(&sb);
    let body = sale("sale-1", 3);
    let first = c.post_sale(&body);
    assert_eq!(first.status, 201, "{first:?}");
    assert_eq!(first.header("Idempotent-Replayed"), None);
    assert_eq!(first.json()["stock_after"], 37);
    assert_eq!(first.json()["sale"]["id"], "sale-1");

    let again = c.post_sale(&body);
    assert_eq!(again.status, 201);
    assert_eq!(again.header("Idempotent-Replayed"), Some("true"));
    assert_eq!(again.body, first.body, "the stored response, byte for byte");
    assert_eq!(c.stock("orange-box"), 37, "nothing applied twice");
    assert_eq!(c.get("/v1/sales").json().as_array().unwrap().len(), 1);
    assert_eq!(c.stats()["sales"], 1);
}

#[test]
fn whitespace_and_key_order_do_not_make_another_body() {
    let sb = sandbox();
    let c = Client::new(&sb);
    let compact = r#"{"id":"s","product_id":"orange-box","quantity":1,"unit_price_minor":2500,"currency":"CNY","taken_at":"2025-05-01T08:30:00Z"}"#;
    let reordered = "{\n  \"taken_at\": \"2025-05-01T08:30:00Z\", \"currency\": \"CNY\",\n  \"unit_price_minor\": 2500, \"quantity\": 1,\n  \"product_id\": \"orange-box\", \"id\": \"s\"\n}";
    assert_eq!(c.post_keyed("/v1/sales", "s", compact).unwrap().status, 201);
    let replay = c.post_keyed("/v1/sales", "s", reordered).unwrap();
    assert_eq!(replay.status, 201);
    assert_eq!(replay.header("Idempotent-Replayed"), Some("true"));
}

#[test]
fn same_key_with_another_body_is_422_mismatch() {
    let sb = sandbox();
    let c = Client::new(&sb);
    assert_eq!(c.post_sale(&sale("sale-2", 1)).status, 201);
    let other = c.post_sale(&sale("sale-2", 2));
    assert_eq!(other.status, 422);
    assert_eq!(other.code(), "idempotency_key_mismatch");
    assert!(other.message().contains("sale-2"), "{}", other.message());
    assert_eq!(c.stock("orange-box"), 39);
}

#[test]
fn missing_or_malformed_key_is_400() {
    let sb = sandbox();
    let c = Client::new(&sb);
    let body = sale("sale-3", 1).to_string();
    let missing = c.call(
        "POST",
        "/v1/sales",
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    );
    assert_eq!(missing.status, 400);
    assert_eq!(missing.code(), "idempotency_key_missing");
    assert!(missing.message().contains("Idempotency-Key"));

    let spaced = c.post_keyed("/v1/sales", "a b", &body).unwrap();
    assert_eq!(spaced.status, 400);
    assert_eq!(spaced.code(), "idempotency_key_invalid");

    let long = "k".repeat(256);
    assert_eq!(
        c.post_keyed("/v1/sales", &long, &body).unwrap().code(),
        "idempotency_key_invalid"
    );

    let not_the_id = c.post_keyed("/v1/sales", "other-id", &body).unwrap();
    assert_eq!(not_the_id.status, 400);
    assert_eq!(not_the_id.code(), "idempotency_key_invalid");
    assert!(
        not_the_id.message().contains("sale-3"),
        "{}",
        not_the_id.message()
    );
    assert_eq!(c.stats()["sales"], 0);
}

#[test]
fn a_second_request_while_the_first_is_processed_is_409_in_flight() {
    let sb = sandbox();
    let c = Client::new(&sb);
    // The first request claims its key, then waits 1.5 s before processing.
    c.fault(json!({"mode": "slow", "count": 1, "hang_ms": 1500}));
    let body = sale("sale-4", 2);
    let first = {
        let (c, body) = (c.clone(), body.clone());
        std::thread::spawn(move || c.post_sale(&body))
    };
    std::thread::sleep(Duration::from_millis(400));
    let concurrent = c.post_sale(&body);
    assert_eq!(concurrent.status, 409, "{concurrent:?}");
    assert_eq!(concurrent.code(), "idempotency_in_flight");
    let first = first.join().unwrap();
    assert_eq!(first.status, 201, "the slow request is processed normally");
    let retry = c.post_sale(&body);
    assert_eq!(retry.header("Idempotent-Replayed"), Some("true"));
    assert_eq!(c.stock("orange-box"), 38);
}

#[test]
fn an_abandoned_slow_request_releases_its_key_and_stores_nothing() {
    let sb = sandbox();
    let c = Client::new(&sb);
    c.fault(json!({"mode": "slow", "hang_ms": 3000}));
    let impatient = c.with_timeout(Duration::from_millis(300));
    assert!(
        impatient
            .post_keyed("/v1/sales", "sale-5", &sale("sale-5", 1).to_string())
            .is_err()
    );
    // The server notices the closed connection and drops the claim; bounded wait.
    let mut status = 0;
    for _ in 0..40 {
        status = c.post_sale(&sale("sale-5", 1)).status;
        if status != 409 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(status, 201);
    let replay = c.post_sale(&sale("sale-5", 1));
    assert_eq!(replay.header("Idempotent-Replayed"), Some("true"));
    assert_eq!(
        c.stock("orange-box"),
        39,
        "sold once: the abandoned request stored nothing"
    );
    assert_eq!(c.stats()["sales"], 1);
}

#[test]
fn business_conflicts_are_stored_under_the_key() {
    let sb = sandbox();
    let c = Client::new(&sb);
    let greedy = sale("sale-6", 41);
    let first = c.post_sale(&greedy);
    assert_eq!(first.status, 409);
    assert_eq!(first.code(), "oversold");
    // Even with stock back, the same request gets the stored answer.
    let product = c.get("/v1/products/orange-box").json();
    let mut restocked = product.clone();
    restocked["stock"] = json!(100);
    assert_eq!(
        c.json("PUT", "/v1/products/orange-box", &restocked).status,
        200
    );
    let replay = c.post_sale(&greedy);
    assert_eq!(replay.status, 409);
    assert_eq!(replay.header("Idempotent-Replayed"), Some("true"));
    assert_eq!(replay.body, first.body);
    assert_eq!(c.stock("orange-box"), 100);
}

#[test]
fn pin_events_are_idempotent_too() {
    let sb = sandbox_with_ingest();
    let c = Client::new(&sb);
    let session = c.json(
        "POST",
        "/v1/live-sessions",
        &json!({"title": "Morning oranges"}),
    );
    assert_eq!(session.status, 201, "{session:?}");
    let session_id = session.json()["id"].as_str().unwrap().to_owned();
    let event = json!({
        "id": "pin-1", "pin_id": "p-1", "session_id": session_id, "product_id": "orange-box",
        "action": "pin", "stream_time_ms": 12000, "wall_time": "2025-05-01T08:30:12Z"
    });
    let first = c
        .post_keyed("/v1/pin-events", "pin-1", &event.to_string())
        .unwrap();
    assert_eq!(first.status, 201, "{first:?}");
    let mut recorded = event.clone();
    recorded["client_clock_skew_ms"] = json!(null);
    assert_eq!(first.json(), recorded, "no Date header: no skew seen");
    let again = c
        .post_keyed("/v1/pin-events", "pin-1", &event.to_string())
        .unwrap();
    assert_eq!(again.header("Idempotent-Replayed"), Some("true"));
    let mut moved = event.clone();
    moved["stream_time_ms"] = json!(13000);
    let mismatch = c
        .post_keyed("/v1/pin-events", "pin-1", &moved.to_string())
        .unwrap();
    assert_eq!(mismatch.code(), "idempotency_key_mismatch");
    let pins = c.get(&format!("/v1/live-sessions/{session_id}")).json()["pins"].clone();
    assert_eq!(pins, json!([recorded]));
    assert_eq!(c.stats()["pin_events"], 1);
    // A sale and a pin event may share an id: keys are scoped per route.
    assert_eq!(c.post_sale(&sale("pin-1", 1)).status, 201);
}
