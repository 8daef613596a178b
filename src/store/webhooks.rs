//! Webhooks, their delivery queue and the attempt log.

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;
use serde_json::{json, Value};

use super::Tx;
use crate::domain::access::{Caller, READ_ALL};
use crate::domain::clock;
use crate::domain::event_kind::PING;
use crate::error::{Error, Result};
use crate::hub::Event;
use crate::metrics::DeliveryOutcome;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
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
    /// Failed attempts since the last success (information; disabling
    /// goes by `failing_since`).
    pub consecutive_failures: i64,
    /// When the current run of failures began; null after a success.
    pub failing_since: Option<String>,
    pub disabled_reason: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// Only in the create answer, and only when the server generated it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

const COLUMNS: &str = "w.id, w.url, w.events, w.signature_version, w.description, \
    w.owner_agent_id, w.active, w.consecutive_failures, w.disabled_reason, w.created_at, \
    w.updated_at, a.role, w.failing_since";

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
        failing_since: r.get(12)?,
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
pub fn list(conn: &Connection, caller: &Caller) -> Result<Vec<Webhook>> {
    let mut stmt = conn.prepare_cached(&format!(
        "{} WHERE ?1 OR w.owner_agent_id = ?2 ORDER BY w.id",
        select()
    ))?;
    let rows = stmt.query_map(params![caller.is_admin(), caller.agent_id()], from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// A webhook the caller manages; others' hooks are 404.
pub fn require(conn: &Connection, caller: &Caller, id: i64) -> Result<Webhook> {
    let hook = conn
        .prepare_cached(&format!("{} WHERE w.id = ?1", select()))?
        .query_row([id], from_row)
        .optional()?
        .filter(|h| {
            caller.is_admin()
                || (h.owner_agent_id.is_some() && h.owner_agent_id == caller.agent_id())
        })
        .ok_or_else(|| Error::not_found(format!("webhook {id} not found")))?;
    Ok(hook)
}

/// The newest event's id: where a hook starts (or restarts) reading the
/// log, so it receives what happens from then on.
const LATEST_EVENT: &str = "(SELECT COALESCE(MAX(id), 0) FROM events)";

pub struct NewWebhook {
    pub url: String,
    pub events: Vec<String>,
    pub secret: String,
    pub signature_version: String,
    pub description: Option<String>,
}

pub fn insert(conn: &Connection, caller: &Caller, new: NewWebhook) -> Result<Webhook> {
    let now = clock::now_string();
    conn.execute(
        &format!(
            "INSERT INTO webhooks (url, events, secret, signature_version, description, \
             owner_agent_id, created_at, updated_at, delivered_through) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, {LATEST_EVENT})"
        ),
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

/// Applies changes; turning a hook back on resets its failure count, and
/// it receives the events from then on (not those it missed while off).
pub fn update(conn: &Connection, caller: &Caller, id: i64, ch: WebhookChanges) -> Result<Webhook> {
    let mut hook = require(conn, caller, id)?;
    let switched_on = ch.active == Some(true) && !hook.active;
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
            hook.failing_since = None;
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
         secret = COALESCE(?10, secret), failing_since = ?11 WHERE id = ?1",
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
            ch.secret,
            hook.failing_since
        ],
    )?;
    if switched_on {
        // Pings and redeliveries asked for while it was off still go out.
        conn.execute(
            "INSERT OR IGNORE INTO webhook_retries (webhook_id, event_id, state, attempts, \
             next_attempt_at, updated_at) SELECT ?1, e.id, 'pending', 0, ?2, ?2 FROM events e \
             WHERE e.webhook_id = ?1 \
             AND e.id > (SELECT delivered_through FROM webhooks WHERE id = ?1)",
            params![id, now],
        )?;
        skip_to_now(conn, "id = ?1", id)?;
    }
    require(conn, caller, id)
}

pub fn delete(conn: &Connection, caller: &Caller, id: i64) -> Result<()> {
    require(conn, caller, id)?;
    conn.execute("DELETE FROM webhooks WHERE id = ?1", [id])?;
    Ok(())
}

/// One row of `GET /webhooks/{id}/deliveries`: an attempt.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AttemptLog {
    pub id: i64,
    /// The delivery: the event row sent (a redelivery is an event of its
    /// own), also sent as `X-Delega-Delivery`; retries keep it.
    pub delivery_id: i64,
    pub event: String,
    /// The event delivered, as its payload names it.
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

pub fn attempts(conn: &Connection, hook: i64, limit: i64, offset: i64) -> Result<Vec<AttemptLog>> {
    let mut stmt = conn.prepare_cached(
        "SELECT a.id, a.event_id, e.kind, a.attempt, a.status_code, a.success, a.error, \
         a.duration_ms, a.created_at, \
         COALESCE(r.state, CASE WHEN a.success THEN 'delivered' ELSE 'failed' END), e.payload \
         FROM webhook_attempts a JOIN events e ON e.id = a.event_id \
         LEFT JOIN webhook_retries r ON r.webhook_id = a.webhook_id AND r.event_id = a.event_id \
         WHERE a.webhook_id = ?1 ORDER BY a.id DESC LIMIT ?2 OFFSET ?3",
    )?;
    let rows = stmt.query_map(params![hook, limit, offset], |r| {
        let delivery_id: i64 = r.get(1)?;
        let payload: Value = serde_json::from_str(&r.get::<_, String>(10)?).unwrap_or(Value::Null);
        Ok(AttemptLog {
            id: r.get(0)?,
            delivery_id,
            event: r.get(2)?,
            event_id: payload
                .get("event_id")
                .and_then(Value::as_i64)
                .unwrap_or(delivery_id),
            attempt: r.get(3)?,
            status_code: r.get(4)?,
            success: r.get(5)?,
            error: r.get(6)?,
            duration_ms: r.get(7)?,
            created_at: r.get(8)?,
            state: r.get(9)?,
            payload,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Sends what row `did` of `hook`'s delivery log delivered to the hook
/// again, as a new delivery (a copy of the event addressed to that hook
/// alone). Only a log row's id names a delivery here: event ids never
/// stand in for it (SPEC §9).
pub fn redeliver(tx: &Tx, caller: &Caller, hook: i64, did: i64) -> Result<Value> {
    let delivered: i64 = tx
        .query_row(
            "SELECT event_id FROM webhook_attempts WHERE webhook_id = ?2 AND id = ?1",
            params![did, hook],
            |r| r.get(0),
        )
        .optional()?
        .ok_or_else(|| {
            Error::not_found(format!(
                "delivery {did} not found on webhook {hook}: use an id from its delivery log"
            ))
        })?;
    let (kind, payload): (String, String) = tx.query_row(
        "SELECT kind, payload FROM events WHERE id = ?1",
        [delivered],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let delivery = super::event_log::next_id(tx)?;
    address(tx, caller, hook, delivery, &kind, &payload)?;
    let event_id = event_id_of(&payload).unwrap_or(delivered);
    Ok(json!({ "delivery_id": delivery, "event_id": event_id, "state": "pending" }))
}

/// The `event_id` a payload names (a redelivery's copy names the
/// original).
fn event_id_of(payload: &str) -> Option<i64> {
    serde_json::from_str::<Value>(payload)
        .ok()
        .and_then(|p| p.get("event_id").and_then(Value::as_i64))
}

/// Where a recovery starts: after an event id, or at a time (RFC 3339,
/// normalized).
#[derive(Debug, Clone)]
pub enum Since {
    EventId(i64),
    Time(String),
}

/// Most events one recovery re-sends.
pub const RECOVER_LIMIT: usize = 10_000;

/// An event a hook missed: its id, kind and payload.
pub struct Missed {
    pub event_id: i64,
    pub kind: String,
    pub payload: String,
}

/// The events since `since` that `hook` wants (its kinds; what its owner
/// reads), oldest first, up to `limit`; and the id the search started
/// after. Copies of deliveries (redeliveries, pings) are not events of
/// their own and are not included. A read: the scan stays off the
/// writer.
pub fn missed(
    conn: &Connection,
    hook: i64,
    since: &Since,
    limit: usize,
) -> Result<(i64, Vec<Missed>, bool)> {
    let feed = feed_of(conn, hook)?
        .ok_or_else(|| Error::not_found(format!("webhook {hook} not found")))?;
    let after = match since {
        Since::EventId(id) => *id,
        Since::Time(t) => conn
            .prepare_cached("SELECT COALESCE(MAX(id), 0) FROM events WHERE created_at < ?1")?
            .query_row([t], |r| r.get(0))?,
    };
    let mut found = Vec::new();
    let mut cursor = after;
    loop {
        let page = events_after(conn, cursor, 500)?;
        let Some(last) = page.last() else {
            return Ok((after, found, false));
        };
        cursor = last.event.id;
        for e in page {
            if e.webhook_id.is_some() || !feed.wants(&e) {
                continue;
            }
            if found.len() == limit {
                return Ok((after, found, true));
            }
            found.push(Missed {
                event_id: e.event.id,
                kind: e.event.kind,
                payload: e.event.payload,
            });
        }
    }
}

/// Queues a copy of each missed event for `hook` alone, in order.
pub fn resend(tx: &Tx, caller: &Caller, hook: i64, missed: &[Missed]) -> Result<()> {
    for m in missed {
        let delivery = super::event_log::next_id(tx)?;
        address(tx, caller, hook, delivery, &m.kind, &m.payload)?;
    }
    Ok(())
}

/// Appends event `id` (the next one) for `hook` alone: no task, so no
/// reader is shown it. Its id is the delivery's.
fn address(tx: &Tx, caller: &Caller, hook: i64, id: i64, kind: &str, payload: &str) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO events (id, kind, task_id, agent_id, audience, payload, created_at, \
         webhook_id) VALUES (?1, ?2, NULL, ?3, ',', ?4, ?5, ?6)",
    )?
    .execute(params![
        id,
        kind,
        caller.agent_id(),
        payload,
        clock::now_string(),
        hook
    ])?;
    tx.wake_dispatcher();
    Ok(())
}

/// Queues a ping (`webhook.test`) for one hook.
pub fn ping(tx: &Tx, caller: &Caller, hook: &Webhook) -> Result<Value> {
    let event_id = super::event_log::next_id(tx)?;
    let payload = json!({
        "event": PING,
        "event_id": event_id,
        "timestamp": clock::now_string(),
        "task": null,
        "agent": caller.agent().map(|a| json!({"id": a.id, "name": a.name, "display_name": a.display_name})),
        "webhook_id": hook.id,
    });
    address(tx, caller, hook.id, event_id, PING, &payload.to_string())?;
    Ok(json!({ "delivery_id": event_id, "event_id": event_id, "state": "pending" }))
}

// ---------------------------------------------------------------- dispatcher side

/// An active hook, as the dispatcher feeds it from the event log.
#[derive(Debug, Clone)]
pub struct Feed {
    pub id: i64,
    pub url: String,
    pub secret: String,
    pub signature_version: String,
    kinds: Vec<String>,
    owner: Option<i64>,
    /// Project-wide, or its owner reads every task.
    sees_all: bool,
    /// Registered by an admin or the project token: also receives project
    /// and agent events.
    project_wide: bool,
    /// Every event up to this id has been offered to the hook.
    pub delivered_through: i64,
}

impl Feed {
    /// Whether the hook is owed this event of the log.
    pub fn wants(&self, e: &LogEvent) -> bool {
        match e.webhook_id {
            Some(hook) => hook == self.id,
            None => {
                let visible = match e.event.task_id {
                    Some(_) => {
                        self.sees_all || self.owner.is_some_and(|o| e.event.visible_to_agent(o))
                    }
                    None => self.project_wide,
                };
                visible && self.kinds.iter().any(|k| k == "*" || *k == e.event.kind)
            }
        }
    }

    /// A delivery of `e` to this hook, first attempt.
    pub fn due(&self, e: &LogEvent) -> Due {
        Due {
            webhook_id: self.id,
            event_id: e.event.id,
            attempts: 0,
            retry: false,
            url: self.url.clone(),
            secret: self.secret.clone(),
            signature_version: self.signature_version.clone(),
            event: e.event.kind.clone(),
            payload: e.event.payload.clone(),
        }
    }
}

const FEED_SELECT: &str = "SELECT w.id, w.url, w.secret, w.signature_version, w.events, \
    w.owner_agent_id, (w.owner_agent_id IS NULL OR a.role != 'worker' \
      OR EXISTS (SELECT 1 FROM json_each(a.permissions) WHERE value = ?1)), \
    w.delivered_through, (w.owner_agent_id IS NULL OR a.role = 'admin') \
    FROM webhooks w LEFT JOIN agents a ON a.id = w.owner_agent_id";

fn feed_from_row(r: &Row) -> rusqlite::Result<Feed> {
    Ok(Feed {
        id: r.get(0)?,
        url: r.get(1)?,
        secret: r.get(2)?,
        signature_version: r.get(3)?,
        kinds: serde_json::from_str(&r.get::<_, String>(4)?).unwrap_or_default(),
        owner: r.get(5)?,
        sees_all: r.get(6)?,
        delivered_through: r.get(7)?,
        project_wide: r.get(8)?,
    })
}

/// SQL: hook `w` (its owner joined as `a`) is one the dispatcher feeds —
/// active, and its owner (if any) active too.
pub const FED: &str = "w.active = 1 AND (w.owner_agent_id IS NULL OR a.active = 1)";

/// Active hooks whose owner (if any) is active.
pub fn feeds(conn: &Connection) -> Result<Vec<Feed>> {
    let mut stmt = conn.prepare_cached(&format!("{FEED_SELECT} WHERE {FED} ORDER BY w.id"))?;
    let rows = stmt.query_map([READ_ALL], feed_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Hook `id` as the dispatcher would feed it, active or not.
fn feed_of(conn: &Connection, id: i64) -> Result<Option<Feed>> {
    Ok(conn
        .prepare_cached(&format!("{FEED_SELECT} WHERE w.id = ?2"))?
        .query_row(params![READ_ALL, id], feed_from_row)
        .optional()?)
}

/// An event of the log with the hook it is addressed to, if only one.
pub struct LogEvent {
    pub event: Event,
    pub webhook_id: Option<i64>,
}

/// Up to `limit` events after `after`, oldest first.
pub fn events_after(conn: &Connection, after: i64, limit: i64) -> Result<Vec<LogEvent>> {
    // The limit is part of the statement's text: SQLite re-plans (parses
    // again) a statement whose bound LIMIT value changed.
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT id, kind, task_id, audience, payload, webhook_id FROM events \
         WHERE id > ?1 ORDER BY id LIMIT {limit}"
    ))?;
    let rows = stmt.query_map([after], |r| {
        Ok(LogEvent {
            event: super::event_log::from_row(r)?,
            webhook_id: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// A delivery ready to be attempted: the event `event_id` to hook
/// `webhook_id`, after `attempts` attempts.
#[derive(Debug, Clone)]
pub struct Due {
    pub webhook_id: i64,
    pub event_id: i64,
    pub attempts: i64,
    /// Taken from `webhook_retries` (its row records the outcome).
    pub retry: bool,
    pub url: String,
    pub secret: String,
    pub signature_version: String,
    pub event: String,
    pub payload: String,
}

impl Due {
    pub fn key(&self) -> (i64, i64) {
        (self.webhook_id, self.event_id)
    }
}

/// Retries whose time has come, for active hooks, soonest first.
pub fn due_retries(conn: &Connection, now: &str, limit: i64) -> Result<Vec<Due>> {
    // The limit is in the text, as in `events_after`.
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT r.webhook_id, r.event_id, r.attempts, w.url, w.secret, w.signature_version, \
         e.kind, e.payload FROM webhook_retries r \
         JOIN webhooks w ON w.id = r.webhook_id JOIN events e ON e.id = r.event_id \
         LEFT JOIN agents a ON a.id = w.owner_agent_id \
         WHERE r.state = 'pending' AND r.next_attempt_at <= ?1 AND {FED} \
         ORDER BY r.next_attempt_at LIMIT {limit}"
    ))?;
    let rows = stmt.query_map([now], |r| {
        Ok(Due {
            webhook_id: r.get(0)?,
            event_id: r.get(1)?,
            attempts: r.get(2)?,
            retry: true,
            url: r.get(3)?,
            secret: r.get(4)?,
            signature_version: r.get(5)?,
            event: r.get(6)?,
            payload: r.get(7)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// When the next retry of an active hook falls due.
pub fn next_due_at(conn: &Connection) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT MIN(r.next_attempt_at) FROM webhook_retries r \
             JOIN webhooks w ON w.id = r.webhook_id LEFT JOIN agents a ON a.id = w.owner_agent_id \
             WHERE r.state = 'pending' AND {FED}"
        ))?
        .query_row([], |r| r.get(0))?)
}

/// Moves the cursors of the hooks matching `which` (with `?1` = `arg`) to
/// the newest event: they receive what happens from now on.
pub fn skip_to_now(conn: &Connection, which: &str, arg: i64) -> Result<()> {
    conn.execute(
        &format!(
            "UPDATE webhooks SET delivered_through = \
             MAX(delivered_through, {LATEST_EVENT}) WHERE {which}"
        ),
        [arg],
    )?;
    Ok(())
}

/// Moves hook `hook`'s cursor forward to `through` (never back).
pub fn advance(conn: &Connection, hook: i64, through: i64) -> Result<()> {
    conn.prepare_cached(
        "UPDATE webhooks SET delivered_through = ?2 WHERE id = ?1 AND delivered_through < ?2",
    )?
    .execute([hook, through])?;
    Ok(())
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
    /// How long a hook may fail without a single success before it is
    /// disabled (`disable_after_hours`).
    pub disable_after: time::Duration,
}

/// Logs an attempt and moves the delivery on: a first attempt that
/// succeeded leaves nothing else behind; otherwise its retry row records
/// it delivered, retried at `retry_at`, or given up (`retry_at` is `None`
/// once the schedule is spent, and a 410 gives up at once). Keeps the
/// hook's failure clock: a success stops it; a hook failing without a
/// success for `policy.disable_after` is disabled, and so is one whose
/// receiver answered 410 Gone. An attempt for a hook deleted meanwhile is
/// dropped with it.
pub fn record_attempt(
    conn: &Connection,
    due: &Due,
    outcome: &Outcome,
    retry_at: Option<&str>,
    policy: &RetryPolicy,
) -> Result<Option<DeliveryOutcome>> {
    let now = clock::now_string();
    let attempt = due.attempts + 1;
    let success = outcome.success();
    let logged = conn
        .prepare_cached(
            "INSERT INTO webhook_attempts (webhook_id, event_id, attempt, status_code, success, \
             error, duration_ms, created_at) SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8 \
             WHERE EXISTS (SELECT 1 FROM webhooks WHERE id = ?1)",
        )?
        .execute(params![
            due.webhook_id,
            due.event_id,
            attempt,
            outcome.status_code,
            success,
            outcome.error,
            outcome.duration_ms,
            now
        ])?;
    if logged == 0 {
        // The hook was deleted meanwhile: nothing recorded, nothing counted.
        return Ok(None);
    }
    let gone = outcome.status_code == Some(410);
    let state = match (success, retry_at) {
        (true, _) => "delivered",
        (false, Some(_)) if !gone => "pending",
        (false, _) => "failed",
    };
    let counted = match state {
        "delivered" => DeliveryOutcome::Delivered,
        "pending" => DeliveryOutcome::Retrying,
        _ => DeliveryOutcome::GivenUp,
    };
    if success && !due.retry {
        // Usually no row; there is one if this event was fed again after
        // its outcome was lost (the delivery is done either way).
        conn.prepare_cached(
            "UPDATE webhook_retries SET state = 'delivered', updated_at = ?3 \
             WHERE webhook_id = ?1 AND event_id = ?2 AND state = 'pending'",
        )?
        .execute(params![due.webhook_id, due.event_id, now])?;
    } else {
        conn.prepare_cached(
            "INSERT INTO webhook_retries (webhook_id, event_id, state, attempts, next_attempt_at, \
             updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
             ON CONFLICT (webhook_id, event_id) DO UPDATE SET state = excluded.state, \
             attempts = MAX(attempts, excluded.attempts), \
             next_attempt_at = excluded.next_attempt_at, updated_at = excluded.updated_at",
        )?
        .execute(params![
            due.webhook_id,
            due.event_id,
            state,
            attempt,
            retry_at.unwrap_or(&now),
            now
        ])?;
    }
    if success {
        conn.prepare_cached(
            "UPDATE webhooks SET consecutive_failures = 0, failing_since = NULL \
             WHERE id = ?1 AND (consecutive_failures != 0 OR failing_since IS NOT NULL)",
        )?
        .execute([due.webhook_id])?;
    } else if gone {
        conn.prepare_cached(
            "UPDATE webhooks SET active = 0, consecutive_failures = consecutive_failures + 1, \
             failing_since = COALESCE(failing_since, ?2), \
             disabled_reason = 'receiver answered 410 Gone', updated_at = ?2 WHERE id = ?1",
        )?
        .execute(params![due.webhook_id, now])?;
    } else {
        // Disabled once the run of failures, begun at the first failure
        // after a success, has lasted `disable_after`.
        let cutoff = clock::format(clock::now() - policy.disable_after);
        conn.prepare_cached(
            "UPDATE webhooks SET consecutive_failures = consecutive_failures + 1, \
             failing_since = COALESCE(failing_since, ?2), \
             active = CASE WHEN COALESCE(failing_since, ?2) <= ?3 THEN 0 ELSE active END, \
             disabled_reason = CASE WHEN COALESCE(failing_since, ?2) <= ?3 \
               THEN 'failed without a success for ' || ?4 || ' hours' ELSE disabled_reason END, \
             updated_at = ?2 WHERE id = ?1",
        )?
        .execute(params![
            due.webhook_id,
            now,
            cutoff,
            format!("{}", policy.disable_after.as_seconds_f64() / 3600.0)
        ])?;
    }
    Ok(Some(counted))
}
