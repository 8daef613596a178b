//! Task context (SPEC §7): merge patches, versions and optimistic
//! concurrency, sources, provenance, history, supersede, the size cap,
//! the `metadata` alias and recall (`GET /context/search`).

use std::collections::{BTreeSet, HashSet};

use crate::helpers::{id_of, Client, TestServer};
use serde_json::{json, Value};

fn ctx_path(id: i64) -> String {
    format!("/api/tasks/{id}/context")
}

/// `GET /tasks/{id}/context` → (context, version).
fn read_context(c: &Client, id: i64) -> (Value, i64) {
    let r = c.get(&ctx_path(id));
    assert_eq!(r.status, 200, "GET context: {}", r.text);
    (
        r.body["context"].clone(),
        r.body["version"].as_i64().expect("version"),
    )
}

fn history(c: &Client, id: i64, query: &str) -> Value {
    let r = c.get(&format!("/api/tasks/{id}/context/history{query}"));
    assert_eq!(r.status, 200, "history {query}: {}", r.text);
    r.body
}

fn entry_count(c: &Client, id: i64) -> usize {
    history(c, id, "?limit=100")["entries"]
        .as_array()
        .unwrap()
        .len()
}

// ---------------------------------------------------------------- merge

#[test]
fn patching_context_merges_recursively_deletes_nulls_and_returns_the_task() {
    let server = TestServer::start();
    let admin = server.admin();
    let id = id_of(&admin.create_task(json!({ "content": "Context holder" })));
    let r = admin.patch(
        &ctx_path(id),
        json!({
            "a": 1,
            "nested": { "x": 1, "y": 2, "deep": { "keep": true, "drop": 1 } },
            "gone": true,
            "list": [1, 2, 3],
        }),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let v1 = r.body["context_version"].as_i64().unwrap();

    let r = admin.patch(
        &ctx_path(id),
        json!({
            "nested": { "y": null, "z": 3, "deep": { "drop": null } },
            "gone": null,
            "b": "two",
            "list": [9],
            "absent": null,
        }),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let expected = json!({
        "a": 1,
        "nested": { "x": 1, "z": 3, "deep": { "keep": true } },
        "b": "two",
        "list": [9],
    });
    assert_eq!(r.body["id"], json!(id), "the response is the task");
    assert_eq!(r.body["content"], json!("Context holder"));
    assert_eq!(r.body["context"], expected);
    assert_eq!(r.body["metadata"], expected);
    assert_eq!(r.body["context_version"], json!(v1 + 1));

    let (ctx, version) = read_context(&admin, id);
    assert_eq!(ctx, expected);
    assert_eq!(version, v1 + 1);
    let t = admin.task(id);
    assert_eq!(t["context"], expected);
    assert_eq!(t["metadata"], expected);
}

#[test]
fn metadata_and_context_are_the_same_object_in_every_task_response() {
    let server = TestServer::start();
    let admin = server.admin();
    let created = admin.create_task(json!({
        "content": "Alias check", "metadata": { "source": "crm", "n": 1 },
    }));
    let id = id_of(&created);
    assert_eq!(created["context"], json!({ "source": "crm", "n": 1 }));
    assert_eq!(created["metadata"], created["context"]);
    let t = admin.task(id);
    assert_eq!(t["metadata"], t["context"]);
    let r = admin.put(
        &format!("/api/tasks/{id}"),
        json!({ "metadata": { "n": 2 } }),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["context"]["n"], json!(2));
    assert_eq!(r.body["metadata"], r.body["context"]);
    let list = admin.get("/api/tasks");
    let listed = list
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|t| id_of(t) == id)
        .unwrap()
        .clone();
    assert_eq!(listed["metadata"], listed["context"]);
    assert_eq!(listed["context"]["n"], json!(2));
    let v1 = admin.get(&format!("/v1/tasks/{id}"));
    assert_eq!(v1.body["metadata"], v1.body["context"]);
}

// ---------------------------------------------------------------- versions

#[test]
fn every_context_write_bumps_the_version_by_one_and_records_ledger_entries() {
    let server = TestServer::start();
    let admin = server.admin();
    let (worker, worker_id) = server.agent("worker-w", "worker");
    let id = id_of(&admin.create_task(json!({
        "content": "Versioned", "assigned_to_agent_id": worker_id,
    })));
    let (_, v0) = read_context(&worker, id);

    // PATCH with two keys: one version, two ledger entries.
    let r = worker.patch(&ctx_path(id), json!({ "a": 1, "b": 2 }));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["context_version"], json!(v0 + 1));
    let h = history(&worker, id, "");
    let entries = h["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "one entry per top-level key: {h}");
    for e in entries {
        assert_eq!(e["version"], json!(v0 + 1));
        assert_eq!(e["author_agent_id"], json!(worker_id));
        assert_eq!(e["author_name"], json!("worker-w"));
        assert_eq!(e["source"], json!("agent_inferred"));
        for key in [
            "id",
            "key",
            "value",
            "created_at",
            "superseded_by",
            "superseded_at",
        ] {
            assert!(e.get(key).is_some(), "entry lacks {key}: {e}");
        }
    }
    let keys: BTreeSet<&str> = entries.iter().map(|e| e["key"].as_str().unwrap()).collect();
    assert_eq!(keys, BTreeSet::from(["a", "b"]));

    // PUT with context (and other fields) is one write.
    let r = worker.put(
        &format!("/api/tasks/{id}"),
        json!({ "priority": 1, "context": { "c": 3 } }),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["context_version"], json!(v0 + 2));
    assert_eq!(r.body["context"]["c"], json!(3));
    // A PUT without context leaves the version alone.
    let r = worker.put(&format!("/api/tasks/{id}"), json!({ "priority": 2 }));
    assert_eq!(r.body["context_version"], json!(v0 + 2));

    // Complete with metadata.
    let r = worker.post(
        &format!("/api/tasks/{id}/complete"),
        json!({ "metadata": { "result": "shipped" } }),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], json!("completed"));
    assert_eq!(r.body["context_version"], json!(v0 + 3));
    assert_eq!(r.body["context"]["result"], json!("shipped"));
    assert_eq!(r.body["context"]["a"], json!(1), "merged, not replaced");
    let h = history(&worker, id, "?key=result");
    assert_eq!(h["entries"].as_array().unwrap().len(), 1, "{h}");
    assert_eq!(h["entries"][0]["version"], json!(v0 + 3));
    assert_eq!(h["entries"][0]["value"], json!("shipped"));

    // Fail with context on another task.
    let other = id_of(&admin.create_task(json!({
        "content": "Will fail", "assigned_to_agent_id": worker_id,
    })));
    let (_, o0) = read_context(&worker, other);
    let r = worker.post(
        &format!("/api/tasks/{other}/fail"),
        json!({ "reason": "upstream down", "context": { "error": "503" } }),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], json!("failed"));
    assert_eq!(r.body["context_version"], json!(o0 + 1));
    assert_eq!(r.body["context"]["error"], json!("503"));
    let h = history(&worker, other, "?key=error");
    assert_eq!(h["entries"][0]["version"], json!(o0 + 1));
    assert_eq!(entry_count(&worker, id), 4, "a, b, c and result");
}

