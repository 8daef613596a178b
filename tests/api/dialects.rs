//! SPEC §2: every core route exists under `/api` and `/v1` with the same
//! behaviour.

use crate::helpers::{id_of, TestServer};
use serde_json::json;

#[test]
fn read_routes_answer_the_same_under_api_and_v1() {
    let server = TestServer::start();
    let (worker, wid) = server.agent("dialect-worker", "worker");
    let admin = server.admin();
    let pid = id_of(&admin.post("/v1/projects", json!({"name": "Both"})).body);
    let tid = id_of(&admin.create_task(
        json!({"content": "both ways", "project_id": pid, "assigned_to_agent_id": wid}),
    ));
    admin.post(
        &format!("/api/tasks/{tid}/comments"),
        json!({"content": "c"}),
    );
    admin.post(
        &format!("/api/tasks/{tid}/subtasks"),
        json!({"content": "s"}),
    );

    let paths = [
        "/agents".to_string(),
        format!("/agents/{wid}"),
        "/agents/dialect-worker".to_string(),
        "/agent/me".to_string(),
        "/tasks".to_string(),
        "/tasks?include_completed=true&label=none".to_string(),
        format!("/tasks/{tid}"),
        format!("/tasks/{tid}/comments"),
        format!("/tasks/{tid}/subtasks"),
        "/projects".to_string(),
        format!("/projects/{pid}"),
        "/stats".to_string(),
        "/usage".to_string(),
    ];
    for path in &paths {
        let api = admin.get(&format!("/api{path}"));
        let v1 = admin.get(&format!("/v1{path}"));
        assert_eq!(api.status, 200, "/api{path}: {}", api.text);
        assert_eq!(v1.status, 200, "/v1{path}: {}", v1.text);
        assert_eq!(api.body, v1.body, "{path} differs between dialects");
    }
    // And as a worker.
    for path in [
        "/agent/me".to_string(),
        format!("/tasks/{tid}"),
        "/tasks".into(),
    ] {
        let api = worker.get(&format!("/api{path}"));
        let v1 = worker.get(&format!("/v1{path}"));
        assert_eq!(api.status, 200, "{path}");
        assert_eq!(api.body, v1.body, "{path}");
    }
}

#[test]
fn write_routes_work_under_v1() {
    let server = TestServer::start();
    let admin = server.admin();

    // Agents.
    let r = admin.post("/v1/agents", json!({"name": "v1-agent", "label": "V1"}));
    assert_eq!(r.status, 201, "{}", r.text);
    let aid = id_of(&r.body);
    let r = admin.put(&format!("/v1/agents/{aid}"), json!({"description": "d"}));
    assert_eq!(r.status, 200, "{}", r.text);
    let r = admin.patch(&format!("/v1/agents/{aid}"), json!({"description": "e"}));
    assert_eq!(r.status, 200, "{}", r.text);
    let r = admin.post(&format!("/v1/agents/{aid}/rotate-key"), json!({}));
    assert_eq!(r.status, 200, "{}", r.text);
    let key = r.body["api_key"].as_str().unwrap().to_string();
    let agent = server.with_key(&key);

    // Tasks.
    let r = agent.post(
        "/v1/tasks",
        json!({"content": "v1 task", "metadata": {"a": 1}}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let tid = id_of(&r.body);
    let r = agent.put(&format!("/v1/tasks/{tid}"), json!({"priority": 1}));
    assert_eq!(r.status, 200, "{}", r.text);
    let r = agent.patch(&format!("/v1/tasks/{tid}"), json!({"priority": 3}));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["priority"], json!(3));
    let r = agent.post(
        &format!("/v1/tasks/{tid}/comments"),
        json!({"content": "hi"}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let cid = id_of(&r.body);
    let r = agent.delete(&format!("/v1/tasks/{tid}/comments/{cid}"));
    assert_eq!(r.status, 200, "{}", r.text);
    let r = agent.post(
        &format!("/v1/tasks/{tid}/subtasks"),
        json!({"content": "s"}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let sid = id_of(&r.body);
    let r = agent.post(&format!("/v1/tasks/{tid}/subtasks/{sid}/toggle"), json!({}));
    assert_eq!(r.status, 200, "{}", r.text);
    let r = agent.put(
        &format!("/v1/tasks/{tid}/subtasks/{sid}"),
        json!({"content": "t"}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let r = agent.delete(&format!("/v1/tasks/{tid}/subtasks/{sid}"));
    assert_eq!(r.status, 200, "{}", r.text);
    let r = agent.post("/v1/tasks/dedup", json!({"content": "v1 task"}));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["has_duplicates"], json!(true));
    let r = agent.post(
        &format!("/v1/tasks/{tid}/complete"),
        json!({"metadata": {"b": 2}}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["context"], json!({"a": 1, "b": 2}));
    let r = agent.post(&format!("/v1/tasks/{tid}/uncomplete"), json!({}));
    assert_eq!(r.status, 200, "{}", r.text);
    let r = agent.post(&format!("/v1/tasks/{tid}/fail"), json!({"reason": "r"}));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], json!("failed"));
    let r = agent.delete(&format!("/v1/tasks/{tid}"));
    assert_eq!(r.status, 200, "{}", r.text);

    // Projects.
    let r = admin.post("/v1/projects", json!({"name": "V1"}));
    assert_eq!(r.status, 201, "{}", r.text);
    let pid = id_of(&r.body);
    let r = admin.put(&format!("/v1/projects/{pid}"), json!({"name": "V1b"}));
    assert_eq!(r.status, 200, "{}", r.text);
    let r = admin.delete(&format!("/v1/projects/{pid}"));
    assert_eq!(r.status, 200, "{}", r.text);

    // Agent delete last.
    let r = admin.delete(&format!("/v1/agents/{aid}"));
    assert_eq!(r.status, 200, "{}", r.text);
}

#[test]
fn errors_are_json_under_both_dialects_and_for_unknown_routes() {
    let server = TestServer::start();
    let admin = server.admin();
    for prefix in ["/api", "/v1"] {
        admin
            .get(&format!("{prefix}/tasks/12345"))
            .assert_error(404);
        server
            .anonymous()
            .get(&format!("{prefix}/tasks"))
            .assert_error(401);
        admin
            .raw("POST", &format!("{prefix}/tasks"), Some(b"{oops"), &[])
            .assert_error(400);
    }
    for path in ["/api/no-such-thing", "/v1/nope", "/nowhere"] {
        let r = admin.get(path);
        r.assert_error(404);
    }
    for (method, path) in [
        ("PATCH", "/api/tasks/dedup"),
        ("DELETE", "/api/tasks"),
        ("DELETE", "/v1/agents"),
        ("PUT", "/api/projects"),
        ("GET", "/api/tasks/dedup"),
    ] {
        let r = admin.send(method, path, Some(json!({})));
        assert!(
            r.status == 404 || r.status == 405,
            "{method} {path}: {}",
            r.text
        );
        assert!(
            r.body["error"].is_string(),
            "JSON error for {method} {path} ({}): {}",
            r.status,
            r.text
        );
    }
}
