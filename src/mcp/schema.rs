//! JSON Schema fragments for tool `inputSchema` and `outputSchema`
//! (JSON Schema 2020-12, the dialect MCP 2025-11-25 names as default).

use serde_json::{json, Map, Value};

/// An object with `properties` (in order) and the `required` ones.
pub fn object(props: &[(&str, Value)], required: &[&str]) -> Value {
    let mut properties = Map::new();
    for (name, schema) in props {
        properties.insert((*name).to_string(), schema.clone());
    }
    let mut o = json!({ "type": "object", "properties": properties });
    if !required.is_empty() {
        o["required"] = json!(required);
    }
    o
}

/// A tool without parameters (the schema MCP recommends).
pub fn no_params() -> Value {
    json!({ "type": "object", "additionalProperties": false })
}

pub fn string(description: &str) -> Value {
    json!({ "type": "string", "description": description })
}

pub fn integer(description: &str) -> Value {
    json!({ "type": "integer", "description": description })
}

pub fn integer_in(description: &str, min: i64, max: i64) -> Value {
    json!({ "type": "integer", "minimum": min, "maximum": max, "description": description })
}

pub fn number(description: &str) -> Value {
    json!({ "type": "number", "description": description })
}

pub fn boolean(description: &str) -> Value {
    json!({ "type": "boolean", "description": description })
}

pub fn one_of(values: &[&str], description: &str) -> Value {
    json!({ "type": "string", "enum": values, "description": description })
}

pub fn strings(description: &str) -> Value {
    json!({ "type": "array", "items": { "type": "string" }, "description": description })
}

pub fn integers(description: &str) -> Value {
    json!({ "type": "array", "items": { "type": "integer" }, "description": description })
}

/// Any JSON object (context, metadata).
pub fn any_object(description: &str) -> Value {
    json!({ "type": "object", "description": description })
}

/// An agent by id or unique name (SPEC §2).
pub fn agent(description: &str) -> Value {
    json!({ "type": ["integer", "string"], "description": description })
}

/// The task id every task tool takes.
pub fn task_id() -> (&'static str, Value) {
    ("task_id", integer("The task's id"))
}

/// The optional fencing token of a claim-guarded write (SPEC §10).
pub fn claim_generation() -> (&'static str, Value) {
    (
        "claim_generation",
        integer("The fencing token of the caller's claim"),
    )
}

/// A task as every answer shows it (SPEC §5); the listed fields are
/// always there, the rest of §5 too.
pub fn task() -> Value {
    json!({
        "type": "object",
        "properties": {
            "id": { "type": "integer" },
            "content": { "type": "string" },
            "status": {
                "type": "string",
                "enum": ["open", "in_progress", "claimed", "delegated", "blocked", "completed", "failed"]
            },
            "priority": { "type": "integer" },
            "assigned_to": { "type": ["string", "null"] },
            "parent_task_id": { "type": ["integer", "null"] },
            "root_task_id": { "type": ["integer", "null"] },
            "delegation_depth": { "type": "integer" },
            "context": { "type": "object" },
            "context_version": { "type": "integer" }
        },
        "required": ["id", "content", "status"]
    })
}

/// `{<key>: [item…]}` plus paging.
pub fn list_of(key: &str, item: Value) -> Value {
    json!({
        "type": "object",
        "properties": {
            key: { "type": "array", "items": item },
            "has_more": { "type": "boolean" }
        },
        "required": [key]
    })
}

/// An object whose shape the tool's description gives.
pub fn any_result() -> Value {
    json!({ "type": "object" })
}
