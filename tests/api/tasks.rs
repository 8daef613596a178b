//! SPEC §5 tasks: one task's life — create, read, update, complete, fail,
//! comments, subtasks, dedup, legacy recurrence, aliases.

use crate::helpers::{id_of, ids, TestServer};
use serde_json::{json, Value};

const TASK_FIELDS: &[&str] = &[
    "id",
    "content",
    "description",
    "project_id",
    "project",
    "priority",
    "labels",
    "due_date",
    "due_time",
    "status",
    "completed",
    "completed_at",
    "created_at",
    "updated_at",
    "created_by_agent_id",
    "assigned_to_agent_id",
    "completed_by_agent_id",
    "created_by_agent",
    "assigned_to_agent",
    "completed_by_agent",
    "created_by",
    "assigned_to",
    "completed_by",
    "parent_task_id",
    "root_task_id",
    "delegation_depth",
    "context",
    "metadata",
    "context_version",
    "claimed_by_agent_id",
    "claimed_at",
    "lease_expires_at",
    "session_state",
    "session_state_detail",
    "handoff",
    "depends_on",
    "completion_evidence",
    "evidence_policy",
    "subtasks",
    "recurrence_id",
    "failure_reason",
    "recurring_type",
    "recurring_interval",
    "recurring_string",
    "is_recurring",
    "reminder_time",
];

#[test]
fn a_new_task_has_every_documented_field_and_sensible_defaults() {
    let server = TestServer::start();
    let (agent, agent_id) = server.agent("maker", "worker");

    let r = agent.post("/api/tasks", json!({"content": "Write the report"}));

    assert_eq!(r.status, 201, "{}", r.text);
    let t = &r.body;
    for f in TASK_FIELDS {
        assert!(
            t.as_object().unwrap().contains_key(*f),
            "field {f} missing: {t}"
        );
    }
    assert_eq!(t["content"], json!("Write the report"));
    assert_eq!(t["priority"], json!(2));
    assert_eq!(t["status"], json!("open"));
    assert_eq!(t["completed"], json!(false));
    assert_eq!(t["labels"], json!([]));
    assert_eq!(t["root_task_id"], t["id"]);
    assert_eq!(t["delegation_depth"], json!(0));
    assert_eq!(t["parent_task_id"], Value::Null);
    assert_eq!(t["created_by_agent_id"], json!(agent_id));
    assert_eq!(t["created_by"], json!("maker"));
    assert_eq!(t["created_by_agent"]["id"], json!(agent_id));
    assert_eq!(t["created_by_agent"]["name"], json!("maker"));
    assert!(t["created_by_agent"]
        .as_object()
        .unwrap()
        .contains_key("display_name"));
    assert_eq!(t["assigned_to_agent"], Value::Null);
    assert_eq!(t["context"], t["metadata"]);
    assert!(
        t["created_at"].as_str().unwrap().ends_with('Z'),
        "{}",
        t["created_at"]
    );

    // GET by id embeds comments and links.
    let got = agent.get(&format!("/api/tasks/{}", id_of(t)));
    assert_eq!(got.status, 200);
    assert_eq!(got.body["comments"], json!([]));
    assert_eq!(got.body["links"], json!([]));
    for f in TASK_FIELDS {
        assert_eq!(got.body[*f], t[*f], "GET differs from POST in {f}");
    }
}

#[test]
fn create_stores_every_given_field() {
    let server = TestServer::start();
    let (_, helper) = server.agent("helper", "worker");
    let project = server
        .admin()
        .post("/api/projects", json!({"name": "Docs"}));
    let pid = project.body["id"].as_i64().unwrap();

    let t = server.admin().create_task(json!({
        "content": "Full task",
        "description": "all the fields",
        "project_id": pid,
        "priority": 1,
        "labels": ["docs", "urgent"],
        "due_date": "2030-05-06",
        "due_time": "14:30",
        "assigned_to_agent_id": helper,
        "context": {"source": "unit", "n": 3},
    }));

    assert_eq!(t["description"], json!("all the fields"));
    assert_eq!(t["project_id"], json!(pid));
    assert_eq!(t["project"]["name"], json!("Docs"));
    assert_eq!(t["priority"], json!(1));
    assert_eq!(t["labels"], json!(["docs", "urgent"]));
    assert_eq!(t["due_date"], json!("2030-05-06"));
    assert!(t["due_time"].as_str().unwrap().starts_with("14:30"));
    assert_eq!(t["assigned_to_agent_id"], json!(helper));
    assert_eq!(t["assigned_to"], json!("helper"));
    assert_eq!(t["assigned_to_agent"]["name"], json!("helper"));
    assert_eq!(t["context"], json!({"source": "unit", "n": 3}));
    assert_eq!(t["metadata"], json!({"source": "unit", "n": 3}));
}

