//! The server's Prometheus metrics (SPEC §13), kept in one registry per
//! store and exposed by `GET /metrics` in the text exposition format.
//!
//! Two kinds: instruments the code moves as things happen (requests,
//! claims, lease expiries, webhook attempts, writer batches), and gauges
//! read from the database and the hub when scraped ([`Snapshot`]), so
//! nothing is counted twice or drifts from the stored truth.
//!
//! Names follow Prometheus' conventions: a `delega_` prefix, base units
//! (seconds, bytes) in the name, `_total` on counters.

use crate::domain::lifecycle::Status;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// How a webhook attempt ended, for `delega_webhook_deliveries_total`.
#[derive(Debug, Clone, Copy)]
pub enum DeliveryOutcome {
    /// The receiver answered 2xx.
    Delivered,
    /// It failed and will be tried again.
    Retrying,
    /// It failed and the retry schedule is spent (the dead letter).
    GivenUp,
}

impl DeliveryOutcome {
    fn label(self) -> &'static str {
        match self {
            DeliveryOutcome::Delivered => "delivered",
            DeliveryOutcome::Retrying => "retrying",
            DeliveryOutcome::GivenUp => "given_up",
        }
    }
}

/// What a scrape reads from the database and the hub.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// `(status, count)` for every status with tasks.
    pub tasks_by_status: Vec<(String, i64)>,
    /// Tasks in the claim queue.
    pub queue_depth: i64,
    /// `(webhook id, seconds)`: the age of the oldest event each active
    /// hook has not yet delivered (0 when it is caught up).
    pub oldest_undelivered: Vec<(i64, f64)>,
    pub long_poll_waiters: i64,
    pub sse_subscribers: i64,
    pub database_bytes: i64,
    pub wal_bytes: i64,
}

/// The registry and every instrument in it.
pub struct Metrics {
    registry: Registry,
    /// Held while a scrape sets the gauges and gathers, so two scrapes at
    /// once cannot interleave one's reset with the other's gather.
    scrape: std::sync::Mutex<()>,
    http: HistogramVec,
    claims: IntCounter,
    lease_expiries: IntCounter,
    deliveries: IntCounterVec,
    batch_size: Histogram,
    commit_seconds: Histogram,
    tasks: IntGaugeVec,
    queue_depth: IntGauge,
    oldest_undelivered: prometheus::GaugeVec,
    long_poll_waiters: IntGauge,
    sse_subscribers: IntGauge,
    file_bytes: IntGaugeVec,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Registers `c` and hands it back. Registration fails only for a name
/// registered twice or an invalid name, both fixed at compile time here,
/// so a failure is logged rather than taken down the server.
fn register<C: prometheus::core::Collector + Clone + 'static>(registry: &Registry, c: C) -> C {
    if let Err(e) = registry.register(Box::new(c.clone())) {
        log::error!("cannot register a metric: {e}");
    }
    c
}

