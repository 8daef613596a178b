//! The Model Context Protocol, built into the server (SPEC §11): JSON-RPC
//! 2.0 serving both eras of the protocol to any transport.
//!
//! - **Handshake era** — revisions 2025-03-26, 2025-06-18 and 2025-11-25
//!   (`modelcontextprotocol/specification`, `basic/lifecycle`):
//!   `initialize` negotiates the revision (a request for another gets the
//!   newest), then `notifications/initialized`, `ping`, `tools/*`; later
//!   requests name their revision in `MCP-Protocol-Version` (absent:
//!   2025-03-26, which alone allows JSON-RPC batches). 2025-11-25 adds
//!   tasks (`tasks/get|result|list|cancel`).
//! - **2026-07-28**, stateless (`basic/versioning`, SEP-2575): every
//!   request carries its revision and the client's capabilities in
//!   `params._meta`; `server/discover` answers versions and capabilities;
//!   every result carries `resultType`, cacheable ones `ttlMs` and
//!   `cacheScope`; over HTTP the `MCP-Protocol-Version`, `Mcp-Method` and
//!   `Mcp-Name` headers must match the body (`-32020`), an unknown revision
//!   is `-32022` with `data.supported`; the tasks extension
//!   (`io.modelcontextprotocol/tasks`, SEP-2663) serves the long waits.
//!
//! There are no sessions: nothing depends on an earlier request, so any
//! worker (or, later, any process) answers any request. The tools are in
//! [`tools`]; each calls the operations layer, like the REST handlers.

pub mod schema;
pub mod tasks;
pub mod text;
pub mod tools;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::value::{to_raw_value, RawValue};
use serde_json::{json, Map, Value};

use crate::domain::access::Caller;
use crate::ops::Context;
use tasks::{Status, Tasks};
use tools::{Reveal, Tool};

/// The revisions served through `initialize`, oldest first.
pub const HANDSHAKE_VERSIONS: [&str; 3] = ["2025-03-26", "2025-06-18", "2025-11-25"];
/// The stateless revision.
pub const MODERN_VERSION: &str = "2026-07-28";

const META_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
const META_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
const META_SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";
const META_RELATED_TASK: &str = "io.modelcontextprotocol/related-task";
const TASKS_EXTENSION: &str = "io.modelcontextprotocol/tasks";

/// JSON-RPC and MCP error codes.
pub mod code {
    pub const PARSE_ERROR: i64 = -32700;
    pub const INVALID_REQUEST: i64 = -32600;
    pub const METHOD_NOT_FOUND: i64 = -32601;
    pub const INVALID_PARAMS: i64 = -32602;
    pub const INTERNAL_ERROR: i64 = -32603;
    /// 2026-07-28: a routing header is missing or contradicts the body.
    pub const HEADER_MISMATCH: i64 = -32020;
    /// 2026-07-28: a capability the request needs was not declared.
    pub const MISSING_CAPABILITY: i64 = -32021;
    /// 2026-07-28: the revision asked for is not served.
    pub const UNSUPPORTED_VERSION: i64 = -32022;
}

const INSTRUCTIONS: &str = "Delega coordinates teams of AI agents: create tasks, delegate them to \
other agents (every hop is kept in the chain), claim work from a queue, attach results as context, \
and wait for delegated work with wait_for_task. Tasks are shown as [#id] content.";

/// A JSON-RPC error of this server: the `error` member of a JSON-RPC 2.0
/// error response (<https://www.jsonrpc.org/specification#error_object>).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Value>)]
    pub data: Option<Value>,
}

/// A JSON-RPC 2.0 error response, as the MCP endpoint answers a message it
/// refuses: `{"jsonrpc": "2.0", "id", "error": {code, message, data?}}`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct JsonRpcError {
    /// `2.0`.
    pub jsonrpc: &'static str,
    /// The request's id, or null when it could not be read.
    #[schema(value_type = Option<Value>)]
    pub id: Value,
    pub error: RpcError,
}

