//! The local database: one SQLite file in WAL mode with `synchronous=FULL`, so a committed write
//! survives a killed process and a power loss. All writes go through one writer connection behind
//! a mutex, each in one `BEGIN IMMEDIATE` transaction; queries use a small pool of read-only
//! connections that never wait for the writer.

mod connection;
mod error;
mod migrations;
pub mod outbox;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rusqlite::{Connection, Transaction, TransactionBehavior};
use tokio::sync::watch;

pub use error::StoreError;
pub use migrations::LATEST_VERSION;

/// Idle read connections kept open for reuse.
const IDLE_READERS: usize = 4;

/// A handle on the local database. Cheap to clone; all clones share the connections.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    commits: watch::Sender<u64>,
    relay_attached: AtomicBool,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.path)
            .finish()
    }
}

impl Store {
    /// Opens (or creates) the database at `path`, migrates it to the current schema, and puts any
    /// outbox record left in flight by a killed process back in the queue.
    pub fn open(path: impl AsRef<Path>) -> Result<Store, StoreError> {
        let path = path.as_ref().to_path_buf();
        let mut writer = connection::open_writer(&path)?;
        migrations::migrate(&mut writer, LATEST_VERSION)?;
        let requeued = outbox::requeue_in_flight(&writer)?;
        if requeued > 0 {
            log::info!(
                "{requeued} outbox records were in flight when the store closed; queued again"
            );
        }
        Ok(Store {
            inner: Arc::new(Inner {
                path,
                writer: Mutex::new(writer),
                readers: Mutex::new(Vec::new()),
                commits: watch::Sender::new(0),
                relay_attached: AtomicBool::new(false),
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The schema version of the file (equal to [`LATEST_VERSION`] once open).
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        self.read(migrations::version)
    }

    /// Runs SQLite's full `PRAGMA integrity_check`; returns `"ok"` for a sound file, else the
    /// problems found, one per line.
    pub fn integrity_check(&self) -> Result<String, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare("PRAGMA integrity_check")?;
            let lines = stmt
                .query_map([], |row| row.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(lines.join("\n"))
        })
    }

    /// How many outbox records are in each state (readable without a running sync engine).
    pub fn outbox_counts(&self) -> Result<outbox::OutboxCounts, StoreError> {
        self.read(outbox::counts)
    }

    /// Caps the database file at about `max_bytes` (rounded down to whole pages), or lifts the cap
    /// with `None`. A write that would grow the file past it fails with [`StoreError::DiskFull`]
    /// and changes nothing, exactly like a full disk.
    pub fn set_size_limit(&self, max_bytes: Option<u64>) -> Result<(), StoreError> {
        let conn = self.lock_writer();
        let page_size: u64 = conn.pragma_query_value(None, "page_size", |r| r.get(0))?;
        let pages = match max_bytes {
            Some(bytes) => (bytes / page_size).max(1),
            None => u64::from(u32::MAX - 1),
        };
        conn.pragma_update(None, "max_page_count", pages)?;
        Ok(())
    }

    /// Runs `f` in one immediate transaction on the writer connection and commits it; an error from
    /// `f` or from the commit rolls everything back.
    pub(crate) fn write<T, E>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        let mut conn = self.lock_writer();
        let result = run_in_transaction(&mut conn, f);
        if !conn.is_autocommit() {
            // A failed COMMIT (e.g. a full disk) can leave the transaction open: end it here so the
            // next write starts clean.
            if let Err(e) = conn.execute_batch("ROLLBACK") {
                log::warn!("rollback after a failed write: {e}");
            }
        }
        drop(conn);
        if result.is_ok() {
            self.inner.commits.send_modify(|n| *n = n.wrapping_add(1));
        }
        result
    }

    /// Runs `f` on a read-only connection; it sees the last committed state.
    pub(crate) fn read<T, E>(&self, f: impl FnOnce(&Connection) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        let pooled = self
            .inner
            .readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => connection::open_reader(&self.inner.path)?,
        };
        let result = f(&conn);
        let mut pool = self
            .inner
            .readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if pool.len() < IDLE_READERS {
            pool.push(conn);
        }
        result
    }

    /// A receiver that changes after every committed write.
    pub(crate) fn commits(&self) -> watch::Receiver<u64> {
        self.inner.commits.subscribe()
    }

    /// Claims the store for one outbox relay; false if another one already has it.
    pub(crate) fn attach_relay(&self) -> bool {
        self.inner
            .relay_attached
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Releases the claim taken by [`Store::attach_relay`].
    pub(crate) fn detach_relay(&self) {
        self.inner.relay_attached.store(false, Ordering::Release);
    }

    fn lock_writer(&self) -> MutexGuard<'_, Connection> {
        // A panic inside a write rolled its transaction back while unwinding; the connection is fine.
        self.inner
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

fn run_in_transaction<T, E>(
    conn: &mut Connection,
    f: impl FnOnce(&Transaction<'_>) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<StoreError>,
{
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(StoreError::from)?;
    let value = f(&tx)?;
    tx.commit().map_err(StoreError::from)?;
    Ok(value)
}

/// The current UTC time as RFC 3339, the format of every stored and sent timestamp.
pub(crate) fn now_rfc3339() -> String {
    format_time(time::OffsetDateTime::now_utc())
}

/// Formats a time as RFC 3339 UTC.
pub(crate) fn format_time(t: time::OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(&time::format_description::well_known::Rfc3339)
        .expect("a UTC time always formats as RFC 3339")
}

/// Turns a failed decoding of column `index` into the row mapper's error type.
pub(crate) fn decoded<T>(index: usize, value: Result<T, StoreError>) -> rusqlite::Result<T> {
    value.map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// Parses a stored RFC 3339 time.
pub(crate) fn parse_time(what: &str, s: &str) -> Result<time::OffsetDateTime, StoreError> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|_| StoreError::decode(what, s))
}

#[cfg(test)]
mod tests;