#[test]
fn a_stale_expected_version_is_a_409_with_the_current_version_and_context() {
    let server = TestServer::start();
    let admin = server.admin();
    let id = id_of(&admin.create_task(json!({ "content": "Guarded" })));
    let (_, v0) = read_context(&admin, id);
    let r = admin.patch(
        &format!("{}?expected_version={v0}", ctx_path(id)),
        json!({ "step": 1 }),
    );
    assert_eq!(r.status, 200, "matching version: {}", r.text);
    let current = v0 + 1;

    let r = admin.patch(
        &format!("{}?expected_version={v0}", ctx_path(id)),
        json!({ "step": 2, "extra": true }),
    );
    r.assert_error(409);
    assert_eq!(r.body["version"], json!(current));
    assert_eq!(r.body["context"], json!({ "step": 1 }));
    let msg = r.body["error"].as_str().unwrap();
    assert!(
        msg.contains(&current.to_string()),
        "the message names the current version: {msg}"
    );
    let (ctx, version) = read_context(&admin, id);
    assert_eq!((ctx, version), (json!({ "step": 1 }), current), "no write");

    let r = admin.patch(
        &format!("/v1/tasks/{id}/context?expected_version=99"),
        json!({ "step": 3 }),
    );
    r.assert_error(409);
    assert_eq!(r.body["version"], json!(current));

    admin
        .patch(
            &format!("{}?expected_version=latest", ctx_path(id)),
            json!({ "step": 9 }),
        )
        .assert_error(422);
    let r = admin.patch(
        &format!("{}?expected_version={current}", ctx_path(id)),
        json!({ "step": 2 }),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["context_version"], json!(current + 1));
    assert_eq!(entry_count(&admin, id), 2);
}

