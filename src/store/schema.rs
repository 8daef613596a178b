//! Schema creation and numbered migrations, tracked with `PRAGMA user_version`.

use anyhow::{bail, Context};
use rusqlite::Connection;

/// The whole version-1 schema, from the repository root.
pub const SCHEMA: &str = include_str!("../../schema.sql");

/// One step of the schema: SQL, then (optionally) code that fills what
/// the SQL made, in the same transaction.
struct Migration {
    sql: &'static str,
    then: Option<fn(&Connection) -> crate::error::Result<()>>,
}

/// Migrations after version 1, in order: entry `i` takes the database from
/// version `i + 1` to `i + 2`. Never edit an entry once released.
const MIGRATIONS: &[Migration] = &[
    Migration {
        sql: WEBHOOK_CURSORS,
        then: None,
    },
    Migration {
        sql: TASK_READERS,
        then: Some(super::readers::rebuild),
    },
    Migration {
        sql: COMMENT_AUTHOR,
        then: None,
    },
    Migration {
        sql: QUEUE,
        then: None,
    },
    Migration {
        sql: OUTAGES_AND_ACCOUNTABILITY,
        then: None,
    },
    Migration {
        sql: NARROWER_QUEUE_INDEXES,
        then: None,
    },
    Migration {
        sql: ORDER_BY_COMPLETION,
        then: Some(super::readers::forget_claim_rows),
    },
    Migration {
        sql: "",
        then: Some(status_check_without_a_list),
    },
];

/// The status rule as schema.sql wrote it, and as version 9 writes it.
const STATUS_CHECK_LIST: &str = "CHECK (status IN ('open', 'in_progress', 'claimed', 'delegated',
                                            'blocked', 'completed', 'failed'))";
const STATUS_CHECK_COMPARISONS: &str = "CHECK (status = 'open' OR status = 'in_progress' \
     OR status = 'claimed' OR status = 'delegated' OR status = 'blocked' \
     OR status = 'completed' OR status = 'failed')";

/// Version 9: the same rule on `tasks.status`, cheaper to check. SQLite
/// evaluates `x IN (a, b, c, …)` of more than two constants by building a
/// temporary b-tree of the values each time the statement runs, and the
/// status check runs at every insert and every status change: two per
/// claim → complete job, 7 % of the writer's instructions for it (counted
/// with callgrind, BENCHMARKS.md). Comparisons joined by `OR` are
/// evaluated in place; both forms compare with the column's BINARY
/// collation, and NULL is refused by `NOT NULL` either way.
///
/// SQLite cannot drop or change an unnamed CHECK. Its documented shortcut
/// (<https://sqlite.org/lang_altertable.html>, "Making Other Kinds Of
/// Table Schema Changes") rewrites the table's stored SQL with
/// `writable_schema` and bumps `schema_version`, so that every connection
/// re-reads it; the docs give it for removing a CHECK, and swapping in an
/// equivalent one is as safe: no stored row can break a rule that accepts
/// exactly what the old one did (hence no `integrity_check` over the
/// table). A table that already has the new rule is left as it is; any
/// other text is refused with an error that says so.
fn status_check_without_a_list(conn: &Connection) -> crate::error::Result<()> {
    let sql: String = conn.query_row(
        "SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = 'tasks'",
        [],
        |r| r.get(0),
    )?;
    if sql.contains(STATUS_CHECK_COMPARISONS) {
        return Ok(());
    }
    if !sql.contains(STATUS_CHECK_LIST) {
        return Err(crate::error::Error::internal(
            "the tasks table's status check is neither the one schema.sql created \
             nor version 9's; leaving it as it is",
        ));
    }
    let sql = sql.replacen(STATUS_CHECK_LIST, STATUS_CHECK_COMPARISONS, 1);
    let version: i64 = conn.pragma_query_value(None, "schema_version", |r| r.get(0))?;
    conn.pragma_update(None, "writable_schema", true)?;
    // `writable_schema` belongs to the connection, not the transaction:
    // switched off again whatever the rewrite did.
    let rewritten = conn
        .execute(
            "UPDATE sqlite_schema SET sql = ?1 WHERE type = 'table' AND name = 'tasks'",
            [sql],
        )
        .and_then(|_| conn.pragma_update(None, "schema_version", version + 1));
    conn.pragma_update(None, "writable_schema", false)?;
    rewritten?;
    Ok(())
}

