//! The work queue (SPEC §10): claims with leases, heartbeats, session
//! state, release, lease expiry. The writer runs one write at a time, so a
//! claim is atomic: two workers never hold the same task.

use std::time::{Duration, Instant};

use rusqlite::Connection;
use serde::Deserialize;
use serde_json::Value;

use super::{emit, emit_row, transition, transition_recording, Context};
use crate::domain::access::Caller;
use crate::domain::clock;
use crate::domain::event_kind::EventKind;
use crate::domain::input::{self, check_len, Id};
use crate::domain::lifecycle::Transition;
use crate::error::{Error, Result};
use crate::hub::Wanted;
use crate::store::claims::{self, QueueFilter};
use crate::store::tasks::{self, Record, TaskJson, TaskRow};
use crate::store::Tx;

pub const DEFAULT_LEASE: i64 = 300;
pub const MAX_LEASE: i64 = 3600;
pub const MAX_WAIT: i64 = 60;
pub const SESSION_STATES: &[&str] = &["working", "waiting_input", "errored"];

/// The body of every queue call; each uses the fields it needs (claim:
/// `project_id`, `labels`, `lease_seconds`, `wait_seconds`; heartbeat:
/// `lease_seconds`, `state`, `detail`; state: `state`, `detail`; release:
/// `handoff`).
#[derive(Deserialize, Default, utoipa::ToSchema)]
pub struct ClaimInput {
    pub project_id: Option<Id>,
    /// All must match; at most 50.
    #[schema(max_items = 50)]
    pub labels: Option<Vec<String>>,
    /// `[queue] min_lease_seconds` (default 30) to 3600; default 300.
    #[schema(maximum = 3600)]
    pub lease_seconds: Option<i64>,
    /// Long poll: wait up to this long for a task (0–60).
    #[schema(minimum = 0, maximum = 60)]
    pub wait_seconds: Option<i64>,
    /// `working`, `waiting_input` or `errored`.
    pub state: Option<String>,
    #[schema(max_length = 10000)]
    pub detail: Option<String>,
    /// A note for whoever takes the task next (release).
    #[schema(max_length = 10000)]
    pub handoff: Option<String>,
    /// The fencing token of the claim the caller holds (SPEC §10).
    pub claim_generation: Option<i64>,
}

