//! The terminal client and the stdio MCP bridge (SPEC §11), as people
//! and assistants run them: the `delega` binary spawned as a process
//! against a test server. Data is set up through `delega::client`, the
//! client library the commands themselves use.

#[path = "api/helpers/mod.rs"]
mod helpers;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use delega::client::{Client, ClientError, Credential};
use helpers::{run_delega, Run, TestServer};
use serde_json::{json, Value};

const TIMEOUT: Duration = Duration::from_secs(60);

// ------------------------------------------------------------ harness

/// A server with three agents: `orchestrator` (coordinator),
/// `research-agent` and `data-agent` (workers).
struct Fleet {
    server: TestServer,
    admin: Client,
    orchestrator: String,
    research: String,
    data: String,
}

impl Fleet {
    fn start() -> Fleet {
        Fleet::on(TestServer::start())
    }

    fn on(server: TestServer) -> Fleet {
        let admin = Client::new(&server.base, Credential::Bearer(server.token.clone()));
        let key = |name: &str, role: &str| {
            let agent = admin
                .create_agent(&json!({ "name": name, "role": role }))
                .expect("create agent");
            agent["api_key"].as_str().expect("api_key").to_string()
        };
        let orchestrator = key("orchestrator", "coordinator");
        let research = key("research-agent", "worker");
        let data = key("data-agent", "worker");
        Fleet {
            server,
            admin,
            orchestrator,
            research,
            data,
        }
    }

    /// The library client with an agent's key.
    fn client(&self, key: &str) -> Client {
        Client::with_secret(&self.server.base, key)
    }

    /// Runs `delega ARGS` with `DELEGA_API_URL` and `DELEGA_AGENT_KEY`.
    fn run(&self, key: &str, args: &[&str]) -> Run {
        run_delega(
            args,
            &[
                ("DELEGA_API_URL", &self.server.base),
                ("DELEGA_AGENT_KEY", key),
            ],
            TIMEOUT,
        )
    }

    /// Like [`Fleet::run`], asserting success; returns stdout.
    fn ok(&self, key: &str, args: &[&str]) -> String {
        let run = self.run(key, args);
        assert_success(&run, args);
        run.stdout
    }
}

fn assert_success(run: &Run, args: &[&str]) {
    assert_eq!(
        run.status.code(),
        Some(0),
        "delega {args:?} failed\nstdout: {}\nstderr: {}",
        run.stdout,
        run.stderr
    );
}

/// Asserts an exit code and a one-line error on stderr containing each
/// of `needles`.
fn assert_fails(run: &Run, code: i32, needles: &[&str]) {
    assert_eq!(
        run.status.code(),
        Some(code),
        "expected exit {code}\nstdout: {}\nstderr: {}",
        run.stdout,
        run.stderr
    );
    let line = run.stderr.trim();
    for n in needles {
        assert!(line.contains(n), "stderr should mention {n:?}: {line}");
    }
}

/// The id in `Created task #42 …`.
fn task_id_in(out: &str) -> i64 {
    let after = out
        .split('#')
        .nth(1)
        .unwrap_or_else(|| panic!("no #id in {out}"));
    after
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or_else(|_| panic!("no #id in {out}"))
}

/// Spawns `delega ARGS` with piped stdio (inherited `DELEGA_*` removed).
fn spawn_delega(args: &[&str], env: &[(&str, &str)]) -> Child {
    helpers::delega_command(args, env)
        .stdin(Stdio::piped())
        .spawn()
        .expect("start delega")
}

/// The lines a reader produces, as they come.
fn lines_of(r: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The next line that contains `needle`, within `timeout`.
fn wait_for_line(rx: &Receiver<String>, needle: &str, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.contains(needle) => return line,
            Ok(_) => continue,
            Err(_) => panic!("no line containing {needle:?} within {timeout:?}"),
        }
    }
}

/// Waits for a child to exit (killing it after `timeout`).
fn wait_exit(child: &mut Child, timeout: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(s) = child.try_wait().expect("wait") {
            return s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("delega still running after {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The column where `word` starts in the header line of a table.
fn column_of(table: &str, word: &str) -> usize {
    let header = table.lines().next().expect("a header line");
    header
        .find(word)
        .unwrap_or_else(|| panic!("no column {word} in {header}"))
}

/// The table row whose text contains `needle`.
fn row_with<'a>(table: &'a str, needle: &str) -> &'a str {
    table
        .lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no row with {needle:?} in\n{table}"))
}

// -------------------------------------------------------------- tasks

#[test]
fn tasks_create_prints_the_new_task_and_list_shows_it_in_aligned_columns() {
    let f = Fleet::start();

    let out = f.ok(
        &f.orchestrator,
        &[
            "tasks",
            "create",
            "Summarise Q3 churn drivers",
            "--priority",
            "1",
            "--label",
            "q3",
            "--assign",
            "research-agent",
        ],
    );
    assert!(out.starts_with("Created task #"), "{out}");
    let id = task_id_in(&out);
    let task = f.admin.task(id).expect("the task exists");
    assert_eq!(task["content"], "Summarise Q3 churn drivers");
    assert_eq!(task["priority"], 1);
    assert_eq!(task["labels"], json!(["q3"]));
    assert_eq!(task["assigned_to"], "research-agent");
    f.client(&f.orchestrator)
        .create_task(&json!({"content": "Draft the board update", "due_date": "2031-01-02"}))
        .expect("second task");

    let table = f.ok(&f.orchestrator, &["tasks", "list"]);

    // A header, a rule, one row per task, most urgent first.
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 4, "{table}");
    assert!(lines[1].chars().all(|c| c == '─'), "{table}");
    assert!(lines[2].contains("Summarise Q3 churn drivers"), "{table}");
    // Columns line up: each value starts under its header.
    for (column, value, row) in [
        ("STATUS", "open", "Summarise"),
        ("ASSIGNEE", "research-agent", "Summarise"),
        ("DUE", "2031-01-02", "Draft"),
        ("LABELS", "q3", "Summarise"),
    ] {
        let line = row_with(&table, row);
        assert_eq!(
            line.find(value),
            Some(column_of(&table, column)),
            "{value} under {column}:\n{table}"
        );
    }
}

