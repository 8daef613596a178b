//! Webhooks, their delivery queue and the attempt log.

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;
use serde_json::{json, Value};

use super::Tx;
use crate::domain::access::Caller;
use crate::domain::clock;
use crate::error::{ApiError, ApiResult};
use crate::events::PING;

#[derive(Debug, Clone, Serialize)]
pub struct Webhook {
    pub id: i64,
    pub url: String,
    pub events: Vec<String>,
    pub signature_version: String,
    pub description: Option<String>,
    pub owner_agent_id: Option<i64>,
    /// `project` (every event) or `agent` (events on tasks the owner reads).
    pub scope: &'static str,
    pub active: bool,
    pub consecutive_failures: i64,
    pub disabled_reason: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// Only in the create answer, and only when the server generated it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

const COLUMNS: &str = "w.id, w.url, w.events, w.signature_version, w.description, \
    w.owner_agent_id, w.active, w.consecutive_failures, w.disabled_reason, w.created_at, \
    w.updated_at, a.role";

fn from_row(r: &Row) -> rusqlite::Result<Webhook> {
    let events: String = r.get(2)?;
    let owner: Option<i64> = r.get(5)?;
    let owner_role: Option<String> = r.get(11)?;
    Ok(Webhook {
        id: r.get(0)?,
        url: r.get(1)?,
        events: serde_json::from_str(&events).unwrap_or_default(),
        signature_version: r.get(3)?,
        description: r.get(4)?,
        owner_agent_id: owner,
        scope: if owner.is_none() || owner_role.as_deref() == Some("admin") {
            "project"
        } else {
            "agent"
        },
        active: r.get(6)?,
        consecutive_failures: r.get(7)?,
        disabled_reason: r.get(8)?,
        created_at: r.get(9)?,
        updated_at: r.get(10)?,
        secret: None,
    })
}

fn select() -> String {
    format!("SELECT {COLUMNS} FROM webhooks w LEFT JOIN agents a ON a.id = w.owner_agent_id")
}

/// The webhooks a caller manages: admins all, others their own.
pub fn list(conn: &Connection, caller: &Caller) -> ApiResult<Vec<Webhook>> {
    let mut stmt = conn.prepare_cached(&format!(
        "{} WHERE ?1 OR w.owner_agent_id = ?2 ORDER BY w.id",
        select()
    ))?;
    let rows = stmt.query_map(params![caller.is_admin(), caller.agent_id()], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A webhook the caller manages; others' hooks are 404.
pub fn require(conn: &Connection, caller: &Caller, id: i64) -> ApiResult<Webhook> {
    let hook = conn
        .prepare_cached(&format!("{} WHERE w.id = ?1", select()))?
        .query_row([id], from_row)
        .optional()?
        .filter(|h| {
            caller.is_admin()
                || (h.owner_agent_id.is_some() && h.owner_agent_id == caller.agent_id())
        })
        .ok_or_else(|| ApiError::not_found(format!("webhook {id} not found")))?;
    Ok(hook)
}

pub struct NewWebhook {
    pub url: String,
    pub events: Vec<String>,
    pub secret: String,
    pub signature_version: String,
    pub description: Option<String>,
}

pub fn insert(conn: &Connection, caller: &Caller, new: NewWebhook) -> ApiResult<Webhook> {
    let now = clock::now_string();
    conn.execute(
        "INSERT INTO webhooks (url, events, secret, signature_version, description, \
         owner_agent_id, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
        params![
            new.url,
            serde_json::to_string(&new.events)?,
            new.secret,
            new.signature_version,
            new.description,
            caller.agent_id(),
            now
        ],
    )?;
    require(conn, caller, conn.last_insert_rowid())
}

#[derive(Debug, Default)]
pub struct WebhookChanges {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub secret: Option<String>,
    pub signature_version: Option<String>,
    pub description: Option<Option<String>>,
    pub active: Option<bool>,
}

/// Applies changes; turning a hook back on resets its failure count.
pub fn update(
    conn: &Connection,
    caller: &Caller,
    id: i64,
    ch: WebhookChanges,
) -> ApiResult<Webhook> {
    let mut hook = require(conn, caller, id)?;
    if let Some(v) = ch.url {
        hook.url = v;
    }
    if let Some(v) = ch.events {
        hook.events = v;
    }
    if let Some(v) = ch.signature_version {
        hook.signature_version = v;
    }
    if let Some(v) = ch.description {
        hook.description = v;
    }
    if let Some(active) = ch.active {
        if active {
            hook.consecutive_failures = 0;
            hook.disabled_reason = None;
        } else if hook.active {
            hook.disabled_reason = Some("disabled by request".into());
        }
        hook.active = active;
    }
    let now = clock::now_string();
    conn.execute(
        "UPDATE webhooks SET url = ?2, events = ?3, signature_version = ?4, description = ?5, \
         active = ?6, consecutive_failures = ?7, disabled_reason = ?8, updated_at = ?9, \
         secret = COALESCE(?10, secret) WHERE id = ?1",
        params![
            id,
            hook.url,
            serde_json::to_string(&hook.events)?,
            hook.signature_version,
            hook.description,
            hook.active,
            hook.consecutive_failures,
            hook.disabled_reason,
            now,
            ch.secret
        ],
    )?;
    require(conn, caller, id)
}

pub fn delete(conn: &Connection, caller: &Caller, id: i64) -> ApiResult<()> {
    require(conn, caller, id)?;
    conn.execute("DELETE FROM webhooks WHERE id = ?1", [id])?;
    Ok(())
}

/// One row of `GET /webhooks/{id}/deliveries`: an attempt.
#[derive(Debug, Serialize)]
pub struct AttemptLog {
    pub id: i64,
    pub delivery_id: i64,
    pub event: String,
    pub event_id: i64,
    pub attempt: i64,
    pub status_code: Option<i64>,
    pub success: bool,
    pub error: Option<String>,
    pub duration_ms: i64,
    pub created_at: String,
    pub state: String,
    pub payload: Value,
}

pub fn attempts(
    conn: &Connection,
    hook: i64,
    limit: i64,
    offset: i64,
) -> ApiResult<Vec<AttemptLog>> {
    let mut stmt = conn.prepare_cached(
        "SELECT a.id, a.delivery_id, e.kind, e.id, a.attempt, a.status_code, a.success, a.error, \
         a.duration_ms, a.created_at, d.state, e.payload FROM webhook_attempts a \
         JOIN webhook_deliveries d ON d.id = a.delivery_id JOIN events e ON e.id = d.event_id \
         WHERE a.webhook_id = ?1 ORDER BY a.id DESC LIMIT ?2 OFFSET ?3",
    )?;
    let rows = stmt.query_map(params![hook, limit, offset], |r| {
        let payload: String = r.get(11)?;
        Ok(AttemptLog {
            id: r.get(0)?,
            delivery_id: r.get(1)?,
            event: r.get(2)?,
            event_id: r.get(3)?,
            attempt: r.get(4)?,
            status_code: r.get(5)?,
            success: r.get(6)?,
            error: r.get(7)?,
            duration_ms: r.get(8)?,
            created_at: r.get(9)?,
            state: r.get(10)?,
            payload: serde_json::from_str(&payload).unwrap_or(Value::Null),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Queues the event of delivery (or attempt) `did` again for `hook`.
pub fn redeliver(conn: &Connection, hook: i64, did: i64) -> ApiResult<Value> {
    let event_id: i64 = conn
        .query_row(
            "SELECT event_id FROM webhook_deliveries WHERE id = ?1 AND webhook_id = ?2 \
             UNION ALL SELECT d.event_id FROM webhook_attempts a \
             JOIN webhook_deliveries d ON d.id = a.delivery_id \
             WHERE a.id = ?1 AND a.webhook_id = ?2 LIMIT 1",
            params![did, hook],
            |r| r.get(0),
        )
        .optional()?
        .ok_or_else(|| {
            ApiError::not_found(format!("delivery {did} not found on webhook {hook}"))
        })?;
    let id = enqueue(conn, hook, event_id)?;
    Ok(json!({ "delivery_id": id, "event_id": event_id, "state": "pending" }))
}

fn enqueue(conn: &Connection, hook: i64, event_id: i64) -> ApiResult<i64> {
    let now = clock::now_string();
    conn.prepare_cached(
        "INSERT INTO webhook_deliveries (webhook_id, event_id, next_attempt_at, created_at, \
         updated_at) VALUES (?1, ?2, ?3, ?3, ?3)",
    )?
    .execute(params![hook, event_id, now])?;
    Ok(conn.last_insert_rowid())
}

/// Queues a ping (`webhook.test`) for one hook. The ping is logged as an
/// event no reader is shown (it is about no task).
pub fn ping(tx: &Tx, caller: &Caller, hook: &Webhook) -> ApiResult<Value> {
    let event_id = super::events::next_id(tx)?;
    let now = clock::now_string();
    let payload = json!({
        "event": PING,
        "event_id": event_id,
        "timestamp": now,
        "task": null,
        "agent": caller.agent().map(|a| json!({"id": a.id, "name": a.name, "display_name": a.display_name})),
        "webhook_id": hook.id,
    });
    tx.execute(
        "INSERT INTO events (id, kind, task_id, agent_id, audience, payload, created_at) \
         VALUES (?1, ?2, NULL, ?3, ',', ?4, ?5)",
        params![event_id, PING, caller.agent_id(), payload.to_string(), now],
    )?;
    let id = enqueue(tx, hook.id, event_id)?;
    Ok(json!({ "delivery_id": id, "event_id": event_id, "state": "pending" }))
}

// ---------------------------------------------------------------- dispatcher side

/// A delivery ready to be attempted.
#[derive(Debug, Clone)]
pub struct Due {
    pub id: i64,
    pub webhook_id: i64,
    pub event_id: i64,
    pub attempts: i64,
    pub url: String,
    pub secret: String,
    pub signature_version: String,
    pub event: String,
    pub payload: String,
}

/// Pending deliveries whose time has come, for active hooks, skipping the
/// ones already in flight (`in_flight` is a JSON array of ids).
pub fn due(conn: &Connection, now: &str, in_flight: &str, limit: i64) -> ApiResult<Vec<Due>> {
    let mut stmt = conn.prepare_cached(
        "SELECT d.id, d.webhook_id, d.event_id, d.attempts, w.url, w.secret, \
         w.signature_version, e.kind, e.payload FROM webhook_deliveries d \
         JOIN webhooks w ON w.id = d.webhook_id JOIN events e ON e.id = d.event_id \
         WHERE d.state = 'pending' AND d.next_attempt_at <= ?1 AND w.active = 1 \
         AND d.id NOT IN (SELECT value FROM json_each(?2)) \
         ORDER BY d.next_attempt_at, d.id LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![now, in_flight, limit], |r| {
        Ok(Due {
            id: r.get(0)?,
            webhook_id: r.get(1)?,
            event_id: r.get(2)?,
            attempts: r.get(3)?,
            url: r.get(4)?,
            secret: r.get(5)?,
            signature_version: r.get(6)?,
            event: r.get(7)?,
            payload: r.get(8)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// When the next pending delivery of an active hook falls due.
pub fn next_due_at(conn: &Connection) -> ApiResult<Option<String>> {
    Ok(conn
        .prepare_cached(
            "SELECT MIN(d.next_attempt_at) FROM webhook_deliveries d \
             JOIN webhooks w ON w.id = d.webhook_id WHERE d.state = 'pending' AND w.active = 1",
        )?
        .query_row([], |r| r.get(0))?)
}

/// The outcome of one attempt.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub status_code: Option<u16>,
    pub error: Option<String>,
    pub duration_ms: i64,
}

impl Outcome {
    pub fn success(&self) -> bool {
        self.status_code.is_some_and(|c| (200..300).contains(&c))
    }
}

/// Policy for recording outcomes.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub disable_after_failures: u32,
}

/// Logs an attempt and moves the delivery on: delivered, retried at
/// `retry_at`, or given up; keeps the hook's failure count, disabling it
/// on 410 Gone or after too many consecutive failures.
pub fn record_attempt(
    conn: &Connection,
    due: &Due,
    outcome: &Outcome,
    retry_at: &str,
    policy: &RetryPolicy,
) -> ApiResult<()> {
    let now = clock::now_string();
    let attempt = due.attempts + 1;
    let success = outcome.success();
    conn.prepare_cached(
        "INSERT INTO webhook_attempts (delivery_id, webhook_id, attempt, status_code, success, \
         error, duration_ms, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        due.id,
        due.webhook_id,
        attempt,
        outcome.status_code,
        success,
        outcome.error,
        outcome.duration_ms,
        now
    ])?;
    let gone = outcome.status_code == Some(410);
    let state = if success {
        "delivered"
    } else if gone || attempt >= i64::from(policy.max_attempts) {
        "failed"
    } else {
        "pending"
    };
    conn.prepare_cached(
        "UPDATE webhook_deliveries SET state = ?2, attempts = ?3, next_attempt_at = ?4, \
         updated_at = ?5 WHERE id = ?1",
    )?
    .execute(params![due.id, state, attempt, retry_at, now])?;
    if success {
        conn.prepare_cached(
            "UPDATE webhooks SET consecutive_failures = 0 WHERE id = ?1 AND consecutive_failures != 0",
        )?
        .execute([due.webhook_id])?;
    } else if gone {
        conn.prepare_cached(
            "UPDATE webhooks SET active = 0, consecutive_failures = consecutive_failures + 1, \
             disabled_reason = 'receiver answered 410 Gone', updated_at = ?2 WHERE id = ?1",
        )?
        .execute(params![due.webhook_id, now])?;
    } else {
        conn.prepare_cached(
            "UPDATE webhooks SET consecutive_failures = consecutive_failures + 1, \
             active = CASE WHEN consecutive_failures + 1 >= ?2 THEN 0 ELSE active END, \
             disabled_reason = CASE WHEN consecutive_failures + 1 >= ?2 \
               THEN 'too many consecutive failed attempts' ELSE disabled_reason END, \
             updated_at = ?3 WHERE id = ?1",
        )?
        .execute(params![due.webhook_id, policy.disable_after_failures, now])?;
    }
    Ok(())
}
