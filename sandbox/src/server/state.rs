//! What every handler shares.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::auth::Tokens;
use super::db::Db;
use super::faults::Faults;
use super::idempotency::InFlight;
use super::routes::tus::Uploads;
use super::stats::Stats;
use super::supervisor::IngestSupervisor;
use super::viewers::ViewerFeed;

/// The state behind the router; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The SQLite database.
    pub db: Db,
    /// Who may read and who may write.
    pub tokens: Arc<Tokens>,
    /// Injected misbehaviour for QA.
    pub faults: Arc<Faults>,
    /// Request and record counters.
    pub stats: Arc<Stats>,
    /// Idempotency keys whose first request is being processed.
    pub in_flight: InFlight,
    /// tus upload files and their write locks.
    pub uploads: Arc<Uploads>,
    /// The supervised RTMP ingest, when the sandbox runs one.
    pub ingest: Option<Arc<IngestSupervisor>>,
    /// What viewers are told as it happens, and which publishers are live.
    pub viewers: Arc<ViewerFeed>,
    /// The secret path segment of the ingest's publish notifications.
    pub ingest_hook: Arc<str>,
    /// Fires when the server stops, to cut waits short.
    pub shutdown: Shutdown,
}

/// A stop signal that long waits (faults, slow requests) listen to.
#[derive(Clone)]
pub struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    /// A signal and the sender that fires it (by sending `true` or being dropped).
    pub fn channel() -> (watch::Sender<bool>, Shutdown) {
        let (tx, rx) = watch::channel(false);
        (tx, Shutdown(rx))
    }

    /// Resolves once the server is stopping.
    pub async fn signalled(&self) {
        let mut rx = self.0.clone();
        // An error means the sender is gone, which is a stop too.
        let _ = rx.wait_for(|stopping| *stopping).await;
    }

    /// Sleeps for `duration`; `false` if the server began stopping first.
    pub async fn sleep(&self, duration: Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(duration) => true,
            _ = self.signalled() => false,
        }
    }
}
