//! Webhooks over real HTTP, delivered to a real local receiver.

use std::time::{Duration, Instant};

use crate::helpers::receiver::{Receiver, Reply};
use crate::helpers::{id_of, wait_until, TestServer};
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

const WAIT: Duration = Duration::from_secs(20);

/// The configuration file of a server that may call loopback receivers,
/// with the given `[webhooks]` settings.
fn webhook_config(webhooks: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("delega.toml"),
        format!("allow_private_webhooks = true\n[webhooks]\n{webhooks}"),
    )
    .unwrap();
    dir
}

fn config_env(dir: &tempfile::TempDir) -> String {
    dir.path()
        .join("delega.toml")
        .to_string_lossy()
        .into_owned()
}

/// A server (in this process) that may call loopback receivers.
fn server_with(webhooks: &str) -> (TestServer, tempfile::TempDir) {
    let dir = webhook_config(webhooks);
    let server = TestServer::start_with(&[("DELEGA_CONFIG", &config_env(&dir))]);
    (server, dir)
}

/// Retries within about two seconds (the default schedule spans a day).
const FAST_RETRIES: &str = "retry_schedule_seconds = [0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6]\n";

fn fast_server() -> (TestServer, tempfile::TempDir) {
    server_with(FAST_RETRIES)
}

fn hmac_hex(secret: &str, message: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(message);
    hex::encode(mac.finalize().into_bytes())
}

fn register(server: &TestServer, body: Value) -> Value {
    let r = server.admin().post("/api/webhooks", body);
    assert_eq!(r.status, 201, "{}", r.text);
    r.body
}

fn attempts(server: &TestServer, hook: i64) -> Vec<Value> {
    let r = server
        .admin()
        .get(&format!("/api/webhooks/{hook}/deliveries"));
    assert_eq!(r.status, 200, "{}", r.text);
    r.body.as_array().unwrap().clone()
}

#[test]
fn v1_deliveries_are_signed_over_the_raw_body() {
    // Arrange
    let (server, _cfg) = fast_server();
    let rx = Receiver::start();
    // Through /v1 (the tutorial's dialect) a hook is signed v1 by default.
    let r = server.admin().post(
        "/v1/webhooks",
        json!({"url": rx.url, "events": ["task.created"], "secret": "s3cret"}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["signature_version"], "v1");
    // Act
    let task = server.admin().create_task(json!({"content": "signed"}));
    let got = rx.wait_for(1, WAIT);
    // Assert
    assert_eq!(got.len(), 1);
    let d = &got[0];
    let expected = format!("sha256={}", hmac_hex("s3cret", &d.body));
    assert_eq!(d.header("X-Delega-Signature"), Some(expected.as_str()));
    assert_eq!(d.header("X-Delega-Event"), Some("task.created"));
    assert_eq!(d.header("Content-Type"), Some("application/json"));
    assert!(d.header("User-Agent").unwrap().starts_with("delega/"));
    assert!(d.header("X-Delega-Delivery").is_some());
    assert!(d.header("X-Delega-Timestamp").unwrap().ends_with('Z'));
    let payload = d.json();
    assert_eq!(payload["event"], "task.created");
    assert_eq!(payload["task"]["id"], task["id"]);
    assert!(payload["event_id"].as_i64().unwrap() > 0);
    assert!(payload["task"].get("metadata").is_some());
    assert!(
        payload["agent"].is_null(),
        "the project token acts as nobody"
    );
}

#[test]
fn v2_deliveries_are_signed_over_timestamp_dot_body() {
    let (server, _cfg) = fast_server();
    let rx = Receiver::start();
    // Created first: a project-wide hook also receives agent events.
    let (worker, _) = server.agent("signer", "worker");
    register(
        &server,
        json!({"url": rx.url, "events": ["*"], "secret": "k2", "signature_version": "v2"}),
    );
    let task = worker.create_task(json!({"content": "v2"}));
    worker.post(&format!("/api/tasks/{}/complete", task["id"]), json!({}));
    let got = rx.wait_for(2, WAIT);
    assert_eq!(got.len(), 2);
    for d in &got {
        let ts = d.header("X-Delega-Timestamp").unwrap();
        let mut msg = ts.as_bytes().to_vec();
        msg.push(b'.');
        msg.extend_from_slice(&d.body);
        assert_eq!(
            d.header("X-Delega-Signature").unwrap(),
            format!("sha256={}", hmac_hex("k2", &msg))
        );
    }
    let completed = got
        .iter()
        .find(|d| d.json()["event"] == "task.completed")
        .unwrap()
        .json();
    assert_eq!(completed["task"]["completed_by"], "signer");
    assert_eq!(completed["agent"]["name"], "signer");
}

#[test]
fn a_generated_secret_is_returned_once_and_never_listed() {
    let (server, _cfg) = fast_server();
    let rx = Receiver::start();
    let hook = register(&server, json!({"url": rx.url, "events": ["*"]}));
    let secret = hook["secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_"));
    let list = server.admin().get("/api/webhooks");
    assert!(!list.text.contains(secret));
    let one = server.admin().get(&format!("/api/webhooks/{}", hook["id"]));
    assert!(one.body.get("secret").is_none());
    // The generated secret signs deliveries (v2, the /api default).
    server.admin().create_task(json!({"content": "x"}));
    let d = &rx.wait_for(1, WAIT)[0];
    let mut msg = d.header("X-Delega-Timestamp").unwrap().as_bytes().to_vec();
    msg.push(b'.');
    msg.extend_from_slice(&d.body);
    assert_eq!(
        d.header("X-Delega-Signature").unwrap(),
        format!("sha256={}", hmac_hex(secret, &msg))
    );
}

