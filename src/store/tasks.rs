//! Tasks: rows, rendering, scoped reads, lists, and the state changes
//! (create, update, complete, fail, delete, dependencies).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use rusqlite::types::Value as SqlValue;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::agents::{self, AgentBrief};
use super::cache::{RenderCache, Rendered};
use super::comments::{self, Subtask};
use super::context::{self, Source};
use super::delegation::{self, DelegationKind};
use super::event_log;
use super::projects::{self, ProjectBrief};
use super::Tx;
use crate::domain::access::Caller;
use crate::domain::clock;
use crate::domain::input::AgentRef;
use crate::error::{Error, Result};

pub const STATUSES: &[&str] = &[
    "open",
    "in_progress",
    "claimed",
    "delegated",
    "blocked",
    "completed",
    "failed",
];

/// Statuses a task leaves only through an explicit reopen.
pub fn is_finished(status: &str) -> bool {
    status == "completed" || status == "failed"
}

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
    /// A claim whose lease has not run out.
    pub fn has_live_claim(&self, now: &str) -> bool {
        self.claimed_by_agent_id.is_some()
            && self.lease_expires_at.as_deref().is_some_and(|l| l > now)
    }

    /// In the claim queue of `agent`: unfinished, unblocked, no live claim,
    /// unassigned or assigned to that agent.
    pub fn claimable_by(&self, agent: Option<i64>, now: &str) -> bool {
        !is_finished(&self.status)
            && self.status != "blocked"
            && !self.has_live_claim(now)
            && (self.assigned_to_agent_id.is_none() || self.assigned_to_agent_id == agent)
    }
}

pub fn get(conn: &Connection, id: i64) -> Result<Option<TaskRow>> {
    Ok(conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM tasks t WHERE t.id = ?1"))?
        .query_row([id], from_row)
        .optional()?)
}

// ---------------------------------------------------------------- access

/// What a caller may do with one task, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    Read,
    Comment,
    Mutate,
}

/// What an endpoint needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Read,
    Comment,
    Mutate,
    /// Assign or delegate: mutators, plus coordinators on any task.
    Delegate,
}

/// Does `agent` reach the task through the task itself or anything upstream
/// of it (created, assigned, completed, claimed, or handed it on)?
fn reaches_upstream(conn: &Connection, task_id: i64, agent: i64) -> Result<bool> {
    let sql = "WITH RECURSIVE up(id) AS (
          SELECT ?1
          UNION SELECT t.parent_task_id FROM tasks t JOIN up ON t.id = up.id
                WHERE t.parent_task_id IS NOT NULL)
        SELECT EXISTS(SELECT 1 FROM tasks t WHERE t.id IN (SELECT id FROM up)
                AND (t.created_by_agent_id = ?2 OR t.assigned_to_agent_id = ?2
                     OR t.completed_by_agent_id = ?2 OR t.claimed_by_agent_id = ?2))
            OR EXISTS(SELECT 1 FROM delegation_events d WHERE d.task_id IN (SELECT id FROM up)
                AND (d.actor_agent_id = ?2 OR d.from_agent_id = ?2))";
    Ok(conn
        .prepare_cached(sql)?
        .query_row(params![task_id, agent], |r| r.get(0))?)
}

pub fn access(conn: &Connection, caller: &Caller, task: &TaskRow) -> Result<Option<Access>> {
    let Some(agent) = caller.agent() else {
        return Ok(Some(Access::Mutate));
    };
    if caller.is_admin() {
        return Ok(Some(Access::Mutate));
    }
    let me = Some(agent.id);
    if task.created_by_agent_id == me
        || task.assigned_to_agent_id == me
        || task.claimed_by_agent_id == me
    {
        return Ok(Some(Access::Mutate));
    }
    if caller.coordinates() {
        return Ok(Some(Access::Comment));
    }
    if task.completed_by_agent_id == me || reaches_upstream(conn, task.id, agent.id)? {
        return Ok(Some(Access::Comment));
    }
    if agent.read_all || task.claimable_by(me, &clock::now_string()) {
        return Ok(Some(Access::Read));
    }
    Ok(None)
}

/// Loads a task the caller may use as `need` says: a task it cannot read is
/// a 404, one it can read but not change a 403.
pub fn require(conn: &Connection, caller: &Caller, id: i64, need: Need) -> Result<TaskRow> {
    let not_found = || Error::not_found(format!("task {id} not found"));
    let task = get(conn, id)?.ok_or_else(not_found)?;
    let access = access(conn, caller, &task)?.ok_or_else(not_found)?;
    let allowed = match need {
        Need::Read => true,
        Need::Comment => access >= Access::Comment,
        Need::Mutate => access == Access::Mutate,
        Need::Delegate => access == Access::Mutate || caller.coordinates(),
    };
    if !allowed {
        let what = match need {
            Need::Comment => "comment on",
            Need::Delegate => "assign or delegate",
            _ => "modify",
        };
        return Err(Error::forbidden(format!(
            "you may read task {id} but not {what} it"
        )));
    }
    Ok(task)
}

/// SQL (a CTE named `visible`) for the tasks a worker reads: those it
/// created, is assigned, completed, claims or handed on, and everything
/// downstream of them. Parameter `?1` is the agent id.
pub const VISIBLE_CTE: &str = "WITH RECURSIVE seed(id) AS (
        SELECT id FROM tasks WHERE created_by_agent_id = ?1
        UNION SELECT id FROM tasks WHERE assigned_to_agent_id = ?1
        UNION SELECT id FROM tasks WHERE completed_by_agent_id = ?1
        UNION SELECT id FROM tasks WHERE claimed_by_agent_id = ?1
        UNION SELECT task_id FROM delegation_events WHERE actor_agent_id = ?1 OR from_agent_id = ?1),
    visible(id) AS (
        SELECT id FROM seed
        UNION SELECT t.id FROM tasks t JOIN visible v ON t.parent_task_id = v.id) ";

