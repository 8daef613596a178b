//! A task as every answer and event payload shows it: the row with its
//! nested agents, project, subtasks and dependencies, serialized once and
//! kept in the render cache.

use std::collections::HashMap;
use std::sync::Arc;

use rusqlite::Connection;
use serde::Serialize;
use serde_json::value::RawValue;

use super::{get, Fields, TaskRow};
use crate::error::{Error, Result};
use crate::store::agents::{self, AgentBrief};
use crate::store::cache::{RenderCache, Rendered};
use crate::store::comments::{self, Subtask};
use crate::store::dependencies;
use crate::store::projects::{self, ProjectBrief};

pub(crate) fn raw(json: &str) -> Box<RawValue> {
    RawValue::from_string(json.to_string())
        .unwrap_or_else(|_| RawValue::from_string("null".into()).expect("null is JSON"))
}

/// A task as every response and event payload shows it (SPEC §5): its
/// [`Fields`] as stored, the rest as kept, with nested agents and project,
/// agent names, subtasks, dependencies and the aliases clients read
/// (`metadata` for `context`, `parent_id` for `parent_task_id`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Task)]
pub struct TaskView {
    pub id: i64,
    #[serde(flatten)]
    pub fields: Fields,
    pub project: Option<ProjectBrief>,
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
    pub accountable_agent: Option<AgentBrief>,
    /// The accountable agent's name.
    pub accountable_to: Option<String>,
    pub parent_task_id: Option<i64>,
    pub parent_id: Option<i64>,
    pub root_task_id: Option<i64>,
    pub delegation_depth: i64,
    /// The task's context object (SPEC §7).
    #[schema(value_type = Object)]
    pub context: Box<RawValue>,
    /// An alias of `context`: the same object.
    #[schema(value_type = Object)]
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
    /// The evidence given on completion: `[{kind, ref, summary?}]`.
    #[schema(value_type = Option<Vec<crate::ops::tasks::Evidence>>)]
    pub completion_evidence: Option<Box<RawValue>>,
    pub subtasks: Vec<Subtask>,
    pub recurrence_id: Option<i64>,
    pub failure_reason: Option<String>,
    pub claim_generation: i64,
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
            dependencies::of_tasks(conn, &ids)?,
        )
    };
    let mut out = Vec::with_capacity(rows.len());
    for t in rows {
        let created_by_agent = agent(t.created_by_agent_id)?;
        let assigned_to_agent = agent(t.assigned_to_agent_id)?;
        let completed_by_agent = agent(t.completed_by_agent_id)?;
        let accountable_agent = agent(t.fields.accountable_agent_id)?;
        let claimed_by = agent(t.claimed_by_agent_id)?.map(|a| a.name);
        let project = match t.fields.project_id {
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
            accountable_to: accountable_agent.as_ref().map(|a| a.name.clone()),
            accountable_agent,
            created_by_agent,
            assigned_to_agent,
            completed_by_agent,
            project,
            metadata: context.clone(),
            context,
            completion_evidence: t.completion_evidence.as_deref().map(raw),
            subtasks: subtasks.remove(&t.id).unwrap_or_default(),
            depends_on: deps.remove(&t.id).unwrap_or_default(),
            fields: t.fields,
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
            recurrence_id: t.recurrence_id,
            failure_reason: t.failure_reason,
            claim_generation: t.claim_generation,
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
    view_of(conn, row)
}

/// Renders a row the caller holds as it is now (a write's own result).
pub fn view_of(conn: &Connection, row: TaskRow) -> Result<TaskView> {
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
