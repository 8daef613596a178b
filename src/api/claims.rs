//! The work queue: `POST /tasks/claim`, `/tasks/{id}/claim|heartbeat|state|release`.

use actix_web::{web, HttpResponse};
use serde::Serialize;

use super::{ok, path_id, Json, State};
use crate::domain::access::Caller;
use crate::error::{Error, Result};
use crate::ops::claims::{self, ClaimInput};
use crate::store::tasks::TaskJson;

/// `{"task": task | null}`, the queue's answer (the SDK reads `task`).
#[derive(Serialize)]
struct Claimed {
    task: Option<TaskJson>,
}

fn parse(state: &State, body: serde_json::Value) -> Result<ClaimInput> {
    ClaimInput::parse(body, state.ops.config.queue.min_lease_seconds)
}

pub async fn claim_next(state: State, caller: Caller, Json(body): Json) -> Result<HttpResponse> {
    let c = parse(&state, body)?;
    let task = claims::claim_next(&state.ops, &caller, c).await?;
    ok(&Claimed { task })
}

pub async fn claim(
    state: State,
    path: web::Path<String>,
    caller: Caller,
    Json(body): Json,
) -> Result<HttpResponse> {
    let id = path_id("task", &path)?;
    let c = parse(&state, body)?;
    let task = claims::claim(&state.ops, &caller, id, c.lease()).await?;
    ok(&Claimed { task: Some(task) })
}

pub async fn heartbeat(
    state: State,
    path: web::Path<String>,
    caller: Caller,
    Json(body): Json,
) -> Result<HttpResponse> {
    let id = path_id("task", &path)?;
    let c = parse(&state, body)?;
    ok(&claims::heartbeat(&state.ops, &caller, id, c).await?)
}

pub async fn set_state(
    state: State,
    path: web::Path<String>,
    caller: Caller,
    Json(body): Json,
) -> Result<HttpResponse> {
    let id = path_id("task", &path)?;
    let c = parse(&state, body)?;
    let new_state = c.state.ok_or_else(|| {
        Error::validation("state", "is required: working, waiting_input or errored")
    })?;
    ok(&claims::set_state(
        &state.ops,
        &caller,
        id,
        new_state,
        c.detail,
        c.claim_generation,
    )
    .await?)
}

pub async fn release(
    state: State,
    path: web::Path<String>,
    caller: Caller,
    Json(body): Json,
) -> Result<HttpResponse> {
    let id = path_id("task", &path)?;
    let c = parse(&state, body)?;
    ok(&claims::release(&state.ops, &caller, id, c.handoff, c.claim_generation).await?)
}