#[test]
fn eight_agents_patching_with_expected_versions_never_lose_an_update() {
    let server = TestServer::start();
    let admin = server.admin();
    let id = id_of(&admin.create_task(json!({ "content": "Contended context" })));
    let (_, start) = read_context(&admin, id);
    let agents: Vec<(Client, i64)> = (0..8)
        .map(|i| server.agent(&format!("writer-{i}"), "admin"))
        .collect();
    const WINS_EACH: usize = 3;

    // Each agent reads the version, then writes with it, until it has won
    // WINS_EACH times. Records (expected version, key, won, version in 409).
    let attempts: Vec<(i64, String, bool, Option<i64>)> = std::thread::scope(|s| {
        let handles: Vec<_> = agents
            .iter()
            .enumerate()
            .map(|(i, (client, _))| {
                s.spawn(move || {
                    let mut log = Vec::new();
                    let mut wins = 0;
                    for attempt in 0..500 {
                        if wins == WINS_EACH {
                            break;
                        }
                        let (_, v) = read_context(client, id);
                        let key = format!("w{i}_a{attempt}");
                        let r = client.patch(
                            &format!("/api/tasks/{id}/context?expected_version={v}"),
                            json!({ key.clone(): v }),
                        );
                        match r.status {
                            200 => {
                                assert_eq!(r.body["context_version"], json!(v + 1));
                                wins += 1;
                                log.push((v, key, true, None));
                            }
                            409 => {
                                r.assert_error(409);
                                log.push((v, key, false, r.body["version"].as_i64()));
                            }
                            s => panic!("unexpected {s}: {}", r.text),
                        }
                    }
                    assert_eq!(wins, WINS_EACH, "writer {i} kept losing");
                    log
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });

    let won: Vec<&(i64, String, bool, Option<i64>)> = attempts.iter().filter(|a| a.2).collect();
    let total = 8 * WINS_EACH;
    assert_eq!(won.len(), total);
    let mut versions: Vec<i64> = won.iter().map(|a| a.0).collect();
    versions.sort();
    let expected: Vec<i64> = (start..start + total as i64).collect();
    assert_eq!(
        versions, expected,
        "exactly one write succeeded per version"
    );
    for (v, _, _, current) in attempts.iter().filter(|a| !a.2) {
        let current = current.expect("409 carries the version");
        assert!(
            current > *v,
            "a 409 only for a stale version ({v} vs {current})"
        );
    }

    let (ctx, version) = read_context(&admin, id);
    assert_eq!(version, start + total as i64);
    let keys: HashSet<&str> = ctx
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let winners: HashSet<&str> = won.iter().map(|a| a.1.as_str()).collect();
    assert_eq!(keys, winners, "every winner's key and no loser's");
    for (v, key, _, _) in &won {
        assert_eq!(ctx[key.as_str()], json!(v));
    }
    assert_eq!(entry_count(&admin, id), total);
}

// ---------------------------------------------------------------- sources

#[test]
fn human_stated_and_imported_sources_are_reserved_to_admins() {
    let server = TestServer::start();
    let admin = server.admin();
    let (worker, worker_id) = server.agent("worker-w", "worker");
    let (boss, _) = server.agent("boss", "admin");
    let id = id_of(&admin.create_task(json!({
        "content": "Sourced", "assigned_to_agent_id": worker_id,
    })));
    let before = read_context(&worker, id);

    for source in ["human_stated", "imported"] {
        let r = worker.patch(
            &format!("{}?source={source}", ctx_path(id)),
            json!({ "claim": source }),
        );
        r.assert_error(403);
    }
    worker
        .patch(
            &format!("{}?source=gossip", ctx_path(id)),
            json!({ "claim": "x" }),
        )
        .assert_error(422);
    assert_eq!(
        read_context(&worker, id),
        before,
        "refused writes left no trace"
    );
    assert_eq!(entry_count(&worker, id), 0);

    for source in ["agent_observed", "agent_inferred"] {
        let r = worker.patch(
            &format!("{}?source={source}", ctx_path(id)),
            json!({ source: true }),
        );
        assert_eq!(r.status, 200, "{source}: {}", r.text);
    }
    let r = boss.patch(
        &format!("{}?source=human_stated", ctx_path(id)),
        json!({ "requirement": "EU only" }),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let r = admin.patch(
        &format!("{}?source=imported", ctx_path(id)),
        json!({ "crm_id": "A-17" }),
    );
    assert_eq!(r.status, 200, "{}", r.text);

    let r = worker.get(&format!("{}?include=provenance", ctx_path(id)));
    assert_eq!(r.status, 200, "{}", r.text);
    let p = &r.body["provenance"];
    assert_eq!(p["agent_observed"]["source"], json!("agent_observed"));
    assert_eq!(p["agent_inferred"]["source"], json!("agent_inferred"));
    assert_eq!(p["requirement"]["source"], json!("human_stated"));
    assert_eq!(p["requirement"]["author_name"], json!("boss"));
    assert_eq!(p["crm_id"]["source"], json!("imported"));
    assert_eq!(p["crm_id"]["author_agent_id"], Value::Null, "project token");
}

#[test]
fn get_context_returns_context_and_version_and_provenance_on_request() {
    let server = TestServer::start();
    let admin = server.admin();
    let (worker, worker_id) = server.agent("worker-w", "worker");
    let id = id_of(&admin.create_task(json!({
        "content": "Provenance", "assigned_to_agent_id": worker_id,
    })));
    let r = worker.patch(&ctx_path(id), json!({ "finding": "42" }));
    assert_eq!(r.status, 200, "{}", r.text);
    let r = admin.patch(&ctx_path(id), json!({ "note": "checked" }));
    assert_eq!(r.status, 200, "{}", r.text);
    let version = r.body["context_version"].as_i64().unwrap();

    let r = worker.get(&ctx_path(id));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body,
        json!({ "context": { "finding": "42", "note": "checked" }, "version": version })
    );

    let r = worker.get(&format!("/v1/tasks/{id}/context?include=provenance"));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["version"], json!(version));
    let f = &r.body["provenance"]["finding"];
    assert_eq!(f["author_agent_id"], json!(worker_id));
    assert_eq!(f["author_name"], json!("worker-w"));
    assert_eq!(f["source"], json!("agent_inferred"));
    assert_eq!(f["version"], json!(version - 1));
    assert!(f["created_at"].is_string());
    let n = &r.body["provenance"]["note"];
    assert_eq!(n["author_agent_id"], Value::Null);
    assert_eq!(n["version"], json!(version));
    assert_eq!(
        r.body["provenance"].as_object().unwrap().len(),
        2,
        "one provenance record per live key"
    );
}

// ---------------------------------------------------------------- history

#[test]
fn context_history_lists_entries_newest_first_and_paginates_with_a_cursor() {
    let server = TestServer::start();
    let admin = server.admin();
    let id = id_of(&admin.create_task(json!({ "content": "History" })));
    for i in 1..=5 {
        let r = admin.patch(&ctx_path(id), json!({ "k": i }));
        assert_eq!(r.status, 200, "{}", r.text);
        if i % 2 == 0 {
            let r = admin.patch(&ctx_path(id), json!({ "other": i }));
            assert_eq!(r.status, 200, "{}", r.text);
        }
    }

    let mut values = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let q = match &cursor {
            None => "?key=k&limit=2".to_string(),
            Some(c) => format!("?key=k&limit=2&cursor={c}"),
        };
        let page = history(&admin, id, &q);
        let entries = page["entries"].as_array().unwrap();
        assert!(entries.len() <= 2);
        for e in entries {
            assert_eq!(e["key"], json!("k"));
            values.push(e["value"].as_i64().unwrap());
        }
        pages += 1;
        match &page["next_cursor"] {
            Value::Null => break,
            Value::String(c) => cursor = Some(c.clone()),
            other => panic!("next_cursor must be null or a string: {other}"),
        }
        assert!(pages < 10, "pagination does not end");
    }
    assert_eq!(values, vec![5, 4, 3, 2, 1], "newest first, each once");
    assert_eq!(pages, 3);

    let all = history(&admin, id, "");
    let entries = all["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 7);
    assert_eq!(all["next_cursor"], Value::Null);
    let versions: Vec<i64> = entries
        .iter()
        .map(|e| e["version"].as_i64().unwrap())
        .collect();
    let mut sorted = versions.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(versions, sorted, "newest first");
    assert_eq!(entries[0]["superseded_at"], Value::Null, "newest is live");

    let v1 = admin.get(&format!("/v1/tasks/{id}/context/history?key=other&limit=1"));
    assert_eq!(v1.status, 200, "{}", v1.text);
    assert_eq!(v1.body["entries"][0]["value"], json!(4));
    assert!(v1.body["next_cursor"].is_string());

    for bad in [
        "?limit=0",
        "?limit=101",
        "?limit=abc",
        "?cursor=not-a-cursor",
    ] {
        admin
            .get(&format!("/api/tasks/{id}/context/history{bad}"))
            .assert_error(422);
    }
}

#[test]
fn superseding_a_key_marks_its_live_entry_stale_and_hides_it_from_recall() {
    let server = TestServer::start();
    let admin = server.admin();
    let id = id_of(&admin.create_task(json!({ "content": "Stale facts" })));
    let r = admin.patch(&ctx_path(id), json!({ "fact": "platypus migration" }));
    assert_eq!(r.status, 200, "{}", r.text);
    let (ctx_before, version_before) = read_context(&admin, id);

    let r = admin.post(
        &format!("/api/tasks/{id}/context/supersede"),
        json!({ "key": "fact" }),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let e = &r.body["superseded"];
    assert_eq!(e["key"], json!("fact"));
    assert_eq!(e["value"], json!("platypus migration"));
    assert!(e["superseded_at"].is_string(), "superseded_at set: {e}");
    assert!(e["id"].is_i64());

    let (ctx, version) = read_context(&admin, id);
    assert_eq!(ctx, ctx_before, "the context value is untouched");
    assert_eq!(version, version_before);
    let h = history(&admin, id, "?key=fact");
    assert!(h["entries"][0]["superseded_at"].is_string());

    let r = admin.get("/api/context/search?q=platypus");
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body["count"],
        json!(0),
        "superseded entries are not recalled"
    );
    let r = admin.get("/api/context/search?q=platypus&include_superseded=true");
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["results"][0]["task_id"], json!(id));

    admin
        .post(
            &format!("/api/tasks/{id}/context/supersede"),
            json!({ "key": "never-written" }),
        )
        .assert_error(404);
    admin
        .post(&format!("/api/tasks/{id}/context/supersede"), json!({}))
        .assert_error(422);
}

// ---------------------------------------------------------------- bad input

#[test]
fn a_context_over_the_size_cap_is_413_and_nothing_is_written() {
    let server = TestServer::start();
    let admin = server.admin();
    let id = id_of(&admin.create_task(json!({ "content": "Big context" })));
    let chunk = "x".repeat(60_000);
    // Four PATCHes of ~60 KB each: each body is under the 64 KiB limit and
    // the context (~240 KB) under the 256 KiB cap.
    for i in 0..4 {
        let r = admin.patch(&ctx_path(id), json!({ format!("part{i}"): chunk }));
        assert_eq!(r.status, 200, "part {i}: {}", r.status);
    }
    let before_task = admin.task(id);
    let (before_ctx, before_version) = read_context(&admin, id);
    let before_entries = entry_count(&admin, id);

    // The fifth pushes it past 256 KiB.
    let r = admin.patch(&ctx_path(id), json!({ "part4": chunk }));
    r.assert_error(413);
    let r = admin.put(
        &format!("/api/tasks/{id}"),
        json!({ "content": "Renamed with the write", "context": { "part4": chunk } }),
    );
    r.assert_error(413);
    let r = admin.post(
        &format!("/api/tasks/{id}/complete"),
        json!({ "metadata": { "part4": chunk } }),
    );
    r.assert_error(413);
    let r = admin.post(
        &format!("/api/tasks/{id}/fail"),
        json!({ "reason": "too big", "context": { "part4": chunk } }),
    );
    r.assert_error(413);

    assert_eq!(read_context(&admin, id), (before_ctx, before_version));
    assert_eq!(entry_count(&admin, id), before_entries);
    let after = admin.task(id);
    assert_eq!(
        after, before_task,
        "no partial write (content, status, version)"
    );
    assert_eq!(after["status"], json!("open"));

    // A single body over the 64 KiB request limit is 413 as well.
    let huge = "y".repeat(70_000);
    admin
        .patch(&ctx_path(id), json!({ "huge": huge }))
        .assert_error(413);
    assert_eq!(read_context(&admin, id).1, before_version);
}

#[test]
fn a_context_that_is_not_an_object_is_422_and_nothing_is_written() {
    let server = TestServer::start();
    let admin = server.admin();
    let id = id_of(&admin.create_task(json!({
        "content": "Typed context", "context": { "ok": true },
    })));
    let before = admin.task(id);
    for body in [json!([1, 2]), json!("text"), json!(5), json!(true)] {
        admin.patch(&ctx_path(id), body.clone()).assert_error(422);
    }
    for (field, value) in [
        ("context", json!("x")),
        ("metadata", json!([1])),
        ("context", json!(7)),
    ] {
        admin
            .put(&format!("/api/tasks/{id}"), json!({ field: value.clone() }))
            .assert_error(422);
        admin
            .post(
                &format!("/api/tasks/{id}/complete"),
                json!({ field: value.clone() }),
            )
            .assert_error(422);
        admin
            .post(
                &format!("/api/tasks/{id}/fail"),
                json!({ field: value.clone() }),
            )
            .assert_error(422);
        admin
            .post(
                "/api/tasks",
                json!({ "content": "bad context", field: value.clone() }),
            )
            .assert_error(422);
        admin
            .post(
                &format!("/api/tasks/{id}/delegate"),
                json!({ "content": "bad child", field: value }),
            )
            .assert_error(422);
    }
    assert_eq!(admin.task(id), before, "nothing changed");
    assert_eq!(
        admin.get(&format!("/api/tasks/{id}/children")).body,
        json!([])
    );
    let list = admin.get("/api/tasks?include_completed=true");
    assert_eq!(
        list.body.as_array().unwrap().len(),
        1,
        "no task was created"
    );
}

#[test]
fn context_of_a_task_the_caller_cannot_read_or_change_is_refused() {
    let server = TestServer::start();
    let admin = server.admin();
    let (owner, owner_id) = server.agent("owner", "worker");
    let (stranger, _) = server.agent("stranger", "worker");
    let id = id_of(&admin.create_task(json!({
        "content": "Private context", "assigned_to_agent_id": owner_id,
        "context": { "secret": "s3" },
    })));
    stranger.get(&ctx_path(id)).assert_error(404);
    stranger
        .get(&format!("/api/tasks/{id}/context/history"))
        .assert_error(404);
    stranger
        .patch(&ctx_path(id), json!({ "secret": null }))
        .assert_error(404);
    stranger
        .post(
            &format!("/api/tasks/{id}/context/supersede"),
            json!({ "key": "secret" }),
        )
        .assert_error(404);
    assert_eq!(read_context(&owner, id).0, json!({ "secret": "s3" }));

    // A task the owner reads only because it is downstream of its own
    // work (created and assigned by others) is readable, not writable.
    let (helper, _) = server.agent("helper", "worker");
    server.agent("helper-2", "worker");
    let r = owner.post(
        &format!("/api/tasks/{id}/delegate"),
        json!({ "content": "Sub-task for helper", "agent_id": "helper" }),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let child = id_of(&r.body);
    let r = helper.post(
        &format!("/api/tasks/{child}/delegate"),
        json!({ "content": "Leaf for helper-2", "agent_id": "helper-2", "context": { "k": 1 } }),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let leaf = id_of(&r.body);
    let before = read_context(&owner, leaf);
    owner
        .patch(&ctx_path(leaf), json!({ "k": 2 }))
        .assert_error(403);
    owner
        .post(
            &format!("/api/tasks/{leaf}/context/supersede"),
            json!({ "key": "k" }),
        )
        .assert_error(403);
    assert_eq!(read_context(&owner, leaf), before);
    let h = history(&owner, leaf, "");
    assert_eq!(h["entries"][0]["superseded_at"], Value::Null);
}

// ---------------------------------------------------------------- recall

#[test]
fn recall_searches_only_tasks_the_caller_can_read() {
    let server = TestServer::start();
    let admin = server.admin();
    let (a, a_id) = server.agent("agent-a", "worker");
    let (_, b_id) = server.agent("agent-b", "worker");
    let mine = id_of(&admin.create_task(json!({
        "content": "A's task", "assigned_to_agent_id": a_id,
    })));
    let theirs = id_of(&admin.create_task(json!({
        "content": "B's task", "assigned_to_agent_id": b_id,
    })));
    let r = a.patch(&ctx_path(mine), json!({ "plan": "zebra migration plan" }));
    assert_eq!(r.status, 200, "{}", r.text);
    let r = admin.patch(
        &ctx_path(theirs),
        json!({ "plan": "zebra crossing budget" }),
    );
    assert_eq!(r.status, 200, "{}", r.text);

    let r = a.get("/api/context/search?q=zebra");
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["query"], json!("zebra"));
    assert_eq!(r.body["count"], json!(1), "{}", r.text);
    let hit = &r.body["results"][0];
    assert_eq!(hit["task_id"], json!(mine));
    assert_eq!(hit["task_content"], json!("A's task"));
    assert_eq!(hit["key"], json!("plan"));
    assert_eq!(hit["value"], json!("zebra migration plan"));
    assert_eq!(hit["source"], json!("agent_inferred"));
    assert!(hit["version"].is_i64());
    assert!(hit["score"].is_number());
    assert!(
        !r.text.contains("crossing"),
        "B's context leaked: {}",
        r.text
    );

    let r = admin.get("/v1/context/search?q=zebra");
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["count"], json!(2));
    let ids: HashSet<i64> = r.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["task_id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, HashSet::from([mine, theirs]));
    assert_eq!(
        r.body["count"].as_u64().unwrap() as usize,
        r.body["results"].as_array().unwrap().len()
    );
    admin.get("/api/context/search").assert_error(422);
}

/// Writes the same text to two tasks, the agent_inferred one first.
fn equal_text_pair(server: &TestServer) -> (i64, i64) {
    let admin = server.admin();
    let inferred = id_of(&admin.create_task(json!({ "content": "Guess" })));
    let stated = id_of(&admin.create_task(json!({ "content": "Statement" })));
    let text = json!({ "window": "the deploy window is friday" });
    let r = admin.patch(&ctx_path(inferred), text.clone());
    assert_eq!(r.status, 200, "{}", r.text);
    let r = admin.patch(&format!("{}?source=human_stated", ctx_path(stated)), text);
    assert_eq!(r.status, 200, "{}", r.text);
    (inferred, stated)
}

fn assert_stated_ranks_first(server: &TestServer, inferred: i64, stated: i64) {
    let r = server
        .admin()
        .get("/api/context/search?q=deploy%20window%20friday");
    assert_eq!(r.status, 200, "{}", r.text);
    let results = r.body["results"].as_array().unwrap();
    assert_eq!(results.len(), 2, "{}", r.text);
    assert_eq!(results[0]["task_id"], json!(stated), "{}", r.text);
    assert_eq!(results[0]["source"], json!("human_stated"));
    assert_eq!(results[1]["task_id"], json!(inferred));
    let (s0, s1) = (
        results[0]["score"].as_f64().unwrap(),
        results[1]["score"].as_f64().unwrap(),
    );
    assert!(s0 > s1, "human_stated scores higher: {s0} vs {s1}");
}

#[test]
fn recall_ranks_human_stated_above_agent_inferred_for_equal_text() {
    let server = TestServer::start();
    let admin = server.admin();
    // Unrelated context elsewhere, as in any real project.
    for i in 0..6 {
        admin.create_task(json!({
            "content": format!("filler {i}"),
            "context": { "topic": format!("quarterly budget review number {i}") },
        }));
    }
    let (inferred, stated) = equal_text_pair(&server);
    assert_stated_ranks_first(&server, inferred, stated);
}

#[test]
fn recall_ranks_human_stated_first_even_when_they_are_the_only_two_entries() {
    let server = TestServer::start();
    let (inferred, stated) = equal_text_pair(&server);
    assert_stated_ranks_first(&server, inferred, stated);
}

#[test]
fn concurrent_unversioned_patches_from_eight_agents_all_land() {
    let server = TestServer::start();
    let admin = server.admin();
    let id = id_of(&admin.create_task(json!({ "content": "Shared notebook" })));
    let (_, start) = read_context(&admin, id);
    let agents: Vec<(Client, i64)> = (0..8)
        .map(|i| server.agent(&format!("writer-{i}"), "admin"))
        .collect();
    std::thread::scope(|s| {
        for (i, (client, _)) in agents.iter().enumerate() {
            s.spawn(move || {
                for n in 0..5 {
                    let r = client.patch(
                        &format!("/api/tasks/{id}/context"),
                        json!({ format!("w{i}_{n}"): n, "shared": { format!("w{i}"): n } }),
                    );
                    assert_eq!(r.status, 200, "{}", r.text);
                }
            });
        }
    });
    let (ctx, version) = read_context(&admin, id);
    assert_eq!(version, start + 40, "one version per write");
    for i in 0..8 {
        for n in 0..5 {
            assert_eq!(ctx[format!("w{i}_{n}")], json!(n), "lost w{i}_{n}");
        }
        assert_eq!(
            ctx["shared"][format!("w{i}")],
            json!(4),
            "nested merge lost"
        );
    }
    assert_eq!(entry_count(&admin, id), 80, "two ledger entries per write");
}

#[test]
fn recall_filters_by_key_and_source_and_reaches_downstream_tasks() {
    let server = TestServer::start();
    let admin = server.admin();
    let (a, a_id) = server.agent("agent-a", "worker");
    let (b, _) = server.agent("agent-b", "worker");
    let root = id_of(&a.create_task(json!({
        "content": "A's root", "assigned_to_agent_id": a_id,
    })));
    let r = a.post(
        &format!("/api/tasks/{root}/delegate"),
        json!({ "content": "B's part", "agent_id": "agent-b" }),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let child = id_of(&r.body);
    let r = b.patch(
        &format!("{}?source=agent_observed", ctx_path(child)),
        json!({ "finding": "walrus population stable", "aside": "walrus jokes" }),
    );
    assert_eq!(r.status, 200, "{}", r.text);

    // B's unrelated work is not A's to recall.
    admin.create_task(json!({
        "content": "B's own task", "assigned_to_agent_id": "agent-b",
        "context": { "finding": "walrus sighting unrelated" },
    }));

    let r = a.get("/api/context/search?q=walrus");
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body["count"],
        json!(2),
        "downstream context is recalled: {}",
        r.text
    );
    let r = a.get("/api/context/search?q=walrus&key=finding");
    assert_eq!(r.body["count"], json!(1), "{}", r.text);
    assert_eq!(r.body["results"][0]["key"], json!("finding"));
    assert_eq!(r.body["results"][0]["task_id"], json!(child));
    let r = a.get("/api/context/search?q=walrus&source=agent_observed");
    assert_eq!(r.body["count"], json!(2), "{}", r.text);
    let r = a.get("/api/context/search?q=walrus&source=human_stated");
    assert_eq!(r.body["count"], json!(0), "{}", r.text);
    let r = a.get("/api/context/search?q=walrus&limit=1");
    assert_eq!(r.body["results"].as_array().unwrap().len(), 1);
    a.get("/api/context/search?q=walrus&source=rumour")
        .assert_error(422);
}
