//! `delega tasks …`: the task commands of SPEC §11 over `/api/tasks`.

use std::io::Write;

use anyhow::Result;
use clap::{Args, Subcommand};
use serde_json::{json, Map, Value};

use super::output::{
    self, details, id_ref, print_table, table, text, truncate, when, Out, UsageError,
};
use super::Connection;
use crate::client::{Client, ClientError, EventQuery, FollowItem};

/// A task id: `42` or `#42`.
pub fn parse_id(s: &str) -> Result<i64, String> {
    s.trim()
        .trim_start_matches('#')
        .parse::<i64>()
        .map_err(|_| format!("{s:?} is not a task id (a number such as 42)"))
}

/// A JSON object given on the command line (`--context '{"k": 1}'`).
pub fn parse_object(flag: &str, s: &str) -> Result<Value> {
    match serde_json::from_str::<Value>(s) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(UsageError(format!(
            "{flag} must be a JSON object such as '{{\"key\": 1}}'"
        ))
        .into()),
        Err(e) => Err(UsageError(format!("{flag} is not valid JSON: {e}")).into()),
    }
}

#[derive(Subcommand, Debug)]
pub enum TaskCommand {
    /// List tasks: open ones by default, most urgent first.
    List(ListArgs),
    /// Create a task.
    Create(CreateArgs),
    /// Show a task with its description, context and comments.
    Show {
        #[arg(value_parser = parse_id)]
        id: i64,
    },
    /// Change a task's fields.
    Update(UpdateArgs),
    /// Mark a task completed (optionally merging results into its context).
    Complete {
        #[arg(value_parser = parse_id)]
        id: i64,
        /// JSON object merged into the task's context.
        #[arg(long, value_name = "JSON")]
        context: Option<String>,
        /// Evidence of the work, KIND=REF (kinds: commit, pr, ci_check,
        /// deploy_sha, artifact_url, command_output); repeatable.
        #[arg(long, value_name = "KIND=REF")]
        evidence: Vec<String>,
    },
    /// Mark a task failed.
    Fail {
        #[arg(value_parser = parse_id)]
        id: i64,
        /// Why it failed.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Delete a task.
    Delete {
        #[arg(value_parser = parse_id)]
        id: i64,
    },
    /// Hand a task to another agent (--to), or delegate a child task to
    /// it (--content).
    Delegate {
        #[arg(value_parser = parse_id)]
        id: i64,
        /// The agent (name or id); required unless --content is given.
        #[arg(long, required_unless_present = "content")]
        to: Option<String>,
        /// Create a child task with this content instead of handing off.
        #[arg(long)]
        content: Option<String>,
        /// A note recorded with the hand-off.
        #[arg(long)]
        note: Option<String>,
        /// The child's priority (1 = most urgent … 4).
        #[arg(long, requires = "content")]
        priority: Option<i64>,
    },
    /// The delegation chain: every hop (from → to) and the task tree.
    Chain {
        #[arg(value_parser = parse_id)]
        id: i64,
    },
    /// Show a task's context, or merge a JSON object into it (--set).
    Context {
        #[arg(value_parser = parse_id)]
        id: i64,
        /// JSON merge patch to apply (null deletes a key).
        #[arg(long, value_name = "JSON")]
        set: Option<String>,
        /// Refuse the write (409) unless the context is at this version.
        #[arg(long, requires = "set")]
        expected_version: Option<i64>,
        /// Show who wrote each key, and how.
        #[arg(long, conflicts_with = "set")]
        provenance: bool,
    },
    /// Claim a task by id, or the next claimable one from the queue.
    Claim {
        #[arg(value_parser = parse_id)]
        id: Option<i64>,
        /// Lease length in seconds (default 300).
        #[arg(long, value_name = "SECONDS")]
        lease: Option<i64>,
        /// Wait up to this long for a task to appear (queue only, ≤ 60).
        #[arg(long, value_name = "SECONDS", conflicts_with = "id")]
        wait: Option<i64>,
        /// Only tasks with this label (queue only); repeatable.
        #[arg(long, conflicts_with = "id")]
        label: Vec<String>,
        /// Only tasks of this project (queue only).
        #[arg(long, conflicts_with = "id")]
        project: Option<i64>,
    },
    /// Release a claimed task, leaving a hand-off note.
    Release {
        #[arg(value_parser = parse_id)]
        id: i64,
        /// A note for whoever picks it up next.
        #[arg(long)]
        handoff: Option<String>,
    },
    /// Add a comment to a task.
    Comment {
        #[arg(value_parser = parse_id)]
        id: i64,
        /// The comment.
        text: String,
        /// A display name for the author.
        #[arg(long)]
        author: Option<String>,
    },
    /// Follow events live (reconnects by itself, resuming where it
    /// stopped). With --json, one event payload per line.
    Watch {
        /// Event types to show (comma-separated, e.g. task.created,task.completed).
        #[arg(long, value_delimiter = ',')]
        types: Vec<String>,
        /// Only events of this task.
        #[arg(long, value_parser = parse_id)]
        task: Option<i64>,
        /// Start after this event id (replays what came after it).
        #[arg(long)]
        since: Option<i64>,
        /// Stop after this many events.
        #[arg(long)]
        count: Option<usize>,
    },
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// Assigned to this agent (name or id).
    #[arg(long)]
    assigned_to: Option<String>,
    /// Created by this agent (name or id).
    #[arg(long)]
    created_by: Option<String>,
    /// With this status (open, in_progress, claimed, delegated, blocked,
    /// completed, failed).
    #[arg(long)]
    status: Option<String>,
    /// In this project (id).
    #[arg(long)]
    project: Option<i64>,
    /// Having this label; repeatable (all must match).
    #[arg(long)]
    label: Vec<String>,
    /// With this priority (1–4).
    #[arg(long)]
    priority: Option<i64>,
    /// Content or description containing this text.
    #[arg(long)]
    search: Option<String>,
    /// Due: today, upcoming, overdue or a date (YYYY-MM-DD).
    #[arg(long)]
    due: Option<String>,
    /// Children of this task.
    #[arg(long, value_parser = parse_id)]
    parent: Option<i64>,
    /// Include completed tasks.
    #[arg(long, short = 'a')]
    all: bool,
    /// Tasks in your claim queue instead.
    #[arg(long)]
    claimable: bool,
    /// At most this many tasks (0: all of them).
    #[arg(long, default_value_t = 200)]
    limit: usize,
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    /// What to do.
    content: String,
    /// Longer description.
    #[arg(long, short = 'd')]
    description: Option<String>,
    /// 1 = most urgent … 4 (default 2).
    #[arg(long, short = 'p')]
    priority: Option<i64>,
    /// Label; repeatable.
    #[arg(long, short = 'l')]
    label: Vec<String>,
    /// Assign to this agent (name or id).
    #[arg(long)]
    assign: Option<String>,
    /// Project id.
    #[arg(long)]
    project: Option<i64>,
    /// Due date (YYYY-MM-DD).
    #[arg(long)]
    due: Option<String>,
    /// Create as a delegated child of this task.
    #[arg(long, value_parser = parse_id)]
    parent: Option<i64>,
    /// Blocked until these tasks complete; repeatable.
    #[arg(long, value_parser = parse_id)]
    depends_on: Vec<i64>,
    /// Initial context, a JSON object.
    #[arg(long, value_name = "JSON")]
    context: Option<String>,
    /// Completing requires evidence (a commit, PR, CI check or deploy).
    #[arg(long)]
    require_evidence: bool,
    /// Print only the new task's id (for scripts: ID=$(delega tasks create … -q)).
    #[arg(long, short = 'q')]
    quiet: bool,
}

#[derive(Args, Debug)]
pub struct UpdateArgs {
    #[arg(value_parser = parse_id)]
    id: i64,
    /// New content.
    #[arg(long)]
    content: Option<String>,
    /// New description.
    #[arg(long, short = 'd')]
    description: Option<String>,
    /// New priority (1–4).
    #[arg(long, short = 'p')]
    priority: Option<i64>,
    /// Status: open, in_progress or blocked.
    #[arg(long)]
    status: Option<String>,
    /// Replace the labels (repeatable).
    #[arg(long, short = 'l')]
    label: Vec<String>,
    /// Reassign to this agent (name or id).
    #[arg(long)]
    assign: Option<String>,
    /// Project id.
    #[arg(long)]
    project: Option<i64>,
    /// Due date (YYYY-MM-DD).
    #[arg(long)]
    due: Option<String>,
}

/// Runs one `tasks` subcommand.
pub fn run(conn: &Connection, cmd: TaskCommand) -> Result<()> {
    let client = conn.client();
    let out = conn.out();
    match cmd {
        TaskCommand::List(args) => list(&client, out, args),
        TaskCommand::Create(args) => create(&client, out, args),
        TaskCommand::Show { id } => {
            let task = client.task(id)?;
            if !out.json(&task) {
                show(&task);
            }
            Ok(())
        }
        TaskCommand::Update(args) => update(&client, out, args),
        TaskCommand::Complete {
            id,
            context,
            evidence,
        } => {
            let mut body = Map::new();
            if let Some(c) = context {
                body.insert("metadata".into(), parse_object("--context", &c)?);
            }
            if !evidence.is_empty() {
                body.insert("evidence".into(), parse_evidence(&evidence)?);
            }
            let task = client.complete_task(id, &Value::Object(body))?;
            done(out, "Completed", &task);
            Ok(())
        }
        TaskCommand::Fail { id, reason } => {
            let body = match reason {
                Some(r) => json!({ "reason": r }),
                None => json!({}),
            };
            let task = client.fail_task(id, &body)?;
            done(out, "Failed", &task);
            Ok(())
        }
        TaskCommand::Delete { id } => {
            let answer = client.delete_task(id)?;
            if !out.json(&answer) {
                println!("Deleted task #{id}.");
            }
            Ok(())
        }
        TaskCommand::Delegate {
            id,
            to,
            content,
            note,
            priority,
        } => delegate(&client, out, id, to, content, note, priority),
        TaskCommand::Chain { id } => {
            let chain = client.chain(id)?;
            if !out.json(&chain) {
                print_chain(&chain);
            }
            Ok(())
        }
        TaskCommand::Context {
            id,
            set,
            expected_version,
            provenance,
        } => context(&client, out, id, set, expected_version, provenance),
        TaskCommand::Claim {
            id,
            lease,
            wait,
            label,
            project,
        } => {
            let mut body = Map::new();
            if let Some(l) = lease {
                body.insert("lease_seconds".into(), json!(l));
            }
            if let Some(w) = wait {
                body.insert("wait_seconds".into(), json!(w));
            }
            if !label.is_empty() {
                body.insert("labels".into(), json!(label));
            }
            if let Some(p) = project {
                body.insert("project_id".into(), json!(p));
            }
            let answer = client.claim(id, &Value::Object(body))?;
            if out.json(&answer) {
                return Ok(());
            }
            match answer.get("task").filter(|t| !t.is_null()) {
                Some(task) => {
                    println!("Claimed {}", summary(task));
                    println!(
                        "Lease until {}, claim generation {} (pass it to later writes).",
                        text(&task["lease_expires_at"]),
                        text(&task["claim_generation"])
                    );
                }
                None => println!("No claimable task."),
            }
            Ok(())
        }
        TaskCommand::Release { id, handoff } => {
            let body = match handoff {
                Some(h) => json!({ "handoff": h }),
                None => json!({}),
            };
            let task = client.release(id, &body)?;
            done(out, "Released", &task);
            Ok(())
        }
        TaskCommand::Comment {
            id,
            text: t,
            author,
        } => {
            let comment = client.comment(id, &t, author.as_deref())?;
            if !out.json(&comment) {
                println!(
                    "Commented on task #{id} (comment {}).",
                    id_ref(&comment["id"])
                );
            }
            Ok(())
        }
        TaskCommand::Watch {
            types,
            task,
            since,
            count,
        } => watch(
            &client,
            out,
            EventQuery {
                types,
                task_id: task,
                since,
            },
            count,
        ),
    }
}

fn list(client: &Client, out: Out, a: ListArgs) -> Result<()> {
    let mut q: Vec<(&str, String)> = Vec::new();
    let mut add = |k: &'static str, v: Option<String>| {
        if let Some(v) = v {
            q.push((k, v));
        }
    };
    add("assigned_to", a.assigned_to);
    add("created_by", a.created_by);
    add("status", a.status);
    add("project_id", a.project.map(|p| p.to_string()));
    add("priority", a.priority.map(|p| p.to_string()));
    add("search", a.search);
    add("due", a.due);
    add("parent_task_id", a.parent.map(|p| p.to_string()));
    add("include_completed", a.all.then(|| "true".to_string()));
    add("claimable", a.claimable.then(|| "true".to_string()));
    let max = if a.limit == 0 { usize::MAX } else { a.limit };
    add("limit", Some(max.clamp(1, 1000).to_string()));
    for l in a.label {
        q.push(("labels", l));
    }
    let path = crate::client::with_query("/api/tasks", &q);
    let listing = client.list_up_to(&path, max)?;
    let tasks = listing.items;
    if listing.more {
        eprintln!(
            "delega: showing the first {} tasks; --limit N shows more (0: all)",
            tasks.len()
        );
    }
    if out.json(&Value::Array(tasks.clone())) {
        return Ok(());
    }
    if tasks.is_empty() {
        println!("No tasks.");
        return Ok(());
    }
    let mut t = table(&["ID", "PRI", "STATUS", "TASK", "ASSIGNEE", "DUE", "LABELS"]);
    for task in &tasks {
        t.add_row(vec![
            id_ref(&task["id"]),
            text(&task["priority"]),
            status(task),
            truncate(&text(&task["content"]), 60),
            agent_name(task, "assigned_to", "assigned_to_agent_id"),
            text(&task["due_date"]),
            truncate(&text(&task["labels"]), 30),
        ]);
    }
    print_table(&t);
    Ok(())
}

