//! The HTTP API: extract → operation → respond. Every route is listed in
//! [`endpoints`]; the app mounts them twice, under `/api` (the SDK's
//! dialect) and under `/v1` (the tutorial's). The one difference is read
//! from [`Dialect`]. Handlers only parse the request and shape the answer:
//! every operation, its permission check and its events are in
//! [`crate::ops`].

pub mod agents;
pub mod auth;
pub mod claims;
pub mod context;
pub mod csrf;
pub mod delegation;
pub mod error;
pub mod events;
pub mod fleet;
pub mod health;
pub mod mcp;
pub mod metrics;
pub mod misc;
pub mod openapi;
pub mod projects;
pub mod recurrences;
pub mod tasks;
pub mod webhooks;
pub mod wire;

use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use actix_web::dev::Payload;
use actix_web::http::{header, Method};
use actix_web::{web, FromRequest, HttpRequest, HttpResponse, Route};
use futures_util::StreamExt;
use serde::Serialize;
use serde_json::Value;

use crate::domain::input::{Page, Query};
use crate::error::{Error, Result};
use crate::ops::tasks::PageBody;
use crate::ops::Context;

/// SPEC §2's order of checks for a body about task `id`: permission
/// (404, 403) before validation (422). When the body failed, the caller
/// hears first what it would have heard with a valid one (see
/// [`crate::ops::ensure_permitted`]); only a caller allowed `before` is
/// told what is wrong with its body.
pub(crate) async fn about_task<T>(
    state: &State,
    caller: &crate::domain::access::Caller,
    id: i64,
    before: crate::ops::Before,
    parsed: Result<T>,
) -> Result<T> {
    about_fenced_task(state, caller, id, before, None, parsed).await
}

/// [`about_task`] for a write that names a claim generation (in its body
/// or query, read before the body is validated): a stale one is told
/// first, as the operation would with a valid body (`ops::fenced`).
pub(crate) async fn about_fenced_task<T>(
    state: &State,
    caller: &crate::domain::access::Caller,
    id: i64,
    before: crate::ops::Before,
    claim_generation: Option<i64>,
    parsed: Result<T>,
) -> Result<T> {
    if parsed.is_err() {
        crate::ops::ensure_permitted(&state.ops, caller, id, before, claim_generation).await?;
    }
    parsed
}

/// The `claim_generation` a body names, if it is an integer (for
/// [`about_fenced_task`], before the body is validated).
pub(crate) fn claim_generation_in(body: &Value) -> Option<i64> {
    body.get("claim_generation").and_then(Value::as_i64)
}

/// Shared by every handler.
pub struct AppState {
    pub ops: Context,
    /// The MCP server (`/mcp`), on the same operations.
    pub mcp: crate::mcp::Server,
    pub started: Instant,
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

/// Whether a `Content-Type` is JSON: `application/json` or any
/// `application/…+json`, parameters (charset) allowed.
fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || essence
            .strip_prefix("application/")
            .is_some_and(|sub| sub.ends_with("+json"))
}

/// A request body's bytes, read under the configured size limit (checked
/// on `Content-Length` and again while reading); a non-empty body must
/// say it is JSON (SPEC §2: a browser sends a text/plain or form body
/// cross-site without a preflight). Errors: 413 too large, 415 not JSON,
/// 400 unreadable.
pub struct RawBody(pub web::Bytes);

impl FromRequest for RawBody {
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<RawBody, Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = req
            .app_data::<State>()
            .map_or(64 * 1024, |s| s.ops.config.max_body_bytes);
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap_or("(not text)").to_string());
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
            if !body.is_empty() {
                match &content_type {
                    Some(ct) if is_json(ct) => {}
                    Some(ct) => {
                        return Err(Error::UnsupportedMediaType(format!(
                        "request bodies must be JSON (Content-Type: application/json), not {ct:?}"
                    )))
                    }
                    None => {
                        return Err(Error::UnsupportedMediaType(
                            "request bodies must be JSON: send Content-Type: application/json"
                                .into(),
                        ))
                    }
                }
            }
            Ok(RawBody(body.freeze()))
        })
    }
}

/// A request body as read, its errors kept for later: a handler that
/// must authenticate before it looks at the body (SPEC §2's order of
/// checks) takes this and calls [`Body::json`] afterwards.
pub struct Body(Result<Value>);

