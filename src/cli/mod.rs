//! The `delega` command line: the server (`serve`, `token rotate`,
//! `backup`), the terminal client of SPEC §11 (`tasks`, `agents`,
//! `webhooks`, `recurrences`, `fleet`, `stats`, `whoami`, `status`,
//! `init`) and the stdio MCP bridge (`mcp`).
//!
//! The client commands talk HTTP to a server through
//! [`crate::client::Client`] — the same client the integration tests
//! use. They print aligned tables, or JSON with `--json`, and exit with
//! the codes of [`output`]: 0 ok, 1 the API refused, 2 usage, 3 the
//! server could not be reached.

pub mod agents;
pub mod mcp_bridge;
pub mod misc;
pub mod output;
pub mod recurrences;
pub mod tasks;
pub mod webhooks;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::app::{self, Application};
use crate::client::{Client, Credential, DEFAULT_URL};
use crate::config::{Config, Overrides};

pub use output::{exit_code, report, UsageError};

#[derive(Parser, Debug)]
#[command(
    name = "delega",
    version,
    about = "Coordination server for teams of AI agents, and its terminal client",
    after_help = "Client commands read DELEGA_API_URL (default http://127.0.0.1:18890) and \
                  DELEGA_AGENT_KEY or DELEGA_API_KEY.\n\
                  Exit codes: 0 ok, 1 the server refused (API error), 2 usage error, \
                  3 the server could not be reached."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Where the server is and who is asking: shared by every client command.
/// The flags are global, so they may come before or after the subcommand
/// (`delega tasks --json list`, `delega tasks list --json`).
#[derive(Args, Debug, Clone)]
pub struct Connection {
    /// Server URL.
    #[arg(long, global = true, env = "DELEGA_API_URL", default_value = DEFAULT_URL, value_name = "URL")]
    pub url: String,
    /// Agent key (dlg_…, sent as X-Agent-Key) or project token (dlp_…,
    /// sent as a Bearer token). Default: $DELEGA_AGENT_KEY, else
    /// $DELEGA_API_KEY.
    #[arg(long, global = true, value_name = "KEY")]
    pub key: Option<String>,
    /// Print JSON instead of tables (for scripts).
    #[arg(long, global = true)]
    pub json: bool,
}

impl Connection {
    /// The secret in use: `--key`, else `DELEGA_AGENT_KEY`, else
    /// `DELEGA_API_KEY` (blank values count as unset).
    pub fn secret(&self) -> Option<String> {
        let env = |name: &str| std::env::var(name).ok();
        [
            self.key.clone(),
            env("DELEGA_AGENT_KEY"),
            env("DELEGA_API_KEY"),
        ]
        .into_iter()
        .flatten()
        .map(|s| s.trim().to_string())
        .find(|s| !s.is_empty())
    }

    /// A client for this server and credential.
    pub fn client(&self) -> Client {
        let credential = self
            .secret()
            .map(|s| Credential::from_secret(&s))
            .unwrap_or(Credential::None);
        Client::new(&self.url, credential)
    }

    /// How to print.
    pub fn out(&self) -> output::Out {
        output::Out { json: self.json }
    }
}

/// Every setting of `delega serve` (SPEC §1): the config file's keys with
/// the environment variables that override them; config.example.toml
/// documents each.
const SERVE_SETTINGS: &str =
    "Settings (config file key / environment variable; flags win over both):
  host, port, db_path           DELEGA_HOST, DELEGA_PORT, DELEGA_DB_PATH (or --bind, --port, --db)
  require_auth                  DELEGA_REQUIRE_AUTH
  cors_origins                  DELEGA_CORS_ORIGINS (comma-separated)
  allow_private_webhooks        DELEGA_ALLOW_PRIVATE_WEBHOOKS
  project_token                 DELEGA_PROJECT_TOKEN
  trusted_proxy_ips             DELEGA_TRUSTED_PROXY_IPS (comma-separated)
  max_body_bytes                DELEGA_MAX_BODY_BYTES
  max_context_bytes
  rate_limit_per_minute         DELEGA_RATE_LIMIT_PER_MINUTE
  metrics_public                DELEGA_METRICS_PUBLIC
  metrics_bind                  DELEGA_METRICS_BIND
  workers, log_level            DELEGA_LOG_LEVEL
  [queue] min_lease_seconds     DELEGA_MIN_LEASE_SECONDS
  [webhooks] retry_schedule_seconds   DELEGA_WEBHOOK_RETRY_SCHEDULE_SECONDS
  [webhooks] disable_after_hours      DELEGA_WEBHOOK_DISABLE_AFTER_HOURS
  [webhooks] dispatcher_threads, timeout_seconds, max_response_bytes
