//! `GET /stats` and `GET /usage`.

use actix_web::HttpResponse;

use super::{ok, State};
use crate::domain::access::Caller;
use crate::error::Result;
use crate::ops;

#[utoipa::path(
    get,
    path = "/stats",
    tag = "meta",
    responses((status = 200, description = "Counts over what the caller's GET /tasks lists", body = crate::api::openapi::Stats))
)]
pub async fn stats(state: State, caller: Caller) -> Result<HttpResponse> {
    ok(&ops::stats::stats(&state.ops, &caller).await?)
}

#[utoipa::path(
    get,
    path = "/usage",
    tag = "meta",
    responses((status = 200, description = "Usage; self-hosted has no limits", body = crate::api::openapi::Usage))
)]
pub async fn usage(state: State, _caller: Caller) -> Result<HttpResponse> {
    ok(&ops::stats::usage(&state.ops).await?)
}
