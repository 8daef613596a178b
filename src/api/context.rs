//! `/tasks/{id}/context`, its history and supersede; `/context/search`.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{about_fenced_task, claim_generation_in, ok, path_id, query, Json, State};
use crate::domain::access::{Caller, Need};
use crate::domain::input::{self, Query};
use crate::error::{Error, Result};
use crate::ops::context::{self, Patch};
use crate::ops::Before;
use crate::store::context::{Entry, RecallHit, RecallQuery, Source};

/// A page of the context ledger, newest first.
#[derive(Serialize, utoipa::ToSchema)]
pub struct History {
    pub entries: Vec<Entry>,
    /// Where the next page starts, or null on the last one.
    pub next_cursor: Option<String>,
}

/// The answer of `POST /tasks/{id}/context/supersede`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Superseded {
    /// The entry, now stale.
    pub superseded: Entry,
}

/// The answer of `GET /context/search` ("recall").
#[derive(Serialize, utoipa::ToSchema)]
pub struct Recall {
    pub query: String,
    pub count: usize,
    pub results: Vec<RecallHit>,
}

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

#[utoipa::path(
    get,
    path = "/tasks/{id}/context",
    tag = "context",
    params(("id" = i64, Path, description = "The task's id"), ("include" = Option<String>, Query, description = "`provenance` to add each key's provenance")),
    responses((status = 200, description = "The context and its version", body = crate::api::openapi::ContextView))
)]
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

/// The merge patch and its query parameters.
fn parse_patch(body: Value, q: &Query) -> Result<Patch> {
    let Value::Object(patch) = body else {
        return Err(Error::validation("body", "context must be a JSON object"));
    };
    Ok(Patch {
        patch,
        source: source_param(q)?.unwrap_or(Source::AgentInferred),
        expected_version: q.int("expected_version")?,
        claim_generation: q.int("claim_generation")?,
    })
}

#[utoipa::path(
    patch,
    path = "/tasks/{id}/context",
    tag = "context",
    params(("id" = i64, Path, description = "The task's id"), ("expected_version" = Option<i64>, Query), ("claim_generation" = Option<i64>, Query), ("source" = Option<String>, Query, description = "human_stated, agent_inferred (default), agent_observed or imported")),
    request_body(content = Object, content_type = "application/json", description = "An RFC 7396 merge patch: null deletes a key"),
    responses((status = 200, description = "The task", body = crate::store::tasks::render::TaskView), (status = 409, description = "expected_version mismatch (with version and context) or a stale claim", body = crate::error::ErrorBody))
)]
pub async fn patch(
    state: State,
    req: HttpRequest,
    path: web::Path<String>,
    caller: Caller,
    Json(body): Json,
) -> Result<HttpResponse> {
    let id = path_id("task", &path)?;
    let q = query(&req);
    let generation = q.int("claim_generation").ok().flatten();
    // A source the caller may not use is refused (403) before what is
    // wrong with the patch, as it would be with a valid one.
    let parsed = parse_patch(body, &q).map_err(|e| match source_param(&q) {
        Ok(Some(s)) => context::check_source(&caller, s).err().unwrap_or(e),
        _ => e,
    });
    let p = about_fenced_task(
        &state,
        &caller,
        id,
        Before::Need(Need::Work),
        generation,
        parsed,
    )
    .await?;
    ok(&context::patch(&state.ops, &caller, id, p).await?)
}

#[utoipa::path(
    get,
    path = "/tasks/{id}/context/history",
    tag = "context",
    params(("id" = i64, Path, description = "The task's id"), ("key" = Option<String>, Query), ("limit" = Option<i64>, Query, minimum = 1, maximum = 100), ("cursor" = Option<String>, Query)),
    responses((status = 200, description = "Ledger entries, newest first", body = History))
)]
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
    ok(&History {
        entries,
        next_cursor: next,
    })
}

/// The body of `POST /tasks/{id}/context/supersede`.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct SupersedeInput {
    /// The context key whose live entry goes stale.
    key: String,
    #[serde(default)]
    claim_generation: Option<i64>,
}

#[utoipa::path(
    post,
    path = "/tasks/{id}/context/supersede",
    tag = "context",
    params(("id" = i64, Path, description = "The task's id")),
    request_body(content = SupersedeInput, content_type = "application/json"),
    responses((status = 200, description = "The entry superseded", body = Superseded))
)]
pub async fn supersede(
    state: State,
    path: web::Path<String>,
    caller: Caller,
    Json(body): Json,
) -> Result<HttpResponse> {
    let id = path_id("task", &path)?;
    let generation = claim_generation_in(&body);
    let s: SupersedeInput = about_fenced_task(
        &state,
        &caller,
        id,
        Before::Need(Need::Work),
        generation,
        input::object(body),
    )
    .await?;
    let entry = context::supersede(&state.ops, &caller, id, s.key, s.claim_generation).await?;
    ok(&Superseded { superseded: entry })
}

#[utoipa::path(
    get,
    path = "/context/search",
    tag = "context",
    params(("q" = String, Query, max_length = 500), ("project_id" = Option<i64>, Query), ("source" = Option<String>, Query), ("key" = Option<String>, Query), ("limit" = Option<i64>, Query), ("include_superseded" = Option<bool>, Query)),
    responses((status = 200, description = "Live context entries matching q", body = Recall))
)]
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
    ok(&Recall {
        query: text,
        count: results.len(),
        results,
    })
}
