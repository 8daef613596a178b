//! SPEC §2/§5: bad input is refused with the right status and the JSON
//! error shape, never a 500, and nothing stored changes.

use crate::helpers::{id_of, Client, TestServer};
use serde_json::{json, Value};

/// Everything observable that a refused request must leave alone.
fn world(server: &TestServer) -> Value {
    let admin = server.admin();
    let tasks = admin.get("/api/tasks?include_completed=true").body;
    let full: Vec<Value> = tasks
        .as_array()
        .unwrap()
        .iter()
        .map(|t| server.task_snapshot(id_of(t)))
        .collect();
    json!({
        "tasks": full,
        "agents": admin.get("/api/agents").body,
        "projects": admin.get("/api/projects").body,
    })
}

struct Setup {
    server: TestServer,
    worker: Client,
    worker_id: i64,
    task: i64,
    project: i64,
}

fn setup() -> Setup {
    let server = TestServer::start();
    let (worker, worker_id) = server.agent("victim-worker", "worker");
    let project = id_of(
        &server
            .admin()
            .post("/api/projects", json!({"name": "Stable"}))
            .body,
    );
    let task = id_of(&worker.create_task(json!({
        "content": "stable task", "project_id": project, "labels": ["keep"],
        "context": {"k": "v"}})));
    let r = worker.post(
        &format!("/api/tasks/{task}/comments"),
        json!({"content": "note"}),
    );
    assert_eq!(r.status, 201);
    Setup {
        server,
        worker,
        worker_id,
        task,
        project,
    }
}

#[test]
fn malformed_json_is_a_400_on_every_body_route_and_changes_nothing() {
    let s = setup();
    let (t, p, a) = (s.task, s.project, s.worker_id);
    let before = world(&s.server);
    let bodies: [&[u8]; 8] = [
        b"{",
        b"{\"content\": }",
        b"not json at all",
        b"{\"content\":\"x\",}",
        b"{'content': 'single quotes'}",
        b"{} {}",
        b"\xff\xfe\x00garbage",
        b"{\"content\":\"unterminated",
    ];
    let routes = [
        ("POST", "/api/tasks".to_string()),
        ("PUT", format!("/api/tasks/{t}")),
        ("PATCH", format!("/api/tasks/{t}")),
        ("POST", format!("/api/tasks/{t}/complete")),
        ("POST", format!("/api/tasks/{t}/fail")),
        ("POST", format!("/api/tasks/{t}/comments")),
        ("POST", format!("/api/tasks/{t}/subtasks")),
        ("POST", "/api/tasks/dedup".to_string()),
        ("POST", "/api/agents".to_string()),
        ("PUT", format!("/api/agents/{a}")),
        ("POST", "/api/projects".to_string()),
        ("PUT", format!("/api/projects/{p}")),
        ("POST", "/v1/tasks".to_string()),
    ];
    let admin = s.server.admin();
    for (method, path) in &routes {
        for body in bodies {
            let r = admin.raw(method, path, Some(body), &[]);
            assert_eq!(
                r.status,
                400,
                "{method} {path} with {:?}: {}",
                String::from_utf8_lossy(body),
                r.text
            );
            r.assert_error(400);
        }
    }
    assert_eq!(world(&s.server), before);
}

#[test]
fn wrong_types_in_a_task_body_are_a_422_naming_the_field() {
    let s = setup();
    let admin = s.server.admin();
    let before = world(&s.server);
    let cases = [
        (json!({"content": 5}), "content"),
        (json!({"content": ["a"]}), "content"),
        (json!({"content": "x", "priority": "high"}), "priority"),
        (json!({"content": "x", "priority": 2.5}), "priority"),
        (json!({"content": "x", "priority": true}), "priority"),
        (json!({"content": "x", "description": 7}), "description"),
        (json!({"content": "x", "labels": "a,b"}), "labels"),
        (json!({"content": "x", "labels": {"a": 1}}), "labels"),
        (json!({"content": "x", "due_date": 20300101}), "due_date"),
        (json!({"content": "x", "due_time": 930}), "due_time"),
        (
            json!({"content": "x", "is_recurring": "yes"}),
            "is_recurring",
        ),
        (
            json!({"content": "x", "recurring_interval": "weekly"}),
            "recurring_interval",
        ),
        (json!({"content": "x", "context": "text"}), "context"),
        (json!({"content": "x", "context": [1, 2]}), "context"),
        (json!({"content": "x", "metadata": 5}), "metadata"),
        (json!({"content": "x", "project_id": "abc"}), "project_id"),
        (
            json!({"content": "x", "project_id": {"id": 1}}),
            "project_id",
        ),
        (
            json!({"content": "x", "assigned_to_agent_id": true}),
            "assigned_to_agent_id",
        ),
        (
            json!({"content": "x", "assigned_to_agent_id": [1]}),
            "assigned_to_agent_id",
        ),
        (json!({"content": "x", "depends_on": "1"}), "depends_on"),
        (
            json!({"content": "x", "parent_task_id": "parent"}),
            "parent_task_id",
        ),
        (
            json!({"content": "x", "evidence_policy": 1}),
            "evidence_policy",
        ),
    ];
    for (body, field) in cases {
        let r = admin.post("/api/tasks", body.clone());
        assert_eq!(r.status, 422, "{body}: {}", r.text);
        r.assert_error(422);
        let named = r.body["detail"]["field"].as_str().unwrap_or_default();
        assert!(
            named == field
                || named.starts_with(&format!("{field}["))
                || named.starts_with(&format!("{field}.")),
            "{body}: detail.field is {named:?}, expected {field}: {}",
            r.text
        );
    }
    // Element types inside arrays name the array.
    let r = admin.post("/api/tasks", json!({"content": "x", "labels": [1, 2]}));
    r.assert_error(422);
    assert!(
        r.body["detail"]["field"]
            .as_str()
            .unwrap_or_default()
            .starts_with("labels"),
        "{}",
        r.text
    );
    assert_eq!(world(&s.server), before);
}

