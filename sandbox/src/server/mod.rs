//! The platform API of `docs/api/openapi.yaml`, served locally (axum + SQLite) with a supervised
//! RTMP ingest: what the demo, the tests and QA talk to instead of the real backend.

mod auth;
mod client_clock;
mod connection;
mod db;
mod error;
mod faults;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;

pub use self::db::SEED_CATALOG;
mod idempotency;
mod routes;
mod state;
mod stats;
mod supervisor;
mod tls;
mod validate;
#[cfg(test)]
mod validate_props;
mod viewers;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use axum::serve::Listener;
use tokio::runtime::Handle;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

use self::connection::{AbortableListener, ConnectionAbort};
use self::db::{Db, DbError};
use self::faults::Faults;
use self::state::{AppState, Shutdown};
use self::supervisor::IngestSupervisor;
use self::tls::{TlsError, TlsIdentity, TlsListener};
use self::viewers::ViewerFeed;
use crate::ingest::{IngestError, ViewerOutput};

/// How long open connections get to finish once the sandbox stops.
const GRACE: Duration = Duration::from_secs(3);

/// How to start a [`Sandbox`].
#[derive(Debug, Clone)]
pub struct SandboxOptions {
    /// Loopback port for the API; 0 picks a free one.
    pub port: u16,
    /// Where the database, uploads and recordings live; `None` uses a temp dir removed on drop.
    pub data_dir: Option<PathBuf>,
    /// Tokens that may read and write; the first is [`Sandbox::token`].
    pub tokens: Vec<String>,
    /// Tokens that may only read.
    pub read_only_tokens: Vec<String>,
    /// Whether to start and supervise the nginx-rtmp ingest live sessions publish to.
    pub ingest: bool,
    /// Loopback port for the API over TLS as well, with a certificate from a private CA made at
    /// start ([`Sandbox::tls_ca_pem`]); `Some(0)` picks a free one, `None` serves no TLS.
    pub tls_port: Option<u16>,
}

impl Default for SandboxOptions {
    fn default() -> Self {
        SandboxOptions {
            port: 0,
            data_dir: None,
            tokens: vec!["sandbox-token".to_owned()],
            read_only_tokens: vec!["sandbox-readonly".to_owned()],
            ingest: true,
            tls_port: None,
        }
    }
}

