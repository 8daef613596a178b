//! Lists, chains and single-task reads answer from a cache of rendered
//! tasks; every change must show in the very next read.

use crate::helpers::TestServer;
use serde_json::{json, Value};

fn listed(client: &crate::helpers::Client, id: &Value) -> Value {
    let list = client.get("/api/tasks?include_completed=true");
    assert_eq!(list.status, 200, "{}", list.text);
    list.body
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == *id)
        .cloned()
        .unwrap_or_else(|| panic!("task {id} not listed"))
}

#[test]
fn every_kind_of_change_shows_in_the_next_list() {
    let server = TestServer::start();
    let admin = server.admin();
    let (w, wid) = server.agent("writer", "worker");
    let project = admin.post("/api/projects", json!({"name": "Alpha"})).body;
    let dep = w.create_task(json!({"content": "first"}));
    let t = w.create_task(
        json!({"content": "draft", "project_id": project["id"], "depends_on": [dep["id"]]}),
    );
    let id = t["id"].clone();
    let warm = listed(&w, &id);
    assert_eq!(warm["content"], "draft");
    assert_eq!(warm, listed(&w, &id), "a second read answers the same");

    w.put(&format!("/api/tasks/{id}"), json!({"content": "final"}));
    assert_eq!(listed(&w, &id)["content"], "final", "own update");

    admin.put(&format!("/api/agents/{wid}"), json!({"name": "author"}));
    assert_eq!(listed(&w, &id)["created_by"], "author", "agent renamed");

    admin.put(
        &format!("/api/projects/{}", project["id"]),
        json!({"name": "Beta"}),
    );
    assert_eq!(
        listed(&w, &id)["project"]["name"],
        "Beta",
        "project renamed"
    );

    w.post(
        &format!("/api/tasks/{id}/subtasks"),
        json!({"content": "step"}),
    );
    assert_eq!(
        listed(&w, &id)["subtasks"][0]["content"],
        "step",
        "subtask added"
    );

    assert_eq!(listed(&w, &id)["status"], "blocked");
    w.post(&format!("/api/tasks/{}/complete", dep["id"]), json!({}));
    assert_eq!(listed(&w, &id)["status"], "open", "dependency completed");

    w.delete(&format!("/api/tasks/{}", dep["id"]));
    assert_eq!(
        listed(&w, &id)["depends_on"],
        json!([]),
        "dependency deleted"
    );

    w.patch(&format!("/api/tasks/{id}/context"), json!({"k": 1}));
    let after = listed(&w, &id);
    assert_eq!(after["context"], json!({"k": 1}));
    let got = w.get(&format!("/api/tasks/{id}")).body;
    assert_eq!(got["context"], json!({"k": 1}));
    assert_eq!(got["comments"], json!([]));
    assert_eq!(got["links"], json!([]));
    let mut without_detail = got.clone();
    without_detail.as_object_mut().unwrap().remove("comments");
    without_detail.as_object_mut().unwrap().remove("links");
    assert_eq!(without_detail, after, "GET and list render the task alike");

    admin.delete(&format!("/api/projects/{}", project["id"]));
    let orphan = listed(&w, &id);
    assert!(
        orphan["project"].is_null() && orphan["project_id"].is_null(),
        "project deleted"
    );
}
