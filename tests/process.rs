//! The real binary (SPEC §1 and §12): rate limit, restarts, durability
//! under SIGKILL, configuration errors, graceful shutdown on SIGTERM,
//! the first-start token, project-token rotation.

#[path = "api/helpers/mod.rs"]
mod helpers;

use std::time::Duration;

use helpers::{id_of, run_delega, Auth, TestServer};
use serde_json::json;

#[test]
fn the_rate_limit_answers_429_with_retry_after_but_never_limits_the_project_token() {
    let server = TestServer::process_with(&[("DELEGA_RATE_LIMIT_PER_MINUTE", "5")]);
    let (agent, _) = server.agent("chatty", "worker");
    let (other, _) = server.agent("quiet", "worker");

    // Five requests in the minute are fine...
    for i in 1..=5 {
        let r = agent.get("/api/tasks");
        assert_eq!(r.status, 200, "request {i}: {}", r.text);
    }
    // ...the sixth is refused.
    let r = agent.get("/api/tasks");
    r.assert_error(429);
    let retry: u64 = r
        .header("Retry-After")
        .expect("Retry-After header")
        .trim()
        .parse()
        .expect("Retry-After is a number of seconds");
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    // Writes are limited too, and a refused write stores nothing.
    agent
        .post("/api/tasks", json!({"content": "over the limit"}))
        .assert_error(429);
    assert!(server.all_task_ids().is_empty());

    // The limit is per agent.
    assert_eq!(other.get("/api/tasks").status, 200);

    // The project token is never limited.
    let admin = server.admin();
    for i in 0..30 {
        let r = admin.get("/api/tasks");
        assert_eq!(r.status, 200, "project token request {i}: {}", r.text);
    }
}

#[test]
fn a_restart_on_the_same_database_keeps_everything() {
    // Arrange: one of each thing.
    let mut server = TestServer::process();
    let token = server.token.clone();
    let (agent, agent_id) = server.agent("survivor", "coordinator");
    let key = agent.key().unwrap().to_string();
    let admin = server.admin();
    let pid = id_of(
        &admin
            .post("/api/projects", json!({"name": "Durable", "emoji": "🧱"}))
            .body,
    );
    let t1 = id_of(&agent.create_task(json!({
        "content": "persist me ✓", "project_id": pid, "labels": ["a", "b"],
        "due_date": "2031-02-03", "context": {"deep": {"x": [1, 2, 3]}},
        "assigned_to_agent_id": agent_id})));
    let t2 = id_of(&agent.create_task(json!({"content": "finished", "is_recurring": false})));
    agent.post(
        &format!("/api/tasks/{t1}/comments"),
        json!({"content": "comment"}),
    );
    agent.post(
        &format!("/api/tasks/{t1}/subtasks"),
        json!({"content": "step"}),
    );
    agent.post(
        &format!("/api/tasks/{t2}/complete"),
        json!({"metadata": {"result": "ok"}}),
    );
    let snapshot = |s: &TestServer| {
        json!({
            "t1": s.task_snapshot(t1),
            "t2": s.task_snapshot(t2),
            "tasks": s.admin().get("/api/tasks?include_completed=true").body,
            "agents": s.admin().get("/api/agents").body,
            "projects": s.admin().get("/api/projects").body,
            "stats": s.admin().get("/api/stats").body,
        })
    };
    let before = snapshot(&server);

    // Act
    server.restart();

    // Assert
    assert_eq!(server.token, token);
    assert_eq!(snapshot(&server), before);
    let me = server.with_key(&key).get("/api/agent/me");
    assert_eq!(me.status, 200, "agent key survives: {}", me.text);
    assert_eq!(me.body["name"], json!("survivor"));
    // And new work continues with fresh ids.
    let t3 = id_of(
        &server
            .admin()
            .create_task(json!({"content": "after restart"})),
    );
    assert!(t3 > t2);
}