fn create(client: &Client, out: Out, a: CreateArgs) -> Result<()> {
    let mut body = Map::new();
    body.insert("content".into(), json!(a.content));
    let mut set = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            body.insert(k.into(), v);
        }
    };
    set("description", a.description.map(Value::from));
    set("priority", a.priority.map(Value::from));
    set("labels", (!a.label.is_empty()).then(|| json!(a.label)));
    set("assigned_to_agent_id", a.assign.map(Value::from));
    set("project_id", a.project.map(Value::from));
    set("due_date", a.due.map(Value::from));
    set("parent_task_id", a.parent.map(Value::from));
    set(
        "depends_on",
        (!a.depends_on.is_empty()).then(|| json!(a.depends_on)),
    );
    set(
        "evidence_policy",
        a.require_evidence.then(|| json!("required")),
    );
    if let Some(c) = a.context {
        body.insert("context".into(), parse_object("--context", &c)?);
    }
    let task = client.create_task(&Value::Object(body))?;
    if a.quiet && !out.json {
        println!("{}", text(&task["id"]));
    } else {
        done(out, "Created", &task);
    }
    Ok(())
}

fn update(client: &Client, out: Out, a: UpdateArgs) -> Result<()> {
    let mut body = Map::new();
    let mut set = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            body.insert(k.into(), v);
        }
    };
    set("content", a.content.map(Value::from));
    set("description", a.description.map(Value::from));
    set("priority", a.priority.map(Value::from));
    set("status", a.status.map(Value::from));
    set("labels", (!a.label.is_empty()).then(|| json!(a.label)));
    set("assigned_to_agent_id", a.assign.map(Value::from));
    set("project_id", a.project.map(Value::from));
    set("due_date", a.due.map(Value::from));
    if body.is_empty() {
        return Err(UsageError(
            "nothing to change: give at least one of --content, --description, --priority, \
             --status, --label, --assign, --project, --due"
                .into(),
        )
        .into());
    }
    let task = client.update_task(a.id, &Value::Object(body))?;
    done(out, "Updated", &task);
    Ok(())
}

