//! The work queue: `POST /tasks/claim`, `/tasks/{id}/claim|heartbeat|state|release`.

use std::time::{Duration, Instant};

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::Value;

use super::{ok, path_id, Json, State};
use crate::domain::access::Caller;
use crate::domain::input::{self, check_len, Id};
use crate::error::{Error, Result};
use crate::store::claims::{self, DEFAULT_LEASE, SESSION_STATES};
use crate::store::tasks::TaskJson;

#[derive(Deserialize, Default)]
struct ClaimInput {
    project_id: Option<Id>,
    labels: Option<Vec<String>>,
    lease_seconds: Option<i64>,
    wait_seconds: Option<i64>,
    state: Option<String>,
    detail: Option<String>,
    handoff: Option<String>,
}

impl ClaimInput {
    fn parse(body: Value) -> Result<ClaimInput> {
        let c: ClaimInput = input::object(body)?;
        if let Some(l) = c.lease_seconds {
            if !(30..=3600).contains(&l) {
                return Err(Error::validation(
                    "lease_seconds",
                    "must be between 30 and 3600",
                ));
            }
        }
        if let Some(w) = c.wait_seconds {
            if !(0..=60).contains(&w) {
                return Err(Error::validation(
                    "wait_seconds",
                    "must be between 0 and 60",
                ));
            }
        }
        if let Some(s) = &c.state {
            if !SESSION_STATES.contains(&s.as_str()) {
                return Err(Error::validation(
                    "state",
                    "must be working, waiting_input or errored",
                ));
            }
        }
        for (field, v) in [("detail", &c.detail), ("handoff", &c.handoff)] {
            if let Some(v) = v {
                check_len(field, v, 10_000)?;
            }
        }
        Ok(c)
    }
    fn lease(&self) -> i64 {
        self.lease_seconds.unwrap_or(DEFAULT_LEASE)
    }
}

/// `{"task": task | null}`, the queue's answer.
#[derive(serde::Serialize)]
struct Claimed {
    task: Option<TaskJson>,
}

fn task_body(task: Option<TaskJson>) -> Result<HttpResponse> {
    ok(&Claimed { task })
}

/// Claims the next task; with `wait_seconds`, waits for one to appear,
/// retrying whenever something is committed.
async fn claim_next(state: State, caller: Caller, Json(body): Json) -> Result<HttpResponse> {
    let c = ClaimInput::parse(body)?;
    let deadline = Instant::now() + Duration::from_secs(c.wait_seconds.unwrap_or(0) as u64);
    let mut changes = state.store.hub().subscribe();
    let project = c.project_id.map(|p| p.0);
    let labels = c.labels.clone().unwrap_or_default();
    loop {
        let (caller2, labels2, lease) = (caller.clone(), labels.clone(), c.lease());
        let got = state
            .store
            .write(move |tx| claims::claim_next(tx, &caller2, project, &labels2, lease))
            .await?;
        let left = deadline.saturating_duration_since(Instant::now());
        if got.is_some() || left.is_zero() {
            return task_body(got);
        }
        // Wake on the next commit (or re-check at least every second).
        let _ = tokio::time::timeout(left.min(Duration::from_secs(1)), changes.recv()).await;
    }
}

async fn claim(
    state: State,
    path: web::Path<String>,
    caller: Caller,
    Json(body): Json,
) -> Result<HttpResponse> {
    let id = path_id("task", &path)?;
    let c = ClaimInput::parse(body)?;
    let view = state
        .store
        .write(move |tx| claims::claim(tx, &caller, id, c.lease()))
        .await?;
    task_body(Some(view))
}

async fn heartbeat(
    state: State,
    path: web::Path<String>,
    caller: Caller,
    Json(body): Json,
) -> Result<HttpResponse> {
    let id = path_id("task", &path)?;
    let c = ClaimInput::parse(body)?;
    let lease = c.lease();
    let new_state = c.state.map(|s| (s, c.detail));
    let view = state
        .store
        .write(move |tx| claims::heartbeat(tx, &caller, id, lease, new_state))
        .await?;
    ok(&view)
}

async fn set_state(
    state: State,
    path: web::Path<String>,
    caller: Caller,
    Json(body): Json,
) -> Result<HttpResponse> {
    let id = path_id("task", &path)?;
    let c = ClaimInput::parse(body)?;
    let new_state = c.state.ok_or_else(|| {
        Error::validation("state", "is required: working, waiting_input or errored")
    })?;
    let view = state
        .store
        .write(move |tx| claims::set_state(tx, &caller, id, &new_state, c.detail))
        .await?;
    ok(&view)
}

async fn release(
    state: State,
    path: web::Path<String>,
    caller: Caller,
    Json(body): Json,
) -> Result<HttpResponse> {
    let id = path_id("task", &path)?;
    let c = ClaimInput::parse(body)?;
    let view = state
        .store
        .write(move |tx| claims::release(tx, &caller, id, c.handoff))
        .await?;
    ok(&view)
}

/// Registered before `/tasks/{id}` so `claim` is not read as an id.
pub fn configure_queue(cfg: &mut web::ServiceConfig) {
    cfg.route("/tasks/claim", web::post().to(claim_next));
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/tasks/{id}/claim", web::post().to(claim))
        .route("/tasks/{id}/heartbeat", web::post().to(heartbeat))
        .route("/tasks/{id}/state", web::post().to(set_state))
        .route("/tasks/{id}/release", web::post().to(release));
}