#[test]
fn a_task_acknowledged_with_201_survives_sigkill() {
    let mut server = TestServer::process();
    let admin = server.admin();
    let mut acknowledged = Vec::new();
    for i in 0..20 {
        let t = admin.create_task(json!({"content": format!("acked {i}"), "context": {"i": i}}));
        acknowledged.push((id_of(&t), format!("acked {i}")));
    }
    // Kill right after the last 201.
    server.kill();
    server.restart();

    for (id, content) in &acknowledged {
        let r = server.admin().get(&format!("/api/tasks/{id}"));
        assert_eq!(r.status, 200, "task {id} lost: {}", r.text);
        assert_eq!(r.body["content"], json!(content));
    }

    // Same for a completion and an agent, killed right after the answer.
    let (id, _) = acknowledged[0];
    let r = server
        .admin()
        .post(&format!("/api/tasks/{id}/complete"), json!({}));
    assert_eq!(r.status, 200);
    let a = server.create_agent(json!({"name": "late-agent"}));
    server.kill();
    server.restart();
    assert_eq!(server.task_snapshot(id)["status"], json!("completed"));
    let me = server
        .with_key(a["api_key"].as_str().unwrap())
        .get("/api/agent/me");
    assert_eq!(me.status, 200, "{}", me.text);
}

#[test]
fn sigterm_shuts_the_server_down_cleanly() {
    let mut server = TestServer::process();
    server
        .admin()
        .create_task(json!({"content": "before shutdown"}));
    let status = server.terminate();
    assert!(status.success(), "exit status {status:?}");
    assert_eq!(status.code(), Some(0));
    // And the data is still there.
    server.restart();
    assert_eq!(server.all_task_ids().len(), 1);
}

#[test]
fn a_config_file_with_an_unknown_or_mistyped_key_stops_startup_naming_key_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    let cases = [
        ("unknown key", "bad.toml", "prot = 18890\n", "prot"),
        ("wrong type", "wrongtype.toml", "port = \"high\"\n", "port"),
        ("bad port", "badport.toml", "port = 99999\n", "port"),
        (
            "unknown nested key",
            "nested.toml",
            "[webhooks]\nretries = 3\n",
            "retries",
        ),
    ];
    for (why, file, text, key) in cases {
        let path = dir.path().join(file);
        std::fs::write(&path, text).unwrap();
        let run = run_delega(
            &[
                "serve",
                "--config",
                path.to_str().unwrap(),
                "--port",
                "0",
                "--db",
                db.to_str().unwrap(),
            ],
            &[],
            Duration::from_secs(30),
        );
        assert!(!run.status.success(), "{why}: should fail: {}", run.stdout);
        assert!(
            run.stderr.contains(key),
            "{why}: stderr names {key}: {}",
            run.stderr
        );
        assert!(
            run.stderr.contains(file),
            "{why}: stderr names {file}: {}",
            run.stderr
        );
        assert!(
            !run.stdout.contains("listening"),
            "{why}: must not start: {}",
            run.stdout
        );
    }
}

#[test]
fn a_bad_environment_variable_stops_startup_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("e.db");
    let cases = [
        ("DELEGA_PORT", "notanumber"),
        ("DELEGA_REQUIRE_AUTH", "sometimes"),
        ("DELEGA_RATE_LIMIT_PER_MINUTE", "-5"),
    ];
    for (var, value) in cases {
        let run = run_delega(
            &["serve", "--db", db.to_str().unwrap()],
            &[(var, value)],
            Duration::from_secs(30),
        );
        assert!(
            !run.status.success(),
            "{var}={value} should fail: {}",
            run.stdout
        );
        assert!(run.stderr.contains(var), "{var}: {}", run.stderr);
    }
}

