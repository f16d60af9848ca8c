//! Each fault mode as a client sees it, and that faulted requests apply nothing.

mod common;

use std::time::{Duration, Instant};

use common::{Client, sale, sandbox};
use serde_json::json;

#[test]
fn status500_answers_an_error_body_and_records_nothing() {
    let sb = sandbox();
    let c = Client::new(&sb);
    c.fault(json!({"mode": "status500", "count": 2}));
    for _ in 0..2 {
        let reply = c.post_sale(&sale("f1", 1));
        assert_eq!(reply.status, 500);
        assert_eq!(reply.code(), "internal");
        assert!(reply.message().contains("status500"), "{}", reply.message());
    }
    assert_eq!(c.stock("orange-box"), 40);
    let third = c.post_sale(&sale("f1", 1));
    assert_eq!(
        third.status, 201,
        "the rule is used up; the key was never stored"
    );
    assert_eq!(third.header("Idempotent-Replayed"), None);
    let stats = c.stats();
    assert_eq!(stats["requests"]["/v1/sales"], 3);
    assert_eq!(stats["sales"], 1);
    assert_eq!(stats["faults_injected"], 2);
}

#[test]
fn garbage_is_a_200_that_is_not_json() {
    let sb = sandbox();
    let c = Client::new(&sb);
    c.fault(json!({"mode": "garbage"}));
    let reply = c.post_sale(&sale("f2", 1));
    assert_eq!(reply.status, 200);
    assert!(serde_json::from_slice::<serde_json::Value>(&reply.body).is_err());
    assert_eq!(c.stats()["sales"], 0);
    assert_eq!(c.stock("orange-box"), 40);
}

#[test]
fn close_drops_the_connection_without_a_response() {
    let sb = sandbox();
    let c = Client::new(&sb);
    c.fault(json!({"mode": "close", "paths": ["/v1/pin-events", "/v1/sales"]}));
    let started = Instant::now();
    let err = c
        .post_keyed("/v1/sales", "f3", &sale("f3", 1).to_string())
        .expect_err("no response");
    assert!(
        matches!(
            err.kind(),
            std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset
        ),
        "{err:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "closed at once, not a timeout"
    );
    assert_eq!(c.stats()["sales"], 0);
    assert_eq!(
        c.post_sale(&sale("f3", 1)).status,
        201,
        "the retry is processed"
    );
}