/// Agents who can read the task through their own work (not through a
/// role), as `",3,7,"`: the audience of an event about it.
pub fn audience(conn: &Connection, task_id: i64) -> Result<String> {
    // One indexed lookup per level, walking up the parents: the recursive
    // form (a materialized CTE and two IN-subqueries) cost several times
    // more, and this runs for every event.
    let mut stmt = conn.prepare_cached(
        "SELECT created_by_agent_id, assigned_to_agent_id, completed_by_agent_id, \
                claimed_by_agent_id, parent_task_id FROM tasks WHERE id = ?1 \
         UNION ALL SELECT actor_agent_id, from_agent_id, NULL, NULL, NULL \
                FROM delegation_events WHERE task_id = ?1",
    )?;
    let mut ids = std::collections::BTreeSet::new();
    let mut seen = std::collections::HashSet::new();
    let mut next = Some(task_id);
    while let Some(id) = next.take().filter(|id| seen.insert(*id)) {
        let mut rows = stmt.query([id])?;
        while let Some(row) = rows.next()? {
            for i in 0..4 {
                if let Some(agent) = row.get::<_, Option<i64>>(i)? {
                    ids.insert(agent);
                }
            }
            next = next.or(row.get(4)?);
        }
    }
    let mut out = String::from(",");
    for id in ids {
        out.push_str(&id.to_string());
        out.push(',');
    }
    Ok(out)
}

// ---------------------------------------------------------------- rendering

fn raw(json: &str) -> Box<RawValue> {
    RawValue::from_string(json.to_string())
        .unwrap_or_else(|_| RawValue::from_string("null".into()).expect("null is JSON"))
}

/// A task as every response and event payload shows it.
#[derive(Debug, Serialize)]
pub struct TaskView {
    pub id: i64,
    pub content: String,
    pub description: Option<String>,
    pub project_id: Option<i64>,
    pub project: Option<ProjectBrief>,
    pub priority: i64,
    pub labels: Box<RawValue>,
    pub due_date: Option<String>,
    pub due_time: Option<String>,
    pub status: String,
    pub blocked_reason: Option<String>,
    pub completed: bool,
    pub completed_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub created_by_agent_id: Option<i64>,
    pub assigned_to_agent_id: Option<i64>,
    pub completed_by_agent_id: Option<i64>,
    pub created_by_agent: Option<AgentBrief>,
    pub assigned_to_agent: Option<AgentBrief>,
    pub completed_by_agent: Option<AgentBrief>,
    pub created_by: Option<String>,
    pub assigned_to: Option<String>,
    pub completed_by: Option<String>,
    pub parent_task_id: Option<i64>,
    pub parent_id: Option<i64>,
    pub root_task_id: Option<i64>,
    pub delegation_depth: i64,
    pub context: Box<RawValue>,
    pub metadata: Box<RawValue>,
    pub context_version: i64,
    pub claimed_by_agent_id: Option<i64>,
    pub claimed_by: Option<String>,
    pub claimed_at: Option<String>,
    pub lease_expires_at: Option<String>,
    pub last_heartbeat_at: Option<String>,
    pub session_state: Option<String>,
    pub session_state_detail: Option<String>,
    pub handoff: Option<String>,
    pub depends_on: Vec<i64>,
    pub completion_evidence: Option<Box<RawValue>>,
    pub evidence_policy: Option<String>,
    pub subtasks: Vec<Subtask>,
    pub recurrence_id: Option<i64>,
    pub failure_reason: Option<String>,
    pub recurring_type: Option<String>,
    pub recurring_interval: Option<i64>,
    pub recurring_string: Option<String>,
    pub is_recurring: bool,
    pub reminder_time: Option<String>,
}