/// Version 8: cheaper claims. The list order indexes and the completion
/// index were partial on `status`, which every claim changes (open →
/// claimed): SQLite then re-derived the generated `list_key` and deleted
/// and re-inserted the same entry for each claim (a quarter of the
/// SQL cost of a claim → complete job). They are now partial on
/// `completed_at`, which only completing and reopening change; a task is
/// completed exactly when it has a `completed_at` (the completion sets it,
/// a reopen or a failure clears it), and the first two statements make
/// that so for rows written by older versions. Claim holders and
/// completers are read through their columns from now on (see
/// `store::readers`); the reader rows older versions wrote for claims are
/// recomputed.
const ORDER_BY_COMPLETION: &str = "
DROP INDEX tasks_order_open;
DROP INDEX tasks_order_done;
DROP INDEX tasks_completed_at;
UPDATE tasks SET completed_at = updated_at WHERE status = 'completed' AND completed_at IS NULL;
UPDATE tasks SET completed_at = NULL WHERE status != 'completed' AND completed_at IS NOT NULL;
CREATE INDEX tasks_order_open ON tasks(list_key) WHERE completed_at IS NULL;
CREATE INDEX tasks_order_done ON tasks(list_key) WHERE completed_at IS NOT NULL;
CREATE INDEX tasks_completed_at ON tasks(completed_at) WHERE completed_at IS NOT NULL;
";

/// Version 7: cheaper creates. The queue's by-assignee and by-project
/// indexes hold only tasks that have an assignee or a project: every new
/// task is queued, so each cost every create a write even for the tasks
/// (most) that have neither; the walks ask for `= ?`, which implies the
/// narrower condition. The count triggers add with one upsert instead of
/// an insert and an update.
const NARROWER_QUEUE_INDEXES: &str = "
DROP TRIGGER tasks_count_insert;
CREATE TRIGGER tasks_count_insert AFTER INSERT ON tasks
BEGIN
    INSERT INTO task_counts (project_id, agent_id, status, n)
        VALUES (COALESCE(new.project_id, 0), COALESCE(new.assigned_to_agent_id, 0), new.status, 1)
        ON CONFLICT (project_id, agent_id, status) DO UPDATE SET n = n + 1;
END;
DROP TRIGGER tasks_count_update;
CREATE TRIGGER tasks_count_update AFTER UPDATE OF status, project_id, assigned_to_agent_id ON tasks
    WHEN old.status != new.status OR old.project_id IS NOT new.project_id
        OR old.assigned_to_agent_id IS NOT new.assigned_to_agent_id
BEGIN
    UPDATE task_counts SET n = n - 1 WHERE project_id = COALESCE(old.project_id, 0)
        AND agent_id = COALESCE(old.assigned_to_agent_id, 0) AND status = old.status;
    INSERT INTO task_counts (project_id, agent_id, status, n)
        VALUES (COALESCE(new.project_id, 0), COALESCE(new.assigned_to_agent_id, 0), new.status, 1)
        ON CONFLICT (project_id, agent_id, status) DO UPDATE SET n = n + 1;
END;
DROP INDEX tasks_queue_assigned;
CREATE INDEX tasks_queue_assigned ON tasks(assigned_to_agent_id, priority, id)
    WHERE queued AND assigned_to_agent_id IS NOT NULL;
DROP INDEX tasks_queue_project;
CREATE INDEX tasks_queue_project ON tasks(project_id, priority, id)
    WHERE queued AND project_id IS NOT NULL;
";

/// Version 6 (SPEC §5, §9):
///
/// - `webhooks.failing_since`: when the hook's current run of failures
///   began (cleared by a success or by re-enabling it); a hook is disabled
///   after `disable_after_hours` of it, not after a count of attempts.
/// - `tasks.accountable_agent_id`: the agent answerable for the outcome
///   (the SDK's `Task.accountable_agent_id`). Existing tasks get their
///   tree's creator, as new ones would have.
const OUTAGES_AND_ACCOUNTABILITY: &str = "
ALTER TABLE webhooks ADD COLUMN failing_since TEXT;
ALTER TABLE tasks ADD COLUMN accountable_agent_id INTEGER REFERENCES agents(id) ON DELETE SET NULL;
UPDATE tasks SET accountable_agent_id =
    (SELECT r.created_by_agent_id FROM tasks r WHERE r.id = COALESCE(tasks.root_task_id, tasks.id));
";

