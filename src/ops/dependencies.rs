//! Dependencies (SPEC §8): pipelines that start the next agent by
//! themselves.

use super::{emit, may_read, require, transition, Context};
use crate::domain::access::{Caller, Need};
use crate::domain::clock;
use crate::domain::event_kind::EventKind;
use crate::domain::lifecycle::{Status, Transition};
use crate::error::{Error, Result};
use crate::store::dependencies::{self, InputEntry};
use crate::store::tasks::{self, TaskJson};
use crate::store::{readers, Tx};

/// After `task`'s dependencies changed: its status follows them, and
/// `task.dependencies_changed` (plus `task.unblocked` when it opened) is
/// appended. Returns the task as it is now.
fn announce(tx: &Tx, caller: &Caller, id: i64) -> Result<TaskJson> {
    let task = tasks::require(tx, id)?;
    let before = task.state(&clock::now_string());
    tasks::touch(tx, id)?;
    let after = transition(tx, &task, Transition::DependenciesChanged)?;
    let changed = emit(tx, caller, id, EventKind::TaskDependenciesChanged, None)?;
    if before.status == Status::Blocked && after.status != Status::Blocked {
        return emit(tx, caller, id, EventKind::TaskUnblocked, None);
    }
    Ok(changed)
}

/// `POST /tasks/{id}/dependencies {"depends_on": [...]}`: 1 to 100 ids of
/// tasks the caller reads; a cycle is a 422.
pub async fn add(ctx: &Context, caller: &Caller, id: i64, deps: Vec<i64>) -> Result<TaskJson> {
    if deps.is_empty() || deps.len() > 100 {
        return Err(Error::validation("depends_on", "send 1 to 100 task ids"));
    }
    let caller = caller.clone();
    ctx.store
        .write(move |tx| {
            require(tx, &caller, id, Need::Manage)?;
            for (dep, shared) in super::tasks::named_dependencies(tx, &caller, &deps)?.links {
                dependencies::add(tx, id, dep, shared)?;
                readers::refresh(tx, dep)?;
            }
            announce(tx, &caller, id)
        })
        .await
}

/// `DELETE /tasks/{id}/dependencies/{dep}`.
pub async fn remove(ctx: &Context, caller: &Caller, id: i64, dep: i64) -> Result<TaskJson> {
    let caller = caller.clone();
    ctx.store
        .write(move |tx| {
            require(tx, &caller, id, Need::Manage)?;
            if !dependencies::remove(tx, id, dep)? {
                return Err(Error::not_found(format!(
                    "task {id} does not depend on task {dep}"
                )));
            }
            readers::refresh(tx, dep)?;
            announce(tx, &caller, id)
        })
        .await
}

/// `GET /tasks/{id}/inputs`: each dependency's result; one the caller may
/// not read shows only its id and status. (The readers of a task read what
/// it waits for when the link shares it: an orchestrator that reads both
/// declares the pipeline, and the writer reads the researcher's result.)
pub async fn inputs(ctx: &Context, caller: &Caller, id: i64) -> Result<Vec<InputEntry>> {
    let caller = caller.clone();
    ctx.store
        .read(move |conn| {
            require(conn, &caller, id, Need::Read)?;
            let mut out = Vec::new();
            for input in dependencies::inputs(conn, id)? {
                let readable = match tasks::get(conn, input.task_id)? {
                    Some(row) => may_read(conn, &caller, &row)?,
                    None => false,
                };
                out.push(if readable {
                    InputEntry::Readable(input)
                } else {
                    input.hidden()
                });
            }
            Ok(out)
        })
        .await
}