#[test]
fn tasks_list_json_is_the_servers_array_for_scripts() {
    let f = Fleet::start();
    let orch = f.client(&f.orchestrator);
    let a = orch.create_task(&json!({"content": "one"})).unwrap();
    let b = orch
        .create_task(&json!({"content": "two", "priority": 1}))
        .unwrap();
    orch.complete_task(a["id"].as_i64().unwrap(), &json!({}))
        .unwrap();

    let open: Value =
        serde_json::from_str(&f.ok(&f.orchestrator, &["tasks", "list", "--json"])).unwrap();
    let all: Value =
        serde_json::from_str(&f.ok(&f.orchestrator, &["tasks", "--json", "list", "--all"]))
            .unwrap();

    assert_eq!(helpers::ids(&open), vec![b["id"].as_i64().unwrap()]);
    assert_eq!(all.as_array().unwrap().len(), 2);
    assert_eq!(open[0]["content"], "two");
    assert!(open[0]["assigned_to_agent_id"].is_null());
}

#[test]
fn tasks_list_stops_at_its_limit_and_says_more_exist() {
    let f = Fleet::start();
    let orch = f.client(&f.orchestrator);
    for i in 0..3 {
        orch.create_task(&json!({ "content": format!("task {i}") }))
            .unwrap();
    }

    let run = f.run(
        &f.orchestrator,
        &["tasks", "list", "--limit", "2", "--json"],
    );
    assert_success(&run, &["tasks", "list"]);
    let listed: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2);
    assert!(
        run.stderr.contains("showing the first 2 tasks"),
        "{}",
        run.stderr
    );
    let run = f.run(&f.orchestrator, &["tasks", "list", "--limit", "0"]);
    assert_eq!(run.stdout.lines().count(), 2 + 3, "{}", run.stdout);
    assert!(run.stderr.is_empty(), "{}", run.stderr);

    // The library follows the server's Link rel="next" from page to page.
    let listing = orch.list_up_to("/api/tasks?limit=1", 2).unwrap();
    assert_eq!(listing.items.len(), 2);
    assert!(listing.more);
    assert_eq!(orch.list_all("/api/tasks?limit=1").unwrap().len(), 3);
}

#[test]
fn tasks_show_prints_the_fields_context_and_comments() {
    let f = Fleet::start();
    let task = f
        .client(&f.orchestrator)
        .create_task(&json!({
            "content": "Ship the release",
            "description": "Tag, build, announce.",
            "context": {"version": "1.4.0"},
            "assigned_to_agent_id": "research-agent",
        }))
        .unwrap();
    let id = task["id"].as_i64().unwrap().to_string();

    let out = f.ok(
        &f.research,
        &["tasks", "comment", &id, "Tagged v1.4.0", "--author", "Ana"],
    );
    assert!(out.contains(&format!("Commented on task #{id}")), "{out}");
    let shown = f.ok(&f.orchestrator, &["tasks", "show", &format!("#{id}")]);

    assert!(
        shown.starts_with(&format!("Task #{id}: Ship the release")),
        "{shown}"
    );
    assert!(row_with(&shown, "assigned to").contains("research-agent"));
    assert!(row_with(&shown, "created by").contains("orchestrator"));
    assert!(shown.contains("Tag, build, announce."), "{shown}");
    assert!(shown.contains("\"version\": \"1.4.0\""), "{shown}");
    let comment = row_with(&shown, "Tagged v1.4.0");
    assert!(comment.contains("Ana"), "{shown}");
    let json: Value =
        serde_json::from_str(&f.ok(&f.orchestrator, &["tasks", "show", &id, "--json"])).unwrap();
    assert_eq!(json["comments"][0]["content"], "Tagged v1.4.0");
}

#[test]
fn tasks_complete_merges_context_and_records_evidence() {
    let f = Fleet::start();
    let id = f
        .client(&f.research)
        .create_task(&json!({"content": "Fix the flaky test", "evidence_policy": "required"}))
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let ids = id.to_string();

    // Without evidence the server refuses (422), and says why.
    let refused = f.run(&f.research, &["tasks", "complete", &ids]);
    assert_fails(&refused, 1, &["422", "evidence"]);

    let out = f.ok(
        &f.research,
        &[
            "tasks",
            "complete",
            &ids,
            "--context",
            r#"{"root_cause": "timing"}"#,
            "--evidence",
            "commit=3f2a91c",
        ],
    );

    assert!(out.starts_with(&format!("Completed task #{id}")), "{out}");
    let task = f.admin.task(id).unwrap();
    assert_eq!(task["status"], "completed");
    assert_eq!(task["completed_by"], "research-agent");
    assert_eq!(task["context"]["root_cause"], "timing");
    assert_eq!(task["completion_evidence"][0]["kind"], "commit");
    assert_eq!(task["completion_evidence"][0]["ref"], "3f2a91c");
}

