//! `delega mcp`: the stdio form of the server's MCP endpoint (SPEC §11)
//! for coding assistants that start their MCP servers as processes.
//!
//! It implements no tool. Each newline-delimited JSON-RPC message read
//! from stdin is POSTed to `$DELEGA_API_URL/mcp` with the credential
//! header, and whatever the server answers is written to stdout, one
//! JSON message per line:
//!
//! - HTTP 202 (a notification or response was accepted): nothing;
//! - `application/json`: the body;
//! - `text/event-stream`: the `data` of each event (notifications, then
//!   the response);
//! - an HTTP error whose body is a JSON-RPC message: that message;
//! - anything else (connection refused, a 401 with the API's error body,
//!   a body that is not JSON): a JSON-RPC error response (`-32603`, with
//!   a sentence naming the status and the server's message) for a
//!   request, nothing for a notification; the cause goes to stderr.
//!
//! Headers: `Accept: application/json, text/event-stream`; for messages
//! of the 2026-07-28 protocol (their `_meta` names the version) the
//! `MCP-Protocol-Version`, `Mcp-Method` and `Mcp-Name` headers the server
//! checks against the body; for the older, session-based versions the
//! version negotiated by `initialize` and the `Mcp-Session-Id` the server
//! gave.
//!
//! Requests run on their own threads, so a long `tools/call`
//! (`wait_for_task`) never holds up a `ping`. `initialize` is forwarded
//! before anything after it is read (later messages need what it
//! negotiated); notifications and responses are forwarded in order. On
//! end of input it waits for the requests in flight, then exits 0.

use std::io::{BufRead, BufReader, Read, Write};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use base64::Engine;
use serde_json::{json, Value};

use crate::client::{Client, ClientError, RawResponse, SseReader};

/// The `_meta` key naming a 2026-07-28 message's protocol version.
const META_VERSION: &str = "io.modelcontextprotocol/protocolVersion";

/// JSON-RPC "internal error": what the bridge answers when it cannot get
/// an answer from the server.
const INTERNAL_ERROR: i64 = -32603;

/// What the bridge learnt from the server that later messages repeat.
#[derive(Default)]
struct Session {
    /// The `protocolVersion` of the last `initialize` result.
    protocol_version: Option<String>,
    /// The `Mcp-Session-Id` the server gave, if any.
    session_id: Option<String>,
}

/// Writes whole lines to stdout, one writer at a time, flushing each.
#[derive(Clone)]
struct Lines(Arc<Mutex<Box<dyn Write + Send>>>);

impl Lines {
    fn write(&self, line: &str) {
        let mut out = match self.0.lock() {
            Ok(out) => out,
            Err(poisoned) => poisoned.into_inner(),
        };
        let written = out
            .write_all(line.as_bytes())
            .and_then(|_| out.write_all(b"\n"))
            .and_then(|_| out.flush());
        if let Err(e) = written {
            log(&format!("cannot write to stdout: {e}"));
        }
    }
}

fn log(msg: &str) {
    eprintln!("delega mcp: {msg}");
}

/// Runs the bridge on this process's stdin and stdout until stdin ends.
pub fn run(client: Client) -> anyhow::Result<()> {
    let stdin = std::io::stdin();
    let stdout: Box<dyn Write + Send> = Box::new(std::io::stdout());
    serve(client, stdin.lock(), stdout);
    Ok(())
}

/// The bridge over any input and output (what [`run`] does with stdin
/// and stdout).
pub fn serve(client: Client, input: impl BufRead, output: Box<dyn Write + Send>) {
    let bridge = Bridge {
        client,
        session: Arc::new(Mutex::new(Session::default())),
        out: Lines(Arc::new(Mutex::new(output))),
    };
    let mut in_flight: Vec<JoinHandle<()>> = Vec::new();
    for line in input.lines() {
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                log(&format!("cannot read stdin: {e}"));
                break;
            }
        };
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        in_flight.retain(|h| !h.is_finished());
        let message: Option<Value> = serde_json::from_str(line).ok();
        let is_request = message.as_ref().is_some_and(|m| {
            m.get("method").is_some_and(Value::is_string) && m.get("id").is_some()
        });
        let is_initialize = message
            .as_ref()
            .is_some_and(|m| m["method"] == "initialize");
        if is_request && !is_initialize {
            let bridge = bridge.clone();
            let body = line.to_string();
            in_flight.push(std::thread::spawn(move || {
                bridge.forward(&body, message.as_ref())
            }));
        } else {
            bridge.forward(line, message.as_ref());
        }
    }
    for h in in_flight {
        let _ = h.join();
    }
}

