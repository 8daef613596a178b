//! `/recurrences` (the SDK's `recurrences.*`).

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use super::{created, deleted, ok, page_response, path_id, query, Json, State};
use crate::domain::access::Caller;
use crate::domain::input::Page;
use crate::error::{Error, Result};
use crate::ops::recurrences::{self, RecurrenceInput};

type IdPath = web::Path<String>;

#[utoipa::path(
    get,
    path = "/recurrences",
    tag = "recurrences",
    params(("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "Page size (default 1000)"), ("offset" = Option<i64>, Query, minimum = 0, description = "Rows to skip")),
    responses((status = 200, description = "Recurrences", body = Vec<crate::store::recurrences::Recurrence>, headers(("Link" = String, description = "`<…>; rel=\"next\"` when more rows exist"))))
)]
pub async fn list(state: State, req: HttpRequest, caller: Caller) -> Result<HttpResponse> {
    let q = query(&req);
    let page = Page::from_query(&q)?;
    let items = recurrences::list(&state.ops, &caller, page).await?;
    page_response(&req, &q, page, items)
}

#[utoipa::path(
    post,
    path = "/recurrences",
    tag = "recurrences",
    request_body(content = crate::ops::recurrences::RecurrenceInput, content_type = "application/json"),
    responses((status = 201, description = "The recurrence", body = crate::store::recurrences::Recurrence))
)]
pub async fn create(state: State, caller: Caller, Json(body): Json) -> Result<HttpResponse> {
    let input = RecurrenceInput::parse(body)?;
    created(&recurrences::create(&state.ops, &caller, input).await?)
}

/// With `?upcoming=N` (1–100), the answer also lists the next N due
/// times, a preview of the calendar.
#[utoipa::path(
    get,
    path = "/recurrences/{id}",
    tag = "recurrences",
    params(("id" = i64, Path, description = "The recurrence's id"), ("upcoming" = Option<i64>, Query, minimum = 1, maximum = 100)),
    responses((status = 200, description = "The recurrence (with upcoming due times when asked)", body = crate::api::openapi::RecurrenceDetail))
)]
pub async fn get(
    state: State,
    req: HttpRequest,
    path: IdPath,
    caller: Caller,
) -> Result<HttpResponse> {
    let id = path_id("recurrence", &path)?;
    let n = query(&req).int("upcoming")?;
    if let Some(n) = n {
        if !(1..=100).contains(&n) {
            return Err(Error::validation("upcoming", "must be between 1 and 100"));
        }
    }
    let r = recurrences::get(&state.ops, &caller, id).await?;
    let mut body = serde_json::to_value(&r)?;
    if let Some(n) = n {
        body["upcoming"] = json!(recurrences::upcoming(&r, n as usize)?);
    }
    ok(&body)
}

#[utoipa::path(
    method(put, patch),
    path = "/recurrences/{id}",
    tag = "recurrences",
    params(("id" = i64, Path, description = "The recurrence's id")),
    request_body(content = crate::ops::recurrences::RecurrenceInput, content_type = "application/json"),
    responses((status = 200, description = "The recurrence", body = crate::store::recurrences::Recurrence))
)]
pub async fn update(
    state: State,
    path: IdPath,
    caller: Caller,
    Json(body): Json,
) -> Result<HttpResponse> {
    let id = path_id("recurrence", &path)?;
    // Parsed here, told after the permission (SPEC §2's order of checks).
    let input = RecurrenceInput::parse(body);
    ok(&recurrences::update(&state.ops, &caller, id, input).await?)
}

#[utoipa::path(
    delete,
    path = "/recurrences/{id}",
    tag = "recurrences",
    params(("id" = i64, Path, description = "The recurrence's id")),
    responses((status = 200, description = "Deleted", body = crate::api::Deleted))
)]
pub async fn delete(state: State, path: IdPath, caller: Caller) -> Result<HttpResponse> {
    let id = path_id("recurrence", &path)?;
    recurrences::delete(&state.ops, &caller, id).await?;
    deleted(id)
}