/// Version 5: the work queue and pages whose cost does not grow with the
/// database (SPEC §10).
///
/// - `queued`: in the claim queue (the state machine's claimable
///   statuses, no claim holder); partial indexes hold only queued tasks,
///   in claim order (priority, then age), unassigned, by assignee and by
///   project. `task_labels` normalizes labels, and its own queue index
///   keeps labelled queued tasks in claim order per label; triggers keep
///   it in step with `tasks`.
/// - `claim_generation`: the fencing token each claim increments.
/// - `abandoned_at`: when a lease last ran out with nobody claiming since
///   (the attention board's abandoned claims).
/// - `recurrence_anchor`: the first due date of a legacy `is_recurring`
///   series, so a clamped date never becomes the next one's anchor.
/// - `task_counts`: counts by project, assignee and status, kept by
///   triggers, so `/stats` does not count a million rows.
/// - `list_key`: the list order as one key, indexed for open tasks and for
///   completed ones, so a page walks an index and stops (and a cursor is a
///   key); `tasks_attention` holds the few tasks the attention board
///   looks for. Indexes on columns most tasks leave empty become partial,
///   so creating a task writes fewer of them.
/// - `recurrences.time_of_day` and `series_start`: the local time and the
///   first date of a series, in its own time zone.
const QUEUE: &str = "
ALTER TABLE tasks ADD COLUMN claim_generation INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN abandoned_at TEXT;
ALTER TABLE tasks ADD COLUMN recurrence_anchor TEXT;
ALTER TABLE tasks ADD COLUMN queued INTEGER GENERATED ALWAYS AS
    (status IN ('open', 'in_progress') AND claimed_by_agent_id IS NULL) VIRTUAL;

CREATE INDEX tasks_queue ON tasks(priority, id) WHERE queued AND assigned_to_agent_id IS NULL;
CREATE INDEX tasks_queue_assigned ON tasks(assigned_to_agent_id, priority, id) WHERE queued;
CREATE INDEX tasks_queue_project ON tasks(project_id, priority, id) WHERE queued;
CREATE INDEX tasks_leases ON tasks(lease_expires_at) WHERE claimed_by_agent_id IS NOT NULL;
-- The list order of SPEC §5 as one sortable key: priority, dated before
-- undated, due date, newest first. A page walks it and stops; a cursor is
-- the last key seen.
ALTER TABLE tasks ADD COLUMN list_key TEXT GENERATED ALWAYS AS
    (printf('%d%d%s%019d', priority, due_date IS NULL, COALESCE(due_date, '9999-99-99'),
            9223372036854775807 - id)) VIRTUAL;
CREATE INDEX tasks_order_open ON tasks(list_key) WHERE status != 'completed';
CREATE INDEX tasks_order_done ON tasks(list_key) WHERE status = 'completed';
CREATE INDEX tasks_attention ON tasks(id) WHERE abandoned_at IS NOT NULL
    OR session_state IN ('errored', 'waiting_input') OR blocked_reason = 'dependency_failed';
CREATE INDEX tasks_completed_at ON tasks(completed_at) WHERE status = 'completed';
CREATE INDEX tasks_due ON tasks(due_date)
    WHERE due_date IS NOT NULL AND status NOT IN ('completed', 'failed');

DROP INDEX tasks_status;
DROP INDEX tasks_assigned_to;
CREATE INDEX tasks_assigned_to ON tasks(assigned_to_agent_id) WHERE assigned_to_agent_id IS NOT NULL;
DROP INDEX tasks_completed_by;
CREATE INDEX tasks_completed_by ON tasks(completed_by_agent_id) WHERE completed_by_agent_id IS NOT NULL;
DROP INDEX tasks_claimed_by;
CREATE INDEX tasks_claimed_by ON tasks(claimed_by_agent_id) WHERE claimed_by_agent_id IS NOT NULL;
DROP INDEX tasks_parent;
CREATE INDEX tasks_parent ON tasks(parent_task_id) WHERE parent_task_id IS NOT NULL;
DROP INDEX tasks_project;
CREATE INDEX tasks_project ON tasks(project_id) WHERE project_id IS NOT NULL;
DROP INDEX tasks_recurrence;
CREATE INDEX tasks_recurrence ON tasks(recurrence_id) WHERE recurrence_id IS NOT NULL;

CREATE TABLE task_labels (
    label    TEXT NOT NULL,
    task_id  INTEGER NOT NULL,
    priority INTEGER NOT NULL,
    queued   INTEGER NOT NULL,
    PRIMARY KEY (label, task_id)
) WITHOUT ROWID;
CREATE INDEX task_labels_task ON task_labels(task_id);
CREATE INDEX task_labels_queue ON task_labels(label, priority, task_id) WHERE queued;
INSERT OR IGNORE INTO task_labels (label, task_id, priority, queued)
    SELECT j.value, t.id, t.priority, t.queued FROM tasks t, json_each(t.labels) j
    WHERE t.labels != '[]';
