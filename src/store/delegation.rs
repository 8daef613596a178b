//! The append-only delegation ledger and the chain view built on it.

use rusqlite::{params, Connection};
use serde::Serialize;

use super::Tx;
use crate::domain::clock;
use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DelegationKind {
    /// The same task handed to another agent.
    Handoff,
    /// A child task created under a parent.
    Delegate,
    /// The assignee changed through an update or at creation.
    Assign,
}

impl DelegationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DelegationKind::Handoff => "handoff",
            DelegationKind::Delegate => "delegate",
            DelegationKind::Assign => "assign",
        }
    }
}

pub struct NewEvent {
    pub task_id: i64,
    pub kind: DelegationKind,
    pub from_agent_id: Option<i64>,
    pub to_agent_id: Option<i64>,
    pub actor_agent_id: Option<i64>,
    pub note: Option<String>,
}

/// Appends one row; root and parent are copied from the task.
pub fn append(tx: &Tx, e: &NewEvent) -> Result<()> {
    let n = tx
        .prepare_cached(
            "INSERT INTO delegation_events (task_id, root_task_id, parent_task_id, kind, \
             from_agent_id, to_agent_id, actor_agent_id, note, created_at) \
             SELECT id, root_task_id, parent_task_id, ?2, ?3, ?4, ?5, ?6, ?7 FROM tasks WHERE id = ?1",
        )?
        .execute(params![
            e.task_id,
            e.kind.as_str(),
            e.from_agent_id,
            e.to_agent_id,
            e.actor_agent_id,
            e.note,
            clock::now_string()
        ])?;
    if n != 1 {
        return Err(Error::internal("delegation event for a missing task"));
    }
    Ok(())
}

/// One hop of a chain, as `GET /tasks/{id}/chain` lists it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Hop {
    pub id: i64,
    pub task_id: i64,
    pub kind: String,
    pub from: Option<String>,
    pub to: Option<String>,
    pub from_agent_id: Option<i64>,
    pub to_agent_id: Option<i64>,
    pub actor: Option<String>,
    pub actor_agent_id: Option<i64>,
    pub at: String,
    pub note: Option<String>,
}

/// Every hop recorded for tasks of the tree rooted at `root`, in order.
/// Agent names come from the agents table (null once an agent is deleted).
pub fn hops(conn: &Connection, root: i64) -> Result<Vec<Hop>> {
    let mut stmt = conn.prepare_cached(
        "SELECT d.id, d.task_id, d.kind, fa.name, ta.name, d.from_agent_id, d.to_agent_id, \
         aa.name, d.actor_agent_id, d.created_at, d.note FROM delegation_events d \
         LEFT JOIN agents fa ON fa.id = d.from_agent_id \
         LEFT JOIN agents ta ON ta.id = d.to_agent_id \
         LEFT JOIN agents aa ON aa.id = d.actor_agent_id \
         WHERE d.root_task_id = ?1 ORDER BY d.id",
    )?;
    let rows = stmt.query_map([root], |r| {
        Ok(Hop {
            id: r.get(0)?,
            task_id: r.get(1)?,
            kind: r.get(2)?,
            from: r.get(3)?,
            to: r.get(4)?,
            from_agent_id: r.get(5)?,
            to_agent_id: r.get(6)?,
            actor: r.get(7)?,
            actor_agent_id: r.get(8)?,
            at: r.get(9)?,
            note: r.get(10)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
