//! Typed store errors: each says what happened and what the app or the user can do about it.

use rusqlite::ErrorCode;

/// A failure of the local database.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The storage is full, or the store reached its size limit. Nothing of the failed write was kept.
    #[error(
        "the phone's storage is full (or the store's size limit is reached): nothing was written; free some space and try again"
    )]
    DiskFull,
    /// The database file is damaged or is not a database.
    #[error(
        "the database file is damaged ({message}); move it aside (keep it for support) so a new one is created"
    )]
    Corrupt {
        /// What SQLite reported.
        message: String,
    },
    /// Another connection or process holds the database lock longer than the busy timeout.
    #[error(
        "the database is busy ({message}); try again, and make sure only one process of the app opens this file"
    )]
    Busy {
        /// What SQLite reported.
        message: String,
    },
    /// A record the call names does not exist.
    #[error("{what} not found")]
    NotFound {
        /// The record that was looked for.
        what: String,
    },
    /// The write breaks a rule of the schema (a duplicate id, a missing referenced row, a check).
    #[error("the database refused the write: {message}")]
    Constraint {
        /// What SQLite reported.
        message: String,
    },
    /// The file cannot be opened, read or written.
    #[error(
        "cannot use the database file: {message}; check that its folder exists and is writable"
    )]
    Io {
        /// What failed.
        message: String,
    },
    /// The file was written by a newer version of the app.
    #[error(
        "the database has schema version {found} but this build knows up to {supported}: update the app"
    )]
    TooNew {
        /// The file's `user_version`.
        found: u32,
        /// The newest version this build can migrate to.
        supported: u32,
    },
    /// A schema migration failed; the file stays at the version before it.
    #[error("schema migration {version} failed: {message}")]
    Migration {
        /// The migration that failed.
        version: u32,
        /// What SQLite reported.
        message: String,
    },
    /// A stored value cannot be read back as the expected type.
    #[error("unreadable stored value: {message}")]
    Decode {
        /// Which value and why.
        message: String,
    },
    /// Any other SQLite failure.
    #[error("database error: {message}")]
    Sqlite {
        /// What SQLite reported.
        message: String,
    },
}

impl From<rusqlite::Error> for StoreError {
    fn from(err: rusqlite::Error) -> Self {
        let message = err.to_string();
        match &err {
            rusqlite::Error::SqliteFailure(e, _) => match e.code {
                ErrorCode::DiskFull => StoreError::DiskFull,
                ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase => {
                    StoreError::Corrupt { message }
                }
                ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => StoreError::Busy { message },
                ErrorCode::ConstraintViolation => StoreError::Constraint { message },
                ErrorCode::CannotOpen
                | ErrorCode::SystemIoFailure
                | ErrorCode::PermissionDenied
                | ErrorCode::ReadOnly
                | ErrorCode::NoLargeFileSupport => StoreError::Io { message },
                _ => StoreError::Sqlite { message },
            },
            rusqlite::Error::QueryReturnedNoRows => StoreError::NotFound {
                what: "record".into(),
            },
            rusqlite::Error::FromSqlConversionFailure(..)
            | rusqlite::Error::IntegralValueOutOfRange(..)
            | rusqlite::Error::InvalidColumnType(..)
            | rusqlite::Error::Utf8Error(..) => StoreError::Decode { message },
            _ => StoreError::Sqlite { message },
        }
    }
}

impl StoreError {
    /// Shorthand for a [`StoreError::Decode`] about one column.
    pub(crate) fn decode(what: &str, value: &str) -> Self {
        StoreError::Decode {
            message: format!("{what}: `{value}`"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(code: i32) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), Some("detail".into()))
    }

    #[test]
    fn sqlite_codes_map_to_actionable_variants() {
        assert_eq!(
            StoreError::from(failure(rusqlite::ffi::SQLITE_FULL)),
            StoreError::DiskFull
        );
        assert!(matches!(
            StoreError::from(failure(rusqlite::ffi::SQLITE_CORRUPT)),
            StoreError::Corrupt { .. }
        ));
        assert!(matches!(
            StoreError::from(failure(rusqlite::ffi::SQLITE_NOTADB)),
            StoreError::Corrupt { .. }
        ));
        assert!(matches!(
            StoreError::from(failure(rusqlite::ffi::SQLITE_BUSY)),
            StoreError::Busy { .. }
        ));
        assert!(matches!(
            StoreError::from(failure(rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)),
            StoreError::Constraint { .. }
        ));
        assert!(matches!(
            StoreError::from(failure(rusqlite::ffi::SQLITE_CANTOPEN)),
            StoreError::Io { .. }
        ));
        assert!(matches!(
            StoreError::from(rusqlite::Error::QueryReturnedNoRows),
            StoreError::NotFound { .. }
        ));
    }

    #[test]
    fn messages_say_what_to_do() {
        assert!(StoreError::DiskFull.to_string().contains("free some space"));
        let too_new = StoreError::TooNew {
            found: 9,
            supported: 3,
        };
        assert!(too_new.to_string().contains("update the app"));
    }
}
