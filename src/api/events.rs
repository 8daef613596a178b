//! `GET /events`: the event log as Server-Sent Events or JSON pages,
//! filtered to what the caller can see (the feed is in [`crate::ops::feed`]).

use std::time::Duration;

use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse};
use futures_util::stream;

use super::{query, State};
use crate::domain::access::Caller;
use crate::domain::event_kind::EventKind;
use crate::error::{Error, Result};
use crate::hub::Event;
use crate::ops::feed::{self, Next};
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
    params(("types" = Option<String>, Query, description = "Comma-separated event kinds"), ("task_id" = Option<i64>, Query), ("since" = Option<i64>, Query, description = "Only events after this id"), ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000), ("Last-Event-ID" = Option<i64>, Header)),
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
        return stream_events(state, caller, filter, since).await;
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

fn frame(e: &Event) -> Bytes {
    Bytes::from(format!(
        "id: {}\nevent: {}\ndata: {}\n\n",
        e.id, e.kind, e.payload
    ))
}

async fn stream_events(
    state: State,
    caller: Caller,
    filter: EventFilter,
    since: Option<i64>,
) -> Result<HttpResponse> {
    let follow = feed::follow(&state.ops, &caller, filter, since, KEEP_ALIVE).await?;
    let hello = stream::once(async {
        Ok::<_, actix_web::Error>(Bytes::from_static(b"retry: 3000\n: connected\n\n"))
    });
    let events = stream::unfold(follow, |mut f| async move {
        let chunk = match f.next().await? {
            Next::Event(e) => frame(&e),
            Next::Idle => Bytes::from_static(b": keep-alive\n\n"),
        };
        Some((Ok::<_, actix_web::Error>(chunk), f))
    });
    use futures_util::StreamExt;
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(hello.chain(events)))
}
