//! Test harness: starts the real `delega` binary on an ephemeral port with
//! a fresh temporary database, and talks HTTP to it.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{json, Value};

pub struct TestServer {
    child: Option<Child>,
    pub base: String,
    pub port: u16,
    /// The project token printed on first start.
    pub token: String,
    pub dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

/// Spawns the server; returns the child, its base URL and the token it
/// printed (if it printed one).
fn spawn(
    db: &PathBuf,
    env: &[(String, String)],
    port: u16,
) -> (Child, String, u16, Option<String>) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_delega"));
    cmd.args(["serve", "--port", &port.to_string(), "--db"])
        .arg(db)
        .stdout(Stdio::piped())
        .stdin(Stdio::null());
    if std::env::var_os("DELEGA_TEST_LOG").is_none() {
        cmd.stderr(Stdio::null());
    }
    for (k, _) in std::env::vars() {
        if k.starts_with("DELEGA_") && k != "DELEGA_TEST_LOG" {
            cmd.env_remove(k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("start delega");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut token = None;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(t) = line.split_whitespace().find(|w| w.starts_with("dlp_")) {
                token.get_or_insert_with(|| t.trim_end_matches('\'').to_string());
            }
            if let Some(addr) = line.strip_prefix("delega listening on ") {
                let _ = tx.send((addr.to_string(), token.clone()));
            }
        }
    });
    let (base, token) = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("server did not report its address");
    let port = base.rsplit(':').next().unwrap().parse().unwrap();
    (child, base, port, token)
}

impl TestServer {
    pub fn start() -> TestServer {
        Self::start_with(&[])
    }

    /// Starts with extra environment variables (e.g. `DELEGA_REQUIRE_AUTH`).
    pub fn start_with(env: &[(&str, &str)]) -> TestServer {
        Self::start_with_db(env, |_| {})
    }

    /// Like [`TestServer::start_with`], after `prepare` made the database
    /// file (an older schema, say).
    pub fn start_with_db(env: &[(&str, &str)], prepare: impl FnOnce(&Path)) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        prepare(&dir.path().join("delega.db"));
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let db = dir.path().join("delega.db");
        let (child, base, port, token) = spawn(&db, &env, 0);
        TestServer {
            child: Some(child),
            base,
            port,
            token: token.unwrap_or_default(),
            dir,
            env,
        }
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("delega.db")
    }

    /// Kills the process (SIGKILL: no graceful shutdown).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends SIGTERM and waits for the process to exit; returns its status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("running");
        let _ = Command::new("kill").arg(c.id().to_string()).status();
        c.wait().expect("wait")
    }

    /// Starts the server again on the same database and port.
    pub fn restart(&mut self) {
        self.kill();
        let (child, base, port, _) = spawn(&self.db_path(), &self.env, self.port);
        self.child = Some(child);
        self.base = base;
        self.port = port;
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A client authenticated with the project token.
    pub fn admin(&self) -> Client {
        Client::new(&self.base, Auth::Bearer(self.token.clone()))
    }

    pub fn anonymous(&self) -> Client {
        Client::new(&self.base, Auth::None)
    }

    /// Creates an agent (with the project token) and returns its client
    /// and id.
    pub fn agent(&self, name: &str, role: &str) -> (Client, i64) {
        let r = self
            .admin()
            .post("/api/agents", json!({ "name": name, "role": role }));
        assert_eq!(r.status, 201, "creating agent {name}: {}", r.body);
        let key = r.body["api_key"].as_str().expect("api_key").to_string();
        (
            Client::new(&self.base, Auth::Key(key)),
            r.body["id"].as_i64().unwrap(),
        )
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill();
    }
}

#[derive(Clone, Debug)]
pub enum Auth {
    None,
    Key(String),
    Bearer(String),
}

