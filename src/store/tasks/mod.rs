//! The `tasks` table: rows, the writes that change them, and the two ways
//! they are read in bulk ([`list`] for `GET /tasks`, [`render`] for every
//! answer and event payload).
//!
//! These are plain reads and writes: who may do them, and what status a
//! task moves to, is decided by the operations (`crate::ops`) with the
//! rules of `crate::domain`.

pub mod list;
pub mod render;

use std::sync::LazyLock;

use rusqlite::types::{FromSql, FromSqlResult, ToSqlOutput, Value as SqlValue, ValueRef};
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row, ToSql};
use serde::{Serialize, Serializer};
use serde_json::value::RawValue;

use crate::domain::clock;
use crate::domain::lifecycle::{BlockedReason, State, Status};
use crate::error::{Error, Result};

pub use render::{json, TaskJson};

/// A JSON document stored as text (`labels`), serialized as itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonText(pub String);

impl Default for JsonText {
    fn default() -> Self {
        JsonText("[]".into())
    }
}

impl Serialize for JsonText {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let raw: &RawValue = serde_json::from_str(&self.0).map_err(serde::ser::Error::custom)?;
        raw.serialize(s)
    }
}

impl FromSql for JsonText {
    fn column_result(v: ValueRef<'_>) -> FromSqlResult<Self> {
        String::column_result(v).map(JsonText)
    }
}

impl ToSql for JsonText {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        self.0.to_sql()
    }
}

