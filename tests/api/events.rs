//! The event log: JSON polling and the Server-Sent Events stream.

use std::io::{BufRead, BufReader};
use std::time::Duration;

use crate::helpers::{Client, TestServer};
use serde_json::{json, Value};

/// One SSE event as read off the wire.
#[derive(Debug)]
struct SseEvent {
    id: i64,
    event: String,
    data: Value,
}

/// An open event stream (blocking reader with a read timeout).
struct Stream {
    lines: Box<dyn BufRead>,
}

fn open_stream(
    server: &TestServer,
    client: &Client,
    query: &str,
    last_event_id: Option<i64>,
) -> Stream {
    let agent = ureq::AgentBuilder::new()
        .timeout_read(Duration::from_secs(10))
        .build();
    let mut req = agent
        .get(&server.url(&format!("/api/events{query}")))
        .set("Accept", "text/event-stream");
    req = match &client.auth {
        crate::helpers::Auth::Key(k) => req.set("X-Agent-Key", k),
        crate::helpers::Auth::Bearer(t) => req.set("Authorization", &format!("Bearer {t}")),
        crate::helpers::Auth::None => req,
    };
    if let Some(id) = last_event_id {
        req = req.set("Last-Event-ID", &id.to_string());
    }
    let resp = req.call().expect("open stream");
    assert_eq!(resp.status(), 200);
    assert!(resp.content_type().starts_with("text/event-stream"));
    let mut s = Stream {
        lines: Box::new(BufReader::new(resp.into_reader())),
    };
    // The stream opens with a retry hint and a comment.
    let mut first = String::new();
    s.lines.read_line(&mut first).unwrap();
    assert!(first.starts_with("retry:"), "{first}");
    s
}

impl Stream {
    /// The next event (skipping comments); panics on timeout.
    fn next(&mut self) -> SseEvent {
        let (mut id, mut event, mut data) = (None, None, None);
        loop {
            let mut line = String::new();
            let n = self.lines.read_line(&mut line).expect("read event");
            assert!(n > 0, "stream ended");
            let line = line.trim_end_matches('\n');
            if line.is_empty() {
                if let (Some(id), Some(event), Some(data)) = (id, event.clone(), data.clone()) {
                    return SseEvent { id, event, data };
                }
                continue;
            }
            if let Some(v) = line.strip_prefix("id: ") {
                id = Some(v.parse().unwrap());
            } else if let Some(v) = line.strip_prefix("event: ") {
                event = Some(v.to_string());
            } else if let Some(v) = line.strip_prefix("data: ") {
                data = Some(serde_json::from_str(v).unwrap());
            }
        }
    }
}

#[test]
fn a_subscriber_receives_events_for_tasks_created_after_it_connected() {
    let server = TestServer::start();
    let (worker, _) = server.agent("streamer", "worker");
    worker.create_task(json!({"content": "before connecting"}));
    let mut stream = open_stream(&server, &worker, "", None);

    let task = worker.create_task(json!({"content": "after connecting"}));
    let e = stream.next();
    assert_eq!(e.event, "task.created");
    assert_eq!(e.data["task"]["id"], task["id"]);
    assert_eq!(e.data["event_id"], json!(e.id));
}

#[test]
fn reconnecting_with_last_event_id_gets_exactly_the_missed_events() {
    let server = TestServer::start();
    let admin = server.admin();
    let mut stream = open_stream(&server, &admin, "", None);
    let t = admin.create_task(json!({"content": "one"}));
    let seen = stream.next();
    drop(stream);

    // Missed while disconnected: an update and two creations.
    admin.put(&format!("/api/tasks/{}", t["id"]), json!({"priority": 1}));
    admin.create_task(json!({"content": "two"}));
    admin.create_task(json!({"content": "three"}));

    let mut again = open_stream(&server, &admin, "", Some(seen.id));
    let missed: Vec<SseEvent> = (0..3).map(|_| again.next()).collect();
    let ids: Vec<i64> = missed.iter().map(|e| e.id).collect();
    assert_eq!(
        ids,
        [seen.id + 1, seen.id + 2, seen.id + 3],
        "no gap, no duplicate"
    );
    assert_eq!(missed[0].event, "task.updated");
    // And live events continue after the backlog.
    admin.create_task(json!({"content": "four"}));
    assert_eq!(again.next().id, seen.id + 4);
}

