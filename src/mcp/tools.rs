//! The MCP tools (SPEC §11): the names of the ecosystem's MCP server plus
//! `get_task_inputs`, `add_dependency`, `wait_for_task` and
//! `watch_events`. Each tool parses its arguments with the same parser
//! the REST handler uses and calls the same operation in [`crate::ops`]:
//! permissions, events and scoping are the API's, not a second copy.

use std::time::Duration;

use serde_json::value::RawValue;
use serde_json::{json, Map, Value};

use super::schema as s;
use super::text;
use crate::domain::access::Caller;
use crate::domain::input::{AgentRef, Page, Query};
use crate::error::{Error, Result};
use crate::ops::agents::{AgentInput, Creator};
use crate::ops::claims::ClaimInput;
use crate::ops::comments::{LinkInput, NewComment};
use crate::ops::delegation::{ChainShape, Delegated, Delegation};
use crate::ops::recurrences::RecurrenceInput;
use crate::ops::tasks::{Completion, CreateOptions, DedupInput, Failure, ListQuery, TaskInput};
use crate::ops::webhooks::WebhookInput;
use crate::ops::{self, Context};
use crate::store::context::{RecallQuery, Source};
use crate::store::event_log::EventFilter;
use crate::webhooks::sign::SignatureVersion;

/// How a tool may change things (MCP `ToolAnnotations`).
#[derive(Debug, Clone, Copy)]
pub enum Effect {
    /// Reads only.
    Read,
    /// Changes something; the same call twice leaves the same state.
    Idempotent,
    /// Changes something; not idempotent, not destructive.
    Write,
    /// Deletes or otherwise destroys.
    Destructive,
}

/// One tool as `tools/list` shows it.
pub struct Tool {
    pub name: &'static str,
    pub title: &'static str,
    pub description: &'static str,
    pub input: fn() -> Value,
    pub output: Shape,
    pub effect: Effect,
    /// May run as an MCP task (the long waits).
    pub task_support: bool,
}

impl Tool {
    /// The `Tool` object of `tools/list`; `execution` only for the
    /// 2025-11-25 revision, which defines it.
    pub fn describe(&self, with_execution: bool) -> Value {
        let (read_only, destructive, idempotent) = match self.effect {
            Effect::Read => (true, false, true),
            Effect::Idempotent => (false, false, true),
            Effect::Write => (false, false, false),
            Effect::Destructive => (false, true, false),
        };
        let mut t = json!({
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "inputSchema": (self.input)(),
            "outputSchema": self.output.schema(),
            "annotations": {
                "title": self.title,
                "readOnlyHint": read_only,
                "destructiveHint": destructive,
                "idempotentHint": idempotent,
                "openWorldHint": false
            }
        });
        if with_execution {
            t["execution"] = json!({
                "taskSupport": if self.task_support { "optional" } else { "forbidden" }
            });
        }
        t
    }
}

