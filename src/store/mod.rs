//! The store: one SQLite database, one writer thread and a pool of readers.
//!
//! Every write runs on the writer thread inside a transaction shared with
//! the other writes queued at the same moment (group commit); each write gets
//! its own savepoint, so a refused request rolls back alone. A caller hears
//! back only after the shared COMMIT succeeded: a 2xx means committed.
//! Events recorded during a write are published once their commit is durable.

pub mod agents;
pub mod attention;
pub mod cache;
pub mod claims;
pub mod comments;
pub mod context;
pub mod delegation;
pub mod dependencies;
pub mod event_log;
pub mod projects;
pub mod readers;
pub mod recurrences;
pub mod schema;
pub mod settings;
pub mod stats;
pub mod tasks;
pub mod webhooks;

use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, OpenFlags};

use crate::error::{Error, Result};
use crate::hub::{Event, Hub, Queued};
use crate::metrics::Metrics;
use cache::{Dirty, RenderCache};

/// Most writes one commit carries.
const MAX_BATCH: usize = 256;

type Finisher = Box<dyn FnOnce(Result<(), Error>) + Send>;
type Job = Box<dyn FnOnce(&Tx) -> (bool, Finisher) + Send>;

/// A write in progress: the connection inside the group transaction, plus
/// the events this write recorded (published only if it commits).
pub struct Tx<'c> {
    conn: &'c Connection,
    events: RefCell<Vec<Arc<Event>>>,
    /// Set when this write addressed an event to one webhook (a ping or a
    /// redelivery), which no stream is told about.
    addressed_hook: Cell<bool>,
    index_changes: RefCell<Vec<context::IndexChange>>,
    /// Tasks this write left in the claim queue (for waiting claimers).
    queued: RefCell<Vec<Queued>>,
}

impl<'c> Tx<'c> {
    fn new(conn: &'c Connection) -> Self {
        Tx {
            conn,
            events: RefCell::new(Vec::new()),
            addressed_hook: Cell::new(false),
            index_changes: RefCell::new(Vec::new()),
            queued: RefCell::new(Vec::new()),
        }
    }
    /// Tells waiting claimers, once this commits, that a task is queued.
    pub fn queued(&self, task: Queued) {
        self.queued.borrow_mut().push(task);
    }
    pub fn record(&self, event: Event) {
        self.events.borrow_mut().push(Arc::new(event));
    }
    /// Queues a recall-index change for the end of the batch; see
    /// [`context::IndexChange`].
    pub fn index(&self, change: context::IndexChange) {
        self.index_changes.borrow_mut().push(change);
    }
    /// Tells the dispatcher to look at the event log once this commits
    /// (it does anyway when the write recorded events).
    pub fn wake_dispatcher(&self) {
        self.addressed_hook.set(true);
    }
}

impl std::ops::Deref for Tx<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn
    }
}

#[derive(Clone)]
pub struct Store {
    readers: r2d2::Pool<SqliteConnectionManager>,
    writer: mpsc::Sender<Job>,
    hub: Arc<Hub>,
    cache: Arc<RenderCache>,
    /// Set by the [`Checkpointer`] when the log should start over.
    restart_log: Arc<AtomicBool>,
    path: Arc<Path>,
    metrics: Arc<Metrics>,
}

/// `fold(text)`: Unicode lowercase, for case-insensitive search (SQLite's
/// own `lower()` and `LIKE` only fold ASCII).
fn register_functions(conn: &Connection) -> rusqlite::Result<()> {
    use rusqlite::functions::FunctionFlags;
    conn.create_scalar_function(
        "fold",
        1,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            Ok(ctx
                .get::<Option<String>>(0)?
                .map(|s| s.to_lowercase())
                .unwrap_or_default())
        },
    )
}

/// `column {clause}` matching any of `ids`, and the value to bind as `?1`:
/// `= ?1` for one id (the common case: rendering the task a write just
/// changed), an `IN` over `json_each` for several.
pub(crate) fn id_set(ids: &[i64]) -> (&'static str, rusqlite::types::Value) {
    use rusqlite::types::Value;
    match ids {
        [id] => ("= ?1", Value::Integer(*id)),
        _ => (
            "IN (SELECT value FROM json_each(?1))",
            Value::Text(serde_json::to_string(ids).unwrap_or_else(|_| "[]".into())),
        ),
    }
}

/// Statements kept prepared per connection (lists build many variants).
const STATEMENT_CACHE: usize = 256;

fn configure_connection(conn: &Connection) -> rusqlite::Result<()> {
    register_functions(conn)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.execute_batch(
        "PRAGMA foreign_keys = ON;
         PRAGMA synchronous = NORMAL;
         PRAGMA temp_store = MEMORY;
         PRAGMA cache_size = -16000;",
    )
}