impl RpcError {
    fn new(code: i64, message: impl Into<String>) -> RpcError {
        RpcError {
            code,
            message: message.into(),
            data: None,
        }
    }
    fn with_data(mut self, data: Value) -> RpcError {
        self.data = Some(data);
        self
    }

    /// The HTTP status of this error in the given era: 2026-07-28 maps
    /// request errors to 400 and unknown methods to 404; the handshake era
    /// answers JSON-RPC errors with 200, except a body that is no request.
    fn status(&self, modern: bool) -> u16 {
        match self.code {
            code::PARSE_ERROR | code::INVALID_REQUEST => 400,
            _ if !modern => 200,
            code::METHOD_NOT_FOUND => 404,
            code::INVALID_PARAMS
            | code::HEADER_MISMATCH
            | code::MISSING_CAPABILITY
            | code::UNSUPPORTED_VERSION => 400,
            _ => 200,
        }
    }

    fn response(&self, id: &Value) -> String {
        let response = JsonRpcError {
            jsonrpc: "2.0",
            id: id.clone(),
            error: self.clone(),
        };
        // Numbers, strings and JSON values: serializing cannot fail.
        serde_json::to_string(&response).unwrap_or_default()
    }
}

/// A result object, kept as JSON text (a tool's task is not parsed and
/// written again), and its `resultType` for 2026-07-28.
pub struct Answer {
    json: Box<RawValue>,
    result_type: &'static str,
}

impl Answer {
    fn of(v: Value) -> Result<Answer, RpcError> {
        Ok(Answer {
            json: to_raw_value(&v)
                .map_err(|e| RpcError::new(code::INTERNAL_ERROR, e.to_string()))?,
            result_type: "complete",
        })
    }

    /// The object with `resultType` and the server's `_meta` first.
    fn decorated(&self) -> String {
        let body = self.json.get();
        let rest = body.strip_prefix('{').unwrap_or(body).trim_start();
        let head = format!(
            r#"{{"resultType":"{}","_meta":{{"{META_SERVER_INFO}":{}}}"#,
            self.result_type,
            server_info()
        );
        if rest.starts_with('}') {
            format!("{head}}}")
        } else {
            format!("{head},{rest}")
        }
    }
}

type RpcResult = Result<Answer, RpcError>;

/// The routing headers of an HTTP request (2026-07-28 checks them against
/// the body; the handshake era reads only the revision).
#[derive(Debug, Default, Clone)]
pub struct Headers {
    pub protocol_version: Option<String>,
    pub method: Option<String>,
    pub name: Option<String>,
}

/// What to send back.
#[derive(Debug)]
pub enum Reply {
    /// Notifications or responses only: HTTP 202, no body.
    Accepted,
    /// A JSON-RPC message (or a batch of them), as JSON text, with its
    /// HTTP status.
    Message { status: u16, body: String },
}

