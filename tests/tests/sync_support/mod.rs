//! Helpers of the sync tests: a real sandbox with its QA endpoints, a local store whose catalog
//! matches the sandbox's, and event waiting.

#![allow(dead_code)] // each test binary uses its own subset

use std::path::Path;
use std::time::{Duration, Instant};

use std::collections::{HashMap, HashSet};

use fieldcast_core::{BackoffPolicy, Catalog, Product, Sale, Sales, Store, SyncConfig, SyncEvent};
use fieldcast_sandbox::{Sandbox, SandboxOptions};
use reqwest::blocking::Client;
use serde_json::{Value, json};
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::TryRecvError;

/// The products both sides know: (id, price in minor units).
pub const PRODUCTS: [(&str, i64); 3] = [
    ("orange-box", 1250),
    ("mango-crate", 2400),
    ("avocado-tray", 1800),
];

/// A running sandbox and an HTTP client for its API and QA endpoints.
pub struct Platform {
    pub sandbox: Sandbox,
    http: Client,
}

impl Platform {
    /// Starts a sandbox (no RTMP ingest) and seeds [`PRODUCTS`] with `stock` each.
    pub fn start(stock: i64) -> Platform {
        let sandbox = Sandbox::start(SandboxOptions {
            ingest: false,
            ..SandboxOptions::default()
        })
        .expect("sandbox starts");
        let platform = Platform {
            sandbox,
            http: Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
        };
        for (id, price) in PRODUCTS {
            platform.put_product(id, price, stock);
        }
        platform
    }

    /// The base URL of the API.
    pub fn url(&self) -> String {
        self.sandbox.base_url()
    }

    /// A sync configuration for this sandbox with test-sized timeouts and backoff.
    pub fn config(&self) -> SyncConfig {
        SyncConfig {
            request_timeout: Duration::from_millis(1500),
            backoff: BackoffPolicy {
                min: Duration::from_millis(100),
                max: Duration::from_secs(1),
            },
            ..SyncConfig::new(self.url(), self.sandbox.token())
        }
    }

    fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.url()))
            .bearer_auth(self.sandbox.token());
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().unwrap_or_else(|e| panic!("{path}: {e}"));
        let status = response.status().as_u16();
        let text = response.text().unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    fn ok(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let (status, value) = self.call(method, path, body);
        assert!((200..300).contains(&status), "{path}: {status} {value}");
        value
    }

    /// Creates or replaces a product on the platform.
    pub fn put_product(&self, id: &str, price_minor: i64, stock: i64) {
        self.ok(
            reqwest::Method::PUT,
            &format!("/v1/products/{id}"),
            Some(json!({
                "title": format!("{id} (platform)"),
                "price_minor": price_minor,
                "currency": "KES",
                "unit": "box",
                "stock": stock,
            })),
        );
    }

    /// One product as the platform has it.
    pub fn product(&self, id: &str) -> Value {
        self.ok(reqwest::Method::GET, &format!("/v1/products/{id}"), None)
    }

    /// Makes the next `count` requests to `paths` misbehave as `mode`.
    pub fn fault(&self, mode: &str, count: u64, paths: &[&str], hang_ms: Option<u64>) {
        let mut rule = json!({ "mode": mode, "count": count, "paths": paths });
        if let Some(ms) = hang_ms {
            rule["hang_ms"] = json!(ms);
        }
        self.ok(reqwest::Method::POST, "/v1/_sandbox/faults", Some(rule));
    }

    /// Removes every fault rule.
    pub fn clear_faults(&self) {
        self.ok(reqwest::Method::DELETE, "/v1/_sandbox/faults", None);
    }

    /// Requests the platform received on a route, faulted ones included.
    pub fn requests(&self, route: &str) -> u64 {
        let stats = self.ok(reqwest::Method::GET, "/v1/_sandbox/stats", None);
        stats["requests"][route].as_u64().unwrap_or(0)
    }

    /// The ids of the sales the platform stored, oldest first.
    pub fn sale_ids(&self) -> Vec<String> {
        self.sales()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_string())
            .collect()
    }

    /// The sales the platform stored, oldest first.
    pub fn sales(&self) -> Vec<Value> {
        self.ok(reqwest::Method::GET, "/v1/sales", None)
            .as_array()
            .expect("a list of sales")
            .clone()
    }
}

