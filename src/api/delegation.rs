//! `POST /tasks/{id}/delegate`, `GET /tasks/{id}/chain`, `/children`.

use std::collections::HashSet;

use actix_web::{web, HttpRequest, HttpResponse};
use rusqlite::params;
use serde::Deserialize;
use serde_json::{json, Value};

use super::tasks::TaskInput;
use super::{created, ok, path_id, Dialect, Json, State};
use crate::domain::access::Caller;
use crate::domain::clock;
use crate::domain::input::{self, check_len, forbid, AgentRef};
use crate::error::{ApiError, ApiResult};
use crate::store::delegation::{self, DelegationKind};
use crate::store::tasks::{self, Need, VISIBLE_CTE};
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
) -> ApiResult<tasks::TaskView> {
    let task = tasks::require(tx, caller, id, Need::Delegate)?;
    if tasks::is_finished(&task.status) {
        return Err(ApiError::conflict(format!(
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
) -> ApiResult<HttpResponse> {
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
            .write(move |tx| {
                // A parent you cannot read is a 404, not a field error.
                tasks::require(tx, &caller, id, Need::Delegate)?;
                let row = tasks::create(tx, &caller, new, &limits)?;
                tasks::render_one(tx, row, false)
            })
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
            ApiError::validation(
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

/// The ids in the tree of `root` the caller may read.
fn readable_in_tree(
    conn: &rusqlite::Connection,
    caller: &Caller,
    rows: &[tasks::TaskRow],
) -> ApiResult<HashSet<i64>> {
    if caller.reads_all() {
        return Ok(rows.iter().map(|r| r.id).collect());
    }
    let mut stmt = conn.prepare_cached(&format!("{VISIBLE_CTE} SELECT id FROM visible"))?;
    let visible: HashSet<i64> = stmt
        .query_map([caller.agent_id().unwrap_or(-1)], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(rows
        .iter()
        .map(|r| r.id)
        .filter(|id| visible.contains(id))
        .collect())
}

async fn chain(
    state: State,
    req: HttpRequest,
    path: web::Path<String>,
    caller: Caller,
) -> ApiResult<HttpResponse> {
    let id = path_id("task", &path)?;
    let dialect = Dialect::of(&req);
    let body = state
        .store
        .read(move |conn| {
            let task = tasks::require(conn, &caller, id, Need::Read)?;
            let root_id = task.root_task_id.unwrap_or(task.id);
            let mut rows = tasks::tree(conn, root_id)?;
            if rows.is_empty() {
                rows.push(task.clone());
            }
            let mut readable = readable_in_tree(conn, &caller, &rows)?;
            readable.insert(task.id);
            rows.retain(|r| readable.contains(&r.id));
            let depth = rows.iter().map(|r| r.delegation_depth).max().unwrap_or(0);
            let completed = rows.iter().filter(|r| r.status == "completed").count();
            let total = rows.len();
            let views = tasks::render(conn, rows, false)?;
            let hops: Vec<_> = delegation::hops(conn, root_id)?
                .into_iter()
                .filter(|h| readable.contains(&h.task_id))
                .collect();
            let root = views.iter().find(|v| v.id == root_id);
            let chain = match dialect {
                Dialect::V1 => serde_json::to_value(&hops)?,
                Dialect::Api => serde_json::to_value(&views)?,
            };
            Ok(json!({
                "task_id": id,
                "root_id": root_id,
                "root": root,
                "depth": depth,
                "completed_count": completed,
                "total_count": total,
                "tasks": views,
                "events": hops,
                "chain": chain,
            }))
        })
        .await?;
    ok(&body)
}

async fn children(
    state: State,
    path: web::Path<String>,
    caller: Caller,
) -> ApiResult<HttpResponse> {
    let id = path_id("task", &path)?;
    let list: Vec<Value> = state
        .store
        .read(move |conn| {
            tasks::require(conn, &caller, id, Need::Read)?;
            let mut rows = Vec::new();
            for row in tasks::children(conn, id)? {
                if tasks::access(conn, &caller, &row)?.is_some() {
                    rows.push(row);
                }
            }
            let views = tasks::render(conn, rows, false)?;
            Ok(views
                .iter()
                .map(serde_json::to_value)
                .collect::<Result<_, _>>()?)
        })
        .await?;
    ok(&list)
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/tasks/{id}/delegate", web::post().to(delegate))
        .route("/tasks/{id}/chain", web::get().to(chain))
        .route("/tasks/{id}/children", web::get().to(children));
}
