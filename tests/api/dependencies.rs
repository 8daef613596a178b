//! Dependencies (SPEC §8): pipelines declared at once, blocked/unblocked
//! status, inputs, failed dependencies, cycles. Also what a finished task
//! carries about the work done: completion evidence (§5) and links.

use crate::helpers::{id_of, Client, TestServer};
use serde_json::{json, Value};

/// research → writer → editor, each assigned to its own agent.
struct Pipeline {
    admin: Client,
    researcher: Client,
    writer: Client,
    editor: Client,
    research: i64,
    write: i64,
    edit: i64,
}

fn pipeline(server: &TestServer) -> Pipeline {
    let admin = server.admin();
    let (researcher, _) = server.agent("researcher", "worker");
    let (writer, _) = server.agent("writer", "worker");
    let (editor, _) = server.agent("editor", "worker");
    let research = id_of(&admin.create_task(json!({
        "content": "Research the topic", "assigned_to_agent_id": "researcher",
    })));
    let write = admin.create_task(json!({
        "content": "Write the article", "assigned_to_agent_id": "writer",
        "depends_on": [research],
    }));
    assert_eq!(write["status"], json!("blocked"), "{write}");
    assert_eq!(write["depends_on"], json!([research]));
    let write = id_of(&write);
    let edit = admin.create_task(json!({
        "content": "Edit the article", "assigned_to_agent_id": "editor",
        "depends_on": [write],
    }));
    assert_eq!(edit["status"], json!("blocked"), "{edit}");
    let edit = id_of(&edit);
    Pipeline {
        admin,
        researcher,
        writer,
        editor,
        research,
        write,
        edit,
    }
}

// ---------------------------------------------------------------- pipeline

#[test]
fn a_pipeline_declared_at_once_starts_each_stage_when_the_previous_completes() {
    let server = TestServer::start();
    let p = pipeline(&server);
    assert_eq!(p.admin.task(p.research)["status"], json!("open"));
    let w = p.writer.task(p.write);
    assert_eq!(w["status"], json!("blocked"));
    assert_eq!(w["depends_on"], json!([p.research]));
    assert_eq!(p.editor.task(p.edit)["status"], json!("blocked"));
    let blocked = p.admin.get("/api/tasks?status=blocked");
    assert_eq!(Client::ids(&blocked.body).len(), 2, "{}", blocked.text);

    let r = p.researcher.post(
        &format!("/api/tasks/{}/complete", p.research),
        json!({ "metadata": { "findings": ["fact one", "fact two"], "confidence": 0.9 } }),
    );
    assert_eq!(r.status, 200, "{}", r.text);

    let w = p.writer.task(p.write);
    assert_eq!(w["status"], json!("open"), "the writer starts by itself");
    assert!(
        w.get("blocked_reason").is_none_or(Value::is_null),
        "no blocked_reason once open: {w}"
    );
    assert_eq!(
        p.editor.task(p.edit)["status"],
        json!("blocked"),
        "the editor still waits for the writer"
    );

    // The writer reads the researcher's result through its own task.
    let r = p.writer.get(&format!("/api/tasks/{}/inputs", p.write));
    assert_eq!(r.status, 200, "{}", r.text);
    let inputs = r.body.as_array().expect("inputs is an array");
    assert_eq!(inputs.len(), 1);
    let i = &inputs[0];
    assert_eq!(i["task_id"], json!(p.research));
    assert_eq!(i["content"], json!("Research the topic"));
    assert_eq!(i["status"], json!("completed"));
    assert_eq!(i["completed_by"], json!("researcher"));
    assert!(i["completed_at"].is_string(), "{i}");
    assert_eq!(
        i["context"],
        json!({ "findings": ["fact one", "fact two"], "confidence": 0.9 })
    );

    let r = p.writer.post(
        &format!("/api/tasks/{}/complete", p.write),
        json!({ "context": { "draft": "v1" } }),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(p.editor.task(p.edit)["status"], json!("open"));
    let r = p.editor.get(&format!("/v1/tasks/{}/inputs", p.edit));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body[0]["task_id"], json!(p.write));
    assert_eq!(r.body[0]["context"], json!({ "draft": "v1" }));
    assert_eq!(r.body[0]["completed_by"], json!("writer"));
}