impl Body {
    /// The JSON value, or the error reading it met (400 malformed, 413
    /// too large, 415 not JSON).
    pub fn json(self) -> Result<Value> {
        self.0
    }
}

impl FromRequest for Body {
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<Body, Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let raw = RawBody::from_request(req, payload);
        Box::pin(async move {
            let parsed = raw.await.and_then(|RawBody(body)| {
                if body.iter().all(u8::is_ascii_whitespace) {
                    return Ok(Value::Object(Default::default()));
                }
                let value: Value = serde_json::from_slice(&body)
                    .map_err(|e| Error::bad_request(format!("malformed JSON: {e}")))?;
                if depth(&value) > MAX_DEPTH {
                    return Err(Error::bad_request(format!(
                        "JSON nested deeper than {MAX_DEPTH} levels"
                    )));
                }
                Ok(value)
            });
            Ok(Body(parsed))
        })
    }
}

/// A JSON request body, read under the configured size limit (checked on
/// `Content-Length` and again while reading); the request must say it is
/// JSON (415 otherwise). An empty body reads as `{}`.
pub struct Json(pub Value);

impl FromRequest for Json {
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<Json, Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = Body::from_request(req, payload);
        Box::pin(async move { body.await?.json().map(Json) })
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

/// The answer of every DELETE: `{"deleted": true, "id": …}`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Deleted {
    /// Always true.
    pub deleted: bool,
    /// The id of what was deleted.
    pub id: i64,
}

/// `200 {"deleted": true, "id": id}`.
pub fn deleted(id: i64) -> Result<HttpResponse> {
    ok(&Deleted { deleted: true, id })
}

/// A body that is already JSON text.
pub fn ok_json(body: impl actix_web::body::MessageBody + 'static) -> Result<HttpResponse> {
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(body))
}

/// Answers one page, with `Link: <…>; rel="next"` when more rows exist:
/// after the page's cursor where the list gives one (keyset pagination),
/// else at the next offset.
pub fn respond_page(
    req: &HttpRequest,
    q: &Query,
    page: Page,
    body: PageBody,
) -> Result<HttpResponse> {
    let mut resp = HttpResponse::Ok();
    if body.more {
        let next = match &body.cursor {
            Some(cursor) => q.with("cursor", cursor, &["offset", "cursor"]),
            None => q.with(
                "offset",
                &(page.offset + page.limit).to_string(),
                &["offset"],
            ),
        };
        resp.insert_header((
            header::LINK,
            format!("<{}?{next}>; rel=\"next\"", req.path()),
        ));
    }
    Ok(resp.content_type("application/json").body(body.json))
}

/// A page of serializable items (one more than the page, if there are).
pub fn page_response<T: Serialize>(
    req: &HttpRequest,
    q: &Query,
    page: Page,
    items: Vec<T>,
) -> Result<HttpResponse> {
    respond_page(req, q, page, PageBody::new(page, items)?)
}

/// One route of the API, relative to the dialect prefix.
pub struct Endpoint {
    pub method: Method,
    pub path: &'static str,
    route: fn() -> Route,
}

impl Endpoint {
    /// Whether it changes state (what the event log must record).
    pub fn is_mutating(&self) -> bool {
        ![Method::GET, Method::HEAD, Method::OPTIONS].contains(&self.method)
    }
}

macro_rules! endpoints {
    ($($method:ident $path:literal => $handler:path;)*) => {
        vec![$(Endpoint {
            method: Method::$method,
            path: $path,
            route: || web::route().method(Method::$method).to($handler),
        },)*]
    };
}

