//! The `tasks` table: rows, the writes that change them, and the two ways
//! they are read in bulk ([`list`] for `GET /tasks`, [`render`] for every
//! answer and event payload).
//!
//! These are plain reads and writes: who may do them, and what status a
//! task moves to, is decided by the operations (`crate::ops`) with the
//! rules of `crate::domain`.

pub mod list;
pub mod render;

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::domain::clock;
use crate::domain::lifecycle::{BlockedReason, State, Status};
use crate::error::{Error, Result};

pub use render::{json, TaskJson};

/// One row of `tasks`, as stored.
#[derive(Debug, Clone)]
pub struct TaskRow {
    pub id: i64,
    pub content: String,
    pub description: Option<String>,
    pub project_id: Option<i64>,
    pub priority: i64,
    pub labels: String,
    pub due_date: Option<String>,
    pub due_time: Option<String>,
    pub status: String,
    pub blocked_reason: Option<String>,
    pub completed_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub created_by_agent_id: Option<i64>,
    pub assigned_to_agent_id: Option<i64>,
    pub completed_by_agent_id: Option<i64>,
    pub parent_task_id: Option<i64>,
    pub root_task_id: Option<i64>,
    pub delegation_depth: i64,
    pub context: String,
    pub context_version: i64,
    pub claimed_by_agent_id: Option<i64>,
    pub claimed_at: Option<String>,
    pub lease_expires_at: Option<String>,
    pub last_heartbeat_at: Option<String>,
    pub session_state: Option<String>,
    pub session_state_detail: Option<String>,
    pub handoff: Option<String>,
    pub completion_evidence: Option<String>,
    pub evidence_policy: Option<String>,
    pub recurrence_id: Option<i64>,
    pub failure_reason: Option<String>,
    pub recurring_type: Option<String>,
    pub recurring_interval: Option<i64>,
    pub recurring_string: Option<String>,
    pub is_recurring: bool,
    pub reminder_time: Option<String>,
}

/// The columns of [`TaskRow`], in order, for `SELECT {COLUMNS} FROM tasks t`.
pub const COLUMNS: &str = "t.id, t.content, t.description, t.project_id, t.priority, t.labels, \
    t.due_date, t.due_time, t.status, t.blocked_reason, t.completed_at, t.created_at, \
    t.updated_at, t.created_by_agent_id, t.assigned_to_agent_id, t.completed_by_agent_id, \
    t.parent_task_id, t.root_task_id, t.delegation_depth, t.context, t.context_version, \
    t.claimed_by_agent_id, t.claimed_at, t.lease_expires_at, t.last_heartbeat_at, \
    t.session_state, t.session_state_detail, t.handoff, t.completion_evidence, \
    t.evidence_policy, t.recurrence_id, t.failure_reason, t.recurring_type, \
    t.recurring_interval, t.recurring_string, t.is_recurring, t.reminder_time";

pub fn from_row(r: &Row) -> rusqlite::Result<TaskRow> {
    Ok(TaskRow {
        id: r.get(0)?,
        content: r.get(1)?,
        description: r.get(2)?,
        project_id: r.get(3)?,
        priority: r.get(4)?,
        labels: r.get(5)?,
        due_date: r.get(6)?,
        due_time: r.get(7)?,
        status: r.get(8)?,
        blocked_reason: r.get(9)?,
        completed_at: r.get(10)?,
        created_at: r.get(11)?,
        updated_at: r.get(12)?,
        created_by_agent_id: r.get(13)?,
        assigned_to_agent_id: r.get(14)?,
        completed_by_agent_id: r.get(15)?,
        parent_task_id: r.get(16)?,
        root_task_id: r.get(17)?,
        delegation_depth: r.get(18)?,
        context: r.get(19)?,
        context_version: r.get(20)?,
        claimed_by_agent_id: r.get(21)?,
        claimed_at: r.get(22)?,
        lease_expires_at: r.get(23)?,
        last_heartbeat_at: r.get(24)?,
        session_state: r.get(25)?,
        session_state_detail: r.get(26)?,
        handoff: r.get(27)?,
        completion_evidence: r.get(28)?,
        evidence_policy: r.get(29)?,
        recurrence_id: r.get(30)?,
        failure_reason: r.get(31)?,
        recurring_type: r.get(32)?,
        recurring_interval: r.get(33)?,
        recurring_string: r.get(34)?,
        is_recurring: r.get(35)?,
        reminder_time: r.get(36)?,
    })
}