#[test]
fn inputs_list_every_dependency_including_unfinished_ones() {
    let server = TestServer::start();
    let admin = server.admin();
    let a = id_of(&admin.create_task(json!({ "content": "Source A", "context": { "a": 1 } })));
    let b = id_of(&admin.create_task(json!({ "content": "Source B" })));
    let merge = id_of(&admin.create_task(json!({
        "content": "Merge", "depends_on": [a, b],
    })));
    let r = admin.post(&format!("/api/tasks/{a}/complete"), json!({}));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        admin.task(merge)["status"],
        json!("blocked"),
        "B is unfinished"
    );

    let r = admin.get(&format!("/api/tasks/{merge}/inputs"));
    assert_eq!(r.status, 200, "{}", r.text);
    let inputs = r.body.as_array().unwrap();
    assert_eq!(inputs.len(), 2);
    let ia = inputs.iter().find(|i| i["task_id"] == json!(a)).unwrap();
    let ib = inputs.iter().find(|i| i["task_id"] == json!(b)).unwrap();
    assert_eq!(ia["status"], json!("completed"));
    assert_eq!(ia["context"], json!({ "a": 1 }));
    assert_eq!(
        ia["completed_by"],
        Value::Null,
        "completed by the project token"
    );
    assert_eq!(ib["status"], json!("open"));
    assert_eq!(ib["completed_at"], Value::Null);
    assert_eq!(ib["context"], json!({}));

    let r = admin.post(&format!("/api/tasks/{b}/complete"), json!({}));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(admin.task(merge)["status"], json!("open"));
}

#[test]
fn a_blocked_task_cannot_be_claimed() {
    let server = TestServer::start();
    let p = pipeline(&server);
    p.writer
        .post(&format!("/api/tasks/{}/claim", p.write), json!({}))
        .assert_error(409);
    let r = p.writer.post("/api/tasks/claim", json!({}));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["task"], Value::Null, "nothing claimable: {}", r.text);
    assert_eq!(p.writer.task(p.write)["status"], json!("blocked"));
}

#[test]
fn completing_the_last_dependency_fires_task_unblocked() {
    let server = TestServer::start();
    let p = pipeline(&server);
    let r = p
        .researcher
        .post(&format!("/api/tasks/{}/complete", p.research), json!({}));
    assert_eq!(r.status, 200, "{}", r.text);
    let r = p.admin.get(&format!(
        "/api/events?types=task.unblocked&task_id={}",
        p.write
    ));
    assert_eq!(r.status, 200, "{}", r.text);
    let events = r.body.as_array().expect("a JSON array of events");
    assert_eq!(events.len(), 1, "{}", r.text);
    assert_eq!(events[0]["event"], json!("task.unblocked"));
    assert_eq!(events[0]["task"]["id"], json!(p.write));
    assert_eq!(events[0]["task"]["status"], json!("open"));
}

#[test]
fn a_failed_dependency_leaves_its_dependents_blocked_with_dependency_failed() {
    let server = TestServer::start();
    let p = pipeline(&server);
    let r = p.researcher.post(
        &format!("/api/tasks/{}/fail", p.research),
        json!({ "reason": "sources unavailable" }),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], json!("failed"));
    assert_eq!(r.body["failure_reason"], json!("sources unavailable"));

    let w = p.writer.task(p.write);
    assert_eq!(w["status"], json!("blocked"));
    assert_eq!(w["blocked_reason"], json!("dependency_failed"));
    assert_eq!(p.editor.task(p.edit)["status"], json!("blocked"));
    let r = p.writer.get(&format!("/api/tasks/{}/inputs", p.write));
    assert_eq!(r.body[0]["status"], json!("failed"));

    // Retrying the dependency and completing it releases the writer.
    let r = p
        .researcher
        .post(&format!("/api/tasks/{}/uncomplete", p.research), json!({}));
    assert_eq!(r.status, 200, "{}", r.text);
    let r = p
        .researcher
        .post(&format!("/api/tasks/{}/complete", p.research), json!({}));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(p.writer.task(p.write)["status"], json!("open"));
}

