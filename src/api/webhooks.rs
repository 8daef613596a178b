//! `/webhooks`: registration, the delivery log, redelivery and test pings.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use super::{created, ok, page_response, path_id, query, Dialect, Json, State};
use crate::domain::access::Caller;
use crate::domain::input::Page;
use crate::error::Result;
use crate::ops::webhooks::{self, WebhookInput};
use crate::webhooks::sign::SignatureVersion;

type IdPath = web::Path<String>;

pub async fn create(
    state: State,
    req: HttpRequest,
    caller: Caller,
    Json(body): Json,
) -> Result<HttpResponse> {
    let w = WebhookInput::parse(body)?;
    // SPEC §9: the SDK (`/api`) verifies v2, the tutorial (`/v1`) v1.
    let version = match Dialect::of(&req) {
        Dialect::Api => SignatureVersion::V2,
        Dialect::V1 => SignatureVersion::V1,
    };
    created(&webhooks::create(&state.ops, &caller, w, version).await?)
}

pub async fn list(state: State, req: HttpRequest, caller: Caller) -> Result<HttpResponse> {
    let q = query(&req);
    let page = Page::from_query(&q)?;
    let items = webhooks::list(&state.ops, &caller, page).await?;
    page_response(&req, &q, page, items)
}

pub async fn get(state: State, path: IdPath, caller: Caller) -> Result<HttpResponse> {
    ok(&webhooks::get(&state.ops, &caller, path_id("webhook", &path)?).await?)
}

pub async fn update(
    state: State,
    path: IdPath,
    caller: Caller,
    Json(body): Json,
) -> Result<HttpResponse> {
    let id = path_id("webhook", &path)?;
    let w = WebhookInput::parse(body)?;
    ok(&webhooks::update(&state.ops, &caller, id, w).await?)
}

pub async fn delete(state: State, path: IdPath, caller: Caller) -> Result<HttpResponse> {
    let id = path_id("webhook", &path)?;
    webhooks::delete(&state.ops, &caller, id).await?;
    ok(&json!({ "deleted": true, "id": id }))
}

pub async fn deliveries(
    state: State,
    req: HttpRequest,
    path: IdPath,
    caller: Caller,
) -> Result<HttpResponse> {
    let id = path_id("webhook", &path)?;
    let q = query(&req);
    let page = Page::from_query(&q)?;
    let list = webhooks::deliveries(&state.ops, &caller, id, page).await?;
    page_response(&req, &q, page, list)
}

pub async fn redeliver(
    state: State,
    path: web::Path<(String, String)>,
    caller: Caller,
) -> Result<HttpResponse> {
    let id = path_id("webhook", &path.0)?;
    let did = path_id("delivery", &path.1)?;
    created(&webhooks::redeliver(&state.ops, &caller, id, did).await?)
}

pub async fn test(state: State, path: IdPath, caller: Caller) -> Result<HttpResponse> {
    ok(&webhooks::test(&state.ops, &caller, path_id("webhook", &path)?).await?)
}

pub async fn recover(
    state: State,
    path: IdPath,
    caller: Caller,
    Json(body): Json,
) -> Result<HttpResponse> {
    let id = path_id("webhook", &path)?;
    let since = webhooks::parse_since(body)?;
    ok(&webhooks::recover(&state.ops, &caller, id, since).await?)
}
