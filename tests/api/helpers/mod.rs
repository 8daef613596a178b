//! The test harness, shared by every integration test: a server on an
//! ephemeral port with a fresh temporary database, and an HTTP client.
//!
//! [`TestServer::start`] runs the server in this process (the same
//! `Application` that `delega serve` runs, on a listener bound here, with
//! a shutdown future), which is fast enough for every test to have its
//! own. [`TestServer::process`] runs the real binary, for what only a
//! process can show: signals, SIGKILL, what it prints on first start.

#![allow(dead_code)]

pub mod receiver;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Once};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use delega::app::Application;
use delega::config::{Config, Overrides};
use delega::hub::Hub;
use serde_json::{json, Value};

/// How the server runs.
enum Running {
    InProcess {
        stop: Option<tokio::sync::oneshot::Sender<()>>,
        thread: Option<JoinHandle<()>>,
        /// The server's hub, for what only the inside can count (how many
        /// times waiting claimers were woken).
        hub: Arc<Hub>,
    },
    Process(Option<Child>),
    Stopped,
}

pub struct TestServer {
    running: Running,
    pub base: String,
    pub port: u16,
    /// The project token generated on first start.
    pub token: String,
    pub dir: tempfile::TempDir,
    env: Vec<(String, String)>,
    in_process: bool,
}