fn delegate(
    client: &Client,
    out: Out,
    id: i64,
    to: Option<String>,
    content: Option<String>,
    note: Option<String>,
    priority: Option<i64>,
) -> Result<()> {
    let mut body = Map::new();
    match &content {
        Some(c) => {
            body.insert("content".into(), json!(c));
            if let Some(to) = &to {
                body.insert("assigned_to_agent_id".into(), json!(to));
            }
            if let Some(p) = priority {
                body.insert("priority".into(), json!(p));
            }
        }
        None => {
            body.insert("agent_id".into(), json!(to));
            if let Some(n) = &note {
                body.insert("note".into(), json!(n));
            }
        }
    }
    let task = client.delegate_task(id, &Value::Object(body))?;
    if out.json(&task) {
        return Ok(());
    }
    if content.is_some() {
        println!("Delegated {}", summary(&task));
    } else {
        println!("Handed off {}", summary(&task));
    }
    Ok(())
}

fn context(
    client: &Client,
    out: Out,
    id: i64,
    set: Option<String>,
    expected_version: Option<i64>,
    provenance: bool,
) -> Result<()> {
    if let Some(patch) = set {
        let patch = parse_object("--set", &patch)?;
        let task = client.patch_context(id, &patch, expected_version)?;
        if !out.json(&task) {
            println!(
                "Context of task #{id} is now at version {}:",
                text(&task["context_version"])
            );
            output::print_json(&task["context"]);
        }
        return Ok(());
    }
    let ctx = client.context(id, provenance)?;
    if out.json(&ctx) {
        return Ok(());
    }
    println!("Context of task #{id}, version {}:", text(&ctx["version"]));
    output::print_json(&ctx["context"]);
    if let Some(Value::Object(p)) = ctx.get("provenance") {
        if !p.is_empty() {
            println!();
            let mut t = table(&["KEY", "VERSION", "SOURCE", "AUTHOR", "WRITTEN"]);
            for (key, e) in p {
                t.add_row(vec![
                    key.clone(),
                    text(&e["version"]),
                    text(&e["source"]),
                    text(&e["author_name"]),
                    when(&e["created_at"]),
                ]);
            }
            print_table(&t);
        }
    }
    Ok(())
}

