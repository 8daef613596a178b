//! `GET /events`: the event log as Server-Sent Events or JSON pages,
//! filtered to what the caller can read.
//!
//! A stream subscribes to the hub before it reads the backlog, so nothing
//! committed in between is missed; ids at or below the last one sent are
//! skipped, so nothing is sent twice. A subscriber that falls too far
//! behind the live channel catches up from the database.

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::stream;
use tokio::sync::{broadcast, watch};

use super::{query, State};
use crate::domain::access::Caller;
use crate::error::{Error, Result};
use crate::hub::{is_known_kind, Event};
use crate::store::event_log::{self, EventFilter};
use crate::store::Store;

const KEEP_ALIVE: Duration = Duration::from_secs(15);
const PAGE: i64 = 500;

fn parse_filter(req: &HttpRequest) -> Result<(EventFilter, Option<i64>, i64)> {
    let q = query(req);
    let mut filter = EventFilter::default();
    if let Some(types) = q.get("types") {
        for t in types.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            if !is_known_kind(t) {
                return Err(Error::validation(
                    "types",
                    format!("unknown event {t:?}"),
                ));
            }
            filter.types.push(t.to_string());
        }
    }
    filter.task_id = q.int("task_id")?;
    let last_event_id = req
        .headers()
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok());
    let since = q.int("since")?.or(last_event_id);
    let limit = q.int("limit")?.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(Error::validation("limit", "must be between 1 and 1000"));
    }
    Ok((filter, since, limit))
}

async fn index(state: State, req: HttpRequest, caller: Caller) -> Result<HttpResponse> {
    let (filter, since, limit) = parse_filter(&req)?;
    let wants_stream = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/event-stream"));
    if wants_stream {
        return stream_events(state, caller, filter, since).await;
    }
    let events = state
        .store
        .read(move |c| event_log::list(c, &caller, &filter, since.unwrap_or(0), limit))
        .await?;
    // The payloads are stored as sent; join them without re-encoding.
    let mut body =
        String::with_capacity(events.iter().map(|e| e.payload.len() + 1).sum::<usize>() + 2);
    body.push('[');
    for (i, e) in events.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&e.payload);
    }
    body.push(']');
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(body))
}

fn frame(e: &Event) -> Bytes {
    Bytes::from(format!(
        "id: {}\nevent: {}\ndata: {}\n\n",
        e.id, e.kind, e.payload
    ))
}

struct Follow {
    store: Store,
    caller: Caller,
    filter: EventFilter,
    live: broadcast::Receiver<Arc<Event>>,
    closing: watch::Receiver<bool>,
    identities: watch::Receiver<u64>,
    last: i64,
    /// Catch up from the database before reading the live channel.
    catching_up: bool,
    pending: std::collections::VecDeque<Bytes>,
}

impl Follow {
    /// Reads committed events after `last` from the database.
    async fn catch_up(&mut self) -> Result<()> {
        let caller = self.caller.clone();
        let filter = self.filter.clone();
        let since = self.last;
        let page = self
            .store
            .read(move |c| {
                // Unfiltered by kind here so `last` advances over everything.
                let all = EventFilter::default();
                let rows = event_log::list(c, &caller, &all, since, PAGE)?;
                Ok(rows
                    .into_iter()
                    .map(|e| (filter.matches(&caller, &e), e))
                    .collect::<Vec<_>>())
            })
            .await?;
        if (page.len() as i64) < PAGE {
            self.catching_up = false;
        }
        for (wanted, e) in page {
            self.last = self.last.max(e.id);
            if wanted {
                self.pending.push_back(frame(&e));
            }
        }
        Ok(())
    }

    /// The next chunk to send, or `None` when the stream should end.
    async fn next_chunk(&mut self) -> Option<Bytes> {
        loop {
            if let Some(chunk) = self.pending.pop_front() {
                return Some(chunk);
            }
            if *self.closing.borrow() {
                return None;
            }
            if self.catching_up {
                if let Err(e) = self.catch_up().await {
                    log::warn!("event stream catch-up failed: {e}");
                    return None;
                }
                continue;
            }
            tokio::select! {
                received = self.live.recv() => match received {
                    Ok(e) => {
                        if e.id > self.last {
                            self.last = e.id;
                            if e.task_id.is_some() && self.filter.matches(&self.caller, &e) {
                                return Some(frame(&e));
                            }
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => self.catching_up = true,
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                _ = tokio::time::sleep(KEEP_ALIVE) => return Some(Bytes::from_static(b": keep-alive\n\n")),
                _ = self.closing.changed() => return None,
                // The caller's rights may have changed: let it reconnect.
                _ = self.identities.changed() => return None,
            }
        }
    }
}

async fn stream_events(
    state: State,
    caller: Caller,
    filter: EventFilter,
    since: Option<i64>,
) -> Result<HttpResponse> {
    let store = state.store.clone();
    // Subscribe first: anything committed after this is in the channel.
    let live = store.hub().subscribe();
    let closing = store.hub().closing();
    let identities = store.hub().identities();
    let last = match since {
        Some(s) => s,
        None => store.read(event_log::latest_id).await?,
    };
    let mut follow = Follow {
        store,
        caller,
        filter,
        live,
        closing,
        identities,
        last,
        catching_up: since.is_some(),
        pending: Default::default(),
    };
    follow
        .pending
        .push_back(Bytes::from_static(b"retry: 3000\n: connected\n\n"));
    let body = stream::unfold(follow, |mut f| async move {
        f.next_chunk()
            .await
            .map(|chunk| (Ok::<_, actix_web::Error>(chunk), f))
    });
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/events", web::get().to(index));
}
