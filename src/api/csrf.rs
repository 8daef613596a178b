//! Cross-site request protection (SPEC §2): no web page the operator
//! visits may change anything on a server it can reach — in open mode
//! and for the first-agent bootstrap too.
//!
//! Browsers send "simple" cross-site requests (a form post, or `fetch`
//! with `Content-Type: text/plain`) without a CORS preflight, so CORS
//! alone does not stop them. A state-changing request (any method but
//! GET, HEAD and OPTIONS) is refused with 403 when its `Origin` is
//! neither the server's own nor in `cors_origins`, or — without an
//! `Origin` — when the browser marks it `Sec-Fetch-Site: cross-site`
//! (Fetch Metadata, <https://www.w3.org/TR/fetch-metadata/>). Clients
//! that are not browsers send neither header and are not affected. The
//! other half, JSON bodies only (415), is the [`super::Json`]
//! extractor's: a browser cannot send `application/json` cross-site
//! without a preflight.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method};
use actix_web::middleware::Next;
use actix_web::ResponseError;

use super::State;
use crate::error::Error;

/// Refuses cross-site state-changing requests before anything else runs
/// (`actix_web::middleware::from_fn`).
pub async fn refuse_cross_site(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    if let Some(why) = cross_site(&req) {
        let resp = Error::CrossSite(why).error_response();
        return Ok(req.into_response(resp).map_into_right_body());
    }
    Ok(next.call(req).await?.map_into_left_body())
}

/// Why `req` is a cross-site state-changing request, if it is one.
fn cross_site(req: &ServiceRequest) -> Option<String> {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return None;
    }
    let headers = req.headers();
    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    match text(header::ORIGIN) {
        Some(origin) if allowed_origin(req, origin) => None,
        Some(origin) => Some(format!(
            "cross-site request refused: origin {origin:?} is not this server's and not in \
             cors_origins"
        )),
        None => (text(header::HeaderName::from_static("sec-fetch-site")) == Some("cross-site"))
            .then(|| "cross-site request refused (Sec-Fetch-Site: cross-site)".to_string()),
    }
}

/// The server's own origin (the `Host` the request was sent to, either
/// scheme), or one the operator listed in `cors_origins` (`*`: any).
fn allowed_origin(req: &ServiceRequest, origin: &str) -> bool {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let own = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .is_some_and(|rest| !host.is_empty() && rest.eq_ignore_ascii_case(host));
    own || req.app_data::<State>().is_some_and(|s| {
        s.ops
            .config
            .cors_origins
            .iter()
            .any(|o| o == "*" || o.eq_ignore_ascii_case(origin))
    })
}