// ---------------------------------------------------------------- editing

#[test]
fn dependencies_can_be_added_and_removed_after_creation() {
    let server = TestServer::start();
    let admin = server.admin();
    let a = id_of(&admin.create_task(json!({ "content": "Upstream" })));
    let b = id_of(&admin.create_task(json!({ "content": "Downstream" })));
    assert_eq!(admin.task(b)["status"], json!("open"));

    let r = admin.post(
        &format!("/api/tasks/{b}/dependencies"),
        json!({ "depends_on": [a] }),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["depends_on"], json!([a]));
    assert_eq!(r.body["status"], json!("blocked"));
    assert_eq!(admin.task(b)["status"], json!("blocked"));

    let r = admin.delete(&format!("/api/tasks/{b}/dependencies/{a}"));
    assert_eq!(r.status, 200, "{}", r.text);
    let t = admin.task(b);
    assert_eq!(t["depends_on"], json!([]));
    assert_eq!(t["status"], json!("open"), "no dependency left");
    admin
        .delete(&format!("/api/tasks/{b}/dependencies/{a}"))
        .assert_error(404);
}

#[test]
fn a_dependency_that_would_close_a_cycle_is_422_and_changes_nothing() {
    let server = TestServer::start();
    let admin = server.admin();
    let a = id_of(&admin.create_task(json!({ "content": "A" })));
    let b = id_of(&admin.create_task(json!({ "content": "B", "depends_on": [a] })));
    let c = id_of(&admin.create_task(json!({ "content": "C", "depends_on": [b] })));
    let before: Vec<Value> = [a, b, c].iter().map(|id| admin.task(*id)).collect();

    for (task, deps) in [
        (a, json!([c])),
        (a, json!([b])),
        (a, json!([a])),
        (b, json!([c])),
    ] {
        let r = admin.post(
            &format!("/api/tasks/{task}/dependencies"),
            json!({ "depends_on": deps }),
        );
        r.assert_error(422);
        assert!(r.text.contains("depends_on"), "names the field: {}", r.text);
    }
    admin
        .put(&format!("/api/tasks/{a}"), json!({ "depends_on": [c] }))
        .assert_error(422);
    let after: Vec<Value> = [a, b, c].iter().map(|id| admin.task(*id)).collect();
    assert_eq!(after, before, "no dependency was added");
    assert_eq!(after[0]["depends_on"], json!([]));
    assert_eq!(after[0]["status"], json!("open"));
}

#[test]
fn depending_on_a_missing_or_unreadable_task_is_422() {
    let server = TestServer::start();
    let admin = server.admin();
    let (worker, worker_id) = server.agent("worker-w", "worker");
    let (_, other_id) = server.agent("other", "worker");
    let private = id_of(&admin.create_task(json!({
        "content": "Other's task", "assigned_to_agent_id": other_id,
    })));
    let mine = id_of(&admin.create_task(json!({
        "content": "Mine", "assigned_to_agent_id": worker_id,
    })));
    admin
        .post(
            "/api/tasks",
            json!({ "content": "Depends on nothing real", "depends_on": [999_999] }),
        )
        .assert_error(422);
    worker
        .post(
            "/api/tasks",
            json!({ "content": "Peeks", "depends_on": [private] }),
        )
        .assert_error(422);
    worker
        .post(
            &format!("/api/tasks/{mine}/dependencies"),
            json!({ "depends_on": [private] }),
        )
        .assert_error(422);
    admin
        .post(
            &format!("/api/tasks/{mine}/dependencies"),
            json!({ "depends_on": [] }),
        )
        .assert_error(422);
    let list = admin.get("/api/tasks?include_completed=true");
    assert_eq!(Client::ids(&list.body).len(), 2, "nothing was created");
    assert_eq!(admin.task(mine)["depends_on"], json!([]));
}

// ---------------------------------------------------------------- evidence

