//! `/tasks` and what hangs off one task: complete/uncomplete/fail,
//! comments, subtasks, links, dependencies, inputs, duplicates.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::{
    about_fenced_task, about_task, claim_generation_in, created, deleted, ok, ok_json, path_id,
    query, respond_page, Json, State,
};
use crate::domain::access::{Caller, Need};
use crate::domain::input::{self, Id, Page};
use crate::error::Result;
use crate::ops::comments::{LinkInput, NewComment, SubtaskInput};
use crate::ops::tasks::{Completion, CreateOptions, DedupInput, Failure, ListQuery, TaskInput};
use crate::ops::{self, comments as ops_comments, dependencies as ops_deps, Before};

/// What a body about a task must be allowed before it is validated
/// (`api::about_task`), by what the operation requires.
const WORK: Before = Before::Need(Need::Work);
const MANAGE: Before = Before::Need(Need::Manage);

type IdPath = web::Path<String>;
type TwoIds = web::Path<(String, String)>;

fn task_id(path: &str) -> Result<i64> {
    path_id("task", path)
}

#[utoipa::path(
    get,
    path = "/tasks",
    tag = "tasks",
    params(("assigned_to" = Option<String>, Query, description = "Agent id or name"), ("created_by" = Option<String>, Query, description = "Agent id or name"), ("status" = Option<String>, Query, description = "Comma-separated statuses"), ("completed" = Option<bool>, Query), ("include_completed" = Option<bool>, Query), ("project_id" = Option<i64>, Query), ("label" = Option<String>, Query), ("labels" = Option<Vec<String>>, Query, explode, description = "All must match; at most 50"), ("priority" = Option<i64>, Query), ("search" = Option<String>, Query), ("due" = Option<String>, Query, description = "today, upcoming, overdue or YYYY-MM-DD"), ("due_after" = Option<String>, Query, format = Date), ("due_before" = Option<String>, Query, format = Date), ("parent_task_id" = Option<i64>, Query), ("root_task_id" = Option<i64>, Query), ("claimed" = Option<bool>, Query), ("claimable" = Option<bool>, Query, description = "The caller's claim queue, in claim order"), ("cursor" = Option<String>, Query, description = "From a Link: rel=next"), ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "Page size (default 1000)"), ("offset" = Option<i64>, Query, minimum = 0, description = "Rows to skip")),
    responses((status = 200, description = "One page of tasks", body = Vec<crate::store::tasks::render::TaskView>, headers(("Link" = String, description = "`<…>; rel=\"next\"` when more rows exist"))))
)]
pub async fn list(state: State, req: HttpRequest, caller: Caller) -> Result<HttpResponse> {
    let q = query(&req);
    let page = Page::from_query(&q)?;
    let lq = ListQuery::parse(&q)?;
    let cursor = q.get("cursor").map(String::from);
    let body = ops::tasks::list(&state.ops, &caller, lq, page, cursor).await?;
    respond_page(&req, &q, page, body)
}

#[utoipa::path(
    post,
    path = "/tasks",
    tag = "tasks",
    params(("X-Dedup-Check" = Option<bool>, Header)),
    request_body(content = crate::ops::tasks::TaskInput, content_type = "application/json"),
    responses((status = 201, description = "The task", body = crate::store::tasks::render::TaskView), (status = 409, description = "X-Dedup-Check: a similar open task exists (matches, hint)", body = crate::error::ErrorBody))
)]
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
#[utoipa::path(
    get,
    path = "/tasks/{id}",
    tag = "tasks",
    params(("id" = i64, Path, description = "The task's id")),
    responses((status = 200, description = "The task with its comments and links", body = crate::api::openapi::TaskDetail))
)]
pub async fn get(state: State, path: IdPath, caller: Caller) -> Result<HttpResponse> {
    ok_json(ops::tasks::get(&state.ops, &caller, task_id(&path)?).await?)
}

#[utoipa::path(
    method(put, patch),
    path = "/tasks/{id}",
    tag = "tasks",
    params(("id" = i64, Path, description = "The task's id")),
    request_body(content = crate::ops::tasks::TaskInput, content_type = "application/json"),
    responses((status = 200, description = "The task", body = crate::store::tasks::render::TaskView), (status = 409, description = "Blocked by unfinished dependencies, or `stale_claim`: the `claim_generation` sent is not the task's", body = crate::error::ErrorBody))
)]
pub async fn update(
    state: State,
    path: IdPath,
    caller: Caller,
    Json(body): Json,
) -> Result<HttpResponse> {
    let id = task_id(&path)?;
    let need = Before::Need(ops::tasks::update_need_of(&body));
    let generation = claim_generation_in(&body);
    let changes = about_fenced_task(
        &state,
        &caller,
        id,
        need,
        generation,
        TaskInput::parse_changes(body),
    )
    .await?;
    ok(&ops::tasks::update(&state.ops, &caller, id, changes).await?)
}

