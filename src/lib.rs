//! Delega: a self-hosted coordination server for teams of AI agents.
//!
//! - [`api`]: HTTP resources, mounted under `/api` and `/v1`
//! - [`ops`]: the operations layer, one front door for every operation
//! - [`mcp`]: the Model Context Protocol (both eras), its tools calling [`ops`]
//! - [`store`]: SQLite storage (one writer thread, pooled readers)
//! - [`hub`]: tells streams and the dispatcher about commits; [`webhooks`]: signed delivery
//! - [`domain`]: roles, keys, input rules; [`config`]: configuration
//! - [`dashboard`]: the web dashboard's embedded assets; [`metrics`]: Prometheus
//! - [`cli`]: the `delega` command; [`client`]: the blocking HTTP client it
//!   and the integration tests share

pub mod api;
pub mod app;
pub mod cli;
pub mod client;
pub mod config;
pub mod dashboard;
pub mod domain;
pub mod error;
pub mod hub;
pub mod mcp;
pub mod metrics;
pub mod ops;
pub mod scheduler;
pub mod store;
pub mod webhooks;