impl TaskRow {
    /// The holder of a claim whose lease has not run out at `now`.
    pub fn live_claimant(&self, now: &str) -> Option<i64> {
        self.claimed_by_agent_id
            .filter(|_| self.lease_expires_at.as_deref().is_some_and(|l| l > now))
    }

    pub fn status(&self) -> Status {
        // The schema's CHECK constraint admits only known statuses.
        Status::parse(&self.status).unwrap_or(Status::Open)
    }

    /// The part of the row the state machine works on.
    pub fn state(&self, now: &str) -> State {
        State {
            status: self.status(),
            blocked_reason: self
                .blocked_reason
                .as_deref()
                .and_then(BlockedReason::parse),
            claimed: self.live_claimant(now).is_some(),
        }
    }

    /// In `agent`'s claim queue (SPEC §10): claimable, and unassigned or
    /// assigned to that agent.
    pub fn in_queue_of(&self, agent: Option<i64>, now: &str) -> bool {
        agent.is_some()
            && self.state(now).is_claimable()
            && (self.assigned_to_agent_id.is_none() || self.assigned_to_agent_id == agent)
    }

    pub fn labels(&self) -> Vec<String> {
        serde_json::from_str(&self.labels).unwrap_or_default()
    }
}

pub fn get(conn: &Connection, id: i64) -> Result<Option<TaskRow>> {
    Ok(conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM tasks t WHERE t.id = ?1"))?
        .query_row([id], from_row)
        .optional()?)
}

/// A task to insert, already validated and resolved.
#[derive(Debug, Default, Clone)]
pub struct NewRow {
    pub content: String,
    pub description: Option<String>,
    pub project_id: Option<i64>,
    pub priority: i64,
    pub labels: Vec<String>,
    pub due_date: Option<String>,
    pub due_time: Option<String>,
    pub created_by: Option<i64>,
    pub assigned_to: Option<i64>,
    /// The parent, its root and this task's depth (a delegated child).
    pub parent: Option<(i64, i64, i64)>,
    pub evidence_policy: Option<String>,
    pub recurrence_id: Option<i64>,
    pub recurring_type: Option<String>,
    pub recurring_interval: Option<i64>,
    pub recurring_string: Option<String>,
    pub is_recurring: bool,
    pub reminder_time: Option<String>,
}

/// Inserts a task with its initial state; returns its id.
pub fn insert(conn: &Connection, new: &NewRow, state: State) -> Result<i64> {
    let now = clock::now_string();
    // Only the writer inserts tasks, so a root's id (its own root) is the
    // next AUTOINCREMENT value, known before the insert.
    conn.prepare_cached(
        "INSERT INTO tasks (content, description, project_id, priority, labels, due_date, \
         due_time, status, blocked_reason, created_at, updated_at, created_by_agent_id, \
         assigned_to_agent_id, parent_task_id, root_task_id, delegation_depth, evidence_policy, \
         recurrence_id, recurring_type, recurring_interval, recurring_string, is_recurring, \
         reminder_time) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10, ?11, ?12, ?13, \
         COALESCE(?14, (SELECT COALESCE((SELECT seq FROM sqlite_sequence \
         WHERE name = 'tasks'), 0) + 1)), ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22)",
    )?
    .execute(params![
        new.content,
        new.description,
        new.project_id,
        new.priority,
        serde_json::to_string(&new.labels)?,
        new.due_date,
        new.due_time,
        state.status.as_str(),
        state.blocked_reason.map(BlockedReason::as_str),
        now,
        new.created_by,
        new.assigned_to,
        new.parent.map(|p| p.0),
        new.parent.map(|p| p.1),
        new.parent.map_or(0, |p| p.2),
        new.evidence_policy,
        new.recurrence_id,
        new.recurring_type,
        new.recurring_interval,
        new.recurring_string,
        new.is_recurring,
        new.reminder_time,
    ])?;
    Ok(conn.last_insert_rowid())
}