CREATE TRIGGER tasks_labels_insert AFTER INSERT ON tasks WHEN new.labels != '[]'
BEGIN
    INSERT OR IGNORE INTO task_labels (label, task_id, priority, queued)
        SELECT value, new.id, new.priority, new.queued FROM json_each(new.labels);
END;
CREATE TRIGGER tasks_labels_relabel AFTER UPDATE OF labels ON tasks
    WHEN old.labels != new.labels
BEGIN
    DELETE FROM task_labels WHERE task_id = old.id;
    INSERT OR IGNORE INTO task_labels (label, task_id, priority, queued)
        SELECT value, new.id, new.priority, new.queued FROM json_each(new.labels);
END;
CREATE TRIGGER tasks_labels_queue AFTER UPDATE OF status, claimed_by_agent_id, priority ON tasks
    WHEN new.labels != '[]' AND (old.queued IS NOT new.queued OR old.priority != new.priority)
BEGIN
    UPDATE task_labels SET queued = new.queued, priority = new.priority WHERE task_id = new.id;
END;
CREATE TRIGGER tasks_labels_delete AFTER DELETE ON tasks WHEN old.labels != '[]'
BEGIN
    DELETE FROM task_labels WHERE task_id = old.id;
END;

CREATE TABLE task_counts (
    project_id INTEGER NOT NULL,
    agent_id   INTEGER NOT NULL,
    status     TEXT NOT NULL,
    n          INTEGER NOT NULL,
    PRIMARY KEY (project_id, agent_id, status)
) WITHOUT ROWID;
INSERT INTO task_counts (project_id, agent_id, status, n)
    SELECT COALESCE(project_id, 0), COALESCE(assigned_to_agent_id, 0), status, count(*)
    FROM tasks GROUP BY 1, 2, 3;
CREATE TRIGGER tasks_count_insert AFTER INSERT ON tasks
BEGIN
    INSERT OR IGNORE INTO task_counts (project_id, agent_id, status, n)
        VALUES (COALESCE(new.project_id, 0), COALESCE(new.assigned_to_agent_id, 0), new.status, 0);
    UPDATE task_counts SET n = n + 1 WHERE project_id = COALESCE(new.project_id, 0)
        AND agent_id = COALESCE(new.assigned_to_agent_id, 0) AND status = new.status;
END;
CREATE TRIGGER tasks_count_delete AFTER DELETE ON tasks
BEGIN
    UPDATE task_counts SET n = n - 1 WHERE project_id = COALESCE(old.project_id, 0)
        AND agent_id = COALESCE(old.assigned_to_agent_id, 0) AND status = old.status;
END;
CREATE TRIGGER tasks_count_update AFTER UPDATE OF status, project_id, assigned_to_agent_id ON tasks
    WHEN old.status != new.status OR old.project_id IS NOT new.project_id
        OR old.assigned_to_agent_id IS NOT new.assigned_to_agent_id
BEGIN
    UPDATE task_counts SET n = n - 1 WHERE project_id = COALESCE(old.project_id, 0)
        AND agent_id = COALESCE(old.assigned_to_agent_id, 0) AND status = old.status;
    INSERT OR IGNORE INTO task_counts (project_id, agent_id, status, n)
        VALUES (COALESCE(new.project_id, 0), COALESCE(new.assigned_to_agent_id, 0), new.status, 0);
    UPDATE task_counts SET n = n + 1 WHERE project_id = COALESCE(new.project_id, 0)
        AND agent_id = COALESCE(new.assigned_to_agent_id, 0) AND status = new.status;
END;

ALTER TABLE recurrences ADD COLUMN time_of_day TEXT NOT NULL DEFAULT '00:00';
ALTER TABLE recurrences ADD COLUMN series_start TEXT;
CREATE INDEX recurrences_due ON recurrences(next_due_at) WHERE active;
";

/// Version 4: a comment keeps the display name it was sent with
/// (`author`, SPEC §5); `author_agent_id` stays the caller.
const COMMENT_AUTHOR: &str = "ALTER TABLE comments ADD COLUMN author TEXT;";