/// Settings of a read-only connection.
fn init_reader(c: &mut Connection) -> rusqlite::Result<()> {
    register_functions(c)?;
    c.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    c.busy_timeout(BUSY_TIMEOUT)?;
    c.execute_batch("PRAGMA cache_size = -4000;")
}

/// The writer's own settings: a small page cache (see below), no
/// checkpoints inside commits (they stalled
/// every write queued behind them); see [`Checkpointer`].
fn configure_writer(conn: &Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    // A small page cache: at each commit SQLite trims the writer's cache
    // (pager_end_transaction → pcache1Truncate), and whenever it does, it
    // walks the whole hash table. With 16 MB that walk was ~5 % of the
    // server's CPU in the claim → complete drain; with 2 MB it is ~1 %, and
    // the pages it no longer holds come from the OS page cache. Measured in
    // alternating runs: claim → complete −2..+4 % (noise), pipeline +10 %,
    // create +2..+4 %, the 1,000,000-task reads unchanged (BENCHMARKS.md).
    conn.pragma_update(None, "cache_size", -2000)?;
    conn.pragma_update(None, "journal_size_limit", 128 * 1024 * 1024)
}

/// Page size of new database files, in bytes (SQLite's default is 4096).
/// Every page a write touches is copied whole into the statement journal,
/// checksummed and appended to the write-ahead log, and the queue's writes
/// change small rows on many pages (the task, its indexes, the counters,
/// the event log). With 2048-byte pages the writer runs 7 % fewer
/// instructions per claim → complete job and the server 8 % fewer per
/// create; gets, list pages, the claimable page and `/stats` on 100,000
/// and 1,000,000 tasks run as many as before (counted with callgrind,
/// BENCHMARKS.md). Existing files keep the
/// size they were made with: changing it takes a `VACUUM` outside WAL
/// mode.
pub const PAGE_SIZE: i64 = 2048;

/// Opens (creating if needed) the database file and applies the schema and
/// migrations. Used by the server and by offline commands.
pub fn open_connection(path: &Path) -> anyhow::Result<Connection> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("cannot create directory {}: {e}", dir.display()))?;
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| anyhow::anyhow!("cannot open database {}: {e}", path.display()))?;
    // Only a new file takes it: the size is fixed when the first page is
    // written (and, in WAL mode, for good).
    conn.pragma_update(None, "page_size", PAGE_SIZE)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    configure_connection(&conn)?;
    schema::migrate(&conn)?;
    Ok(conn)
}

impl Store {
    pub fn open(path: &Path, hub: Arc<Hub>) -> anyhow::Result<Store> {
        let writer_conn = open_connection(path)?;
        configure_writer(&writer_conn)?;
        hub.note_event_id(
            event_log::latest_id(&writer_conn)
                .map_err(|e| anyhow::anyhow!("reading the event log: {e}"))?,
        );
        let manager = SqliteConnectionManager::file(path)
            .with_flags(OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
            .with_init(init_reader);
        // Connections to a local file do not go stale; skipping the
        // check-out test saves a parsed query per request.
        let readers = r2d2::Pool::builder()
            .test_on_check_out(false)
            .max_size(16)
            .min_idle(Some(2))
            .build(manager)?;
        let (tx, rx) = mpsc::channel::<Job>();
        let cache = Arc::new(RenderCache::default());
        let dirty = Arc::new(Mutex::new(Dirty::default()));
        let seen = dirty.clone();
        writer_conn.update_hook(Some(move |_action, _db: &str, table: &str, rowid: i64| {
            if let Ok(mut d) = seen.lock() {
                match table {
                    "tasks" => d.tasks.push(rowid),
                    "agents" | "projects" => d.everything = true,
                    _ => {}
                }
            }
        }))?;
        let restart_log = Arc::new(AtomicBool::new(false));
        let metrics = Arc::new(Metrics::new());
        let writer = Writer {
            conn: writer_conn,
            hub: hub.clone(),
            cache: cache.clone(),
            dirty,
            restart_log: restart_log.clone(),
            metrics: metrics.clone(),
        };
        thread::Builder::new()
            .name("delega-writer".into())
            .spawn(move || writer.run(rx))?;
        Ok(Store {
            readers,
            writer: tx,
            hub,
            cache,
            restart_log,
            path: Arc::from(path),
            metrics,
        })
    }

    /// A read-only connection of its own, outside the pool, for a
    /// background thread (see [`Store::read_on`]).
    pub fn own_reader(&self) -> Result<Connection> {
        let mut conn = Connection::open_with_flags(
            &*self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        init_reader(&mut conn)?;
        Ok(conn)
    }

    /// Like [`Store::read_blocking`], on the caller's own connection.
    pub fn read_on<T>(conn: &Connection, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        snapshot(conn, f)
    }

    /// The background checkpointer of this store's database file.
    pub fn checkpointer(&self) -> anyhow::Result<Checkpointer> {
        let conn = Connection::open(&*self.path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        Ok(Checkpointer {
            conn,
            restart_log: self.restart_log.clone(),
        })
    }

    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    /// The server's Prometheus instruments (`GET /metrics`).
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The database file and its write-ahead log.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn cache(&self) -> &Arc<RenderCache> {
        &self.cache
    }

    /// Runs `f` on a pooled read-only connection, off the async workers,
    /// inside one read transaction: every query sees the same snapshot,
    /// and the file locks are taken once rather than per statement.
    pub async fn read<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.readers.clone();
        tokio::task::spawn_blocking(move || snapshot(&*pool.get()?, f))
            .await
            .map_err(|e| Error::internal(format!("blocking read failed: {e}")))?
    }

    /// Same as [`Store::read`], on the calling thread: for background
    /// threads, and for point reads (one task, one agent) on the async
    /// workers, where a few index lookups cost less than the hop to the
    /// blocking pool and back.
    pub fn read_blocking<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        snapshot(&*self.readers.get()?, f)
    }

    fn submit<T, F>(&self, f: F, reply: impl FnOnce(Result<T>) + Send + 'static)
    where
        F: FnOnce(&Tx) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let job: Job = Box::new(move |tx: &Tx| {
            let result = catch_unwind(AssertUnwindSafe(|| f(tx)))
                .unwrap_or_else(|_| Err(Error::internal("a write panicked")));
            let ok = result.is_ok();
            let finish: Finisher = Box::new(move |commit: Result<(), Error>| {
                reply(commit.and(result));
            });
            (ok, finish)
        });
        // If the writer is gone the job is dropped with its reply channel,
        // and the caller hears "unavailable".
        let _ = self.writer.send(job);
    }

    /// Runs `f` inside a write transaction and returns once it committed.
    pub async fn write<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce(&Tx) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.submit(f, move |r| {
            let _ = tx.send(r);
        });
        rx.await
            .map_err(|_| Error::Unavailable("the database could not take the write".into()))?
    }