impl ClaimInput {
    /// Parses and checks a body; `min_lease` is `[queue] min_lease_seconds`.
    pub fn parse(body: Value, min_lease: i64) -> Result<ClaimInput> {
        let c: ClaimInput = input::object(body)?;
        if let Some(l) = c.lease_seconds {
            if !(min_lease..=MAX_LEASE).contains(&l) {
                return Err(Error::validation(
                    "lease_seconds",
                    format!("must be between {min_lease} and {MAX_LEASE}"),
                ));
            }
        }
        if let Some(w) = c.wait_seconds {
            if !(0..=MAX_WAIT).contains(&w) {
                return Err(Error::validation(
                    "wait_seconds",
                    format!("must be between 0 and {MAX_WAIT}"),
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
        if let Some(labels) = &c.labels {
            super::tasks::check_labels("labels", labels)?;
        }
        Ok(c)
    }

    pub fn lease(&self) -> i64 {
        self.lease_seconds.unwrap_or(DEFAULT_LEASE)
    }
}

fn lease_end(seconds: i64) -> String {
    clock::format(clock::now() + time::Duration::seconds(seconds))
}

/// The caller's agent id; 403 for callers without one (claims are an
/// agent's).
pub fn agent_of(caller: &Caller) -> Result<i64> {
    caller
        .agent_id()
        .ok_or_else(|| Error::forbidden("claims need an agent identity; use an agent key"))
}

/// Claims `task` for `agent`: the machine decides whether it may be
/// claimed; the claim moves the fencing token on. The claim holder reads
/// the task through its `claimed_by_agent_id` column, so no reader row
/// changes (see `store::readers`).
fn take(tx: &Tx, caller: &Caller, task: &TaskRow, agent: i64, lease: i64) -> Result<TaskJson> {
    let lease_end = lease_end(lease);
    let record = Record::Claim {
        agent,
        lease_end: &lease_end,
    };
    let row = transition_recording(tx, task, Transition::Claim, record)?;
    emit_row(tx, caller, row, EventKind::TaskClaimed, None)
}

/// `POST /tasks/claim`: claims the next task in the caller's queue
/// (priority, then age); with `wait_seconds`, waits for one to appear.
///
/// The first look claims on the writer straight away: the writer finds
/// the next task through the same index a read would, and a busy queue
/// (where there almost always is one) saves a read per claim. On an empty
/// queue that look is a writer job that writes nothing (one index probe
/// in the next group commit), once per call — not per wake-up.
///
/// Waiting costs nothing (SPEC §10): when the queue has nothing, the
/// claimer files a waiter with the hub, looks once more with a read (a
/// task may have been queued in between), and sleeps — no thread, no
/// write — until a commit queues a task it may take; then it looks again
/// with a read, and only then claims on the writer.
pub async fn claim_next(ctx: &Context, caller: &Caller, c: ClaimInput) -> Result<Option<TaskJson>> {
    let agent = agent_of(caller)?;
    let wait = Duration::from_secs(c.wait_seconds.unwrap_or(0) as u64);
    let deadline = Instant::now() + wait;
    let filter = QueueFilter {
        agent,
        project_id: c.project_id.map(|p| p.0),
        labels: c.labels.clone().unwrap_or_default(),
    };
    let lease = c.lease();
    let mut ticket = None;
    let mut first = true;
    loop {
        let worth_a_write = first
            || ctx
                .store
                .read_blocking(|conn| claims::next(conn, &filter))?
                .is_some();
        first = false;
        if worth_a_write {
            let (caller, filter) = (caller.clone(), filter.clone());
            let got = ctx
                .store
                .write(move |tx| {
                    let Some(id) = claims::next(tx, &filter)? else {
                        return Ok(None);
                    };
                    take(tx, &caller, &tasks::require(tx, id)?, agent, lease).map(Some)
                })
                .await?;
            if got.is_some() {
                ctx.store.metrics().claimed();
                return Ok(got);
            }
            // Nothing (or another claimer took it first): wait, or give up.
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        match &ticket {
            None => {
                ticket = Some(ctx.store.hub().waiters().register(Wanted {
                    agent,
                    project_id: filter.project_id,
                    labels: filter.labels.clone(),
                }));
            }
            Some(t) => {
                if tokio::time::timeout(left, t.notified()).await.is_err() {
                    return Ok(None);
                }
            }
        }
    }
}

/// Whether `task` is a queue item of the caller's — claimable, and
/// unassigned or assigned to it — whether or not a claim holds it now.
fn queue_item(task: &TaskRow, caller: &Caller) -> bool {
    task.status().is_claimable()
        && (task.assigned_to_agent_id.is_none() || task.assigned_to_agent_id == caller.agent_id())
}

/// `task` for a queue operation: one the caller reads, or a queue item
/// that another agent's claim hides — for those the answer is "claimed by
/// someone else" (409/403), not a 404.
pub(super) fn queue_visible(conn: &Connection, caller: &Caller, task: TaskRow) -> Result<TaskRow> {
    if queue_item(&task, caller) || super::may_read(conn, caller, &task)? {
        Ok(task)
    } else {
        Err(Error::not_found(format!("task {} not found", task.id)))
    }
}

/// `POST /tasks/{id}/claim`: 409 when the task is not in the caller's
/// queue (claimed, delegated, blocked, finished, assigned to another).
pub async fn claim(ctx: &Context, caller: &Caller, id: i64, lease: i64) -> Result<TaskJson> {
    let agent = agent_of(caller)?;
    let caller = caller.clone();
    let claimed = ctx
        .store
        .write(move |tx| {
            let task = queue_visible(tx, &caller, tasks::require(tx, id)?)?;
            let now = clock::now_string();
            if task.live_claimant(&now) == Some(agent) {
                return Err(Error::conflict(format!(
                    "task {id} is not claimable: you already hold its claim; heartbeat to extend it"
                )));
            }
            if task.assigned_to_agent_id.is_some_and(|a| a != agent)
                && task.state(&now).is_claimable()
            {
                return Err(Error::conflict(format!(
                    "task {id} is not claimable: it is assigned to another agent"
                )));
            }
            take(tx, &caller, &task, agent, lease)
        })
        .await?;
    ctx.store.metrics().claimed();
    Ok(claimed)
}

/// The task whose live claim the caller holds (409 otherwise), at the
/// claim generation it names, if it names one (409 `stale_claim`).
fn held(tx: &Tx, caller: &Caller, id: i64, generation: Option<i64>) -> Result<TaskRow> {
    let agent = agent_of(caller)?;
    let task = queue_visible(tx, caller, super::fenced(tx, caller, id, generation)?)?;
    if task.live_claimant(&clock::now_string()) != Some(agent) {
        return Err(Error::conflict(format!(
            "you hold no live claim on task {id}; claim it first"
        )));
    }
    Ok(task)
}

fn set_state_row(
    tx: &Tx,
    caller: &Caller,
    task: &TaskRow,
    state: &str,
    detail: Option<&str>,
) -> Result<()> {
    if task.session_state.as_deref() == Some(state)
        && task.session_state_detail.as_deref() == detail
    {
        return Ok(());
    }
    tasks::set_session_state(tx, task.id, state, detail)?;
    emit(tx, caller, task.id, EventKind::TaskStateChanged, None)?;
    Ok(())
}

/// `POST /tasks/{id}/heartbeat`: extends the lease (a renewal, not a state
/// change: no event), and sets the session state when given.
pub async fn heartbeat(ctx: &Context, caller: &Caller, id: i64, c: ClaimInput) -> Result<TaskJson> {
    let caller = caller.clone();
    let lease = c.lease();
    ctx.store
        .write(move |tx| {
            let task = held(tx, &caller, id, c.claim_generation)?;
            tasks::extend_lease(tx, id, &lease_end(lease))?;
            if let Some(state) = &c.state {
                set_state_row(tx, &caller, &task, state, c.detail.as_deref())?;
            }
            tasks::json(tx, id)
        })
        .await
}

/// `POST /tasks/{id}/state`: sets `session_state` without extending.
pub async fn set_state(
    ctx: &Context,
    caller: &Caller,
    id: i64,
    state: String,
    detail: Option<String>,
    generation: Option<i64>,
) -> Result<TaskJson> {
    let caller = caller.clone();
    ctx.store
        .write(move |tx| {
            let task = held(tx, &caller, id, generation)?;
            set_state_row(tx, &caller, &task, &state, detail.as_deref())?;
            tasks::json(tx, id)
        })
        .await
}

/// `POST /tasks/{id}/release`: back to the queue, keeping the hand-off
/// note; 403 if another agent holds it (admins excepted), 409 if it is
/// not claimed.
pub async fn release(
    ctx: &Context,
    caller: &Caller,
    id: i64,
    handoff: Option<String>,
    generation: Option<i64>,
) -> Result<TaskJson> {
    let caller = caller.clone();
    ctx.store
        .write(move |tx| {
            let task = queue_visible(tx, &caller, super::fenced(tx, &caller, id, generation)?)?;
            let holder = task.live_claimant(&clock::now_string());
            if holder.is_none() {
                return Err(Error::conflict(format!("task {id} is not claimed")));
            }
            if holder != caller.agent_id() && !caller.is_admin() {
                return Err(Error::forbidden(format!(
                    "another agent holds the claim on task {id}"
                )));
            }
            if let Some(note) = &handoff {
                tasks::set_handoff(tx, id, note)?;
            }
            transition(tx, &task, Transition::Release)?;
            emit(tx, &caller, id, EventKind::TaskReleased, Some("released"))
        })
        .await
}

/// Frees every claim whose lease ran out (`task.released`, reason
/// `lease_expired`). Returns how many.
pub fn expire_in(tx: &Tx) -> Result<usize> {
    let ids = tasks::expired_claims(tx, &clock::now_string())?;
    for id in &ids {
        let task = tasks::require(tx, *id)?;
        transition(tx, &task, Transition::Release)?;
        tasks::mark_abandoned(tx, *id)?;
        emit(
            tx,
            &Caller::Project,
            *id,
            EventKind::TaskReleased,
            Some("lease_expired"),
        )?;
    }
    Ok(ids.len())
}

/// The lease sweep, from a background thread. It looks with a read
/// first and goes to the single writer only when a lease ran out: an idle
/// server (or one whose workers only wait) makes no write every second.
pub fn expire(ctx: &Context) -> Result<usize> {
    let now = clock::now_string();
    if !ctx
        .store
        .read_blocking(|conn| tasks::any_expired_claim(conn, &now))?
    {
        return Ok(0);
    }
    let n = ctx.store.write_blocking(expire_in)?;
    ctx.store.metrics().leases_expired(n);
    Ok(n)
}
