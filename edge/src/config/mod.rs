//! The worker's configuration, read once from wrangler vars and secrets into
//! types; a bad value is a [`ConfigError`] that names the variable and the
//! rule, never a panic, and never echoes a secret.

use std::fmt;

use freshet_core::limits::Limits;

use crate::secret::{NamedSecret, Secret, Secrets};
use crate::store::mongo::MongoUrl;
use crate::store::redis::RedisUrl;

#[cfg(target_arch = "wasm32")]
pub mod env;

pub const STORE_VAR: &str = "FRESHET_STORE";
pub const WRITE_KEYS_VAR: &str = "FRESHET_WRITE_KEYS";
/// A secret: the bearer token of the serving API. This and the two other
/// secrets take several values at once, for a rotation (README, "Rotating a
/// secret"): `name:value,name2:value2`, the names optional.
pub const READ_TOKEN_VAR: &str = "FRESHET_READ_TOKEN";
/// A secret: the bearer token of `POST /v1/backfill`, which writes to the
/// store. Unset: backfill through the edge is off.
pub const ADMIN_TOKEN_VAR: &str = "FRESHET_ADMIN_TOKEN";
pub const IDENTITY_SECRET_VAR: &str = "FRESHET_IDENTITY_SECRET";
pub const STORE_TIMEOUT_VAR: &str = "FRESHET_STORE_TIMEOUT_MS";
pub const RATE_LIMIT_PERIOD_VAR: &str = "FRESHET_RATE_LIMIT_PERIOD";
pub const STORE_GATEWAYS_VAR: &str = "FRESHET_STORE_GATEWAYS";
/// `on` (the default: every accepted batch is logged to the `EVENT_LOG`
/// bucket) or `off`.
pub const EVENT_LOG_VAR: &str = "FRESHET_EVENT_LOG";
/// The share of reads whose served values go into the drift summaries,
/// from 0 to 1 (README, "Drift"); 0.01 (the seed's 1 %) when unset.
pub const DRIFT_SAMPLE_RATE_VAR: &str = "FRESHET_DRIFT_SAMPLE_RATE";
/// The baseline file of `freshet profile` (its JSON text) that
/// `GET /v1/drift` compares with; the spec's `expected` stats without it.
pub const DRIFT_BASELINE_VAR: &str = "FRESHET_DRIFT_BASELINE";
/// `direct` (the default: ingest writes the store and the log before it
/// answers) or `queue` (ingest sends the batch to the `INGEST_QUEUE` queue
/// and answers; the worker's consumer writes them): docs/ARCHITECTURE.md,
/// "The queue pipeline".
pub const PIPELINE_VAR: &str = "FRESHET_PIPELINE";
/// Moves the edge's clock by this many milliseconds (a signed integer; 0
/// when unset): the receive time of every batch and the `now` of every read.
/// For tests that need days to pass against a real store, such as a batch
/// resent two days later (edge/tests/resend.mjs); `/health` shows it when
/// it is set. Not for production.
pub const CLOCK_OFFSET_VAR: &str = "FRESHET_CLOCK_OFFSET_MS";
/// Every variable the worker reads, so the glue knows what to look up.
pub const ALL_VARS: [&str; 13] = [
    CLOCK_OFFSET_VAR,
    PIPELINE_VAR,
    DRIFT_SAMPLE_RATE_VAR,
    DRIFT_BASELINE_VAR,
    ADMIN_TOKEN_VAR,
    EVENT_LOG_VAR,
    STORE_VAR,
    WRITE_KEYS_VAR,
    READ_TOKEN_VAR,
    IDENTITY_SECRET_VAR,
    STORE_TIMEOUT_VAR,
    RATE_LIMIT_PERIOD_VAR,
    STORE_GATEWAYS_VAR,
];

/// The shortest value a secret may have: anything shorter is a placeholder
/// or a typo, not a secret.
pub const MIN_SECRET_LEN: usize = 12;