/// Declares the fields of a task that its writers set and every reader
/// sees as stored — once: the struct, its columns in order, how a row
/// fills it, the values to bind, and [`FieldPatch`] (each field optional)
/// with how a patch applies.
macro_rules! fields {
    ($($(#[$doc:meta])* $field:ident: $ty:ty,)*) => {
        /// What a task's writers set (SPEC §5), as stored.
        #[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
        pub struct Fields {
            $($(#[$doc])* pub $field: $ty,)*
        }

        /// Changes to [`Fields`]: `None` leaves a field alone.
        #[derive(Debug, Clone, Default)]
        pub struct FieldPatch {
            $(pub $field: Option<$ty>,)*
        }

        impl Fields {
            /// The columns, in declaration order.
            pub const COLUMNS: &'static [&'static str] = &[$(stringify!($field),)*];

            /// Reads the fields from `row`, starting at column `at`.
            #[allow(unused_assignments)]
            pub fn read(row: &Row, mut at: usize) -> rusqlite::Result<Fields> {
                Ok(Fields {
                    $($field: {
                        let v = row.get(at)?;
                        at += 1;
                        v
                    },)*
                })
            }

            /// The values to bind, in [`Fields::COLUMNS`] order.
            pub fn values(&self) -> Vec<&dyn ToSql> {
                vec![$(&self.$field as &dyn ToSql,)*]
            }

            /// Applies `patch`; true if it named any field.
            pub fn apply(&mut self, patch: FieldPatch) -> bool {
                let mut named = false;
                $(if let Some(v) = patch.$field {
                    self.$field = v;
                    named = true;
                })*
                named
            }
        }

        impl FieldPatch {
            pub fn is_empty(&self) -> bool {
                true $(&& self.$field.is_none())*
            }
        }
    };
}

fields! {
    content: String,
    description: Option<String>,
    project_id: Option<i64>,
    /// 1 (most urgent) to 4.
    priority: i64,
    /// A JSON array of strings.
    #[schema(value_type = Vec<String>)]
    labels: JsonText,
    /// `YYYY-MM-DD`.
    due_date: Option<String>,
    /// `HH:MM[:SS]`.
    due_time: Option<String>,
    /// `"required"` or null.
    evidence_policy: Option<String>,
    recurring_type: Option<String>,
    recurring_interval: Option<i64>,
    recurring_string: Option<String>,
    is_recurring: bool,
    reminder_time: Option<String>,
    /// The agent answerable for the outcome: the creator's by default, a
    /// delegated child its parent's (SPEC §5).
    accountable_agent_id: Option<i64>,
}

impl Fields {
    pub fn labels(&self) -> Vec<String> {
        serde_json::from_str(&self.labels.0).unwrap_or_default()
    }
}

/// One row of `tasks`, as stored: the [`Fields`] its writers set, and the
/// state, ownership, chain, context, claim and outcome the operations
/// keep.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskRow {
    pub id: i64,
    pub fields: Fields,
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
    pub recurrence_id: Option<i64>,
    pub failure_reason: Option<String>,
    /// The fencing token: incremented by every claim (SPEC §10).
    pub claim_generation: i64,
    /// When a lease last ran out with nobody claiming the task since.
    pub abandoned_at: Option<String>,
    /// The first due date of a legacy `is_recurring` series.
    pub recurrence_anchor: Option<String>,
}

/// The columns [`from_row`] reads, for `SELECT {COLUMNS} FROM tasks t`:
/// the kept ones, then [`Fields::COLUMNS`].
pub static COLUMNS: LazyLock<String> = LazyLock::new(|| {
    let kept = "t.id, t.status, t.blocked_reason, t.completed_at, t.created_at, t.updated_at, \
        t.created_by_agent_id, t.assigned_to_agent_id, t.completed_by_agent_id, \
        t.parent_task_id, t.root_task_id, t.delegation_depth, t.context, t.context_version, \
        t.claimed_by_agent_id, t.claimed_at, t.lease_expires_at, t.last_heartbeat_at, \
        t.session_state, t.session_state_detail, t.handoff, t.completion_evidence, \
        t.recurrence_id, t.failure_reason, t.claim_generation, t.abandoned_at, \
        t.recurrence_anchor";
    let fields: Vec<String> = Fields::COLUMNS.iter().map(|c| format!("t.{c}")).collect();
    format!("{kept}, {}", fields.join(", "))
});

pub fn from_row(r: &Row) -> rusqlite::Result<TaskRow> {
    Ok(TaskRow {
        id: r.get(0)?,
        status: r.get(1)?,
        blocked_reason: r.get(2)?,
        completed_at: r.get(3)?,
        created_at: r.get(4)?,
        updated_at: r.get(5)?,
        created_by_agent_id: r.get(6)?,
        assigned_to_agent_id: r.get(7)?,
        completed_by_agent_id: r.get(8)?,
        parent_task_id: r.get(9)?,
        root_task_id: r.get(10)?,
        delegation_depth: r.get(11)?,
        context: r.get(12)?,
        context_version: r.get(13)?,
        claimed_by_agent_id: r.get(14)?,
        claimed_at: r.get(15)?,
        lease_expires_at: r.get(16)?,
        last_heartbeat_at: r.get(17)?,
        session_state: r.get(18)?,
        session_state_detail: r.get(19)?,
        handoff: r.get(20)?,
        completion_evidence: r.get(21)?,
        recurrence_id: r.get(22)?,
        failure_reason: r.get(23)?,
        claim_generation: r.get(24)?,
        abandoned_at: r.get(25)?,
        recurrence_anchor: r.get(26)?,
        fields: Fields::read(r, 27)?,
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
}

pub fn get(conn: &Connection, id: i64) -> Result<Option<TaskRow>> {
    // Built once: a write reads its task two or three times, and formatting
    // the kilobyte of SQL for each was a visible part of a queue job.
    static BY_ID: LazyLock<String> =
        LazyLock::new(|| format!("SELECT {} FROM tasks t WHERE t.id = ?1", *COLUMNS));
    Ok(conn
        .prepare_cached(&BY_ID)?
        .query_row([id], from_row)
        .optional()?)
}

/// A task to insert, already validated and resolved.
#[derive(Debug, Default, Clone)]
pub struct NewRow {
    pub fields: Fields,
    pub created_by: Option<i64>,
    pub assigned_to: Option<i64>,
    /// The parent, its root and this task's depth (a delegated child).
    pub parent: Option<(i64, i64, i64)>,
    pub recurrence_id: Option<i64>,
    /// The first due date of a legacy `is_recurring` series.
    pub recurrence_anchor: Option<String>,
}

/// `?N, ?N+1, …` for `n` values from `?from`.
fn placeholders(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Inserts a task with its initial state; returns its id.
pub fn insert(conn: &Connection, new: &NewRow, state: State) -> Result<i64> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        // Only the writer inserts tasks, so a root's id (its own root) is
        // the next AUTOINCREMENT value, known before the insert.
        format!(
            "INSERT INTO tasks (status, blocked_reason, created_at, updated_at, \
             created_by_agent_id, assigned_to_agent_id, parent_task_id, root_task_id, \
             delegation_depth, recurrence_id, recurrence_anchor, {}) \
             VALUES (?1, ?2, ?3, ?3, ?4, ?5, ?6, COALESCE(?7, (SELECT COALESCE((SELECT seq \
             FROM sqlite_sequence WHERE name = 'tasks'), 0) + 1)), ?8, ?9, ?10, {})",
            Fields::COLUMNS.join(", "),
            placeholders(11, Fields::COLUMNS.len())
        )
    });
    let now = clock::now_string();
    let status = state.status.as_str();
    let reason = state.blocked_reason.map(BlockedReason::as_str);
    let (parent, root, depth) = match new.parent {
        Some((p, r, d)) => (Some(p), Some(r), d),
        None => (None, None, 0),
    };
    let mut values: Vec<&dyn ToSql> = vec![
        &status,
        &reason,
        &now,
        &new.created_by,
        &new.assigned_to,
        &parent,
        &root,
        &depth,
        &new.recurrence_id,
        &new.recurrence_anchor,
    ];
    values.extend(new.fields.values());
    conn.prepare_cached(&SQL)?
        .execute(params_from_iter(values))?;
    Ok(conn.last_insert_rowid())
}

/// Writes a task's [`Fields`], its assignee and the anchor of its legacy
/// recurring series (`recurrence_anchor`, SPEC §5), in one `UPDATE` (a PUT).
pub fn update_fields(conn: &Connection, t: &TaskRow) -> Result<()> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        let sets: Vec<String> = Fields::COLUMNS
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c} = ?{}", i + 5))
            .collect();
        format!(
            "UPDATE tasks SET assigned_to_agent_id = ?2, updated_at = ?3, \
             recurrence_anchor = ?4, {} WHERE id = ?1",
            sets.join(", ")
        )
    });
    let now = clock::now_string();
    let mut values: Vec<&dyn ToSql> =
        vec![&t.id, &t.assigned_to_agent_id, &now, &t.recurrence_anchor];
    values.extend(t.fields.values());
    conn.prepare_cached(&SQL)?
        .execute(params_from_iter(values))?;
    Ok(())
}

