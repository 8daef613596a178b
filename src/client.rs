//! A blocking HTTP client for the Delega API, shared by the `delega`
//! terminal commands, the stdio MCP bridge and the integration tests: the
//! tests drive the server through the same code users run, so the two
//! sides' idea of the wire format cannot drift apart (atuin's idea).
//!
//! Every call goes to the `/api` dialect of the server at
//! [`Client::base`]. Answers are `serde_json::Value`s shaped as SPEC §4–§10
//! describe (a task is the object of §5, lists are JSON arrays); the few
//! answers whose shape the commands depend on have small typed structs
//! ([`Page`], [`SseEvent`], [`Health`]).
//!
//! Errors are a [`ClientError`]: the server could not be reached
//! ([`ClientError::Connection`]), it answered with an error status and
//! its JSON error body ([`ClientError::Api`]), or its answer was not what
//! the API promises ([`ClientError::Decode`]).

use std::io::{BufRead, BufReader, Read};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};

/// Where a server listens when nothing else is said (`delega serve`'s
/// default); `DELEGA_API_URL` overrides it.
pub const DEFAULT_URL: &str = "http://127.0.0.1:18890";

/// How long connecting may take before the server counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest an ordinary request may take, body included. A claim's
/// long poll (`wait_seconds` ≤ 60) fits in it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// Silence on the event stream longer than this means the connection is
/// dead: the server sends a keep-alive comment every 15 s.
const STREAM_READ_TIMEOUT: Duration = Duration::from_secs(45);

/// The credential a request carries (SPEC §3).
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// No credential (open mode, `/health`, the first agent's bootstrap).
    None,
    /// An agent key (`dlg_…`), sent as `X-Agent-Key`.
    AgentKey(String),
    /// The project token (`dlp_…`) or any other secret, sent as
    /// `Authorization: Bearer`.
    Bearer(String),
}

impl Credential {
    /// The right header for a secret: `X-Agent-Key` for agent keys
    /// (`dlg_…`), `Authorization: Bearer` for anything else (the project
    /// token). A blank secret is no credential.
    pub fn from_secret(secret: &str) -> Credential {
        let secret = secret.trim();
        if secret.is_empty() {
            Credential::None
        } else if secret.starts_with("dlg_") {
            Credential::AgentKey(secret.to_string())
        } else {
            Credential::Bearer(secret.to_string())
        }
    }

    /// The header name and value to send, if any.
    pub fn header(&self) -> Option<(&'static str, String)> {
        match self {
            Credential::None => None,
            Credential::AgentKey(k) => Some(("X-Agent-Key", k.clone())),
            Credential::Bearer(t) => Some(("Authorization", format!("Bearer {t}"))),
        }
    }

    /// Whether there is a credential at all.
    pub fn is_some(&self) -> bool {
        !matches!(self, Credential::None)
    }
}

/// Never prints the secret itself.
impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::None => f.write_str("None"),
            Credential::AgentKey(k) => write!(f, "AgentKey({}…)", prefix(k)),
            Credential::Bearer(t) => write!(f, "Bearer({}…)", prefix(t)),
        }
    }
}

fn prefix(secret: &str) -> &str {
    secret.get(..8).unwrap_or("")
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server could not be reached: refused, unknown host, timeout,
    /// connection reset. `url` is what was asked for, `reason` the
    /// transport's explanation.
    #[error("cannot reach the Delega server at {url}: {reason}")]
    Connection { url: String, reason: String },
    /// The server answered with an error status and (normally) the JSON
    /// error body of SPEC §2: `{"error", "code", "status", "detail"}`.
    /// `message` is the body's `error` sentence (or the raw body when it
    /// was not JSON); `body` is the whole body, which may carry more keys
    /// (a conflict's `version`, the dedup check's `matches`).
    #[error("{status} {code}: {message}")]
    Api {
        status: u16,
        code: String,
        message: String,
        detail: Value,
        body: Value,
    },
    /// The server answered, but not with what the API promises (a body
    /// that is not JSON, the wrong shape).
    #[error("unexpected answer from {url}: {reason}")]
    Decode { url: String, reason: String },
}

