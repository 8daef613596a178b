//! `GET /events`: the event log as Server-Sent Events or JSON pages,
//! filtered to what the caller can see (the feed is in [`crate::ops::feed`]).

use std::time::Duration;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use bytes::{Bytes, BytesMut};
use futures_util::stream;

use super::{query, State};
use crate::domain::access::Caller;
use crate::domain::event_kind::EventKind;
use crate::error::{Error, Result};
use crate::hub::Event;
use crate::ops::feed::{self, Follow, Next};
use crate::store::event_log::EventFilter;

const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The filter, where to resume, and the page size. A browser's
/// `EventSource` reconnects to the same URL with `Last-Event-ID`: with
/// both that and `since`, the stream resumes after the larger (SPEC §9),
/// so nothing is sent twice.
fn parse_filter(req: &HttpRequest) -> Result<(EventFilter, Option<i64>, i64)> {
    let q = query(req);
    let mut filter = EventFilter::default();
    if let Some(types) = q.get("types") {
        for t in types.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            if EventKind::parse(t).is_none() {
                return Err(Error::validation("types", format!("unknown event {t:?}")));
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
    let since = q.int("since")?.max(last_event_id);
    let limit = q.int("limit")?.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(Error::validation("limit", "must be between 1 and 1000"));
    }
    Ok((filter, since, limit))
}

#[utoipa::path(
    get,
    path = "/events",
    tag = "events",
    params(("types" = Option<String>, Query, description = "Comma-separated event kinds"), ("task_id" = Option<i64>, Query), ("since" = Option<i64>, Query, description = "Only events after this id"), ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000), ("max_rate" = Option<i64>, Query, minimum = 1, maximum = 10000, description = "Streams only: events a second before the stream drops the rest and sends one `resync` event (id = the last dropped)"), ("Last-Event-ID" = Option<i64>, Header)),
    responses((status = 200, description = "A JSON page of events, or with `Accept: text/event-stream` a live stream", content((Vec<crate::api::openapi::EventPayload> = "application/json"), (String = "text/event-stream"))))
)]
pub async fn index(state: State, req: HttpRequest, caller: Caller) -> Result<HttpResponse> {
    let (filter, since, limit) = parse_filter(&req)?;
    let wants_stream = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/event-stream"));
    if wants_stream {
        let max_rate = match query(&req).int("max_rate")? {
            None => None,
            Some(r) if (1..=10_000).contains(&r) => Some(r as usize),
            Some(_) => {
                return Err(Error::validation(
                    "max_rate",
                    "must be between 1 and 10000 events per second",
                ))
            }
        };
        return stream_events(state, caller, filter, since, max_rate).await;
    }
    let events = feed::page(&state.ops, &caller, filter, since.unwrap_or(0), limit).await?;
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

/// Most bytes one chunk of a stream gathers from events already waiting.
const CHUNK_BYTES: usize = 64 * 1024;

/// `first` and whatever else is ready (at most `max` events in all), as
/// one chunk: one write (and one wake-up of the connection) per commit
/// rather than per event. Returns the chunk and how many events it holds.
fn frames(first: &Event, follow: &mut Follow, max: usize) -> (Bytes, usize) {
    let head = first.sse_frame();
    if max <= 1 {
        return (head, 1);
    }
    let Some(second) = follow.ready() else {
        return (head, 1);
    };
    let mut chunk = BytesMut::with_capacity(CHUNK_BYTES.min(head.len() * 8));
    chunk.extend_from_slice(&head);
    chunk.extend_from_slice(&second.sse_frame());
    let mut n = 2;
    while n < max && chunk.len() < CHUNK_BYTES {
        match follow.ready() {
            Some(e) => {
                chunk.extend_from_slice(&e.sse_frame());
                n += 1;
            }
            None => break,
        }
    }
    (chunk.freeze(), n)
}

/// A stream's state: the follow, and with `max_rate` the current
/// one-second window, the events sent in it, and how long the next
/// overflow keeps quiet.
struct Stream {
    follow: Follow,
    max_rate: Option<usize>,
    window: tokio::time::Instant,
    sent: usize,
    quiet: Duration,
}

impl Stream {
    /// The next chunk to send, or `None` when the stream ends.
    async fn next_chunk(&mut self) -> Option<Bytes> {
        let first = match self.follow.next().await? {
            Next::Event(e) => e,
            Next::Idle => return Some(Bytes::from_static(b": keep-alive\n\n")),
        };
        let Some(limit) = self.max_rate else {
            return Some(frames(&first, &mut self.follow, usize::MAX).0);
        };
        let now = tokio::time::Instant::now();
        if now.duration_since(self.window) >= WINDOW {
            if now.duration_since(self.window) >= 2 * WINDOW || self.sent < limit {
                // A calm window: the next overflow is quiet for one only.
                self.quiet = WINDOW;
            }
            self.window = now;
            self.sent = 0;
        }
        if self.sent < limit {
            let (chunk, n) = frames(&first, &mut self.follow, limit - self.sent);
            self.sent += n;
            return Some(chunk);
        }
        self.skip_window().await
    }

    /// Over the rate: sleeps through the quiet period, skips everything
    /// published meanwhile, then says so with one `resync` event whose id
    /// is the last one skipped (a reconnect resumes after it). The client
    /// reloads its view instead of applying the events one by one, as a
    /// Kubernetes informer re-lists when its watch falls behind. The quiet
    /// period doubles while the overload lasts (1, 2, 4, 8 s), so a tab
    /// under a sustained firehose reloads every 8 s, and it costs nothing
    /// while it sleeps.
    async fn skip_window(&mut self) -> Option<Bytes> {
        let end = self.window + self.quiet;
        self.quiet = (self.quiet * 2).min(MAX_QUIET);
        let last = self.follow.skip_until(end).await?;
        self.window = tokio::time::Instant::now();
        self.sent = 0;
        Some(Bytes::from(format!(
            "id: {last}\nevent: resync\ndata: {{\"last_event_id\":{last}}}\n\n"
        )))
    }
}

/// The window `max_rate` counts events in.
const WINDOW: Duration = Duration::from_secs(1);
/// The longest a rate-limited stream stays quiet before its `resync`.
const MAX_QUIET: Duration = Duration::from_secs(8);

async fn stream_events(
    state: State,
    caller: Caller,
    filter: EventFilter,
    since: Option<i64>,
    max_rate: Option<usize>,
) -> Result<HttpResponse> {
    let follow = feed::follow(&state.ops, &caller, filter, since, KEEP_ALIVE).await?;
    let stream = Stream {
        follow,
        max_rate,
        window: tokio::time::Instant::now(),
        sent: 0,
        quiet: WINDOW,
    };
    let hello = stream::once(async {
        Ok::<_, actix_web::Error>(Bytes::from_static(b"retry: 3000\n: connected\n\n"))
    });
    let events = stream::unfold(stream, |mut s| async move {
        let chunk = s.next_chunk().await?;
        Some((Ok::<_, actix_web::Error>(chunk), s))
    });
    use futures_util::StreamExt;
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(hello.chain(events)))
}
