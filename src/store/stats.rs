//! `GET /stats` and `GET /usage`.

use rusqlite::types::Value as SqlValue;
use rusqlite::{params_from_iter, Connection};
use serde_json::{json, Map, Value};

use super::readers;
use crate::domain::access::Caller;
use crate::domain::clock;
use crate::error::Result;

/// Counts of tasks, as the sources below gather them.
#[derive(Default)]
struct Counts {
    /// By status.
    by_status: Map<String, Value>,
    /// `(project id, project name, total, completed)`.
    by_project: Vec<(Option<i64>, Option<String>, i64, i64)>,
    /// `(agent id, agent name, assigned, completed)`.
    by_agent: Vec<(i64, Option<String>, i64, i64)>,
    completed_today: i64,
    due_today: i64,
    overdue: i64,
    upcoming: i64,
}

/// Tasks per status, from the counters (statuses with none left out).
fn counts_by_status(conn: &Connection) -> Result<Vec<(String, i64)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT status, SUM(n) FROM task_counts GROUP BY status HAVING SUM(n) > 0",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Counts for callers who read every task: the counters triggers keep by
/// project, assignee and status (`task_counts`), and index ranges for the
/// dates — nothing that counts the whole table.
fn counted(conn: &Connection, today: &str) -> Result<Counts> {
    let mut c = Counts::default();
    for (status, n) in counts_by_status(conn)? {
        c.by_status.insert(status, json!(n));
    }
    let mut stmt = conn.prepare_cached(
        "SELECT NULLIF(c.project_id, 0), p.name, SUM(c.n), SUM(CASE WHEN c.status = 'completed' \
         THEN c.n ELSE 0 END) FROM task_counts c LEFT JOIN projects p ON p.id = c.project_id \
         GROUP BY c.project_id HAVING SUM(c.n) > 0 ORDER BY c.project_id",
    )?;
    c.by_project = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut stmt = conn.prepare_cached(
        "SELECT c.agent_id, a.name, SUM(c.n), SUM(CASE WHEN c.status = 'completed' \
         THEN c.n ELSE 0 END) FROM task_counts c LEFT JOIN agents a ON a.id = c.agent_id \
         WHERE c.agent_id != 0 GROUP BY c.agent_id HAVING SUM(c.n) > 0 ORDER BY c.agent_id",
    )?;
    c.by_agent = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<rusqlite::Result<_>>()?;
    c.completed_today = conn
        .prepare_cached(
            "SELECT count(*) FROM tasks INDEXED BY tasks_completed_at \
             WHERE completed_at IS NOT NULL AND completed_at >= ?1",
        )?
        .query_row([today], |r| r.get(0))?;
    (c.due_today, c.overdue, c.upcoming) = conn
        .prepare_cached(
            "SELECT COALESCE(SUM(due_date = ?1), 0), COALESCE(SUM(due_date < ?1), 0), \
             COALESCE(SUM(due_date > ?1), 0) FROM tasks INDEXED BY tasks_due \
             WHERE due_date IS NOT NULL AND status NOT IN ('completed', 'failed')",
        )?
        .query_row([today], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    Ok(c)
}

/// Counts over a worker's readable tasks (its own work: bounded by what it
/// reads, not by the database).
fn scanned(conn: &Connection, agent: i64, today: &str) -> Result<Counts> {
    let scope = readers::read_set("?1");
    let mut c = Counts::default();
    let args = || params_from_iter([SqlValue::Integer(agent), SqlValue::Text(today.to_string())]);
    (c.completed_today, c.due_today, c.overdue, c.upcoming) = conn
        .prepare_cached(&format!(
            "SELECT \
             COALESCE(SUM(t.status = 'completed' AND substr(t.completed_at, 1, 10) = ?2), 0), \
             COALESCE(SUM(t.due_date = ?2 AND t.status NOT IN ('completed', 'failed')), 0), \
             COALESCE(SUM(t.due_date < ?2 AND t.status NOT IN ('completed', 'failed')), 0), \
             COALESCE(SUM(t.due_date > ?2 AND t.status NOT IN ('completed', 'failed')), 0) \
             FROM tasks t WHERE {scope}"
        ))?
        .query_row(args(), |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT t.status, count(*) FROM tasks t WHERE {scope} AND (?2 = ?2) GROUP BY t.status"
    ))?;
    for row in stmt.query_map(args(), |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
    })? {
        let (status, n) = row?;
        c.by_status.insert(status, json!(n));
    }
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT t.project_id, p.name, count(*), COALESCE(SUM(t.status = 'completed'), 0) \
         FROM tasks t LEFT JOIN projects p ON p.id = t.project_id WHERE {scope} AND (?2 = ?2) \
         GROUP BY t.project_id ORDER BY t.project_id"
    ))?;
    c.by_project = stmt
        .query_map(args(), |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT t.assigned_to_agent_id, a.name, count(*), \
         COALESCE(SUM(t.status = 'completed'), 0) \
         FROM tasks t LEFT JOIN agents a ON a.id = t.assigned_to_agent_id \
         WHERE {scope} AND (?2 = ?2) AND t.assigned_to_agent_id IS NOT NULL \
         GROUP BY t.assigned_to_agent_id ORDER BY t.assigned_to_agent_id"
    ))?;
    c.by_agent = stmt
        .query_map(args(), |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(c)
}

