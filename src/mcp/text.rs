//! The readable text of tool results (SPEC §11): what a model reads
//! first. A task is `[#42] Ship the release` with its status, assignee,
//! place in the chain and context keys; a chain is an indented tree of
//! tasks with the hops under each.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::Value;

fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn int_of(v: &Value, key: &str) -> Option<i64> {
    v.get(key).and_then(Value::as_i64)
}

/// The fields of a task its text shows, read without parsing the rest
/// (the context's values are skipped, only its keys are kept).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct TaskSummary {
    id: i64,
    content: String,
    status: String,
    assigned_to: Option<String>,
    claimed_by: Option<String>,
    priority: Option<i64>,
    due_date: Option<String>,
    delegation_depth: i64,
    parent_task_id: Option<i64>,
    root_task_id: Option<i64>,
    context: Option<BTreeMap<String, IgnoredAny>>,
    context_version: i64,
    depends_on: Vec<i64>,
    failure_reason: Option<String>,
}

/// `[#42] Ship the release — open, assigned to research-agent, priority 1`.
pub fn task_line(t: &TaskSummary) -> String {
    let mut line = format!("[#{}] {}", t.id, t.content);
    let mut facts = vec![t.status.clone()];
    match &t.assigned_to {
        Some(a) => facts.push(format!("assigned to {a}")),
        None => facts.push("unassigned".into()),
    }
    if let Some(c) = &t.claimed_by {
        facts.push(format!("claimed by {c}"));
    }
    if let Some(p) = t.priority {
        facts.push(format!("priority {p}"));
    }
    if let Some(d) = &t.due_date {
        facts.push(format!("due {d}"));
    }
    let _ = write!(line, " — {}", facts.join(", "));
    line
}

/// [`task_line`] plus the place in the chain and the context keys.
pub fn task_detail(t: &TaskSummary) -> String {
    let mut out = task_line(t);
    let depth = t.delegation_depth;
    match t.parent_task_id {
        Some(parent) => {
            let _ = write!(
                out,
                "\n  depth {depth}, parent #{parent}, root #{}",
                t.root_task_id.unwrap_or(parent)
            );
        }
        None => {
            let _ = write!(out, "\n  depth {depth} (a root task)");
        }
    }
    if let Some(ctx) = &t.context {
        let keys: Vec<&str> = ctx.keys().map(String::as_str).collect();
        let version = t.context_version;
        if keys.is_empty() {
            let _ = write!(out, "\n  context: empty (version {version})");
        } else {
            let _ = write!(
                out,
                "\n  context keys: {} (version {version})",
                keys.join(", ")
            );
        }
    }
    if !t.depends_on.is_empty() {
        let ids: Vec<String> = t.depends_on.iter().map(|d| format!("#{d}")).collect();
        let _ = write!(out, "\n  depends on {}", ids.join(", "));
    }
    if let Some(r) = &t.failure_reason {
        let _ = write!(out, "\n  failed: {r}");
    }
    out
}

/// One line per task.
pub fn task_lines(tasks: &[TaskSummary]) -> String {
    if tasks.is_empty() {
        return "No tasks.".to_string();
    }
    let lines: Vec<String> = tasks.iter().map(task_line).collect();
    format!("{} tasks:\n{}", tasks.len(), lines.join("\n"))
}

fn summary(v: &Value) -> TaskSummary {
    TaskSummary::deserialize(v).unwrap_or_default()
}

/// One line per item: tasks as [`task_line`], anything else as JSON.
pub fn list(key: &str, items: &Value) -> String {
    let items = items.as_array().map(Vec::as_slice).unwrap_or_default();
    if items.is_empty() {
        return format!("No {key}.");
    }
    let lines: Vec<String> = items
        .iter()
        .map(|i| {
            if key == "tasks" {
                task_line(&summary(i))
            } else {
                i.to_string()
            }
        })
        .collect();
    format!("{} {key}:\n{}", items.len(), lines.join("\n"))
}

/// The chain of `GET /tasks/{id}/chain` as an indented tree: each task
/// under its parent, each hop (`from → to`, when) under its task.
pub fn chain(c: &Value) -> String {
    let tasks = c
        .get("tasks")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let hops = c
        .get("events")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut children: BTreeMap<Option<i64>, Vec<&Value>> = BTreeMap::new();
    let ids: Vec<i64> = tasks.iter().filter_map(|t| int_of(t, "id")).collect();
    for t in &tasks {
        // A task whose parent the caller cannot see hangs from the top.
        let parent = int_of(t, "parent_task_id").filter(|p| ids.contains(p));
        children.entry(parent).or_default().push(t);
    }
    let mut out = format!(
        "Chain of task #{} (root #{}, depth {}, {}/{} completed)",
        int_of(c, "task_id").unwrap_or_default(),
        int_of(c, "root_id").unwrap_or_default(),
        int_of(c, "depth").unwrap_or_default(),
        int_of(c, "completed_count").unwrap_or_default(),
        int_of(c, "total_count").unwrap_or(tasks.len() as i64),
    );
    fn walk(
        out: &mut String,
        children: &BTreeMap<Option<i64>, Vec<&Value>>,
        hops: &[Value],
        parent: Option<i64>,
        indent: usize,
    ) {
        for t in children.get(&parent).map(Vec::as_slice).unwrap_or_default() {
            let pad = "  ".repeat(indent);
            let _ = write!(out, "\n{pad}{}", task_line(&summary(t)));
            let id = int_of(t, "id");
            for h in hops.iter().filter(|h| int_of(h, "task_id") == id) {
                let _ = write!(
                    out,
                    "\n{pad}  ↳ {}: {} → {} at {}",
                    str_of(h, "kind").unwrap_or("hop"),
                    str_of(h, "from").unwrap_or("(nobody)"),
                    str_of(h, "to").unwrap_or("(nobody)"),
                    str_of(h, "at").unwrap_or("?"),
                );
                if let Some(n) = str_of(h, "note") {
                    let _ = write!(out, " — {n}");
                }
            }
            walk(out, children, hops, id, indent + 1);
        }
    }
    walk(&mut out, &children, &hops, None, 0);
    out
}

/// Any other result: indented JSON.
pub fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_chain_reads_as_a_tree_with_its_hops() {
        let c = json!({
            "task_id": 2, "root_id": 1, "depth": 1, "completed_count": 0, "total_count": 2,
            "tasks": [
                {"id": 1, "content": "Root", "status": "delegated", "assigned_to": "orch", "priority": 2},
                {"id": 2, "content": "Child", "status": "open", "assigned_to": "research", "parent_task_id": 1, "priority": 2}
            ],
            "events": [{"task_id": 2, "kind": "delegate", "from": "orch", "to": "research", "at": "2026-11-30T10:00:00Z"}]
        });
        let text = chain(&c);
        assert_eq!(
            text,
            "Chain of task #2 (root #1, depth 1, 0/2 completed)\n\
             [#1] Root — delegated, assigned to orch, priority 2\n  \
             [#2] Child — open, assigned to research, priority 2\n    \
             ↳ delegate: orch → research at 2026-11-30T10:00:00Z"
        );
    }
}