#[test]
fn token_rotate_prints_a_new_project_token_that_works_after_restart() {
    let mut server = TestServer::process();
    let old = server.token.clone();
    let (agent, _) = server.agent("keeps-key", "worker");
    server.admin().create_task(json!({"content": "existing"}));
    server.terminate();

    let run = run_delega(
        &[
            "token",
            "rotate",
            "--db",
            server.db_path().to_str().unwrap(),
        ],
        &[],
        Duration::from_secs(30),
    );
    assert!(run.status.success(), "rotate failed: {}", run.stderr);
    let new = run
        .stdout
        .split_whitespace()
        .find(|w| w.starts_with("dlp_"))
        .unwrap_or_else(|| panic!("no dlp_ token in {:?}", run.stdout))
        .trim_matches(|c: char| c == '\'' || c == '"')
        .to_string();
    assert_eq!(new.len(), 47, "{new}");
    assert!(new[4..]
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    assert_ne!(new, old);

    server.restart();

    let fresh = server.client(Auth::Bearer(new));
    let r = fresh.get("/api/agents");
    assert_eq!(r.status, 200, "new token: {}", r.text);
    assert_eq!(fresh.get("/api/tasks").body.as_array().unwrap().len(), 1);
    server.admin().get("/api/agents").assert_error(401);
    server.admin().get("/api/tasks").assert_error(401);
    // Agent keys are unaffected.
    assert_eq!(agent.get("/api/agent/me").status, 200);
}

#[test]
fn the_project_token_is_printed_on_first_start_only() {
    let mut server = TestServer::process();
    assert!(server.token.starts_with("dlp_"));
    server.terminate();

    // Start the binary by hand on the same database and read what it says.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_delega"))
        .args(["serve", "--port", "0", "--db"])
        .arg(server.db_path())
        .env_remove("DELEGA_PROJECT_TOKEN")
        .env_remove("DELEGA_CONFIG")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut before_listening = Vec::new();
    for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
        let line = line.unwrap();
        let done = line.starts_with("delega listening on ");
        before_listening.push(line);
        if done {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        before_listening
            .last()
            .is_some_and(|l| l.starts_with("delega listening on ")),
        "{before_listening:?}"
    );
    assert!(
        !before_listening.iter().any(|l| l.contains("dlp_")),
        "token printed again: {before_listening:?}"
    );
}

#[test]
fn a_project_token_from_the_environment_is_used_and_not_printed() {
    let token = "dlp_configured-token-for-tests-0123456789abcdef";
    let mut server = TestServer::process_with(&[("DELEGA_PROJECT_TOKEN", token)]);
    assert_eq!(server.token, "", "a configured token is not printed");

    let client = server.client(Auth::Bearer(token.to_string()));
    let r = client.get("/api/agents");
    assert_eq!(r.status, 200, "{}", r.text);
    client.create_task(json!({"content": "by configured token"}));
    server
        .client(Auth::Bearer("dlp_some-other-token-0123456789".into()))
        .get("/api/agents")
        .assert_error(401);

    server.restart();
    assert_eq!(client.get("/api/tasks").body.as_array().unwrap().len(), 1);
}

#[test]
fn backup_makes_a_consistent_copy_while_the_server_runs() {
    // Arrange
    let server = TestServer::process();
    let task = server
        .admin()
        .create_task(json!({"content": "keep me safe"}));
    let out = server.dir.path().join("copy.db");
    let db = server.db_path();
    // Act
    let run = run_delega(
        &[
            "backup",
            "--db",
            db.to_str().unwrap(),
            out.to_str().unwrap(),
        ],
        &[],
        Duration::from_secs(30),
    );
    // Assert
    assert!(run.status.success(), "stderr: {}", run.stderr);
    let copy = rusqlite::Connection::open(&out).unwrap();
    let content: String = copy
        .query_row(
            "SELECT content FROM tasks WHERE id = ?1",
            [task["id"].as_i64().unwrap()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(content, "keep me safe");
    // A second backup to the same file is refused rather than overwriting.
    let again = run_delega(
        &[
            "backup",
            "--db",
            db.to_str().unwrap(),
            out.to_str().unwrap(),
        ],
        &[],
        Duration::from_secs(30),
    );
    assert!(!again.status.success());
    assert!(again.stderr.contains("already exists"), "{}", again.stderr);
}