#[derive(Clone)]
struct Bridge {
    client: Client,
    session: Arc<Mutex<Session>>,
    out: Lines,
}

impl Bridge {
    fn session(&self) -> std::sync::MutexGuard<'_, Session> {
        match self.session.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Forwards one message (its text as read, and its parse if it is
    /// JSON) and writes what comes back.
    fn forward(&self, body: &str, message: Option<&Value>) {
        let headers = self.headers(message);
        let id = request_id(message);
        let method = message
            .and_then(|m| m["method"].as_str())
            .unwrap_or("message")
            .to_string();
        let answer = self
            .client
            .send_raw("POST", "/mcp", &headers, Some(body.as_bytes()));
        let response = match answer {
            Ok(r) => r,
            Err(e) => {
                let msg = match &e {
                    ClientError::Connection { reason, .. } => format!(
                        "cannot reach the Delega server at {}/mcp ({reason}); is `delega serve` running? \
                         (DELEGA_API_URL sets where it is)",
                        self.client.base()
                    ),
                    other => other.to_string(),
                };
                return self.fail(id, &method, &msg);
            }
        };
        if let Some(sid) = response.header("mcp-session-id") {
            self.session().session_id = Some(sid.to_string());
        }
        let status = response.status();
        if status == 202 {
            return;
        }
        let media = response.media_type();
        if (200..300).contains(&status) && media == "text/event-stream" {
            return self.relay_stream(response, id, &method);
        }
        let text = match response.into_text() {
            Ok(t) => t,
            Err(e) => {
                return self.fail(
                    id,
                    &method,
                    &format!("the server's answer (HTTP {status}) was cut off: {e}"),
                )
            }
        };
        let parsed: Option<Value> = serde_json::from_str(&text).ok();
        match parsed {
            Some(v) if is_jsonrpc(&v) => {
                self.remember(message, &v);
                self.out.write(&one_line(&text, &v));
            }
            Some(v) => {
                let server_says = v["error"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| truncate(&text, 200));
                let hint = if status == 401 {
                    " (check DELEGA_AGENT_KEY or DELEGA_API_KEY)"
                } else {
                    ""
                };
                self.fail(
                    id,
                    &method,
                    &format!("the Delega server answered HTTP {status}: {server_says}{hint}"),
                );
            }
            None if (200..300).contains(&status) && text.trim().is_empty() => {
                // A success with nothing to say (as a 202 would be).
            }
            None => self.fail(
                id,
                &method,
                &format!(
                    "the Delega server answered HTTP {status} ({}) with a body that is not JSON: {}",
                    if media.is_empty() { "no content type" } else { &media },
                    truncate(&text, 200)
                ),
            ),
        }
    }

    /// Writes each event's data of an SSE answer as a line; if the stream
    /// ends before the request's response came, says so.
    fn relay_stream(&self, response: RawResponse, id: Option<Value>, method: &str) {
        let reader: Box<dyn Read + Send + Sync> = response.into_reader();
        let mut answered = id.is_none();
        for event in SseReader::new(BufReader::new(reader)) {
            let event = match event {
                Ok(e) => e,
                Err(e) => {
                    if !answered {
                        self.fail(
                            id.clone(),
                            method,
                            &format!("the server's event stream broke before the answer: {e}"),
                        );
                    } else {
                        log(&format!("event stream of {method} broke: {e}"));
                    }
                    return;
                }
            };
            if event.data.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<Value>(&event.data) {
                Ok(v) => {
                    if id.as_ref().is_some_and(|id| v.get("id") == Some(id))
                        && (v.get("result").is_some() || v.get("error").is_some())
                    {
                        answered = true;
                    }
                    self.out.write(&one_line(&event.data, &v));
                }
                Err(e) => log(&format!(
                    "skipped an event of {method} whose data is not JSON ({e}): {}",
                    truncate(&event.data, 200)
                )),
            }
        }
        if !answered {
            self.fail(
                id,
                method,
                "the server closed the event stream without answering",
            );
        }
    }

    /// After an `initialize` result: the version later messages carry.
    fn remember(&self, message: Option<&Value>, answer: &Value) {
        let is_initialize = message.is_some_and(|m| m["method"] == "initialize");
        if let (true, Some(v)) = (is_initialize, answer["result"]["protocolVersion"].as_str()) {
            self.session().protocol_version = Some(v.to_string());
        }
    }

    /// Logs why a message got no answer from the server and, for a
    /// request, answers it with a JSON-RPC error.
    fn fail(&self, id: Option<Value>, method: &str, msg: &str) {
        log(&format!("{method}: {msg}"));
        if let Some(id) = id {
            // Written in the usual order: jsonrpc, id, error.
            let line = format!(
                "{{\"jsonrpc\":\"2.0\",\"id\":{id},\"error\":{}}}",
                json!({ "code": INTERNAL_ERROR, "message": msg })
            );
            self.out.write(&line);
        }
    }

    /// The headers for one message.
    fn headers(&self, message: Option<&Value>) -> Vec<(String, String)> {
        let mut h = vec![(
            "Accept".to_string(),
            "application/json, text/event-stream".to_string(),
        )];
        let meta_version = message
            .and_then(|m| m["params"]["_meta"][META_VERSION].as_str())
            .map(str::to_string);
        let mut session = self.session();
        if message.is_some_and(|m| m["method"] == "initialize") {
            // A new session (a first one, or again after the server ended
            // the last): nothing of the old one is sent.
            *session = Session::default();
            return h;
        }
        match (meta_version, message) {
            (Some(version), Some(m)) => {
                h.push(("MCP-Protocol-Version".into(), header_value(&version)));
                if let Some(method) = m["method"].as_str() {
                    h.push(("Mcp-Method".into(), header_value(method)));
                    if let Some(name) = mcp_name(method, &m["params"]) {
                        h.push(("Mcp-Name".into(), header_value(&name)));
                    }
                }
            }
            _ => {
                if let Some(v) = &session.protocol_version {
                    h.push(("MCP-Protocol-Version".into(), v.clone()));
                }
            }
        }
        if let Some(sid) = &session.session_id {
            h.push(("Mcp-Session-Id".into(), sid.clone()));
        }
        h
    }
}

/// The `id` of a request (a message with `method` and `id`); `None` for
/// notifications and responses. For input that is not JSON, `null`: the
/// server's parse error has no id either.
fn request_id(message: Option<&Value>) -> Option<Value> {
    match message {
        Some(m) if m.get("method").is_some() => m.get("id").cloned(),
        Some(_) => None,
        None => Some(Value::Null),
    }
}

fn is_jsonrpc(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.get("jsonrpc").is_some_and(|j| j == "2.0"),
        Value::Array(items) => !items.is_empty() && items.iter().all(is_jsonrpc),
        _ => false,
    }
}

