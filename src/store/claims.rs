//! The work queue: claims with leases. The writer runs one write at a
//! time, so a claim is atomic: two workers never hold the same task.

use rusqlite::types::Value as SqlValue;
use rusqlite::{params, params_from_iter, OptionalExtension};

use super::tasks::{self, TaskJson, TaskRow, Where};
use super::Tx;
use crate::domain::access::Caller;
use crate::domain::clock;
use crate::error::{Error, Result};

pub const DEFAULT_LEASE: i64 = 300;
pub const SESSION_STATES: &[&str] = &["working", "waiting_input", "errored"];

fn lease_end(seconds: i64) -> String {
    clock::format(clock::now() + time::Duration::seconds(seconds))
}

fn agent_of(caller: &Caller) -> Result<i64> {
    caller
        .agent_id()
        .ok_or_else(|| Error::forbidden("claims need an agent identity; use an agent key"))
}

fn take(tx: &Tx, caller: &Caller, id: i64, agent: i64, lease: i64) -> Result<TaskJson> {
    let now = clock::now_string();
    tx.prepare_cached(
        "UPDATE tasks SET status = 'claimed', claimed_by_agent_id = ?2, claimed_at = ?3, \
         lease_expires_at = ?4, last_heartbeat_at = ?3, session_state = NULL, \
         session_state_detail = NULL, updated_at = ?3 WHERE id = ?1",
    )?
    .execute(params![id, agent, now, lease_end(lease)])?;
    tasks::emit(tx, caller, id, "task.claimed", None)
}

/// Claims the next task in the caller's queue (priority, then age), if any.
pub fn claim_next(
    tx: &Tx,
    caller: &Caller,
    project_id: Option<i64>,
    labels: &[String],
    lease: i64,
) -> Result<Option<TaskJson>> {
    let agent = agent_of(caller)?;
    let mut w = Where::default();
    let me = w.bind(SqlValue::Integer(agent));
    let now = w.bind(SqlValue::Text(clock::now_string()));
    w.add(format!(
        "t.status NOT IN ('completed', 'failed', 'blocked') \
         AND (t.claimed_by_agent_id IS NULL OR t.lease_expires_at <= {now}) \
         AND (t.assigned_to_agent_id IS NULL OR t.assigned_to_agent_id = {me})"
    ));
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
    let next: Option<i64> = tx
        .prepare_cached(&sql)?
        .query_row(params_from_iter(w.args), |r| r.get(0))
        .optional()?;
    next.map(|id| take(tx, caller, id, agent, lease))
        .transpose()
}

/// A task for a queue operation: one the caller reads, or a queue item
/// (unassigned or assigned to it) that another agent's claim hides. For
/// those the answer is "claimed by someone else" (409/403), not a 404.
fn queue_task(tx: &Tx, caller: &Caller, id: i64) -> Result<TaskRow> {
    let not_found = || Error::not_found(format!("task {id} not found"));
    let task = tasks::get(tx, id)?.ok_or_else(not_found)?;
    let in_queue = (task.assigned_to_agent_id.is_none()
        || task.assigned_to_agent_id == caller.agent_id())
        && !tasks::is_finished(&task.status)
        && task.status != "blocked";
    if in_queue || tasks::access(tx, caller, &task)?.is_some() {
        Ok(task)
    } else {
        Err(not_found())
    }
}

/// Claims one task by id; 409 when it is not in the caller's queue.
pub fn claim(tx: &Tx, caller: &Caller, id: i64, lease: i64) -> Result<TaskJson> {
    let agent = agent_of(caller)?;
    let task = queue_task(tx, caller, id)?;
    let now = clock::now_string();
    if !task.claimable_by(Some(agent), &now) {
        let why = if task.has_live_claim(&now) {
            if task.claimed_by_agent_id == Some(agent) {
                "you already hold its claim; heartbeat to extend it".to_string()
            } else {
                "another agent holds a live claim on it".to_string()
            }
        } else if task.assigned_to_agent_id.is_some_and(|a| a != agent) {
            "it is assigned to another agent".to_string()
        } else {
            format!("it is {}", task.status)
        };
        return Err(Error::conflict(format!(
            "task {id} is not claimable: {why}"
        )));
    }
    take(tx, caller, id, agent, lease)
}

