//! SPEC §3: credentials, bootstrap, open mode, roles and scoped reads.

use std::sync::{Arc, Barrier};

use crate::helpers::{ids, Auth, Client, TestServer};
use serde_json::{json, Value};

fn key_of(agent: &Value) -> String {
    agent["api_key"].as_str().expect("api_key").to_string()
}

#[test]
fn an_agent_key_works_in_x_agent_key_and_in_authorization_bearer() {
    let server = TestServer::start();
    let agent = server.create_agent(json!({"name": "keyholder"}));
    let key = key_of(&agent);

    for (how, client) in [
        ("X-Agent-Key", server.client(Auth::Key(key.clone()))),
        ("Bearer", server.client(Auth::Bearer(key.clone()))),
    ] {
        let r = client.get("/api/agent/me");
        assert_eq!(r.status, 200, "{how}: {}", r.text);
        assert_eq!(r.body["name"], json!("keyholder"), "{how}");
        assert_eq!(r.body["id"], agent["id"], "{how}");
    }
}

#[test]
fn agent_keys_are_dlg_plus_43_url_safe_chars_and_only_a_12_char_prefix_is_shown_later() {
    let server = TestServer::start();
    let agent = server.create_agent(json!({"name": "keyformat"}));
    let key = key_of(&agent);

    assert!(key.starts_with("dlg_"), "{key}");
    assert_eq!(key.len(), 47, "{key}");
    assert!(
        key[4..]
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
        "not url-safe: {key}"
    );
    assert_eq!(agent["key_prefix"], json!(&key[..12]));

    // The key never appears again.
    let id = agent["id"].as_i64().unwrap();
    for path in [
        format!("/api/agents/{id}"),
        "/api/agents".to_string(),
        "/api/agent/me".to_string(),
    ] {
        let r = server.with_key(&key).get(&path);
        let r = if r.status == 403 {
            server.admin().get(&path)
        } else {
            r
        };
        assert_eq!(r.status, 200, "{path}: {}", r.text);
        assert!(!r.text.contains(&key), "{path} leaks the key: {}", r.text);
    }
}

#[test]
fn the_project_token_acts_as_an_admin_with_null_attribution() {
    let server = TestServer::start();
    let admin = server.admin();

    // Admin powers: manage agents and projects.
    assert_eq!(admin.get("/api/agents").status, 200);
    let r = admin.post("/api/projects", json!({"name": "Ops"}));
    assert_eq!(r.status, 201, "{}", r.text);

    // Attribution: null.
    let task = admin.create_task(json!({"content": "by the token"}));
    assert_eq!(task["created_by_agent_id"], Value::Null);
    assert_eq!(task["created_by"], Value::Null);
    assert_eq!(task["created_by_agent"], Value::Null);
    let id = task["id"].as_i64().unwrap();
    let done = admin.post(&format!("/api/tasks/{id}/complete"), json!({}));
    assert_eq!(done.status, 200, "{}", done.text);
    assert_eq!(done.body["status"], json!("completed"));
    assert_eq!(done.body["completed_by_agent_id"], Value::Null);
    assert_eq!(done.body["completed_by"], Value::Null);

    let me = admin.get("/api/agent/me");
    assert_eq!(me.status, 200);
    assert_eq!(me.body["agent"], Value::Null);
}

