//! Task context: RFC 7396 merge patches, a version per write, the
//! provenance ledger (one entry per top-level key written) and recall.

use rusqlite::types::Value as SqlValue;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row};
use serde::Serialize;
use serde_json::{json, Map, Value};

use super::readers;
use super::Tx;
use crate::domain::access::Caller;
use crate::domain::clock;
use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    HumanStated,
    AgentInferred,
    AgentObserved,
    Imported,
}

impl Source {
    pub fn parse(s: &str) -> Option<Source> {
        match s {
            "human_stated" => Some(Source::HumanStated),
            "agent_inferred" => Some(Source::AgentInferred),
            "agent_observed" => Some(Source::AgentObserved),
            "imported" => Some(Source::Imported),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Source::HumanStated => "human_stated",
            Source::AgentInferred => "agent_inferred",
            Source::AgentObserved => "agent_observed",
            Source::Imported => "imported",
        }
    }
    /// Sources that claim more than an agent can vouch for.
    pub fn needs_admin(self) -> bool {
        matches!(self, Source::HumanStated | Source::Imported)
    }
    /// Recall ranks what a human said above what an agent guessed.
    fn weight(self) -> f64 {
        match self {
            Source::HumanStated => 2.0,
            Source::AgentObserved => 1.25,
            Source::Imported => 1.1,
            Source::AgentInferred => 1.0,
        }
    }
}

/// RFC 7396: objects merge recursively, `null` deletes a key.
/// A change to the recall index (`context_fts`) of live context entries.
///
/// Writes collect these and the writer applies a whole batch's at once,
/// just before COMMIT: FTS5 flushes what it holds in memory to a new index
/// segment at every SAVEPOINT, and the writer takes one per write, so
/// indexing inline wrote (and later merged) a segment per context write.
pub enum IndexChange {
    Add {
        entry: i64,
        key: String,
        text: String,
    },
    Remove(i64),
}

/// Applies a batch's index changes, in order, inside its transaction.
pub(super) fn apply_index(conn: &Connection, changes: &[IndexChange]) -> rusqlite::Result<()> {
    for change in changes {
        match change {
            IndexChange::Add { entry, key, text } => conn
                .prepare_cached("INSERT INTO context_fts (rowid, key, value) VALUES (?1, ?2, ?3)")?
                .execute(params![entry, key, text])?,
            IndexChange::Remove(entry) => conn
                .prepare_cached("DELETE FROM context_fts WHERE rowid = ?1")?
                .execute([entry])?,
        };
    }
    Ok(())
}

pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(map) = target {
        for (key, value) in patch {
            if value.is_null() {
                map.remove(key);
            } else {
                merge_patch(map.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

fn indexable(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Merges `patch` into the task's context, bumps `context_version` and
/// appends the ledger entries. With `expected_version`, a stale version is
/// a 409 carrying the current version and context. Returns the new version.
pub fn write(
    tx: &Tx,
    caller: &Caller,
    task_id: i64,
    patch: &Map<String, Value>,
    source: Source,
    expected_version: Option<i64>,
    max_bytes: usize,
) -> Result<i64> {
    let (current, version): (String, i64) = tx
        .prepare_cached("SELECT context, context_version FROM tasks WHERE id = ?1")?
        .query_row([task_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
        .ok_or_else(|| Error::not_found(format!("task {task_id} not found")))?;
    let mut context: Value = serde_json::from_str(&current).unwrap_or_else(|_| json!({}));
    if let Some(expected) = expected_version {
        if expected != version {
            return Err(Error::conflict_with(
                format!(
                    "context version mismatch: expected {expected}, current version is {version}"
                ),
                json!({ "version": version, "context": context }),
            ));
        }
    }
    merge_patch(&mut context, &Value::Object(patch.clone()));
    let serialized = serde_json::to_string(&context)?;
    if serialized.len() > max_bytes {
        return Err(Error::TooLarge(format!(
            "context would be {} bytes; the limit is {max_bytes}",
            serialized.len(),
        )));
    }
    let new_version = version + 1;
    let now = clock::now_string();
    tx.prepare_cached(
        "UPDATE tasks SET context = ?2, context_version = ?3, updated_at = ?4 WHERE id = ?1",
    )?
    .execute(params![task_id, serialized, new_version, now])?;
    let author = caller.agent();
    for key in patch.keys() {
        let value = context.get(key).cloned().unwrap_or(Value::Null);
        tx.prepare_cached(
            "INSERT INTO context_entries (task_id, key, value, version, source, author_agent_id, \
             author_name, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?
        .execute(params![
            task_id,
            key,
            value.to_string(),
            new_version,
            source.as_str(),
            author.map(|a| a.id),
            author.map(|a| a.name.clone()),
            now
        ])?;
        let entry_id = tx.last_insert_rowid();
        supersede_live(tx, task_id, key, Some(entry_id), &now)?;
        if !value.is_null() {
            tx.index(IndexChange::Add {
                entry: entry_id,
                key: key.clone(),
                text: indexable(&value),
            });
        }
    }
    Ok(new_version)
}

/// Marks the live entries for `key` (other than `by`) superseded and drops
/// them from the recall index.
fn supersede_live(tx: &Tx, task_id: i64, key: &str, by: Option<i64>, now: &str) -> Result<()> {
    let mut stmt = tx.prepare_cached(
        "SELECT id FROM context_entries WHERE task_id = ?1 AND key = ?2 \
         AND superseded_at IS NULL AND id IS NOT ?3",
    )?;
    let ids: Vec<i64> = stmt
        .query_map(params![task_id, key, by], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for id in ids {
        tx.prepare_cached(
            "UPDATE context_entries SET superseded_by = ?2, superseded_at = ?3 WHERE id = ?1",
        )?
        .execute(params![id, by, now])?;
        tx.index(IndexChange::Remove(id));
    }
    Ok(())
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Entry {
    pub id: i64,
    pub task_id: i64,
    pub key: String,
    pub value: Value,
    pub version: i64,
    pub source: String,
    pub author_agent_id: Option<i64>,
    pub author_name: Option<String>,
    pub created_at: String,
    pub superseded_by: Option<i64>,
    pub superseded_at: Option<String>,
}

const ENTRY_COLUMNS: &str = "id, task_id, key, value, version, source, author_agent_id, \
                             author_name, created_at, superseded_by, superseded_at";

fn entry_from_row(r: &Row) -> rusqlite::Result<Entry> {
    let value: String = r.get(3)?;
    Ok(Entry {
        id: r.get(0)?,
        task_id: r.get(1)?,
        key: r.get(2)?,
        value: serde_json::from_str(&value).unwrap_or(Value::Null),
        version: r.get(4)?,
        source: r.get(5)?,
        author_agent_id: r.get(6)?,
        author_name: r.get(7)?,
        created_at: r.get(8)?,
        superseded_by: r.get(9)?,
        superseded_at: r.get(10)?,
    })
}

/// Drops a task's live entries from the recall index (before it is
/// deleted: the index is contentless, so its rows go with the entries).
pub fn forget_task(conn: &Connection, task_id: i64) -> Result<()> {
    conn.prepare_cached(
        "DELETE FROM context_fts WHERE rowid IN \
         (SELECT id FROM context_entries WHERE task_id = ?1 AND superseded_at IS NULL)",
    )?
    .execute([task_id])?;
    Ok(())
}

/// `POST /tasks/{id}/context/supersede`: the live entry for `key` becomes
/// stale; the context value is left as it is.
pub fn supersede(tx: &Tx, task_id: i64, key: &str) -> Result<Entry> {
    let id: i64 = tx
        .prepare_cached(
            "SELECT id FROM context_entries WHERE task_id = ?1 AND key = ?2 \
             AND superseded_at IS NULL ORDER BY id DESC LIMIT 1",
        )?
        .query_row(params![task_id, key], |r| r.get(0))
        .optional()?
        .ok_or_else(|| Error::not_found(format!("no live context entry for key {key:?}")))?;
    let now = clock::now_string();
    tx.prepare_cached("UPDATE context_entries SET superseded_at = ?2 WHERE id = ?1")?
        .execute(params![id, now])?;
    tx.index(IndexChange::Remove(id));
    Ok(tx
        .prepare_cached(&format!(
            "SELECT {ENTRY_COLUMNS} FROM context_entries WHERE id = ?1"
        ))?
        .query_row([id], entry_from_row)?)
}

/// A page of the ledger, newest first; the cursor is the last id seen.
pub fn history(
    conn: &Connection,
    task_id: i64,
    key: Option<&str>,
    limit: i64,
    cursor: Option<i64>,
) -> Result<(Vec<Entry>, Option<String>)> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {ENTRY_COLUMNS} FROM context_entries WHERE task_id = ?1 \
         AND (?2 IS NULL OR key = ?2) AND (?3 IS NULL OR id < ?3) ORDER BY id DESC LIMIT ?4"
    ))?;
    let mut entries: Vec<Entry> = stmt
        .query_map(params![task_id, key, cursor, limit + 1], entry_from_row)?
        .collect::<Result<_, _>>()?;
    let next = if entries.len() as i64 > limit {
        entries.truncate(limit as usize);
        entries.last().map(|e| e.id.to_string())
    } else {
        None
    };
    Ok((entries, next))
}

/// Who wrote each live key: `{key: {author_agent_id, author_name, source,
/// version, created_at}}`.
pub fn provenance(conn: &Connection, task_id: i64, context: &Value) -> Result<Value> {
    let mut out = Map::new();
    let Value::Object(map) = context else {
        return Ok(Value::Object(out));
    };
    let mut stmt = conn.prepare_cached(
        "SELECT author_agent_id, author_name, source, version, created_at FROM context_entries \
         WHERE task_id = ?1 AND key = ?2 ORDER BY id DESC LIMIT 1",
    )?;
    for key in map.keys() {
        let row = stmt
            .query_row(params![task_id, key], |r| {
                Ok(json!({
                    "author_agent_id": r.get::<_, Option<i64>>(0)?,
                    "author_name": r.get::<_, Option<String>>(1)?,
                    "source": r.get::<_, String>(2)?,
                    "version": r.get::<_, i64>(3)?,
                    "created_at": r.get::<_, String>(4)?,
                }))
            })
            .optional()?;
        if let Some(row) = row {
            out.insert(key.clone(), row);
        }
    }
    Ok(Value::Object(out))
}

#[derive(Debug, Default)]
pub struct RecallQuery {
    pub q: String,
    pub project_id: Option<i64>,
    pub source: Option<Source>,
    pub key: Option<String>,
    pub limit: i64,
    pub include_superseded: bool,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RecallHit {
    pub task_id: i64,
    pub task_content: String,
    pub key: String,
    pub value: Value,
    pub source: String,
    pub version: i64,
    pub score: f64,
}

/// The words of a query as an FTS5 expression that cannot inject syntax.
fn fts_expression(q: &str) -> Option<String> {
    let words: Vec<String> = q
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| format!("\"{w}\""))
        .collect();
    (!words.is_empty()).then(|| words.join(" OR "))
}

/// Recall: ranked live context entries across every task the caller reads.
/// Live entries are in the full-text index; superseded ones, when asked
/// for, are matched by substring.
pub fn recall(conn: &Connection, caller: &Caller, rq: &RecallQuery) -> Result<Vec<RecallHit>> {
    let Some(expr) = fts_expression(&rq.q) else {
        return Ok(Vec::new());
    };
    let mut args: Vec<SqlValue> = vec![SqlValue::Integer(caller.agent_id().unwrap_or(-1))];
    let mut sql = String::new();
    let scope = if caller.reads_all() {
        "1".to_string()
    } else {
        readers::read_set("?1")
    };
    args.push(SqlValue::Text(expr));
    let mut filters = String::new();
    if let Some(p) = rq.project_id {
        args.push(SqlValue::Integer(p));
        filters.push_str(&format!(" AND t.project_id = ?{}", args.len()));
    }
    if let Some(s) = rq.source {
        args.push(SqlValue::Text(s.as_str().into()));
        filters.push_str(&format!(" AND e.source = ?{}", args.len()));
    }
    if let Some(k) = &rq.key {
        args.push(SqlValue::Text(k.clone()));
        filters.push_str(&format!(" AND e.key = ?{}", args.len()));
    }
    sql.push_str(&format!(
        "SELECT e.task_id, t.content, e.key, e.value, e.source, e.version, -bm25(context_fts) \
         FROM context_fts JOIN context_entries e ON e.id = context_fts.rowid \
         JOIN tasks t ON t.id = e.task_id \
         WHERE context_fts MATCH ?2 AND {scope} AND (?1 = ?1){filters}"
    ));
    if rq.include_superseded {
        args.push(SqlValue::Text(format!("%{}%", rq.q)));
        let n = args.len();
        sql.push_str(&format!(
            " UNION ALL SELECT e.task_id, t.content, e.key, e.value, e.source, e.version, 0.5 \
             FROM context_entries e JOIN tasks t ON t.id = e.task_id \
             WHERE e.superseded_at IS NOT NULL AND (e.value LIKE ?{n} OR e.key LIKE ?{n}) \
             AND {scope}{filters}"
        ));
    }
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(args), |r| {
        let source: String = r.get(4)?;
        let weight = Source::parse(&source).map_or(1.0, Source::weight);
        let value: String = r.get(3)?;
        Ok(RecallHit {
            task_id: r.get(0)?,
            task_content: r.get(1)?,
            key: r.get(2)?,
            value: serde_json::from_str(&value).unwrap_or(Value::Null),
            source,
            version: r.get(5)?,
            // bm25 relevance (near 0 when few entries exist) on top of a
            // base of 1, so the source weight always orders equal text.
            score: weight * (1.0 + r.get::<_, f64>(6)?.max(0.0)),
        })
    })?;
    let mut hits: Vec<RecallHit> = rows.collect::<Result<_, _>>()?;
    hits.sort_by(|a, b| b.score.total_cmp(&a.score));
    hits.truncate(rq.limit.max(0) as usize);
    for h in &mut hits {
        h.score = (h.score * 1000.0).round() / 1000.0;
    }
    Ok(hits)
}
