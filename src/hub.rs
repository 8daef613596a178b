//! The hub: tells live subscribers (SSE streams, the webhook dispatcher,
//! long-polling claimers) about committed events.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{self, Thread};
use std::time::Duration;
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::{broadcast, watch};

use crate::domain::access::Caller;

/// One committed row of the event log.
#[derive(Debug, Clone)]
pub struct Event {
    pub id: i64,
    pub kind: String,
    pub task_id: Option<i64>,
    /// `",3,7,"`: agents who could read the task when it happened.
    pub audience: String,
    /// The JSON payload, exactly as delivered.
    pub payload: String,
    /// The event as one Server-Sent Events frame, rendered by the first
    /// stream that sends it and shared by the others (50 open dashboards
    /// would otherwise format every event 50 times).
    pub sse_frame: OnceLock<Bytes>,
}

impl Event {
    /// Builds an event (its stream frame is rendered on first use).
    pub fn new(
        id: i64,
        kind: String,
        task_id: Option<i64>,
        audience: String,
        payload: String,
    ) -> Event {
        Event {
            id,
            kind,
            task_id,
            audience,
            payload,
            sse_frame: OnceLock::new(),
        }
    }

    /// `id: …\nevent: …\ndata: <payload>\n\n` (the WHATWG event-stream
    /// format; the payload is one line of JSON).
    pub fn sse_frame(&self) -> Bytes {
        self.sse_frame
            .get_or_init(|| {
                Bytes::from(format!(
                    "id: {}\nevent: {}\ndata: {}\n\n",
                    self.id, self.kind, self.payload
                ))
            })
            .clone()
    }

    pub fn visible_to_agent(&self, agent_id: i64) -> bool {
        self.audience.contains(&format!(",{agent_id},"))
    }

    /// Whether `caller` may see this event (SPEC §9): task events to the
    /// task's readers and to those who read every task; project and agent
    /// events to admins.
    pub fn visible_to(&self, caller: &Caller) -> bool {
        match self.task_id {
            None => caller.is_admin(),
            Some(_) => {
                caller.reads_all() || caller.agent_id().is_some_and(|a| self.visible_to_agent(a))
            }
        }
    }
}

/// The events of one commit, in id order.
pub type Commit = Arc<[Arc<Event>]>;

/// Fan-out of committed events. The writer publishes after each COMMIT.
pub struct Hub {
    /// One message per commit: its events, in order. Subscribers wake
    /// once per commit, not once per event.
    live: broadcast::Sender<Commit>,
    /// Flips to true when the server shuts down; open streams end.
    closing: watch::Sender<bool>,
    /// Bumped when any agent changes (role, key, active): open streams end
    /// so their clients reconnect under their current rights.
    identities: watch::Sender<u64>,
    /// Bumped to wake the dispatcher's feeder, which parks in between
    /// (no lock: the feeder runs in the idle scheduling class, and a lock
    /// it held while preempted would hold up the writer).
    dispatch: AtomicU64,
    feeder: OnceLock<Thread>,
    /// Whether any webhook is active (as the dispatcher last saw): new
    /// events wake the dispatcher only then.
    hooks_active: AtomicBool,
    /// Claimers waiting for work.
    waiters: Waiters,
    /// The id of the last event published.
    last_event_id: AtomicI64,
}

impl Default for Hub {
    fn default() -> Self {
        // Commits a slow subscriber may fall behind before it catches
        // up from the database instead.
        let (live, _) = broadcast::channel(1024);
        let (closing, _) = watch::channel(false);
        let (identities, _) = watch::channel(0);
        Hub {
            live,
            closing,
            identities,
            dispatch: AtomicU64::new(0),
            feeder: OnceLock::new(),
            hooks_active: AtomicBool::new(true),
            waiters: Waiters::default(),
            last_event_id: AtomicI64::new(0),
        }
    }
}

impl Hub {
    /// Claimers waiting for work.
    pub fn waiters(&self) -> &Waiters {
        &self.waiters
    }

    /// Called by the writer after a commit: streams get the events, the
    /// waiting claimers the tasks it queued, and the dispatcher is woken if
    /// some webhook may want the events or the commit addressed an event
    /// to one hook.
    pub fn publish(&self, events: Vec<Arc<Event>>, queued: &[Queued], addressed_hook: bool) {
        self.waiters.offer(queued);
        let wake =
            addressed_hook || (!events.is_empty() && self.hooks_active.load(Ordering::Relaxed));
        if let Some(last) = events.last() {
            self.last_event_id.fetch_max(last.id, Ordering::SeqCst);
            // No receivers is fine: nobody is streaming.
            let _ = self.live.send(Arc::from(events));
        }
        if wake {
            self.wake_dispatcher();
        }
    }

    /// The dispatcher tells whether any webhook is active (a new or
    /// re-enabled hook wakes it explicitly).
    pub fn set_hooks_active(&self, active: bool) {
        self.hooks_active.store(active, Ordering::Relaxed);
    }

    /// Records that events up to `id` exist (the store does at startup, so
    /// [`Hub::last_event_id`] is the newest event, not the newest since
    /// this start).
    pub fn note_event_id(&self, id: i64) {
        self.last_event_id.fetch_max(id, Ordering::SeqCst);
    }