/// `KIND=REF` pairs as the evidence list of `/complete`.
fn parse_evidence(items: &[String]) -> Result<Value> {
    let mut list = Vec::new();
    for item in items {
        let Some((kind, reference)) = item.split_once('=') else {
            return Err(UsageError(format!(
                "--evidence {item:?}: write KIND=REF, e.g. commit=3f2a91c or pr=https://…/pull/7"
            ))
            .into());
        };
        list.push(json!({ "kind": kind.trim(), "ref": reference.trim() }));
    }
    Ok(Value::Array(list))
}

/// Prints a mutation's result: the task's one-line summary, or its JSON.
fn done(out: Out, verb: &str, task: &Value) {
    if !out.json(task) {
        println!("{verb} {}", summary(task));
    }
}

/// `task #42 "Ship it" (open, priority 1, assigned to research-agent)`.
pub fn summary(task: &Value) -> String {
    let mut facts = vec![
        status(task),
        format!("priority {}", text(&task["priority"])),
    ];
    let assignee = agent_name(task, "assigned_to", "assigned_to_agent_id");
    if assignee != "-" {
        facts.push(format!("assigned to {assignee}"));
    }
    if let Some(p) = task["parent_task_id"].as_i64() {
        facts.push(format!("child of #{p}"));
    }
    format!(
        "task {} {:?} ({})",
        id_ref(&task["id"]),
        truncate(&text(&task["content"]), 80),
        facts.join(", ")
    )
}