#[test]
fn tasks_update_fail_and_delete_change_the_task() {
    let f = Fleet::start();
    let id = f
        .client(&f.orchestrator)
        .create_task(&json!({"content": "Old wording"}))
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let ids = id.to_string();

    f.ok(
        &f.orchestrator,
        &[
            "tasks",
            "update",
            &ids,
            "--content",
            "New wording",
            "--priority",
            "3",
            "--status",
            "in_progress",
        ],
    );
    let task = f.admin.task(id).unwrap();
    assert_eq!(
        (&task["content"], &task["priority"], &task["status"]),
        (&json!("New wording"), &json!(3), &json!("in_progress"))
    );
    // Nothing to change is a usage error, not a request.
    assert_fails(
        &f.run(&f.orchestrator, &["tasks", "update", &ids]),
        2,
        &["nothing to change"],
    );

    let out = f.ok(
        &f.orchestrator,
        &["tasks", "fail", &ids, "--reason", "upstream is down"],
    );
    assert!(out.starts_with(&format!("Failed task #{id}")), "{out}");
    assert_eq!(
        f.admin.task(id).unwrap()["failure_reason"],
        "upstream is down"
    );

    f.ok(&f.orchestrator, &["tasks", "delete", &ids]);
    assert_eq!(f.admin.task(id).unwrap_err().status(), Some(404));
}

#[test]
fn tasks_delegate_hands_off_and_delegates_a_child_and_chain_shows_hops_and_tree() {
    let f = Fleet::start();
    let root = f
        .client(&f.orchestrator)
        .create_task(&json!({"content": "Summarise Q3 churn drivers"}))
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let r = root.to_string();

    // Hand the task itself to research-agent, who hands it on and back.
    let out = f.ok(
        &f.orchestrator,
        &[
            "tasks",
            "delegate",
            &r,
            "--to",
            "research-agent",
            "--note",
            "you know the data",
        ],
    );
    assert!(out.contains("assigned to research-agent"), "{out}");
    f.ok(
        &f.research,
        &["tasks", "delegate", &r, "--to", "data-agent"],
    );
    f.ok(
        &f.data,
        &["tasks", "delegate", &r, "--to", "research-agent"],
    );
    // research-agent delegates a child task to data-agent.
    let out = f.ok(
        &f.research,
        &[
            "tasks",
            "delegate",
            &r,
            "--content",
            "Collect the numbers",
            "--to",
            "data-agent",
        ],
    );
    let child = task_id_in(&out);
    assert_ne!(child, root);
    let child_task = f.admin.task(child).unwrap();
    assert_eq!(child_task["parent_task_id"], root);
    assert_eq!(child_task["assigned_to"], "data-agent");
    assert_eq!(f.admin.task(root).unwrap()["status"], "delegated");

    let chain = f.ok(&f.orchestrator, &["tasks", "chain", &child.to_string()]);

    // The hops, in order, from → to.
    let hops: Vec<(String, String)> = chain
        .lines()
        .filter(|l| l.contains('→'))
        .map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            let arrow = cols.iter().position(|c| *c == "→").unwrap();
            (cols[arrow - 1].to_string(), cols[arrow + 1].to_string())
        })
        .collect();
    let pairs = [
        ("orchestrator", "research-agent"),
        ("research-agent", "data-agent"),
        ("data-agent", "research-agent"),
        ("research-agent", "data-agent"),
    ];
    assert_eq!(
        hops,
        pairs.map(|(a, b)| (a.to_string(), b.to_string())).to_vec(),
        "{chain}"
    );
    assert!(row_with(&chain, "orchestrator ").contains("you know the data"));
    // The tree: the root, its child below it, the task asked about marked.
    let tree: Vec<&str> = chain
        .lines()
        .skip_while(|l| *l != "Tree:")
        .skip(1)
        .collect();
    assert_eq!(
        tree,
        vec![
            format!("#{root} [delegated] Summarise Q3 churn drivers — research-agent"),
            format!("└── #{child} [open] Collect the numbers — data-agent  ◀"),
        ],
        "{chain}"
    );
    // --json is the server's chain answer.
    let json: Value =
        serde_json::from_str(&f.ok(&f.orchestrator, &["tasks", "chain", &r, "--json"])).unwrap();
    assert_eq!(json["total_count"], 2);
    assert_eq!(json["events"].as_array().unwrap().len(), 4);
}

#[test]
fn tasks_context_shows_and_merges_with_optimistic_versions() {
    let f = Fleet::start();
    let id = f
        .client(&f.research)
        .create_task(&json!({"content": "Research", "context": {"a": 1}}))
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let ids = id.to_string();

    let out = f.ok(
        &f.research,
        &[
            "tasks",
            "context",
            &ids,
            "--set",
            r#"{"b": 2}"#,
            "--expected-version",
            "1",
        ],
    );
    assert!(out.contains("version 2"), "{out}");
    let stale = f.run(
        &f.research,
        &[
            "tasks",
            "context",
            &ids,
            "--set",
            r#"{"c": 3}"#,
            "--expected-version",
            "1",
        ],
    );
    assert_fails(&stale, 1, &["409"]);
    assert_fails(
        &f.run(
            &f.research,
            &["tasks", "context", &ids, "--set", "{not json"],
        ),
        2,
        &["--set"],
    );

    let shown: Value =
        serde_json::from_str(&f.ok(&f.research, &["tasks", "context", &ids, "--json"])).unwrap();
    assert_eq!(shown["context"], json!({"a": 1, "b": 2}));
    assert_eq!(shown["version"], 2);
}