    /// The id of the newest event in the log.
    pub fn last_event_id(&self) -> i64 {
        self.last_event_id.load(Ordering::SeqCst)
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Commit> {
        self.live.subscribe()
    }

    pub fn shut_down(&self) {
        self.closing.send_replace(true);
        self.wake_dispatcher();
    }

    pub fn closing(&self) -> watch::Receiver<bool> {
        self.closing.subscribe()
    }

    pub fn identities_changed(&self) {
        self.identities.send_modify(|g| *g += 1);
    }

    pub fn identities(&self) -> watch::Receiver<u64> {
        self.identities.subscribe()
    }

    pub fn subscriber_count(&self) -> usize {
        self.live.receiver_count()
    }

    pub fn wake_dispatcher(&self) {
        self.dispatch.fetch_add(1, Ordering::SeqCst);
        if let Some(feeder) = self.feeder.get() {
            feeder.unpark();
        }
    }

    /// Makes the calling thread the one [`Hub::wait_dispatcher`] wakes.
    pub fn register_feeder(&self) {
        let _ = self.feeder.set(thread::current());
    }

    /// Parks the feeder until woken after `seen`, or until `timeout`;
    /// returns the generation to pass next time.
    pub fn wait_dispatcher(&self, seen: u64, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        loop {
            let now = self.dispatch.load(Ordering::SeqCst);
            if now != seen {
                return now;
            }
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return now;
            };
            thread::park_timeout(left);
        }
    }
}

// ---------------------------------------------------------------- queue

/// A task that is in the claim queue after a commit, as the writer
/// announces it to waiting claimers.
#[derive(Debug, Clone)]
pub struct Queued {
    pub id: i64,
    pub assigned_to: Option<i64>,
    pub project_id: Option<i64>,
    pub labels: Vec<String>,
}

/// What a waiting claimer waits for (SPEC §10's claim filters).
#[derive(Debug, Clone)]
pub struct Wanted {
    pub agent: i64,
    pub project_id: Option<i64>,
    pub labels: Vec<String>,
}

impl Wanted {
    fn matches(&self, q: &Queued) -> bool {
        q.assigned_to.is_none_or(|a| a == self.agent)
            && self.project_id.is_none_or(|p| q.project_id == Some(p))
            && self.labels.iter().all(|l| q.labels.contains(l))
    }

    /// The index key a waiter is filed under: its most selective filter.
    fn key(&self) -> WaitKey {
        match (self.labels.first(), self.project_id) {
            (Some(l), _) => WaitKey::Label(l.clone()),
            (None, Some(p)) => WaitKey::Project(p),
            (None, None) => WaitKey::Any,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum WaitKey {
    Any,
    Project(i64),
    Label(String),
}

struct Waiter {
    id: u64,
    wanted: Wanted,
    notify: Arc<tokio::sync::Notify>,
}

/// Claimers waiting for work (long polls). They hold no thread: each is a
/// `Notify` filed under its most selective filter, so a commit wakes only
/// the waiters one of its queued tasks can serve — idle waiters on a
/// label nothing carries cost nothing. Wake-ups coalesce: a waiter woken
/// several times before it looks again looks once.
#[derive(Default)]
pub struct Waiters {
    index: Mutex<HashMap<WaitKey, Vec<Waiter>>>,
    count: AtomicUsize,
    next_id: AtomicU64,
    /// Wake-ups delivered so far (for tests and metrics).
    wakeups: AtomicU64,
}

/// A registered waiter; dropping it unregisters.
pub struct WaitTicket<'a> {
    waiters: &'a Waiters,
    key: WaitKey,
    id: u64,
    notify: Arc<tokio::sync::Notify>,
}

impl WaitTicket<'_> {
    /// Resolves when a commit queued a task this waiter may take (or one
    /// did since the last time).
    pub async fn notified(&self) {
        self.notify.notified().await
    }
}

impl Drop for WaitTicket<'_> {
    fn drop(&mut self) {
        if let Ok(mut index) = self.waiters.index.lock() {
            if let Some(list) = index.get_mut(&self.key) {
                list.retain(|w| w.id != self.id);
                if list.is_empty() {
                    index.remove(&self.key);
                }
            }
        }
        self.waiters.count.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Waiters {
    pub fn register(&self, wanted: Wanted) -> WaitTicket<'_> {
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        let notify = Arc::new(tokio::sync::Notify::new());
        let key = wanted.key();
        if let Ok(mut index) = self.index.lock() {
            index.entry(key.clone()).or_default().push(Waiter {
                id,
                wanted,
                notify: notify.clone(),
            });
        }
        self.count.fetch_add(1, Ordering::SeqCst);
        WaitTicket {
            waiters: self,
            key,
            id,
            notify,
        }
    }

    /// How many claimers are waiting.
    pub fn len(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Wake-ups delivered since start.
    pub fn wakeups(&self) -> u64 {
        self.wakeups.load(Ordering::Relaxed)
    }

    /// Wakes the waiters one of `queued` can serve.
    pub fn offer(&self, queued: &[Queued]) {
        if queued.is_empty() || self.is_empty() {
            return;
        }
        let Ok(index) = self.index.lock() else {
            return;
        };
        for q in queued {
            let keys = [WaitKey::Any]
                .into_iter()
                .chain(q.project_id.map(WaitKey::Project))
                .chain(q.labels.iter().cloned().map(WaitKey::Label));
            for key in keys {
                for w in index.get(&key).into_iter().flatten() {
                    if w.wanted.matches(q) {
                        w.notify.notify_one();
                        self.wakeups.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
    }
}
