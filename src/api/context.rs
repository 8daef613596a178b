//! `/tasks/{id}/context`, its history and supersede; `/context/search`.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{ok, path_id, query, Json, State};
use crate::domain::access::Caller;
use crate::domain::input;
use crate::error::{Error, Result};
use crate::store::context::{self, RecallQuery, Source};
use crate::store::tasks::{self, Need};

fn source_param(q: &input::Query) -> Result<Option<Source>> {
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

async fn get(
    state: State,
    req: HttpRequest,
    path: web::Path<String>,
    caller: Caller,
) -> Result<HttpResponse> {
    let id = path_id("task", &path)?;
    let with_provenance = query(&req)
        .get("include")
        .is_some_and(|v| v.split(',').any(|p| p.trim() == "provenance"));
    let body = state
        .store
        .read(move |conn| {
            let task = tasks::require(conn, &caller, id, Need::Read)?;
            let ctx: Value = serde_json::from_str(&task.context).unwrap_or_else(|_| json!({}));
            let mut body = json!({ "context": ctx, "version": task.context_version });
            if with_provenance {
                body["provenance"] = context::provenance(conn, id, &body["context"])?;
            }
            Ok(body)
        })
        .await?;
    ok(&body)
}

async fn patch(
    state: State,
    req: HttpRequest,
    path: web::Path<String>,
    caller: Caller,
    Json(body): Json,
) -> Result<HttpResponse> {
    let id = path_id("task", &path)?;
    let q = query(&req);
    let expected = q.int("expected_version")?;
    let source = source_param(&q)?.unwrap_or(Source::AgentInferred);
    if source.needs_admin() && !caller.is_admin() {
        return Err(Error::forbidden(format!(
            "source {} is reserved to admins",
            source.as_str()
        )));
    }
    let Value::Object(patch) = body else {
        return Err(Error::validation(
            "body",
            "context must be a JSON object",
        ));
    };
    let limits = state.limits();
    let view = state
        .store
        .write(move |tx| {
            tasks::require(tx, &caller, id, Need::Mutate)?;
            context::write(tx, &caller, id, &patch, source, expected, &limits)?;
            tasks::emit(tx, &caller, id, "task.context_updated", None)
        })
        .await?;
    ok(&view)
}

async fn history(
    state: State,
    req: HttpRequest,
    path: web::Path<String>,
    caller: Caller,
) -> Result<HttpResponse> {
    let id = path_id("task", &path)?;
    let q = query(&req);
    let limit = q.int("limit")?.unwrap_or(100);
    if !(1..=100).contains(&limit) {
        return Err(Error::validation("limit", "must be between 1 and 100"));
    }
    let cursor = q
        .get("cursor")
        .map(|c| {
            c.parse::<i64>()
                .map_err(|_| Error::validation("cursor", "is not a cursor this server issued"))
        })
        .transpose()?;
    let key = q.get("key").map(String::from);
    let (entries, next) = state
        .store
        .read(move |conn| {
            tasks::require(conn, &caller, id, Need::Read)?;
            context::history(conn, id, key.as_deref(), limit, cursor)
        })
        .await?;
    ok(&json!({ "entries": entries, "next_cursor": next }))
}

#[derive(Deserialize)]
struct SupersedeInput {
    key: String,
}

async fn supersede(
    state: State,
    path: web::Path<String>,
    caller: Caller,
    Json(body): Json,
) -> Result<HttpResponse> {
    let id = path_id("task", &path)?;
    let s: SupersedeInput = input::object(body)?;
    let entry = state
        .store
        .write(move |tx| {
            tasks::require(tx, &caller, id, Need::Mutate)?;
            context::supersede(tx, id, &s.key)
        })
        .await?;
    ok(&json!({ "superseded": entry }))
}

async fn search(state: State, req: HttpRequest, caller: Caller) -> Result<HttpResponse> {
    let q = query(&req);
    let text = q
        .get("q")
        .map(String::from)
        .ok_or_else(|| Error::validation("q", "is required"))?;
    input::check_len("q", &text, 500)?;
    let limit = q.int("limit")?.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(Error::validation("limit", "must be between 1 and 100"));
    }
    let rq = RecallQuery {
        q: text.clone(),
        project_id: q.int("project_id")?,
        source: source_param(&q)?,
        key: q.get("key").map(String::from),
        limit,
        include_superseded: q.bool("include_superseded")?.unwrap_or(false),
    };
    let results = state
        .store
        .read(move |conn| context::recall(conn, &caller, &rq))
        .await?;
    ok(&json!({ "query": text, "count": results.len(), "results": results }))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/tasks/{id}/context")
            .route(web::get().to(get))
            .route(web::patch().to(patch)),
    )
    .route("/tasks/{id}/context/history", web::get().to(history))
    .route("/tasks/{id}/context/supersede", web::post().to(supersede))
    .route("/context/search", web::get().to(search));
}
