//! `GET /tasks`: the filters, the caller's scope, the order of SPEC §5.

use rusqlite::params_from_iter;
use rusqlite::types::Value as SqlValue;
use rusqlite::Connection;

use crate::domain::access::Caller;
use crate::domain::clock;
use crate::error::Result;
use crate::store::readers;

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

/// Where a page starts: `offset` rows in, or after a `cursor` (the last
/// row of the page before, as [`Listed::cursor`] gave it).
#[derive(Debug, Clone, Default)]
pub struct PageSpec {
    pub limit: i64,
    pub offset: i64,
    pub cursor: Option<String>,
}

/// One page of ids.
#[derive(Debug, Default)]
pub struct Listed {
    /// At most the page's `limit`, in list order.
    pub ids: Vec<i64>,
    /// More rows follow.
    pub more: bool,
    /// Where the next page starts (keyset pagination), when more follow.
    pub cursor: Option<String>,
}

/// The part of the list order a row is in: open tasks, then completed
/// ones (SPEC §5), each ordered by `list_key`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Part {
    Open,
    Done,
}

impl Part {
    fn tag(self) -> char {
        match self {
            Part::Open => 'o',
            Part::Done => 'c',
        }
    }
    fn condition(self) -> &'static str {
        match self {
            // The order indexes' own conditions (a task is completed
            // exactly when it has a completion time; migration 8).
            Part::Open => "t.completed_at IS NULL",
            Part::Done => "t.completed_at IS NOT NULL",
        }
    }
    fn cursor(self, key: &str) -> String {
        format!("{}{key}", self.tag())
    }
}

/// A cursor as `(part, key)`; anything else is a 422.
fn parse_cursor(c: &str) -> Result<(Part, String)> {
    let bad = || crate::error::Error::validation("cursor", "is not a cursor this server issued");
    let mut chars = c.chars();
    let part = match chars.next() {
        Some('o') => Part::Open,
        Some('c') => Part::Done,
        _ => return Err(bad()),
    };
    let key: String = chars.collect();
    if key.is_empty()
        || !key
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '-')
    {
        return Err(bad());
    }
    Ok((part, key))
}

/// Which parts of the order the filter asks for.
fn parts(f: &Filter) -> Vec<Part> {
    let (open, done) = match f.completed {
        Some(true) => (false, true),
        Some(false) => (true, false),
        None if !f.statuses.is_empty() => (
            f.statuses.iter().any(|s| s != "completed"),
            f.statuses.iter().any(|s| s == "completed"),
        ),
        // A search is a look-up, not a work list (SPEC §5): it finds
        // completed tasks unless told otherwise.
        None => (true, f.include_completed.unwrap_or(f.search.is_some())),
    };
    [(Part::Open, open), (Part::Done, done)]
        .into_iter()
        .filter(|(_, wanted)| *wanted)
        .map(|(p, _)| p)
        .collect()
}

