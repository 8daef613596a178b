//! What hangs off one task: comments, subtasks (a checklist) and links.

use serde::Deserialize;
use serde_json::Value;

use super::tasks::MAX_CONTENT_CHARS;
use super::{emit, require, Context};
use crate::domain::access::{Caller, Need};
use crate::domain::event_kind::EventKind;
use crate::domain::input::{self, check_len, check_non_blank};
use crate::error::{Error, Result};
use crate::store::comments::{self, Comment, Link, Subtask, LINK_KINDS};
use crate::store::tasks;

/// Reads something that hangs off a task the caller may read.
async fn part<T: Send + 'static>(
    ctx: &Context,
    caller: &Caller,
    id: i64,
    fetch: fn(&rusqlite::Connection, i64) -> Result<T>,
) -> Result<T> {
    let caller = caller.clone();
    ctx.store
        .read(move |conn| {
            require(conn, &caller, id, Need::Read)?;
            fetch(conn, id)
        })
        .await
}

// ---------------------------------------------------------------- comments

/// `POST /tasks/{id}/comments {content, author?}`.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct NewComment {
    pub content: String,
    /// A display name as the ecosystem's MCP server sends it (SPEC §5).
    pub author: Option<String>,
}

impl NewComment {
    pub fn parse(body: Value) -> Result<NewComment> {
        let c: NewComment = input::object(body)?;
        check_non_blank("content", &c.content, 10_000)?;
        if let Some(a) = &c.author {
            check_len("author", a, 100)?;
        }
        Ok(c)
    }
}

pub async fn list_comments(ctx: &Context, caller: &Caller, id: i64) -> Result<Vec<Comment>> {
    part(ctx, caller, id, comments::list).await
}

/// Comments need comment access (coordinators and readers of the task
/// through their own work, besides those who work it).
pub async fn add_comment(
    ctx: &Context,
    caller: &Caller,
    id: i64,
    c: NewComment,
) -> Result<Comment> {
    let caller = caller.clone();
    ctx.store
        .write(move |tx| {
            require(tx, &caller, id, Need::Comment)?;
            let comment =
                comments::insert(tx, id, caller.agent_id(), &c.content, c.author.as_deref())?;
            emit(tx, &caller, id, EventKind::TaskCommented, None)?;
            Ok(comment)
        })
        .await
}

/// The author or an admin deletes a comment.
pub async fn delete_comment(ctx: &Context, caller: &Caller, id: i64, cid: i64) -> Result<()> {
    let caller = caller.clone();
    ctx.store
        .write(move |tx| {
            require(tx, &caller, id, Need::Read)?;
            let c = comments::get(tx, id, cid)?;
            if !caller.is_admin()
                && (c.author_agent_id.is_none() || c.author_agent_id != caller.agent_id())
            {
                return Err(Error::forbidden(
                    "only the author or an admin deletes a comment",
                ));
            }
            comments::delete(tx, id, cid)?;
            emit(tx, &caller, id, EventKind::TaskCommentDeleted, None)?;
            Ok(())
        })
        .await
}

// ---------------------------------------------------------------- subtasks

/// A subtask body: `content` (required to create), `completed`,
/// `sort_order`.
#[derive(Deserialize, Default, utoipa::ToSchema)]
pub struct SubtaskInput {
    pub content: Option<String>,
    pub completed: Option<bool>,
    pub sort_order: Option<i64>,
}

impl SubtaskInput {
    pub fn parse(body: Value) -> Result<SubtaskInput> {
        let s: SubtaskInput = input::object(body)?;
        if let Some(c) = &s.content {
            check_non_blank("content", c, MAX_CONTENT_CHARS)?;
        }
        Ok(s)
    }
}

pub async fn list_subtasks(ctx: &Context, caller: &Caller, id: i64) -> Result<Vec<Subtask>> {
    part(ctx, caller, id, comments::subtasks).await
}