The file: --config or DELEGA_CONFIG; every key with its default is in config.example.toml.";

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the server.
    #[command(after_help = SERVE_SETTINGS)]
    Serve {
        /// TOML configuration file (also DELEGA_CONFIG).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Address to listen on.
        #[arg(long)]
        bind: Option<String>,
        /// Port to listen on (0 = any free port).
        #[arg(long)]
        port: Option<u16>,
        /// SQLite database file.
        #[arg(long)]
        db: Option<PathBuf>,
    },
    /// Manage the project token (offline).
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
    /// Write a consistent copy of the database (safe while serving).
    Backup {
        /// The database to copy.
        #[arg(long)]
        db: PathBuf,
        /// Where to write the copy (must not exist).
        out: PathBuf,
    },
    /// Tasks: list, create, show, update, complete, fail, delete,
    /// delegate, chain, context, claim, release, comment, watch.
    Tasks {
        #[command(flatten)]
        conn: Connection,
        #[command(subcommand)]
        action: tasks::TaskCommand,
    },
    /// Agents: list, create, rotate-key, delete (admins).
    Agents {
        #[command(flatten)]
        conn: Connection,
        #[command(subcommand)]
        action: agents::AgentCommand,
    },
    /// Webhooks: list, create, delete, deliveries.
    Webhooks {
        #[command(flatten)]
        conn: Connection,
        #[command(subcommand)]
        action: webhooks::WebhookCommand,
    },
    /// Recurring tasks: list, create, delete.
    Recurrences {
        #[command(flatten)]
        conn: Connection,
        #[command(subcommand)]
        action: recurrences::RecurrenceCommand,
    },
    /// What needs a person: abandoned claims, silent holders, errored or
    /// waiting sessions, overdue work, delegation loops, failed inputs.
    Fleet {
        #[command(flatten)]
        conn: Connection,
    },
    /// Task counts (what your `tasks list` would count).
    Stats {
        #[command(flatten)]
        conn: Connection,
    },
    /// Who the credential in use is.
    Whoami {
        #[command(flatten)]
        conn: Connection,
    },
    /// Is the server up, is the credential accepted, how much work is open.
    Status {
        #[command(flatten)]
        conn: Connection,
    },
    /// Print the MCP configuration for common coding assistants (HTTP and
    /// stdio forms) for this server.
    Init {
        #[command(flatten)]
        conn: Connection,
        #[command(flatten)]
        args: misc::InitArgs,
    },
    /// The stdio MCP server for coding assistants: forwards each JSON-RPC
    /// message from stdin to the server's /mcp and writes the answers to
    /// stdout.
    Mcp {
        /// Server URL.
        #[arg(long, env = "DELEGA_API_URL", default_value = DEFAULT_URL, value_name = "URL")]
        url: String,
        /// Agent key or project token. Default: $DELEGA_AGENT_KEY, else
        /// $DELEGA_API_KEY.
        #[arg(long, value_name = "KEY")]
        key: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum TokenAction {
    /// Replace the project token with a new one and print it.
    Rotate {
        #[arg(long)]
        db: PathBuf,
    },
}

/// Runs a parsed command line. Errors carry what [`exit_code`] needs.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    if cli.command.is_client() {
        die_quietly_on_closed_pipe();
    }
    match cli.command {
        Command::Serve {
            config,
            bind,
            port,
            db,
        } => serve(Overrides {
            config,
            host: bind,
            port,
            db_path: db,
        }),
        Command::Token {
            action: TokenAction::Rotate { db },
        } => {
            let token = app::rotate_project_token(&db)?;
            println!(
                "New project token (shown once; the old one no longer works):\n\n    {token}\n"
            );
            println!("Restart a running server for it to take effect.");
            Ok(())
        }
        Command::Backup { db, out } => backup(&db, &out),
        Command::Tasks { conn, action } => tasks::run(&conn, action),
        Command::Agents { conn, action } => agents::run(&conn, action),
        Command::Webhooks { conn, action } => webhooks::run(&conn, action),
        Command::Recurrences { conn, action } => recurrences::run(&conn, action),
        Command::Fleet { conn } => misc::fleet(&conn),
        Command::Stats { conn } => misc::stats(&conn),
        Command::Whoami { conn } => misc::whoami(&conn),
        Command::Status { conn } => misc::status(&conn),
        Command::Init { conn, args } => misc::init(&conn, &args),
        Command::Mcp { url, key } => {
            let conn = Connection {
                url,
                key,
                json: false,
            };
            mcp_bridge::run(conn.client())
        }
    }
}