/// Writes the fields a PUT may change (and the assignee).
pub fn update_fields(conn: &Connection, t: &TaskRow) -> Result<()> {
    conn.prepare_cached(
        "UPDATE tasks SET content = ?2, description = ?3, project_id = ?4, priority = ?5, \
         labels = ?6, due_date = ?7, due_time = ?8, assigned_to_agent_id = ?9, \
         evidence_policy = ?10, recurring_type = ?11, recurring_interval = ?12, \
         recurring_string = ?13, is_recurring = ?14, reminder_time = ?15, updated_at = ?16 \
         WHERE id = ?1",
    )?
    .execute(params![
        t.id,
        t.content,
        t.description,
        t.project_id,
        t.priority,
        t.labels,
        t.due_date,
        t.due_time,
        t.assigned_to_agent_id,
        t.evidence_policy,
        t.recurring_type,
        t.recurring_interval,
        t.recurring_string,
        t.is_recurring,
        t.reminder_time,
        clock::now_string()
    ])?;
    Ok(())
}

/// Writes a state the machine chose; `clear_claim` also clears the
/// claim's columns (holder, lease, session state).
pub fn write_state(conn: &Connection, id: i64, state: State, clear_claim: bool) -> Result<()> {
    let sql = if clear_claim {
        "UPDATE tasks SET status = ?2, blocked_reason = ?3, updated_at = ?4, \
         claimed_by_agent_id = NULL, claimed_at = NULL, lease_expires_at = NULL, \
         session_state = NULL, session_state_detail = NULL WHERE id = ?1"
    } else {
        "UPDATE tasks SET status = ?2, blocked_reason = ?3, updated_at = ?4 WHERE id = ?1"
    };
    conn.prepare_cached(sql)?.execute(params![
        id,
        state.status.as_str(),
        state.blocked_reason.map(BlockedReason::as_str),
        clock::now_string()
    ])?;
    Ok(())
}

/// Records completion: time, attribution, evidence; a failure reason goes.
pub fn mark_completed(
    conn: &Connection,
    id: i64,
    by: Option<i64>,
    evidence: Option<&str>,
) -> Result<()> {
    conn.prepare_cached(
        "UPDATE tasks SET completed_at = ?2, completed_by_agent_id = ?3, \
         completion_evidence = COALESCE(?4, completion_evidence), failure_reason = NULL \
         WHERE id = ?1",
    )?
    .execute(params![id, clock::now_string(), by, evidence])?;
    Ok(())
}

/// Records failure: the reason; a completion time goes.
pub fn mark_failed(conn: &Connection, id: i64, reason: Option<&str>) -> Result<()> {
    conn.prepare_cached("UPDATE tasks SET failure_reason = ?2, completed_at = NULL WHERE id = ?1")?
        .execute(params![id, reason])?;
    Ok(())
}

/// Clears what completion or failure recorded (a reopen).
pub fn clear_outcome(conn: &Connection, id: i64) -> Result<()> {
    conn.prepare_cached(
        "UPDATE tasks SET completed_at = NULL, completed_by_agent_id = NULL, \
         failure_reason = NULL WHERE id = ?1",
    )?
    .execute([id])?;
    Ok(())
}

/// Sets the assignee (hand-off).
pub fn set_assignee(conn: &Connection, id: i64, agent: Option<i64>) -> Result<()> {
    conn.prepare_cached(
        "UPDATE tasks SET assigned_to_agent_id = ?2, updated_at = ?3 WHERE id = ?1",
    )?
    .execute(params![id, agent, clock::now_string()])?;
    Ok(())
}