#[test]
fn tasks_claim_and_release_work_the_queue() {
    let f = Fleet::start();
    let id = f
        .client(&f.orchestrator)
        .create_task(&json!({"content": "Label the images", "assigned_to_agent_id": "data-agent"}))
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let ids = id.to_string();

    let out = f.ok(&f.data, &["tasks", "claim", &ids, "--lease", "600"]);
    assert!(out.starts_with(&format!("Claimed task #{id}")), "{out}");
    assert!(out.contains("claim generation 1"), "{out}");
    let task = f.admin.task(id).unwrap();
    assert_eq!(task["status"], "claimed");
    // Claimed already: a second claim by someone else is a conflict.
    assert_fails(&f.run(&f.research, &["tasks", "claim", &ids]), 1, &["404"]);
    assert_fails(
        &f.run(&f.orchestrator, &["tasks", "claim", &ids]),
        1,
        &["409"],
    );

    let out = f.ok(
        &f.data,
        &["tasks", "release", &ids, "--handoff", "half done"],
    );
    assert!(out.starts_with(&format!("Released task #{id}")), "{out}");
    let task = f.admin.task(id).unwrap();
    assert_eq!(task["status"], "open");
    assert_eq!(task["handoff"], "half done");
    assert_fails(&f.run(&f.data, &["tasks", "release", &ids]), 1, &["409"]);

    // Without an id: the next claimable task, then nothing.
    let next: Value = serde_json::from_str(&f.ok(&f.data, &["tasks", "claim", "--json"])).unwrap();
    assert_eq!(next["task"]["id"], id);
    assert_eq!(
        f.ok(&f.data, &["tasks", "claim"]).trim(),
        "No claimable task."
    );
}

#[test]
fn tasks_watch_sees_an_event_created_after_it_started() {
    let f = Fleet::start();
    let mut watch = spawn_delega(
        &["tasks", "watch", "--count", "2"],
        &[
            ("DELEGA_API_URL", &f.server.base),
            ("DELEGA_AGENT_KEY", &f.orchestrator),
        ],
    );
    let stdout = lines_of(watch.stdout.take().unwrap());
    let stderr = lines_of(watch.stderr.take().unwrap());
    wait_for_line(&stderr, "Watching events", TIMEOUT);

    let orch = f.client(&f.orchestrator);
    let task = orch
        .create_task(&json!({"content": "Appears live"}))
        .unwrap();
    let id = task["id"].as_i64().unwrap();
    orch.comment(id, "and a comment", None).unwrap();

    let created = wait_for_line(&stdout, "task.created", TIMEOUT);
    assert!(
        created.contains(&format!("#{id} \"Appears live\"")),
        "{created}"
    );
    assert!(created.contains("by orchestrator"), "{created}");
    let commented = wait_for_line(&stdout, "task.commented", TIMEOUT);
    assert!(commented.contains(&format!("#{id}")), "{commented}");
    // --count 2: it stops by itself.
    assert!(wait_exit(&mut watch, TIMEOUT).success());
}

#[test]
fn tasks_watch_reconnects_with_last_event_id_after_a_restart_and_sees_nothing_twice() {
    let mut f = Fleet::on(TestServer::process());
    let mut watch = spawn_delega(
        &["tasks", "watch", "--json", "--count", "2"],
        &[
            ("DELEGA_API_URL", &f.server.base),
            ("DELEGA_AGENT_KEY", &f.orchestrator),
        ],
    );
    let stdout = lines_of(watch.stdout.take().unwrap());
    let stderr = lines_of(watch.stderr.take().unwrap());
    wait_for_line(&stderr, "Watching events", TIMEOUT);
    f.client(&f.orchestrator)
        .create_task(&json!({"content": "before the restart"}))
        .unwrap();
    let first: Value =
        serde_json::from_str(&wait_for_line(&stdout, "before the restart", TIMEOUT)).unwrap();

    // The server goes away (SIGKILL) and comes back on the same port.
    f.server.restart();
    wait_for_line(&stderr, "reconnected", TIMEOUT);
    f.client(&f.orchestrator)
        .create_task(&json!({"content": "after the restart"}))
        .unwrap();

    let second: Value = serde_json::from_str(&stdout.recv_timeout(TIMEOUT).unwrap()).unwrap();
    assert_eq!(second["task"]["content"], "after the restart", "{second}");
    assert!(second["event_id"].as_i64() > first["event_id"].as_i64());
    assert!(wait_exit(&mut watch, TIMEOUT).success());
}

// ------------------------------------------------- agents and the rest

#[test]
fn agents_create_rotate_key_list_and_delete() {
    let f = Fleet::start();
    let token = f.server.token.clone();

    let out = f.ok(
        &token,
        &[
            "agents",
            "create",
            "writer",
            "--display-name",
            "Writer",
            "--role",
            "worker",
        ],
    );
    let key = out
        .split_whitespace()
        .find(|w| w.starts_with("dlg_"))
        .unwrap_or_else(|| panic!("no key in {out}"))
        .to_string();
    assert!(out.contains("shown only this once"), "{out}");
    assert_eq!(
        Client::with_secret(&f.server.base, &key).me().unwrap()["name"],
        "writer"
    );

    let out = f.ok(&token, &["agents", "rotate-key", "writer"]);
    let new_key = out
        .split_whitespace()
        .find(|w| w.starts_with("dlg_"))
        .unwrap();
    assert_ne!(new_key, key);
    let old = Client::with_secret(&f.server.base, &key).me().unwrap_err();
    assert_eq!(old.status(), Some(401));

    let table = f.ok(&token, &["agents", "list"]);
    let row = row_with(&table, "writer");
    assert_eq!(
        row.find("worker"),
        Some(column_of(&table, "ROLE")),
        "{table}"
    );
    assert_eq!(table.lines().count(), 2 + 4, "{table}");

    f.ok(&token, &["agents", "delete", "writer"]);
    assert!(!f.ok(&token, &["agents", "list"]).contains("writer"));
    // A duplicate name is a conflict, a worker listing agents is refused.
    assert_fails(
        &f.run(&token, &["agents", "create", "data-agent"]),
        1,
        &["409", "already exists"],
    );
    assert_fails(&f.run(&f.data, &["agents", "list"]), 1, &["403"]);
}

