//! Every state change appends its event (SPEC §9), written by the
//! operation itself. One case per mutating route performs it once and
//! checks the exact event kinds appended; a route in the router without a
//! case here fails the last test, so a new route cannot forget its event.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{id_of, wait_for, Client, Resp, TestServer};

/// A fresh server with an admin, a worker and a few things to act on.
struct Fixture {
    server: TestServer,
    admin: Client,
    worker: Client,
    worker_id: i64,
    /// A task assigned to the worker.
    task: i64,
    /// Another task, unassigned.
    other: i64,
}

fn fixture() -> Fixture {
    let server = TestServer::start_with(&[("DELEGA_ALLOW_PRIVATE_WEBHOOKS", "true")]);
    let admin = server.admin();
    let (worker, worker_id) = server.agent("w", "worker");
    let task = id_of(&admin.create_task(json!({"content": "task", "assigned_to_agent_id": "w"})));
    let other = id_of(&admin.create_task(json!({"content": "other"})));
    Fixture {
        server,
        admin,
        worker,
        worker_id,
        task,
        other,
    }
}

/// One mutating route, performed once.
struct Case {
    method: &'static str,
    path: &'static str,
    /// Prepares what the request needs (its events are not counted) and
    /// returns the id it acts on (0 if none).
    prep: fn(&Fixture) -> i64,
    /// Makes the request.
    run: fn(&Fixture, i64) -> Resp,
    /// The kinds appended, in order.
    kinds: &'static [&'static str],
    /// Why a route that changes something appends no event.
    no_event_because: Option<&'static str>,
}

fn nothing(_: &Fixture) -> i64 {
    0
}

fn ok(r: Resp) -> Resp {
    assert!((200..300).contains(&r.status), "{} {}", r.status, r.text);
    r
}

fn hook(f: &Fixture) -> i64 {
    id_of(
        &ok(f.admin.post(
            "/api/webhooks",
            json!({"url": "http://127.0.0.1:9/hook", "events": ["*"]}),
        ))
        .body,
    )
}

fn claimed(f: &Fixture) -> i64 {
    ok(f.worker
        .post(&format!("/api/tasks/{}/claim", f.task), json!({})));
    f.task
}

macro_rules! case {
    ($method:literal $path:literal => [$($kind:literal),*], $prep:expr, $run:expr) => {
        Case { method: $method, path: $path, kinds: &[$($kind),*], no_event_because: None, prep: $prep, run: $run }
    };
    ($method:literal $path:literal => none because $why:literal, $prep:expr, $run:expr) => {
        Case { method: $method, path: $path, kinds: &[], no_event_because: Some($why), prep: $prep, run: $run }
    };
}

