//! Configuration: embedded defaults < TOML file < `DELEGA_*` environment <
//! command-line flags. Unknown keys and bad values stop startup with a
//! message naming the key and where it came from.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::Deserialize;

/// The documented example, embedded so `config.example.toml` is tested to parse.
pub const EXAMPLE: &str = include_str!("../config.example.toml");

#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub host: String,
    pub port: u16,
    pub db_path: PathBuf,
    pub require_auth: bool,
    pub cors_origins: Vec<String>,
    pub allow_private_webhooks: bool,
    /// When set, used as the project token instead of a generated one.
    pub project_token: Option<String>,
    pub trusted_proxy_ips: Vec<IpAddr>,
    pub max_body_bytes: usize,
    pub max_context_bytes: usize,
    /// Requests per minute per agent; 0 turns the limit off.
    pub rate_limit_per_minute: u32,
    /// `GET /metrics` answers clients on any address, not only loopback
    /// (SPEC §13). It needs no credentials, so keep it false unless only
    /// your Prometheus can reach the server.
    pub metrics_public: bool,
    /// Also serve `GET /metrics` (and nothing else) on this address, e.g.
    /// `"0.0.0.0:9464"`, to any client that reaches it.
    pub metrics_bind: Option<String>,
    pub workers: usize,
    pub log_level: String,
    pub webhooks: WebhookConfig,
    pub queue: QueueConfig,
}

/// `[queue]`: the work queue (SPEC §10).
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueueConfig {
    /// Shortest lease a claim may ask for, in seconds (tests may set 1).
    pub min_lease_seconds: i64,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            min_lease_seconds: 30,
        }
    }
}

/// `[webhooks]`: delivery (SPEC §9).
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookConfig {
    pub dispatcher_threads: usize,
    /// Per-attempt timeout, in seconds.
    pub timeout_seconds: u64,
    /// Delays before each retry, in seconds (fractions allowed; ±20 %
    /// jitter is added): the list's length is the number of retries after
    /// the first attempt. The default spans more than a day, like the
    /// webhook services users know (Stripe retries for up to 3 days, Svix
    /// for about 28 hours).
    pub retry_schedule_seconds: Vec<f64>,
    /// A hook that has failed without a single success for this long, in
    /// hours (fractions allowed), is disabled. Time, not a count of
    /// attempts: a receiver down for a minute while several events are in
    /// flight is not disabled.
    pub disable_after_hours: f64,
    /// Upper bound on how much of a receiver's answer is read, in bytes.
    pub max_response_bytes: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            host: "127.0.0.1".into(),
            port: 18890,
            db_path: PathBuf::from("./data/delega.db"),
            require_auth: true,
            cors_origins: Vec::new(),
            allow_private_webhooks: false,
            project_token: None,
            trusted_proxy_ips: Vec::new(),
            max_body_bytes: 64 * 1024,
            max_context_bytes: 256 * 1024,
            rate_limit_per_minute: 0,
            metrics_public: false,
            metrics_bind: None,
            workers: 0,
            log_level: "info".into(),
            webhooks: WebhookConfig::default(),
            queue: QueueConfig::default(),
        }
    }
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            dispatcher_threads: 4,
            timeout_seconds: 10,
            // ~5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h: about 27.6 hours.
            retry_schedule_seconds: vec![5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0],
            disable_after_hours: 120.0,
            max_response_bytes: 64 * 1024,
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("db_path", &self.db_path)
            .field("require_auth", &self.require_auth)
            .field("cors_origins", &self.cors_origins)
            .field("allow_private_webhooks", &self.allow_private_webhooks)
            .field(
                "project_token",
                &self.project_token.as_ref().map(|_| "<redacted>"),
            )
            .field("trusted_proxy_ips", &self.trusted_proxy_ips)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("max_context_bytes", &self.max_context_bytes)
            .field("rate_limit_per_minute", &self.rate_limit_per_minute)
            .field("metrics_public", &self.metrics_public)
            .field("metrics_bind", &self.metrics_bind)
            .field("webhooks", &self.webhooks)
            .field("queue", &self.queue)
            .finish()
    }
}

/// Flags given on the command line; `None` leaves the lower layers alone.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub config: Option<PathBuf>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub db_path: Option<PathBuf>,
}