#[test]
fn hang_holds_the_request_until_the_client_gives_up() {
    let sb = sandbox();
    let c = Client::new(&sb);
    c.fault(json!({"mode": "hang", "hang_ms": 5000}));
    let impatient = c.with_timeout(Duration::from_millis(500));
    let started = Instant::now();
    let err = impatient
        .post_keyed("/v1/sales", "f4", &sale("f4", 1).to_string())
        .expect_err("no response in time");
    assert!(
        matches!(
            err.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
        "{err:?}"
    );
    assert!(started.elapsed() >= Duration::from_millis(500));
    assert_eq!(c.stats()["sales"], 0);
}

#[test]
fn a_short_hang_ends_in_a_closed_connection() {
    let sb = sandbox();
    let c = Client::new(&sb);
    c.fault(json!({"mode": "hang", "hang_ms": 300}));
    let started = Instant::now();
    let err = c
        .post_keyed("/v1/sales", "f5", &sale("f5", 1).to_string())
        .expect_err("closed without an answer");
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_ne!(err.kind(), std::io::ErrorKind::WouldBlock, "{err:?}");
    assert_eq!(c.stats()["sales"], 0);
}

#[test]
fn conflict_is_409_oversold_but_not_stored_under_the_key() {
    let sb = sandbox();
    let c = Client::new(&sb);
    c.fault(json!({"mode": "conflict"}));
    let reply = c.post_sale(&sale("f6", 1));
    assert_eq!(reply.status, 409);
    assert_eq!(reply.code(), "oversold");
    let retry = c.post_sale(&sale("f6", 1));
    assert_eq!(retry.status, 201);
    assert_eq!(retry.header("Idempotent-Replayed"), None);
}

#[test]
fn faults_follow_their_paths_and_can_be_cleared() {
    let sb = sandbox();
    let c = Client::new(&sb);
    c.fault(json!({"mode": "status500", "count": 5, "paths": ["/v1/products"]}));
    assert_eq!(
        c.post_sale(&sale("f7", 1)).status,
        201,
        "sales are not in the rule's paths"
    );
    assert_eq!(
        c.get("/v1/products/orange-box").status,
        500,
        "a sub-path matches"
    );
    assert_eq!(c.get("/v1/health").status, 200, "health is never faulted");
    assert_eq!(
        c.get("/v1/_sandbox/stats").status,
        200,
        "nor the sandbox endpoints"
    );
    assert_eq!(
        c.call("DELETE", "/v1/_sandbox/faults", &[], b"").status,
        204
    );
    assert_eq!(c.get("/v1/products").status, 200);

    let bad = c.json("POST", "/v1/_sandbox/faults", &json!({"mode": "explode"}));
    assert_eq!(bad.status, 400);
    assert!(bad.message().contains("`mode`"), "{}", bad.message());
}

#[test]
fn reset_restores_the_seed_catalog_and_clears_records() {
    let sb = sandbox();
    let c = Client::new(&sb);
    assert_eq!(c.post_sale(&sale("f8", 10)).status, 201);
    c.fault(json!({"mode": "status500"}));
    assert_eq!(c.call("POST", "/v1/_sandbox/reset", &[], b"").status, 204);
    assert_eq!(c.stock("orange-box"), 40);
    assert_eq!(c.get("/v1/sales").json(), json!([]));
    let again = c.post_sale(&sale("f8", 10));
    assert_eq!(
        again.status, 201,
        "faults cleared, idempotency records gone"
    );
    assert_eq!(again.header("Idempotent-Replayed"), None);
    assert_eq!(c.stats()["sales"], 1);
}

#[test]
fn portal_modes_answer_in_the_platforms_place_and_record_nothing() {
    let sb = sandbox();
    let c = Client::new(&sb);
    for mode in [
        "portal_login",
        "portal_redirect",
        "proxy_auth",
        "network_auth",
    ] {
        c.fault(json!({"mode": mode}));
    }
    let login = c.post_sale(&sale("p1", 1));
    assert_eq!(login.status, 200);
    assert!(
        login
            .header("Content-Type")
            .unwrap()
            .starts_with("text/html")
    );
    assert!(String::from_utf8_lossy(&login.body).contains("<title>Village Wi-Fi: sign in</title>"));

    let redirect = c.post_sale(&sale("p1", 1));
    assert_eq!(redirect.status, 302);
    assert_eq!(
        redirect.header("Location"),
        Some("/portal/login?continue=/v1/sales")
    );

    let proxy = c.post_sale(&sale("p1", 1));
    assert_eq!(proxy.status, 407);
    assert_eq!(
        proxy.header("Proxy-Authenticate"),
        Some("Basic realm=\"village-proxy\"")
    );

    let network = c.post_sale(&sale("p1", 1));
    assert_eq!(network.status, 511);
    assert!(
        network
            .header("Content-Type")
            .unwrap()
            .starts_with("text/html")
    );
    assert!(String::from_utf8_lossy(&network.body).contains("Network Authentication Required"));

    assert_eq!(c.stats()["sales"], 0);
    assert_eq!(c.stock("orange-box"), 40);
    let through = c.post_sale(&sale("p1", 1));
    assert_eq!(
        through.status, 201,
        "the portal is gone; nothing was stored"
    );
    assert_eq!(c.stats()["faults_injected"], 4);

    // The page the redirect points to needs no token, as a portal's would not.
    let page = c.with_token(None).get("/portal/login");
    assert_eq!(page.status, 200);
    assert!(String::from_utf8_lossy(&page.body).contains("Village Wi-Fi"));
}

#[test]
fn certificate_faults_need_the_tls_port() {
    let sb = sandbox();
    let c = Client::new(&sb);
    let reply = c.json(
        "POST",
        "/v1/_sandbox/faults",
        &json!({"mode": "tls_wrong_name"}),
    );
    assert_eq!(reply.status, 409);
    assert_eq!(reply.code(), "tls_unavailable");
    let with_paths = c.json(
        "POST",
        "/v1/_sandbox/faults",
        &json!({"mode": "tls_wrong_name", "paths": ["/v1/sales"]}),
    );
    assert_eq!(with_paths.status, 400);
    assert!(
        with_paths.message().contains("`paths`"),
        "{}",
        with_paths.message()
    );
}