/// `GET /stats` (SPEC §10): counts over what the caller's default
/// `GET /tasks` would list, under the field names the ecosystem's
/// clients read.
pub fn stats(conn: &Connection, caller: &Caller) -> Result<Value> {
    let today = clock::format_date(clock::today());
    let c = if caller.reads_all() {
        counted(conn, &today)?
    } else {
        scanned(conn, caller.agent_id().unwrap_or(-1), &today)?
    };
    let count = |s: &str| c.by_status.get(s).and_then(Value::as_i64).unwrap_or(0);
    let total_tasks: i64 = c.by_status.values().filter_map(Value::as_i64).sum();
    let completed = count("completed");
    let pending = total_tasks - completed;
    let (total_agents, active_agents): (i64, i64) = conn.query_row(
        "SELECT count(*), COALESCE(SUM(active), 0) FROM agents",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let by_project: Vec<Value> = c
        .by_project
        .iter()
        .map(|(id, name, total, done)| {
            json!({"project_id": id, "project_name": name, "total": total, "completed": done})
        })
        .collect();
    let by_agent: Vec<Value> = c
        .by_agent
        .iter()
        .map(|(id, name, assigned, done)| {
            json!({"agent_id": id, "agent_name": name, "assigned": assigned, "completed": done})
        })
        .collect();
    Ok(json!({
        "total_tasks": total_tasks,
        "total": pending,
        "pending_tasks": pending,
        "completed_today": c.completed_today,
        "due_today": c.due_today,
        "overdue": c.overdue,
        "upcoming": c.upcoming,
        "total_completed": completed,
        "completed_tasks": completed,
        "total_agents": total_agents,
        "active_agents": active_agents,
        "by_status": c.by_status,
        "by_project": by_project,
        "by_agent": by_agent,
    }))
}

pub struct UsageLimits {
    pub rate_limit_rpm: u32,
    pub max_content_chars: usize,
}

/// What the hosted service reported as quota; self-hosted has no limits.
pub fn usage(conn: &Connection, limits: &UsageLimits) -> Result<Value> {
    let month_start = format!("{}-01", &clock::format_date(clock::today())[..7]);
    let count = |sql: &str| -> Result<i64> { Ok(conn.query_row(sql, [], |r| r.get(0))?) };
    let task_count_month: i64 = conn.query_row(
        "SELECT count(*) FROM tasks WHERE created_at >= ?1",
        [&month_start],
        |r| r.get(0),
    )?;
    Ok(json!({
        "plan": "self-hosted",
        "task_count_month": task_count_month,
        "task_limit": null,
        "reset_date": null,
        "agent_count": count("SELECT count(*) FROM agents")?,
        "agent_limit": null,
        "webhook_count": count("SELECT count(*) FROM webhooks")?,
        "webhook_limit": null,
        "project_count": count("SELECT count(*) FROM projects")?,
        "project_limit": null,
        "rate_limit_rpm": if limits.rate_limit_rpm == 0 { Value::Null } else { json!(limits.rate_limit_rpm) },
        "max_content_chars": limits.max_content_chars,
    }))
}

/// What `GET /metrics` reads from the database (SPEC §13).
#[derive(Debug, Default)]
pub struct Gauges {
    /// `(status, count)` for every status with tasks.
    pub tasks_by_status: Vec<(String, i64)>,
    /// Tasks in the claim queue, counted through its two partial indexes.
    pub queue_depth: i64,
    /// `(webhook id, created_at)` of the oldest event each hook the
    /// dispatcher feeds (active, and its owner too) may not have delivered:
    /// the first event past its stored cursor, or the oldest one waiting
    /// for a retry, whichever is older; `None` when caught up. The cursor
    /// is stored when the dispatcher settles, so under a steady stream of
    /// events this is an upper bound, and events the hook does not want
    /// count until the cursor passes them.
    pub oldest_undelivered: Vec<(i64, Option<String>)>,
}

pub fn gauges(conn: &Connection) -> Result<Gauges> {
    let mut g = Gauges {
        tasks_by_status: counts_by_status(conn)?,
        ..Gauges::default()
    };
    g.queue_depth = conn.query_row(
        "SELECT (SELECT count(*) FROM tasks WHERE queued AND assigned_to_agent_id IS NULL) \
              + (SELECT count(*) FROM tasks WHERE queued AND assigned_to_agent_id IS NOT NULL)",
        [],
        |r| r.get(0),
    )?;
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT w.id, \
           (SELECT e.created_at FROM events e WHERE e.id > w.delivered_through ORDER BY e.id LIMIT 1), \
           (SELECT e.created_at FROM webhook_retries r JOIN events e ON e.id = r.event_id \
             WHERE r.webhook_id = w.id AND r.state = 'pending' ORDER BY r.event_id LIMIT 1) \
         FROM webhooks w LEFT JOIN agents a ON a.id = w.owner_agent_id \
         WHERE {} ORDER BY w.id",
        super::webhooks::FED
    ))?;
    let rows = stmt.query_map([], |r| {
        let (past_cursor, retrying): (Option<String>, Option<String>) = (r.get(1)?, r.get(2)?);
        // Timestamps share one format, so text order is time order.
        let oldest = match (past_cursor, retrying) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Ok((r.get(0)?, oldest))
    })?;
    for row in rows {
        g.oldest_undelivered.push(row?);
    }
    Ok(g)
}