// The constructors below only fail on invalid names or label sets, which
// are literals here; `expect` documents that they are checked by the
// unit test that builds a `Metrics`.
impl Metrics {
    pub fn new() -> Metrics {
        let r = Registry::new();
        let latency_buckets = vec![
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0,
        ];
        let http = HistogramVec::new(
            HistogramOpts::new(
                "delega_http_request_duration_seconds",
                "HTTP requests by route pattern, method and status, with their latency",
            )
            .buckets(latency_buckets.clone()),
            &["method", "route", "status"],
        )
        .expect("valid metric");
        let counter = |name: &str, help: &str| IntCounter::new(name, help).expect("valid metric");
        let gauge = |name: &str, help: &str| IntGauge::new(name, help).expect("valid metric");
        let deliveries = IntCounterVec::new(
            Opts::new(
                "delega_webhook_deliveries_total",
                "Webhook delivery attempts by outcome (delivered, retrying, given_up)",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        // Named from the start, so a rate() over them has a zero to begin at.
        for outcome in [
            DeliveryOutcome::Delivered,
            DeliveryOutcome::Retrying,
            DeliveryOutcome::GivenUp,
        ] {
            deliveries.with_label_values(&[outcome.label()]);
        }
        Metrics {
            http: register(&r, http),
            claims: register(
                &r,
                counter(
                    "delega_claims_total",
                    "Tasks claimed (by id or from the queue)",
                ),
            ),
            lease_expiries: register(
                &r,
                counter(
                    "delega_lease_expiries_total",
                    "Claims ended because their lease expired",
                ),
            ),
            deliveries: register(&r, deliveries),
            batch_size: register(
                &r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "delega_writer_batch_size",
                        "Writes committed together by the writer thread (group commit)",
                    )
                    .buckets(vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0]),
                )
                .expect("valid metric"),
            ),
            commit_seconds: register(
                &r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "delega_writer_commit_seconds",
                        "Time from BEGIN to COMMIT of one writer batch",
                    )
                    .buckets(latency_buckets),
                )
                .expect("valid metric"),
            ),
            tasks: register(
                &r,
                IntGaugeVec::new(Opts::new("delega_tasks", "Tasks by status"), &["status"])
                    .expect("valid metric"),
            ),
            queue_depth: register(
                &r,
                gauge("delega_queue_depth", "Tasks waiting in the claim queue"),
            ),
            oldest_undelivered: register(
                &r,
                prometheus::GaugeVec::new(
                    Opts::new(
                        "delega_webhook_oldest_undelivered_seconds",
                        "Age of the oldest event an active webhook has not yet delivered",
                    ),
                    &["webhook_id"],
                )
                .expect("valid metric"),
            ),
            long_poll_waiters: register(
                &r,
                gauge(
                    "delega_long_poll_waiters",
                    "Claims waiting for work (wait_seconds)",
                ),
            ),
            sse_subscribers: register(
                &r,
                gauge(
                    "delega_sse_subscribers",
                    "Live event subscribers: /events streams and MCP waits",
                ),
            ),
            file_bytes: register(
                &r,
                IntGaugeVec::new(
                    Opts::new(
                        "delega_database_bytes",
                        "Size of the database files (file = db or wal)",
                    ),
                    &["file"],
                )
                .expect("valid metric"),
            ),
            registry: r,
            scrape: std::sync::Mutex::new(()),
        }
    }

    /// One HTTP request: `route` is the matched pattern (`/api/tasks/{id}`),
    /// never the raw path, so ids don't multiply the series; `status` the
    /// three digits.
    pub fn observe_request(&self, method: &str, route: &str, status: &str, seconds: f64) {
        self.http
            .with_label_values(&[method, route, status])
            .observe(seconds);
    }

    pub fn claimed(&self) {
        self.claims.inc();
    }

    pub fn leases_expired(&self, n: usize) {
        self.lease_expiries.inc_by(n as u64);
    }

    pub fn delivery(&self, outcome: DeliveryOutcome) {
        self.deliveries.with_label_values(&[outcome.label()]).inc();
    }

    /// One writer batch of `jobs` writes whose transaction took `seconds`.
    pub fn batch(&self, jobs: usize, seconds: f64) {
        self.batch_size.observe(jobs as f64);
        self.commit_seconds.observe(seconds);
    }

    /// The text exposition of everything, with the gauges set from `s`.
    pub fn render(&self, s: &Snapshot) -> Result<String, prometheus::Error> {
        let _one_at_a_time = self
            .scrape
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Every status, zero included: a scrape of an empty board still
        // names the series alerts and dashboards query.
        self.tasks.reset();
        for status in Status::ALL {
            self.tasks.with_label_values(&[status.as_str()]).set(0);
        }
        for (status, n) in &s.tasks_by_status {
            self.tasks.with_label_values(&[status.as_str()]).set(*n);
        }
        self.queue_depth.set(s.queue_depth);
        self.oldest_undelivered.reset();
        for (hook, age) in &s.oldest_undelivered {
            self.oldest_undelivered
                .with_label_values(&[hook.to_string().as_str()])
                .set(*age);
        }
        self.long_poll_waiters.set(s.long_poll_waiters);
        self.sse_subscribers.set(s.sse_subscribers);
        self.file_bytes
            .with_label_values(&["db"])
            .set(s.database_bytes);
        self.file_bytes.with_label_values(&["wal"]).set(s.wal_bytes);
        let mut out = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut out)?;
        String::from_utf8(out).map_err(|e| prometheus::Error::Msg(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_instrument_registers_and_renders() {
        let m = Metrics::new();
        m.observe_request("GET", "/api/tasks/{id}", "200", 0.002);
        m.claimed();
        m.delivery(DeliveryOutcome::GivenUp);
        m.batch(3, 0.001);
        let text = m
            .render(&Snapshot {
                tasks_by_status: vec![("open".into(), 2)],
                queue_depth: 1,
                oldest_undelivered: vec![(7, 1.5)],
                ..Snapshot::default()
            })
            .expect("render");
        for needle in [
            "delega_http_request_duration_seconds_count{method=\"GET\",route=\"/api/tasks/{id}\",status=\"200\"} 1",
            "delega_claims_total 1",
            "delega_webhook_deliveries_total{outcome=\"given_up\"} 1",
            "delega_writer_batch_size_count 1",
            "delega_tasks{status=\"open\"} 2",
            "delega_queue_depth 1",
            "delega_webhook_oldest_undelivered_seconds{webhook_id=\"7\"} 1.5",
            "delega_database_bytes{file=\"wal\"} 0",
        ] {
            assert!(text.contains(needle), "missing {needle} in\n{text}");
        }
    }
}
