//! Store connections held open across requests. A socket a worker request
//! opens dies with that request ("Cannot perform I/O on behalf of a different
//! request"), but a Durable Object's I/O context lives as long as the object,
//! so a socket it opens serves every later request to it. The worker hands a
//! batch's deltas (or a read's keys) to one of a few `StoreGateway` objects
//! (`id_from_name("store-gw-{n}")`, `n` round-robin per isolate, the count
//! from `FRESHET_STORE_GATEWAYS`); the object runs them through the same
//! store code as the direct path, over a pooled, already authenticated
//! connection (`store::pool`), and answers only once the store did. Nothing
//! store-specific lives here: the object holds the store of `FRESHET_STORE`
//! (`RedisStore` or `MongoStore`) with a pool.

use std::cell::Cell;

use freshet_core::drift::Summary;
use freshet_core::state::{Applied, EntityDelta, FeatureDoc};
use freshet_core::time::Millis;
use serde::{Deserialize, Serialize};
use worker::{
    DurableObject, Env, Method, ObjectNamespace, Request, Response, Result, State, durable_object,
};

use super::mongo::{MongoStore, WorkerSocket};
use super::object_call::call_object;
use super::pool::PoolLimits;
use super::redis::{RedisStore, SocketConnector};
use super::{EntityKey, EntityRead, FeatureStore, StoreError};
use crate::config::StoreConfig;
use crate::config::env::{config, spec as worker_spec};

/// The binding name in `wrangler.toml`.
pub const BINDING: &str = "STORE_GATEWAY";

/// Connections each gateway object keeps idle. More exchanges in flight at
/// once open more; those beyond this are closed after use.
pub const POOL: PoolLimits = PoolLimits {
    max_idle: 8,
    // Well under the idle timeouts of servers and load balancers (minutes).
    max_idle_ms: 60_000,
};

/// The worker's side: sends each exchange to one of `count` gateway objects.
#[derive(Debug)]
pub struct GatewayStore {
    namespace: ObjectNamespace,
    count: u32,
    next: Cell<u32>,
    kind: &'static str,
}

impl GatewayStore {
    /// `kind` is the store behind the gateways (`redis`), shown by `/health`.
    pub fn new(namespace: ObjectNamespace, count: u32, kind: &'static str) -> Self {
        Self {
            namespace,
            count: count.max(1),
            next: Cell::new(0),
            kind,
        }
    }

    async fn call(&self, path: &str, body: String) -> std::result::Result<String, StoreError> {
        let n = self.next.get();
        self.next.set((n + 1) % self.count);
        let name = format!("store-gw-{n}");
        call_object(
            &self.namespace,
            "store gateway",
            &name,
            Method::Post,
            path,
            Some(body),
        )
        .await
    }
}

/// `/drift/add`'s body: sampled summaries for the hour holding `now`.
#[derive(Debug, Serialize, Deserialize)]
struct DriftAdd {
    now: Millis,
    adds: Vec<(String, Summary)>,
}

/// `/drift/load`'s body.
#[derive(Debug, Serialize, Deserialize)]
struct DriftLoad {
    features: Vec<String>,
    from: Millis,
    to: Millis,
}

impl FeatureStore for GatewayStore {
    fn kind(&self) -> &'static str {
        self.kind
    }

    async fn add_drift(
        &self,
        now: Millis,
        adds: &[(String, Summary)],
    ) -> std::result::Result<(), StoreError> {
        if adds.is_empty() {
            return Ok(());
        }
        let body = serde_json::to_string(&DriftAdd {
            now,
            adds: adds.to_vec(),
        })
        .map_err(|e| StoreError::Protocol(e.to_string()))?;
        self.call("/drift/add", body).await.map(|_| ())
    }

    async fn load_drift(
        &self,
        features: &[String],
        from: Millis,
        to: Millis,
    ) -> std::result::Result<Vec<std::result::Result<Summary, String>>, StoreError> {
        let body = serde_json::to_string(&DriftLoad {
            features: features.to_vec(),
            from,
            to,
        })
        .map_err(|e| StoreError::Protocol(e.to_string()))?;
        let text = self.call("/drift/load", body).await?;
        serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(e.to_string()))
    }

    async fn apply(&self, deltas: &[EntityDelta]) -> std::result::Result<Vec<Applied>, StoreError> {
        if deltas.is_empty() {
            return Ok(Vec::new());
        }
        let body =
            serde_json::to_string(deltas).map_err(|e| StoreError::Protocol(e.to_string()))?;
        let text = self.call("/apply", body).await?;
        let applied: Vec<bool> =
            serde_json::from_str(&text).map_err(|e| StoreError::Protocol(e.to_string()))?;
        if applied.len() != deltas.len() {
            return Err(StoreError::Protocol("the gateway answered too few".into()));
        }
        Ok(applied
            .into_iter()
            .map(|a| {
                if a {
                    Applied::Applied
                } else {
                    Applied::Duplicate
                }
            })
            .collect())
    }

    async fn delete(&self, keys: &[EntityKey]) -> std::result::Result<usize, StoreError> {
        if keys.is_empty() {
            return Ok(0);
        }
        let body = serde_json::to_string(keys).map_err(|e| StoreError::Protocol(e.to_string()))?;
        let text = self.call("/delete", body).await?;
        serde_json::from_str(&text).map_err(|e| StoreError::Protocol(e.to_string()))
    }

    async fn load(&self, reads: &[EntityRead]) -> std::result::Result<Vec<FeatureDoc>, StoreError> {
        if reads.is_empty() {
            return Ok(Vec::new());
        }
        let body = serde_json::to_string(reads).map_err(|e| StoreError::Protocol(e.to_string()))?;
        let text = self.call("/load", body).await?;
        serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(e.to_string()))
    }
}

