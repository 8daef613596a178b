//! The dispatcher: a feeder thread reads the event log through each hook's
//! cursor (and the retries that fell due) and hands deliveries to a pool
//! of worker threads, which POST them (ureq, bounded time and response
//! size, no redirects); a recorder thread logs each attempt.
//!
//! Delivery is at-least-once: a hook's cursor moves past an event only in
//! the transaction that records its attempt (or once the event turned out
//! not to be the hook's), and a failed attempt leaves a retry row in that
//! same transaction; so a crash or restart only repeats deliveries.

use std::collections::HashMap;
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
use crate::hub::Hub;
use crate::store::webhooks::{self as hooks, Due, Feed, Outcome, RetryPolicy};
use crate::store::Store;
use rusqlite::Connection;

/// Longest the feeder sleeps without being woken.
const IDLE_POLL: Duration = Duration::from_secs(1);

struct Shared {
    store: Store,
    hub: Arc<Hub>,
    config: WebhookConfig,
    allow_private: bool,
    progress: Mutex<Progress>,
    stopping: AtomicBool,
}

/// What the feeder handed out and the recorder has not yet committed.
#[derive(Default)]
struct Progress {
    /// (hook, event) deliveries with the workers or the recorder; `true`
    /// for a first delivery fed from the log (it holds the cursor back).
    in_flight: HashMap<(i64, i64), bool>,
    /// Per hook: the log has been fed (handed out or skipped) through here.
    fed_through: HashMap<i64, i64>,
}

impl Progress {
    /// Where the log is read next for `feeds` (the lowest cursor, stored
    /// or fed) and how many events to read: twice the room the workers
    /// have, plus [`LOG_SLACK`]. `None` without hooks.
    fn next_page(&self, feeds: &[Feed], capacity: usize) -> Option<(i64, i64)> {
        let from = feeds.iter().map(|f| self.fed(f)).min()?;
        let room = capacity.saturating_sub(self.in_flight.len()) as i64;
        Some((from, room * 2 + LOG_SLACK))
    }

    /// How far the log has been fed for `feed`: as far as this feeder fed
    /// it, or its stored cursor when that is further (or the hook is new
    /// to the feeder, or back after it was off).
    fn fed(&self, feed: &Feed) -> i64 {
        self.fed_through
            .get(&feed.id)
            .map_or(feed.delivered_through, |fed| {
                (*fed).max(feed.delivered_through)
            })
    }

    /// How far hook `hook`'s cursor may go, counting the deliveries in
    /// `done` as recorded: to just before its oldest first delivery still
    /// in flight, or as far as the log was fed.
    fn cursor(&self, hook: i64, done: &[(i64, i64)]) -> Option<i64> {
        let fed = *self.fed_through.get(&hook)?;
        let oldest = self
            .in_flight
            .iter()
            .filter(|((h, e), first)| **first && *h == hook && !done.contains(&(*h, *e)))
            .map(|((_, e), _)| *e)
            .min();
        // Never past `fed`: after a failed record the log is fed again
        // from the stored cursor, below deliveries still in flight.
        Some(oldest.map_or(fed, |e| (e - 1).min(fed)))
    }
}

