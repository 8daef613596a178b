//! `GET /stats` and `GET /usage`.

use rusqlite::types::Value as SqlValue;
use rusqlite::{params_from_iter, Connection};
use serde_json::{json, Map, Value};

use super::readers;
use crate::domain::access::Caller;
use crate::domain::clock;
use crate::error::Result;

/// Counts over the tasks the caller can read.
pub fn stats(conn: &Connection, caller: &Caller) -> Result<Value> {
    let scope = if caller.reads_all() {
        "(?1 = ?1)".to_string()
    } else {
        readers::read_set("?1")
    };
    let today = clock::format_date(clock::today());
    let args = || {
        params_from_iter([
            SqlValue::Integer(caller.agent_id().unwrap_or(-1)),
            SqlValue::Text(today.clone()),
        ])
    };
    let totals = conn
        .prepare_cached(&format!(
            "SELECT count(*), \
           COALESCE(SUM(t.status != 'completed'), 0), \
           COALESCE(SUM(t.status = 'completed' AND substr(t.completed_at, 1, 10) = ?2), 0), \
           COALESCE(SUM(t.due_date = ?2 AND t.status NOT IN ('completed', 'failed')), 0), \
           COALESCE(SUM(t.due_date < ?2 AND t.status NOT IN ('completed', 'failed')), 0), \
           COALESCE(SUM(t.due_date > ?2 AND t.status NOT IN ('completed', 'failed')), 0), \
           COALESCE(SUM(t.status = 'completed'), 0) \
         FROM tasks t WHERE {scope}"
        ))?
        .query_row(args(), |r| {
            Ok([
                r.get::<_, i64>(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            ])
        })?;
    let [total_tasks, pending, completed_today, due_today, overdue, upcoming, completed] = totals;

    let mut by_status = Map::new();
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT t.status, count(*) FROM tasks t WHERE {scope} AND (?2 = ?2) GROUP BY t.status"
    ))?;
    for row in stmt.query_map(args(), |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
    })? {
        let (status, n) = row?;
        by_status.insert(status, json!(n));
    }
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT t.project_id, p.name, count(*), COALESCE(SUM(t.status = 'completed'), 0) \
         FROM tasks t LEFT JOIN projects p ON p.id = t.project_id WHERE {scope} AND (?2 = ?2) \
         GROUP BY t.project_id ORDER BY t.project_id"
    ))?;
    let by_project: Vec<Value> = stmt
        .query_map(args(), |r| {
            Ok(json!({
                "project_id": r.get::<_, Option<i64>>(0)?,
                "project_name": r.get::<_, Option<String>>(1)?,
                "total": r.get::<_, i64>(2)?,
                "completed": r.get::<_, i64>(3)?,
            }))
        })?
        .collect::<Result<_, _>>()?;
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT t.assigned_to_agent_id, a.name, count(*), \
         COALESCE(SUM(t.status = 'completed'), 0) \
         FROM tasks t LEFT JOIN agents a ON a.id = t.assigned_to_agent_id \
         WHERE {scope} AND (?2 = ?2) AND t.assigned_to_agent_id IS NOT NULL \
         GROUP BY t.assigned_to_agent_id ORDER BY t.assigned_to_agent_id"
    ))?;
    let by_agent: Vec<Value> = stmt
        .query_map(args(), |r| {
            Ok(json!({
                "agent_id": r.get::<_, i64>(0)?,
                "agent_name": r.get::<_, Option<String>>(1)?,
                "assigned": r.get::<_, i64>(2)?,
                "completed": r.get::<_, i64>(3)?,
            }))
        })?
        .collect::<Result<_, _>>()?;
    let (total_agents, active_agents): (i64, i64) = conn.query_row(
        "SELECT count(*), COALESCE(SUM(active), 0) FROM agents",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok(json!({
        "total_tasks": total_tasks,
        "total": pending,
        "pending_tasks": pending,
        "completed_today": completed_today,
        "due_today": due_today,
        "overdue": overdue,
        "upcoming": upcoming,
        "total_completed": completed,
        "completed_tasks": completed,
        "total_agents": total_agents,
        "active_agents": active_agents,
        "by_status": by_status,
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
