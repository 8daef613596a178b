//! `recurrences`: templates that spawn a task on a calendar (SPEC §10).

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;

use crate::domain::access::Caller;
use crate::domain::clock;
use crate::error::{Error, Result};

/// A recurrence as the SDK's `Recurrence` reads it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Recurrence {
    pub id: i64,
    pub content: String,
    pub description: Option<String>,
    pub project_id: Option<i64>,
    pub priority: i64,
    pub labels: Vec<String>,
    pub assigned_to_agent_id: Option<i64>,
    pub rule_type: String,
    pub interval: i64,
    pub timezone: String,
    pub anchor_day: Option<i64>,
    pub anchor_month: Option<i64>,
    pub anchor_weekday: Option<i64>,
    /// The local time of day instances fall due, `HH:MM`.
    pub time_of_day: String,
    /// The series' first date, in its time zone.
    pub series_start: Option<String>,
    pub next_due_at: Option<String>,
    pub last_spawned_at: Option<String>,
    pub active: bool,
    pub skip_if_open: bool,
    pub created_by_agent_id: Option<i64>,
    pub created_at: String,
    pub updated_at: String,
}

const COLUMNS: &str = "id, content, description, project_id, priority, labels, \
    assigned_to_agent_id, rule_type, interval, timezone, anchor_day, anchor_month, \
    anchor_weekday, time_of_day, series_start, next_due_at, last_spawned_at, active, \
    skip_if_open, created_by_agent_id, created_at, updated_at";

fn from_row(r: &Row) -> rusqlite::Result<Recurrence> {
    let labels: String = r.get(5)?;
    Ok(Recurrence {
        id: r.get(0)?,
        content: r.get(1)?,
        description: r.get(2)?,
        project_id: r.get(3)?,
        priority: r.get(4)?,
        labels: serde_json::from_str(&labels).unwrap_or_default(),
        assigned_to_agent_id: r.get(6)?,
        rule_type: r.get(7)?,
        interval: r.get(8)?,
        timezone: r.get(9)?,
        anchor_day: r.get(10)?,
        anchor_month: r.get(11)?,
        anchor_weekday: r.get(12)?,
        time_of_day: r.get(13)?,
        series_start: r.get(14)?,
        next_due_at: r.get(15)?,
        last_spawned_at: r.get(16)?,
        active: r.get(17)?,
        skip_if_open: r.get(18)?,
        created_by_agent_id: r.get(19)?,
        created_at: r.get(20)?,
        updated_at: r.get(21)?,
    })
}

/// Who sees a recurrence: those who read every task see all; an agent
/// sees the ones it created or that assign their tasks to it.
fn visible(caller: &Caller, r: &Recurrence) -> bool {
    caller.reads_all()
        || caller
            .agent_id()
            .is_some_and(|a| r.created_by_agent_id == Some(a) || r.assigned_to_agent_id == Some(a))
}

/// The recurrences the caller sees, oldest first.
pub fn list(
    conn: &Connection,
    caller: &Caller,
    limit: i64,
    offset: i64,
) -> Result<Vec<Recurrence>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM recurrences WHERE ?1 OR created_by_agent_id = ?2 \
         OR assigned_to_agent_id = ?2 ORDER BY id LIMIT ?3 OFFSET ?4"
    ))?;
    let rows = stmt.query_map(
        params![caller.reads_all(), caller.agent_id(), limit, offset],
        from_row,
    )?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn get(conn: &Connection, id: i64) -> Result<Option<Recurrence>> {
    Ok(conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM recurrences WHERE id = ?1"))?
        .query_row([id], from_row)
        .optional()?)
}

/// A recurrence the caller sees; others are 404.
pub fn require(conn: &Connection, caller: &Caller, id: i64) -> Result<Recurrence> {
    get(conn, id)?
        .filter(|r| visible(caller, r))
        .ok_or_else(|| Error::not_found(format!("recurrence {id} not found")))
}

/// Inserts `r` (its id, creation and update times are set here).
pub fn insert(conn: &Connection, r: &Recurrence) -> Result<i64> {
    let now = clock::now_string();
    conn.prepare_cached(
        "INSERT INTO recurrences (content, description, project_id, priority, labels, \
         assigned_to_agent_id, rule_type, interval, timezone, anchor_day, anchor_month, \
         anchor_weekday, time_of_day, series_start, next_due_at, last_spawned_at, active, \
         skip_if_open, created_by_agent_id, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, \
         ?18, ?19, ?20, ?20)",
    )?
    .execute(params![
        r.content,
        r.description,
        r.project_id,
        r.priority,
        serde_json::to_string(&r.labels)?,
        r.assigned_to_agent_id,
        r.rule_type,
        r.interval,
        r.timezone,
        r.anchor_day,
        r.anchor_month,
        r.anchor_weekday,
        r.time_of_day,
        r.series_start,
        r.next_due_at,
        r.last_spawned_at,
        r.active,
        r.skip_if_open,
        r.created_by_agent_id,
        now
    ])?;
    Ok(conn.last_insert_rowid())
}

/// Writes every field of `r` but its id and creation.
pub fn update(conn: &Connection, r: &Recurrence) -> Result<()> {
    conn.prepare_cached(
        "UPDATE recurrences SET content = ?2, description = ?3, project_id = ?4, priority = ?5, \
         labels = ?6, assigned_to_agent_id = ?7, rule_type = ?8, interval = ?9, timezone = ?10, \
         anchor_day = ?11, anchor_month = ?12, anchor_weekday = ?13, time_of_day = ?14, \
         series_start = ?15, next_due_at = ?16, last_spawned_at = ?17, active = ?18, \
         skip_if_open = ?19, updated_at = ?20 WHERE id = ?1",
    )?
    .execute(params![
        r.id,
        r.content,
        r.description,
        r.project_id,
        r.priority,
        serde_json::to_string(&r.labels)?,
        r.assigned_to_agent_id,
        r.rule_type,
        r.interval,
        r.timezone,
        r.anchor_day,
        r.anchor_month,
        r.anchor_weekday,
        r.time_of_day,
        r.series_start,
        r.next_due_at,
        r.last_spawned_at,
        r.active,
        r.skip_if_open,
        clock::now_string()
    ])?;
    Ok(())
}

pub fn delete(conn: &Connection, id: i64) -> Result<()> {
    conn.prepare_cached("DELETE FROM recurrences WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}

/// Active recurrences whose next due time has come (at most 100).
pub fn due(conn: &Connection, now: &str) -> Result<Vec<Recurrence>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM recurrences INDEXED BY recurrences_due \
         WHERE active AND next_due_at <= ?1 ORDER BY next_due_at LIMIT 100"
    ))?;
    let rows = stmt.query_map([now], from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Whether an instance of recurrence `id` is still open (not completed
/// or failed).
pub fn has_open_instance(conn: &Connection, id: i64) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT EXISTS(SELECT 1 FROM tasks WHERE recurrence_id = ?1 \
             AND status NOT IN ('completed', 'failed'))",
        )?
        .query_row([id], |r| r.get(0))?)
}