    /// Same as [`Store::write`], for background threads.
    pub fn write_blocking<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce(&Tx) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let (tx, rx) = mpsc::sync_channel(1);
        self.submit(f, move |r| {
            let _ = tx.send(r);
        });
        rx.recv()
            .map_err(|_| Error::Unavailable("the database could not take the write".into()))?
    }
}

/// The writer thread's state.
struct Writer {
    conn: Connection,
    hub: Arc<Hub>,
    cache: Arc<RenderCache>,
    /// Filled by the update hook while a batch runs.
    dirty: Arc<Mutex<Dirty>>,
    restart_log: Arc<AtomicBool>,
    metrics: Arc<Metrics>,
}

impl Writer {
    /// Drops cached renderings of what the last commit (or rollback) touched.
    fn settle_cache(&self) {
        let dirty = match self.dirty.lock() {
            Ok(mut d) => std::mem::take(&mut *d),
            Err(_) => Dirty {
                tasks: Vec::new(),
                everything: true,
            },
        };
        self.cache.invalidate(&dirty);
    }

    /// Between batches, when the [`Checkpointer`] asks: copies the little
    /// it has not yet copied and waits (a millisecond or two) for readers
    /// of the old log to finish, so the next write transaction starts the
    /// log over from its beginning.
    ///
    /// A long reader (a `delega backup` of a large file, say) could hold
    /// the log for seconds; the wait is capped at [`RESTART_WAIT`] so the
    /// writes queued meanwhile are not held up, and the checkpointer asks
    /// again on its next tick.
    fn finish_checkpoint(&self) {
        if !self.restart_log.swap(false, Ordering::Relaxed) {
            return;
        }
        let restarted = self.conn.busy_timeout(RESTART_WAIT).and_then(|()| {
            self.conn
                .query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(()))
        });
        let restored = self.conn.busy_timeout(BUSY_TIMEOUT);
        if let Err(e) = restarted.and(restored) {
            log::warn!("checkpoint failed: {e}");
        }
    }

    fn run(self, rx: mpsc::Receiver<Job>) {
        writer_loop(&self, rx);
    }
}

