//! Authentication (SPEC §3): credentials to callers, the key cache, the
//! per-agent rate limit. Transports extract the credential (HTTP headers,
//! a trusted proxy's user) and hand it here.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use crate::domain::access::{AgentIdentity, Caller};
use crate::domain::keys;
use crate::error::{Error, Result};
use crate::store::{agents, Store};

/// What a request presented.
#[derive(Debug)]
pub enum Credential {
    /// An agent key or the project token (`X-Agent-Key`, `Bearer`).
    Secret(String),
    /// The agent name a trusted proxy vouches for (`Remote-User`).
    ProxyUser(String),
    None,
}

/// Resolves credentials to callers. Agent keys are hashed once per request
/// and looked up in memory; the cache is cleared whenever an agent changes.
pub struct Authenticator {
    project_token_hash: String,
    /// Identities by key hash, with the generation they were cached under.
    agents: RwLock<KeyCache>,
    require_auth: bool,
    limiter: Option<RateLimiter>,
}

#[derive(Default)]
struct KeyCache {
    generation: u64,
    entries: HashMap<String, Arc<AgentIdentity>>,
}

impl Authenticator {
    pub fn new(project_token_hash: String, require_auth: bool, rate_limit_per_minute: u32) -> Self {
        Authenticator {
            project_token_hash,
            agents: RwLock::new(KeyCache::default()),
            require_auth,
            limiter: (rate_limit_per_minute > 0).then(|| RateLimiter::new(rate_limit_per_minute)),
        }
    }

    /// Open mode (`require_auth = false`): no credentials act as the
    /// project token.
    pub fn open_mode(&self) -> bool {
        !self.require_auth
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

    /// The caller a credential stands for: `Ok(None)` when there is none
    /// (and open mode is off); invalid credentials are a 401, an agent
    /// over its rate a 429.
    pub async fn authenticate(
        &self,
        store: &Store,
        credential: Credential,
    ) -> Result<Option<Caller>> {
        let caller = match credential {
            Credential::Secret(secret) => {
                let hash = keys::hash(&secret);
                if keys::hashes_match(&hash, &self.project_token_hash) {
                    Caller::Project
                } else if let Some(identity) = self.cached(&hash) {
                    Caller::Agent(identity)
                } else {
                    let generation = self.generation();
                    let identity = store
                        .read(move |conn| agents::authenticate(conn, &secret))
                        .await?
                        .ok_or_else(|| Error::unauthorized("invalid or deactivated API key"))?;
                    self.remember(generation, hash, identity.clone());
                    Caller::Agent(identity)
                }
            }
            Credential::ProxyUser(name) => {
                let identity = store
                    .read(move |conn| agents::by_name_active(conn, &name))
                    .await?
                    .ok_or_else(|| {
                        Error::unauthorized("the proxy's user is not an active agent")
                    })?;
                Caller::Agent(identity)
            }
            Credential::None if !self.require_auth => Caller::Project,
            Credential::None => return Ok(None),
        };
        if let (Some(limiter), Caller::Agent(a)) = (&self.limiter, &caller) {
            limiter.check(a.id)?;
        }
        Ok(Some(caller))
    }
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
