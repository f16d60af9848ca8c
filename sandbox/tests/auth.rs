//! Bearer tokens on every route family: 401 without a known token, 403 for read-only writes.

mod common;

use common::{Client, READ_ONLY, sale, sandbox};
use serde_json::json;

/// A request: method, path, headers, body.
type Call = (
    &'static str,
    &'static str,
    Vec<(&'static str, &'static str)>,
    String,
);

/// One request of each route family.
fn calls() -> Vec<Call> {
    let json = ("Content-Type", "application/json");
    let tus = ("Tus-Resumable", "1.0.0");
    vec![
        (
            "POST",
            "/v1/live-sessions",
            vec![json],
            json!({"title": "t"}).to_string(),
        ),
        ("GET", "/v1/live-sessions/none", vec![], String::new()),
        ("POST", "/v1/live-sessions/none/end", vec![], String::new()),
        ("GET", "/v1/products", vec![], String::new()),
        ("GET", "/v1/products/orange-box", vec![], String::new()),
        (
            "PUT",
            "/v1/products/new",
            vec![json],
            json!({"title": "t", "price_minor": 1, "currency": "CNY", "unit": "u", "stock": 1})
                .to_string(),
        ),
        (
            "POST",
            "/v1/pin-events",
            vec![json, ("Idempotency-Key", "p")],
            "{}".into(),
        ),
        (
            "POST",
            "/v1/sales",
            vec![json, ("Idempotency-Key", "s")],
            sale("s", 1).to_string(),
        ),
        ("GET", "/v1/sales", vec![], String::new()),
        (
            "POST",
            "/v1/uploads",
            vec![tus, ("Upload-Length", "10")],
            String::new(),
        ),
        ("HEAD", "/v1/uploads/none", vec![], String::new()),
        (
            "PATCH",
            "/v1/uploads/none",
            vec![
                tus,
                ("Upload-Offset", "0"),
                ("Content-Type", "application/offset+octet-stream"),
            ],
            "x".into(),
        ),
        (
            "POST",
            "/v1/_sandbox/faults",
            vec![json],
            json!({"mode": "close"}).to_string(),
        ),
        ("DELETE", "/v1/_sandbox/faults", vec![], String::new()),
        ("GET", "/v1/_sandbox/stats", vec![], String::new()),
        ("POST", "/v1/_sandbox/reset", vec![], String::new()),
    ]
}

fn is_write(method: &str, path: &str) -> bool {
    path.starts_with("/v1/_sandbox/") || !matches!(method, "GET" | "HEAD")
}

#[test]
fn no_token_and_unknown_tokens_get_401_everywhere() {
    let sb = sandbox();
    let c = Client::new(&sb);
    for (token, what) in [(None, "no token"), (Some("guess"), "unknown token")] {
        let c = c.with_token(token);
        for (method, path, headers, body) in calls() {
            let reply = c.call(method, path, &headers, body.as_bytes());
            assert_eq!(reply.status, 401, "{what}: {method} {path}: {reply:?}");
            assert_eq!(reply.header("WWW-Authenticate"), Some("Bearer"));
            if method != "HEAD" {
                assert_eq!(reply.code(), "unauthorized");
                assert!(reply.message().contains("token"), "{}", reply.message());
            }
        }
    }
    let basic = c.with_token(None).call(
        "GET",
        "/v1/products",
        &[("Authorization", "Basic abc")],
        b"",
    );
    assert_eq!(basic.status, 401, "{basic:?}");
    assert!(basic.message().contains("Bearer"), "{}", basic.message());
    assert_eq!(c.stats()["sales"], 0, "nothing was applied");
}

#[test]
fn a_read_only_token_reads_and_gets_403_on_writes() {
    let sb = sandbox();
    let c = Client::new(&sb).with_token(Some(READ_ONLY));
    for (method, path, headers, body) in calls() {
        let reply = c.call(method, path, &headers, body.as_bytes());
        if is_write(method, path) {
            assert_eq!(reply.status, 403, "{method} {path}: {reply:?}");
            assert_eq!(reply.code(), "forbidden");
            assert!(reply.message().contains("read-only"), "{}", reply.message());
        } else {
            assert!(
                reply.status != 401 && reply.status != 403,
                "{method} {path}: {reply:?}"
            );
        }
    }
    assert_eq!(c.get("/v1/products").status, 200);
}

#[test]
fn health_and_tus_discovery_need_no_token() {
    let sb = sandbox();
    let anonymous = Client::new(&sb).with_token(None);
    let health = anonymous.get("/v1/health");
    assert_eq!(health.status, 200);
    assert_eq!(health.json(), json!({"status": "ok"}));
    let options = anonymous.call("OPTIONS", "/v1/uploads", &[], b"");
    assert_eq!(options.status, 204);
    assert_eq!(options.header("Tus-Version"), Some("1.0.0"));
}
