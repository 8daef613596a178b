//! `delega webhooks …`: list, create, delete, deliveries (SPEC §9).

use anyhow::Result;
use clap::Subcommand;
use serde_json::{json, Map, Value};

use super::output::{details, id_ref, print_table, table, text, truncate, when};
use super::tasks::parse_id;
use super::Connection;

#[derive(Subcommand, Debug)]
pub enum WebhookCommand {
    /// List webhooks with their state.
    List,
    /// Register a webhook and print its signing secret (shown only this
    /// once).
    Create {
        /// Where to POST events (https://…).
        #[arg(value_name = "URL")]
        target: String,
        /// Event to send (task.created, task.completed, …); repeatable;
        /// default every event.
        #[arg(long = "event", value_name = "EVENT")]
        events: Vec<String>,
        /// Signing secret (default: a generated whsec_… secret).
        #[arg(long)]
        secret: Option<String>,
        /// Signature scheme: v2 (default, timestamp.body) or v1 (body).
        #[arg(long)]
        signature_version: Option<String>,
        /// A note about the hook.
        #[arg(long)]
        description: Option<String>,
    },
    /// Delete a webhook.
    Delete {
        #[arg(value_parser = parse_id)]
        id: i64,
    },
    /// The delivery log of a webhook, newest first.
    Deliveries {
        #[arg(value_parser = parse_id)]
        id: i64,
        /// At most this many deliveries.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
}

/// Runs one `webhooks` subcommand.
pub fn run(conn: &Connection, cmd: WebhookCommand) -> Result<()> {
    let client = conn.client();
    let out = conn.out();
    match cmd {
        WebhookCommand::List => {
            let hooks = client.webhooks()?;
            if out.json(&Value::Array(hooks.clone())) {
                return Ok(());
            }
            if hooks.is_empty() {
                println!("No webhooks.");
                return Ok(());
            }
            let mut t = table(&["ID", "URL", "EVENTS", "SIG", "SCOPE", "STATE", "FAILURES"]);
            for h in &hooks {
                let state = match (h["active"].as_bool(), h["disabled_reason"].as_str()) {
                    (Some(true), _) => "active".to_string(),
                    (_, Some(r)) => format!("disabled: {}", truncate(r, 40)),
                    _ => "disabled".to_string(),
                };
                t.add_row(vec![
                    id_ref(&h["id"]),
                    truncate(&text(&h["url"]), 50),
                    truncate(&text(&h["events"]), 40),
                    text(&h["signature_version"]),
                    text(&h["scope"]),
                    state,
                    text(&h["consecutive_failures"]),
                ]);
            }
            print_table(&t);
            Ok(())
        }
        WebhookCommand::Create {
            target,
            events,
            secret,
            signature_version,
            description,
        } => {
            let mut body = Map::new();
            body.insert("url".into(), json!(target));
            if !events.is_empty() {
                body.insert("events".into(), json!(events));
            }
            for (k, v) in [
                ("secret", secret),
                ("signature_version", signature_version),
                ("description", description),
            ] {
                if let Some(v) = v {
                    body.insert(k.into(), json!(v));
                }
            }
            let hook = client.create_webhook(&Value::Object(body))?;
            if out.json(&hook) {
                return Ok(());
            }
            println!(
                "Created webhook {} → {} ({} signatures, events: {}).",
                id_ref(&hook["id"]),
                text(&hook["url"]),
                text(&hook["signature_version"]),
                text(&hook["events"])
            );
            if hook["secret"].is_string() {
                println!();
                print_table(&details(vec![("signing secret", text(&hook["secret"]))]));
                println!();
                println!("The secret is shown only this once: keep it to verify deliveries.");
            }
            Ok(())
        }
        WebhookCommand::Delete { id } => {
            let answer = client.delete_webhook(id)?;
            if !out.json(&answer) {
                println!("Deleted webhook #{id}.");
            }
            Ok(())
        }
        WebhookCommand::Deliveries { id, limit } => {
            let list = client.deliveries(id, Some(limit.clamp(1, 1000)))?;
            if out.json(&Value::Array(list.clone())) {
                return Ok(());
            }
            if list.is_empty() {
                println!("No deliveries yet for webhook #{id}.");
                return Ok(());
            }
            let mut t = table(&[
                "ID", "EVENT", "EVENT ID", "ATTEMPT", "HTTP", "OK", "MS", "AT", "ERROR",
            ]);
            for d in &list {
                t.add_row(vec![
                    text(&d["id"]),
                    text(&d["event"]),
                    text(&d["event_id"]),
                    text(&d["attempt"]),
                    text(&d["status_code"]),
                    match d["success"].as_bool() {
                        Some(true) => "✓".to_string(),
                        _ => "✗".to_string(),
                    },
                    text(&d["duration_ms"]),
                    when(&d["created_at"]),
                    truncate(&text(&d["error"]), 50),
                ]);
            }
            print_table(&t);
            Ok(())
        }
    }
}
