//! `GET /tasks`: the filters, the caller's scope, the order of SPEC §5.

use rusqlite::params_from_iter;
use rusqlite::types::Value as SqlValue;
use rusqlite::Connection;

use crate::domain::access::Caller;
use crate::domain::clock;
use crate::domain::lifecycle::Status;
use crate::error::Result;
use crate::store::readers;

/// SQL: task `t` is in the claim queue (SPEC §10) of the agent bound at
/// `me` at the time bound at `now`: a claimable status (the state
/// machine's rule), no live claim, unassigned or assigned to that agent.
pub fn in_queue(me: &str, now: &str) -> String {
    let statuses = Status::ALL
        .into_iter()
        .filter(|s| s.is_claimable())
        .map(|s| format!("'{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "t.status IN ({statuses}) \
         AND (t.claimed_by_agent_id IS NULL OR t.lease_expires_at <= {now}) \
         AND (t.assigned_to_agent_id IS NULL OR t.assigned_to_agent_id = {me})"
    )
}

/// Filters of `GET /tasks`, already validated.
#[derive(Debug, Default)]
pub struct Filter {
    pub assigned_to: Option<i64>,
    pub created_by: Option<i64>,
    pub statuses: Vec<String>,
    pub completed: Option<bool>,
    pub include_completed: Option<bool>,
    pub project_id: Option<i64>,
    pub labels: Vec<String>,
    pub priority: Option<i64>,
    pub search: Option<String>,
    pub due_on: Option<String>,
    pub due_after: Option<String>,
    pub due_before: Option<String>,
    pub overdue: bool,
    pub parent_task_id: Option<i64>,
    pub root_task_id: Option<i64>,
    pub claimed: Option<bool>,
    pub claimable: bool,
}

impl Filter {
    /// Filters with an index of their own, which select a bounded set of
    /// rows better than the caller's whole visible set would.
    fn narrows_to_a_subset(&self) -> bool {
        self.project_id.is_some()
            || self.parent_task_id.is_some()
            || self.root_task_id.is_some()
            || self.assigned_to.is_some()
            || self.created_by.is_some()
    }
}

/// Numbered parameters and WHERE clauses of a dynamic query.
#[derive(Default)]
pub struct Where {
    pub args: Vec<SqlValue>,
    pub clauses: Vec<String>,
}

impl Where {
    /// Binds a value and returns its placeholder (`?N`).
    pub fn bind(&mut self, value: SqlValue) -> String {
        self.args.push(value);
        format!("?{}", self.args.len())
    }
    pub fn add(&mut self, clause: impl Into<String>) {
        self.clauses.push(clause.into());
    }
    pub fn sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.clauses.join(" AND "))
        }
    }
}

