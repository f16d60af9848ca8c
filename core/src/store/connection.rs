//! Opening connections with the settings every connection of the store needs.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::error::StoreError;

/// How long a connection waits for a lock held by another before failing with `Busy`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens the writer: creates the file if needed, WAL journal, `synchronous=FULL` (a commit is on
/// the storage before it returns), foreign keys on.
pub(crate) fn open_writer(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| opening(path, e))?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Io {
            message: format!(
                "{} cannot use write-ahead logging (journal mode stayed `{mode}`)",
                path.display()
            ),
        });
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", true)?;
    Ok(conn)
}

/// Opens a read-only connection on an existing store.
pub(crate) fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| opening(path, e))?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "foreign_keys", true)?;
    Ok(conn)
}

fn opening(path: &Path, err: rusqlite::Error) -> StoreError {
    match StoreError::from(err) {
        StoreError::Io { message } | StoreError::Sqlite { message } => StoreError::Io {
            message: format!("{}: {message}", path.display()),
        },
        other => other,
    }
}
