//! `delega recurrences …`: list, create, delete (SPEC §10).

use anyhow::Result;
use clap::Subcommand;
use serde_json::{json, Map, Value};

use super::output::{id_ref, print_table, table, text, truncate, when};
use super::tasks::parse_id;
use super::Connection;

// Parsed once per process: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum RecurrenceCommand {
    /// List recurring tasks and when each is next due.
    List,
    /// Create a recurring task.
    Create {
        /// The content of each task it spawns.
        content: String,
        /// daily, weekly, monthly or yearly.
        #[arg(long)]
        rule: String,
        /// Every N days/weeks/months/years (default 1).
        #[arg(long)]
        interval: Option<i64>,
        /// IANA time zone of the schedule (default UTC), e.g. Europe/Berlin.
        #[arg(long)]
        timezone: Option<String>,
        /// Local time of day the task falls due, HH:MM.
        #[arg(long, value_name = "HH:MM")]
        time: Option<String>,
        /// Day of the month (1–31) for monthly and yearly rules.
        #[arg(long)]
        anchor_day: Option<i64>,
        /// Month (1–12) for yearly rules.
        #[arg(long)]
        anchor_month: Option<i64>,
        /// Weekday for weekly rules (0 = Monday … 6 = Sunday).
        #[arg(long)]
        anchor_weekday: Option<i64>,
        /// Assign each instance to this agent (name or id).
        #[arg(long)]
        assign: Option<String>,
        /// Priority of each instance (1–4).
        #[arg(long, short = 'p')]
        priority: Option<i64>,
        /// Label; repeatable.
        #[arg(long, short = 'l')]
        label: Vec<String>,
        /// Description of each instance.
        #[arg(long, short = 'd')]
        description: Option<String>,
    },
    /// Delete a recurrence (tasks it already spawned stay).
    Delete {
        #[arg(value_parser = parse_id)]
        id: i64,
    },
}

/// Runs one `recurrences` subcommand.
pub fn run(conn: &Connection, cmd: RecurrenceCommand) -> Result<()> {
    let client = conn.client();
    let out = conn.out();
    match cmd {
        RecurrenceCommand::List => {
            let list = client.recurrences()?;
            if out.json(&Value::Array(list.clone())) {
                return Ok(());
            }
            if list.is_empty() {
                println!("No recurrences.");
                return Ok(());
            }
            let mut t = table(&[
                "ID",
                "TASK",
                "EVERY",
                "AT",
                "TIME ZONE",
                "NEXT DUE",
                "ACTIVE",
            ]);
            for r in &list {
                t.add_row(vec![
                    id_ref(&r["id"]),
                    truncate(&text(&r["content"]), 50),
                    every(r),
                    text(&r["time_of_day"]),
                    text(&r["timezone"]),
                    when(&r["next_due_at"]),
                    if r["active"].as_bool() == Some(true) {
                        "yes".into()
                    } else {
                        "no".into()
                    },
                ]);
            }
            print_table(&t);
            Ok(())
        }
        RecurrenceCommand::Create {
            content,
            rule,
            interval,
            timezone,
            time,
            anchor_day,
            anchor_month,
            anchor_weekday,
            assign,
            priority,
            label,
            description,
        } => {
            let mut body = Map::new();
            body.insert("content".into(), json!(content));
            body.insert("rule_type".into(), json!(rule));
            let mut set = |k: &str, v: Option<Value>| {
                if let Some(v) = v {
                    body.insert(k.into(), v);
                }
            };
            set("interval", interval.map(Value::from));
            set("timezone", timezone.map(Value::from));
            set("time_of_day", time.map(Value::from));
            set("anchor_day", anchor_day.map(Value::from));
            set("anchor_month", anchor_month.map(Value::from));
            set("anchor_weekday", anchor_weekday.map(Value::from));
            set("assigned_to_agent_id", assign.map(Value::from));
            set("priority", priority.map(Value::from));
            set("labels", (!label.is_empty()).then(|| json!(label)));
            set("description", description.map(Value::from));
            let r = client.create_recurrence(&Value::Object(body))?;
            if !out.json(&r) {
                println!(
                    "Created recurrence {} {:?}: {} at {} {}; next due {}.",
                    id_ref(&r["id"]),
                    text(&r["content"]),
                    every(&r),
                    text(&r["time_of_day"]),
                    text(&r["timezone"]),
                    text(&r["next_due_at"])
                );
            }
            Ok(())
        }
        RecurrenceCommand::Delete { id } => {
            let answer = client.delete_recurrence(id)?;
            if !out.json(&answer) {
                println!("Deleted recurrence #{id}.");
            }
            Ok(())
        }
    }
}

/// `daily`, `weekly on Mon`, `every 2 months on day 31`.
fn every(r: &Value) -> String {
    let (adverb, unit) = match r["rule_type"].as_str() {
        Some("daily") => ("daily", "days"),
        Some("weekly") => ("weekly", "weeks"),
        Some("monthly") => ("monthly", "months"),
        Some("yearly") => ("yearly", "years"),
        _ => return text(&r["rule_type"]),
    };
    let mut s = match r["interval"].as_i64() {
        Some(n) if n > 1 => format!("every {n} {unit}"),
        _ => adverb.to_string(),
    };
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    match r["rule_type"].as_str() {
        Some("weekly") => {
            if let Some(d) = r["anchor_weekday"]
                .as_u64()
                .and_then(|d| DAYS.get(d as usize))
            {
                s.push_str(&format!(" on {d}"));
            }
        }
        Some("monthly") => {
            if let Some(d) = r["anchor_day"].as_i64() {
                s.push_str(&format!(" on day {d}"));
            }
        }
        Some("yearly") => {
            if let (Some(m), Some(d)) = (r["anchor_month"].as_i64(), r["anchor_day"].as_i64()) {
                s.push_str(&format!(" on {m:02}-{d:02}"));
            }
        }
        _ => {}
    }
    s
}
