//! `GET /health`: answers without credentials.

use actix_web::HttpResponse;
use serde_json::json;

use super::State;
use crate::domain::clock;

pub async fn get(state: State) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "ok": true,
        "status": "ok",
        "service": "delega",
        "version": env!("CARGO_PKG_VERSION"),
        "timestamp": clock::now_string(),
        "uptime_seconds": state.started.elapsed().as_secs(),
    }))
}
