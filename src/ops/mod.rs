//! The operations layer: one front door for every operation.
//!
//! Each operation is one function `(ctx, caller, typed input) -> Result<typed
//! output>` that owns its transaction, its permission check, its state
//! transition and its events. HTTP handlers (`crate::api`), the MCP tools,
//! background work (lease expiry, recurrences) and future automations all
//! call these functions, so permissions, events and scoping are the same
//! whichever way a request comes in.
//!
//! Inside, an operation reads or writes through `crate::store` (plain SQL
//! functions, the one place a second storage backend would go) and decides
//! with the rules of `crate::domain`: who may do what
//! ([`crate::domain::access`]), which status a task moves to
//! ([`crate::domain::lifecycle`]), which event a change appends
//! ([`crate::domain::event_kind`]).
//!
//! Adding an operation: write `pub async fn verb(ctx, caller, input)` in the
//! module of its resource; inside `ctx.store.write(|tx| …)`, call
//! [`require`] for the permission, apply a [`Transition`] through
//! [`transition`] if a status changes, make the store calls, and [`emit`]
//! the event. Then give it a route in `api::routes` (and an MCP tool).

pub mod agents;
pub mod auth;
pub mod claims;
pub mod comments;
pub mod context;
pub mod delegation;
pub mod dependencies;
pub mod feed;
pub mod fleet;
pub mod projects;
pub mod recurrences;
pub mod stats;
pub mod tasks;
pub mod webhooks;

use std::sync::Arc;

use rusqlite::Connection;

use crate::config::Config;
use crate::domain::access::{self, Caller, Need, TaskFacts};
use crate::domain::clock;
use crate::domain::event_kind::EventKind;
use crate::domain::lifecycle::{State, Status, Transition};
use crate::error::Result;
use crate::hub::Queued;
use crate::store::event_log::{self, Subject};
use crate::store::tasks::{Record, TaskJson, TaskRow};
use crate::store::{self, readers, Store, Tx};
use auth::Authenticator;

/// What every operation may use: the store, the configuration and the
/// authenticator (whose cache agent operations clear).
#[derive(Clone)]
pub struct Context {
    pub store: Store,
    pub config: Arc<Config>,
    pub auth: Arc<Authenticator>,
}

impl Context {
    /// Largest serialized context a task may hold, in bytes.
    pub fn max_context_bytes(&self) -> usize {
        self.config.max_context_bytes
    }

    /// After any change to an agent: cached identities are dropped and open
    /// event streams end (clients reconnect under their current rights).
    fn agents_changed(&self) {
        self.auth.invalidate();
        self.store.hub().identities_changed();
    }
}

/// Loads task `id` for a caller who needs `need` of it: a task it cannot
/// see is a 404, one it may see but not use that way a 403.
pub fn require(conn: &Connection, caller: &Caller, id: i64, need: Need) -> Result<TaskRow> {
    let task = store::tasks::require(conn, id)?;
    check(conn, caller, &task, need)?;
    Ok(task)
}

/// What a request about a task must be allowed before its body is
/// validated (SPEC §2's order of checks: permission, then validation).
#[derive(Debug, Clone, Copy)]
pub enum Before {
    /// This need: 404 for a task the caller cannot see, 403 for one it
    /// sees but may not use so.
    Need(Need),
    /// The claim queue's rule (claim, heartbeat, state, release): the
    /// caller reads the task, or it is a queue item of the caller's that
    /// another agent's claim may hide (see `claims::queue_visible`).
    Queue,
}

/// The permission half of SPEC §2's order of checks, for a request whose
/// body failed validation: the error the caller would have had with a
/// valid body, if any (404, 403). The HTTP layer asks this only on that
/// failure path; a valid body goes on to the operation, which checks the
/// permission itself.
pub async fn ensure_permitted(
    ctx: &Context,
    caller: &Caller,
    id: i64,
    before: Before,
    claim_generation: Option<i64>,
) -> Result<()> {
    let caller = caller.clone();
    ctx.store
        .read(move |conn| {
            let task = fenced(conn, &caller, id, claim_generation)?;
            match before {
                Before::Queue => claims::queue_visible(conn, &caller, task).map(|_| ()),
                Before::Need(need) => check(conn, &caller, &task, need),
            }
        })
        .await
}

/// [`require`] for a write that names the claim generation the caller
/// holds (SPEC §10's fencing token): see [`fenced`].
pub fn require_fenced(
    conn: &Connection,
    caller: &Caller,
    id: i64,
    need: Need,
    claim_generation: Option<i64>,
) -> Result<TaskRow> {
    let task = fenced(conn, caller, id, claim_generation)?;
    check(conn, caller, &task, need)?;
    Ok(task)
}

