//! The dispatcher: a feeder thread reads due deliveries from the outbox
//! and hands them to a pool of worker threads, which POST them (ureq,
//! bounded time and response size, no redirects) and record each attempt.
//! Delivery is at-least-once: a delivery stays pending until an attempt's
//! outcome is committed, so a crash or restart only repeats it.

use std::collections::HashSet;
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rand::Rng;

use super::guard;
use super::sign::{self, SignatureVersion};
use crate::config::WebhookConfig;
use crate::domain::clock;
use crate::events::Hub;
use crate::store::webhooks::{self as hooks, Due, Outcome, RetryPolicy};
use crate::store::Store;

/// Longest the feeder sleeps without being woken.
const IDLE_POLL: Duration = Duration::from_secs(1);

struct Shared {
    store: Store,
    hub: Arc<Hub>,
    config: WebhookConfig,
    allow_private: bool,
    in_flight: Mutex<HashSet<i64>>,
    stopping: AtomicBool,
}

pub struct Dispatcher {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

/// What one step of the feeder found.
#[derive(Debug, PartialEq, Eq)]
pub enum Fed {
    Handed(usize),
    Idle,
}

impl Dispatcher {
    pub fn start(
        store: Store,
        config: WebhookConfig,
        allow_private: bool,
    ) -> anyhow::Result<Dispatcher> {
        let shared = Arc::new(Shared {
            hub: store.hub().clone(),
            store,
            config,
            allow_private,
            in_flight: Mutex::new(HashSet::new()),
            stopping: AtomicBool::new(false),
        });
        let (tx, rx) = mpsc::channel::<Due>();
        let rx = Arc::new(Mutex::new(rx));
        let (done_tx, done_rx) = mpsc::channel::<Attempted>();
        let mut threads = Vec::new();
        for i in 0..shared.config.dispatcher_threads {
            let shared = shared.clone();
            let rx = rx.clone();
            let done = done_tx.clone();
            threads.push(
                thread::Builder::new()
                    .name(format!("delega-webhook-{i}"))
                    .spawn(move || worker(&shared, &rx, &done))?,
            );
        }
        drop(done_tx);
        let recorder_shared = shared.clone();
        threads.push(
            thread::Builder::new()
                .name("delega-webhook-recorder".into())
                .spawn(move || recorder(&recorder_shared, &done_rx))?,
        );
        let feeder_shared = shared.clone();
        threads.push(
            thread::Builder::new()
                .name("delega-webhook-feeder".into())
                .spawn(move || feeder(&feeder_shared, tx))?,
        );
        Ok(Dispatcher { shared, threads })
    }

