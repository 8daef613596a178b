//! `/projects`: every agent reads them, admins write them.

use actix_web::{web, HttpRequest, HttpResponse};

use super::{created, deleted, ok, page_response, path_id, query, Json, State};
use crate::domain::access::Caller;
use crate::domain::input::Page;
use crate::error::Result;
use crate::ops::projects;

#[utoipa::path(
    get,
    path = "/projects",
    tag = "projects",
    params(("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "Page size (default 1000)"), ("offset" = Option<i64>, Query, minimum = 0, description = "Rows to skip")),
    responses((status = 200, description = "Projects", body = Vec<crate::store::projects::Project>, headers(("Link" = String, description = "`<…>; rel=\"next\"` when more rows exist"))))
)]
pub async fn list(state: State, req: HttpRequest, _caller: Caller) -> Result<HttpResponse> {
    let q = query(&req);
    let page = Page::from_query(&q)?;
    let list = projects::list(&state.ops, page).await?;
    page_response(&req, &q, page, list)
}

#[utoipa::path(
    post,
    path = "/projects",
    tag = "projects",
    request_body(content = crate::ops::projects::ProjectInput, content_type = "application/json"),
    responses((status = 201, description = "The project", body = crate::store::projects::Project))
)]
pub async fn create(state: State, caller: Caller, Json(body): Json) -> Result<HttpResponse> {
    // Parsed here, told after the permission (SPEC §2's order of checks).
    let fields = projects::parse(body);
    created(&projects::create(&state.ops, &caller, fields).await?)
}

#[utoipa::path(
    get,
    path = "/projects/{id}",
    tag = "projects",
    params(("id" = i64, Path, description = "The project's id")),
    responses((status = 200, description = "The project", body = crate::store::projects::Project))
)]
pub async fn get(state: State, path: web::Path<String>, _caller: Caller) -> Result<HttpResponse> {
    ok(&projects::get(&state.ops, path_id("project", &path)?).await?)
}

#[utoipa::path(
    method(put, patch),
    path = "/projects/{id}",
    tag = "projects",
    params(("id" = i64, Path, description = "The project's id")),
    request_body(content = crate::ops::projects::ProjectInput, content_type = "application/json"),
    responses((status = 200, description = "The project", body = crate::store::projects::Project))
)]
pub async fn update(
    state: State,
    path: web::Path<String>,
    caller: Caller,
    Json(body): Json,
) -> Result<HttpResponse> {
    let id = path_id("project", &path)?;
    // Parsed here, told after the permission (SPEC §2's order of checks).
    let fields = projects::parse(body);
    ok(&projects::update(&state.ops, &caller, id, fields).await?)
}

#[utoipa::path(
    delete,
    path = "/projects/{id}",
    tag = "projects",
    params(("id" = i64, Path, description = "The project's id")),
    responses((status = 200, description = "Deleted; its tasks are un-assigned from it", body = crate::api::Deleted))
)]
pub async fn delete(state: State, path: web::Path<String>, caller: Caller) -> Result<HttpResponse> {
    let id = path_id("project", &path)?;
    projects::delete(&state.ops, &caller, id).await?;
    deleted(id)
}