#[test]
fn an_event_source_reconnecting_to_its_since_url_resumes_after_last_event_id() {
    // A browser's EventSource('/api/events?since=0') reconnects to the same
    // URL with Last-Event-ID: the larger of the two wins, nothing is sent
    // twice (SPEC §9).
    let server = TestServer::start();
    let admin = server.admin();
    for i in 0..5 {
        admin.create_task(json!({"content": format!("event {i}")}));
    }
    let mut first = open_stream(&server, &admin, "?since=0", None);
    let seen: Vec<i64> = (0..3).map(|_| first.next().id).collect();
    drop(first);
    let mut again = open_stream(&server, &admin, "?since=0", Some(seen[2]));
    assert_eq!(again.next().id, seen[2] + 1, "resumed after Last-Event-ID");
    // And `since` wins when it is the larger.
    let mut ahead = open_stream(
        &server,
        &admin,
        &format!("?since={}", seen[2] + 1),
        Some(seen[0]),
    );
    assert_eq!(ahead.next().id, seen[2] + 2);
}

#[test]
fn streams_and_polling_only_show_events_on_tasks_the_caller_can_read() {
    let server = TestServer::start();
    let (alice, _) = server.agent("alice", "worker");
    let (bob, _) = server.agent("bob", "worker");
    let mut alice_stream = open_stream(&server, &alice, "", None);
    bob.create_task(json!({"content": "bob only"}));
    let mine = alice.create_task(json!({"content": "alice only"}));
    let e = alice_stream.next();
    assert_eq!(e.data["task"]["id"], mine["id"], "bob's event was skipped");

    let page = alice.get("/api/events");
    assert_eq!(page.status, 200);
    let events = page.body.as_array().unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["task"]["content"], "alice only");
    assert_eq!(
        server
            .admin()
            // Admins also see the agent events (SPEC §9); here, tasks.
            .get("/api/events?types=task.created")
            .body
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn polling_filters_by_type_task_and_since_and_pages_with_limit() {
    let server = TestServer::start();
    let admin = server.admin();
    let a = admin.create_task(json!({"content": "a"}));
    let b = admin.create_task(json!({"content": "b"}));
    admin.post(&format!("/api/tasks/{}/complete", a["id"]), json!({}));
    admin.post(
        &format!("/api/tasks/{}/comments", b["id"]),
        json!({"content": "hi"}),
    );

    let all = admin.get("/v1/events").body;
    let kinds: Vec<_> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].clone())
        .collect();
    assert_eq!(
        kinds,
        [
            "task.created",
            "task.created",
            "task.completed",
            "task.commented"
        ]
    );
    let ids: Vec<i64> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_id"].as_i64().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids increase: {ids:?}");

    let completed = admin
        .get("/api/events?types=task.completed,task.commented")
        .body;
    assert_eq!(completed.as_array().unwrap().len(), 2);
    let for_b = admin.get(&format!("/api/events?task_id={}", b["id"])).body;
    assert_eq!(for_b.as_array().unwrap().len(), 2);
    let since = admin
        .get(&format!("/api/events?since={}&limit=1", ids[1]))
        .body;
    assert_eq!(since.as_array().unwrap().len(), 1);
    assert_eq!(since[0]["event_id"], ids[2]);

    admin.get("/api/events?types=task.nope").assert_error(422);
    admin.get("/api/events?limit=0").assert_error(422);
    admin.get("/api/events?since=abc").assert_error(422);
    server.anonymous().get("/api/events").assert_error(401);
}

