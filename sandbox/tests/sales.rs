//! Sales against the catalog: stock arithmetic, oversold, price_changed, allow_oversell, and the
//! 422s for unknown products, unknown sessions and other currencies.

mod common;

use common::{Client, sale, sandbox};
use serde_json::json;

#[test]
fn the_seed_catalog_is_there() {
    let sb = sandbox();
    let c = Client::new(&sb);
    let products = c.get("/v1/products").json();
    let ids: Vec<&str> = products
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["egg-tray", "honey-jar", "orange-box"]);
    let oranges = c.get("/v1/products/orange-box").json();
    assert_eq!(oranges["title"], "Oranges, 5 kg box");
    assert_eq!(oranges["price_minor"], 2500);
    assert_eq!(oranges["currency"], "CNY");
    assert_eq!(oranges["stock"], 40);
    assert!(oranges["updated_at"].as_str().unwrap().ends_with('Z'));
}

#[test]
fn sales_take_stock_in_the_same_transaction() {
    let sb = sandbox();
    let c = Client::new(&sb);
    let mut expected = 40;
    for (i, quantity) in [5, 10, 25].into_iter().enumerate() {
        let reply = c.post_sale(&sale(&format!("s{i}"), quantity));
        assert_eq!(reply.status, 201, "{reply:?}");
        expected -= quantity;
        assert_eq!(reply.json()["stock_after"], expected);
    }
    assert_eq!(c.stock("orange-box"), 0);
    let sales = c.get("/v1/sales").json();
    assert_eq!(sales.as_array().unwrap().len(), 3);
    assert_eq!(sales[0]["id"], "s0", "oldest first");
    assert_eq!(sales[0]["allow_oversell"], false);
    assert_eq!(sales[0]["session_id"], json!(null));
}

#[test]
fn selling_beyond_stock_is_409_oversold_unless_allowed() {
    let sb = sandbox();
    let c = Client::new(&sb);
    assert_eq!(c.post_sale(&sale("a", 38)).status, 201);
    let over = c.post_sale(&sale("b", 3));
    assert_eq!(over.status, 409);
    assert_eq!(over.code(), "oversold");
    assert!(
        over.message().contains("only 2 box left of orange-box"),
        "{}",
        over.message()
    );
    assert_eq!(c.stock("orange-box"), 2);

    let mut allowed = sale("c", 5);
    allowed["allow_oversell"] = json!(true);
    let reply = c.post_sale(&allowed);
    assert_eq!(reply.status, 201, "{reply:?}");
    assert_eq!(reply.json()["stock_after"], -3);
    assert_eq!(reply.json()["sale"]["allow_oversell"], true);
    assert_eq!(c.stock("orange-box"), -3);
    assert_eq!(c.stats()["sales"], 2);
}

#[test]
fn a_stale_price_is_409_price_changed_with_both_prices() {
    let sb = sandbox();
    let c = Client::new(&sb);
    let mut product = c.get("/v1/products/orange-box").json();
    product["price_minor"] = json!(2600);
    assert_eq!(
        c.json("PUT", "/v1/products/orange-box", &product).status,
        200
    );
    let reply = c.post_sale(&sale("old-price", 1));
    assert_eq!(reply.status, 409);
    assert_eq!(reply.code(), "price_changed");
    assert!(
        reply.message().contains("2600") && reply.message().contains("2500"),
        "{}",
        reply.message()
    );
    assert_eq!(c.stock("orange-box"), 40);
}

