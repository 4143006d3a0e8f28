//! The routes: from a [`Request`] to a [`Response`], with the store behind
//! [`FeatureStore`] and the time passed in, so every path is tested natively.
//! One file per route group, as axum splits routing by concern; this one
//! holds the edge and sends each request to its route.

use std::collections::BTreeMap;

use freshet_core::drift::Summary;
use freshet_core::spec::FeatureSpec;
use freshet_core::time::Millis;

use crate::config::Config;
use crate::erasure::{MemoryRegistry, Registry};
use crate::error::EdgeError;
use crate::event_log::{Bucket, EventLog, MemoryBucket};
use crate::http::{Method, Request, Response};
use crate::queue::{IngestQueue, MemoryQueue};
use crate::rate_limit::{RateLimit, Unlimited};
use crate::store::FeatureStore;

mod auth;
mod backfill;
mod dead_letters;
mod drift;
mod erasures;
mod export;
mod health;
mod ingest;
mod read;
mod sign_in;

pub(crate) use erasures::without;
pub use erasures::{CLAIM_MS as ERASURE_CLAIM_MS, PATH as ERASURES_PATH};
pub use export::MAX_EXPORT_SPAN;
pub use ingest::IDENTITY_GRACE_S;
pub use read::{MAX_BATCH_ITEMS, MAX_ID_BYTES};

/// Everything a request needs: configuration, spec, store and rate limits,
/// built once per isolate by the glue.
#[derive(Debug)]
pub struct Edge<S, L = Unlimited, B = MemoryBucket, Q = MemoryQueue, R = MemoryRegistry> {
    pub config: Config,
    pub spec: &'static FeatureSpec,
    pub store: S,
    pub limiter: L,
    pub log: EventLog<B>,
    /// Where ingest sends batches with `FRESHET_PIPELINE=queue`; unused
    /// in the direct pipeline.
    pub queue: Q,
    /// Erasures' tombstones, indexes and records.
    pub registry: R,
}

/// A response, and the error behind it when the operator should see it.
#[derive(Debug)]
pub struct Handled {
    pub response: Response,
    pub fault: Option<EdgeError>,
    /// A sampled read's served values by feature key, for the drift
    /// summaries; the glue writes them after the response is sent.
    pub drift: Vec<(String, Summary)>,
    /// An ingest that made or fed a sign-in link: the glue runs the moves
    /// due once the store has settled ([`Edge::advance_links`]), for writes
    /// still landing on the client then.
    pub moves: bool,
}

/// The routes by path. What each answers is in one place, [`Route::allow`],
/// which the dispatch in [`Edge::handle_sampled`] follows and a 405 names,
/// as axum answers with the `Allow` of the route asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Ingest,
    Health,
    ReadOne,
    ReadBatch,
    Events,
    Backfill,
    Drift,
    DeadLetters,
    Erasures,
}

impl Route {
    fn of(path: &str) -> Option<Self> {
        Some(match path {
            "/v1/ingest" => Self::Ingest,
            "/health" => Self::Health,
            "/v1/features/batch" => Self::ReadBatch,
            "/v1/events" => Self::Events,
            "/v1/backfill" => Self::Backfill,
            "/v1/drift" => Self::Drift,
            "/v1/dead-letters" => Self::DeadLetters,
            p if p == erasures::PATH || p.starts_with("/v1/erasures/") => Self::Erasures,
            p if p.starts_with("/v1/features/") => Self::ReadOne,
            _ => return None,
        })
    }

    /// The methods the route answers, as `Allow` lists them.
    fn allow(self) -> &'static str {
        match self {
            Self::Ingest => "POST, OPTIONS",
            Self::Health => "GET, HEAD",
            Self::ReadOne | Self::Events | Self::Drift => "GET",
            Self::ReadBatch | Self::Backfill => "POST",
            Self::DeadLetters | Self::Erasures => "GET, POST",
        }
    }
}

/// Where a sampled read's served values go; `None` when not sampled.
type DriftSink = Option<BTreeMap<String, Summary>>;

impl<S: FeatureStore, L: RateLimit, B: Bucket, Q: IngestQueue, R: Registry> Edge<S, L, B, Q, R> {
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
        let route = Route::of(&req.path);
        let mut moves = false;
        let mut move_failed = None;
        let result = match (route, req.method) {
            (None, _) => Err(EdgeError::NotFound),
            (Some(Route::Ingest), Method::Options) => self.preflight(origin),
            (Some(Route::Ingest), Method::Post) => {
                self.ingest(req, now).await.map(|(res, linked, failed)| {
                    moves = linked;
                    move_failed = failed;
                    res
                })
            }
            (Some(Route::Health), Method::Get | Method::Head) => {
                Ok(Response::json(200, &self.health().await))
            }
            (Some(Route::ReadBatch), Method::Post) => self.read_batch(req, now, &mut sink).await,
            (Some(Route::ReadOne), Method::Get) => {
                self.read_one(req, &req.path, now, &mut sink).await
            }
            (Some(Route::Events), Method::Get) => self.export_events(req, now).await,
            (Some(Route::Backfill), Method::Post) => self.backfill(req, now).await,
            (Some(Route::Drift), Method::Get) => self.drift(req, now).await,
            (Some(Route::DeadLetters), Method::Get | Method::Post) => {
                self.dead_letters_route(req, now).await
            }
            (Some(Route::Erasures), Method::Get | Method::Post) => {
                self.erasures_route(req, now).await
            }
            (Some(route), _) => Err(EdgeError::MethodNotAllowed {
                allow: route.allow(),
            }),
        };
        let (mut response, fault, drift) = match result {
            // A taken batch whose sign-in move failed: the operator hears.
            Ok(res) => (
                res,
                move_failed,
                sink.unwrap_or_default().into_iter().collect(),
            ),
            Err(e) => (
                e.to_response(),
                e.is_server_fault().then_some(e),
                Vec::new(),
            ),
        };
        // The browser may read an ingest answer (errors too) only when the
        // origin is one a write key admits; the per-key check happened above.
        if route == Some(Route::Ingest)
            && req.method != Method::Options
            && let Some(origin) = origin.filter(|o| self.config.any_key_allows(o))
        {
            response = ingest::with_cors(response, origin);
        }
        Handled {
            response,
            fault,
            drift,
            moves,
        }
    }
}