#[test]
fn events_deep_in_a_delegation_tree_reach_every_agent_upstream_and_no_one_else() {
    let server = TestServer::start();
    let (alice, _) = server.agent("alice", "worker");
    let (bob, _) = server.agent("bob", "worker");
    let (carol, _) = server.agent("carol", "worker");
    let (dave, _) = server.agent("dave", "worker");
    let (erin, _) = server.agent("erin", "worker");
    let root = alice.create_task(json!({"content": "root"}))["id"].clone();
    let child = alice.post(
        &format!("/api/tasks/{root}/delegate"),
        json!({"content": "child", "assigned_to_agent_id": "bob"}),
    );
    assert_eq!(child.status, 201, "{}", child.text);
    let child = child.body["id"].clone();
    let grandchild = bob.post(
        &format!("/api/tasks/{child}/delegate"),
        json!({"content": "grandchild", "assigned_to_agent_id": "carol"}),
    );
    assert_eq!(grandchild.status, 201, "{}", grandchild.text);
    let grandchild = grandchild.body["id"].clone();
    // Carol hands the grandchild on to Erin: Carol still follows it.
    let handoff = carol.post(
        &format!("/api/tasks/{grandchild}/delegate"),
        json!({"agent_id": "erin"}),
    );
    assert_eq!(handoff.status, 200, "{}", handoff.text);
    let done = erin.post(&format!("/api/tasks/{grandchild}/complete"), json!({}));
    assert_eq!(done.status, 200, "{}", done.text);

    let completed_seen_by = |client: &crate::helpers::Client| -> bool {
        let page = client.get(&format!(
            "/api/events?types=task.completed&task_id={grandchild}"
        ));
        assert_eq!(page.status, 200, "{}", page.text);
        !page.body.as_array().unwrap().is_empty()
    };
    for (name, client) in [
        ("alice", &alice),
        ("bob", &bob),
        ("carol", &carol),
        ("erin", &erin),
    ] {
        assert!(
            completed_seen_by(client),
            "{name} is upstream of the grandchild"
        );
    }
    assert!(!completed_seen_by(&dave), "dave has nothing to do with it");
}

#[test]
fn a_stream_over_its_max_rate_sends_one_resync_instead_of_the_rest() {
    let server = TestServer::start();
    let admin = server.admin();
    let mut stream = open_stream(&server, &admin, "?max_rate=3", None);
    // One write creating many tasks at once would be one commit; separate
    // creates are separate commits, all inside the first second.
    let mut ids = Vec::new();
    for i in 0..12 {
        let t = admin.create_task(json!({"content": format!("burst {i}")}));
        ids.push(t["id"].as_i64().unwrap());
    }
    let mut task_events = 0;
    let resync = loop {
        let e = stream.next();
        match e.event.as_str() {
            "task.created" => task_events += 1,
            "resync" => break e,
            other => panic!("unexpected event {other}"),
        }
    };
    assert!(
        task_events <= 3,
        "{task_events} events sent past max_rate 3"
    );
    // The resync's id is the last event skipped, so a reconnect with
    // Last-Event-ID resumes after everything the burst created.
    assert_eq!(resync.data["last_event_id"], json!(resync.id));
    let log = admin.get("/api/events?since=0&limit=1000").body;
    let newest = log.as_array().unwrap().last().unwrap()["event_id"].clone();
    assert_eq!(json!(resync.id), newest);
    let polled = admin.get(&format!("/api/events?since={}", resync.id));
    assert_eq!(polled.body, json!([]));

    // After the quiet second the stream sends events again.
    let next = admin.create_task(json!({"content": "after the burst"}));
    let e = stream.next();
    assert_eq!(e.event, "task.created");
    assert_eq!(e.data["task"]["id"], next["id"]);
}

#[test]
fn max_rate_outside_its_range_is_a_422() {
    let server = TestServer::start();
    let admin = server.admin();
    for bad in ["0", "10001", "fast"] {
        let r = admin.raw(
            "GET",
            &format!("/api/events?max_rate={bad}"),
            None,
            &[("Accept", "text/event-stream")],
        );
        assert!(r.status == 422 || r.status == 400, "{bad}: {}", r.text);
        r.assert_error(r.status);
    }
}