/// What a transition records besides the state. It is written by the
/// same `UPDATE` as the state: the row and its indexes are written once
/// per operation, not once per column group (on the claim → complete path
/// that was a quarter of the single writer's time).
#[derive(Debug, Clone, Copy)]
pub enum Record<'a> {
    /// The state alone.
    Nothing,
    /// A claim: the holder and the lease's end; the session state starts
    /// over and the fencing token (`claim_generation`) moves on.
    Claim { agent: i64, lease_end: &'a str },
    /// Completion: time, attribution, evidence (kept if none is given); a
    /// failure reason goes.
    Completion {
        by: Option<i64>,
        evidence: Option<&'a str>,
    },
    /// Failure: the reason; a completion time goes.
    Failure { reason: Option<&'a str> },
    /// A reopen: what completion or failure recorded goes.
    Reopen,
}

impl Record<'_> {
    pub fn is_nothing(&self) -> bool {
        matches!(self, Record::Nothing)
    }
}

/// Writes a state the machine chose and what the operation records with
/// it, in one `UPDATE` of task `id`, stamped `now` (see [`clock::format`]);
/// `clear_claim` also clears the claim's columns (holder, lease, session
/// state). [`written`] says what the row then holds.
pub fn write_state(
    conn: &Connection,
    id: i64,
    state: State,
    clear_claim: bool,
    record: Record,
    now: &str,
) -> Result<()> {
    let mut sql =
        String::from("UPDATE tasks SET status = ?2, blocked_reason = ?3, updated_at = ?4");
    let mut values: Vec<SqlValue> = vec![
        id.into(),
        state.status.as_str().to_string().into(),
        state
            .blocked_reason
            .map(|r| SqlValue::Text(r.as_str().to_string()))
            .unwrap_or(SqlValue::Null),
        now.to_string().into(),
    ];
    if clear_claim {
        sql.push_str(
            ", claimed_by_agent_id = NULL, claimed_at = NULL, lease_expires_at = NULL, \
             session_state = NULL, session_state_detail = NULL",
        );
    }
    let text = |t: Option<&str>| t.map_or(SqlValue::Null, |t| SqlValue::Text(t.to_string()));
    let int = |i: Option<i64>| i.map_or(SqlValue::Null, SqlValue::Integer);
    match record {
        Record::Nothing => {}
        Record::Claim { agent, lease_end } => {
            sql.push_str(
                ", claimed_by_agent_id = ?5, claimed_at = ?4, lease_expires_at = ?6, \
                 last_heartbeat_at = ?4, session_state = NULL, session_state_detail = NULL, \
                 claim_generation = claim_generation + 1, abandoned_at = NULL",
            );
            values.extend([agent.into(), lease_end.to_string().into()]);
        }
        Record::Completion { by, evidence } => {
            sql.push_str(
                ", completed_at = ?4, completed_by_agent_id = ?5, \
                 completion_evidence = COALESCE(?6, completion_evidence), \
                 failure_reason = NULL, abandoned_at = NULL",
            );
            values.extend([int(by), text(evidence)]);
        }
        Record::Failure { reason } => {
            sql.push_str(", failure_reason = ?5, completed_at = NULL");
            values.push(text(reason));
        }
        Record::Reopen => sql
            .push_str(", completed_at = NULL, completed_by_agent_id = NULL, failure_reason = NULL"),
    }
    sql.push_str(" WHERE id = ?1");
    conn.prepare_cached(&sql)?
        .execute(params_from_iter(values))?;
    Ok(())
}

