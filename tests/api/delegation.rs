//! Delegation (SPEC §6): hand-offs, delegated children, the append-only
//! `delegation_events` ledger, `GET /tasks/{id}/chain` in both dialects,
//! downstream visibility, bad input and concurrent delegation.

use std::collections::{HashMap, HashSet};

use crate::helpers::{id_of, Client, TestServer};
use serde_json::{json, Value};

fn names(hops: &Value) -> Vec<(String, String)> {
    hops.as_array()
        .unwrap_or_else(|| panic!("hops are not an array: {hops}"))
        .iter()
        .map(|h| {
            (
                h["from"].as_str().unwrap_or("<null>").to_string(),
                h["to"].as_str().unwrap_or("<null>").to_string(),
            )
        })
        .collect()
}

/// Status and JSON error shape; a refused change may be 403 or 404.
fn assert_refused(r: &crate::helpers::Resp) {
    assert!(
        r.status == 403 || r.status == 404,
        "expected 403 or 404, got {}: {}",
        r.status,
        r.text
    );
    r.assert_error(r.status);
}

// ---------------------------------------------------------------- hand-off

#[test]
fn handing_off_a_task_by_name_or_id_changes_its_assignee_and_reopens_it() {
    let server = TestServer::start();
    let admin = server.admin();
    let (_, research) = server.agent("research-agent", "worker");
    let (_, data) = server.agent("data-agent", "worker");
    let id = id_of(&admin.create_task(json!({ "content": "Summarise the Q3 numbers" })));
    let r = admin.put(
        &format!("/api/tasks/{id}"),
        json!({ "status": "in_progress" }),
    );
    assert_eq!(r.status, 200, "{}", r.text);

    let r = admin.post(
        &format!("/api/tasks/{id}/delegate"),
        json!({ "agent_id": "research-agent" }),
    );
    assert_eq!(r.status, 200, "hand-off by name: {}", r.text);
    assert_eq!(r.body["id"], json!(id), "the response is the same task");
    assert_eq!(r.body["assigned_to_agent_id"], json!(research));
    assert_eq!(r.body["assigned_to"], json!("research-agent"));
    assert_eq!(r.body["assigned_to_agent"]["name"], json!("research-agent"));
    assert_eq!(r.body["status"], json!("open"));
    assert_eq!(r.body["parent_task_id"], Value::Null);
    assert_eq!(r.body["delegation_depth"], json!(0));

    let r = admin.post(
        &format!("/api/tasks/{id}/delegate"),
        json!({ "agent_id": data }),
    );
    assert_eq!(r.status, 200, "hand-off by numeric id: {}", r.text);
    assert_eq!(r.body["assigned_to_agent_id"], json!(data));

    let r = admin.post(
        &format!("/v1/tasks/{id}/delegate"),
        json!({ "agent_id": research.to_string() }),
    );
    assert_eq!(r.status, 200, "hand-off by numeric string id: {}", r.text);
    assert_eq!(r.body["assigned_to_agent_id"], json!(research));

    let t = admin.task(id);
    assert_eq!(t["assigned_to_agent_id"], json!(research));
    assert_eq!(t["status"], json!("open"));
    let kids = admin.get(&format!("/api/tasks/{id}/children"));
    assert_eq!(kids.status, 200, "{}", kids.text);
    assert_eq!(kids.body, json!([]), "a hand-off creates no child");
}

// ---------------------------------------------------------------- children

#[test]
fn delegating_a_child_sets_parent_root_and_depth_and_marks_the_parent_delegated() {
    let server = TestServer::start();
    let admin = server.admin();
    let (research, research_id) = server.agent("research-agent", "worker");
    let (_, data_id) = server.agent("data-agent", "worker");
    let root = admin.create_task(json!({ "content": "Write the market report" }));
    let root_id = id_of(&root);
    assert_eq!(
        root["root_task_id"],
        json!(root_id),
        "a new root is its own root"
    );
    assert_eq!(root["delegation_depth"], json!(0));

    let r = admin.post(
        &format!("/api/tasks/{root_id}/delegate"),
        json!({
            "content": "Collect sources",
            "assigned_to_agent_id": "research-agent",
            "priority": 1,
            "labels": ["research"],
        }),
    );
    assert_eq!(r.status, 201, "delegate a child: {}", r.text);
    let child = r.body;
    let child_id = id_of(&child);
    assert_ne!(child_id, root_id);
    assert_eq!(child["content"], json!("Collect sources"));
    assert_eq!(child["parent_task_id"], json!(root_id));
    assert_eq!(child["root_task_id"], json!(root_id));
    assert_eq!(child["delegation_depth"], json!(1));
    assert_eq!(child["assigned_to_agent_id"], json!(research_id));
    assert_eq!(
        child["priority"],
        json!(1),
        "create fields apply to the child"
    );
    assert_eq!(child["labels"], json!(["research"]));
    assert_eq!(child["status"], json!("open"));
    assert_eq!(admin.task(root_id)["status"], json!("delegated"));

    // The assignee delegates further down, naming the agent by id.
    let r = research.post(
        &format!("/api/tasks/{child_id}/delegate"),
        json!({ "content": "Pull the raw data", "agent_id": data_id }),
    );
    assert_eq!(r.status, 201, "delegate a grandchild: {}", r.text);
    let grandchild = r.body;
    assert_eq!(grandchild["parent_task_id"], json!(child_id));
    assert_eq!(
        grandchild["root_task_id"],
        json!(root_id),
        "the root is the parent's root"
    );
    assert_eq!(grandchild["delegation_depth"], json!(2));
    assert_eq!(grandchild["assigned_to_agent_id"], json!(data_id));
    assert_eq!(grandchild["created_by_agent_id"], json!(research_id));
    assert_eq!(admin.task(child_id)["status"], json!("delegated"));
    assert_eq!(admin.task(root_id)["status"], json!("delegated"));
}