impl ClientError {
    /// The HTTP status of an API error, if this is one.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    fn decode(url: &str, reason: impl std::fmt::Display) -> ClientError {
        ClientError::Decode {
            url: url.to_string(),
            reason: reason.to_string(),
        }
    }

    /// An error answer: the JSON error body when there is one, else the
    /// body's text as the message.
    fn from_answer(status: u16, text: &str) -> ClientError {
        let body: Value = serde_json::from_str(text).unwrap_or(Value::Null);
        let message = body["error"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| {
                let t = text.trim();
                if t.is_empty() {
                    format!("HTTP {status}")
                } else {
                    t.chars().take(300).collect()
                }
            });
        let code = body["code"]
            .as_str()
            .unwrap_or(default_code(status))
            .to_string();
        ClientError::Api {
            status,
            code,
            message,
            detail: body.get("detail").cloned().unwrap_or(Value::Null),
            body,
        }
    }
}

fn default_code(status: u16) -> &'static str {
    match status {
        400 => "bad_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        409 => "conflict",
        413 => "payload_too_large",
        422 => "validation_error",
        429 => "rate_limited",
        _ => "http_error",
    }
}

/// `Result` with [`ClientError`].
pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// One page of a list: its items and, when the server said more exist
/// (`Link: <…>; rel="next"`), the path of the next page.
#[derive(Debug, Clone)]
pub struct Page {
    pub items: Vec<Value>,
    /// Path and query of the next page (relative to the server), if any.
    pub next: Option<String>,
}

/// The first items of a list ([`Client::list_up_to`]).
#[derive(Debug, Clone)]
pub struct Listing {
    pub items: Vec<Value>,
    /// Whether more items exist past these.
    pub more: bool,
}

/// `GET /health`.
#[derive(Debug, Clone, Deserialize)]
pub struct Health {
    pub ok: bool,
    pub status: String,
    pub version: String,
    pub timestamp: String,
    /// Seconds since the server started (absent on other implementations).
    pub uptime_seconds: Option<u64>,
}

/// One Server-Sent Event: `id:`, `event:` and the `data:` lines joined
/// with newlines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
}

/// Reads Server-Sent Events from a byte stream (the WHATWG rules:
/// comments and unknown fields ignored, `data:` lines joined, an event
/// ends at a blank line). An event with neither data nor id is skipped.
pub struct SseReader<R> {
    reader: R,
    /// The last `retry:` the server asked for, in milliseconds.
    pub retry_ms: Option<u64>,
}

impl<R: BufRead> SseReader<R> {
    pub fn new(reader: R) -> SseReader<R> {
        SseReader {
            reader,
            retry_ms: None,
        }
    }
}

impl<R: BufRead> Iterator for SseReader<R> {
    type Item = std::io::Result<SseEvent>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut event = SseEvent::default();
        let mut has_data = false;
        let mut line = String::new();
        loop {
            line.clear();
            match self.reader.read_line(&mut line) {
                Err(e) => return Some(Err(e)),
                Ok(0) => return None,
                Ok(_) => {}
            }
            let l = line.trim_end_matches(['\n', '\r']);
            if l.is_empty() {
                if has_data || event.id.is_some() {
                    return Some(Ok(event));
                }
                event = SseEvent::default();
                continue;
            }
            if l.starts_with(':') {
                continue;
            }
            let (field, value) = match l.split_once(':') {
                Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
                None => (l, ""),
            };
            match field {
                "data" => {
                    if has_data {
                        event.data.push('\n');
                    }
                    event.data.push_str(value);
                    has_data = true;
                }
                "id" => event.id = Some(value.to_string()),
                "event" => event.event = Some(value.to_string()),
                "retry" => self.retry_ms = value.trim().parse().ok(),
                _ => {}
            }
        }
    }
}

/// What to follow on `GET /events` (SPEC §9): event types (empty: all),
/// one task, and where to start (after event id `since`).
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub types: Vec<String>,
    pub task_id: Option<i64>,
    pub since: Option<i64>,
}

