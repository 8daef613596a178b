//! Projects.

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;

use crate::domain::clock;
use crate::error::{Error, Result};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Project {
    pub id: i64,
    pub name: String,
    pub emoji: Option<String>,
    pub color: Option<String>,
    pub sort_order: i64,
    pub created_at: String,
    pub updated_at: String,
    pub task_count: i64,
}

/// The nested project object of task responses.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ProjectBrief {
    pub id: i64,
    pub name: String,
    pub emoji: Option<String>,
    pub color: Option<String>,
}

const COLUMNS: &str = "p.id, p.name, p.emoji, p.color, p.sort_order, p.created_at, p.updated_at, \
     (SELECT count(*) FROM tasks t WHERE t.project_id = p.id AND t.status != 'completed')";

fn from_row(r: &Row) -> rusqlite::Result<Project> {
    Ok(Project {
        id: r.get(0)?,
        name: r.get(1)?,
        emoji: r.get(2)?,
        color: r.get(3)?,
        sort_order: r.get(4)?,
        created_at: r.get(5)?,
        updated_at: r.get(6)?,
        task_count: r.get(7)?,
    })
}

pub fn brief(conn: &Connection, id: i64) -> Result<Option<ProjectBrief>> {
    Ok(conn
        .prepare_cached("SELECT id, name, emoji, color FROM projects WHERE id = ?1")?
        .query_row([id], |r| {
            Ok(ProjectBrief {
                id: r.get(0)?,
                name: r.get(1)?,
                emoji: r.get(2)?,
                color: r.get(3)?,
            })
        })
        .optional()?)
}

pub fn list(conn: &Connection, limit: i64, offset: i64) -> Result<Vec<Project>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM projects p ORDER BY p.sort_order, p.id LIMIT ?1 OFFSET ?2"
    ))?;
    let rows = stmt.query_map([limit, offset], from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn get(conn: &Connection, id: i64) -> Result<Project> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM projects p WHERE p.id = ?1"))?
        .query_row([id], from_row)
        .optional()?
        .ok_or_else(|| Error::not_found(format!("project {id} not found")))
}

#[derive(Debug, Default)]
pub struct ProjectFields {
    pub name: Option<String>,
    pub emoji: Option<Option<String>>,
    pub color: Option<Option<String>>,
    pub sort_order: Option<i64>,
}

pub fn insert(conn: &Connection, f: ProjectFields) -> Result<Project> {
    let now = clock::now_string();
    conn.execute(
        "INSERT INTO projects (name, emoji, color, sort_order, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
        params![
            f.name.unwrap_or_default(),
            f.emoji.flatten(),
            f.color.flatten(),
            f.sort_order.unwrap_or(0),
            now
        ],
    )?;
    get(conn, conn.last_insert_rowid())
}

pub fn update(conn: &Connection, id: i64, f: ProjectFields) -> Result<Project> {
    let mut p = get(conn, id)?;
    if let Some(v) = f.name {
        p.name = v;
    }
    if let Some(v) = f.emoji {
        p.emoji = v;
    }
    if let Some(v) = f.color {
        p.color = v;
    }
    if let Some(v) = f.sort_order {
        p.sort_order = v;
    }
    conn.execute(
        "UPDATE projects SET name = ?2, emoji = ?3, color = ?4, sort_order = ?5, updated_at = ?6 \
         WHERE id = ?1",
        params![
            id,
            p.name,
            p.emoji,
            p.color,
            p.sort_order,
            clock::now_string()
        ],
    )?;
    get(conn, id)
}

/// Deletes a project; its tasks stay, without a project. Returns how
/// many tasks it held.
pub fn delete(conn: &Connection, id: i64) -> Result<usize> {
    get(conn, id)?;
    let tasks = conn.execute(
        "UPDATE tasks SET project_id = NULL, updated_at = ?2 WHERE project_id = ?1",
        params![id, clock::now_string()],
    )?;
    conn.execute("DELETE FROM projects WHERE id = ?1", [id])?;
    Ok(tasks)
}
