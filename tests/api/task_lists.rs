//! SPEC §5 `GET /tasks`: every filter, the order, and pagination.

use std::collections::BTreeSet;

use crate::helpers::{date_in, id_of, ids, Client, TestServer};
use serde_json::{json, Value};

fn listed(client: &Client, query: &str) -> BTreeSet<i64> {
    let r = client.get(&format!("/api/tasks{query}"));
    assert_eq!(r.status, 200, "GET /api/tasks{query}: {}", r.text);
    ids(&r.body).into_iter().collect()
}

fn set(ids: &[i64]) -> BTreeSet<i64> {
    ids.iter().copied().collect()
}

struct Fixture {
    server: TestServer,
    alice: i64,
    bob: i64,
    p1: i64,
    p2: i64,
    /// alpha report: p1, priority 1, labels x+y, alice, due today
    t1: i64,
    /// beta REPORT draft: p2, priority 3, label x, bob, due tomorrow,
    /// description mentions a Needle, in_progress
    t2: i64,
    /// gamma: priority 2, alice, due yesterday (overdue)
    t3: i64,
    /// delta: priority 2, completed
    t4: i64,
    /// epsilon: created by alice, priority 4, due 2030-06-01
    t5: i64,
}

fn fixture() -> Fixture {
    let server = TestServer::start();
    let (alice_client, alice) = server.agent("alice", "worker");
    let (_, bob) = server.agent("bob", "worker");
    let admin = server.admin();
    let p1 = id_of(&admin.post("/api/projects", json!({"name": "P1"})).body);
    let p2 = id_of(&admin.post("/api/projects", json!({"name": "P2"})).body);
    let t1 = id_of(&admin.create_task(json!({
        "content": "Alpha report", "project_id": p1, "priority": 1, "labels": ["x", "y"],
        "assigned_to_agent_id": alice, "due_date": date_in(0)})));
    let t2 = id_of(&admin.create_task(json!({
        "content": "beta REPORT draft", "description": "find the Needle here", "project_id": p2,
        "priority": 3, "labels": ["x"], "assigned_to_agent_id": "bob", "due_date": date_in(1)})));
    let r = admin.put(
        &format!("/api/tasks/{t2}"),
        json!({"status": "in_progress"}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let t3 = id_of(&admin.create_task(json!({
        "content": "gamma", "priority": 2, "assigned_to_agent_id": alice, "due_date": date_in(-1)})));
    let t4 = id_of(&admin.create_task(json!({"content": "delta", "priority": 2})));
    let r = admin.post(&format!("/api/tasks/{t4}/complete"), json!({}));
    assert_eq!(r.status, 200, "{}", r.text);
    let t5 = id_of(&alice_client.create_task(json!({
        "content": "epsilon", "priority": 4, "due_date": "2030-06-01"})));
    Fixture {
        server,
        alice,
        bob,
        p1,
        p2,
        t1,
        t2,
        t3,
        t4,
        t5,
    }
}

#[test]
fn every_list_filter_selects_exactly_the_matching_tasks() {
    // Arrange
    let f = fixture();
    let (t1, t2, t3, t4, t5) = (f.t1, f.t2, f.t3, f.t4, f.t5);
    let admin = f.server.admin();
    let today = date_in(0);
    let tomorrow = date_in(1);

    let cases: Vec<(String, Vec<i64>)> = vec![
        ("".into(), vec![t1, t2, t3, t5]),
        ("?include_completed=true".into(), vec![t1, t2, t3, t4, t5]),
        ("?include_completed=false".into(), vec![t1, t2, t3, t5]),
        (format!("?assigned_to={}", f.alice), vec![t1, t3]),
        ("?assigned_to=alice".into(), vec![t1, t3]),
        ("?assigned_to=bob".into(), vec![t2]),
        (format!("?assigned_to={}", f.bob), vec![t2]),
        ("?created_by=alice".into(), vec![t5]),
        (format!("?created_by={}", f.alice), vec![t5]),
        ("?status=open".into(), vec![t1, t3, t5]),
        ("?status=in_progress".into(), vec![t2]),
        ("?status=completed".into(), vec![t4]),
        ("?completed=true".into(), vec![t4]),
        ("?completed=false".into(), vec![t1, t2, t3, t5]),
        (format!("?project_id={}", f.p1), vec![t1]),
        (format!("?project_id={}", f.p2), vec![t2]),
        ("?label=x".into(), vec![t1, t2]),
        ("?label=y".into(), vec![t1]),
        ("?label=z".into(), vec![]),
        ("?labels=x&labels=y".into(), vec![t1]),
        ("?labels=x".into(), vec![t1, t2]),
        ("?labels=y&labels=z".into(), vec![]),
        ("?priority=1".into(), vec![t1]),
        ("?priority=2".into(), vec![t3]),
        ("?priority=2&include_completed=true".into(), vec![t3, t4]),
        ("?search=report".into(), vec![t1, t2]),
        ("?search=REPORT".into(), vec![t1, t2]),
        ("?search=Alpha%20Rep".into(), vec![t1]),
        ("?search=needle".into(), vec![t2]),
        ("?search=nothing-like-this".into(), vec![]),
        ("?due=today".into(), vec![t1]),
        ("?due=overdue".into(), vec![t3]),
        (format!("?due={tomorrow}"), vec![t2]),
        (format!("?due={today}"), vec![t1]),
        ("?due=2030-06-01".into(), vec![t5]),
        ("?due_after=2029-12-31".into(), vec![t5]),
        ("?due_before=2029-12-31".into(), vec![t1, t2, t3]),
        (
            "?due_after=2000-01-01&due_before=2029-12-31".into(),
            vec![t1, t2, t3],
        ),
        ("?assigned_to=alice&priority=2".into(), vec![t3]),
        ("?label=x&search=beta".into(), vec![t2]),
        ("?claimed=false".into(), vec![t1, t2, t3, t5]),
        ("?claimed=true".into(), vec![]),
    ];

    // Act + Assert
    for (query, expected) in cases {
        assert_eq!(
            listed(&admin, &query),
            set(&expected),
            "GET /api/tasks{query}"
        );
        let v1 = admin.get(&format!("/v1/tasks{query}"));
        let v1: BTreeSet<i64> = ids(&v1.body).into_iter().collect();
        assert_eq!(v1, set(&expected), "GET /v1/tasks{query}");
    }
}

#[test]
fn due_upcoming_lists_future_open_tasks_only() {
    let f = fixture();
    let upcoming = listed(&f.server.admin(), "?due=upcoming");
    assert!(
        upcoming.contains(&f.t2),
        "tomorrow is upcoming: {upcoming:?}"
    );
    assert!(
        !upcoming.contains(&f.t3),
        "overdue is not upcoming: {upcoming:?}"
    );
    assert!(
        !upcoming.contains(&f.t4),
        "completed is not upcoming: {upcoming:?}"
    );
}

#[test]
fn filters_apply_within_what_a_worker_may_read() {
    let f = fixture();
    let r = f
        .server
        .admin()
        .post(&format!("/api/agents/{}/rotate-key", f.alice), json!({}));
    let alice = f.server.with_key(r.body["api_key"].as_str().unwrap());
    assert_eq!(listed(&alice, ""), set(&[f.t1, f.t3, f.t5]));
    assert_eq!(listed(&alice, "?label=x"), set(&[f.t1]));
    assert_eq!(listed(&alice, "?search=report"), set(&[f.t1]));
    assert_eq!(listed(&alice, "?assigned_to=bob"), set(&[]));
}

#[test]
fn parent_and_root_filters_follow_the_delegation_tree() {
    let server = TestServer::start();
    let admin = server.admin();
    let root = id_of(&admin.create_task(json!({"content": "root"})));
    let child = id_of(&admin.create_task(json!({"content": "child", "parent_task_id": root})));
    let grandchild =
        id_of(&admin.create_task(json!({"content": "grandchild", "parent_task_id": child})));
    let other = id_of(&admin.create_task(json!({"content": "other root"})));

    let child_task = server.task_snapshot(child);
    assert_eq!(child_task["root_task_id"], json!(root));
    assert_eq!(child_task["delegation_depth"], json!(1));
    assert_eq!(
        server.task_snapshot(grandchild)["delegation_depth"],
        json!(2)
    );

    let cases = [
        (format!("?parent_task_id={root}"), vec![child]),
        (format!("?parent_task_id={child}"), vec![grandchild]),
        (format!("?parent_task_id={grandchild}"), vec![]),
        (
            format!("?root_task_id={root}"),
            vec![root, child, grandchild],
        ),
        (format!("?root_task_id={other}"), vec![other]),
    ];
    for (query, expected) in cases {
        assert_eq!(listed(&admin, &query), set(&expected), "{query}");
    }
}

#[test]
fn tasks_are_ordered_completed_last_then_priority_then_due_date_then_newest() {
    let server = TestServer::start();
    let admin = server.admin();
    let mk = |body: Value| id_of(&admin.create_task(body));
    let a = mk(json!({"content": "a", "priority": 2}));
    let b = mk(json!({"content": "b", "priority": 2, "due_date": "2030-01-02"}));
    let c = mk(json!({"content": "c", "priority": 2, "due_date": "2030-01-01"}));
    let d = mk(json!({"content": "d", "priority": 1}));
    let e = mk(json!({"content": "e", "priority": 2}));
    let f = mk(json!({"content": "f", "priority": 1, "due_date": "2029-01-01"}));
    let g = mk(json!({"content": "g", "priority": 4}));
    assert_eq!(
        admin
            .post(&format!("/api/tasks/{f}/complete"), json!({}))
            .status,
        200
    );

    let r = admin.get("/api/tasks?include_completed=true");

    assert_eq!(r.status, 200);
    assert_eq!(ids(&r.body), vec![d, c, b, e, a, g, f]);
    assert_eq!(ids(&admin.get("/api/tasks").body), vec![d, c, b, e, a, g]);
}

/// The path and query of a `Link: <…>; rel="next"` header.
fn next_link(link: &str, base: &str) -> String {
    assert!(link.contains("rel=\"next\""), "{link}");
    let start = link.find('<').expect("<") + 1;
    let end = link.find('>').expect(">");
    let target = &link[start..end];
    target.strip_prefix(base).unwrap_or(target).to_string()
}

#[test]
fn pagination_uses_limit_and_offset_with_a_link_header_to_the_next_page() {
    let server = TestServer::start();
    let admin = server.admin();
    for i in 0..5 {
        admin.create_task(json!({"content": format!("page item {i}"), "labels": ["paged"]}));
    }
    admin.create_task(json!({"content": "not paged"}));
    let all = ids(&admin.get("/api/tasks?label=paged").body);
    assert_eq!(all.len(), 5);

    // Follow the links.
    let mut seen = Vec::new();
    let mut path = "/api/tasks?label=paged&limit=2".to_string();
    let mut pages = 0;
    loop {
        let r = admin.get(&path);
        assert_eq!(r.status, 200, "{path}: {}", r.text);
        let page = ids(&r.body);
        assert!(page.len() <= 2, "{path}: {page:?}");
        seen.extend(page);
        pages += 1;
        assert!(pages <= 3, "too many pages");
        match r.header("Link") {
            Some(link) => path = next_link(link, &server.base),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, all, "pages concatenate to the full list in order");

    // Explicit offsets.
    let r = admin.get("/api/tasks?label=paged&limit=2&offset=4");
    assert_eq!(ids(&r.body), all[4..].to_vec());
    assert!(r.header("Link").is_none(), "last page has no next link");
    let r = admin.get("/api/tasks?label=paged&limit=5");
    assert_eq!(ids(&r.body), all);
    assert!(
        r.header("Link").is_none(),
        "exactly-full page has no next link"
    );
    let r = admin.get("/api/tasks?label=paged&offset=10");
    assert_eq!(r.body, json!([]));
}

#[test]
fn other_lists_paginate_too() {
    let server = TestServer::start();
    for i in 0..3 {
        server.create_agent(json!({"name": format!("pager-{i}")}));
        server
            .admin()
            .post("/api/projects", json!({"name": format!("Pager {i}")}));
    }
    for path in ["/api/agents?limit=2", "/api/projects?limit=2"] {
        let r = server.admin().get(path);
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.body.as_array().unwrap().len(), 2, "{path}");
        let next = next_link(r.header("Link").expect("Link header"), &server.base);
        let r2 = server.admin().get(&next);
        assert_eq!(r2.body.as_array().unwrap().len(), 1, "{next}");
        assert!(r2.header("Link").is_none());
    }
}

#[test]
fn invalid_list_parameters_are_a_422_naming_the_parameter() {
    let server = TestServer::start();
    let admin = server.admin();
    admin.create_task(json!({"content": "something"}));
    let cases = [
        ("?limit=0", "limit"),
        ("?limit=abc", "limit"),
        ("?offset=-1", "offset"),
        ("?priority=high", "priority"),
        ("?status=done", "status"),
        ("?completed=maybe", "completed"),
        ("?include_completed=perhaps", "include_completed"),
        ("?due=someday", "due"),
        ("?due_after=tomorrow", "due_after"),
        ("?due_before=2030-13-45", "due_before"),
        ("?project_id=abc", "project_id"),
        ("?parent_task_id=x", "parent_task_id"),
        ("?root_task_id=x", "root_task_id"),
        ("?claimed=sometimes", "claimed"),
        ("?assigned_to=nobody", "assigned_to"),
        ("?created_by=nobody", "created_by"),
        ("?assigned_to=424242", "assigned_to"),
    ];
    for (query, field) in cases {
        let r = admin.get(&format!("/api/tasks{query}"));
        assert_eq!(r.status, 422, "{query}: {}", r.text);
        r.assert_field_error(field);
    }
}