#[test]
fn metadata_is_an_alias_of_context_in_requests_and_responses() {
    let server = TestServer::start();
    let admin = server.admin();
    let a = admin.create_task(json!({"content": "with metadata", "metadata": {"k": "v"}}));
    assert_eq!(a["context"], json!({"k": "v"}));
    assert_eq!(a["metadata"], json!({"k": "v"}));

    let b = admin.create_task(json!({"content": "with context", "context": {"k": "w"}}));
    assert_eq!(b["metadata"], json!({"k": "w"}));

    let r = admin.put(
        &format!("/api/tasks/{}", id_of(&b)),
        json!({"metadata": {"extra": 1}}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["context"]["extra"], json!(1));
    assert_eq!(r.body["context"], r.body["metadata"]);
    let got = server.task_snapshot(id_of(&b));
    assert_eq!(got["context"]["extra"], json!(1));
    assert_eq!(got["context"], got["metadata"]);
}

#[test]
fn agents_are_referenced_by_id_numeric_string_or_name() {
    let server = TestServer::start();
    let (_, rid) = server.agent("research-agent", "worker");
    let admin = server.admin();
    let cases = [
        (
            "number",
            json!({"content": "a", "assigned_to_agent_id": rid}),
        ),
        (
            "numeric string",
            json!({"content": "b", "assigned_to_agent_id": rid.to_string()}),
        ),
        (
            "name",
            json!({"content": "c", "assigned_to_agent_id": "research-agent"}),
        ),
        (
            "agent_id alias",
            json!({"content": "d", "agent_id": "research-agent"}),
        ),
        ("agent_id number", json!({"content": "e", "agent_id": rid})),
    ];
    for (why, body) in cases {
        let r = admin.post("/api/tasks", body);
        assert_eq!(r.status, 201, "{why}: {}", r.text);
        assert_eq!(r.body["assigned_to_agent_id"], json!(rid), "{why}");
        assert_eq!(r.body["assigned_to"], json!("research-agent"), "{why}");
    }
    // PUT too.
    let t = admin.create_task(json!({"content": "reassign me"}));
    let r = admin.put(
        &format!("/api/tasks/{}", id_of(&t)),
        json!({"assigned_to_agent_id": "research-agent"}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["assigned_to_agent_id"], json!(rid));

    // Unknown agent → 422 naming the field; nothing created.
    let before = server.all_task_ids();
    for body in [
        json!({"content": "x", "assigned_to_agent_id": "nobody-here"}),
        json!({"content": "x", "assigned_to_agent_id": 987654}),
        json!({"content": "x", "assigned_to_agent_id": "987654"}),
    ] {
        admin
            .post("/api/tasks", body.clone())
            .assert_field_error("assigned_to_agent_id");
    }
    let r = admin.post(
        "/api/tasks",
        json!({"content": "x", "agent_id": "nobody-here"}),
    );
    r.assert_error(422);
    let field = r.body["detail"]["field"].as_str().unwrap_or_default();
    assert!(
        field == "agent_id" || field == "assigned_to_agent_id",
        "{}",
        r.text
    );
    assert_eq!(server.all_task_ids(), before);
}

#[test]
fn put_and_patch_update_task_fields() {
    let server = TestServer::start();
    let admin = server.admin();
    let t = admin.create_task(json!({"content": "draft", "labels": ["a"]}));
    let id = id_of(&t);

    let r = admin.put(
        &format!("/api/tasks/{id}"),
        json!({"content": "final", "description": "desc", "priority": 4, "labels": ["b", "c"],
               "due_date": "2031-01-02", "status": "in_progress"}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["content"], json!("final"));
    assert_eq!(r.body["priority"], json!(4));
    assert_eq!(r.body["labels"], json!(["b", "c"]));
    assert_eq!(r.body["status"], json!("in_progress"));

    let r = admin.patch(
        &format!("/api/tasks/{id}"),
        json!({"description": null, "status": "blocked"}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["description"], Value::Null);
    assert_eq!(r.body["status"], json!("blocked"));
    assert_eq!(r.body["content"], json!("final"), "untouched fields stay");

    let got = server.task_snapshot(id);
    assert_eq!(got["content"], json!("final"));
    assert_eq!(got["due_date"], json!("2031-01-02"));
    assert_eq!(got["status"], json!("blocked"));
}

#[test]
fn deleting_a_task_removes_it() {
    let server = TestServer::start();
    let (agent, _) = server.agent("deleter", "worker");
    let t = agent.create_task(json!({"content": "temporary"}));
    let id = id_of(&t);
    let r = agent.delete(&format!("/api/tasks/{id}"));
    assert_eq!(r.status, 200, "{}", r.text);
    agent.get(&format!("/api/tasks/{id}")).assert_error(404);
    server
        .admin()
        .get(&format!("/api/tasks/{id}"))
        .assert_error(404);
    agent.delete(&format!("/api/tasks/{id}")).assert_error(404);
    assert!(server.all_task_ids().is_empty());
}

#[test]
fn completing_sets_status_time_and_attribution_and_merges_metadata_into_context() {
    let server = TestServer::start();
    let (agent, agent_id) = server.agent("finisher", "worker");
    let t = agent.create_task(json!({"content": "compute", "context": {"input": 1}}));
    let id = id_of(&t);
    let v0 = t["context_version"].as_i64().unwrap();

    let r = agent.post(
        &format!("/api/tasks/{id}/complete"),
        json!({"metadata": {"result": 42, "notes": {"ok": true}}}),
    );

    assert_eq!(r.status, 200, "{}", r.text);
    let done = &r.body;
    assert_eq!(done["status"], json!("completed"));
    assert_eq!(done["completed"], json!(true));
    assert!(done["completed_at"].is_string());
    assert_eq!(done["completed_by_agent_id"], json!(agent_id));
    assert_eq!(done["completed_by"], json!("finisher"));
    assert_eq!(done["completed_by_agent"]["name"], json!("finisher"));
    let expected = json!({"input": 1, "result": 42, "notes": {"ok": true}});
    assert_eq!(done["context"], expected);
    assert_eq!(done["metadata"], expected);
    assert!(done["context_version"].as_i64().unwrap() > v0);
    assert_eq!(server.task_snapshot(id)["context"], expected);

    // The context key works as well.
    let t2 = agent.create_task(json!({"content": "second"}));
    let r = agent.post(
        &format!("/api/tasks/{}/complete", id_of(&t2)),
        json!({"context": {"x": "y"}}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["context"], json!({"x": "y"}));

    // No body at all is fine too.
    let t3 = agent.create_task(json!({"content": "third"}));
    let r = agent.raw(
        "POST",
        &format!("/api/tasks/{}/complete", id_of(&t3)),
        None,
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], json!("completed"));
}

#[test]
fn uncomplete_reopens_a_completed_task() {
    let server = TestServer::start();
    let admin = server.admin();
    let id = id_of(&admin.create_task(json!({"content": "again"})));
    assert_eq!(
        admin
            .post(&format!("/api/tasks/{id}/complete"), json!({}))
            .status,
        200
    );

    let r = admin.post(&format!("/api/tasks/{id}/uncomplete"), json!({}));

    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], json!("open"));
    assert_eq!(r.body["completed"], json!(false));
    assert_eq!(r.body["completed_at"], Value::Null);
    assert_eq!(r.body["completed_by_agent_id"], Value::Null);
}

#[test]
fn failing_records_the_reason_and_uncomplete_reopens_it() {
    let server = TestServer::start();
    let (agent, _) = server.agent("unlucky", "worker");
    let id = id_of(&agent.create_task(json!({"content": "fragile"})));

    let r = agent.post(
        &format!("/api/tasks/{id}/fail"),
        json!({"reason": "upstream API is down", "metadata": {"http": 503}}),
    );

    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], json!("failed"));
    assert_eq!(r.body["completed"], json!(false));
    assert_eq!(r.body["failure_reason"], json!("upstream API is down"));
    assert_eq!(r.body["context"]["http"], json!(503));
    assert_eq!(
        server.task_snapshot(id)["failure_reason"],
        json!("upstream API is down")
    );

    let r = agent.post(&format!("/api/tasks/{id}/uncomplete"), json!({}));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], json!("open"));
    assert_eq!(r.body["failure_reason"], Value::Null);

    // A reason is optional.
    let r = agent.post(&format!("/api/tasks/{id}/fail"), json!({}));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], json!("failed"));
}

