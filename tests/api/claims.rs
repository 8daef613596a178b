//! The work queue: claims, leases, heartbeats, release.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use crate::helpers::{wait_for, TestServer};
use serde_json::json;

#[test]
fn the_queue_hands_out_the_most_urgent_oldest_task_and_sets_claimed() {
    let server = TestServer::start();
    let admin = server.admin();
    let (worker, wid) = server.agent("w", "worker");
    let low = admin.create_task(json!({"content": "low", "priority": 3}));
    let urgent_old = admin.create_task(json!({"content": "urgent old", "priority": 1}));
    admin.create_task(json!({"content": "urgent new", "priority": 1}));
    let r = worker.post("/api/tasks/claim", json!({}));
    assert_eq!(r.status, 200, "{}", r.text);
    let t = &r.body["task"];
    assert_eq!(t["id"], urgent_old["id"]);
    assert_eq!(t["status"], "claimed");
    assert_eq!(t["claimed_by_agent_id"], wid);
    assert!(
        t["assigned_to_agent_id"].is_null(),
        "claiming never assigns"
    );
    assert!(t["lease_expires_at"].as_str().unwrap() > t["claimed_at"].as_str().unwrap());
    // The claimed task is no longer in anyone's queue.
    let queue = worker.get("/api/tasks?claimable=true").body;
    let ids: Vec<_> = queue
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].clone())
        .collect();
    assert!(!ids.contains(&urgent_old["id"]));
    assert!(ids.contains(&low["id"]));
}

#[test]
fn concurrent_workers_never_hold_the_same_task() {
    let server = TestServer::start();
    let admin = server.admin();
    for i in 0..20 {
        admin.create_task(json!({"content": format!("job {i}")}));
    }
    let workers: Vec<_> = (0..8)
        .map(|i| server.agent(&format!("w{i}"), "worker").0)
        .collect();
    let handles: Vec<_> = workers
        .into_iter()
        .map(|w| {
            std::thread::spawn(move || {
                let mut got = Vec::new();
                loop {
                    let r = w.post("/api/tasks/claim", json!({"lease_seconds": 60}));
                    assert_eq!(r.status, 200, "{}", r.text);
                    match r.body["task"]["id"].as_i64() {
                        Some(id) => got.push(id),
                        None => return got,
                    }
                }
            })
        })
        .collect();
    let all: Vec<i64> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let distinct: HashSet<_> = all.iter().collect();
    assert_eq!(all.len(), 20, "every task claimed once: {all:?}");
    assert_eq!(distinct.len(), 20, "no task claimed twice: {all:?}");
}

