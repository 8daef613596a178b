//! The work queue's read: which task a claimer takes next (SPEC §10).

use rusqlite::types::Value as SqlValue;
use rusqlite::{params_from_iter, Connection, OptionalExtension};

use super::tasks::list::{in_queue, Where};
use crate::domain::clock;
use crate::error::Result;

/// The first task in `agent`'s queue — by priority, then age — within
/// `project_id` and carrying every one of `labels`.
pub fn next(
    conn: &Connection,
    agent: i64,
    project_id: Option<i64>,
    labels: &[String],
) -> Result<Option<i64>> {
    let mut w = Where::default();
    let me = w.bind(SqlValue::Integer(agent));
    let now = w.bind(SqlValue::Text(clock::now_string()));
    w.add(in_queue(&me, &now));
    if let Some(p) = project_id {
        let p = w.bind(SqlValue::Integer(p));
        w.add(format!("t.project_id = {p}"));
    }
    for label in labels {
        let p = w.bind(SqlValue::Text(label.clone()));
        w.add(format!(
            "EXISTS (SELECT 1 FROM json_each(t.labels) WHERE value = {p})"
        ));
    }
    let sql = format!(
        "SELECT t.id FROM tasks t{} ORDER BY t.priority, t.id LIMIT 1",
        w.sql()
    );
    Ok(conn
        .prepare_cached(&sql)?
        .query_row(params_from_iter(w.args), |r| r.get(0))
        .optional()?)
}