/// Which era a request belongs to.
#[derive(Debug, Clone)]
enum Era {
    /// A handshake-era revision.
    Legacy(&'static str),
    /// 2026-07-28, with the client's declared capabilities.
    Modern { capabilities: Value },
}

impl Era {
    fn modern(&self) -> bool {
        matches!(self, Era::Modern { .. })
    }
    fn declares_tasks(&self) -> bool {
        match self {
            Era::Modern { capabilities } => capabilities
                .get("extensions")
                .and_then(|e| e.get(TASKS_EXTENSION))
                .is_some(),
            Era::Legacy(v) => *v == "2025-11-25",
        }
    }
}

/// The MCP server: the operations layer, the tasks of this process and
/// what may be revealed.
pub struct Server {
    ctx: Context,
    tasks: Tasks,
    reveal: Reveal,
    /// The tool list as JSON text, built once: without and with
    /// `execution` (2025-11-25).
    tool_list: [String; 2],
}

fn server_info() -> Value {
    json!({
        "name": "delega",
        "title": "Delega",
        "version": env!("CARGO_PKG_VERSION"),
        "description": "Coordination server for teams of AI agents"
    })
}

/// A header value as sent: plain, or `=?base64?<UTF-8 as base64>?=`.
fn decode_header(v: &str) -> Option<String> {
    match v
        .strip_prefix("=?base64?")
        .and_then(|r| r.strip_suffix("?="))
    {
        Some(b64) => STANDARD
            .decode(b64)
            .ok()
            .and_then(|b| String::from_utf8(b).ok()),
        None => Some(v.to_string()),
    }
}

/// Whether a header equals a body value (integers compare numerically).
fn header_matches(header: &str, body: &Value) -> bool {
    match body {
        Value::String(s) => header == s,
        Value::Number(n) => header.trim().parse::<f64>().ok() == n.as_f64(),
        _ => false,
    }
}

/// Who owns a task: tasks are seen only by the credential that made them.
fn owner(caller: &Caller) -> String {
    match caller.agent_id() {
        Some(id) => format!("agent:{id}"),
        None => "project".to_string(),
    }
}

impl Server {
    pub fn new(ctx: Context) -> Server {
        let list = |with_execution| {
            Value::Array(
                tools::TOOLS
                    .iter()
                    .map(|t| t.describe(with_execution))
                    .collect(),
            )
            .to_string()
        };
        Server {
            ctx,
            tasks: Tasks::default(),
            reveal: Reveal::from_env(),
            tool_list: [list(false), list(true)],
        }
    }

    /// Answers one HTTP body: a message, or (2025-03-26 only) a batch.
    pub async fn handle(&self, caller: &Caller, body: &[u8], headers: &Headers) -> Reply {
        let message: Value = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => {
                let err = RpcError::new(code::PARSE_ERROR, format!("parse error: {e}"));
                return Reply::Message {
                    status: 400,
                    body: err.response(&Value::Null),
                };
            }
        };
        match message {
            Value::Array(batch) => self.handle_batch(caller, batch, headers).await,
            single => match self.handle_one(caller, single, headers, false).await {
                None => Reply::Accepted,
                Some((status, body)) => Reply::Message { status, body },
            },
        }
    }

    /// JSON-RPC batches exist only in 2025-03-26 (later revisions and
    /// 2026-07-28 take one message per request).
    async fn handle_batch(&self, caller: &Caller, batch: Vec<Value>, headers: &Headers) -> Reply {
        let version = headers.protocol_version.as_deref().unwrap_or("2025-03-26");
        if version != "2025-03-26" || batch.is_empty() {
            let err = RpcError::new(
                code::INVALID_REQUEST,
                "the body must be a single JSON-RPC message (batches exist only in 2025-03-26)",
            );
            return Reply::Message {
                status: 400,
                body: err.response(&Value::Null),
            };
        }
        let mut answers = Vec::new();
        for m in batch {
            if let Some((_, body)) = self.handle_one(caller, m, headers, true).await {
                answers.push(body);
            }
        }
        if answers.is_empty() {
            Reply::Accepted
        } else {
            Reply::Message {
                status: 200,
                body: format!("[{}]", answers.join(",")),
            }
        }
    }