fn writer_loop(w: &Writer, rx: mpsc::Receiver<Job>) {
    let (conn, hub) = (&w.conn, &w.hub);
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let began = std::time::Instant::now();
        let jobs = batch.len();
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            log::error!("cannot begin a write transaction: {e}");
            // Dropping a job drops its reply channel: its caller hears 503.
            drop(batch);
            continue;
        }
        let mut finishers = Vec::with_capacity(batch.len());
        let mut published = Vec::new();
        let mut index_changes = Vec::new();
        let mut queued = Vec::new();
        let mut addressed_hook = false;
        for job in batch {
            let savepoint = run_cached(conn, "SAVEPOINT w");
            if savepoint.is_err() {
                drop(job);
                continue;
            }
            let tx = Tx::new(conn);
            let (ok, finish) = job(&tx);
            let kept = ok && run_cached(conn, "RELEASE w").is_ok();
            if kept {
                addressed_hook |= tx.addressed_hook.get();
                published.extend(tx.events.into_inner());
                index_changes.extend(tx.index_changes.into_inner());
                queued.extend(tx.queued.into_inner());
            } else {
                let _ = conn.execute_batch("ROLLBACK TO w; RELEASE w");
            }
            // A job that succeeded but could not be kept must not hear Ok.
            finishers.push((finish, kept || !ok));
        }
        let committed =
            context::apply_index(conn, &index_changes).and_then(|()| conn.execute_batch("COMMIT"));
        w.metrics.batch(jobs, began.elapsed().as_secs_f64());
        // Before anyone hears back, so a client reads its own writes.
        w.settle_cache();
        match committed {
            Ok(()) => {
                hub.publish(published, &queued, addressed_hook);
                for (finish, answerable) in finishers {
                    finish(if answerable {
                        Ok(())
                    } else {
                        Err(Error::Unavailable("the write could not be applied".into()))
                    });
                }
            }
            Err(e) => {
                log::error!("commit failed: {e}");
                let _ = conn.execute_batch("ROLLBACK");
                for (finish, _) in finishers {
                    finish(Err(Error::internal(format!("commit failed: {e}"))));
                }
            }
        }
        w.finish_checkpoint();
    }
    log::info!("database writer stopped");
}

fn snapshot<T>(conn: &Connection, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
    run_cached(conn, "BEGIN")?;
    let result = f(conn);
    // Ending a read-only transaction cannot lose anything.
    let _ = run_cached(conn, "COMMIT");
    result
}

/// Runs a one-statement command through the statement cache (the writer
/// runs SAVEPOINT/RELEASE for every write; parsing them each time shows).
fn run_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

/// Frames (pages) in the write-ahead log past which it should start over.
const RESTART_FRAMES: i64 = 16384;
/// Longest the writer waits for readers of the old log when restarting it.
const RESTART_WAIT: std::time::Duration = std::time::Duration::from_millis(20);
/// How long a connection waits for a lock before giving up.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Copies the write-ahead log into the database file without blocking
/// readers or the writer; the scheduler runs it a few times a second.
///
/// SQLite starts the log over from its beginning only when a write begins
/// right after a checkpoint that copied all of it. Under a steady stream
/// of writes a checkpoint on another connection never quite catches up,
/// and the log grows without bound (750 MB in six seconds of the pipeline
/// benchmark, every commit paying the filesystem for fresh blocks). So once
/// the log passes 64 MB this asks the writer to finish the job between two
/// batches; the next batch then writes from the start of the file again,
/// over blocks the file already has. (SQLite's own way, a checkpoint inside
/// every commit past a size, stalled the queued writes: create p99 went
/// from 4 to 8 ms. A plain PASSIVE checkpoint on the writer, retried until
/// no reader held on to the old log, cost 6 % of the writer's time.)
pub struct Checkpointer {
    conn: Connection,
    restart_log: Arc<AtomicBool>,
}

impl Checkpointer {
    pub fn run(&self) -> rusqlite::Result<()> {
        let frames: i64 = self
            .conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1))?;
        if frames > RESTART_FRAMES {
            self.restart_log.store(true, Ordering::Relaxed);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page_size(path: &Path) -> i64 {
        rusqlite::Connection::open(path)
            .unwrap()
            .pragma_query_value(None, "page_size", |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn a_new_database_gets_the_page_size_and_an_old_one_keeps_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let new = dir.path().join("new.db");
        drop(open_connection(&new).unwrap());
        assert_eq!(page_size(&new), PAGE_SIZE);

        // A file an earlier version made, with SQLite's default size.
        let old = dir.path().join("old.db");
        let conn = rusqlite::Connection::open(&old).unwrap();
        conn.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (x);")
            .unwrap();
        drop(conn);
        assert_eq!(page_size(&old), 4096);
        let conn = open_connection(&old).unwrap();
        conn.execute(
            "INSERT INTO tasks (content, created_at, updated_at) VALUES ('kept', '', '')",
            [],
        )
        .unwrap();
        drop(conn);
        assert_eq!(page_size(&old), 4096);
        let content: String = rusqlite::Connection::open(&old)
            .unwrap()
            .query_row("SELECT content FROM tasks", [], |r| r.get(0))
            .unwrap();
        assert_eq!(content, "kept");
    }
}
