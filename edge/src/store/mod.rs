//! Where feature documents live. A store only moves bytes: `core` decides
//! every value (`apply_delta` in the Durable Object and the memory store, the
//! Lua script `core` encodes for Redis). One folder per adapter behind
//! [`FeatureStore`]: `durable_object/` (the default), `redis/`, `mongo/`, and
//! `memory.rs` for the tests; `gateway.rs` holds Redis and MongoDB
//! connections open in Durable Objects. Every store keeps drift summaries.

use std::fmt;

use freshet_core::drift::Summary;
use freshet_core::state::{Applied, EntityDelta, FeatureDoc};
use freshet_core::time::Millis;
use serde::{Deserialize, Serialize};

#[cfg(target_arch = "wasm32")]
pub mod durable_object;
#[cfg(target_arch = "wasm32")]
pub mod gateway;
pub mod memory;
pub mod mongo;
#[cfg(target_arch = "wasm32")]
pub(crate) mod object_call;
pub mod pool;
pub mod redis;
#[cfg(target_arch = "wasm32")]
pub mod socket;

#[cfg(test)]
mod test_support;

/// One entity instance: `user`/`cid-123`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EntityKey {
    pub entity: String,
    pub id: String,
}

impl EntityKey {
    pub fn new(entity: impl Into<String>, id: impl Into<String>) -> Self {
        Self {
            entity: entity.into(),
            id: id.into(),
        }
    }
}

/// One entity to read, and the features the reader wants of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntityRead {
    pub key: EntityKey,
    /// Feature names as the reader gave them (`pageviews`, `pageviews@1`);
    /// `None`: every feature. A store may give more than asked, never less.
    pub names: Option<Vec<String>>,
}

impl EntityRead {
    pub fn new(key: EntityKey, names: Option<Vec<String>>) -> Self {
        Self { key, names }
    }

    /// Every feature of each of `keys`.
    pub fn all_of(keys: &[EntityKey]) -> Vec<Self> {
        keys.iter().map(|k| Self::new(k.clone(), None)).collect()
    }
}

/// Why a store could not answer; the detail is for the log only (the client
/// sees 503 `store_unavailable`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// Connecting, reading or writing failed.
    Io(String),
    /// The whole round trip took longer than the configured timeout.
    Timeout { ms: u64 },
    /// The server's answer could not be framed or was not what was asked.
    Protocol(String),
    /// The server answered with an error (auth, script, out of memory).
    Server(String),
    /// A stored document does not decode.
    Corrupt(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "i/o: {e}"),
            Self::Timeout { ms } => write!(f, "no answer within {ms} ms"),
            Self::Protocol(e) => write!(f, "protocol: {e}"),
            Self::Server(e) => write!(f, "server error: {e}"),
            Self::Corrupt(e) => write!(f, "corrupt document: {e}"),
        }
    }
}

impl std::error::Error for StoreError {}

/// The seam between the routes and a store.
///
/// `apply` answers only once every delta is durable, so the edge never says
/// 202 before the data is safe. Futures need not be `Send`: a worker isolate
/// is single-threaded.
#[allow(async_fn_in_trait)]
pub trait FeatureStore {
    /// `durable-object`, `redis`, `mongodb`, `memory`: shown by `/health`.
    fn kind(&self) -> &'static str;

    /// Applies the deltas of one batch (at most one per entity), each at most
    /// once per batch id, in one round trip where the store allows it.
    async fn apply(&self, deltas: &[EntityDelta]) -> Result<Vec<Applied>, StoreError>;

    /// Removes each entity whole, features and batch markers (an erasure);
    /// answers how many of them held anything.
    async fn delete(&self, keys: &[EntityKey]) -> Result<usize, StoreError>;

    /// Loads the documents of `reads`, in order, with at least the features
    /// each names; a missing one is the default.
    async fn load(&self, reads: &[EntityRead]) -> Result<Vec<FeatureDoc>, StoreError>;

    /// Adds sampled served values to the drift summaries of the hour holding
    /// `now`, one per feature key, by increments (no read-modify-write).
    async fn add_drift(&self, now: Millis, adds: &[(String, Summary)]) -> Result<(), StoreError>;

    /// Each feature's summaries of the hours from `from` to `to`, merged;
    /// a summary that does not decode is that feature's error.
    async fn load_drift(
        &self,
        features: &[String],
        from: Millis,
        to: Millis,
    ) -> Result<Vec<Result<Summary, String>>, StoreError>;
}
