//! Who reads each task through their own work: the `task_readers` table.
//!
//! SPEC §3 gives workers the tasks they created, are assigned, completed,
//! hold a claim on or handed on themselves, and everything downstream of
//! those; SPEC §8 lets the readers of a task read what it waits for. The
//! rule itself is [`access::readers`]; this module keeps its result, so
//! every read path — a task by id, lists, the chain, inputs, events,
//! recall, duplicates, stats, webhooks — asks the same place instead of
//! re-deriving the rule in its own SQL.
//!
//! A task's own creator, assignee, completer and claim holder are its own
//! columns, indexed, and always among its readers: they are not stored
//! again as rows (most tasks have no other reader; a row per create cost
//! the single writer a tenth of its time, and a row per claim and per
//! completion a seventh of a queue worker's). The rows hold everyone
//! else: what a task inherits from its parent, the actors of its
//! hand-offs, the readers of tasks that wait for it. [`read_set`],
//! [`reads`] and [`audience`] put the two together ([`audience_of`] with
//! the columns from a row the writer holds).
//!
//! The claim holder reads the task itself only (a claim never opens the
//! subtree): the column names it until the claim ends (release,
//! completion, failure, or the lease sweep), exactly as long as a row did.
//! No stored row depends on a claim, so neither a claim nor its end needs
//! a refresh.
//!
//! Operations call [`refresh`] after anything else the rule looks at
//! changed: a task's creator or assignee, a hand-off recorded in
//! `delegation_events`, its parent, or a dependency link; a completion
//! calls [`completed`]. A refresh passes on to the children and to the
//! tasks it waits for only when what they derive from it changed.

use std::collections::{BTreeSet, HashSet};

use rusqlite::{params, Connection, OptionalExtension};

use crate::domain::access::{self, ReaderFacts, Readers};
use crate::domain::clock;
use crate::error::Result;
use crate::store::tasks::TaskRow;

/// Splits `"3,7"` (a `group_concat`) into ids.
fn id_list(text: Option<String>) -> Vec<i64> {
    text.map(|t| t.split(',').filter_map(|s| s.parse().ok()).collect())
        .unwrap_or_default()
}

