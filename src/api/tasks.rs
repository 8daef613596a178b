//! `/tasks` and what hangs off one task: complete/uncomplete/fail,
//! comments, subtasks, links, dependencies, inputs, duplicates.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::{created, ok, ok_json, path_id, query, respond_page, Json, State};
use crate::domain::access::Caller;
use crate::domain::input::{self, forbid, Id, Page};
use crate::error::Result;
use crate::ops::comments::{LinkInput, NewComment, SubtaskInput};
use crate::ops::tasks::{Completion, CreateOptions, DedupInput, Failure, ListQuery, TaskInput};
use crate::ops::{self, comments as ops_comments, dependencies as ops_deps};

type IdPath = web::Path<String>;
type TwoIds = web::Path<(String, String)>;

fn task_id(path: &str) -> Result<i64> {
    path_id("task", path)
}

pub async fn list(state: State, req: HttpRequest, caller: Caller) -> Result<HttpResponse> {
    let q = query(&req);
    let page = Page::from_query(&q)?;
    let lq = ListQuery::parse(&q)?;
    let cursor = q.get("cursor").map(String::from);
    let body = ops::tasks::list(&state.ops, &caller, lq, page, cursor).await?;
    respond_page(&req, &q, page, body)
}

pub async fn create(
    state: State,
    req: HttpRequest,
    caller: Caller,
    Json(body): Json,
) -> Result<HttpResponse> {
    let new = TaskInput::parse_new(body)?;
    let dedup_check = req
        .headers()
        .get("x-dedup-check")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1");
    let options = CreateOptions {
        dedup_check,
        reason: None,
    };
    created(&ops::tasks::create(&state.ops, &caller, new, options).await?)
}

/// One task with its comments and links.
pub async fn get(state: State, path: IdPath, caller: Caller) -> Result<HttpResponse> {
    ok_json(ops::tasks::get(&state.ops, &caller, task_id(&path)?).await?)
}

pub async fn update(
    state: State,
    path: IdPath,
    caller: Caller,
    Json(body): Json,
) -> Result<HttpResponse> {
    let id = task_id(&path)?;
    forbid(
        &body,
        &[
            "parent_task_id",
            "parent_id",
            "root_task_id",
            "delegation_depth",
        ],
        "a task's place in its chain is fixed; delegate to create children",
    )?;
    let changes = TaskInput::parse(body)?.into_changes()?;
    ok(&ops::tasks::update(&state.ops, &caller, id, changes).await?)
}

pub async fn delete(state: State, path: IdPath, caller: Caller) -> Result<HttpResponse> {
    let id = task_id(&path)?;
    ops::tasks::delete(&state.ops, &caller, id).await?;
    ok(&json!({ "deleted": true, "id": id }))
}

pub async fn complete(
    state: State,
    path: IdPath,
    caller: Caller,
    Json(body): Json,
) -> Result<HttpResponse> {
    let id = task_id(&path)?;
    let completion = Completion::parse(body)?;
    ok(&ops::tasks::complete(&state.ops, &caller, id, completion).await?)
}

pub async fn uncomplete(state: State, path: IdPath, caller: Caller) -> Result<HttpResponse> {
    ok(&ops::tasks::uncomplete(&state.ops, &caller, task_id(&path)?).await?)
}

pub async fn fail(
    state: State,
    path: IdPath,
    caller: Caller,
    Json(body): Json,
) -> Result<HttpResponse> {
    let id = task_id(&path)?;
    ok(&ops::tasks::fail(&state.ops, &caller, id, Failure::parse(body)?).await?)
}

pub async fn dedup(state: State, caller: Caller, Json(body): Json) -> Result<HttpResponse> {
    let input = DedupInput::parse(body)?;
    let threshold = input.threshold.unwrap_or(0.6);
    ok(&ops::tasks::dedup(&state.ops, &caller, input.content, threshold).await?)
}

// ---------------------------------------------------------------- comments

pub async fn list_comments(state: State, path: IdPath, caller: Caller) -> Result<HttpResponse> {
    ok(&ops_comments::list_comments(&state.ops, &caller, task_id(&path)?).await?)
}

pub async fn add_comment(
    state: State,
    path: IdPath,
    caller: Caller,
    Json(body): Json,
) -> Result<HttpResponse> {
    let id = task_id(&path)?;
    let c = NewComment::parse(body)?;
    created(&ops_comments::add_comment(&state.ops, &caller, id, c).await?)
}

