//! `task_dependencies`: which tasks wait for which (SPEC §8).

use std::collections::HashMap;

use rusqlite::{params, Connection};
use serde::Serialize;
use serde_json::value::RawValue;

use super::tasks::render::raw;
use crate::domain::clock;
use crate::domain::lifecycle::Dependencies;
use crate::error::{Error, Result};

/// The dependencies of each of `ids`, in id order.
pub fn of_tasks(conn: &Connection, ids: &[i64]) -> Result<HashMap<i64, Vec<i64>>> {
    let (matching, value) = super::id_set(ids);
    let mut out: HashMap<i64, Vec<i64>> = HashMap::new();
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT task_id, depends_on_id FROM task_dependencies \
         WHERE task_id {matching} ORDER BY task_id, depends_on_id"
    ))?;
    let pairs = stmt.query_map([value], |r| Ok((r.get(0)?, r.get(1)?)))?;
    for pair in pairs {
        let (task, dep): (i64, i64) = pair?;
        out.entry(task).or_default().push(dep);
    }
    Ok(out)
}

/// Tasks that depend on `id`.
pub fn dependents(conn: &Connection, id: i64) -> Result<Vec<i64>> {
    let mut stmt =
        conn.prepare_cached("SELECT task_id FROM task_dependencies WHERE depends_on_id = ?1")?;
    let ids = stmt.query_map([id], |r| r.get(0))?;
    Ok(ids.collect::<rusqlite::Result<_>>()?)
}

/// What the state machine needs to know of a task's dependencies.
pub fn summary(conn: &Connection, id: i64) -> Result<Dependencies> {
    let mut stmt = conn.prepare_cached(
        "SELECT d.id, d.status FROM task_dependencies td JOIN tasks d ON d.id = td.depends_on_id \
         WHERE td.task_id = ?1 AND d.status != 'completed' ORDER BY d.id",
    )?;
    let mut deps = Dependencies::default();
    for row in stmt.query_map([id], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))? {
        let (dep, status) = row?;
        deps.unfinished.push(dep);
        if status == "failed" {
            deps.failed.push(dep);
        }
    }
    Ok(deps)
}

/// Would `task` depending on `dep` close a cycle (dep already reaches task)?
fn creates_cycle(conn: &Connection, task: i64, dep: i64) -> Result<bool> {
    if task == dep {
        return Ok(true);
    }
    let sql = "WITH RECURSIVE reach(id) AS (
          SELECT ?1
          UNION SELECT d.depends_on_id FROM task_dependencies d JOIN reach ON d.task_id = reach.id)
        SELECT EXISTS(SELECT 1 FROM reach WHERE id = ?2)";
    Ok(conn
        .prepare_cached(sql)?
        .query_row(params![dep, task], |r| r.get(0))?)
}

/// Makes `task` depend on `dep`, sharing `dep`'s result with `task`'s
/// readers or not; a cycle is a 422.
pub fn add(conn: &Connection, task: i64, dep: i64, shared: bool) -> Result<()> {
    if creates_cycle(conn, task, dep)? {
        return Err(Error::validation(
            "depends_on",
            format!("task {task} depending on {dep} would create a cycle"),
        ));
    }
    conn.prepare_cached(
        "INSERT INTO task_dependencies (task_id, depends_on_id, created_at, shared) \
         VALUES (?1, ?2, ?3, ?4) ON CONFLICT (task_id, depends_on_id) \
         DO UPDATE SET shared = MAX(shared, excluded.shared)",
    )?
    .execute(params![task, dep, clock::now_string(), shared])?;
    Ok(())
}

/// Removes one dependency; false if there was none.
pub fn remove(conn: &Connection, task: i64, dep: i64) -> Result<bool> {
    let n = conn
        .prepare_cached("DELETE FROM task_dependencies WHERE task_id = ?1 AND depends_on_id = ?2")?
        .execute(params![task, dep])?;
    Ok(n > 0)
}

/// Removes every dependency of `task`; returns the tasks it waited for.
pub fn clear(conn: &Connection, task: i64) -> Result<Vec<i64>> {
    let old = of_tasks(conn, &[task])?.remove(&task).unwrap_or_default();
    conn.prepare_cached("DELETE FROM task_dependencies WHERE task_id = ?1")?
        .execute([task])?;
    Ok(old)
}

/// One entry of `GET /tasks/{id}/inputs`: a dependency's result.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Input {
    pub task_id: i64,
    pub content: String,
    pub status: String,
    pub completed_by: Option<String>,
    pub completed_at: Option<String>,
    #[schema(value_type = Object)]
    pub context: Box<RawValue>,
}

/// An entry as the caller may see it: whole, or — for a dependency it
/// cannot read — its id and status only (SPEC §8).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum InputEntry {
    Readable(Input),
    Hidden(HiddenInput),
}

/// A dependency the caller cannot read: its id and status, nothing more
/// (closed, so the document tells it apart from a readable [`Input`]).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HiddenInput {
    pub task_id: i64,
    pub status: String,
}

impl Input {
    pub fn hidden(self) -> InputEntry {
        InputEntry::Hidden(HiddenInput {
            task_id: self.task_id,
            status: self.status,
        })
    }
}

/// Every dependency of `id` with its result, by id.
pub fn inputs(conn: &Connection, id: i64) -> Result<Vec<Input>> {
    let mut stmt = conn.prepare_cached(
        "SELECT d.id, d.content, d.status, a.name, d.completed_at, d.context \
         FROM task_dependencies td JOIN tasks d ON d.id = td.depends_on_id \
         LEFT JOIN agents a ON a.id = d.completed_by_agent_id \
         WHERE td.task_id = ?1 ORDER BY d.id",
    )?;
    let rows = stmt.query_map([id], |r| {
        Ok(Input {
            task_id: r.get(0)?,
            content: r.get(1)?,
            status: r.get(2)?,
            completed_by: r.get(3)?,
            completed_at: r.get(4)?,
            context: raw(&r.get::<_, String>(5)?),
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