/// The task's own facts and its parent, or `None` if it is gone (one
/// statement: this runs for most writes).
fn facts(conn: &Connection, id: i64, now: &str) -> Result<Option<(ReaderFacts, Option<i64>)>> {
    // Agents deleted since they acted no longer read anything (the join).
    // Those who wait: the stored heritable readers of the waiting tasks,
    // and their own creators, assignees and completers.
    let row = conn
        .prepare_cached(
            "SELECT created_by_agent_id, assigned_to_agent_id, completed_by_agent_id, \
             CASE WHEN lease_expires_at > ?2 THEN claimed_by_agent_id END, parent_task_id, \
             (SELECT group_concat(DISTINCT d.actor_agent_id) FROM delegation_events d \
              JOIN agents a ON a.id = d.actor_agent_id WHERE d.task_id = ?1), \
             (SELECT group_concat(a) FROM ( \
                SELECT r.agent_id AS a FROM task_dependencies d \
                JOIN task_readers r ON r.task_id = d.task_id AND r.heritable \
                WHERE d.depends_on_id = ?1 AND d.shared \
                UNION SELECT w.created_by_agent_id FROM task_dependencies d \
                JOIN tasks w ON w.id = d.task_id WHERE d.depends_on_id = ?1 AND d.shared \
                UNION SELECT w.assigned_to_agent_id FROM task_dependencies d \
                JOIN tasks w ON w.id = d.task_id WHERE d.depends_on_id = ?1 AND d.shared \
                UNION SELECT w.completed_by_agent_id FROM task_dependencies d \
                JOIN tasks w ON w.id = d.task_id WHERE d.depends_on_id = ?1 AND d.shared)) \
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

/// The rows of a task as stored.
fn stored(conn: &Connection, id: i64) -> Result<Readers> {
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

/// What a task passes down to its children: its stored heritable rows,
/// its creator, its assignee and its completer.
fn heritable(conn: &Connection, id: i64) -> Result<BTreeSet<i64>> {
    let mut out = stored(conn, id)?.heritable;
    out.extend(columns(conn, id)?.heritable.into_iter().flatten());
    Ok(out)
}

/// The readers a task's own columns name (nothing if it is gone).
#[derive(Default)]
struct Columns {
    /// Creator, assignee, completer.
    heritable: [Option<i64>; 3],
    claim_holder: Option<i64>,
}

fn columns(conn: &Connection, id: i64) -> Result<Columns> {
    Ok(conn
        .prepare_cached(
            "SELECT created_by_agent_id, assigned_to_agent_id, completed_by_agent_id, \
             claimed_by_agent_id FROM tasks WHERE id = ?1",
        )?
        .query_row([id], |r| {
            Ok(Columns {
                heritable: [r.get(0)?, r.get(1)?, r.get(2)?],
                claim_holder: r.get(3)?,
            })
        })
        .optional()?
        .unwrap_or_default())
}

/// The rows to store for `readers` of a task: all but those its columns
/// name — its creator, assignee and completer, and its claim holder where
/// the claim is all it reads through. A claim holder who also waits for
/// the task keeps that row: the stored rows never depend on the claim, so
/// a claim needs no refresh and its end restores nothing.
fn to_store(mut readers: Readers, own: &ReaderFacts) -> Readers {
    for column in [own.created_by, own.assigned_to, own.completed_by]
        .into_iter()
        .flatten()
    {
        readers.heritable.remove(&column);
        readers.this_task_only.remove(&column);
    }
    if let Some(claimant) = own.live_claimant {
        if !own.waiting_readers.contains(&claimant) {
            readers.this_task_only.remove(&claimant);
        }
    }
    readers
}

/// Migration 8: rows written by older versions for claim holders. They
/// would outlive their claim when the next claim or a completion (which no
/// longer refresh) ends it, so every claimed task with rows is refreshed
/// once under the current rule.
pub fn forget_claim_rows(conn: &Connection) -> Result<()> {
    refresh_each(
        conn,
        "SELECT id FROM tasks t WHERE claimed_by_agent_id IS NOT NULL \
         AND EXISTS (SELECT 1 FROM task_readers r WHERE r.task_id = t.id)",
    )
}

/// Refreshes the tasks `ids_sql` selects, in its order.
fn refresh_each(conn: &Connection, ids_sql: &str) -> Result<()> {
    let ids: Vec<i64> = conn
        .prepare(ids_sql)?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for id in ids {
        refresh(conn, id)?;
    }
    Ok(())
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

fn derive(conn: &Connection, own: &ReaderFacts, parent: Option<i64>) -> Result<Readers> {
    let from_parent = match parent {
        Some(p) => heritable(conn, p)?,
        None => BTreeSet::new(),
    };
    Ok(to_store(access::readers(own, &from_parent), own))
}

fn insert(conn: &Connection, id: i64, readers: &Readers) -> Result<()> {
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

/// Recomputes the readers of task `id` — whose facts just changed — and
/// of the tasks that derive theirs from it: its children and the tasks it
/// waits for always (its creator or assignee columns may have changed
/// under it), theirs only where what they pass on changed.
pub fn refresh(conn: &Connection, id: i64) -> Result<()> {
    let now = clock::now_string();
    let mut stack = vec![(id, true)];
    while let Some((id, changed_here)) = stack.pop() {
        let Some((own, parent)) = facts(conn, id, &now)? else {
            continue;
        };
        let before = (!changed_here).then(|| heritable(conn, id)).transpose()?;
        let new = derive(conn, &own, parent)?;
        if new != stored(conn, id)? {
            conn.prepare_cached("DELETE FROM task_readers WHERE task_id = ?1")?
                .execute([id])?;
            insert(conn, id, &new)?;
        }
        let passes_on = match before {
            None => true,
            Some(before) => heritable(conn, id)? != before,
        };
        if passes_on {
            stack.extend(derived_from(conn, id)?.into_iter().map(|t| (t, false)));
        }
    }
    Ok(())
}

/// After task `id` was completed. Its completer and its ended claim are
/// columns, so its own rows can only lose the completer; what changes
/// elsewhere is what it passes on — to its children and to the tasks it
/// waits for on a sharing link. A task with none of those and no rows
/// (the common leaf of a work queue) has nothing to recompute, and one
/// indexed look says so; otherwise, a [`refresh`].
pub fn completed(conn: &Connection, id: i64) -> Result<()> {
    let settled: bool = conn
        .prepare_cached(
            "SELECT NOT EXISTS (SELECT 1 FROM task_readers WHERE task_id = ?1) \
             AND NOT EXISTS (SELECT 1 FROM tasks WHERE parent_task_id = ?1) \
             AND NOT EXISTS (SELECT 1 FROM task_dependencies WHERE task_id = ?1 AND shared)",
        )?
        .query_row([id], |r| r.get(0))?;
    if settled {
        Ok(())
    } else {
        refresh(conn, id)
    }
}

/// The readers of a task just inserted, from the facts its creation knows
/// (it has no rows, no children and nothing waiting for it yet). A root
/// whose only readers are its creator and assignee writes nothing.
pub fn initialize(
    conn: &Connection,
    id: i64,
    own: &ReaderFacts,
    parent: Option<i64>,
) -> Result<()> {
    let new = derive(conn, own, parent)?;
    insert(conn, id, &new)?;
    let inputs = shared_inputs(conn, id)?;
    for input in inputs {
        refresh(conn, input)?;
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
    refresh_each(conn, "SELECT id FROM tasks ORDER BY delegation_depth, id")
}

/// Whether `agent` reads task `id` through a stored row (callers check the
/// task's own columns first: creator, assignee, completer, claim holder).
pub fn is_reader(conn: &Connection, id: i64, agent: i64) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT EXISTS(SELECT 1 FROM task_readers WHERE task_id = ?1 AND agent_id = ?2)",
        )?
        .query_row([id, agent], |r| r.get(0))?)
}

/// The readers of a task as `",3,7,"`: the audience of an event about it.
/// (Its columns and its rows, merged here: a `UNION` sorted through a
/// temporary b-tree cost a fifth of recording an event.)
pub fn audience(conn: &Connection, id: i64) -> Result<String> {
    Ok(merged(stored(conn, id)?, columns(conn, id)?))
}

/// [`audience`] of a task whose row the caller holds as it is now: the
/// columns come from the row instead of another read.
pub fn audience_of(conn: &Connection, row: &TaskRow) -> Result<String> {
    let own = Columns {
        heritable: [
            row.created_by_agent_id,
            row.assigned_to_agent_id,
            row.completed_by_agent_id,
        ],
        claim_holder: row.claimed_by_agent_id,
    };
    Ok(merged(stored(conn, row.id)?, own))
}

/// The stored readers and the columns' ones, as `",3,7,"`.
fn merged(stored: Readers, own: Columns) -> String {
    let Readers {
        mut heritable,
        this_task_only,
    } = stored;
    heritable.extend(this_task_only);
    heritable.extend(
        own.heritable
            .into_iter()
            .chain([own.claim_holder])
            .flatten(),
    );
    let mut out = String::from(",");
    for agent in heritable {
        out.push_str(&agent.to_string());
        out.push(',');
    }
    out
}

/// Which tasks of the tree rooted at `root` `agent` reads (driven by the
/// tree, whatever the agent reads elsewhere).
pub fn in_tree(conn: &Connection, agent: i64, root: i64) -> Result<HashSet<i64>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT t.id FROM tasks t WHERE t.root_task_id = ?2 AND {}",
        reads("?1")
    ))?;
    let ids = stmt.query_map([agent, root], |r| r.get(0))?;
    Ok(ids.collect::<rusqlite::Result<_>>()?)
}

/// SQL: task `t` is among those the agent bound at `agent` (`?N`) reads,
/// driven by the agent's rows and the tasks it created, is assigned,
/// completed or holds a claim on (use when the agent's set picks the
/// rows; each column has its own index).
pub fn read_set(agent: &str) -> String {
    format!(
        "({} OR t.id IN (SELECT task_id FROM task_readers WHERE agent_id = {agent}))",
        by_columns(agent)
    )
}

/// SQL: the same test, row by row (use when another index picks the
/// rows).
pub fn reads(agent: &str) -> String {
    format!(
        "({} OR EXISTS \
         (SELECT 1 FROM task_readers r WHERE r.task_id = t.id AND r.agent_id = {agent}))",
        by_columns(agent)
    )
}

/// SQL: the agent is one of the readers task `t`'s own columns name.
fn by_columns(agent: &str) -> String {
    format!(
        "t.created_by_agent_id = {agent} OR t.assigned_to_agent_id = {agent} \
         OR t.completed_by_agent_id = {agent} OR t.claimed_by_agent_id = {agent}"
    )
}
