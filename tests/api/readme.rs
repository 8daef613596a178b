//! The README's curl quick start runs verbatim against a real server.

use std::process::Command;

use crate::helpers::{readme_block, TestServer};
use serde_json::Value;

#[test]
fn the_readme_quick_start_works_verbatim_and_records_the_three_hops() {
    let script = readme_block("quickstart", "sh");
    let server = TestServer::start();
    // Only the address differs from what a reader runs.
    let script = script.replace("http://localhost:18890", &server.base);

    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .env("DELEGA_TOKEN", &server.token)
        .output()
        .expect("bash");
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let chain: Value =
        serde_json::from_slice(&out.stdout).expect("the last command prints the chain");
    let hops: Vec<(String, String)> = chain["chain"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["from"].as_str().unwrap().into(),
                h["to"].as_str().unwrap().into(),
            )
        })
        .collect();
    let expected = [
        ("orchestrator", "research-agent"),
        ("research-agent", "data-agent"),
        ("data-agent", "research-agent"),
    ];
    assert_eq!(
        hops,
        expected.map(|(a, b)| (a.to_string(), b.to_string())),
        "{chain}"
    );
    assert_eq!(chain["root"]["status"], "completed");
    assert_eq!(chain["root"]["context"]["summary"], "Pricing drove churn");
    assert_eq!(chain["root"]["context"]["top_driver"], "pricing");
}

/// The README's MCP configuration block, parsed as an assistant would.
fn readme_mcp_config() -> Value {
    serde_json::from_str(&readme_block("mcp-config", "json")).expect("the block is JSON")
}

/// Replaces the README's placeholders: the address and the key.
fn localize(text: &str, server: &TestServer, key: &str) -> String {
    text.replace("http://127.0.0.1:18890", &server.base)
        .replace("dlg_YOUR_AGENT_KEY", key)
}

const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"readme","version":"1"}}}"#;
const INITIALIZED: &str = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
const LIST: &str = r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#;

fn create(content: &str) -> String {
    serde_json::json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
        "params": {"name": "create_task", "arguments": {"content": content}}})
    .to_string()
}

/// The answers to requests 2 (tools/list) and 3 (create_task): the tool
/// names and the created task's id.
fn check_answers(answers: &[Value]) -> i64 {
    let by_id = |id: i64| {
        answers
            .iter()
            .find(|a| a["id"] == serde_json::json!(id))
            .unwrap_or_else(|| panic!("no answer to request {id}: {answers:?}"))
    };
    assert!(by_id(1)["result"]["protocolVersion"].is_string());
    let tools: Vec<&str> = by_id(2)["result"]["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(tools.contains(&"create_task") && tools.contains(&"wait_for_task"));
    let created = &by_id(3)["result"];
    assert_eq!(created["isError"], serde_json::json!(false), "{created}");
    created["structuredContent"]["id"]
        .as_i64()
        .or_else(|| created["structuredContent"]["task"]["id"].as_i64())
        .unwrap_or_else(|| panic!("created task id in {created}"))
}

#[test]
fn the_readme_mcp_configuration_works_over_http_and_through_the_stdio_bridge() {
    use std::io::{BufRead, BufReader, Write};
    use std::process::Stdio;

    let server = TestServer::start();
    let (agent, _) = server.agent("assistant", "coordinator");
    let key = agent.key().expect("an agent key").to_string();
    let config = readme_mcp_config();
    let servers = &config["mcpServers"];

    // The HTTP entry: its URL with its headers.
    let http: Value =
        serde_json::from_str(&localize(&servers["delega"].to_string(), &server, &key))
            .expect("json");
    let url = http["url"].as_str().expect("url");
    let mut answers = Vec::new();
    let mut session: Option<String> = None;
    for body in [INITIALIZE, INITIALIZED, LIST, &create("made over MCP HTTP")] {
        let mut req = ureq::post(url)
            .set("Content-Type", "application/json")
            .set("Accept", "application/json, text/event-stream");
        for (name, value) in http["headers"].as_object().expect("headers") {
            req = req.set(name, value.as_str().expect("header value"));
        }
        req = req.set("MCP-Protocol-Version", "2025-06-18");
        if let Some(s) = &session {
            req = req.set("Mcp-Session-Id", s);
        }
        let resp = req.send_string(body).expect("POST /mcp");
        if let Some(s) = resp.header("Mcp-Session-Id") {
            session = Some(s.to_string());
        }
        if resp.status() == 200 {
            let text = resp.into_string().expect("an answer");
            answers.push(serde_json::from_str(&text).expect("a JSON answer"));
        }
    }
    let over_http = check_answers(&answers);
    assert_eq!(
        agent.get(&format!("/api/tasks/{over_http}")).body["content"],
        "made over MCP HTTP"
    );

    // The stdio entry: its command (the binary we built), args and env.
    let stdio: Value = serde_json::from_str(&localize(
        &servers["delega-stdio"].to_string(),
        &server,
        &key,
    ))
    .expect("json");
    assert_eq!(stdio["command"], "delega");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_delega"));
    for arg in stdio["args"].as_array().expect("args") {
        cmd.arg(arg.as_str().expect("arg"));
    }
    cmd.env_clear();
    for (name, value) in stdio["env"].as_object().expect("env") {
        cmd.env(name, value.as_str().expect("env value"));
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn delega mcp");
    {
        let mut stdin = child.stdin.take().expect("stdin");
        for line in [
            INITIALIZE,
            INITIALIZED,
            LIST,
            &create("made through delega mcp"),
        ] {
            writeln!(stdin, "{line}").expect("write");
        }
        // Closing stdin ends the bridge once the answers are out.
    }
    let answers: Vec<Value> = BufReader::new(child.stdout.take().expect("stdout"))
        .lines()
        .map(|l| serde_json::from_str(&l.expect("a line")).expect("a JSON line"))
        .collect();
    assert!(child.wait().expect("wait").success());
    let through_bridge = check_answers(&answers);
    assert_eq!(
        agent.get(&format!("/api/tasks/{through_bridge}")).body["content"],
        "made through delega mcp"
    );
}
