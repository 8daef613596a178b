//! SPEC §4 projects, §10 stats and usage, health.

use crate::helpers::{date_in, id_of, TestServer};
use serde_json::{json, Value};

#[test]
fn admins_create_read_update_and_delete_projects() {
    let server = TestServer::start();
    let admin = server.admin();

    let r = admin.post(
        "/api/projects",
        json!({"name": "Launch", "emoji": "🚀", "color": "#ff0000", "sort_order": 3}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let id = id_of(&r.body);
    assert_eq!(r.body["name"], json!("Launch"));
    assert_eq!(r.body["emoji"], json!("🚀"));
    assert_eq!(r.body["color"], json!("#ff0000"));
    assert_eq!(r.body["sort_order"], json!(3));

    let got = admin.get(&format!("/api/projects/{id}"));
    assert_eq!(got.status, 200);
    assert_eq!(got.body["name"], json!("Launch"));
    let list = admin.get("/api/projects").body;
    assert_eq!(list.as_array().unwrap().len(), 1);

    let r = admin.put(
        &format!("/api/projects/{id}"),
        json!({"name": "Launch v2", "color": null}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["name"], json!("Launch v2"));
    assert_eq!(r.body["color"], Value::Null);
    assert_eq!(r.body["emoji"], json!("🚀"), "unchanged fields stay");
    assert_eq!(
        admin.get(&format!("/api/projects/{id}")).body["name"],
        json!("Launch v2")
    );

    let r = admin.delete(&format!("/api/projects/{id}"));
    assert_eq!(r.status, 200, "{}", r.text);
    admin.get(&format!("/api/projects/{id}")).assert_error(404);
    assert_eq!(admin.get("/api/projects").body, json!([]));
    admin
        .delete(&format!("/api/projects/{id}"))
        .assert_error(404);
}

#[test]
fn an_admin_agent_may_write_projects() {
    let server = TestServer::start();
    let (boss, _) = server.agent("pm", "admin");
    let r = boss.post("/api/projects", json!({"name": "By agent"}));
    assert_eq!(r.status, 201, "{}", r.text);
    let r = boss.put(
        &format!("/api/projects/{}", id_of(&r.body)),
        json!({"sort_order": 1}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
}

#[test]
fn every_agent_reads_projects_but_only_admins_write_them() {
    let server = TestServer::start();
    let (worker, _) = server.agent("reader", "worker");
    let id = id_of(
        &server
            .admin()
            .post("/api/projects", json!({"name": "Shared"}))
            .body,
    );

    let list = worker.get("/api/projects");
    assert_eq!(list.status, 200, "{}", list.text);
    assert_eq!(list.body.as_array().unwrap().len(), 1);
    assert_eq!(
        worker.get(&format!("/api/projects/{id}")).body["name"],
        json!("Shared")
    );

    let before = server.admin().get(&format!("/api/projects/{id}")).body;
    worker
        .post("/api/projects", json!({"name": "Mine"}))
        .assert_error(403);
    worker
        .put(&format!("/api/projects/{id}"), json!({"name": "Hijacked"}))
        .assert_error(403);
    worker
        .delete(&format!("/api/projects/{id}"))
        .assert_error(403);
    assert_eq!(
        server.admin().get(&format!("/api/projects/{id}")).body,
        before
    );
    assert_eq!(
        server
            .admin()
            .get("/api/projects")
            .body
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn deleting_a_project_unassigns_its_tasks() {
    let server = TestServer::start();
    let admin = server.admin();
    let pid = id_of(
        &admin
            .post("/api/projects", json!({"name": "Doomed", "emoji": "💥"}))
            .body,
    );
    let t = admin.create_task(json!({"content": "in doomed", "project_id": pid}));
    assert_eq!(t["project"]["name"], json!("Doomed"));
    assert_eq!(t["project"]["id"], json!(pid));
    let tid = id_of(&t);
    let done = id_of(&admin.create_task(json!({"content": "done in doomed", "project_id": pid})));
    admin.post(&format!("/api/tasks/{done}/complete"), json!({}));

    let r = admin.delete(&format!("/api/projects/{pid}"));
    assert_eq!(r.status, 200, "{}", r.text);

    for id in [tid, done] {
        let task = server.task_snapshot(id);
        assert_eq!(task["project_id"], Value::Null, "task {id}");
        assert_eq!(task["project"], Value::Null, "task {id}");
    }
    assert_eq!(
        server.all_task_ids().len(),
        2,
        "tasks survive their project"
    );
}

#[test]
fn a_task_cannot_point_at_an_unknown_project() {
    let server = TestServer::start();
    let admin = server.admin();
    admin
        .post("/api/tasks", json!({"content": "x", "project_id": 4242}))
        .assert_field_error("project_id");
    let t = admin.create_task(json!({"content": "y"}));
    let before = server.task_snapshot(id_of(&t));
    admin
        .put(
            &format!("/api/tasks/{}", id_of(&t)),
            json!({"project_id": 4242}),
        )
        .assert_field_error("project_id");
    assert_eq!(server.task_snapshot(id_of(&t)), before);
}

#[test]
fn unknown_or_non_numeric_project_ids_are_404() {
    let server = TestServer::start();
    let admin = server.admin();
    for bad in ["999", "abc", "1.0", "-1"] {
        admin.get(&format!("/api/projects/{bad}")).assert_error(404);
        admin
            .put(&format!("/api/projects/{bad}"), json!({"name": "x"}))
            .assert_error(404);
        admin
            .delete(&format!("/api/projects/{bad}"))
            .assert_error(404);
    }
}

#[test]
fn stats_count_tasks_by_the_names_the_clients_read() {
    let server = TestServer::start();
    let (worker, wid) = server.agent("counted", "worker");
    let admin = server.admin();
    let pid = id_of(&admin.post("/api/projects", json!({"name": "Stats"})).body);
    admin.create_task(
        json!({"content": "due today", "due_date": date_in(0), "assigned_to_agent_id": wid}),
    );
    admin.create_task(json!({"content": "overdue", "due_date": date_in(-2), "project_id": pid}));
    admin.create_task(json!({"content": "upcoming", "due_date": date_in(3)}));
    let done = id_of(&admin.create_task(json!({"content": "done", "project_id": pid})));
    assert_eq!(
        admin
            .post(&format!("/api/tasks/{done}/complete"), json!({}))
            .status,
        200
    );

    let r = admin.get("/api/stats");

    assert_eq!(r.status, 200, "{}", r.text);
    let s = &r.body;
    for (k, v) in [
        ("total_tasks", 4),
        ("total", 3),
        ("pending_tasks", 3),
        ("completed_today", 1),
        ("due_today", 1),
        ("overdue", 1),
        ("upcoming", 1),
        ("total_completed", 1),
        ("completed_tasks", 1),
        ("total_agents", 1),
        ("active_agents", 1),
    ] {
        assert_eq!(s[k], json!(v), "{k}: {s}");
    }
    assert_eq!(s["by_status"]["open"], json!(3), "{s}");
    assert_eq!(s["by_status"]["completed"], json!(1), "{s}");
    assert!(
        s["by_project"].is_array() || s["by_project"].is_object(),
        "{s}"
    );
    assert!(s["by_agent"].is_array() || s["by_agent"].is_object(), "{s}");
    assert!(
        s["by_project"].to_string().contains("Stats"),
        "by_project names the project: {s}"
    );
    assert!(
        s["by_agent"].to_string().contains("counted"),
        "by_agent: {s}"
    );

    // Scoped like reads: the worker sees only its own task.
    let w = worker.get("/api/stats");
    assert_eq!(w.status, 200, "{}", w.text);
    assert_eq!(w.body["total_tasks"], json!(1), "{}", w.text);
    assert_eq!(w.body["due_today"], json!(1), "{}", w.text);
    assert_eq!(w.body["overdue"], json!(0), "{}", w.text);

    assert_eq!(admin.get("/v1/stats").body["total_tasks"], json!(4));
}

#[test]
fn usage_reports_the_self_hosted_plan_without_limits() {
    let server = TestServer::start();
    let (worker, _) = server.agent("user", "worker");
    server.admin().post("/api/projects", json!({"name": "U"}));
    worker.create_task(json!({"content": "one"}));
    worker.create_task(json!({"content": "two"}));

    let r = worker.get("/api/usage");

    assert_eq!(r.status, 200, "{}", r.text);
    let u = &r.body;
    assert_eq!(u["plan"], json!("self-hosted"));
    assert_eq!(u["task_count_month"], json!(2));
    assert_eq!(u["agent_count"], json!(1));
    assert_eq!(u["webhook_count"], json!(0));
    assert_eq!(u["project_count"], json!(1));
    for (k, v) in u.as_object().unwrap() {
        if k.ends_with("_limit") {
            assert_eq!(v, &Value::Null, "{k} should be null: {u}");
        }
    }
    assert!(
        u.as_object().unwrap().keys().any(|k| k.ends_with("_limit")),
        "{u}"
    );
    assert!(u.as_object().unwrap().contains_key("rate_limit_rpm"), "{u}");
    assert_eq!(u["max_content_chars"], json!(2000));
    assert_eq!(
        server.admin().get("/v1/usage").body["plan"],
        json!("self-hosted")
    );
}

#[test]
fn stats_and_usage_need_credentials() {
    let server = TestServer::start();
    server.anonymous().get("/api/stats").assert_error(401);
    server.anonymous().get("/api/usage").assert_error(401);
}

#[test]
fn health_answers_ok_with_version_and_timestamp_everywhere() {
    let server = TestServer::start();
    for path in ["/health", "/api/health", "/v1/health"] {
        let r = server.anonymous().get(path);
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.body["ok"], json!(true), "{path}");
        assert_eq!(r.body["status"], json!("ok"), "{path}");
        assert_eq!(r.body["service"], json!("delega"), "{path}");
        assert!(r.body["version"].is_string(), "{path}: {}", r.text);
        assert!(r.body["timestamp"].is_string(), "{path}: {}", r.text);
    }
    // Even with a bad key, health is health.
    let r = server.with_key("dlg_bogus").get("/api/health");
    assert_eq!(r.status, 200);
}
