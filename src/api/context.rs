//! `/tasks/{id}/context`, its history and supersede; `/context/search`.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{ok, path_id, query, Json, State};
use crate::domain::access::Caller;
use crate::domain::input::{self, Query};
use crate::error::{Error, Result};
use crate::ops::context::{self, Patch};
use crate::store::context::{RecallQuery, Source};

fn source_param(q: &Query) -> Result<Option<Source>> {
    q.get("source")
        .map(|s| {
            Source::parse(s).ok_or_else(|| {
                Error::validation(
                    "source",
                    "must be human_stated, agent_inferred, agent_observed or imported",
                )
            })
        })
        .transpose()
}

pub async fn get(
    state: State,
    req: HttpRequest,
    path: web::Path<String>,
    caller: Caller,
) -> Result<HttpResponse> {
    let id = path_id("task", &path)?;
    let with_provenance = query(&req)
        .get("include")
        .is_some_and(|v| v.split(',').any(|p| p.trim() == "provenance"));
    ok(&context::get(&state.ops, &caller, id, with_provenance).await?)
}

pub async fn patch(
    state: State,
    req: HttpRequest,
    path: web::Path<String>,
    caller: Caller,
    Json(body): Json,
) -> Result<HttpResponse> {
    let id = path_id("task", &path)?;
    let q = query(&req);
    let Value::Object(patch) = body else {
        return Err(Error::validation("body", "context must be a JSON object"));
    };
    let p = Patch {
        patch,
        source: source_param(&q)?.unwrap_or(Source::AgentInferred),
        expected_version: q.int("expected_version")?,
        claim_generation: q.int("claim_generation")?,
    };
    ok(&context::patch(&state.ops, &caller, id, p).await?)
}

pub async fn history(
    state: State,
    req: HttpRequest,
    path: web::Path<String>,
    caller: Caller,
) -> Result<HttpResponse> {
    let id = path_id("task", &path)?;
    let q = query(&req);
    let limit = q.int("limit")?.unwrap_or(100);
    let cursor = q
        .get("cursor")
        .map(|c| {
            c.parse::<i64>()
                .map_err(|_| Error::validation("cursor", "is not a cursor this server issued"))
        })
        .transpose()?;
    let key = q.get("key").map(String::from);
    let (entries, next) = context::history(&state.ops, &caller, id, key, limit, cursor).await?;
    ok(&json!({ "entries": entries, "next_cursor": next }))
}

#[derive(Deserialize)]
struct SupersedeInput {
    key: String,
    #[serde(default)]
    claim_generation: Option<i64>,
}

pub async fn supersede(
    state: State,
    path: web::Path<String>,
    caller: Caller,
    Json(body): Json,
) -> Result<HttpResponse> {
    let id = path_id("task", &path)?;
    let s: SupersedeInput = input::object(body)?;
    let entry = context::supersede(&state.ops, &caller, id, s.key, s.claim_generation).await?;
    ok(&json!({ "superseded": entry }))
}

pub async fn search(state: State, req: HttpRequest, caller: Caller) -> Result<HttpResponse> {
    let q = query(&req);
    let text = q
        .get("q")
        .map(String::from)
        .ok_or_else(|| Error::validation("q", "is required"))?;
    input::check_len("q", &text, 500)?;
    let rq = RecallQuery {
        q: text.clone(),
        project_id: q.int("project_id")?,
        source: source_param(&q)?,
        key: q.get("key").map(String::from),
        limit: q.int("limit")?.unwrap_or(20),
        include_superseded: q.bool("include_superseded")?.unwrap_or(false),
    };
    let results = context::recall(&state.ops, &caller, rq).await?;
    ok(&json!({ "query": text, "count": results.len(), "results": results }))
}