/// Loads task `id` for a write that names `claim_generation`, refusing a
/// stale one with 409 `stale_claim` before any permission is checked: a
/// worker whose lease ran out while it was paused no longer reads the task
/// through its claim, and must hear "stale", not 404, when it comes back.
/// Only a caller who may know the generation hears it — one that reads
/// the task (its own claim queue included) or claimed it before
/// ([`store::claims::ever_claimed`]); for anyone else the caller's own
/// check decides, so a task it cannot see stays a 404 and its generation
/// is not told.
pub fn fenced(
    conn: &Connection,
    caller: &Caller,
    id: i64,
    claim_generation: Option<i64>,
) -> Result<TaskRow> {
    let task = store::tasks::require(conn, id)?;
    if let Err(stale) = fence(&task, claim_generation) {
        let knows = may_read(conn, caller, &task)?
            || match caller.agent_id() {
                Some(agent) => store::claims::ever_claimed(conn, id, agent)?,
                None => false,
            };
        if knows {
            return Err(stale);
        }
    }
    Ok(task)
}

/// Applies the permission rule to a loaded task.
pub fn check(conn: &Connection, caller: &Caller, task: &TaskRow, need: Need) -> Result<()> {
    access::check(caller, &facts(conn, caller, task)?, need)
}

/// Whether the caller may see a task at all (by id: its readers, roles
/// that read everything, and the caller's claim queue).
pub fn may_read(conn: &Connection, caller: &Caller, task: &TaskRow) -> Result<bool> {
    Ok(access::task_access(caller, &facts(conn, caller, task)?).is_some())
}

/// Whether the caller reads a task through its own work or its role —
/// not merely because it waits in its claim queue. What it may build on
/// (a dependency link shares the result only then).
pub fn reads_beyond_queue(conn: &Connection, caller: &Caller, task: &TaskRow) -> Result<bool> {
    let facts = TaskFacts {
        in_queue: false,
        ..facts(conn, caller, task)?
    };
    Ok(access::task_access(caller, &facts).is_some())
}

fn facts(conn: &Connection, caller: &Caller, task: &TaskRow) -> Result<TaskFacts> {
    let now = clock::now_string();
    let me = caller.agent_id();
    // The table is asked only when the row itself does not settle it: its
    // creator and assignee manage it; its completer and its claim holder
    // read it through its columns (see `store::readers`).
    let settled = caller.is_admin()
        || me.is_none()
        || task.created_by_agent_id == me
        || task.assigned_to_agent_id == me;
    let reader = match me {
        Some(agent) if !settled => {
            task.completed_by_agent_id == me
                || task.claimed_by_agent_id == me
                || readers::is_reader(conn, task.id, agent)?
        }
        _ => false,
    };
    Ok(TaskFacts {
        id: task.id,
        created_by: task.created_by_agent_id,
        assigned_to: task.assigned_to_agent_id,
        live_claimant: task.live_claimant(&now),
        reader,
        in_queue: task.in_queue_of(me, &now),
    })
}

/// Appends `kind` about task `id` (rendered as it is now, after its
/// readers are settled) and returns the rendering, which is also the
/// answer of the operation that caused it.
pub fn emit(
    tx: &Tx,
    caller: &Caller,
    id: i64,
    kind: EventKind,
    reason: Option<&str>,
) -> Result<TaskJson> {
    emit_row(tx, caller, store::tasks::require(tx, id)?, kind, reason)
}

/// [`emit`] for a task whose row the operation holds as it is now (what
/// [`transition_recording`] returns), which saves reading it back (a
/// quarter of the reads of a claim → complete job) and reading the
/// columns that name its event's audience. Debug builds (the tests) check
/// the row against the table.
pub fn emit_row(
    tx: &Tx,
    caller: &Caller,
    row: TaskRow,
    kind: EventKind,
    reason: Option<&str>,
) -> Result<TaskJson> {
    debug_assert_eq!(
        store::tasks::get(tx, row.id).ok().flatten().as_ref(),
        Some(&row),
        "the row an operation renders is the stored one"
    );
    let id = row.id;
    let audience = readers::audience_of(tx, &row)?;
    debug_assert_eq!(
        readers::audience(tx, id).ok().as_ref(),
        Some(&audience),
        "the audience from the row is the one from the table"
    );
    let view = store::tasks::render::view_of(tx, row)?;
    // Every change that can put a task in a claim queue appends an event:
    // here waiting claimers hear of it (once this commits).
    let claimable = Status::parse(&view.status)
        .is_some_and(|s| s.is_claimable() && s != Status::Claimed)
        && view.claimed_by_agent_id.is_none();
    if claimable {
        tx.queued(Queued {
            id,
            assigned_to: view.assigned_to_agent_id,
            project_id: view.fields.project_id,
            labels: view.fields.labels(),
        });
    }
    let task = serde_json::value::to_raw_value(&view)?;
    event_log::record_with_audience(
        tx,
        kind,
        Subject::Task(&task),
        Some(id),
        audience,
        caller,
        reason,
    )?;
    Ok(task)
}

