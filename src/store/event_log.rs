//! The event log, which is also the webhooks' outbox: each state change
//! records its event here in the transaction of the change, and the
//! dispatcher reads it through each hook's cursor.

use rusqlite::types::Value as SqlValue;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row};
use serde::Serialize;
use serde_json::value::RawValue;

use super::agents::AgentBrief;
use super::readers;
use super::Tx;
use crate::domain::access::Caller;
use crate::domain::clock;
use crate::domain::event_kind::EventKind;
use crate::error::Result;
use crate::hub::Event;

/// The payload of SPEC §9: the event, its id and time, its subject (a
/// `task`, or a `project` / `agent_subject`), the acting agent, a reason.
#[derive(Serialize)]
struct Payload<'a> {
    event: &'a str,
    event_id: i64,
    timestamp: &'a str,
    #[serde(flatten)]
    subject: Subject<'a>,
    agent: Option<AgentBrief>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
}

/// What an event is about.
#[derive(Serialize)]
pub enum Subject<'a> {
    #[serde(rename = "task")]
    Task(&'a RawValue),
    #[serde(rename = "project")]
    Project(&'a RawValue),
    #[serde(rename = "agent_subject")]
    Agent(&'a RawValue),
}

fn actor(caller: &Caller) -> Option<AgentBrief> {
    caller.agent().map(|a| AgentBrief {
        id: a.id,
        name: a.name.clone(),
        display_name: a.display_name.clone(),
    })
}

/// Appends an event: about task `task_id` (shown to its readers, and to
/// callers who read every task), or about a project or agent (admins
/// only). Returns its id.
pub fn record(
    tx: &Tx,
    kind: EventKind,
    subject: Subject,
    task_id: Option<i64>,
    caller: &Caller,
    reason: Option<&str>,
) -> Result<i64> {
    let audience = match task_id {
        Some(task) => readers::audience(tx, task)?,
        None => ",".to_string(),
    };
    record_with_audience(tx, kind, subject, task_id, audience, caller, reason)
}

/// [`record`] with the audience already known (`",3,7,"`, see
/// [`readers::audience_of`]), for an operation that holds the task's row.
pub fn record_with_audience(
    tx: &Tx,
    kind: EventKind,
    subject: Subject,
    task_id: Option<i64>,
    audience: String,
    caller: &Caller,
    reason: Option<&str>,
) -> Result<i64> {
    let id = next_id(tx)?;
    let now = clock::now_string();
    let payload = serde_json::to_string(&Payload {
        event: kind.as_str(),
        event_id: id,
        timestamp: &now,
        subject,
        agent: actor(caller),
        reason,
    })?;
    tx.prepare_cached(
        "INSERT INTO events (id, kind, task_id, agent_id, audience, payload, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        id,
        kind.as_str(),
        task_id,
        caller.agent_id(),
        audience,
        payload,
        now
    ])?;
    tx.record(Event::new(
        id,
        kind.as_str().to_string(),
        task_id,
        audience,
        payload,
    ));
    Ok(id)
}

/// The id the next event will get: only the writer inserts events, and
/// the payload names its own id.
pub fn next_id(conn: &Connection) -> Result<i64> {
    Ok(conn
        .prepare_cached(
            "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0) + 1",
        )?
        .query_row([], |r| r.get(0))?)
}

pub fn from_row(r: &Row) -> rusqlite::Result<Event> {
    Ok(Event::new(
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
    ))
}

/// Which events a reader wants.
#[derive(Debug, Default, Clone)]
pub struct EventFilter {
    pub types: Vec<String>,
    pub task_id: Option<i64>,
}

impl EventFilter {
    pub fn matches(&self, caller: &Caller, e: &Event) -> bool {
        (self.types.is_empty() || self.types.contains(&e.kind))
            && (self.task_id.is_none() || self.task_id == e.task_id)
            && e.visible_to(caller)
    }
}

/// Events after `since`, oldest first, that the caller may see.
pub fn list(
    conn: &Connection,
    caller: &Caller,
    filter: &EventFilter,
    since: i64,
    limit: i64,
) -> Result<Vec<Event>> {
    let mut sql = String::from(
        // Pings and redeliveries are addressed to one hook, in no feed.
        "SELECT id, kind, task_id, audience, payload FROM events \
         WHERE id > ?1 AND webhook_id IS NULL",
    );
    let mut args = vec![SqlValue::Integer(since)];
    if !filter.types.is_empty() {
        args.push(SqlValue::Text(serde_json::to_string(&filter.types)?));
        sql.push_str(&format!(
            " AND kind IN (SELECT value FROM json_each(?{}))",
            args.len()
        ));
    }
    if let Some(t) = filter.task_id {
        args.push(SqlValue::Integer(t));
        sql.push_str(&format!(" AND task_id = ?{}", args.len()));
    }
    if !caller.is_admin() {
        // Project and agent events are about no task: admins only.
        sql.push_str(" AND task_id IS NOT NULL");
    }
    if !caller.reads_all() {
        args.push(SqlValue::Text(format!(
            ",{},",
            caller.agent_id().unwrap_or(-1)
        )));
        sql.push_str(&format!(" AND instr(audience, ?{}) > 0", args.len()));
    }
    args.push(SqlValue::Integer(limit));
    sql.push_str(&format!(" ORDER BY id LIMIT ?{}", args.len()));
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(args), from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn get(conn: &Connection, id: i64) -> Result<Option<Event>> {
    Ok(conn
        .prepare_cached("SELECT id, kind, task_id, audience, payload FROM events WHERE id = ?1")?
        .query_row([id], from_row)
        .optional()?)
}

pub fn latest_id(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row("SELECT COALESCE(MAX(id), 0) FROM events", [], |r| r.get(0))?)
}
