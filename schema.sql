-- Delega schema, version 1. Applied to an empty database at startup
-- (PRAGMA user_version = 0); later changes are numbered migrations in
-- src/store/schema.rs. Timestamps are RFC 3339 UTC text, JSON is text.
-- Ids are AUTOINCREMENT: never reused, because the append-only logs
-- (delegation_events, events) keep naming agents and tasks after they are
-- deleted, and a reused id would inherit their history and visibility.

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE agents (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT NOT NULL UNIQUE COLLATE NOCASE,
    display_name TEXT,
    description  TEXT,
    role         TEXT NOT NULL DEFAULT 'worker'
                 CHECK (role IN ('worker', 'coordinator', 'admin')),
    permissions  TEXT NOT NULL DEFAULT '[]',
    key_hash     TEXT NOT NULL,
    key_prefix   TEXT NOT NULL,
    active       INTEGER NOT NULL DEFAULT 1,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);
CREATE INDEX agents_key_prefix ON agents(key_prefix);

CREATE TABLE projects (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT NOT NULL,
    emoji      TEXT,
    color      TEXT,
    sort_order INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE recurrences (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    content              TEXT NOT NULL,
    description          TEXT,
    project_id           INTEGER REFERENCES projects(id) ON DELETE SET NULL,
    priority             INTEGER NOT NULL DEFAULT 1,
    labels               TEXT NOT NULL DEFAULT '[]',
    assigned_to_agent_id INTEGER REFERENCES agents(id) ON DELETE SET NULL,
    rule_type            TEXT NOT NULL,
    interval             INTEGER NOT NULL DEFAULT 1,
    timezone             TEXT NOT NULL DEFAULT 'UTC',
    anchor_day           INTEGER,
    anchor_month         INTEGER,
    anchor_weekday       INTEGER,
    next_due_at          TEXT,
    last_spawned_at      TEXT,
    active               INTEGER NOT NULL DEFAULT 1,
    skip_if_open         INTEGER NOT NULL DEFAULT 1,
    created_by_agent_id  INTEGER REFERENCES agents(id) ON DELETE SET NULL,
    created_at           TEXT NOT NULL,
    updated_at           TEXT NOT NULL
);

CREATE TABLE tasks (
    id                    INTEGER PRIMARY KEY AUTOINCREMENT,
    content               TEXT NOT NULL,
    description           TEXT,
    project_id            INTEGER REFERENCES projects(id) ON DELETE SET NULL,
    priority              INTEGER NOT NULL DEFAULT 2 CHECK (priority BETWEEN 1 AND 4),
    labels                TEXT NOT NULL DEFAULT '[]',
    due_date              TEXT,
    due_time              TEXT,
    status                TEXT NOT NULL DEFAULT 'open'
                          CHECK (status IN ('open', 'in_progress', 'claimed', 'delegated',
                                            'blocked', 'completed', 'failed')),
    blocked_reason        TEXT,
    completed_at          TEXT,
    created_at            TEXT NOT NULL,
    updated_at            TEXT NOT NULL,
    created_by_agent_id   INTEGER REFERENCES agents(id) ON DELETE SET NULL,
    assigned_to_agent_id  INTEGER REFERENCES agents(id) ON DELETE SET NULL,
    completed_by_agent_id INTEGER REFERENCES agents(id) ON DELETE SET NULL,
    parent_task_id        INTEGER REFERENCES tasks(id) ON DELETE SET NULL,
    -- No foreign key: a chain keeps its root id after the root is deleted.
    root_task_id          INTEGER,
    delegation_depth      INTEGER NOT NULL DEFAULT 0,
    context               TEXT NOT NULL DEFAULT '{}',
    context_version       INTEGER NOT NULL DEFAULT 0,
    claimed_by_agent_id   INTEGER REFERENCES agents(id) ON DELETE SET NULL,
    claimed_at            TEXT,
    lease_expires_at      TEXT,
    last_heartbeat_at     TEXT,
    session_state         TEXT,
    session_state_detail  TEXT,
    handoff               TEXT,
    completion_evidence   TEXT,
    evidence_policy       TEXT,
    recurrence_id         INTEGER REFERENCES recurrences(id) ON DELETE SET NULL,
    failure_reason        TEXT,
    recurring_type        TEXT,
    recurring_interval    INTEGER,
    recurring_string      TEXT,
    is_recurring          INTEGER NOT NULL DEFAULT 0,
    reminder_time         TEXT
);
CREATE INDEX tasks_created_by ON tasks(created_by_agent_id);
CREATE INDEX tasks_assigned_to ON tasks(assigned_to_agent_id);
CREATE INDEX tasks_completed_by ON tasks(completed_by_agent_id);
CREATE INDEX tasks_claimed_by ON tasks(claimed_by_agent_id);
CREATE INDEX tasks_parent ON tasks(parent_task_id);
CREATE INDEX tasks_root ON tasks(root_task_id);
CREATE INDEX tasks_project ON tasks(project_id);
CREATE INDEX tasks_status ON tasks(status);
CREATE INDEX tasks_recurrence ON tasks(recurrence_id);

CREATE TABLE comments (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id         INTEGER NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    author_agent_id INTEGER REFERENCES agents(id) ON DELETE SET NULL,
    content         TEXT NOT NULL,
    created_at      TEXT NOT NULL
);
CREATE INDEX comments_task ON comments(task_id);

CREATE TABLE subtasks (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id    INTEGER NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    content    TEXT NOT NULL,
    completed  INTEGER NOT NULL DEFAULT 0,
    sort_order INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX subtasks_task ON subtasks(task_id);

CREATE TABLE task_links (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id             INTEGER NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    kind                TEXT NOT NULL CHECK (kind IN ('branch', 'commit', 'pr', 'url')),
    repo                TEXT,
    ref                 TEXT NOT NULL,
    url                 TEXT,
    created_by_agent_id INTEGER REFERENCES agents(id) ON DELETE SET NULL,
    created_at          TEXT NOT NULL
);
CREATE UNIQUE INDEX task_links_unique ON task_links(task_id, kind, COALESCE(repo, ''), ref);

CREATE TABLE task_dependencies (
    task_id       INTEGER NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    depends_on_id INTEGER NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    created_at    TEXT NOT NULL,
    PRIMARY KEY (task_id, depends_on_id)
) WITHOUT ROWID;
CREATE INDEX task_dependencies_reverse ON task_dependencies(depends_on_id);

-- Append-only ledger of every handoff, child delegation and assignment.
-- No foreign keys: rows outlive the tasks and agents they mention.
CREATE TABLE delegation_events (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id        INTEGER NOT NULL,
    root_task_id   INTEGER,
    parent_task_id INTEGER,
    kind           TEXT NOT NULL CHECK (kind IN ('handoff', 'delegate', 'assign')),
    from_agent_id  INTEGER,
    to_agent_id    INTEGER,
    actor_agent_id INTEGER,
    note           TEXT,
    created_at     TEXT NOT NULL
);
CREATE INDEX delegation_events_task ON delegation_events(task_id);
CREATE INDEX delegation_events_root ON delegation_events(root_task_id);
CREATE INDEX delegation_events_from ON delegation_events(from_agent_id);
CREATE INDEX delegation_events_actor ON delegation_events(actor_agent_id);
CREATE TRIGGER delegation_events_no_update BEFORE UPDATE ON delegation_events
BEGIN SELECT RAISE(ABORT, 'delegation_events is append-only'); END;
CREATE TRIGGER delegation_events_no_delete BEFORE DELETE ON delegation_events
BEGIN SELECT RAISE(ABORT, 'delegation_events is append-only'); END;

-- Context provenance ledger: one row per top-level key written.
CREATE TABLE context_entries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id         INTEGER NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    key             TEXT NOT NULL,
    value           TEXT NOT NULL,
    version         INTEGER NOT NULL,
    source          TEXT NOT NULL,
    author_agent_id INTEGER,
    author_name     TEXT,
    created_at      TEXT NOT NULL,
    superseded_by   INTEGER,
    superseded_at   TEXT
);
CREATE INDEX context_entries_task_key ON context_entries(task_id, key, id);
-- Full-text index over live entries, for recall (GET /context/search).
CREATE VIRTUAL TABLE context_fts USING fts5(key, value, content='', contentless_delete=1, tokenize='unicode61');

-- The event log and outbox: written in the transaction of the change.
CREATE TABLE events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    kind       TEXT NOT NULL,
    task_id    INTEGER,
    agent_id   INTEGER,
    -- ",3,7," : agents who could read the task when the event happened
    -- (workers' scope); coordinators and admins see every event.
    audience   TEXT NOT NULL DEFAULT ',',
    payload    TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX events_task ON events(task_id);

CREATE TABLE webhooks (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    url                  TEXT NOT NULL,
    events               TEXT NOT NULL,
    secret               TEXT NOT NULL,
    signature_version    TEXT NOT NULL DEFAULT 'v1' CHECK (signature_version IN ('v1', 'v2')),
    description          TEXT,
    owner_agent_id       INTEGER REFERENCES agents(id) ON DELETE CASCADE,
    active               INTEGER NOT NULL DEFAULT 1,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    disabled_reason      TEXT,
    created_at           TEXT NOT NULL,
    updated_at           TEXT NOT NULL
);

-- One row per (webhook, event) to deliver; the dispatcher's queue.
CREATE TABLE webhook_deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id      INTEGER NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    event_id        INTEGER NOT NULL REFERENCES events(id),
    state           TEXT NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries(state, next_attempt_at);
CREATE INDEX webhook_deliveries_hook ON webhook_deliveries(webhook_id, id);

-- Every delivery attempt, as GET /webhooks/{id}/deliveries shows it.
CREATE TABLE webhook_attempts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id INTEGER NOT NULL REFERENCES webhook_deliveries(id) ON DELETE CASCADE,
    webhook_id  INTEGER NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    attempt     INTEGER NOT NULL,
    status_code INTEGER,
    success     INTEGER NOT NULL,
    error       TEXT,
    duration_ms INTEGER NOT NULL,
    created_at  TEXT NOT NULL
);
CREATE INDEX webhook_attempts_hook ON webhook_attempts(webhook_id, id);