    /// Stops taking new deliveries, lets attempts in flight finish and be
    /// recorded, and joins the threads.
    pub fn stop(self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        self.shared.hub.wake_dispatcher();
        for t in self.threads {
            let _ = t.join();
        }
    }
}

fn feeder(shared: &Shared, tx: mpsc::Sender<Due>) {
    let mut generation = 0;
    let capacity = shared.config.dispatcher_threads * 4;
    while !shared.stopping.load(Ordering::SeqCst) {
        let wait = match feed_once(shared, &tx, capacity) {
            Fed::Handed(_) => Duration::ZERO,
            Fed::Idle => time_to_next_due(shared),
        };
        if !wait.is_zero() {
            generation = shared.hub.wait_dispatcher(generation, wait);
        }
    }
    // Dropping `tx` ends the workers once the queue is drained.
}

/// Hands every due delivery not already in flight to the workers (up to
/// what they can hold).
fn feed_once(shared: &Shared, tx: &mpsc::Sender<Due>, capacity: usize) -> Fed {
    let in_flight: Vec<i64> = match shared.in_flight.lock() {
        Ok(set) => set.iter().copied().collect(),
        Err(_) => return Fed::Idle,
    };
    let room = capacity.saturating_sub(in_flight.len());
    if room == 0 {
        return Fed::Idle;
    }
    let in_flight_json = serde_json::to_string(&in_flight).unwrap_or_else(|_| "[]".into());
    let now = clock::now_string();
    let due = match shared
        .store
        .read_blocking(|c| hooks::due(c, &now, &in_flight_json, room as i64))
    {
        Ok(d) => d,
        Err(e) => {
            log::warn!("webhook dispatcher cannot read the queue: {e}");
            return Fed::Idle;
        }
    };
    if due.is_empty() {
        return Fed::Idle;
    }
    let n = due.len();
    for d in due {
        if let Ok(mut set) = shared.in_flight.lock() {
            set.insert(d.id);
        }
        if tx.send(d).is_err() {
            return Fed::Idle;
        }
    }
    Fed::Handed(n)
}

fn time_to_next_due(shared: &Shared) -> Duration {
    let next = shared
        .store
        .read_blocking(hooks::next_due_at)
        .ok()
        .flatten()
        .and_then(|t| clock::parse_timestamp(&t));
    match next {
        None => IDLE_POLL,
        Some(at) => {
            let left = at - clock::now();
            if left.is_negative() {
                // Due now but all in flight (or room is short): wait to be woken.
                Duration::from_millis(50)
            } else {
                Duration::try_from(left).unwrap_or(IDLE_POLL).min(IDLE_POLL)
            }
        }
    }
}

/// An attempt made, waiting to be recorded.
struct Attempted {
    due: Due,
    outcome: Outcome,
    retry_at: String,
}

fn worker(shared: &Shared, rx: &Mutex<mpsc::Receiver<Due>>, done: &mpsc::Sender<Attempted>) {
    let agent = http_agent(shared);
    loop {
        let next = match rx.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(due) = next else { return };
        let outcome = deliver(&agent, shared, &due);
        let retry_at = clock::format(clock::now() + backoff(&shared.config, due.attempts + 1));
        if done
            .send(Attempted {
                due,
                outcome,
                retry_at,
            })
            .is_err()
        {
            return;
        }
    }
}

/// Records attempts in batches: one write (and one commit) for everything
/// the workers finished meanwhile, instead of one per delivery. A delivery
/// leaves the in-flight set only once its outcome is committed, so it is
/// never fetched again before then (and after a crash it is retried).
fn recorder(shared: &Shared, done: &mpsc::Receiver<Attempted>) {
    let policy = RetryPolicy {
        max_attempts: shared.config.max_attempts,
        disable_after_failures: shared.config.disable_after_failures,
    };
    while let Ok(first) = done.recv() {
        let mut batch = vec![first];
        batch.extend(done.try_iter().take(511));
        let ids: Vec<i64> = batch.iter().map(|a| a.due.id).collect();
        let policy = policy.clone();
        if let Err(e) = shared.store.write_blocking(move |tx| {
            for a in &batch {
                hooks::record_attempt(tx, &a.due, &a.outcome, &a.retry_at, &policy)?;
            }
            Ok(())
        }) {
            log::warn!("cannot record {} webhook attempt(s): {e}", ids.len());
        }
        if let Ok(mut set) = shared.in_flight.lock() {
            for id in &ids {
                set.remove(id);
            }
        }
        shared.hub.wake_dispatcher();
    }
}

/// Delay before attempt `attempt + 1`: first_retry × factor^(attempt-1),
/// capped, with ±20 % jitter so failed receivers are not hit in lockstep.
pub fn backoff(config: &WebhookConfig, attempt: i64) -> time::Duration {
    let exp = (attempt - 1).clamp(0, 60) as i32;
    let base = (config.first_retry_seconds * config.backoff_factor.powi(exp))
        .min(config.max_backoff_seconds);
    let jitter = rand::thread_rng().gen_range(0.8..1.2);
    time::Duration::seconds_f64((base * jitter).max(0.0))
}

fn http_agent(shared: &Shared) -> ureq::Agent {
    let allow_private = shared.allow_private;
    ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(shared.config.timeout_seconds))
        .redirects(0)
        .user_agent(&format!("delega/{}", env!("CARGO_PKG_VERSION")))
        .resolver(move |host_port: &str| guard::resolve(host_port, allow_private))
        .build()
}

fn deliver(agent: &ureq::Agent, shared: &Shared, due: &Due) -> Outcome {
    let started = Instant::now();
    let timestamp = clock::now_string();
    let version = SignatureVersion::parse(&due.signature_version).unwrap_or(SignatureVersion::V1);
    let body = due.payload.as_bytes();
    let signature = sign::signature(&due.secret, version, &timestamp, body);
    let result = agent
        .post(&due.url)
        .set("Content-Type", "application/json")
        .set("X-Delega-Event", &due.event)
        .set("X-Delega-Delivery", &due.id.to_string())
        .set("X-Delega-Timestamp", &timestamp)
        .set("X-Delega-Signature", &signature)
        .send_bytes(body);
    let (status_code, error) = match result {
        Ok(resp) => {
            let code = resp.status();
            drain(resp, shared.config.max_response_bytes);
            (Some(code), None)
        }
        Err(ureq::Error::Status(code, resp)) => {
            drain(resp, shared.config.max_response_bytes);
            (Some(code), Some(format!("receiver answered {code}")))
        }
        Err(ureq::Error::Transport(t)) => (None, Some(t.to_string())),
    };
    Outcome {
        status_code,
        error,
        duration_ms: started.elapsed().as_millis() as i64,
    }
}

/// Reads at most `limit` bytes of the answer (so keep-alive can reuse the
/// connection for small answers, and a huge one cannot exhaust memory).
fn drain(resp: ureq::Response, limit: u64) {
    let _ = std::io::copy(&mut resp.into_reader().take(limit), &mut std::io::sink());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_by_the_factor_and_is_capped() {
        let c = WebhookConfig::default();
        let d1 = backoff(&c, 1).as_seconds_f64();
        let d3 = backoff(&c, 3).as_seconds_f64();
        let d9 = backoff(&c, 9).as_seconds_f64();
        assert!((0.8..=1.2).contains(&d1), "{d1}");
        assert!((20.0..=30.0).contains(&d3), "{d3}");
        assert!(d9 <= 3600.0 * 1.2, "{d9}");
    }
}