fn dependencies_of(conn: &Connection, ids: &[i64]) -> Result<HashMap<i64, Vec<i64>>> {
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

/// Renders rows with their nested agents, project, subtasks and
/// dependencies, loading each kind of relation once for the whole list.
pub fn render(conn: &Connection, rows: Vec<TaskRow>) -> Result<Vec<TaskView>> {
    let mut agent_cache: HashMap<i64, Option<AgentBrief>> = HashMap::new();
    let mut project_cache: HashMap<i64, Option<ProjectBrief>> = HashMap::new();
    let mut agent = |id: Option<i64>| -> Result<Option<AgentBrief>> {
        let Some(id) = id else { return Ok(None) };
        if let Some(b) = agent_cache.get(&id) {
            return Ok(b.clone());
        }
        let b = agents::brief(conn, id)?;
        agent_cache.insert(id, b.clone());
        Ok(b)
    };
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let (mut subtasks, mut deps) = if rows.is_empty() {
        (HashMap::new(), HashMap::new())
    } else {
        (
            comments::subtasks_of(conn, &ids)?,
            dependencies_of(conn, &ids)?,
        )
    };
    let mut out = Vec::with_capacity(rows.len());
    for t in rows {
        let created_by_agent = agent(t.created_by_agent_id)?;
        let assigned_to_agent = agent(t.assigned_to_agent_id)?;
        let completed_by_agent = agent(t.completed_by_agent_id)?;
        let claimed_by = agent(t.claimed_by_agent_id)?.map(|a| a.name);
        let project = match t.project_id {
            None => None,
            Some(pid) => match project_cache.get(&pid) {
                Some(p) => p.clone(),
                None => {
                    let p = projects::brief(conn, pid)?;
                    project_cache.insert(pid, p.clone());
                    p
                }
            },
        };
        let context = raw(&t.context);
        out.push(TaskView {
            id: t.id,
            completed: t.status == "completed",
            created_by: created_by_agent.as_ref().map(|a| a.name.clone()),
            assigned_to: assigned_to_agent.as_ref().map(|a| a.name.clone()),
            completed_by: completed_by_agent.as_ref().map(|a| a.name.clone()),
            created_by_agent,
            assigned_to_agent,
            completed_by_agent,
            project,
            labels: raw(&t.labels),
            metadata: context.clone(),
            context,
            completion_evidence: t.completion_evidence.as_deref().map(raw),
            subtasks: subtasks.remove(&t.id).unwrap_or_default(),
            depends_on: deps.remove(&t.id).unwrap_or_default(),
            content: t.content,
            description: t.description,
            project_id: t.project_id,
            priority: t.priority,
            due_date: t.due_date,
            due_time: t.due_time,
            status: t.status,
            blocked_reason: t.blocked_reason,
            completed_at: t.completed_at,
            created_at: t.created_at,
            updated_at: t.updated_at,
            created_by_agent_id: t.created_by_agent_id,
            assigned_to_agent_id: t.assigned_to_agent_id,
            completed_by_agent_id: t.completed_by_agent_id,
            parent_task_id: t.parent_task_id,
            parent_id: t.parent_task_id,
            root_task_id: t.root_task_id,
            delegation_depth: t.delegation_depth,
            context_version: t.context_version,
            claimed_by_agent_id: t.claimed_by_agent_id,
            claimed_by,
            claimed_at: t.claimed_at,
            lease_expires_at: t.lease_expires_at,
            last_heartbeat_at: t.last_heartbeat_at,
            session_state: t.session_state,
            session_state_detail: t.session_state_detail,
            handoff: t.handoff,
            evidence_policy: t.evidence_policy,
            recurrence_id: t.recurrence_id,
            failure_reason: t.failure_reason,
            recurring_type: t.recurring_type,
            recurring_interval: t.recurring_interval,
            recurring_string: t.recurring_string,
            is_recurring: t.is_recurring,
            reminder_time: t.reminder_time,
        });
    }
    Ok(out)
}

/// Renders tasks through the render cache, in the order given. Pass the
/// cache generation noted before this read's snapshot began.
pub fn render_cached(
    conn: &Connection,
    cache: &RenderCache,
    generation: u64,
    rows: Vec<TaskRow>,
) -> Result<Vec<Rendered>> {
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let mut out = cache.get_many(&ids);
    let missing: Vec<TaskRow> = rows
        .into_iter()
        .zip(&out)
        .filter(|(_, hit)| hit.is_none())
        .map(|(row, _)| row)
        .collect();
    fill(conn, cache, generation, &mut out, missing)?;
    Ok(out.into_iter().flatten().collect())
}

/// Renders tasks by id through the cache, loading rows only for misses.
pub fn render_ids(
    conn: &Connection,
    cache: &RenderCache,
    generation: u64,
    ids: &[i64],
) -> Result<Vec<Rendered>> {
    let mut out = cache.get_many(ids);
    let mut missing = Vec::new();
    for (id, hit) in ids.iter().zip(&out) {
        if hit.is_none() {
            missing.extend(get(conn, *id)?);
        }
    }
    fill(conn, cache, generation, &mut out, missing)?;
    Ok(out.into_iter().flatten().collect())
}

/// Renders `missing` (the rows of the empty slots of `out`, in order),
/// fills the slots and offers the renderings to the cache.
fn fill(
    conn: &Connection,
    cache: &RenderCache,
    generation: u64,
    out: &mut [Option<Rendered>],
    missing: Vec<TaskRow>,
) -> Result<()> {
    if missing.is_empty() {
        return Ok(());
    }
    let mut fresh = Vec::with_capacity(missing.len());
    for view in render(conn, missing)? {
        let json = serde_json::value::to_raw_value(&view)?;
        fresh.push((view.id, Rendered(Arc::from(json))));
    }
    let mut next = fresh.iter();
    for slot in out.iter_mut().filter(|s| s.is_none()) {
        *slot = next.next().map(|(_, r)| r.clone());
    }
    cache.store(generation, fresh);
    Ok(())
}

/// Loads and renders a task by id (after a write, for the answer).
pub fn view(conn: &Connection, id: i64) -> Result<TaskView> {
    let row = get(conn, id)?.ok_or_else(|| Error::not_found(format!("task {id} not found")))?;
    render(conn, vec![row])?
        .pop()
        .ok_or_else(|| Error::internal("rendering lost the task"))
}

/// A task serialized once, for both an event payload and the response.
pub type TaskJson = Box<RawValue>;

/// Renders task `id` as it is now, as JSON.
pub fn json(conn: &Connection, id: i64) -> Result<TaskJson> {
    Ok(serde_json::value::to_raw_value(&view(conn, id)?)?)
}

/// Records `kind` for task `id` (rendered as it is now) and returns the
/// rendering, which is also the answer of the write that caused it.
pub fn emit(
    tx: &Tx,
    caller: &Caller,
    id: i64,
    kind: &str,
    reason: Option<&str>,
) -> Result<TaskJson> {
    let task = json(tx, id)?;
    event_log::record(tx, kind, id, &task, caller, reason)?;
    Ok(task)
}

// ---------------------------------------------------------------- lists

/// Filters of `GET /tasks`, already validated.
#[derive(Debug, Default)]
pub struct Filter {
    pub assigned_to: Option<i64>,
    pub created_by: Option<i64>,
    pub statuses: Vec<String>,
    pub completed: Option<bool>,
    pub include_completed: bool,
    pub project_id: Option<i64>,
    pub labels: Vec<String>,
    pub priority: Option<i64>,
    pub search: Option<String>,
    pub due_on: Option<String>,
    pub due_after: Option<String>,
    pub due_before: Option<String>,
    pub overdue: bool,
    pub parent_task_id: Option<i64>,
    pub root_task_id: Option<i64>,
    pub claimed: Option<bool>,
    pub claimable: bool,
}

impl Filter {
    /// Filters with an index of their own, which select a bounded set of
    /// rows better than the caller's whole visible set would.
    fn narrows_to_a_subset(&self) -> bool {
        self.project_id.is_some()
            || self.parent_task_id.is_some()
            || self.root_task_id.is_some()
            || self.assigned_to.is_some()
            || self.created_by.is_some()
    }
}

/// Numbered parameters and WHERE clauses of a dynamic query.
#[derive(Default)]
pub struct Where {
    pub args: Vec<SqlValue>,
    pub clauses: Vec<String>,
}

impl Where {
    /// Binds a value and returns its placeholder (`?N`).
    pub fn bind(&mut self, value: SqlValue) -> String {
        self.args.push(value);
        format!("?{}", self.args.len())
    }
    pub fn add(&mut self, clause: impl Into<String>) {
        self.clauses.push(clause.into());
    }
    pub fn sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.clauses.join(" AND "))
        }
    }
}

