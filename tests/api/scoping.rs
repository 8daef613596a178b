//! One rule of who reads what (SPEC §3, §8): every read path agrees.
//!
//! One tree, four workers with different relations to it, and every way a
//! worker can learn about a task — by id, the list, the chain, inputs,
//! the event log, recall, the duplicate check, its own webhook — must show
//! each of them exactly the same tasks. Then the faults that came from
//! encoding the rule in several places, one test each.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::receiver::Receiver;
use crate::helpers::{id_of, ids, Client, TestServer};

fn set(ids: &[i64]) -> BTreeSet<i64> {
    ids.iter().copied().collect()
}

fn ids_at(list: &Value, key: &str) -> BTreeSet<i64> {
    list.as_array()
        .unwrap_or_else(|| panic!("not an array: {list}"))
        .iter()
        .map(|e| e[key].as_i64().unwrap_or_else(|| panic!("no {key} in {e}")))
        .collect()
}

/// The tree of the scenario and who should read what.
struct World {
    server: TestServer,
    _receiver_dir: Option<tempfile::TempDir>,
    admin: Client,
    /// (name, client, the tasks it should read)
    workers: Vec<(&'static str, Client, BTreeSet<i64>)>,
    all: BTreeSet<i64>,
    root: i64,
}

/// C creates R assigned to B, then reassigns it to A (B is moved off by
/// someone else). A delegates K1 unassigned, which D claims, and K2 to
/// itself; from K2, A delegates G to B. C waits on K2 with its own P; B
/// waits on G with its own Q. Every task carries a `ledger` note.
fn world() -> World {
    let cfg = tempfile::tempdir().unwrap();
    std::fs::write(cfg.path().join("d.toml"), "allow_private_webhooks = true\n").unwrap();
    let server =
        TestServer::start_with(&[("DELEGA_CONFIG", cfg.path().join("d.toml").to_str().unwrap())]);
    let admin = server.admin();
    let (c, _) = server.agent("creator", "worker");
    let (a, _) = server.agent("assignee", "worker");
    let (b, _) = server.agent("moved-off", "worker");
    let (d, _) = server.agent("claimer", "worker");
    let (o, _) = server.agent("outsider", "worker");

    let r = id_of(&c.create_task(json!({
        "content": "Audit the quarterly ledger", "assigned_to_agent_id": "moved-off",
        "context": {"ledger": "root ledger audit"},
    })));
    let put = c.put(
        &format!("/api/tasks/{r}"),
        json!({"assigned_to_agent_id": "assignee"}),
    );
    assert_eq!(put.status, 200, "{}", put.text);
    let delegate = |from: i64, body: Value| {
        let resp = a.post(&format!("/api/tasks/{from}/delegate"), body);
        assert_eq!(resp.status, 201, "{}", resp.text);
        id_of(&resp.body)
    };
    let k1 = delegate(
        r,
        json!({"content": "Reconcile ledger accounts", "context": {"ledger": "accounts ledger"}}),
    );
    let claim = d.post(&format!("/api/tasks/{k1}/claim"), json!({}));
    assert_eq!(claim.status, 200, "{}", claim.text);
    let k2 = delegate(
        r,
        json!({"content": "Review ledger totals", "agent_id": "assignee",
               "context": {"ledger": "totals ledger"}}),
    );
    let g = delegate(
        k2,
        json!({"content": "Check ledger rounding", "agent_id": "moved-off",
               "context": {"ledger": "rounding ledger"}}),
    );
    let p = id_of(&c.create_task(json!({
        "content": "Summarise the ledger audit", "assigned_to_agent_id": "creator",
        "depends_on": [k2], "context": {"ledger": "summary ledger"},
    })));
    let q = id_of(&b.create_task(json!({
        "content": "Notes on ledger rounding", "assigned_to_agent_id": "moved-off",
        "depends_on": [g], "context": {"ledger": "notes ledger"},
    })));
    World {
        admin,
        workers: vec![
            // Its own root and all below it, and its own P (and through
            // P nothing more: K2 is below R anyway).
            ("creator", c, set(&[r, k1, k2, g, p])),
            // Assignee of R: the tree. Not C's P.
            ("assignee", a, set(&[r, k1, k2, g])),
            // Moved off R by C: only G (assigned) and its own Q.
            ("moved-off", b, set(&[g, q])),
            // The claim: K1 itself, nothing below or above.
            ("claimer", d, set(&[k1])),
            ("outsider", o, BTreeSet::new()),
        ],
        all: set(&[r, k1, k2, g, p, q]),
        root: r,
        server,
        _receiver_dir: Some(cfg),
    }
}

#[test]
fn every_read_path_shows_each_agent_the_same_tasks() {
    let w = world();
    // Each worker's own webhook, registered before the fresh events.
    let rx: Vec<Receiver> = w.workers.iter().map(|_| Receiver::start()).collect();
    for ((name, client, _), rx) in w.workers.iter().zip(&rx) {
        let r = client.post(
            "/api/webhooks",
            json!({"url": rx.url, "events": ["task.commented"]}),
        );
        assert_eq!(r.status, 201, "{name}: {}", r.text);
    }
    let mark = w.admin.get("/api/events?limit=1000").body;
    let mark = mark.as_array().unwrap().last().unwrap()["event_id"]
        .as_i64()
        .unwrap();
    // A fresh event on every task, after the tree took its final shape.
    for id in &w.all {
        let r = w.admin.post(
            &format!("/api/tasks/{id}/comments"),
            json!({"content": "checked"}),
        );
        assert_eq!(r.status, 201, "{}", r.text);
    }

    for ((name, client, expected), rx) in w.workers.iter().zip(&rx) {
        // By id.
        let by_id: BTreeSet<i64> = w
            .all
            .iter()
            .copied()
            .filter(|id| {
                let r = client.get(&format!("/api/tasks/{id}"));
                assert!(r.status == 200 || r.status == 404, "{name}: {}", r.text);
                r.status == 200
            })
            .collect();
        assert_eq!(&by_id, expected, "{name}: GET by id");
        // The list.
        let list = client.get("/api/tasks?include_completed=true").body;
        assert_eq!(&set(&ids(&list)), expected, "{name}: GET /tasks");
        // The chain, from any task of the tree it reads.
        let in_tree: BTreeSet<i64> = expected
            .iter()
            .copied()
            .filter(|id| w.admin.task(*id)["root_task_id"].as_i64() == Some(w.root))
            .collect();
        for id in &in_tree {
            let chain = client.get(&format!("/api/tasks/{id}/chain")).body;
            assert_eq!(
                &set(&ids(&chain["tasks"])),
                &in_tree,
                "{name}: chain of {id}"
            );
            let hops = ids_at(&chain["events"], "task_id");
            assert!(hops.is_subset(&in_tree), "{name}: hops of {id}: {hops:?}");
        }
        // Inputs: whole for what it reads, id and status otherwise.
        for id in expected {
            let inputs = client.get(&format!("/api/tasks/{id}/inputs")).body;
            for entry in inputs.as_array().unwrap() {
                let dep = entry["task_id"].as_i64().unwrap();
                assert_eq!(
                    entry.get("content").is_some(),
                    expected.contains(&dep),
                    "{name}: input {dep} of {id}: {entry}"
                );
            }
        }
        // The event log since the mark.
        let events = client
            .get(&format!("/api/events?since={mark}&types=task.commented"))
            .body;
        let seen: BTreeSet<i64> = events
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["task"]["id"].as_i64().unwrap())
            .collect();
        assert_eq!(&seen, expected, "{name}: /events");
        // Recall over the notes every task carries.
        let recall = client.get("/api/context/search?q=ledger&limit=100").body;
        assert_eq!(
            &ids_at(&recall["results"], "task_id"),
            expected,
            "{name}: recall"
        );
        // The duplicate check, which looks at every open task it reads.
        let dedup = client.post(
            "/api/tasks/dedup",
            json!({"content": "ledger audit accounts totals rounding notes summary", "threshold": 0.0}),
        );
        assert_eq!(
            &ids_at(&dedup.body["matches"], "task_id"),
            expected,
            "{name}: dedup"
        );
        // Its webhook.
        rx.wait_for(expected.len(), Duration::from_secs(10));
        // Anything not its own would have arrived meanwhile too.
        std::thread::sleep(Duration::from_millis(300));
        let delivered: BTreeSet<i64> = rx
            .received()
            .iter()
            .map(|d| d.json()["task"]["id"].as_i64().unwrap())
            .collect();
        assert_eq!(&delivered, expected, "{name}: webhook");
        // Stats count what the default list shows (SPEC §10).
        let stats = client.get("/api/stats").body;
        assert_eq!(
            stats["total_tasks"].as_u64().unwrap() as usize,
            expected.len(),
            "{name}: stats {stats}"
        );
    }
    let _ = &w.server;
}