/// Version 3: who reads each task through their own work (SPEC §3, §8),
/// kept per task by `store::readers` so every read path asks one indexed
/// table. `heritable` rows pass down to the task's children; a claim's and
/// a waiting task's do not.
///
/// `task_dependencies.shared`: whether the readers of the waiting task
/// read the task it waits for (its result, for `/inputs`): true when the
/// link was made by someone who reads that task through their own work or
/// role, false when they only saw it in their claim queue. Existing links
/// share.
const TASK_READERS: &str = "
ALTER TABLE task_dependencies ADD COLUMN shared INTEGER NOT NULL DEFAULT 1;
-- No foreign keys: rows are written for most writes, and the parent
-- lookups cost more than the rows; deleting a task or an agent deletes
-- its rows (store::readers::forget_task / forget_agent).
CREATE TABLE task_readers (
    task_id   INTEGER NOT NULL,
    agent_id  INTEGER NOT NULL,
    heritable INTEGER NOT NULL,
    PRIMARY KEY (task_id, agent_id)
) WITHOUT ROWID;
CREATE INDEX task_readers_agent ON task_readers(agent_id, task_id);
";

/// Version 2: webhooks read the event log through a cursor instead of a
/// delivery row written with every event.
///
/// `events` is the outbox: every change writes its event in its own
/// transaction either way. Each hook keeps `delivered_through`, the event
/// id up to which everything has been offered to it. Rows in
/// `webhook_retries` are only made for deliveries that need a retry (and
/// keep their state afterwards), keyed by (hook, event); pings and
/// redeliveries are events addressed to one hook (`events.webhook_id`).
/// With the old design every event wrote a delivery row per hook on the
/// request path and every attempt rewrote it: the single writer's extra
/// work cut create throughput by 40-50 % with one hook registered.
const WEBHOOK_CURSORS: &str = "
ALTER TABLE events ADD COLUMN webhook_id INTEGER;
ALTER TABLE webhooks ADD COLUMN delivered_through INTEGER NOT NULL DEFAULT 0;
UPDATE webhooks SET delivered_through = COALESCE((SELECT MAX(id) FROM events), 0);

CREATE TABLE webhook_retries (
    webhook_id      INTEGER NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    event_id        INTEGER NOT NULL,
    state           TEXT NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL,
    next_attempt_at TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    PRIMARY KEY (webhook_id, event_id)
) WITHOUT ROWID;
CREATE INDEX webhook_retries_due ON webhook_retries(next_attempt_at) WHERE state = 'pending';
-- A redelivery made a second row for the same (hook, event): a pending
-- one wins (rows are inserted in this order, later ones replacing).
INSERT OR REPLACE INTO webhook_retries (webhook_id, event_id, state, attempts, next_attempt_at,
                                       updated_at)
    SELECT webhook_id, event_id, state, attempts, next_attempt_at, updated_at
    FROM webhook_deliveries WHERE state != 'delivered' OR attempts > 1
    ORDER BY state = 'pending', id;

CREATE TABLE webhook_attempts_v2 (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id  INTEGER NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    event_id    INTEGER NOT NULL,
    attempt     INTEGER NOT NULL,
    status_code INTEGER,
    success     INTEGER NOT NULL,
    error       TEXT,
    duration_ms INTEGER NOT NULL,
    created_at  TEXT NOT NULL
);
INSERT INTO webhook_attempts_v2 (id, webhook_id, event_id, attempt, status_code, success, error,
                                 duration_ms, created_at)
    SELECT a.id, a.webhook_id, d.event_id, a.attempt, a.status_code, a.success, a.error,
           a.duration_ms, a.created_at
    FROM webhook_attempts a JOIN webhook_deliveries d ON d.id = a.delivery_id;
-- Attempt ids keep counting from where they were (never reused).
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'webhook_attempts_v2', 0 WHERE NOT EXISTS
        (SELECT 1 FROM sqlite_sequence WHERE name = 'webhook_attempts_v2');
UPDATE sqlite_sequence SET seq = MAX(seq, COALESCE(
        (SELECT seq FROM sqlite_sequence WHERE name = 'webhook_attempts'), 0))
    WHERE name = 'webhook_attempts_v2';
DROP TABLE webhook_attempts;
DROP TABLE webhook_deliveries;
ALTER TABLE webhook_attempts_v2 RENAME TO webhook_attempts;
CREATE INDEX webhook_attempts_hook ON webhook_attempts(webhook_id, id);
";

pub const LATEST_VERSION: i64 = 1 + MIGRATIONS.len() as i64;