/// The ids of what the caller can read, filtered and ordered; one more
/// than `limit` so the caller knows whether a next page exists. (Ids only:
/// the renderings mostly come from the cache.)
pub fn list(
    conn: &Connection,
    caller: &Caller,
    f: &Filter,
    limit: i64,
    offset: i64,
) -> Result<Vec<i64>> {
    let now = clock::now_string();
    let mut w = Where::default();
    let mut cte = "";
    // ?1 is always the caller's agent id (or -1), used by the scope CTE.
    let me = w.bind(SqlValue::Integer(caller.agent_id().unwrap_or(-1)));
    w.add(format!("{me} = {me}"));
    if f.claimable {
        let now = w.bind(SqlValue::Text(now.clone()));
        w.add(format!(
            "t.status NOT IN ('completed', 'failed', 'blocked') \
             AND (t.claimed_by_agent_id IS NULL OR t.lease_expires_at <= {now}) \
             AND (t.assigned_to_agent_id IS NULL OR t.assigned_to_agent_id = {me})"
        ));
    } else if !caller.reads_all() {
        cte = VISIBLE_CTE;
        if f.narrows_to_a_subset() {
            // The filter picks the rows (through its index); most of them are
            // the caller's own, and the visible set is computed only if one
            // is not (OR short-circuits; the subquery is built on first use).
            w.add(format!(
                "(t.created_by_agent_id = {me} OR t.assigned_to_agent_id = {me} \
                 OR t.claimed_by_agent_id = {me} OR t.completed_by_agent_id = {me} \
                 OR t.id IN (SELECT id FROM visible))"
            ));
        } else {
            // Otherwise the visible set picks the rows.
            w.add("t.id IN (SELECT id FROM visible)");
        }
    }
    if let Some(a) = f.assigned_to {
        let p = w.bind(SqlValue::Integer(a));
        w.add(format!("t.assigned_to_agent_id = {p}"));
    }
    if let Some(a) = f.created_by {
        let p = w.bind(SqlValue::Integer(a));
        w.add(format!("t.created_by_agent_id = {p}"));
    }
    if !f.statuses.is_empty() {
        let p = w.bind(SqlValue::Text(serde_json::to_string(&f.statuses)?));
        w.add(format!("t.status IN (SELECT value FROM json_each({p}))"));
    }
    match f.completed {
        Some(true) => w.add("t.status = 'completed'"),
        Some(false) => w.add("t.status != 'completed'"),
        None => {
            let asks_completed = f.statuses.iter().any(|s| s == "completed");
            if !f.include_completed && !asks_completed {
                w.add("t.status != 'completed'");
            }
        }
    }
    if let Some(v) = f.project_id {
        let p = w.bind(SqlValue::Integer(v));
        w.add(format!("t.project_id = {p}"));
    }
    for label in &f.labels {
        let p = w.bind(SqlValue::Text(label.clone()));
        w.add(format!(
            "EXISTS (SELECT 1 FROM json_each(t.labels) WHERE value = {p})"
        ));
    }
    if let Some(v) = f.priority {
        let p = w.bind(SqlValue::Integer(v));
        w.add(format!("t.priority = {p}"));
    }
    if let Some(s) = &f.search {
        let p = w.bind(SqlValue::Text(s.to_lowercase()));
        w.add(format!(
            "(instr(fold(t.content), {p}) > 0 OR instr(fold(t.description), {p}) > 0)"
        ));
    }
    if let Some(d) = &f.due_on {
        let p = w.bind(SqlValue::Text(d.clone()));
        w.add(format!("t.due_date = {p}"));
    }
    if let Some(d) = &f.due_after {
        let p = w.bind(SqlValue::Text(d.clone()));
        w.add(format!("t.due_date >= {p}"));
    }
    if let Some(d) = &f.due_before {
        let p = w.bind(SqlValue::Text(d.clone()));
        w.add(format!("t.due_date <= {p}"));
    }
    if f.overdue {
        let p = w.bind(SqlValue::Text(clock::format_date(clock::today())));
        w.add(format!(
            "t.due_date < {p} AND t.status NOT IN ('completed', 'failed')"
        ));
    }
    if let Some(v) = f.parent_task_id {
        let p = w.bind(SqlValue::Integer(v));
        w.add(format!("t.parent_task_id = {p}"));
    }
    if let Some(v) = f.root_task_id {
        let p = w.bind(SqlValue::Integer(v));
        w.add(format!("t.root_task_id = {p}"));
    }
    if let Some(claimed) = f.claimed {
        let p = w.bind(SqlValue::Text(now.clone()));
        w.add(if claimed {
            format!("t.claimed_by_agent_id IS NOT NULL AND t.lease_expires_at > {p}")
        } else {
            format!("(t.claimed_by_agent_id IS NULL OR t.lease_expires_at <= {p})")
        });
    }
    // Ordered here rather than by SQLite: without an index in this order
    // it sorts through a temporary b-tree, which cost more than the rest
    // of the query on a list of 1,000.
    let sql = format!(
        "{cte} SELECT t.id, t.status = 'completed', t.priority, t.due_date FROM tasks t{}",
        w.sql()
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(w.args), |r| {
        Ok(ListKey {
            completed: r.get(1)?,
            priority: r.get(2)?,
            due_date: r.get(3)?,
            id: r.get(0)?,
        })
    })?;
    let mut keys = rows.collect::<Result<Vec<_>, _>>()?;
    keys.sort_unstable_by(ListKey::order);
    let start = usize::try_from(offset).unwrap_or(0).min(keys.len());
    let take = usize::try_from(limit + 1).unwrap_or(usize::MAX);
    Ok(keys[start..].iter().take(take).map(|k| k.id).collect())
}

/// What the list order of SPEC §5 looks at: open before completed, then
/// priority, then due date (tasks without one last), newest first.
struct ListKey {
    completed: bool,
    priority: i64,
    due_date: Option<String>,
    id: i64,
}

impl ListKey {
    fn order(a: &ListKey, b: &ListKey) -> std::cmp::Ordering {
        (a.completed, a.priority, a.due_date.is_none(), &a.due_date)
            .cmp(&(b.completed, b.priority, b.due_date.is_none(), &b.due_date))
            .then(b.id.cmp(&a.id))
    }
}

// ---------------------------------------------------------------- writes

/// A validated new task.
#[derive(Debug, Default, Clone)]
pub struct NewTask {
    pub content: String,
    pub description: Option<String>,
    pub project_id: Option<i64>,
    pub priority: i64,
    pub labels: Vec<String>,
    pub due_date: Option<String>,
    pub due_time: Option<String>,
    pub status: Option<String>,
    pub assignee: Option<AgentRef>,
    pub parent_task_id: Option<i64>,
    pub depends_on: Vec<i64>,
    pub context: Option<Map<String, Value>>,
    pub evidence_policy: Option<String>,
    pub recurrence_id: Option<i64>,
    pub recurring_type: Option<String>,
    pub recurring_interval: Option<i64>,
    pub recurring_string: Option<String>,
    pub is_recurring: bool,
    pub reminder_time: Option<String>,
}

pub struct Limits {
    pub max_context_bytes: usize,
}

