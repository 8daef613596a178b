//! `/fleet/attention`: what needs a person (SPEC §10).

use actix_web::HttpResponse;

use super::{ok, State};
use crate::domain::access::Caller;
use crate::error::Result;
use crate::ops::fleet;

#[utoipa::path(
    get,
    path = "/fleet/attention",
    tag = "fleet",
    responses((status = 200, description = "What needs a person, by bucket", body = crate::api::openapi::Attention))
)]
pub async fn attention(state: State, caller: Caller) -> Result<HttpResponse> {
    ok(&fleet::attention(&state.ops, &caller).await?)
}