#[utoipa::path(
    delete,
    path = "/tasks/{id}",
    tag = "tasks",
    params(("id" = i64, Path, description = "The task's id")),
    responses((status = 200, description = "Deleted", body = crate::api::Deleted))
)]
pub async fn delete(state: State, path: IdPath, caller: Caller) -> Result<HttpResponse> {
    let id = task_id(&path)?;
    ops::tasks::delete(&state.ops, &caller, id).await?;
    deleted(id)
}

#[utoipa::path(
    post,
    path = "/tasks/{id}/complete",
    tag = "tasks",
    params(("id" = i64, Path, description = "The task's id")),
    request_body(content = Option<crate::ops::tasks::CompletionBody>, content_type = "application/json"),
    responses((status = 200, description = "The task, completed", body = crate::store::tasks::render::TaskView))
)]
pub async fn complete(
    state: State,
    path: IdPath,
    caller: Caller,
    Json(body): Json,
) -> Result<HttpResponse> {
    let id = task_id(&path)?;
    let generation = claim_generation_in(&body);
    let completion = about_fenced_task(
        &state,
        &caller,
        id,
        WORK,
        generation,
        Completion::parse(body),
    )
    .await?;
    ok(&ops::tasks::complete(&state.ops, &caller, id, completion).await?)
}

#[utoipa::path(
    post,
    path = "/tasks/{id}/uncomplete",
    tag = "tasks",
    params(("id" = i64, Path, description = "The task's id")),
    responses((status = 200, description = "The task, open again", body = crate::store::tasks::render::TaskView))
)]
pub async fn uncomplete(state: State, path: IdPath, caller: Caller) -> Result<HttpResponse> {
    ok(&ops::tasks::uncomplete(&state.ops, &caller, task_id(&path)?).await?)
}

#[utoipa::path(
    post,
    path = "/tasks/{id}/fail",
    tag = "tasks",
    params(("id" = i64, Path, description = "The task's id")),
    request_body(content = Option<crate::ops::tasks::FailureBody>, content_type = "application/json"),
    responses((status = 200, description = "The task, failed", body = crate::store::tasks::render::TaskView))
)]
pub async fn fail(
    state: State,
    path: IdPath,
    caller: Caller,
    Json(body): Json,
) -> Result<HttpResponse> {
    let id = task_id(&path)?;
    let generation = claim_generation_in(&body);
    let failure =
        about_fenced_task(&state, &caller, id, WORK, generation, Failure::parse(body)).await?;
    ok(&ops::tasks::fail(&state.ops, &caller, id, failure).await?)
}

#[utoipa::path(
    post,
    path = "/tasks/dedup",
    tag = "tasks",
    request_body(content = crate::ops::tasks::DedupInput, content_type = "application/json"),
    responses((status = 200, description = "Similar open tasks the caller reads", body = crate::api::openapi::Duplicates))
)]
pub async fn dedup(state: State, caller: Caller, Json(body): Json) -> Result<HttpResponse> {
    let input = DedupInput::parse(body)?;
    let threshold = input.threshold.unwrap_or(0.6);
    ok(&ops::tasks::dedup(&state.ops, &caller, input.content, threshold).await?)
}

// ---------------------------------------------------------------- comments

#[utoipa::path(
    get,
    path = "/tasks/{id}/comments",
    tag = "comments",
    params(("id" = i64, Path, description = "The task's id")),
    responses((status = 200, description = "Comments, oldest first", body = Vec<crate::store::comments::Comment>))
)]
pub async fn list_comments(state: State, path: IdPath, caller: Caller) -> Result<HttpResponse> {
    ok(&ops_comments::list_comments(&state.ops, &caller, task_id(&path)?).await?)
}

