//! The work queue at fleet scale (SPEC §10): exactly-once claims from an
//! index of claimable tasks, free long polls, fencing tokens, recurrences
//! on a real calendar, the attention board.

use std::collections::HashMap;
use std::time::Duration;

use delega::domain::lifecycle::Status;
use delega::store::claims::{self, QueueFilter};
use delega::store::tasks::list;
use serde_json::{json, Value};

use crate::helpers::{id_of, wait_until, Client, TestServer};

#[test]
fn sixteen_workers_complete_two_thousand_tasks_each_exactly_once() {
    let server = TestServer::start();
    let admin = server.admin();
    for chunk in 0..20 {
        let ids: Vec<i64> = (0..100).map(|i| chunk * 100 + i).collect();
        std::thread::scope(|s| {
            for part in ids.chunks(25) {
                let admin = admin.clone();
                s.spawn(move || {
                    for i in part {
                        admin.create_task(json!({"content": format!("job {i}")}));
                    }
                });
            }
        });
    }
    let workers: Vec<Client> = (0..16)
        .map(|i| server.agent(&format!("w{i}"), "worker").0)
        .collect();
    let done: Vec<Vec<i64>> = std::thread::scope(|s| {
        let handles: Vec<_> = workers
            .iter()
            .map(|w| {
                s.spawn(move || {
                    let mut mine = Vec::new();
                    loop {
                        let r = w.post("/api/tasks/claim", json!({}));
                        assert_eq!(r.status, 200, "{}", r.text);
                        let Some(id) = r.body["task"]["id"].as_i64() else {
                            return mine;
                        };
                        let generation = r.body["task"]["claim_generation"].clone();
                        let c = w.post(
                            &format!("/api/tasks/{id}/complete"),
                            json!({"claim_generation": generation}),
                        );
                        assert_eq!(c.status, 200, "{}", c.text);
                        mine.push(id);
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut count: HashMap<i64, usize> = HashMap::new();
    for id in done.iter().flatten() {
        *count.entry(*id).or_default() += 1;
    }
    assert_eq!(count.len(), 2000, "every task completed");
    assert!(count.values().all(|n| *n == 1), "none twice");
    let left = admin.get("/api/tasks?status=open,claimed,in_progress").body;
    assert_eq!(left, json!([]), "none left");
}

#[test]
fn claims_and_the_claimable_list_walk_the_queue_indexes() {
    let server = TestServer::start();
    let admin = server.admin();
    admin.create_task(json!({"content": "labelled", "labels": ["gpu", "py"], "project_id": null}));
    let conn = server.db();
    for filter in [
        QueueFilter {
            agent: 1,
            ..Default::default()
        },
        QueueFilter {
            agent: 1,
            project_id: Some(1),
            ..Default::default()
        },
        QueueFilter {
            agent: 1,
            labels: vec!["gpu".into(), "py".into()],
            ..Default::default()
        },
    ] {
        let plans = claims::plans(&conn, &filter).unwrap();
        let text = plans.join("\n");
        assert!(
            text.contains("tasks_queue") || text.contains("task_labels_queue"),
            "{filter:?}: {text}"
        );
        // Walking a queue index in order is the point; scanning the table
        // is not.
        assert!(
            text.lines()
                .all(|l| !l.starts_with("SCAN") || l.contains("USING")),
            "{filter:?}: {text}"
        );
        assert!(!text.contains("TEMP B-TREE"), "{filter:?}: {text}");
    }
    // A page of the list (the SQL `GET /tasks` runs, first page and after
    // a cursor, open and completed parts) walks an order index and stops.
    for filter in [
        list::Filter::default(),
        list::Filter {
            include_completed: Some(true),
            ..Default::default()
        },
        list::Filter {
            completed: Some(true),
            ..Default::default()
        },
    ] {
        let plan = list::page_plans(&conn, &filter, 51).unwrap().join("\n");
        assert!(plan.contains("tasks_order_"), "{filter:?}: {plan}");
        assert!(!plan.contains("TEMP B-TREE"), "{filter:?}: {plan}");
        assert!(
            plan.lines()
                .all(|l| !l.starts_with("SCAN") || l.contains("USING")),
            "{filter:?}: {plan}"
        );
    }
}

/// Migration 8 keys the list order on `completed_at`: a completed task an
/// older version left without one gets its last update time, and an
/// unfinished task's stale one is cleared, so both land in their part of
/// the list (open before completed) and in `/stats`.
#[test]
fn an_upgrade_gives_every_completed_task_a_completion_time_and_no_other() {
    let mut server = TestServer::start();
    let admin = server.admin();
    let open = id_of(&admin.create_task(json!({"content": "open"})));
    let done = id_of(&admin.create_task(json!({"content": "done"})));
    let stale = id_of(&admin.create_task(json!({"content": "stale"})));
    let r = admin.post(&format!("/api/tasks/{done}/complete"), json!({}));
    assert_eq!(r.status, 200, "{}", r.text);
    server.restart_after(&format!(
        "UPDATE tasks SET completed_at = NULL WHERE id = {done}; \
         UPDATE tasks SET completed_at = '2026-01-01T00:00:00.000Z' WHERE id = {stale}; \
         PRAGMA user_version = 7;"
    ));
    let admin = server.admin();
    let list = admin.get("/api/tasks?limit=100&include_completed=true");
    assert_eq!(crate::helpers::ids(&list.body), vec![stale, open, done]);
    // Page by page, through the order indexes.
    let mut seen = Vec::new();
    let mut next = Some("/api/tasks?limit=1&include_completed=true".to_string());
    while let Some(path) = next {
        let page = admin.get(&path);
        seen.extend(crate::helpers::ids(&page.body));
        next = page.header("link").and_then(|l| {
            l.split(';').next().map(|u| {
                let u = u.trim().trim_start_matches('<').trim_end_matches('>');
                u[u.find("/api/").unwrap_or(0)..].to_string()
            })
        });
    }
    assert_eq!(seen, vec![stale, open, done]);
    let stats = admin.get("/api/stats");
    assert_eq!(stats.body["completed_today"], 1, "{}", stats.text);
}

/// Whether `sql` (one statement, run with `args`) builds a temporary
/// b-tree each time it runs (`OpenEphemeral` in its program). Ask on a
/// connection opened after the last schema change: one that had already
/// loaded the schema explains with the old one.
fn builds_a_temporary_btree(
    conn: &rusqlite::Connection,
    sql: &str,
    args: &[&dyn rusqlite::ToSql],
) -> bool {
    let mut stmt = conn.prepare(&format!("EXPLAIN {sql}")).unwrap();
    let opcodes: Vec<String> = stmt
        .query_map(args, |r| r.get::<_, String>(1))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    opcodes.iter().any(|op| op == "OpenEphemeral")
}

/// Migration 9 states the status rule with comparisons instead of an
/// `IN` list, which SQLite checked by building a b-tree of the seven
/// values at every claim, completion and create. A database of version 8
/// (the rule as schema.sql wrote it) upgrades with its tasks intact, and
/// the rule still refuses a status that is not one.
#[test]
fn the_status_rule_costs_no_temporary_btree_and_still_holds_after_an_upgrade() {
    let mut server = TestServer::start();
    let admin = server.admin();
    let t = id_of(&admin.create_task(json!({"content": "kept", "labels": ["l"]})));
    // The rule as schema.sql (version 1) wrote it.
    let schema = include_str!("../../schema.sql");
    let at = schema
        .find("CHECK (status IN")
        .expect("schema.sql's status rule");
    let old = &schema[at..at + schema[at..].find("'failed'))").unwrap() + "'failed'))".len()];
    let claim = "UPDATE tasks SET status = ?2, claimed_by_agent_id = NULL WHERE id = ?1";
    {
        // Back to version 8: the rule's text as schema.sql wrote it.
        let conn = server.db();
        assert!(!builds_a_temporary_btree(&conn, claim, &[&t, &"claimed"]));
        let sql: String = conn
            .query_row(
                "SELECT sql FROM sqlite_schema WHERE name = 'tasks'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        let at = sql.find("CHECK (status").expect("the status rule");
        let end = at + sql[at..].find("'failed')").unwrap() + "'failed')".len();
        let version: i64 = conn
            .query_row("PRAGMA schema_version", [], |r| r.get(0))
            .unwrap();
        conn.execute_batch("PRAGMA writable_schema = ON").unwrap();
        conn.execute(
            "UPDATE sqlite_schema SET sql = ?1 WHERE name = 'tasks'",
            [format!("{}{old}{}", &sql[..at], &sql[end..])],
        )
        .unwrap();
        conn.execute_batch(&format!(
            "PRAGMA schema_version = {}; PRAGMA writable_schema = OFF;",
            version + 1
        ))
        .unwrap();
    }
    {
        let conn = server.db();
        assert!(builds_a_temporary_btree(&conn, claim, &[&t, &"claimed"]));
    }
    let row = |conn: &rusqlite::Connection| -> Vec<rusqlite::types::Value> {
        let mut stmt = conn.prepare("SELECT * FROM tasks WHERE id = ?1").unwrap();
        let n = stmt.column_count();
        stmt.query_row([t], |r| (0..n).map(|i| r.get(i)).collect())
            .unwrap()
    };
    let before = row(&server.db());
    server.restart_after("PRAGMA user_version = 8;");
    let conn = server.db();
    assert_eq!(row(&conn), before, "the task's row, column by column");
    let stored: String = conn
        .query_row(
            "SELECT sql FROM sqlite_schema WHERE name = 'tasks'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(!stored.contains("CHECK (status IN"), "{stored}");
    assert!(stored.contains("status = 'failed'"), "{stored}");
    assert!(!builds_a_temporary_btree(&conn, claim, &[&t, &"claimed"]));
    let insert =
        "INSERT INTO tasks (content, status, created_at, updated_at) VALUES ('x', ?1, '', '')";
    assert!(!builds_a_temporary_btree(&conn, insert, &[&"open"]));
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    // Every status is still allowed, and nothing else is.
    for status in Status::ALL {
        conn.execute(
            "UPDATE tasks SET status = ?2 WHERE id = ?1",
            rusqlite::params![t, status.as_str()],
        )
        .unwrap();
    }
    let refused = conn
        .execute("UPDATE tasks SET status = 'done' WHERE id = ?1", [t])
        .unwrap_err();
    assert!(
        refused.to_string().contains("CHECK constraint failed"),
        "{refused}"
    );
    conn.execute("UPDATE tasks SET status = 'open' WHERE id = ?1", [t])
        .unwrap();
    drop(conn);
    // The task came through whole, and the server works on the new schema.
    let got = admin.get(&format!("/api/tasks/{t}"));
    assert_eq!(got.status, 200, "{}", got.text);
    assert_eq!(got.body["content"], "kept");
    assert_eq!(got.body["labels"], json!(["l"]));
    let created = admin.create_task(json!({"content": "after the upgrade"}));
    assert_eq!(created["status"], "open", "{created}");
}

#[test]
fn the_queued_column_is_the_state_machines_claimable_rule() {
    let server = TestServer::start();
    let t = id_of(&server.admin().create_task(json!({"content": "probe"})));
    let (_, holder) = server.agent("holder", "worker");
    let conn = server.db();
    for status in Status::ALL {
        for claimed in [false, true] {
            // Written straight into the file: every combination, not only
            // those the operations produce.
            conn.execute(
                "UPDATE tasks SET status = ?2, claimed_by_agent_id = ?3 WHERE id = ?1",
                rusqlite::params![t, status.as_str(), claimed.then_some(holder)],
            )
            .unwrap();
            let queued: bool = conn
                .query_row("SELECT queued FROM tasks WHERE id = ?1", [t], |r| r.get(0))
                .unwrap();
            let rule = status.is_claimable() && status != Status::Claimed && !claimed;
            assert_eq!(queued, rule, "{status:?} claimed={claimed}");
        }
    }
}

#[test]
fn label_and_project_filters_claim_the_right_tasks_and_follow_every_change() {
    let server = TestServer::start();
    let admin = server.admin();
    let (w, _) = server.agent("w", "worker");
    let r = admin.post("/api/projects", json!({"name": "Ops"}));
    assert_eq!(r.status, 201, "{}", r.text);
    let ops = r.body["id"].as_i64().unwrap();
    let task = |body: Value| id_of(&admin.create_task(body));
    let gpu = task(json!({"content": "gpu", "labels": ["gpu"], "priority": 2}));
    let both = task(json!({"content": "both", "labels": ["gpu", "py"], "priority": 3}));
    let py = task(json!({"content": "py", "labels": ["py"], "priority": 1}));
    let in_ops =
        task(json!({"content": "ops", "labels": ["py"], "project_id": ops, "priority": 4}));
    let claimable = |body: Value| -> Vec<i64> {
        let query = body
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| match v {
                Value::Array(a) => format!(
                    "{k}={}",
                    a.iter()
                        .map(|l| l.as_str().unwrap())
                        .collect::<Vec<_>>()
                        .join(",")
                ),
                v => format!("{k}={v}"),
            })
            .collect::<Vec<_>>()
            .join("&");
        let r = w.get(&format!("/api/tasks?claimable=true&{query}"));
        assert_eq!(r.status, 200, "{}", r.text);
        r.body
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_i64().unwrap())
            .collect()
    };
    // Every label must match; the project narrows; claim order is priority.
    assert_eq!(claimable(json!({"labels": ["gpu"]})), [gpu, both]);
    assert_eq!(claimable(json!({"labels": ["gpu", "py"]})), [both]);
    assert_eq!(claimable(json!({"labels": ["py"]})), [py, both, in_ops]);
    assert_eq!(
        claimable(json!({"labels": ["py"], "project_id": ops})),
        [in_ops]
    );
    assert_eq!(claimable(json!({"labels": ["nothing"]})), Vec::<i64>::new());
    // Relabelled, reprioritised: the filters follow at once.
    let r = admin.put(
        &format!("/api/tasks/{gpu}"),
        json!({"labels": ["py", "gpu"]}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let r = admin.put(&format!("/api/tasks/{both}"), json!({"priority": 1}));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(claimable(json!({"labels": ["gpu", "py"]})), [both, gpu]);
    let r = admin.put(&format!("/api/tasks/{py}"), json!({"labels": []}));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(claimable(json!({"labels": ["py"]})), [both, gpu, in_ops]);
    // A claim takes the first in that order, with the filter; a release
    // puts the task back where it was.
    let claim = |body: Value| {
        let r = w.post("/api/tasks/claim", body);
        assert_eq!(r.status, 200, "{}", r.text);
        r.body["task"]["id"].as_i64()
    };
    assert_eq!(claim(json!({"labels": ["py", "gpu"]})), Some(both));
    assert_eq!(claimable(json!({"labels": ["gpu", "py"]})), [gpu]);
    let r = w.post(&format!("/api/tasks/{both}/release"), json!({}));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(claimable(json!({"labels": ["gpu", "py"]})), [both, gpu]);
    assert_eq!(
        claim(json!({"labels": ["py"], "project_id": ops})),
        Some(in_ops)
    );
    assert_eq!(claim(json!({"labels": ["py"], "project_id": ops})), None);
    // Completed and deleted tasks leave the label queue.
    let r = admin.post(&format!("/api/tasks/{gpu}/complete"), json!({}));
    assert_eq!(r.status, 200, "{}", r.text);
    let r = admin.delete(&format!("/api/tasks/{both}"));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(claimable(json!({"labels": ["gpu"]})), Vec::<i64>::new());
    assert_eq!(claim(json!({"labels": ["gpu"]})), None);
    assert_eq!(claim(json!({})), Some(py));
}

#[test]
fn a_waiting_claimer_gets_a_task_created_after_it_began_to_wait() {
    let server = TestServer::start();
    let (w, _) = server.agent("waiter", "worker");
    let admin = server.admin();
    let waiter = std::thread::spawn(move || {
        w.post(
            "/api/tasks/claim",
            json!({"labels": ["urgent"], "wait_seconds": 20}),
        )
    });
    wait_until("the waiter to wait", Duration::from_secs(5), || {
        server.hub().waiters().len() == 1
    });
    let t = admin.create_task(json!({"content": "late work", "labels": ["urgent"]}));
    let r = waiter.join().unwrap();
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["task"]["id"], t["id"]);
    // Woken by the create, not by its 20 s running out (that answers
    // without a task).
    assert_eq!(r.body["task"]["status"], "claimed");
}

#[test]
fn a_waiting_claimer_is_woken_by_every_change_that_queues_a_task_for_it() {
    let server = TestServer::start_with(&[("DELEGA_MIN_LEASE_SECONDS", "1")]);
    let admin = server.admin();
    let (w, w_id) = server.agent("waiter", "worker");
    let (other, _) = server.agent("other", "worker");
    // Runs `change` while `w` long-polls for an `urgent` task; `w` must
    // receive `expected` (not time out at 20 s, which answers no task).
    let woken_by = |what: &str, expected: i64, change: &dyn Fn()| {
        let waiter = {
            let w = w.clone();
            std::thread::spawn(move || {
                w.post(
                    "/api/tasks/claim",
                    json!({"labels": ["urgent"], "wait_seconds": 20}),
                )
            })
        };
        wait_until("the waiter to wait", Duration::from_secs(5), || {
            server.hub().waiters().len() == 1
        });
        change();
        let r = waiter.join().unwrap();
        assert_eq!(r.status, 200, "{what}: {}", r.text);
        assert_eq!(r.body["task"]["id"], expected, "{what}: {}", r.text);
        assert_eq!(r.body["task"]["claimed_by_agent_id"], w_id, "{what}");
    };
    let urgent = |extra: Value| {
        let mut body = json!({"content": "urgent work", "labels": ["urgent"]});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        id_of(&admin.create_task(body))
    };

    let t = urgent(json!({}));
    assert_eq!(
        other
            .post(&format!("/api/tasks/{t}/claim"), json!({}))
            .status,
        200
    );
    woken_by("a release", t, &|| {
        let r = other.post(&format!("/api/tasks/{t}/release"), json!({}));
        assert_eq!(r.status, 200, "{}", r.text);
    });

    let t = urgent(json!({}));
    let r = other.post(
        &format!("/api/tasks/{t}/claim"),
        json!({"lease_seconds": 8}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    woken_by("a lease that ran out", t, &|| {
        // Still held when the waiter began to wait: the sweep woke it.
        assert!(!server.task_snapshot(t)["claimed_by_agent_id"].is_null());
    });

    let t = urgent(json!({}));
    assert_eq!(
        admin
            .post(&format!("/api/tasks/{t}/complete"), json!({}))
            .status,
        200
    );
    woken_by("an uncomplete", t, &|| {
        let r = admin.post(&format!("/api/tasks/{t}/uncomplete"), json!({}));
        assert_eq!(r.status, 200, "{}", r.text);
    });

    let t = urgent(json!({"assigned_to_agent_id": "other"}));
    woken_by("an assignment to it", t, &|| {
        let r = admin.put(
            &format!("/api/tasks/{t}"),
            json!({"assigned_to_agent_id": "waiter"}),
        );
        assert_eq!(r.status, 200, "{}", r.text);
    });

    let dep = id_of(&admin.create_task(json!({"content": "first"})));
    let t = urgent(json!({"depends_on": [dep]}));
    assert_eq!(server.task_snapshot(t)["status"], "blocked");
    woken_by("an unblock", t, &|| {
        let r = admin.post(&format!("/api/tasks/{dep}/complete"), json!({}));
        assert_eq!(r.status, 200, "{}", r.text);
    });
}

#[test]
fn a_waiter_on_another_label_is_not_woken_by_unrelated_creates() {
    let server = TestServer::start();
    let (w, _) = server.agent("idle", "worker");
    let admin = server.admin();
    let hub = server.hub();
    let waiter = std::thread::spawn(move || {
        w.post(
            "/api/tasks/claim",
            json!({"labels": ["never"], "wait_seconds": 5}),
        )
    });
    wait_until("the waiter to wait", Duration::from_secs(5), || {
        hub.waiters().len() == 1
    });
    // Waiting makes no write: over two seconds of it (two lease sweeps
    // included) the single writer commits nothing.
    let batches = || {
        let m = server.anonymous().get("/metrics");
        m.text
            .lines()
            .find_map(|l| l.strip_prefix("delega_writer_batch_size_count "))
            .and_then(|n| n.trim().parse::<f64>().ok())
            .unwrap_or_else(|| panic!("no batch count in {}", m.text))
    };
    let idle = batches();
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(batches(), idle, "no writer batch while the waiter waits");
    let before = hub.waiters().wakeups();
    for i in 0..50 {
        admin.create_task(json!({"content": format!("unrelated {i}"), "labels": ["other"]}));
        admin.create_task(json!({"content": format!("plain {i}")}).clone());
    }
    assert_eq!(hub.waiters().wakeups(), before, "never woken");
    let r = waiter.join().unwrap();
    assert_eq!(r.body["task"], Value::Null, "{}", r.text);
    // A task it may take wakes it at once.
    let (w, _) = server.agent("idle2", "worker");
    let waiter = std::thread::spawn(move || {
        w.post(
            "/api/tasks/claim",
            json!({"labels": ["never"], "wait_seconds": 10}),
        )
    });
    wait_until("the waiter to wait", Duration::from_secs(5), || {
        hub.waiters().len() == 1
    });
    admin.create_task(json!({"content": "for it", "labels": ["never", "x"]}));
    assert!(waiter.join().unwrap().body["task"]["id"].is_i64());
    assert!(hub.waiters().wakeups() > before);
}

#[test]
fn a_stale_claim_generation_cannot_overwrite_the_next_claimants_work() {
    let server = TestServer::start_with(&[("DELEGA_MIN_LEASE_SECONDS", "1")]);
    let admin = server.admin();
    let (first, _) = server.agent("first", "worker");
    let (second, _) = server.agent("second", "worker");
    let t = id_of(&admin.create_task(json!({"content": "contested"})));
    let r = first.post(
        &format!("/api/tasks/{t}/claim"),
        json!({"lease_seconds": 1}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let old = r.body["task"]["claim_generation"].as_i64().unwrap();
    wait_until("the lease to run out", Duration::from_secs(10), || {
        server.task_snapshot(t)["claimed_by_agent_id"].is_null()
    });
    let r = second.post(&format!("/api/tasks/{t}/claim"), json!({}));
    assert_eq!(r.status, 200, "{}", r.text);
    let new = r.body["task"]["claim_generation"].as_i64().unwrap();
    assert_eq!(new, old + 1);
    let before = server.task_snapshot(t);
    // A worker that never held the task, for which the claim hides it,
    // learns nothing: not that it exists, nor its generation.
    let (stranger, _) = server.agent("stranger", "worker");
    for generation in [old, new + 5] {
        let r = stranger.post(
            &format!("/api/tasks/{t}/complete"),
            json!({"claim_generation": generation}),
        );
        r.assert_error(404);
        assert!(r.body.get("claim_generation").is_none(), "{}", r.text);
    }
    // The paused worker, which no longer reads the task, and the current
    // holder naming the old generation: both hear "stale", nothing changes.
    for (who, client) in [("first", &first), ("second", &second)] {
        for (path, body) in [
            ("complete", json!({"claim_generation": old})),
            ("fail", json!({"claim_generation": old, "reason": "late"})),
            ("heartbeat", json!({"claim_generation": old})),
            ("release", json!({"claim_generation": old})),
            (
                "state",
                json!({"claim_generation": old, "state": "working"}),
            ),
            (
                "context/supersede",
                json!({"key": "result", "claim_generation": old}),
            ),
        ] {
            let r = client.post(&format!("/api/tasks/{t}/{path}"), body);
            r.assert_error(409);
            assert_eq!(r.body["code"], "stale_claim", "{who} {path}: {}", r.text);
            assert_eq!(r.body["claim_generation"], new, "{}", r.text);
        }
        let r = client.patch(
            &format!("/api/tasks/{t}/context?claim_generation={old}"),
            json!({"result": "stale"}),
        );
        r.assert_error(409);
        assert_eq!(r.body["code"], "stale_claim", "{who} context: {}", r.text);
        let r = client.put(
            &format!("/api/tasks/{t}"),
            json!({"completed": true, "claim_generation": old}),
        );
        r.assert_error(409);
        assert_eq!(r.body["code"], "stale_claim", "{who} PUT: {}", r.text);
    }
    // A stale generation is told before what is wrong with the body, as
    // it would be with a valid one.
    for (path, body) in [
        (
            "complete",
            json!({"claim_generation": old, "evidence": "x"}),
        ),
        ("fail", json!({"claim_generation": old, "reason": 5})),
        (
            "heartbeat",
            json!({"claim_generation": old, "lease_seconds": 0}),
        ),
        ("state", json!({"claim_generation": old, "state": "asleep"})),
        ("release", json!({"claim_generation": old, "handoff": 1})),
        (
            "context/supersede",
            json!({"claim_generation": old, "key": 1}),
        ),
    ] {
        let r = first.post(&format!("/api/tasks/{t}/{path}"), body.clone());
        r.assert_error(409);
        assert_eq!(r.body["code"], "stale_claim", "{path}: {}", r.text);
        // Not to a worker that cannot see the task (the queue calls see
        // it as "claimed by someone else", SPEC §10, and tell the body).
        let r = stranger.post(&format!("/api/tasks/{t}/{path}"), body);
        assert_ne!(r.body["code"], "stale_claim", "{path}: {}", r.text);
        if matches!(path, "complete" | "fail" | "context/supersede") {
            r.assert_error(404);
        } else {
            r.assert_error(422);
        }
    }
    let r = first.put(
        &format!("/api/tasks/{t}"),
        json!({"completed": "x", "claim_generation": old}),
    );
    r.assert_error(409);
    assert_eq!(r.body["code"], "stale_claim", "PUT: {}", r.text);
    let r = first.patch(
        &format!("/api/tasks/{t}/context?claim_generation={old}"),
        json!([1]),
    );
    r.assert_error(409);
    assert_eq!(r.body["code"], "stale_claim", "context: {}", r.text);
    let r = admin.put(
        &format!("/api/tasks/{t}"),
        json!({"content": "rewritten", "claim_generation": old}),
    );
    r.assert_error(409);
    assert_eq!(r.body["code"], "stale_claim", "admin PUT: {}", r.text);
    let r = admin.put(
        &format!("/api/tasks/{t}"),
        json!({"content": "rewritten", "claim_generation": "one"}),
    );
    r.assert_error(422);
    assert_eq!(r.body["detail"]["field"], "claim_generation", "{}", r.text);
    assert_eq!(server.task_snapshot(t), before, "nothing changed");
    let r = second.post(
        &format!("/api/tasks/{t}/complete"),
        json!({"claim_generation": new}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    // Finished: the worker that once held a claim still hears "stale";
    // one that never saw the task does not learn it exists.
    let done = server.task_snapshot(t);
    let r = first.post(
        &format!("/api/tasks/{t}/complete"),
        json!({"claim_generation": old}),
    );
    r.assert_error(409);
    assert_eq!(r.body["code"], "stale_claim", "{}", r.text);
    let r = stranger.post(
        &format!("/api/tasks/{t}/complete"),
        json!({"claim_generation": old}),
    );
    r.assert_error(404);
    assert_eq!(server.task_snapshot(t), done, "nothing changed");
    // A claim starts a generation of its own: one named in its body is
    // not a fence, so a bad lease is told and a good body claims.
    let again = id_of(&admin.create_task(json!({"content": "again"})));
    let r = first.post(&format!("/api/tasks/{again}/claim"), json!({}));
    assert_eq!(r.status, 200, "{}", r.text);
    let r = first.post(&format!("/api/tasks/{again}/release"), json!({}));
    assert_eq!(r.status, 200, "{}", r.text);
    first
        .post(
            &format!("/api/tasks/{again}/claim"),
            json!({"claim_generation": 0, "lease_seconds": 0}),
        )
        .assert_field_error("lease_seconds");
    let r = first.post(
        &format!("/api/tasks/{again}/claim"),
        json!({"claim_generation": 0}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
}

#[test]
fn claims_refuse_tasks_that_are_not_in_the_queue() {
    let server = TestServer::start();
    let admin = server.admin();
    let (w, _) = server.agent("w", "worker");
    let make = |status: &str| {
        id_of(&admin.create_task(json!({"content": status, "assigned_to_agent_id": "w"})))
    };
    let completed = make("completed");
    admin.post(&format!("/api/tasks/{completed}/complete"), json!({}));
    let failed = make("failed");
    admin.post(&format!("/api/tasks/{failed}/fail"), json!({}));
    let blocked = make("blocked");
    admin.put(
        &format!("/api/tasks/{blocked}"),
        json!({"status": "blocked"}),
    );
    let delegated = make("delegated");
    admin.post(
        &format!("/api/tasks/{delegated}/delegate"),
        json!({"content": "child"}),
    );
    for id in [completed, failed, blocked, delegated] {
        let before = server.task_snapshot(id);
        let r = w.post(&format!("/api/tasks/{id}/claim"), json!({}));
        r.assert_error(409);
        assert_eq!(server.task_snapshot(id), before);
    }
    let r = w.post("/api/tasks/claim", json!({}));
    assert!(
        r.body["task"]["id"]
            .as_i64()
            .is_some_and(|id| ![completed, failed, blocked, delegated].contains(&id))
            || r.body["task"].is_null()
    );
}

#[test]
fn bad_queue_input_is_refused_with_clear_errors() {
    let server = TestServer::start();
    let (w, _) = server.agent("w", "worker");
    for (body, field) in [
        (json!({"lease_seconds": 5}), "lease_seconds"),
        (json!({"lease_seconds": 99999}), "lease_seconds"),
        (json!({"wait_seconds": -1}), "wait_seconds"),
        (json!({"wait_seconds": 61}), "wait_seconds"),
        (
            json!({"labels": (0..51).map(|i| i.to_string()).collect::<Vec<_>>()}),
            "labels",
        ),
    ] {
        w.post("/api/tasks/claim", body).assert_field_error(field);
    }
    let queued = id_of(&w.create_task(json!({"content": "queued"})));
    let untouched = server.task_snapshot(queued);
    let t = id_of(&w.create_task(json!({"content": "mine"})));
    let r = w.post(&format!("/api/tasks/{t}/claim"), json!({}));
    assert_eq!(r.status, 200, "{}", r.text);
    let held = server.task_snapshot(t);
    for (path, body, field) in [
        ("state", json!({"state": "asleep"}), "state"),
        ("state", json!({"state": 3}), "state"),
        ("heartbeat", json!({"state": "asleep"}), "state"),
        ("heartbeat", json!({"lease_seconds": 5}), "lease_seconds"),
        ("heartbeat", json!({"lease_seconds": 3601}), "lease_seconds"),
        ("claim", json!({"lease_seconds": 0}), "lease_seconds"),
    ] {
        w.post(&format!("/api/tasks/{t}/{path}"), body)
            .assert_field_error(field);
    }
    // Nothing was claimed, extended or changed by any refused call.
    assert_eq!(server.task_snapshot(t), held);
    assert_eq!(server.task_snapshot(queued), untouched);
}

// ------------------------------------------------------------ recurrences

fn recurrence(client: &Client, body: Value) -> Value {
    let r = client.post("/api/recurrences", body);
    assert_eq!(r.status, 201, "{}", r.text);
    r.body
}

fn upcoming(client: &Client, id: i64, n: usize) -> Vec<String> {
    let r = client.get(&format!("/api/recurrences/{id}?upcoming={n}"));
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["upcoming"]
        .as_array()
        .unwrap_or_else(|| panic!("no upcoming: {}", r.text))
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn monthly_on_the_31st_falls_on_month_ends_and_returns_to_the_31st() {
    let server = TestServer::start();
    let admin = server.admin();
    let r = recurrence(
        &admin,
        json!({"content": "close the books", "rule_type": "monthly", "anchor_day": 31,
               "timezone": "UTC", "next_due_at": "2027-01-31T09:00:00Z", "active": false}),
    );
    let dates: Vec<String> = upcoming(&admin, id_of(&r), 12)
        .into_iter()
        .map(|t| t[..10].to_string())
        .collect();
    assert_eq!(
        dates,
        [
            "2027-01-31",
            "2027-02-28",
            "2027-03-31",
            "2027-04-30",
            "2027-05-31",
            "2027-06-30",
            "2027-07-31",
            "2027-08-31",
            "2027-09-30",
            "2027-10-31",
            "2027-11-30",
            "2027-12-31"
        ]
    );
}

#[test]
fn feb_29_falls_on_feb_28_in_common_years_and_a_weekly_anchor_holds() {
    let server = TestServer::start();
    let admin = server.admin();
    let r = recurrence(
        &admin,
        json!({"content": "leap", "rule_type": "yearly", "timezone": "UTC",
               "next_due_at": "2028-02-29T00:00:00Z", "active": false}),
    );
    let dates: Vec<String> = upcoming(&admin, id_of(&r), 5)
        .into_iter()
        .map(|t| t[..10].to_string())
        .collect();
    assert_eq!(
        dates,
        [
            "2028-02-29",
            "2029-02-28",
            "2030-02-28",
            "2031-02-28",
            "2032-02-29"
        ]
    );
    // Every second week, on Fridays (4), starting Wednesday 2027-03-03.
    let r = recurrence(
        &admin,
        json!({"content": "sync", "rule_type": "weekly", "interval": 2, "anchor_weekday": 4,
               "timezone": "UTC", "next_due_at": "2027-03-03T10:00:00Z", "active": false}),
    );
    let dates: Vec<String> = upcoming(&admin, id_of(&r), 4)
        .into_iter()
        .map(|t| t[..10].to_string())
        .collect();
    assert_eq!(
        dates,
        ["2027-03-03", "2027-03-05", "2027-03-19", "2027-04-02"]
    );
}

#[test]
fn nine_in_berlin_stays_nine_across_both_daylight_saving_changes() {
    let server = TestServer::start();
    let admin = server.admin();
    let r = recurrence(
        &admin,
        json!({"content": "stand-up", "rule_type": "daily", "timezone": "Europe/Berlin",
               "next_due_at": "2027-03-26T09:00:00+01:00", "active": false}),
    );
    let times = upcoming(&admin, id_of(&r), 4);
    // 2027-03-28: clocks go forward (CET → CEST).
    assert_eq!(
        times,
        [
            "2027-03-26T08:00:00.000Z",
            "2027-03-27T08:00:00.000Z",
            "2027-03-28T07:00:00.000Z",
            "2027-03-29T07:00:00.000Z"
        ]
    );
    let r = recurrence(
        &admin,
        json!({"content": "stand-up", "rule_type": "daily", "timezone": "Europe/Berlin",
               "next_due_at": "2027-10-30T09:00:00+02:00", "active": false}),
    );
    // 2027-10-31: clocks go back (CEST → CET).
    assert_eq!(
        upcoming(&admin, id_of(&r), 3),
        [
            "2027-10-30T07:00:00.000Z",
            "2027-10-31T08:00:00.000Z",
            "2027-11-01T08:00:00.000Z"
        ]
    );
}

/// A TZif (RFC 8536) version-1 file for a zone fixed at UTC+09:00 with
/// no transitions: a host zoneinfo entry that lies.
fn fixed_plus_nine_tzif() -> Vec<u8> {
    let mut f = b"TZif".to_vec();
    f.push(0); // version 1
    f.extend([0u8; 15]);
    // isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt
    for count in [0u32, 0, 0, 0, 1, 4] {
        f.extend(count.to_be_bytes());
    }
    f.extend(32_400i32.to_be_bytes()); // utoff
    f.extend([0u8, 0u8]); // isdst, desigidx
    f.extend(b"JST\0");
    f
}

#[test]
fn time_zones_come_from_the_compiled_in_database_not_the_hosts() {
    // A host zoneinfo (TZDIR) whose Europe/Berlin is UTC+09:00 without
    // daylight saving, and which has a zone the real database lacks.
    let tzdir = tempfile::tempdir().unwrap();
    for name in ["Europe/Berlin", "Fake/Zone"] {
        let path = tzdir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, fixed_plus_nine_tzif()).unwrap();
    }
    let server = TestServer::process_with(&[("TZDIR", tzdir.path().to_str().unwrap())]);
    let admin = server.admin();
    let r = recurrence(
        &admin,
        json!({"content": "stand-up", "rule_type": "daily", "timezone": "Europe/Berlin",
               "next_due_at": "2027-03-27T09:00:00+01:00", "active": false}),
    );
    // The real Berlin: 09:00 is 08:00 UTC, then 07:00 after 2027-03-28.
    assert_eq!(
        upcoming(&admin, id_of(&r), 3),
        [
            "2027-03-27T08:00:00.000Z",
            "2027-03-28T07:00:00.000Z",
            "2027-03-29T07:00:00.000Z"
        ]
    );
    let r = admin.post(
        "/api/recurrences",
        json!({"content": "x", "rule_type": "daily", "timezone": "Fake/Zone"}),
    );
    r.assert_error(422);
    assert_eq!(r.body["detail"]["field"], "timezone", "{}", r.text);
}

#[test]
fn a_recurrence_spawns_while_the_server_runs_and_skips_while_an_instance_is_open() {
    let server = TestServer::start();
    let admin = server.admin();
    let soon = time::OffsetDateTime::now_utc() + time::Duration::seconds(1);
    let soon = soon
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let r = recurrence(
        &admin,
        json!({"content": "water the plants", "rule_type": "daily", "timezone": "UTC",
               "next_due_at": soon, "labels": ["home"]}),
    );
    let id = id_of(&r);
    let instances = || {
        admin
            .get("/api/tasks?search=water&include_completed=true")
            .body
            .as_array()
            .unwrap()
            .clone()
    };
    wait_until("the first instance", Duration::from_secs(10), || {
        !instances().is_empty()
    });
    let task = &instances()[0];
    assert_eq!(task["recurrence_id"], id);
    assert_eq!(task["labels"], json!(["home"]));
    let events = admin
        .get(&format!(
            "/api/events?task_id={}&types=task.created",
            task["id"]
        ))
        .body;
    assert_eq!(events[0]["reason"], "recurrence");
    let after = admin.get(&format!("/api/recurrences/{id}")).body;
    assert!(after["next_due_at"].as_str().unwrap() > soon.as_str());
    assert!(after["last_spawned_at"].is_string());
    // Due again at once, but the instance is still open: skipped, moved on.
    let again = admin.put(
        &format!("/api/recurrences/{id}"),
        json!({"next_due_at": "2020-01-01T00:00:00Z"}),
    );
    assert_eq!(again.status, 200, "{}", again.text);
    wait_until("the due time to move on", Duration::from_secs(10), || {
        admin.get(&format!("/api/recurrences/{id}")).body["next_due_at"]
            .as_str()
            .unwrap()
            > "2021"
    });
    assert_eq!(instances().len(), 1, "skipped while one is open");
}

#[test]
fn a_server_down_across_several_due_times_spawns_one_instance_on_start() {
    let mut server = TestServer::start();
    let admin = server.admin();
    let r = recurrence(
        &admin,
        json!({"content": "backup the logs", "rule_type": "daily", "timezone": "UTC",
               "next_due_at": "2026-01-01T03:00:00Z", "active": false}),
    );
    server.kill();
    server
        .db()
        .execute(
            "UPDATE recurrences SET active = 1 WHERE id = ?1",
            [id_of(&r)],
        )
        .unwrap();
    server.restart();
    let admin = server.admin();
    wait_until("the catch-up instance", Duration::from_secs(10), || {
        !admin
            .get("/api/tasks?search=backup")
            .body
            .as_array()
            .unwrap()
            .is_empty()
    });
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        admin
            .get("/api/tasks?search=backup")
            .body
            .as_array()
            .unwrap()
            .len(),
        1,
        "one instance, not one per missed day"
    );
    let next = admin.get(&format!("/api/recurrences/{}", id_of(&r))).body["next_due_at"].clone();
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    assert!(next.as_str().unwrap() > now.as_str(), "{next} is past now");
}

#[test]
fn a_recurrence_moved_to_a_new_date_goes_on_from_it_unless_the_anchor_is_named() {
    let server = TestServer::start();
    let admin = server.admin();
    let r = recurrence(
        &admin,
        json!({"content": "invoice", "rule_type": "monthly", "timezone": "UTC",
               "next_due_at": "2027-01-15T09:00:00Z", "active": false}),
    );
    let id = id_of(&r);
    let moved = admin.put(
        &format!("/api/recurrences/{id}"),
        json!({"next_due_at": "2027-02-20T09:00:00Z"}),
    );
    assert_eq!(moved.status, 200, "{}", moved.text);
    assert_eq!(
        upcoming(&admin, id, 3),
        [
            "2027-02-20T09:00:00.000Z",
            "2027-03-20T09:00:00.000Z",
            "2027-04-20T09:00:00.000Z"
        ]
    );
    // Re-sending the stored (clamped) date of a series on the 31st keeps
    // it on the 31st.
    let end = recurrence(
        &admin,
        json!({"content": "month end", "rule_type": "monthly", "timezone": "UTC",
               "anchor_day": 31, "next_due_at": "2027-02-28T09:00:00Z", "active": false}),
    );
    for same in ["2027-02-28T09:00:00.000Z", "2027-02-28T10:00:00+01:00"] {
        let resent = admin.put(
            &format!("/api/recurrences/{}", id_of(&end)),
            json!({"next_due_at": same, "content": "month end", "rule_type": "monthly",
                   "timezone": "UTC", "interval": 1}),
        );
        assert_eq!(resent.status, 200, "{}", resent.text);
        assert_eq!(resent.body["anchor_day"], 31, "{}", resent.text);
    }
    assert_eq!(
        upcoming(&admin, id_of(&end), 3),
        [
            "2027-02-28T09:00:00.000Z",
            "2027-03-31T09:00:00.000Z",
            "2027-04-30T09:00:00.000Z"
        ]
    );
    let once = admin.put(
        &format!("/api/recurrences/{id}"),
        json!({"next_due_at": "2027-02-22T09:00:00Z", "anchor_day": 15}),
    );
    assert_eq!(once.status, 200, "{}", once.text);
    assert_eq!(
        upcoming(&admin, id, 3),
        [
            "2027-02-22T09:00:00.000Z",
            "2027-03-15T09:00:00.000Z",
            "2027-04-15T09:00:00.000Z"
        ]
    );
    // A time of day sent with the same date (a whole-object PUT): the
    // pending occurrence moves to it on its day, and the later ones.
    let later = admin.put(
        &format!("/api/recurrences/{}", id_of(&end)),
        json!({"next_due_at": "2027-02-28T09:00:00Z", "time_of_day": "10:00"}),
    );
    assert_eq!(later.status, 200, "{}", later.text);
    assert_eq!(
        upcoming(&admin, id_of(&end), 3),
        [
            "2027-02-28T10:00:00.000Z",
            "2027-03-31T10:00:00.000Z",
            "2027-04-30T10:00:00.000Z"
        ]
    );
    // A new time of day whose moment today has passed: the pending
    // occurrence goes to the next day at that time, not to the past.
    let now = time::OffsetDateTime::now_utc();
    let soon = now + time::Duration::hours(2);
    let at = format!(
        "{}T{:02}:{:02}:00Z",
        soon.date(),
        soon.hour(),
        soon.minute()
    );
    let earlier = now - time::Duration::hours(1);
    let hhmm = format!("{:02}:{:02}", earlier.hour(), earlier.minute());
    let moved_to = soon
        .date()
        .with_hms(earlier.hour(), earlier.minute(), 0)
        .unwrap()
        .assume_utc();
    let expected = if moved_to > now {
        moved_to
    } else {
        moved_to + time::Duration::days(1)
    };
    let expected = format!(
        "{}T{:02}:{:02}:00.000Z",
        expected.date(),
        expected.hour(),
        expected.minute()
    );
    let today = recurrence(
        &admin,
        json!({"content": "today", "rule_type": "daily", "timezone": "UTC",
               "next_due_at": at, "active": false}),
    );
    let r = admin.put(
        &format!("/api/recurrences/{}", id_of(&today)),
        json!({"next_due_at": at, "time_of_day": hhmm}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["next_due_at"], expected, "{}", r.text);
    // The same date in another time zone: the series starts over there,
    // at that instant's local time (04:00 in New York, EST), and keeps it
    // across New York's change to daylight saving time (2027-03-14).
    let daily = recurrence(
        &admin,
        json!({"content": "daily", "rule_type": "daily", "timezone": "UTC",
               "next_due_at": "2027-03-13T09:00:00Z", "active": false}),
    );
    let moved = admin.put(
        &format!("/api/recurrences/{}", id_of(&daily)),
        json!({"timezone": "America/New_York", "next_due_at": "2027-03-13T09:00:00Z"}),
    );
    assert_eq!(moved.status, 200, "{}", moved.text);
    assert_eq!(
        upcoming(&admin, id_of(&daily), 3),
        [
            "2027-03-13T09:00:00.000Z",
            "2027-03-14T08:00:00.000Z",
            "2027-03-15T08:00:00.000Z"
        ]
    );
}

#[test]
fn the_sdks_recurrence_calls_and_bad_rules() {
    let server = TestServer::start();
    let admin = server.admin();
    let r = recurrence(
        &admin,
        json!({"content": "r", "rule_type": "weekly", "interval": 1, "timezone": "UTC",
               "priority": 1, "anchor_weekday": 1}),
    );
    for key in [
        "id",
        "content",
        "rule_type",
        "interval",
        "timezone",
        "anchor_weekday",
        "next_due_at",
        "active",
        "skip_if_open",
        "created_by_agent_id",
        "created_at",
        "updated_at",
    ] {
        assert!(r.get(key).is_some(), "{key}: {r}");
    }
    let id = id_of(&r);
    assert_eq!(
        admin.get("/api/recurrences").body.as_array().unwrap().len(),
        1
    );
    let paused = admin.put(&format!("/api/recurrences/{id}"), json!({"active": false}));
    assert_eq!(paused.body["active"], false, "{}", paused.text);
    for (body, field) in [
        (json!({"content": "x", "rule_type": "hourly"}), "rule_type"),
        (
            json!({"content": "x", "rule_type": "daily", "interval": 0}),
            "interval",
        ),
        (
            json!({"content": "x", "rule_type": "daily", "timezone": "Mars/Olympus"}),
            "timezone",
        ),
        (
            json!({"content": "x", "rule_type": "monthly", "anchor_day": 32}),
            "anchor_day",
        ),
        (
            json!({"content": "x", "rule_type": "weekly", "anchor_weekday": 7}),
            "anchor_weekday",
        ),
        (
            json!({"content": "x", "rule_type": "yearly", "anchor_month": 2, "anchor_day": 30}),
            "anchor_day",
        ),
        (
            json!({"content": "x", "rule_type": "yearly", "anchor_month": 4, "anchor_day": 31}),
            "anchor_day",
        ),
        (
            json!({"content": "x", "rule_type": "yearly", "anchor_month": 13}),
            "anchor_month",
        ),
        (json!({"rule_type": "daily"}), "content"),
    ] {
        admin
            .post("/api/recurrences", body)
            .assert_field_error(field);
    }
    // The same on an update, and the stored recurrence stays as it was.
    let stored = admin.get(&format!("/api/recurrences/{id}")).body;
    for (body, field) in [
        (json!({"rule_type": "hourly"}), "rule_type"),
        (json!({"interval": 0}), "interval"),
        (json!({"timezone": "Mars/Olympus"}), "timezone"),
        (json!({"anchor_day": 32}), "anchor_day"),
        (json!({"anchor_weekday": 7}), "anchor_weekday"),
        (
            json!({"rule_type": "yearly", "anchor_month": 2, "anchor_day": 30}),
            "anchor_day",
        ),
        (json!({"next_due_at": "tomorrow"}), "next_due_at"),
    ] {
        admin
            .put(&format!("/api/recurrences/{id}"), body)
            .assert_field_error(field);
    }
    assert_eq!(admin.get(&format!("/api/recurrences/{id}")).body, stored);
    // Yearly on Feb 29 is a date: it falls on Feb 28 in common years.
    let leap = recurrence(
        &admin,
        json!({"content": "leap", "rule_type": "yearly", "anchor_month": 2, "anchor_day": 29,
               "timezone": "UTC", "next_due_at": "2028-02-29T12:00:00Z", "active": false}),
    );
    assert_eq!(
        upcoming(&admin, id_of(&leap), 2),
        ["2028-02-29T12:00:00.000Z", "2029-02-28T12:00:00.000Z"]
    );
    let deleted = admin.delete(&format!("/api/recurrences/{id}"));
    assert_eq!(deleted.status, 200);
    admin
        .get(&format!("/api/recurrences/{id}"))
        .assert_error(404);
}

#[test]
fn legacy_recurring_tasks_keep_their_day_of_month() {
    let server = TestServer::start();
    let (w, _) = server.agent("w", "worker");
    let mut t = w.create_task(json!({
        "content": "rent", "due_date": "2027-01-31", "is_recurring": true,
        "recurring_type": "monthly",
    }));
    let mut dues = Vec::new();
    for _ in 0..4 {
        let r = w.post(&format!("/api/tasks/{}/complete", t["id"]), json!({}));
        assert_eq!(r.status, 200, "{}", r.text);
        let open = w.get("/api/tasks?search=rent&completed=false").body;
        t = open[0].clone();
        dues.push(t["due_date"].as_str().unwrap().to_string());
    }
    assert_eq!(
        dues,
        ["2027-02-28", "2027-03-31", "2027-04-30", "2027-05-31"]
    );
    let next_due = |t: &Value| {
        let r = w.post(&format!("/api/tasks/{}/complete", t["id"]), json!({}));
        assert_eq!(r.status, 200, "{}", r.text);
        let open = w.get("/api/tasks?search=rent&completed=false").body;
        open[0].clone()
    };
    // A client that re-sends the clamped date it read keeps the series on
    // the 31st; moving the date by hand re-anchors the series there.
    let t = next_due(&t);
    assert_eq!(t["due_date"], "2027-06-30");
    let r = w.put(
        &format!("/api/tasks/{}", t["id"]),
        json!({"due_date": "2027-06-30", "content": "rent"}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let t = next_due(&t);
    assert_eq!(t["due_date"], "2027-07-31");
    let r = w.put(
        &format!("/api/tasks/{}", t["id"]),
        json!({"due_date": "2027-08-15"}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let t = next_due(&t);
    assert_eq!(t["due_date"], "2027-09-15");
    let t = next_due(&t);
    assert_eq!(t["due_date"], "2027-10-15");
}

#[test]
fn a_legacy_yearly_task_on_february_29_returns_to_it_in_leap_years() {
    let server = TestServer::start();
    let (w, _) = server.agent("w", "worker");
    let mut t = w.create_task(json!({
        "content": "leap", "due_date": "2028-02-29", "is_recurring": true,
        "recurring_type": "yearly",
    }));
    let mut dues = Vec::new();
    for _ in 0..4 {
        let r = w.post(&format!("/api/tasks/{}/complete", t["id"]), json!({}));
        assert_eq!(r.status, 200, "{}", r.text);
        t = w.get("/api/tasks?search=leap&completed=false").body[0].clone();
        dues.push(t["due_date"].as_str().unwrap().to_string());
    }
    assert_eq!(
        dues,
        ["2029-02-28", "2030-02-28", "2031-02-28", "2032-02-29"]
    );
}

// ------------------------------------------------------------- attention

#[test]
fn the_attention_board_shows_what_needs_a_person_with_reasons() {
    let server = TestServer::start_with(&[("DELEGA_MIN_LEASE_SECONDS", "1")]);
    let admin = server.admin();
    let (w, _) = server.agent("w", "worker");
    let (other, _) = server.agent("other", "worker");
    let overdue = id_of(
        &admin.create_task(json!({"content": "late", "due_date": "2020-01-01",
                                                   "assigned_to_agent_id": "w"})),
    );
    let errored =
        id_of(&admin.create_task(json!({"content": "broken", "assigned_to_agent_id": "w"})));
    w.post(&format!("/api/tasks/{errored}/claim"), json!({}));
    w.post(
        &format!("/api/tasks/{errored}/state"),
        json!({"state": "errored", "detail": "disk full"}),
    );
    let waiting =
        id_of(&admin.create_task(json!({"content": "question", "assigned_to_agent_id": "w"})));
    w.post(&format!("/api/tasks/{waiting}/claim"), json!({}));
    w.post(
        &format!("/api/tasks/{waiting}/state"),
        json!({"state": "waiting_input"}),
    );
    let abandoned = id_of(&admin.create_task(json!({"content": "dropped"})));
    other.post(
        &format!("/api/tasks/{abandoned}/claim"),
        json!({"lease_seconds": 1}),
    );
    let dep = id_of(&admin.create_task(json!({"content": "dep"})));
    let blocked = id_of(&admin.create_task(json!({"content": "after dep", "depends_on": [dep]})));
    admin.post(&format!("/api/tasks/{dep}/fail"), json!({"reason": "no"}));
    let looping =
        id_of(&admin.create_task(json!({"content": "ping-pong", "assigned_to_agent_id": "w"})));
    for to in ["other", "w", "other"] {
        admin.post(
            &format!("/api/tasks/{looping}/delegate"),
            json!({"agent_id": to}),
        );
    }
    wait_until("the lease to run out", Duration::from_secs(10), || {
        server.task_snapshot(abandoned)["claimed_by_agent_id"].is_null()
    });
    let board = admin.get("/api/fleet/attention");
    assert_eq!(board.status, 200, "{}", board.text);
    let ids = |bucket: &str| -> Vec<i64> {
        board.body["buckets"][bucket]
            .as_array()
            .unwrap_or_else(|| panic!("{bucket}: {}", board.text))
            .iter()
            .map(|t| {
                assert!(
                    t["attention_reason"].is_string() && t["since"].is_string(),
                    "{t}"
                );
                t["id"].as_i64().unwrap()
            })
            .collect()
    };
    assert_eq!(ids("overdue"), [overdue]);
    // Every `since` is a timestamp; overdue since the day after it was due.
    let late = &board.body["buckets"]["overdue"][0];
    assert_eq!(late["since"], "2020-01-02T00:00:00.000Z", "{late}");
    assert!(late["attention_reason"]
        .as_str()
        .unwrap()
        .contains("2020-01-01"));
    for bucket in [
        "errored",
        "waiting_input",
        "abandoned_claims",
        "blocked_by_failure",
        "looping",
    ] {
        for t in board.body["buckets"][bucket].as_array().unwrap() {
            let since = t["since"].as_str().unwrap();
            assert!(
                since.len() == 24 && since.ends_with('Z') && since.as_bytes()[10] == b'T',
                "{bucket}: {since}"
            );
        }
    }
    assert_eq!(ids("errored"), [errored]);
    assert!(board.text.contains("disk full"));
    assert_eq!(ids("waiting_input"), [waiting]);
    assert_eq!(ids("abandoned_claims"), [abandoned]);
    assert_eq!(ids("blocked_by_failure"), [blocked]);
    assert_eq!(ids("looping"), [looping]);
    assert!(board.body["count"].as_i64().unwrap() >= 6);
    // Scoped like reads: the other worker sees none of w's tasks.
    let theirs = other.get("/api/fleet/attention").body;
    for bucket in ["overdue", "errored", "waiting_input", "looping"] {
        assert!(
            theirs["buckets"][bucket]
                .as_array()
                .unwrap()
                .iter()
                .all(|t| t["id"] != json!(overdue) && t["id"] != json!(errored)),
            "{bucket}: {theirs}"
        );
    }
}

#[test]
fn a_live_claim_without_heartbeats_for_half_its_lease_is_a_silent_holder() {
    let server = TestServer::start_with(&[("DELEGA_MIN_LEASE_SECONDS", "1")]);
    let admin = server.admin();
    let (w, w_id) = server.agent("w", "worker");
    let (other, _) = server.agent("other", "worker");
    let quiet = id_of(&admin.create_task(json!({"content": "quiet", "assigned_to_agent_id": "w"})));
    let r = w.post(
        &format!("/api/tasks/{quiet}/claim"),
        json!({"lease_seconds": 10}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let silent = |client: &Client| {
        let board = client.get("/api/fleet/attention");
        assert_eq!(board.status, 200, "{}", board.text);
        board.body["buckets"]["silent_holders"]
            .as_array()
            .unwrap()
            .clone()
    };
    assert!(silent(&admin).is_empty(), "a fresh claim is not silent");
    // Past half of the ten-second lease, still held: silent.
    wait_until("half the lease to pass", Duration::from_secs(15), || {
        !silent(&admin).is_empty()
    });
    let listed = silent(&admin);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], quiet);
    let reason = listed[0]["attention_reason"].as_str().unwrap();
    assert!(reason.contains("w holds the claim"), "{reason}");
    assert!(listed[0]["since"].is_string(), "{}", listed[0]);
    assert_eq!(
        server.task_snapshot(quiet)["claimed_by_agent_id"],
        json!(w_id),
        "the claim is still live"
    );
    // Scoped like reads; a heartbeat ends the silence.
    assert!(silent(&other).is_empty());
    let r = w.post(
        &format!("/api/tasks/{quiet}/heartbeat"),
        json!({"lease_seconds": 60}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(silent(&admin).is_empty());
}
