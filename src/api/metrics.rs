//! `GET /metrics` (SPEC §13) and the middleware that times every request.
//!
//! The exposition needs no credentials, like Prometheus expects, so by
//! default it answers only loopback clients on the API's port
//! (`metrics_public` opens it there); `metrics_bind` serves it, and only
//! it, on an address of its own to whoever reaches that address. Behind a
//! reverse proxy the proxy's own address is what counts.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse};

use super::auth::is_local_request;
use super::State;
use crate::error::{Error, Result};
use crate::ops;

/// The Prometheus text format's content type (version 0.0.4).
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Marks the app of the `metrics_bind` listener, where anyone who reaches
/// the address may scrape.
#[derive(Debug, Clone, Copy)]
pub struct OpenScrape;

pub async fn get(req: HttpRequest, state: State) -> Result<HttpResponse> {
    let open = state.ops.config.metrics_public || req.app_data::<OpenScrape>().is_some();
    if !open && !is_local_request(&req) {
        return Err(Error::forbidden(
            "/metrics answers loopback clients only; set metrics_public = true to open it",
        ));
    }
    let text = ops::stats::metrics(&state.ops).await?;
    Ok(HttpResponse::Ok().content_type(CONTENT_TYPE).body(text))
}

/// Records each request's route pattern, method, status and latency. A
/// request no route matched counts under the route `unmatched`, so
/// scanners cannot create a series per path (nor per made-up method).
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> actix_web::Result<ServiceResponse<impl MessageBody>> {
    let started = Instant::now();
    let state = req.app_data::<State>().cloned();
    let res = next.call(req).await?;
    if let Some(state) = state {
        let route = res.request().match_pattern();
        let method = res.request().method();
        let known = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
        state.ops.store.metrics().observe_request(
            known
                .iter()
                .find(|m| **m == method.as_str())
                .copied()
                .unwrap_or("other"),
            route.as_deref().unwrap_or("unmatched"),
            res.status().as_str(),
            started.elapsed().as_secs_f64(),
        );
    }
    Ok(res)
}