fn check_project(conn: &Connection, project_id: Option<i64>) -> Result<()> {
    if let Some(pid) = project_id {
        if projects::brief(conn, pid)?.is_none() {
            return Err(Error::validation(
                "project_id",
                format!("no project {pid}"),
            ));
        }
    }
    Ok(())
}

/// Creates a task (a root, or a delegated child when `parent_task_id` is
/// set) with its dependencies, initial context, delegation record and
/// `task.created` event. The caller has checked its right on the parent.
pub fn create(tx: &Tx, caller: &Caller, new: NewTask, limits: &Limits) -> Result<TaskJson> {
    check_project(tx, new.project_id)?;
    let assignee = new
        .assignee
        .as_ref()
        .map(|a| agents::resolve_active(tx, "assigned_to_agent_id", a))
        .transpose()?;
    // A parent the caller cannot read is a 404, like any unreadable task.
    let parent = new
        .parent_task_id
        .map(|pid| require(tx, caller, pid, Need::Delegate))
        .transpose()?;
    if let Some(p) = &parent {
        if is_finished(&p.status) {
            return Err(Error::conflict(format!(
                "task {} is {}; reopen it before delegating from it",
                p.id, p.status
            )));
        }
    }
    for dep in &new.depends_on {
        require(tx, caller, *dep, Need::Read).map_err(|_| {
            Error::validation("depends_on", format!("no task {dep} you can read"))
        })?;
    }
    let now = clock::now_string();
    let status = new.status.clone().unwrap_or_else(|| "open".into());
    let (depth, root) = match &parent {
        Some(p) => (p.delegation_depth + 1, p.root_task_id.or(Some(p.id))),
        None => (0, None),
    };
    // Only the writer inserts tasks, so a root's id (its own root) is the
    // next AUTOINCREMENT value, known before the insert.
    tx.prepare_cached(
        "INSERT INTO tasks (content, description, project_id, priority, labels, due_date, \
         due_time, status, created_at, updated_at, created_by_agent_id, assigned_to_agent_id, \
         parent_task_id, root_task_id, delegation_depth, evidence_policy, recurrence_id, \
         recurring_type, recurring_interval, recurring_string, is_recurring, reminder_time) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?10, ?11, ?12, \
         COALESCE(?13, (SELECT COALESCE((SELECT seq FROM sqlite_sequence \
         WHERE name = 'tasks'), 0) + 1)), ?14, ?15, ?16, \
         ?17, ?18, ?19, ?20, ?21)",
    )?
    .execute(params![
        new.content,
        new.description,
        new.project_id,
        new.priority,
        serde_json::to_string(&new.labels)?,
        new.due_date,
        new.due_time,
        status,
        now,
        caller.agent_id(),
        assignee.as_ref().map(|a| a.id),
        parent.as_ref().map(|p| p.id),
        root,
        depth,
        new.evidence_policy,
        new.recurrence_id,
        new.recurring_type,
        new.recurring_interval,
        new.recurring_string,
        new.is_recurring,
        new.reminder_time,
    ])?;
    let id = tx.last_insert_rowid();
    if let Some(ctx) = &new.context {
        context::write(tx, caller, id, ctx, Source::AgentInferred, None, limits)?;
    }
    for dep in &new.depends_on {
        add_dependency_row(tx, id, *dep)?;
    }
    if !new.depends_on.is_empty() {
        refresh_blocked(tx, id)?;
    }
    if let Some(p) = &parent {
        delegation::append(
            tx,
            &delegation::NewEvent {
                task_id: id,
                kind: DelegationKind::Delegate,
                from_agent_id: caller.agent_id(),
                to_agent_id: assignee.as_ref().map(|a| a.id),
                actor_agent_id: caller.agent_id(),
                note: None,
            },
        )?;
        if p.status != "delegated" {
            tx.prepare_cached(
                "UPDATE tasks SET status = 'delegated', updated_at = ?2 WHERE id = ?1",
            )?
            .execute(params![p.id, now])?;
        }
    } else if let Some(a) = &assignee {
        if Some(a.id) != caller.agent_id() {
            delegation::append(
                tx,
                &delegation::NewEvent {
                    task_id: id,
                    kind: DelegationKind::Assign,
                    from_agent_id: caller.agent_id(),
                    to_agent_id: Some(a.id),
                    actor_agent_id: caller.agent_id(),
                    note: None,
                },
            )?;
        }
    }
    let created = emit(tx, caller, id, "task.created", None)?;
    if let Some(p) = &parent {
        if p.status != "delegated" {
            emit(tx, caller, p.id, "task.updated", None)?;
        }
    }
    Ok(created)
}

/// Validated changes of `PUT /tasks/{id}`; `None` leaves a field alone.
#[derive(Debug, Default)]
pub struct Changes {
    pub content: Option<String>,
    pub description: Option<Option<String>>,
    pub project_id: Option<Option<i64>>,
    pub priority: Option<i64>,
    pub labels: Option<Vec<String>>,
    pub due_date: Option<Option<String>>,
    pub due_time: Option<Option<String>>,
    pub status: Option<String>,
    pub assignee: Option<Option<AgentRef>>,
    pub completed: Option<bool>,
    pub context: Option<Map<String, Value>>,
    pub evidence_policy: Option<Option<String>>,
    pub depends_on: Option<Vec<i64>>,
    pub recurring_type: Option<Option<String>>,
    pub recurring_interval: Option<Option<i64>>,
    pub recurring_string: Option<Option<String>>,
    pub is_recurring: Option<bool>,
    pub reminder_time: Option<Option<String>>,
}

impl Changes {
    /// True when the change is only an assignment (what coordinators may do
    /// on tasks they do not own).
    pub fn only_assignment(&self) -> bool {
        let Changes {
            assignee,
            content,
            description,
            project_id,
            priority,
            labels,
            due_date,
            due_time,
            status,
            completed,
            context,
            evidence_policy,
            depends_on,
            recurring_type,
            recurring_interval,
            recurring_string,
            is_recurring,
            reminder_time,
        } = self;
        assignee.is_some()
            && content.is_none()
            && description.is_none()
            && project_id.is_none()
            && priority.is_none()
            && labels.is_none()
            && due_date.is_none()
            && due_time.is_none()
            && status.is_none()
            && completed.is_none()
            && context.is_none()
            && evidence_policy.is_none()
            && depends_on.is_none()
            && recurring_type.is_none()
            && recurring_interval.is_none()
            && recurring_string.is_none()
            && is_recurring.is_none()
            && reminder_time.is_none()
    }
}