#[test]
fn invalid_task_values_are_a_422_naming_the_field() {
    let s = setup();
    let admin = s.server.admin();
    let before = world(&s.server);
    let cases = [
        (json!({}), "content"),
        (json!({"content": null}), "content"),
        (json!({"content": ""}), "content"),
        (json!({"content": "   \n\t"}), "content"),
        (json!({"content": "x", "priority": 0}), "priority"),
        (json!({"content": "x", "priority": 5}), "priority"),
        (json!({"content": "x", "priority": -1}), "priority"),
        (json!({"content": "x", "due_date": "tomorrow"}), "due_date"),
        (
            json!({"content": "x", "due_date": "2030-02-30"}),
            "due_date",
        ),
        (json!({"content": "x", "status": "done"}), "status"),
        (
            json!({"content": "x", "evidence_policy": "sometimes"}),
            "evidence_policy",
        ),
        (
            json!({"content": "x", "parent_task_id": 999999}),
            "parent_task_id",
        ),
        (
            json!({"content": "x", "depends_on": [999999]}),
            "depends_on",
        ),
    ];
    for (body, field) in cases {
        let r = admin.post("/api/tasks", body.clone());
        assert_eq!(r.status, 422, "{body}: {}", r.text);
        r.assert_field_error(field);
    }
    assert_eq!(world(&s.server), before);
}

#[test]
fn invalid_updates_are_refused_and_leave_the_task_unchanged() {
    let s = setup();
    let t = s.task;
    let before = world(&s.server);
    let cases = [
        (json!({"priority": "high"}), 422, "priority"),
        (json!({"priority": 9}), 422, "priority"),
        (json!({"content": ""}), 422, "content"),
        (json!({"content": "x".repeat(2001)}), 422, "content"),
        (
            json!({"description": "d".repeat(10_001)}),
            422,
            "description",
        ),
        (json!({"labels": vec!["l"; 51]}), 422, "labels"),
        (json!({"status": "done"}), 422, "status"),
        (json!({"status": "completed"}), 422, "status"),
        (json!({"status": "failed"}), 422, "status"),
        (json!({"status": "claimed"}), 422, "status"),
        (json!({"status": "delegated"}), 422, "status"),
        (json!({"completed": "yes"}), 422, "completed"),
        (
            json!({"assigned_to_agent_id": "ghost"}),
            422,
            "assigned_to_agent_id",
        ),
        (json!({"project_id": 99999}), 422, "project_id"),
        (json!({"depends_on": [t]}), 422, "depends_on"),
        (json!({"context": "nope"}), 422, "context"),
        (json!({"due_date": "31/12/2030"}), 422, "due_date"),
    ];
    for (body, status, field) in cases {
        for method in ["PUT", "PATCH"] {
            let r = s
                .worker
                .send(method, &format!("/api/tasks/{t}"), Some(body.clone()));
            assert_eq!(r.status, status, "{method} {body}: {}", r.text);
            r.assert_field_error(field);
        }
    }
    assert_eq!(world(&s.server), before);
}