#[test]
fn creating_a_task_with_parent_task_id_makes_a_child_and_children_lists_only_direct_children() {
    let server = TestServer::start();
    let admin = server.admin();
    let root_id = id_of(&admin.create_task(json!({ "content": "Launch plan" })));

    let c1 = admin.create_task(json!({ "content": "Draft copy", "parent_task_id": root_id }));
    let c1_id = id_of(&c1);
    assert_eq!(c1["parent_task_id"], json!(root_id));
    assert_eq!(c1["root_task_id"], json!(root_id));
    assert_eq!(c1["delegation_depth"], json!(1));
    assert_eq!(admin.task(root_id)["status"], json!("delegated"));

    let g = admin.create_task(json!({ "content": "Find images", "parent_task_id": c1_id }));
    assert_eq!(g["root_task_id"], json!(root_id));
    assert_eq!(g["delegation_depth"], json!(2));
    let r = admin.post(
        &format!("/api/tasks/{root_id}/delegate"),
        json!({ "content": "Book the venue" }),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let c2_id = id_of(&r.body);

    let kids = admin.get(&format!("/api/tasks/{root_id}/children"));
    assert_eq!(kids.status, 200, "{}", kids.text);
    assert_eq!(Client::ids(&kids.body), vec![c1_id, c2_id]);
    for k in kids.body.as_array().unwrap() {
        assert_eq!(k["parent_task_id"], json!(root_id));
    }
    let kids = admin.get(&format!("/v1/tasks/{c1_id}/children"));
    assert_eq!(kids.status, 200, "{}", kids.text);
    assert_eq!(Client::ids(&kids.body), vec![id_of(&g)]);
    let kids = admin.get(&format!("/api/tasks/{}/children", id_of(&g)));
    assert_eq!(kids.body, json!([]));
}

// ---------------------------------------------------------------- ledger

#[test]
fn every_handoff_child_delegation_and_assignment_change_appends_exactly_one_delegation_event() {
    let server = TestServer::start();
    let (orch, orch_id) = server.agent("orchestrator", "admin");
    let (a, a_id) = server.agent("agent-a", "worker");
    let (b, b_id) = server.agent("agent-b", "worker");
    let (c, c_id) = server.agent("agent-c", "worker");
    let before = server.delegation_rows().len();

    let root_id = id_of(&orch.create_task(json!({ "content": "Ledger root" })));
    assert_eq!(
        server.delegation_rows().len(),
        before,
        "creating an unassigned root is no delegation"
    );

    // 1. hand-off from the acting agent (no previous assignee)
    let r = orch.post(
        &format!("/api/tasks/{root_id}/delegate"),
        json!({ "agent_id": "agent-a" }),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let rows = server.delegation_rows();
    assert_eq!(rows.len(), before + 1);
    let e = rows.last().unwrap();
    assert_eq!(
        (e.kind.as_str(), e.task_id, e.root_task_id, e.parent_task_id),
        ("handoff", root_id, Some(root_id), None)
    );
    assert_eq!(
        (e.from_agent_id, e.to_agent_id, e.actor_agent_id),
        (Some(orch_id), Some(a_id), Some(orch_id))
    );

    // 2. hand-off from the current assignee
    let r = a.post(
        &format!("/api/tasks/{root_id}/delegate"),
        json!({ "agent_id": "agent-b", "note": "you know the data" }),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let rows = server.delegation_rows();
    assert_eq!(rows.len(), before + 2);
    let e = rows.last().unwrap();
    assert_eq!(e.kind, "handoff");
    assert_eq!(
        (e.from_agent_id, e.to_agent_id, e.actor_agent_id),
        (Some(a_id), Some(b_id), Some(a_id))
    );
    assert_eq!(e.note.as_deref(), Some("you know the data"));

    // 3. assignment change through PUT
    let r = b.put(
        &format!("/api/tasks/{root_id}"),
        json!({ "assigned_to_agent_id": "agent-c" }),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let rows = server.delegation_rows();
    assert_eq!(rows.len(), before + 3);
    let e = rows.last().unwrap();
    assert_eq!((e.kind.as_str(), e.task_id), ("assign", root_id));
    assert_eq!(
        (e.from_agent_id, e.to_agent_id, e.actor_agent_id),
        (Some(b_id), Some(c_id), Some(b_id))
    );

    // A PUT that does not change the assignee appends nothing.
    let r = c.put(
        &format!("/api/tasks/{root_id}"),
        json!({ "assigned_to_agent_id": c_id }),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let r = c.put(
        &format!("/api/tasks/{root_id}"),
        json!({ "content": "Ledger root, renamed" }),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(server.delegation_rows().len(), before + 3);

    // 4. child delegation
    let r = c.post(
        &format!("/api/tasks/{root_id}/delegate"),
        json!({ "content": "Ledger child", "agent_id": "agent-a" }),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let child_id = id_of(&r.body);
    let rows = server.delegation_rows();
    assert_eq!(rows.len(), before + 4);
    let e = rows.last().unwrap();
    assert_eq!(
        (e.kind.as_str(), e.task_id, e.root_task_id, e.parent_task_id),
        ("delegate", child_id, Some(root_id), Some(root_id))
    );
    assert_eq!(
        (e.from_agent_id, e.to_agent_id, e.actor_agent_id),
        (Some(c_id), Some(a_id), Some(c_id))
    );

    // 5. POST /tasks with parent_task_id
    let child2 = orch.create_task(json!({
        "content": "Ledger child two",
        "parent_task_id": root_id,
        "assigned_to_agent_id": "agent-b",
    }));
    let rows = server.delegation_rows();
    assert_eq!(rows.len(), before + 5);
    let e = rows.last().unwrap();
    assert_eq!(
        (e.kind.as_str(), e.task_id, e.parent_task_id),
        ("delegate", id_of(&child2), Some(root_id))
    );
    assert_eq!(
        (e.from_agent_id, e.to_agent_id, e.actor_agent_id),
        (Some(orch_id), Some(b_id), Some(orch_id))
    );

    // 6. unassigning is an assignment change too
    let r = a.put(
        &format!("/api/tasks/{child_id}"),
        json!({ "assigned_to_agent_id": null }),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["assigned_to_agent_id"], Value::Null);
    let rows = server.delegation_rows();
    assert_eq!(rows.len(), before + 6);
    let e = rows.last().unwrap();
    assert_eq!((e.kind.as_str(), e.task_id), ("assign", child_id));
    assert_eq!((e.from_agent_id, e.to_agent_id), (Some(a_id), None));

    // The chain's events are exactly these rows, in order.
    let chain = orch.get(&format!("/api/tasks/{root_id}/chain"));
    assert_eq!(chain.status, 200, "{}", chain.text);
    let event_ids: Vec<i64> = chain.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(id_of)
        .collect();
    let row_ids: Vec<i64> = rows[before..].iter().map(|r| r.id).collect();
    assert_eq!(event_ids, row_ids);
}

#[test]
fn delegation_events_cannot_be_updated_or_deleted_and_outlive_their_task() {
    let server = TestServer::start();
    let admin = server.admin();
    let (_, a_id) = server.agent("agent-a", "worker");
    let root_id = id_of(&admin.create_task(json!({ "content": "Append-only root" })));
    let r = admin.post(
        &format!("/api/tasks/{root_id}/delegate"),
        json!({ "agent_id": a_id }),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let r = admin.post(
        &format!("/api/tasks/{root_id}/delegate"),
        json!({ "content": "Append-only child", "agent_id": a_id }),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let child_id = id_of(&r.body);
    let rows = server.delegation_rows();
    assert!(rows.len() >= 2, "rows: {rows:?}");

    let conn = server.db();
    let upd = conn.execute(
        "UPDATE delegation_events SET note = 'rewritten history'",
        [],
    );
    assert!(upd.is_err(), "UPDATE on delegation_events must fail");
    let upd = conn.execute(
        "UPDATE delegation_events SET to_agent_id = NULL WHERE task_id = ?1",
        [root_id],
    );
    assert!(upd.is_err(), "a targeted UPDATE must fail too");
    let del = conn.execute("DELETE FROM delegation_events", []);
    assert!(del.is_err(), "DELETE on delegation_events must fail");
    let del = conn.execute(
        "DELETE FROM delegation_events WHERE task_id = ?1",
        [child_id],
    );
    assert!(del.is_err(), "a targeted DELETE must fail too");
    drop(conn);
    assert_eq!(server.delegation_rows(), rows, "the ledger is unchanged");

    // Deleting the tasks leaves their rows in place.
    let r = admin.delete(&format!("/api/tasks/{child_id}"));
    assert_eq!(r.status, 200, "{}", r.text);
    let r = admin.delete(&format!("/api/tasks/{root_id}"));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(admin.get(&format!("/api/tasks/{child_id}")).status, 404);
    let after = server.delegation_rows();
    assert_eq!(after, rows, "rows outlive the deleted tasks");
    assert!(after.iter().any(|r| r.task_id == child_id));
    assert!(after.iter().any(|r| r.task_id == root_id));
}

// ---------------------------------------------------------------- chain

/// The tutorial's agents, and its task once handed along.
struct Tutorial {
    orch: Client,
    research: Client,
    data: Client,
    ids: HashMap<String, i64>,
    task: i64,
}

/// The tutorial: the orchestrator hands a task to research-agent, who
/// hands it to data-agent, who hands it back.
fn tutorial_handoffs(server: &TestServer, prefix: &str) -> Tutorial {
    let (orch, orch_id) = server.agent("orchestrator", "admin");
    let (research, research_id) = server.agent("research-agent", "worker");
    let (data, data_id) = server.agent("data-agent", "worker");
    let r = orch.post(
        &format!("{prefix}/tasks"),
        json!({ "content": "Research the competitor landscape" }),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let id = id_of(&r.body);
    for (who, to) in [
        (&orch, "research-agent"),
        (&research, "data-agent"),
        (&data, "research-agent"),
    ] {
        let r = who.post(
            &format!("{prefix}/tasks/{id}/delegate"),
            json!({ "agent_id": to }),
        );
        assert_eq!(r.status, 200, "hand-off to {to}: {}", r.text);
        assert_eq!(r.body["assigned_to"], json!(to));
    }
    let ids = [
        ("orchestrator", orch_id),
        ("research-agent", research_id),
        ("data-agent", data_id),
    ]
    .iter()
    .map(|(n, i)| (n.to_string(), *i))
    .collect();
    Tutorial {
        orch,
        research,
        data,
        ids,
        task: id,
    }
}

fn expected_hops() -> Vec<(String, String)> {
    [
        ("orchestrator", "research-agent"),
        ("research-agent", "data-agent"),
        ("data-agent", "research-agent"),
    ]
    .iter()
    .map(|(f, t)| (f.to_string(), t.to_string()))
    .collect()
}

#[test]
fn the_tutorial_chain_under_v1_lists_three_hops_with_agent_names_in_order() {
    let server = TestServer::start();
    let t = tutorial_handoffs(&server, "/v1");
    let (orch, id, agents) = (&t.orch, t.task, &t.ids);
    let r = orch.get(&format!("/v1/tasks/{id}/chain"));
    assert_eq!(r.status, 200, "{}", r.text);
    let body = &r.body;
    assert_eq!(body["task_id"], json!(id));
    assert_eq!(body["root_id"], json!(id));
    assert_eq!(body["root"]["id"], json!(id));
    assert_eq!(body["total_count"], json!(1));
    assert_eq!(body["depth"], json!(0));
    assert_eq!(Client::ids(&body["tasks"]), vec![id]);

    let hops = &body["chain"];
    assert_eq!(names(hops), expected_hops(), "chain: {hops}");
    let mut last_at = time::OffsetDateTime::UNIX_EPOCH;
    let mut last_id = 0;
    for h in hops.as_array().unwrap() {
        assert_eq!(h["task_id"], json!(id));
        assert_eq!(h["kind"], json!("handoff"));
        assert_eq!(
            h["from_agent_id"],
            json!(agents[h["from"].as_str().unwrap()])
        );
        assert_eq!(h["to_agent_id"], json!(agents[h["to"].as_str().unwrap()]));
        let at = h["at"].as_str().expect("at is a timestamp string");
        assert!(at.ends_with('Z'), "UTC: {at}");
        let at = time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|e| panic!("at is RFC 3339 ({e}): {h}"));
        assert!(at >= last_at, "hops in time order");
        assert!(id_of(h) > last_id, "hops in id order");
        last_at = at;
        last_id = id_of(h);
        for key in ["actor", "note"] {
            assert!(h.get(key).is_some(), "hop lacks {key}: {h}");
        }
    }
    assert_eq!(body["events"], body["chain"], "under /v1 chain = events");

    // The agents who handed the task on can still follow it.
    for (name, who) in [("research-agent", &t.research), ("data-agent", &t.data)] {
        let r = who.get(&format!("/v1/tasks/{id}/chain"));
        assert_eq!(r.status, 200, "{name} reads the chain: {}", r.text);
        assert_eq!(names(&r.body["chain"]), expected_hops());
    }
}

#[test]
fn the_tutorial_chain_under_api_has_the_sdk_shape_with_tasks_in_chain() {
    let server = TestServer::start();
    let t = tutorial_handoffs(&server, "/api");
    let (orch, id) = (&t.orch, t.task);
    let r = orch.get(&format!("/api/tasks/{id}/chain"));
    assert_eq!(r.status, 200, "{}", r.text);
    let body = &r.body;
    assert_eq!(body["root_id"], json!(id));
    assert_eq!(body["root"]["id"], json!(id));
    assert_eq!(
        body["root"]["content"],
        json!("Research the competitor landscape")
    );
    assert_eq!(
        Client::ids(&body["chain"]),
        vec![id],
        "chain is the task list"
    );
    assert_eq!(body["chain"][0]["assigned_to"], json!("research-agent"));
    assert_eq!(body["chain"], body["tasks"]);
    assert_eq!(names(&body["events"]), expected_hops());
    for key in ["depth", "completed_count", "total_count"] {
        assert!(body[key].is_i64(), "{key} missing: {body}");
    }
}

#[test]
fn the_chain_orders_tasks_by_depth_then_creation_and_counts_them() {
    let server = TestServer::start();
    let admin = server.admin();
    let root = id_of(&admin.create_task(json!({ "content": "Chain root" })));
    let delegate = |parent: i64, content: &str| -> i64 {
        let r = admin.post(
            &format!("/api/tasks/{parent}/delegate"),
            json!({ "content": content }),
        );
        assert_eq!(r.status, 201, "{}", r.text);
        id_of(&r.body)
    };
    let c1 = delegate(root, "first child");
    let g = delegate(c1, "grandchild");
    let c2 = delegate(root, "second child");
    let r = admin.post(&format!("/api/tasks/{g}/complete"), json!({}));
    assert_eq!(r.status, 200, "{}", r.text);

    for prefix in ["/api", "/v1"] {
        let r = admin.get(&format!("{prefix}/tasks/{g}/chain"));
        assert_eq!(r.status, 200, "{}", r.text);
        let b = &r.body;
        assert_eq!(b["task_id"], json!(g));
        assert_eq!(b["root_id"], json!(root));
        assert_eq!(b["root"]["id"], json!(root));
        assert_eq!(b["depth"], json!(2));
        assert_eq!(b["total_count"], json!(4));
        assert_eq!(b["completed_count"], json!(1));
        assert_eq!(Client::ids(&b["tasks"]), vec![root, c1, c2, g]);
        let kinds: Vec<&str> = b["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, vec!["delegate"; 3], "{prefix}: {}", b["events"]);
        let tasks: Vec<i64> = b["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["task_id"].as_i64().unwrap())
            .collect();
        assert_eq!(tasks, vec![c1, g, c2]);
    }
}

// ---------------------------------------------------------------- visibility

/// A creates R (assigned to itself), delegates C to B; B delegates G to D.
struct Tree {
    a: Client,
    b: Client,
    outsider: Client,
    root: i64,
    child: i64,
    grandchild: i64,
}

fn worker_tree(server: &TestServer) -> Tree {
    let (a, a_id) = server.agent("agent-a", "worker");
    let (b, _) = server.agent("agent-b", "worker");
    let (_, _) = server.agent("agent-d", "worker");
    let (outsider, _) = server.agent("outsider", "worker");
    let root = id_of(&a.create_task(json!({
        "content": "Root owned by A",
        "assigned_to_agent_id": a_id,
    })));
    let r = a.post(
        &format!("/api/tasks/{root}/delegate"),
        json!({ "content": "Child for B", "agent_id": "agent-b" }),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let child = id_of(&r.body);
    let r = b.post(
        &format!("/api/tasks/{child}/delegate"),
        json!({ "content": "Grandchild for D", "agent_id": "agent-d" }),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let grandchild = id_of(&r.body);
    Tree {
        a,
        b,
        outsider,
        root,
        child,
        grandchild,
    }
}

#[test]
fn a_worker_reads_every_task_downstream_of_tasks_it_created() {
    let server = TestServer::start();
    let t = worker_tree(&server);
    for id in [t.root, t.child, t.grandchild] {
        let r = t.a.get(&format!("/api/tasks/{id}"));
        assert_eq!(r.status, 200, "A reads task {id}: {}", r.text);
    }
    let r = t.a.get(&format!("/api/tasks/{}/chain", t.grandchild));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        Client::ids(&r.body["tasks"]),
        vec![t.root, t.child, t.grandchild]
    );
    let list = t.a.get("/api/tasks");
    assert_eq!(list.status, 200, "{}", list.text);
    let listed: HashSet<i64> = Client::ids(&list.body).into_iter().collect();
    for id in [t.root, t.child, t.grandchild] {
        assert!(listed.contains(&id), "GET /tasks of A lists {id}");
    }
    // B reads its own task and what it delegated, not the root above it.
    assert_eq!(t.b.get(&format!("/api/tasks/{}", t.grandchild)).status, 200);
    t.b.get(&format!("/api/tasks/{}", t.root)).assert_error(404);
}

#[test]
fn a_worker_reads_every_task_downstream_of_tasks_it_is_assigned() {
    let server = TestServer::start();
    let admin = server.admin();
    let (a, a_id) = server.agent("agent-a", "worker");
    let (b, _) = server.agent("agent-b", "worker");
    let (_, _) = server.agent("agent-d", "worker");
    let root = id_of(&admin.create_task(json!({
        "content": "Assigned to A", "assigned_to_agent_id": a_id,
    })));
    let r = admin.post(
        &format!("/api/tasks/{root}/delegate"),
        json!({ "content": "For B", "agent_id": "agent-b" }),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let child = id_of(&r.body);
    let r = b.post(
        &format!("/api/tasks/{child}/delegate"),
        json!({ "content": "For D", "agent_id": "agent-d" }),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let grandchild = id_of(&r.body);
    for id in [root, child, grandchild] {
        let r = a.get(&format!("/api/tasks/{id}"));
        assert_eq!(r.status, 200, "A reads task {id}: {}", r.text);
    }
    let r = a.get(&format!("/api/tasks/{grandchild}/chain"));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(Client::ids(&r.body["tasks"]), vec![root, child, grandchild]);
}

/// SPEC §3 (updated): a claim lets the holder work the task, and never
/// opens the task's subtree.
#[test]
fn a_claim_does_not_open_the_subtree_of_the_task_claimed() {
    let server = TestServer::start();
    let admin = server.admin();
    let (a, _) = server.agent("agent-a", "worker");
    let (_, _) = server.agent("agent-b", "worker");
    let root = id_of(&admin.create_task(json!({ "content": "Claimable work" })));
    let r = a.post(&format!("/api/tasks/{root}/claim"), json!({}));
    assert_eq!(r.status, 200, "A claims the task: {}", r.text);
    let r = admin.post(
        &format!("/api/tasks/{root}/delegate"),
        json!({ "content": "Sub-work for B", "agent_id": "agent-b" }),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let child = id_of(&r.body);
    a.get(&format!("/api/tasks/{child}")).assert_error(404);
    a.get(&format!("/api/tasks/{child}/chain"))
        .assert_error(404);
}

#[test]
fn a_worker_unrelated_to_the_chain_gets_404_on_its_tasks_and_chain() {
    let server = TestServer::start();
    let t = worker_tree(&server);
    let o = &t.outsider;
    for id in [t.root, t.child, t.grandchild] {
        o.get(&format!("/api/tasks/{id}")).assert_error(404);
        o.get(&format!("/v1/tasks/{id}")).assert_error(404);
        o.get(&format!("/api/tasks/{id}/chain")).assert_error(404);
        o.get(&format!("/v1/tasks/{id}/chain")).assert_error(404);
        o.get(&format!("/api/tasks/{id}/children"))
            .assert_error(404);
        o.get(&format!("/api/tasks/{id}/context")).assert_error(404);
    }
    let list = o.get("/api/tasks?include_completed=true");
    assert_eq!(list.status, 200, "{}", list.text);
    assert_eq!(list.body, json!([]), "the outsider lists nothing");
}

#[test]
fn the_chain_shows_a_caller_only_the_tasks_and_hops_it_may_read() {
    let server = TestServer::start();
    let admin = server.admin();
    let (x, x_id) = server.agent("agent-x", "worker");
    let (b, _) = server.agent("agent-b", "worker");
    for n in ["agent-d", "agent-e"] {
        server.agent(n, "worker");
    }
    let root = id_of(&admin.create_task(json!({
        "content": "Secret root plan", "assigned_to_agent_id": x_id,
    })));
    let mk = |who: &Client, parent: i64, content: &str, to: &str| -> i64 {
        let r = who.post(
            &format!("/api/tasks/{parent}/delegate"),
            json!({ "content": content, "agent_id": to }),
        );
        assert_eq!(r.status, 201, "{}", r.text);
        id_of(&r.body)
    };
    let c1 = mk(&x, root, "Branch for B", "agent-b");
    let c2 = mk(&x, root, "Sibling branch for D", "agent-d");
    let g = mk(&b, c1, "Leaf for E", "agent-e");

    for prefix in ["/api", "/v1"] {
        let r = b.get(&format!("{prefix}/tasks/{c1}/chain"));
        assert_eq!(r.status, 200, "{}", r.text);
        let body = &r.body;
        assert_eq!(body["root_id"], json!(root));
        assert_eq!(body["root"], Value::Null, "B cannot read the root");
        assert_eq!(Client::ids(&body["tasks"]), vec![c1, g]);
        assert_eq!(body["total_count"], json!(2));
        let hop_tasks: Vec<i64> = body["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["task_id"].as_i64().unwrap())
            .collect();
        assert!(
            hop_tasks.iter().all(|t| *t == c1 || *t == g),
            "hops limited to readable tasks: {hop_tasks:?}"
        );
        assert!(hop_tasks.contains(&g));
        assert!(
            !r.text.contains("Secret root plan"),
            "root leaked: {}",
            r.text
        );
        assert!(
            !r.text.contains("Sibling branch for D"),
            "sibling leaked: {}",
            r.text
        );
    }
    b.get(&format!("/api/tasks/{c2}")).assert_error(404);

    let r = x.get(&format!("/api/tasks/{g}/chain"));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(Client::ids(&r.body["tasks"]), vec![root, c1, c2, g]);
    assert_eq!(r.body["total_count"], json!(4));
}

// ---------------------------------------------------------------- bad input

#[test]
fn delegating_to_an_unknown_or_deactivated_agent_is_422_and_changes_nothing() {
    let server = TestServer::start();
    let admin = server.admin();
    let (_, a_id) = server.agent("agent-a", "worker");
    let (_, z_id) = server.agent("retired-agent", "worker");
    let r = admin.put(&format!("/api/agents/{z_id}"), json!({ "active": false }));
    assert_eq!(r.status, 200, "deactivate: {}", r.text);
    let id = id_of(&admin.create_task(json!({
        "content": "Stays with A", "assigned_to_agent_id": a_id,
    })));
    let before_task = admin.task(id);
    let before_rows = server.delegation_rows();
    let before_count = admin
        .get("/api/tasks?include_completed=true")
        .body
        .as_array()
        .unwrap()
        .len();

    let bodies = [
        json!({ "agent_id": "nobody-by-that-name" }),
        json!({ "agent_id": 999_999 }),
        json!({ "agent_id": "999999" }),
        json!({ "agent_id": "retired-agent" }),
        json!({ "agent_id": z_id }),
        json!({ "content": "child", "agent_id": "nobody-by-that-name" }),
        json!({ "content": "child", "assigned_to_agent_id": 999_999 }),
        json!({ "content": "child", "assigned_to_agent_id": "retired-agent" }),
        json!({}),
        json!({ "note": "to whom?" }),
    ];
    for body in bodies {
        for prefix in ["/api", "/v1"] {
            let r = admin.post(&format!("{prefix}/tasks/{id}/delegate"), body.clone());
            r.assert_error(422);
            assert!(
                r.text.contains("agent"),
                "the error names the agent field ({body}): {}",
                r.text
            );
        }
    }
    for target in [json!("retired-agent"), json!(999_999)] {
        admin
            .put(
                &format!("/api/tasks/{id}"),
                json!({ "assigned_to_agent_id": target }),
            )
            .assert_error(422);
    }
    admin
        .post(
            "/api/tasks",
            json!({ "content": "child", "parent_task_id": id, "agent_id": "retired-agent" }),
        )
        .assert_error(422);

    assert_eq!(admin.task(id), before_task, "the task is unchanged");
    assert_eq!(server.delegation_rows(), before_rows, "no ledger row");
    assert_eq!(
        admin.get(&format!("/api/tasks/{id}/children")).body,
        json!([])
    );
    let after_count = admin
        .get("/api/tasks?include_completed=true")
        .body
        .as_array()
        .unwrap()
        .len();
    assert_eq!(after_count, before_count, "no task was created");
}

#[test]
fn delegating_a_task_you_cannot_read_is_404_and_one_you_cannot_modify_is_refused() {
    let server = TestServer::start();
    let admin = server.admin();
    let t = worker_tree(&server);
    let before_rows = server.delegation_rows();
    let grandchild_before = admin.task(t.grandchild);
    let root_before = admin.task(t.root);

    // The outsider cannot read the chain at all: 404.
    for body in [
        json!({ "agent_id": "outsider" }),
        json!({ "content": "mine now", "agent_id": "outsider" }),
    ] {
        t.outsider
            .post(&format!("/api/tasks/{}/delegate", t.root), body)
            .assert_error(404);
    }
    t.outsider
        .put(
            &format!("/api/tasks/{}", t.root),
            json!({ "assigned_to_agent_id": "outsider" }),
        )
        .assert_error(404);
    let r = t.outsider.post(
        "/api/tasks",
        json!({ "content": "hijack", "parent_task_id": t.root }),
    );
    assert!(
        r.status == 404 || r.status == 422,
        "a parent the caller cannot read: {} {}",
        r.status,
        r.text
    );
    r.assert_error(r.status);

    // A reads the grandchild (downstream) but may not change it.
    assert_eq!(t.a.get(&format!("/api/tasks/{}", t.grandchild)).status, 200);
    for body in [
        json!({ "agent_id": "agent-a" }),
        json!({ "content": "reroute", "agent_id": "agent-a" }),
    ] {
        let r =
            t.a.post(&format!("/api/tasks/{}/delegate", t.grandchild), body);
        assert_refused(&r);
    }
    assert_refused(&t.a.put(
        &format!("/api/tasks/{}", t.grandchild),
        json!({ "assigned_to_agent_id": "agent-a" }),
    ));

    // A task in every worker's claim queue is readable, not delegable.
    let queued = id_of(&admin.create_task(json!({ "content": "Queued work" })));
    let queued_before = admin.task(queued);
    assert_refused(&t.outsider.post(
        &format!("/api/tasks/{queued}/delegate"),
        json!({ "agent_id": "agent-b" }),
    ));
    assert_refused(&t.outsider.post(
        &format!("/api/tasks/{queued}/delegate"),
        json!({ "content": "sub", "agent_id": "agent-b" }),
    ));

    assert_eq!(server.delegation_rows(), before_rows, "no ledger row");
    assert_eq!(admin.task(t.grandchild), grandchild_before);
    assert_eq!(admin.task(t.root), root_before);
    assert_eq!(admin.task(queued), queued_before);
    assert_eq!(
        admin
            .get(&format!("/api/tasks/{}/children", t.grandchild))
            .body,
        json!([])
    );
    assert_eq!(
        admin.get(&format!("/api/tasks/{queued}/children")).body,
        json!([])
    );
}

#[test]
fn a_missing_task_cannot_be_delegated() {
    let server = TestServer::start();
    let admin = server.admin();
    server.agent("agent-a", "worker");
    admin
        .post(
            "/api/tasks/987654/delegate",
            json!({ "agent_id": "agent-a" }),
        )
        .assert_error(404);
    admin
        .post(
            "/api/tasks/987654/delegate",
            json!({ "content": "orphan", "agent_id": "agent-a" }),
        )
        .assert_error(404);
    admin.get("/api/tasks/987654/chain").assert_error(404);
    admin.get("/api/tasks/987654/children").assert_error(404);
    assert!(server.delegation_rows().is_empty());
}

// ---------------------------------------------------------------- concurrency

#[test]
fn eight_agents_delegating_children_of_one_parent_at_once_leave_a_consistent_tree() {
    let server = TestServer::start();
    let admin = server.admin();
    let parent = id_of(&admin.create_task(json!({ "content": "Fan-out parent" })));
    let agents: Vec<(Client, i64)> = (0..8)
        .map(|i| server.agent(&format!("coordinator-{i}"), "coordinator"))
        .collect();

    let results: Vec<(i64, i64, i64)> = std::thread::scope(|s| {
        let handles: Vec<_> = agents
            .iter()
            .enumerate()
            .map(|(i, (client, agent_id))| {
                s.spawn(move || {
                    let r = client.post(
                        &format!("/api/tasks/{parent}/delegate"),
                        json!({ "content": format!("child {i}"), "agent_id": agent_id }),
                    );
                    assert_eq!(r.status, 201, "child {i}: {}", r.text);
                    let child = id_of(&r.body);
                    assert_eq!(r.body["parent_task_id"], json!(parent));
                    assert_eq!(r.body["root_task_id"], json!(parent));
                    assert_eq!(r.body["delegation_depth"], json!(1));
                    let r = client.post(
                        &format!("/api/tasks/{child}/delegate"),
                        json!({ "content": format!("grandchild {i}") }),
                    );
                    assert_eq!(r.status, 201, "grandchild {i}: {}", r.text);
                    assert_eq!(r.body["parent_task_id"], json!(child));
                    assert_eq!(r.body["root_task_id"], json!(parent));
                    assert_eq!(r.body["delegation_depth"], json!(2));
                    (*agent_id, child, id_of(&r.body))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });

    let kids = admin.get(&format!("/api/tasks/{parent}/children"));
    assert_eq!(kids.status, 200, "{}", kids.text);
    let kid_ids: HashSet<i64> = Client::ids(&kids.body).into_iter().collect();
    let expected: HashSet<i64> = results.iter().map(|(_, c, _)| *c).collect();
    assert_eq!(kid_ids.len(), 8);
    assert_eq!(kid_ids, expected);
    assert_eq!(admin.task(parent)["status"], json!("delegated"));
    for (agent, child, grandchild) in &results {
        let c = admin.task(*child);
        assert_eq!(c["created_by_agent_id"], json!(agent));
        assert_eq!(c["status"], json!("delegated"));
        let g = admin.get(&format!("/api/tasks/{child}/children"));
        assert_eq!(Client::ids(&g.body), vec![*grandchild]);
    }

    // The ledger: one delegate row per child and grandchild, consistent.
    let rows: Vec<_> = server
        .delegation_rows()
        .into_iter()
        .filter(|r| r.root_task_id == Some(parent))
        .collect();
    assert_eq!(rows.len(), 16, "rows: {rows:?}");
    for (agent, child, grandchild) in &results {
        let row = rows
            .iter()
            .find(|r| r.task_id == *child)
            .expect("child row");
        assert_eq!(row.kind, "delegate");
        assert_eq!(row.parent_task_id, Some(parent));
        assert_eq!(row.actor_agent_id, Some(*agent));
        assert_eq!(row.from_agent_id, Some(*agent));
        assert_eq!(row.to_agent_id, Some(*agent));
        let row = rows
            .iter()
            .find(|r| r.task_id == *grandchild)
            .expect("grandchild row");
        assert_eq!(row.kind, "delegate");
        assert_eq!(row.parent_task_id, Some(*child));
        assert_eq!(row.actor_agent_id, Some(*agent));
    }
    let distinct: HashSet<i64> = rows.iter().map(|r| r.task_id).collect();
    assert_eq!(distinct.len(), 16, "one row per new task");

    let chain = admin.get(&format!("/api/tasks/{parent}/chain"));
    assert_eq!(chain.status, 200, "{}", chain.text);
    assert_eq!(chain.body["total_count"], json!(17));
    assert_eq!(chain.body["depth"], json!(2));
    assert_eq!(chain.body["events"].as_array().unwrap().len(), 16);
    let depths: Vec<i64> = chain.body["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["delegation_depth"].as_i64().unwrap())
        .collect();
    let mut sorted = depths.clone();
    sorted.sort();
    assert_eq!(depths, sorted, "tasks ordered by depth");
    assert_eq!(depths.iter().filter(|d| **d == 1).count(), 8);
    assert_eq!(depths.iter().filter(|d| **d == 2).count(), 8);
}

#[test]
fn eight_agents_handing_off_one_task_at_once_leave_an_unbroken_chain_of_hops() {
    let server = TestServer::start();
    let admin = server.admin();
    let id = id_of(&admin.create_task(json!({ "content": "Hot potato" })));
    let agents: Vec<(Client, i64)> = (0..8)
        .map(|i| server.agent(&format!("coordinator-{i}"), "coordinator"))
        .collect();
    std::thread::scope(|s| {
        for (client, agent_id) in &agents {
            s.spawn(move || {
                let r = client.post(
                    &format!("/api/tasks/{id}/delegate"),
                    json!({ "agent_id": agent_id }),
                );
                assert_eq!(r.status, 200, "{}", r.text);
                assert_eq!(r.body["assigned_to_agent_id"], json!(agent_id));
            });
        }
    });

    let rows: Vec<_> = server
        .delegation_rows()
        .into_iter()
        .filter(|r| r.task_id == id)
        .collect();
    assert_eq!(rows.len(), 8, "one row per hand-off: {rows:?}");
    for pair in rows.windows(2) {
        assert_eq!(
            pair[1].from_agent_id, pair[0].to_agent_id,
            "each hop starts where the previous one ended: {rows:?}"
        );
    }
    let targets: HashSet<i64> = rows.iter().filter_map(|r| r.to_agent_id).collect();
    assert_eq!(targets.len(), 8, "every agent received the task once");
    let t = admin.task(id);
    assert_eq!(t["assigned_to_agent_id"], json!(rows[7].to_agent_id));
    let chain = admin.get(&format!("/v1/tasks/{id}/chain"));
    let hops = names(&chain.body["chain"]);
    assert_eq!(hops.len(), 8);
    for pair in hops.windows(2) {
        assert_eq!(pair[1].0, pair[0].1, "unbroken chain: {hops:?}");
    }
}

#[test]
fn a_tasks_place_in_a_chain_cannot_be_set_by_hand() {
    let server = TestServer::start();
    let admin = server.admin();
    let root = id_of(&admin.create_task(json!({ "content": "Fixed root" })));
    let other = id_of(&admin.create_task(json!({ "content": "Another root" })));
    admin
        .post(
            "/api/tasks",
            json!({ "content": "forged", "root_task_id": other }),
        )
        .assert_error(400);
    admin
        .post(
            "/api/tasks",
            json!({ "content": "forged", "delegation_depth": 3 }),
        )
        .assert_error(400);
    for field in ["parent_task_id", "root_task_id", "delegation_depth"] {
        admin
            .put(&format!("/api/tasks/{root}"), json!({ field: other }))
            .assert_error(400);
    }
    let list = admin.get("/api/tasks?include_completed=true");
    assert_eq!(Client::ids(&list.body).len(), 2, "nothing was created");
    let t = admin.task(root);
    assert_eq!(
        (
            &t["parent_task_id"],
            &t["root_task_id"],
            &t["delegation_depth"]
        ),
        (&Value::Null, &json!(root), &json!(0))
    );
}

#[test]
fn tasks_can_be_listed_by_parent_and_by_root() {
    let server = TestServer::start();
    let admin = server.admin();
    let root = id_of(&admin.create_task(json!({ "content": "List root" })));
    let c = id_of(&admin.create_task(json!({ "content": "c", "parent_task_id": root })));
    let g = id_of(&admin.create_task(json!({ "content": "g", "parent_task_id": c })));
    let _unrelated = admin.create_task(json!({ "content": "unrelated" }));
    let by_parent = admin.get(&format!("/api/tasks?parent_task_id={root}"));
    assert_eq!(by_parent.status, 200, "{}", by_parent.text);
    assert_eq!(Client::ids(&by_parent.body), vec![c]);
    let by_root = admin.get(&format!("/api/tasks?root_task_id={root}"));
    assert_eq!(by_root.status, 200, "{}", by_root.text);
    let mut ids = Client::ids(&by_root.body);
    ids.sort();
    assert_eq!(ids, vec![root, c, g]);
}

#[test]
fn the_chain_of_a_child_still_answers_after_its_root_is_deleted() {
    let server = TestServer::start();
    let admin = server.admin();
    let (_, a_id) = server.agent("agent-a", "worker");
    let root = id_of(&admin.create_task(json!({ "content": "Doomed root" })));
    let r = admin.post(
        &format!("/api/tasks/{root}/delegate"),
        json!({ "content": "Survivor", "agent_id": a_id }),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let child = id_of(&r.body);
    let rows = server.delegation_rows();
    let r = admin.delete(&format!("/api/tasks/{root}"));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(server.delegation_rows(), rows, "the ledger keeps the rows");

    let t = admin.task(child);
    assert_eq!(
        t["root_task_id"],
        json!(root),
        "the chain keeps its root id"
    );
    let r = admin.get(&format!("/api/tasks/{child}/chain"));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["root_id"], json!(root));
    assert_eq!(Client::ids(&r.body["tasks"]), vec![child]);
    let hop_tasks: Vec<i64> = r.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["task_id"].as_i64().unwrap())
        .collect();
    assert!(hop_tasks.contains(&child), "{}", r.text);
}
