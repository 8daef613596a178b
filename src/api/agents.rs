//! `/agents`, `/agents/{id}`, `/agents/{id}/rotate-key`, `/agent/me`.

use actix_web::{web, HttpRequest, HttpResponse};

use super::auth::{is_local_request, MaybeCaller, MISSING_CREDENTIALS};
use super::{created, deleted, ok, page_response, query, Body, Json, State};
use crate::domain::access::Caller;
use crate::domain::input::{AgentRef, Page};
use crate::error::{Error, Result};
use crate::ops::agents::{self, AgentInput, Creator};

/// Admins create agents; without credentials, only the loopback bootstrap
/// of the first one. Authentication comes before validation: a request
/// that may not create an agent never learns what a valid body is.
#[utoipa::path(
    post,
    path = "/agents",
    tag = "agents",
    request_body(content = crate::ops::agents::AgentInput, content_type = "application/json"),
    security((), ("agent_key" = []), ("bearer" = [])),
    responses((status = 201, description = "The agent, with its api_key (shown this once)", body = crate::store::agents::Agent), (status = 409, description = "Duplicate name", body = crate::error::ErrorBody))
)]
pub async fn create(
    state: State,
    req: HttpRequest,
    caller: MaybeCaller,
    body: Body,
) -> Result<HttpResponse> {
    let creator = match caller.0 {
        Some(c) => Creator::Caller(c),
        None if is_local_request(&req) && agents::bootstrap_open(&state.ops).await? => {
            Creator::Bootstrap
        }
        None => return Err(Error::unauthorized(MISSING_CREDENTIALS)),
    };
    if let Creator::Caller(c) = &creator {
        if !c.is_admin() {
            return Err(Error::forbidden("only admins create agents"));
        }
    }
    // Only now the body: an unauthenticated request never learns what a
    // valid one looks like (SPEC §2).
    let input = AgentInput::parse(body.json()?)?;
    created(&agents::create(&state.ops, creator, input).await?)
}

#[utoipa::path(
    get,
    path = "/agents",
    tag = "agents",
    params(("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "Page size (default 1000)"), ("offset" = Option<i64>, Query, minimum = 0, description = "Rows to skip")),
    responses((status = 200, description = "Agents, each with open_task_count (never keys)", body = Vec<crate::store::agents::Agent>, headers(("Link" = String, description = "`<…>; rel=\"next\"` when more rows exist"))))
)]
pub async fn list(state: State, req: HttpRequest, caller: Caller) -> Result<HttpResponse> {
    let q = query(&req);
    let page = Page::from_query(&q)?;
    let list = agents::list(&state.ops, &caller, page).await?;
    page_response(&req, &q, page, list)
}

#[utoipa::path(
    get,
    path = "/agents/{id}",
    tag = "agents",
    params(("id" = String, Path, description = "The agent's id or name")),
    responses((status = 200, description = "The agent", body = crate::store::agents::Agent))
)]
pub async fn get(state: State, path: web::Path<String>, caller: Caller) -> Result<HttpResponse> {
    ok(&agents::get(&state.ops, &caller, AgentRef::parse(&path)).await?)
}

#[utoipa::path(
    method(put, patch),
    path = "/agents/{id}",
    tag = "agents",
    params(("id" = String, Path, description = "The agent's id or name")),
    request_body(content = crate::ops::agents::AgentInput, content_type = "application/json"),
    responses((status = 200, description = "The agent as changed", body = crate::store::agents::Agent))
)]
pub async fn update(
    state: State,
    path: web::Path<String>,
    caller: Caller,
    Json(body): Json,
) -> Result<HttpResponse> {
    // Parsed here, told after the permission (SPEC §2's order of checks).
    let input = AgentInput::parse_update(&caller, body);
    ok(&agents::update(&state.ops, &caller, AgentRef::parse(&path), input).await?)
}

#[utoipa::path(
    delete,
    path = "/agents/{id}",
    tag = "agents",
    params(("id" = String, Path, description = "The agent's id or name")),
    responses((status = 200, description = "Deleted", body = crate::api::Deleted), (status = 409, description = "The agent has open tasks or claims, or is the caller", body = crate::error::ErrorBody))
)]
pub async fn delete(state: State, path: web::Path<String>, caller: Caller) -> Result<HttpResponse> {
    let id = agents::delete(&state.ops, &caller, AgentRef::parse(&path)).await?;
    deleted(id)
}

#[utoipa::path(
    post,
    path = "/agents/{id}/rotate-key",
    tag = "agents",
    params(("id" = String, Path, description = "The agent's id or name")),
    responses((status = 200, description = "The agent with its new api_key", body = crate::store::agents::Agent))
)]
pub async fn rotate_key(
    state: State,
    path: web::Path<String>,
    caller: Caller,
) -> Result<HttpResponse> {
    ok(&agents::rotate_key(&state.ops, &caller, AgentRef::parse(&path)).await?)
}

#[utoipa::path(
    get,
    path = "/agent/me",
    tag = "agents",
    responses((status = 200, description = "The caller", body = crate::api::openapi::Me))
)]
pub async fn me(state: State, caller: Caller) -> Result<HttpResponse> {
    ok(&agents::me(&state.ops, &caller).await?)
}