#[test]
fn length_limits_are_enforced_at_the_boundary() {
    let s = setup();
    let admin = s.server.admin();

    // Exactly at the limits: accepted (characters, not bytes).
    let ok_cases = [
        ("content 2000 ascii", json!({"content": "a".repeat(2000)})),
        (
            "content 2000 multibyte",
            json!({"content": "é".repeat(2000)}),
        ),
        (
            "description 10000",
            json!({"content": "d", "description": "d".repeat(10_000)}),
        ),
        (
            "50 labels",
            json!({"content": "l", "labels": (0..50).map(|i| format!("l{i}")).collect::<Vec<_>>()}),
        ),
        (
            "label of 100 chars",
            json!({"content": "l", "labels": ["x".repeat(100)]}),
        ),
    ];
    for (why, body) in ok_cases {
        let r = admin.post("/api/tasks", body.clone());
        assert_eq!(r.status, 201, "{why}: {}", r.text);
        let stored = s.server.task_snapshot(id_of(&r.body));
        for k in ["content", "description", "labels"] {
            if let Some(v) = body.get(k) {
                assert_eq!(&stored[k], v, "{why}: {k} stored verbatim");
            }
        }
    }

    let before = world(&s.server);
    let bad_cases = [
        (
            "content 2001",
            json!({"content": "a".repeat(2001)}),
            "content",
        ),
        (
            "content 2001 multibyte",
            json!({"content": "ü".repeat(2001)}),
            "content",
        ),
        (
            "description 10001",
            json!({"content": "d", "description": "d".repeat(10_001)}),
            "description",
        ),
        (
            "51 labels",
            json!({"content": "l", "labels": (0..51).map(|i| format!("l{i}")).collect::<Vec<_>>()}),
            "labels",
        ),
        (
            "label of 101 chars",
            json!({"content": "l", "labels": ["x".repeat(101)]}),
            "labels",
        ),
    ];
    for (why, body, field) in bad_cases {
        let r = admin.post("/api/tasks", body);
        assert_eq!(r.status, 422, "{why}: {}", r.text);
        r.assert_field_error(field);
    }
    assert_eq!(world(&s.server), before);
}

