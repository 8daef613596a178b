//! Authentication over HTTP: the credential a request carries
//! (`X-Agent-Key`, `Authorization: Bearer`, a trusted proxy's user),
//! resolved by [`crate::ops::auth`] into the `Caller` extractor.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest};

use super::AppState;
use crate::domain::access::Caller;
use crate::error::{Error, Result};
use crate::ops::auth::Credential;

fn secret(req: &HttpRequest) -> Option<String> {
    if let Some(key) = req
        .headers()
        .get("x-agent-key")
        .and_then(|v| v.to_str().ok())
    {
        return Some(key.trim().to_string());
    }
    let auth = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = auth.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}

fn proxy_user(req: &HttpRequest) -> Option<String> {
    ["remote-user", "x-forwarded-user"].iter().find_map(|h| {
        let v = req.headers().get(*h)?.to_str().ok()?.trim();
        let name = v.split('@').next().unwrap_or(v);
        (!name.is_empty()).then(|| name.to_string())
    })
}

/// Whether the request comes straight from a configured trusted proxy
/// (IPv4 peers of a `::` listener, `::ffff:a.b.c.d`, compared as IPv4).
fn from_trusted_proxy(req: &HttpRequest, config: &crate::config::Config) -> bool {
    req.peer_addr()
        .is_some_and(|p| config.trusted_proxy_ips.contains(&p.ip().to_canonical()))
}

/// The credential a request presents. A proxy's user counts only from a
/// configured trusted proxy.
fn credential(req: &HttpRequest, state: &AppState) -> Credential {
    if let Some(s) = secret(req) {
        return Credential::Secret(s);
    }
    match proxy_user(req).filter(|_| from_trusted_proxy(req, &state.ops.config)) {
        Some(name) => Credential::ProxyUser(name),
        None => Credential::None,
    }
}

/// The caller of a request, or `None` when it carries no credentials (and
/// open mode is off); invalid credentials are a 401.
async fn authenticate(req: &HttpRequest) -> Result<Option<Caller>> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| Error::internal("application state missing"))?;
    let credential = credential(req, state);
    state
        .ops
        .auth
        .authenticate(&state.ops.store, credential)
        .await
}

pub const MISSING_CREDENTIALS: &str =
    "missing credentials: send X-Agent-Key: dlg_… or Authorization: Bearer <key or project token>";

impl FromRequest for Caller {
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<Caller>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            authenticate(&req)
                .await?
                .ok_or_else(|| Error::unauthorized(MISSING_CREDENTIALS))
        })
    }
}

/// A caller that may be anonymous (only the bootstrap of the first agent).
pub struct MaybeCaller(pub Option<Caller>);

impl FromRequest for MaybeCaller {
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<MaybeCaller>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { Ok(MaybeCaller(authenticate(&req).await?)) })
    }
}

/// True for a loopback client talking to a loopback host name, not sent
/// on by a proxy: the only requests allowed to create the first agent
/// without credentials, and (by default) to read `/metrics`. A proxy on
/// the same host connects from loopback too, so a configured trusted proxy
/// or a forwarding header makes a request remote; the Host check stops a
/// DNS-rebinding page in a local browser. (IPv4 clients of a `::` listener
/// appear as `::ffff:127.0.0.1`, which counts as loopback.)
pub fn is_local_request(req: &HttpRequest) -> bool {
    let peer = req.peer_addr().map(|p| p.ip().to_canonical());
    let peer_local = peer.is_some_and(|ip| ip.is_loopback());
    let forwarded = ["forwarded", "x-forwarded-for", "x-real-ip"]
        .iter()
        .any(|h| req.headers().contains_key(*h));
    let via_proxy = req
        .app_data::<web::Data<AppState>>()
        .is_some_and(|s| from_trusted_proxy(req, &s.ops.config));
    if !peer_local || forwarded || via_proxy {
        return false;
    }
    // The Host header itself: connection_info() would prefer Forwarded /
    // X-Forwarded-Host, which the client controls.
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let hostname = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("").to_string()
    } else {
        host.rsplit_once(':')
            .map_or(host.clone(), |(h, _)| h.to_string())
    };
    hostname.eq_ignore_ascii_case("localhost")
        || hostname.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}