/// Refuses (409 `stale_claim`, nothing changed) a write that names a claim
/// generation other than the task's (SPEC §10's fencing token): a worker
/// whose lease ran out cannot overwrite the work of the next claimant.
pub fn fence(task: &TaskRow, claim_generation: Option<i64>) -> Result<()> {
    match claim_generation {
        Some(g) if g != task.claim_generation => Err(crate::error::Error::conflict_with(
            format!(
                "task {}: claim generation {g} is not the task's current one ({})",
                task.id, task.claim_generation
            ),
            serde_json::json!({ "claim_generation": task.claim_generation }),
        )
        .coded("stale_claim")),
        _ => Ok(()),
    }
}

/// Moves `task` through `transition` (the state machine decides, from the
/// task's dependencies as they are now) and writes the new state. When the
/// transition ends a claim, the claim's columns are cleared; the operation
/// then refreshes the task's readers (the claimant read it through the
/// claim), once, with whatever else it changed.
pub fn transition(tx: &Tx, task: &TaskRow, t: Transition) -> Result<State> {
    apply(tx, task, t, Record::Nothing).map(|(state, _)| state)
}

/// [`transition`], writing what the operation records (a claim, a
/// completion, a failure, a reopen) in the same `UPDATE` as the state. A
/// transition the machine refuses writes nothing. Returns the task's row
/// as it now is (its status is the new state), for [`emit_row`].
pub fn transition_recording(
    tx: &Tx,
    task: &TaskRow,
    t: Transition,
    record: Record,
) -> Result<TaskRow> {
    let (state, write) = apply(tx, task, t, record)?;
    Ok(match write {
        Some(Write { clears_claim, now }) => {
            store::tasks::written(task, state, clears_claim, record, &now)
        }
        None => task.clone(),
    })
}

/// What [`apply`] wrote besides the state, for [`store::tasks::written`].
struct Write {
    clears_claim: bool,
    now: String,
}

/// The transition and its write; `None` when nothing changed.
fn apply(tx: &Tx, task: &TaskRow, t: Transition, record: Record) -> Result<(State, Option<Write>)> {
    let now = clock::now_string();
    let before = task.state(&now);
    let after = before.apply(task.id, t, &store::dependencies::summary(tx, task.id)?)?;
    let clears_claim = task.claimed_by_agent_id.is_some() && !after.claimed && t.ends_claim();
    if after == before && !clears_claim && record.is_nothing() {
        return Ok((after, None));
    }
    store::tasks::write_state(tx, task.id, after, clears_claim, record, &now)?;
    Ok((after, Some(Write { clears_claim, now })))
}

/// Re-evaluates the tasks that depend on `id` after it finished, failed,
/// reopened or went away, and tells subscribers: `task.unblocked` when one
/// opens, `task.updated` when one becomes blocked (or blocked by a failure).
pub fn settle_dependents(tx: &Tx, caller: &Caller, id: i64) -> Result<()> {
    for dependent in store::dependencies::dependents(tx, id)? {
        settle_dependencies(tx, caller, dependent)?;
    }
    Ok(())
}

/// Re-evaluates one task against its dependencies; emits as
/// [`settle_dependents`] says. Returns whether it opened.
pub fn settle_dependencies(tx: &Tx, caller: &Caller, id: i64) -> Result<bool> {
    let Some(task) = store::tasks::get(tx, id)? else {
        return Ok(false);
    };
    let now = clock::now_string();
    let before = task.state(&now);
    let after = transition(tx, &task, Transition::DependenciesChanged)?;
    if after == before {
        return Ok(false);
    }
    let opened = before.status == Status::Blocked && after.status != Status::Blocked;
    let kind = if opened {
        EventKind::TaskUnblocked
    } else {
        EventKind::TaskUpdated
    };
    emit(tx, caller, id, kind, None)?;
    Ok(opened)
}