/// The ids of what the caller can read, filtered and ordered; one more
/// than `limit` so the caller knows whether a next page exists. (Ids only:
/// the renderings mostly come from the cache.)
pub fn list(
    conn: &Connection,
    caller: &Caller,
    f: &Filter,
    limit: i64,
    offset: i64,
) -> Result<Vec<i64>> {
    let now = clock::now_string();
    let mut w = Where::default();
    // ?1 is always the caller's agent id (or -1).
    let me = w.bind(SqlValue::Integer(caller.agent_id().unwrap_or(-1)));
    w.add(format!("{me} = {me}"));
    if f.claimable {
        let now = w.bind(SqlValue::Text(now.clone()));
        w.add(in_queue(&me, &now));
    } else if !caller.reads_all() {
        // The filter's own index picks the rows and each is checked; or
        // the caller's readable set picks them.
        w.add(if f.narrows_to_a_subset() {
            readers::reads(&me)
        } else {
            readers::read_set(&me)
        });
    }
    if let Some(a) = f.assigned_to {
        let p = w.bind(SqlValue::Integer(a));
        w.add(format!("t.assigned_to_agent_id = {p}"));
    }
    if let Some(a) = f.created_by {
        let p = w.bind(SqlValue::Integer(a));
        w.add(format!("t.created_by_agent_id = {p}"));
    }
    if !f.statuses.is_empty() {
        let p = w.bind(SqlValue::Text(serde_json::to_string(&f.statuses)?));
        w.add(format!("t.status IN (SELECT value FROM json_each({p}))"));
    }
    match f.completed {
        Some(true) => w.add("t.status = 'completed'"),
        Some(false) => w.add("t.status != 'completed'"),
        None => {
            let asks_completed = f.statuses.iter().any(|s| s == "completed");
            // A search is a look-up, not a work list (SPEC §5): it finds
            // completed tasks unless told otherwise.
            let include = f.include_completed.unwrap_or(f.search.is_some());
            if !include && !asks_completed {
                w.add("t.status != 'completed'");
            }
        }
    }
    if let Some(v) = f.project_id {
        let p = w.bind(SqlValue::Integer(v));
        w.add(format!("t.project_id = {p}"));
    }
    for label in &f.labels {
        let p = w.bind(SqlValue::Text(label.clone()));
        w.add(format!(
            "EXISTS (SELECT 1 FROM json_each(t.labels) WHERE value = {p})"
        ));
    }
    if let Some(v) = f.priority {
        let p = w.bind(SqlValue::Integer(v));
        w.add(format!("t.priority = {p}"));
    }
    if let Some(s) = &f.search {
        let p = w.bind(SqlValue::Text(s.to_lowercase()));
        w.add(format!(
            "(instr(fold(t.content), {p}) > 0 OR instr(fold(t.description), {p}) > 0)"
        ));
    }
    if let Some(d) = &f.due_on {
        let p = w.bind(SqlValue::Text(d.clone()));
        w.add(format!("t.due_date = {p}"));
    }
    if let Some(d) = &f.due_after {
        let p = w.bind(SqlValue::Text(d.clone()));
        w.add(format!("t.due_date >= {p}"));
    }
    if let Some(d) = &f.due_before {
        let p = w.bind(SqlValue::Text(d.clone()));
        w.add(format!("t.due_date <= {p}"));
    }
    if f.overdue {
        let p = w.bind(SqlValue::Text(clock::format_date(clock::today())));
        w.add(format!(
            "t.due_date < {p} AND t.status NOT IN ('completed', 'failed')"
        ));
    }
    if let Some(v) = f.parent_task_id {
        let p = w.bind(SqlValue::Integer(v));
        w.add(format!("t.parent_task_id = {p}"));
    }
    if let Some(v) = f.root_task_id {
        let p = w.bind(SqlValue::Integer(v));
        w.add(format!("t.root_task_id = {p}"));
    }
    if let Some(claimed) = f.claimed {
        let p = w.bind(SqlValue::Text(now.clone()));
        w.add(if claimed {
            format!("t.claimed_by_agent_id IS NOT NULL AND t.lease_expires_at > {p}")
        } else {
            format!("(t.claimed_by_agent_id IS NULL OR t.lease_expires_at <= {p})")
        });
    }
    // Ordered here rather than by SQLite: without an index in this order
    // it sorts through a temporary b-tree, which cost more than the rest
    // of the query on a list of 1,000.
    let sql = format!(
        "SELECT t.id, t.status = 'completed', t.priority, t.due_date FROM tasks t{}",
        w.sql()
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(w.args), |r| {
        Ok(ListKey {
            completed: r.get(1)?,
            priority: r.get(2)?,
            due_date: r.get(3)?,
            id: r.get(0)?,
        })
    })?;
    let mut keys = rows.collect::<rusqlite::Result<Vec<_>>>()?;
    keys.sort_unstable_by(ListKey::order);
    let start = usize::try_from(offset).unwrap_or(0).min(keys.len());
    let take = usize::try_from(limit + 1).unwrap_or(usize::MAX);
    Ok(keys[start..].iter().take(take).map(|k| k.id).collect())
}

/// What the list order of SPEC §5 looks at: open before completed, then
/// priority, then due date (tasks without one last), newest first.
struct ListKey {
    completed: bool,
    priority: i64,
    due_date: Option<String>,
    id: i64,
}

impl ListKey {
    fn order(a: &ListKey, b: &ListKey) -> std::cmp::Ordering {
        (a.completed, a.priority, a.due_date.is_none(), &a.due_date)
            .cmp(&(b.completed, b.priority, b.due_date.is_none(), &b.due_date))
            .then(b.id.cmp(&a.id))
    }
}

/// `(id, content)` of the newest `limit` unfinished tasks the caller
/// reads: the candidates of the duplicate check.
pub fn open_contents(conn: &Connection, caller: &Caller, limit: i64) -> Result<Vec<(i64, String)>> {
    let scope = if caller.reads_all() {
        "?1 = ?1".to_string()
    } else {
        readers::read_set("?1")
    };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT t.id, t.content FROM tasks t WHERE {scope} \
         AND t.status NOT IN ('completed', 'failed') ORDER BY t.id DESC LIMIT {limit}"
    ))?;
    let rows = stmt.query_map([caller.agent_id().unwrap_or(-1)], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
