//! The HTTP API. Every resource registers its routes through [`configure`],
//! which the app mounts twice: under `/api` (the SDK's dialect) and under
//! `/v1` (the tutorial's). The one difference is read from [`Dialect`].

pub mod agents;
pub mod auth;
pub mod claims;
pub mod context;
pub mod delegation;
pub mod error;
pub mod events;
pub mod health;
pub mod misc;
pub mod projects;
pub mod tasks;
pub mod webhooks;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use serde::Serialize;
use serde_json::Value;

use crate::config::Config;
use crate::domain::input::{Page, Query};
use crate::error::{Error, Result};
use crate::store::cache::Rendered;
use crate::store::tasks::Limits;
use crate::store::Store;
use auth::Authenticator;

/// Shared by every handler.
pub struct AppState {
    pub store: Store,
    pub config: Arc<Config>,
    pub auth: Authenticator,
    pub started: Instant,
}

impl AppState {
    /// After any change to an agent: cached identities are dropped and open
    /// event streams end (clients reconnect under their current rights).
    pub fn agents_changed(&self) {
        self.auth.invalidate();
        self.store.hub().identities_changed();
    }

    pub fn limits(&self) -> Limits {
        Limits {
            max_context_bytes: self.config.max_context_bytes,
        }
    }
}

pub type State = web::Data<AppState>;

/// Which prefix a request came in under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `/api`: the Python SDK and the ecosystem's clients.
    Api,
    /// `/v1`: the tutorial's raw HTTP calls.
    V1,
}

impl Dialect {
    pub fn of(req: &HttpRequest) -> Dialect {
        req.app_data::<Dialect>().copied().unwrap_or(Dialect::Api)
    }
}

/// JSON nested deeper than this is refused.
const MAX_DEPTH: usize = 64;

fn depth(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        Value::Object(o) => 1 + o.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// A JSON request body, read under the configured size limit (checked on
/// `Content-Length` and again while reading). An empty body reads as `{}`.
pub struct Json(pub Value);

impl FromRequest for Json {
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<Json, Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = req
            .app_data::<State>()
            .map_or(64 * 1024, |s| s.config.max_body_bytes);
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let mut payload = payload.take();
        Box::pin(async move {
            let too_large =
                || Error::TooLarge(format!("request body exceeds the limit of {limit} bytes"));
            if declared.is_some_and(|n| n > limit) {
                return Err(too_large());
            }
            let mut body = web::BytesMut::new();
            while let Some(chunk) = payload.next().await {
                let chunk =
                    chunk.map_err(|e| Error::bad_request(format!("cannot read body: {e}")))?;
                if body.len() + chunk.len() > limit {
                    return Err(too_large());
                }
                body.extend_from_slice(&chunk);
            }
            if body.iter().all(u8::is_ascii_whitespace) {
                return Ok(Json(Value::Object(Default::default())));
            }
            let value: Value = serde_json::from_slice(&body)
                .map_err(|e| Error::bad_request(format!("malformed JSON: {e}")))?;
            if depth(&value) > MAX_DEPTH {
                return Err(Error::bad_request(format!(
                    "JSON nested deeper than {MAX_DEPTH} levels"
                )));
            }
            Ok(Json(value))
        })
    }
}

pub fn query(req: &HttpRequest) -> Query {
    Query::parse(req.query_string())
}

/// A numeric id from the path; anything else names no resource (404).
pub fn path_id(what: &str, raw: &str) -> Result<i64> {
    raw.parse()
        .map_err(|_| Error::not_found(format!("{what} {raw:?} not found: ids are integers")))
}

pub fn ok<T: Serialize>(value: &T) -> Result<HttpResponse> {
    Ok(HttpResponse::Ok().json(value))
}

pub fn created<T: Serialize>(value: &T) -> Result<HttpResponse> {
    Ok(HttpResponse::Created().json(value))
}

/// One page of a list, serialized. `items` may hold one row more than the
/// page (fetched to learn whether a next page exists): it is dropped.
/// Large lists build this inside their read, off the async workers.
pub struct PageBody {
    json: Vec<u8>,
    more: bool,
}

impl PageBody {
    pub fn new<T: Serialize>(page: Page, mut items: Vec<T>) -> Result<PageBody> {
        let more = items.len() as i64 > page.limit;
        items.truncate(page.limit as usize);
        Ok(PageBody {
            json: serde_json::to_vec(&items)?,
            more,
        })
    }

    /// A page of ready renderings (tasks), joined into a buffer of the
    /// exact size: a list of 1,000 tasks is a megabyte, and growing a
    /// buffer to that size copies it twice over and faults in fresh pages.
    pub fn rendered(page: Page, mut items: Vec<Rendered>) -> PageBody {
        let more = items.len() as i64 > page.limit;
        items.truncate(page.limit as usize);
        let size = items.iter().map(|r| r.json().len() + 1).sum::<usize>() + 2;
        let mut json = Vec::with_capacity(size);
        json.push(b'[');
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                json.push(b',');
            }
            json.extend_from_slice(item.json().as_bytes());
        }
        json.push(b']');
        PageBody { json, more }
    }
}

/// Answers one page, with `Link: <…>; rel="next"` when more rows exist.
pub fn respond_page(
    req: &HttpRequest,
    q: &Query,
    page: Page,
    body: PageBody,
) -> Result<HttpResponse> {
    let mut resp = HttpResponse::Ok();
    if body.more {
        let next = format!(
            "<{}?{}>; rel=\"next\"",
            req.path(),
            q.with_offset(page.offset + page.limit)
        );
        resp.insert_header((header::LINK, next));
    }
    Ok(resp.content_type("application/json").body(body.json))
}

pub fn page_response<T: Serialize>(
    req: &HttpRequest,
    q: &Query,
    page: Page,
    items: Vec<T>,
) -> Result<HttpResponse> {
    respond_page(req, q, page, PageBody::new(page, items)?)
}

/// Every route, relative to the dialect prefix.
pub fn configure(cfg: &mut web::ServiceConfig) {
    health::configure(cfg);
    agents::configure(cfg);
    claims::configure_queue(cfg);
    tasks::configure(cfg);
    claims::configure(cfg);
    delegation::configure(cfg);
    context::configure(cfg);
    projects::configure(cfg);
    misc::configure(cfg);
    webhooks::configure(cfg);
    events::configure(cfg);
}