/// A raw HTTP answer, for callers that need its headers or a streamed body
/// (the MCP bridge). Error statuses are answers too, not errors.
pub struct RawResponse {
    response: ureq::Response,
}

impl RawResponse {
    /// The HTTP status.
    pub fn status(&self) -> u16 {
        self.response.status()
    }

    /// A header's value (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.response.header(name)
    }

    /// The media type without parameters, lower-cased
    /// (`application/json`, `text/event-stream`).
    pub fn media_type(&self) -> String {
        self.response
            .header("content-type")
            .unwrap_or_default()
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
    }

    /// The body as a reader (streamed as it arrives).
    pub fn into_reader(self) -> Box<dyn Read + Send + Sync + 'static> {
        self.response.into_reader()
    }

    /// The whole body as text (lossy for invalid UTF-8).
    pub fn into_text(self) -> std::io::Result<String> {
        let mut bytes = Vec::new();
        self.into_reader().read_to_end(&mut bytes)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }
}

/// A blocking client for one server and one credential. Cheap to clone
/// (connections are pooled and shared between clones).
#[derive(Clone)]
pub struct Client {
    base: String,
    credential: Credential,
    agent: ureq::Agent,
    stream_agent: ureq::Agent,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("credential", &self.credential)
            .finish()
    }
}

impl Client {
    /// A client for the server at `base` (`http://127.0.0.1:18890`; a
    /// trailing `/`, `/api` or `/v1` is ignored: the client picks the
    /// dialect).
    pub fn new(base: &str, credential: Credential) -> Client {
        let mut base = base.trim().trim_end_matches('/').to_string();
        for suffix in ["/api", "/v1"] {
            if let Some(stripped) = base.strip_suffix(suffix) {
                base = stripped.to_string();
            }
        }
        let user_agent = concat!("delega-cli/", env!("CARGO_PKG_VERSION"));
        Client {
            base,
            credential,
            agent: ureq::AgentBuilder::new()
                .timeout_connect(CONNECT_TIMEOUT)
                .redirects(0)
                .user_agent(user_agent)
                .build(),
            stream_agent: ureq::AgentBuilder::new()
                .timeout_connect(CONNECT_TIMEOUT)
                .timeout_read(STREAM_READ_TIMEOUT)
                .redirects(0)
                .user_agent(user_agent)
                .build(),
        }
    }

    /// A client with the secret's right credential header
    /// ([`Credential::from_secret`]).
    pub fn with_secret(base: &str, secret: &str) -> Client {
        Client::new(base, Credential::from_secret(secret))
    }