/// What `Mcp-Name` carries for a method: the tool or prompt name, the
/// resource URI, the task id.
fn mcp_name(method: &str, params: &Value) -> Option<String> {
    let v = match method {
        "tools/call" | "prompts/get" => &params["name"],
        "resources/read" => &params["uri"],
        "tasks/get" | "tasks/update" | "tasks/cancel" => &params["taskId"],
        _ => return None,
    };
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A header value: printable ASCII as is, anything else as
/// `=?base64?<base64 of the UTF-8>?=`.
pub fn header_value(s: &str) -> String {
    if s.bytes().all(|b| (0x20..0x7f).contains(&b)) && s.trim() == s {
        s.to_string()
    } else {
        format!(
            "=?base64?{}?=",
            base64::engine::general_purpose::STANDARD.encode(s.as_bytes())
        )
    }
}

/// The message as one line: the server's text if it is one already,
/// else re-encoded compactly.
fn one_line(text: &str, v: &Value) -> String {
    let t = text.trim();
    if t.contains(['\n', '\r']) {
        v.to_string()
    } else {
        t.to_string()
    }
}

fn truncate(s: &str, max: usize) -> String {
    let s = s.trim();
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(max).collect();
        out.push('…');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_ascii_header_values_are_base64_words() {
        assert_eq!(header_value("create_task"), "create_task");
        assert_eq!(header_value("café"), "=?base64?Y2Fmw6k=?=");
    }

    #[test]
    fn mcp_name_follows_the_method() {
        let p = json!({"name": "get_task", "uri": "delega://x", "taskId": "t1"});
        assert_eq!(mcp_name("tools/call", &p).as_deref(), Some("get_task"));
        assert_eq!(
            mcp_name("resources/read", &p).as_deref(),
            Some("delega://x")
        );
        assert_eq!(mcp_name("tasks/cancel", &p).as_deref(), Some("t1"));
        assert_eq!(mcp_name("tools/list", &p), None);
    }

    #[test]
    fn notifications_have_no_request_id() {
        let n = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        assert_eq!(request_id(Some(&n)), None);
        let r = json!({"jsonrpc": "2.0", "id": 7, "method": "ping"});
        assert_eq!(request_id(Some(&r)), Some(json!(7)));
    }
}