/// Adds the filters of `f` (not the caller's scope, not completion).
fn add_filters(w: &mut Where, f: &Filter, now: &str) -> Result<()> {
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
    if let Some(v) = f.project_id {
        let p = w.bind(SqlValue::Integer(v));
        w.add(format!("t.project_id = {p}"));
    }
    for label in &f.labels {
        let p = w.bind(SqlValue::Text(label.clone()));
        w.add(format!(
            "EXISTS (SELECT 1 FROM task_labels l WHERE l.label = {p} AND l.task_id = t.id)"
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
        let p = w.bind(SqlValue::Text(now.to_string()));
        w.add(if claimed {
            format!("t.claimed_by_agent_id IS NOT NULL AND t.lease_expires_at > {p}")
        } else {
            format!("(t.claimed_by_agent_id IS NULL OR t.lease_expires_at <= {p})")
        });
    }
    Ok(())
}

/// The query for up to `limit` rows of one part of the list, for callers
/// who read every task: it walks that part's order index from just after
/// `after` (a cursor's key) and stops.
fn part_page(
    part: Part,
    f: &Filter,
    after: Option<&String>,
    limit: usize,
    now: &str,
) -> Result<(String, Vec<SqlValue>)> {
    let mut w = Where::default();
    w.add(part.condition());
    add_filters(&mut w, f, now)?;
    if let Some(key) = after {
        let k = w.bind(SqlValue::Text(key.clone()));
        w.add(format!("t.list_key > {k}"));
    }
    let sql = format!(
        "SELECT t.list_key, t.id FROM tasks t{} ORDER BY t.list_key LIMIT {limit}",
        w.sql()
    );
    Ok((sql, w.args))
}

/// SQLite's plan (`EXPLAIN QUERY PLAN` details) for the first page of
/// `limit` rows of each part of the list that [`list`] runs for a caller
/// who reads every task under `f`, and for the page after a cursor: for
/// tests, which check that a page walks an order index and sorts nothing.
pub fn page_plans(conn: &Connection, f: &Filter, limit: usize) -> Result<Vec<String>> {
    let now = clock::now_string();
    let mut out = Vec::new();
    let key = String::from("1");
    for part in parts(f) {
        for after in [None, Some(&key)] {
            let (sql, args) = part_page(part, f, after, limit, &now)?;
            let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
            let rows = stmt.query_map(params_from_iter(args), |r| r.get::<_, String>(3))?;
            for row in rows {
                out.push(row?);
            }
        }
    }
    Ok(out)
}

/// One page of what the caller reads, filtered, in the order of SPEC §5
/// (open before completed, priority, due date with undated last, newest
/// first).
///
/// For callers who read every task the page walks the order index
/// (`tasks.list_key`) and stops, so its cost does not grow with the
/// database; a cursor seeks straight to where the last page ended. A
/// worker's tasks are picked through its own rows in `task_readers`
/// (its own work, however large the database) and sorted here.
pub fn list(conn: &Connection, caller: &Caller, f: &Filter, page: &PageSpec) -> Result<Listed> {
    let now = clock::now_string();
    let start = page.cursor.as_deref().map(parse_cursor).transpose()?;
    // Rows to fetch: the page, what it skips, and one more to tell whether
    // another page follows. An absurd offset saturates instead of wrapping.
    let want = page
        .limit
        .max(0)
        .saturating_add(page.offset.max(0))
        .saturating_add(1);
    let want = usize::try_from(want).unwrap_or(usize::MAX);
    let mut rows: Vec<(Part, String, i64)> = Vec::new();
    if caller.reads_all() {
        for part in parts(f) {
            if let Some((p, _)) = &start {
                if part < *p {
                    continue;
                }
            }
            let after = start.as_ref().filter(|(p, _)| *p == part).map(|(_, k)| k);
            let left = want.saturating_sub(rows.len());
            let (sql, args) = part_page(part, f, after, left, &now)?;
            let mut stmt = conn.prepare_cached(&sql)?;
            let found =
                stmt.query_map(params_from_iter(args), |r| Ok((part, r.get(0)?, r.get(1)?)))?;
            for row in found {
                rows.push(row?);
            }
            if rows.len() >= want {
                break;
            }
        }
    } else {
        let mut w = Where::default();
        let me = w.bind(SqlValue::Integer(caller.agent_id().unwrap_or(-1)));
        // The filter's own index picks the rows and each is checked; or the
        // caller's readable set picks them.
        w.add(if f.narrows_to_a_subset() {
            readers::reads(&me)
        } else {
            readers::read_set(&me)
        });
        let wanted = parts(f);
        if let [only] = wanted.as_slice() {
            w.add(only.condition());
        }
        add_filters(&mut w, f, &now)?;
        let sql = format!(
            "SELECT {}, t.list_key, t.id FROM tasks t{}",
            Part::Done.condition(),
            w.sql()
        );
        let mut stmt = conn.prepare_cached(&sql)?;
        let found = stmt.query_map(params_from_iter(w.args), |r| {
            let done: bool = r.get(0)?;
            Ok((
                if done { Part::Done } else { Part::Open },
                r.get(1)?,
                r.get(2)?,
            ))
        })?;
        for row in found {
            let row = row?;
            let after_start = start
                .as_ref()
                .is_none_or(|(p, key)| (row.0, &row.1) > (*p, key));
            if after_start {
                rows.push(row);
            }
        }
        rows.sort_unstable();
    }
    let skip = usize::try_from(page.offset).unwrap_or(0).min(rows.len());
    let limit = usize::try_from(page.limit).unwrap_or(0);
    let mut rows = rows.split_off(skip);
    let more = rows.len() > limit;
    rows.truncate(limit);
    Ok(Listed {
        cursor: more
            .then(|| rows.last().map(|(part, key, _)| part.cursor(key)))
            .flatten(),
        ids: rows.into_iter().map(|(_, _, id)| id).collect(),
        more,
    })
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