fn cases() -> Vec<Case> {
    vec![
        case!("POST" "/agents" => ["agent.created"], nothing,
            |f, _| f.admin.post("/api/agents", json!({"name": "new-agent"}))),
        case!("PUT" "/agents/{id}" => ["agent.updated"], nothing,
            |f, _| f.admin.put(&format!("/api/agents/{}", f.worker_id), json!({"description": "d"}))),
        case!("PATCH" "/agents/{id}" => ["agent.updated"], nothing,
            |f, _| f.admin.patch(&format!("/api/agents/{}", f.worker_id), json!({"role": "coordinator"}))),
        case!("DELETE" "/agents/{id}" => ["agent.deleted"],
            |f| id_of(&ok(f.admin.post("/api/agents", json!({"name": "short-lived"}))).body),
            |f, a| f.admin.delete(&format!("/api/agents/{a}"))),
        case!("POST" "/agents/{id}/rotate-key" => ["agent.key_rotated"], nothing,
            |f, _| f.admin.post(&format!("/api/agents/{}/rotate-key", f.worker_id), json!({}))),
        case!("POST" "/tasks/claim" => ["task.claimed"], nothing,
            |f, _| f.worker.post("/api/tasks/claim", json!({}))),
        case!("POST" "/tasks/dedup" => none because "a look-up sent as POST", nothing,
            |f, _| f.worker.post("/api/tasks/dedup", json!({"content": "task"}))),
        case!("POST" "/tasks" => ["task.created"], nothing,
            |f, _| f.worker.post("/api/tasks", json!({"content": "new"}))),
        case!("PUT" "/tasks/{id}" => ["task.updated"], nothing,
            |f, _| f.admin.put(&format!("/api/tasks/{}", f.task), json!({"priority": 1}))),
        case!("PATCH" "/tasks/{id}" => ["task.assigned"], nothing,
            |f, _| f.admin.patch(&format!("/api/tasks/{}", f.other), json!({"assigned_to_agent_id": "w"}))),
        case!("DELETE" "/tasks/{id}" => ["task.deleted"], nothing,
            |f, _| f.admin.delete(&format!("/api/tasks/{}", f.other))),
        case!("POST" "/tasks/{id}/complete" => ["task.completed"], nothing,
            |f, _| f.worker.post(&format!("/api/tasks/{}/complete", f.task), json!({}))),
        case!("POST" "/tasks/{id}/uncomplete" => ["task.updated"],
            |f| { ok(f.worker.post(&format!("/api/tasks/{}/complete", f.task), json!({}))); f.task },
            |f, t| f.worker.post(&format!("/api/tasks/{t}/uncomplete"), json!({}))),
        case!("POST" "/tasks/{id}/fail" => ["task.failed"], nothing,
            |f, _| f.worker.post(&format!("/api/tasks/{}/fail", f.task), json!({"reason": "no"}))),
        case!("POST" "/tasks/{id}/comments" => ["task.commented"], nothing,
            |f, _| f.worker.post(&format!("/api/tasks/{}/comments", f.task), json!({"content": "hi"}))),
        case!("DELETE" "/tasks/{id}/comments/{cid}" => ["task.comment_deleted"],
            |f| id_of(&ok(f.worker.post(&format!("/api/tasks/{}/comments", f.task), json!({"content": "x"}))).body),
            |f, c| f.worker.delete(&format!("/api/tasks/{}/comments/{c}", f.task))),
        case!("POST" "/tasks/{id}/subtasks" => ["task.updated"], nothing,
            |f, _| f.worker.post(&format!("/api/tasks/{}/subtasks", f.task), json!({"content": "step"}))),
        case!("PUT" "/tasks/{id}/subtasks/{sid}" => ["task.updated"], subtask,
            |f, s| f.worker.put(&format!("/api/tasks/{}/subtasks/{s}", f.task), json!({"content": "step 1"}))),
        case!("PATCH" "/tasks/{id}/subtasks/{sid}" => ["task.updated"], subtask,
            |f, s| f.worker.patch(&format!("/api/tasks/{}/subtasks/{s}", f.task), json!({"completed": true}))),
        case!("DELETE" "/tasks/{id}/subtasks/{sid}" => ["task.updated"], subtask,
            |f, s| f.worker.delete(&format!("/api/tasks/{}/subtasks/{s}", f.task))),
        case!("POST" "/tasks/{id}/subtasks/{sid}/toggle" => ["task.updated"], subtask,
            |f, s| f.worker.post(&format!("/api/tasks/{}/subtasks/{s}/toggle", f.task), json!({}))),
        case!("POST" "/tasks/{id}/links" => ["task.linked"], nothing,
            |f, _| f.worker.post(&format!("/api/tasks/{}/links", f.task), json!({"kind": "pr", "ref": "1"}))),
        case!("DELETE" "/tasks/{id}/links/{lid}" => ["task.unlinked"],
            |f| id_of(&ok(f.worker.post(&format!("/api/tasks/{}/links", f.task), json!({"kind": "pr", "ref": "2"}))).body),
            |f, l| f.worker.delete(&format!("/api/tasks/{}/links/{l}", f.task))),
        case!("POST" "/tasks/{id}/dependencies" => ["task.dependencies_changed"], nothing,
            |f, _| f.admin.post(&format!("/api/tasks/{}/dependencies", f.task), json!({"depends_on": [f.other]}))),
        case!("DELETE" "/tasks/{id}/dependencies/{dep}" => ["task.dependencies_changed", "task.unblocked"],
            |f| { ok(f.admin.post(&format!("/api/tasks/{}/dependencies", f.task), json!({"depends_on": [f.other]}))); f.other },
            |f, d| f.admin.delete(&format!("/api/tasks/{}/dependencies/{d}", f.task))),
        case!("POST" "/tasks/{id}/claim" => ["task.claimed"], nothing,
            |f, _| f.worker.post(&format!("/api/tasks/{}/claim", f.task), json!({}))),
        case!("POST" "/tasks/{id}/heartbeat" => none because "a lease renewal is not a state change", claimed,
            |f, t| f.worker.post(&format!("/api/tasks/{t}/heartbeat"), json!({}))),
        case!("POST" "/tasks/{id}/state" => ["task.state_changed"], claimed,
            |f, t| f.worker.post(&format!("/api/tasks/{t}/state"), json!({"state": "waiting_input"}))),
        case!("POST" "/tasks/{id}/release" => ["task.released"], claimed,
            |f, t| f.worker.post(&format!("/api/tasks/{t}/release"), json!({}))),
        case!("POST" "/tasks/{id}/delegate" => ["task.delegated"], nothing,
            |f, _| f.admin.post(&format!("/api/tasks/{}/delegate", f.other), json!({"agent_id": "w"}))),
        case!("POST" "/tasks/{id}/delegate" => ["task.created", "task.updated"], nothing,
            |f, _| f.admin.post(&format!("/api/tasks/{}/delegate", f.other), json!({"content": "child"}))),
        case!("PATCH" "/tasks/{id}/context" => ["task.context_updated"], nothing,
            |f, _| f.worker.patch(&format!("/api/tasks/{}/context", f.task), json!({"k": 1}))),
        case!("POST" "/tasks/{id}/context/supersede" => ["task.context_updated"],
            |f| { ok(f.worker.patch(&format!("/api/tasks/{}/context", f.task), json!({"k": 1}))); f.task },
            |f, t| f.worker.post(&format!("/api/tasks/{t}/context/supersede"), json!({"key": "k"}))),
        case!("POST" "/projects" => ["project.created"], nothing,
            |f, _| f.admin.post("/api/projects", json!({"name": "p"}))),
        case!("PUT" "/projects/{id}" => ["project.updated"], project,
            |f, p| f.admin.put(&format!("/api/projects/{p}"), json!({"name": "q"}))),
        case!("PATCH" "/projects/{id}" => ["project.updated"], project,
            |f, p| f.admin.patch(&format!("/api/projects/{p}"), json!({"color": "red"}))),
        case!("DELETE" "/projects/{id}" => ["project.deleted"], project,
            |f, p| f.admin.delete(&format!("/api/projects/{p}"))),
        case!("POST" "/webhooks" => none because "a hook is configuration, not task, project or agent state (SPEC §9 lists no webhook event)", nothing,
            |f, _| f.admin.post("/api/webhooks", json!({"url": "http://127.0.0.1:9/h", "events": ["*"]}))),
        case!("PUT" "/webhooks/{id}" => none because "configuration", hook,
            |f, h| f.admin.put(&format!("/api/webhooks/{h}"), json!({"description": "d"}))),
        case!("PATCH" "/webhooks/{id}" => none because "configuration", hook,
            |f, h| f.admin.patch(&format!("/api/webhooks/{h}"), json!({"active": false}))),
        case!("DELETE" "/webhooks/{id}" => none because "configuration", hook,
            |f, h| f.admin.delete(&format!("/api/webhooks/{h}"))),
        case!("POST" "/recurrences" => none because "a recurrence is configuration; the tasks it spawns append task.created with reason recurrence", nothing,
            |f, _| f.admin.post("/api/recurrences", json!({"content": "standup", "rule_type": "daily"}))),
        case!("PUT" "/recurrences/{id}" => none because "configuration", recurrence,
            |f, r| f.admin.put(&format!("/api/recurrences/{r}"), json!({"priority": 1}))),
        case!("PATCH" "/recurrences/{id}" => none because "configuration", recurrence,
            |f, r| f.admin.patch(&format!("/api/recurrences/{r}"), json!({"active": false}))),
        case!("DELETE" "/recurrences/{id}" => none because "configuration", recurrence,
            |f, r| f.admin.delete(&format!("/api/recurrences/{r}"))),
        case!("POST" "/mcp" => none because "a transport: each tool's operation appends its own events (tools/list here changes nothing)", nothing,
            |f, _| f.admin.post("/api/mcp", json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))),
        case!("POST" "/webhooks/{id}/test" => none because "a ping is addressed to its hook alone, in no feed", hook,
            |f, h| f.admin.post(&format!("/api/webhooks/{h}/test"), json!({}))),
        case!("POST" "/webhooks/{id}/recover" => none because "re-sent events are addressed to their hook alone, in no feed", hook,
            |f, h| f.admin.post(&format!("/api/webhooks/{h}/recover"), json!({"since": 0}))),
        case!("POST" "/webhooks/{id}/deliveries/{did}/redeliver" => none because "a redelivery is addressed to its hook alone, in no feed",
        |f| { let h = hook(f); ok(f.admin.post("/api/tasks", json!({"content": "delivered"}))); wait_for_attempt(f, h); h },
        |f, h| {
            let log = f.admin.get(&format!("/api/webhooks/{h}/deliveries")).body;
            let did = log.as_array().unwrap().last().unwrap()["id"].as_i64().unwrap();
            f.admin.post(&format!("/api/webhooks/{h}/deliveries/{did}/redeliver"), json!({}))
        }),
    ]
}