#[test]
fn completing_with_evidence_stores_it_as_completion_evidence() {
    let server = TestServer::start();
    let admin = server.admin();
    let id = id_of(&admin.create_task(json!({ "content": "Fix the login bug" })));
    let evidence = json!([
        { "kind": "commit", "ref": "abc123", "summary": "fix null check" },
        { "kind": "pr", "ref": "org/app#42" },
        { "kind": "ci_check", "ref": "build-981", "summary": "green" },
        { "kind": "deploy_sha", "ref": "d34db33f" },
        { "kind": "artifact_url", "ref": "https://ci.example.com/a/1" },
        { "kind": "command_output", "ref": "cargo test", "summary": "ok. 12 passed" },
    ]);
    let r = admin.post(
        &format!("/api/tasks/{id}/complete"),
        json!({ "evidence": evidence }),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], json!("completed"));
    let stored = &r.body["completion_evidence"];
    assert_eq!(stored.as_array().map(Vec::len), Some(6), "{stored}");
    for (got, sent) in stored
        .as_array()
        .unwrap()
        .iter()
        .zip(evidence.as_array().unwrap())
    {
        for key in ["kind", "ref", "summary"] {
            if let Some(v) = sent.get(key) {
                assert_eq!(&got[key], v, "{key} of {sent}");
            }
        }
    }
    assert_eq!(admin.task(id)["completion_evidence"], *stored);
}

#[test]
fn unknown_or_malformed_evidence_is_422_and_the_task_stays_open() {
    let server = TestServer::start();
    let admin = server.admin();
    let id = id_of(&admin.create_task(json!({ "content": "Needs proof" })));
    let before = admin.task(id);
    for evidence in [
        json!([{ "kind": "screenshot", "ref": "img.png" }]),
        json!([{ "kind": "commit", "ref": "abc" }, { "kind": "vibes", "ref": "trust me" }]),
        json!([{ "kind": "commit" }]),
        json!([{ "ref": "abc123" }]),
        json!(["abc123"]),
    ] {
        let r = admin.post(
            &format!("/api/tasks/{id}/complete"),
            json!({ "evidence": evidence }),
        );
        r.assert_error(422);
        assert!(r.text.contains("evidence"), "names the field: {}", r.text);
    }
    let after = admin.task(id);
    assert_eq!(after, before, "nothing written");
    assert_eq!(after["status"], json!("open"));
    assert_eq!(after["completion_evidence"], Value::Null);
}

#[test]
fn a_required_evidence_policy_refuses_completion_without_strong_evidence() {
    let server = TestServer::start();
    let admin = server.admin();
    let (worker, worker_id) = server.agent("worker-w", "worker");
    let task = admin.create_task(json!({
        "content": "Deploy the fix", "evidence_policy": "required",
        "assigned_to_agent_id": worker_id,
    }));
    assert_eq!(task["evidence_policy"], json!("required"));
    let id = id_of(&task);
    let before = admin.task(id);

    for body in [
        json!({}),
        json!({ "evidence": [] }),
        json!({ "evidence": [
            { "kind": "artifact_url", "ref": "https://x.example/log" },
            { "kind": "command_output", "ref": "make deploy" },
        ] }),
        json!({ "metadata": { "note": "done, trust me" } }),
    ] {
        let r = worker.post(&format!("/api/tasks/{id}/complete"), body.clone());
        r.assert_error(422);
        assert!(r.text.contains("evidence"), "{body}: {}", r.text);
    }
    worker
        .put(&format!("/api/tasks/{id}"), json!({ "completed": true }))
        .assert_error(422);
    let after = admin.task(id);
    assert_eq!(after, before, "still open, no context written");

    for kind in ["commit", "pr", "ci_check", "deploy_sha"] {
        let t = id_of(&admin.create_task(json!({
            "content": format!("Needs {kind}"), "evidence_policy": "required",
        })));
        let r = admin.post(
            &format!("/api/tasks/{t}/complete"),
            json!({ "evidence": [{ "kind": kind, "ref": "x1" }] }),
        );
        assert_eq!(r.status, 200, "{kind} satisfies the policy: {}", r.text);
        assert_eq!(r.body["status"], json!("completed"));
    }
    let r = worker.post(
        &format!("/api/tasks/{id}/complete"),
        json!({ "evidence": [
            { "kind": "command_output", "ref": "make deploy" },
            { "kind": "deploy_sha", "ref": "9f8e7d" },
        ] }),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["completion_evidence"][1]["ref"], json!("9f8e7d"));
}

