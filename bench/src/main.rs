//! `delega-bench`: a load generator for the Delega server.
//!
//! It starts its own `delega serve` on a fresh database in a temporary
//! directory, measures startup time and memory, drives a set of workloads
//! over loopback keep-alive connections (a lean hand-written HTTP/1.1
//! client, all connections on one thread, so it takes little CPU from the
//! server on a small machine) and prints a copy-pastable table. All traffic goes to 127.0.0.1; every loop
//! is bounded by the configured duration (or a fixed timeout) and the server
//! is killed when the bench ends, successfully or not.
//!
//! ```text
//! cargo run --release -p delega-bench -- --connections 16 --duration 10 \
//!     --workloads create,get,list,pipeline,webhook,sse,claim,longpoll,scale,mcp,dashboard
//! ```

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

mod dashboard;
mod mcp;
mod queue;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Parser, ValueEnum};
use rand::Rng;
use serde_json::{json, Value};

/// Longest wait for the server to print its address and answer `/health`.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait for outstanding webhook deliveries after the creates.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(60);
/// Per-request timeout of the HTTP clients.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Tasks created for the `get` and `list` workloads and in the chain tree.
const SEED_TASKS: usize = 1000;
/// Chain requests timed on the 1,000-task tree (fewer if the duration runs out).
const CHAIN_SAMPLES: usize = 200;
/// Children per node of the 1,000-task tree.
const TREE_FANOUT: usize = 10;

#[derive(Parser, Debug)]
#[command(
    name = "delega-bench",
    about = "Load generator for the delega server (starts its own server, loopback only)"
)]
struct Args {
    /// Concurrent clients (a pipeline client uses two connections).
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Seconds each workload runs.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Workloads to run, comma-separated. They always run in the order
    /// create, get, list, pipeline, webhook (the webhook stays registered).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "create,get,list,pipeline,webhook"
    )]
    workloads: Vec<Workload>,
    /// The delega binary [default: `delega` next to this executable].
    #[arg(long)]
    server: Option<PathBuf>,
    /// Tasks created in the webhook burst (fewer if the duration runs out first).
    #[arg(long, default_value_t = 5000)]
    webhook_tasks: u64,
    /// Creates per second in the webhook low-rate phase.
    #[arg(long, default_value_t = 200)]
    webhook_rate: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
enum Workload {
    Create,
    Get,
    List,
    Pipeline,
    Webhook,
    Sse,
    /// Workers loop claim → complete on queues of 2,000, 20,000 and
    /// 200,000 tasks (100,000 of them done), three rounds, servers of their
    /// own; each drain stops when its queue is empty or after --duration.
    Claim,
    /// Create throughput with 0, 100 and 1,000 idle long-pollers (each
    /// count runs four bursts of --duration); how soon a waiting claimer
    /// gets a task.
    Longpoll,
    /// The everyday requests on 10,000 and 1,000,000 tasks, servers of
    /// their own, five rounds of 160 claims and 800 of each read
    /// (--duration does not apply).
    Scale,
    /// MCP tools/call against the same REST operation; tools/list latency.
    Mcp,
    /// Create throughput with 50 dashboard tabs streaming the board.
    Dashboard,
}

fn main() {
    if let Err(e) = run(Args::parse()) {
        eprintln!("delega-bench: {e:#}");
        std::process::exit(1);
    }
}

fn run(mut args: Args) -> Result<()> {
    if args.connections == 0 || args.duration == 0 {
        bail!("--connections and --duration must be at least 1");
    }
    args.workloads.sort();
    args.workloads.dedup();
    queue::check(&args)?;
    queue::raise_file_limit();
    let binary = match &args.server {
        Some(path) => path.clone(),
        None => default_server_binary()?,
    };

    let mut server = Server::start(&binary)?;
    let idle = server.memory()?;
    let admin = Client::new(&server.base, &server.token);
    let mut report = Report::default();

    for &workload in &args.workloads {
        progress(&format!("running {workload:?}"));
        // `claim` and `scale` measure servers of their own and leave the
        // pid on one they stopped: every workload starts on this one.
        SERVER_PID.store(u64::from(server.child.id()), Ordering::Relaxed);
        let result = match workload {
            Workload::Create => bench_create(&admin, &args, &mut report),
            Workload::Get => bench_get(&admin, &args, &mut report),
            Workload::List => bench_list(&admin, &args, &mut report),
            Workload::Pipeline => bench_pipeline(&admin, &args, &mut report),
            Workload::Webhook => bench_webhook(&admin, &args, &mut report),
            Workload::Sse => bench_sse(&admin, &server, &mut report),
            Workload::Claim => queue::bench_claim(&binary, &args, &mut report),
            Workload::Longpoll => queue::bench_longpoll(&admin, &args, &mut report),
            Workload::Scale => queue::bench_scale(&binary, &mut report),
            Workload::Mcp => mcp::bench_mcp(&admin, &args, &mut report),
            Workload::Dashboard => dashboard::bench_dashboard(&admin, &server, &args, &mut report),
        };
        server.check_alive()?;
        result.with_context(|| format!("workload {workload:?}"))?;
    }

    let after = server.memory()?;
    report.print(&args, &server, idle, after);
    Ok(())
}

fn progress(message: &str) {
    eprintln!("[delega-bench] {message}");
}

/// `delega` in the directory of this executable (`target/release/`).
/// Under `cargo run` it is built first (a no-op when up to date), so one
/// command builds both and runs the bench.
fn default_server_binary() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot locate the bench executable")?;
    let dir = exe
        .parent()
        .ok_or_else(|| anyhow!("{} has no parent directory", exe.display()))?;
    if let Some(cargo) = std::env::var_os("CARGO") {
        let profile = dir
            .file_name()
            .and_then(|p| p.to_str())
            .unwrap_or("release");
        let mut build = Command::new(cargo);
        build.args(["build", "-p", "delega", "--bin", "delega"]);
        if profile == "release" {
            build.arg("--release");
        }
        let status = build
            .status()
            .context("cannot run cargo to build the server")?;
        if !status.success() {
            bail!("building the server failed ({status})");
        }
    }
    let path = dir.join("delega");
    if !path.is_file() {
        bail!(
            "no server binary at {}: build it (cargo build --release --bin delega) or pass --server",
            path.display()
        );
    }
    Ok(path)
}

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

fn micros(d: Duration) -> u64 {
    d.as_micros().try_into().unwrap_or(u64::MAX)
}

