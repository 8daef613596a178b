//! What hangs off a task: comments, subtasks (a checklist) and links.

use std::collections::HashMap;

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;

use crate::domain::clock;
use crate::error::{Error, Result};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Comment {
    pub id: i64,
    pub task_id: i64,
    pub content: String,
    pub author_agent_id: Option<i64>,
    pub agent_id: Option<i64>,
    pub author: Option<String>,
    pub created_at: String,
}

fn comment_from_row(r: &Row) -> rusqlite::Result<Comment> {
    let author_agent_id: Option<i64> = r.get(3)?;
    Ok(Comment {
        id: r.get(0)?,
        task_id: r.get(1)?,
        content: r.get(2)?,
        author_agent_id,
        agent_id: author_agent_id,
        author: r.get(4)?,
        created_at: r.get(5)?,
    })
}

/// `author` is the display name given with the comment, else the
/// author's agent name.
const COMMENT_SELECT: &str = "SELECT c.id, c.task_id, c.content, c.author_agent_id, \
     COALESCE(c.author, a.name), c.created_at FROM comments c \
     LEFT JOIN agents a ON a.id = c.author_agent_id";

pub fn list(conn: &Connection, task_id: i64) -> Result<Vec<Comment>> {
    let mut stmt = conn.prepare_cached(&format!(
        "{COMMENT_SELECT} WHERE c.task_id = ?1 ORDER BY c.id"
    ))?;
    let rows = stmt.query_map([task_id], comment_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn get(conn: &Connection, task_id: i64, id: i64) -> Result<Comment> {
    conn.prepare_cached(&format!(
        "{COMMENT_SELECT} WHERE c.id = ?1 AND c.task_id = ?2"
    ))?
    .query_row([id, task_id], comment_from_row)
    .optional()?
    .ok_or_else(|| Error::not_found(format!("comment {id} not found on task {task_id}")))
}

/// Adds a comment by agent `author` (null: the project token), with the
/// display name `author_name` if one was given.
pub fn insert(
    conn: &Connection,
    task_id: i64,
    author: Option<i64>,
    content: &str,
    author_name: Option<&str>,
) -> Result<Comment> {
    conn.prepare_cached(
        "INSERT INTO comments (task_id, author_agent_id, content, created_at, author) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        task_id,
        author,
        content,
        clock::now_string(),
        author_name
    ])?;
    get(conn, task_id, conn.last_insert_rowid())
}

pub fn delete(conn: &Connection, task_id: i64, id: i64) -> Result<()> {
    conn.execute(
        "DELETE FROM comments WHERE id = ?1 AND task_id = ?2",
        params![id, task_id],
    )?;
    Ok(())
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Subtask {
    pub id: i64,
    pub task_id: i64,
    pub content: String,
    pub completed: bool,
    pub sort_order: i64,
    pub created_at: String,
    pub updated_at: String,
}

const SUBTASK_COLUMNS: &str = "id, task_id, content, completed, sort_order, created_at, updated_at";

fn subtask_from_row(r: &Row) -> rusqlite::Result<Subtask> {
    Ok(Subtask {
        id: r.get(0)?,
        task_id: r.get(1)?,
        content: r.get(2)?,
        completed: r.get(3)?,
        sort_order: r.get(4)?,
        created_at: r.get(5)?,
        updated_at: r.get(6)?,
    })
}

/// Subtasks of many tasks at once.
pub fn subtasks_of(conn: &Connection, ids: &[i64]) -> Result<HashMap<i64, Vec<Subtask>>> {
    let (matching, value) = super::id_set(ids);
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {SUBTASK_COLUMNS} FROM subtasks WHERE task_id {matching} \
         ORDER BY task_id, sort_order, id"
    ))?;
    let mut out: HashMap<i64, Vec<Subtask>> = HashMap::new();
    for s in stmt.query_map([value], subtask_from_row)? {
        let s = s?;
        out.entry(s.task_id).or_default().push(s);
    }
    Ok(out)
}

pub fn subtask(conn: &Connection, task_id: i64, id: i64) -> Result<Subtask> {
    conn.prepare_cached(&format!(
        "SELECT {SUBTASK_COLUMNS} FROM subtasks WHERE id = ?1 AND task_id = ?2"
    ))?
    .query_row([id, task_id], subtask_from_row)
    .optional()?
    .ok_or_else(|| Error::not_found(format!("subtask {id} not found on task {task_id}")))
}

