//! `GET /stats` and `GET /usage` (SPEC §10); `GET /metrics` (SPEC §13).

use serde_json::Value;

use super::tasks::MAX_CONTENT_CHARS;
use super::Context;
use crate::domain::access::Caller;
use crate::domain::clock;
use crate::error::{Error, Result};
use crate::metrics::Snapshot;
use crate::store::stats::{self, UsageLimits};

/// Counts over what the caller's default `GET /tasks` would list: a
/// worker's own work (its readable tasks), not its claim queue.
pub async fn stats(ctx: &Context, caller: &Caller) -> Result<Value> {
    let caller = caller.clone();
    ctx.store
        .read(move |conn| stats::stats(conn, &caller))
        .await
}

/// What the hosted service reported as quota; self-hosted has no limits.
pub async fn usage(ctx: &Context) -> Result<Value> {
    let limits = UsageLimits {
        rate_limit_rpm: ctx.config.rate_limit_per_minute,
        max_content_chars: MAX_CONTENT_CHARS,
    };
    ctx.store
        .read(move |conn| stats::usage(conn, &limits))
        .await
}

/// `GET /metrics`: the Prometheus text exposition (SPEC §13), with the
/// gauges read now — task counts and queue depth from the database, the
/// waiters and streams from the hub, the files' sizes from the disk.
pub async fn metrics(ctx: &Context) -> Result<String> {
    let path = ctx.store.path().to_path_buf();
    // On the blocking pool with the reads: file sizes are disk calls too.
    let (gauges, database_bytes, wal_bytes) = ctx
        .store
        .read(move |c| {
            let size = |p: &std::path::Path| std::fs::metadata(p).map_or(0, |m| m.len() as i64);
            let mut wal = path.as_os_str().to_owned();
            wal.push("-wal");
            Ok((
                stats::gauges(c)?,
                size(&path),
                size(std::path::Path::new(&wal)),
            ))
        })
        .await?;
    let now = clock::now();
    let age = |at: &Option<String>| {
        at.as_deref()
            .and_then(clock::parse_timestamp)
            .map_or(0.0, |t| (now - t).as_seconds_f64().max(0.0))
    };
    let hub = ctx.store.hub();
    let snapshot = Snapshot {
        oldest_undelivered: gauges
            .oldest_undelivered
            .iter()
            .map(|(hook, at)| (*hook, age(at)))
            .collect(),
        tasks_by_status: gauges.tasks_by_status,
        queue_depth: gauges.queue_depth,
        long_poll_waiters: hub.waiters().len() as i64,
        sse_subscribers: hub.subscriber_count() as i64,
        database_bytes,
        wal_bytes,
    };
    ctx.store
        .metrics()
        .render(&snapshot)
        .map_err(|e| Error::internal(format!("cannot render the metrics: {e}")))
}