/// Default for `FRESHET_STORE_TIMEOUT_MS`: the whole store round trip
/// (connect, auth, pipeline) must finish within it, or the answer is 503.
pub const DEFAULT_STORE_TIMEOUT_MS: u64 = 2_000;

/// Default for `FRESHET_RATE_LIMIT_PERIOD`: the period, in seconds, of the
/// `[[ratelimits]]` bindings, sent as `Retry-After` with a 429. Cloudflare
/// allows 10 or 60.
pub const DEFAULT_RATE_LIMIT_PERIOD_S: u32 = 10;
/// How many `StoreGateway` objects hold Redis or MongoDB connections open
/// when `FRESHET_STORE_GATEWAYS` does not say; 0 opens a connection per
/// request instead. Measured (edge/README.md, "Store connections"): the call
/// to an object costs more than a plain TCP connect to Redis, and less than
/// a TLS handshake or a MongoDB login, so plain `redis://` connects per
/// request and `rediss://` and `mongodb://` go through the gateways. So does
/// a cluster: its slot map and a connection per node live in the objects,
/// where a store per request would ask `CLUSTER SHARDS` every time.
pub const DEFAULT_STORE_GATEWAYS: u32 = 4;

pub use freshet_core::drift::DEFAULT_SAMPLES_PER_MILLION as DEFAULT_DRIFT_SAMPLES_PER_MILLION;

fn default_store_gateways(store: &StoreConfig) -> u32 {
    match store {
        StoreConfig::Redis(url) if !url.tls && !url.cluster => 0,
        StoreConfig::DurableObject => 0,
        StoreConfig::Redis(_) | StoreConfig::Mongo(_) => DEFAULT_STORE_GATEWAYS,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub store: StoreConfig,
    pub write_keys: Vec<WriteKey>,
    /// Whether accepted batches go to the event log (`FRESHET_EVENT_LOG`).
    pub event_log: bool,
    /// Where ingest puts a batch (`FRESHET_PIPELINE`).
    pub pipeline: Pipeline,
    /// None: serving refuses every request.
    pub read_tokens: Secrets,
    /// None: `POST /v1/backfill` refuses every request.
    pub admin_tokens: Secrets,
    /// None: identity tokens are ignored and features are keyed by clientId.
    pub identity_secrets: Secrets,
    pub store_timeout_ms: u64,
    /// Seconds a rate-limited client is told to wait (`Retry-After`).
    pub rate_limit_period_s: u32,
    pub store_gateways: u32,
    /// Reads sampled into drift summaries, per million (an integer keeps
    /// `Config` comparable).
    pub drift_samples_per_million: u32,
    /// The baseline file's text, checked to parse.
    pub drift_baseline: Option<String>,
    pub limits: Limits,
    /// `FRESHET_CLOCK_OFFSET_MS`: added to the edge's clock (tests only).
    pub clock_offset_ms: i64,
}

/// How an accepted batch reaches the store and the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pipeline {
    /// In the ingest request, before its 202.
    Direct,
    /// Through the ingest queue and its consumer, after the 202.
    Queue,
}

impl Pipeline {
    /// `direct` or `queue`: the value of `FRESHET_PIPELINE`, shown by `/health`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::Queue => "queue",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    DurableObject,
    Redis(RedisUrl),
    Mongo(MongoUrl),
}

impl StoreConfig {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::DurableObject => "durable-object",
            Self::Redis(_) => "redis",
            Self::Mongo(_) => "mongodb",
        }
    }
}

/// A public, per-site write key and the origins that may use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteKey {
    pub key: String,
    pub origins: Origins,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origins {
    Any,
    /// Exact `scheme://host[:port]` strings, without a trailing slash.
    List(Vec<String>),
}