/// Applies a PUT. Emits `task.assigned` when the assignee changed and
/// `task.updated` for other changes; `completed` defers to complete and
/// uncomplete.
pub fn update(
    tx: &Tx,
    caller: &Caller,
    id: i64,
    ch: Changes,
    limits: &Limits,
) -> Result<TaskJson> {
    let need = if ch.only_assignment() {
        Need::Delegate
    } else {
        Need::Mutate
    };
    let mut t = require(tx, caller, id, need)?;
    if let Some(Some(pid)) = ch.project_id {
        check_project(tx, Some(pid))?;
    }
    let new_assignee = match &ch.assignee {
        None => None,
        Some(None) => Some(None),
        Some(Some(a)) => Some(Some(
            agents::resolve_active(tx, "assigned_to_agent_id", a)?.id,
        )),
    };
    let mut other_change = false;
    macro_rules! set {
        ($field:ident) => {
            if let Some(v) = ch.$field {
                t.$field = v;
                other_change = true;
            }
        };
    }
    set!(content);
    set!(description);
    set!(project_id);
    set!(priority);
    set!(due_date);
    set!(due_time);
    set!(evidence_policy);
    set!(recurring_type);
    set!(recurring_interval);
    set!(recurring_string);
    set!(is_recurring);
    set!(reminder_time);
    if let Some(labels) = &ch.labels {
        t.labels = serde_json::to_string(labels)?;
        other_change = true;
    }
    if let Some(status) = &ch.status {
        if is_finished(&t.status) && ch.completed.is_none() {
            return Err(Error::conflict(format!(
                "task {id} is {}; reopen it with /uncomplete before changing its status",
                t.status
            )));
        }
        t.status = status.clone();
        if status != "blocked" {
            t.blocked_reason = None;
        }
        other_change = true;
    }
    let assignment_changed = matches!(new_assignee, Some(a) if a != t.assigned_to_agent_id);
    let previous_assignee = t.assigned_to_agent_id;
    if let Some(a) = new_assignee {
        t.assigned_to_agent_id = a;
    }
    let now = clock::now_string();
    tx.prepare_cached(
        "UPDATE tasks SET content = ?2, description = ?3, project_id = ?4, priority = ?5, \
         labels = ?6, due_date = ?7, due_time = ?8, status = ?9, blocked_reason = ?10, \
         assigned_to_agent_id = ?11, evidence_policy = ?12, recurring_type = ?13, \
         recurring_interval = ?14, recurring_string = ?15, is_recurring = ?16, \
         reminder_time = ?17, updated_at = ?18 WHERE id = ?1",
    )?
    .execute(params![
        id,
        t.content,
        t.description,
        t.project_id,
        t.priority,
        t.labels,
        t.due_date,
        t.due_time,
        t.status,
        t.blocked_reason,
        t.assigned_to_agent_id,
        t.evidence_policy,
        t.recurring_type,
        t.recurring_interval,
        t.recurring_string,
        t.is_recurring,
        t.reminder_time,
        now
    ])?;
    if let Some(deps) = &ch.depends_on {
        set_dependencies(tx, caller, id, deps)?;
        other_change = true;
    }
    if let Some(ctx) = &ch.context {
        context::write(tx, caller, id, ctx, Source::AgentInferred, None, limits)?;
    }
    if assignment_changed {
        delegation::append(
            tx,
            &delegation::NewEvent {
                task_id: id,
                kind: DelegationKind::Assign,
                from_agent_id: previous_assignee.or(caller.agent_id()),
                to_agent_id: t.assigned_to_agent_id,
                actor_agent_id: caller.agent_id(),
                note: None,
            },
        )?;
        emit(tx, caller, id, "task.assigned", None)?;
    }
    match ch.completed {
        Some(true) => return complete(tx, caller, id, Completion::default(), limits),
        Some(false) => return reopen(tx, caller, id),
        None => {}
    }
    if other_change {
        emit(tx, caller, id, "task.updated", None)
    } else if ch.context.is_some() {
        emit(tx, caller, id, "task.context_updated", None)
    } else {
        json(tx, id)
    }
}

/// Evidence kinds accepted on completion, and those that satisfy
/// `evidence_policy: "required"`.
pub const EVIDENCE_KINDS: &[&str] = &[
    "commit",
    "pr",
    "ci_check",
    "deploy_sha",
    "artifact_url",
    "command_output",
];
const STRONG_EVIDENCE: &[&str] = &["commit", "pr", "ci_check", "deploy_sha"];

#[derive(Debug, Default)]
pub struct Completion {
    pub context: Option<Map<String, Value>>,
    pub evidence: Option<Vec<Value>>,
}

/// Completes a task: status, time, attribution, claim cleared, context
/// merged, dependents unblocked, next legacy occurrence created.
/// Completing a completed task changes nothing (safe to retry).
pub fn complete(
    tx: &Tx,
    caller: &Caller,
    id: i64,
    c: Completion,
    limits: &Limits,
) -> Result<TaskJson> {
    let t = require(tx, caller, id, Need::Mutate)?;
    if t.status == "completed" {
        return json(tx, id);
    }
    if t.evidence_policy.as_deref() == Some("required") {
        let strong = c.evidence.iter().flatten().any(|e| {
            e.get("kind")
                .and_then(Value::as_str)
                .is_some_and(|k| STRONG_EVIDENCE.contains(&k))
        });
        if !strong {
            return Err(Error::validation(
                "evidence",
                "this task requires evidence: at least one of commit, pr, ci_check, deploy_sha",
            ));
        }
    }
    if let Some(ctx) = &c.context {
        context::write(tx, caller, id, ctx, Source::AgentObserved, None, limits)?;
    }
    let now = clock::now_string();
    let evidence = c.evidence.as_ref().map(serde_json::to_string).transpose()?;
    tx.prepare_cached(
        "UPDATE tasks SET status = 'completed', completed_at = ?2, completed_by_agent_id = ?3, \
         completion_evidence = COALESCE(?4, completion_evidence), failure_reason = NULL, \
         blocked_reason = NULL, claimed_by_agent_id = NULL, claimed_at = NULL, \
         lease_expires_at = NULL, session_state = NULL, session_state_detail = NULL, \
         updated_at = ?2 WHERE id = ?1",
    )?
    .execute(params![id, now, caller.agent_id(), evidence])?;
    let completed = emit(tx, caller, id, "task.completed", None)?;
    announce_refresh(tx, caller, &dependents(tx, id)?)?;
    if t.is_recurring && t.due_date.is_some() {
        spawn_next_occurrence(tx, caller, &t, limits)?;
    }
    Ok(completed)
}