#[test]
fn webhooks_and_recurrences_are_created_listed_and_deleted() {
    let f = Fleet::on(TestServer::start_with(&[(
        "DELEGA_ALLOW_PRIVATE_WEBHOOKS",
        "true",
    )]));
    let token = f.server.token.clone();

    let out = f.ok(
        &token,
        &[
            "webhooks",
            "create",
            "http://127.0.0.1:9/hook",
            "--event",
            "task.completed",
            "--description",
            "CI",
        ],
    );
    assert!(
        out.contains("whsec_"),
        "the generated secret is shown once: {out}"
    );
    let hooks = f.admin.webhooks().unwrap();
    assert_eq!(hooks.len(), 1);
    assert_eq!(hooks[0]["events"], json!(["task.completed"]));
    let id = hooks[0]["id"].as_i64().unwrap().to_string();
    let table = f.ok(&token, &["webhooks", "list"]);
    assert!(
        row_with(&table, "127.0.0.1:9/hook").contains("task.completed"),
        "{table}"
    );
    assert!(f
        .ok(&token, &["webhooks", "deliveries", &id])
        .contains(&format!("webhook #{id}")));
    f.ok(&token, &["webhooks", "delete", &id]);
    assert!(f.admin.webhooks().unwrap().is_empty());

    let out = f.ok(
        &token,
        &[
            "recurrences",
            "create",
            "Weekly churn report",
            "--rule",
            "weekly",
            "--anchor-weekday",
            "0",
            "--time",
            "09:00",
            "--timezone",
            "Europe/Berlin",
            "--assign",
            "research-agent",
        ],
    );
    assert!(
        out.contains("weekly on Mon at 09:00 Europe/Berlin"),
        "{out}"
    );
    let list = f.admin.recurrences().unwrap();
    assert_eq!(
        list[0]["assigned_to_agent_id"],
        f.client(&f.research).me().unwrap()["id"]
    );
    let table = f.ok(&token, &["recurrences", "list"]);
    assert!(row_with(&table, "Weekly churn report").contains("Europe/Berlin"));
    assert_fails(
        &f.run(&token, &["recurrences", "create", "x", "--rule", "hourly"]),
        1,
        &["422", "rule_type"],
    );
    f.ok(
        &token,
        &["recurrences", "delete", &list[0]["id"].to_string()],
    );
    assert!(f.admin.recurrences().unwrap().is_empty());
}

#[test]
fn fleet_prints_the_attention_buckets_and_stats_the_counts() {
    let f = Fleet::start();
    assert_eq!(
        f.ok(&f.orchestrator, &["fleet"]).trim(),
        "Nothing needs attention."
    );
    let data = f.client(&f.data);
    let id = f
        .client(&f.orchestrator)
        .create_task(&json!({"content": "Crawl the site", "assigned_to_agent_id": "data-agent"}))
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    data.claim(Some(id), &json!({})).unwrap();
    data.post(
        &format!("/api/tasks/{id}/state"),
        &json!({"state": "errored", "detail": "403 from the site"}),
    )
    .unwrap();

    let out = f.ok(&f.orchestrator, &["fleet"]);

    assert!(out.starts_with("1 task needs attention."), "{out}");
    assert!(out.contains("errored (1):"), "{out}");
    assert!(row_with(&out, "Crawl the site").contains(&format!("#{id}")));
    let json: Value = serde_json::from_str(&f.ok(&f.orchestrator, &["fleet", "--json"])).unwrap();
    assert_eq!(json["buckets"]["errored"][0]["id"], id);

    let stats = f.ok(&f.orchestrator, &["stats"]);
    assert!(row_with(&stats, "open").ends_with(" 1"), "{stats}");
    let json: Value = serde_json::from_str(&f.ok(&f.orchestrator, &["stats", "--json"])).unwrap();
    assert_eq!(json["total"], 1);
}

#[test]
fn whoami_names_the_agent_or_the_project_token() {
    let f = Fleet::start();

    let out = f.ok(&f.research, &["whoami"]);
    assert!(out.starts_with("You are research-agent (agent #"), "{out}");
    assert!(row_with(&out, "role").contains("worker"));
    assert!(out.contains(&f.research[..12]), "the key prefix: {out}");
    assert!(!out.contains(&f.research), "never the whole key: {out}");
    let out = f.ok(&f.server.token, &["whoami"]);
    assert!(out.contains("the project token"), "{out}");
    let json: Value = serde_json::from_str(&f.ok(&f.research, &["whoami", "--json"])).unwrap();
    assert_eq!(json["name"], "research-agent");
    // DELEGA_API_KEY works too, and --key wins over both.
    let run = run_delega(
        &["whoami", "--json"],
        &[
            ("DELEGA_API_URL", &f.server.base),
            ("DELEGA_API_KEY", &f.data),
        ],
        TIMEOUT,
    );
    assert_success(&run, &["whoami"]);
    assert!(run.stdout.contains("\"data-agent\""));
    let out = f.ok(&f.data, &["whoami", "--key", &f.research]);
    assert!(out.contains("research-agent"), "{out}");
}