fn claim_output() -> Value {
    s::object(
        &[(
            "task",
            json!({ "anyOf": [s::task(), { "type": "null" }], "description": "The claimed task, or null" }),
        )],
        &["task"],
    )
}
fn wait_output() -> Value {
    s::object(
        &[
            (
                "finished",
                s::boolean("Whether the task completed or failed in time"),
            ),
            ("task", json!({ "anyOf": [s::task(), { "type": "null" }] })),
        ],
        &["finished", "task"],
    )
}
fn deleted_output() -> Value {
    s::object(
        &[
            ("deleted", s::boolean("Always true")),
            ("id", s::integer("The id deleted")),
        ],
        &["deleted", "id"],
    )
}
/// The `outputSchema` of a tool.
#[derive(Clone, Copy)]
pub enum Shape {
    /// A task (SPEC §5).
    Task,
    /// `{<key>: [object…], has_more}`.
    List(&'static str),
    /// An object the description explains.
    Any,
    Of(fn() -> Value),
}

impl Shape {
    pub fn schema(self) -> Value {
        match self {
            Shape::Task => s::task(),
            Shape::List(key) => s::list_of(key, s::any_result()),
            Shape::Any => s::any_result(),
            Shape::Of(f) => f(),
        }
    }
}

fn task_fields() -> Vec<(&'static str, Value)> {
    vec![
        (
            "content",
            s::string("What is to be done (≤ 2000 characters)"),
        ),
        ("description", s::string("Details (≤ 10000 characters)")),
        (
            "priority",
            s::integer_in("1 (most urgent) to 4; default 2", 1, 4),
        ),
        ("labels", s::strings("Up to 50 labels")),
        ("due_date", s::string("YYYY-MM-DD")),
        ("due_time", s::string("HH:MM or HH:MM:SS")),
        ("project_id", s::integer("Project id")),
        ("assigned_to_agent_id", s::agent("Assignee, by id or name")),
        (
            "accountable_agent_id",
            s::agent("Agent answerable for the outcome, by id or name"),
        ),
        ("depends_on", s::integers("Ids of tasks this one waits for")),
        (
            "context",
            s::any_object("Initial context (JSON object); `metadata` is an alias"),
        ),
        ("metadata", s::any_object("Alias of context")),
        (
            "evidence_policy",
            s::one_of(&["required"], "\"required\": completing needs evidence"),
        ),
    ]
}

fn with_task_id(mut fields: Vec<(&'static str, Value)>) -> Vec<(&'static str, Value)> {
    fields.insert(0, s::task_id());
    fields
}

/// Every tool, in the order `tools/list` shows them.
pub static TOOLS: &[Tool] = &[
    Tool {
        name: "list_tasks",
        title: "List tasks",
        description: "Tasks the caller can read, filtered, in list order (open first, by priority and due date). Completed tasks are hidden unless include_completed or completed is given; a search includes them.",
        input: || {
            s::object(
                &[
                    ("status", s::string("Comma-separated statuses: open, in_progress, claimed, delegated, blocked, completed, failed")),
                    ("assigned_to", s::agent("Assignee, by id or name")),
                    ("created_by", s::agent("Creator, by id or name")),
                    ("project_id", s::integer("Project id")),
                    ("label", s::string("A label the tasks carry")),
                    ("labels", s::strings("Labels the tasks all carry (≤ 50)")),
                    ("priority", s::integer_in("Priority", 1, 4)),
                    ("search", s::string("Substring of content or description")),
                    ("completed", s::boolean("Only completed (true) or only unfinished (false)")),
                    ("include_completed", s::boolean("Also list completed tasks")),
                    ("due", s::string("today, upcoming, overdue or a date")),
                    ("claimable", s::boolean("The caller's claim queue, in claim order")),
                    ("claimed", s::boolean("Only tasks with (true) or without (false) a live claim")),
                    ("parent_task_id", s::integer("Children of this task")),
                    ("root_task_id", s::integer("Tasks of this tree")),
                    ("limit", s::integer_in("Page size (default 50)", 1, 1000)),
                    ("offset", s::integer("Rows to skip")),
                    ("cursor", s::string("The next_cursor of the previous page")),
                ],
                &[],
            )
        },
        output: Shape::Of(|| {
            let mut o = s::list_of("tasks", s::task());
            o["properties"]["next_cursor"] = json!({ "type": ["string", "null"] });
            o
        }),
        effect: Effect::Read,
        task_support: false,
    },
    Tool {
        name: "get_task",
        title: "Get a task",
        description: "One task with its comments and links.",
        input: || s::object(&[s::task_id()], &["task_id"]),
        output: Shape::Task,
        effect: Effect::Read,
        task_support: false,
    },
    Tool {
        name: "create_task",
        title: "Create a task",
        description: "Creates a task (a delegated child when parent_task_id is given).",
        input: || {
            let mut f = task_fields();
            f.push(("parent_task_id", s::integer("Create it as a delegated child of this task")));
            s::object(&f, &["content"])
        },
        output: Shape::Task,
        effect: Effect::Write,
        task_support: false,
    },
    Tool {
        name: "update_task",
        title: "Update a task",
        description: "Changes a task's fields; status may be set to open, in_progress or blocked; completed true/false completes or reopens it.",
        input: || {
            let mut f = with_task_id(task_fields());
            f.push(("status", s::one_of(&["open", "in_progress", "blocked"], "New status")));
            f.push(("completed", s::boolean("true completes the task, false reopens it")));
            s::object(&f, &["task_id"])
        },
        output: Shape::Task,
        effect: Effect::Idempotent,
        task_support: false,
    },
    Tool {
        name: "assign_task",
        title: "Assign a task",
        description: "Sets (or clears, with null) a task's assignee.",
        input: || {
            s::object(
                &[s::task_id(), ("agent_id", s::agent("The new assignee, by id or name; null to unassign"))],
                &["task_id", "agent_id"],
            )
        },
        output: Shape::Task,
        effect: Effect::Idempotent,
        task_support: false,
    },
    Tool {
        name: "delegate_task",
        title: "Delegate a task",
        description: "With content: creates a delegated child task (assigned to agent_id if given). Without: hands the task itself to agent_id. Every hop is recorded in the chain.",
        input: || {
            let mut f = with_task_id(task_fields());
            f.insert(1, ("agent_id", s::agent("The agent to hand the task (or the child) to, by id or name")));
            f.push(("note", s::string("Why it is handed off")));
            s::object(&f, &["task_id"])
        },
        output: Shape::Task,
        effect: Effect::Write,
        task_support: false,
    },
    Tool {
        name: "get_task_chain",
        title: "Get the delegation chain",
        description: "The task's tree from its root, with every hop (who handed what to whom, when), limited to what the caller reads.",
        input: || s::object(&[s::task_id()], &["task_id"]),
        output: Shape::Of(|| {
            s::object(
                &[
                    ("task_id", s::integer("The task asked for")),
                    ("root_id", s::integer("Its root")),
                    ("depth", s::integer("Deepest delegation")),
                    ("tasks", json!({ "type": "array", "items": s::task() })),
                    ("events", json!({ "type": "array", "items": { "type": "object" } })),
                ],
                &["task_id", "root_id", "tasks", "events"],
            )
        }),
        effect: Effect::Read,
        task_support: false,
    },
    Tool {
        name: "update_task_context",
        title: "Update a task's context",
        description: "Merges a JSON object into the task's context (RFC 7396 merge patch: null deletes a key). expected_version guards against concurrent writers.",
        input: || {
            s::object(
                &[
                    s::task_id(),
                    ("context", s::any_object("The merge patch")),
                    ("metadata", s::any_object("Alias of context")),
                    ("expected_version", s::integer("Refuse unless the context is at this version")),
                    ("source", s::one_of(&["agent_inferred", "agent_observed", "human_stated", "imported"], "Provenance of the values (human_stated and imported are for admins)")),
                    s::claim_generation(),
                ],
                &["task_id"],
            )
        },
        output: Shape::Task,
        effect: Effect::Idempotent,
        task_support: false,
    },
    Tool {
        name: "get_task_context",
        title: "Get a task's context",
        description: "The task's context object and its version; with include_provenance, who set each key, how and when.",
        input: || {
            s::object(
                &[s::task_id(), ("include_provenance", s::boolean("Add the provenance of each key"))],
                &["task_id"],
            )
        },
        output: Shape::Any,
        effect: Effect::Read,
        task_support: false,
    },
    Tool {
        name: "get_context_history",
        title: "Get a task's context history",
        description: "Every write to the task's context, newest first.",
        input: || {
            s::object(
                &[
                    s::task_id(),
                    ("key", s::string("Only this key")),
                    ("limit", s::integer_in("At most this many entries", 1, 100)),
                ],
                &["task_id"],
            )
        },
        output: Shape::List("entries"),
        effect: Effect::Read,
        task_support: false,
    },
    Tool {
        name: "complete_task",
        title: "Complete a task",
        description: "Marks the task completed, merging context/metadata into its context and storing evidence. Tasks waiting for it open.",
        input: || {
            s::object(
                &[
                    s::task_id(),
                    ("context", s::any_object("Results to merge into the context")),
                    ("metadata", s::any_object("Alias of context")),
                    ("evidence", json!({
                        "type": "array",
                        "description": "[{kind: commit|pr|ci_check|deploy_sha|artifact_url|command_output, ref, summary?}]",
                        "items": { "type": "object" }
                    })),
                    s::claim_generation(),
                ],
                &["task_id"],
            )
        },
        output: Shape::Task,
        effect: Effect::Write,
        task_support: false,
    },
    Tool {
        name: "fail_task",
        title: "Fail a task",
        description: "Marks the task failed with a reason; tasks waiting for it stay blocked (dependency_failed).",
        input: || {
            s::object(
                &[
                    s::task_id(),
                    ("reason", s::string("Why it failed (≤ 2000 characters)")),
                    ("context", s::any_object("What to merge into the context")),
                    s::claim_generation(),
                ],
                &["task_id"],
            )
        },
        output: Shape::Task,
        effect: Effect::Write,
        task_support: false,
    },
    Tool {
        name: "delete_task",
        title: "Delete a task",
        description: "Deletes the task.",
        input: || s::object(&[s::task_id()], &["task_id"]),
        output: Shape::Of(deleted_output),
        effect: Effect::Destructive,
        task_support: false,
    },
    Tool {
        name: "add_comment",
        title: "Comment on a task",
        description: "Adds a comment; author is an optional display name.",
        input: || {
            s::object(
                &[
                    s::task_id(),
                    ("content", s::string("The comment")),
                    ("author", s::string("Display name shown with it (≤ 100 characters)")),
                ],
                &["task_id", "content"],
            )
        },
        output: Shape::Any,
        effect: Effect::Write,
        task_support: false,
    },
    Tool {
        name: "claim_task",
        title: "Claim a task",
        description: "Claims task_id, or the most urgent task of the caller's queue (filtered by project_id and labels). wait_seconds waits for one to appear (long poll); may run as an MCP task.",
        input: || {
            s::object(
                &[
                    ("task_id", s::integer("Claim this task (else the next in the queue)")),
                    ("project_id", s::integer("Only this project's tasks")),
                    ("labels", s::strings("Only tasks with all these labels")),
                    ("lease_seconds", s::integer("Lease length (default 300)")),
                    ("wait_seconds", s::integer_in("Wait this long for a task", 0, 60)),
                ],
                &[],
            )
        },
        output: Shape::Of(claim_output),
        effect: Effect::Write,
        task_support: true,
    },
    Tool {
        name: "heartbeat_task",
        title: "Extend a claim",
        description: "Extends the caller's lease on the task; may set its session state.",
        input: || {
            s::object(
                &[
                    s::task_id(),
                    ("lease_seconds", s::integer("New lease length")),
                    ("state", s::one_of(&["working", "waiting_input", "errored"], "Session state")),
                    ("detail", s::string("Session state detail")),
                    s::claim_generation(),
                ],
                &["task_id"],
            )
        },
        output: Shape::Task,
        effect: Effect::Idempotent,
        task_support: false,
    },
    Tool {
        name: "release_task",
        title: "Release a claim",
        description: "Gives the task back to the queue, keeping a hand-off note for the next worker.",
        input: || {
            s::object(
                &[
                    s::task_id(),
                    ("handoff", s::string("Note for whoever claims it next")),
                    s::claim_generation(),
                ],
                &["task_id"],
            )
        },
        output: Shape::Task,
        effect: Effect::Write,
        task_support: false,
    },
    Tool {
        name: "set_task_state",
        title: "Set a claim's session state",
        description: "Sets the session state of the caller's claim without extending it.",
        input: || {
            s::object(
                &[
                    s::task_id(),
                    ("state", s::one_of(&["working", "waiting_input", "errored"], "Session state")),
                    ("detail", s::string("Detail")),
                    s::claim_generation(),
                ],
                &["task_id", "state"],
            )
        },
        output: Shape::Task,
        effect: Effect::Idempotent,
        task_support: false,
    },
    Tool {
        name: "link_task",
        title: "Link an artifact",
        description: "Links a commit, PR, branch, issue or URL to the task.",
        input: || {
            s::object(
                &[
                    s::task_id(),
                    ("kind", s::string("commit, pr, branch, issue or url")),
                    ("ref", s::string("The reference (sha, number, name)")),
                    ("repo", s::string("Repository")),
                    ("url", s::string("URL")),
                ],
                &["task_id", "kind"],
            )
        },
        output: Shape::Any,
        effect: Effect::Idempotent,
        task_support: false,
    },
    Tool {
        name: "list_task_links",
        title: "List a task's links",
        description: "The artifacts linked to the task.",
        input: || s::object(&[s::task_id()], &["task_id"]),
        output: Shape::List("links"),
        effect: Effect::Read,
        task_support: false,
    },
    Tool {
        name: "find_duplicate_tasks",
        title: "Find duplicate tasks",
        description: "Open tasks the caller reads that resemble content (TF-IDF cosine similarity ≥ threshold).",
        input: || {
            s::object(
                &[
                    ("content", s::string("The text to compare")),
                    ("threshold", s::number("0–1, default 0.6")),
                ],
                &["content"],
            )
        },
        output: Shape::Any,
        effect: Effect::Read,
        task_support: false,
    },
    Tool {
        name: "list_projects",
        title: "List projects",
        description: "Every project.",
        input: s::no_params,
        output: Shape::List("projects"),
        effect: Effect::Read,
        task_support: false,
    },
    Tool {
        name: "get_stats",
        title: "Task statistics",
        description: "Counts of the tasks the caller's default list shows, by status.",
        input: s::no_params,
        output: Shape::Any,
        effect: Effect::Read,
        task_support: false,
    },
    Tool {
        name: "fleet_attention",
        title: "What needs attention",
        description: "Abandoned claims, silent holders, errored or waiting sessions, overdue work, delegation loops and tasks blocked by a failure, each with a reason.",
        input: s::no_params,
        output: Shape::Any,
        effect: Effect::Read,
        task_support: false,
    },
    Tool {
        name: "list_agents",
        title: "List agents",
        description: "The agents, with role and open task count.",
        input: s::no_params,
        output: Shape::List("agents"),
        effect: Effect::Read,
        task_support: false,
    },
    Tool {
        name: "register_agent",
        title: "Register an agent",
        description: "Creates an agent (admins). Its key is shown only if the server reveals keys to MCP.",
        input: || {
            s::object(
                &[
                    ("name", s::string("Unique name (a slug)")),
                    ("display_name", s::string("Display name")),
                    ("description", s::string("What it does")),
                    ("role", s::one_of(&["worker", "coordinator", "admin"], "Role (default worker)")),
                    ("permissions", s::strings("Extra permissions, e.g. tasks:read_all")),
                ],
                &["name"],
            )
        },
        output: Shape::Any,
        effect: Effect::Write,
        task_support: false,
    },
    Tool {
        name: "set_agent_role",
        title: "Set an agent's role",
        description: "Changes an agent's role (admins).",
        input: || {
            s::object(
                &[
                    ("agent_id", s::agent("The agent, by id or name")),
                    ("role", s::one_of(&["worker", "coordinator", "admin"], "The new role")),
                ],
                &["agent_id", "role"],
            )
        },
        output: Shape::Any,
        effect: Effect::Idempotent,
        task_support: false,
    },
    Tool {
        name: "delete_agent",
        title: "Delete an agent",
        description: "Deletes an agent (admins); refused while it has open assigned tasks or claims.",
        input: || s::object(&[("agent_id", s::agent("The agent, by id or name"))], &["agent_id"]),
        output: Shape::Of(deleted_output),
        effect: Effect::Destructive,
        task_support: false,
    },
    Tool {
        name: "create_webhook",
        title: "Register a webhook",
        description: "Registers a webhook (events default to all; signed v2 by default). A generated secret is shown only if the server reveals secrets to MCP.",
        input: || {
            s::object(
                &[
                    ("url", s::string("Where deliveries are POSTed")),
                    ("events", s::strings("Event kinds, or [\"*\"] (default)")),
                    ("secret", s::string("Signing secret (generated if omitted)")),
                    ("signature_version", s::one_of(&["v1", "v2"], "v1: HMAC over the body; v2: over timestamp.body (default)")),
                    ("description", s::string("Description")),
                ],
                &["url"],
            )
        },
        output: Shape::Any,
        effect: Effect::Write,
        task_support: false,
    },
    Tool {
        name: "list_webhooks",
        title: "List webhooks",
        description: "The webhooks the caller manages (secrets never shown).",
        input: s::no_params,
        output: Shape::List("webhooks"),
        effect: Effect::Read,
        task_support: false,
    },
    Tool {
        name: "delete_webhook",
        title: "Delete a webhook",
        description: "Deletes a webhook.",
        input: || s::object(&[("webhook_id", s::integer("The webhook's id"))], &["webhook_id"]),
        output: Shape::Of(deleted_output),
        effect: Effect::Destructive,
        task_support: false,
    },
    Tool {
        name: "list_recurrences",
        title: "List recurring tasks",
        description: "The recurrences the caller reads, with their next due time.",
        input: s::no_params,
        output: Shape::List("recurrences"),
        effect: Effect::Read,
        task_support: false,
    },
    Tool {
        name: "create_recurring_task",
        title: "Create a recurring task",
        description: "A task spawned on a calendar (daily, weekly, monthly, yearly) in an IANA time zone.",
        input: || {
            s::object(
                &[
                    ("content", s::string("The task to spawn")),
                    ("rule_type", s::one_of(&["daily", "weekly", "monthly", "yearly"], "Frequency")),
                    ("interval", s::integer("Every n periods (≥ 1, default 1)")),
                    ("timezone", s::string("IANA time zone, e.g. Europe/Berlin (default UTC)")),
                    ("time_of_day", s::string("HH:MM local time (default 00:00)")),
                    ("anchor_day", s::integer_in("Day of month", 1, 31)),
                    ("anchor_month", s::integer_in("Month", 1, 12)),
                    ("anchor_weekday", s::integer_in("0 = Monday … 6 = Sunday", 0, 6)),
                    ("next_due_at", s::string("First due time (RFC 3339)")),
                    ("description", s::string("Description of the spawned tasks")),
                    ("project_id", s::integer("Project")),
                    ("priority", s::integer_in("Priority", 1, 4)),
                    ("labels", s::strings("Labels")),
                    ("assigned_to_agent_id", s::agent("Assignee of the spawned tasks")),
                    ("skip_if_open", s::boolean("Skip while an instance is still open (default true)")),
                ],
                &["content", "rule_type"],
            )
        },
        output: Shape::Any,
        effect: Effect::Write,
        task_support: false,
    },
    Tool {
        name: "update_recurrence",
        title: "Update a recurrence",
        description: "Changes a recurrence (any field of create_recurring_task, and active).",
        input: || {
            s::object(
                &[
                    ("recurrence_id", s::integer("The recurrence's id")),
                    ("content", s::string("The task to spawn")),
                    ("rule_type", s::one_of(&["daily", "weekly", "monthly", "yearly"], "Frequency")),
                    ("interval", s::integer("Every n periods")),
                    ("timezone", s::string("IANA time zone")),
                    ("time_of_day", s::string("HH:MM local time")),
                    ("next_due_at", s::string("Next due time (RFC 3339)")),
                    ("active", s::boolean("Whether it spawns")),
                    ("skip_if_open", s::boolean("Skip while an instance is open")),
                ],
                &["recurrence_id"],
            )
        },
        output: Shape::Any,
        effect: Effect::Idempotent,
        task_support: false,
    },
    Tool {
        name: "delete_recurrence",
        title: "Delete a recurrence",
        description: "Deletes a recurrence (spawned tasks stay).",
        input: || s::object(&[("recurrence_id", s::integer("The recurrence's id"))], &["recurrence_id"]),
        output: Shape::Of(deleted_output),
        effect: Effect::Destructive,
        task_support: false,
    },
    Tool {
        name: "get_usage",
        title: "Usage",
        description: "Counts and limits of this self-hosted server.",
        input: s::no_params,
        output: Shape::Any,
        effect: Effect::Read,
        task_support: false,
    },
    Tool {
        name: "recall",
        title: "Recall context",
        description: "Full-text search over the live context values of every task the caller reads, best first.",
        input: || {
            s::object(
                &[
                    ("query", s::string("What to look for")),
                    ("project_id", s::integer("Only this project")),
                    ("key", s::string("Only this context key")),
                    ("source", s::one_of(&["agent_inferred", "agent_observed", "human_stated", "imported"], "Only this provenance")),
                    ("limit", s::integer_in("At most this many results (default 20)", 1, 100)),
                    ("include_superseded", s::boolean("Also superseded entries")),
                ],
                &["query"],
            )
        },
        output: Shape::List("results"),
        effect: Effect::Read,
        task_support: false,
    },
    Tool {
        name: "get_task_inputs",
        title: "Get a task's inputs",
        description: "The results (context) of the tasks this one depends on.",
        input: || s::object(&[s::task_id()], &["task_id"]),
        output: Shape::List("inputs"),
        effect: Effect::Read,
        task_support: false,
    },
    Tool {
        name: "add_dependency",
        title: "Add dependencies",
        description: "Makes the task wait for others: it is blocked until they complete, then opens by itself.",
        input: || {
            s::object(
                &[s::task_id(), ("depends_on", s::integers("Ids of the tasks it waits for"))],
                &["task_id", "depends_on"],
            )
        },
        output: Shape::Task,
        effect: Effect::Idempotent,
        task_support: false,
    },
    Tool {
        name: "wait_for_task",
        title: "Wait for a task",
        description: "Waits until the task completes or fails (or timeout_seconds pass) and returns it: delegate, then await the result. May run as an MCP task.",
        input: || {
            s::object(
                &[s::task_id(), ("timeout_seconds", s::integer_in("Give up after this long (default 300)", 1, 3600))],
                &["task_id"],
            )
        },
        output: Shape::Of(wait_output),
        effect: Effect::Read,
        task_support: true,
    },
    Tool {
        name: "watch_events",
        title: "Watch events",
        description: "Events after since (oldest first) on tasks the caller reads; with wait_seconds, waits for the next one if there is none yet.",
        input: || {
            s::object(
                &[
                    ("since", s::integer("Event id to start after (default: the newest)")),
                    ("types", s::strings("Only these event kinds")),
                    ("task_id", s::integer("Only this task's events")),
                    ("limit", s::integer_in("At most this many (default 100)", 1, 1000)),
                    ("wait_seconds", s::integer_in("Wait this long for an event", 0, 60)),
                ],
                &[],
            )
        },
        output: Shape::Of(|| {
            let mut o = s::list_of("events", s::any_result());
            o["properties"]["last_event_id"] = s::integer("Pass as since to continue");
            o
        }),
        effect: Effect::Read,
        task_support: false,
    },
];

/// The tool `name` names: the listed names, and the tutorial's spellings
/// (a `delega_` prefix on any name; `get_chain` for `get_task_chain`).
pub fn find(name: &str) -> Option<&'static Tool> {
    let bare = name.strip_prefix("delega_").unwrap_or(name);
    let bare = if bare == "get_chain" {
        "get_task_chain"
    } else {
        bare
    };
    TOOLS.iter().find(|t| t.name == bare)
}

/// What a tool returns: the JSON of `structuredContent` (kept as the
/// operation serialized it: a task is not parsed and written again) and
/// the text for the model.
pub struct Output {
    pub structured: Box<RawValue>,
    pub text: String,
}

impl Output {
    /// A task, from its JSON.
    fn task(json: &str) -> Result<Output> {
        Ok(Output {
            text: text::task_detail(&serde_json::from_str(json)?),
            structured: RawValue::from_string(json.to_string())?,
        })
    }
    fn other(structured: Value) -> Result<Output> {
        Ok(Output {
            text: text::pretty(&structured),
            structured: serde_json::value::to_raw_value(&structured)?,
        })
    }
}

/// What the server reveals in tool results (SPEC §11): agent keys and
/// webhook secrets are redacted unless the operator set
/// `DELEGA_REVEAL_AGENT_KEYS=1` / `DELEGA_REVEAL_WEBHOOK_SECRETS=1`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Reveal {
    pub agent_keys: bool,
    pub webhook_secrets: bool,
}

