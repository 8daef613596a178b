//! MCP tasks: the long waits (`wait_for_task`, `claim_task` with
//! `wait_seconds`) run in the background for clients that declare
//! support — the 2025-11-25 `tasks` capability and the 2026-07-28 tasks
//! extension (`io.modelcontextprotocol/tasks`). A task lives in this
//! process for its TTL; its id is unguessable and only its creator (the
//! same credential) may see, await or cancel it.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::RngCore;
use serde_json::{json, Value};
use tokio::sync::watch;

use crate::domain::clock;

/// How long a task and its result are kept, in milliseconds.
pub const TTL_MS: u64 = 60 * 60 * 1000;
/// How often a client should poll `tasks/get`, in milliseconds.
pub const POLL_INTERVAL_MS: u64 = 500;

/// Where a task is.
#[derive(Debug, Clone)]
pub enum Status {
    Working,
    /// The tool's `CallToolResult`.
    Done(Value),
    Cancelled,
}

/// One task.
pub struct Task {
    pub id: String,
    owner: String,
    created_at: String,
    updated_at: Mutex<String>,
    expires: Instant,
    status: watch::Sender<Status>,
    abort: Mutex<Option<tokio::task::AbortHandle>>,
}

impl Task {
    pub fn status(&self) -> Status {
        self.status.borrow().clone()
    }

    /// Waits until the task is no longer working.
    pub async fn finished(&self) -> Status {
        let mut rx = self.status.subscribe();
        loop {
            let now = rx.borrow_and_update().clone();
            if !matches!(now, Status::Working) {
                return now;
            }
            if rx.changed().await.is_err() {
                return self.status();
            }
        }
    }

    fn set(&self, status: Status) {
        if let Ok(mut at) = self.updated_at.lock() {
            *at = clock::now_string();
        }
        self.status.send_replace(status);
    }

    /// The status word of either revision. A tool result with `isError`
    /// is `failed` in 2025-11-25 and `completed` (with the result) in the
    /// extension (SEP-2663).
    fn word(&self, modern: bool) -> &'static str {
        match self.status() {
            Status::Working => "working",
            Status::Cancelled => "cancelled",
            Status::Done(r) if !modern && r["isError"] == json!(true) => "failed",
            Status::Done(_) => "completed",
        }
    }

    /// The `Task` object: `{taskId, status, createdAt, lastUpdatedAt,
    /// ttl, pollInterval}` for 2025-11-25, with `ttlMs`/`pollIntervalMs`
    /// (and `result` once completed) for the extension.
    pub fn describe(&self, modern: bool) -> Value {
        let updated = self
            .updated_at
            .lock()
            .map(|u| u.clone())
            .unwrap_or_default();
        let mut t = json!({
            "taskId": self.id,
            "status": self.word(modern),
            "createdAt": self.created_at,
            "lastUpdatedAt": updated,
        });
        if modern {
            t["ttlMs"] = json!(TTL_MS);
            t["pollIntervalMs"] = json!(POLL_INTERVAL_MS);
            if let Status::Done(r) = self.status() {
                t["result"] = r;
            }
        } else {
            t["ttl"] = json!(TTL_MS);
            t["pollInterval"] = json!(POLL_INTERVAL_MS);
        }
        if let Status::Working = self.status() {
            t["statusMessage"] = json!("waiting");
        }
        t
    }
}

/// The tasks of this process.
#[derive(Default)]
pub struct Tasks {
    map: Mutex<HashMap<String, Arc<Task>>>,
}

fn new_id() -> String {
    let mut b = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

impl Tasks {
    /// Starts `work` (which yields a `CallToolResult`) as a task of
    /// `owner`, on the current worker's runtime.
    pub fn start<F>(&self, owner: String, work: F) -> Arc<Task>
    where
        F: Future<Output = Value> + 'static,
    {
        let now = clock::now_string();
        let (status, _) = watch::channel(Status::Working);
        let task = Arc::new(Task {
            id: new_id(),
            owner,
            created_at: now.clone(),
            updated_at: Mutex::new(now),
            expires: Instant::now() + Duration::from_millis(TTL_MS),
            status,
            abort: Mutex::new(None),
        });
        let running = task.clone();
        let handle = actix_web::rt::spawn(async move {
            let result = work.await;
            if matches!(running.status(), Status::Working) {
                running.set(Status::Done(result));
            }
        });
        if let Ok(mut a) = task.abort.lock() {
            *a = Some(handle.abort_handle());
        }
        if let Ok(mut map) = self.map.lock() {
            let now = Instant::now();
            map.retain(|_, t| t.expires > now);
            map.insert(task.id.clone(), task.clone());
        }
        task
    }

    /// Task `id` if `owner` created it and it has not expired.
    pub fn get(&self, owner: &str, id: &str) -> Option<Arc<Task>> {
        let map = self.map.lock().ok()?;
        map.get(id)
            .filter(|t| t.owner == owner && t.expires > Instant::now())
            .cloned()
    }

    /// `owner`'s tasks, oldest first.
    pub fn list(&self, owner: &str) -> Vec<Arc<Task>> {
        let Ok(map) = self.map.lock() else {
            return Vec::new();
        };
        let now = Instant::now();
        let mut mine: Vec<Arc<Task>> = map
            .values()
            .filter(|t| t.owner == owner && t.expires > now)
            .cloned()
            .collect();
        mine.sort_by(|a, b| a.created_at.cmp(&b.created_at));
        mine
    }

    /// Stops a working task. `false` if it had already finished.
    pub fn cancel(&self, task: &Task) -> bool {
        if !matches!(task.status(), Status::Working) {
            return false;
        }
        if let Ok(mut a) = task.abort.lock() {
            if let Some(h) = a.take() {
                h.abort();
            }
        }
        task.set(Status::Cancelled);
        true
    }
}