#[test]
fn failed_deliveries_are_retried_until_one_succeeds_and_every_attempt_is_logged() {
    let (server, _cfg) = fast_server();
    let rx = Receiver::start();
    rx.script(&[Reply::Status(500), Reply::Status(500), Reply::Status(200)]);
    let hook = register(&server, json!({"url": rx.url, "events": ["task.created"]}));
    let id = hook["id"].as_i64().unwrap();
    server.admin().create_task(json!({"content": "retry me"}));

    let got = rx.wait_for(3, WAIT);
    assert_eq!(got.len(), 3);
    let ids: Vec<_> = got.iter().map(|d| d.json()["event_id"].clone()).collect();
    assert!(ids.iter().all(|i| *i == ids[0]), "same event each time");
    wait_until("three logged attempts", WAIT, || {
        attempts(&server, id).len() == 3
    });
    let mut log = attempts(&server, id);
    log.sort_by_key(|a| a["attempt"].as_i64());
    let codes: Vec<_> = log
        .iter()
        .map(|a| a["status_code"].as_i64().unwrap())
        .collect();
    assert_eq!(codes, [500, 500, 200]);
    let success: Vec<_> = log
        .iter()
        .map(|a| a["success"].as_bool().unwrap())
        .collect();
    assert_eq!(success, [false, false, true]);
    assert_eq!(log[2]["event"], "task.created");
    assert!(log[2]["payload"]["task"].is_object());
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        rx.received().len(),
        3,
        "delivered once successfully, not again"
    );
}

#[test]
fn a_hook_failing_for_disable_after_hours_is_disabled_and_reenabling_resets_the_clock() {
    // 0.0005 h = 1.8 s of failures without a success.
    let (server, _cfg) = server_with(
        "retry_schedule_seconds = [0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05, \
         0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05, \
         0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05, \
         0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05]\n\
         disable_after_hours = 0.0005\ndispatcher_threads = 1\n",
    );
    let rx = Receiver::start();
    rx.set_default(Reply::Status(503));
    let hook = register(&server, json!({"url": rx.url, "events": ["task.created"]}));
    let id = hook["id"].as_i64().unwrap();
    let started = Instant::now();
    server.admin().create_task(json!({"content": "a"}));
    server.admin().create_task(json!({"content": "b"}));

    let path = format!("/api/webhooks/{id}");
    wait_until("the hook to be disabled", WAIT, || {
        server.admin().get(&path).body["active"] == false
    });
    // Time decides, not the count: many more than ten attempts failed
    // before the clock ran out.
    assert!(started.elapsed() >= Duration::from_millis(1800));
    let h = server.admin().get(&path).body;
    assert!(h["consecutive_failures"].as_i64().unwrap() > 10, "{h}");
    assert!(h["failing_since"].is_string(), "{h}");
    assert!(
        h["disabled_reason"]
            .as_str()
            .unwrap()
            .contains("without a success"),
        "{h}"
    );

    // Re-enable with a healthy receiver: the clock resets, waiting
    // deliveries go out.
    rx.set_default(Reply::Status(200));
    let r = server.admin().put(&path, json!({"active": true}));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["consecutive_failures"], 0);
    assert!(r.body["failing_since"].is_null());
    assert_eq!(r.body["active"], true);
    wait_until("remaining delivery", WAIT, || {
        attempts(&server, id).iter().any(|a| a["success"] == true)
    });
}