/// A store with a pool, as the gateway holds it.
#[derive(Debug)]
enum PooledStore {
    Redis(RedisStore<SocketConnector>),
    Mongo(MongoStore<WorkerSocket>),
}

impl PooledStore {
    async fn apply(&self, deltas: &[EntityDelta]) -> std::result::Result<Vec<Applied>, StoreError> {
        match self {
            Self::Redis(s) => s.apply(deltas).await,
            Self::Mongo(s) => s.apply(deltas).await,
        }
    }

    async fn load(&self, reads: &[EntityRead]) -> std::result::Result<Vec<FeatureDoc>, StoreError> {
        match self {
            Self::Redis(s) => s.load(reads).await,
            Self::Mongo(s) => s.load(reads).await,
        }
    }

    async fn delete(&self, keys: &[EntityKey]) -> std::result::Result<usize, StoreError> {
        match self {
            Self::Redis(s) => s.delete(keys).await,
            Self::Mongo(s) => s.delete(keys).await,
        }
    }

    async fn add_drift(
        &self,
        now: Millis,
        adds: &[(String, Summary)],
    ) -> std::result::Result<(), StoreError> {
        match self {
            Self::Redis(s) => s.add_drift(now, adds).await,
            Self::Mongo(s) => s.add_drift(now, adds).await,
        }
    }

    async fn load_drift(
        &self,
        features: &[String],
        from: Millis,
        to: Millis,
    ) -> std::result::Result<Vec<std::result::Result<Summary, String>>, StoreError> {
        match self {
            Self::Redis(s) => s.load_drift(features, from, to).await,
            Self::Mongo(s) => s.load_drift(features, from, to).await,
        }
    }
}

/// The object's side: a store whose pool outlives each request.
#[durable_object]
pub struct StoreGateway {
    store: std::result::Result<PooledStore, String>,
}

impl std::fmt::Debug for StoreGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreGateway").finish_non_exhaustive()
    }
}

impl StoreGateway {
    async fn run(&self, path: &str, body: &str) -> std::result::Result<String, String> {
        let store = self.store.as_ref().map_err(Clone::clone)?;
        let out = match path {
            "/apply" => {
                // serde_json, not `req.json()`: the delta's maps have integer
                // keys, which JSON carries as strings.
                let deltas: Vec<EntityDelta> =
                    serde_json::from_str(body).map_err(|e| format!("deltas: {e}"))?;
                let applied = store.apply(&deltas).await.map_err(|e| e.to_string())?;
                let flags: Vec<bool> = applied.iter().map(|a| *a == Applied::Applied).collect();
                serde_json::to_string(&flags)
            }
            "/load" => {
                let reads: Vec<EntityRead> =
                    serde_json::from_str(body).map_err(|e| format!("reads: {e}"))?;
                let docs = store.load(&reads).await.map_err(|e| e.to_string())?;
                serde_json::to_string(&docs)
            }
            "/delete" => {
                let keys: Vec<EntityKey> =
                    serde_json::from_str(body).map_err(|e| format!("keys: {e}"))?;
                let found = store.delete(&keys).await.map_err(|e| e.to_string())?;
                serde_json::to_string(&found)
            }
            "/drift/add" => {
                let add: DriftAdd =
                    serde_json::from_str(body).map_err(|e| format!("drift summaries: {e}"))?;
                store
                    .add_drift(add.now, &add.adds)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok("null".to_owned())
            }
            "/drift/load" => {
                let load: DriftLoad =
                    serde_json::from_str(body).map_err(|e| format!("drift query: {e}"))?;
                let live = store
                    .load_drift(&load.features, load.from, load.to)
                    .await
                    .map_err(|e| e.to_string())?;
                serde_json::to_string(&live)
            }
            other => return Err(format!("no route {other}")),
        };
        out.map_err(|e| e.to_string())
    }
}

impl DurableObject for StoreGateway {
    fn new(_state: State, env: Env) -> Self {
        let store = match (config(&env), worker_spec(&env)) {
            (Ok(config), Ok(spec)) => match &config.store {
                StoreConfig::Redis(url) => Ok(PooledStore::Redis(RedisStore::pooled(
                    spec,
                    url.clone(),
                    config.store_timeout_ms,
                    SocketConnector,
                    POOL,
                ))),
                StoreConfig::Mongo(url) => Ok(PooledStore::Mongo(MongoStore::pooled(
                    spec,
                    url.clone(),
                    config.store_timeout_ms,
                    WorkerSocket,
                    POOL,
                ))),
                other => Err(format!("no gateway for the {} store", other.kind())),
            },
            (Err(e), _) => Err(e.to_string()),
            (_, Err(e)) => Err(e.to_string()),
        };
        Self { store }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let body = req.text().await?;
        match self.run(&req.path(), &body).await {
            Ok(text) => Response::ok(text),
            // The worker logs it with the request's other faults.
            Err(e) => Response::error(e, 503),
        }
    }
}