impl Reveal {
    pub fn from_env() -> Reveal {
        let on = |k: &str| {
            std::env::var(k).is_ok_and(|v| matches!(v.trim(), "1" | "true" | "yes" | "on"))
        };
        Reveal {
            agent_keys: on("DELEGA_REVEAL_AGENT_KEYS"),
            webhook_secrets: on("DELEGA_REVEAL_WEBHOOK_SECRETS"),
        }
    }
}

fn redact(v: &mut Value, key: &str, env: &str) {
    if let Some(slot) = v.get_mut(key) {
        if slot.is_string() {
            *slot = json!(format!("<redacted: the server sets {env}=1 to show it>"));
        }
    }
}

// ---------------------------------------------------------------- arguments

/// A tool's arguments: a JSON object.
struct Args(Map<String, Value>);

impl Args {
    fn new(v: Value) -> Result<Args> {
        match v {
            Value::Object(m) => Ok(Args(m)),
            Value::Null => Ok(Args(Map::new())),
            _ => Err(Error::validation("arguments", "must be a JSON object")),
        }
    }

    /// An integer id (a number or a numeric string), required.
    fn id(&mut self, key: &str) -> Result<i64> {
        self.opt_id(key)?
            .ok_or_else(|| Error::validation(key, "is required"))
    }

