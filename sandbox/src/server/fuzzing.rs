//! The platform API served in-process, without a socket or an ingest: each request goes through
//! the router with all its middleware (tus headers, counting, auth, faults) and its extractors,
//! as it would from the network. For the fuzz target `sandbox_request` (cargo feature `fuzzing`,
//! off by default) and the property tests of request validation.

use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::Request;
use tokio::runtime::Runtime;
use tokio::sync::watch;
use tower_service::Service;

use super::auth::Tokens;
use super::db::Db;
use super::routes::{self, tus::Uploads};
use super::state::{AppState, Shutdown};
use super::{SandboxError, idempotency};

/// The write token the in-process API accepts.
pub const TOKEN: &str = "fuzz-token";

/// An answer of the API: its status and body.
#[derive(Debug)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The body as sent.
    pub body: Vec<u8>,
}

/// The API on an in-memory database with the seed catalog, driven one request at a time.
pub struct Api {
    router: Router,
    runtime: Runtime,
    // Dropping the sender would tell every handler the server is stopping.
    _stop: watch::Sender<bool>,
    // Declared last so it is removed after the state that uses it.
    _uploads: tempfile::TempDir,
}

impl Api {
    /// A fresh API without an ingest (creating a live session answers 503 `ingest_unavailable`).
    pub fn new() -> Result<Self, SandboxError> {
        let uploads = tempfile::Builder::new()
            .prefix("fieldcast-sandbox-api-")
            .tempdir()
            .map_err(|source| SandboxError::DataDir {
                path: std::env::temp_dir(),
                source,
            })?;
        let memory = Path::new(":memory:");
        let db = Db::open(memory).map_err(|source| SandboxError::Database {
            path: memory.to_path_buf(),
            source,
        })?;
        let store =
            Uploads::new(uploads.path().to_path_buf()).map_err(|source| SandboxError::DataDir {
                path: uploads.path().to_path_buf(),
                source,
            })?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(SandboxError::Runtime)?;
        let (stop, shutdown) = Shutdown::channel();
        let state = AppState {
            db,
            tokens: Arc::new(Tokens {
                write: vec![TOKEN.to_owned()],
                read_only: Vec::new(),
            }),
            faults: Arc::default(),
            stats: Arc::default(),
            in_flight: idempotency::InFlight::default(),
            uploads: Arc::new(store),
            ingest: None,
            viewers: Arc::default(),
            ingest_hook: Arc::from("fuzz-ingest-hook"),
            shutdown,
        };
        Ok(Api {
            router: routes::router(state),
            runtime,
            _stop: stop,
            _uploads: uploads,
        })
    }

    /// Sends one request and waits for the whole answer; `None` when the method, path or a
    /// header is not valid HTTP (no server would receive such a request).
    pub fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &[u8])],
        body: Vec<u8>,
    ) -> Option<Answer> {
        let request = headers
            .iter()
            .fold(Request::builder().method(method).uri(path), |b, (k, v)| {
                b.header(*k, *v)
            })
            .body(Body::from(body))
            .ok()?;
        let mut router = self.router.clone();
        self.runtime.block_on(async move {
            let response = match router.call(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            let status = response.status().as_u16();
            let body = to_bytes(response.into_body(), usize::MAX).await.ok()?;
            Some(Answer {
                status,
                body: body.to_vec(),
            })
        })
    }
}
