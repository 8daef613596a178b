//! Who reads each task through their own work: the `task_readers` table.
//!
//! SPEC §3 gives workers the tasks they created, are assigned, completed,
//! hold a claim on or handed on themselves, and everything downstream of
//! those; SPEC §8 lets the readers of a task read what it waits for. The
//! rule itself is [`access::readers`]; this module keeps its result per
//! task, so every read path — a task by id, lists, the chain, inputs,
//! events, recall, duplicates, stats, webhooks — asks one indexed table
//! instead of re-deriving the rule in its own SQL.
//!
//! Operations call [`refresh`] after anything the rule looks at changed:
//! a task's creator, assignee, completer or claim, a hand-off recorded in
//! `delegation_events`, its parent, or a dependency link. A refresh passes
//! on to the children and to the tasks it waits for only when what they
//! derive from it changed.

use std::collections::{BTreeSet, HashSet};

use rusqlite::{params, Connection, OptionalExtension};

use crate::domain::access::{self, ReaderFacts, Readers};
use crate::domain::clock;
use crate::error::Result;

/// Splits `"3,7"` (a `group_concat`) into ids.
fn id_list(text: Option<String>) -> Vec<i64> {
    text.map(|t| t.split(',').filter_map(|s| s.parse().ok()).collect())
        .unwrap_or_default()
}

/// The task's own facts and its parent, or `None` if it is gone (one
/// statement: this runs for most writes).
fn facts(conn: &Connection, id: i64, now: &str) -> Result<Option<(ReaderFacts, Option<i64>)>> {
    // Agents deleted since they acted no longer read anything (the join).
    let row = conn
        .prepare_cached(
            "SELECT created_by_agent_id, assigned_to_agent_id, completed_by_agent_id, \
             CASE WHEN lease_expires_at > ?2 THEN claimed_by_agent_id END, parent_task_id, \
             (SELECT group_concat(DISTINCT d.actor_agent_id) FROM delegation_events d \
              JOIN agents a ON a.id = d.actor_agent_id WHERE d.task_id = ?1), \
             (SELECT group_concat(DISTINCT r.agent_id) FROM task_dependencies d \
              JOIN task_readers r ON r.task_id = d.task_id AND r.heritable \
              WHERE d.depends_on_id = ?1 AND d.shared) \
             FROM tasks WHERE id = ?1",
        )?
        .query_row(params![id, now], |r| {
            Ok((
                ReaderFacts {
                    created_by: r.get(0)?,
                    assigned_to: r.get(1)?,
                    completed_by: r.get(2)?,
                    live_claimant: r.get(3)?,
                    actors: id_list(r.get(5)?),
                    waiting_readers: id_list(r.get(6)?).into_iter().collect(),
                },
                r.get::<_, Option<i64>>(4)?,
            ))
        })
        .optional()?;
    Ok(row)
}

/// The readers of a task as stored.
fn current(conn: &Connection, id: i64) -> Result<Readers> {
    let mut stmt =
        conn.prepare_cached("SELECT agent_id, heritable FROM task_readers WHERE task_id = ?1")?;
    let mut readers = Readers::default();
    for row in stmt.query_map([id], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, bool>(1)?)))? {
        match row? {
            (agent, true) => readers.heritable.insert(agent),
            (agent, false) => readers.this_task_only.insert(agent),
        };
    }
    Ok(readers)
}

/// Tasks whose readers derive from `id`'s heritable readers: its children,
/// and the tasks it waits for on a sharing link.
fn derived_from(conn: &Connection, id: i64) -> Result<Vec<i64>> {
    let mut out = super::tasks::child_ids(conn, id)?;
    out.extend(shared_inputs(conn, id)?);
    Ok(out)
}

/// The tasks `id` waits for on a sharing link.
fn shared_inputs(conn: &Connection, id: i64) -> Result<Vec<i64>> {
    let mut stmt = conn.prepare_cached(
        "SELECT depends_on_id FROM task_dependencies WHERE task_id = ?1 AND shared",
    )?;
    let ids = stmt.query_map([id], |r| r.get(0))?;
    Ok(ids.collect::<rusqlite::Result<_>>()?)
}

/// Recomputes the readers of task `id`, and of the tasks that derive
/// theirs from it where that changed.
pub fn refresh(conn: &Connection, id: i64) -> Result<()> {
    let now = clock::now_string();
    let mut stack = vec![id];
    while let Some(id) = stack.pop() {
        let Some((own, parent)) = facts(conn, id, &now)? else {
            continue;
        };
        let old = current(conn, id)?;
        let new = derive(conn, &own, parent)?;
        if new == old {
            continue;
        }
        conn.prepare_cached("DELETE FROM task_readers WHERE task_id = ?1")?
            .execute([id])?;
        store(conn, id, &new)?;
        if new.heritable != old.heritable {
            stack.extend(derived_from(conn, id)?);
        }
    }
    Ok(())
}

