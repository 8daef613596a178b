//! `GET /health`: answers without credentials.

use actix_web::HttpResponse;
use serde::Serialize;

use super::State;
use crate::domain::clock;

/// The answer of `GET /health`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    /// Always true.
    pub ok: bool,
    /// `ok`.
    pub status: &'static str,
    /// `delega`.
    pub service: &'static str,
    pub version: &'static str,
    pub timestamp: String,
    pub uptime_seconds: u64,
}

#[utoipa::path(
    get,
    path = "/health",
    tag = "meta",
    security(()),
    responses((status = 200, description = "The server is up", body = Health))
)]
pub async fn get(state: State) -> HttpResponse {
    HttpResponse::Ok().json(Health {
        ok: true,
        status: "ok",
        service: "delega",
        version: env!("CARGO_PKG_VERSION"),
        timestamp: clock::now_string(),
        uptime_seconds: state.started.elapsed().as_secs(),
    })
}
