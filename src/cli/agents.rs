//! `delega agents …`: list, create, rotate-key, delete (SPEC §3–§4).

use anyhow::Result;
use clap::Subcommand;
use serde_json::{json, Map, Value};

use super::output::{details, print_table, table, text, when, Out};
use super::Connection;

#[derive(Subcommand, Debug)]
pub enum AgentCommand {
    /// List agents with role, activity and open tasks (admins and
    /// coordinators).
    List,
    /// Create an agent and print its key (shown only this once).
    Create {
        /// Unique name, a slug such as research-agent.
        name: String,
        /// Display name.
        #[arg(long)]
        display_name: Option<String>,
        /// What the agent does.
        #[arg(long)]
        description: Option<String>,
        /// worker (default), coordinator or admin.
        #[arg(long)]
        role: Option<String>,
        /// Print only the key (for scripts: KEY=$(delega agents create x -q)).
        #[arg(long, short = 'q')]
        quiet: bool,
    },
    /// Replace an agent's key and print the new one (the old one stops
    /// working).
    RotateKey {
        /// The agent's name or id.
        agent: String,
        /// Print only the new key.
        #[arg(long, short = 'q')]
        quiet: bool,
    },
    /// Delete an agent (refused while it has open tasks or claims).
    Delete {
        /// The agent's name or id.
        agent: String,
    },
}

/// Runs one `agents` subcommand.
pub fn run(conn: &Connection, cmd: AgentCommand) -> Result<()> {
    let client = conn.client();
    let out = conn.out();
    match cmd {
        AgentCommand::List => {
            let agents = client.agents()?;
            if out.json(&Value::Array(agents.clone())) {
                return Ok(());
            }
            if agents.is_empty() {
                println!("No agents.");
                return Ok(());
            }
            let mut t = table(&[
                "ID",
                "NAME",
                "DISPLAY NAME",
                "ROLE",
                "ACTIVE",
                "OPEN",
                "KEY",
                "CREATED",
            ]);
            for a in &agents {
                t.add_row(vec![
                    text(&a["id"]),
                    text(&a["name"]),
                    text(&a["display_name"]),
                    text(&a["role"]),
                    yes_no(&a["active"]),
                    text(&a["open_task_count"]),
                    format!("{}…", text(&a["key_prefix"])),
                    when(&a["created_at"]),
                ]);
            }
            print_table(&t);
            Ok(())
        }
        AgentCommand::Create {
            name,
            display_name,
            description,
            role,
            quiet,
        } => {
            let mut body = Map::new();
            body.insert("name".into(), json!(name));
            for (k, v) in [
                ("display_name", display_name),
                ("description", description),
                ("role", role),
            ] {
                if let Some(v) = v {
                    body.insert(k.into(), json!(v));
                }
            }
            let agent = client.create_agent(&Value::Object(body))?;
            print_with_key(out, quiet, "Created", &agent);
            Ok(())
        }
        AgentCommand::RotateKey { agent, quiet } => {
            let agent = client.rotate_key(&agent)?;
            print_with_key(out, quiet, "Rotated the key of", &agent);
            Ok(())
        }
        AgentCommand::Delete { agent } => {
            let answer = client.delete_agent(&agent)?;
            if !out.json(&answer) {
                println!("Deleted agent {agent} (id {}).", text(&answer["id"]));
            }
            Ok(())
        }
    }
}

/// An agent with its new `api_key`, which the server never shows again.
/// With `quiet`, the key alone.
fn print_with_key(out: Out, quiet: bool, verb: &str, agent: &Value) {
    if out.json(agent) {
        return;
    }
    if quiet {
        println!("{}", text(&agent["api_key"]));
        return;
    }
    println!(
        "{verb} agent {} (id {}, {}).",
        text(&agent["name"]),
        text(&agent["id"]),
        text(&agent["role"])
    );
    println!();
    print_table(&details(vec![("API key", text(&agent["api_key"]))]));
    println!();
    println!("The key is shown only this once: give it to the agent as DELEGA_AGENT_KEY.");
}

fn yes_no(v: &Value) -> String {
    match v.as_bool() {
        Some(true) => "yes".into(),
        Some(false) => "no".into(),
        None => "-".into(),
    }
}