#[derive(Clone)]
pub struct Client {
    base: String,
    pub auth: Auth,
    agent: ureq::Agent,
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub body: Value,
    pub text: String,
    pub headers: Vec<(String, String)>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    /// Asserts the status and that the body is the JSON error shape.
    pub fn assert_error(&self, status: u16) -> &Self {
        assert_eq!(
            self.status, status,
            "expected {status}, got {}: {}",
            self.status, self.text
        );
        assert!(self.body["error"].is_string(), "error body: {}", self.text);
        assert!(self.body["code"].is_string(), "error code: {}", self.text);
        assert_eq!(
            self.body["status"],
            json!(status),
            "status field: {}",
            self.text
        );
        self
    }
}

impl Client {
    pub fn new(base: &str, auth: Auth) -> Client {
        Client {
            base: base.to_string(),
            auth,
            agent: ureq::AgentBuilder::new()
                .timeout(Duration::from_secs(30))
                .redirects(0)
                .build(),
        }
    }

    pub fn key(&self) -> Option<&str> {
        match &self.auth {
            Auth::Key(k) => Some(k),
            _ => None,
        }
    }

    /// Sends raw bytes with extra headers.
    pub fn raw(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let mut req = self
            .agent
            .request(method, &format!("{}{}", self.base, path))
            .set("Content-Type", "application/json");
        match &self.auth {
            Auth::None => {}
            Auth::Key(k) => req = req.set("X-Agent-Key", k),
            Auth::Bearer(t) => req = req.set("Authorization", &format!("Bearer {t}")),
        }
        for (k, v) in headers {
            req = req.set(k, v);
        }
        let result = match body {
            Some(b) => req.send_bytes(b),
            None => req.call(),
        };
        let resp = match result {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{method} {path}: transport error {e}"),
        };
        let status = resp.status();
        let headers = resp
            .headers_names()
            .into_iter()
            .filter_map(|n| resp.header(&n).map(|v| (n.clone(), v.to_string())))
            .collect();
        let text = resp.into_string().unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp {
            status,
            body,
            text,
            headers,
        }
    }

    pub fn send(&self, method: &str, path: &str, body: Option<Value>) -> Resp {
        let bytes = body.map(|b| serde_json::to_vec(&b).unwrap());
        self.raw(method, path, bytes.as_deref(), &[])
    }

    pub fn get(&self, path: &str) -> Resp {
        self.send("GET", path, None)
    }
    pub fn post(&self, path: &str, body: Value) -> Resp {
        self.send("POST", path, Some(body))
    }
    pub fn put(&self, path: &str, body: Value) -> Resp {
        self.send("PUT", path, Some(body))
    }
    pub fn patch(&self, path: &str, body: Value) -> Resp {
        self.send("PATCH", path, Some(body))
    }
    pub fn delete(&self, path: &str) -> Resp {
        self.send("DELETE", path, None)
    }

    /// Creates a task and returns its JSON (asserting 201).
    pub fn create_task(&self, body: Value) -> Value {
        let r = self.post("/api/tasks", body);
        assert_eq!(r.status, 201, "create task: {}", r.text);
        r.body
    }
}

// ---------------------------------------------------------------- helpers

