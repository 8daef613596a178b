//! `POST /tasks/{id}/delegate`, `GET /tasks/{id}/chain`, `/children`.

use actix_web::{web, HttpRequest, HttpResponse};

use super::{about_task, created, ok, ok_json, path_id, Dialect, Json, State};
use crate::domain::access::{Caller, Need};
use crate::error::Result;
use crate::ops::delegation::{self, ChainShape, Delegated, Delegation};
use crate::ops::Before;

/// Hands the task off (200, the task) or delegates a child (201, the child).
#[utoipa::path(
    post,
    path = "/tasks/{id}/delegate",
    tag = "delegation",
    params(("id" = i64, Path, description = "The task's id")),
    request_body(content = crate::ops::delegation::DelegateBody, content_type = "application/json"),
    responses((status = 200, description = "Handed off: the task", body = crate::store::tasks::render::TaskView), (status = 201, description = "Delegated: the new child task", body = crate::store::tasks::render::TaskView))
)]
pub async fn delegate(
    state: State,
    path: web::Path<String>,
    caller: Caller,
    Json(body): Json,
) -> Result<HttpResponse> {
    let id = path_id("task", &path)?;
    let d = about_task(
        &state,
        &caller,
        id,
        Before::Need(Need::Assign),
        Delegation::parse(body),
    )
    .await?;
    match delegation::delegate(&state.ops, &caller, id, d).await? {
        Delegated::HandedOff(task) => ok(&task),
        Delegated::Child(child) => created(&child),
    }
}

/// The `chain` key is the hop list under `/v1`, the task list under `/api`.
#[utoipa::path(
    get,
    path = "/tasks/{id}/chain",
    tag = "delegation",
    params(("id" = i64, Path, description = "The task's id")),
    responses((status = 200, description = "The tree of the task's root and its hops", body = crate::ops::delegation::ChainBody))
)]
pub async fn chain(
    state: State,
    req: HttpRequest,
    path: web::Path<String>,
    caller: Caller,
) -> Result<HttpResponse> {
    let id = path_id("task", &path)?;
    let shape = match Dialect::of(&req) {
        Dialect::V1 => ChainShape::Hops,
        Dialect::Api => ChainShape::Tasks,
    };
    ok_json(delegation::chain(&state.ops, &caller, id, shape).await?)
}

#[utoipa::path(
    get,
    path = "/tasks/{id}/children",
    tag = "delegation",
    params(("id" = i64, Path, description = "The task's id")),
    responses((status = 200, description = "The direct children the caller reads", body = Vec<crate::store::tasks::render::TaskView>))
)]
pub async fn children(
    state: State,
    path: web::Path<String>,
    caller: Caller,
) -> Result<HttpResponse> {
    ok(&delegation::children(&state.ops, &caller, path_id("task", &path)?).await?)
}