pub async fn delete_comment(state: State, path: TwoIds, caller: Caller) -> Result<HttpResponse> {
    let id = task_id(&path.0)?;
    let cid = path_id("comment", &path.1)?;
    ops_comments::delete_comment(&state.ops, &caller, id, cid).await?;
    ok(&json!({ "deleted": true, "id": cid }))
}

// ---------------------------------------------------------------- subtasks

pub async fn list_subtasks(state: State, path: IdPath, caller: Caller) -> Result<HttpResponse> {
    ok(&ops_comments::list_subtasks(&state.ops, &caller, task_id(&path)?).await?)
}

pub async fn add_subtask(
    state: State,
    path: IdPath,
    caller: Caller,
    Json(body): Json,
) -> Result<HttpResponse> {
    let id = task_id(&path)?;
    let s = SubtaskInput::parse(body)?;
    created(&ops_comments::add_subtask(&state.ops, &caller, id, s).await?)
}

pub async fn update_subtask(
    state: State,
    path: TwoIds,
    caller: Caller,
    Json(body): Json,
) -> Result<HttpResponse> {
    let (id, sid) = (task_id(&path.0)?, path_id("subtask", &path.1)?);
    let s = SubtaskInput::parse(body)?;
    ok(&ops_comments::change_subtask(&state.ops, &caller, id, sid, s, false).await?)
}

pub async fn toggle_subtask(state: State, path: TwoIds, caller: Caller) -> Result<HttpResponse> {
    let (id, sid) = (task_id(&path.0)?, path_id("subtask", &path.1)?);
    let s = SubtaskInput::default();
    ok(&ops_comments::change_subtask(&state.ops, &caller, id, sid, s, true).await?)
}

pub async fn delete_subtask(state: State, path: TwoIds, caller: Caller) -> Result<HttpResponse> {
    let (id, sid) = (task_id(&path.0)?, path_id("subtask", &path.1)?);
    ops_comments::delete_subtask(&state.ops, &caller, id, sid).await?;
    ok(&json!({ "deleted": true, "id": sid }))
}

// ---------------------------------------------------------------- links

pub async fn list_links(state: State, path: IdPath, caller: Caller) -> Result<HttpResponse> {
    ok(&ops_comments::list_links(&state.ops, &caller, task_id(&path)?).await?)
}

/// 201 for a new link, 200 with the existing one for a repeat.
pub async fn add_link(
    state: State,
    path: IdPath,
    caller: Caller,
    Json(body): Json,
) -> Result<HttpResponse> {
    let id = task_id(&path)?;
    let l = LinkInput::parse(body)?;
    match ops_comments::add_link(&state.ops, &caller, id, l).await? {
        (link, true) => created(&link),
        (link, false) => ok(&link),
    }
}

pub async fn delete_link(state: State, path: TwoIds, caller: Caller) -> Result<HttpResponse> {
    let (id, lid) = (task_id(&path.0)?, path_id("link", &path.1)?);
    ops_comments::delete_link(&state.ops, &caller, id, lid).await?;
    ok(&json!({ "deleted": true, "id": lid }))
}

// ---------------------------------------------------------------- dependencies

#[derive(Deserialize)]
struct DependencyInput {
    depends_on: Vec<Id>,
}

pub async fn add_dependencies(
    state: State,
    path: IdPath,
    caller: Caller,
    Json(body): Json,
) -> Result<HttpResponse> {
    let id = task_id(&path)?;
    let input: DependencyInput = input::object(body)?;
    let deps = input.depends_on.into_iter().map(|i| i.0).collect();
    ok(&ops_deps::add(&state.ops, &caller, id, deps).await?)
}

pub async fn remove_dependency(state: State, path: TwoIds, caller: Caller) -> Result<HttpResponse> {
    let (id, dep) = (task_id(&path.0)?, task_id(&path.1)?);
    ok(&ops_deps::remove(&state.ops, &caller, id, dep).await?)
}

pub async fn inputs(state: State, path: IdPath, caller: Caller) -> Result<HttpResponse> {
    ok(&ops_deps::inputs(&state.ops, &caller, task_id(&path)?).await?)
}