    /// The server's base URL, without a trailing `/`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The credential this client sends.
    pub fn credential(&self) -> &Credential {
        &self.credential
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    fn request(&self, agent: &ureq::Agent, method: &str, url: &str) -> ureq::Request {
        let mut req = agent.request(method, url);
        if let Some((name, value)) = self.credential.header() {
            req = req.set(name, &value);
        }
        req
    }

    /// Sends a request and returns the answer, whatever its status; only
    /// a transport failure is an error ([`ClientError::Connection`]).
    /// `path` is relative to the server (`/mcp`, `/api/tasks`); a body is
    /// sent as `Content-Type: application/json`. No overall timeout: the
    /// caller reads the body as it arrives.
    pub fn send_raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(String, String)],
        body: Option<&[u8]>,
    ) -> Result<RawResponse> {
        let url = self.url(path);
        let mut req = self.request(&self.agent, method, &url);
        if body.is_some() {
            req = req.set("Content-Type", "application/json");
        }
        for (k, v) in headers {
            req = req.set(k, v);
        }
        let sent = match body {
            Some(b) => req.send_bytes(b),
            None => req.call(),
        };
        match sent {
            Ok(response) | Err(ureq::Error::Status(_, response)) => Ok(RawResponse { response }),
            Err(ureq::Error::Transport(t)) => Err(transport(&url, &t)),
        }
    }

    /// Sends a JSON request to the API and returns the decoded answer and
    /// the `Link` rel="next" target. Error statuses become
    /// [`ClientError::Api`].
    fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(Value, Option<String>)> {
        let url = self.url(path);
        let req = self
            .request(&self.agent, method, &url)
            .timeout(REQUEST_TIMEOUT)
            .set("Accept", "application/json");
        let sent = match body {
            Some(b) => {
                let bytes = serde_json::to_vec(b).map_err(|e| {
                    ClientError::decode(&url, format!("cannot encode the body: {e}"))
                })?;
                req.set("Content-Type", "application/json")
                    .send_bytes(&bytes)
            }
            None => req.call(),
        };
        let response = match sent {
            Ok(r) => r,
            Err(ureq::Error::Status(status, r)) => {
                let text = read_text(r).unwrap_or_default();
                return Err(ClientError::from_answer(status, &text));
            }
            Err(ureq::Error::Transport(t)) => return Err(transport(&url, &t)),
        };
        let next = response.header("link").and_then(next_link);
        let text = read_text(response).map_err(|e| ClientError::Connection {
            url: url.clone(),
            reason: format!("the answer was cut off: {e}"),
        })?;
        let value = serde_json::from_str(&text)
            .map_err(|e| ClientError::decode(&url, format!("the body is not JSON ({e})")))?;
        Ok((value, next))
    }

    /// `GET` an API path (`/api/…`), decoded.
    pub fn get(&self, path: &str) -> Result<Value> {
        self.call("GET", path, None).map(|(v, _)| v)
    }

    /// `POST` a JSON body.
    pub fn post(&self, path: &str, body: &Value) -> Result<Value> {
        self.call("POST", path, Some(body)).map(|(v, _)| v)
    }

    /// `PUT` a JSON body.
    pub fn put(&self, path: &str, body: &Value) -> Result<Value> {
        self.call("PUT", path, Some(body)).map(|(v, _)| v)
    }

    /// `PATCH` a JSON body.
    pub fn patch(&self, path: &str, body: &Value) -> Result<Value> {
        self.call("PATCH", path, Some(body)).map(|(v, _)| v)
    }

    /// `DELETE`.
    pub fn delete(&self, path: &str) -> Result<Value> {
        self.call("DELETE", path, None).map(|(v, _)| v)
    }

    /// One page of a list endpoint (a JSON array) and where the next one is.
    pub fn page(&self, path: &str) -> Result<Page> {
        let url = self.url(path);
        let (value, next) = self.call("GET", path, None)?;
        match value {
            Value::Array(items) => Ok(Page { items, next }),
            other => Err(ClientError::decode(
                &url,
                format!("expected a JSON array, got {}", kind_of(&other)),
            )),
        }
    }

    /// Every item of a list, following `Link` rel="next" to the end.
    pub fn list_all(&self, path: &str) -> Result<Vec<Value>> {
        Ok(self.list_up_to(path, usize::MAX)?.items)
    }

    /// The first `max` items of a list, following `Link` rel="next" as
    /// far as needed; `more` says whether the list goes on.
    pub fn list_up_to(&self, path: &str, max: usize) -> Result<Listing> {
        let mut items = Vec::new();
        let mut next = Some(path.to_string());
        while let Some(path) = next {
            let page = self.page(&path)?;
            items.extend(page.items);
            next = page.next;
            if items.len() >= max {
                let more = items.len() > max || next.is_some();
                items.truncate(max);
                return Ok(Listing { items, more });
            }
        }
        Ok(Listing { items, more: false })
    }

    // ------------------------------------------------------------ server

    /// `GET /health` (no credential needed).
    pub fn health(&self) -> Result<Health> {
        let url = self.url("/health");
        let v = self.get("/health")?;
        serde_json::from_value(v).map_err(|e| ClientError::decode(&url, e))
    }

    /// `GET /api/agent/me`: the caller's agent fields at the top level and
    /// under `agent` (null for the project token), `auth`, `account`.
    pub fn me(&self) -> Result<Value> {
        self.get("/api/agent/me")
    }

    /// `GET /api/stats`: counts over what the caller's `GET /tasks` lists.
    pub fn stats(&self) -> Result<Value> {
        self.get("/api/stats")
    }

    /// `GET /api/fleet/attention`: `{count, buckets: {name: [task…]}}`.
    pub fn fleet_attention(&self) -> Result<Value> {
        self.get("/api/fleet/attention")
    }

    // ------------------------------------------------------------- tasks

    /// `GET /api/tasks` with filters (`(name, value)` query pairs, SPEC
    /// §5), one page: the tasks and whether more exist.
    pub fn list_tasks(&self, filters: &[(&str, String)]) -> Result<Page> {
        self.page(&with_query("/api/tasks", filters))
    }

    /// `POST /api/tasks`: creates a task from a body of SPEC §5 (`content`
    /// required); returns it. 422 names the bad field.
    pub fn create_task(&self, body: &Value) -> Result<Value> {
        self.post("/api/tasks", body)
    }

    /// `GET /api/tasks/{id}`, with `comments` and `links`; 404 when the
    /// caller cannot read it.
    pub fn task(&self, id: i64) -> Result<Value> {
        self.get(&format!("/api/tasks/{id}"))
    }

    /// `PUT /api/tasks/{id}` with the fields to change; returns the task.
    pub fn update_task(&self, id: i64, fields: &Value) -> Result<Value> {
        self.put(&format!("/api/tasks/{id}"), fields)
    }

    /// `POST /api/tasks/{id}/complete` (`{metadata?, evidence?}`); returns
    /// the task.
    pub fn complete_task(&self, id: i64, body: &Value) -> Result<Value> {
        self.post(&format!("/api/tasks/{id}/complete"), body)
    }

    /// `POST /api/tasks/{id}/fail` (`{reason?, metadata?}`); returns the
    /// task.
    pub fn fail_task(&self, id: i64, body: &Value) -> Result<Value> {
        self.post(&format!("/api/tasks/{id}/fail"), body)
    }

    /// `DELETE /api/tasks/{id}`.
    pub fn delete_task(&self, id: i64) -> Result<Value> {
        self.delete(&format!("/api/tasks/{id}"))
    }

    /// `POST /api/tasks/{id}/delegate`: without `content` hands the task
    /// to `agent_id` (the task); with it creates a child (the child).
    pub fn delegate_task(&self, id: i64, body: &Value) -> Result<Value> {
        self.post(&format!("/api/tasks/{id}/delegate"), body)
    }

    /// `GET /api/tasks/{id}/chain`: `{task_id, root_id, root, depth,
    /// completed_count, total_count, tasks: [task…], events: [hop…],
    /// chain}`; a hop is `{id, task_id, kind, from, to, from_agent_id,
    /// to_agent_id, actor, at, note}`.
    pub fn chain(&self, id: i64) -> Result<Value> {
        self.get(&format!("/api/tasks/{id}/chain"))
    }

    /// `GET /api/tasks/{id}/context`: `{context, version}` (+ `provenance`
    /// per key when asked).
    pub fn context(&self, id: i64, provenance: bool) -> Result<Value> {
        let q = if provenance {
            "?include=provenance"
        } else {
            ""
        };
        self.get(&format!("/api/tasks/{id}/context{q}"))
    }

    /// `PATCH /api/tasks/{id}/context`: merges `patch` (RFC 7396); with
    /// `expected_version` a concurrent write is a 409. Returns the task.
    pub fn patch_context(
        &self,
        id: i64,
        patch: &Value,
        expected_version: Option<i64>,
    ) -> Result<Value> {
        let q = expected_version
            .map(|v| format!("?expected_version={v}"))
            .unwrap_or_default();
        self.patch(&format!("/api/tasks/{id}/context{q}"), patch)
    }

    /// `POST /api/tasks/{id}/claim` or, without an id, `POST
    /// /api/tasks/claim` (the next claimable task): `{"task": task|null}`.
    /// 409 when the task is not claimable.
    pub fn claim(&self, id: Option<i64>, body: &Value) -> Result<Value> {
        match id {
            Some(id) => self.post(&format!("/api/tasks/{id}/claim"), body),
            None => self.post("/api/tasks/claim", body),
        }
    }

    /// `POST /api/tasks/{id}/release` (`{handoff?}`): the task, open again.
    pub fn release(&self, id: i64, body: &Value) -> Result<Value> {
        self.post(&format!("/api/tasks/{id}/release"), body)
    }

    /// `POST /api/tasks/{id}/comments {content, author?}`: the comment.
    pub fn comment(&self, id: i64, content: &str, author: Option<&str>) -> Result<Value> {
        let mut body = json!({ "content": content });
        if let Some(a) = author {
            body["author"] = json!(a);
        }
        self.post(&format!("/api/tasks/{id}/comments"), &body)
    }

    // ------------------------------------------------------------ agents

    /// `GET /api/agents` (admins, coordinators): every agent, following
    /// pages.
    pub fn agents(&self) -> Result<Vec<Value>> {
        self.list_all("/api/agents")
    }

    /// `POST /api/agents`: the agent with its `api_key` (shown only here).
    pub fn create_agent(&self, body: &Value) -> Result<Value> {
        self.post("/api/agents", body)
    }

    /// `POST /api/agents/{id or name}/rotate-key`: the agent with its new
    /// `api_key`.
    pub fn rotate_key(&self, agent: &str) -> Result<Value> {
        self.post(
            &format!("/api/agents/{}/rotate-key", segment(agent)),
            &json!({}),
        )
    }

    /// `DELETE /api/agents/{id or name}`: `{deleted, id}`; 409 while the
    /// agent has open tasks or claims.
    pub fn delete_agent(&self, agent: &str) -> Result<Value> {
        self.delete(&format!("/api/agents/{}", segment(agent)))
    }

    // ---------------------------------------------------------- webhooks

    /// `GET /api/webhooks`: every hook the caller may see.
    pub fn webhooks(&self) -> Result<Vec<Value>> {
        self.list_all("/api/webhooks")
    }

    /// `POST /api/webhooks {url, events?, secret?, …}`: the hook, with its
    /// `secret` (shown only here).
    pub fn create_webhook(&self, body: &Value) -> Result<Value> {
        self.post("/api/webhooks", body)
    }

    /// `DELETE /api/webhooks/{id}`.
    pub fn delete_webhook(&self, id: i64) -> Result<Value> {
        self.delete(&format!("/api/webhooks/{id}"))
    }

    /// `GET /api/webhooks/{id}/deliveries`: the delivery log, newest
    /// first, at most `limit`.
    pub fn deliveries(&self, id: i64, limit: Option<usize>) -> Result<Vec<Value>> {
        let filters: Vec<(&str, String)> = limit
            .map(|l| ("limit", l.to_string()))
            .into_iter()
            .collect();
        Ok(self
            .page(&with_query(
                &format!("/api/webhooks/{id}/deliveries"),
                &filters,
            ))?
            .items)
    }

    // ------------------------------------------------------- recurrences

    /// `GET /api/recurrences`.
    pub fn recurrences(&self) -> Result<Vec<Value>> {
        self.list_all("/api/recurrences")
    }

    /// `POST /api/recurrences`: the recurrence (with `next_due_at`).
    pub fn create_recurrence(&self, body: &Value) -> Result<Value> {
        self.post("/api/recurrences", body)
    }

    /// `DELETE /api/recurrences/{id}`.
    pub fn delete_recurrence(&self, id: i64) -> Result<Value> {
        self.delete(&format!("/api/recurrences/{id}"))
    }

    // ------------------------------------------------------------ events

    /// Opens `GET /api/events` as a Server-Sent Events stream, resuming
    /// after `last_event_id` (sent as `Last-Event-ID`). A silent
    /// connection (no keep-alive for 45 s) ends with a read error.
    pub fn open_events(
        &self,
        query: &EventQuery,
        last_event_id: Option<&str>,
    ) -> Result<SseReader<BufReader<Box<dyn Read + Send + Sync>>>> {
        let mut filters = Vec::new();
        if !query.types.is_empty() {
            filters.push(("types", query.types.join(",")));
        }
        if let Some(t) = query.task_id {
            filters.push(("task_id", t.to_string()));
        }
        if let Some(s) = query.since {
            filters.push(("since", s.to_string()));
        }
        let url = self.url(&with_query("/api/events", &filters));
        let mut req = self
            .request(&self.stream_agent, "GET", &url)
            .set("Accept", "text/event-stream");
        if let Some(id) = last_event_id {
            req = req.set("Last-Event-ID", id);
        }
        let response = match req.call() {
            Ok(r) => r,
            Err(ureq::Error::Status(status, r)) => {
                let text = read_text(r).unwrap_or_default();
                return Err(ClientError::from_answer(status, &text));
            }
            Err(ureq::Error::Transport(t)) => return Err(transport(&url, &t)),
        };
        let media = response.content_type().to_ascii_lowercase();
        if media != "text/event-stream" {
            return Err(ClientError::decode(
                &url,
                format!("expected text/event-stream, got {media}"),
            ));
        }
        Ok(SseReader::new(BufReader::new(response.into_reader())))
    }

    /// Follows the event stream for as long as the caller iterates:
    /// reconnects after a lost connection with `Last-Event-ID` (so no
    /// event is seen twice or missed), waiting as the server's `retry:`
    /// asks (3 s by default, up to 30 s while it stays away).
    pub fn follow_events(&self, query: EventQuery) -> Follow {
        Follow {
            client: self.clone(),
            query,
            last_id: None,
            stream: None,
            failures: 0,
            retry_ms: 3000,
        }
    }
}