pub fn subtasks(conn: &Connection, task_id: i64) -> Result<Vec<Subtask>> {
    Ok(subtasks_of(conn, &[task_id])?
        .remove(&task_id)
        .unwrap_or_default())
}

pub fn insert_subtask(
    conn: &Connection,
    task_id: i64,
    content: &str,
    completed: bool,
    sort_order: Option<i64>,
) -> Result<Subtask> {
    let order = match sort_order {
        Some(o) => o,
        None => conn.query_row(
            "SELECT COALESCE(MAX(sort_order) + 1, 0) FROM subtasks WHERE task_id = ?1",
            [task_id],
            |r| r.get(0),
        )?,
    };
    conn.execute(
        "INSERT INTO subtasks (task_id, content, completed, sort_order, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
        params![task_id, content, completed, order, clock::now_string()],
    )?;
    let id = conn.last_insert_rowid();
    subtask(conn, task_id, id)
}

pub fn update_subtask(
    conn: &Connection,
    task_id: i64,
    id: i64,
    content: Option<&str>,
    completed: Option<bool>,
    sort_order: Option<i64>,
) -> Result<Subtask> {
    let s = subtask(conn, task_id, id)?;
    conn.execute(
        "UPDATE subtasks SET content = ?2, completed = ?3, sort_order = ?4, updated_at = ?5 \
         WHERE id = ?1",
        params![
            id,
            content.unwrap_or(&s.content),
            completed.unwrap_or(s.completed),
            sort_order.unwrap_or(s.sort_order),
            clock::now_string()
        ],
    )?;
    subtask(conn, task_id, id)
}

pub fn delete_subtask(conn: &Connection, task_id: i64, id: i64) -> Result<()> {
    subtask(conn, task_id, id)?;
    conn.execute("DELETE FROM subtasks WHERE id = ?1", [id])?;
    Ok(())
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Link {
    pub id: i64,
    pub task_id: i64,
    pub kind: String,
    pub repo: Option<String>,
    #[serde(rename = "ref")]
    pub reference: String,
    pub url: Option<String>,
    pub created_by_agent_id: Option<i64>,
    pub created_at: String,
}

pub const LINK_KINDS: &[&str] = &["branch", "commit", "pr", "url"];

const LINK_COLUMNS: &str = "id, task_id, kind, repo, ref, url, created_by_agent_id, created_at";

fn link_from_row(r: &Row) -> rusqlite::Result<Link> {
    Ok(Link {
        id: r.get(0)?,
        task_id: r.get(1)?,
        kind: r.get(2)?,
        repo: r.get(3)?,
        reference: r.get(4)?,
        url: r.get(5)?,
        created_by_agent_id: r.get(6)?,
        created_at: r.get(7)?,
    })
}

pub fn links(conn: &Connection, task_id: i64) -> Result<Vec<Link>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {LINK_COLUMNS} FROM task_links WHERE task_id = ?1 ORDER BY id"
    ))?;
    let rows = stmt.query_map([task_id], link_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Adds a link; the same (kind, repo, ref) again returns the existing one
/// and `false`.
pub fn insert_link(
    conn: &Connection,
    task_id: i64,
    kind: &str,
    repo: Option<&str>,
    reference: &str,
    url: Option<&str>,
    author: Option<i64>,
) -> Result<(Link, bool)> {
    let existing = conn
        .prepare_cached(&format!(
            "SELECT {LINK_COLUMNS} FROM task_links WHERE task_id = ?1 AND kind = ?2 \
             AND COALESCE(repo, '') = COALESCE(?3, '') AND ref = ?4"
        ))?
        .query_row(params![task_id, kind, repo, reference], link_from_row)
        .optional()?;
    if let Some(link) = existing {
        return Ok((link, false));
    }
    conn.execute(
        "INSERT INTO task_links (task_id, kind, repo, ref, url, created_by_agent_id, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            task_id,
            kind,
            repo,
            reference,
            url,
            author,
            clock::now_string()
        ],
    )?;
    let id = conn.last_insert_rowid();
    let link = conn
        .prepare_cached(&format!(
            "SELECT {LINK_COLUMNS} FROM task_links WHERE id = ?1"
        ))?
        .query_row([id], link_from_row)?;
    Ok((link, true))
}

pub fn delete_link(conn: &Connection, task_id: i64, id: i64) -> Result<()> {
    let n = conn.execute(
        "DELETE FROM task_links WHERE id = ?1 AND task_id = ?2",
        params![id, task_id],
    )?;
    if n == 0 {
        return Err(Error::not_found(format!(
            "link {id} not found on task {task_id}"
        )));
    }
    Ok(())
}
