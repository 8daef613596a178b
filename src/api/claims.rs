//! The work queue: `POST /tasks/claim`, `/tasks/{id}/claim|heartbeat|state|release`.

use actix_web::{web, HttpResponse};
use serde::Serialize;

use super::{about_fenced_task, claim_generation_in, ok, path_id, Json, State};
use crate::domain::access::Caller;
use crate::error::{Error, Result};
use crate::ops::claims::{self, ClaimInput};
use crate::ops::Before;
use crate::store::tasks::TaskJson;

/// `{"task": task | null}`, the queue's answer (the SDK reads `task`).
#[derive(Serialize, utoipa::ToSchema)]
pub struct Claimed {
    /// The task claimed, or null when nothing was claimable.
    #[schema(value_type = Option<crate::store::tasks::render::TaskView>)]
    task: Option<TaskJson>,
}

/// Which queue call a body is for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Call {
    Claim,
    Hold,
    Release,
}

/// The body of a queue call, checked in SPEC §2's order: a claim by a
/// caller without an agent identity is 403 and a task it may not see 404,
/// whatever the body; only then is the body's own error (422) told.
async fn parse(
    state: &State,
    caller: &Caller,
    task: Option<i64>,
    call: Call,
    body: serde_json::Value,
) -> Result<ClaimInput> {
    if call != Call::Release {
        claims::agent_of(caller)?;
    }
    // A claim starts a generation; the other calls name the one they hold.
    let generation = (call != Call::Claim)
        .then(|| claim_generation_in(&body))
        .flatten();
    let parsed = ClaimInput::parse(body, state.ops.config.queue.min_lease_seconds);
    match task {
        Some(id) => about_fenced_task(state, caller, id, Before::Queue, generation, parsed).await,
        None => parsed,
    }
}

#[utoipa::path(
    post,
    path = "/tasks/claim",
    tag = "queue",
    request_body(content = Option<crate::ops::claims::ClaimInput>, content_type = "application/json"),
    responses((status = 200, description = "The task claimed, or null when the queue is empty", body = Claimed))
)]
pub async fn claim_next(state: State, caller: Caller, Json(body): Json) -> Result<HttpResponse> {
    let c = parse(&state, &caller, None, Call::Claim, body).await?;
    let task = claims::claim_next(&state.ops, &caller, c).await?;
    ok(&Claimed { task })
}

#[utoipa::path(
    post,
    path = "/tasks/{id}/claim",
    tag = "queue",
    params(("id" = i64, Path, description = "The task's id")),
    request_body(content = Option<crate::ops::claims::ClaimInput>, content_type = "application/json"),
    responses((status = 200, description = "The task claimed", body = Claimed), (status = 409, description = "Not claimable", body = crate::error::ErrorBody))
)]
pub async fn claim(
    state: State,
    path: web::Path<String>,
    caller: Caller,
    Json(body): Json,
) -> Result<HttpResponse> {
    let id = path_id("task", &path)?;
    let c = parse(&state, &caller, Some(id), Call::Claim, body).await?;
    let task = claims::claim(&state.ops, &caller, id, c.lease()).await?;
    ok(&Claimed { task: Some(task) })
}

#[utoipa::path(
    post,
    path = "/tasks/{id}/heartbeat",
    tag = "queue",
    params(("id" = i64, Path, description = "The task's id")),
    request_body(content = Option<crate::ops::claims::ClaimInput>, content_type = "application/json"),
    responses((status = 200, description = "The task, its lease extended", body = crate::store::tasks::render::TaskView), (status = 409, description = "No live claim, or a stale claim_generation", body = crate::error::ErrorBody))
)]
pub async fn heartbeat(
    state: State,
    path: web::Path<String>,
    caller: Caller,
    Json(body): Json,
) -> Result<HttpResponse> {
    let id = path_id("task", &path)?;
    let c = parse(&state, &caller, Some(id), Call::Hold, body).await?;
    ok(&claims::heartbeat(&state.ops, &caller, id, c).await?)
}

#[utoipa::path(
    post,
    path = "/tasks/{id}/state",
    tag = "queue",
    params(("id" = i64, Path, description = "The task's id")),
    request_body(content = crate::ops::claims::ClaimInput, content_type = "application/json"),
    responses((status = 200, description = "The task", body = crate::store::tasks::render::TaskView))
)]
pub async fn set_state(
    state: State,
    path: web::Path<String>,
    caller: Caller,
    Json(body): Json,
) -> Result<HttpResponse> {
    let id = path_id("task", &path)?;
    let c = parse(&state, &caller, Some(id), Call::Hold, body).await?;
    let required = c.state.ok_or_else(|| {
        Error::validation("state", "is required: working, waiting_input or errored")
    });
    let new_state = about_fenced_task(
        &state,
        &caller,
        id,
        Before::Queue,
        c.claim_generation,
        required,
    )
    .await?;
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

#[utoipa::path(
    post,
    path = "/tasks/{id}/release",
    tag = "queue",
    params(("id" = i64, Path, description = "The task's id")),
    request_body(content = Option<crate::ops::claims::ClaimInput>, content_type = "application/json"),
    responses((status = 200, description = "The task, open again", body = crate::store::tasks::render::TaskView), (status = 409, description = "Not claimed", body = crate::error::ErrorBody))
)]
pub async fn release(
    state: State,
    path: web::Path<String>,
    caller: Caller,
    Json(body): Json,
) -> Result<HttpResponse> {
    let id = path_id("task", &path)?;
    let c = parse(&state, &caller, Some(id), Call::Release, body).await?;
    ok(&claims::release(&state.ops, &caller, id, c.handoff, c.claim_generation).await?)
}