// ------------------------------------------------------------------ server

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<TempDir> {
        let unique = format!(
            "delega-bench-{}-{}",
            std::process::id(),
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        );
        let path = std::env::temp_dir().join(unique);
        std::fs::create_dir_all(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        Ok(TempDir(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The server under test: killed (and its database removed) when dropped.
struct Server {
    child: Child,
    base: String,
    token: String,
    startup: Duration,
    log: PathBuf,
    binary: PathBuf,
    // Declared last so it is removed after the child is gone.
    _dir: TempDir,
}

/// Resident memory of a process, in KiB.
#[derive(Clone, Copy)]
struct Memory {
    rss_kb: u64,
    peak_kb: u64,
}

impl Server {
    /// Starts `delega serve` on a fresh database and waits until `/health`
    /// answers, measuring the time from spawning the process.
    fn start(binary: &Path) -> Result<Server> {
        Self::start_with(binary, &[])
    }

    /// Like [`Server::start`], with extra environment variables.
    fn start_with(binary: &Path, env: &[(&str, &str)]) -> Result<Server> {
        Self::start_in(binary, TempDir::new()?, env)
    }

    /// Stops the server (SIGTERM: a clean shutdown), lets `fill` change its
    /// database file, and starts it again on the same file and token.
    fn refill(mut self, fill: impl FnOnce(&Path) -> Result<()>) -> Result<Server> {
        let _ = std::process::Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        self.child.wait()?;
        let binary = self.binary.clone();
        let token = self.token.clone();
        let dir = std::mem::replace(&mut self._dir, TempDir(PathBuf::new()));
        drop(self);
        fill(&dir.0.join("bench.db"))?;
        Self::start_in(&binary, dir, &[("DELEGA_PROJECT_TOKEN", &token)])
    }

    fn start_in(binary: &Path, dir: TempDir, env: &[(&str, &str)]) -> Result<Server> {
        let log = dir.0.join("server.log");
        let log_file =
            File::create(&log).with_context(|| format!("cannot create {}", log.display()))?;
        let mut command = Command::new(binary);
        command
            .arg("serve")
            .args(["--bind", "127.0.0.1", "--port", "0", "--db"])
            .arg(dir.0.join("bench.db"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file));
        // The caller's DELEGA_* settings (a fixed token, a config file, a
        // rate limit…) would change what is measured.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("DELEGA_") {
                command.env_remove(key);
            }
        }
        command.env("DELEGA_ALLOW_PRIVATE_WEBHOOKS", "true");
        for (k, v) in env {
            command.env(k, v);
        }
        let fixed_token = env
            .iter()
            .find(|(k, _)| *k == "DELEGA_PROJECT_TOKEN")
            .map(|(_, v)| v.to_string());

        let spawned = Instant::now();
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let stdout = child.stdout.take();
        SERVER_PID.store(u64::from(child.id()), Ordering::Relaxed);
        let mut server = Server {
            child,
            base: String::new(),
            token: fixed_token.unwrap_or_default(),
            startup: Duration::ZERO,
            log,
            binary: binary.to_path_buf(),
            _dir: dir,
        };
        let stdout = stdout.ok_or_else(|| anyhow!("the server's stdout was not captured"))?;
        server.await_ready(stdout, spawned)?;
        Ok(server)
    }

    fn await_ready(&mut self, stdout: std::process::ChildStdout, spawned: Instant) -> Result<()> {
        let deadline = spawned + STARTUP_TIMEOUT;
        // Forward stdout lines until the address appears, then keep
        // draining so the server never blocks on a full pipe.
        let (tx, rx) = mpsc::channel::<String>();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let mut token = None;
        let base = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match rx.recv_timeout(left) {
                Ok(line) => line,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    bail!("the server printed no address within {STARTUP_TIMEOUT:?}")
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait()?;
                    bail!(
                        "the server exited during startup ({status}); its log:\n{}",
                        self.log_tail()
                    )
                }
            };
            if token.is_none() {
                token = line
                    .split_whitespace()
                    .find_map(|word| word.find("dlp_").map(|at| &word[at..]))
                    .map(|word| {
                        word.trim_end_matches(|c: char| {
                            !(c.is_ascii_alphanumeric() || c == '-' || c == '_')
                        })
                        .to_string()
                    });
            }
            if let Some((_, address)) = line.split_once("listening on ") {
                break address.trim().trim_end_matches('/').to_string();
            }
        };
        if !base.starts_with("http://127.0.0.1:") {
            bail!("the server listens on {base}, not on 127.0.0.1");
        }
        if let Some(token) = token {
            self.token = token;
        }
        if self.token.is_empty() {
            bail!("the server printed no dlp_ project token (is the database fresh?)");
        }

        let health = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(1))
            .build();
        let url = format!("{base}/health");
        loop {
            if let Ok(resp) = health.get(&url).call() {
                if resp.status() == 200 {
                    self.startup = spawned.elapsed();
                    break;
                }
            }
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "the server exited during startup ({status}); its log:\n{}",
                    self.log_tail()
                );
            }
            if Instant::now() >= deadline {
                bail!("{url} did not answer 200 within {STARTUP_TIMEOUT:?}");
            }
            thread::sleep(Duration::from_millis(1));
        }
        self.base = base;
        Ok(())
    }

    /// `VmRSS` and `VmHWM` from `/proc/<pid>/status`.
    fn memory(&self) -> Result<Memory> {
        let path = format!("/proc/{}/status", self.child.id());
        let status =
            std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
        let field = |name: &str| -> Result<u64> {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|kb| kb.parse().ok())
                .ok_or_else(|| anyhow!("no {name} in {path}"))
        };
        Ok(Memory {
            rss_kb: field("VmRSS:")?,
            peak_kb: field("VmHWM:")?,
        })
    }

    fn check_alive(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "the server exited ({status}); its log:\n{}",
                self.log_tail()
            );
        }
        Ok(())
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ------------------------------------------------------------------ client

/// One keep-alive HTTP client with one credential.
#[derive(Clone)]
struct Client {
    http: ureq::Agent,
    base: Arc<str>,
    auth: Arc<str>,
}

struct Reply {
    status: u16,
    body: String,
}

impl Reply {
    /// This reply, if it has the expected status.
    fn expect(self, status: u16, what: &str) -> Result<Reply> {
        if self.status == status {
            return Ok(self);
        }
        let mut body = self.body;
        if body.len() > 300 {
            let mut cut = 300;
            while !body.is_char_boundary(cut) {
                cut -= 1;
            }
            body.truncate(cut);
            body.push('…');
        }
        bail!("{what}: expected {status}, got {}: {body}", self.status)
    }

    fn json(&self) -> Result<Value> {
        serde_json::from_str(&self.body).context("the answer is not JSON")
    }

    /// The `id` of the JSON object answered.
    fn id(&self) -> Result<i64> {
        self.json()?
            .get("id")
            .and_then(Value::as_i64)
            .ok_or_else(|| anyhow!("the answer has no numeric id: {}", self.body))
    }
}