/// `task` as [`write_state`] with the same arguments leaves it: what
/// [`get`] would read back, without the read (a quarter of the reads of a
/// claim → complete job). It mirrors the `UPDATE` assignment by
/// assignment, in the same order (a later assignment to a column wins, as
/// in SQL); debug builds, which the tests run, compare the two wherever
/// an operation renders the result (`ops::emit_row`). What it says is
/// what the event shows and who may see the event (its audience comes
/// from the row's creator, assignee, completer and claimant).
pub fn written(
    task: &TaskRow,
    state: State,
    clear_claim: bool,
    record: Record,
    now: &str,
) -> TaskRow {
    let mut row = task.clone();
    row.status = state.status.as_str().to_string();
    row.blocked_reason = state.blocked_reason.map(|r| r.as_str().to_string());
    if clear_claim {
        row.claimed_by_agent_id = None;
        row.claimed_at = None;
        row.lease_expires_at = None;
        row.session_state = None;
        row.session_state_detail = None;
    }
    match record {
        Record::Nothing => {}
        Record::Claim { agent, lease_end } => {
            row.claimed_by_agent_id = Some(agent);
            row.claimed_at = Some(now.to_string());
            row.lease_expires_at = Some(lease_end.to_string());
            row.last_heartbeat_at = Some(now.to_string());
            row.session_state = None;
            row.session_state_detail = None;
            row.claim_generation += 1;
            row.abandoned_at = None;
        }
        Record::Completion { by, evidence } => {
            row.completed_at = Some(now.to_string());
            row.completed_by_agent_id = by;
            if let Some(evidence) = evidence {
                row.completion_evidence = Some(evidence.to_string());
            }
            row.failure_reason = None;
            row.abandoned_at = None;
        }
        Record::Failure { reason } => {
            row.failure_reason = reason.map(str::to_string);
            row.completed_at = None;
        }
        Record::Reopen => {
            row.completed_at = None;
            row.completed_by_agent_id = None;
            row.failure_reason = None;
        }
    }
    row.updated_at = now.to_string();
    row
}

/// Sets the assignee (hand-off).
pub fn set_assignee(conn: &Connection, id: i64, agent: Option<i64>) -> Result<()> {
    conn.prepare_cached(
        "UPDATE tasks SET assigned_to_agent_id = ?2, updated_at = ?3 WHERE id = ?1",
    )?
    .execute(params![id, agent, clock::now_string()])?;
    Ok(())
}

/// Notes that a lease ran out (the attention board's abandoned claims);
/// cleared by the next claim or by finishing the task.
pub fn mark_abandoned(conn: &Connection, id: i64) -> Result<()> {
    conn.prepare_cached("UPDATE tasks SET abandoned_at = ?2 WHERE id = ?1")?
        .execute(params![id, clock::now_string()])?;
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
        "SELECT id FROM tasks INDEXED BY tasks_leases WHERE claimed_by_agent_id IS NOT NULL \
         AND lease_expires_at <= ?1 LIMIT 500",
    )?;
    let ids = stmt.query_map([now], |r| r.get(0))?;
    Ok(ids.collect::<rusqlite::Result<_>>()?)
}

