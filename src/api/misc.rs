//! `GET /stats` and `GET /usage`.

use actix_web::HttpResponse;

use super::{ok, State};
use crate::domain::access::Caller;
use crate::error::Result;
use crate::ops;

pub async fn stats(state: State, caller: Caller) -> Result<HttpResponse> {
    ok(&ops::stats::stats(&state.ops, &caller).await?)
}

pub async fn usage(state: State, _caller: Caller) -> Result<HttpResponse> {
    ok(&ops::stats::usage(&state.ops).await?)
}