pub struct Dispatcher {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

/// What one step of the feeder found.
#[derive(Debug, PartialEq, Eq)]
pub enum Fed {
    /// Handed this many deliveries out (0: skipped a full page of the log
    /// that none of the hooks wanted, or left the page unread because a
    /// failed record sent a hook back before it); look again at once.
    Handed(usize),
    /// Nothing to do until woken or a retry falls due.
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
            progress: Mutex::new(Progress::default()),
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
    shared.hub.register_feeder();
    yield_to_requests();
    // A connection of its own: the pool's lock is shared with request
    // threads, and this thread runs in the idle scheduling class.
    let conn = match shared.store.own_reader() {
        Ok(c) => c,
        Err(e) => {
            log::error!("webhook dispatcher cannot open the database: {e}");
            return;
        }
    };
    let mut generation = 0;
    let capacity = shared.config.dispatcher_threads * 4;
    while !shared.stopping.load(Ordering::SeqCst) {
        let wait = match feed_once(shared, &conn, &tx, capacity) {
            Fed::Handed(_) => Duration::ZERO,
            Fed::Idle => time_to_next_due(&conn),
        };
        if !wait.is_zero() {
            generation = shared.hub.wait_dispatcher(generation, wait);
        }
    }
    // Dropping `tx` ends the workers once the queue is drained.
}

/// Events read from the log per feeder round, beyond twice the room the
/// workers have (hooks skip some).
const LOG_SLACK: i64 = 32;

/// Hands due retries and new events of the log to the workers (up to
/// what they can hold); hooks skip events that are not theirs.
fn feed_once(shared: &Shared, conn: &Connection, tx: &mpsc::Sender<Due>, capacity: usize) -> Fed {
    // Deliveries in flight now are skipped even if the recorder commits
    // them before the read below: the read may predate that commit.
    let busy: Vec<(i64, i64)> = match shared.progress.lock() {
        Ok(p) if p.in_flight.len() < capacity => p.in_flight.keys().copied().collect(),
        _ => return Fed::Idle,
    };
    let now = clock::now_string();
    // One snapshot for the hooks, their due retries and the page of the
    // log they read next: a hook disabled, changed or switched off and on
    // again is seen with the settings and cursor of the same moment as
    // the events.
    let read = Store::read_on(conn, |c| {
        let feeds = hooks::feeds(c)?;
        let retries = hooks::due_retries(c, &now, capacity as i64 * 2)?;
        let next = match shared.progress.lock() {
            Ok(p) => p.next_page(&feeds, capacity),
            Err(_) => None,
        };
        let log = match next {
            Some((from, page)) => Some((from, page, hooks::events_after(c, from, page)?)),
            None => None,
        };
        Ok((feeds, retries, log))
    });
    let (feeds, retries, log) = match read {
        Ok(r) => r,
        Err(e) => {
            log::warn!("webhook dispatcher cannot read the queue: {e}");
            return Fed::Idle;
        }
    };
    shared.hub.set_hooks_active(!feeds.is_empty());
    let mut handed = Vec::new();
    let Ok(mut progress) = shared.progress.lock() else {
        return Fed::Idle;
    };
    // A hook seen for the first time (or again, after it was off) starts
    // from its stored cursor.
    progress
        .fed_through
        .retain(|hook, _| feeds.iter().any(|f| f.id == *hook));
    for f in &feeds {
        let fed = progress.fed(f);
        progress.fed_through.insert(f.id, fed);
    }
    for due in retries {
        if progress.in_flight.len() >= capacity {
            break;
        }
        if !progress.in_flight.contains_key(&due.key()) && !busy.contains(&due.key()) {
            progress.in_flight.insert(due.key(), false);
            handed.push(due);
        }
    }
    let mut more = false;
    if let Some((from, page, log)) = log {
        // A failed record since the page was chosen sends its hooks back
        // to their stored cursors, which may lie before the page: feed
        // them again next round rather than skip what lies in between.
        if progress.fed_through.values().any(|fed| *fed < from) {
            more = true;
        } else {
            more = log.len() as i64 == page;
            'log: for e in &log {
                for f in &feeds {
                    let Some(fed) = progress.fed_through.get(&f.id).copied() else {
                        continue;
                    };
                    if fed >= e.event.id {
                        continue;
                    }
                    if f.wants(e) && !progress.in_flight.contains_key(&(f.id, e.event.id)) {
                        if progress.in_flight.len() >= capacity {
                            more = false;
                            break 'log;
                        }
                        let due = f.due(e);
                        progress.in_flight.insert(due.key(), true);
                        handed.push(due);
                    }
                    progress.fed_through.insert(f.id, e.event.id);
                }
            }
        }
    }
    drop(progress);
    if handed.is_empty() {
        if !more {
            save_skipped(shared, &feeds);
        }
        return if more { Fed::Handed(0) } else { Fed::Idle };
    }
    let n = handed.len();
    for due in handed {
        if tx.send(due).is_err() {
            return Fed::Idle;
        }
    }
    Fed::Handed(n)
}