/// The readers of a task just inserted, from the facts its creation knows
/// (it has no rows, no children and nothing waiting for it yet).
pub fn initialize(
    conn: &Connection,
    id: i64,
    own: &ReaderFacts,
    parent: Option<i64>,
) -> Result<()> {
    let new = derive(conn, own, parent)?;
    store(conn, id, &new)?;
    if !new.heritable.is_empty() {
        for input in shared_inputs(conn, id)? {
            refresh(conn, input)?;
        }
    }
    Ok(())
}

fn derive(conn: &Connection, own: &ReaderFacts, parent: Option<i64>) -> Result<Readers> {
    let from_parent = match parent {
        Some(p) => current(conn, p)?.heritable,
        None => BTreeSet::new(),
    };
    Ok(access::readers(own, &from_parent))
}

fn store(conn: &Connection, id: i64, readers: &Readers) -> Result<()> {
    let mut insert = conn.prepare_cached(
        "INSERT INTO task_readers (task_id, agent_id, heritable) VALUES (?1, ?2, ?3)",
    )?;
    for agent in &readers.heritable {
        insert.execute(params![id, agent, true])?;
    }
    for agent in &readers.this_task_only {
        insert.execute(params![id, agent, false])?;
    }
    Ok(())
}

/// Forgets a task's rows (it is being deleted).
pub fn forget_task(conn: &Connection, id: i64) -> Result<()> {
    conn.prepare_cached("DELETE FROM task_readers WHERE task_id = ?1")?
        .execute([id])?;
    Ok(())
}

/// Forgets an agent's rows (it is being deleted).
pub fn forget_agent(conn: &Connection, agent: i64) -> Result<()> {
    conn.prepare_cached("DELETE FROM task_readers WHERE agent_id = ?1")?
        .execute([agent])?;
    Ok(())
}

/// Fills the table for every task (a database from before it existed),
/// parents first.
pub fn rebuild(conn: &Connection) -> Result<()> {
    let mut stmt = conn.prepare("SELECT id FROM tasks ORDER BY delegation_depth, id")?;
    let ids: Vec<i64> = stmt
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for id in ids {
        refresh(conn, id)?;
    }
    Ok(())
}

/// Whether `agent` reads task `id` through its own work.
pub fn is_reader(conn: &Connection, id: i64, agent: i64) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT EXISTS(SELECT 1 FROM task_readers WHERE task_id = ?1 AND agent_id = ?2)",
        )?
        .query_row([id, agent], |r| r.get(0))?)
}

/// The readers of a task as `",3,7,"`: the audience of an event about it.
pub fn audience(conn: &Connection, id: i64) -> Result<String> {
    let mut stmt = conn
        .prepare_cached("SELECT agent_id FROM task_readers WHERE task_id = ?1 ORDER BY agent_id")?;
    let mut out = String::from(",");
    for agent in stmt.query_map([id], |r| r.get::<_, i64>(0))? {
        out.push_str(&agent?.to_string());
        out.push(',');
    }
    Ok(out)
}

/// Which tasks of the tree rooted at `root` `agent` reads (driven by the
/// tree, whatever the agent reads elsewhere).
pub fn in_tree(conn: &Connection, agent: i64, root: i64) -> Result<HashSet<i64>> {
    let mut stmt = conn.prepare_cached(
        "SELECT t.id FROM tasks t WHERE t.root_task_id = ?2 AND EXISTS \
         (SELECT 1 FROM task_readers r WHERE r.task_id = t.id AND r.agent_id = ?1)",
    )?;
    let ids = stmt.query_map([agent, root], |r| r.get(0))?;
    Ok(ids.collect::<rusqlite::Result<_>>()?)
}

/// SQL: task `t` is among those the agent bound at `agent` (`?N`) reads,
/// driven by the agent's rows (use when the agent's set picks the rows).
pub fn read_set(agent: &str) -> String {
    format!("t.id IN (SELECT task_id FROM task_readers WHERE agent_id = {agent})")
}

/// SQL: the same test, row by row (use when another index picks the rows).
pub fn reads(agent: &str) -> String {
    format!("EXISTS (SELECT 1 FROM task_readers r WHERE r.task_id = t.id AND r.agent_id = {agent})")
}
