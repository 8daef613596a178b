//! Delegation (SPEC §6): hand a task off, delegate a child, read the chain.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::tasks::{create_in, TaskInput};
use super::{emit, require, transition, Context};
use crate::domain::access::{Caller, Need};
use crate::domain::event_kind::EventKind;
use crate::domain::input::{self, check_len, forbid, AgentRef};
use crate::domain::lifecycle::Transition;
use crate::error::{Error, Result};
use crate::store::cache::Rendered;
use crate::store::delegation::{self, DelegationKind, Hop};
use crate::store::tasks::{self, render, TaskJson};
use crate::store::{agents, readers, Tx};

/// A hand-off body: the agent to hand the task to (`agent_id`, or its
/// aliases `assigned_to_agent_id`, `to_agent_id`) and a note.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct HandoffInput {
    agent_id: Option<AgentRef>,
    assigned_to_agent_id: Option<AgentRef>,
    to_agent_id: Option<AgentRef>,
    #[schema(max_length = 2000)]
    note: Option<String>,
}

/// The body of `POST /tasks/{id}/delegate` as [`Delegation::parse`] reads
/// it: with `content`, a child task's fields; otherwise a hand-off. Only
/// the OpenAPI document uses this type.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code, clippy::large_enum_variant)]
pub enum DelegateBody {
    HandOff(HandoffInput),
    Child(TaskInput),
}

/// What `POST /tasks/{id}/delegate` was asked to do.
pub enum Delegation {
    /// Hand the same task to another agent.
    HandOff { to: AgentRef, note: Option<String> },
    /// Create a child task under it.
    Child(Box<super::tasks::NewTask>),
}

/// What a delegation made: the task handed off, or the new child.
pub enum Delegated {
    HandedOff(TaskJson),
    Child(TaskJson),
}

impl Delegation {
    /// Parses a delegate body: with `content` it delegates a child (any
    /// create field allowed), otherwise it hands the task off.
    pub fn parse(body: Value) -> Result<Delegation> {
        input::require_object(&body)?;
        if body.get("content").is_some() {
            forbid(
                &body,
                &["parent_task_id", "root_task_id", "delegation_depth"],
                "a delegated child's place in the chain comes from the task delegated",
            )?;
            return Ok(Delegation::Child(Box::new(
                TaskInput::parse(body)?.into_new_task()?,
            )));
        }
        let h: HandoffInput = input::parse(body)?;
        if let Some(n) = &h.note {
            check_len("note", n, 2000)?;
        }
        let to = h
            .agent_id
            .or(h.assigned_to_agent_id)
            .or(h.to_agent_id)
            .ok_or_else(|| {
                Error::validation(
                    "agent_id",
                    "is required to hand off the task (or send content to delegate a child task)",
                )
            })?;
        Ok(Delegation::HandOff { to, note: h.note })
    }
}

/// `POST /tasks/{id}/delegate`.
pub async fn delegate(ctx: &Context, caller: &Caller, id: i64, d: Delegation) -> Result<Delegated> {
    let (caller, max) = (caller.clone(), ctx.max_context_bytes());
    ctx.store
        .write(move |tx| match d {
            Delegation::HandOff { to, note } => {
                hand_off(tx, &caller, id, &to, note).map(Delegated::HandedOff)
            }
            Delegation::Child(mut new) => {
                // `create_in` checks the parent (404/403) before what the
                // child names.
                new.parent_task_id = Some(id);
                create_in(tx, &caller, *new, None, max).map(Delegated::Child)
            }
        })
        .await
}

/// Hands the same task to another agent: the assignee changes, the task
/// is open for them (blocked if a dependency is unfinished), any claim is
/// dropped; one `handoff` row and a `task.delegated` event.
fn hand_off(
    tx: &Tx,
    caller: &Caller,
    id: i64,
    to: &AgentRef,
    note: Option<String>,
) -> Result<TaskJson> {
    let task = require(tx, caller, id, Need::Assign)?;
    let target = agents::resolve_active(tx, "agent_id", to)?;
    transition(tx, &task, Transition::HandOff)?;
    tasks::set_assignee(tx, id, Some(target.id))?;
    delegation::append(
        tx,
        &delegation::NewEvent {
            task_id: id,
            kind: DelegationKind::Handoff,
            from_agent_id: task.assigned_to_agent_id.or(caller.agent_id()),
            to_agent_id: Some(target.id),
            actor_agent_id: caller.agent_id(),
            note,
        },
    )?;
    readers::refresh(tx, id)?;
    emit(tx, caller, id, EventKind::TaskDelegated, None)
}