#[test]
fn status_reports_health_credential_and_counts() {
    let f = Fleet::on(TestServer::process());
    f.client(&f.research)
        .create_task(&json!({"content": "one"}))
        .unwrap();

    let out = f.ok(&f.research, &["status"]);

    let server = row_with(&out, "server");
    assert!(
        server.contains(&f.server.base) && server.contains(" ok "),
        "{out}"
    );
    assert!(server.contains(env!("CARGO_PKG_VERSION")), "{out}");
    assert!(
        row_with(&out, "credential").contains("research-agent"),
        "{out}"
    );
    assert!(row_with(&out, "tasks").contains("1 open"), "{out}");
    // Without a credential: health only, still success.
    let run = run_delega(&["status"], &[("DELEGA_API_URL", &f.server.base)], TIMEOUT);
    assert_success(&run, &["status"]);
    assert!(row_with(&run.stdout, "credential").contains("none"));
    // A refused key: the health line, then exit 1.
    let run = f.run("dlg_not_a_real_key", &["status"]);
    assert!(run.stdout.contains("refused"), "{}", run.stdout);
    assert_fails(&run, 1, &["401"]);
}

#[test]
fn init_prints_http_and_stdio_mcp_configurations_for_the_current_url() {
    let f = Fleet::start();
    let mcp_url = format!("{}/mcp", f.server.base);

    let out = f.ok(&f.research, &["init"]);

    for assistant in [
        "Claude Code",
        "Claude Desktop",
        "Cursor",
        "VS Code",
        "Codex",
    ] {
        assert!(out.contains(assistant), "{assistant} missing:\n{out}");
    }
    assert!(
        out.contains(&format!("--transport http delega {mcp_url}")),
        "{out}"
    );
    assert!(out.contains("dlg_YOUR_AGENT_KEY"), "{out}");
    assert!(
        !out.contains(&f.research),
        "the key only with --show-key:\n{out}"
    );
    let json: Value =
        serde_json::from_str(&f.ok(&f.research, &["init", "--json", "--show-key"])).unwrap();
    assert_eq!(json["mcp_url"], mcp_url);
    let cursor = &json["assistants"]["cursor"];
    assert_eq!(cursor["http"]["mcpServers"]["delega"]["url"], mcp_url);
    assert_eq!(
        cursor["http"]["mcpServers"]["delega"]["headers"]["X-Agent-Key"],
        f.research.as_str()
    );
    let stdio = &cursor["stdio"]["mcpServers"]["delega"];
    assert_eq!(stdio["args"], json!(["mcp"]));
    assert_eq!(stdio["env"]["DELEGA_API_URL"], f.server.base.as_str());
    assert_eq!(stdio["env"]["DELEGA_AGENT_KEY"], f.research.as_str());
    let vscode = &json["assistants"]["vscode"]["http"]["servers"]["delega"];
    assert_eq!(vscode["type"], "http");
}

// --------------------------------------------------------- error exits

#[test]
fn a_bad_key_exits_1_with_a_401_message() {
    let f = Fleet::start();
    let run = f.run("dlg_not_a_real_key", &["tasks", "list"]);
    assert_fails(&run, 1, &["401 unauthorized", "DELEGA_AGENT_KEY"]);
    assert_eq!(run.stderr.trim().lines().count(), 1, "{}", run.stderr);
    assert!(run.stdout.is_empty());
}

#[test]
fn a_stopped_server_exits_3_with_a_connection_message() {
    let mut server = TestServer::process();
    let base = server.base.clone();
    server.terminate();

    let run = run_delega(
        &["tasks", "list"],
        &[("DELEGA_API_URL", &base), ("DELEGA_AGENT_KEY", "dlg_x")],
        TIMEOUT,
    );

    assert_fails(
        &run,
        3,
        &[
            "cannot connect",
            &base,
            "connection refused",
            "delega serve",
        ],
    );
    // The library says the same, typed.
    let err = Client::with_secret(&base, "dlg_x").health().unwrap_err();
    assert!(matches!(err, ClientError::Connection { .. }), "{err:?}");
}

#[test]
fn an_unknown_id_exits_1_naming_404() {
    let f = Fleet::start();
    for args in [
        &["tasks", "show", "999999"][..],
        &["tasks", "complete", "999999"],
        &["tasks", "chain", "999999"],
        &["agents", "delete", "nobody"],
    ] {
        let key = if args[0] == "agents" {
            &f.server.token
        } else {
            &f.orchestrator
        };
        assert_fails(&f.run(key, args), 1, &["404 not found"]);
    }
}

#[test]
fn usage_errors_exit_2() {
    let f = Fleet::start();
    for args in [
        &["tasks", "frobnicate"][..],
        &["tasks", "show", "not-a-number"],
        &["tasks", "create"],
        &["tasks", "create", "x", "--context", "[1, 2]"],
        &["tasks", "complete", "1", "--evidence", "no-equals-sign"],
        &["tasks", "delegate", "1"],
    ] {
        let run = f.run(&f.orchestrator, args);
        assert_eq!(run.status.code(), Some(2), "{args:?}: {}", run.stderr);
    }
    // And nothing was created by them.
    assert!(f.admin.list_tasks(&[]).unwrap().items.is_empty());
}

#[test]
fn validation_errors_exit_1_with_the_servers_field_message() {
    let f = Fleet::start();
    let run = f.run(
        &f.orchestrator,
        &["tasks", "create", "x", "--priority", "9"],
    );
    assert_fails(&run, 1, &["422 invalid input", "priority"]);
}

// ----------------------------------------------------- the MCP bridge