#[test]
fn put_completed_true_behaves_like_complete_and_false_like_uncomplete() {
    let server = TestServer::start();
    let (agent, agent_id) = server.agent("putter", "worker");
    let id = id_of(&agent.create_task(json!({"content": "toggle me"})));

    let r = agent.put(&format!("/api/tasks/{id}"), json!({"completed": true}));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], json!("completed"));
    assert_eq!(r.body["completed"], json!(true));
    assert!(r.body["completed_at"].is_string());
    assert_eq!(r.body["completed_by_agent_id"], json!(agent_id));
    let stored = server.task_snapshot(id);
    assert_eq!(stored["status"], json!("completed"));
    assert_eq!(stored["completed_by"], json!("putter"));

    let r = agent.put(&format!("/api/tasks/{id}"), json!({"completed": false}));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], json!("open"));
    assert_eq!(r.body["completed_at"], Value::Null);
    assert_eq!(r.body["completed_by_agent_id"], Value::Null);
}

#[test]
fn chain_fields_in_a_create_or_update_body_are_a_400_and_change_nothing() {
    let server = TestServer::start();
    let admin = server.admin();
    let parent = id_of(&admin.create_task(json!({"content": "parent"})));
    let before_ids = server.all_task_ids();

    for (why, body) in [
        (
            "root_task_id",
            json!({"content": "x", "root_task_id": parent}),
        ),
        (
            "root_task_id null",
            json!({"content": "x", "root_task_id": null}),
        ),
        (
            "delegation_depth 1",
            json!({"content": "x", "delegation_depth": 1}),
        ),
        (
            "delegation_depth 5 with parent",
            json!({"content": "x", "delegation_depth": 5, "parent_task_id": parent}),
        ),
    ] {
        let r = admin.post("/api/tasks", body);
        assert_eq!(r.status, 400, "POST {why}: {}", r.text);
        r.assert_error(400);
    }
    assert_eq!(server.all_task_ids(), before_ids);

    // delegation_depth 0 is harmless on create.
    let r = admin.post(
        "/api/tasks",
        json!({"content": "depth zero", "delegation_depth": 0}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let id = id_of(&r.body);

    let before = server.task_snapshot(id);
    for (why, body) in [
        ("parent_task_id", json!({"parent_task_id": parent})),
        ("parent_task_id null", json!({"parent_task_id": null})),
        ("root_task_id", json!({"root_task_id": parent})),
        ("delegation_depth", json!({"delegation_depth": 0})),
        (
            "with other fields",
            json!({"content": "sneaky", "delegation_depth": 2}),
        ),
    ] {
        for method in ["PUT", "PATCH"] {
            let r = admin.send(method, &format!("/api/tasks/{id}"), Some(body.clone()));
            assert_eq!(r.status, 400, "{method} {why}: {}", r.text);
            r.assert_error(400);
        }
    }
    assert_eq!(server.task_snapshot(id), before);
}

#[test]
fn comments_are_added_listed_embedded_and_deleted() {
    let server = TestServer::start();
    let (agent, agent_id) = server.agent("commenter", "worker");
    let id = id_of(&agent.create_task(json!({"content": "discuss"})));

    let r = agent.post(
        &format!("/api/tasks/{id}/comments"),
        json!({"content": "First thought"}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let cid = id_of(&r.body);
    assert_eq!(r.body["content"], json!("First thought"));
    let by_token = server.admin().post(
        &format!("/api/tasks/{id}/comments"),
        json!({"content": "From the token"}),
    );
    assert_eq!(by_token.status, 201, "{}", by_token.text);

    let list = agent.get(&format!("/api/tasks/{id}/comments"));
    assert_eq!(list.status, 200);
    let comments = list.body.as_array().unwrap();
    assert_eq!(comments.len(), 2);
    assert_eq!(comments[0]["content"], json!("First thought"));
    assert_eq!(comments[0]["author_agent_id"], json!(agent_id));
    assert_eq!(comments[1]["author_agent_id"], Value::Null);

    let task = server.task_snapshot(id);
    assert_eq!(task["comments"].as_array().unwrap().len(), 2);

    let r = agent.delete(&format!("/api/tasks/{id}/comments/{cid}"));
    assert_eq!(r.status, 200, "{}", r.text);
    let left = agent.get(&format!("/api/tasks/{id}/comments")).body;
    assert_eq!(ids(&left), vec![id_of(&by_token.body)]);
    agent
        .delete(&format!("/api/tasks/{id}/comments/{cid}"))
        .assert_error(404);
    agent
        .post(
            &format!("/api/tasks/{id}/comments"),
            json!({"content": "  "}),
        )
        .assert_field_error("content");
}

#[test]
fn subtasks_are_added_toggled_updated_and_deleted() {
    let server = TestServer::start();
    let (agent, _) = server.agent("checklister", "worker");
    let id = id_of(&agent.create_task(json!({"content": "with steps"})));

    let r = agent.post(
        &format!("/api/tasks/{id}/subtasks"),
        json!({"content": "step 1"}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let sid = id_of(&r.body);
    assert_eq!(r.body["completed"], json!(false));
    let r2 = agent.post(
        &format!("/api/tasks/{id}/subtasks"),
        json!({"content": "step 2"}),
    );
    assert_eq!(r2.status, 201);

    let r = agent.post(&format!("/api/tasks/{id}/subtasks/{sid}/toggle"), json!({}));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["completed"], json!(true));
    let r = agent.post(&format!("/api/tasks/{id}/subtasks/{sid}/toggle"), json!({}));
    assert_eq!(r.body["completed"], json!(false));

    let r = agent.put(
        &format!("/api/tasks/{id}/subtasks/{sid}"),
        json!({"content": "step one", "completed": true}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["content"], json!("step one"));
    assert_eq!(r.body["completed"], json!(true));

    let list = agent.get(&format!("/api/tasks/{id}/subtasks")).body;
    assert_eq!(list.as_array().unwrap().len(), 2);
    let task = server.task_snapshot(id);
    let embedded = task["subtasks"].as_array().unwrap();
    assert_eq!(embedded.len(), 2);
    assert_eq!(embedded[0]["content"], json!("step one"));
    assert_eq!(embedded[0]["completed"], json!(true));

    let r = agent.delete(&format!("/api/tasks/{id}/subtasks/{sid}"));
    assert_eq!(r.status, 200, "{}", r.text);
    let list = agent.get(&format!("/api/tasks/{id}/subtasks")).body;
    assert_eq!(ids(&list), vec![id_of(&r2.body)]);
    agent
        .post(&format!("/api/tasks/{id}/subtasks/{sid}/toggle"), json!({}))
        .assert_error(404);
}

#[test]
fn dedup_finds_similar_open_tasks_the_caller_can_read() {
    let server = TestServer::start();
    let (agent, _) = server.agent("deduper", "worker");
    let (other, _) = server.agent("stranger", "worker");
    let mine = id_of(&agent.create_task(json!({"content": "Write the quarterly finance report"})));
    agent.create_task(json!({"content": "Water the office plants"}));
    let done =
        id_of(&agent.create_task(json!({"content": "Write the quarterly finance report draft"})));
    assert_eq!(
        agent
            .post(&format!("/api/tasks/{done}/complete"), json!({}))
            .status,
        200
    );

    let r = agent.post(
        "/api/tasks/dedup",
        json!({"content": "write quarterly finance report"}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["has_duplicates"], json!(true));
    let matches = r.body["matches"].as_array().unwrap();
    assert_eq!(matches[0]["task_id"], json!(mine), "{}", r.text);
    assert_eq!(
        matches[0]["content"],
        json!("Write the quarterly finance report")
    );
    let score = matches[0]["score"].as_f64().unwrap();
    assert!(score > 0.6 && score <= 1.0 + 1e-9, "score {score}");
    assert!(
        matches.iter().all(|m| m["task_id"] != json!(done)),
        "completed tasks are not duplicates: {}",
        r.text
    );

    let r = agent.post(
        "/api/tasks/dedup",
        json!({"content": "deploy kubernetes cluster"}),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.body["has_duplicates"], json!(false));
    assert_eq!(r.body["matches"], json!([]));

    // Another worker cannot see the task, so it is no duplicate for it.
    let r = other.post(
        "/api/tasks/dedup",
        json!({"content": "write quarterly finance report"}),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.body["has_duplicates"], json!(false), "{}", r.text);

    // Threshold 1.0 needs identical wording; /v1 answers too.
    let r = agent.post(
        "/v1/tasks/dedup",
        json!({"content": "water office plants soon", "threshold": 0.99}),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.body["has_duplicates"], json!(false), "{}", r.text);
}

#[test]
fn the_dedup_check_header_refuses_a_similar_task_with_409_and_creates_nothing() {
    let server = TestServer::start();
    let admin = server.admin();
    let existing = id_of(
        &admin.create_task(json!({"content": "Renew the TLS certificate for api.example.com"})),
    );
    let before = server.all_task_ids();

    let body = br#"{"content":"renew TLS certificate for api.example.com"}"#;
    let r = admin.raw(
        "POST",
        "/api/tasks",
        Some(body),
        &[("X-Dedup-Check", "true")],
    );

    assert_eq!(r.status, 409, "{}", r.text);
    assert!(r.body["error"].is_string(), "{}", r.text);
    assert!(r.body["hint"].is_string(), "{}", r.text);
    let matches = r.body["matches"].as_array().expect("matches");
    assert_eq!(matches[0]["task_id"], json!(existing));
    assert_eq!(server.all_task_ids(), before);

    // Something new passes the check; without the header a duplicate is fine.
    let r = admin.raw(
        "POST",
        "/api/tasks",
        Some(br#"{"content":"Order new office chairs"}"#),
        &[("X-Dedup-Check", "true")],
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let r = admin.raw("POST", "/api/tasks", Some(body), &[]);
    assert_eq!(r.status, 201, "{}", r.text);
}

#[test]
fn legacy_recurring_fields_are_echoed_and_completing_creates_the_next_occurrence() {
    let server = TestServer::start();
    let (agent, agent_id) = server.agent("gardener", "worker");
    let t = agent.create_task(json!({
        "content": "Water the plants",
        "due_date": "2030-01-10",
        "is_recurring": true,
        "recurring_type": "weekly",
        "recurring_interval": 1,
        "recurring_string": "every week",
        "reminder_time": "09:00",
        "assigned_to_agent_id": agent_id,
    }));
    assert_eq!(t["is_recurring"], json!(true));
    assert_eq!(t["recurring_type"], json!("weekly"));
    assert_eq!(t["recurring_interval"], json!(1));
    assert_eq!(t["recurring_string"], json!("every week"));
    assert!(t["reminder_time"].as_str().unwrap().starts_with("09:00"));
    let id = id_of(&t);

    let r = agent.post(&format!("/api/tasks/{id}/complete"), json!({}));
    assert_eq!(r.status, 200, "{}", r.text);

    // A search finds completed tasks too (SPEC §5); the open ones here.
    let open = agent
        .get("/api/tasks?search=Water%20the%20plants&completed=false")
        .body;
    let open = open.as_array().unwrap();
    assert_eq!(open.len(), 1, "one new occurrence: {open:?}");
    let next = &open[0];
    assert_ne!(next["id"], json!(id));
    assert_eq!(next["status"], json!("open"));
    assert_eq!(next["due_date"], json!("2030-01-17"));
    assert_eq!(next["is_recurring"], json!(true));
    assert_eq!(next["recurring_type"], json!("weekly"));
    assert_eq!(next["assigned_to_agent_id"], json!(agent_id));

    // A non-recurring task creates nothing when completed.
    let plain = id_of(&agent.create_task(json!({"content": "One-off", "due_date": "2030-01-10"})));
    let count = server.all_task_ids().len();
    agent.post(&format!("/api/tasks/{plain}/complete"), json!({}));
    assert_eq!(server.all_task_ids().len(), count);
}

#[test]
fn strings_are_stored_and_returned_verbatim() {
    let server = TestServer::start();
    let admin = server.admin();
    let samples = [
        "Ünïcødé ✓ 漢字 🚀 مرحبا",
        r#"She said "hi" and 'bye' \ back\slash"#,
        "'; DROP TABLE tasks; --",
        "Robert'); DELETE FROM agents WHERE ('1'='1",
        "  leading and trailing spaces  ",
        "tabs\tand\nnewlines\r\n",
        "100% _literal_ %wildcards%",
        "<script>alert(1)</script>",
        "nul\u{0}byte",
    ];
    for s in samples {
        let r = admin.post(
            "/api/tasks",
            json!({"content": s, "description": s, "labels": [s], "context": {"note": s}}),
        );
        assert_eq!(r.status, 201, "{s:?}: {}", r.text);
        let id = id_of(&r.body);
        for body in [&r.body, &server.task_snapshot(id)] {
            assert_eq!(body["content"], json!(s), "content {s:?}");
            assert_eq!(body["description"], json!(s), "description {s:?}");
            assert_eq!(body["labels"], json!([s]), "labels {s:?}");
            assert_eq!(body["context"]["note"], json!(s), "context {s:?}");
        }
        let c = admin.post(&format!("/api/tasks/{id}/comments"), json!({"content": s}));
        assert_eq!(c.status, 201, "{s:?}: {}", c.text);
        assert_eq!(c.body["content"], json!(s));
    }
    // The SQL-looking text did nothing, and search finds it literally.
    let r = admin.get("/api/tasks?search=DROP%20TABLE");
    assert_eq!(r.status, 200);
    assert_eq!(r.body.as_array().unwrap().len(), 1, "{}", r.text);
    let r = admin.get("/api/tasks?search=100%25%20_literal_");
    assert_eq!(
        r.body.as_array().unwrap().len(),
        1,
        "% and _ are literal: {}",
        r.text
    );
    assert_eq!(server.all_task_ids().len(), samples.len());
}

#[test]
fn an_unknown_or_non_numeric_task_id_is_a_404_on_every_task_route() {
    let server = TestServer::start();
    let admin = server.admin();
    let real = id_of(&admin.create_task(json!({"content": "exists"})));
    for bad in [
        "999999",
        "abc",
        "1.5",
        "-3",
        "99999999999999999999999",
        "%20",
    ] {
        for (method, path, body) in [
            ("GET", format!("/api/tasks/{bad}"), None),
            (
                "PUT",
                format!("/api/tasks/{bad}"),
                Some(json!({"content": "x"})),
            ),
            ("DELETE", format!("/api/tasks/{bad}"), None),
            (
                "POST",
                format!("/api/tasks/{bad}/complete"),
                Some(json!({})),
            ),
            (
                "POST",
                format!("/api/tasks/{bad}/uncomplete"),
                Some(json!({})),
            ),
            ("POST", format!("/api/tasks/{bad}/fail"), Some(json!({}))),
            ("GET", format!("/api/tasks/{bad}/comments"), None),
            (
                "POST",
                format!("/api/tasks/{bad}/comments"),
                Some(json!({"content": "x"})),
            ),
            ("GET", format!("/api/tasks/{bad}/subtasks"), None),
            (
                "POST",
                format!("/api/tasks/{bad}/subtasks"),
                Some(json!({"content": "x"})),
            ),
            ("DELETE", format!("/api/tasks/{real}/comments/{bad}"), None),
            (
                "PUT",
                format!("/api/tasks/{real}/subtasks/{bad}"),
                Some(json!({"content": "x"})),
            ),
            (
                "POST",
                format!("/api/tasks/{real}/subtasks/{bad}/toggle"),
                Some(json!({})),
            ),
            ("DELETE", format!("/api/tasks/{real}/subtasks/{bad}"), None),
            ("GET", format!("/v1/tasks/{bad}"), None),
        ] {
            let r = admin.send(method, &path, body);
            assert_eq!(r.status, 404, "{method} {path}: {}", r.text);
            r.assert_error(404);
        }
    }
    assert_eq!(server.all_task_ids(), vec![real]);
}

#[test]
fn put_completed_true_honours_the_evidence_policy_and_changes_nothing_when_refused() {
    let server = TestServer::start();
    let admin = server.admin();
    let id =
        id_of(&admin.create_task(json!({"content": "needs proof", "evidence_policy": "required"})));
    assert_eq!(
        server.task_snapshot(id)["evidence_policy"],
        json!("required")
    );
    let before = server.task_snapshot(id);

    let r = admin.put(
        &format!("/api/tasks/{id}"),
        json!({"completed": true, "priority": 1}),
    );
    r.assert_error(422);
    let r = admin.post(&format!("/api/tasks/{id}/complete"), json!({}));
    r.assert_error(422);
    assert_eq!(
        server.task_snapshot(id),
        before,
        "a refused completion changes nothing"
    );

    let r = admin.post(
        &format!("/api/tasks/{id}/complete"),
        json!({"evidence": [{"kind": "commit", "ref": "abc123"}]}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], json!("completed"));
    assert_eq!(r.body["completion_evidence"][0]["ref"], json!("abc123"));
}

#[test]
fn deleting_a_parent_task_keeps_its_children() {
    let server = TestServer::start();
    let admin = server.admin();
    let parent = id_of(&admin.create_task(json!({"content": "parent"})));
    let child = id_of(&admin.create_task(json!({"content": "child", "parent_task_id": parent})));
    admin.post(
        &format!("/api/tasks/{parent}/comments"),
        json!({"content": "c"}),
    );

    let r = admin.delete(&format!("/api/tasks/{parent}"));

    assert_eq!(r.status, 200, "{}", r.text);
    admin.get(&format!("/api/tasks/{parent}")).assert_error(404);
    let c = server.task_snapshot(child);
    assert_eq!(c["content"], json!("child"));
    assert_eq!(server.all_task_ids(), vec![child]);
}

#[test]
fn search_is_case_insensitive_beyond_ascii() {
    let server = TestServer::start();
    let admin = server.admin();
    let id =
        id_of(&admin.create_task(
            json!({"content": "Überprüfung der Straße", "description": "ÉTÉ À PARIS"}),
        ));
    admin.create_task(json!({"content": "unrelated"}));
    let mut misses = Vec::new();
    for q in [
        "Überprüfung",
        "überprüfung",
        "ÜBERPRÜFUNG",
        "ÉTÉ",
        "été à",
        "Été",
    ] {
        let enc: String = url::form_urlencoded::byte_serialize(q.as_bytes()).collect();
        let r = admin.get(&format!("/api/tasks?search={enc}"));
        assert_eq!(r.status, 200);
        if ids(&r.body) != vec![id] {
            misses.push(q);
        }
    }
    assert!(misses.is_empty(), "search missed task {id} for {misses:?}");
}

#[test]
fn concurrent_creates_all_succeed_with_distinct_ids() {
    let server = TestServer::start();
    let (agent, _) = server.agent("parallel", "worker");
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let c = if t % 2 == 0 {
                agent.clone()
            } else {
                server.admin()
            };
            std::thread::spawn(move || {
                (0..10)
                    .map(|i| {
                        let r = c.post(
                            "/api/tasks",
                            json!({"content": format!("thread {t} item {i}")}),
                        );
                        assert_eq!(r.status, 201, "{}", r.text);
                        id_of(&r.body)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut all: Vec<i64> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 80);
    assert_eq!(server.all_task_ids().len(), 80);
}

#[test]
fn completion_metadata_is_merged_like_a_json_merge_patch() {
    let server = TestServer::start();
    let admin = server.admin();
    let id = id_of(&admin.create_task(json!({
        "content": "merge",
        "context": {"keep": 1, "nested": {"x": 1, "y": 1}, "drop": "me"}
    })));

    let r = admin.post(
        &format!("/api/tasks/{id}/complete"),
        json!({"metadata": {"nested": {"y": 2, "z": 3}, "drop": null, "new": [1]}}),
    );

    assert_eq!(r.status, 200, "{}", r.text);
    let expected = json!({"keep": 1, "nested": {"x": 1, "y": 2, "z": 3}, "new": [1]});
    assert_eq!(r.body["context"], expected);
    assert_eq!(server.task_snapshot(id)["metadata"], expected);
}

#[test]
fn assigning_to_a_deactivated_agent_is_a_422_and_changes_nothing() {
    let server = TestServer::start();
    let (_, gone) = server.agent("dormant", "worker");
    let r = server
        .admin()
        .put(&format!("/api/agents/{gone}"), json!({"active": false}));
    assert_eq!(r.status, 200);
    let admin = server.admin();
    let id = id_of(&admin.create_task(json!({"content": "needs an owner"})));
    let before = server.task_snapshot(id);

    admin
        .put(
            &format!("/api/tasks/{id}"),
            json!({"assigned_to_agent_id": "dormant"}),
        )
        .assert_field_error("assigned_to_agent_id");
    admin
        .post(
            "/api/tasks",
            json!({"content": "new", "assigned_to_agent_id": gone}),
        )
        .assert_field_error("assigned_to_agent_id");

    assert_eq!(server.task_snapshot(id), before);
    assert_eq!(server.all_task_ids(), vec![id]);
}

#[test]
fn a_worker_may_reassign_its_task_and_still_follow_it() {
    let server = TestServer::start();
    let (a, _) = server.agent("handing-off", "worker");
    let (b, b_id) = server.agent("receiving", "worker");
    let (a2, _) = server.agent("bystander", "worker");
    let id = id_of(
        &server
            .admin()
            .create_task(json!({"content": "pass it on", "assigned_to_agent_id": "handing-off"})),
    );

    let r = a.put(
        &format!("/api/tasks/{id}"),
        json!({"assigned_to_agent_id": b_id}),
    );

    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["assigned_to_agent_id"], json!(b_id));
    assert_eq!(b.get(&format!("/api/tasks/{id}")).status, 200);
    let r = a.get(&format!("/api/tasks/{id}"));
    assert_eq!(
        r.status, 200,
        "the delegator follows the work it handed off: {}",
        r.text
    );
    a2.get(&format!("/api/tasks/{id}")).assert_error(404);
}

#[test]
fn agent_and_project_strings_are_stored_verbatim_too() {
    let server = TestServer::start();
    let s = "Ünï \"q\" '; DROP TABLE agents; -- 🚀  ";
    let a = server.create_agent(json!({"name": "verbatim", "display_name": s, "description": s}));
    assert_eq!(a["display_name"], json!(s));
    let got = server.admin().get("/api/agents/verbatim").body;
    assert_eq!(got["display_name"], json!(s));
    assert_eq!(got["description"], json!(s));
    let p = server
        .admin()
        .post("/api/projects", json!({"name": s, "emoji": "🧪"}));
    assert_eq!(p.status, 201, "{}", p.text);
    let got = server
        .admin()
        .get(&format!("/api/projects/{}", id_of(&p.body)))
        .body;
    assert_eq!(got["name"], json!(s));
    assert_eq!(
        server
            .admin()
            .get("/api/agents")
            .body
            .as_array()
            .unwrap()
            .len(),
        1
    );
}