impl Client {
    fn new(base: &str, credential: &str) -> Client {
        Client {
            http: Self::agent(),
            base: base.into(),
            auth: format!("Bearer {credential}").into(),
        }
    }

    fn agent() -> ureq::Agent {
        ureq::AgentBuilder::new()
            .timeout(REQUEST_TIMEOUT)
            .redirects(0)
            .build()
    }

    /// The same server and credential over a connection of its own.
    fn fresh(&self) -> Client {
        Client {
            http: Self::agent(),
            ..self.clone()
        }
    }

    /// Another credential, on a connection of its own.
    fn with_key(&self, credential: &str) -> Client {
        Client::new(&self.base, credential)
    }

    /// Sends one request and reads the whole answer (so the connection is
    /// reused). Any status is a reply; only transport failures are errors.
    fn send(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Reply> {
        let url = format!("{}{path}", self.base);
        let request = self
            .http
            .request(method, &url)
            .set("Authorization", &self.auth);
        let result = match body {
            Some(body) => request
                .set("Content-Type", "application/json")
                .send_string(&body.to_string()),
            None => request.call(),
        };
        let response = match result {
            Ok(r) | Err(ureq::Error::Status(_, r)) => r,
            Err(e) => return Err(anyhow!("{method} {path}: {e}")),
        };
        let status = response.status();
        let mut text = String::new();
        response
            .into_reader()
            .read_to_string(&mut text)
            .with_context(|| format!("{method} {path}: reading the answer"))?;
        Ok(Reply { status, body: text })
    }

    fn get(&self, path: &str) -> Result<Reply> {
        self.send("GET", path, None)
    }

    fn post(&self, path: &str, body: &Value) -> Result<Reply> {
        self.send("POST", path, Some(body))
    }
}

/// Creates a worker agent with the project token; returns its id and key.
fn create_agent(admin: &Client, name: &str) -> Result<(i64, String)> {
    let reply = admin
        .post("/api/agents", &json!({"name": name, "role": "worker"}))?
        .expect(201, &format!("POST /api/agents ({name})"))?;
    let body = reply.json()?;
    let id = body.get("id").and_then(Value::as_i64);
    let key = body.get("api_key").and_then(Value::as_str);
    match (id, key) {
        (Some(id), Some(key)) => Ok((id, key.to_string())),
        _ => bail!("POST /api/agents answered no id/api_key: {}", reply.body),
    }
}

/// Runs `count` set-up calls over `conns` connections; results in index order.
fn parallel<T: Send>(
    client: &Client,
    conns: usize,
    count: usize,
    f: impl Fn(&Client, usize) -> Result<T> + Sync,
) -> Result<Vec<T>> {
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let per_thread: Vec<Result<Vec<(usize, T)>>> = thread::scope(|s| {
        let handles: Vec<_> = (0..conns.min(count.max(1)))
            .map(|_| {
                s.spawn(|| {
                    let client = client.fresh();
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= count || failed.load(Ordering::Relaxed) {
                            return Ok(done);
                        }
                        match f(&client, i) {
                            Ok(v) => done.push((i, v)),
                            Err(e) => {
                                failed.store(true, Ordering::Relaxed);
                                return Err(e);
                            }
                        }
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow!("a set-up thread panicked")))
            })
            .collect()
    });
    let mut all = Vec::with_capacity(count);
    for part in per_thread {
        all.extend(part?);
    }
    all.sort_by_key(|(i, _)| *i);
    Ok(all.into_iter().map(|(_, v)| v).collect())
}

// ------------------------------------------------------------------- stats

/// Percentiles of latencies (µs), by nearest rank.
#[derive(Clone, Copy, Default)]
struct Summary {
    p50: u64,
    p99: u64,
    max: u64,
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn summarize(mut values: Vec<u64>) -> Summary {
    values.sort_unstable();
    Summary {
        p50: percentile(&values, 50.0),
        p99: percentile(&values, 99.0),
        max: values.last().copied().unwrap_or(0),
    }
}

fn ms(us: u64) -> String {
    format!("{:.2}", us as f64 / 1000.0)
}

// -------------------------------------------------------------------- load

/// What one timed run produced.
struct Load {
    latencies_us: Vec<u64>,
    errors: u64,
    elapsed: Duration,
    first_error: Option<String>,
    /// CPU time the server process used during the run.
    server_cpu: Duration,
}

/// The server's pid, for reading its CPU time.
static SERVER_PID: AtomicU64 = AtomicU64::new(0);

/// User + system CPU time of the server so far (from `/proc/<pid>/stat`).
fn server_cpu_time() -> Duration {
    let pid = SERVER_PID.load(Ordering::Relaxed);
    cpu_of(&format!("/proc/{pid}/stat"))
}

/// CPU time so far of the server's webhook threads (`delega-webhook*`).
fn webhook_threads_cpu_time() -> Duration {
    let pid = SERVER_PID.load(Ordering::Relaxed);
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Duration::ZERO;
    };
    tasks
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm"))
                .is_ok_and(|c| c.starts_with("delega-webhook"))
        })
        .map(|t| cpu_of(&t.path().join("stat").to_string_lossy()))
        .sum()
}

fn cpu_of(stat_path: &str) -> Duration {
    let Ok(stat) = std::fs::read_to_string(stat_path) else {
        return Duration::ZERO;
    };
    // Fields after the parenthesised command name; utime and stime are
    // the 14th and 15th fields overall, in clock ticks (100 per second).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse().ok())
        .collect();
    Duration::from_millis(fields.iter().sum::<u64>() * 10)
}

impl Load {
    fn ok(&self) -> u64 {
        self.latencies_us.len() as u64
    }