#[test]
fn a_body_over_64_kib_is_a_413() {
    let s = setup();
    let before = world(&s.server);
    let admin = s.server.admin();
    let big = json!({"content": "big", "description": "x".repeat(70 * 1024)});
    let r = admin.post("/api/tasks", big.clone());
    r.assert_error(413);
    let r = admin.put(&format!("/api/tasks/{}", s.task), big);
    r.assert_error(413);
    let r = admin.post(
        &format!("/api/tasks/{}/comments", s.task),
        json!({"content": "c".repeat(65 * 1024)}),
    );
    r.assert_error(413);
    assert_eq!(world(&s.server), before);

    // Just under the limit is read (then judged on its merits).
    let r = admin.post(
        "/api/tasks",
        json!({"content": "ok", "context": {"blob": "y".repeat(60 * 1024)}}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
}

fn nested(depth: usize, open: &str, close: &str, leaf: &str) -> String {
    format!("{}{}{}", open.repeat(depth), leaf, close.repeat(depth))
}

#[test]
fn json_nested_deeper_than_64_levels_is_a_400() {
    let s = setup();
    let admin = s.server.admin();
    let before = world(&s.server);
    let deep_obj = nested(100, "{\"a\":", "}", "1");
    let deep_arr = nested(100, "[", "]", "1");
    let very_deep = nested(5000, "[", "]", "1");
    let bodies = [
        format!("{{\"content\":\"deep\",\"context\":{deep_obj}}}"),
        format!("{{\"content\":\"deep\",\"context\":{{\"list\":{deep_arr}}}}}"),
        format!("{{\"content\":\"deep\",\"labels\":{very_deep}}}"),
        nested(70, "[", "]", "{}"),
    ];
    for body in &bodies {
        for (method, path) in [
            ("POST", "/api/tasks".to_string()),
            ("PUT", format!("/api/tasks/{}", s.task)),
            ("POST", format!("/api/tasks/{}/complete", s.task)),
        ] {
            let r = admin.raw(method, path.as_str(), Some(body.as_bytes()), &[]);
            assert_eq!(
                r.status,
                400,
                "{method} {path} with {} bytes: {}",
                body.len(),
                r.text
            );
            r.assert_error(400);
        }
    }
    assert_eq!(world(&s.server), before);

    // Modest nesting is fine.
    let ok = format!(
        "{{\"content\":\"nested ok\",\"context\":{}}}",
        nested(10, "{\"a\":", "}", "1")
    );
    let r = admin.raw("POST", "/api/tasks", Some(ok.as_bytes()), &[]);
    assert_eq!(r.status, 201, "{}", r.text);
}

#[test]
fn non_object_bodies_are_refused_without_a_500() {
    let s = setup();
    let before = world(&s.server);
    let admin = s.server.admin();
    for body in [
        "[]",
        "null",
        "\"string\"",
        "123",
        "true",
        "[{\"content\":\"x\"}]",
    ] {
        for (method, path) in [
            ("POST", "/api/tasks".to_string()),
            ("PUT", format!("/api/tasks/{}", s.task)),
            ("POST", format!("/api/tasks/{}/complete", s.task)),
            ("POST", "/api/agents".to_string()),
            ("POST", "/api/projects".to_string()),
            ("POST", format!("/api/tasks/{}/comments", s.task)),
        ] {
            let r = admin.raw(method, &path, Some(body.as_bytes()), &[]);
            assert!(
                r.status == 400 || r.status == 422,
                "{method} {path} with {body}: {} {}",
                r.status,
                r.text
            );
            r.assert_error(r.status);
        }
    }
    assert_eq!(world(&s.server), before);
}

#[test]
fn wrong_types_in_agent_and_project_bodies_are_a_422_naming_the_field() {
    let s = setup();
    let admin = s.server.admin();
    let before = world(&s.server);
    let a = s.worker_id;
    let p = s.project;
    let cases = [
        (
            "POST",
            "/api/agents".to_string(),
            json!({"name": 5}),
            "name",
        ),
        (
            "POST",
            "/api/agents".to_string(),
            json!({"name": "bad name!"}),
            "name",
        ),
        (
            "POST",
            "/api/agents".to_string(),
            json!({"name": "ok-name", "role": "boss"}),
            "role",
        ),
        (
            "POST",
            "/api/agents".to_string(),
            json!({"name": "ok-name", "is_admin": "yes"}),
            "is_admin",
        ),
        (
            "POST",
            "/api/agents".to_string(),
            json!({"name": "ok-name", "permissions": "tasks.read_all"}),
            "permissions",
        ),
        (
            "POST",
            "/api/agents".to_string(),
            json!({"name": "ok-name", "display_name": 3}),
            "display_name",
        ),
        (
            "PUT",
            format!("/api/agents/{a}"),
            json!({"role": "overlord"}),
            "role",
        ),
        (
            "PUT",
            format!("/api/agents/{a}"),
            json!({"active": "no"}),
            "active",
        ),
        (
            "POST",
            "/api/projects".to_string(),
            json!({"name": 5}),
            "name",
        ),
        ("POST", "/api/projects".to_string(), json!({}), "name"),
        (
            "POST",
            "/api/projects".to_string(),
            json!({"name": "   "}),
            "name",
        ),
        (
            "POST",
            "/api/projects".to_string(),
            json!({"name": "P", "sort_order": "first"}),
            "sort_order",
        ),
        (
            "PUT",
            format!("/api/projects/{p}"),
            json!({"emoji": 1}),
            "emoji",
        ),
    ];
    for (method, path, body, field) in cases {
        let r = admin.send(method, &path, Some(body.clone()));
        assert_eq!(r.status, 422, "{method} {path} {body}: {}", r.text);
        r.assert_field_error(field);
    }
    assert_eq!(world(&s.server), before);
}

#[test]
fn odd_inputs_on_sub_resources_never_cause_a_500() {
    let s = setup();
    let t = s.task;
    let admin = s.server.admin();
    let before = world(&s.server);
    let cases: Vec<(&str, String, Value)> = vec![
        (
            "POST",
            format!("/api/tasks/{t}/complete"),
            json!({"metadata": 5}),
        ),
        (
            "POST",
            format!("/api/tasks/{t}/complete"),
            json!({"context": "x"}),
        ),
        (
            "POST",
            format!("/api/tasks/{t}/complete"),
            json!({"evidence": "x"}),
        ),
        (
            "POST",
            format!("/api/tasks/{t}/complete"),
            json!({"evidence": [{"kind": "bogus", "ref": "x"}]}),
        ),
        (
            "POST",
            format!("/api/tasks/{t}/complete"),
            json!({"evidence": [{"kind": "commit"}]}),
        ),
        ("POST", format!("/api/tasks/{t}/fail"), json!({"reason": 5})),
        ("POST", format!("/api/tasks/{t}/comments"), json!({})),
        (
            "POST",
            format!("/api/tasks/{t}/comments"),
            json!({"content": 5}),
        ),
        (
            "POST",
            format!("/api/tasks/{t}/comments"),
            json!({"content": ""}),
        ),
        ("POST", format!("/api/tasks/{t}/subtasks"), json!({})),
        (
            "POST",
            format!("/api/tasks/{t}/subtasks"),
            json!({"content": "s", "completed": "no"}),
        ),
        ("POST", "/api/tasks/dedup".into(), json!({})),
        ("POST", "/api/tasks/dedup".into(), json!({"content": ""})),
        (
            "POST",
            "/api/tasks/dedup".into(),
            json!({"content": "x", "threshold": 5}),
        ),
        (
            "POST",
            "/api/tasks/dedup".into(),
            json!({"content": "x", "threshold": -0.1}),
        ),
        (
            "POST",
            "/api/tasks/dedup".into(),
            json!({"content": "x", "threshold": "high"}),
        ),
        (
            "POST",
            "/api/tasks".into(),
            json!({"content": "x", "priority": 1e300}),
        ),
        (
            "POST",
            "/api/tasks".into(),
            json!({"content": "x", "priority": 99999999999999999999u128 as f64}),
        ),
        (
            "POST",
            "/api/tasks".into(),
            json!({"content": "x", "project_id": -1}),
        ),
        (
            "POST",
            "/api/tasks".into(),
            json!({"content": "x", "assigned_to_agent_id": ""}),
        ),
        (
            "POST",
            "/api/tasks".into(),
            json!({"content": "x", "assigned_to_agent_id": -5}),
        ),
        (
            "POST",
            "/api/tasks".into(),
            json!({"content": "x", "depends_on": [1.5]}),
        ),
        (
            "POST",
            "/api/tasks".into(),
            json!({"content": "x", "recurring_interval": 0}),
        ),
        (
            "PUT",
            format!("/api/agents/{}", s.worker_id),
            json!({"permissions": vec!["p"; 100]}),
        ),
        (
            "PUT",
            format!("/api/agents/{}", s.worker_id),
            json!({"role": "admin", "is_admin": false}),
        ),
    ];
    for (method, path, body) in cases {
        let r = admin.send(method, &path, Some(body.clone()));
        assert!(
            (400..500).contains(&r.status),
            "{method} {path} {body}: {} {}",
            r.status,
            r.text
        );
        r.assert_error(r.status);
    }
    assert_eq!(world(&s.server), before);
}

#[test]
fn unknown_resources_are_404_with_the_error_shape() {
    let s = setup();
    let admin = s.server.admin();
    let before = world(&s.server);
    for (method, path) in [
        ("GET", "/api/agents/99999"),
        ("GET", "/api/agents/no-such-agent"),
        ("PUT", "/api/agents/99999"),
        ("DELETE", "/api/agents/99999"),
        ("POST", "/api/agents/99999/rotate-key"),
        ("GET", "/api/projects/99999"),
        ("PUT", "/api/projects/99999"),
        ("DELETE", "/api/projects/99999"),
        ("GET", "/api/tasks/99999"),
        ("PUT", "/api/tasks/99999"),
        ("DELETE", "/api/tasks/99999"),
        ("GET", "/api/projects/not-a-number"),
        ("GET", "/api/tasks/not-a-number"),
        ("DELETE", "/api/tasks/not-a-number"),
    ] {
        let body = (method != "GET" && method != "DELETE").then(|| json!({"name": "x"}));
        let r = admin.send(method, path, body);
        assert_eq!(r.status, 404, "{method} {path}: {}", r.text);
        r.assert_error(404);
    }
    assert_eq!(world(&s.server), before);
}

#[test]
fn forbidden_actions_are_403_and_change_nothing() {
    let s = setup();
    let (coord, _) = s.server.agent("watcher", "coordinator");
    let before = world(&s.server);
    let t = s.task;
    for (who, client, method, path, body) in [
        (
            "worker",
            &s.worker,
            "POST",
            "/api/agents".to_string(),
            Some(json!({"name": "x"})),
        ),
        ("worker", &s.worker, "GET", "/api/agents".to_string(), None),
        (
            "worker",
            &s.worker,
            "PUT",
            format!("/api/agents/{}", s.worker_id),
            Some(json!({"role": "admin"})),
        ),
        (
            "worker",
            &s.worker,
            "POST",
            "/api/projects".to_string(),
            Some(json!({"name": "x"})),
        ),
        (
            "coordinator",
            &coord,
            "DELETE",
            format!("/api/tasks/{t}"),
            None,
        ),
        (
            "coordinator",
            &coord,
            "PUT",
            format!("/api/tasks/{t}"),
            Some(json!({"content": "x"})),
        ),
        (
            "coordinator",
            &coord,
            "POST",
            format!("/api/tasks/{t}/complete"),
            Some(json!({})),
        ),
    ] {
        let r = client.send(method, &path, body);
        assert_eq!(r.status, 403, "{who} {method} {path}: {}", r.text);
        r.assert_error(403);
    }
    assert_eq!(world(&s.server), before);
}

#[test]
fn odd_query_strings_never_cause_a_500() {
    let s = setup();
    let admin = s.server.admin();
    let queries = [
        "?limit=99999999999999999999",
        "?offset=99999999999999999999",
        "?offset=9223372036854775807",
        "?limit=1000&offset=1000000000",
        "?project_id=99999999999999999999",
        "?priority=-99999999999999999999",
        "?search=%25",
        "?search=_",
        "?search=%5C",
        "?search=%27%3B%20DROP%20TABLE%20tasks%3B--",
        "?search=%00",
        "?label=%22%5D",
        "?labels=&labels=",
        "?due=2030-02-30",
        "?due_after=0000-00-00",
        "?status=open,completed",
        "?status=,,,",
        "?assigned_to=%20",
        "?assigned_to=-1",
        "?created_by=99999999999999999999",
        "?parent_task_id=-1",
        "?completed=&include_completed=",
        "?%ZZ=1",
        "?a&b&c",
    ];
    for q in queries {
        let r = admin.get(&format!("/api/tasks{q}"));
        assert!(
            r.status == 200 || (400..500).contains(&r.status),
            "{q}: {} {}",
            r.status,
            r.text
        );
        if r.status != 200 {
            r.assert_error(r.status);
        } else {
            assert!(r.body.is_array(), "{q}: {}", r.text);
        }
    }
    // The task table is intact.
    assert_eq!(s.server.all_task_ids(), vec![s.task]);
}

#[test]
fn ids_out_of_range_are_refused_without_a_500() {
    let s = setup();
    let admin = s.server.admin();
    let before = world(&s.server);
    for (why, body) in [
        (
            "u64 max agent",
            json!({"content": "x", "assigned_to_agent_id": u64::MAX}),
        ),
        (
            "i64 max agent",
            json!({"content": "x", "assigned_to_agent_id": i64::MAX}),
        ),
        (
            "i64 max parent",
            json!({"content": "x", "parent_task_id": i64::MAX}),
        ),
        (
            "i64 min project",
            json!({"content": "x", "project_id": i64::MIN}),
        ),
        (
            "huge dependency",
            json!({"content": "x", "depends_on": [u64::MAX]}),
        ),
        (
            "huge priority",
            json!({"content": "x", "priority": i64::MAX}),
        ),
    ] {
        let r = admin.post("/api/tasks", body);
        assert_eq!(r.status, 422, "{why}: {}", r.text);
        r.assert_error(422);
    }
    for path in [
        format!("/api/tasks/{}", i64::MAX),
        format!("/api/tasks/{}", u64::MAX),
        format!("/api/agents/{}", i64::MAX),
        format!("/api/projects/{}", i64::MIN),
    ] {
        admin.get(&path).assert_error(404);
    }
    assert_eq!(world(&s.server), before);
}

/// Sends a raw HTTP/1.1 request and returns the status line's code and
/// the whole response text (tolerating a reset after the answer).
fn raw_http(port: u16, head: &str, chunks: &[Vec<u8>]) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let _ = stream.write_all(head.as_bytes());
    for c in chunks {
        if stream.write_all(c).is_err() {
            break;
        }
    }
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    loop {
        match stream.read(&mut tmp) {
            Ok(0) => break,
            Ok(n) => {
                buf.extend_from_slice(&tmp[..n]);
                let text = String::from_utf8_lossy(&buf);
                if let Some(h) = text.find("\r\n\r\n") {
                    let len = text[..h]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if buf.len() >= h + 4 + len {
                        break;
                    }
                }
            }
            Err(_) => break,
        }
    }
    let text = String::from_utf8_lossy(&buf).to_string();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer: {text:?}"));
    (code, text)
}

#[test]
fn a_chunked_body_over_64_kib_is_a_413_too() {
    let s = setup();
    let before = world(&s.server);
    let head = format!(
        "POST /api/tasks HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        s.server.port, s.server.token
    );
    // {"content":"big","description":"xxxx…"} sent in 16 KiB chunks.
    let mut body = br#"{"content":"big","description":""#.to_vec();
    body.extend(std::iter::repeat_n(b'x', 80 * 1024));
    body.extend_from_slice(br#""}"#);
    let mut chunks: Vec<Vec<u8>> = body
        .chunks(16 * 1024)
        .map(|c| {
            let mut v = format!("{:x}\r\n", c.len()).into_bytes();
            v.extend_from_slice(c);
            v.extend_from_slice(b"\r\n");
            v
        })
        .collect();
    chunks.push(b"0\r\n\r\n".to_vec());

    let (code, text) = raw_http(s.server.port, &head, &chunks);

    assert_eq!(code, 413, "{text}");
    assert!(text.contains("\"status\":413"), "JSON error body: {text}");
    assert_eq!(world(&s.server), before);
}

/// Sends raw bytes on a fresh connection; the status and JSON body of the
/// answer.
fn raw_exchange(server: &TestServer, request: &[u8]) -> (u16, Value) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    s.write_all(request).unwrap();
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{text}"
    );
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

#[test]
fn errors_raised_below_the_handlers_are_json_too() {
    let server = TestServer::start();
    let auth = format!("Authorization: Bearer {}\r\n", server.token);
    let many: String = (0..150).map(|i| format!("X-Header-{i}: v\r\n")).collect();
    let cases: Vec<(Vec<u8>, u16)> = vec![
        (
            [
                b"GET /api/tasks/\xff HTTP/1.1\r\nHost: x\r\n".as_slice(),
                auth.as_bytes(),
                b"\r\n",
            ]
            .concat(),
            400,
        ),
        (b"NOT HTTP AT ALL\r\n\r\n".to_vec(), 400),
        (
            format!("GET /api/tasks HTTP/1.1\r\nHost: x\r\n{many}\r\n").into_bytes(),
            431,
        ),
    ];
    for (request, status) in cases {
        let (got, body) = raw_exchange(&server, &request);
        assert_eq!(
            got,
            status,
            "{}",
            String::from_utf8_lossy(&request[..40.min(request.len())])
        );
        assert_eq!(body["status"], status);
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{body}"
        );
        assert!(body["code"].is_string());
    }
    // The server still answers.
    assert_eq!(server.admin().get("/api/tasks").status, 200);
}

