//! MCP over raw JSON-RPC (SPEC §11): both eras, every error code, tasks,
//! and the same scoping as REST. The official Python client's
//! conversations are in tests/mcp (run by .ci/run).

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{id_of, Client, Resp, TestServer};

const MODERN: &str = "2026-07-28";

fn meta(version: &str, capabilities: Value) -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": version,
        "io.modelcontextprotocol/clientCapabilities": capabilities,
        "io.modelcontextprotocol/clientInfo": { "name": "delega-tests", "version": "1" }
    })
}

/// A handshake-era request (`version` in the header, as clients send
/// after `initialize`).
fn legacy(client: &Client, version: &str, id: i64, method: &str, params: Value) -> Resp {
    let body = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
    client.raw(
        "POST",
        "/mcp",
        Some(body.to_string().as_bytes()),
        &[
            ("MCP-Protocol-Version", version),
            ("Accept", "application/json, text/event-stream"),
        ],
    )
}

/// A 2026-07-28 request with matching routing headers.
fn modern(client: &Client, id: i64, method: &str, mut params: Value, capabilities: Value) -> Resp {
    params["_meta"] = meta(MODERN, capabilities);
    let name = params
        .get("name")
        .or_else(|| params.get("taskId"))
        .and_then(Value::as_str)
        .map(String::from);
    let body = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
    let mut headers = vec![("MCP-Protocol-Version", MODERN), ("Mcp-Method", method)];
    if let Some(n) = &name {
        headers.push(("Mcp-Name", n.as_str()));
    }
    client.raw("POST", "/mcp", Some(body.to_string().as_bytes()), &headers)
}

