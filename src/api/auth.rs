//! Authentication: the `Caller` extractor, the key cache and the per-agent
//! rate limit.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest};

use super::AppState;
use crate::domain::access::{AgentIdentity, Caller};
use crate::domain::keys;
use crate::error::{Error, Result};
use crate::store::agents;

/// Resolves credentials to callers. Agent keys are hashed once per request
/// and looked up in memory; the cache is cleared whenever an agent changes.
pub struct Authenticator {
    project_token_hash: String,
    /// Identities by key hash, with the generation they were cached under.
    agents: RwLock<KeyCache>,
    require_auth: bool,
    trusted_proxies: Vec<IpAddr>,
    limiter: Option<RateLimiter>,
}

impl Authenticator {
    pub fn new(
        project_token_hash: String,
        require_auth: bool,
        trusted_proxies: Vec<IpAddr>,
        rate_limit_per_minute: u32,
    ) -> Self {
        Authenticator {
            project_token_hash,
            agents: RwLock::new(KeyCache::default()),
            require_auth,
            trusted_proxies,
            limiter: (rate_limit_per_minute > 0).then(|| RateLimiter::new(rate_limit_per_minute)),
        }
    }

    /// Forget every cached identity (after any agent change).
    pub fn invalidate(&self) {
        if let Ok(mut cache) = self.agents.write() {
            cache.generation += 1;
            cache.entries.clear();
        }
    }

    fn cached(&self, hash: &str) -> Option<Arc<AgentIdentity>> {
        self.agents.read().ok()?.entries.get(hash).cloned()
    }

    fn generation(&self) -> u64 {
        self.agents.read().map_or(0, |c| c.generation)
    }

    /// Caches an identity read after `generation` was noted, unless an
    /// agent changed since (the read may predate a deactivation).
    fn remember(&self, generation: u64, hash: String, identity: Arc<AgentIdentity>) {
        if let Ok(mut cache) = self.agents.write() {
            if cache.generation == generation {
                cache.entries.insert(hash, identity);
            }
        }
    }
}

#[derive(Default)]
struct KeyCache {
    generation: u64,
    entries: HashMap<String, Arc<AgentIdentity>>,
}

fn credential(req: &HttpRequest) -> Option<String> {
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

/// Authenticates a request: `Ok(None)` when it carries no credentials (and
/// open mode is off); invalid credentials are a 401.
async fn authenticate(req: &HttpRequest) -> Result<Option<Caller>> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| Error::internal("application state missing"))?;
    let auth = &state.auth;
    let caller = if let Some(secret) = credential(req) {
        let hash = keys::hash(&secret);
        if keys::hashes_match(&hash, &auth.project_token_hash) {
            Caller::Project
        } else if let Some(identity) = auth.cached(&hash) {
            Caller::Agent(identity)
        } else {
            let generation = auth.generation();
            let identity = state
                .store
                .read(move |conn| agents::authenticate(conn, &secret))
                .await?
                .ok_or_else(|| Error::unauthorized("invalid or deactivated API key"))?;
            auth.remember(generation, hash, identity.clone());
            Caller::Agent(identity)
        }
    } else if let Some(name) = proxy_user(req).filter(|_| {
        req.peer_addr()
            .is_some_and(|p| auth.trusted_proxies.contains(&p.ip()))
    }) {
        let identity = state
            .store
            .read(move |conn| agents::by_name_active(conn, &name))
            .await?
            .ok_or_else(|| Error::unauthorized("the proxy's user is not an active agent"))?;
        Caller::Agent(identity)
    } else if !auth.require_auth {
        Caller::Project
    } else {
        return Ok(None);
    };
    if let (Some(limiter), Caller::Agent(a)) = (&auth.limiter, &caller) {
        limiter.check(a.id)?;
    }
    Ok(Some(caller))
}

pub const MISSING_CREDENTIALS: &str =
    "missing credentials: send X-Agent-Key: dlg_… or Authorization: Bearer <key or project token>";

impl FromRequest for Caller {
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<Caller, Error>>>>;

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
    type Future = Pin<Box<dyn Future<Output = Result<MaybeCaller, Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { Ok(MaybeCaller(authenticate(&req).await?)) })
    }
}

/// True for a loopback client talking to a loopback host name: the only
/// requests allowed to create the first agent without credentials.
pub fn is_local_bootstrap(req: &HttpRequest) -> bool {
    let peer_local = req.peer_addr().is_some_and(|p| p.ip().is_loopback());
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
    let host_local = hostname.eq_ignore_ascii_case("localhost")
        || hostname.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    peer_local && host_local
}

/// Fixed one-minute windows per agent.
pub struct RateLimiter {
    per_minute: u32,
    windows: Mutex<HashMap<i64, (Instant, u32)>>,
}

impl RateLimiter {
    pub fn new(per_minute: u32) -> Self {
        RateLimiter {
            per_minute,
            windows: Mutex::new(HashMap::new()),
        }
    }

    pub fn check(&self, agent: i64) -> Result<()> {
        let window = Duration::from_secs(60);
        let now = Instant::now();
        let mut map = self
            .windows
            .lock()
            .map_err(|_| Error::internal("rate limiter poisoned"))?;
        let entry = map.entry(agent).or_insert((now, 0));
        if now.duration_since(entry.0) >= window {
            *entry = (now, 0);
        }
        if entry.1 >= self.per_minute {
            let left = window.saturating_sub(now.duration_since(entry.0));
            return Err(Error::RateLimited {
                retry_after: left.as_secs().max(1),
            });
        }
        entry.1 += 1;
        Ok(())
    }
}
