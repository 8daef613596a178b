//! `GET /stats` and `GET /usage` (SPEC §10).

use serde_json::Value;

use super::tasks::MAX_CONTENT_CHARS;
use super::Context;
use crate::domain::access::Caller;
use crate::error::Result;
use crate::store::stats::{self, UsageLimits};

/// Counts over what the caller's default `GET /tasks` would list: a
/// worker's own work (its readable tasks), not its claim queue.
pub async fn stats(ctx: &Context, caller: &Caller) -> Result<Value> {
    let caller = caller.clone();
    ctx.store
        .read(move |conn| stats::stats(conn, &caller))
        .await
}

/// What the hosted service reported as quota; self-hosted has no limits.
pub async fn usage(ctx: &Context) -> Result<Value> {
    let limits = UsageLimits {
        rate_limit_rpm: ctx.config.rate_limit_per_minute,
        max_content_chars: MAX_CONTENT_CHARS,
    };
    ctx.store
        .read(move |conn| stats::usage(conn, &limits))
        .await
}