#[test]
fn a_receiver_down_while_five_events_are_in_flight_keeps_its_hook_and_gets_all_five() {
    // Retries every 0.2 s: a count of attempts would have disabled the
    // hook many times over in 20 s; the default of 120 hours does not.
    let schedule: Vec<String> = (0..200).map(|_| "0.2".to_string()).collect();
    let (server, _cfg) = server_with(&format!(
        "retry_schedule_seconds = [{}]\n",
        schedule.join(", ")
    ));
    let rx = Receiver::start();
    rx.set_default(Reply::Drop);
    let hook = id_of(&register(
        &server,
        json!({"url": rx.url, "events": ["task.created"]}),
    ));
    let ids: Vec<i64> = (0..5)
        .map(|i| {
            id_of(
                &server
                    .admin()
                    .create_task(json!({"content": format!("in flight {i}")})),
            )
        })
        .collect();
    std::thread::sleep(Duration::from_secs(20));
    let path = format!("/api/webhooks/{hook}");
    let during = server.admin().get(&path).body;
    assert_eq!(during["active"], true, "{during}");
    assert!(
        during["consecutive_failures"].as_i64().unwrap() > 10,
        "{during}"
    );

    rx.set_default(Reply::Status(200));
    wait_until("all five delivered", WAIT, || {
        let got: std::collections::HashSet<i64> = rx
            .received()
            .iter()
            .filter_map(|d| serde_json::from_slice::<Value>(&d.body).ok())
            .filter_map(|p| p["task"]["id"].as_i64())
            .collect();
        ids.iter().all(|i| got.contains(i))
    });
    wait_until("the success recorded", WAIT, || {
        server.admin().get(&path).body["consecutive_failures"] == 0
    });
    assert_eq!(server.admin().get(&path).body["active"], true);
}