/// The task whose live claim the caller holds (409 otherwise).
fn held(tx: &Tx, caller: &Caller, id: i64) -> Result<TaskRow> {
    let agent = agent_of(caller)?;
    let task = queue_task(tx, caller, id)?;
    if task.claimed_by_agent_id != Some(agent) || !task.has_live_claim(&clock::now_string()) {
        return Err(Error::conflict(format!(
            "you hold no live claim on task {id}; claim it first"
        )));
    }
    Ok(task)
}

pub fn heartbeat(
    tx: &Tx,
    caller: &Caller,
    id: i64,
    lease: i64,
    state: Option<(String, Option<String>)>,
) -> Result<TaskJson> {
    let task = held(tx, caller, id)?;
    let now = clock::now_string();
    tx.prepare_cached(
        "UPDATE tasks SET lease_expires_at = ?2, last_heartbeat_at = ?3 WHERE id = ?1",
    )?
    .execute(params![id, lease_end(lease), now])?;
    if let Some((state, detail)) = state {
        set_state_row(tx, caller, &task, &state, detail)?;
    }
    tasks::json(tx, id)
}

fn set_state_row(
    tx: &Tx,
    caller: &Caller,
    task: &TaskRow,
    state: &str,
    detail: Option<String>,
) -> Result<()> {
    if task.session_state.as_deref() == Some(state) && task.session_state_detail == detail {
        return Ok(());
    }
    tx.prepare_cached(
        "UPDATE tasks SET session_state = ?2, session_state_detail = ?3, updated_at = ?4 WHERE id = ?1",
    )?
    .execute(params![task.id, state, detail, clock::now_string()])?;
    tasks::emit(tx, caller, task.id, "task.state_changed", None)?;
    Ok(())
}

/// Sets `session_state` without extending the lease.
pub fn set_state(
    tx: &Tx,
    caller: &Caller,
    id: i64,
    state: &str,
    detail: Option<String>,
) -> Result<TaskJson> {
    let task = held(tx, caller, id)?;
    set_state_row(tx, caller, &task, state, detail)?;
    tasks::json(tx, id)
}

fn free(tx: &Tx, id: i64, handoff: Option<String>) -> Result<()> {
    tx.prepare_cached(
        "UPDATE tasks SET status = 'open', claimed_by_agent_id = NULL, claimed_at = NULL, \
         lease_expires_at = NULL, session_state = NULL, session_state_detail = NULL, \
         handoff = COALESCE(?2, handoff), updated_at = ?3 WHERE id = ?1",
    )?
    .execute(params![id, handoff, clock::now_string()])?;
    tasks::refresh_blocked(tx, id).map(|_| ())
}

/// Gives a claimed task back to the queue, keeping the hand-off note.
pub fn release(tx: &Tx, caller: &Caller, id: i64, handoff: Option<String>) -> Result<TaskJson> {
    let task = queue_task(tx, caller, id)?;
    if !task.has_live_claim(&clock::now_string()) {
        return Err(Error::conflict(format!("task {id} is not claimed")));
    }
    if task.claimed_by_agent_id != caller.agent_id() && !caller.is_admin() {
        return Err(Error::forbidden(format!(
            "another agent holds the claim on task {id}"
        )));
    }
    free(tx, id, handoff)?;
    tasks::emit(tx, caller, id, "task.released", Some("released"))
}

/// Frees every claim whose lease ran out (`task.released`, reason
/// `lease_expired`). Returns how many.
pub fn expire(tx: &Tx) -> Result<usize> {
    let now = clock::now_string();
    let ids: Vec<i64> = tx
        .prepare_cached(
            "SELECT id FROM tasks WHERE claimed_by_agent_id IS NOT NULL AND lease_expires_at <= ?1 \
             LIMIT 500",
        )?
        .query_map([&now], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for id in &ids {
        free(tx, *id, None)?;
        tasks::emit(
            tx,
            &Caller::Project,
            *id,
            "task.released",
            Some("lease_expired"),
        )?;
    }
    Ok(ids.len())
}
