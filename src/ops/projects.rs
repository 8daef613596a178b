//! Projects (SPEC §4): every agent reads them, admins write them; each
//! change appends a `project.*` event (admins only).

use serde::Deserialize;
use serde_json::Value;

use super::Context;
use crate::domain::access::Caller;
use crate::domain::event_kind::EventKind;
use crate::domain::input::{self, check_len, check_non_blank, double_option, Page};
use crate::error::{Error, Result};
use crate::store::event_log::{self, Subject};
use crate::store::projects::{self, Project, ProjectFields};
use crate::store::Tx;

/// A project body as sent (create and update).
#[derive(Deserialize, utoipa::ToSchema)]
pub struct ProjectInput {
    /// Required to create; not blank.
    #[schema(max_length = 200)]
    name: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    emoji: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    color: Option<Option<String>>,
    sort_order: Option<i64>,
}

/// Parses a project body: `name` (≤ 200), `emoji`, `color` (≤ 32 each),
/// `sort_order`.
pub fn parse(body: Value) -> Result<ProjectFields> {
    let p: ProjectInput = input::object(body)?;
    if let Some(n) = &p.name {
        check_non_blank("name", n, 200)?;
    }
    if let Some(Some(e)) = &p.emoji {
        check_len("emoji", e, 32)?;
    }
    if let Some(Some(c)) = &p.color {
        check_len("color", c, 32)?;
    }
    Ok(ProjectFields {
        name: p.name,
        emoji: p.emoji,
        color: p.color,
        sort_order: p.sort_order,
    })
}

fn require_admin(caller: &Caller) -> Result<()> {
    if caller.is_admin() {
        Ok(())
    } else {
        Err(Error::forbidden(
            "only admins create, change or delete projects",
        ))
    }
}

fn announce(
    tx: &Tx,
    caller: &Caller,
    kind: EventKind,
    project: &Project,
    reason: Option<&str>,
) -> Result<()> {
    let raw = serde_json::value::to_raw_value(project)?;
    event_log::record(tx, kind, Subject::Project(&raw), None, caller, reason)?;
    Ok(())
}

pub async fn list(ctx: &Context, page: Page) -> Result<Vec<Project>> {
    ctx.store
        .read(move |conn| projects::list(conn, page.limit + 1, page.offset))
        .await
}

pub async fn get(ctx: &Context, id: i64) -> Result<Project> {
    ctx.store.read(move |conn| projects::get(conn, id)).await
}

pub async fn create(
    ctx: &Context,
    caller: &Caller,
    fields: Result<ProjectFields>,
) -> Result<Project> {
    // SPEC §2's order of checks: 403, then the body's 422.
    require_admin(caller)?;
    let fields = fields?;
    if fields.name.is_none() {
        return Err(Error::validation("name", "is required"));
    }
    let caller = caller.clone();
    ctx.store
        .write(move |tx| {
            let project = projects::insert(tx, fields)?;
            announce(tx, &caller, EventKind::ProjectCreated, &project, None)?;
            Ok(project)
        })
        .await
}

pub async fn update(
    ctx: &Context,
    caller: &Caller,
    id: i64,
    fields: Result<ProjectFields>,
) -> Result<Project> {
    // SPEC §2's order of checks: 403, then the body's 422.
    require_admin(caller)?;
    let fields = fields?;
    let caller = caller.clone();
    ctx.store
        .write(move |tx| {
            let project = projects::update(tx, id, fields)?;
            announce(tx, &caller, EventKind::ProjectUpdated, &project, None)?;
            Ok(project)
        })
        .await
}

/// Deletes a project; its tasks stay, without a project. One
/// `project.deleted` event whose project carries the `task_count` it had.
pub async fn delete(ctx: &Context, caller: &Caller, id: i64) -> Result<()> {
    require_admin(caller)?;
    let caller = caller.clone();
    ctx.store
        .write(move |tx| {
            let mut project = projects::get(tx, id)?;
            project.task_count = projects::delete(tx, id)? as i64;
            announce(tx, &caller, EventKind::ProjectDeleted, &project, None)
        })
        .await
}