impl Config {
    /// Parses one TOML document; `origin` names it in error messages.
    pub fn from_toml(text: &str, origin: &Path) -> anyhow::Result<Config> {
        let config: Config = toml::from_str(text)
            .map_err(|e| anyhow::anyhow!("invalid config file {}: {}", origin.display(), e))?;
        config.validate(&origin.display().to_string())?;
        Ok(config)
    }

    /// Builds the effective configuration from every layer.
    pub fn load(flags: &Overrides) -> anyhow::Result<Config> {
        Self::load_from(flags, |k| std::env::var(k).ok())
    }

    pub fn load_from(
        flags: &Overrides,
        env: impl Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Config> {
        let file = flags
            .config
            .clone()
            .or_else(|| env("DELEGA_CONFIG").map(PathBuf::from));
        let mut config = match &file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read config file {}", path.display()))?;
                Config::from_toml(&text, path)?
            }
            None => Config::default(),
        };
        config.apply_env(&env)?;
        if let Some(host) = &flags.host {
            config.host = host.clone();
        }
        if let Some(port) = flags.port {
            config.port = port;
        }
        if let Some(db) = &flags.db_path {
            config.db_path = db.clone();
        }
        config.validate("the effective configuration")?;
        Ok(config)
    }

    fn apply_env(&mut self, env: &impl Fn(&str) -> Option<String>) -> anyhow::Result<()> {
        fn parse<T: std::str::FromStr>(var: &str, value: &str) -> anyhow::Result<T>
        where
            T::Err: fmt::Display,
        {
            value
                .trim()
                .parse()
                .map_err(|e| anyhow::anyhow!("invalid environment variable {var}={value:?}: {e}"))
        }
        fn parse_bool(var: &str, value: &str) -> anyhow::Result<bool> {
            match value.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => Ok(true),
                "0" | "false" | "no" | "off" => Ok(false),
                _ => bail!("invalid environment variable {var}={value:?}: expected true or false"),
            }
        }
        let list = |v: &str| -> Vec<String> {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        };
        if let Some(v) = env("DELEGA_HOST") {
            self.host = v;
        }
        if let Some(v) = env("DELEGA_PORT") {
            self.port = parse("DELEGA_PORT", &v)?;
        }
        if let Some(v) = env("DELEGA_DB_PATH") {
            self.db_path = PathBuf::from(v);
        }
        if let Some(v) = env("DELEGA_REQUIRE_AUTH") {
            self.require_auth = parse_bool("DELEGA_REQUIRE_AUTH", &v)?;
        }
        if let Some(v) = env("DELEGA_CORS_ORIGINS") {
            self.cors_origins = list(&v);
        }
        if let Some(v) = env("DELEGA_ALLOW_PRIVATE_WEBHOOKS") {
            self.allow_private_webhooks = parse_bool("DELEGA_ALLOW_PRIVATE_WEBHOOKS", &v)?;
        }
        if let Some(v) = env("DELEGA_PROJECT_TOKEN") {
            self.project_token = Some(v).filter(|t| !t.is_empty());
        }
        if let Some(v) = env("DELEGA_TRUSTED_PROXY_IPS") {
            self.trusted_proxy_ips = list(&v)
                .iter()
                .map(|ip| parse("DELEGA_TRUSTED_PROXY_IPS", ip))
                .collect::<anyhow::Result<_>>()?;
        }
        if let Some(v) = env("DELEGA_RATE_LIMIT_PER_MINUTE") {
            self.rate_limit_per_minute = parse("DELEGA_RATE_LIMIT_PER_MINUTE", &v)?;
        }
        if let Some(v) = env("DELEGA_METRICS_PUBLIC") {
            self.metrics_public = parse_bool("DELEGA_METRICS_PUBLIC", &v)?;
        }
        if let Some(v) = env("DELEGA_METRICS_BIND") {
            self.metrics_bind = Some(v).filter(|a| !a.trim().is_empty());
        }
        if let Some(v) = env("DELEGA_MAX_BODY_BYTES") {
            self.max_body_bytes = parse("DELEGA_MAX_BODY_BYTES", &v)?;
        }
        if let Some(v) = env("DELEGA_LOG_LEVEL") {
            self.log_level = v;
        }
        if let Some(v) = env("DELEGA_MIN_LEASE_SECONDS") {
            self.queue.min_lease_seconds = parse("DELEGA_MIN_LEASE_SECONDS", &v)?;
        }
        if let Some(v) = env("DELEGA_WEBHOOK_RETRY_SCHEDULE_SECONDS") {
            self.webhooks.retry_schedule_seconds = list(&v)
                .iter()
                .map(|d| parse("DELEGA_WEBHOOK_RETRY_SCHEDULE_SECONDS", d))
                .collect::<anyhow::Result<_>>()?;
        }
        if let Some(v) = env("DELEGA_WEBHOOK_DISABLE_AFTER_HOURS") {
            self.webhooks.disable_after_hours = parse("DELEGA_WEBHOOK_DISABLE_AFTER_HOURS", &v)?;
        }
        Ok(())
    }

    fn validate(&self, origin: &str) -> anyhow::Result<()> {
        if self.host.trim().is_empty() {
            bail!("invalid key 'host' in {origin}: must not be empty");
        }
        if self.host.parse::<IpAddr>().is_err() && self.host != "localhost" {
            bail!(
                "invalid key 'host' in {origin}: {:?} is not an IP address",
                self.host
            );
        }
        if self.max_body_bytes < 1024 {
            bail!("invalid key 'max_body_bytes' in {origin}: must be at least 1024");
        }
        if self.max_context_bytes < 1024 {
            bail!("invalid key 'max_context_bytes' in {origin}: must be at least 1024");
        }
        if let Some(token) = &self.project_token {
            if token.len() < 16 {
                bail!("invalid key 'project_token' in {origin}: use at least 16 characters");
            }
        }
        if !(1..=3600).contains(&self.queue.min_lease_seconds) {
            bail!("invalid key 'queue.min_lease_seconds' in {origin}: must be 1..=3600");
        }
        let w = &self.webhooks;
        if w.dispatcher_threads == 0 || w.dispatcher_threads > 256 {
            bail!("invalid key 'webhooks.dispatcher_threads' in {origin}: must be 1..=256");
        }
        if w.timeout_seconds == 0 {
            bail!("invalid key 'webhooks.timeout_seconds' in {origin}: must be at least 1");
        }
        if w.retry_schedule_seconds.len() > 1000 {
            bail!(
                "invalid key 'webhooks.retry_schedule_seconds' in {origin}: at most 1000 retries"
            );
        }
        // Beyond a year the time arithmetic of retries overflows.
        if let Some(bad) = w
            .retry_schedule_seconds
            .iter()
            .find(|d| !(0.0..=MAX_BACKOFF_SECONDS).contains(*d))
        {
            bail!(
                "invalid key 'webhooks.retry_schedule_seconds' in {origin}: {bad} is not \
                 between 0 and {MAX_BACKOFF_SECONDS} seconds"
            );
        }
        if !(w.disable_after_hours > 0.0 && w.disable_after_hours <= MAX_BACKOFF_SECONDS / 3600.0) {
            bail!(
                "invalid key 'webhooks.disable_after_hours' in {origin}: must be more than 0 \
                 and at most a year"
            );
        }
        Ok(())
    }
}

