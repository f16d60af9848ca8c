//! Schema migrations: numbered SQL files from `core/migrations/`, embedded in the binary and applied
//! in order, each in its own transaction; the version is SQLite's `PRAGMA user_version`.

use rusqlite::{Connection, TransactionBehavior};

use super::error::StoreError;

/// One numbered SQL file.
pub(crate) struct Migration {
    /// The number in the file name; the `user_version` after it is applied.
    pub version: u32,
    /// The file name, for messages.
    pub name: &'static str,
    /// The SQL.
    pub sql: &'static str,
}

/// Every migration, oldest first. Versions are consecutive from 1.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "0001_catalog_sales_outbox.sql",
        sql: include_str!("../../migrations/0001_catalog_sales_outbox.sql"),
    },
    Migration {
        version: 2,
        name: "0002_pins.sql",
        sql: include_str!("../../migrations/0002_pins.sql"),
    },
    Migration {
        version: 3,
        name: "0003_uploads.sql",
        sql: include_str!("../../migrations/0003_uploads.sql"),
    },
];

/// The schema version this build writes.
pub const LATEST_VERSION: u32 = MIGRATIONS.len() as u32;

/// The file's schema version.
pub(crate) fn version(conn: &Connection) -> Result<u32, StoreError> {
    Ok(conn.pragma_query_value(None, "user_version", |row| row.get(0))?)
}

/// Applies every migration above the file's version up to `target`, one transaction each, and
/// returns the version reached. A file newer than this build is refused, untouched.
pub(crate) fn migrate(conn: &mut Connection, target: u32) -> Result<u32, StoreError> {
    let found = version(conn)?;
    if found > LATEST_VERSION {
        return Err(StoreError::TooNew {
            found,
            supported: LATEST_VERSION,
        });
    }
    for migration in MIGRATIONS.iter().filter(|m| m.version <= target) {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Read again under the write lock: another process may have migrated meanwhile.
        if version(&tx)? >= migration.version {
            continue;
        }
        let failed = |e: rusqlite::Error| match StoreError::from(e) {
            StoreError::Sqlite { message } | StoreError::Constraint { message } => {
                StoreError::Migration {
                    version: migration.version,
                    message: format!("{}: {message}", migration.name),
                }
            }
            other => other,
        };
        tx.execute_batch(migration.sql).map_err(failed)?;
        tx.pragma_update(None, "user_version", migration.version)
            .map_err(failed)?;
        tx.commit().map_err(failed)?;
        log::info!("store schema migrated to version {}", migration.version);
    }
    version(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_consecutive_and_match_file_names() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version as usize, i + 1);
            assert!(
                m.name.starts_with(&format!("{:04}_", m.version)),
                "{}",
                m.name
            );
            assert!(m.name.ends_with(".sql"));
        }
    }

    #[test]
    fn migrates_step_by_step_and_is_idempotent() {
        let mut conn = Connection::open_in_memory().unwrap();
        assert_eq!(version(&conn).unwrap(), 0);
        for target in 1..=LATEST_VERSION {
            assert_eq!(migrate(&mut conn, target).unwrap(), target);
        }
        assert_eq!(migrate(&mut conn, LATEST_VERSION).unwrap(), LATEST_VERSION);
        let tables: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        for table in ["outbox", "pins", "products", "sales", "uploads"] {
            assert!(tables.iter().any(|t| t == table), "{table} in {tables:?}");
        }
    }

    #[test]
    fn refuses_a_newer_file_untouched() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", LATEST_VERSION + 1)
            .unwrap();
        assert_eq!(
            migrate(&mut conn, LATEST_VERSION),
            Err(StoreError::TooNew {
                found: LATEST_VERSION + 1,
                supported: LATEST_VERSION
            })
        );
        assert_eq!(version(&conn).unwrap(), LATEST_VERSION + 1);
    }

    #[test]
    fn a_failing_migration_leaves_the_previous_version() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn, 1).unwrap();
        // A table that migration 2 is about to create makes it fail half-way.
        conn.execute_batch("CREATE TABLE pins (x INTEGER)").unwrap();
        let err = migrate(&mut conn, 2).unwrap_err();
        assert!(
            matches!(err, StoreError::Migration { version: 2, .. }),
            "{err:?}"
        );
        assert_eq!(version(&conn).unwrap(), 1);
    }
}
