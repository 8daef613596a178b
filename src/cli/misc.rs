//! `delega fleet`, `stats`, `whoami`, `status` and `init`.

use anyhow::Result;
use clap::Args;
use serde_json::{json, Map, Value};

use super::output::{details, id_ref, print_table, table, text, truncate, when, UsageError};
use super::tasks::agent_name;
use super::Connection;
use crate::client::{ClientError, Credential};

/// `delega fleet`: `GET /fleet/attention`, one table per non-empty bucket.
pub fn fleet(conn: &Connection) -> Result<()> {
    let client = conn.client();
    let attention = client.fleet_attention()?;
    if conn.out().json(&attention) {
        return Ok(());
    }
    let count = attention["count"].as_i64().unwrap_or(0);
    if count == 0 {
        println!("Nothing needs attention.");
        return Ok(());
    }
    println!(
        "{count} task{} need{} attention.",
        if count == 1 { "" } else { "s" },
        if count == 1 { "s" } else { "" }
    );
    let Some(buckets) = attention["buckets"].as_object() else {
        return Ok(());
    };
    for (bucket, tasks) in buckets {
        let Some(tasks) = tasks.as_array().filter(|t| !t.is_empty()) else {
            continue;
        };
        println!("\n{} ({}):", bucket.replace('_', " "), tasks.len());
        let mut t = table(&["ID", "TASK", "STATUS", "ASSIGNEE", "SINCE", "WHY"]);
        for task in tasks {
            t.add_row(vec![
                id_ref(&task["id"]),
                truncate(&text(&task["content"]), 40),
                text(&task["status"]),
                agent_name(task, "assigned_to", "assigned_to_agent_id"),
                when(&task["since"]),
                truncate(&text(&task["attention_reason"]), 70),
            ]);
        }
        super::output::print_table(&t);
    }
    Ok(())
}

/// `delega stats`: `GET /stats`.
pub fn stats(conn: &Connection) -> Result<()> {
    let s = conn.client().stats()?;
    if conn.out().json(&s) {
        return Ok(());
    }
    let mut rows = Vec::new();
    for (label, key) in [
        ("open", "total"),
        ("completed", "total_completed"),
        ("all tasks", "total_tasks"),
        ("completed today", "completed_today"),
        ("due today", "due_today"),
        ("overdue", "overdue"),
        ("upcoming", "upcoming"),
        ("agents (active)", "total_agents"),
    ] {
        let value = if key == "total_agents" {
            format!("{} ({})", text(&s[key]), text(&s["active_agents"]))
        } else {
            text(&s[key])
        };
        rows.push((label, value));
    }
    print_table(&details(rows));
    if let Some(by_status) = s["by_status"].as_object().filter(|m| !m.is_empty()) {
        println!("\nBy status:");
        let mut t = table(&["STATUS", "TASKS"]);
        for (status, n) in by_status {
            t.add_row(vec![status.clone(), text(n)]);
        }
        print_table(&t);
    }
    if let Some(by_agent) = s["by_agent"].as_array().filter(|a| !a.is_empty()) {
        println!("\nBy agent:");
        let mut t = table(&["AGENT", "ASSIGNED", "COMPLETED"]);
        for a in by_agent {
            t.add_row(vec![
                text(&a["agent_name"]),
                text(&a["assigned"]),
                text(&a["completed"]),
            ]);
        }
        print_table(&t);
    }
    Ok(())
}

/// `delega whoami`: `GET /agent/me`.
pub fn whoami(conn: &Connection) -> Result<()> {
    let client = conn.client();
    if !client.credential().is_some() {
        return Err(UsageError(
            "no credential: set DELEGA_AGENT_KEY (or DELEGA_API_KEY) or pass --key".into(),
        )
        .into());
    }
    let me = client.me()?;
    if conn.out().json(&me) {
        return Ok(());
    }
    match me["agent"].is_null() {
        true => println!("You are {}.", who(&me)),
        false => println!("You are {}, authenticated with an agent key.", who(&me)),
    }
    if me["agent"].is_object() {
        let mut rows = vec![
            ("id", text(&me["id"])),
            ("name", text(&me["name"])),
            ("display name", text(&me["display_name"])),
            ("role", text(&me["role"])),
        ];
        if me["permissions"].as_array().is_some_and(|p| !p.is_empty()) {
            rows.push(("permissions", text(&me["permissions"])));
        }
        rows.push(("key", format!("{}…", text(&me["key_prefix"]))));
        rows.push(("server", client.base().to_string()));
        println!();
        print_table(&details(rows));
    }
    Ok(())
}