/// Runs `delega mcp` on `input` against `base`; returns its stdout lines
/// (as JSON), stderr and exit status.
fn bridge(
    base: &str,
    key: &str,
    input: &[Value],
) -> (Vec<Value>, String, std::process::ExitStatus) {
    let mut child = spawn_delega(
        &["mcp"],
        &[("DELEGA_API_URL", base), ("DELEGA_AGENT_KEY", key)],
    );
    let mut stdin = child.stdin.take().unwrap();
    for m in input {
        writeln!(stdin, "{m}").unwrap();
    }
    drop(stdin);
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = wait_exit(&mut child, TIMEOUT);
    let lines = out
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {l}"))
        })
        .collect();
    (lines, err, status)
}

fn answer_to(lines: &[Value], id: Value) -> &Value {
    lines
        .iter()
        .find(|l| l["id"] == id && (l.get("result").is_some() || l.get("error").is_some()))
        .unwrap_or_else(|| panic!("no answer to {id} in {lines:?}"))
}

fn call(id: i64, method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

fn initialize(id: i64) -> Value {
    call(
        id,
        "initialize",
        json!({"protocolVersion": "2025-06-18", "capabilities": {},
               "clientInfo": {"name": "test", "version": "1"}}),
    )
}

#[test]
fn the_mcp_bridge_carries_a_handshake_conversation_to_the_server() {
    let f = Fleet::start();
    let input = [
        initialize(1),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        call(2, "tools/list", json!({})),
        call(
            3,
            "tools/call",
            json!({"name": "create_task", "arguments": {"content": "through the bridge"}}),
        ),
        call(
            4,
            "tools/call",
            json!({"name": "no_such_tool", "arguments": {}}),
        ),
        call(5, "ping", json!({})),
    ];

    let (lines, stderr, status) = bridge(&f.server.base, &f.orchestrator, &input);

    assert!(status.success(), "exit 0 at the end of input: {stderr}");
    // One line per request; nothing for the notification.
    assert_eq!(lines.len(), 5, "{lines:#?}");
    assert_eq!(
        answer_to(&lines, json!(1))["result"]["protocolVersion"],
        "2025-06-18"
    );
    let tools = answer_to(&lines, json!(2))["result"]["tools"]
        .as_array()
        .expect("tools")
        .clone();
    assert!(tools.iter().any(|t| t["name"] == "wait_for_task"));
    // The tool ran on the server as the orchestrator.
    let created = &answer_to(&lines, json!(3))["result"];
    assert_eq!(created["isError"], json!(false), "{created}");
    let id = created["structuredContent"]["id"]
        .as_i64()
        .expect("task id");
    let task = f
        .client(&f.orchestrator)
        .task(id)
        .expect("the task over REST");
    assert_eq!(task["content"], "through the bridge");
    // The server's protocol error passes through as it is.
    assert_eq!(answer_to(&lines, json!(4))["error"]["code"], -32602);
    assert_eq!(answer_to(&lines, json!(5))["result"], json!({}));
}

#[test]
fn a_bad_key_is_a_json_rpc_error_that_names_the_401() {
    let f = Fleet::start();
    let input = [initialize(1), call(2, "ping", json!({}))];

    let (lines, stderr, status) = bridge(&f.server.base, "dlg_not_a_key", &input);

    assert!(status.success(), "{stderr}");
    for id in [1, 2] {
        let error = &answer_to(&lines, json!(id))["error"];
        assert_eq!(error["code"], -32603);
        let msg = error["message"].as_str().unwrap();
        assert!(msg.contains("401"), "{msg}");
    }
    assert!(stderr.contains("401"), "the cause is logged: {stderr}");
}

#[test]
fn the_mcp_bridge_sends_the_2026_headers_the_server_checks_and_bearer_for_the_project_token() {
    // The server answers -32020 when MCP-Protocol-Version, Mcp-Method or
    // Mcp-Name disagree with the body: every answer below that is not
    // that error shows the bridge derived them right, a non-ASCII name
    // (an encoded word) included.
    let f = Fleet::start();
    let meta = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                      "io.modelcontextprotocol/clientCapabilities": {}});
    let input = [
        call(1, "server/discover", json!({"_meta": meta})),
        call(
            2,
            "tools/call",
            json!({"name": "create_task", "arguments": {"content": "modern"}, "_meta": meta}),
        ),
        call(
            3,
            "tools/call",
            json!({"name": "tâche_spéciale", "arguments": {}, "_meta": meta}),
        ),
        call(4, "tools/list", json!({"_meta": meta})),
    ];

    let (lines, stderr, status) = bridge(&f.server.base, &f.server.token, &input);

    assert!(status.success(), "{stderr}");
    assert_eq!(lines.len(), 4, "{lines:#?}");
    for line in &lines {
        assert_ne!(line["error"]["code"], -32020, "a header mismatch: {line}");
        assert_ne!(line["error"]["code"], -32603, "not delivered: {line}");
    }
    assert!(answer_to(&lines, json!(1))["result"].is_object());
    let created = &answer_to(&lines, json!(2))["result"];
    assert_eq!(created["isError"], json!(false), "{created}");
    // The project token went as a bearer token: the task is the project's.
    let id = created["structuredContent"]["id"]
        .as_i64()
        .expect("task id");
    let task = f.admin.task(id).expect("the task over REST");
    assert_eq!(task["content"], "modern");
    assert_eq!(task["created_by_agent_id"], Value::Null);
    // The unknown (non-ASCII) tool reached the tool dispatch.
    assert_eq!(answer_to(&lines, json!(3))["error"]["code"], -32602);
    assert!(answer_to(&lines, json!(4))["result"]["tools"].is_array());
}