/// What [`Follow`] yields.
#[derive(Debug)]
pub enum FollowItem {
    /// The stream is open (the first time, and after each reconnect).
    Connected,
    /// An event: `id` is the event id, `event` its type, `data` the JSON
    /// payload (SPEC §9).
    Event(SseEvent),
    /// The connection was lost or could not be made; the next item comes
    /// after a reconnect. `retry_in` is how long it waits first.
    Disconnected {
        error: ClientError,
        retry_in: Duration,
    },
}

/// A live follow of `GET /api/events` ([`Client::follow_events`]). The
/// iterator ends only with an error that retrying cannot fix (an API
/// error such as 401), yielded as `Err`.
pub struct Follow {
    client: Client,
    query: EventQuery,
    last_id: Option<String>,
    stream: Option<SseReader<BufReader<Box<dyn Read + Send + Sync>>>>,
    failures: u32,
    retry_ms: u64,
}

impl Follow {
    /// The id of the last event seen (where a reconnect resumes).
    pub fn last_event_id(&self) -> Option<&str> {
        self.last_id.as_deref()
    }

    fn backoff(&mut self) -> Duration {
        self.failures += 1;
        let factor = 1u64 << self.failures.saturating_sub(1).min(4);
        Duration::from_millis((self.retry_ms * factor).min(30_000))
    }
}

