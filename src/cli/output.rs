//! How the client commands print: aligned tables (comfy-table) for
//! people, JSON with `--json` for scripts, and one clear line on stderr
//! for an error, with an exit code scripts can branch on:
//!
//! | code | meaning |
//! |------|---------|
//! | 0 | success |
//! | 1 | the server refused (an API error: 401, 403, 404, 409, 422, …) or answered nonsense |
//! | 2 | usage error (unknown flag, missing argument, bad `--context` JSON) |
//! | 3 | the server could not be reached (refused, unknown host, timeout) |

use comfy_table::{presets, Cell, ContentArrangement, LineStyle, Table, TableStyle};
use serde_json::Value;

use crate::client::ClientError;

/// Success.
pub const EXIT_OK: i32 = 0;
/// The API answered with an error, or with something it should not.
pub const EXIT_API: i32 = 1;
/// The command line was wrong (clap exits with 2 as well).
pub const EXIT_USAGE: i32 = 2;
/// The server could not be reached.
pub const EXIT_CONNECTION: i32 = 3;

/// A command line that parsed but makes no sense (bad JSON in
/// `--context`, `key=value` without `=`): exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// The exit code for an error a command returned.
pub fn exit_code(err: &anyhow::Error) -> i32 {
    if let Some(e) = err.downcast_ref::<ClientError>() {
        return match e {
            ClientError::Connection { .. } => EXIT_CONNECTION,
            ClientError::Api { .. } | ClientError::Decode { .. } => EXIT_API,
        };
    }
    if err.downcast_ref::<UsageError>().is_some() {
        return EXIT_USAGE;
    }
    EXIT_API
}

/// The one-line message for an error.
pub fn message(err: &anyhow::Error) -> String {
    match err.downcast_ref::<ClientError>() {
        Some(e) => client_message(e),
        None => format!("{err:#}"),
    }
}

/// Prints the error's message on stderr and returns its exit code.
pub fn report(err: &anyhow::Error) -> i32 {
    eprintln!("delega: {}", message(err));
    exit_code(err)
}

/// A sentence for each kind of failure, with the server's own message
/// (the `error` of its JSON body) and what to do about it.
pub fn client_message(e: &ClientError) -> String {
    match e {
        ClientError::Connection { url, reason } => format!(
            "cannot connect to the Delega server at {} ({reason}); is `delega serve` running \
             there? Set DELEGA_API_URL or --url to use another server",
            server_of(url)
        ),
        ClientError::Api {
            status,
            code,
            message,
            ..
        } => match status {
            401 => format!(
                "401 unauthorized: {message} (set DELEGA_AGENT_KEY, DELEGA_API_KEY or --key \
                 to a valid agent key or the project token)"
            ),
            403 => format!("403 forbidden: {message}"),
            404 => format!("404 not found: {message}"),
            409 if code != "conflict" => format!("409 conflict ({code}): {message}"),
            409 => format!("409 conflict: {message}"),
            422 => format!("422 invalid input: {message}"),
            429 => format!("429 rate limited: {message}"),
            _ => format!("{status} {code}: {message}"),
        },
        ClientError::Decode { url, reason } => {
            format!("unexpected answer from {url}: {reason}; is that a Delega server?")
        }
    }
}

/// `http://host:port` of a URL (the part a person recognises).
fn server_of(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(i) => &url[..after_scheme + i],
        None => url,
    }
}

/// The output mode of one command.
#[derive(Debug, Clone, Copy)]
pub struct Out {
    /// `--json`: print the server's JSON instead of tables.
    pub json: bool,
}

impl Out {
    /// With `--json` prints `value` and returns true: the caller prints
    /// its table only when this is false.
    pub fn json(&self, value: &Value) -> bool {
        if self.json {
            print_json(value);
        }
        self.json
    }
}

/// Pretty JSON on stdout.
pub fn print_json(value: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
    );
}

/// Header underlined, columns separated by space, no borders: easy on
/// the eye, and copy-pastes cleanly.
const PLAIN: TableStyle =
    TableStyle::new().header_separator(LineStyle::none().fill('─').junction('─'));

/// A table with a header row, columns aligned, no borders.
pub fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_style(PLAIN)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header.iter().map(Cell::new));
    flush_left(&mut t);
    t
}

/// A two-column `field  value` table without header or lines.
pub fn details(rows: Vec<(&str, String)>) -> Table {
    let mut t = Table::new();
    t.load_style(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled);
    for (k, v) in rows {
        t.add_row(vec![Cell::new(k), Cell::new(v)]);
    }
    flush_left(&mut t);
    t
}

/// Prints a table, trimming the padding comfy-table leaves at line ends.
pub fn print_table(t: &Table) {
    for line in t.to_string().lines() {
        println!("{}", line.trim_end());
    }
}

/// No padding before the first column: tables start at the margin.
fn flush_left(t: &mut Table) {
    if let Some(c) = t.column_mut(0) {
        c.set_padding((0, 1));
    }
}

/// A JSON value as a table cell: strings bare, null as `-`.
pub fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) if s.is_empty() => "-".into(),
        Value::String(s) => s.clone(),
        Value::Array(a) if a.is_empty() => "-".into(),
        Value::Array(a) => a.iter().map(text).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

/// At most `max` characters, with `…` when cut; one line.
pub fn truncate(s: &str, max: usize) -> String {
    let one_line: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if one_line.chars().count() <= max {
        return one_line;
    }
    let mut out: String = one_line.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// `#42`, or `-` for no id.
pub fn id_ref(v: &Value) -> String {
    match v.as_i64() {
        Some(id) => format!("#{id}"),
        None => "-".into(),
    }
}

/// An RFC 3339 timestamp shortened for a table: `2026-03-17 10:00`.
pub fn when(v: &Value) -> String {
    match v.as_str() {
        Some(s) if s.len() >= 16 => s[..16].replace('T', " "),
        Some(s) => s.to_string(),
        None => "-".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_of_keeps_scheme_host_and_port() {
        assert_eq!(
            server_of("http://127.0.0.1:18890/api/tasks?x=1"),
            "http://127.0.0.1:18890"
        );
        assert_eq!(server_of("http://h"), "http://h");
    }

    #[test]
    fn truncate_cuts_on_characters() {
        assert_eq!(truncate("héllo wörld", 5), "héll…");
        assert_eq!(truncate("a\nb", 5), "a b");
    }
}