/// The longest retry delay accepted (a year).
const MAX_BACKOFF_SECONDS: f64 = 365.0 * 24.0 * 3600.0;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_config_parses() {
        Config::from_toml(EXAMPLE, Path::new("config.example.toml")).unwrap();
    }

    #[test]
    fn an_unknown_key_is_named_with_its_file() {
        let err = Config::from_toml("prot = 1\n", Path::new("my.toml"))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("prot") && err.contains("my.toml"), "{err}");
    }

    #[test]
    fn env_overrides_file_and_flags_override_env() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "port = 1000\nhost = \"127.0.0.1\"\n").unwrap();
        let flags = Overrides {
            config: Some(path),
            ..Default::default()
        };
        let env = |k: &str| (k == "DELEGA_PORT").then(|| "2000".to_string());
        assert_eq!(Config::load_from(&flags, env).unwrap().port, 2000);
        let flags = Overrides {
            port: Some(3000),
            ..flags
        };
        assert_eq!(Config::load_from(&flags, env).unwrap().port, 3000);
    }

    #[test]
    fn a_bad_env_value_is_named() {
        let env = |k: &str| (k == "DELEGA_PORT").then(|| "99999".to_string());
        let err = Config::load_from(&Overrides::default(), env)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("DELEGA_PORT"), "{err}");
    }
}