#[utoipa::path(
    post,
    path = "/tasks/{id}/comments",
    tag = "comments",
    params(("id" = i64, Path, description = "The task's id")),
    request_body(content = crate::ops::comments::NewComment, content_type = "application/json"),
    responses((status = 201, description = "The comment", body = crate::store::comments::Comment))
)]
pub async fn add_comment(
    state: State,
    path: IdPath,
    caller: Caller,
    Json(body): Json,
) -> Result<HttpResponse> {
    let id = task_id(&path)?;
    let c = about_task(
        &state,
        &caller,
        id,
        Before::Need(Need::Comment),
        NewComment::parse(body),
    )
    .await?;
    created(&ops_comments::add_comment(&state.ops, &caller, id, c).await?)
}

#[utoipa::path(
    delete,
    path = "/tasks/{id}/comments/{cid}",
    tag = "comments",
    params(("id" = i64, Path, description = "The task's id"), ("cid" = i64, Path, description = "The comment's id")),
    responses((status = 200, description = "Deleted", body = crate::api::Deleted))
)]
pub async fn delete_comment(state: State, path: TwoIds, caller: Caller) -> Result<HttpResponse> {
    let id = task_id(&path.0)?;
    let cid = path_id("comment", &path.1)?;
    ops_comments::delete_comment(&state.ops, &caller, id, cid).await?;
    deleted(cid)
}

// ---------------------------------------------------------------- subtasks

#[utoipa::path(
    get,
    path = "/tasks/{id}/subtasks",
    tag = "subtasks",
    params(("id" = i64, Path, description = "The task's id")),
    responses((status = 200, description = "Subtasks", body = Vec<crate::store::comments::Subtask>))
)]
pub async fn list_subtasks(state: State, path: IdPath, caller: Caller) -> Result<HttpResponse> {
    ok(&ops_comments::list_subtasks(&state.ops, &caller, task_id(&path)?).await?)
}

#[utoipa::path(
    post,
    path = "/tasks/{id}/subtasks",
    tag = "subtasks",
    params(("id" = i64, Path, description = "The task's id")),
    request_body(content = crate::ops::comments::SubtaskInput, content_type = "application/json"),
    responses((status = 201, description = "The subtask", body = crate::store::comments::Subtask))
)]
pub async fn add_subtask(
    state: State,
    path: IdPath,
    caller: Caller,
    Json(body): Json,
) -> Result<HttpResponse> {
    let id = task_id(&path)?;
    let s = about_task(&state, &caller, id, MANAGE, SubtaskInput::parse(body)).await?;
    created(&ops_comments::add_subtask(&state.ops, &caller, id, s).await?)
}

#[utoipa::path(
    method(put, patch),
    path = "/tasks/{id}/subtasks/{sid}",
    tag = "subtasks",
    params(("id" = i64, Path, description = "The task's id"), ("sid" = i64, Path, description = "The subtask's id")),
    request_body(content = crate::ops::comments::SubtaskInput, content_type = "application/json"),
    responses((status = 200, description = "The subtask", body = crate::store::comments::Subtask))
)]
pub async fn update_subtask(
    state: State,
    path: TwoIds,
    caller: Caller,
    Json(body): Json,
) -> Result<HttpResponse> {
    let (id, sid) = (task_id(&path.0)?, path_id("subtask", &path.1)?);
    let s = about_task(&state, &caller, id, MANAGE, SubtaskInput::parse(body)).await?;
    ok(&ops_comments::change_subtask(&state.ops, &caller, id, sid, s, false).await?)
}

#[utoipa::path(
    post,
    path = "/tasks/{id}/subtasks/{sid}/toggle",
    tag = "subtasks",
    params(("id" = i64, Path, description = "The task's id"), ("sid" = i64, Path, description = "The subtask's id")),
    responses((status = 200, description = "The subtask, toggled", body = crate::store::comments::Subtask))
)]
pub async fn toggle_subtask(state: State, path: TwoIds, caller: Caller) -> Result<HttpResponse> {
    let (id, sid) = (task_id(&path.0)?, path_id("subtask", &path.1)?);
    let s = SubtaskInput::default();
    ok(&ops_comments::change_subtask(&state.ops, &caller, id, sid, s, true).await?)
}

#[utoipa::path(
    delete,
    path = "/tasks/{id}/subtasks/{sid}",
    tag = "subtasks",
    params(("id" = i64, Path, description = "The task's id"), ("sid" = i64, Path, description = "The subtask's id")),
    responses((status = 200, description = "Deleted", body = crate::api::Deleted))
)]
pub async fn delete_subtask(state: State, path: TwoIds, caller: Caller) -> Result<HttpResponse> {
    let (id, sid) = (task_id(&path.0)?, path_id("subtask", &path.1)?);
    ops_comments::delete_subtask(&state.ops, &caller, id, sid).await?;
    deleted(sid)
}

