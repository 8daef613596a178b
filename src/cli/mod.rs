//! The `delega` command line.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::app::{self, Application};
use crate::config::{Config, Overrides};

#[derive(Parser, Debug)]
#[command(
    name = "delega",
    version,
    about = "Coordination server for teams of AI agents"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the server.
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
}

#[derive(Subcommand, Debug)]
pub enum TokenAction {
    /// Replace the project token with a new one and print it.
    Rotate {
        #[arg(long)]
        db: PathBuf,
    },
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
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
    let conn = rusqlite::Connection::open(db)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.execute("VACUUM INTO ?1", [out.to_string_lossy()])?;
    println!("backed up {} to {}", db.display(), out.display());
    Ok(())
}