fn spawn_next_occurrence(tx: &Tx, caller: &Caller, t: &TaskRow, limits: &Limits) -> Result<()> {
    let Some(due) = t.due_date.as_deref().and_then(clock::parse_date) else {
        return Ok(());
    };
    let n = t.recurring_interval.unwrap_or(1).max(1);
    let next = match t.recurring_type.as_deref().unwrap_or("daily") {
        "weekly" => due.checked_add(time::Duration::weeks(n)),
        "monthly" => clock::add_months(due, n),
        "yearly" => clock::add_months(due, 12 * n),
        _ => due.checked_add(time::Duration::days(n)),
    };
    // Past the end of the calendar there is no next occurrence.
    let Some(next) = next else { return Ok(()) };
    let labels: Vec<String> = serde_json::from_str(&t.labels).unwrap_or_default();
    create(
        tx,
        caller,
        NewTask {
            content: t.content.clone(),
            description: t.description.clone(),
            project_id: t.project_id,
            priority: t.priority,
            labels,
            due_date: Some(clock::format_date(next)),
            due_time: t.due_time.clone(),
            assignee: t.assigned_to_agent_id.map(AgentRef::Id),
            evidence_policy: t.evidence_policy.clone(),
            recurring_type: t.recurring_type.clone(),
            recurring_interval: t.recurring_interval,
            recurring_string: t.recurring_string.clone(),
            is_recurring: true,
            reminder_time: t.reminder_time.clone(),
            ..Default::default()
        },
        limits,
    )?;
    Ok(())
}

/// Fails a task; its dependents stay blocked with `dependency_failed`.
pub fn fail(
    tx: &Tx,
    caller: &Caller,
    id: i64,
    reason: Option<String>,
    ctx: Option<Map<String, Value>>,
    limits: &Limits,
) -> Result<TaskJson> {
    let t = require(tx, caller, id, Need::Mutate)?;
    if t.status == "completed" {
        return Err(Error::conflict(format!(
            "task {id} is completed; reopen it before failing it"
        )));
    }
    if let Some(ctx) = &ctx {
        context::write(tx, caller, id, ctx, Source::AgentObserved, None, limits)?;
    }
    let now = clock::now_string();
    tx.prepare_cached(
        "UPDATE tasks SET status = 'failed', failure_reason = ?2, completed_at = NULL, \
         claimed_by_agent_id = NULL, claimed_at = NULL, lease_expires_at = NULL, \
         updated_at = ?3 WHERE id = ?1",
    )?
    .execute(params![id, reason, now])?;
    let failed = emit(tx, caller, id, "task.failed", reason.as_deref())?;
    announce_refresh(tx, caller, &dependents(tx, id)?)?;
    Ok(failed)
}

/// Reopens a completed or failed task.
pub fn reopen(tx: &Tx, caller: &Caller, id: i64) -> Result<TaskJson> {
    let t = require(tx, caller, id, Need::Mutate)?;
    if !is_finished(&t.status) {
        return Err(Error::conflict(format!(
            "task {id} is {}, not completed or failed",
            t.status
        )));
    }
    tx.prepare_cached(
        "UPDATE tasks SET status = 'open', completed_at = NULL, completed_by_agent_id = NULL, \
         failure_reason = NULL, updated_at = ?2 WHERE id = ?1",
    )?
    .execute(params![id, clock::now_string()])?;
    refresh_blocked(tx, id)?;
    let reopened = emit(tx, caller, id, "task.updated", None)?;
    announce_refresh(tx, caller, &dependents(tx, id)?)?;
    Ok(reopened)
}

pub fn delete(tx: &Tx, caller: &Caller, id: i64) -> Result<()> {
    require(tx, caller, id, Need::Mutate)?;
    // The event carries the task as it was; its audience is computed first.
    emit(tx, caller, id, "task.deleted", None)?;
    let deps = dependents(tx, id)?;
    // The recall index is contentless: its rows go with the entries.
    tx.prepare_cached(
        "DELETE FROM context_fts WHERE rowid IN \
         (SELECT id FROM context_entries WHERE task_id = ?1 AND superseded_at IS NULL)",
    )?
    .execute([id])?;
    tx.prepare_cached("DELETE FROM tasks WHERE id = ?1")?
        .execute([id])?;
    for dependent in &deps {
        touch(tx, *dependent)?;
    }
    announce_refresh(tx, caller, &deps)
}

// ---------------------------------------------------------------- dependencies

fn dependents(conn: &Connection, id: i64) -> Result<Vec<i64>> {
    let mut stmt =
        conn.prepare_cached("SELECT task_id FROM task_dependencies WHERE depends_on_id = ?1")?;
    let ids = stmt.query_map([id], |r| r.get(0))?;
    Ok(ids.collect::<Result<_, _>>()?)
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

/// Marks a task changed (`updated_at`) when something it shows changed in
/// another table (subtasks, dependencies), which also drops its cached
/// rendering (the writer's update hook sees the `tasks` row).
pub fn touch(conn: &Connection, id: i64) -> Result<()> {
    conn.prepare_cached("UPDATE tasks SET updated_at = ?2 WHERE id = ?1")?
        .execute(params![id, clock::now_string()])?;
    Ok(())
}

fn add_dependency_row(tx: &Tx, task: i64, dep: i64) -> Result<()> {
    if creates_cycle(tx, task, dep)? {
        return Err(Error::validation(
            "depends_on",
            format!("task {task} depending on {dep} would create a cycle"),
        ));
    }
    tx.prepare_cached(
        "INSERT OR IGNORE INTO task_dependencies (task_id, depends_on_id, created_at) \
         VALUES (?1, ?2, ?3)",
    )?
    .execute(params![task, dep, clock::now_string()])?;
    touch(tx, task)
}

/// Sets a task's status from its dependencies: `blocked` while one is
/// unfinished (`dependency_failed` if one failed), back to `open` when the
/// last one completed. Finished, claimed and delegated tasks are left alone.
pub fn refresh_blocked(tx: &Tx, id: i64) -> Result<Blocking> {
    let Some(t) = get(tx, id)? else {
        return Ok(Blocking::Unchanged);
    };
    if is_finished(&t.status) || t.status == "claimed" || t.status == "delegated" {
        return Ok(Blocking::Unchanged);
    }
    let (unfinished, failed): (i64, i64) = tx
        .prepare_cached(
            "SELECT COALESCE(SUM(d.status != 'completed'), 0), COALESCE(SUM(d.status = 'failed'), 0) \
             FROM task_dependencies td JOIN tasks d ON d.id = td.depends_on_id WHERE td.task_id = ?1",
        )?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let (status, reason) = if unfinished > 0 {
        let reason = if failed > 0 {
            "dependency_failed"
        } else {
            "waiting_on_dependencies"
        };
        ("blocked".to_string(), Some(reason.to_string()))
    } else if t.status == "blocked" && t.blocked_reason.is_some() {
        // Blocked by dependencies that are now all done.
        ("open".to_string(), None)
    } else {
        return Ok(Blocking::Unchanged);
    };
    if status == t.status && reason == t.blocked_reason {
        return Ok(Blocking::Unchanged);
    }
    tx.prepare_cached(
        "UPDATE tasks SET status = ?2, blocked_reason = ?3, updated_at = ?4 WHERE id = ?1",
    )?
    .execute(params![id, status, reason, clock::now_string()])?;
    Ok(if status == "open" {
        Blocking::Unblocked
    } else {
        Blocking::Blocked
    })
}

/// What [`refresh_blocked`] changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blocking {
    Unchanged,
    /// Now blocked, or blocked for another reason (`dependency_failed`).
    Blocked,
    /// Its last dependency completed: open again.
    Unblocked,
}