/// Spawns the binary; returns the child, its base URL and the token it
/// printed (if it printed one).
fn spawn(
    db: &PathBuf,
    env: &[(String, String)],
    port: u16,
) -> (Child, String, u16, Option<String>) {
    let mut cmd = Command::new(binary());
    cmd.args(["serve", "--port", &port.to_string(), "--db"])
        .arg(db)
        .stdout(Stdio::piped())
        .stdin(Stdio::null());
    if std::env::var_os("DELEGA_TEST_LOG").is_none() {
        cmd.stderr(Stdio::null());
    }
    for (k, _) in std::env::vars() {
        if k.starts_with("DELEGA_") && k != "DELEGA_TEST_LOG" && k != "DELEGA_TEST_BINARY" {
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

/// The binary [`TestServer::process`] runs: this build's, or the one
/// `DELEGA_TEST_BINARY` names — with it set, every test runs against that
/// binary (how a new test is shown to fail on an older build).
fn binary() -> PathBuf {
    std::env::var_os("DELEGA_TEST_BINARY")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_delega")))
}

/// Logs to stderr when `DELEGA_TEST_LOG` is set (once per process).
fn init_logging() {
    static LOGGING: Once = Once::new();
    LOGGING.call_once(|| {
        if let Ok(level) = std::env::var("DELEGA_TEST_LOG") {
            let _ = env_logger::Builder::new().parse_filters(&level).try_init();
        }
    });
}

/// Starts the application in a thread of this process, configured from
/// `env` as the binary would be from its environment; returns how to stop
/// it, its port and the token generated on first start.
fn start_in_process(
    db: &Path,
    env: &[(String, String)],
    port: u16,
) -> (Running, u16, Option<String>) {
    init_logging();
    let flags = Overrides {
        db_path: Some(db.to_path_buf()),
        ..Default::default()
    };
    let lookup = |k: &str| env.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
    let mut config = Config::load_from(&flags, lookup).expect("test configuration");
    if lookup("DELEGA_WORKERS").is_none() {
        config.workers = 1;
    }
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind 127.0.0.1");
    let port = listener.local_addr().expect("local address").port();
    let (ready_tx, ready_rx) = mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let served = actix_web::rt::System::new().block_on(async move {
            let app = match Application::build_on(config, listener) {
                Ok(app) => app,
                Err(e) => {
                    let _ = ready_tx.send(Err(format!("{e:#}")));
                    return Ok(());
                }
            };
            let _ = ready_tx.send(Ok((app.new_project_token.clone(), app.store.hub().clone())));
            app.run_until_stopped(async {
                let _ = stop_rx.await;
            })
            .await
        });
        if let Err(e) = served {
            eprintln!("test server failed: {e}");
        }
    });
    let (token, hub) = ready_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("server did not start")
        .unwrap_or_else(|e| panic!("server did not start: {e}"));
    let running = Running::InProcess {
        stop: Some(stop_tx),
        thread: Some(thread),
        hub,
    };
    (running, port, token)
}

impl TestServer {
    /// A server in this process.
    pub fn start() -> TestServer {
        Self::start_with(&[])
    }

    /// Starts with configuration from environment variables (e.g.
    /// `DELEGA_REQUIRE_AUTH`), read as the binary reads its environment.
    pub fn start_with(env: &[(&str, &str)]) -> TestServer {
        Self::start_with_db(env, |_| {})
    }

    /// Like [`TestServer::start_with`], after `prepare` made the database
    /// file (an older schema, say).
    pub fn start_with_db(env: &[(&str, &str)], prepare: impl FnOnce(&Path)) -> TestServer {
        Self::launch(env, prepare, true)
    }

    /// The real binary, as a child process.
    pub fn process() -> TestServer {
        Self::process_with(&[])
    }

    /// The real binary with extra environment variables.
    pub fn process_with(env: &[(&str, &str)]) -> TestServer {
        Self::launch(env, |_| {}, false)
    }

    fn launch(env: &[(&str, &str)], prepare: impl FnOnce(&Path), in_process: bool) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("delega.db");
        prepare(&db);
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut server = TestServer {
            running: Running::Stopped,
            base: String::new(),
            port: 0,
            token: String::new(),
            dir,
            env,
            in_process: in_process && std::env::var_os("DELEGA_TEST_BINARY").is_none(),
        };
        server.run_on(0);
        server
    }

    /// Starts the server on `port` (0: any free port).
    fn run_on(&mut self, port: u16) {
        let db = self.db_path();
        let (running, port, token) = if self.in_process {
            start_in_process(&db, &self.env, port)
        } else {
            let (child, _, port, token) = spawn(&db, &self.env, port);
            (Running::Process(Some(child)), port, token)
        };
        self.running = running;
        self.port = port;
        self.base = format!("http://127.0.0.1:{port}");
        if let Some(token) = token {
            self.token = token;
        }
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("delega.db")
    }

    /// The hub of a server running in this process.
    pub fn hub(&self) -> Arc<Hub> {
        match &self.running {
            Running::InProcess { hub, .. } => hub.clone(),
            _ => panic!("hub() needs a server running in this process"),
        }
    }

    /// Stops the server: SIGKILL for a process (no graceful shutdown), the
    /// graceful stop for one in this process.
    pub fn kill(&mut self) {
        match std::mem::replace(&mut self.running, Running::Stopped) {
            Running::Process(Some(mut c)) => {
                let _ = c.kill();
                let _ = c.wait();
            }
            Running::InProcess { stop, thread, .. } => {
                if let Some(stop) = stop {
                    let _ = stop.send(());
                }
                if let Some(thread) = thread {
                    let _ = thread.join();
                }
            }
            _ => {}
        }
    }

    /// Sends SIGTERM to the process and waits for it to exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let Running::Process(Some(mut c)) = std::mem::replace(&mut self.running, Running::Stopped)
        else {
            panic!("terminate() needs a server started with TestServer::process()");
        };
        let _ = Command::new("kill").arg(c.id().to_string()).status();
        c.wait().expect("wait")
    }

    /// Starts the server again on the same database and port.
    pub fn restart(&mut self) {
        self.kill();
        self.run_on(self.port);
    }

    /// Stops the server, runs `sql` on its database (to make it look as an
    /// older version left it, say) and starts it again.
    pub fn restart_after(&mut self, sql: &str) {
        self.kill();
        self.db()
            .execute_batch(sql)
            .expect("rewriting the database");
        self.run_on(self.port);
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

/// Polls `f` every 50 ms until it gives a value and returns it; fails the
/// test, naming `what`, once `timeout` has passed. For what the server
/// does in the background (deliveries, lease expiry, recurrences).
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// [`wait_for`] a condition.
pub fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    wait_for(what, timeout, || f().then_some(()))
}

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
/// The ```` ```lang ```` block the README holds between `<!-- marker -->`
/// and `<!-- /marker -->`.
pub fn readme_block(marker: &str, lang: &str) -> String {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme
        .find(&format!("<!-- {marker} -->"))
        .unwrap_or_else(|| panic!("README marker {marker}"));
    let end = readme
        .find(&format!("<!-- /{marker} -->"))
        .unwrap_or_else(|| panic!("README end marker {marker}"));
    readme[start..end]
        .split(&format!("```{lang}\n"))
        .nth(1)
        .and_then(|b| b.split("```").next())
        .unwrap_or_else(|| panic!("a {lang} block in README section {marker}"))
        .to_string()
}

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

/// The `delega` binary with `args` and `env`, stdout and stderr piped;
/// inherited `DELEGA_*` variables removed, so only `env` configures it.
pub fn delega_command(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_delega"));
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    for (k, _) in std::env::vars() {
        if k.starts_with("DELEGA_") {
            cmd.env_remove(k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Runs the `delega` binary with `args` and extra `env` (inherited
/// `DELEGA_*` variables removed); kills it and panics if it is still
/// running after `timeout`.
pub fn run_delega(args: &[&str], env: &[(&str, &str)], timeout: Duration) -> Run {
    let mut child = delega_command(args, env)
        .stdin(Stdio::null())
        .spawn()
        .expect("start delega");
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