    fn opt_id(&mut self, key: &str) -> Result<Option<i64>> {
        match self.0.remove(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .map(Some)
                .ok_or_else(|| Error::validation(key, "must be an integer")),
            Some(Value::String(s)) => s
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| Error::validation(key, "must be an integer")),
            Some(_) => Err(Error::validation(key, "must be an integer")),
        }
    }

    fn string(&mut self, key: &str) -> Result<Option<String>> {
        match self.0.remove(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(Error::validation(key, "must be a string")),
        }
    }

    fn agent(&mut self, key: &str) -> Result<Option<AgentRef>> {
        match self.0.remove(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .map(|i| Some(AgentRef::Id(i)))
                .ok_or_else(|| Error::validation(key, "must be an agent id or name")),
            Some(Value::String(s)) => Ok(Some(AgentRef::parse(&s))),
            Some(_) => Err(Error::validation(key, "must be an agent id or name")),
        }
    }

    /// What is left, as a body for the REST parsers.
    fn body(self) -> Value {
        Value::Object(self.0)
    }

    /// What is left, as a query string for the REST parsers.
    fn query(self) -> Query {
        Query::from_object(&self.0)
    }
}

fn deleted(id: i64) -> Result<Output> {
    Output::other(json!({ "deleted": true, "id": id }))
}

