//! `/agents`, `/agents/{id}`, `/agents/{id}/rotate-key`, `/agent/me`.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use super::auth::{is_local_bootstrap, MaybeCaller, MISSING_CREDENTIALS};
use super::{created, ok, page_response, query, Body, Json, State};
use crate::domain::access::Caller;
use crate::domain::input::{AgentRef, Page};
use crate::error::{Error, Result};
use crate::ops::agents::{self, AgentInput, Creator};

/// Admins create agents; without credentials, only the loopback bootstrap
/// of the first one. Authentication comes before validation: a request
/// that may not create an agent never learns what a valid body is.
pub async fn create(
    state: State,
    req: HttpRequest,
    caller: MaybeCaller,
    body: Body,
) -> Result<HttpResponse> {
    let creator = match caller.0 {
        Some(c) => Creator::Caller(c),
        None if is_local_bootstrap(&req) && agents::bootstrap_open(&state.ops).await? => {
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

pub async fn list(state: State, req: HttpRequest, caller: Caller) -> Result<HttpResponse> {
    let q = query(&req);
    let page = Page::from_query(&q)?;
    let list = agents::list(&state.ops, &caller, page).await?;
    page_response(&req, &q, page, list)
}

pub async fn get(state: State, path: web::Path<String>, caller: Caller) -> Result<HttpResponse> {
    ok(&agents::get(&state.ops, &caller, AgentRef::parse(&path)).await?)
}

pub async fn update(
    state: State,
    path: web::Path<String>,
    caller: Caller,
    Json(body): Json,
) -> Result<HttpResponse> {
    let input = AgentInput::parse(body)?;
    ok(&agents::update(&state.ops, &caller, AgentRef::parse(&path), input).await?)
}

pub async fn delete(state: State, path: web::Path<String>, caller: Caller) -> Result<HttpResponse> {
    let id = agents::delete(&state.ops, &caller, AgentRef::parse(&path)).await?;
    ok(&json!({ "deleted": true, "id": id }))
}

pub async fn rotate_key(
    state: State,
    path: web::Path<String>,
    caller: Caller,
) -> Result<HttpResponse> {
    ok(&agents::rotate_key(&state.ops, &caller, AgentRef::parse(&path)).await?)
}

pub async fn me(state: State, caller: Caller) -> Result<HttpResponse> {
    ok(&agents::me(&state.ops, &caller).await?)
}