#[test]
fn a_long_tool_call_does_not_hold_up_a_ping_and_the_bridge_waits_for_it_at_eof() {
    let f = Fleet::start();
    let task = f
        .client(&f.orchestrator)
        .create_task(&json!({"content": "never finishes"}))
        .expect("create");
    let id = task["id"].as_i64().unwrap();
    let mut child = spawn_delega(
        &["mcp"],
        &[
            ("DELEGA_API_URL", &f.server.base),
            ("DELEGA_AGENT_KEY", &f.orchestrator),
        ],
    );
    let stdout = lines_of(child.stdout.take().unwrap());
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "{}", initialize(1)).unwrap();
    writeln!(
        stdin,
        "{}",
        call(
            2,
            "tools/call",
            json!({"name": "wait_for_task", "arguments": {"task_id": id, "timeout_seconds": 2}})
        )
    )
    .unwrap();
    writeln!(stdin, "{}", call(3, "ping", json!({}))).unwrap();
    // End of input while the long call is still running.
    drop(stdin);

    let mut order = Vec::new();
    for _ in 0..3 {
        let line: Value = serde_json::from_str(&stdout.recv_timeout(TIMEOUT).unwrap()).unwrap();
        order.push(line["id"].as_i64().unwrap());
        if line["id"] == 2 {
            // The wait ran out on the server: an answer, not a lost request.
            assert!(line.get("result").is_some(), "{line}");
        }
    }
    assert_eq!(order, [1, 3, 2], "the ping is answered before the wait");
    assert!(wait_exit(&mut child, TIMEOUT).success());
}

#[test]
fn the_mcp_bridge_answers_requests_with_an_error_when_the_server_is_down() {
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let input = [
        call(7, "ping", json!({})),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    ];

    let (lines, stderr, status) = bridge(&closed, "dlg_k", &input);

    assert!(status.success(), "{stderr}");
    assert_eq!(lines.len(), 1, "nothing for the notification: {lines:?}");
    assert_eq!(lines[0]["jsonrpc"], "2.0");
    assert_eq!(lines[0]["id"], 7);
    assert_eq!(lines[0]["error"]["code"], -32603);
    let msg = lines[0]["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("connection refused") && msg.contains(&closed),
        "{msg}"
    );
    assert!(stderr.contains("connection refused"), "{stderr}");
}

// ------------------------------------------------------------- README

/// The README's CLI session, as (command, expected output) pairs.
fn readme_session() -> Vec<(String, String)> {
    let block = helpers::readme_block("cli", "console");
    let mut session: Vec<(String, String)> = Vec::new();
    for line in block.lines() {
        match line.strip_prefix("$ ") {
            Some(cmd) => session.push((cmd.to_string(), String::new())),
            None => {
                let (_, out) = session.last_mut().expect("output after a command");
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    session
}

/// Masks what differs between runs: timestamps (not plain dates), agent
/// keys and uptime. Each mask has the width of what it hides, so table
/// columns still line up as they did.
fn mask(s: &str) -> String {
    let b = s.as_bytes();
    let digit = |i: usize| b.get(i).is_some_and(u8::is_ascii_digit);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let is_date = (0..10).all(|k| {
            if k == 4 || k == 7 {
                b.get(i + k) == Some(&b'-')
            } else {
                digit(i + k)
            }
        });
        let is_time = is_date
            && matches!(b.get(i + 10), Some(b'T' | b' '))
            && digit(i + 11)
            && digit(i + 12)
            && b.get(i + 13) == Some(&b':');
        if is_time {
            let mut j = i + 16;
            while j < b.len() && (b[j].is_ascii_digit() || b":.Z".contains(&b[j])) {
                j += 1;
            }
            out.extend(std::iter::repeat_n(b'~', j - i));
            i = j;
        } else if b[i..].starts_with(b"dlg_") {
            let mut j = i + 4;
            while j < b.len() && (b[j].is_ascii_alphanumeric() || b"_-".contains(&b[j])) {
                j += 1;
            }
            out.extend_from_slice(b"dlg_");
            out.extend(std::iter::repeat_n(b'*', j - i - 4));
            i = j;
        } else if b[i..].starts_with(b", up ") {
            let j = i + b[i..]
                .iter()
                .position(|c| *c == b')')
                .unwrap_or(b.len() - i);
            out.extend_from_slice(b", up <uptime>");
            i = j;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).expect("masking keeps UTF-8")
}

#[test]
fn the_readme_cli_session_replays_against_a_fresh_server() {
    let session = readme_session();
    assert!(session.len() > 10, "{session:?}");
    let server = TestServer::start();
    let bin_dir = std::path::Path::new(env!("CARGO_BIN_EXE_delega"))
        .parent()
        .unwrap();
    let mut script = String::new();
    for (cmd, _) in &session {
        script.push_str(&format!("printf '@@@\\n'\n{{ {cmd}; }} 2>&1\n"));
    }
    let mut bash = Command::new("bash");
    bash.args(["-c", &script]);
    for (k, _) in std::env::vars() {
        if k.starts_with("DELEGA_") {
            bash.env_remove(k);
        }
    }
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = bash
        .env("PATH", path)
        .env("DELEGA_API_URL", &server.base)
        .env("DELEGA_API_KEY", &server.token)
        .output()
        .expect("bash");
    let stdout =
        String::from_utf8_lossy(&out.stdout).replace(&server.base, "http://127.0.0.1:18890");
    let outputs: Vec<&str> = stdout.split("@@@\n").skip(1).collect();
    assert_eq!(outputs.len(), session.len(), "{stdout}");
    for ((cmd, expected), actual) in session.iter().zip(outputs) {
        assert_eq!(mask(actual), mask(expected), "$ {cmd}\n--- got:\n{actual}");
    }
}