#[test]
fn requests_without_or_with_bad_credentials_are_refused_with_401() {
    let server = TestServer::start();
    let (worker, _) = server.agent("somebody", "worker");
    let real_key = worker.key().unwrap().to_string();
    let tampered = format!("{}x", &real_key[..real_key.len() - 1]);
    let anon = server.anonymous();

    let cases: Vec<(&str, Vec<(&str, String)>)> = vec![
        ("no credentials at all", vec![]),
        (
            "made-up agent key",
            vec![("X-Agent-Key", format!("dlg_{}", "A".repeat(43)))],
        ),
        (
            "real key with one char changed",
            vec![("X-Agent-Key", tampered.clone())],
        ),
        ("empty X-Agent-Key", vec![("X-Agent-Key", String::new())]),
        (
            "wrong project token",
            vec![("Authorization", format!("Bearer dlp_{}", "B".repeat(43)))],
        ),
        (
            "bearer garbage",
            vec![("Authorization", "Bearer not-a-key".into())],
        ),
        (
            "bearer without token",
            vec![("Authorization", "Bearer".into())],
        ),
        (
            "basic auth is not a credential",
            vec![("Authorization", "Basic dXNlcjpwYXNz".into())],
        ),
        (
            "a 6 KB key",
            vec![("X-Agent-Key", format!("dlg_{}", "k".repeat(6000)))],
        ),
        (
            "project token in X-Agent-Key with a typo",
            vec![("X-Agent-Key", format!("{}z", server.token))],
        ),
    ];
    for path in ["/api/tasks", "/v1/tasks", "/api/agent/me", "/api/projects"] {
        for (why, headers) in &cases {
            let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let r = anon.raw("GET", path, None, &h);
            assert_eq!(r.status, 401, "{why} on {path}: {}", r.text);
            r.assert_error(401);
        }
    }
    // Creating with a bad key does not create anything either.
    let r = anon.raw(
        "POST",
        "/api/tasks",
        Some(br#"{"content":"sneaky"}"#),
        &[("X-Agent-Key", tampered.as_str())],
    );
    r.assert_error(401);
    assert!(server.all_task_ids().is_empty());
}

#[test]
fn the_first_agent_can_be_created_without_credentials_from_loopback_and_becomes_admin() {
    // Arrange: a fresh server, no agents.
    let server = TestServer::start();
    let anon = server.anonymous();

    // Act
    let r = anon.post("/api/agents", json!({"name": "founder", "role": "worker"}));

    // Assert: created as admin whatever role was asked for.
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["role"], json!("admin"));
    assert_eq!(r.body["is_admin"], json!(true));
    let founder = server.with_key(r.body["api_key"].as_str().unwrap());
    assert_eq!(founder.get("/api/agents").status, 200);

    // A second credential-less create is refused now that an agent exists.
    let r = anon.post("/api/agents", json!({"name": "intruder"}));
    r.assert_error(401);
    let list = server.admin().get("/api/agents");
    assert_eq!(list.body.as_array().unwrap().len(), 1, "{}", list.text);
}