/// Whether any claim's lease ran out by `now` (one probe of
/// `tasks_leases`): the lease sweep asks this with a read first.
pub fn any_expired_claim(conn: &Connection, now: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM tasks INDEXED BY tasks_leases \
             WHERE claimed_by_agent_id IS NOT NULL AND lease_expires_at <= ?1)",
        )?
        .query_row([now], |r| r.get(0))?)
}

/// Deletes a task; its children keep their place in the chain but lose
/// their parent link (the schema sets it null).
pub fn delete(conn: &Connection, id: i64) -> Result<()> {
    // The recall index is contentless: its rows go with the entries.
    super::context::forget_task(conn, id)?;
    super::readers::forget_task(conn, id)?;
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
        "SELECT {} FROM tasks t WHERE t.parent_task_id = ?1 ORDER BY t.id",
        *COLUMNS
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
        "SELECT {} FROM tasks t WHERE t.root_task_id = ?1 \
         ORDER BY t.delegation_depth, t.id",
        *COLUMNS
    ))?;
    let rows = stmt.query_map([root], from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Loads a task by id, or says it does not exist (404).
pub fn require(conn: &Connection, id: i64) -> Result<TaskRow> {
    get(conn, id)?.ok_or_else(|| Error::not_found(format!("task {id} not found")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every record, with and without clearing the claim, in several
    /// states, from a task holding a claim, a completion, evidence and a
    /// failure reason (each to keep or to clear): [`written`] says what the
    /// `UPDATE` left. (The operations' debug check covers the claim, the
    /// completion, the failure and the reopen the way they happen; this
    /// covers every combination.)
    #[test]
    fn written_is_what_write_state_leaves() {
        let conn = Connection::open_in_memory().unwrap();
        crate::store::schema::migrate(&conn).unwrap();
        // Agents 7, 8 and 9 need not exist for what this compares.
        conn.pragma_update(None, "foreign_keys", false).unwrap();
        let open = State {
            status: Status::Open,
            blocked_reason: None,
            claimed: false,
        };
        let new = NewRow {
            fields: Fields {
                content: "probe".into(),
                priority: 2,
                ..Fields::default()
            },
            ..NewRow::default()
        };
        let id = insert(&conn, &new, open).unwrap();
        conn.execute(
            "UPDATE tasks SET claimed_by_agent_id = 7, claimed_at = 'a', lease_expires_at = 'b', \
             last_heartbeat_at = 'c', session_state = 'working', session_state_detail = 'd', \
             completion_evidence = '[1]', failure_reason = 'f', completed_at = 'g', \
             completed_by_agent_id = 8, abandoned_at = 'h', claim_generation = 3 WHERE id = ?1",
            [id],
        )
        .unwrap();
        let records = [
            Record::Nothing,
            Record::Claim {
                agent: 9,
                lease_end: "2026-12-01T00:05:00.000Z",
            },
            Record::Completion {
                by: Some(9),
                evidence: Some("[2]"),
            },
            Record::Completion {
                by: None,
                evidence: None,
            },
            Record::Failure { reason: Some("r") },
            Record::Failure { reason: None },
            Record::Reopen,
        ];
        let states = Status::ALL.iter().map(|&status| State {
            status,
            blocked_reason: (status == Status::Blocked).then_some(BlockedReason::DependencyFailed),
            claimed: status == Status::Claimed,
        });
        let now = "2026-12-01T00:00:00.000Z";
        for state in states {
            for record in records {
                for clear_claim in [false, true] {
                    let tx = conn.unchecked_transaction().unwrap();
                    let before = get(&tx, id).unwrap().unwrap();
                    write_state(&tx, id, state, clear_claim, record, now).unwrap();
                    let after = get(&tx, id).unwrap().unwrap();
                    assert_eq!(
                        written(&before, state, clear_claim, record, now),
                        after,
                        "{state:?} {record:?} clear_claim={clear_claim}"
                    );
                    tx.rollback().unwrap();
                }
            }
        }
    }
}