/// Re-evaluates tasks after something they depend on changed, and tells
/// subscribers: `task.unblocked` when one opens, `task.updated` when one
/// becomes blocked (or blocked by a failure).
fn announce_refresh(tx: &Tx, caller: &Caller, ids: &[i64]) -> Result<()> {
    for id in ids {
        match refresh_blocked(tx, *id)? {
            Blocking::Unblocked => {
                emit(tx, caller, *id, "task.unblocked", None)?;
            }
            Blocking::Blocked => {
                emit(tx, caller, *id, "task.updated", None)?;
            }
            Blocking::Unchanged => {}
        }
    }
    Ok(())
}

/// Replaces a task's dependencies.
pub fn set_dependencies(tx: &Tx, caller: &Caller, id: i64, deps: &[i64]) -> Result<()> {
    tx.prepare_cached("DELETE FROM task_dependencies WHERE task_id = ?1")?
        .execute([id])?;
    touch(tx, id)?;
    add_dependencies(tx, caller, id, deps)
}

pub fn add_dependencies(tx: &Tx, caller: &Caller, id: i64, deps: &[i64]) -> Result<()> {
    let mut seen = HashSet::new();
    for dep in deps {
        if !seen.insert(*dep) {
            continue;
        }
        require(tx, caller, *dep, Need::Read).map_err(|_| {
            Error::validation("depends_on", format!("no task {dep} you can read"))
        })?;
        add_dependency_row(tx, id, *dep)?;
    }
    refresh_blocked(tx, id).map(|_| ())
}

pub fn remove_dependency(tx: &Tx, caller: &Caller, id: i64, dep: i64) -> Result<()> {
    let n = tx
        .prepare_cached("DELETE FROM task_dependencies WHERE task_id = ?1 AND depends_on_id = ?2")?
        .execute(params![id, dep])?;
    if n == 0 {
        return Err(Error::not_found(format!(
            "task {id} does not depend on task {dep}"
        )));
    }
    touch(tx, id)?;
    if refresh_blocked(tx, id)? == Blocking::Unblocked {
        emit(tx, caller, id, "task.unblocked", None)?;
    }
    Ok(())
}

/// `GET /tasks/{id}/inputs`: each dependency's result.
#[derive(Debug, Serialize)]
pub struct Input {
    pub task_id: i64,
    pub content: String,
    pub status: String,
    pub completed_by: Option<String>,
    pub completed_at: Option<String>,
    pub context: Box<RawValue>,
}

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
    Ok(rows.collect::<Result<_, _>>()?)
}

// ---------------------------------------------------------------- duplicates

#[derive(Debug, Serialize)]
pub struct DuplicateMatch {
    pub task_id: i64,
    pub content: String,
    pub score: f64,
}

/// Open tasks the caller can read whose content resembles `content`
/// (TF-IDF cosine ≥ threshold), best first. Looks at the newest 5,000.
pub fn duplicates(
    conn: &Connection,
    caller: &Caller,
    content: &str,
    threshold: f64,
) -> Result<Vec<DuplicateMatch>> {
    let (cte, scope) = if caller.reads_all() {
        ("", "(?1 = ?1)")
    } else {
        (VISIBLE_CTE, "t.id IN (SELECT id FROM visible)")
    };
    let mut stmt = conn.prepare_cached(&format!(
        "{cte} SELECT t.id, t.content FROM tasks t WHERE {scope} \
         AND t.status NOT IN ('completed', 'failed') ORDER BY t.id DESC LIMIT 5000"
    ))?;
    let candidates: Vec<(i64, String)> = stmt
        .query_map([caller.agent_id().unwrap_or(-1)], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?
        .collect::<Result<_, _>>()?;
    let docs: Vec<&str> = candidates.iter().map(|(_, c)| c.as_str()).collect();
    let scores = crate::domain::similarity::scores(content, &docs);
    let mut matches: Vec<DuplicateMatch> = candidates
        .into_iter()
        .zip(scores)
        .filter(|(_, s)| *s >= threshold)
        .map(|((task_id, content), score)| DuplicateMatch {
            task_id,
            content,
            score: (score * 1000.0).round() / 1000.0,
        })
        .collect();
    matches.sort_by(|a, b| b.score.total_cmp(&a.score));
    matches.truncate(20);
    Ok(matches)
}

/// Direct children of a task.
pub fn children(conn: &Connection, id: i64) -> Result<Vec<TaskRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM tasks t WHERE t.parent_task_id = ?1 ORDER BY t.id"
    ))?;
    let rows = stmt.query_map([id], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Every task of the tree rooted at `root`, by depth then creation.
pub fn tree(conn: &Connection, root: i64) -> Result<Vec<TaskRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM tasks t WHERE t.root_task_id = ?1 \
         ORDER BY t.delegation_depth, t.id"
    ))?;
    let rows = stmt.query_map([root], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}
