//! The routes: from a [`Request`] to a [`Response`], with the store behind
//! [`FeatureStore`] and the time passed in, so every path is tested natively.
//! One file per route group, as axum splits routing by concern; this one
//! holds the edge and sends each request to its route.

use std::collections::BTreeMap;

use freshet_core::drift::Summary;
use freshet_core::spec::FeatureSpec;
use freshet_core::time::Millis;

use crate::config::Config;
use crate::error::EdgeError;
use crate::event_log::{Bucket, EventLog, MemoryBucket};
use crate::http::{Method, Request, Response};
use crate::rate_limit::{RateLimit, Unlimited};
use crate::store::FeatureStore;

mod auth;
mod backfill;
mod drift;
mod export;
mod health;
mod ingest;
mod read;

pub use export::MAX_EXPORT_SPAN;
pub use ingest::IDENTITY_GRACE_S;
pub use read::{MAX_BATCH_ITEMS, MAX_ID_BYTES};

/// Everything a request needs: configuration, spec, store and rate limits,
/// built once per isolate by the glue.
#[derive(Debug)]
pub struct Edge<S, L = Unlimited, B = MemoryBucket> {
    pub config: Config,
    pub spec: &'static FeatureSpec,
    pub store: S,
    pub limiter: L,
    pub log: EventLog<B>,
}

/// A response, and the error behind it when the operator should see it.
#[derive(Debug)]
pub struct Handled {
    pub response: Response,
    pub fault: Option<EdgeError>,
    /// A sampled read's served values by feature key, for the drift
    /// summaries; the glue writes them after the response is sent.
    pub drift: Vec<(String, Summary)>,
}

/// Where a sampled read's served values go; `None` when not sampled.
type DriftSink = Option<BTreeMap<String, Summary>>;

impl<S: FeatureStore, L: RateLimit, B: Bucket> Edge<S, L, B> {
    /// Answers one request at time `now`, sampling no read.
    pub async fn handle(&self, req: &Request, now: Millis) -> Handled {
        self.handle_sampled(req, now, 1.0).await
    }

    /// Answers one request; `draw` (uniform in [0, 1)) decides whether a
    /// read is sampled for drift: below the configured rate.
    pub async fn handle_sampled(&self, req: &Request, now: Millis, draw: f64) -> Handled {
        let rate = f64::from(self.config.drift_samples_per_million) / 1e6;
        let mut sink: DriftSink = (draw < rate).then(BTreeMap::new);
        let origin = req.header("origin");
        let ingest = req.path == "/v1/ingest";
        let result = match (req.method, req.path.as_str()) {
            (Method::Options, "/v1/ingest") => self.preflight(origin),
            (Method::Post, "/v1/ingest") => self.ingest(req, now).await,
            (Method::Get | Method::Head, "/health") => Ok(Response::json(200, &self.health())),
            (Method::Post, "/v1/features/batch") => self.read_batch(req, now, &mut sink).await,
            (Method::Get, "/v1/drift") => self.drift(req, now).await,
            (Method::Get, "/v1/events") => self.export_events(req, now).await,
            (Method::Post, "/v1/backfill") => self.backfill(req).await,
            (Method::Get, path) if path.starts_with("/v1/features/") => {
                self.read_one(req, path, now, &mut sink).await
            }
            (
                _,
                "/v1/ingest" | "/health" | "/v1/features/batch" | "/v1/events" | "/v1/backfill"
                | "/v1/drift",
            ) => Err(EdgeError::MethodNotAllowed),
            (_, path) if path.starts_with("/v1/features/") => Err(EdgeError::MethodNotAllowed),
            _ => Err(EdgeError::NotFound),
        };
        let (mut response, fault, drift) = match result {
            Ok(res) => (res, None, sink.unwrap_or_default().into_iter().collect()),
            Err(e) => (
                e.to_response(),
                e.is_server_fault().then_some(e),
                Vec::new(),
            ),
        };
        // The browser may read an ingest answer (errors too) only when the
        // origin is one a write key admits; the per-key check happened above.
        if ingest
            && req.method != Method::Options
            && let Some(origin) = origin.filter(|o| self.config.any_key_allows(o))
        {
            response = ingest::with_cors(response, origin);
        }
        Handled {
            response,
            fault,
            drift,
        }
    }
}