// ---------------------------------------------------------------- the faults

#[test]
fn a_put_cannot_open_a_task_whose_dependency_is_unfinished_and_nobody_can_claim_it() {
    let server = TestServer::start();
    let admin = server.admin();
    let (worker, _) = server.agent("w", "worker");
    let first = id_of(&admin.create_task(json!({"content": "first"})));
    let second = admin.create_task(json!({
        "content": "second", "depends_on": [first], "assigned_to_agent_id": "w",
    }));
    assert_eq!(second["status"], "blocked");
    let second = id_of(&second);
    let before = server.task_snapshot(second);
    for status in ["open", "in_progress"] {
        let r = admin.put(&format!("/api/tasks/{second}"), json!({"status": status}));
        r.assert_error(409);
        assert_eq!(r.body["code"], "blocked_by_dependencies", "{}", r.text);
        assert_eq!(r.body["blocking_task_ids"], json!([first]), "{}", r.text);
        assert!(r.text.contains(&format!("#{first}")), "{}", r.text);
    }
    assert_eq!(server.task_snapshot(second), before, "nothing changed");
    let r = worker.post(&format!("/api/tasks/{second}/claim"), json!({}));
    r.assert_error(409);
    assert!(r.text.contains("blocked"), "{}", r.text);
    assert!(worker.post("/api/tasks/claim", json!({})).body["task"]["id"] != json!(second));
    // Once the dependency completes it opens by itself, and PUT works.
    admin.post(&format!("/api/tasks/{first}/complete"), json!({}));
    assert_eq!(server.task_snapshot(second)["status"], "open");
    let r = admin.put(
        &format!("/api/tasks/{second}"),
        json!({"status": "in_progress"}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
}

#[test]
fn a_worker_reassigned_away_by_someone_else_no_longer_reads_the_task_or_what_comes_below() {
    let server = TestServer::start();
    let (coord, _) = server.agent("coord", "coordinator");
    let (a, _) = server.agent("a", "worker");
    let (b, _) = server.agent("b", "worker");
    let t = id_of(&coord.create_task(json!({"content": "T", "assigned_to_agent_id": "b"})));
    assert_eq!(b.get(&format!("/api/tasks/{t}")).status, 200);
    coord.put(
        &format!("/api/tasks/{t}"),
        json!({"assigned_to_agent_id": "a"}),
    );
    b.get(&format!("/api/tasks/{t}")).assert_error(404);
    b.post(
        &format!("/api/tasks/{t}/comments"),
        json!({"content": "still here?"}),
    )
    .assert_error(404);
    let child = a.post(
        &format!("/api/tasks/{t}/delegate"),
        json!({"content": "child", "agent_id": "a"}),
    );
    assert_eq!(child.status, 201, "{}", child.text);
    let child = id_of(&child.body);
    b.get(&format!("/api/tasks/{child}")).assert_error(404);
    let events = b.get(&format!("/api/events?task_id={child}")).body;
    assert_eq!(events, json!([]), "no event on the child");
    // A worker who hands a task off itself keeps following it.
    let own = id_of(&b.create_task(json!({"content": "mine", "assigned_to_agent_id": "b"})));
    b.post(
        &format!("/api/tasks/{own}/delegate"),
        json!({"agent_id": "a"}),
    );
    assert_eq!(b.get(&format!("/api/tasks/{own}")).status, 200);
}

#[test]
fn a_delegated_root_cannot_be_claimed_and_a_claim_grants_no_reassign_or_delete() {
    let server = TestServer::start();
    let (coord, _) = server.agent("coord", "coordinator");
    let (_a, _) = server.agent("a", "worker");
    let (b, _) = server.agent("b", "worker");
    let root = id_of(&coord.create_task(json!({"content": "R"})));
    let child = coord.post(
        &format!("/api/tasks/{root}/delegate"),
        json!({"content": "for a", "agent_id": "a"}),
    );
    let child = id_of(&child.body);
    let before = server.task_snapshot(root);
    let r = b.post(&format!("/api/tasks/{root}/claim"), json!({}));
    assert!(r.status == 409 || r.status == 404, "{}", r.text);
    assert_eq!(server.task_snapshot(root), before);
    b.get(&format!("/api/tasks/{child}")).assert_error(404);
    // A live claim lets its holder work a task, not reassign or delete it.
    let job = id_of(&coord.create_task(json!({"content": "job"})));
    let r = b.post(&format!("/api/tasks/{job}/claim"), json!({}));
    assert_eq!(r.status, 200, "{}", r.text);
    b.put(
        &format!("/api/tasks/{job}"),
        json!({"assigned_to_agent_id": "b"}),
    )
    .assert_error(403);
    b.delete(&format!("/api/tasks/{job}")).assert_error(403);
    let r = b.patch(&format!("/api/tasks/{job}/context"), json!({"progress": 1}));
    assert_eq!(r.status, 200, "{}", r.text);
    let r = b.post(&format!("/api/tasks/{job}/complete"), json!({}));
    assert_eq!(r.status, 200, "{}", r.text);
}

#[test]
fn inputs_do_not_reveal_a_dependency_seen_only_through_the_claim_queue() {
    let server = TestServer::start();
    let admin = server.admin();
    let (a, _) = server.agent("a", "worker");
    let (b, _) = server.agent("b", "worker");
    let x = id_of(&admin.create_task(json!({"content": "X, secret research"})));
    // X is in B's queue: B may see it, and names it as a dependency.
    assert_eq!(b.get(&format!("/api/tasks/{x}")).status, 200);
    let own = id_of(&b.create_task(json!({"content": "mine", "depends_on": [x]})));
    a.post(&format!("/api/tasks/{x}/claim"), json!({}));
    a.patch(
        &format!("/api/tasks/{x}/context"),
        json!({"finding": "classified"}),
    );
    b.get(&format!("/api/tasks/{x}")).assert_error(404);
    let inputs = b.get(&format!("/api/tasks/{own}/inputs"));
    assert_eq!(inputs.status, 200, "{}", inputs.text);
    assert_eq!(
        inputs.body,
        json!([{"task_id": x, "status": "claimed"}]),
        "id and status only"
    );
    assert!(!inputs.text.contains("classified"));
}

#[test]
fn an_agent_with_read_all_lists_agents() {
    let server = TestServer::start();
    let reader = server.create_agent(json!({"name": "auditor", "permissions": ["tasks.read_all"]}));
    let auditor = server.with_key(reader["api_key"].as_str().unwrap());
    let r = auditor.get("/api/agents");
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.text.contains("auditor") && !r.text.contains("api_key"));
    let (worker, _) = server.agent("w", "worker");
    worker.get("/api/agents").assert_error(403);
}

#[test]
fn a_workers_stats_count_its_own_work_not_its_claim_queue() {
    let server = TestServer::start();
    let admin = server.admin();
    let (w, _) = server.agent("fresh", "worker");
    for i in 0..3 {
        w.create_task(json!({"content": format!("mine {i}")}));
    }
    admin.create_task(json!({"content": "in everyone's queue"}));
    let stats = w.get("/api/stats").body;
    assert_eq!(stats["total"], 3, "{stats}");
    assert_eq!(stats["total_tasks"], 3, "{stats}");
    let list = w.get("/api/tasks").body;
    assert_eq!(ids(&list).len(), 3);
}

/// The claim holder and the completer read through the task's own
/// columns, not through reader rows: a claim shows the worker the task
/// alone; completing it makes the worker one of those who read it through
/// their own work, which reaches what the task waits for (SPEC §3, §8).
#[test]
fn a_completer_reads_what_its_task_waited_for_and_a_claim_holder_does_not() {
    let server = TestServer::start();
    let admin = server.admin();
    let (w, _) = server.agent("finisher", "worker");
    let input = id_of(&admin.create_task(json!({"content": "gather the figures"})));
    let r = admin.post(&format!("/api/tasks/{input}/complete"), json!({}));
    assert_eq!(r.status, 200, "{}", r.text);
    let work = id_of(&admin.create_task(json!({
        "content": "write the report", "depends_on": [input],
    })));
    let listed = |c: &Client| ids_at(&c.get("/api/tasks?include_completed=true").body, "id");
    let claim = w.post(&format!("/api/tasks/{work}/claim"), json!({}));
    assert_eq!(claim.status, 200, "{}", claim.text);
    assert_eq!(w.get(&format!("/api/tasks/{work}")).status, 200);
    assert_eq!(w.get(&format!("/api/tasks/{input}")).status, 404);
    assert_eq!(listed(&w), set(&[work]));
    let done = w.post(&format!("/api/tasks/{work}/complete"), json!({}));
    assert_eq!(done.status, 200, "{}", done.text);
    assert_eq!(w.get(&format!("/api/tasks/{work}")).status, 200);
    assert_eq!(w.get(&format!("/api/tasks/{input}")).status, 200);
    assert_eq!(listed(&w), set(&[work, input]));
    let inputs = w.get(&format!("/api/tasks/{work}/inputs"));
    assert_eq!(inputs.status, 200, "{}", inputs.text);
    assert_eq!(inputs.body[0]["task_id"], input, "{}", inputs.text);
}

/// A claim holder that also waits for the task (it created a task that
/// depends on it) keeps reading it after the claim ends, however it ends:
/// the stored reader rows never depend on the claim.
#[test]
fn a_claim_holder_that_waits_for_the_task_still_reads_it_when_someone_else_completes_it() {
    let server = TestServer::start();
    let admin = server.admin();
    let (w, _) = server.agent("waiter", "worker");
    let x = id_of(&admin.create_task(json!({"content": "prepare the data"})));
    let claim = w.post(&format!("/api/tasks/{x}/claim"), json!({}));
    assert_eq!(claim.status, 200, "{}", claim.text);
    let y = id_of(&w.create_task(json!({"content": "use the data", "depends_on": [x]})));
    let done = admin.post(&format!("/api/tasks/{x}/complete"), json!({}));
    assert_eq!(done.status, 200, "{}", done.text);
    assert_eq!(w.get(&format!("/api/tasks/{x}")).status, 200);
    let inputs = w.get(&format!("/api/tasks/{y}/inputs"));
    assert_eq!(inputs.body[0]["task_id"], x, "{}", inputs.text);
    assert_eq!(
        inputs.body[0]["content"], "prepare the data",
        "{}",
        inputs.text
    );
}

/// Older versions stored a reader row for each claim holder; the upgrade
/// recomputes the rows of claimed tasks, so none outlives its claim.
#[test]
fn an_upgrade_forgets_the_reader_rows_older_versions_wrote_for_claims() {
    let mut server = TestServer::start();
    let admin = server.admin();
    let (w, w_id) = server.agent("holder", "worker");
    let x = id_of(&admin.create_task(json!({"content": "claimed before the upgrade"})));
    let claim = w.post(&format!("/api/tasks/{x}/claim"), json!({}));
    assert_eq!(claim.status, 200, "{}", claim.text);
    server.restart_after(&format!(
        "INSERT INTO task_readers (task_id, agent_id, heritable) VALUES ({x}, {w_id}, 0); \
         PRAGMA user_version = 7;"
    ));
    let rows: i64 = server
        .db()
        .query_row("SELECT count(*) FROM task_readers", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 0, "the claim holder is read through its column");
    let w = server.with_key(w.key().unwrap());
    assert_eq!(w.get(&format!("/api/tasks/{x}")).status, 200);
}

/// A claim is all a claim holder reads the task through: once released it
/// is gone from the holder's own work (the task is still in its queue).
#[test]
fn a_released_claim_leaves_the_holders_own_work() {
    let server = TestServer::start();
    let admin = server.admin();
    let (w, _) = server.agent("releaser", "worker");
    let x = id_of(&admin.create_task(json!({"content": "maybe later"})));
    let listed = |c: &Client| ids_at(&c.get("/api/tasks").body, "id");
    assert_eq!(
        w.post(&format!("/api/tasks/{x}/claim"), json!({})).status,
        200
    );
    assert_eq!(listed(&w), set(&[x]));
    let released = w.post(&format!("/api/tasks/{x}/release"), json!({}));
    assert_eq!(released.status, 200, "{}", released.text);
    assert_eq!(listed(&w), set(&[]));
    let comment = w.post(
        &format!("/api/tasks/{x}/comments"),
        json!({"content": "no longer mine"}),
    );
    comment.assert_error(403);
    let queue = ids_at(&w.get("/api/tasks?claimable=true").body, "id");
    assert_eq!(queue, set(&[x]));
}