/// The status, with the session state for a claimed task.
fn status(task: &Value) -> String {
    let s = text(&task["status"]);
    match task["session_state"].as_str() {
        Some(state) if s == "claimed" => format!("{s}/{state}"),
        _ => s,
    }
}

/// An agent of a task by name (`assigned_to`), else by id, else `-`.
pub fn agent_name(task: &Value, name_key: &str, id_key: &str) -> String {
    match (&task[name_key], &task[id_key]) {
        (Value::String(n), _) => n.clone(),
        (_, Value::Number(id)) => format!("agent #{id}"),
        _ => "-".into(),
    }
}

/// `delega tasks show`.
fn show(task: &Value) {
    println!("Task {}: {}", id_ref(&task["id"]), text(&task["content"]));
    println!();
    let mut rows = vec![
        ("status", status(task)),
        ("priority", text(&task["priority"])),
        (
            "assigned to",
            agent_name(task, "assigned_to", "assigned_to_agent_id"),
        ),
        (
            "created by",
            agent_name(task, "created_by", "created_by_agent_id"),
        ),
    ];
    let accountable = agent_name(task, "accountable_to", "accountable_agent_id");
    if accountable != "-" {
        rows.push(("accountable", accountable));
    }
    if !task["project"].is_null() {
        rows.push(("project", text(&task["project"]["name"])));
    }
    let mut push = |label: &'static str, v: &Value| {
        if !v.is_null() && v.as_array().is_none_or(|a| !a.is_empty()) {
            rows.push((label, text(v)));
        }
    };
    push("labels", &task["labels"]);
    push("due", &task["due_date"]);
    push("depends on", &task["depends_on"]);
    push("handoff", &task["handoff"]);
    push("failure reason", &task["failure_reason"]);
    push("evidence policy", &task["evidence_policy"]);
    let chain = format!(
        "depth {}, parent {}, root {}",
        text(&task["delegation_depth"]),
        id_ref(&task["parent_task_id"]),
        id_ref(&task["root_task_id"]),
    );
    rows.push(("chain", chain));
    if !task["claimed_by_agent_id"].is_null() {
        rows.push((
            "claimed by",
            format!(
                "agent #{} until {} (generation {})",
                text(&task["claimed_by_agent_id"]),
                text(&task["lease_expires_at"]),
                text(&task["claim_generation"])
            ),
        ));
    }
    if !task["completed_at"].is_null() {
        rows.push((
            "completed",
            format!(
                "{} by {}",
                text(&task["completed_at"]),
                agent_name(task, "completed_by", "completed_by_agent_id")
            ),
        ));
    }
    if let Some(evidence) = task["completion_evidence"].as_array() {
        for e in evidence {
            rows.push((
                "evidence",
                format!("{}: {}", text(&e["kind"]), text(&e["ref"])),
            ));
        }
    }
    rows.push(("created", text(&task["created_at"])));
    rows.push(("updated", text(&task["updated_at"])));
    print_table(&details(rows));
    if let Some(d) = task["description"].as_str().filter(|d| !d.is_empty()) {
        println!("\nDescription:\n{d}");
    }
    if task["context"].as_object().is_some_and(|c| !c.is_empty()) {
        println!("\nContext (version {}):", text(&task["context_version"]));
        output::print_json(&task["context"]);
    }
    if let Some(Value::Array(comments)) = task.get("comments") {
        if !comments.is_empty() {
            println!("\nComments:");
            let mut t = table(&["WHEN", "AUTHOR", "COMMENT"]);
            for c in comments {
                let author = match &c["author"] {
                    Value::String(a) => a.clone(),
                    _ => agent_name(c, "author_name", "author_agent_id"),
                };
                t.add_row(vec![
                    when(&c["created_at"]),
                    author,
                    truncate(&text(&c["content"]), 80),
                ]);
            }
            print_table(&t);
        }
    }
}

