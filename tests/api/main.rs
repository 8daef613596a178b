//! The API over real HTTP: each test starts a server in this process
//! (`helpers::TestServer`) on an ephemeral port with a fresh temporary
//! database, and talks to it as a client would. Tests that need the real
//! binary (signals, SIGKILL, the first-start token, config errors) are in
//! `tests/process.rs`.

mod helpers;

mod agents;
mod auth;
mod bad_input;
mod claims;
mod client_compat;
mod context;
mod delegation;
mod dependencies;
mod dialects;
mod event_log;
mod events;
mod mcp;
mod openapi;
mod operator;
mod projects_stats;
mod queue;
mod readme;
mod regressions;
mod render_cache;
mod scoping;
mod security;
mod smoke;
mod task_lists;
mod tasks;
mod webhooks;