// ---------------------------------------------------------------- links

#[utoipa::path(
    get,
    path = "/tasks/{id}/links",
    tag = "links",
    params(("id" = i64, Path, description = "The task's id")),
    responses((status = 200, description = "Links", body = Vec<crate::store::comments::Link>))
)]
pub async fn list_links(state: State, path: IdPath, caller: Caller) -> Result<HttpResponse> {
    ok(&ops_comments::list_links(&state.ops, &caller, task_id(&path)?).await?)
}

/// 201 for a new link, 200 with the existing one for a repeat.
#[utoipa::path(
    post,
    path = "/tasks/{id}/links",
    tag = "links",
    params(("id" = i64, Path, description = "The task's id")),
    request_body(content = crate::ops::comments::LinkInput, content_type = "application/json"),
    responses((status = 201, description = "The new link", body = crate::store::comments::Link), (status = 200, description = "The same link, already there", body = crate::store::comments::Link))
)]
pub async fn add_link(
    state: State,
    path: IdPath,
    caller: Caller,
    Json(body): Json,
) -> Result<HttpResponse> {
    let id = task_id(&path)?;
    let l = about_task(&state, &caller, id, WORK, LinkInput::parse(body)).await?;
    match ops_comments::add_link(&state.ops, &caller, id, l).await? {
        (link, true) => created(&link),
        (link, false) => ok(&link),
    }
}

#[utoipa::path(
    delete,
    path = "/tasks/{id}/links/{lid}",
    tag = "links",
    params(("id" = i64, Path, description = "The task's id"), ("lid" = i64, Path, description = "The link's id")),
    responses((status = 200, description = "Deleted", body = crate::api::Deleted))
)]
pub async fn delete_link(state: State, path: TwoIds, caller: Caller) -> Result<HttpResponse> {
    let (id, lid) = (task_id(&path.0)?, path_id("link", &path.1)?);
    ops_comments::delete_link(&state.ops, &caller, id, lid).await?;
    deleted(lid)
}

// ---------------------------------------------------------------- dependencies

/// The body of `POST /tasks/{id}/dependencies`.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct DependencyInput {
    /// Tasks to wait for, added to those already named.
    depends_on: Vec<Id>,
}

#[utoipa::path(
    post,
    path = "/tasks/{id}/dependencies",
    tag = "dependencies",
    params(("id" = i64, Path, description = "The task's id")),
    request_body(content = DependencyInput, content_type = "application/json"),
    responses((status = 200, description = "The task with its dependencies", body = crate::store::tasks::render::TaskView))
)]
pub async fn add_dependencies(
    state: State,
    path: IdPath,
    caller: Caller,
    Json(body): Json,
) -> Result<HttpResponse> {
    let id = task_id(&path)?;
    let input: DependencyInput =
        about_task(&state, &caller, id, MANAGE, input::object(body)).await?;
    let deps = input.depends_on.into_iter().map(|i| i.0).collect();
    ok(&ops_deps::add(&state.ops, &caller, id, deps).await?)
}

#[utoipa::path(
    delete,
    path = "/tasks/{id}/dependencies/{dep}",
    tag = "dependencies",
    params(("id" = i64, Path, description = "The task's id"), ("dep" = i64, Path, description = "The dependency's task id")),
    responses((status = 200, description = "The task", body = crate::store::tasks::render::TaskView))
)]
pub async fn remove_dependency(state: State, path: TwoIds, caller: Caller) -> Result<HttpResponse> {
    let (id, dep) = (task_id(&path.0)?, task_id(&path.1)?);
    ok(&ops_deps::remove(&state.ops, &caller, id, dep).await?)
}

#[utoipa::path(
    get,
    path = "/tasks/{id}/inputs",
    tag = "dependencies",
    params(("id" = i64, Path, description = "The task's id")),
    responses((status = 200, description = "One entry per dependency", body = Vec<crate::store::dependencies::InputEntry>))
)]
pub async fn inputs(state: State, path: IdPath, caller: Caller) -> Result<HttpResponse> {
    ok(&ops_deps::inputs(&state.ops, &caller, task_id(&path)?).await?)
}