#[test]
fn recover_resends_exactly_the_missed_events_in_order() {
    let (server, _cfg) = fast_server();
    let rx = Receiver::start();
    let (worker, _) = server.agent("outsider", "worker");
    let hook = id_of(&register(
        &server,
        json!({"url": rx.url, "events": ["task.created", "task.completed"]}),
    ));
    let admin = server.admin();
    admin.create_task(json!({"content": "before"}));
    rx.wait_for(1, WAIT);
    let path = format!("/api/webhooks/{hook}");
    assert_eq!(admin.put(&path, json!({"active": false})).status, 200);
    let since = admin
        .get("/api/events?limit=1000")
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["event_id"].as_i64())
        .max()
        .unwrap();
    let a = id_of(&admin.create_task(json!({"content": "missed 1"})));
    admin.put(&format!("/api/tasks/{a}"), json!({"priority": 1})); // task.updated: not its kind
    let b = id_of(&worker.create_task(json!({"content": "missed 2"})));
    admin.post(&format!("/api/tasks/{a}/complete"), json!({}));
    assert_eq!(admin.put(&path, json!({"active": true})).status, 200);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(rx.received().len(), 1, "nothing sent while it was off");

    let r = admin.post(&format!("{path}/recover"), json!({ "since": since }));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["queued"], 3, "{}", r.text);
    assert_eq!(r.body["more"], false);
    rx.wait_for(4, WAIT);
    std::thread::sleep(Duration::from_millis(300));
    // Queued in order: the copies' delivery ids follow the events'
    // order (parallel dispatcher threads may deliver them in any order).
    let mut copies = rx.received()[1..].to_vec();
    copies.sort_by_key(|d| {
        d.header("X-Delega-Delivery")
            .unwrap()
            .parse::<i64>()
            .unwrap()
    });
    let got: Vec<(String, i64)> = copies
        .iter()
        .map(|d| {
            let p = d.json();
            (
                p["event"].as_str().unwrap().to_string(),
                p["task"]["id"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(
        got,
        vec![
            ("task.created".to_string(), a),
            ("task.created".to_string(), b),
            ("task.completed".to_string(), a),
        ]
    );
    // A time works too; and bad input is named.
    let r = admin.post(
        &format!("{path}/recover"),
        json!({"since": "2000-01-01T00:00:00Z"}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["queued"], 4, "everything since then: {}", r.text);
    for bad in [
        json!({}),
        json!({"since": "yesterday"}),
        json!({"since": -1}),
        json!({"since": [1]}),
    ] {
        let r = admin.post(&format!("{path}/recover"), bad.clone());
        r.assert_error(422);
        assert_eq!(r.body["detail"]["field"], "since", "{bad}: {}", r.text);
    }
    admin
        .post("/api/webhooks/9999/recover", json!({"since": 0}))
        .assert_error(404);
}

#[test]
fn a_410_answer_disables_the_hook() {
    let (server, _cfg) = fast_server();
    let rx = Receiver::start();
    rx.set_default(Reply::Status(410));
    let hook = register(&server, json!({"url": rx.url, "events": ["*"]}));
    server.admin().create_task(json!({"content": "gone"}));
    let path = format!("/api/webhooks/{}", hook["id"]);
    wait_until("disable on 410", WAIT, || {
        server.admin().get(&path).body["active"] == false
    });
    assert!(server.admin().get(&path).body["disabled_reason"]
        .as_str()
        .unwrap()
        .contains("410"));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(rx.received().len(), 1, "no retries after 410");
}

#[test]
fn redeliver_sends_a_delivered_event_again_and_test_sends_a_ping() {
    let (server, _cfg) = fast_server();
    let rx = Receiver::start();
    let hook = register(&server, json!({"url": rx.url, "events": ["task.created"]}));
    let id = hook["id"].as_i64().unwrap();
    server.admin().create_task(json!({"content": "again"}));
    rx.wait_for(1, WAIT);
    wait_until("logged", WAIT, || attempts(&server, id).len() == 1);
    let did = attempts(&server, id)[0]["id"].as_i64().unwrap();

    let r = server.admin().post(
        &format!("/api/webhooks/{id}/deliveries/{did}/redeliver"),
        json!({}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let got = rx.wait_for(2, WAIT);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].json()["event_id"], got[1].json()["event_id"]);

    let r = server
        .admin()
        .post(&format!("/api/webhooks/{id}/test"), json!({}));
    assert_eq!(r.status, 200, "{}", r.text);
    let got = rx.wait_for(3, WAIT);
    assert_eq!(got[2].header("X-Delega-Event"), Some("webhook.test"));

    let missing = server.admin().post(
        &format!("/api/webhooks/{id}/deliveries/99999/redeliver"),
        json!({}),
    );
    missing.assert_error(404);
}

#[test]
fn deliveries_committed_while_the_receiver_is_down_survive_a_kill_and_restart() {
    let schedule: Vec<String> = (0..100).map(|_| "0.2".to_string()).collect();
    let cfg = webhook_config(&format!(
        "retry_schedule_seconds = [{}]\n",
        schedule.join(", ")
    ));
    // The real binary: SIGKILL, no graceful shutdown.
    let mut server = TestServer::process_with(&[("DELEGA_CONFIG", &config_env(&cfg))]);
    let rx = Receiver::start();
    rx.set_default(Reply::Status(503));
    register(&server, json!({"url": rx.url, "events": ["task.created"]}));
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            server
                .admin()
                .create_task(json!({"content": format!("durable {i}")}))["id"]
                .clone(),
        );
    }
    server.kill();
    rx.set_default(Reply::Status(200));
    server.restart();

    wait_until("every task delivered", WAIT, || {
        let ok: std::collections::HashSet<String> = rx
            .received()
            .iter()
            .filter(|d| d.json()["event"] == "task.created")
            .map(|d| d.json()["task"]["id"].to_string())
            .collect();
        ids.iter().all(|i| ok.contains(&i.to_string()))
    });
}

#[test]
fn a_workers_hook_only_receives_events_on_tasks_it_can_read() {
    let (server, _cfg) = fast_server();
    let rx = Receiver::start();
    let (alice, _) = server.agent("alice", "worker");
    let (bob, _) = server.agent("bob", "worker");
    let r = alice.post(
        "/api/webhooks",
        json!({"url": rx.url, "events": ["task.created"]}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["scope"], "agent");

    bob.create_task(json!({"content": "bob's secret plan"}));
    let mine = alice.create_task(json!({"content": "alice's task"}));
    rx.wait_for(1, WAIT);
    std::thread::sleep(Duration::from_millis(500));
    let got = rx.received();
    assert_eq!(got.len(), 1, "only alice's task");
    assert_eq!(got[0].json()["task"]["id"], mine["id"]);
    // Bob cannot see alice's hook.
    bob.get(&format!("/api/webhooks/{}", r.body["id"]))
        .assert_error(404);
    assert_eq!(bob.get("/api/webhooks").body, json!([]));
}

#[test]
fn a_hanging_receiver_times_out_and_a_huge_answer_is_read_only_in_part() {
    let (server, _cfg) = server_with("timeout_seconds = 1\nretry_schedule_seconds = [60]\n");
    let slow = Receiver::start();
    slow.set_default(Reply::Hang(Duration::from_secs(3)));
    let big = Receiver::start();
    big.set_default(Reply::Big(10 * 1024 * 1024));
    let h_slow = register(
        &server,
        json!({"url": slow.url, "events": ["task.created"]}),
    )["id"]
        .as_i64()
        .unwrap();
    let h_big = register(&server, json!({"url": big.url, "events": ["task.created"]}))["id"]
        .as_i64()
        .unwrap();
    server.admin().create_task(json!({"content": "x"}));

    wait_until("timeout logged", WAIT, || {
        attempts(&server, h_slow).len() == 1
    });
    let a = &attempts(&server, h_slow)[0];
    assert_eq!(a["success"], false);
    assert!(a["status_code"].is_null());
    assert!(
        a["error"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("timed out"),
        "{a}"
    );

    wait_until("big answer logged", WAIT, || {
        attempts(&server, h_big).len() == 1
    });
    let a = &attempts(&server, h_big)[0];
    assert_eq!(a["success"], true, "{a}");
    assert_eq!(a["status_code"], 200);
    // The server is still healthy.
    assert_eq!(server.anonymous().get("/health").status, 200);
}

#[test]
fn bad_webhook_registrations_are_refused_with_clear_errors() {
    let server = TestServer::start(); // private targets not allowed here
    let long_secret = "s".repeat(257);
    let cases = [
        (json!({"url": "not a url", "events": ["*"]}), 422, "url"),
        (
            json!({"url": "ftp://example.com/x", "events": ["*"]}),
            422,
            "url",
        ),
        (
            json!({"url": "http://user:pw@example.com/x", "events": ["*"]}),
            422,
            "url",
        ),
        (
            json!({"url": "http://127.0.0.1:9/x", "events": ["*"]}),
            422,
            "url",
        ),
        (
            json!({"url": "http://localhost:9/x", "events": ["*"]}),
            422,
            "url",
        ),
        (
            json!({"url": "http://169.254.169.254/latest", "events": ["*"]}),
            422,
            "url",
        ),
        (
            json!({"url": "http://10.0.0.1/x", "events": ["*"]}),
            422,
            "url",
        ),
        (
            json!({"url": "http://[::1]:9/x", "events": ["*"]}),
            422,
            "url",
        ),
        (
            json!({"url": "https://example.com/x", "events": ["task.exploded"]}),
            422,
            "events",
        ),
        (
            json!({"url": "https://example.com/x", "events": []}),
            422,
            "events",
        ),
        (
            json!({"url": "https://example.com/x", "events": ["*"], "secret": long_secret}),
            422,
            "secret",
        ),
        (
            json!({"url": "https://example.com/x", "events": ["*"], "signature_version": "v3"}),
            422,
            "signature_version",
        ),
        (
            json!({"url": "https://example.com/x", "events": "task.created"}),
            422,
            "events",
        ),
    ];
    for (body, status, field) in cases {
        let r = server.admin().post("/api/webhooks", body.clone());
        r.assert_error(status);
        assert_eq!(r.body["detail"]["field"], field, "case {body}: {}", r.text);
    }
    assert_eq!(
        server.admin().get("/api/webhooks").body,
        json!([]),
        "nothing stored"
    );
}

#[test]
fn a_hook_receives_events_from_its_registration_on_and_not_while_it_was_off() {
    let (server, _cfg) = fast_server();
    let admin = server.admin();
    admin.create_task(json!({"content": "before the hook"}));
    let rx = Receiver::start();
    let hook = id_of(&register(
        &server,
        json!({"url": rx.url, "events": ["task.created"]}),
    ));
    admin.create_task(json!({"content": "while on"}));
    rx.wait_for(1, WAIT);

    let off = admin.put(&format!("/api/webhooks/{hook}"), json!({"active": false}));
    assert_eq!(off.status, 200, "{}", off.text);
    admin.create_task(json!({"content": "while off"}));
    let on = admin.put(&format!("/api/webhooks/{hook}"), json!({"active": true}));
    assert_eq!(on.status, 200, "{}", on.text);
    admin.create_task(json!({"content": "on again"}));
    rx.wait_for(2, WAIT);
    // Give a wrongly fed event time to arrive before looking.
    std::thread::sleep(Duration::from_millis(300));

    let contents: Vec<String> = rx
        .received()
        .iter()
        .map(|d| {
            d.json()["task"]["content"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    assert_eq!(contents, vec!["while on", "on again"]);
    // Each delivery is named by its event, and the log shows both.
    for d in rx.received() {
        assert_eq!(
            d.header("X-Delega-Delivery").map(str::to_string),
            Some(d.json()["event_id"].to_string())
        );
    }
    let log = attempts(&server, hook);
    assert_eq!(log.len(), 2);
    assert!(log
        .iter()
        .all(|a| a["state"] == "delivered" && a["success"] == true));
}

#[test]
fn many_events_to_several_hooks_arrive_exactly_once_each_in_a_burst() {
    let (server, _cfg) = fast_server();
    let everything = Receiver::start();
    let completions = Receiver::start();
    register(&server, json!({"url": everything.url, "events": ["*"]}));
    register(
        &server,
        json!({"url": completions.url, "events": ["task.completed"]}),
    );
    let admin = server.admin();
    let ids: Vec<i64> = (0..60)
        .map(|i| id_of(&admin.create_task(json!({"content": format!("burst {i}")}))))
        .collect();
    for id in ids.iter().step_by(3) {
        assert_eq!(
            admin
                .post(&format!("/api/tasks/{id}/complete"), json!({}))
                .status,
            200
        );
    }
    let all = everything.wait_for(80, WAIT);
    let done = completions.wait_for(20, WAIT);
    std::thread::sleep(Duration::from_millis(300));
    let ids_of = |rx: &Receiver| -> Vec<i64> {
        let mut v: Vec<i64> = rx
            .received()
            .iter()
            .map(|d| d.json()["event_id"].as_i64().unwrap())
            .collect();
        v.sort_unstable();
        v
    };
    assert_eq!(all.len(), 80);
    assert_eq!(done.len(), 20);
    let (all_ids, done_ids) = (ids_of(&everything), ids_of(&completions));
    assert_eq!(all_ids.len(), 80, "no duplicates to the catch-all hook");
    assert!(all_ids.windows(2).all(|w| w[0] < w[1]), "no duplicates");
    assert_eq!(done_ids.len(), 20);
    assert!(completions
        .received()
        .iter()
        .all(|d| d.json()["event"] == "task.completed"));
    assert!(done_ids.iter().all(|id| all_ids.contains(id)));
}

/// The version-1 schema's webhook tables as a server of that version left
/// them: event 1 pending after a failed attempt, event 2 delivered and then
/// queued again by a redelivery (a second row), event 3 queued and never
/// tried; attempt ids had reached 50 (some deleted since).
fn version_one_database(path: &std::path::Path, receiver: &str) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(include_str!("../../schema.sql"))
        .unwrap();
    conn.pragma_update(None, "user_version", 1).unwrap();
    let at = "2026-01-01T00:00:00.000Z";
    conn.execute(
        "INSERT INTO webhooks (id, url, events, secret, created_at, updated_at) \
         VALUES (1, ?1, '[\"task.created\"]', 's3cret', ?2, ?2)",
        rusqlite::params![receiver, at],
    )
    .unwrap();
    for id in [1, 2, 3] {
        conn.execute(
            "INSERT INTO events (id, kind, task_id, audience, payload, created_at) \
             VALUES (?1, 'task.created', NULL, ',', ?2, ?3)",
            rusqlite::params![
                id,
                json!({"event": "task.created", "event_id": id, "task": {"id": id}}).to_string(),
                at
            ],
        )
        .unwrap();
    }
    conn.execute_batch(&format!(
        "INSERT INTO webhook_deliveries (id, webhook_id, event_id, state, attempts, \
           next_attempt_at, created_at, updated_at) VALUES \
           (7, 1, 1, 'pending', 1, '{at}', '{at}', '{at}'), \
           (8, 1, 2, 'delivered', 1, '{at}', '{at}', '{at}'), \
           (9, 1, 3, 'pending', 0, '{at}', '{at}', '{at}'), \
           (10, 1, 2, 'pending', 0, '{at}', '{at}', '{at}'); \
         INSERT INTO webhook_attempts (id, delivery_id, webhook_id, attempt, status_code, \
           success, error, duration_ms, created_at) VALUES \
           (10, 7, 1, 1, 503, 0, 'receiver answered 503', 3, '{at}'), \
           (11, 8, 1, 1, 200, 1, NULL, 2, '{at}'); \
         UPDATE sqlite_sequence SET seq = 50 WHERE name = 'webhook_attempts';"
    ))
    .unwrap();
}

#[test]
fn a_version_one_database_keeps_its_pending_deliveries_and_attempt_log() {
    let rx = Receiver::start();
    let url = rx.url.clone();
    let server = TestServer::start_with_db(&[("DELEGA_ALLOW_PRIVATE_WEBHOOKS", "true")], |p| {
        version_one_database(p, &url)
    });
    // What was pending goes out, once each; what was delivered is not
    // repeated unless a redelivery asked for it.
    rx.wait_for(3, WAIT);
    let task = server
        .admin()
        .create_task(json!({"content": "after the upgrade"}));
    rx.wait_for(4, WAIT);
    std::thread::sleep(Duration::from_millis(500));
    let received = rx.received();
    let mut events: Vec<i64> = received
        .iter()
        .map(|d| d.json()["event_id"].as_i64().unwrap())
        .collect();
    events.sort_unstable();
    let new_event = events[3];
    assert_eq!(&events[..3], &[1, 2, 3], "{events:?}");
    assert_eq!(events.len(), 4, "nothing is sent twice: {events:?}");
    assert!(received
        .iter()
        .any(|d| d.json()["task"]["id"] == task["id"]));

    let log = attempts(&server, 1);
    let ids: Vec<i64> = log.iter().map(|a| a["id"].as_i64().unwrap()).collect();
    assert_eq!(log.len(), 6, "two old attempts and four new: {log:?}");
    assert_eq!(&ids[4..], &[11, 10], "the old attempts are kept");
    assert!(
        ids[..4].iter().all(|id| *id > 50),
        "ids are not reused: {ids:?}"
    );
    let first = log.iter().find(|a| a["id"] == 10).unwrap();
    assert_eq!(first["event_id"], 1);
    assert_eq!(first["success"], false);
    assert_eq!(first["state"], "delivered", "its retry succeeded");
    let retry = log
        .iter()
        .find(|a| a["event_id"] == 1 && a["success"] == true)
        .unwrap();
    assert_eq!(retry["attempt"], 2);
    assert!(log
        .iter()
        .any(|a| a["event_id"] == new_event && a["attempt"] == 1));
}

#[test]
fn a_ping_to_a_disabled_hook_goes_out_once_it_is_enabled_again() {
    let (server, _cfg) = fast_server();
    let rx = Receiver::start();
    let hook = id_of(&register(
        &server,
        json!({"url": rx.url, "events": ["task.created"]}),
    ));
    let admin = server.admin();
    let off = admin.put(&format!("/api/webhooks/{hook}"), json!({"active": false}));
    assert_eq!(off.status, 200, "{}", off.text);
    let ping = admin.post(&format!("/api/webhooks/{hook}/test"), json!({}));
    assert_eq!(ping.status, 200, "{}", ping.text);
    std::thread::sleep(Duration::from_millis(300));
    assert!(rx.received().is_empty(), "a disabled hook gets nothing");

    let on = admin.put(&format!("/api/webhooks/{hook}"), json!({"active": true}));
    assert_eq!(on.status, 200, "{}", on.text);
    let got = rx.wait_for(1, WAIT);
    assert_eq!(got[0].header("X-Delega-Event"), Some("webhook.test"));
    assert_eq!(
        got[0].header("X-Delega-Delivery").map(str::to_string),
        Some(ping.body["delivery_id"].to_string())
    );
}

#[test]
fn deleting_a_hook_while_it_delivers_loses_nothing_for_the_others() {
    let (server, _cfg) = fast_server();
    // Both answer slowly, so attempts of the two hooks finish together and
    // are recorded in the same batches.
    let slow = Receiver::start();
    slow.set_default(Reply::Hang(Duration::from_millis(400)));
    let fast = Receiver::start();
    fast.set_default(Reply::Hang(Duration::from_millis(400)));
    let doomed = id_of(&register(
        &server,
        json!({"url": slow.url, "events": ["task.created"]}),
    ));
    let kept = id_of(&register(
        &server,
        json!({"url": fast.url, "events": ["task.created"]}),
    ));
    let admin = server.admin();
    for i in 0..6 {
        admin.create_task(json!({"content": format!("while deleting {i}")}));
    }
    // The slow hook's deliveries are in flight when it goes.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(admin.delete(&format!("/api/webhooks/{doomed}")).status, 200);
    for i in 6..10 {
        admin.create_task(json!({"content": format!("while deleting {i}")}));
    }
    fast.wait_for(10, WAIT);
    std::thread::sleep(Duration::from_millis(2000));

    let mut events: Vec<i64> = fast
        .received()
        .iter()
        .map(|d| d.json()["event_id"].as_i64().unwrap())
        .collect();
    events.sort_unstable();
    events.dedup();
    assert_eq!(fast.received().len(), 10, "each event once: {events:?}");
    assert_eq!(events.len(), 10);
    let log = attempts(&server, kept);
    assert_eq!(log.len(), 10, "every attempt of the kept hook is logged");
    assert_eq!(
        server
            .admin()
            .get(&format!("/api/webhooks/{doomed}/deliveries"))
            .status,
        404
    );
}

#[test]
fn defaults_follow_the_dialect_and_the_sdk() {
    let (server, _cfg) = fast_server();
    let admin = server.admin();
    // /api (the SDK): v2, every event, a whsec_ secret of 32 random bytes.
    let r = admin.post("/api/webhooks", json!({"url": "http://127.0.0.1:9/a"}));
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["signature_version"], "v2");
    assert_eq!(r.body["events"], json!(["*"]));
    let secret = r.body["secret"].as_str().unwrap();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    assert_eq!(decoded.len(), 32);
    // /v1 (the tutorial): v1.
    let r = admin.post(
        "/v1/webhooks",
        json!({"url": "http://127.0.0.1:9/b", "events": ["task.created"]}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["signature_version"], "v1");
    // Stated explicitly, either way.
    let r = admin.post(
        "/v1/webhooks",
        json!({"url": "http://127.0.0.1:9/c", "signature_version": "v2"}),
    );
    assert_eq!(r.body["signature_version"], "v2");
}

/// `webhook-signature` as the Standard Webhooks specification computes it.
fn standard_signature(secret: &str, id: &str, ts: &str, body: &[u8]) -> String {
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(body);
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    )
}

#[test]
fn every_delivery_carries_the_standard_webhooks_headers_and_retries_keep_the_id() {
    let (server, _cfg) = fast_server();
    let rx = Receiver::start();
    rx.script(&[Reply::Status(500)]);
    let hook = register(&server, json!({"url": rx.url, "events": ["task.created"]}));
    let secret = hook["secret"].as_str().unwrap().to_string();
    server.admin().create_task(json!({"content": "standard"}));
    let got = rx.wait_for(2, WAIT);
    assert_eq!(got.len(), 2);
    for d in &got {
        let id = d.header("webhook-id").unwrap();
        let ts = d.header("webhook-timestamp").unwrap();
        let unix: i64 = ts.parse().unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        assert!((now - unix).abs() < 60, "{ts}");
        assert_eq!(
            d.header("webhook-signature").unwrap(),
            standard_signature(&secret, id, ts, &d.body)
        );
        assert_eq!(Some(id), d.header("X-Delega-Delivery"));
        // Ours too (v2: the default under /api).
        let mut msg = d.header("X-Delega-Timestamp").unwrap().as_bytes().to_vec();
        msg.push(b'.');
        msg.extend_from_slice(&d.body);
        assert_eq!(
            d.header("X-Delega-Signature").unwrap(),
            format!("sha256={}", hmac_hex(&secret, &msg))
        );
    }
    assert_eq!(
        got[0].header("webhook-id"),
        got[1].header("webhook-id"),
        "a retry keeps its id"
    );
}

#[test]
fn a_redirect_is_a_failed_attempt_that_names_the_status_and_the_location() {
    let (server, _cfg) = server_with("retry_schedule_seconds = [60]\n");
    let rx = Receiver::start();
    rx.set_default(Reply::Redirect(302, "https://elsewhere.example/hook"));
    let id = id_of(&register(
        &server,
        json!({"url": rx.url, "events": ["task.created"]}),
    ));
    server.admin().create_task(json!({"content": "moved"}));
    wait_until("the attempt logged", WAIT, || {
        attempts(&server, id).len() == 1
    });
    let a = &attempts(&server, id)[0];
    assert_eq!(a["success"], false);
    assert_eq!(a["status_code"], 302);
    let error = a["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("302") && error.contains("https://elsewhere.example/hook"),
        "{a}"
    );
    assert_eq!(rx.received().len(), 1, "the redirect is not followed");
}

#[test]
fn redeliver_resends_exactly_the_log_row_named_never_an_event_of_that_number() {
    let (server, _cfg) = fast_server();
    let rx = Receiver::start();
    let admin = server.admin();
    let hook = id_of(&register(
        &server,
        json!({"url": rx.url, "events": ["task.completed"]}),
    ));
    // Events 1.. are creations the hook does not want; its first log row
    // is about a completion with a higher event id.
    let a = id_of(&admin.create_task(json!({"content": "task A"})));
    let b = id_of(&admin.create_task(json!({"content": "task B"})));
    admin.post(&format!("/api/tasks/{b}/complete"), json!({}));
    rx.wait_for(1, WAIT);
    wait_until("logged", WAIT, || attempts(&server, hook).len() == 1);
    let row = attempts(&server, hook)[0].clone();
    let row_id = row["id"].as_i64().unwrap();
    assert_ne!(row_id, row["event_id"].as_i64().unwrap(), "{row}");
    let r = admin.post(
        &format!("/api/webhooks/{hook}/deliveries/{row_id}/redeliver"),
        json!({}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["event_id"], row["event_id"]);
    let got = rx.wait_for(2, WAIT);
    let again = got[1].json();
    assert_eq!(again["event"], "task.completed");
    assert_eq!(again["task"]["id"], b);
    assert_ne!(again["task"]["id"], a);
    // An event id that is no row of this hook's log names nothing.
    let event_only = row["event_id"].as_i64().unwrap();
    admin
        .post(
            &format!("/api/webhooks/{hook}/deliveries/{event_only}/redeliver"),
            json!({}),
        )
        .assert_error(404);
}
