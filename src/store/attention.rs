//! What needs a person (SPEC §10's attention board): the tasks of each
//! bucket, with why and since when, among those the caller reads.

use rusqlite::{params, Connection};

use super::readers;
use crate::domain::access::Caller;
use crate::error::Result;

/// The buckets, in the order the board shows them.
pub const BUCKETS: [&str; 7] = [
    "abandoned_claims",
    "silent_holders",
    "errored",
    "waiting_input",
    "overdue",
    "looping",
    "blocked_by_failure",
];

/// One task on the board.
#[derive(Debug, Clone)]
pub struct Flag {
    pub bucket: &'static str,
    pub task_id: i64,
    pub reason: String,
    /// Since when it needs a person: an RFC 3339 UTC timestamp
    /// (`2026-01-02T00:00:00.000Z`); for `overdue`, the start of the day
    /// after its due date.
    pub since: String,
}

/// Tasks per bucket at most.
const PER_BUCKET: i64 = 100;

/// Every flag for the tasks the caller reads, bucket by bucket.
pub fn flags(conn: &Connection, caller: &Caller, now: &str, today: &str) -> Result<Vec<Flag>> {
    let scope = if caller.reads_all() {
        "?1 = ?1".to_string()
    } else {
        readers::read_set("?1")
    };
    let agent = caller.agent_id().unwrap_or(-1);
    let mut out = Vec::new();
    let mut collect = |bucket: &'static str,
                       sql: String,
                       reason: &dyn Fn(&rusqlite::Row) -> rusqlite::Result<String>|
     -> Result<()> {
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params![agent, now, today], |r| {
            Ok(Flag {
                bucket,
                task_id: r.get(0)?,
                since: r.get(1)?,
                reason: reason(r)?,
            })
        })?;
        for row in rows {
            out.push(row?);
        }
        Ok(())
    };
    // Attention rows sit in a small partial index; claims in the leases one.
    collect(
        "abandoned_claims",
        format!(
            "SELECT t.id, t.abandoned_at FROM tasks t INDEXED BY tasks_attention \
             WHERE (t.abandoned_at IS NOT NULL OR t.session_state IN ('errored', 'waiting_input') \
             OR t.blocked_reason = 'dependency_failed') AND t.abandoned_at IS NOT NULL \
             AND t.queued AND {scope} AND ?2 = ?2 AND ?3 = ?3 ORDER BY t.abandoned_at LIMIT {PER_BUCKET}"
        ),
        &|_| Ok("its claim's lease ran out and nobody has claimed it since".into()),
    )?;
    collect(
        "silent_holders",
        format!(
            "SELECT t.id, t.last_heartbeat_at, a.name FROM tasks t INDEXED BY tasks_leases \
             LEFT JOIN agents a ON a.id = t.claimed_by_agent_id \
             WHERE t.claimed_by_agent_id IS NOT NULL AND t.lease_expires_at > ?2 \
             AND julianday(?2) - julianday(t.last_heartbeat_at) > \
                 (julianday(t.lease_expires_at) - julianday(t.last_heartbeat_at)) / 2 \
             AND {scope} AND ?3 = ?3 ORDER BY t.last_heartbeat_at LIMIT {PER_BUCKET}"
        ),
        &|r| {
            let who: Option<String> = r.get(2)?;
            Ok(format!(
                "{} holds the claim but has not sent a heartbeat for half its lease",
                who.unwrap_or_else(|| "its holder".into())
            ))
        },
    )?;
    for (bucket, state, why) in [
        ("errored", "errored", "its worker reported an error"),
        (
            "waiting_input",
            "waiting_input",
            "its worker is waiting for input",
        ),
    ] {
        collect(
            bucket,
            format!(
                "SELECT t.id, t.updated_at, t.session_state_detail FROM tasks t \
                 INDEXED BY tasks_attention WHERE (t.abandoned_at IS NOT NULL \
                 OR t.session_state IN ('errored', 'waiting_input') \
                 OR t.blocked_reason = 'dependency_failed') AND t.session_state = '{state}' \
                 AND t.status NOT IN ('completed', 'failed') \
                 AND {scope} AND ?2 = ?2 AND ?3 = ?3 ORDER BY t.updated_at LIMIT {PER_BUCKET}"
            ),
            &|r| {
                let detail: Option<String> = r.get(2)?;
                Ok(match detail {
                    Some(d) => format!("{why}: {d}"),
                    None => why.to_string(),
                })
            },
        )?;
    }
    collect(
        "overdue",
        format!(
            // Overdue since the day after its due date began (UTC), a
            // timestamp like every other bucket's `since`.
            "SELECT t.id, \
             COALESCE(strftime('%Y-%m-%dT%H:%M:%fZ', t.due_date, '+1 day'), t.due_date), \
             t.due_date FROM tasks t INDEXED BY tasks_due \
             WHERE t.due_date IS NOT NULL AND t.status NOT IN ('completed', 'failed') \
             AND t.due_date < ?3 AND {scope} AND ?2 = ?2 ORDER BY t.due_date LIMIT {PER_BUCKET}"
        ),
        &|r| {
            let due: String = r.get(2)?;
            Ok(format!("it was due on {due}"))
        },
    )?;
    collect(
        "looping",
        format!(
            "SELECT d.task_id, MIN(d.created_at), fa.name, ta.name, count(*) \
             FROM delegation_events d JOIN tasks t ON t.id = d.task_id \
             LEFT JOIN agents fa ON fa.id = MIN(d.from_agent_id, d.to_agent_id) \
             LEFT JOIN agents ta ON ta.id = MAX(d.from_agent_id, d.to_agent_id) \
             WHERE d.from_agent_id IS NOT NULL AND d.to_agent_id IS NOT NULL \
             AND d.from_agent_id != d.to_agent_id AND t.status NOT IN ('completed', 'failed') \
             AND {scope} AND ?2 = ?2 AND ?3 = ?3 \
             GROUP BY d.task_id, MIN(d.from_agent_id, d.to_agent_id), \
             MAX(d.from_agent_id, d.to_agent_id) HAVING count(*) >= 3 \
             ORDER BY MIN(d.created_at) LIMIT {PER_BUCKET}"
        ),
        &|r| {
            let (a, b, n): (Option<String>, Option<String>, i64) =
                (r.get(2)?, r.get(3)?, r.get(4)?);
            Ok(format!(
                "handed back and forth between {} and {} {n} times",
                a.unwrap_or_else(|| "a deleted agent".into()),
                b.unwrap_or_else(|| "a deleted agent".into())
            ))
        },
    )?;
    collect(
        "blocked_by_failure",
        format!(
            "SELECT t.id, t.updated_at FROM tasks t INDEXED BY tasks_attention \
             WHERE (t.abandoned_at IS NOT NULL OR t.session_state IN ('errored', 'waiting_input') \
             OR t.blocked_reason = 'dependency_failed') AND t.blocked_reason = 'dependency_failed' \
             AND t.status = 'blocked' AND {scope} AND ?2 = ?2 AND ?3 = ?3 \
             ORDER BY t.updated_at LIMIT {PER_BUCKET}"
        ),
        &|_| Ok("a task it depends on failed".into()),
    )?;
    Ok(out)
}
