//! `GET /stats` and `GET /usage`.

use actix_web::{web, HttpResponse};

use super::tasks::MAX_CONTENT_CHARS;
use super::{ok, State};
use crate::domain::access::Caller;
use crate::error::Result;
use crate::store::stats::{self, UsageLimits};

async fn get_stats(state: State, caller: Caller) -> Result<HttpResponse> {
    let body = state
        .store
        .read(move |conn| stats::stats(conn, &caller))
        .await?;
    ok(&body)
}

async fn get_usage(state: State, _caller: Caller) -> Result<HttpResponse> {
    let limits = UsageLimits {
        rate_limit_rpm: state.config.rate_limit_per_minute,
        max_content_chars: MAX_CONTENT_CHARS,
    };
    let body = state
        .store
        .read(move |conn| stats::usage(conn, &limits))
        .await?;
    ok(&body)
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/stats", web::get().to(get_stats))
        .route("/usage", web::get().to(get_usage));
}