impl Iterator for Follow {
    type Item = Result<FollowItem>;

    fn next(&mut self) -> Option<Self::Item> {
        let Some(stream) = &mut self.stream else {
            return match self
                .client
                .open_events(&self.query, self.last_id.as_deref())
            {
                Ok(stream) => {
                    self.stream = Some(stream);
                    self.failures = 0;
                    Some(Ok(FollowItem::Connected))
                }
                Err(error @ ClientError::Connection { .. }) => {
                    let retry_in = self.backoff();
                    Some(Ok(FollowItem::Disconnected { error, retry_in }))
                }
                Err(e) => Some(Err(e)),
            };
        };
        let item = stream.next();
        if let Some(ms) = stream.retry_ms {
            self.retry_ms = ms.clamp(100, 30_000);
        }
        match item {
            Some(Ok(event)) => {
                if let Some(id) = &event.id {
                    self.last_id = Some(id.clone());
                }
                Some(Ok(FollowItem::Event(event)))
            }
            Some(Err(e)) => {
                self.stream = None;
                let retry_in = self.backoff();
                Some(Ok(FollowItem::Disconnected {
                    error: ClientError::Connection {
                        url: self.client.url("/api/events"),
                        reason: format!("the stream broke: {e}"),
                    },
                    retry_in,
                }))
            }
            None => {
                self.stream = None;
                let retry_in = self.backoff();
                Some(Ok(FollowItem::Disconnected {
                    error: ClientError::Connection {
                        url: self.client.url("/api/events"),
                        reason: "the server closed the stream".into(),
                    },
                    retry_in,
                }))
            }
        }
    }
}