fn call(client: &Client, name: &str, arguments: Value) -> Value {
    let r = modern(
        client,
        7,
        "tools/call",
        json!({ "name": name, "arguments": arguments }),
        json!({}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let result = r.body["result"].clone();
    assert_eq!(result["resultType"], "complete", "{}", r.text);
    result
}

fn error_code(r: &Resp) -> i64 {
    r.body["error"]["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("no JSON-RPC error: {}", r.text))
}

#[test]
fn initialize_negotiates_the_handshake_revisions_and_counter_offers_the_newest() {
    let server = TestServer::start();
    let admin = server.admin();
    for (asked, answered) in [
        ("2025-03-26", "2025-03-26"),
        ("2025-06-18", "2025-06-18"),
        ("2025-11-25", "2025-11-25"),
        ("2024-11-05", "2025-11-25"),
        ("1999-01-01", "2025-11-25"),
    ] {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": asked, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
        let r = admin.raw("POST", "/mcp", Some(body.to_string().as_bytes()), &[]);
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["result"]["protocolVersion"], answered, "{asked}");
        assert_eq!(r.body["result"]["serverInfo"]["name"], "delega");
        assert!(r.body["result"]["capabilities"]["tools"].is_object());
        let tasks = &r.body["result"]["capabilities"]["tasks"];
        assert_eq!(
            tasks.is_object(),
            answered == "2025-11-25",
            "{asked}: {}",
            r.text
        );
    }
    // The notification that follows, and ping.
    let r = admin.raw(
        "POST",
        "/mcp",
        Some(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#),
        &[("MCP-Protocol-Version", "2025-06-18")],
    );
    assert_eq!(r.status, 202);
    assert!(r.text.is_empty());
    let r = legacy(&admin, "2025-06-18", 9, "ping", json!({}));
    assert_eq!(r.body["result"], json!({}));
    // The same endpoint under both prefixes.
    for path in ["/api/mcp", "/v1/mcp"] {
        let r = admin.raw(
            "POST",
            path,
            Some(br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#),
            &[],
        );
        assert_eq!(r.status, 200, "{path}: {}", r.text);
    }
}

#[test]
fn every_tool_is_listed_with_schemas_and_annotations_in_both_eras() {
    let server = TestServer::start();
    let admin = server.admin();
    let old = legacy(&admin, "2025-11-25", 1, "tools/list", json!({}));
    let new = modern(&admin, 2, "tools/list", json!({}), json!({}));
    assert_eq!(new.body["result"]["resultType"], "complete");
    assert!(new.body["result"]["ttlMs"].is_number());
    assert_eq!(new.body["result"]["cacheScope"], "public");
    for r in [&old, &new] {
        let tools = r.body["result"]["tools"].as_array().unwrap();
        let names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
        for expected in [
            "list_tasks",
            "get_task",
            "create_task",
            "update_task",
            "assign_task",
            "delegate_task",
            "get_task_chain",
            "update_task_context",
            "get_task_context",
            "get_context_history",
            "complete_task",
            "fail_task",
            "delete_task",
            "add_comment",
            "claim_task",
            "heartbeat_task",
            "release_task",
            "set_task_state",
            "link_task",
            "list_task_links",
            "find_duplicate_tasks",
            "list_projects",
            "get_stats",
            "fleet_attention",
            "list_agents",
            "register_agent",
            "set_agent_role",
            "delete_agent",
            "create_webhook",
            "list_webhooks",
            "delete_webhook",
            "list_recurrences",
            "create_recurring_task",
            "update_recurrence",
            "delete_recurrence",
            "get_usage",
            "recall",
            "get_task_inputs",
            "add_dependency",
            "wait_for_task",
            "watch_events",
        ] {
            assert!(names.contains(&expected), "{expected} missing");
        }
        assert!(
            !names.iter().any(|n| n.starts_with("delega_")),
            "aliases are not listed"
        );
        for t in tools {
            assert_eq!(t["inputSchema"]["type"], "object", "{}", t["name"]);
            assert_eq!(t["outputSchema"]["type"], "object", "{}", t["name"]);
            assert!(t["annotations"]["readOnlyHint"].is_boolean());
            assert!(t["description"].as_str().is_some_and(|d| !d.is_empty()));
        }
    }
    let wait = old.body["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "wait_for_task")
        .unwrap()
        .clone();
    assert_eq!(wait["execution"]["taskSupport"], "optional");
}

#[test]
fn the_tutorials_flow_by_alias_names_lands_in_the_api() {
    let server = TestServer::start();
    let (orch, _) = server.agent("orchestrator", "coordinator");
    server.agent("research-agent", "worker");
    let created = call(
        &orch,
        "delega_create_task",
        json!({"content": "Summarise Q3 churn drivers", "priority": 1, "metadata": {"quarter": "Q3"}}),
    );
    let text = created["content"][0]["text"].as_str().unwrap();
    let id = created["structuredContent"]["id"].as_i64().unwrap();
    assert!(
        text.starts_with(&format!("[#{id}] Summarise Q3 churn drivers")),
        "{text}"
    );
    let handed = call(
        &orch,
        "delega_delegate_task",
        json!({"task_id": id, "agent_id": "research-agent"}),
    );
    assert_eq!(handed["structuredContent"]["assigned_to"], "research-agent");
    let chain = call(&orch, "delega_get_chain", json!({"task_id": id}));
    let tree = chain["content"][0]["text"].as_str().unwrap();
    assert!(tree.contains("orchestrator → research-agent"), "{tree}");
    let done = call(
        &orch,
        "delega_complete_task",
        json!({"task_id": id, "metadata": {"summary": "pricing"}}),
    );
    assert_eq!(done["structuredContent"]["status"], "completed");
    // Over REST: the same task, the same hop, the same events.
    let rest = orch.get(&format!("/api/tasks/{id}")).body;
    assert_eq!(rest["status"], "completed");
    assert_eq!(
        rest["context"],
        json!({"quarter": "Q3", "summary": "pricing"})
    );
    let hops = orch.get(&format!("/v1/tasks/{id}/chain")).body;
    assert_eq!(hops["chain"][0]["to"], "research-agent", "{hops}");
    let kinds: Vec<String> = orch
        .get(&format!("/api/events?task_id={id}"))
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kinds, ["task.created", "task.delegated", "task.completed"]);
}

#[test]
fn a_failing_tool_is_an_is_error_result_and_an_unknown_tool_a_protocol_error() {
    let server = TestServer::start();
    let (w, _) = server.agent("w", "worker");
    let r = call(&w, "get_task", json!({"task_id": 4242}));
    assert_eq!(r["isError"], true);
    assert!(
        r["content"][0]["text"].as_str().unwrap().contains("404"),
        "{r}"
    );
    let r = call(&w, "create_task", json!({"content": "  "}));
    assert_eq!(r["isError"], true);
    assert!(
        r["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("content"),
        "{r}"
    );
    let r = modern(
        &w,
        1,
        "tools/call",
        json!({"name": "no_such_tool", "arguments": {}}),
        json!({}),
    );
    assert_eq!(r.status, 400);
    assert_eq!(error_code(&r), -32602);
}

#[test]
fn protocol_errors_get_their_codes_and_statuses() {
    let server = TestServer::start();
    let admin = server.admin();
    // Malformed JSON and invalid requests.
    let r = admin.raw("POST", "/mcp", Some(b"{not json"), &[]);
    assert_eq!((r.status, error_code(&r)), (400, -32700));
    let r = admin.raw("POST", "/mcp", Some(br#"{"id": 1, "method": "ping"}"#), &[]);
    assert_eq!((r.status, error_code(&r)), (400, -32600));
    let r = admin.raw("POST", "/mcp", Some(br#"{"jsonrpc": "2.0", "id": 1}"#), &[]);
    assert_eq!((r.status, error_code(&r)), (400, -32600));
    let r = admin.raw(
        "POST",
        "/mcp",
        Some(br#"[1, 2]"#),
        &[("MCP-Protocol-Version", "2025-06-18")],
    );
    assert_eq!((r.status, error_code(&r)), (400, -32600));
    // Unknown methods: 200 in the handshake era, 404 in 2026-07-28.
    let r = legacy(&admin, "2025-06-18", 1, "resources/list", json!({}));
    assert_eq!((r.status, error_code(&r)), (200, -32601));
    let r = modern(&admin, 1, "resources/list", json!({}), json!({}));
    assert_eq!((r.status, error_code(&r)), (404, -32601));
    // 2026-07-28: _meta first, then headers, then the revision.
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {
        "_meta": {"io.modelcontextprotocol/protocolVersion": MODERN}}});
    let r = admin.raw(
        "POST",
        "/mcp",
        Some(body.to_string().as_bytes()),
        &[
            ("MCP-Protocol-Version", MODERN),
            ("Mcp-Method", "tools/list"),
        ],
    );
    assert_eq!((r.status, error_code(&r)), (400, -32602), "{}", r.text);
    let good = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": "get_stats", "arguments": {}, "_meta": meta(MODERN, json!({}))}});
    for headers in [
        vec![("Mcp-Method", "tools/call"), ("Mcp-Name", "get_stats")],
        vec![
            ("MCP-Protocol-Version", "2025-11-25"),
            ("Mcp-Method", "tools/call"),
            ("Mcp-Name", "get_stats"),
        ],
        vec![
            ("MCP-Protocol-Version", MODERN),
            ("Mcp-Method", "tools/list"),
            ("Mcp-Name", "get_stats"),
        ],
        vec![
            ("MCP-Protocol-Version", MODERN),
            ("Mcp-Method", "tools/call"),
        ],
        vec![
            ("MCP-Protocol-Version", MODERN),
            ("Mcp-Method", "tools/call"),
            ("Mcp-Name", "get_usage"),
        ],
    ] {
        let r = admin.raw("POST", "/mcp", Some(good.to_string().as_bytes()), &headers);
        assert_eq!(
            (r.status, error_code(&r)),
            (400, -32020),
            "{headers:?}: {}",
            r.text
        );
    }
    // Base64-encoded header values are decoded before comparing.
    let r = admin.raw(
        "POST",
        "/mcp",
        Some(good.to_string().as_bytes()),
        &[
            ("MCP-Protocol-Version", MODERN),
            ("Mcp-Method", "tools/call"),
            ("Mcp-Name", "=?base64?Z2V0X3N0YXRz?="),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.text);
    // An unknown revision names the supported ones.
    let old = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {
        "_meta": meta("2099-01-01", json!({}))}});
    let r = admin.raw(
        "POST",
        "/mcp",
        Some(old.to_string().as_bytes()),
        &[
            ("MCP-Protocol-Version", "2099-01-01"),
            ("Mcp-Method", "tools/list"),
        ],
    );
    assert_eq!((r.status, error_code(&r)), (400, -32022), "{}", r.text);
    let supported = r.body["error"]["data"]["supported"].as_array().unwrap();
    assert!(supported.contains(&json!(MODERN)) && supported.contains(&json!("2025-11-25")));
    assert_eq!(r.body["error"]["data"]["requested"], "2099-01-01");
    // Task methods without the extension declared.
    let r = modern(&admin, 1, "tasks/get", json!({"taskId": "nope"}), json!({}));
    assert_eq!((r.status, error_code(&r)), (400, -32021), "{}", r.text);
    // server/discover.
    let r = modern(&admin, 1, "server/discover", json!({}), json!({}));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["result"]["supportedVersions"][0], MODERN);
    assert!(
        r.body["result"]["capabilities"]["extensions"]["io.modelcontextprotocol/tasks"].is_object()
    );
    assert_eq!(r.body["result"]["cacheScope"], "public");
    // GET (no server stream) and DELETE (no sessions).
    assert_eq!(
        admin
            .raw("GET", "/mcp", None, &[("Accept", "text/event-stream")])
            .status,
        405
    );
    assert_eq!(admin.raw("DELETE", "/mcp", None, &[]).status, 405);
}

#[test]
fn a_2025_03_26_batch_gets_one_answer_per_request() {
    let server = TestServer::start();
    let batch = json!([
        {"jsonrpc": "2.0", "id": 1, "method": "ping"},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "get_usage", "arguments": {}}},
    ]);
    let r = server
        .admin()
        .raw("POST", "/mcp", Some(batch.to_string().as_bytes()), &[]);
    assert_eq!(r.status, 200, "{}", r.text);
    let answers = r.body.as_array().unwrap();
    assert_eq!(answers.len(), 2);
    assert_eq!(answers[0]["id"], 1);
    assert_eq!(
        answers[1]["result"]["structuredContent"]["plan"],
        "self-hosted"
    );
    let only = json!([{"jsonrpc": "2.0", "method": "notifications/initialized"}]);
    let r = server
        .admin()
        .raw("POST", "/mcp", Some(only.to_string().as_bytes()), &[]);
    assert_eq!(r.status, 202);
}

#[test]
fn origin_and_credentials_are_checked_like_the_api() {
    let server = TestServer::start();
    let ping = br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
    let r = server.anonymous().raw("POST", "/mcp", Some(ping), &[]);
    assert_eq!(r.status, 401, "{}", r.text);
    let r = server.admin().raw(
        "POST",
        "/mcp",
        Some(ping),
        &[("Origin", "https://evil.example")],
    );
    assert_eq!(r.status, 403, "{}", r.text);
    let own = format!("http://127.0.0.1:{}", server.port);
    let r = server
        .admin()
        .raw("POST", "/mcp", Some(ping), &[("Origin", own.as_str())]);
    assert_eq!(r.status, 200, "{}", r.text);
    let r = server
        .with_key("dlg_not_a_real_key_0000000000000000000000000000")
        .raw("POST", "/mcp", Some(ping), &[]);
    assert_eq!(r.status, 401);
}

#[test]
fn keys_and_secrets_are_redacted_in_tool_results() {
    let server = TestServer::start_with(&[("DELEGA_ALLOW_PRIVATE_WEBHOOKS", "true")]);
    let admin = server.admin();
    let agent = call(&admin, "register_agent", json!({"name": "new-worker"}));
    let key = agent["structuredContent"]["api_key"].as_str().unwrap();
    assert!(key.starts_with("<redacted"), "{key}");
    let text = agent["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("<redacted"), "{text}");
    let listed = admin.get("/api/agents/new-worker").body;
    assert_eq!(
        agent["structuredContent"]["key_prefix"],
        listed["key_prefix"]
    );
    let hook = call(
        &admin,
        "create_webhook",
        json!({"url": "http://127.0.0.1:9/h"}),
    );
    assert!(hook["structuredContent"]["secret"]
        .as_str()
        .unwrap()
        .starts_with("<redacted"));
    assert_eq!(hook["structuredContent"]["signature_version"], "v2");
}

#[test]
fn a_worker_sees_over_mcp_exactly_what_it_sees_over_rest() {
    let server = TestServer::start();
    let (alice, _) = server.agent("alice", "worker");
    let (bob, _) = server.agent("bob", "worker");
    let mine = id_of(
        &alice
            .create_task(json!({"content": "alice's plan", "context": {"secret_sauce": "cumin"}})),
    );
    // Assigned: not in alice's claim queue either.
    let theirs = id_of(&bob.create_task(
        json!({"content": "bob's plan", "assigned_to_agent_id": "bob",
        "context": {"secret_sauce": "saffron"}}),
    ));
    let over_mcp = call(&alice, "list_tasks", json!({"include_completed": true}));
    let ids: Vec<i64> = over_mcp["structuredContent"]["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_i64().unwrap())
        .collect();
    let rest: Vec<i64> = alice
        .get("/api/tasks?include_completed=true")
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, rest);
    assert_eq!(ids, vec![mine]);
    assert_eq!(
        call(&alice, "get_task", json!({"task_id": theirs}))["isError"],
        true
    );
    assert_eq!(alice.get(&format!("/api/tasks/{theirs}")).status, 404);
    let recalled = call(&alice, "recall", json!({"query": "saffron"}));
    assert_eq!(recalled["structuredContent"]["results"], json!([]));
    let recalled = call(&alice, "recall", json!({"query": "cumin"}));
    assert_eq!(recalled["structuredContent"]["results"][0]["task_id"], mine);
}

#[test]
fn wait_for_task_returns_when_another_agent_completes_it() {
    let server = TestServer::start();
    let (lead, _) = server.agent("lead", "coordinator");
    let (worker, _) = server.agent("worker", "worker");
    let id =
        id_of(&lead.create_task(json!({"content": "await me", "assigned_to_agent_id": "worker"})));
    let waiter = {
        let lead = lead.clone();
        std::thread::spawn(move || {
            call(
                &lead,
                "wait_for_task",
                json!({"task_id": id, "timeout_seconds": 30}),
            )
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    worker.post(
        &format!("/api/tasks/{id}/complete"),
        json!({"metadata": {"answer": 42}}),
    );
    let r = waiter.join().unwrap();
    assert_eq!(r["structuredContent"]["finished"], true, "{r}");
    assert_eq!(r["structuredContent"]["task"]["context"]["answer"], 42);
    // A timeout is not an error: it says so.
    let other = id_of(&lead.create_task(json!({"content": "never done"})));
    let r = call(
        &lead,
        "wait_for_task",
        json!({"task_id": other, "timeout_seconds": 1}),
    );
    assert_eq!(r["structuredContent"]["finished"], false);
}

#[test]
fn long_waits_run_as_2025_11_25_tasks() {
    let server = TestServer::start();
    let (lead, _) = server.agent("lead", "coordinator");
    let (worker, _) = server.agent("worker", "worker");
    let id = id_of(
        &lead.create_task(json!({"content": "task-augmented", "assigned_to_agent_id": "worker"})),
    );
    let r = legacy(
        &lead,
        "2025-11-25",
        1,
        "tools/call",
        json!({
        "name": "wait_for_task", "arguments": {"task_id": id}, "task": {"ttl": 60000}}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let task = &r.body["result"]["task"];
    let tid = task["taskId"].as_str().unwrap().to_string();
    assert_eq!(task["status"], "working");
    assert!(task["pollInterval"].is_number() && task["ttl"].is_number());
    let got = legacy(&lead, "2025-11-25", 2, "tasks/get", json!({"taskId": tid}));
    assert_eq!(got.body["result"]["status"], "working");
    let listed = legacy(&lead, "2025-11-25", 3, "tasks/list", json!({}));
    assert_eq!(listed.body["result"]["tasks"][0]["taskId"], tid.as_str());
    // Another credential cannot see it.
    let r = legacy(
        &worker,
        "2025-11-25",
        4,
        "tasks/get",
        json!({"taskId": tid}),
    );
    assert_eq!(error_code(&r), -32602);
    worker.post(&format!("/api/tasks/{id}/complete"), json!({}));
    let result = legacy(
        &lead,
        "2025-11-25",
        5,
        "tasks/result",
        json!({"taskId": tid}),
    );
    assert_eq!(
        result.body["result"]["structuredContent"]["finished"], true,
        "{}",
        result.text
    );
    assert_eq!(
        result.body["result"]["_meta"]["io.modelcontextprotocol/related-task"]["taskId"],
        tid.as_str()
    );
    let got = legacy(&lead, "2025-11-25", 6, "tasks/get", json!({"taskId": tid}));
    assert_eq!(got.body["result"]["status"], "completed");
    // Cancelling: a working task goes, a finished one cannot.
    let r = legacy(
        &lead,
        "2025-11-25",
        7,
        "tasks/cancel",
        json!({"taskId": tid}),
    );
    assert_eq!(error_code(&r), -32602);
    let other = id_of(&lead.create_task(json!({"content": "cancel my wait"})));
    let r = legacy(
        &lead,
        "2025-11-25",
        8,
        "tools/call",
        json!({
        "name": "wait_for_task", "arguments": {"task_id": other}, "task": {}}),
    );
    let tid = r.body["result"]["task"]["taskId"]
        .as_str()
        .unwrap()
        .to_string();
    let r = legacy(
        &lead,
        "2025-11-25",
        9,
        "tasks/cancel",
        json!({"taskId": tid}),
    );
    assert_eq!(r.body["result"]["status"], "cancelled", "{}", r.text);
    // A tool that cannot run as a task, and an older revision.
    let r = legacy(
        &lead,
        "2025-11-25",
        10,
        "tools/call",
        json!({"name": "get_stats", "arguments": {}, "task": {}}),
    );
    assert_eq!(error_code(&r), -32601);
    let r = legacy(
        &lead,
        "2025-06-18",
        11,
        "tools/call",
        json!({
        "name": "wait_for_task", "arguments": {"task_id": other}, "task": {}}),
    );
    assert_eq!(error_code(&r), -32602);
}

#[test]
fn long_waits_run_as_extension_tasks_for_clients_that_declare_it() {
    let server = TestServer::start();
    let (lead, _) = server.agent("lead", "coordinator");
    let (worker, _) = server.agent("worker", "worker");
    let id =
        id_of(&lead.create_task(json!({"content": "extension", "assigned_to_agent_id": "worker"})));
    let caps = json!({"extensions": {"io.modelcontextprotocol/tasks": {}}});
    let r = modern(
        &lead,
        1,
        "tools/call",
        json!({"name": "wait_for_task", "arguments": {"task_id": id}}),
        caps.clone(),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["result"]["resultType"], "task");
    let tid = r.body["result"]["taskId"].as_str().unwrap().to_string();
    assert!(
        r.body["result"]["ttlMs"].is_number() && r.body["result"]["pollIntervalMs"].is_number()
    );
    worker.post(&format!("/api/tasks/{id}/complete"), json!({}));
    let mut status = Value::Null;
    for _ in 0..100 {
        let got = modern(&lead, 2, "tasks/get", json!({"taskId": tid}), caps.clone());
        status = got.body["result"].clone();
        if status["status"] == "completed" {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!(status["resultType"], "complete");
    assert_eq!(status["result"]["structuredContent"]["finished"], true);
    // Without the extension the same call blocks and answers directly
    // (the task is finished already, so it returns at once).
    let r = call(&lead, "wait_for_task", json!({"task_id": id}));
    assert_eq!(r["structuredContent"]["finished"], true);
}