/// Every route, in matching order (fixed paths before `{id}` ones).
pub fn endpoints() -> Vec<Endpoint> {
    endpoints! {
        GET "/health" => health::get;
        GET "/openapi.json" => openapi::get;
        GET "/agents" => agents::list;
        POST "/agents" => agents::create;
        GET "/agents/{id}" => agents::get;
        PUT "/agents/{id}" => agents::update;
        PATCH "/agents/{id}" => agents::update;
        DELETE "/agents/{id}" => agents::delete;
        POST "/agents/{id}/rotate-key" => agents::rotate_key;
        GET "/agent/me" => agents::me;
        POST "/tasks/claim" => claims::claim_next;
        POST "/tasks/dedup" => tasks::dedup;
        GET "/tasks" => tasks::list;
        POST "/tasks" => tasks::create;
        GET "/tasks/{id}" => tasks::get;
        PUT "/tasks/{id}" => tasks::update;
        PATCH "/tasks/{id}" => tasks::update;
        DELETE "/tasks/{id}" => tasks::delete;
        POST "/tasks/{id}/complete" => tasks::complete;
        POST "/tasks/{id}/uncomplete" => tasks::uncomplete;
        POST "/tasks/{id}/fail" => tasks::fail;
        GET "/tasks/{id}/comments" => tasks::list_comments;
        POST "/tasks/{id}/comments" => tasks::add_comment;
        DELETE "/tasks/{id}/comments/{cid}" => tasks::delete_comment;
        GET "/tasks/{id}/subtasks" => tasks::list_subtasks;
        POST "/tasks/{id}/subtasks" => tasks::add_subtask;
        PUT "/tasks/{id}/subtasks/{sid}" => tasks::update_subtask;
        PATCH "/tasks/{id}/subtasks/{sid}" => tasks::update_subtask;
        DELETE "/tasks/{id}/subtasks/{sid}" => tasks::delete_subtask;
        POST "/tasks/{id}/subtasks/{sid}/toggle" => tasks::toggle_subtask;
        GET "/tasks/{id}/links" => tasks::list_links;
        POST "/tasks/{id}/links" => tasks::add_link;
        DELETE "/tasks/{id}/links/{lid}" => tasks::delete_link;
        POST "/tasks/{id}/dependencies" => tasks::add_dependencies;
        DELETE "/tasks/{id}/dependencies/{dep}" => tasks::remove_dependency;
        GET "/tasks/{id}/inputs" => tasks::inputs;
        POST "/tasks/{id}/claim" => claims::claim;
        POST "/tasks/{id}/heartbeat" => claims::heartbeat;
        POST "/tasks/{id}/state" => claims::set_state;
        POST "/tasks/{id}/release" => claims::release;
        POST "/tasks/{id}/delegate" => delegation::delegate;
        GET "/tasks/{id}/chain" => delegation::chain;
        GET "/tasks/{id}/children" => delegation::children;
        GET "/tasks/{id}/context" => context::get;
        PATCH "/tasks/{id}/context" => context::patch;
        GET "/tasks/{id}/context/history" => context::history;
        POST "/tasks/{id}/context/supersede" => context::supersede;
        GET "/context/search" => context::search;
        GET "/projects" => projects::list;
        POST "/projects" => projects::create;
        GET "/projects/{id}" => projects::get;
        PUT "/projects/{id}" => projects::update;
        PATCH "/projects/{id}" => projects::update;
        DELETE "/projects/{id}" => projects::delete;
        GET "/recurrences" => recurrences::list;
        POST "/recurrences" => recurrences::create;
        GET "/recurrences/{id}" => recurrences::get;
        PUT "/recurrences/{id}" => recurrences::update;
        PATCH "/recurrences/{id}" => recurrences::update;
        DELETE "/recurrences/{id}" => recurrences::delete;
        GET "/fleet/attention" => fleet::attention;
        GET "/stats" => misc::stats;
        GET "/usage" => misc::usage;
        GET "/webhooks" => webhooks::list;
        POST "/webhooks" => webhooks::create;
        GET "/webhooks/{id}" => webhooks::get;
        PUT "/webhooks/{id}" => webhooks::update;
        PATCH "/webhooks/{id}" => webhooks::update;
        DELETE "/webhooks/{id}" => webhooks::delete;
        GET "/webhooks/{id}/deliveries" => webhooks::deliveries;
        POST "/webhooks/{id}/deliveries/{did}/redeliver" => webhooks::redeliver;
        POST "/webhooks/{id}/test" => webhooks::test;
        POST "/webhooks/{id}/recover" => webhooks::recover;
        GET "/events" => events::index;
        // GET (a server stream) and DELETE (a session) are not offered:
        // 405, like every method a path does not answer.
        POST "/mcp" => mcp::post;
    }
}

/// Registers [`endpoints`] (relative to the dialect prefix): one resource
/// per path, with every method it answers.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let mut paths: Vec<(&'static str, Vec<Route>)> = Vec::new();
    for e in endpoints() {
        match paths.iter_mut().find(|(p, _)| *p == e.path) {
            Some((_, routes)) => routes.push((e.route)()),
            None => paths.push((e.path, vec![(e.route)()])),
        }
    }
    for (path, routes) in paths {
        let mut resource = web::resource(path);
        for route in routes {
            resource = resource.route(route);
        }
        cfg.service(resource);
    }
}