/// `delega tasks chain`: the hops, then the tree of tasks.
fn print_chain(chain: &Value) {
    let empty = Vec::new();
    let tasks = chain["tasks"].as_array().unwrap_or(&empty);
    let hops = chain["events"].as_array().unwrap_or(&empty);
    let asked = chain["task_id"].as_i64();
    println!(
        "Chain of task {} (root {}, depth {}, {} of {} completed)",
        id_ref(&chain["task_id"]),
        id_ref(&chain["root_id"]),
        text(&chain["depth"]),
        text(&chain["completed_count"]),
        text(&chain["total_count"]),
    );
    println!("\nHops:");
    if hops.is_empty() {
        println!("  (none: the task never changed hands)");
    } else {
        let mut t = table(&["AT", "TASK", "KIND", "FROM", "", "TO", "NOTE"]);
        for h in hops {
            t.add_row(vec![
                when(&h["at"]),
                id_ref(&h["task_id"]),
                text(&h["kind"]),
                hop_agent(h, "from", "from_agent_id"),
                "→".into(),
                hop_agent(h, "to", "to_agent_id"),
                truncate(&text(&h["note"]), 40),
            ]);
        }
        print_table(&t);
    }
    println!("\nTree:");
    for line in tree_lines(tasks, asked) {
        println!("{line}");
    }
}