/// When there is nothing to deliver, stores the cursors of hooks with
/// nothing in flight that skipped events since (so a restart need not
/// read those again).
fn save_skipped(shared: &Shared, feeds: &[Feed]) {
    let moves: Vec<(i64, i64)> = match shared.progress.lock() {
        Ok(p) => feeds
            .iter()
            .filter(|f| !p.in_flight.keys().any(|(h, _)| *h == f.id))
            .filter_map(|f| {
                p.cursor(f.id, &[])
                    .filter(|c| *c > f.delivered_through)
                    .map(|c| (f.id, c))
            })
            .collect(),
        Err(_) => return,
    };
    if moves.is_empty() {
        return;
    }
    if let Err(e) = shared.store.write_blocking(move |tx| {
        for (hook, through) in &moves {
            hooks::advance(tx, *hook, *through)?;
        }
        Ok(())
    }) {
        log::warn!("cannot store webhook cursors: {e}");
    }
}

fn time_to_next_due(conn: &Connection) -> Duration {
    let next = Store::read_on(conn, hooks::next_due_at)
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
    /// When to try again if it failed; `None` once the schedule is spent.
    retry_at: Option<String>,
}

fn worker(shared: &Shared, rx: &Mutex<mpsc::Receiver<Due>>, done: &mpsc::Sender<Attempted>) {
    yield_to_requests();
    let agent = http_agent(shared);
    loop {
        let next = match rx.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(due) = next else { return };
        // A panic must not strand the delivery in flight (it would hold
        // the hook's cursor back for good): it counts as a failed attempt.
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            deliver(&agent, shared, &due)
        }))
        .unwrap_or_else(|_| Outcome {
            status_code: None,
            error: Some("the delivery failed inside the server".into()),
            duration_ms: 0,
        });
        let retry_at = backoff(&shared.config, due.attempts + 1)
            .map(|delay| clock::format(clock::now() + delay));
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
/// the workers finished meanwhile, instead of one per delivery, with the
/// hooks' cursors moved as far as the recorded attempts allow. A delivery
/// leaves the in-flight set only once its outcome is committed, so it is
/// never handed out again before then (and after a crash it is repeated).
fn recorder(shared: &Shared, done: &mpsc::Receiver<Attempted>) {
    yield_to_requests();
    let policy = RetryPolicy {
        disable_after: time::Duration::seconds_f64(shared.config.disable_after_hours * 3600.0),
    };
    while let Ok(first) = done.recv() {
        let mut batch = vec![first];
        batch.extend(done.try_iter().take(511));
        let keys: Vec<(i64, i64)> = batch.iter().map(|a| a.due.key()).collect();
        let mut hooks_touched: Vec<i64> = keys.iter().map(|(h, _)| *h).collect();
        hooks_touched.sort_unstable();
        hooks_touched.dedup();
        let cursors: Vec<(i64, i64)> = match shared.progress.lock() {
            Ok(p) => hooks_touched
                .iter()
                .filter_map(|h| p.cursor(*h, &keys).map(|c| (*h, c)))
                .collect(),
            Err(_) => Vec::new(),
        };
        let policy = policy.clone();
        let recorded = shared.store.write_blocking(move |tx| {
            let mut outcomes = Vec::with_capacity(batch.len());
            for a in &batch {
                outcomes.extend(hooks::record_attempt(
                    tx,
                    &a.due,
                    &a.outcome,
                    a.retry_at.as_deref(),
                    &policy,
                )?);
            }
            for (hook, through) in &cursors {
                hooks::advance(tx, *hook, *through)?;
            }
            Ok(outcomes)
        });
        // Counted as recorded, once committed.
        if let Ok(outcomes) = &recorded {
            for outcome in outcomes {
                shared.store.metrics().delivery(*outcome);
            }
        }
        if let Ok(mut p) = shared.progress.lock() {
            for key in &keys {
                p.in_flight.remove(key);
            }
            if let Err(e) = &recorded {
                log::warn!("cannot record {} webhook attempt(s): {e}", keys.len());
                // Feed these hooks again from their stored cursors: the
                // deliveries whose outcome was lost are repeated.
                for hook in &hooks_touched {
                    p.fed_through.remove(hook);
                }
            }
        }
        shared.hub.wake_dispatcher();
    }
}