/// Who the caller of `/agent/me` is, in a few words.
fn who(me: &Value) -> String {
    if me["agent"].is_null() {
        return "the project token (administrator, no agent identity)".into();
    }
    format!(
        "{} (agent #{}, {})",
        text(&me["name"]),
        text(&me["id"]),
        text(&me["role"])
    )
}

/// `delega status`: health, then who the credential is, then counts. The
/// server being unreachable exits 3; a refused credential exits 1 after
/// the health line.
pub fn status(conn: &Connection) -> Result<()> {
    let client = conn.client();
    let health = client.health()?;
    let health_json = json!({
        "url": client.base(),
        "ok": health.ok,
        "status": health.status,
        "version": health.version,
        "uptime_seconds": health.uptime_seconds,
    });
    let server_line = format!(
        "{} — {} (delega {}{})",
        client.base(),
        health.status,
        health.version,
        health
            .uptime_seconds
            .map(|s| format!(", up {}", duration(s)))
            .unwrap_or_default()
    );
    if !client.credential().is_some() {
        if !conn
            .out()
            .json(&json!({"server": health_json, "auth": null, "stats": null}))
        {
            print_table(&details(vec![
                ("server", server_line),
                (
                    "credential",
                    "none (set DELEGA_AGENT_KEY or DELEGA_API_KEY, or pass --key)".into(),
                ),
            ]));
        }
        return Ok(());
    }
    let (me, stats) = match client.me().and_then(|me| Ok((me, client.stats()?))) {
        Ok(pair) => pair,
        Err(e @ ClientError::Api { .. }) => {
            if !conn.json {
                print_table(&details(vec![
                    ("server", server_line),
                    ("credential", "refused".into()),
                ]));
            }
            return Err(e.into());
        }
        Err(e) => return Err(e.into()),
    };
    if conn
        .out()
        .json(&json!({"server": health_json, "auth": me, "stats": stats}))
    {
        return Ok(());
    }
    let credential = match client.credential() {
        Credential::AgentKey(k) => format!("agent key {}…", k.get(..12).unwrap_or(k)),
        _ => "bearer token".to_string(),
    };
    print_table(&details(vec![
        ("server", server_line),
        ("credential", format!("{credential} → {}", who(&me))),
        (
            "tasks",
            format!(
                "{} open, {} due today, {} overdue, {} completed today",
                text(&stats["total"]),
                text(&stats["due_today"]),
                text(&stats["overdue"]),
                text(&stats["completed_today"])
            ),
        ),
        (
            "agents",
            format!(
                "{} ({} active)",
                text(&stats["total_agents"]),
                text(&stats["active_agents"])
            ),
        ),
    ]));
    Ok(())
}

/// `1h 02m`, `3m 05s`, `12s`.
fn duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m:02}m")
    } else if m > 0 {
        format!("{m}m {s:02}s")
    } else {
        format!("{s}s")
    }
}

/// Flags of `delega init`.
#[derive(Args, Debug)]
pub struct InitArgs {
    /// Only this assistant: claude-code, claude-desktop, cursor, vscode,
    /// codex.
    #[arg(long, value_parser = ["claude-code", "claude-desktop", "cursor", "vscode", "codex"])]
    assistant: Option<String>,
    /// The name of the server in the assistant's configuration.
    #[arg(long, default_value = "delega")]
    name: String,
    /// Put the key in use into the snippets (default: a placeholder, so
    /// the key does not land in scrollback or shared files).
    #[arg(long)]
    show_key: bool,
}