fn subtask(f: &Fixture) -> i64 {
    id_of(
        &ok(f.worker.post(
            &format!("/api/tasks/{}/subtasks", f.task),
            json!({"content": "s"}),
        ))
        .body,
    )
}

fn recurrence(f: &Fixture) -> i64 {
    id_of(
        &ok(f.admin.post(
            "/api/recurrences",
            json!({"content": "weekly", "rule_type": "weekly"}),
        ))
        .body,
    )
}

fn project(f: &Fixture) -> i64 {
    id_of(&ok(f.admin.post("/api/projects", json!({"name": "p"}))).body)
}

/// The id of the first logged attempt of hook `h` (its receiver refuses).
fn wait_for_attempt(f: &Fixture, h: i64) -> i64 {
    wait_for("an attempt logged", Duration::from_secs(20), || {
        let log = f.admin.get(&format!("/api/webhooks/{h}/deliveries")).body;
        log.as_array()
            .and_then(|l| l.last())
            .map(|first| first["id"].as_i64().unwrap())
    })
}

fn last_event_id(f: &Fixture) -> i64 {
    let all = f.admin.get("/api/events?limit=1000").body;
    all.as_array()
        .and_then(|a| a.last())
        .map_or(0, |e: &Value| e["event_id"].as_i64().unwrap())
}

#[test]
fn every_mutating_route_appends_exactly_its_events() {
    for case in cases() {
        let f = fixture();
        let id = (case.prep)(&f);
        let mark = last_event_id(&f);
        let r = (case.run)(&f, id);
        assert!(
            (200..300).contains(&r.status),
            "{} {}: {} {}",
            case.method,
            case.path,
            r.status,
            r.text
        );
        let events = f
            .admin
            .get(&format!("/api/events?since={mark}&limit=1000"))
            .body;
        let kinds: Vec<String> = events
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["event"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            kinds, case.kinds,
            "{} {}: appended {kinds:?}",
            case.method, case.path
        );
        if case.kinds.is_empty() {
            assert!(case.no_event_because.is_some());
        }
        drop(f.server);
    }
}

#[test]
fn every_mutating_route_of_the_router_has_a_case() {
    let cases = cases();
    for e in delega::api::endpoints().iter().filter(|e| e.is_mutating()) {
        assert!(
            cases
                .iter()
                .any(|c| c.method == e.method.as_str() && c.path == e.path),
            "{} {} has no case in tests/api/event_log.rs: which event does it append?",
            e.method,
            e.path
        );
    }
}