/// A store at `dir/fieldcast.db` whose catalog has [`PRODUCTS`] with `stock` each.
pub fn local_store(dir: &Path, stock: i64) -> Store {
    let store = Store::open(dir.join("fieldcast.db")).expect("store opens");
    let catalog = Catalog::new(store.clone());
    for (id, price) in PRODUCTS {
        catalog
            .upsert(&Product {
                id: id.into(),
                title: id.into(),
                price_minor: price,
                currency: "KES".into(),
                unit: "box".into(),
                stock,
                image_path: None,
            })
            .unwrap();
    }
    store
}

/// Waits up to `timeout` for an event matching `pred`, returning it.
pub fn wait_event(
    rx: &mut Receiver<SyncEvent>,
    timeout: Duration,
    mut pred: impl FnMut(&SyncEvent) -> bool,
) -> Option<SyncEvent> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        match rx.try_recv() {
            Ok(event) if pred(&event) => return Some(event),
            Ok(_) | Err(TryRecvError::Lagged(_)) => {}
            Err(TryRecvError::Empty) => std::thread::sleep(Duration::from_millis(5)),
            Err(TryRecvError::Closed) => return None,
        }
    }
    None
}

/// Every event received so far.
pub fn drain(rx: &mut Receiver<SyncEvent>) -> Vec<SyncEvent> {
    let mut events = Vec::new();
    loop {
        match rx.try_recv() {
            Ok(event) => events.push(event),
            Err(TryRecvError::Lagged(_)) => {}
            Err(_) => return events,
        }
    }
}

/// Asserts the platform holds exactly `ids` (as a set), each once.
pub fn assert_platform_holds_exactly(platform: &Platform, ids: &[String]) {
    let mut on_platform = platform.sale_ids();
    let total = on_platform.len();
    on_platform.sort();
    on_platform.dedup();
    assert_eq!(total, on_platform.len(), "duplicate sales on the platform");
    let mut local: Vec<String> = ids.to_vec();
    local.sort();
    assert_eq!(
        on_platform, local,
        "platform sales differ from the local ones"
    );
}

/// Checks a store reopened after its writer died (`when` names the moment, e.g. "cut 3"): every
/// acknowledged sale is present, none is stored twice, the file is sound, every sale has one
/// outbox record and none was dropped, and the stock of each of [`PRODUCTS`] is `stock` minus
/// its sales, sale by sale. Returns the sales.
pub fn check_reopened_store(
    store: &Store,
    acknowledged: &[String],
    stock: i64,
    when: &str,
) -> Vec<Sale> {
    let sales = Sales::new(store.clone())
        .list()
        .unwrap_or_else(|e| panic!("{when}: the sales cannot be read: {e}"));
    let stored: HashSet<&str> = sales.iter().map(|s| s.id.as_str()).collect();
    let lost: Vec<&String> = acknowledged
        .iter()
        .filter(|id| !stored.contains(id.as_str()))
        .collect();
    if let Some(first) = lost.first() {
        panic!(
            "{when}: acknowledged sale {first} lost ({} of {} acknowledged sales lost)",
            lost.len(),
            acknowledged.len()
        );
    }
    assert_eq!(stored.len(), sales.len(), "{when}: a sale is stored twice");
    assert_eq!(store.integrity_check().unwrap(), "ok", "{when}");

    let counts = store.outbox_counts().unwrap();
    let queued = counts.pending + counts.in_flight + counts.synced + counts.conflicted;
    assert_eq!(
        (queued, counts.discarded),
        (sales.len() as u64, 0),
        "{when}: one outbox record per sale, none dropped"
    );

    // No sale is ever discarded here, so each product's stock is its start minus its sales.
    let catalog = Catalog::new(store.clone());
    let mut sold: HashMap<&str, i64> = HashMap::new();
    for sale in &sales {
        let total = sold.entry(sale.product_id.as_str()).or_default();
        *total += sale.quantity;
        assert_eq!(
            sale.stock_after,
            stock - *total,
            "{when}: stock after sale {}",
            sale.id
        );
    }
    for (id, _) in PRODUCTS {
        assert_eq!(
            catalog.get(id).unwrap().stock,
            stock - sold.get(id).copied().unwrap_or(0),
            "{when}: stock of {id}"
        );
    }
    sales
}
