//! What the ecosystem's clients send and read (SPEC §5): the MCP server's
//! comment `author`, the examples' look-up of a finished task by search,
//! and SDK 0.6.5's `Task.accountable_agent_id` and `Task.parent_id`.

use serde_json::json;

use crate::helpers::{id_of, TestServer};

#[test]
fn a_comment_keeps_the_author_it_was_sent_with_and_names_the_caller() {
    let server = TestServer::start();
    let (w, w_id) = server.agent("commenter", "worker");
    let t = id_of(&w.create_task(json!({"content": "discuss"})));
    let r = w.post(
        &format!("/api/tasks/{t}/comments"),
        json!({"content": "looks good", "author": "Claude (via MCP)"}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["author"], "Claude (via MCP)");
    assert_eq!(r.body["author_agent_id"], w_id);
    let listed = w.get(&format!("/api/tasks/{t}/comments")).body;
    assert_eq!(listed[0]["author"], "Claude (via MCP)");
    assert_eq!(listed[0]["author_agent_id"], w_id);
    // Without one, the caller's name is shown; too long is a clear 422.
    let r = w.post(
        &format!("/api/tasks/{t}/comments"),
        json!({"content": "plain"}),
    );
    assert_eq!(r.body["author"], "commenter", "{}", r.text);
    let r = w.post(
        &format!("/api/tasks/{t}/comments"),
        json!({"content": "x", "author": "a".repeat(101)}),
    );
    r.assert_error(422);
}

#[test]
fn a_search_finds_a_task_after_it_was_completed_unless_told_otherwise() {
    let server = TestServer::start();
    let (w, _) = server.agent("finisher", "worker");
    let t = id_of(&w.create_task(json!({"content": "Write the quarterly report"})));
    w.post(&format!("/api/tasks/{t}/complete"), json!({}));
    let found = w.get("/api/tasks?search=quarterly").body;
    assert_eq!(found.as_array().unwrap().len(), 1, "{found}");
    assert_eq!(found[0]["id"], t);
    assert_eq!(found[0]["completed"], true);
    assert_eq!(
        w.get("/api/tasks?search=quarterly&completed=false").body,
        json!([])
    );
    assert_eq!(
        w.get("/api/tasks?search=quarterly&include_completed=false")
            .body,
        json!([])
    );
    // A plain list is still a work list.
    assert_eq!(w.get("/api/tasks").body, json!([]));
}

#[test]
fn accountable_agent_defaults_to_the_creator_is_inherited_and_settable_by_name() {
    let server = TestServer::start();
    let (lead, lead_id) = server.agent("lead", "coordinator");
    let (_, helper_id) = server.agent("helper", "worker");
    let (_, owner_id) = server.agent("owner", "worker");
    let root = lead.create_task(json!({"content": "ship it"}));
    assert_eq!(root["accountable_agent_id"], lead_id);
    assert_eq!(root["accountable_to"], "lead");
    assert_eq!(root["accountable_agent"]["name"], "lead");
    // A delegated child inherits its parent's, whoever delegates.
    let child = lead.post(
        &format!("/api/tasks/{}/delegate", root["id"]),
        json!({"content": "part", "assigned_to_agent_id": "helper"}),
    );
    assert_eq!(child.status, 201, "{}", child.text);
    assert_eq!(child.body["accountable_agent_id"], lead_id);
    // Set by name at create, by id on PUT; an unknown agent is a 422.
    let t = lead.create_task(json!({"content": "owned", "accountable_agent_id": "owner"}));
    assert_eq!(t["accountable_agent_id"], owner_id);
    let r = lead.put(
        &format!("/api/tasks/{}", t["id"]),
        json!({"accountable_agent_id": helper_id}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["accountable_to"], "helper");
    let before = server.task_snapshot(id_of(&t));
    let r = lead.put(
        &format!("/api/tasks/{}", t["id"]),
        json!({"accountable_agent_id": "nobody"}),
    );
    r.assert_field_error("accountable_agent_id");
    assert_eq!(server.task_snapshot(id_of(&t)), before, "nothing changed");
    // The project token is nobody: a root it creates has no accountable agent.
    let t = server
        .admin()
        .create_task(json!({"content": "by the token"}));
    assert!(t["accountable_agent_id"].is_null());
}

#[test]
fn parent_id_is_an_alias_of_parent_task_id_both_ways() {
    let server = TestServer::start();
    let admin = server.admin();
    let parent = id_of(&admin.create_task(json!({"content": "parent"})));
    let child = admin.create_task(json!({"content": "child", "parent_id": parent}));
    assert_eq!(child["parent_task_id"], parent);
    assert_eq!(child["parent_id"], parent);
    assert_eq!(child["delegation_depth"], 1);
    // Fixed afterwards, under either name.
    let r = admin.put(
        &format!("/api/tasks/{}", child["id"]),
        json!({"parent_id": parent}),
    );
    r.assert_error(400);
}
