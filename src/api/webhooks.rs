//! `/webhooks`: registration, the delivery log, redelivery and test pings.

use actix_web::{web, HttpRequest, HttpResponse};

use super::{created, deleted, ok, page_response, path_id, query, Dialect, Json, State};
use crate::domain::access::Caller;
use crate::domain::input::Page;
use crate::error::Result;
use crate::ops::webhooks::{self, WebhookInput};
use crate::webhooks::sign::SignatureVersion;

type IdPath = web::Path<String>;

#[utoipa::path(
    post,
    path = "/webhooks",
    tag = "webhooks",
    request_body(content = crate::ops::webhooks::WebhookInput, content_type = "application/json"),
    responses((status = 201, description = "The webhook; a generated secret is shown this once", body = crate::store::webhooks::Webhook))
)]
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

#[utoipa::path(
    get,
    path = "/webhooks",
    tag = "webhooks",
    params(("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "Page size (default 1000)"), ("offset" = Option<i64>, Query, minimum = 0, description = "Rows to skip")),
    responses((status = 200, description = "Webhooks (never secrets)", body = Vec<crate::store::webhooks::Webhook>, headers(("Link" = String, description = "`<…>; rel=\"next\"` when more rows exist"))))
)]
pub async fn list(state: State, req: HttpRequest, caller: Caller) -> Result<HttpResponse> {
    let q = query(&req);
    let page = Page::from_query(&q)?;
    let items = webhooks::list(&state.ops, &caller, page).await?;
    page_response(&req, &q, page, items)
}

#[utoipa::path(
    get,
    path = "/webhooks/{id}",
    tag = "webhooks",
    params(("id" = i64, Path, description = "The webhook's id")),
    responses((status = 200, description = "The webhook", body = crate::store::webhooks::Webhook))
)]
pub async fn get(state: State, path: IdPath, caller: Caller) -> Result<HttpResponse> {
    ok(&webhooks::get(&state.ops, &caller, path_id("webhook", &path)?).await?)
}

#[utoipa::path(
    method(put, patch),
    path = "/webhooks/{id}",
    tag = "webhooks",
    params(("id" = i64, Path, description = "The webhook's id")),
    request_body(content = crate::ops::webhooks::WebhookInput, content_type = "application/json"),
    responses((status = 200, description = "The webhook", body = crate::store::webhooks::Webhook))
)]
pub async fn update(
    state: State,
    path: IdPath,
    caller: Caller,
    Json(body): Json,
) -> Result<HttpResponse> {
    let id = path_id("webhook", &path)?;
    // Parsed here, told after the permission (SPEC §2's order of checks).
    let w = WebhookInput::parse(body);
    ok(&webhooks::update(&state.ops, &caller, id, w).await?)
}

#[utoipa::path(
    delete,
    path = "/webhooks/{id}",
    tag = "webhooks",
    params(("id" = i64, Path, description = "The webhook's id")),
    responses((status = 200, description = "Deleted", body = crate::api::Deleted))
)]
pub async fn delete(state: State, path: IdPath, caller: Caller) -> Result<HttpResponse> {
    let id = path_id("webhook", &path)?;
    webhooks::delete(&state.ops, &caller, id).await?;
    deleted(id)
}

#[utoipa::path(
    get,
    path = "/webhooks/{id}/deliveries",
    tag = "webhooks",
    params(("id" = i64, Path, description = "The webhook's id"), ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "Page size (default 1000)"), ("offset" = Option<i64>, Query, minimum = 0, description = "Rows to skip")),
    responses((status = 200, description = "Delivery attempts, newest first", body = Vec<crate::store::webhooks::AttemptLog>, headers(("Link" = String, description = "`<…>; rel=\"next\"` when more rows exist"))))
)]
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

#[utoipa::path(
    post,
    path = "/webhooks/{id}/deliveries/{did}/redeliver",
    tag = "webhooks",
    params(("id" = i64, Path, description = "The webhook's id"), ("did" = i64, Path, description = "The delivery log row's id")),
    responses((status = 201, description = "A new delivery, queued", body = crate::api::openapi::Queued))
)]
pub async fn redeliver(
    state: State,
    path: web::Path<(String, String)>,
    caller: Caller,
) -> Result<HttpResponse> {
    let id = path_id("webhook", &path.0)?;
    let did = path_id("delivery", &path.1)?;
    created(&webhooks::redeliver(&state.ops, &caller, id, did).await?)
}

#[utoipa::path(
    post,
    path = "/webhooks/{id}/test",
    tag = "webhooks",
    params(("id" = i64, Path, description = "The webhook's id")),
    responses((status = 200, description = "A webhook.test ping, queued", body = crate::api::openapi::Queued))
)]
pub async fn test(state: State, path: IdPath, caller: Caller) -> Result<HttpResponse> {
    ok(&webhooks::test(&state.ops, &caller, path_id("webhook", &path)?).await?)
}

#[utoipa::path(
    post,
    path = "/webhooks/{id}/recover",
    tag = "webhooks",
    params(("id" = i64, Path, description = "The webhook's id")),
    request_body(content = crate::ops::webhooks::RecoverBody, content_type = "application/json"),
    responses((status = 200, description = "What was queued again", body = crate::api::openapi::Recovered))
)]
pub async fn recover(
    state: State,
    path: IdPath,
    caller: Caller,
    Json(body): Json,
) -> Result<HttpResponse> {
    let id = path_id("webhook", &path)?;
    let since = webhooks::parse_since(body);
    ok(&webhooks::recover(&state.ops, &caller, id, since).await?)
}
