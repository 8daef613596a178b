//! Context (SPEC §7): a JSON object per task, changed by merge patches,
//! versioned, with a provenance ledger and recall across tasks.

use serde_json::{json, Map, Value};

use super::{emit, require, Context};
use crate::domain::access::{Caller, Need};
use crate::domain::event_kind::EventKind;
use crate::error::{Error, Result};
use crate::store::context::{self, Entry, RecallHit, RecallQuery, Source};
use crate::store::tasks::TaskJson;

/// `GET /tasks/{id}/context`: `{context, version}`, with `provenance`
/// when asked.
pub async fn get(ctx: &Context, caller: &Caller, id: i64, with_provenance: bool) -> Result<Value> {
    let caller = caller.clone();
    ctx.store
        .read(move |conn| {
            let task = require(conn, &caller, id, Need::Read)?;
            let c: Value = serde_json::from_str(&task.context).unwrap_or_else(|_| json!({}));
            let mut body = json!({ "context": c, "version": task.context_version });
            if with_provenance {
                body["provenance"] = context::provenance(conn, id, &body["context"])?;
            }
            Ok(body)
        })
        .await
}

/// A context write: the RFC 7396 merge patch, its `source`, and the
/// version the writer expects (409 `version_mismatch` otherwise).
pub struct Patch {
    pub patch: Map<String, Value>,
    pub source: Source,
    pub expected_version: Option<i64>,
    /// The fencing token of the caller's claim, if it works under one.
    pub claim_generation: Option<i64>,
}

/// 403 for a `source` reserved to admins (`human_stated`, `imported`)
/// sent by anyone else.
pub fn check_source(caller: &Caller, source: Source) -> Result<()> {
    if source.needs_admin() && !caller.is_admin() {
        return Err(Error::forbidden(format!(
            "source {} is reserved to admins",
            source.as_str()
        )));
    }
    Ok(())
}

/// `PATCH /tasks/{id}/context`: merges the patch; `human_stated` and
/// `imported` are for admins.
pub async fn patch(ctx: &Context, caller: &Caller, id: i64, p: Patch) -> Result<TaskJson> {
    let (caller, max) = (caller.clone(), ctx.max_context_bytes());
    ctx.store
        .write(move |tx| {
            super::require_fenced(tx, &caller, id, Need::Work, p.claim_generation)?;
            check_source(&caller, p.source)?;
            context::write(tx, &caller, id, &p.patch, p.source, p.expected_version, max)?;
            emit(tx, &caller, id, EventKind::TaskContextUpdated, None)
        })
        .await
}

/// `GET /tasks/{id}/context/history`: the ledger, newest first, by pages.
pub async fn history(
    ctx: &Context,
    caller: &Caller,
    id: i64,
    key: Option<String>,
    limit: i64,
    cursor: Option<i64>,
) -> Result<(Vec<Entry>, Option<String>)> {
    if !(1..=100).contains(&limit) {
        return Err(Error::validation("limit", "must be between 1 and 100"));
    }
    let caller = caller.clone();
    ctx.store
        .read(move |conn| {
            require(conn, &caller, id, Need::Read)?;
            context::history(conn, id, key.as_deref(), limit, cursor)
        })
        .await
}

/// `POST /tasks/{id}/context/supersede {key}`: the live entry for `key`
/// goes stale (the context value stays); `task.context_updated` with
/// reason `superseded`. Fenced by `claim_generation` like every context
/// write.
pub async fn supersede(
    ctx: &Context,
    caller: &Caller,
    id: i64,
    key: String,
    claim_generation: Option<i64>,
) -> Result<Entry> {
    let caller = caller.clone();
    ctx.store
        .write(move |tx| {
            super::require_fenced(tx, &caller, id, Need::Work, claim_generation)?;
            let entry = context::supersede(tx, id, &key)?;
            crate::store::tasks::touch(tx, id)?;
            emit(
                tx,
                &caller,
                id,
                EventKind::TaskContextUpdated,
                Some("superseded"),
            )?;
            Ok(entry)
        })
        .await
}

/// `GET /context/search` ("recall"): live entries across every task the
/// caller reads, best first.
pub async fn recall(ctx: &Context, caller: &Caller, q: RecallQuery) -> Result<Vec<RecallHit>> {
    if !(1..=100).contains(&q.limit) {
        return Err(Error::validation("limit", "must be between 1 and 100"));
    }
    let caller = caller.clone();
    ctx.store
        .read(move |conn| context::recall(conn, &caller, &q))
        .await
}