// ------------------------------------------------------------- helpers

fn read_text(response: ureq::Response) -> std::io::Result<String> {
    let mut bytes = Vec::new();
    response.into_reader().read_to_end(&mut bytes)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn transport(url: &str, t: &ureq::Transport) -> ClientError {
    use ureq::ErrorKind;
    let reason = match t.kind() {
        ErrorKind::ConnectionFailed => {
            let refused = t
                .to_string()
                .to_ascii_lowercase()
                .contains("connection refused");
            if refused {
                "connection refused".to_string()
            } else {
                format!("connection failed ({})", inner_message(t))
            }
        }
        ErrorKind::Dns => format!("unknown host ({})", inner_message(t)),
        ErrorKind::InvalidUrl | ErrorKind::UnknownScheme => {
            format!("invalid URL ({})", inner_message(t))
        }
        _ => inner_message(t),
    };
    ClientError::Connection {
        url: url.to_string(),
        reason,
    }
}

fn inner_message(t: &ureq::Transport) -> String {
    t.message()
        .map(str::to_string)
        .or_else(|| std::error::Error::source(t).map(|s| s.to_string()))
        .unwrap_or_else(|| t.kind().to_string())
}

/// The target of `Link: <…>; rel="next"`.
fn next_link(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        params
            .split(';')
            .any(|p| p.trim().trim_start_matches("rel=").trim_matches('"') == "next")
            .then(|| {
                target
                    .trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_string()
            })
    })
}