/// Gives the claim to `agent` until `lease_end`; the session state starts
/// over.
pub fn take_claim(conn: &Connection, id: i64, agent: i64, lease_end: &str) -> Result<()> {
    let now = clock::now_string();
    conn.prepare_cached(
        "UPDATE tasks SET claimed_by_agent_id = ?2, claimed_at = ?3, lease_expires_at = ?4, \
         last_heartbeat_at = ?3, session_state = NULL, session_state_detail = NULL \
         WHERE id = ?1",
    )?
    .execute(params![id, agent, now, lease_end])?;
    Ok(())
}

/// Moves the lease's end (a heartbeat).
pub fn extend_lease(conn: &Connection, id: i64, lease_end: &str) -> Result<()> {
    conn.prepare_cached(
        "UPDATE tasks SET lease_expires_at = ?2, last_heartbeat_at = ?3 WHERE id = ?1",
    )?
    .execute(params![id, lease_end, clock::now_string()])?;
    Ok(())
}

pub fn set_session_state(
    conn: &Connection,
    id: i64,
    state: &str,
    detail: Option<&str>,
) -> Result<()> {
    conn.prepare_cached(
        "UPDATE tasks SET session_state = ?2, session_state_detail = ?3, updated_at = ?4 \
         WHERE id = ?1",
    )?
    .execute(params![id, state, detail, clock::now_string()])?;
    Ok(())
}

/// Keeps a hand-off note for the next holder.
pub fn set_handoff(conn: &Connection, id: i64, note: &str) -> Result<()> {
    conn.prepare_cached("UPDATE tasks SET handoff = ?2 WHERE id = ?1")?
        .execute(params![id, note])?;
    Ok(())
}

/// Tasks whose claim's lease ran out at `now` (at most 500).
pub fn expired_claims(conn: &Connection, now: &str) -> Result<Vec<i64>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id FROM tasks WHERE claimed_by_agent_id IS NOT NULL AND lease_expires_at <= ?1 \
         LIMIT 500",
    )?;
    let ids = stmt.query_map([now], |r| r.get(0))?;
    Ok(ids.collect::<rusqlite::Result<_>>()?)
}

/// Deletes a task; its children keep their place in the chain but lose
/// their parent link (the schema sets it null).
pub fn delete(conn: &Connection, id: i64) -> Result<()> {
    // The recall index is contentless: its rows go with the entries.
    super::context::forget_task(conn, id)?;
    conn.prepare_cached("DELETE FROM tasks WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}

/// Marks a task changed (`updated_at`) when something it shows changed in
/// another table (subtasks, dependencies, comments), which also drops its
/// cached rendering (the writer's update hook sees the `tasks` row).
pub fn touch(conn: &Connection, id: i64) -> Result<()> {
    conn.prepare_cached("UPDATE tasks SET updated_at = ?2 WHERE id = ?1")?
        .execute(params![id, clock::now_string()])?;
    Ok(())
}

/// Direct children of a task, oldest first.
pub fn children(conn: &Connection, id: i64) -> Result<Vec<TaskRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM tasks t WHERE t.parent_task_id = ?1 ORDER BY t.id"
    ))?;
    let rows = stmt.query_map([id], from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Ids of the direct children of a task.
pub fn child_ids(conn: &Connection, id: i64) -> Result<Vec<i64>> {
    let mut stmt = conn.prepare_cached("SELECT id FROM tasks WHERE parent_task_id = ?1")?;
    let ids = stmt.query_map([id], |r| r.get(0))?;
    Ok(ids.collect::<rusqlite::Result<_>>()?)
}

/// Every task of the tree rooted at `root`, by depth then creation.
pub fn tree(conn: &Connection, root: i64) -> Result<Vec<TaskRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM tasks t WHERE t.root_task_id = ?1 \
         ORDER BY t.delegation_depth, t.id"
    ))?;
    let rows = stmt.query_map([root], from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Loads a task by id, or says it does not exist (404).
pub fn require(conn: &Connection, id: i64) -> Result<TaskRow> {
    get(conn, id)?.ok_or_else(|| Error::not_found(format!("task {id} not found")))
}