pub fn migrate(conn: &Connection) -> anyhow::Result<()> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version > LATEST_VERSION {
        bail!(
            "the database is at schema version {version}, newer than this binary \
             understands ({LATEST_VERSION}); use a newer delega"
        );
    }
    if version == 0 {
        let tx = conn.unchecked_transaction()?;
        tx.execute_batch(SCHEMA).context("applying schema.sql")?;
        tx.pragma_update(None, "user_version", 1)?;
        tx.commit()?;
    }
    let mut current: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    while current < LATEST_VERSION {
        let step = &MIGRATIONS[(current - 1) as usize];
        let tx = conn.unchecked_transaction()?;
        tx.execute_batch(step.sql)
            .with_context(|| format!("migrating schema to version {}", current + 1))?;
        if let Some(then) = step.then {
            then(&tx).map_err(|e| {
                // The cause, not the opaque text an internal error shows
                // to API clients: an operator reads this at startup.
                let cause = match e {
                    crate::error::Error::Internal(cause) => cause,
                    other => anyhow::Error::new(other),
                };
                cause.context(format!("migrating schema to version {}", current + 1))
            })?;
        }
        tx.pragma_update(None, "user_version", current + 1)?;
        tx.commit()?;
        current += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tasks_sql(conn: &Connection) -> String {
        conn.query_row(
            "SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = 'tasks'",
            [],
            |r| r.get(0),
        )
        .unwrap()
    }

    /// Puts `from`'s place in the stored SQL of `tasks` to `to`, and the
    /// database back at version 8 (before the status rule's rewrite).
    fn back_to_version_8(conn: &Connection, from: &str, to: &str) {
        let sql = tasks_sql(conn).replacen(from, to, 1);
        let version: i64 = conn
            .pragma_query_value(None, "schema_version", |r| r.get(0))
            .unwrap();
        conn.pragma_update(None, "writable_schema", true).unwrap();
        conn.execute(
            "UPDATE sqlite_schema SET sql = ?1 WHERE type = 'table' AND name = 'tasks'",
            [sql],
        )
        .unwrap();
        conn.pragma_update(None, "schema_version", version + 1)
            .unwrap();
        conn.pragma_update(None, "writable_schema", false).unwrap();
        conn.pragma_update(None, "user_version", 8).unwrap();
    }

    fn user_version(conn: &Connection) -> i64 {
        conn.pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn a_new_database_states_the_status_rule_with_comparisons() {
        let conn = Connection::open_in_memory().unwrap();
        migrate(&conn).unwrap();
        let sql = tasks_sql(&conn);
        assert!(sql.contains(STATUS_CHECK_COMPARISONS), "{sql}");
        assert!(!sql.contains("CHECK (status IN"), "{sql}");
        assert_eq!(user_version(&conn), LATEST_VERSION);
    }

    #[test]
    fn a_status_rule_nobody_wrote_stops_the_upgrade_and_says_why() {
        let conn = Connection::open_in_memory().unwrap();
        migrate(&conn).unwrap();
        back_to_version_8(
            &conn,
            STATUS_CHECK_COMPARISONS,
            "CHECK (length(status) > 0)",
        );
        let error = format!("{:#}", migrate(&conn).unwrap_err());
        assert!(error.contains("migrating schema to version 9"), "{error}");
        assert!(error.contains("status check"), "{error}");
        assert_eq!(user_version(&conn), 8);
        assert!(tasks_sql(&conn).contains("CHECK (length(status) > 0)"));
    }

    #[test]
    fn a_refused_rewrite_changes_nothing_and_leaves_the_schema_read_only() {
        let conn = Connection::open_in_memory().unwrap();
        migrate(&conn).unwrap();
        back_to_version_8(&conn, STATUS_CHECK_COMPARISONS, STATUS_CHECK_LIST);
        // Defensive mode refuses writes to sqlite_schema.
        conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)
            .unwrap();
        let error = format!("{:#}", migrate(&conn).unwrap_err());
        assert!(error.contains("migrating schema to version 9"), "{error}");
        assert_eq!(user_version(&conn), 8);
        assert!(tasks_sql(&conn).contains(STATUS_CHECK_LIST));
        let writable: i64 = conn
            .pragma_query_value(None, "writable_schema", |r| r.get(0))
            .unwrap();
        assert_eq!(writable, 0);
        // Without defensive mode the same database upgrades.
        conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_DEFENSIVE, false)
            .unwrap();
        migrate(&conn).unwrap();
        assert!(tasks_sql(&conn).contains(STATUS_CHECK_COMPARISONS));
        assert_eq!(user_version(&conn), LATEST_VERSION);
    }
}
