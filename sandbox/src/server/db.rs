//! The SQLite database: schema, the seed catalog, and access from async handlers.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::{Connection, params};

use super::error::ApiError;
use time::OffsetDateTime;

/// The schema a new database gets.
const SCHEMA: &str = include_str!("schema.sql");
/// The `PRAGMA user_version` of [`SCHEMA`].
const SCHEMA_VERSION: i64 = 2;
/// What brings a database from each older version to the next one.
const MIGRATIONS: [(i64, &str); 1] = [(
    1,
    "ALTER TABLE sales ADD COLUMN client_clock_skew_ms INTEGER;
     ALTER TABLE pin_events ADD COLUMN client_clock_skew_ms INTEGER;",
)];

/// The catalog a new (or reset) sandbox starts with: id, title, price (minor units, CNY), unit, stock.
pub const SEED_CATALOG: [(&str, &str, i64, &str, i64); 3] = [
    ("orange-box", "Oranges, 5 kg box", 2500, "box", 40),
    ("honey-jar", "Wildflower honey, 500 g jar", 4800, "jar", 25),
    ("egg-tray", "Free-range eggs, tray of 30", 3600, "tray", 12),
];

/// Why the database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// SQLite failed.
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    /// The file was written by a newer sandbox.
    #[error(
        "schema version {0} is newer than this sandbox understands ({SCHEMA_VERSION}): use another --data-dir"
    )]
    NewerSchema(i64),
}

/// The current time as an RFC 3339 UTC string with millisecond precision.
pub fn now_rfc3339() -> String {
    // Fixed width (always three fraction digits), so stored times also sort as text; the
    // well-known Rfc3339 format drops trailing zeros (".540" becomes ".54").
    const MILLIS_UTC: &[time::format_description::BorrowedFormatItem<'_>] = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    let now = OffsetDateTime::now_utc();
    now.format(MILLIS_UTC).unwrap_or_else(|_| now.to_string())
}

/// One connection shared by the handlers; every use runs on tokio's blocking pool.
#[derive(Clone)]
pub struct Db {
    conn: Arc<Mutex<Connection>>,
}

impl Db {
    /// Opens (creating and seeding if new) the database at `path`.
    pub fn open(path: &Path) -> Result<Db, DbError> {
        let mut conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        match version {
            0 => {
                let tx = conn.transaction()?;
                tx.execute_batch(SCHEMA)?;
                seed(&tx)?;
                tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
                tx.commit()?;
            }
            SCHEMA_VERSION => {}
            older if older < SCHEMA_VERSION => migrate(&mut conn, older)?,
            newer => return Err(DbError::NewerSchema(newer)),
        }
        Ok(Db {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `f` with the connection on the blocking pool. The work completes even if the
    /// request that started it is dropped, so a started transaction is never cut short.
    pub async fn call<R, F>(&self, f: F) -> Result<R, ApiError>
    where
        F: FnOnce(&mut Connection) -> Result<R, ApiError> + Send + 'static,
        R: Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || f(&mut lock(&conn)))
            .await
            .map_err(|e| ApiError::internal(format!("sandbox database task failed: {e}")))?
    }

    /// Deletes every record and restores the seed catalog.
    pub async fn reset(&self) -> Result<(), ApiError> {
        self.call(|conn| {
            let tx = conn.transaction()?;
            tx.execute_batch(
                "DELETE FROM pin_events; DELETE FROM sales; DELETE FROM live_sessions;
                 DELETE FROM idempotency_records; DELETE FROM uploads; DELETE FROM products;",
            )?;
            seed(&tx)?;
            tx.commit()?;
            Ok(())
        })
        .await
    }
}

/// Applies the [`MIGRATIONS`] from `version` on, in one transaction.
fn migrate(conn: &mut Connection, version: i64) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    for (from, sql) in MIGRATIONS.iter().filter(|(from, _)| *from >= version) {
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", from + 1)?;
    }
    tx.commit()
}

/// The connection, even if a previous holder panicked (SQLite rolled its transaction back).
fn lock(conn: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn seed(conn: &Connection) -> rusqlite::Result<()> {
    let now = now_rfc3339();
    for (id, title, price, unit, stock) in SEED_CATALOG {
        conn.execute(
            "INSERT INTO products (id, title, price_minor, currency, unit, stock, image_url, updated_at)
             VALUES (?1, ?2, ?3, 'CNY', ?4, ?5, NULL, ?6)",
            params![id, title, price, unit, stock, now],
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::format_description::well_known::Rfc3339;

    #[test]
    fn timestamps_are_rfc3339_utc_with_milliseconds() {
        let now = now_rfc3339();
        assert!(OffsetDateTime::parse(&now, &Rfc3339).is_ok(), "{now}");
        assert!(
            now.ends_with('Z') && now.len() == "2025-05-01T08:30:00.000Z".len(),
            "{now}"
        );
    }

    #[test]
    fn a_new_database_is_seeded_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sandbox.db");
        let count = |db: &Db| -> i64 {
            lock(&db.conn)
                .query_row("SELECT COUNT(*) FROM products", [], |r| r.get(0))
                .unwrap()
        };
        let db = Db::open(&path).unwrap();
        assert_eq!(count(&db), 3);
        lock(&db.conn)
            .execute("DELETE FROM products WHERE id = 'egg-tray'", [])
            .unwrap();
        drop(db);
        let db = Db::open(&path).unwrap();
        assert_eq!(
            count(&db),
            2,
            "reopening keeps the data and does not reseed"
        );
    }

    #[test]
    fn a_version_1_database_gets_the_clock_skew_columns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sandbox.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(
                "CREATE TABLE sales (seq INTEGER PRIMARY KEY, id TEXT NOT NULL);
                 CREATE TABLE pin_events (seq INTEGER PRIMARY KEY, id TEXT NOT NULL);
                 INSERT INTO sales (id) VALUES ('old-sale');
                 PRAGMA user_version = 1;",
            )
            .unwrap();
        }
        let db = Db::open(&path).unwrap();
        let conn = lock(&db.conn);
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let skew: Option<i64> = conn
            .query_row(
                "SELECT client_clock_skew_ms FROM sales WHERE id = 'old-sale'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(skew, None, "unknown for sales recorded before");
        conn.execute("UPDATE pin_events SET client_clock_skew_ms = 1", [])
            .unwrap();
    }
}