#[test]
fn unknown_references_and_currencies_are_422() {
    let sb = sandbox();
    let c = Client::new(&sb);
    let mut unknown_product = sale("u1", 1);
    unknown_product["product_id"] = json!("durian");
    let reply = c.post_sale(&unknown_product);
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (422, "unknown_product")
    );
    assert!(reply.message().contains("durian"));

    let mut unknown_session = sale("u2", 1);
    unknown_session["session_id"] = json!("no-such-session");
    let reply = c.post_sale(&unknown_session);
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (422, "unknown_session")
    );

    let mut dollars = sale("u3", 1);
    dollars["currency"] = json!("USD");
    let reply = c.post_sale(&dollars);
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (422, "currency_mismatch")
    );
    assert!(reply.message().contains("CNY") && reply.message().contains("USD"));
    assert_eq!(c.stock("orange-box"), 40);
    assert_eq!(c.get("/v1/sales").json(), json!([]));
}

#[test]
fn put_replaces_the_whole_product() {
    let sb = sandbox();
    let c = Client::new(&sb);
    let pomelo = json!({"title": "Pomelo", "price_minor": 900, "currency": "CNY", "unit": "piece",
                        "stock": 5, "image_url": "http://example.invalid/p.jpg"});
    let created = c.json("PUT", "/v1/products/pomelo", &pomelo);
    assert_eq!(created.status, 200);
    assert_eq!(created.json()["image_url"], "http://example.invalid/p.jpg");
    let without_image = json!({"title": "Pomelo XL", "price_minor": 1200, "currency": "CNY",
                               "unit": "piece", "stock": 3});
    let replaced = c.json("PUT", "/v1/products/pomelo", &without_image).json();
    assert_eq!(replaced["image_url"], json!(null), "replaced, not merged");
    assert_eq!(c.get("/v1/products/pomelo").json(), replaced);
    assert_eq!(c.get("/v1/products").json().as_array().unwrap().len(), 4);
}

#[test]
fn sales_can_be_listed_by_session() {
    let sb = sandbox();
    let c = Client::new(&sb);
    assert_eq!(c.post_sale(&sale("x", 1)).status, 201);
    assert_eq!(c.get("/v1/sales?session_id=other").json(), json!([]));
    assert_eq!(c.get("/v1/sales").json().as_array().unwrap().len(), 1);
}

#[test]
fn old_and_future_sale_times_are_kept_with_the_clock_skew_of_the_phone() {
    let sb = sandbox();
    let c = Client::new(&sb);
    // A phone three days behind, another two days ahead, and one without a Date header.
    let phones = [
        (
            "behind",
            "2020-01-01T10:00:00Z",
            Some("Wed, 01 Jan 2020 10:00:05 GMT"),
        ),
        (
            "ahead",
            "2099-12-31T23:59:00Z",
            Some("Thu, 31 Dec 2099 23:59:30 GMT"),
        ),
        ("no-date", "2025-05-01T08:30:00Z", None),
    ];
    for (id, taken_at, date) in phones {
        let mut body = sale(id, 1);
        body["taken_at"] = json!(taken_at);
        let mut headers = vec![
            ("Content-Type", "application/json"),
            ("Idempotency-Key", id),
        ];
        if let Some(date) = date {
            headers.push(("Date", date));
        }
        let reply = c.call("POST", "/v1/sales", &headers, body.to_string().as_bytes());
        assert_eq!(reply.status, 201, "{id}: {reply:?}");
        assert_eq!(reply.json()["sale"]["taken_at"], taken_at, "{id}");
    }
    let listed = c.get("/v1/sales").json();
    let skew = |i: usize| listed[i]["client_clock_skew_ms"].as_i64();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    // 2020-01-01T10:00:05Z and 2099-12-31T23:59:30Z in ms since the epoch.
    let (behind, ahead) = (1_577_872_805_000_i64, 4_102_444_770_000_i64);
    assert!(
        (skew(0).unwrap() - (behind - now_ms)).abs() < 60_000,
        "{listed}"
    );
    assert!(
        (skew(1).unwrap() - (ahead - now_ms)).abs() < 60_000,
        "{listed}"
    );
    assert_eq!(listed[2]["client_clock_skew_ms"], serde_json::Value::Null);
    assert_eq!(listed[0]["taken_at"], "2020-01-01T10:00:00Z");
}
