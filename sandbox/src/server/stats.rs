//! Counters QA reads from `GET /v1/_sandbox/stats`, e.g. to bound a client's retry rate.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use serde::Serialize;

use super::state::AppState;

/// Counts since the sandbox started (or was last reset).
#[derive(Default)]
pub struct Stats(Mutex<Counts>);

#[derive(Default, Clone, Serialize)]
struct Counts {
    /// Requests per route (`/v1/products/{product_id}` for every product), faulted ones included.
    requests: BTreeMap<String, u64>,
    /// Sales recorded (replays not counted).
    sales: u64,
    /// Pin events recorded (replays not counted).
    pin_events: u64,
    /// Requests answered by an injected fault.
    faults_injected: u64,
}

impl Stats {
    fn counts(&self) -> MutexGuard<'_, Counts> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A new sale was stored.
    pub fn sale_recorded(&self) {
        self.counts().sales += 1;
    }

    /// A new pin event was stored.
    pub fn pin_event_recorded(&self) {
        self.counts().pin_events += 1;
    }

    /// A fault answered a request.
    pub fn fault_injected(&self) {
        self.counts().faults_injected += 1;
    }

    /// The counters as the stats endpoint shows them.
    pub fn snapshot(&self) -> serde_json::Value {
        serde_json::to_value(self.counts().clone()).unwrap_or_default()
    }

    /// Back to zero.
    pub fn reset(&self) {
        *self.counts() = Counts::default();
    }
}

/// Middleware: counts every request by its route, except the sandbox's own endpoints, the
/// viewer's page and the ingest's hook.
pub async fn count_requests(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let own = ["/v1/_sandbox/", "/watch/", "/_ingest/"];
    if !own.iter().any(|prefix| path.starts_with(prefix)) {
        let route = req
            .extensions()
            .get::<MatchedPath>()
            .map_or(path, MatchedPath::as_str)
            .to_owned();
        *state.stats.counts().requests.entry(route).or_default() += 1;
    }
    next.run(req).await
}
