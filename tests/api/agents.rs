//! SPEC §4 agents: create, list, get, update, delete, rotate-key, /agent/me.

use crate::helpers::TestServer;
use serde_json::{json, Value};

#[test]
fn creating_an_agent_answers_201_with_its_key_and_fields() {
    let server = TestServer::start();
    let r = server.admin().post(
        "/api/agents",
        json!({"name": "research-agent", "display_name": "Research", "description": "finds things"}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let a = &r.body;
    assert!(a["id"].is_i64(), "{a}");
    assert_eq!(a["name"], json!("research-agent"));
    assert_eq!(a["display_name"], json!("Research"));
    assert_eq!(a["description"], json!("finds things"));
    assert_eq!(a["role"], json!("worker"));
    assert_eq!(a["is_admin"], json!(false));
    assert_eq!(a["permissions"], json!([]));
    assert_eq!(a["active"], json!(true));
    assert!(a["api_key"].as_str().unwrap().starts_with("dlg_"));
    assert!(a["created_at"].is_string());

    // It can be fetched back, without the key.
    let id = a["id"].as_i64().unwrap();
    let got = server.admin().get(&format!("/api/agents/{id}"));
    assert_eq!(got.status, 200);
    assert_eq!(got.body["name"], json!("research-agent"));
    assert!(
        got.body.get("api_key").is_none_or(Value::is_null),
        "{}",
        got.text
    );
}

#[test]
fn a_duplicate_agent_name_is_a_409_and_creates_nothing() {
    let server = TestServer::start();
    server.create_agent(json!({"name": "twin"}));
    let r = server.admin().post(
        "/api/agents",
        json!({"name": "twin", "display_name": "Other"}),
    );
    r.assert_error(409);
    let list = server.admin().get("/api/agents").body;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["display_name"], Value::Null);
}

#[test]
fn label_is_an_alias_of_display_name_when_creating() {
    let server = TestServer::start();
    let a = server.create_agent(json!({"name": "labelled", "label": "Labelled Bot"}));
    assert_eq!(a["display_name"], json!("Labelled Bot"));
    let got = server.admin().get(&format!("/api/agents/{}", a["id"])).body;
    assert_eq!(got["display_name"], json!("Labelled Bot"));
}

#[test]
fn a_missing_or_malformed_agent_name_is_a_422_naming_name() {
    let server = TestServer::start();
    for body in [
        json!({}),
        json!({"display_name": "No name"}),
        json!({"name": ""}),
        json!({"name": "has spaces"}),
        json!({"name": 42}),
    ] {
        server
            .admin()
            .post("/api/agents", body.clone())
            .assert_field_error("name");
    }
    assert!(server
        .admin()
        .get("/api/agents")
        .body
        .as_array()
        .unwrap()
        .is_empty());
}

#[test]
fn admins_and_coordinators_list_agents_with_their_open_task_count() {
    let server = TestServer::start();
    let (coord, _) = server.agent("lead", "coordinator");
    let (_, busy) = server.agent("busy", "worker");
    let admin = server.admin();
    let t1 = admin.create_task(json!({"content": "one", "assigned_to_agent_id": busy}));
    admin.create_task(json!({"content": "two", "assigned_to_agent_id": "busy"}));
    admin.create_task(json!({"content": "three", "assigned_to_agent_id": busy}));
    let r = admin.post(&format!("/api/tasks/{}/complete", t1["id"]), json!({}));
    assert_eq!(r.status, 200, "{}", r.text);

    for (who, client) in [("admin", &admin), ("coordinator", &coord)] {
        let r = client.get("/api/agents");
        assert_eq!(r.status, 200, "{who}: {}", r.text);
        let list = r.body.as_array().unwrap();
        assert_eq!(list.len(), 2, "{who}: {}", r.text);
        let row = |name: &str| list.iter().find(|a| a["name"] == json!(name)).unwrap();
        assert_eq!(row("busy")["open_task_count"], json!(2), "{who}");
        assert_eq!(row("lead")["open_task_count"], json!(0), "{who}");
        assert!(
            !r.text.contains("api_key\":\"dlg_"),
            "{who} list leaks keys"
        );
    }
}

#[test]
fn an_agent_is_addressed_by_id_or_by_name() {
    let server = TestServer::start();
    let a = server.create_agent(json!({"name": "named-one"}));
    let id = a["id"].as_i64().unwrap();
    for path in [
        format!("/api/agents/{id}"),
        "/api/agents/named-one".to_string(),
        format!("/v1/agents/{id}"),
        "/v1/agents/named-one".to_string(),
    ] {
        let r = server.admin().get(&path);
        assert_eq!(r.status, 200, "{path}: {}", r.text);
        assert_eq!(r.body["id"], json!(id), "{path}");
    }
    server.admin().get("/api/agents/nobody").assert_error(404);
    server.admin().get("/api/agents/999999").assert_error(404);
}

#[test]
fn put_and_patch_update_an_agent() {
    let server = TestServer::start();
    let (worker, id) = server.agent("editable", "worker");

    let r = server.admin().put(
        &format!("/api/agents/{id}"),
        json!({"display_name": "Editable", "description": "first"}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["display_name"], json!("Editable"));
    assert_eq!(r.body["description"], json!("first"));

    let r = server.admin().patch(
        &format!("/api/agents/{id}"),
        json!({"description": "second"}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["description"], json!("second"));
    assert_eq!(
        r.body["display_name"],
        json!("Editable"),
        "PATCH keeps other fields"
    );

    // An admin changes the role; it takes effect for the agent's key at once.
    worker.get("/api/agents").assert_error(403);
    let r = server
        .admin()
        .put(&format!("/api/agents/{id}"), json!({"role": "coordinator"}));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["role"], json!("coordinator"));
    assert_eq!(r.body["is_admin"], json!(false));
    assert_eq!(worker.get("/api/agents").status, 200);

    let r = server
        .admin()
        .put(&format!("/api/agents/{id}"), json!({"is_admin": true}));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["role"], json!("admin"));

    // Renaming to a taken name conflicts.
    server.create_agent(json!({"name": "taken"}));
    server
        .admin()
        .put(&format!("/api/agents/{id}"), json!({"name": "taken"}))
        .assert_error(409);
    let got = server.admin().get(&format!("/api/agents/{id}")).body;
    assert_eq!(got["name"], json!("editable"));
}

#[test]
fn deleting_an_agent_with_open_assigned_tasks_is_a_409_until_they_are_done() {
    let server = TestServer::start();
    let (worker, id) = server.agent("leaving", "worker");
    let task = server
        .admin()
        .create_task(json!({"content": "unfinished", "assigned_to_agent_id": id}));
    let tid = task["id"].as_i64().unwrap();

    server
        .admin()
        .delete(&format!("/api/agents/{id}"))
        .assert_error(409);
    assert_eq!(server.admin().get(&format!("/api/agents/{id}")).status, 200);
    assert_eq!(worker.get("/api/agent/me").status, 200);

    let r = server
        .admin()
        .post(&format!("/api/tasks/{tid}/complete"), json!({}));
    assert_eq!(r.status, 200, "{}", r.text);
    let r = server.admin().delete(&format!("/api/agents/{id}"));
    assert_eq!(r.status, 200, "{}", r.text);
    server
        .admin()
        .get(&format!("/api/agents/{id}"))
        .assert_error(404);
    worker.get("/api/agent/me").assert_error(401);
    // The task survives its assignee.
    assert_eq!(server.admin().get(&format!("/api/tasks/{tid}")).status, 200);
}

#[test]
fn an_agent_cannot_delete_itself() {
    let server = TestServer::start();
    let (boss, id) = server.agent("boss", "admin");
    boss.delete(&format!("/api/agents/{id}")).assert_error(409);
    assert_eq!(boss.get("/api/agent/me").status, 200);
}

#[test]
fn deleting_an_unknown_agent_is_a_404() {
    let server = TestServer::start();
    server
        .admin()
        .delete("/api/agents/424242")
        .assert_error(404);
    server.admin().delete("/api/agents/ghost").assert_error(404);
}

#[test]
fn agent_me_shows_the_agent_at_top_level_and_under_agent_with_the_account() {
    let server = TestServer::start();
    let a = server
        .create_agent(json!({"name": "selfaware", "display_name": "Self", "role": "coordinator"}));
    let me = server
        .with_key(a["api_key"].as_str().unwrap())
        .get("/api/agent/me");
    assert_eq!(me.status, 200, "{}", me.text);
    let b = &me.body;
    for (k, v) in [
        ("id", a["id"].clone()),
        ("name", json!("selfaware")),
        ("display_name", json!("Self")),
        ("role", json!("coordinator")),
    ] {
        assert_eq!(b[k], v, "top-level {k}: {b}");
        assert_eq!(b["agent"][k], v, "agent.{k}: {b}");
    }
    assert_eq!(b["account"]["plan"], json!("self-hosted"));
    assert!(!me.text.contains(a["api_key"].as_str().unwrap()));

    let v1 = server
        .with_key(a["api_key"].as_str().unwrap())
        .get("/v1/agent/me");
    assert_eq!(v1.status, 200);
    assert_eq!(v1.body["agent"]["name"], json!("selfaware"));
}

#[test]
fn agent_me_for_the_project_token_has_a_null_agent() {
    let server = TestServer::start();
    let me = server.admin().get("/api/agent/me");
    assert_eq!(me.status, 200, "{}", me.text);
    assert!(me.body.as_object().unwrap().contains_key("agent"));
    assert_eq!(me.body["agent"], Value::Null);
    assert_eq!(me.body["account"]["plan"], json!("self-hosted"));
}

#[test]
fn rotate_key_returns_a_new_key_only_in_its_answer() {
    let server = TestServer::start();
    let a = server.create_agent(json!({"name": "spinner"}));
    let id = a["id"].as_i64().unwrap();
    let r = server
        .admin()
        .post(&format!("/api/agents/{id}/rotate-key"), json!({}));
    assert_eq!(r.status, 200, "{}", r.text);
    let key = r.body["api_key"].as_str().unwrap();
    assert_ne!(key, a["api_key"].as_str().unwrap());
    assert_eq!(r.body["id"], json!(id));
    let got = server.admin().get(&format!("/api/agents/{id}"));
    assert!(!got.text.contains(key));
    assert_eq!(got.body["key_prefix"], json!(&key[..12]));
    server
        .admin()
        .post("/api/agents/999999/rotate-key", json!({}))
        .assert_error(404);
}

#[test]
fn agent_names_are_unique_regardless_of_case() {
    let server = TestServer::start();
    server.create_agent(json!({"name": "CaseBot"}));
    let r = server
        .admin()
        .post("/api/agents", json!({"name": "casebot"}));
    r.assert_error(409);
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

#[test]
fn deleting_an_agent_keeps_the_tasks_and_comments_it_wrote() {
    let server = TestServer::start();
    let (author, id) = server.agent("author", "worker");
    let t = author.create_task(json!({"content": "written by author"}));
    let tid = t["id"].as_i64().unwrap();
    let c = author.post(
        &format!("/api/tasks/{tid}/comments"),
        json!({"content": "by author"}),
    );
    assert_eq!(c.status, 201);
    let done = author.create_task(json!({"content": "finished by author"}));
    let did = done["id"].as_i64().unwrap();
    assert_eq!(
        author
            .post(&format!("/api/tasks/{did}/complete"), json!({}))
            .status,
        200
    );

    let r = server.admin().delete(&format!("/api/agents/{id}"));
    assert_eq!(r.status, 200, "{}", r.text);

    let task = server.task_snapshot(tid);
    assert_eq!(task["content"], json!("written by author"));
    assert_eq!(task["created_by_agent_id"], Value::Null);
    assert_eq!(task["created_by"], Value::Null);
    assert_eq!(task["comments"][0]["content"], json!("by author"));
    let finished = server.task_snapshot(did);
    assert_eq!(finished["status"], json!("completed"));
    assert_eq!(finished["completed_by_agent_id"], Value::Null);
    // The name is free again.
    server.create_agent(json!({"name": "author"}));
}