/// `{<key>: [items], has_more, …extra}`.
fn list(key: &str, items: impl serde::Serialize, has_more: bool, extra: Value) -> Result<Output> {
    let items = serde_json::to_value(items)?;
    let text = text::list(key, &items);
    let mut structured = json!({ key: items, "has_more": has_more });
    if let (Some(s), Value::Object(extra)) = (structured.as_object_mut(), extra) {
        s.extend(extra);
    }
    Ok(Output {
        structured: serde_json::value::to_raw_value(&structured)?,
        text,
    })
}

fn task_output_of(t: &crate::store::tasks::TaskJson) -> Result<Output> {
    Output::task(t.get())
}

/// Calls `tool` for `caller`: the operation's result, or its error (which
/// the protocol turns into an `isError` result).
pub async fn call(
    ctx: &Context,
    reveal: Reveal,
    caller: &Caller,
    tool: &Tool,
    arguments: Value,
) -> Result<Output> {
    let mut a = Args::new(arguments)?;
    let min_lease = ctx.config.queue.min_lease_seconds;
    match tool.name {
        "list_tasks" => {
            let cursor = a.string("cursor")?;
            if !a.0.contains_key("limit") {
                a.0.insert("limit".into(), json!(50));
            }
            let q = a.query();
            let page = Page::from_query(&q)?;
            let lq = ListQuery::parse(&q)?;
            let body = ops::tasks::list(ctx, caller, lq, page, cursor).await?;
            let tasks =
                std::str::from_utf8(&body.json).map_err(|e| Error::internal(e.to_string()))?;
            let structured = format!(
                r#"{{"tasks":{tasks},"has_more":{},"next_cursor":{}}}"#,
                body.more,
                serde_json::to_string(&body.cursor)?
            );
            Ok(Output {
                text: text::task_lines(&serde_json::from_str::<Vec<text::TaskSummary>>(tasks)?),
                structured: RawValue::from_string(structured)?,
            })
        }
        "get_task" => {
            let id = a.id("task_id")?;
            Output::task(&ops::tasks::get(ctx, caller, id).await?)
        }
        "create_task" => {
            let new = TaskInput::parse_new(a.body())?;
            let t = ops::tasks::create(ctx, caller, new, CreateOptions::default()).await?;
            task_output_of(&t)
        }
        "update_task" => {
            let id = a.id("task_id")?;
            let changes = TaskInput::parse_changes(a.body())?;
            let t = ops::tasks::update(ctx, caller, id, changes).await?;
            task_output_of(&t)
        }
        "assign_task" => {
            let id = a.id("task_id")?;
            if !a.0.contains_key("agent_id") {
                return Err(Error::validation(
                    "agent_id",
                    "is required (null unassigns)",
                ));
            }
            let to = a.agent("agent_id")?;
            let changes =
                TaskInput::parse_changes(json!({ "assigned_to_agent_id": to.map(|r| match r {
                AgentRef::Id(i) => json!(i),
                AgentRef::Name(n) => json!(n),
            }) }))?;
            let t = ops::tasks::update(ctx, caller, id, changes).await?;
            task_output_of(&t)
        }
        "delegate_task" => {
            let id = a.id("task_id")?;
            let d = Delegation::parse(a.body())?;
            let t = match ops::delegation::delegate(ctx, caller, id, d).await? {
                Delegated::HandedOff(t) | Delegated::Child(t) => t,
            };
            task_output_of(&t)
        }
        "get_task_chain" => {
            let id = a.id("task_id")?;
            let chain = ops::delegation::chain(ctx, caller, id, ChainShape::Tasks).await?;
            let text = text::chain(&serde_json::from_slice(&chain)?);
            let chain = String::from_utf8(chain).map_err(|e| Error::internal(e.to_string()))?;
            Ok(Output {
                text,
                structured: RawValue::from_string(chain)?,
            })
        }
        "update_task_context" => {
            let id = a.id("task_id")?;
            let source = match a.string("source")? {
                None => Source::AgentInferred,
                Some(s) => Source::parse(&s).ok_or_else(|| {
                    Error::validation(
                        "source",
                        "must be human_stated, agent_inferred, agent_observed or imported",
                    )
                })?,
            };
            let expected_version = a.opt_id("expected_version")?;
            let claim_generation = a.opt_id("claim_generation")?;
            let patch = match (a.0.remove("context"), a.0.remove("metadata")) {
                (Some(Value::Object(p)), _) | (None, Some(Value::Object(p))) => p,
                _ => {
                    return Err(Error::validation(
                        "context",
                        "is required: a JSON object to merge",
                    ))
                }
            };
            let p = ops::context::Patch {
                patch,
                source,
                expected_version,
                claim_generation,
            };
            let t = ops::context::patch(ctx, caller, id, p).await?;
            task_output_of(&t)
        }
        "get_task_context" => {
            let id = a.id("task_id")?;
            let with = matches!(a.0.remove("include_provenance"), Some(Value::Bool(true)));
            Output::other(ops::context::get(ctx, caller, id, with).await?)
        }
        "get_context_history" => {
            let id = a.id("task_id")?;
            let key = a.string("key")?;
            let limit = a.opt_id("limit")?.unwrap_or(100);
            let (entries, next) = ops::context::history(ctx, caller, id, key, limit, None).await?;
            list(
                "entries",
                entries,
                next.is_some(),
                json!({ "next_cursor": next }),
            )
        }
        "complete_task" => {
            let id = a.id("task_id")?;
            let t = ops::tasks::complete(ctx, caller, id, Completion::parse(a.body())?).await?;
            task_output_of(&t)
        }
        "fail_task" => {
            let id = a.id("task_id")?;
            let t = ops::tasks::fail(ctx, caller, id, Failure::parse(a.body())?).await?;
            task_output_of(&t)
        }
        "delete_task" => {
            let id = a.id("task_id")?;
            ops::tasks::delete(ctx, caller, id).await?;
            deleted(id)
        }
        "add_comment" => {
            let id = a.id("task_id")?;
            let c =
                ops::comments::add_comment(ctx, caller, id, NewComment::parse(a.body())?).await?;
            Output::other(serde_json::to_value(c)?)
        }
        "claim_task" => {
            let id = a.opt_id("task_id")?;
            let c = ClaimInput::parse(a.body(), min_lease)?;
            let task = match id {
                Some(id) => Some(ops::claims::claim(ctx, caller, id, c.lease()).await?),
                None => ops::claims::claim_next(ctx, caller, c).await?,
            };
            Ok(match task {
                Some(t) => Output {
                    text: format!(
                        "Claimed {}",
                        text::task_detail(&serde_json::from_str(t.get())?)
                    ),
                    structured: RawValue::from_string(format!(r#"{{"task":{}}}"#, t.get()))?,
                },
                None => Output {
                    text: "No task to claim in the caller's queue.".to_string(),
                    structured: RawValue::from_string(r#"{"task":null}"#.to_string())?,
                },
            })
        }
        "heartbeat_task" => {
            let id = a.id("task_id")?;
            let c = ClaimInput::parse(a.body(), min_lease)?;
            let t = ops::claims::heartbeat(ctx, caller, id, c).await?;
            task_output_of(&t)
        }
        "release_task" => {
            let id = a.id("task_id")?;
            let c = ClaimInput::parse(a.body(), min_lease)?;
            let t = ops::claims::release(ctx, caller, id, c.handoff, c.claim_generation).await?;
            task_output_of(&t)
        }
        "set_task_state" => {
            let id = a.id("task_id")?;
            let c = ClaimInput::parse(a.body(), min_lease)?;
            let state = c
                .state
                .clone()
                .ok_or_else(|| Error::validation("state", "is required"))?;
            let t = ops::claims::set_state(ctx, caller, id, state, c.detail, c.claim_generation)
                .await?;
            task_output_of(&t)
        }
        "link_task" => {
            let id = a.id("task_id")?;
            let (link, _) =
                ops::comments::add_link(ctx, caller, id, LinkInput::parse(a.body())?).await?;
            Output::other(serde_json::to_value(link)?)
        }
        "list_task_links" => {
            let id = a.id("task_id")?;
            list(
                "links",
                ops::comments::list_links(ctx, caller, id).await?,
                false,
                Value::Null,
            )
        }
        "find_duplicate_tasks" => {
            let input = DedupInput::parse(a.body())?;
            let threshold = input.threshold.unwrap_or(0.6);
            Output::other(ops::tasks::dedup(ctx, caller, input.content, threshold).await?)
        }
        "list_projects" => {
            let page = Page::from_query(&Query::default())?;
            list(
                "projects",
                ops::projects::list(ctx, page).await?,
                false,
                Value::Null,
            )
        }
        "get_stats" => Output::other(ops::stats::stats(ctx, caller).await?),
        "fleet_attention" => Output::other(ops::fleet::attention(ctx, caller).await?),
        "list_agents" => {
            let page = Page::from_query(&Query::default())?;
            list(
                "agents",
                ops::agents::list(ctx, caller, page).await?,
                false,
                Value::Null,
            )
        }
        "register_agent" => {
            let input = AgentInput::parse(a.body())?;
            let agent = ops::agents::create(ctx, Creator::Caller(caller.clone()), input).await?;
            let mut v = serde_json::to_value(agent)?;
            if !reveal.agent_keys {
                redact(&mut v, "api_key", "DELEGA_REVEAL_AGENT_KEYS");
            }
            Output::other(v)
        }
        "set_agent_role" => {
            let who = a
                .agent("agent_id")?
                .ok_or_else(|| Error::validation("agent_id", "is required"))?;
            let role = a
                .string("role")?
                .ok_or_else(|| Error::validation("role", "is required"))?;
            let input = AgentInput::parse(json!({ "role": role }));
            Output::other(serde_json::to_value(
                ops::agents::update(ctx, caller, who, input).await?,
            )?)
        }
        "delete_agent" => {
            let who = a
                .agent("agent_id")?
                .ok_or_else(|| Error::validation("agent_id", "is required"))?;
            let id = ops::agents::delete(ctx, caller, who).await?;
            deleted(id)
        }
        "create_webhook" => {
            let w = WebhookInput::parse(a.body())?;
            let hook = ops::webhooks::create(ctx, caller, w, SignatureVersion::V2).await?;
            let mut v = serde_json::to_value(hook)?;
            if !reveal.webhook_secrets {
                redact(&mut v, "secret", "DELEGA_REVEAL_WEBHOOK_SECRETS");
            }
            Output::other(v)
        }
        "list_webhooks" => {
            let page = Page::from_query(&Query::default())?;
            list(
                "webhooks",
                ops::webhooks::list(ctx, caller, page).await?,
                false,
                Value::Null,
            )
        }
        "delete_webhook" => {
            let id = a.id("webhook_id")?;
            ops::webhooks::delete(ctx, caller, id).await?;
            deleted(id)
        }
        "list_recurrences" => {
            let page = Page::from_query(&Query::default())?;
            list(
                "recurrences",
                ops::recurrences::list(ctx, caller, page).await?,
                false,
                Value::Null,
            )
        }
        "create_recurring_task" => {
            let r = RecurrenceInput::parse(a.body())?;
            Output::other(serde_json::to_value(
                ops::recurrences::create(ctx, caller, r).await?,
            )?)
        }
        "update_recurrence" => {
            let id = a.id("recurrence_id")?;
            let r = RecurrenceInput::parse(a.body());
            Output::other(serde_json::to_value(
                ops::recurrences::update(ctx, caller, id, r).await?,
            )?)
        }
        "delete_recurrence" => {
            let id = a.id("recurrence_id")?;
            ops::recurrences::delete(ctx, caller, id).await?;
            deleted(id)
        }
        "get_usage" => Output::other(ops::stats::usage(ctx).await?),
        "recall" => {
            let q = a
                .string("query")?
                .ok_or_else(|| Error::validation("query", "is required"))?;
            crate::domain::input::check_len("query", &q, 500)?;
            let source = a
                .string("source")?
                .map(|s| {
                    Source::parse(&s).ok_or_else(|| {
                        Error::validation(
                            "source",
                            "must be human_stated, agent_inferred, agent_observed or imported",
                        )
                    })
                })
                .transpose()?;
            let rq = RecallQuery {
                project_id: a.opt_id("project_id")?,
                key: a.string("key")?,
                limit: a.opt_id("limit")?.unwrap_or(20),
                include_superseded: matches!(
                    a.0.remove("include_superseded"),
                    Some(Value::Bool(true))
                ),
                source,
                q: q.clone(),
            };
            let results = ops::context::recall(ctx, caller, rq).await?;
            list("results", results, false, json!({ "query": q }))
        }
        "get_task_inputs" => {
            let id = a.id("task_id")?;
            list(
                "inputs",
                ops::dependencies::inputs(ctx, caller, id).await?,
                false,
                Value::Null,
            )
        }
        "add_dependency" => {
            let id = a.id("task_id")?;
            let deps: Vec<i64> = match a.0.remove("depends_on") {
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|v| {
                        v.as_i64()
                            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                            .ok_or_else(|| Error::validation("depends_on", "must be task ids"))
                    })
                    .collect::<Result<_>>()?,
                Some(v) if v.is_i64() => vec![v.as_i64().unwrap_or_default()],
                _ => {
                    return Err(Error::validation(
                        "depends_on",
                        "is required: a list of task ids",
                    ))
                }
            };
            let t = ops::dependencies::add(ctx, caller, id, deps).await?;
            task_output_of(&t)
        }
        "wait_for_task" => {
            let id = a.id("task_id")?;
            let timeout = a.opt_id("timeout_seconds")?.unwrap_or(300);
            if !(1..=3600).contains(&timeout) {
                return Err(Error::validation(
                    "timeout_seconds",
                    "must be between 1 and 3600",
                ));
            }
            let (finished, task) = ops::tasks::wait_until_finished(
                ctx,
                caller,
                id,
                Duration::from_secs(timeout as u64),
            )
            .await?;
            let detail = text::task_detail(&serde_json::from_str(&task)?);
            Ok(Output {
                text: if finished {
                    format!("Finished: {detail}")
                } else {
                    format!("Still not finished after {timeout} s: {detail}")
                },
                structured: RawValue::from_string(format!(
                    r#"{{"finished":{finished},"task":{task}}}"#
                ))?,
            })
        }
        "watch_events" => {
            let since = a.opt_id("since")?;
            let task_id = a.opt_id("task_id")?;
            let limit = a.opt_id("limit")?.unwrap_or(100);
            let wait = a.opt_id("wait_seconds")?.unwrap_or(0);
            if !(1..=1000).contains(&limit) {
                return Err(Error::validation("limit", "must be between 1 and 1000"));
            }
            if !(0..=60).contains(&wait) {
                return Err(Error::validation(
                    "wait_seconds",
                    "must be between 0 and 60",
                ));
            }
            let types = match a.0.remove("types") {
                Some(Value::Array(t)) => t
                    .iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect(),
                _ => Vec::new(),
            };
            let filter = EventFilter { types, task_id };
            let (events, last) = ops::feed::watch(
                ctx,
                caller,
                filter,
                since,
                limit,
                Duration::from_secs(wait as u64),
            )
            .await?;
            let payloads = events
                .iter()
                .map(|e| serde_json::from_str::<Value>(&e.payload))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            list("events", payloads, false, json!({ "last_event_id": last }))
        }
        other => Err(Error::internal(format!(
            "tool {other} has no implementation"
        ))),
    }
}