    fn rate(&self) -> f64 {
        self.ok() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The server's CPU time per successful request, in µs.
    fn cpu_us_per_request(&self) -> f64 {
        self.server_cpu.as_secs_f64() * 1e6 / self.ok().max(1) as f64
    }
}

// --------------------------------------------------------------------- sse

/// Concurrent `GET /events` subscribers for the `sse` workload.
const SSE_SUBSCRIBERS: usize = 200;
/// Events each subscriber must receive.
const SSE_EVENTS: usize = 5;

/// Opens `GET /api/events?{query}` with `token` on a connection of its
/// own and waits for the stream's `: connected` comment.
pub(crate) async fn open_event_stream(
    addr: &str,
    token: &str,
    query: &str,
) -> Result<tokio::net::TcpStream> {
    use tokio::io::AsyncWriteExt;
    let request = format!(
        "GET /api/events?{query} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\
         Authorization: Bearer {token}\r\n\r\n"
    );
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.write_all(request.as_bytes()).await?;
    read_until(&mut s, "stream did not open", |text| {
        text.contains(": connected")
    })
    .await?;
    Ok(s)
}

/// Reads an event stream until the text read by this call satisfies
/// `done`, each read within [`DELIVERY_TIMEOUT`]; `what` names the wait
/// when it times out.
async fn read_until(
    s: &mut tokio::net::TcpStream,
    what: &'static str,
    done: impl Fn(&str) -> bool,
) -> Result<()> {
    use tokio::io::AsyncReadExt;
    let mut text = String::new();
    while !done(&text) {
        let mut chunk = [0u8; 8192];
        let n = tokio::time::timeout(DELIVERY_TIMEOUT, s.read(&mut chunk))
            .await
            .context(what)??;
        if n == 0 {
            bail!("the server closed an event stream");
        }
        text.push_str(&String::from_utf8_lossy(&chunk[..n]));
    }
    Ok(())
}

/// Opens 200 event streams, measures what they cost the server in memory,
/// then creates a few tasks and waits until every stream received them.
fn bench_sse(admin: &Client, server: &Server, report: &mut Report) -> Result<()> {
    let addr = server.base.trim_start_matches("http://").to_string();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the sse runtime")?;
    let before = server.memory()?;
    let (with_streams, fan_out) = runtime.block_on(async {
        let mut streams = Vec::with_capacity(SSE_SUBSCRIBERS);
        for _ in 0..SSE_SUBSCRIBERS {
            streams.push(open_event_stream(&addr, &server.token, "").await?);
        }
        let with_streams = server.memory()?;
        let started = Instant::now();
        for i in 0..SSE_EVENTS {
            create_task(admin, &format!("sse fan-out {i}"))?;
        }
        for s in &mut streams {
            read_until(s, "a subscriber missed events", |text| {
                text.matches("event: task.created").count() >= SSE_EVENTS
            })
            .await?;
        }
        Ok::<_, anyhow::Error>((with_streams, started.elapsed()))
    })?;
    report.lines.push(format!(
        "sse: {SSE_SUBSCRIBERS} subscribers cost {:.1} MiB RSS (idle {:.1} -> {:.1} MiB); \
         all received {SSE_EVENTS} new events within {:.1} ms",
        (with_streams.rss_kb as f64 - before.rss_kb as f64) / 1024.0,
        before.rss_kb as f64 / 1024.0,
        with_streams.rss_kb as f64 / 1024.0,
        fan_out.as_secs_f64() * 1000.0
    ));
    Ok(())
}

// ---------------------------------------------------------- raw HTTP load

/// One request of the raw load loop.
struct RawRequest {
    method: &'static str,
    path: String,
    body: Option<String>,
}

/// [`run_raw`] for simple request loops: every operation is one request,
/// and answers other than `expect` count as errors.
fn run_raw_load(
    base: &str,
    auth: &str,
    conns: usize,
    duration: Duration,
    expect: u16,
    make: impl Fn(u64) -> RawRequest,
) -> Result<Load> {
    run_raw(base, conns, 1, duration, async |c: &mut [RawConn], n| {
        let req = make(n);
        let status = c[0]
            .send(req.method, &req.path, auth, req.body.as_deref())
            .await?;
        c[0].expect(status, expect, req.method, &req.path)
    })
}

/// Drives the server with a lean client: one OS thread runs every
/// connection (tokio, keep-alive HTTP/1.1 written and parsed by hand), so
/// on this 2-core machine the load generator takes as little CPU from the
/// server as it can. Each of the `conns` workers has `per_worker`
/// connections of its own and runs `op` in a loop until `duration` has
/// passed; `op` gets them and a global sequence number.
fn run_raw(
    base: &str,
    conns: usize,
    per_worker: usize,
    duration: Duration,
    op: impl AsyncFn(&mut [RawConn], u64) -> Result<()>,
) -> Result<Load> {
    let addr = base.trim_start_matches("http://").to_string();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the load runtime")?;
    let seq = AtomicU64::new(0);
    let cpu_before = server_cpu_time();
    let started = Instant::now();
    let deadline = started + duration;
    let worker = async || -> Result<RawPart> {
        let mut mine = Vec::with_capacity(per_worker);
        for _ in 0..per_worker {
            mine.push(RawConn::open(&addr).await?);
        }
        let (mut latencies, mut errors, mut first_error) = (Vec::new(), 0u64, None);
        while Instant::now() < deadline {
            let n = seq.fetch_add(1, Ordering::Relaxed);
            let t = Instant::now();
            match op(&mut mine, n).await {
                Ok(()) => latencies.push(micros(t.elapsed())),
                Err(e) => {
                    errors += 1;
                    first_error.get_or_insert_with(|| format!("{e:#}"));
                }
            }
        }
        Ok((latencies, errors, first_error))
    };
    let parts = runtime.block_on(futures_util::future::join_all((0..conns).map(|_| worker())));
    let mut load = Load {
        latencies_us: Vec::new(),
        errors: 0,
        elapsed: started.elapsed(),
        first_error: None,
        server_cpu: server_cpu_time().saturating_sub(cpu_before),
    };
    for part in parts {
        let (latencies, errors, first_error) = part?;
        load.latencies_us.extend(latencies);
        load.errors += errors;
        if load.first_error.is_none() {
            load.first_error = first_error;
        }
    }
    Ok(load)
}

type RawPart = (Vec<u64>, u64, Option<String>);

/// One keep-alive HTTP/1.1 connection, written and parsed by hand.
struct RawConn {
    addr: String,
    stream: tokio::net::TcpStream,
    out: Vec<u8>,
    /// The last answer, head and body.
    buf: Vec<u8>,
    body_at: usize,
}

impl RawConn {
    async fn open(addr: &str) -> Result<RawConn> {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        Ok(RawConn {
            addr: addr.to_string(),
            stream,
            out: Vec::with_capacity(1024),
            buf: Vec::with_capacity(64 * 1024),
            body_at: 0,
        })
    }

