//! Schema creation and numbered migrations, tracked with `PRAGMA user_version`.

use anyhow::{bail, Context};
use rusqlite::Connection;

/// The whole version-1 schema, from the repository root.
pub const SCHEMA: &str = include_str!("../../schema.sql");

/// Migrations after version 1, in order: entry `i` takes the database from
/// version `i + 1` to `i + 2`. Never edit an entry once released.
const MIGRATIONS: &[&str] = &[];

pub const LATEST_VERSION: i64 = 1 + MIGRATIONS.len() as i64;

pub fn migrate(conn: &Connection) -> anyhow::Result<()> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version > LATEST_VERSION {
        bail!(
            "the database is at schema version {version}, newer than this binary \
             understands ({LATEST_VERSION}); use a newer delega"
        );
    }
    if version == 0 {
        let tx = conn.unchecked_transaction()?;
        tx.execute_batch(SCHEMA).context("applying schema.sql")?;
        tx.pragma_update(None, "user_version", 1)?;
        tx.commit()?;
    }
    let mut current: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    while current < LATEST_VERSION {
        let sql = MIGRATIONS[(current - 1) as usize];
        let tx = conn.unchecked_transaction()?;
        tx.execute_batch(sql)
            .with_context(|| format!("migrating schema to version {}", current + 1))?;
        tx.pragma_update(None, "user_version", current + 1)?;
        tx.commit()?;
        current += 1;
    }
    Ok(())
}