/// The `id` of a JSON object (task, agent, link…).
pub fn id_of(v: &Value) -> i64 {
    v["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("no integer id in {v}"))
}

/// One row of the `delegation_events` table, read straight from the file.
#[derive(Debug, Clone, PartialEq)]
pub struct DelegationRow {
    pub id: i64,
    pub task_id: i64,
    pub root_task_id: Option<i64>,
    pub parent_task_id: Option<i64>,
    pub kind: String,
    pub from_agent_id: Option<i64>,
    pub to_agent_id: Option<i64>,
    pub actor_agent_id: Option<i64>,
    pub note: Option<String>,
    pub created_at: String,
}

impl TestServer {
    /// Opens the server's SQLite file directly while the server runs.
    pub fn db(&self) -> rusqlite::Connection {
        let conn = rusqlite::Connection::open(self.db_path()).expect("open the database file");
        conn.busy_timeout(Duration::from_secs(20))
            .expect("busy timeout");
        conn
    }

    /// Every row of `delegation_events`, in id order.
    pub fn delegation_rows(&self) -> Vec<DelegationRow> {
        let conn = self.db();
        let mut stmt = conn
            .prepare(
                "SELECT id, task_id, root_task_id, parent_task_id, kind, from_agent_id, \
                 to_agent_id, actor_agent_id, note, created_at FROM delegation_events ORDER BY id",
            )
            .expect("delegation_events is readable");
        let rows = stmt
            .query_map([], |r| {
                Ok(DelegationRow {
                    id: r.get(0)?,
                    task_id: r.get(1)?,
                    root_task_id: r.get(2)?,
                    parent_task_id: r.get(3)?,
                    kind: r.get(4)?,
                    from_agent_id: r.get(5)?,
                    to_agent_id: r.get(6)?,
                    actor_agent_id: r.get(7)?,
                    note: r.get(8)?,
                    created_at: r.get(9)?,
                })
            })
            .expect("query delegation_events");
        rows.collect::<Result<_, _>>()
            .expect("read delegation_events")
    }
}

impl Client {
    /// GETs a task (asserting 200).
    pub fn task(&self, id: i64) -> Value {
        let r = self.get(&format!("/api/tasks/{id}"));
        assert_eq!(r.status, 200, "GET task {id}: {}", r.text);
        r.body
    }

    /// The ids of a JSON array of objects, in order.
    pub fn ids(list: &Value) -> Vec<i64> {
        list.as_array()
            .unwrap_or_else(|| panic!("not an array: {list}"))
            .iter()
            .map(id_of)
            .collect()
    }
}

impl TestServer {
    /// A client with the given credentials.
    pub fn client(&self, auth: Auth) -> Client {
        Client::new(&self.base, auth)
    }

    /// A client authenticating with an agent key (`X-Agent-Key`).
    pub fn with_key(&self, key: &str) -> Client {
        self.client(Auth::Key(key.to_string()))
    }

    /// Creates an agent with the project token from a full body; returns
    /// the 201 body (which carries `api_key`).
    pub fn create_agent(&self, body: Value) -> Value {
        let r = self.admin().post("/api/agents", body.clone());
        assert_eq!(r.status, 201, "creating agent {body}: {}", r.text);
        r.body
    }

    /// The task as the project token sees it (for before/after checks).
    pub fn task_snapshot(&self, id: i64) -> Value {
        let r = self.admin().get(&format!("/api/tasks/{id}"));
        assert_eq!(r.status, 200, "GET task {id}: {}", r.text);
        r.body
    }

    /// Ids of every task, completed included, as the project token sees them.
    pub fn all_task_ids(&self) -> Vec<i64> {
        let r = self.admin().get("/api/tasks?include_completed=true");
        assert_eq!(r.status, 200, "list tasks: {}", r.text);
        ids(&r.body)
    }
}

impl Resp {
    /// Asserts a 422 whose `detail.field` is `field`.
    pub fn assert_field_error(&self, field: &str) -> &Self {
        self.assert_error(422);
        assert_eq!(
            self.body["detail"]["field"],
            json!(field),
            "detail.field: {}",
            self.text
        );
        self
    }
}

/// The `id`s of a JSON array of objects, in order.
pub fn ids(list: &Value) -> Vec<i64> {
    list.as_array()
        .unwrap_or_else(|| panic!("expected a JSON array, got {list}"))
        .iter()
        .map(|t| t["id"].as_i64().expect("id"))
        .collect()
}

/// The UTC date `days` from today, `YYYY-MM-DD`.
pub fn date_in(days: i64) -> String {
    let d = time::OffsetDateTime::now_utc().date() + time::Duration::days(days);
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// Output of running the `delega` binary to completion.
pub struct Run {
    pub status: std::process::ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the `delega` binary with `args` and extra `env` (inherited
/// `DELEGA_*` variables removed); kills it and panics if it is still
/// running after `timeout`.
pub fn run_delega(args: &[&str], env: &[(&str, &str)], timeout: Duration) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_delega"));
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, _) in std::env::vars() {
        if k.starts_with("DELEGA_") {
            cmd.env_remove(k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("start delega");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut out, &mut s);
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut s);
        s
    });
    let deadline = std::time::Instant::now() + timeout;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("delega {args:?} still running after {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Run {
        status,
        stdout: out_t.join().unwrap(),
        stderr: err_t.join().unwrap(),
    }
}
