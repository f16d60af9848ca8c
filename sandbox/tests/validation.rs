//! Malformed requests get 400 with an Error body whose message names the field at fault.

mod common;

use common::{Client, sale, sandbox};
use serde_json::json;

/// POSTs a raw body as a sale with key `s` and returns (status, code, message).
fn post_sale_raw(c: &Client, body: &str) -> (u16, String, String) {
    let reply = c.post_keyed("/v1/sales", "s", body).unwrap();
    (reply.status, reply.code(), reply.message())
}

#[test]
fn malformed_json_is_400_with_the_parse_error() {
    let sb = sandbox();
    let c = Client::new(&sb);
    let (status, code, message) = post_sale_raw(&c, r#"{"id": "s", "quantity": 1,"#);
    assert_eq!((status, code.as_str()), (400, "malformed_json"));
    assert!(message.contains("line 1"), "{message}");
    let (status, code, message) = post_sale_raw(&c, "[1, 2]");
    assert_eq!((status, code.as_str()), (400, "malformed_json"));
    assert!(message.contains("object"), "{message}");
}

#[test]
fn missing_fields_are_named() {
    let sb = sandbox();
    let c = Client::new(&sb);
    for field in [
        "product_id",
        "quantity",
        "unit_price_minor",
        "currency",
        "taken_at",
    ] {
        let mut body = sale("s", 1);
        body.as_object_mut().unwrap().remove(field);
        let (status, code, message) = post_sale_raw(&c, &body.to_string());
        assert_eq!(
            (status, code.as_str()),
            (400, "missing_field"),
            "{field}: {message}"
        );
        assert!(
            message.contains(&format!("`{field}`")),
            "{field}: {message}"
        );
    }
}

#[test]
fn wrong_types_and_values_are_named_with_what_was_sent() {
    let sb = sandbox();
    let c = Client::new(&sb);
    let cases = [
        ("quantity", json!("2"), "\"2\""),
        ("quantity", json!(-1), "-1"),
        ("quantity", json!(0), "0"),
        ("quantity", json!(1.5), "1.5"),
        ("unit_price_minor", json!(-5), "-5"),
        ("currency", json!("cny"), "\"cny\""),
        ("currency", json!("YUAN"), "\"YUAN\""),
        ("taken_at", json!("yesterday"), "\"yesterday\""),
        ("allow_oversell", json!("yes"), "\"yes\""),
        ("session_id", json!(7), "7"),
        ("buyer", json!("x".repeat(201)), "201"),
    ];
    for (field, value, shown) in cases {
        let mut body = sale("s", 1);
        body[field] = value.clone();
        let (status, code, message) = post_sale_raw(&c, &body.to_string());
        assert_eq!(
            (status, code.as_str()),
            (400, "invalid_field"),
            "{field}={value}: {message}"
        );
        assert!(
            message.contains(&format!("`{field}`")),
            "{field}={value}: {message}"
        );
        assert!(message.contains(shown), "{field}={value}: {message}");
    }
    assert_eq!(c.stats()["sales"], 0);
    assert_eq!(c.stock("orange-box"), 40);
}

#[test]
fn json_bodies_need_the_json_content_type() {
    let sb = sandbox();
    let c = Client::new(&sb);
    let body = sale("s", 1).to_string();
    let reply = c.call(
        "POST",
        "/v1/sales",
        &[("Content-Type", "text/plain"), ("Idempotency-Key", "s")],
        body.as_bytes(),
    );
    assert_eq!(reply.status, 400);
    assert_eq!(reply.code(), "invalid_header");
    assert!(
        reply.message().contains("application/json"),
        "{}",
        reply.message()
    );
    let charset = c.call(
        "POST",
        "/v1/sales",
        &[
            ("Content-Type", "application/json; charset=utf-8"),
            ("Idempotency-Key", "s"),
        ],
        body.as_bytes(),
    );
    assert_eq!(charset.status, 201, "{charset:?}");
}

#[test]
fn products_and_sessions_validate_their_fields() {
    let sb = sandbox();
    let c = Client::new(&sb);
    let good = json!({"title": "Pomelo", "price_minor": 900, "currency": "CNY", "unit": "piece", "stock": 5});
    for (field, value) in [
        ("title", json!("")),
        ("price_minor", json!(-1)),
        ("stock", json!("5")),
        ("currency", json!("cn")),
        ("image_url", json!(false)),
    ] {
        let mut body = good.clone();
        body[field] = value;
        let reply = c.json("PUT", "/v1/products/pomelo", &body);
        assert_eq!(reply.status, 400, "{field}: {reply:?}");
        assert!(
            reply.message().contains(&format!("`{field}`")),
            "{}",
            reply.message()
        );
    }
    let long_id = "p".repeat(65);
    assert_eq!(
        c.json("PUT", &format!("/v1/products/{long_id}"), &good)
            .code(),
        "invalid_path"
    );
    let session = c.json("POST", "/v1/live-sessions", &json!({"title": 5}));
    assert_eq!(session.status, 400);
    assert!(
        session.message().contains("`title`"),
        "{}",
        session.message()
    );
}

#[test]
fn unknown_routes_and_methods_answer_with_error_bodies() {
    let sb = sandbox();
    let c = Client::new(&sb);
    let missing = c.get("/v1/nothing-here");
    assert_eq!(missing.status, 404);
    assert_eq!(missing.code(), "not_found");
    let method = c.call("DELETE", "/v1/products", &[], b"");
    assert_eq!(method.status, 405);
    assert_eq!(method.code(), "method_not_allowed");
    let product = c.get("/v1/products/no-such-thing");
    assert_eq!(product.status, 404);
    assert!(
        product.message().contains("no-such-thing"),
        "{}",
        product.message()
    );
    let session = c.get("/v1/live-sessions/none");
    assert_eq!(session.status, 404);
    assert_eq!(session.code(), "not_found");
}