/// SPEC §2's order of checks: permission (403/404) before validation
/// (422). A worker that may not see a task hears 404 whatever body it
/// sends about it; one that sees it but may not act so hears 403; the
/// task's own worker hears what is wrong with the body; a claim without an
/// agent identity is 403 before its body is read.
#[test]
fn permission_is_checked_before_the_body_is_validated() {
    let server = TestServer::start();
    let admin = server.admin();
    let (owner, _) = server.agent("owner", "worker");
    let (stranger, _) = server.agent("stranger", "worker");
    let (assignee, _) = server.agent("assignee", "worker");
    let (me, me_id) = server.agent("me", "worker");
    let t =
        id_of(&admin.create_task(json!({"content": "theirs", "assigned_to_agent_id": "owner"})));
    // Read through a claim, not managed, by `owner`; hidden from others.
    let queued = id_of(&admin.create_task(json!({"content": "queued"})));
    let r = owner.post(&format!("/api/tasks/{queued}/claim"), json!({}));
    assert_eq!(r.status, 200, "{}", r.text);
    let rec = owner.post(
        "/api/recurrences",
        json!({"content": "weekly", "rule_type": "weekly", "timezone": "UTC", "active": false,
               "assigned_to_agent_id": "assignee"}),
    );
    assert_eq!(rec.status, 201, "{}", rec.text);
    let rid = id_of(&rec.body);
    let before = world(&server);
    let recurrence_before = admin.get(&format!("/api/recurrences/{rid}")).body;

    let calls: Vec<(&str, String, Value)> = vec![
        ("PUT", format!("/api/tasks/{t}"), json!({"priority": 9})),
        (
            "POST",
            format!("/api/tasks/{t}/complete"),
            json!({"evidence": "x"}),
        ),
        ("POST", format!("/api/tasks/{t}/fail"), json!({"reason": 5})),
        (
            "POST",
            format!("/api/tasks/{t}/comments"),
            json!({"content": ""}),
        ),
        (
            "POST",
            format!("/api/tasks/{t}/subtasks"),
            json!({"content": 7}),
        ),
        (
            "POST",
            format!("/api/tasks/{t}/links"),
            json!({"kind": "nope"}),
        ),
        (
            "POST",
            format!("/api/tasks/{t}/dependencies"),
            json!({"depends_on": "x"}),
        ),
        ("PATCH", format!("/api/tasks/{t}/context"), json!([1])),
        (
            "POST",
            format!("/api/tasks/{t}/context/supersede"),
            json!({"key": 1}),
        ),
        (
            "POST",
            format!("/api/tasks/{t}/delegate"),
            json!({"content": 3}),
        ),
        (
            "POST",
            format!("/api/tasks/{t}/claim"),
            json!({"lease_seconds": 1}),
        ),
        (
            "POST",
            format!("/api/tasks/{t}/heartbeat"),
            json!({"lease_seconds": 1}),
        ),
        (
            "POST",
            format!("/api/tasks/{t}/state"),
            json!({"state": "asleep"}),
        ),
        (
            "POST",
            format!("/api/tasks/{t}/release"),
            json!({"handoff": 1}),
        ),
    ];
    let send = |c: &Client, method: &str, path: &str, body: &Value| match method {
        "PUT" => c.put(path, body.clone()),
        "PATCH" => c.patch(path, body.clone()),
        _ => c.post(path, body.clone()),
    };
    for (method, path, body) in &calls {
        let r = send(&stranger, method, path, body);
        r.assert_error(404);
        assert_eq!(r.body["code"], "not_found", "{method} {path}: {}", r.text);
        let r = send(&owner, method, path, body);
        assert_eq!(r.status, 422, "{method} {path}: {}", r.text);
    }
    admin
        .post("/api/tasks/claim", json!({"lease_seconds": 1}))
        .assert_error(403);
    stranger
        .post("/api/tasks/claim", json!({"lease_seconds": 1}))
        .assert_error(422);

    // The claimant may work on `queued` but not manage it: 403 with a bad
    // body as with a good one. For `stranger` the claim hides it: 404 —
    // except on the queue calls, where "claimed by someone else" is its
    // answer (SPEC §10), so a bad body is told.
    for (path, bad, good) in [
        (
            "subtasks",
            json!({"content": 7}),
            json!({"content": "step"}),
        ),
        (
            "dependencies",
            json!({"depends_on": "x"}),
            json!({"depends_on": [t]}),
        ),
    ] {
        let path = format!("/api/tasks/{queued}/{path}");
        owner.post(&path, bad.clone()).assert_error(403);
        owner.post(&path, good).assert_error(403);
        stranger.post(&path, bad).assert_error(404);
    }
    // An update needs what its fields need: the claimant may complete
    // (work) but not reprioritise (manage), whatever the values.
    let put = format!("/api/tasks/{queued}");
    owner.put(&put, json!({"priority": "x"})).assert_error(403);
    owner.put(&put, json!({"priority": 1})).assert_error(403);
    owner
        .put(&put, json!({"completed": "x"}))
        .assert_field_error("completed");
    // A source reserved to admins is refused before the patch is read;
    // a task the caller cannot see stays a 404.
    owner
        .patch(
            &format!("/api/tasks/{t}/context?source=human_stated"),
            json!([1]),
        )
        .assert_error(403);
    stranger
        .patch(
            &format!("/api/tasks/{t}/context?source=human_stated"),
            json!([1]),
        )
        .assert_error(404);
    // A new task under a parent the caller cannot see: the body names
    // it, so a 422 on that field, before its project is looked at.
    stranger
        .post(
            "/api/tasks",
            json!({"content": "sub", "parent_task_id": t, "project_id": 999999}),
        )
        .assert_field_error("parent_task_id");
    // A child delegated from a task the caller cannot see: 404 before
    // the child's project is looked at.
    stranger
        .post(
            &format!("/api/tasks/{t}/delegate"),
            json!({"content": "sub", "project_id": 999999}),
        )
        .assert_error(404);
    // An agent changing itself: privileged fields are 403 however they
    // are written; its own display name's errors are told.
    me.put(
        &format!("/api/agents/{me_id}"),
        json!({"name": "bad name!!"}),
    )
    .assert_error(403);
    me.put(&format!("/api/agents/{me_id}"), json!({"display_name": 5}))
        .assert_field_error("display_name");
    stranger
        .post(
            &format!("/api/tasks/{queued}/heartbeat"),
            json!({"lease_seconds": 1}),
        )
        .assert_field_error("lease_seconds");
    stranger
        .post(&format!("/api/tasks/{queued}/heartbeat"), json!({}))
        .assert_error(409);

    // A recurrence: its creator or an admin changes it; the agent it is
    // assigned to sees it (403), anyone else does not (404).
    let bad = json!({"interval": 0});
    stranger
        .put(&format!("/api/recurrences/{rid}"), bad.clone())
        .assert_error(404);
    assignee
        .put(&format!("/api/recurrences/{rid}"), bad.clone())
        .assert_error(403);
    owner
        .put(&format!("/api/recurrences/{rid}"), bad)
        .assert_field_error("interval");
    admin
        .put("/api/recurrences/999999", json!({"interval": 0}))
        .assert_error(404);
    assert_eq!(world(&server), before, "nothing changed");
    assert_eq!(
        admin.get(&format!("/api/recurrences/{rid}")).body,
        recurrence_before
    );
}

