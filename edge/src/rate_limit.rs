//! Rate limiting of `POST /v1/ingest`: the answer is `429` with
//! `Retry-After` once a client, or a whole site, sends more batches in a
//! period than its limit allows.
//!
//! The counting is Cloudflare's rate-limit binding (`[[ratelimits]]` in
//! wrangler.toml, simulated by `wrangler dev`): it holds across isolates and
//! costs no store round trip. Two limits, each on when its binding exists:
//! - per client (`FRESHET_CLIENT_RATE_LIMIT`, keyed `writeKey/clientId`): stops
//!   one browser, or a script, from flooding; set far above what an honest
//!   tracker sends (it batches, so it sends about one request a second at most).
//! - per site (`FRESHET_SITE_RATE_LIMIT`, keyed by write key): caps what one
//!   public write key can cost, however many client ids a flood makes up.
//!
//! A refused batch is not lost: the tracker keeps it and retries after
//! `Retry-After` with the same `batchId`. A limiter that fails admits the
//! request (and the glue logs it): the limiter protects the store, it must not
//! drop valid events.

use std::fmt;

/// Which limit a request is counted against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// One client id of one write key.
    Client,
    /// Every request of one write key.
    Site,
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Client => "client",
            Self::Site => "site",
        })
    }
}

/// Counts requests; `admit` answers whether this one is within its limit.
#[allow(async_fn_in_trait)]
pub trait RateLimit {
    /// Counts one request for `key` in `scope`; `false` when over the limit.
    async fn admit(&self, scope: Scope, key: &str) -> bool;
}

/// No limits: what a worker without rate-limit bindings gets.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unlimited;

impl RateLimit for Unlimited {
    async fn admit(&self, _scope: Scope, _key: &str) -> bool {
        true
    }
}

/// The key of a request in `scope`: the write key, and for a client the
/// client id of the batch's first event (a tracker's batch has one client).
pub fn key_of(scope: Scope, write_key: &str, client_id: &str) -> String {
    match scope {
        Scope::Client => format!("{write_key}/{client_id}"),
        Scope::Site => write_key.to_owned(),
    }
}

/// A fixed-window counter in memory, for the routes' native tests.
#[cfg(test)]
#[derive(Debug, Default)]
pub struct MemoryLimit {
    pub client_limit: Option<u32>,
    pub site_limit: Option<u32>,
    counts: std::cell::RefCell<std::collections::HashMap<(Scope, String), u32>>,
}

#[cfg(test)]
impl MemoryLimit {
    pub fn new(client_limit: Option<u32>, site_limit: Option<u32>) -> Self {
        Self {
            client_limit,
            site_limit,
            ..Self::default()
        }
    }

    /// A new period: every count starts again.
    pub fn next_period(&self) {
        self.counts.borrow_mut().clear();
    }
}

#[cfg(test)]
impl RateLimit for MemoryLimit {
    async fn admit(&self, scope: Scope, key: &str) -> bool {
        let limit = match scope {
            Scope::Client => self.client_limit,
            Scope::Site => self.site_limit,
        };
        let Some(limit) = limit else { return true };
        let mut counts = self.counts.borrow_mut();
        let count = counts.entry((scope, key.to_owned())).or_default();
        if *count >= limit {
            return false;
        }
        *count += 1;
        true
    }
}
