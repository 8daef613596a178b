//! `/projects`: every agent reads them, admins write them.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use super::{created, ok, page_response, path_id, query, Json, State};
use crate::domain::access::Caller;
use crate::domain::input::Page;
use crate::error::Result;
use crate::ops::projects;

pub async fn list(state: State, req: HttpRequest, _caller: Caller) -> Result<HttpResponse> {
    let q = query(&req);
    let page = Page::from_query(&q)?;
    let list = projects::list(&state.ops, page).await?;
    page_response(&req, &q, page, list)
}

pub async fn create(state: State, caller: Caller, Json(body): Json) -> Result<HttpResponse> {
    let fields = projects::parse(body)?;
    created(&projects::create(&state.ops, &caller, fields).await?)
}

pub async fn get(state: State, path: web::Path<String>, _caller: Caller) -> Result<HttpResponse> {
    ok(&projects::get(&state.ops, path_id("project", &path)?).await?)
}

pub async fn update(
    state: State,
    path: web::Path<String>,
    caller: Caller,
    Json(body): Json,
) -> Result<HttpResponse> {
    let id = path_id("project", &path)?;
    let fields = projects::parse(body)?;
    ok(&projects::update(&state.ops, &caller, id, fields).await?)
}

pub async fn delete(state: State, path: web::Path<String>, caller: Caller) -> Result<HttpResponse> {
    let id = path_id("project", &path)?;
    projects::delete(&state.ops, &caller, id).await?;
    ok(&json!({ "deleted": true, "id": id }))
}