/// The same order for admin resources: a worker's bad body about a
/// project, another agent or a webhook is refused for who it is (403) or
/// what it cannot see (404) before the body is read; an admin's bad body
/// is a 422 naming the field.
#[test]
fn admin_resources_check_permission_before_the_body() {
    let server = TestServer::start();
    let admin = server.admin();
    let (worker, _) = server.agent("worker", "worker");
    let (_, other_id) = server.agent("other", "worker");
    let r = admin.post("/api/projects", json!({"name": "Ops"}));
    assert_eq!(r.status, 201, "{}", r.text);
    let project = id_of(&r.body);
    let before = world(&server);
    let bad_project = json!({"name": 5});
    worker
        .post("/api/projects", bad_project.clone())
        .assert_error(403);
    worker
        .put(&format!("/api/projects/{project}"), bad_project.clone())
        .assert_error(403);
    admin
        .put(&format!("/api/projects/{project}"), bad_project.clone())
        .assert_field_error("name");
    admin
        .post("/api/projects", bad_project)
        .assert_field_error("name");
    worker
        .put(
            &format!("/api/agents/{other_id}"),
            json!({"display_name": 5}),
        )
        .assert_error(403);
    admin
        .put(
            &format!("/api/agents/{other_id}"),
            json!({"display_name": 5}),
        )
        .assert_field_error("display_name");
    worker
        .put("/api/webhooks/999999", json!({"url": 5}))
        .assert_error(404);
    worker
        .post("/api/webhooks/999999/recover", json!({"since": {}}))
        .assert_error(404);
    assert_eq!(world(&server), before, "nothing changed");
}