impl Command {
    /// Whether this is a terminal-client command (not the server, the
    /// offline maintenance commands or the MCP bridge).
    fn is_client(&self) -> bool {
        !matches!(
            self,
            Command::Serve { .. }
                | Command::Token { .. }
                | Command::Backup { .. }
                | Command::Mcp { .. }
        )
    }
}

/// `delega tasks list | head -3` ends quietly when `head` stops reading,
/// like any Unix tool, instead of panicking on the broken pipe: SIGPIPE
/// back to its default action. Only for the client commands; the server
/// keeps Rust's default (ignored), so a closed socket is an error it
/// handles, not its death.
fn die_quietly_on_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: called at startup before any other thread exists; it only
    // changes this process's disposition of one signal.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn init_logging(level: &str) {
    let env = env_logger::Env::default().default_filter_or(level);
    let _ = env_logger::Builder::from_env(env)
        .format_target(false)
        .try_init();
}

fn serve(flags: Overrides) -> anyhow::Result<()> {
    let config = Config::load(&flags)?;
    init_logging(&config.log_level);
    actix_web::rt::System::new().block_on(async move {
        let app = Application::build(config)?;
        if let Some(token) = &app.new_project_token {
            println!(
                "Generated the project token (shown only this once; only its hash is stored):"
            );
            println!();
            println!("    {token}");
            println!();
            println!(
                "Use it as an administrator: curl -H 'Authorization: Bearer {token}' {}/api/agents",
                app.address()
            );
            println!("Create agents with it, then give each agent its own dlg_ key.");
        }
        println!("delega listening on {}", app.address());
        println!("dashboard: {}/", app.address());
        app.run_until_stopped(crate::app::wait_for_signal()).await?;
        log::info!("delega stopped");
        Ok(())
    })
}

fn backup(db: &std::path::Path, out: &std::path::Path) -> anyhow::Result<()> {
    if out.exists() {
        anyhow::bail!("{} already exists; choose a new file", out.display());
    }
    if !db.exists() {
        anyhow::bail!("no database at {}", db.display());
    }
    // A plain connection, not `store::open_connection`: `VACUUM INTO` would
    // take a pending `page_size` from it, and a backup keeps the source's.
    let conn = rusqlite::Connection::open(db)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.execute("VACUUM INTO ?1", [out.to_string_lossy()])?;
    println!("backed up {} to {}", db.display(), out.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        // Catches, among others, a subcommand argument whose id collides
        // with a global flag (a positional `url` would swallow `--url`).
        super::Cli::command().debug_assert();
    }
}
