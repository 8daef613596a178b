//! The claim queue's reads (SPEC §10): which tasks a claimer may take, in
//! claim order (priority, then age).
//!
//! Every query walks a partial index that holds only queued tasks
//! (`tasks.queued`, migration 5) — unassigned, by assignee, by project,
//! or per label (`task_labels_queue`) — and stops at the page, so its cost
//! does not depend on how many tasks (completed ones above all) the
//! database holds. `INDEXED BY` makes SQLite refuse to run rather than
//! fall back to a scan if an index went missing.

use rusqlite::types::Value as SqlValue;
use rusqlite::{params_from_iter, Connection};

use crate::error::Result;

/// What a claimer asks the queue for.
#[derive(Debug, Clone, Default)]
pub struct QueueFilter {
    /// The claimer: unassigned tasks and those assigned to it.
    pub agent: i64,
    pub project_id: Option<i64>,
    /// Every one of these labels.
    pub labels: Vec<String>,
}

/// One candidate: its id and priority (the claim order).
type Candidate = (i64, i64);

/// A query over one queue index: `{source}` names the rows, `{order}` the
/// index order; `args` are its parameters.
struct Walk {
    sql: String,
    args: Vec<SqlValue>,
}

impl Walk {
    fn run(self, conn: &Connection) -> Result<Vec<Candidate>> {
        let mut stmt = conn.prepare_cached(&self.sql)?;
        let rows = stmt.query_map(params_from_iter(self.args), |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

/// The walks that together give `f`'s queue in claim order, each taking
/// at most `limit` rows.
fn walks(f: &QueueFilter, limit: i64) -> Vec<Walk> {
    let mut args = vec![SqlValue::Integer(f.agent)];
    let mut extra = String::new();
    if let Some(p) = f.project_id {
        args.push(SqlValue::Integer(p));
        extra.push_str(&format!(" AND t.project_id = ?{}", args.len()));
    }
    if let Some((first, rest)) = f.labels.split_first() {
        args.push(SqlValue::Text(first.clone()));
        let first_param = args.len();
        for label in rest {
            args.push(SqlValue::Text(label.clone()));
            extra.push_str(&format!(
                " AND EXISTS (SELECT 1 FROM task_labels l2 WHERE l2.label = ?{} \
                 AND l2.task_id = l.task_id)",
                args.len()
            ));
        }
        return vec![Walk {
            sql: format!(
                "SELECT l.task_id, l.priority FROM task_labels l INDEXED BY task_labels_queue \
                 JOIN tasks t ON t.id = l.task_id \
                 WHERE l.label = ?{first_param} AND l.queued \
                 AND (t.assigned_to_agent_id IS NULL OR t.assigned_to_agent_id = ?1){extra} \
                 ORDER BY l.priority, l.task_id LIMIT {limit}"
            ),
            args,
        }];
    }
    if f.project_id.is_some() {
        return vec![Walk {
            sql: format!(
                "SELECT t.id, t.priority FROM tasks t INDEXED BY tasks_queue_project \
                 WHERE t.queued AND (t.assigned_to_agent_id IS NULL OR t.assigned_to_agent_id = ?1)\
                 {extra} ORDER BY t.priority, t.id LIMIT {limit}"
            ),
            args,
        }];
    }
    vec![
        Walk {
            sql: format!(
                "SELECT t.id, t.priority FROM tasks t INDEXED BY tasks_queue \
                 WHERE t.queued AND t.assigned_to_agent_id IS NULL AND ?1 = ?1 \
                 ORDER BY t.priority, t.id LIMIT {limit}"
            ),
            args: args.clone(),
        },
        Walk {
            sql: format!(
                "SELECT t.id, t.priority FROM tasks t INDEXED BY tasks_queue_assigned \
                 WHERE t.queued AND t.assigned_to_agent_id = ?1 \
                 ORDER BY t.priority, t.id LIMIT {limit}"
            ),
            args,
        },
    ]
}

/// Up to `limit` tasks of the queue in claim order, after skipping
/// `offset`.
pub fn page(conn: &Connection, f: &QueueFilter, limit: i64, offset: i64) -> Result<Vec<i64>> {
    let take = limit.saturating_add(offset).max(0);
    let mut all: Vec<Candidate> = Vec::new();
    for walk in walks(f, take) {
        all.extend(walk.run(conn)?);
    }
    all.sort_unstable_by_key(|&(id, priority)| (priority, id));
    Ok(all
        .into_iter()
        .skip(usize::try_from(offset).unwrap_or(0))
        .take(usize::try_from(limit).unwrap_or(0))
        .map(|(id, _)| id)
        .collect())
}

/// The task a claimer takes next, if any.
pub fn next(conn: &Connection, f: &QueueFilter) -> Result<Option<i64>> {
    Ok(page(conn, f, 1, 0)?.into_iter().next())
}

/// The query plans of `f`'s walks (for the test that pins them to the
/// queue indexes).
pub fn plans(conn: &Connection, f: &QueueFilter) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for walk in walks(f, 1) {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {}", walk.sql))?;
        let rows = stmt.query_map(params_from_iter(walk.args), |r| r.get::<_, String>(3))?;
        for row in rows {
            out.push(row?);
        }
    }
    Ok(out)
}

/// Whether `agent` ever claimed task `id` (its `task.claimed` events, found
/// through `events_task`): such a worker knows the task's claim
/// generations, so a stale one is answered 409 `stale_claim` even after
/// the claim that let it read the task has lapsed (`ops::fenced`).
pub fn ever_claimed(conn: &Connection, id: i64, agent: i64) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM events \
             WHERE task_id = ?1 AND kind = 'task.claimed' AND agent_id = ?2)",
        )?
        .query_row([id, agent], |r| r.get(0))?)
}
