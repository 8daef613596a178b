//! `/recurrences` (the SDK's `recurrences.*`).

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use super::{created, ok, page_response, path_id, query, Json, State};
use crate::domain::access::Caller;
use crate::domain::input::Page;
use crate::error::{Error, Result};
use crate::ops::recurrences::{self, RecurrenceInput};

type IdPath = web::Path<String>;

pub async fn list(state: State, req: HttpRequest, caller: Caller) -> Result<HttpResponse> {
    let q = query(&req);
    let page = Page::from_query(&q)?;
    let items = recurrences::list(&state.ops, &caller, page).await?;
    page_response(&req, &q, page, items)
}

pub async fn create(state: State, caller: Caller, Json(body): Json) -> Result<HttpResponse> {
    let input = RecurrenceInput::parse(body)?;
    created(&recurrences::create(&state.ops, &caller, input).await?)
}

/// With `?upcoming=N` (1–100), the answer also lists the next N due
/// times, a preview of the calendar.
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

pub async fn update(
    state: State,
    path: IdPath,
    caller: Caller,
    Json(body): Json,
) -> Result<HttpResponse> {
    let id = path_id("recurrence", &path)?;
    let input = RecurrenceInput::parse(body)?;
    ok(&recurrences::update(&state.ops, &caller, id, input).await?)
}

pub async fn delete(state: State, path: IdPath, caller: Caller) -> Result<HttpResponse> {
    let id = path_id("recurrence", &path)?;
    recurrences::delete(&state.ops, &caller, id).await?;
    ok(&json!({ "deleted": true, "id": id }))
}