/// Puts the calling dispatcher thread in the idle scheduling class (Linux
/// policies are per thread): it runs when a core would otherwise idle, and
/// any request-serving thread that wakes up takes the core back at once.
/// On a saturated machine requests come first and deliveries use the
/// slack; they are never lost, only later. (At nice 19 the delivery
/// threads still delayed the writer thread's wake-ups: create throughput
/// with a webhook registered fell 18-25 % in a 10 s burst instead of under
/// 10 %.) These threads take no lock a request thread takes, or a
/// preempted one could hold the writer up: the feeder reads on its own
/// connection and is woken without a lock, and attempts reach the writer
/// through its queue.
fn yield_to_requests() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `param` is a valid sched_param for the call's duration; pid
    // 0 is the calling thread.
    let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) };
    if rc != 0 {
        log::debug!("cannot move the webhook thread to the idle scheduling class");
    }
}

/// The delay after failed attempt `attempt` (1 = the first): entry
/// `attempt - 1` of `retry_schedule_seconds` with ±20 % jitter, so failed
/// receivers are not hit in lockstep; `None` when the schedule is spent
/// (the delivery is given up).
pub fn backoff(config: &WebhookConfig, attempt: i64) -> Option<time::Duration> {
    let index = usize::try_from(attempt - 1).ok()?;
    let base = *config.retry_schedule_seconds.get(index)?;
    let jitter = rand::thread_rng().gen_range(0.8..1.2);
    Some(time::Duration::seconds_f64((base * jitter).max(0.0)))
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
    let now = clock::now();
    let timestamp = clock::format(now);
    let version = SignatureVersion::parse(&due.signature_version).unwrap_or(SignatureVersion::V1);
    let body = due.payload.as_bytes();
    // The delivery's id: the same on every retry of it (SPEC §9).
    let id = due.event_id.to_string();
    let unix = now.unix_timestamp();
    let result = agent
        .post(&due.url)
        .set("Content-Type", "application/json")
        .set("X-Delega-Event", &due.event)
        .set("X-Delega-Delivery", &id)
        .set("X-Delega-Timestamp", &timestamp)
        .set(
            "X-Delega-Signature",
            &sign::signature(&due.secret, version, &timestamp, body),
        )
        .set("webhook-id", &id)
        .set("webhook-timestamp", &unix.to_string())
        .set(
            "webhook-signature",
            &sign::standard_signature(&due.secret, &id, unix, body),
        )
        .send_bytes(body);
    let (status_code, error) = match result {
        Ok(resp) => {
            let code = resp.status();
            let error = (!(200..300).contains(&code)).then(|| match resp.header("Location") {
                // Redirects are not followed (a receiver could otherwise
                // send deliveries on to an address the guard refuses).
                Some(location) if (300..400).contains(&code) => format!(
                    "receiver answered {code} redirecting to {location}; redirects are not followed"
                ),
                _ => format!("receiver answered {code}"),
            });
            drain(resp, shared.config.max_response_bytes);
            (Some(code), error)
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
    fn backoff_follows_the_schedule_with_jitter_and_ends_with_it() {
        let c = WebhookConfig::default();
        let schedule = c.retry_schedule_seconds.clone();
        for (i, base) in schedule.iter().enumerate() {
            let d = backoff(&c, i as i64 + 1)
                .expect("a retry while the schedule lasts")
                .as_seconds_f64();
            assert!((base * 0.8..=base * 1.2).contains(&d), "retry {i}: {d}");
        }
        assert_eq!(backoff(&c, schedule.len() as i64 + 1), None);
        assert_eq!(backoff(&c, 0), None);
        // The default spans more than a day (SPEC §9).
        assert!(schedule.iter().sum::<f64>() > 24.0 * 3600.0);
    }
}