impl Origins {
    pub fn allows(&self, origin: &str) -> bool {
        match self {
            Self::Any => true,
            Self::List(list) => list.iter().any(|o| o == origin),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// A variable's value breaks its rule; `why` never contains the value of a secret.
    Invalid { var: &'static str, why: String },
    /// The compiled-in feature spec does not parse.
    Spec(String),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid { var, why } => write!(f, "{var}: {why}"),
            Self::Spec(why) => write!(f, "the compiled-in feature spec is invalid: {why}"),
        }
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads the configuration through `lookup` (a var or secret by name;
    /// `None` when unset). Empty values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let store = match get(STORE_VAR) {
            None => StoreConfig::DurableObject,
            Some(v) => parse_store(v.trim())?,
        };
        let write_keys = match get(WRITE_KEYS_VAR) {
            None => Vec::new(),
            Some(v) => parse_write_keys(&v)?,
        };
        let store_timeout_ms = match get(STORE_TIMEOUT_VAR) {
            None => DEFAULT_STORE_TIMEOUT_MS,
            Some(v) => match v.trim().parse::<u64>() {
                Ok(ms) if (1..=60_000).contains(&ms) => ms,
                _ => {
                    return Err(ConfigError::Invalid {
                        var: STORE_TIMEOUT_VAR,
                        why: "must be a whole number of milliseconds from 1 to 60000".into(),
                    });
                }
            },
        };
        let rate_limit_period_s = match get(RATE_LIMIT_PERIOD_VAR) {
            None => DEFAULT_RATE_LIMIT_PERIOD_S,
            Some(v) => match v.trim() {
                "10" => 10,
                "60" => 60,
                _ => {
                    return Err(ConfigError::Invalid {
                        var: RATE_LIMIT_PERIOD_VAR,
                        why:
                            "must be 10 or 60 (seconds), the period of the [[ratelimits]] bindings"
                                .into(),
                    });
                }
            },
        };
        let store_gateways = match get(STORE_GATEWAYS_VAR) {
            None => default_store_gateways(&store),
            Some(v) => match v.trim().parse::<u32>() {
                Ok(n) if n <= 64 => n,
                _ => {
                    return Err(ConfigError::Invalid {
                        var: STORE_GATEWAYS_VAR,
                        why: "must be a whole number from 0 (a connection per request) to 64"
                            .into(),
                    });
                }
            },
        };
        let event_log = match get(EVENT_LOG_VAR).as_deref().map(str::trim) {
            None | Some("on") => true,
            Some("off") => false,
            Some(_) => {
                return Err(ConfigError::Invalid {
                    var: EVENT_LOG_VAR,
                    why: "must be on (log every accepted batch to the EVENT_LOG bucket) or off"
                        .into(),
                });
            }
        };
        let pipeline = match get(PIPELINE_VAR).as_deref().map(str::trim) {
            None | Some("direct") => Pipeline::Direct,
            Some("queue") => Pipeline::Queue,
            Some(_) => {
                return Err(ConfigError::Invalid {
                    var: PIPELINE_VAR,
                    why: "must be direct (ingest writes the store and the log) or queue \
                          (ingest sends to the INGEST_QUEUE queue, whose consumer writes them)"
                        .into(),
                });
            }
        };
        let drift_samples_per_million = match get(DRIFT_SAMPLE_RATE_VAR) {
            None => DEFAULT_DRIFT_SAMPLES_PER_MILLION,
            Some(v) => match v.trim().parse::<f64>() {
                // In 0..=1, so the product fits.
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                Ok(rate) if (0.0..=1.0).contains(&rate) => (rate * 1e6).round() as u32,
                _ => {
                    return Err(ConfigError::Invalid {
                        var: DRIFT_SAMPLE_RATE_VAR,
                        why: "must be a number from 0 (off) to 1 (every read)".into(),
                    });
                }
            },
        };
        let clock_offset_ms = match get(CLOCK_OFFSET_VAR) {
            None => 0,
            Some(v) => v.trim().parse::<i64>().map_err(|_| ConfigError::Invalid {
                var: CLOCK_OFFSET_VAR,
                why: "must be a whole number of milliseconds (tests only)".into(),
            })?,
        };
        let drift_baseline = get(DRIFT_BASELINE_VAR);
        if let Some(text) = &drift_baseline {
            freshet_core::drift::Baseline::from_json(text).map_err(|why| ConfigError::Invalid {
                var: DRIFT_BASELINE_VAR,
                why,
            })?;
        }
        Ok(Self {
            store,
            write_keys,
            event_log,
            pipeline,
            read_tokens: parse_secrets(READ_TOKEN_VAR, get(READ_TOKEN_VAR))?,
            admin_tokens: parse_secrets(ADMIN_TOKEN_VAR, get(ADMIN_TOKEN_VAR))?,
            identity_secrets: parse_secrets(IDENTITY_SECRET_VAR, get(IDENTITY_SECRET_VAR))?,
            store_timeout_ms,
            rate_limit_period_s,
            store_gateways,
            drift_samples_per_million,
            drift_baseline,
            limits: Limits::default(),
            clock_offset_ms,
        })
    }

    pub fn write_key(&self, key: &str) -> Option<&WriteKey> {
        self.write_keys.iter().find(|k| k.key == key)
    }

    /// Whether any write key admits `origin`: what a preflight, which
    /// carries no key, can check.
    pub fn any_key_allows(&self, origin: &str) -> bool {
        self.write_keys.iter().any(|k| k.origins.allows(origin))
    }
}

fn parse_store(value: &str) -> Result<StoreConfig, ConfigError> {
    if value == "durable-object" {
        return Ok(StoreConfig::DurableObject);
    }
    let scheme = value.split_once("://").map(|(s, _)| s).unwrap_or("");
    match scheme {
        "redis" | "rediss" | "redis+cluster" | "rediss+cluster" => RedisUrl::parse(value)
            .map(StoreConfig::Redis)
            .map_err(|why| ConfigError::Invalid {
                var: STORE_VAR,
                why,
            }),
        "mongodb" | "mongodb+srv" => {
            MongoUrl::parse(value)
                .map(StoreConfig::Mongo)
                .map_err(|why| ConfigError::Invalid {
                    var: STORE_VAR,
                    why,
                })
        }
        _ => Err(ConfigError::Invalid {
            var: STORE_VAR,
            why: "must be durable-object, redis://[user:pass@]host:port[/db], \
                  redis+cluster://host:port,host:port or mongodb://…"
                .into(),
        }),
    }
}

/// `value` or `name:value,name2:value2`: the values of one secret, the first
/// the one to sign with. Errors name the variable and the entry (by its
/// name, or its place), never a value.
fn parse_secrets(var: &'static str, value: Option<String>) -> Result<Secrets, ConfigError> {
    let Some(value) = value else {
        return Ok(Secrets::default());
    };
    let invalid = |why: String| ConfigError::Invalid { var, why };
    let mut out: Vec<NamedSecret> = Vec::new();
    for (n, entry) in value.split(',').enumerate().map(|(i, e)| (i + 1, e.trim())) {
        if entry.is_empty() {
            return Err(invalid(format!(
                "entry {n} is empty; write `value` or `name:value,name2:value2`"
            )));
        }
        let (name, secret) = match entry.split_once(':') {
            Some((name, secret)) => (Some(name.trim()), secret.trim()),
            None => (None, entry),
        };
        if let Some(name) = name
            && (name.is_empty()
                || name.len() > 32
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')))
        {
            return Err(invalid(format!(
                "entry {n}: the name before ':' must be 1 to 32 letters, digits, _ - or ."
            )));
        }
        let label = name.map_or_else(
            || format!("entry {n}"),
            |name| format!("entry {n} ({name})"),
        );
        if secret.len() < MIN_SECRET_LEN {
            return Err(invalid(format!(
                "{label} is shorter than {MIN_SECRET_LEN} characters: too short to be a secret"
            )));
        }
        if name.is_some() && out.iter().any(|s| s.name.as_deref() == name) {
            return Err(invalid(format!("{label} repeats a name")));
        }
        if out.iter().any(|s| s.value.expose() == secret) {
            return Err(invalid(format!("{label} repeats a value")));
        }
        out.push(NamedSecret {
            name: name.map(str::to_owned),
            value: Secret::new(secret),
        });
    }
    Ok(Secrets::new(out))
}

/// `key=origin1 origin2,key2=*`.
fn parse_write_keys(value: &str) -> Result<Vec<WriteKey>, ConfigError> {
    let invalid = |why: String| ConfigError::Invalid {
        var: WRITE_KEYS_VAR,
        why,
    };
    let mut keys: Vec<WriteKey> = Vec::new();
    for (n, entry) in value.split(',').enumerate().map(|(i, e)| (i + 1, e.trim())) {
        if entry.is_empty() {
            continue;
        }
        let Some((key, origins)) = entry.split_once('=') else {
            return Err(invalid(format!(
                "entry {n} has no '=': write `key=origin1 origin2` or `key=*`"
            )));
        };
        let key = key.trim();
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_graphic() && b != b'=') {
            return Err(invalid(format!(
                "entry {n} has an empty or non-printable key"
            )));
        }
        if keys.iter().any(|k| k.key == key) {
            return Err(invalid(format!("entry {n} repeats a key")));
        }
        let list: Vec<&str> = origins.split_whitespace().collect();
        let origins = if list == ["*"] {
            Origins::Any
        } else if list.is_empty() {
            return Err(invalid(format!(
                "entry {n} lists no origins (use * for any)"
            )));
        } else {
            let mut out = Vec::with_capacity(list.len());
            for origin in list {
                let origin = origin.trim_end_matches('/');
                let ok = (origin.starts_with("https://") || origin.starts_with("http://"))
                    && !origin[origin.find("://").unwrap_or(0) + 3..].is_empty()
                    && !origin[origin.find("://").unwrap_or(0) + 3..].contains('/');
                if !ok {
                    return Err(invalid(format!(
                        "entry {n}: origin {origin:?} must be scheme://host[:port], or * alone"
                    )));
                }
                out.push(origin.to_owned());
            }
            Origins::List(out)
        };
        keys.push(WriteKey {
            key: key.to_owned(),
            origins,
        });
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_are_the_embedded_store_and_no_secrets() {
        let c = config(&[]).expect("empty config is valid");
        assert_eq!(c.store, StoreConfig::DurableObject);
        assert!(c.write_keys.is_empty());
        assert!(c.read_tokens.is_empty());
        assert!(c.identity_secrets.is_empty());
        assert_eq!(c.store_timeout_ms, DEFAULT_STORE_TIMEOUT_MS);
        assert_eq!(c.limits, Limits::default());
    }

    #[test]
    fn write_keys_parse_with_origins_and_star() {
        let c = config(&[(
            WRITE_KEYS_VAR,
            "wk_live=https://shop.example http://localhost:3000/, dev=*",
        )])
        .expect("valid");
        let live = c.write_key("wk_live").expect("key");
        assert!(live.origins.allows("https://shop.example"));
        assert!(live.origins.allows("http://localhost:3000"));
        assert!(!live.origins.allows("https://evil.example"));
        assert!(
            c.write_key("dev")
                .expect("dev")
                .origins
                .allows("https://any")
        );
        assert!(c.write_key("nope").is_none());
        assert!(c.any_key_allows("https://evil.example"));
    }

    #[test]
    fn bad_write_keys_name_the_variable_and_the_entry() {
        for bad in [
            "novalue",
            "k=",
            "k=ftp://x",
            "k=https://a/b",
            "=*",
            "k=*,k=*",
        ] {
            let e = config(&[(WRITE_KEYS_VAR, bad)]).expect_err(bad);
            let text = e.to_string();
            assert!(text.starts_with(WRITE_KEYS_VAR), "{bad}: {text}");
            assert!(text.contains("entry"), "{bad}: {text}");
        }
    }

    #[test]
    fn store_urls_parse_and_mongodb_srv_is_refused() {
        let c = config(&[(STORE_VAR, "redis://u:p%40ss@127.0.0.1:6390/2")]).expect("redis");
        let StoreConfig::Redis(url) = c.store else {
            panic!("expected redis");
        };
        assert_eq!(url.host, "127.0.0.1");
        assert_eq!(url.port, 6390);
        assert_eq!(url.username.as_deref(), Some("u"));
        assert_eq!(url.password.as_ref().map(Secret::expose), Some("p@ss"));
        assert_eq!(url.db, 2);

        let c = config(&[(
            STORE_VAR,
            "mongodb://freshet:s%40cret@127.0.0.1:27017/shop?authSource=admin&tls=true",
        )])
        .expect("mongodb");
        assert_eq!(c.store.kind(), "mongodb");
        let StoreConfig::Mongo(url) = c.store else {
            panic!("expected mongodb");
        };
        assert_eq!(
            (url.host.as_str(), url.port, url.db.as_str()),
            ("127.0.0.1", 27017, "shop")
        );
        assert_eq!(url.password.as_ref().map(Secret::expose), Some("s@cret"));
        assert_eq!(url.auth_source, "admin");
        assert!(url.tls);

        let e = config(&[(
            STORE_VAR,
            "mongodb+srv://u:hunter2@cluster0.example.net/shop",
        )])
        .expect_err("srv");
        let text = e.to_string();
        assert!(text.starts_with(STORE_VAR), "{text}");
        assert!(text.contains("mongodb+srv:// is not supported"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");

        let e = config(&[(STORE_VAR, "postgres://x")]).expect_err("unknown store");
        assert!(e.to_string().starts_with(STORE_VAR));
    }

    #[test]
    fn bad_redis_urls_do_not_echo_the_password() {
        let e = config(&[(STORE_VAR, "redis://u:hunter2@host:notaport")]).expect_err("port");
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }

    #[test]
    fn secrets_are_read_and_blank_counts_as_unset() {
        let c = config(&[
            (READ_TOKEN_VAR, "rt-0123456789"),
            (IDENTITY_SECRET_VAR, "  "),
        ])
        .expect("valid");
        assert_eq!(c.read_tokens, Secrets::one("rt-0123456789"));
        assert!(c.identity_secrets.is_empty());
    }

    #[test]
    fn formatting_a_config_shows_no_secret() {
        let secrets = [
            (READ_TOKEN_VAR, "new:rt-hunter2-new,old:rt-hunter2-old"),
            (ADMIN_TOKEN_VAR, "admin-hunter2-token"),
            (IDENTITY_SECRET_VAR, "id-hunter2-secret"),
        ];
        for store in [
            "redis://u:pw-hunter2@127.0.0.1:6379",
            "mongodb://u:pw-hunter2@127.0.0.1:27017/fs",
        ] {
            let mut vars = secrets.to_vec();
            vars.push((STORE_VAR, store));
            let c = config(&vars).expect("valid");
            let text = format!("{c:?}\n{c:#?}");
            assert!(!text.contains("hunter2"), "{text}");
            // Each of the five is there, as stars.
            assert_eq!(text.matches("***").count() / 2, 5, "{text}");
        }
    }

    #[test]
    fn a_secret_takes_several_named_values_the_first_to_sign_with() {
        for var in [READ_TOKEN_VAR, ADMIN_TOKEN_VAR, IDENTITY_SECRET_VAR] {
            let c =
                config(&[(var, " new:value-of-2026-12 , old:value:with:colons")]).expect("valid");
            let secrets = match var {
                READ_TOKEN_VAR => &c.read_tokens,
                ADMIN_TOKEN_VAR => &c.admin_tokens,
                _ => &c.identity_secrets,
            };
            let values: Vec<(Option<&str>, &str)> = secrets
                .iter()
                .map(|s| (s.name.as_deref(), s.value.expose()))
                .collect();
            assert_eq!(
                values,
                [
                    (Some("new"), "value-of-2026-12"),
                    (Some("old"), "value:with:colons")
                ],
                "{var}"
            );
        }
        let c = config(&[(READ_TOKEN_VAR, "one-value-0123")]).expect("one");
        assert_eq!(c.read_tokens.names(), "#1");
    }

    #[test]
    fn bad_secret_lists_name_the_variable_and_the_entry_never_a_value() {
        for (value, why) in [
            ("first-hunter2-value,", "entry 2 is empty"),
            (",first-hunter2-value", "entry 1 is empty"),
            ("a:hunter2-value-1,b:", "entry 2 (b) is shorter than 12"),
            ("hunter2", "entry 1 is shorter than 12"),
            (
                "a:hunter2-value-1,b:hunter2-value-1",
                "entry 2 (b) repeats a value",
            ),
            ("hunter2-value-1,hunter2-value-1", "entry 2 repeats a value"),
            (
                "a:hunter2-value-1,a:hunter2-value-2",
                "entry 2 (a) repeats a name",
            ),
            ("a b:hunter2-value-1", "entry 1: the name before ':'"),
            (":hunter2-value-1", "entry 1: the name before ':'"),
        ] {
            for var in [READ_TOKEN_VAR, ADMIN_TOKEN_VAR, IDENTITY_SECRET_VAR] {
                let e = config(&[(var, value)]).expect_err(value);
                let text = e.to_string();
                assert!(
                    text.starts_with(&format!("{var}: {why}")),
                    "{value}: {text}"
                );
                assert!(!text.contains("hunter2"), "{text}");
            }
        }
    }

    #[test]
    fn store_timeout_is_bounded() {
        assert_eq!(
            config(&[(STORE_TIMEOUT_VAR, "250")])
                .expect("ok")
                .store_timeout_ms,
            250
        );
        for bad in ["0", "-1", "abc", "60001"] {
            assert!(config(&[(STORE_TIMEOUT_VAR, bad)]).is_err(), "{bad}");
        }
    }

    #[test]
    fn rate_limit_period_is_ten_or_sixty_seconds() {
        assert_eq!(config(&[]).expect("ok").rate_limit_period_s, 10);
        assert_eq!(
            config(&[(RATE_LIMIT_PERIOD_VAR, "60")])
                .expect("ok")
                .rate_limit_period_s,
            60
        );
        for bad in ["0", "30", "ten", "600"] {
            let err = config(&[(RATE_LIMIT_PERIOD_VAR, bad)]).expect_err(bad);
            assert!(err.to_string().contains(RATE_LIMIT_PERIOD_VAR), "{err}");
        }
    }

    #[test]
    fn store_gateways_default_and_bounds() {
        let gateways = |store: &str| config(&[(STORE_VAR, store)]).expect("ok").store_gateways;
        assert_eq!(gateways("redis://127.0.0.1:6379"), 0);
        assert_eq!(
            gateways("rediss://cache.example:6380"),
            DEFAULT_STORE_GATEWAYS
        );
        assert_eq!(
            gateways("mongodb://u:p@127.0.0.1:27017/fs"),
            DEFAULT_STORE_GATEWAYS
        );
        assert_eq!(
            gateways("redis+cluster://10.0.0.1:7000,10.0.0.2:7000"),
            DEFAULT_STORE_GATEWAYS
        );
        assert_eq!(
            config(&[
                (STORE_VAR, "redis://127.0.0.1:6379"),
                (STORE_GATEWAYS_VAR, "3")
            ])
            .expect("ok")
            .store_gateways,
            3
        );
        assert_eq!(
            config(&[(STORE_GATEWAYS_VAR, "0")])
                .expect("ok")
                .store_gateways,
            0
        );
        for bad in ["-1", "abc", "65"] {
            let e = config(&[(STORE_GATEWAYS_VAR, bad)]).expect_err(bad);
            assert!(e.to_string().starts_with(STORE_GATEWAYS_VAR), "{e}");
        }
    }
}