#[test]
fn claiming_by_id_heartbeat_state_and_release_follow_the_holder() {
    let server = TestServer::start();
    let admin = server.admin();
    let (a, _) = server.agent("a", "worker");
    let (b, _) = server.agent("b", "worker");
    let t = admin.create_task(json!({"content": "shared"}));
    let id = t["id"].as_i64().unwrap();

    let r = a.post(
        &format!("/api/tasks/{id}/claim"),
        json!({"lease_seconds": 60}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let first_lease = r.body["task"]["lease_expires_at"]
        .as_str()
        .unwrap()
        .to_string();
    b.post(&format!("/api/tasks/{id}/claim"), json!({}))
        .assert_error(409);
    b.post(&format!("/api/tasks/{id}/heartbeat"), json!({}))
        .assert_error(409);

    let r = a.post(
        &format!("/api/tasks/{id}/heartbeat"),
        json!({"lease_seconds": 600, "state": "working"}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.body["lease_expires_at"].as_str().unwrap() > first_lease.as_str());
    assert_eq!(r.body["session_state"], "working");

    let r = a.post(
        &format!("/api/tasks/{id}/state"),
        json!({"state": "waiting_input", "detail": "need creds"}),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.body["session_state"], "waiting_input");
    assert_eq!(r.body["session_state_detail"], "need creds");
    a.post(
        &format!("/api/tasks/{id}/state"),
        json!({"state": "sleeping"}),
    )
    .assert_error(422);

    b.post(&format!("/api/tasks/{id}/release"), json!({}))
        .assert_error(403);
    let r = a.post(
        &format!("/api/tasks/{id}/release"),
        json!({"handoff": "half done; see notes"}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], "open");
    assert!(r.body["claimed_by_agent_id"].is_null());
    assert_eq!(r.body["handoff"], "half done; see notes");
    a.post(&format!("/api/tasks/{id}/release"), json!({}))
        .assert_error(409);

    let kinds: Vec<_> = admin
        .get(&format!("/api/events?task_id={id}"))
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_string())
        .collect();
    assert!(kinds.contains(&"task.claimed".into()));
    assert!(kinds.contains(&"task.state_changed".into()));
    assert!(kinds.contains(&"task.released".into()));
}

#[test]
fn completing_a_claimed_task_clears_the_claim_and_bad_leases_are_refused() {
    let server = TestServer::start();
    let (w, _) = server.agent("w", "worker");
    let t = w.create_task(json!({"content": "do it"}));
    let id = t["id"].as_i64().unwrap();
    for bad in [
        json!({"lease_seconds": 5}),
        json!({"lease_seconds": 4000}),
        json!({"lease_seconds": "long"}),
    ] {
        w.post(&format!("/api/tasks/{id}/claim"), bad)
            .assert_error(422);
    }
    w.post("/api/tasks/claim", json!({"wait_seconds": 61}))
        .assert_error(422);
    server
        .admin()
        .post("/api/tasks/claim", json!({}))
        .assert_error(403);
    assert_eq!(
        w.post(&format!("/api/tasks/{id}/claim"), json!({})).status,
        200
    );
    let done = w.post(&format!("/api/tasks/{id}/complete"), json!({}));
    assert_eq!(done.body["status"], "completed");
    assert!(done.body["claimed_by_agent_id"].is_null());
    w.post(&format!("/api/tasks/{id}/claim"), json!({}))
        .assert_error(409);
}

#[test]
fn a_waiting_claim_returns_a_task_created_while_it_waits() {
    let server = TestServer::start();
    let (w, _) = server.agent("w", "worker");
    let waiter = std::thread::spawn(move || {
        let started = Instant::now();
        let r = w.post("/api/tasks/claim", json!({"wait_seconds": 20}));
        (r, started.elapsed())
    });
    std::thread::sleep(Duration::from_millis(300));
    let t = server.admin().create_task(json!({"content": "fresh work"}));
    let (r, waited) = waiter.join().unwrap();
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["task"]["id"], t["id"]);
    assert!(
        waited < Duration::from_secs(20),
        "answered when the task appeared"
    );
}

#[test]
fn an_expired_lease_frees_the_task_with_reason_lease_expired() {
    // `[queue] min_lease_seconds` lets a test lease run out in a second.
    let server = TestServer::start_with(&[("DELEGA_MIN_LEASE_SECONDS", "1")]);
    let (w, _) = server.agent("w", "worker");
    let t = w.create_task(json!({"content": "abandoned"}));
    let id = t["id"].as_i64().unwrap();
    assert_eq!(
        w.post(
            &format!("/api/tasks/{id}/claim"),
            json!({"lease_seconds": 1})
        )
        .status,
        200
    );
    let e = wait_for("the lease to expire", Duration::from_secs(20), || {
        let events = server
            .admin()
            .get(&format!("/api/events?task_id={id}&types=task.released"))
            .body;
        events.as_array().unwrap().first().cloned()
    });
    assert_eq!(e["reason"], "lease_expired");
    assert_eq!(e["task"]["status"], "open");
    assert!(e["task"]["claimed_by_agent_id"].is_null());
}

/// The claim's and the completion's events go to the readers the task
/// has at that moment — its claimant, then its completer — and to no other
/// worker (their audience comes from the row the write left).
#[test]
fn claim_and_completion_events_reach_their_worker_and_no_other() {
    let server = TestServer::start();
    let admin = server.admin();
    let (worker, worker_id) = server.agent("worker", "worker");
    let (other, _) = server.agent("other", "worker");
    let id = admin.create_task(json!({"content": "queued work"}))["id"]
        .as_i64()
        .unwrap();
    let claimed = worker.post("/api/tasks/claim", json!({}));
    assert_eq!(claimed.status, 200, "{}", claimed.text);
    assert_eq!(claimed.body["task"]["id"], id);
    let generation = claimed.body["task"]["claim_generation"].clone();
    let done = worker.post(
        &format!("/api/tasks/{id}/complete"),
        json!({"claim_generation": generation}),
    );
    assert_eq!(done.status, 200, "{}", done.text);
    assert_eq!(done.body["completed_by_agent_id"], worker_id);

    let kinds_of = |client: &crate::helpers::Client, id: i64| -> Vec<String> {
        let page = client.get(&format!("/api/events?task_id={id}&limit=100"));
        assert_eq!(page.status, 200, "{}", page.text);
        page.body
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["event"].as_str().unwrap().to_string())
            .collect()
    };
    let kinds = |client: &crate::helpers::Client| kinds_of(client, id);
    let seen = kinds(&worker);
    assert!(seen.contains(&"task.claimed".to_string()), "{seen:?}");
    assert!(seen.contains(&"task.completed".to_string()), "{seen:?}");
    assert_eq!(kinds(&other), Vec::<String>::new());
    // The admin sees every event, these two included.
    let all = kinds(&admin);
    assert!(
        all.contains(&"task.claimed".to_string()) && all.contains(&"task.completed".to_string())
    );

    // A task the worker claimed and the admin completed: the completion
    // ended the claim, the worker read the task only through it, and the
    // completion's event is not for the worker.
    let id = admin.create_task(json!({"content": "taken over"}))["id"]
        .as_i64()
        .unwrap();
    let claimed = worker.post("/api/tasks/claim", json!({}));
    assert_eq!(claimed.body["task"]["id"], id, "{}", claimed.text);
    let done = admin.post(&format!("/api/tasks/{id}/complete"), json!({}));
    assert_eq!(done.status, 200, "{}", done.text);
    assert!(done.body["claimed_by_agent_id"].is_null(), "{}", done.text);
    let seen = kinds_of(&worker, id);
    assert_eq!(seen, vec!["task.claimed".to_string()]);
    assert!(kinds_of(&admin, id).contains(&"task.completed".to_string()));
}