    /// Sends one request and reads its whole answer; returns the status.
    async fn send(
        &mut self,
        method: &str,
        path: &str,
        auth: &str,
        body: Option<&str>,
    ) -> Result<u16> {
        use tokio::io::AsyncWriteExt;
        self.out.clear();
        write!(
            self.out,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {auth}\r\n",
            self.addr
        )?;
        match body {
            Some(body) => write!(
                self.out,
                "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )?,
            None => self.out.extend_from_slice(b"\r\n"),
        }
        self.stream.write_all(&self.out).await?;
        self.read_response().await
    }

    /// The body of the last answer.
    fn body(&self) -> &[u8] {
        &self.buf[self.body_at..]
    }

    /// `Ok` if the last answer had status `expect`; otherwise an error
    /// quoting the start of the answer.
    fn expect(&self, status: u16, expect: u16, method: &str, path: &str) -> Result<()> {
        if status == expect {
            return Ok(());
        }
        let body = self.body();
        bail!(
            "{method} {path}: status {status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(300)])
        )
    }

    /// The `id` of the JSON object last answered.
    fn id(&self) -> Result<i64> {
        #[derive(serde::Deserialize)]
        struct Id {
            id: i64,
        }
        let parsed: Id =
            serde_json::from_slice(self.body()).context("the answer has no numeric id")?;
        Ok(parsed.id)
    }

    /// Reads one answer with a Content-Length body into `buf`; returns its
    /// status.
    async fn read_response(&mut self) -> Result<u16> {
        use tokio::io::AsyncReadExt;
        let buf = &mut self.buf;
        buf.clear();
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            if self.stream.read_buf(buf).await? == 0 {
                bail!("the server closed the connection");
            }
        };
        let head = std::str::from_utf8(&buf[..head_end]).context("answer head is not UTF-8")?;
        let status: u16 = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| anyhow!("no status in {head:?}"))?;
        let length: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .ok_or_else(|| anyhow!("no Content-Length in {head:?}"))?;
        let total = head_end + length;
        while buf.len() < total {
            if self.stream.read_buf(buf).await? == 0 {
                bail!("the server closed the connection mid-answer");
            }
        }
        self.body_at = head_end;
        Ok(status)
    }
}

// ------------------------------------------------------------------ report

struct Row {
    name: String,
    requests: u64,
    rate: f64,
    latency: Summary,
    errors: u64,
    /// Server CPU per request, in microseconds.
    cpu_us: f64,
}

#[derive(Default)]
struct Report {
    rows: Vec<Row>,
    /// Other figures, one line each.
    lines: Vec<String>,
    /// Something the server did wrong, or a workload that was skipped.
    notes: Vec<String>,
}

impl Report {
    fn add(&mut self, name: &str, load: &Load) {
        if let Some(e) = &load.first_error {
            self.notes
                .push(format!("{name}: {} error(s), first: {e}", load.errors));
        }
        self.rows.push(Row {
            name: name.to_string(),
            requests: load.ok(),
            rate: load.rate(),
            latency: summarize(load.latencies_us.clone()),
            errors: load.errors,
            cpu_us: load.cpu_us_per_request(),
        });
    }