/// A hop's agent by name, else id; a hop with no agent was made with
/// the project token (no agent identity) or names a deleted agent.
fn hop_agent(hop: &Value, name: &str, id: &str) -> String {
    match (&hop[name], &hop[id]) {
        (Value::String(n), _) => n.clone(),
        (_, Value::Number(id)) => format!("agent #{id}"),
        _ if hop["actor_agent_id"].is_null() => "(project token)".into(),
        _ => "(nobody)".into(),
    }
}

/// The tasks as an indented tree (`├──`, `└──`); tasks whose parent the
/// caller cannot read start trees of their own. The task asked about is
/// marked with `◀`.
pub fn tree_lines(tasks: &[Value], marked: Option<i64>) -> Vec<String> {
    let ids: Vec<i64> = tasks.iter().filter_map(|t| t["id"].as_i64()).collect();
    let parent_of = |t: &Value| t["parent_task_id"].as_i64().filter(|p| ids.contains(p));
    let children = |parent: Option<i64>| -> Vec<&Value> {
        tasks.iter().filter(|t| parent_of(t) == parent).collect()
    };
    fn walk<'a>(
        node: &'a Value,
        prefix: &str,
        last: bool,
        top: bool,
        marked: Option<i64>,
        children: &dyn Fn(Option<i64>) -> Vec<&'a Value>,
        out: &mut Vec<String>,
    ) {
        let branch = if top {
            ""
        } else if last {
            "└── "
        } else {
            "├── "
        };
        let mark = if node["id"].as_i64() == marked {
            "  ◀"
        } else {
            ""
        };
        out.push(format!(
            "{prefix}{branch}{} [{}] {} — {}{mark}",
            id_ref(&node["id"]),
            text(&node["status"]),
            truncate(&text(&node["content"]), 60),
            agent_name(node, "assigned_to", "assigned_to_agent_id"),
        ));
        let kids = children(node["id"].as_i64());
        let child_prefix = if top {
            prefix.to_string()
        } else if last {
            format!("{prefix}    ")
        } else {
            format!("{prefix}│   ")
        };
        for (i, kid) in kids.iter().enumerate() {
            walk(
                kid,
                &child_prefix,
                i + 1 == kids.len(),
                false,
                marked,
                children,
                out,
            );
        }
    }
    let mut out = Vec::new();
    for root in children(None) {
        walk(root, "", true, true, marked, &children, &mut out);
    }
    out
}