/// `delega init`: MCP configuration snippets for this server, HTTP (the
/// server's own `/mcp`) and stdio (`delega mcp`).
pub fn init(conn: &Connection, args: &InitArgs) -> Result<()> {
    let client = conn.client();
    let base = client.base().to_string();
    let mcp_url = format!("{base}/mcp");
    let (header, key, key_var) = match (client.credential(), args.show_key) {
        (Credential::Bearer(t), true) => ("Authorization", format!("Bearer {t}"), "DELEGA_API_KEY"),
        (Credential::Bearer(_), false) => (
            "Authorization",
            "Bearer dlp_YOUR_PROJECT_TOKEN".to_string(),
            "DELEGA_API_KEY",
        ),
        (Credential::AgentKey(k), true) => ("X-Agent-Key", k.clone(), "DELEGA_AGENT_KEY"),
        _ => (
            "X-Agent-Key",
            "dlg_YOUR_AGENT_KEY".to_string(),
            "DELEGA_AGENT_KEY",
        ),
    };
    // The env var carries the bare secret; the header value may carry a
    // scheme.
    let secret = key.strip_prefix("Bearer ").unwrap_or(&key).to_string();
    let command = std::env::current_exe()
        .ok()
        .and_then(|p| p.canonicalize().ok())
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "delega".into());
    let name = &args.name;
    let env = json!({ "DELEGA_API_URL": base, key_var: secret });
    let mut headers = Map::new();
    headers.insert(header.into(), json!(key));
    let headers = Value::Object(headers);
    let stdio = json!({ "command": command, "args": ["mcp"], "env": env });

    let assistants: Vec<(&str, &str, Value, String)> = vec![
        (
            "claude-code",
            "Claude Code (run in a terminal)",
            json!({
                "http": format!("claude mcp add --transport http {name} {mcp_url} --header \"{header}: {key}\""),
                "stdio": format!("claude mcp add {name} --env DELEGA_API_URL={base} --env {key_var}={secret} -- {command} mcp"),
            }),
            format!(
                "HTTP:\n  claude mcp add --transport http {name} {mcp_url} --header \"{header}: {key}\"\n\
                 stdio:\n  claude mcp add {name} --env DELEGA_API_URL={base} --env {key_var}={secret} -- {command} mcp"
            ),
        ),
        (
            "claude-desktop",
            "Claude Desktop (claude_desktop_config.json; stdio)",
            json!({ "mcpServers": { name.as_str(): stdio } }),
            String::new(),
        ),
        (
            "cursor",
            "Cursor (~/.cursor/mcp.json or .cursor/mcp.json)",
            json!({
                "http": { "mcpServers": { name.as_str(): { "url": mcp_url, "headers": headers } } },
                "stdio": { "mcpServers": { name.as_str(): stdio } },
            }),
            String::new(),
        ),
        (
            "vscode",
            "VS Code (.vscode/mcp.json)",
            json!({
                "http": { "servers": { name.as_str(): { "type": "http", "url": mcp_url, "headers": headers } } },
                "stdio": { "servers": { name.as_str(): {
                    "type": "stdio", "command": command, "args": ["mcp"], "env": env } } },
            }),
            String::new(),
        ),
        (
            "codex",
            "Codex (~/.codex/config.toml)",
            json!({
                "http": format!(
                    "[mcp_servers.{name}]\nurl = \"{mcp_url}\"\n{}",
                    if header == "Authorization" {
                        format!(
                            "bearer_token_env_var = \"{key_var}\"\n\
                             # Codex reads the token from ${key_var} in its environment."
                        )
                    } else {
                        format!(
                            "env_http_headers = {{ \"X-Agent-Key\" = \"{key_var}\" }}\n\
                             # Codex reads the key from ${key_var} in its environment."
                        )
                    }
                ),
                "stdio": format!(
                    "[mcp_servers.{name}]\ncommand = \"{command}\"\nargs = [\"mcp\"]\nenv = {{ DELEGA_API_URL = \"{base}\", {key_var} = \"{secret}\" }}"
                ),
            }),
            String::new(),
        ),
    ];
    let chosen: Vec<_> = assistants
        .into_iter()
        .filter(|(id, ..)| args.assistant.as_deref().is_none_or(|a| a == *id))
        .collect();
    if conn.json {
        let mut map = Map::new();
        map.insert("url".into(), json!(base));
        map.insert("mcp_url".into(), json!(mcp_url));
        let mut by = Map::new();
        for (id, _, config, _) in &chosen {
            by.insert(id.to_string(), config.clone());
        }
        map.insert("assistants".into(), Value::Object(by));
        super::output::print_json(&Value::Object(map));
        return Ok(());
    }
    println!("MCP configuration for the Delega server at {base}.");
    println!("HTTP: the assistant talks to {mcp_url} directly.");
    println!("stdio: the assistant starts `{command} mcp`, which forwards to the same endpoint.");
    if !args.show_key {
        println!(
            "Replace {} with your key (or run with --show-key to fill in the one in use).",
            if header == "Authorization" {
                "dlp_YOUR_PROJECT_TOKEN"
            } else {
                "dlg_YOUR_AGENT_KEY"
            }
        );
    }
    for (id, title, config, text_form) in chosen {
        println!("\n== {title} ==");
        if !text_form.is_empty() {
            println!("{text_form}");
            continue;
        }
        match (id, config.get("http"), config.get("stdio")) {
            (_, Some(http), Some(stdio)) => {
                println!("HTTP:");
                print_snippet(http);
                println!("stdio:");
                print_snippet(stdio);
            }
            _ => print_snippet(&config),
        }
    }
    Ok(())
}

fn print_snippet(v: &Value) {
    match v {
        Value::String(s) => println!("{s}"),
        other => super::output::print_json(other),
    }
}