pub async fn add_subtask(
    ctx: &Context,
    caller: &Caller,
    id: i64,
    s: SubtaskInput,
) -> Result<Subtask> {
    let content = s
        .content
        .ok_or_else(|| Error::validation("content", "is required"))?;
    let caller = caller.clone();
    ctx.store
        .write(move |tx| {
            require(tx, &caller, id, Need::Manage)?;
            let sub = comments::insert_subtask(
                tx,
                id,
                &content,
                s.completed.unwrap_or(false),
                s.sort_order,
            )?;
            tasks::touch(tx, id)?;
            emit(tx, &caller, id, EventKind::TaskUpdated, None)?;
            Ok(sub)
        })
        .await
}

/// Changes a subtask; with `toggle`, flips `completed` instead.
pub async fn change_subtask(
    ctx: &Context,
    caller: &Caller,
    id: i64,
    sid: i64,
    s: SubtaskInput,
    toggle: bool,
) -> Result<Subtask> {
    let caller = caller.clone();
    ctx.store
        .write(move |tx| {
            require(tx, &caller, id, Need::Manage)?;
            let completed = if toggle {
                Some(!comments::subtask(tx, id, sid)?.completed)
            } else {
                s.completed
            };
            let sub = comments::update_subtask(
                tx,
                id,
                sid,
                s.content.as_deref(),
                completed,
                s.sort_order,
            )?;
            tasks::touch(tx, id)?;
            emit(tx, &caller, id, EventKind::TaskUpdated, None)?;
            Ok(sub)
        })
        .await
}

pub async fn delete_subtask(ctx: &Context, caller: &Caller, id: i64, sid: i64) -> Result<()> {
    let caller = caller.clone();
    ctx.store
        .write(move |tx| {
            require(tx, &caller, id, Need::Manage)?;
            comments::delete_subtask(tx, id, sid)?;
            tasks::touch(tx, id)?;
            emit(tx, &caller, id, EventKind::TaskUpdated, None)?;
            Ok(())
        })
        .await
}

// ---------------------------------------------------------------- links

/// A link body: `kind` (branch, commit, pr, url), `ref` (or `url` for a
/// url link), `repo`, `url`.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct LinkInput {
    kind: String,
    #[serde(rename = "ref")]
    reference: Option<String>,
    repo: Option<String>,
    url: Option<String>,
}

impl LinkInput {
    pub fn parse(body: Value) -> Result<LinkInput> {
        let mut l: LinkInput = input::object(body)?;
        if !LINK_KINDS.contains(&l.kind.as_str()) {
            return Err(Error::validation(
                "kind",
                "must be one of branch, commit, pr, url",
            ));
        }
        l.reference = l
            .reference
            .clone()
            .or_else(|| (l.kind == "url").then(|| l.url.clone()).flatten());
        let reference = l
            .reference
            .as_deref()
            .ok_or_else(|| Error::validation("ref", "is required"))?;
        check_non_blank("ref", reference, 2000)?;
        for (field, v) in [("repo", &l.repo), ("url", &l.url)] {
            if let Some(v) = v {
                check_len(field, v, 2000)?;
            }
        }
        Ok(l)
    }
}

pub async fn list_links(ctx: &Context, caller: &Caller, id: i64) -> Result<Vec<Link>> {
    part(ctx, caller, id, comments::links).await
}

/// Adds a link; the same link again answers the existing one and `false`
/// (and appends nothing).
pub async fn add_link(
    ctx: &Context,
    caller: &Caller,
    id: i64,
    l: LinkInput,
) -> Result<(Link, bool)> {
    let caller = caller.clone();
    ctx.store
        .write(move |tx| {
            require(tx, &caller, id, Need::Work)?;
            let (link, is_new) = comments::insert_link(
                tx,
                id,
                &l.kind,
                l.repo.as_deref(),
                l.reference.as_deref().unwrap_or_default(),
                l.url.as_deref(),
                caller.agent_id(),
            )?;
            if is_new {
                emit(tx, &caller, id, EventKind::TaskLinked, None)?;
            }
            Ok((link, is_new))
        })
        .await
}

pub async fn delete_link(ctx: &Context, caller: &Caller, id: i64, lid: i64) -> Result<()> {
    let caller = caller.clone();
    ctx.store
        .write(move |tx| {
            require(tx, &caller, id, Need::Work)?;
            comments::delete_link(tx, id, lid)?;
            emit(tx, &caller, id, EventKind::TaskUnlinked, None)?;
            Ok(())
        })
        .await
}