#[test]
fn concurrent_bootstrap_requests_create_exactly_one_admin() {
    let server = TestServer::start();
    let n = 8;
    let barrier = Arc::new(Barrier::new(n));
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let client = server.anonymous();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                client.post("/api/agents", json!({"name": format!("boot-{i}")}))
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();

    let created: Vec<_> = results.iter().filter(|r| r.status == 201).collect();
    assert_eq!(
        created.len(),
        1,
        "statuses: {:?}",
        results.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    for r in results.iter().filter(|r| r.status != 201) {
        r.assert_error(401);
    }
    let list = server.admin().get("/api/agents");
    let agents = list.body.as_array().unwrap();
    assert_eq!(agents.len(), 1, "{}", list.text);
    assert_eq!(agents[0]["role"], json!("admin"));
    assert_eq!(agents[0]["name"], created[0].body["name"]);
}

#[test]
fn open_mode_lets_requests_without_credentials_act_as_admin() {
    let server = TestServer::start_with(&[("DELEGA_REQUIRE_AUTH", "false")]);
    let anon = server.anonymous();

    assert_eq!(anon.get("/api/agents").status, 200);
    let r = anon.post("/api/agents", json!({"name": "sandbox-a"}));
    assert_eq!(r.status, 201, "{}", r.text);
    let r = anon.post("/api/agents", json!({"name": "sandbox-b"}));
    assert_eq!(r.status, 201, "second anonymous agent: {}", r.text);
    let r = anon.post("/api/projects", json!({"name": "Sandbox"}));
    assert_eq!(r.status, 201, "{}", r.text);
    let task = anon.create_task(json!({"content": "anonymous work"}));
    assert_eq!(task["created_by_agent_id"], Value::Null);
    let r = anon.get(&format!("/v1/tasks/{}", task["id"]));
    assert_eq!(r.status, 200, "{}", r.text);
}

#[test]
fn auth_is_required_by_default() {
    let server = TestServer::start();
    let _ = server.agent("first", "admin");
    server.anonymous().get("/api/tasks").assert_error(401);
    server
        .anonymous()
        .post("/api/tasks", json!({"content": "x"}))
        .assert_error(401);
}

#[test]
fn is_admin_and_role_are_two_views_of_the_same_thing() {
    let server = TestServer::start();
    let cases = [
        (json!({"name": "r-admin", "role": "admin"}), "admin", true),
        (json!({"name": "ia-admin", "is_admin": true}), "admin", true),
        (
            json!({"name": "ia-not", "is_admin": false}),
            "worker",
            false,
        ),
        (
            json!({"name": "r-coord", "role": "coordinator"}),
            "coordinator",
            false,
        ),
        (json!({"name": "r-default"}), "worker", false),
    ];
    for (body, role, is_admin) in cases {
        let a = server.create_agent(body.clone());
        assert_eq!(a["role"], json!(role), "{body}");
        assert_eq!(a["is_admin"], json!(is_admin), "{body}");
        let me = server.with_key(&key_of(&a)).get("/api/agent/me");
        assert_eq!(me.body["role"], json!(role), "{body}");
        assert_eq!(me.body["is_admin"], json!(is_admin), "{body}");
    }
}

/// Two workers, each with a task of its own (created by the project token
/// and assigned to it).
fn two_workers(server: &TestServer) -> ((Client, i64, i64), (Client, i64, i64)) {
    let (a, a_id) = server.agent("worker-a", "worker");
    let (b, b_id) = server.agent("worker-b", "worker");
    let ta = server
        .admin()
        .create_task(json!({"content": "A's task", "assigned_to_agent_id": a_id}))["id"]
        .as_i64()
        .unwrap();
    let tb = server
        .admin()
        .create_task(json!({"content": "B's task", "assigned_to_agent_id": b_id}))["id"]
        .as_i64()
        .unwrap();
    ((a, a_id, ta), (b, b_id, tb))
}

#[test]
fn a_worker_cannot_read_another_workers_task() {
    let server = TestServer::start();
    let ((a, _, ta), (_, b_id, tb)) = two_workers(&server);

    // Its own task: yes.
    assert_eq!(a.get(&format!("/api/tasks/{ta}")).status, 200);
    // The other's: 404, not 403, under both dialects.
    for prefix in ["/api", "/v1"] {
        a.get(&format!("{prefix}/tasks/{tb}")).assert_error(404);
        a.get(&format!("{prefix}/tasks/{tb}/comments"))
            .assert_error(404);
        a.get(&format!("{prefix}/tasks/{tb}/subtasks"))
            .assert_error(404);
    }
    // Not in its list, even when asked for by assignee.
    let listed = ids(&a.get("/api/tasks?include_completed=true").body);
    assert_eq!(listed, vec![ta]);
    let r = a.get(&format!("/api/tasks?assigned_to={b_id}"));
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(ids(&r.body).is_empty(), "{}", r.text);
}

#[test]
fn a_worker_cannot_modify_another_workers_task_and_nothing_changes() {
    let server = TestServer::start();
    let ((a, _, _), (_, _, tb)) = two_workers(&server);
    let before = server.task_snapshot(tb);

    let attempts: Vec<(&str, &str, String, Option<Value>)> = vec![
        (
            "PUT content",
            "PUT",
            format!("/api/tasks/{tb}"),
            Some(json!({"content": "hijacked"})),
        ),
        (
            "PATCH priority",
            "PATCH",
            format!("/api/tasks/{tb}"),
            Some(json!({"priority": 1})),
        ),
        ("DELETE", "DELETE", format!("/api/tasks/{tb}"), None),
        (
            "complete",
            "POST",
            format!("/api/tasks/{tb}/complete"),
            Some(json!({})),
        ),
        (
            "fail",
            "POST",
            format!("/api/tasks/{tb}/fail"),
            Some(json!({"reason": "x"})),
        ),
        (
            "comment",
            "POST",
            format!("/api/tasks/{tb}/comments"),
            Some(json!({"content": "hi"})),
        ),
        (
            "subtask",
            "POST",
            format!("/api/tasks/{tb}/subtasks"),
            Some(json!({"content": "s"})),
        ),
        (
            "reassign to self",
            "PUT",
            format!("/api/tasks/{tb}"),
            Some(json!({"assigned_to_agent_id": "worker-a"})),
        ),
    ];
    for (why, method, path, body) in attempts {
        let r = a.send(method, &path, body);
        assert_eq!(r.status, 404, "{why}: {}", r.text);
        r.assert_error(404);
    }
    assert_eq!(server.task_snapshot(tb), before);
}

#[test]
fn a_worker_reads_tasks_assigned_to_it_and_tasks_it_created() {
    let server = TestServer::start();
    let ((a, a_id, ta), _) = two_workers(&server);
    let own = a.create_task(json!({"content": "self-made"}))["id"]
        .as_i64()
        .unwrap();
    assert_eq!(a.get(&format!("/api/tasks/{ta}")).status, 200);
    assert_eq!(a.get(&format!("/api/tasks/{own}")).status, 200);
    let mut listed = ids(&a.get("/api/tasks").body);
    listed.sort();
    assert_eq!(listed, vec![ta, own]);
    // It may modify both.
    let r = a.put(&format!("/api/tasks/{ta}"), json!({"priority": 1}));
    assert_eq!(r.status, 200, "{}", r.text);
    let r = a.put(
        &format!("/api/tasks/{own}"),
        json!({"assigned_to_agent_id": a_id}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
}

#[test]
fn a_worker_can_read_tasks_downstream_of_the_tasks_it_created() {
    let server = TestServer::start();
    let (a, _) = server.agent("delegator", "worker");
    let (b, _) = server.agent("middle", "worker");
    let (_, d_id) = server.agent("leaf", "worker");
    let (outsider, _) = server.agent("outsider", "worker");

    // A creates a task and gives it to B.
    let root =
        a.create_task(json!({"content": "ship the feature", "assigned_to_agent_id": "middle"}));
    let root_id = root["id"].as_i64().unwrap();
    // B delegates a child to D; D's grandchild is created with parent_task_id.
    let child = b.post(
        &format!("/api/tasks/{root_id}/delegate"),
        json!({"content": "write the tests", "assigned_to_agent_id": d_id}),
    );
    assert_eq!(child.status, 201, "{}", child.text);
    let child_id = child.body["id"].as_i64().unwrap();
    let grandchild = b.create_task(json!({
        "content": "fixture data", "parent_task_id": child_id, "assigned_to_agent_id": d_id
    }));
    let grandchild_id = grandchild["id"].as_i64().unwrap();

    // A created neither child, is assigned neither, yet reads both.
    for id in [child_id, grandchild_id] {
        let r = a.get(&format!("/api/tasks/{id}"));
        assert_eq!(r.status, 200, "task {id}: {}", r.text);
    }
    let mut listed = ids(&a.get("/api/tasks").body);
    listed.sort();
    assert_eq!(listed, vec![root_id, child_id, grandchild_id]);

    // Someone unrelated reads none of them.
    for id in [root_id, child_id, grandchild_id] {
        outsider.get(&format!("/api/tasks/{id}")).assert_error(404);
    }
    assert!(ids(&outsider.get("/api/tasks").body).is_empty());
}

#[test]
fn the_tasks_read_all_permission_reads_everything_but_modifies_nothing() {
    let server = TestServer::start();
    let ((_, _, ta), (_, _, tb)) = two_workers(&server);
    let auditor =
        server.create_agent(json!({"name": "auditor", "permissions": ["tasks.read_all"]}));
    assert_eq!(auditor["permissions"], json!(["tasks.read_all"]));
    assert_eq!(auditor["role"], json!("worker"));
    let auditor = server.with_key(&key_of(&auditor));

    for id in [ta, tb] {
        assert_eq!(auditor.get(&format!("/api/tasks/{id}")).status, 200);
    }
    let mut listed = ids(&auditor.get("/api/tasks").body);
    listed.sort();
    assert_eq!(listed, vec![ta, tb]);

    let before = server.task_snapshot(tb);
    for (why, method, path, body) in [
        (
            "PUT",
            "PUT",
            format!("/api/tasks/{tb}"),
            Some(json!({"content": "edited"})),
        ),
        ("DELETE", "DELETE", format!("/api/tasks/{tb}"), None),
        (
            "complete",
            "POST",
            format!("/api/tasks/{tb}/complete"),
            Some(json!({})),
        ),
        (
            "fail",
            "POST",
            format!("/api/tasks/{tb}/fail"),
            Some(json!({})),
        ),
    ] {
        let r = auditor.send(method, &path, body);
        assert_eq!(r.status, 403, "{why}: {}", r.text);
        r.assert_error(403);
    }
    assert_eq!(server.task_snapshot(tb), before);
}

#[test]
fn a_coordinator_reads_and_assigns_every_task_but_cannot_rewrite_others_tasks() {
    let server = TestServer::start();
    let ((_, a_id, _), (_, _, tb)) = two_workers(&server);
    let (coord, _) = server.agent("coord", "coordinator");

    assert_eq!(coord.get(&format!("/api/tasks/{tb}")).status, 200);
    assert_eq!(ids(&coord.get("/api/tasks").body).len(), 2);
    assert_eq!(coord.get("/api/agents").status, 200);

    let r = coord.post(
        &format!("/api/tasks/{tb}/comments"),
        json!({"content": "status?"}),
    );
    assert_eq!(r.status, 201, "{}", r.text);

    let r = coord.put(
        &format!("/api/tasks/{tb}"),
        json!({"assigned_to_agent_id": a_id}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["assigned_to_agent_id"], json!(a_id));

    let before = server.task_snapshot(tb);
    coord
        .put(&format!("/api/tasks/{tb}"), json!({"content": "rewritten"}))
        .assert_error(403);
    assert_eq!(server.task_snapshot(tb), before);
}

#[test]
fn non_admins_cannot_manage_agents_or_projects() {
    let server = TestServer::start();
    let (worker, _) = server.agent("w", "worker");
    let (coord, _) = server.agent("c", "coordinator");
    let (_, victim) = server.agent("victim", "worker");
    let project = server
        .admin()
        .post("/api/projects", json!({"name": "Keep"}));
    let pid = project.body["id"].as_i64().unwrap();

    for (who, client) in [("worker", &worker), ("coordinator", &coord)] {
        let attempts: Vec<(&str, &str, String, Option<Value>)> = vec![
            (
                "create agent",
                "POST",
                "/api/agents".into(),
                Some(json!({"name": format!("new-{who}")})),
            ),
            (
                "update agent",
                "PUT",
                format!("/api/agents/{victim}"),
                Some(json!({"display_name": "x"})),
            ),
            (
                "promote agent",
                "PATCH",
                format!("/api/agents/{victim}"),
                Some(json!({"role": "admin"})),
            ),
            (
                "delete agent",
                "DELETE",
                format!("/api/agents/{victim}"),
                None,
            ),
            (
                "rotate other's key",
                "POST",
                format!("/api/agents/{victim}/rotate-key"),
                Some(json!({})),
            ),
            (
                "create project",
                "POST",
                "/api/projects".into(),
                Some(json!({"name": "Mine"})),
            ),
            (
                "update project",
                "PUT",
                format!("/api/projects/{pid}"),
                Some(json!({"name": "Renamed"})),
            ),
            (
                "delete project",
                "DELETE",
                format!("/api/projects/{pid}"),
                None,
            ),
        ];
        for (what, method, path, body) in attempts {
            let r = client.send(method, &path, body);
            assert_eq!(r.status, 403, "{who} {what}: {}", r.text);
            r.assert_error(403);
        }
    }
    // Nothing changed.
    let agents = server.admin().get("/api/agents").body;
    assert_eq!(agents.as_array().unwrap().len(), 3, "{agents}");
    let v = server.admin().get(&format!("/api/agents/{victim}")).body;
    assert_eq!(v["role"], json!("worker"));
    assert_eq!(v["display_name"], Value::Null);
    let p = server.admin().get(&format!("/api/projects/{pid}")).body;
    assert_eq!(p["name"], json!("Keep"));
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
fn a_worker_cannot_list_agents() {
    let server = TestServer::start();
    let (worker, _) = server.agent("lonely", "worker");
    worker.get("/api/agents").assert_error(403);
}

#[test]
fn non_admins_cannot_promote_or_rename_themselves() {
    let server = TestServer::start();
    for role in ["worker", "coordinator"] {
        let (me, id) = server.agent(&format!("climber-{role}"), role);
        let before = server.admin().get(&format!("/api/agents/{id}")).body;
        for body in [
            json!({"role": "admin"}),
            json!({"role": "coordinator"}),
            json!({"is_admin": true}),
            json!({"permissions": ["tasks.read_all"]}),
            json!({"name": "new-name"}),
            json!({"active": false}),
        ] {
            for method in ["PUT", "PATCH"] {
                let r = me.send(method, &format!("/api/agents/{id}"), Some(body.clone()));
                assert_eq!(r.status, 403, "{role} {method} {body}: {}", r.text);
                r.assert_error(403);
            }
        }
        assert_eq!(
            server.admin().get(&format!("/api/agents/{id}")).body,
            before
        );
        assert_eq!(me.get("/api/agent/me").body["role"], json!(role));

        // Harmless fields are fine.
        let r = me.put(
            &format!("/api/agents/{id}"),
            json!({"display_name": "Climber"}),
        );
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["display_name"], json!("Climber"));
    }
}

#[test]
fn a_deactivated_agents_key_stops_working() {
    let server = TestServer::start();
    let (worker, id) = server.agent("retiree", "worker");
    assert_eq!(worker.get("/api/agent/me").status, 200);

    let r = server
        .admin()
        .put(&format!("/api/agents/{id}"), json!({"active": false}));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["active"], json!(false));

    worker.get("/api/agent/me").assert_error(401);
    worker.get("/api/tasks").assert_error(401);
    worker
        .post("/api/tasks", json!({"content": "still here?"}))
        .assert_error(401);
    let bearer = server.client(Auth::Bearer(worker.key().unwrap().to_string()));
    bearer.get("/api/agent/me").assert_error(401);
    assert!(server.all_task_ids().is_empty());
}

#[test]
fn rotating_a_key_invalidates_the_old_one() {
    let server = TestServer::start();

    // By the agent itself.
    let (worker, id) = server.agent("rotator", "worker");
    let old = worker.key().unwrap().to_string();
    let r = worker.post(&format!("/api/agents/{id}/rotate-key"), json!({}));
    assert_eq!(r.status, 200, "{}", r.text);
    let new = key_of(&r.body);
    assert!(new.starts_with("dlg_") && new.len() == 47 && new != old);
    assert_eq!(r.body["key_prefix"], json!(&new[..12]));
    server.with_key(&old).get("/api/agent/me").assert_error(401);
    assert_eq!(server.with_key(&new).get("/api/agent/me").status, 200);

    // By an admin, addressing the agent by name.
    let r = server
        .admin()
        .post("/api/agents/rotator/rotate-key", json!({}));
    assert_eq!(r.status, 200, "{}", r.text);
    let newer = key_of(&r.body);
    server.with_key(&new).get("/api/agent/me").assert_error(401);
    let me = server.with_key(&newer).get("/api/agent/me");
    assert_eq!(me.status, 200);
    assert_eq!(me.body["id"], json!(id));
}

#[test]
fn bootstrap_without_credentials_is_refused_for_a_non_loopback_host_name() {
    let server = TestServer::start();
    let anon = server.anonymous();

    // A browser tricked by DNS rebinding would send the attacker's host name.
    let r = anon.raw(
        "POST",
        "/api/agents",
        Some(br#"{"name":"rebound"}"#),
        &[("Host", "evil.example.com")],
    );
    r.assert_error(401);
    assert_eq!(server.admin().get("/api/agents").body, json!([]));

    // "localhost" is a loopback host name.
    let host = format!("localhost:{}", server.port);
    let r = anon.raw(
        "POST",
        "/api/agents",
        Some(br#"{"name":"local-founder"}"#),
        &[("Host", host.as_str())],
    );
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["role"], json!("admin"));
}

#[test]
fn a_workers_list_holds_only_its_own_tasks_but_it_may_open_unassigned_queue_tasks_by_id() {
    let server = TestServer::start();
    let (a, _) = server.agent("queue-reader", "worker");
    let (b, _) = server.agent("queue-writer", "worker");
    let mine = a.create_task(json!({"content": "mine"}))["id"]
        .as_i64()
        .unwrap();
    // Unassigned and open: in everyone's claim queue.
    let queued = b.create_task(json!({"content": "up for grabs"}))["id"]
        .as_i64()
        .unwrap();

    assert_eq!(ids(&a.get("/api/tasks").body), vec![mine]);
    let r = a.get(&format!("/api/tasks/{queued}"));
    assert_eq!(r.status, 200, "queue task readable by id: {}", r.text);

    // Readable is not writable: 403 (it can see the task), and no change.
    let before = server.task_snapshot(queued);
    a.put(
        &format!("/api/tasks/{queued}"),
        json!({"content": "taken over"}),
    )
    .assert_error(403);
    a.delete(&format!("/api/tasks/{queued}")).assert_error(403);
    assert_eq!(server.task_snapshot(queued), before);
}

#[test]
fn a_trusted_proxy_may_name_the_agent_and_other_peers_may_not() {
    // Arrange: loopback is the trusted proxy here.
    let proxied = TestServer::start_with(&[("DELEGA_TRUSTED_PROXY_IPS", "127.0.0.1")]);
    let (_, alice) = proxied.agent("alice", "worker");
    proxied.agent("bob", "worker");
    let anon = proxied.anonymous();
    // Act / Assert
    let me = anon.raw("GET", "/api/agent/me", None, &[("Remote-User", "alice")]);
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(me.body["id"], alice);
    let me = anon.raw(
        "GET",
        "/api/agent/me",
        None,
        &[("X-Forwarded-User", "bob@example.com")],
    );
    assert_eq!(me.body["name"], "bob", "email local part accepted");
    anon.raw("GET", "/api/agent/me", None, &[("Remote-User", "mallory")])
        .assert_error(401);

    // Without the setting the header is ignored.
    let plain = TestServer::start();
    plain.agent("alice", "worker");
    plain
        .anonymous()
        .raw("GET", "/api/agent/me", None, &[("Remote-User", "alice")])
        .assert_error(401);
}
