//! `POST /tasks/{id}/delegate`, `GET /tasks/{id}/chain`, `/children`.

use std::collections::HashSet;

use actix_web::{web, HttpRequest, HttpResponse};
use rusqlite::params;
use serde::{Deserialize, Serialize};

use super::tasks::TaskInput;
use super::{created, ok, path_id, Dialect, Json, State};
use crate::domain::access::Caller;
use crate::domain::clock;
use crate::domain::input::{self, check_len, forbid, AgentRef};
use crate::error::{Error, Result};
use crate::store::cache::Rendered;
use crate::store::delegation::{self, DelegationKind, Hop};
use crate::store::tasks::{self, Need};
use crate::store::{agents, Tx};

#[derive(Deserialize)]
struct HandoffInput {
    agent_id: Option<AgentRef>,
    assigned_to_agent_id: Option<AgentRef>,
    to_agent_id: Option<AgentRef>,
    note: Option<String>,
}

/// Hands the same task to another agent: assignee changes, status `open`,
/// any claim is dropped, one `handoff` row and a `task.delegated` event.
fn hand_off(
    tx: &Tx,
    caller: &Caller,
    id: i64,
    to: &AgentRef,
    note: Option<String>,
) -> Result<tasks::TaskJson> {
    let task = tasks::require(tx, caller, id, Need::Delegate)?;
    if tasks::is_finished(&task.status) {
        return Err(Error::conflict(format!(
            "task {id} is {}; reopen it before handing it off",
            task.status
        )));
    }
    let target = agents::resolve_active(tx, "agent_id", to)?;
    tx.prepare_cached(
        "UPDATE tasks SET assigned_to_agent_id = ?2, status = 'open', claimed_by_agent_id = NULL, \
         claimed_at = NULL, lease_expires_at = NULL, session_state = NULL, \
         session_state_detail = NULL, updated_at = ?3 WHERE id = ?1",
    )?
    .execute(params![id, target.id, clock::now_string()])?;
    tasks::refresh_blocked(tx, id)?;
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
    tasks::emit(tx, caller, id, "task.delegated", None)
}

async fn delegate(
    state: State,
    path: web::Path<String>,
    caller: Caller,
    Json(body): Json,
) -> Result<HttpResponse> {
    let id = path_id("task", &path)?;
    input::require_object(&body)?;
    if body.get("content").is_some() {
        forbid(
            &body,
            &["parent_task_id", "root_task_id", "delegation_depth"],
            "a delegated child's place in the chain comes from the task delegated",
        )?;
        let mut new = TaskInput::parse(body)?.into_new_task()?;
        new.parent_task_id = Some(id);
        let limits = state.limits();
        let child = state
            .store
            .write(move |tx| tasks::create(tx, &caller, new, &limits))
            .await?;
        return created(&child);
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
    let view = state
        .store
        .write(move |tx| hand_off(tx, &caller, id, &to, h.note))
        .await?;
    ok(&view)
}

/// The tasks of a tree the caller may read: those it created, is assigned,
/// completed, claims or handed on, and everything below them. `rows` come
/// parents first (by depth), so one pass settles every task.
fn readable_in_tree(caller: &Caller, rows: &[tasks::TaskRow], hops: &[Hop]) -> HashSet<i64> {
    if caller.reads_all() {
        return rows.iter().map(|r| r.id).collect();
    }
    let me = caller.agent_id();
    let handed_on: HashSet<i64> = hops
        .iter()
        .filter(|h| h.actor_agent_id == me || h.from_agent_id == me)
        .map(|h| h.task_id)
        .collect();
    let mut readable = HashSet::new();
    for r in rows {
        let own = [
            r.created_by_agent_id,
            r.assigned_to_agent_id,
            r.completed_by_agent_id,
            r.claimed_by_agent_id,
        ]
        .contains(&me)
            || handed_on.contains(&r.id);
        if own || r.parent_task_id.is_some_and(|p| readable.contains(&p)) {
            readable.insert(r.id);
        }
    }
    readable
}

/// `chain` is the hop list under `/v1` and the task list under `/api`.
#[derive(Serialize)]
#[serde(untagged)]
enum ChainKey<'a> {
    Hops(&'a [Hop]),
    Tasks(&'a [Rendered]),
}

#[derive(Serialize)]
struct ChainBody<'a> {
    task_id: i64,
    root_id: i64,
    root: Option<&'a Rendered>,
    depth: i64,
    completed_count: usize,
    total_count: usize,
    tasks: &'a [Rendered],
    events: &'a [Hop],
    chain: ChainKey<'a>,
}

async fn chain(
    state: State,
    req: HttpRequest,
    path: web::Path<String>,
    caller: Caller,
) -> Result<HttpResponse> {
    let id = path_id("task", &path)?;
    let dialect = Dialect::of(&req);
    let cache = state.store.cache().clone();
    let body = state
        .store
        .read(move |conn| {
            let generation = cache.generation();
            let task = tasks::require(conn, &caller, id, Need::Read)?;
            let root_id = task.root_task_id.unwrap_or(task.id);
            let mut rows = tasks::tree(conn, root_id)?;
            if rows.is_empty() {
                rows.push(task.clone());
            }
            let mut hops = delegation::hops(conn, root_id)?;
            let mut readable = readable_in_tree(&caller, &rows, &hops);
            readable.insert(task.id);
            rows.retain(|r| readable.contains(&r.id));
            hops.retain(|h| readable.contains(&h.task_id));
            let depth = rows.iter().map(|r| r.delegation_depth).max().unwrap_or(0);
            let completed_count = rows.iter().filter(|r| r.status == "completed").count();
            let root = rows.iter().position(|r| r.id == root_id);
            let views = tasks::render_cached(conn, &cache, generation, rows)?;
            let body = ChainBody {
                task_id: id,
                root_id,
                root: root.and_then(|i| views.get(i)),
                depth,
                completed_count,
                total_count: views.len(),
                tasks: &views,
                events: &hops,
                chain: match dialect {
                    Dialect::V1 => ChainKey::Hops(&hops),
                    Dialect::Api => ChainKey::Tasks(&views),
                },
            };
            Ok(serde_json::to_vec(&body)?)
        })
        .await?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(body))
}

async fn children(
    state: State,
    path: web::Path<String>,
    caller: Caller,
) -> Result<HttpResponse> {
    let id = path_id("task", &path)?;
    let cache = state.store.cache().clone();
    let views = state
        .store
        .read(move |conn| {
            let generation = cache.generation();
            tasks::require(conn, &caller, id, Need::Read)?;
            let mut rows = Vec::new();
            for row in tasks::children(conn, id)? {
                if tasks::access(conn, &caller, &row)?.is_some() {
                    rows.push(row);
                }
            }
            tasks::render_cached(conn, &cache, generation, rows)
        })
        .await?;
    ok(&views)
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/tasks/{id}/delegate", web::post().to(delegate))
        .route("/tasks/{id}/chain", web::get().to(chain))
        .route("/tasks/{id}/children", web::get().to(children));
}