/// `chain` is the hop list under `/v1` and the task list under `/api`
/// (SPEC §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainShape {
    Hops,
    Tasks,
}

#[derive(Serialize)]
#[serde(untagged)]
enum ChainKey<'a> {
    Hops(&'a [Hop]),
    Tasks(&'a [Rendered]),
}

/// The answer of `GET /tasks/{id}/chain` (SPEC §6).
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Chain)]
pub struct ChainBody<'a> {
    task_id: i64,
    root_id: i64,
    /// The root task, if the caller reads it.
    #[schema(value_type = Option<crate::store::tasks::render::TaskView>)]
    root: Option<&'a Rendered>,
    depth: i64,
    completed_count: usize,
    total_count: usize,
    /// The tree's tasks the caller reads, by depth, then creation.
    #[schema(value_type = Vec<crate::store::tasks::render::TaskView>)]
    tasks: &'a [Rendered],
    /// The hops, in time order.
    #[schema(value_type = Vec<Hop>)]
    events: &'a [Hop],
    /// Under `/api` the task list (the SDK's shape), under `/v1` the hop
    /// list (the tutorial's).
    #[schema(value_type = Vec<crate::store::tasks::render::TaskView>)]
    chain: ChainKey<'a>,
}

/// `GET /tasks/{id}/chain`: the tree of the task's root and its hops,
/// limited to what the caller reads; serialized inside the read.
pub async fn chain(ctx: &Context, caller: &Caller, id: i64, shape: ChainShape) -> Result<Vec<u8>> {
    let cache = ctx.store.cache().clone();
    let caller = caller.clone();
    ctx.store
        .read(move |conn| {
            let generation = cache.generation();
            let task = require(conn, &caller, id, Need::Read)?;
            let root_id = task.root_task_id.unwrap_or(task.id);
            let mut rows = tasks::tree(conn, root_id)?;
            if rows.is_empty() {
                rows.push(task.clone());
            }
            let mut hops = delegation::hops(conn, root_id)?;
            if !caller.reads_all() {
                let agent = caller.agent_id().unwrap_or(-1);
                let mut readable = readers::in_tree(conn, agent, root_id)?;
                // The task asked for (readable by id, say from the queue).
                readable.insert(task.id);
                rows.retain(|r| readable.contains(&r.id));
                hops.retain(|h| readable.contains(&h.task_id));
            }
            let depth = rows.iter().map(|r| r.delegation_depth).max().unwrap_or(0);
            let completed_count = rows.iter().filter(|r| r.status == "completed").count();
            let root = rows.iter().position(|r| r.id == root_id);
            let views = render::render_cached(conn, &cache, generation, rows)?;
            let body = ChainBody {
                task_id: id,
                root_id,
                root: root.and_then(|i| views.get(i)),
                depth,
                completed_count,
                total_count: views.len(),
                tasks: &views,
                events: &hops,
                chain: match shape {
                    ChainShape::Hops => ChainKey::Hops(&hops),
                    ChainShape::Tasks => ChainKey::Tasks(&views),
                },
            };
            Ok(serde_json::to_vec(&body)?)
        })
        .await
}

/// `GET /tasks/{id}/children`: the direct children the caller reads.
pub async fn children(ctx: &Context, caller: &Caller, id: i64) -> Result<Vec<Rendered>> {
    let cache = ctx.store.cache().clone();
    let caller = caller.clone();
    ctx.store
        .read(move |conn| {
            let generation = cache.generation();
            require(conn, &caller, id, Need::Read)?;
            let mut rows = Vec::new();
            for row in tasks::children(conn, id)? {
                if super::may_read(conn, &caller, &row)? {
                    rows.push(row);
                }
            }
            render::render_cached(conn, &cache, generation, rows)
        })
        .await
}