    fn print(&self, args: &Args, server: &Server, idle: Memory, after: Memory) {
        println!();
        println!(
            "delega-bench: {} connections, {} s per workload, server {}",
            args.connections,
            args.duration,
            server.base.trim_start_matches("http://")
        );
        println!();
        let header = [
            "workload",
            "requests",
            "req/s",
            "p50 ms",
            "p99 ms",
            "max ms",
            "errors",
            "server CPU µs/req",
        ];
        let cells: Vec<[String; 8]> = self
            .rows
            .iter()
            .map(|r| {
                [
                    r.name.clone(),
                    r.requests.to_string(),
                    format!("{:.0}", r.rate),
                    ms(r.latency.p50),
                    ms(r.latency.p99),
                    ms(r.latency.max),
                    r.errors.to_string(),
                    format!("{:.0}", r.cpu_us),
                ]
            })
            .collect();
        let mut widths = header.map(str::len);
        for row in &cells {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |cells: &[String]| {
            let parts: Vec<String> = cells
                .iter()
                .zip(widths)
                .enumerate()
                .map(|(i, (c, w))| {
                    if i == 0 {
                        format!("{c:<w$}")
                    } else {
                        format!("{c:>w$}")
                    }
                })
                .collect();
            println!("| {} |", parts.join(" | "));
        };
        line(&header.map(String::from));
        // Markdown: text left-aligned, numbers right-aligned.
        let rule: Vec<String> = widths
            .iter()
            .enumerate()
            .map(|(i, w)| {
                if i == 0 {
                    "-".repeat(w + 2)
                } else {
                    format!("{}:", "-".repeat(w + 1))
                }
            })
            .collect();
        println!("|{}|", rule.join("|"));
        for row in &cells {
            line(row);
        }
        println!();
        println!(
            "startup (spawn -> first healthy GET /health): {:.1} ms",
            server.startup.as_secs_f64() * 1000.0
        );
        println!(
            "server RSS: idle {:.1} MiB, after workloads {:.1} MiB (peak {:.1} MiB)",
            idle.rss_kb as f64 / 1024.0,
            after.rss_kb as f64 / 1024.0,
            after.peak_kb as f64 / 1024.0
        );
        for l in &self.lines {
            println!("{l}");
        }
        if !self.notes.is_empty() {
            println!();
            println!("notes:");
            for n in &self.notes {
                println!("  - {n}");
            }
        }
    }
}

// --------------------------------------------------------------- workloads

fn duration_of(args: &Args) -> Duration {
    Duration::from_secs(args.duration)
}

/// POST /api/tasks as fast as possible.
fn bench_create(admin: &Client, args: &Args, report: &mut Report) -> Result<()> {
    let (_, key) = create_agent(admin, "bench-create")?;
    let load = create_burst(&admin.base, &key, args, "bench task")?;
    report.add("create", &load);
    Ok(())
}

/// Creates tasks named `label N` as fast as possible for the duration.
fn create_burst(base: &str, key: &str, args: &Args, label: &str) -> Result<Load> {
    run_raw_load(base, key, args.connections, duration_of(args), 201, |n| {
        RawRequest {
            method: "POST",
            path: "/api/tasks".into(),
            body: Some(format!(r#"{{"content":"{label} {n}","priority":2}}"#)),
        }
    })
}

fn create_task(client: &Client, content: &str) -> Result<Reply> {
    client
        .post("/api/tasks", &json!({"content": content, "priority": 2}))?
        .expect(201, "POST /api/tasks")
}

/// GET /api/tasks/{id} on random tasks among 1,000 of the caller's.
fn bench_get(admin: &Client, args: &Args, report: &mut Report) -> Result<()> {
    let (_, key) = create_agent(admin, "bench-get")?;
    let client = admin.with_key(&key);
    let ids = parallel(&client, args.connections, SEED_TASKS, |c, i| {
        create_task(c, &format!("get task {i}"))?.id()
    })?;
    let load = run_raw_load(
        &client.base,
        &key,
        args.connections,
        duration_of(args),
        200,
        |_| {
            let id = ids[rand::thread_rng().gen_range(0..ids.len())];
            RawRequest {
                method: "GET",
                path: format!("/api/tasks/{id}"),
                body: None,
            }
        },
    )?;
    report.add("get", &load);
    Ok(())
}

/// GET /api/tasks?project_id=P answering exactly 1,000 tasks.
fn bench_list(admin: &Client, args: &Args, report: &mut Report) -> Result<()> {
    let project = admin
        .post("/api/projects", &json!({"name": "bench-list"}))?
        .expect(201, "POST /api/projects")?
        .id()?;
    let (_, key) = create_agent(admin, "bench-list")?;
    let client = admin.with_key(&key);
    parallel(&client, args.connections, SEED_TASKS, |c, i| {
        c.post(
            "/api/tasks",
            &json!({"content": format!("list task {i}"), "priority": 2, "project_id": project}),
        )?
        .expect(201, "POST /api/tasks (in a project)")
        .map(|_| ())
    })?;
    let path = format!("/api/tasks?project_id={project}");
    let listed = client.get(&path)?.expect(200, "GET /api/tasks")?.json()?;
    match listed.as_array().map(Vec::len) {
        Some(SEED_TASKS) => {}
        Some(n) => report.notes.push(format!(
            "list: GET {path} answered {n} tasks, expected {SEED_TASKS}"
        )),
        None => report
            .notes
            .push(format!("list: GET {path} did not answer a JSON array")),
    }
    let load = run_raw_load(
        &client.base,
        &key,
        args.connections,
        duration_of(args),
        200,
        |_| RawRequest {
            method: "GET",
            path: path.clone(),
            body: None,
        },
    )?;
    report.add("list (1,000 tasks)", &load);
    Ok(())
}

/// One pipeline: A creates a root, delegates a child to B, B completes it
/// with a result, A reads the chain. Returns the chain.
fn pipeline_once(a: &Client, b: &Client, b_id: i64, n: u64) -> Result<Reply> {
    let root = a
        .post(
            "/api/tasks",
            &json!({"content": format!("pipeline {n}"), "priority": 2}),
        )?
        .expect(201, "POST /api/tasks (root)")?
        .id()?;
    let child = a
        .post(
            &format!("/api/tasks/{root}/delegate"),
            &json!({"content": format!("pipeline {n} step"), "assigned_to_agent_id": b_id}),
        )?
        .expect(201, "POST /api/tasks/{root}/delegate")?
        .id()?;
    b.post(
        &format!("/api/tasks/{child}/complete"),
        &json!({"metadata": {"result": format!("result of pipeline {n}")}}),
    )?
    .expect(200, "POST /api/tasks/{child}/complete")?;
    a.get(&format!("/api/tasks/{root}/chain"))?
        .expect(200, "GET /api/tasks/{root}/chain")
}

/// The same pipeline over the lean client, for the timed run: A's
/// requests on `c[0]`, B's on `c[1]`.
async fn pipeline_raw(c: &mut [RawConn], keys: (&str, &str), b_id: i64, n: u64) -> Result<()> {
    let (a, b) = keys;
    let body = format!(r#"{{"content":"pipeline {n}","priority":2}}"#);
    let status = c[0].send("POST", "/api/tasks", a, Some(&body)).await?;
    c[0].expect(status, 201, "POST", "/api/tasks")?;
    let root = c[0].id()?;
    let path = format!("/api/tasks/{root}/delegate");
    let body = format!(r#"{{"content":"pipeline {n} step","assigned_to_agent_id":{b_id}}}"#);
    let status = c[0].send("POST", &path, a, Some(&body)).await?;
    c[0].expect(status, 201, "POST", &path)?;
    let child = c[0].id()?;
    let path = format!("/api/tasks/{child}/complete");
    let body = format!(r#"{{"metadata":{{"result":"result of pipeline {n}"}}}}"#);
    let status = c[1].send("POST", &path, b, Some(&body)).await?;
    c[1].expect(status, 200, "POST", &path)?;
    let path = format!("/api/tasks/{root}/chain");
    let status = c[0].send("GET", &path, a, None).await?;
    c[0].expect(status, 200, "GET", &path)
}

fn bench_pipeline(admin: &Client, args: &Args, report: &mut Report) -> Result<()> {
    let (_, key_a) = create_agent(admin, "bench-orchestrator")?;
    let (b_id, key_b) = create_agent(admin, "bench-worker")?;
    let a = admin.with_key(&key_a);
    let b = admin.with_key(&key_b);

    // Check the shape once before timing.
    let chain = pipeline_once(&a, &b, b_id, 0)?.json()?;
    let total = chain.get("total_count").and_then(Value::as_i64);
    let completed = chain.get("completed_count").and_then(Value::as_i64);
    if total != Some(2) || completed != Some(1) {
        report.notes.push(format!(
            "pipeline: chain answered total_count {total:?}, completed_count {completed:?}; expected 2 and 1"
        ));
    }

    let load = run_raw(
        &admin.base,
        args.connections,
        2,
        duration_of(args),
        async |c: &mut [RawConn], n| pipeline_raw(c, (&key_a, &key_b), b_id, n + 1).await,
    )?;
    // One row per pipeline (4 requests); its latency is the whole pipeline's.
    report.add("pipeline (4 req each)", &load);
    let per_pipeline = summarize(load.latencies_us.clone());
    report.lines.push(format!(
        "pipeline: {:.0} pipelines/s ({:.0} req/s), per pipeline p50 {} ms, p99 {} ms",
        load.rate(),
        load.rate() * 4.0,
        ms(per_pipeline.p50),
        ms(per_pipeline.p99),
    ));

    bench_chain_tree(admin, args, report)
}

/// GET /api/tasks/{root}/chain on a tree of 1,000 tasks built by delegation.
fn bench_chain_tree(admin: &Client, args: &Args, report: &mut Report) -> Result<()> {
    let (_, key) = create_agent(admin, "bench-tree")?;
    let client = admin.with_key(&key);
    let root = create_task(&client, "tree root")?.id()?;
    // Node i's parent is node (i - 1) / FANOUT; built level by level so
    // every parent exists before its children.
    let mut nodes = vec![root];
    while nodes.len() < SEED_TASKS {
        let start = nodes.len();
        let end = (start * TREE_FANOUT + 1).min(SEED_TASKS);
        let level = parallel(&client, args.connections, end - start, |c, k| {
            let i = start + k;
            let parent = nodes[(i - 1) / TREE_FANOUT];
            c.post(
                &format!("/api/tasks/{parent}/delegate"),
                &json!({"content": format!("tree node {i}")}),
            )?
            .expect(201, "POST /api/tasks/{id}/delegate (tree)")?
            .id()
        })?;
        nodes.extend(level);
    }

    let path = format!("/api/tasks/{root}/chain");
    let first = client.get(&path)?.expect(200, "GET chain (tree)")?.json()?;
    let total = first.get("total_count").and_then(Value::as_i64);
    if total != Some(SEED_TASKS as i64) {
        report.notes.push(format!(
            "chain tree: total_count {total:?}, expected {SEED_TASKS}"
        ));
    }
    let deadline = Instant::now() + duration_of(args);
    let started = Instant::now();
    let cpu_before = server_cpu_time();
    let mut latencies = Vec::with_capacity(CHAIN_SAMPLES);
    let mut errors = 0;
    let mut first_error = None;
    while latencies.len() + (errors as usize) < CHAIN_SAMPLES && Instant::now() < deadline {
        let t = Instant::now();
        match client.get(&path).and_then(|r| r.expect(200, "GET chain")) {
            Ok(_) => latencies.push(micros(t.elapsed())),
            Err(e) => {
                errors += 1;
                first_error.get_or_insert_with(|| format!("{e:#}"));
            }
        }
    }
    let load = Load {
        latencies_us: latencies,
        errors,
        elapsed: started.elapsed(),
        first_error,
        server_cpu: server_cpu_time().saturating_sub(cpu_before),
    };
    report.add("chain (1,000-task tree, 1 conn)", &load);
    Ok(())
}

// ----------------------------------------------------------------- webhook

/// One `task.created` delivery received by [`Receiver`].
struct Delivery {
    /// The created task's content without its last word (the number).
    phase: String,
    received_us: i64,
    timestamp_us: i64,
}

#[derive(Default)]
struct Received {
    event_ids: HashSet<i64>,
    deliveries: Vec<Delivery>,
    duplicates: u64,
    malformed: u64,
    first_malformed: Option<String>,
}

/// Moves the calling thread to the idle scheduling class. The receiver
/// stands in for a service on another machine: at equal priority, its CPU
/// (which a real deployment does not spend on the server's cores) would
/// come out of the server's and the load generator's share.
fn stand_aside() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `param` is valid for the call; pid 0 is the calling thread.
    unsafe {
        libc::sched_setscheduler(0, libc::SCHED_IDLE, &param);
    }
}

/// A minimal HTTP/1.1 webhook receiver on 127.0.0.1 (keep-alive, one
/// thread per connection) that answers 200 at once and records what came.
struct Receiver {
    port: u16,
    received: Arc<Mutex<Received>>,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl Receiver {
    fn start() -> Result<Receiver> {
        let listener = TcpListener::bind("127.0.0.1:0").context("webhook receiver: bind")?;
        let port = listener.local_addr()?.port();
        let received = Arc::new(Mutex::new(Received::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let acceptor = {
            let received = received.clone();
            let stop = stop.clone();
            thread::spawn(move || {
                let mut connections = Vec::new();
                for stream in listener.incoming() {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let received = received.clone();
                    let stop = stop.clone();
                    connections.push(thread::spawn(move || {
                        stand_aside();
                        let _ = serve_connection(stream, &received, &stop);
                    }));
                }
                for c in connections {
                    let _ = c.join();
                }
            })
        };
        Ok(Receiver {
            port,
            received,
            stop,
            acceptor: Some(acceptor),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Received> {
        self.received.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// (received µs, delay µs) of the distinct deliveries of a phase.
    fn phase(&self, phase: &str) -> Vec<(i64, u64)> {
        self.lock()
            .deliveries
            .iter()
            .filter(|d| d.phase == phase)
            .map(|d| {
                let delay = (d.received_us - d.timestamp_us).max(0) as u64;
                (d.received_us, delay)
            })
            .collect()
    }

    /// Waits (bounded) until `count` deliveries of `phase` arrived.
    fn wait_for(&self, phase: &str, count: usize, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self
                .lock()
                .deliveries
                .iter()
                .filter(|d| d.phase == phase)
                .count();
            if got >= count || Instant::now() >= deadline {
                return got;
            }
            thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the acceptor blocked in accept().
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

/// Reads one line (with its CRLF); `None` at end of stream or on stop.
fn read_line(reader: &mut BufReader<TcpStream>, stop: &AtomicBool) -> io::Result<Option<Vec<u8>>> {
    let mut line = Vec::new();
    loop {
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => return Ok(None),
            Ok(_) if line.ends_with(b"\n") => return Ok(Some(line)),
            Ok(_) => return Ok(None),
            Err(e) if is_timeout(&e) => {
                if stop.load(Ordering::Relaxed) {
                    return Ok(None);
                }
            }
            Err(e) => return Err(e),
        }
    }
}

fn read_exactly(
    reader: &mut BufReader<TcpStream>,
    stop: &AtomicBool,
    len: usize,
) -> io::Result<Vec<u8>> {
    let mut buf = vec![0; len];
    let mut got = 0;
    while got < len {
        match reader.read(&mut buf[got..]) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if is_timeout(&e) && !stop.load(Ordering::Relaxed) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(buf)
}

fn serve_connection(
    stream: TcpStream,
    received: &Mutex<Received>,
    stop: &AtomicBool,
) -> io::Result<()> {
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_millis(100)))?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let eof = || io::Error::from(io::ErrorKind::UnexpectedEof);
    loop {
        // Request line, then headers up to the empty line.
        let Some(_request_line) = read_line(&mut reader, stop)? else {
            return Ok(());
        };
        let mut content_length = 0;
        let mut chunked = false;
        let mut close = false;
        loop {
            let line = read_line(&mut reader, stop)?.ok_or_else(eof)?;
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim().to_ascii_lowercase();
            match name.trim().to_ascii_lowercase().as_str() {
                "content-length" => content_length = value.parse().unwrap_or(0),
                "transfer-encoding" => chunked = value.contains("chunked"),
                "connection" => close = value == "close",
                _ => {}
            }
        }
        let body = if chunked {
            let mut body = Vec::new();
            loop {
                let size_line = read_line(&mut reader, stop)?.ok_or_else(eof)?;
                let size_text = String::from_utf8_lossy(&size_line);
                let size_text = size_text.trim().split(';').next().unwrap_or("0");
                let size = usize::from_str_radix(size_text, 16)
                    .map_err(|_| io::Error::from(io::ErrorKind::InvalidData))?;
                if size == 0 {
                    // Trailers, up to the empty line.
                    while read_line(&mut reader, stop)?.ok_or_else(eof)? != b"\r\n" {}
                    break;
                }
                body.extend(read_exactly(&mut reader, stop, size)?);
                read_exactly(&mut reader, stop, 2)?;
            }
            body
        } else {
            read_exactly(&mut reader, stop, content_length)?
        };
        let received_us = now_us();
        writer.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")?;
        record(received, &body, received_us);
        if close {
            return Ok(());
        }
    }
}

/// Notes one delivery: its event id, the commit timestamp, the phase.
fn record(received: &Mutex<Received>, body: &[u8], received_us: i64) {
    let parsed = serde_json::from_slice::<Payload>(body)
        .map_err(|e| format!("not a delivery: {e}"))
        .and_then(|p| parse_delivery(&p, received_us));
    let mut r = received.lock().unwrap_or_else(|e| e.into_inner());
    match parsed {
        Ok(None) => {}
        Ok(Some((event_id, delivery))) => {
            if r.event_ids.insert(event_id) {
                r.deliveries.push(delivery);
            } else {
                r.duplicates += 1;
            }
        }
        Err(e) => {
            r.malformed += 1;
            r.first_malformed.get_or_insert(e);
        }
    }
}

/// The parts of a delivery the receiver checks (the rest is skipped
/// without building it, to keep the receiver's share of the CPU small).
#[derive(serde::Deserialize)]
struct Payload<'a> {
    #[serde(borrow)]
    event: std::borrow::Cow<'a, str>,
    event_id: i64,
    #[serde(borrow)]
    timestamp: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    task: Option<PayloadTask<'a>>,
}

#[derive(serde::Deserialize)]
struct PayloadTask<'a> {
    #[serde(borrow)]
    content: std::borrow::Cow<'a, str>,
}

/// `(event_id, delivery)` of a `task.created` payload; `None` for other events.
fn parse_delivery(p: &Payload, received_us: i64) -> Result<Option<(i64, Delivery)>, String> {
    if p.event != "task.created" {
        return Ok(None);
    }
    let timestamp =
        time::OffsetDateTime::parse(&p.timestamp, &time::format_description::well_known::Rfc3339)
            .map_err(|e| format!("timestamp {:?} is not RFC 3339: {e}", p.timestamp))?;
    let content = p.task.as_ref().ok_or("no task.content")?.content.as_ref();
    let phase = content.rsplit_once(' ').map_or(content, |(p, _)| p);
    Ok(Some((
        p.event_id,
        Delivery {
            phase: phase.to_string(),
            received_us,
            timestamp_us: (timestamp.unix_timestamp_nanos() / 1000) as i64,
        },
    )))
}

/// Creates tasks with a project-wide `task.created` webhook pointing at a
/// local receiver, and measures delivery throughput and delay.
fn bench_webhook(admin: &Client, args: &Args, report: &mut Report) -> Result<()> {
    let (_, key) = create_agent(admin, "bench-hook")?;
    let client = admin.with_key(&key);
    // The baseline: the same burst on the same database just before the
    // hook is registered (the database grows through the run, and a
    // create into a larger one costs a little more).
    let plain = create_burst(&client.base, &key, args, "plain burst")?;
    report.add("create (no webhook, just before)", &plain);

    let receiver = Receiver::start()?;
    let url = format!("http://127.0.0.1:{}/hook", receiver.port);
    let registered = admin.post(
        "/api/webhooks",
        &json!({"url": url, "events": ["task.created"]}),
    )?;
    match registered.status {
        201 => {}
        404 => {
            report
                .lines
                .push("webhook: skipped (no /webhooks endpoint)".into());
            return Ok(());
        }
        _ => {
            let e = registered
                .expect(201, "POST /api/webhooks")
                .err()
                .map(|e| format!("{e:#}"))
                .unwrap_or_default();
            report.notes.push(format!("webhook: skipped: {e}"));
            return Ok(());
        }
    }

    // Burst: the same creates, every one a delivery.
    let burst_started = now_us();
    let hooks_cpu_before = webhook_threads_cpu_time();
    let load = create_burst(&client.base, &key, args, "hook burst")?;
    let created = load.ok() as usize;
    report.add("create (webhook registered)", &load);
    // The webhook threads' share of the server CPU while the creates ran
    // (the backlog they deliver afterwards is not the request path's).
    let hooks_cpu = webhook_threads_cpu_time().saturating_sub(hooks_cpu_before);
    let got = receiver.wait_for("hook burst", created, DELIVERY_TIMEOUT);
    let request_path_cpu = load.server_cpu.saturating_sub(hooks_cpu);
    report.lines.push(format!(
        "server CPU per create with a webhook, while the creates ran: {:.0} us on the request path, {:.0} us in the webhook threads",
        request_path_cpu.as_secs_f64() * 1e6 / created.max(1) as f64,
        hooks_cpu.as_secs_f64() * 1e6 / created.max(1) as f64,
    ));
    let burst = receiver.phase("hook burst");
    let last = burst
        .iter()
        .map(|(at, _)| *at)
        .max()
        .unwrap_or(burst_started);
    let span = (last - burst_started).max(1) as f64 / 1e6;
    let delays = summarize(burst.iter().map(|(_, d)| *d).collect());
    report.lines.push(format!(
        "webhook burst: {got}/{created} deliveries, {span:.2} s from first create to last delivery = {:.0} deliveries/s",
        got as f64 / span
    ));
    report.lines.push(format!(
        "webhook burst delay (commit timestamp -> received): p50 {} ms, p99 {} ms, max {} ms",
        ms(delays.p50),
        ms(delays.p99),
        ms(delays.max)
    ));
    if got < created {
        report.notes.push(format!(
            "webhook: only {got} of {created} burst deliveries arrived within {DELIVERY_TIMEOUT:?}"
        ));
    }
    report.lines.push(format!(
        "create throughput: {:.0} req/s just before the hook, {:.0} req/s with it ({:+.1}%)",
        plain.rate(),
        load.rate(),
        (load.rate() / plain.rate().max(1e-9) - 1.0) * 100.0
    ));

    // Low rate: a steady trickle from one connection, queue never backlogged.
    let rate = args.webhook_rate.max(1);
    let seconds = args.duration.clamp(2, 5);
    let count = rate * seconds;
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let started = Instant::now();
    let mut slow_created = 0;
    let mut slow_errors = 0;
    for i in 0..count {
        let due = started + interval * i as u32;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            thread::sleep(wait);
        }
        match create_task(&client, &format!("hook slow {i}")) {
            Ok(_) => slow_created += 1,
            Err(e) => {
                slow_errors += 1;
                if slow_errors == 1 {
                    report.notes.push(format!("webhook low rate: {e:#}"));
                }
            }
        }
    }
    let got = receiver.wait_for("hook slow", slow_created, DELIVERY_TIMEOUT);
    let slow = summarize(
        receiver
            .phase("hook slow")
            .iter()
            .map(|(_, d)| *d)
            .collect(),
    );
    report.lines.push(format!(
        "webhook low rate ({rate}/s for {seconds} s): {got}/{slow_created} deliveries, delay p50 {} ms, p99 {} ms, max {} ms",
        ms(slow.p50),
        ms(slow.p99),
        ms(slow.max)
    ));
    if got < slow_created {
        report.notes.push(format!(
            "webhook: only {got} of {slow_created} low-rate deliveries arrived within {DELIVERY_TIMEOUT:?}"
        ));
    }
    let r = receiver.lock();
    report.lines.push(format!(
        "webhook receiver: {} duplicate deliveries, {} malformed payloads (delays have the timestamp's 1 ms resolution)",
        r.duplicates, r.malformed
    ));
    if let Some(e) = &r.first_malformed {
        report
            .notes
            .push(format!("webhook: malformed payload: {e}"));
    }
    Ok(())
}