/// `path?k=v&…`, values form-encoded.
pub fn with_query(path: &str, pairs: &[(&str, String)]) -> String {
    if pairs.is_empty() {
        return path.to_string();
    }
    let mut ser = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        ser.append_pair(k, v);
    }
    format!("{path}?{}", ser.finish())
}

/// A value percent-encoded for use as one path segment.
pub fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_reader_joins_data_lines_and_skips_comments() {
        let text = "retry: 3000\n: connected\n\nid: 7\nevent: task.created\ndata: {\"a\":\ndata: 1}\n\n: keep-alive\n\nid: 8\ndata:x\r\n\r\n";
        let mut r = SseReader::new(std::io::Cursor::new(text));
        let first = r.next().unwrap().unwrap();
        assert_eq!(first.id.as_deref(), Some("7"));
        assert_eq!(first.event.as_deref(), Some("task.created"));
        assert_eq!(first.data, "{\"a\":\n1}");
        let second = r.next().unwrap().unwrap();
        assert_eq!(second.data, "x");
        assert!(r.next().is_none());
        assert_eq!(r.retry_ms, Some(3000));
    }

    #[test]
    fn next_link_reads_the_rel_next_target() {
        assert_eq!(
            next_link("</api/tasks?cursor=abc>; rel=\"next\"").as_deref(),
            Some("/api/tasks?cursor=abc")
        );
        assert_eq!(next_link("</a>; rel=\"prev\""), None);
    }

    #[test]
    fn secrets_choose_their_header() {
        assert_eq!(
            Credential::from_secret("dlg_abc").header().unwrap().0,
            "X-Agent-Key"
        );
        assert_eq!(
            Credential::from_secret("dlp_abc").header().unwrap().1,
            "Bearer dlp_abc"
        );
        assert_eq!(Credential::from_secret("  "), Credential::None);
    }

    #[test]
    fn segments_are_percent_encoded() {
        assert_eq!(segment("research-agent"), "research-agent");
        assert_eq!(segment("a b/c"), "a%20b%2Fc");
    }
}