    /// One message: `None` for a notification or a response (nothing to
    /// answer), else the HTTP status and the response.
    async fn handle_one(
        &self,
        caller: &Caller,
        message: Value,
        headers: &Headers,
        in_batch: bool,
    ) -> Option<(u16, String)> {
        let Value::Object(mut m) = message else {
            let err = RpcError::new(code::INVALID_REQUEST, "a JSON-RPC message is an object");
            return Some((400, err.response(&Value::Null)));
        };
        let id = m.remove("id");
        let method = m.remove("method");
        let invalid = |why: &str| {
            let err = RpcError::new(code::INVALID_REQUEST, format!("invalid request: {why}"));
            Some((400, err.response(id.as_ref().unwrap_or(&Value::Null))))
        };
        if m.get("jsonrpc") != Some(&json!("2.0")) {
            return invalid("jsonrpc must be \"2.0\"");
        }
        let method = match method {
            Some(Value::String(s)) => s,
            Some(_) => return invalid("method must be a string"),
            // A response from the client (to nothing we asked): accepted.
            None if m.contains_key("result") || m.contains_key("error") => return None,
            None => return invalid("method is missing"),
        };
        if id
            .as_ref()
            .is_some_and(|i| !(i.is_string() || i.is_i64() || i.is_u64()))
        {
            return invalid("id must be a string or an integer");
        }
        let params = match m.remove("params") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(p)) => p,
            Some(_) => {
                let err = RpcError::new(code::INVALID_PARAMS, "params must be an object");
                return Some((400, err.response(id.as_ref().unwrap_or(&Value::Null))));
            }
        };
        // Notifications (initialized, cancelled, …) need no answer.
        let id = id?;
        let era = match self.era(&method, &params, headers) {
            Ok(era) => era,
            Err((modern, err)) => return Some((err.status(modern), err.response(&id))),
        };
        if in_batch && method == "initialize" {
            let err = RpcError::new(
                code::INVALID_REQUEST,
                "initialize cannot be part of a batch",
            );
            return Some((400, err.response(&id)));
        }
        let modern = era.modern();
        match self.dispatch(caller, &method, params, &era).await {
            Ok(answer) => {
                let result = if modern {
                    answer.decorated()
                } else {
                    answer.json.get().to_string()
                };
                Some((
                    200,
                    format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{result}}}"#),
                ))
            }
            Err(err) => Some((err.status(modern), err.response(&id))),
        }
    }

    /// The era of a request and, for 2026-07-28, its checks in the order
    /// the revision gives: `_meta`, then the headers, then the revision.
    fn era(
        &self,
        method: &str,
        params: &Map<String, Value>,
        headers: &Headers,
    ) -> Result<Era, (bool, RpcError)> {
        let meta = params.get("_meta");
        let meta_version = meta.and_then(|m| m.get(META_VERSION));
        let header_version = headers.protocol_version.as_deref();
        let modern = meta_version.is_some()
            || header_version.is_some_and(|v| !HANDSHAKE_VERSIONS.contains(&v));
        if !modern {
            let version = match header_version {
                Some(v) => HANDSHAKE_VERSIONS
                    .iter()
                    .find(|h| **h == v)
                    .copied()
                    .unwrap_or("2025-03-26"),
                None => "2025-03-26",
            };
            return Ok(Era::Legacy(version));
        }
        let fail = |e: RpcError| Err((true, e));
        let (Some(Value::String(version)), Some(capabilities)) =
            (meta_version, meta.and_then(|m| m.get(META_CAPABILITIES)))
        else {
            return fail(RpcError::new(
                code::INVALID_PARAMS,
                format!("params._meta must carry {META_VERSION} and {META_CAPABILITIES}"),
            ));
        };
        let mismatch = |what: &str| {
            Err((
                true,
                RpcError::new(code::HEADER_MISMATCH, format!("Header mismatch: {what}")),
            ))
        };
        match header_version {
            Some(h) if h == version => {}
            Some(h) => {
                return mismatch(&format!(
                    "MCP-Protocol-Version {h:?} but _meta says {version:?}"
                ))
            }
            None => return mismatch("MCP-Protocol-Version is required"),
        }
        match headers.method.as_deref().and_then(decode_header) {
            Some(h) if h == method => {}
            Some(h) => return mismatch(&format!("Mcp-Method {h:?} but the method is {method:?}")),
            None => return mismatch("Mcp-Method is required"),
        }
        let name_key = match method {
            "tools/call" | "prompts/get" => Some("name"),
            "resources/read" => Some("uri"),
            "tasks/get" | "tasks/update" | "tasks/cancel" => Some("taskId"),
            _ => None,
        };
        if let Some(key) = name_key {
            let body = params.get(key).cloned().unwrap_or(Value::Null);
            match headers.name.as_deref().and_then(decode_header) {
                Some(h) if header_matches(&h, &body) => {}
                Some(h) => return mismatch(&format!("Mcp-Name {h:?} but params.{key} is {body}")),
                None => return mismatch(&format!("Mcp-Name is required for {method}")),
            }
        }
        if version != MODERN_VERSION {
            let mut supported = vec![MODERN_VERSION];
            supported.extend(HANDSHAKE_VERSIONS.iter().rev());
            return fail(
                RpcError::new(code::UNSUPPORTED_VERSION, "Unsupported protocol version")
                    .with_data(json!({ "supported": supported, "requested": version })),
            );
        }
        Ok(Era::Modern {
            capabilities: capabilities.clone(),
        })
    }

    async fn dispatch(
        &self,
        caller: &Caller,
        method: &str,
        params: Map<String, Value>,
        era: &Era,
    ) -> RpcResult {
        match (method, era) {
            ("ping", _) => Answer::of(json!({})),
            ("initialize", Era::Legacy(_)) => Answer::of(self.initialize(&params)),
            ("server/discover", Era::Modern { .. }) => Answer::of(self.discover()),
            ("tools/list", _) => self.tools_list(&params, era),
            ("tools/call", _) => self.tools_call(caller, params, era).await,
            (m, Era::Legacy("2025-11-25")) if m.starts_with("tasks/") => {
                self.legacy_task_method(caller, m, &params).await
            }
            (m, Era::Modern { .. }) if m.starts_with("tasks/") => {
                if !era.declares_tasks() {
                    return Err(RpcError::new(
                        code::MISSING_CAPABILITY,
                        format!("{m} needs the {TASKS_EXTENSION} extension"),
                    )
                    .with_data(json!({
                        "requiredCapabilities": { "extensions": { TASKS_EXTENSION: {} } }
                    })));
                }
                self.modern_task_method(caller, m, &params)
            }
            (m, _) => Err(RpcError::new(
                code::METHOD_NOT_FOUND,
                format!("Method not found: {m}"),
            )),
        }
    }

    /// `initialize`: the revision asked for if served, else the newest.
    fn initialize(&self, params: &Map<String, Value>) -> Value {
        let asked = params.get("protocolVersion").and_then(Value::as_str);
        let version = asked
            .and_then(|a| HANDSHAKE_VERSIONS.iter().find(|v| **v == a))
            .copied()
            .unwrap_or(HANDSHAKE_VERSIONS[HANDSHAKE_VERSIONS.len() - 1]);
        let mut capabilities = json!({ "tools": { "listChanged": false } });
        if version == "2025-11-25" {
            capabilities["tasks"] = json!({
                "list": {}, "cancel": {}, "requests": { "tools": { "call": {} } }
            });
        }
        json!({
            "protocolVersion": version,
            "capabilities": capabilities,
            "serverInfo": server_info(),
            "instructions": INSTRUCTIONS,
        })
    }

    /// `server/discover` (2026-07-28).
    fn discover(&self) -> Value {
        let mut supported = vec![MODERN_VERSION];
        supported.extend(HANDSHAKE_VERSIONS.iter().rev());
        json!({
            "supportedVersions": supported,
            "capabilities": {
                "tools": { "listChanged": false },
                "extensions": { TASKS_EXTENSION: {} }
            },
            "serverInfo": server_info(),
            "instructions": INSTRUCTIONS,
            "ttlMs": 3_600_000,
            "cacheScope": "public",
        })
    }

    /// `tools/list`: every tool on one page (a cursor is refused).
    fn tools_list(&self, params: &Map<String, Value>, era: &Era) -> RpcResult {
        if params.get("cursor").is_some_and(|c| !c.is_null()) {
            return Err(RpcError::new(
                code::INVALID_PARAMS,
                "invalid cursor: the list has one page",
            ));
        }
        let with_execution = matches!(era, Era::Legacy("2025-11-25"));
        let tools = &self.tool_list[usize::from(with_execution)];
        let json = if era.modern() {
            format!(r#"{{"tools":{tools},"ttlMs":300000,"cacheScope":"public"}}"#)
        } else {
            format!(r#"{{"tools":{tools}}}"#)
        };
        Ok(Answer {
            json: RawValue::from_string(json)
                .map_err(|e| RpcError::new(code::INTERNAL_ERROR, e.to_string()))?,
            result_type: "complete",
        })
    }

    /// `tools/call`: the tool's result; a tool failure is a result with
    /// `isError: true`, not a protocol error. The long waits run as MCP
    /// tasks when the client asked (2025-11-25 `params.task`) or declared
    /// the extension (2026-07-28).
    async fn tools_call(
        &self,
        caller: &Caller,
        mut params: Map<String, Value>,
        era: &Era,
    ) -> RpcResult {
        let name = match params.get("name") {
            Some(Value::String(n)) => n.clone(),
            _ => {
                return Err(RpcError::new(
                    code::INVALID_PARAMS,
                    "params.name is required",
                ))
            }
        };
        let tool = tools::find(&name)
            .ok_or_else(|| RpcError::new(code::INVALID_PARAMS, format!("Unknown tool: {name}")))?;
        let arguments = params.remove("arguments").unwrap_or_else(|| json!({}));
        let as_task = match era {
            Era::Legacy(_) => match params.get("task") {
                Some(_) if !era.declares_tasks() => {
                    return Err(RpcError::new(
                        code::INVALID_PARAMS,
                        "task-augmented calls exist from 2025-11-25",
                    ))
                }
                Some(_) if !tool.task_support => {
                    return Err(RpcError::new(
                        code::METHOD_NOT_FOUND,
                        format!("{} does not run as a task", tool.name),
                    ))
                }
                Some(_) => true,
                None => false,
            },
            // The server decides (SEP-2663): only calls that wait.
            Era::Modern { .. } => era.declares_tasks() && waits(tool, &arguments),
        };
        if !as_task {
            return Ok(Answer {
                json: self.call_result(caller, tool, arguments).await,
                result_type: "complete",
            });
        }
        let ctx = self.ctx.clone();
        let reveal = self.reveal;
        let who = caller.clone();
        let task = self.tasks.start(owner(caller), async move {
            let result = result_of(tools::call(&ctx, reveal, &who, tool, arguments).await);
            serde_json::from_str(result.get()).unwrap_or(Value::Null)
        });
        match era {
            Era::Legacy(_) => Answer::of(json!({ "task": task.describe(false) })),
            Era::Modern { .. } => Ok(Answer {
                result_type: "task",
                ..Answer::of(task.describe(true))?
            }),
        }
    }

    async fn call_result(
        &self,
        caller: &Caller,
        tool: &'static Tool,
        arguments: Value,
    ) -> Box<RawValue> {
        result_of(tools::call(&self.ctx, self.reveal, caller, tool, arguments).await)
    }

    fn task_of(
        &self,
        caller: &Caller,
        params: &Map<String, Value>,
    ) -> Result<std::sync::Arc<tasks::Task>, RpcError> {
        let id = params
            .get("taskId")
            .and_then(Value::as_str)
            .ok_or_else(|| RpcError::new(code::INVALID_PARAMS, "params.taskId is required"))?;
        self.tasks
            .get(&owner(caller), id)
            .ok_or_else(|| RpcError::new(code::INVALID_PARAMS, format!("Task not found: {id}")))
    }

    /// `tasks/get|result|list|cancel` of 2025-11-25.
    async fn legacy_task_method(
        &self,
        caller: &Caller,
        method: &str,
        params: &Map<String, Value>,
    ) -> RpcResult {
        match method {
            "tasks/get" => Answer::of(self.task_of(caller, params)?.describe(false)),
            "tasks/result" => {
                let task = self.task_of(caller, params)?;
                match task.finished().await {
                    Status::Done(mut result) => {
                        result["_meta"][META_RELATED_TASK] = json!({ "taskId": task.id });
                        Answer::of(result)
                    }
                    _ => Err(RpcError::new(
                        code::INVALID_PARAMS,
                        "the task was cancelled",
                    )),
                }
            }
            "tasks/list" => {
                if params.get("cursor").is_some_and(|c| !c.is_null()) {
                    return Err(RpcError::new(code::INVALID_PARAMS, "invalid cursor"));
                }
                let tasks: Vec<Value> = self
                    .tasks
                    .list(&owner(caller))
                    .iter()
                    .map(|t| t.describe(false))
                    .collect();
                Answer::of(json!({ "tasks": tasks }))
            }
            "tasks/cancel" => {
                let task = self.task_of(caller, params)?;
                if !self.tasks.cancel(&task) {
                    return Err(RpcError::new(
                        code::INVALID_PARAMS,
                        "the task already finished and cannot be cancelled",
                    ));
                }
                Answer::of(task.describe(false))
            }
            other => Err(RpcError::new(
                code::METHOD_NOT_FOUND,
                format!("Method not found: {other}"),
            )),
        }
    }

    /// `tasks/get|update|cancel` of the tasks extension.
    fn modern_task_method(
        &self,
        caller: &Caller,
        method: &str,
        params: &Map<String, Value>,
    ) -> RpcResult {
        let task = self.task_of(caller, params)?;
        match method {
            "tasks/get" => Answer::of(task.describe(true)),
            // No task of ours asks for input: answers are acknowledged.
            "tasks/update" => Answer::of(json!({})),
            "tasks/cancel" => {
                self.tasks.cancel(&task);
                Answer::of(json!({}))
            }
            other => Err(RpcError::new(
                code::METHOD_NOT_FOUND,
                format!("Method not found: {other}"),
            )),
        }
    }
}

/// Whether a call would wait: `wait_for_task`, or a queue claim with
/// `wait_seconds`.
fn waits(tool: &Tool, arguments: &Value) -> bool {
    match tool.name {
        "wait_for_task" => true,
        "claim_task" => arguments
            .get("wait_seconds")
            .and_then(Value::as_i64)
            .is_some_and(|w| w > 0),
        _ => false,
    }
}

/// A `CallToolResult`: the text and `structuredContent`, or the failure as
/// `isError: true` with the server's message.
fn result_of(outcome: crate::error::Result<tools::Output>) -> Box<RawValue> {
    #[derive(serde::Serialize)]
    struct Text<'a> {
        #[serde(rename = "type")]
        kind: &'static str,
        text: &'a str,
    }
    #[derive(serde::Serialize)]
    struct CallToolResult<'a> {
        content: [Text<'a>; 1],
        #[serde(rename = "structuredContent", skip_serializing_if = "Option::is_none")]
        structured: Option<&'a RawValue>,
        #[serde(rename = "isError")]
        is_error: bool,
    }
    let failed;
    let result = match &outcome {
        Ok(out) => CallToolResult {
            content: [Text {
                kind: "text",
                text: &out.text,
            }],
            structured: Some(&out.structured),
            is_error: false,
        },
        Err(e) => {
            failed = format!("Error {} ({}): {}", e.status(), e.code(), e.message());
            CallToolResult {
                content: [Text {
                    kind: "text",
                    text: &failed,
                }],
                structured: None,
                is_error: true,
            }
        }
    };
    to_raw_value(&result).unwrap_or_else(|_| {
        RawValue::from_string(r#"{"content":[],"isError":true}"#.to_string())
            .unwrap_or_else(|_| unreachable!("a constant JSON object"))
    })
}