/// `delega tasks watch`: one line per event (or its JSON payload), until
/// `count` events or forever; reconnects with `Last-Event-ID`.
fn watch(client: &Client, out: Out, query: EventQuery, count: Option<usize>) -> Result<()> {
    let mut seen = 0usize;
    if count == Some(0) {
        return Ok(());
    }
    let mut connected_once = false;
    let stdout = std::io::stdout();
    for item in client.follow_events(query) {
        match item? {
            FollowItem::Connected => {
                if connected_once {
                    eprintln!("delega: reconnected");
                } else {
                    eprintln!("Watching events at {} (Ctrl-C to stop)…", client.base());
                }
                connected_once = true;
            }
            FollowItem::Disconnected { error, retry_in } => {
                if !connected_once {
                    // Never connected: the server is not there; say so
                    // instead of retrying forever.
                    return Err(error.into());
                }
                let why = match &error {
                    ClientError::Connection { reason, .. } => reason.clone(),
                    other => other.to_string(),
                };
                eprintln!(
                    "delega: lost the event stream ({why}); reconnecting in {:.1} s",
                    retry_in.as_secs_f64()
                );
                std::thread::sleep(retry_in);
            }
            FollowItem::Event(e) => {
                let payload: Value =
                    serde_json::from_str(&e.data).unwrap_or(Value::String(e.data.clone()));
                let line = if out.json {
                    payload.to_string()
                } else {
                    event_line(e.id.as_deref(), e.event.as_deref(), &payload)
                };
                let mut lock = stdout.lock();
                writeln!(lock, "{line}")?;
                lock.flush()?;
                seen += 1;
                if count.is_some_and(|c| seen >= c) {
                    return Ok(());
                }
            }
        }
    }
    Ok(())
}

/// `10:00:01  #17  task.created  #42 "Ship it"  by orchestrator`.
fn event_line(id: Option<&str>, kind: Option<&str>, p: &Value) -> String {
    let time = p["timestamp"]
        .as_str()
        .and_then(|t| t.get(11..19))
        .unwrap_or("--:--:--");
    let kind = p["event"].as_str().or(kind).unwrap_or("event");
    let subject = if p["task"].is_object() {
        let t = &p["task"];
        format!(
            "{} {:?} [{}]",
            id_ref(&t["id"]),
            truncate(&text(&t["content"]), 60),
            text(&t["status"])
        )
    } else if p["agent_subject"].is_object() {
        format!("agent {}", text(&p["agent_subject"]["name"]))
    } else if p["project"].is_object() {
        format!("project {}", text(&p["project"]["name"]))
    } else {
        String::new()
    };
    let by = match p["agent"]["name"].as_str() {
        Some(n) => format!("  by {n}"),
        None => String::new(),
    };
    let reason = match p["reason"].as_str() {
        Some(r) => format!("  ({r})"),
        None => String::new(),
    };
    format!(
        "{time}  #{:<5} {kind:<24} {subject}{by}{reason}",
        id.unwrap_or("?")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tree_nests_children_under_parents() {
        let tasks = vec![
            json!({"id": 1, "content": "root", "status": "delegated", "parent_task_id": null}),
            json!({"id": 2, "content": "a", "status": "open", "parent_task_id": 1, "assigned_to": "x"}),
            json!({"id": 3, "content": "b", "status": "open", "parent_task_id": 1}),
            json!({"id": 4, "content": "a1", "status": "open", "parent_task_id": 2}),
        ];
        let lines = tree_lines(&tasks, Some(4));
        assert_eq!(
            lines,
            vec![
                "#1 [delegated] root — -",
                "├── #2 [open] a — x",
                "│   └── #4 [open] a1 — -  ◀",
                "└── #3 [open] b — -",
            ]
        );
    }

    #[test]
    fn ids_may_carry_a_hash() {
        assert_eq!(parse_id("#42"), Ok(42));
        assert!(parse_id("x").is_err());
    }
}