/// Why the sandbox could not start.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// No usable write token was given.
    #[error(
        "the sandbox needs at least one write token (e.g. --token sandbox-token); tokens are visible ASCII without spaces"
    )]
    NoToken,
    /// The data directory could not be prepared.
    #[error("cannot prepare the data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// The database could not be opened.
    #[error("cannot open the database {path}: {source}")]
    Database {
        /// The database file.
        path: PathBuf,
        /// What failed.
        source: DbError,
    },
    /// The API port could not be bound.
    #[error(
        "cannot listen on 127.0.0.1:{port}: {source} (pick another --port, or 0 for a free one)"
    )]
    Bind {
        /// The port asked for.
        port: u16,
        /// What failed.
        source: std::io::Error,
    },
    /// The RTMP ingest could not be started.
    #[error("cannot start the RTMP ingest: {0} (or run the sandbox without it: --no-ingest)")]
    Ingest(#[from] IngestError),
    /// The server's runtime or thread could not be started.
    #[error("cannot start the sandbox server: {0}")]
    Runtime(std::io::Error),
    /// The TLS port's certificates could not be made.
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// A running sandbox: the API on 127.0.0.1 and, optionally, the RTMP ingest.
/// Stops gracefully on [`Sandbox::stop`] or drop.
pub struct Sandbox {
    addr: SocketAddr,
    /// The TLS port's address and its CA (PEM), when it has one.
    tls: Option<(SocketAddr, String)>,
    token: String,
    data_dir: PathBuf,
    ingest: Option<Arc<IngestSupervisor>>,
    runtime: Handle,
    stop_tx: watch::Sender<bool>,
    server: Option<JoinHandle<()>>,
    // Declared last so it is removed after everything using it has stopped.
    _temp_dir: Option<tempfile::TempDir>,
}

impl Sandbox {
    /// Starts the sandbox and returns once it listens. Blocking; the server runs on its own
    /// thread and tokio runtime, so this works from plain code and from inside another runtime.
    pub fn start(opts: SandboxOptions) -> Result<Sandbox, SandboxError> {
        let valid = |t: &String| !t.is_empty() && t.bytes().all(|b| (0x21..=0x7e).contains(&b));
        if opts.tokens.is_empty() || !opts.tokens.iter().chain(&opts.read_only_tokens).all(valid) {
            return Err(SandboxError::NoToken);
        }
        let (temp_dir, data_dir) = match opts.data_dir {
            Some(dir) => (None, dir),
            None => {
                let temp = tempfile::Builder::new()
                    .prefix("fieldcast-sandbox-")
                    .tempdir()
                    .map_err(|source| SandboxError::DataDir {
                        path: std::env::temp_dir(),
                        source,
                    })?;
                let path = temp.path().to_path_buf();
                (Some(temp), path)
            }
        };
        let dir_error = |source| SandboxError::DataDir {
            path: data_dir.clone(),
            source,
        };
        std::fs::create_dir_all(&data_dir).map_err(dir_error)?;
        let db_path = data_dir.join("sandbox.db");
        let db = Db::open(&db_path).map_err(|source| SandboxError::Database {
            path: db_path,
            source,
        })?;
        let uploads = routes::tus::Uploads::new(data_dir.join("uploads")).map_err(dir_error)?;
        let listener = bind(opts.port)?;
        let addr = listener.local_addr().map_err(SandboxError::Runtime)?;
        let tls = match opts.tls_port {
            Some(port) => {
                let listener = bind(port)?;
                let ca_path = data_dir.join(TLS_CA_FILE);
                let identity = TlsIdentity::generate()?;
                std::fs::write(&ca_path, identity.ca_pem()).map_err(dir_error)?;
                Some((listener, identity))
            }
            None => None,
        };
        let viewers = Arc::new(ViewerFeed::default());
        let ingest_hook: Arc<str> = format!("{:032x}", rand::random::<u128>()).into();
        let ingest = match opts.ingest {
            true => {
                let output = ViewerOutput {
                    hls_dir: data_dir.join("hls"),
                    notify_url: format!("http://{addr}/_ingest/{ingest_hook}"),
                };
                let lost = viewers.clone();
                let on_exit = Box::new(move || lost.ingest_lost());
                Some(Arc::new(IngestSupervisor::start(
                    &data_dir.join("recordings"),
                    output,
                    on_exit,
                )?))
            }
            false => None,
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("fieldcast-sandbox")
            .enable_all()
            .build()
            .map_err(SandboxError::Runtime)?;
        let context = runtime.enter();
        let listener =
            tokio::net::TcpListener::from_std(listener).map_err(SandboxError::Runtime)?;
        let faults = Arc::new(Faults::default());
        if tls.is_some() {
            faults.serve_tls();
        }
        let (stop_tx, shutdown) = Shutdown::channel();
        let state = AppState {
            db,
            tokens: Arc::new(auth::Tokens {
                write: opts.tokens.clone(),
                read_only: opts.read_only_tokens,
            }),
            faults,
            stats: Arc::default(),
            in_flight: idempotency::InFlight::default(),
            uploads: Arc::new(uploads),
            ingest: ingest.clone(),
            viewers,
            ingest_hook,
            shutdown: shutdown.clone(),
        };
        let (tls_listener, tls) = match tls {
            Some((listener, identity)) => {
                let listener =
                    tokio::net::TcpListener::from_std(listener).map_err(SandboxError::Runtime)?;
                let listener = TlsListener::spawn(listener, &identity, state.clone())
                    .map_err(SandboxError::Runtime)?;
                let addr = listener.local_addr().map_err(SandboxError::Runtime)?;
                (Some(listener), Some((addr, identity.ca_pem().to_owned())))
            }
            None => (None, None),
        };
        drop(context);
        let handle = runtime.handle().clone();
        let server = std::thread::Builder::new()
            .name("fieldcast-sandbox-server".into())
            .spawn(move || serve(runtime, listener, tls_listener, state, shutdown))
            .map_err(SandboxError::Runtime)?;
        log::info!(
            "sandbox: API on http://{addr}, data in {}",
            data_dir.display()
        );
        Ok(Sandbox {
            addr,
            tls,
            token: opts.tokens[0].clone(),
            data_dir,
            ingest,
            runtime: handle,
            stop_tx,
            server: Some(server),
            _temp_dir: temp_dir,
        })
    }

    /// The API's base URL, `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The API's base URL over TLS, `https://127.0.0.1:PORT`, when it has a TLS port.
    pub fn tls_base_url(&self) -> Option<String> {
        self.tls.as_ref().map(|(addr, _)| format!("https://{addr}"))
    }

    /// The certificate (PEM) of the private CA that signed the TLS port's certificate, for
    /// clients to trust; also in `tls-ca.pem` of the data directory.
    pub fn tls_ca_pem(&self) -> Option<&str> {
        self.tls.as_ref().map(|(_, pem)| pem.as_str())
    }

    /// The first write token.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Where live sessions publish, `rtmp://127.0.0.1:PORT/live`, when the ingest runs.
    pub fn ingest_url(&self) -> Option<String> {
        self.ingest.as_ref().map(|i| i.url())
    }

    /// What the ingest recorded for a stream key, once something was published under it.
    pub fn ingest_recording(&self, stream_key: &str) -> Option<PathBuf> {
        self.ingest
            .as_ref()
            .map(|i| i.recording(stream_key))
            .filter(|p| p.exists())
    }

    /// The current nginx process id of the ingest (it changes when nginx is restarted).
    pub fn ingest_pid(&self) -> Option<u32> {
        self.ingest.as_ref().and_then(|i| i.pid())
    }

    /// The viewer's page of a live session, `http://127.0.0.1:PORT/watch/{session_id}`.
    pub fn watch_url(&self, session_id: &str) -> String {
        format!("{}/watch/{session_id}", self.base_url())
    }

    /// Where the database, uploads and recordings live.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Stops gracefully: open requests get a few seconds, then nginx is stopped by its PID.
    pub fn stop(mut self) {
        self.shutdown();
    }

    /// Idempotent: a second call finds nothing left to stop.
    fn shutdown(&mut self) {
        let _ = self.stop_tx.send(true);
        if let Some(server) = self.server.take() {
            let _ = server.join();
        }
        if let Some(ingest) = self.ingest.take() {
            ingest.stop();
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A non-blocking listener on the loopback `port`.
fn bind(port: u16) -> Result<std::net::TcpListener, SandboxError> {
    std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port))
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .map_err(|source| SandboxError::Bind { port, source })
}

/// The file of the data directory that holds the TLS port's CA certificate.
const TLS_CA_FILE: &str = "tls-ca.pem";

/// The server thread: serves the plain port (and the TLS port, if any) until the stop signal,
/// then drains connections for at most [`GRACE`].
fn serve(
    runtime: tokio::runtime::Runtime,
    listener: tokio::net::TcpListener,
    tls: Option<TlsListener>,
    state: AppState,
    shutdown: Shutdown,
) {
    runtime.block_on(async move {
        let app = routes::router(state).into_make_service_with_connect_info::<ConnectionAbort>();
        let stopping = shutdown.clone();
        let plain = axum::serve(AbortableListener(listener), app.clone())
            .with_graceful_shutdown(async move { stopping.signalled().await });
        let stopping = shutdown.clone();
        let secure = async move {
            match tls {
                Some(listener) => {
                    axum::serve(listener, app)
                        .with_graceful_shutdown(async move { stopping.signalled().await })
                        .await
                }
                None => Ok(()),
            }
        };
        tokio::select! {
            (plain, secure) = futures_util::future::join(plain.into_future(), secure) => {
                for result in [plain, secure] {
                    if let Err(e) = result {
                        log::error!("sandbox: server failed: {e}");
                    }
                }
            }
            _ = async { shutdown.signalled().await; tokio::time::sleep(GRACE).await } => {
                log::warn!("sandbox: connections still open {GRACE:?} after stop; closing them");
            }
        }
    });
    runtime.shutdown_timeout(Duration::from_secs(1));
}

/// Runs a sandbox until SIGINT or SIGTERM, printing where it listens and its tokens, then stops
/// it cleanly. Blocking; works from plain code and from inside another tokio runtime.
pub fn run_until_signal(opts: SandboxOptions) -> Result<(), SandboxError> {
    let read_only = opts.read_only_tokens.clone();
    let sandbox = Sandbox::start(opts)?;
    let (tx, rx) = std::sync::mpsc::channel::<&'static str>();
    {
        let _context = sandbox.runtime.enter();
        let mut interrupt = signal(SignalKind::interrupt()).map_err(SandboxError::Runtime)?;
        let mut terminate = signal(SignalKind::terminate()).map_err(SandboxError::Runtime)?;
        sandbox.runtime.spawn(async move {
            let name = tokio::select! {
                _ = interrupt.recv() => "SIGINT",
                _ = terminate.recv() => "SIGTERM",
            };
            let _ = tx.send(name);
        });
    }
    println!("FieldCast sandbox");
    println!("  API:         {}", sandbox.base_url());
    if let Some(url) = sandbox.tls_base_url() {
        println!(
            "  API (TLS):   {url} (CA: {})",
            sandbox.data_dir().join(TLS_CA_FILE).display()
        );
    }
    println!("  token:       {}", sandbox.token());
    if !read_only.is_empty() {
        println!("  read-only:   {}", read_only.join(", "));
    }
    match sandbox.ingest_url() {
        Some(url) => {
            println!("  RTMP ingest: {url}");
            println!(
                "  viewers:     {}/watch/<live session id>",
                sandbox.base_url()
            );
        }
        None => println!("  RTMP ingest: off (live sessions answer 503 ingest_unavailable)"),
    }
    println!("  data:        {}", sandbox.data_dir().display());
    println!("Ctrl-C stops it.");
    if let Ok(name) = rx.recv() {
        println!("{name}: stopping");
    }
    sandbox.stop();
    Ok(())
}