// ---------------------------------------------------------------- links

#[test]
fn links_are_added_listed_deduplicated_and_deleted() {
    let server = TestServer::start();
    let admin = server.admin();
    let id = id_of(&admin.create_task(json!({ "content": "Linked work" })));
    let path = format!("/api/tasks/{id}/links");

    let r = admin.post(
        &path,
        json!({ "kind": "branch", "ref": "feature/login", "repo": "org/app" }),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let branch = r.body.clone();
    assert_eq!(branch["kind"], json!("branch"));
    assert_eq!(branch["ref"], json!("feature/login"));
    assert_eq!(branch["repo"], json!("org/app"));
    assert_eq!(branch["task_id"], json!(id));

    let r = admin.post(
        &path,
        json!({ "kind": "branch", "ref": "feature/login", "repo": "org/app" }),
    );
    assert!(r.status == 200 || r.status == 201, "{}", r.text);
    assert_eq!(
        id_of(&r.body),
        id_of(&branch),
        "the existing link comes back"
    );

    // The same ref in another repo, or of another kind, is another link.
    let r = admin.post(
        &path,
        json!({ "kind": "branch", "ref": "feature/login", "repo": "org/other" }),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let other_repo = id_of(&r.body);
    let r = admin.post(
        &path,
        json!({ "kind": "pr", "ref": "42", "repo": "org/app",
                "url": "https://github.com/org/app/pull/42" }),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["url"], json!("https://github.com/org/app/pull/42"));
    let pr = id_of(&r.body);
    for (kind, reference) in [("commit", "abc123"), ("url", "https://example.com/spec")] {
        let r = admin.post(&path, json!({ "kind": kind, "ref": reference }));
        assert_eq!(r.status, 201, "{kind}: {}", r.text);
    }

    let r = admin.get(&path);
    assert_eq!(r.status, 200, "{}", r.text);
    let ids = Client::ids(&r.body);
    assert_eq!(ids.len(), 5, "{}", r.text);
    assert!(ids.contains(&other_repo) && ids.contains(&pr));
    assert_eq!(
        admin.task(id)["links"].as_array().map(Vec::len),
        Some(5),
        "GET /tasks/{{id}} embeds links"
    );

    for bad in [
        json!({ "kind": "ticket", "ref": "JIRA-1" }),
        json!({ "kind": "commit" }),
        json!({ "kind": "commit", "ref": "   " }),
        json!({ "ref": "abc" }),
    ] {
        admin.post(&path, bad).assert_error(422);
    }

    let r = admin.delete(&format!("{path}/{}", id_of(&branch)));
    assert_eq!(r.status, 200, "{}", r.text);
    let ids = Client::ids(&admin.get(&path).body);
    assert_eq!(ids.len(), 4);
    assert!(!ids.contains(&id_of(&branch)));
    admin
        .delete(&format!("{path}/{}", id_of(&branch)))
        .assert_error(404);
    admin
        .delete(&format!("/api/tasks/{id}/links/999999"))
        .assert_error(404);
}

#[test]
fn links_of_a_task_follow_its_access_rules() {
    let server = TestServer::start();
    let admin = server.admin();
    let (owner, owner_id) = server.agent("owner", "worker");
    let (stranger, _) = server.agent("stranger", "worker");
    let id = id_of(&admin.create_task(json!({
        "content": "Owned", "assigned_to_agent_id": owner_id,
    })));
    let r = owner.post(
        &format!("/api/tasks/{id}/links"),
        json!({ "kind": "commit", "ref": "feedbeef" }),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let lid = id_of(&r.body);
    stranger
        .get(&format!("/api/tasks/{id}/links"))
        .assert_error(404);
    stranger
        .post(
            &format!("/api/tasks/{id}/links"),
            json!({ "kind": "commit", "ref": "evil" }),
        )
        .assert_error(404);
    stranger
        .delete(&format!("/api/tasks/{id}/links/{lid}"))
        .assert_error(404);
    assert_eq!(
        Client::ids(&owner.get(&format!("/api/tasks/{id}/links")).body),
        vec![lid]
    );
}
