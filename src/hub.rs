//! The hub: tells live subscribers (SSE streams, the webhook dispatcher,
//! long-polling claimers) about committed events.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::{self, Thread};
use std::time::Duration;
use std::time::Instant;

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
}

impl Event {
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

/// Fan-out of committed events. The writer publishes after each COMMIT.
pub struct Hub {
    live: broadcast::Sender<Arc<Event>>,
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
}

impl Default for Hub {
    fn default() -> Self {
        let (live, _) = broadcast::channel(8192);
        let (closing, _) = watch::channel(false);
        let (identities, _) = watch::channel(0);
        Hub {
            live,
            closing,
            identities,
            dispatch: AtomicU64::new(0),
            feeder: OnceLock::new(),
            hooks_active: AtomicBool::new(true),
        }
    }
}

impl Hub {
    /// Called by the writer after a commit: streams get the events, and
    /// the dispatcher is woken if some webhook may want them or the commit
    /// addressed an event to one hook.
    pub fn publish(&self, events: Vec<Arc<Event>>, addressed_hook: bool) {
        let wake =
            addressed_hook || (!events.is_empty() && self.hooks_active.load(Ordering::Relaxed));
        for event in events {
            // No receivers is fine: nobody is streaming.
            let _ = self.live.send(event);
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

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
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
