//! Defects found in review, each pinned by the request sequence that
//! triggered it.

use crate::helpers::TestServer;
use serde_json::json;

#[test]
fn a_new_agent_never_inherits_a_deleted_agents_id_or_history() {
    let server = TestServer::start();
    let admin = server.admin();
    let (_, bob) = server.agent("bob", "worker");
    let (temp, temp_id) = server.agent("temp", "worker");
    let t = temp.create_task(json!({"content": "temp's secret"}));
    let r = temp.put(
        &format!("/api/tasks/{}", t["id"]),
        json!({"assigned_to_agent_id": bob}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(admin.delete(&format!("/api/agents/{temp_id}")).status, 200);

    let (intern, intern_id) = server.agent("intern", "worker");
    assert_ne!(intern_id, temp_id, "ids are not reused");
    intern
        .get(&format!("/api/tasks/{}", t["id"]))
        .assert_error(404);
    assert_eq!(intern.get("/api/events").body, json!([]));
}

#[test]
fn a_new_task_never_inherits_a_deleted_tasks_id_or_readers() {
    let server = TestServer::start();
    let (a, _) = server.agent("a", "worker");
    let (b, b_id) = server.agent("b", "worker");
    let (c, c_id) = server.agent("c", "worker");
    let t = a.create_task(json!({"content": "handed on"}));
    let r = a.post(
        &format!("/api/tasks/{}/delegate", t["id"]),
        json!({"agent_id": b_id}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(b.delete(&format!("/api/tasks/{}", t["id"])).status, 200);

    // Assigned to itself, so it is not in anyone's claim queue.
    let private = c.create_task(json!({"content": "c's own", "assigned_to_agent_id": c_id}));
    assert_ne!(private["id"], t["id"], "ids are not reused");
    assert_eq!(private["root_task_id"], private["id"]);
    a.get(&format!("/api/tasks/{}", private["id"]))
        .assert_error(404);
}

#[test]
fn forwarded_host_headers_cannot_unlock_the_bootstrap() {
    let server = TestServer::start();
    for (header, value) in [
        ("X-Forwarded-Host", "localhost"),
        ("Forwarded", "host=localhost"),
    ] {
        let r = server.anonymous().raw(
            "POST",
            "/api/agents",
            Some(br#"{"name":"sneaky"}"#),
            &[("Host", "evil.example:18890"), (header, value)],
        );
        r.assert_error(401);
    }
    // The genuine loopback bootstrap still works.
    let r = server
        .anonymous()
        .post("/api/agents", json!({"name": "first"}));
    assert_eq!(r.status, 201, "{}", r.text);
}

#[test]
fn dependents_announce_every_status_change() {
    let server = TestServer::start();
    let (w, _) = server.agent("w", "worker");
    let dep = w.create_task(json!({"content": "research"}));
    let other = w.create_task(json!({"content": "other research"}));
    let writer = w.create_task(json!({"content": "write", "depends_on": [dep["id"], other["id"]]}));
    let id = writer["id"].clone();
    let events = |kind: &str| {
        w.get(&format!("/api/events?task_id={id}&types={kind}"))
            .body
            .as_array()
            .unwrap()
            .clone()
    };

    // A failed dependency: the writer is re-announced as dependency_failed.
    w.post(
        &format!("/api/tasks/{}/fail", dep["id"]),
        json!({"reason": "no data"}),
    );
    let updated = events("task.updated");
    assert_eq!(
        updated.last().unwrap()["task"]["blocked_reason"],
        "dependency_failed"
    );

    // Removing the unfinished dependencies opens it, with task.unblocked.
    w.delete(&format!("/api/tasks/{}", other["id"]));
    w.delete(&format!("/api/tasks/{id}/dependencies/{}", dep["id"]));
    let unblocked = events("task.unblocked");
    assert_eq!(unblocked.len(), 1, "{unblocked:?}");
    assert_eq!(unblocked[0]["task"]["status"], "open");
}

#[test]
fn completing_a_recurring_task_at_the_end_of_the_calendar_does_not_fail() {
    let server = TestServer::start();
    let (w, _) = server.agent("w", "worker");
    let t = w.create_task(json!({
        "content": "forever", "due_date": "9999-12-31", "is_recurring": true, "recurring_type": "daily"
    }));
    let r = w.post(&format!("/api/tasks/{}/complete", t["id"]), json!({}));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], "completed");
}

#[test]
fn queue_endpoints_do_not_reveal_tasks_outside_the_queue() {
    let server = TestServer::start();
    let (a, _) = server.agent("a", "worker");
    let (b, _) = server.agent("b", "worker");
    let t = a.create_task(json!({"content": "done already"}));
    a.post(&format!("/api/tasks/{}/complete", t["id"]), json!({}));
    b.post(&format!("/api/tasks/{}/claim", t["id"]), json!({}))
        .assert_error(404);
    b.post(&format!("/api/tasks/{}/release", t["id"]), json!({}))
        .assert_error(404);
}
