//! `POST /v1/backfill`: a new feature version filled from the event log.

use freshet_core::aggregate::aggregate;
use freshet_core::log::parse_ndjson;
use freshet_core::state::Applied;
use freshet_core::time::Millis;
use serde_json::json;

use super::Edge;
use super::auth::bearer;
use crate::erasure::Registry;
use crate::error::EdgeError;
use crate::event_log::Bucket;
use crate::http::{Body, Request, Response};
use crate::queue::IngestQueue;
use crate::rate_limit::RateLimit;
use crate::store::FeatureStore;

impl<S: FeatureStore, L: RateLimit, B: Bucket, Q: IngestQueue, R: Registry> Edge<S, L, B, Q, R> {
    /// `POST /v1/backfill?feature=<name@version>`, admin token: NDJSON log
    /// lines (as `GET /v1/events` or a log object has them, whole batches)
    /// folded into that one feature version and applied to the store under
    /// the version's own batch marker
    /// ([`freshet_core::aggregate::backfill_marker`]). Batches logged
    /// by this edge's spec are skipped: its live writes applied them. So
    /// live writes and any number of backfill runs count each batch once.
    /// Every batch passes the erasure gate, as at ingest.
    pub(super) async fn backfill(&self, req: &Request, now: Millis) -> Result<Response, EdgeError> {
        let expected = &self.config.admin_tokens;
        bearer(
            req,
            expected,
            EdgeError::BackfillDisabled,
            EdgeError::AdminUnauthorized,
        )?;
        let key = req
            .query_param("feature")
            .ok_or_else(|| EdgeError::BadRequest("`feature` (name@version) is required".into()))?;
        let Some(def) = self.spec.feature(&key) else {
            return Err(EdgeError::BadRequest(format!(
                "`{key}` is not a feature version of this edge's spec (name@version)"
            )));
        };
        if !def.backfill {
            return Err(EdgeError::BadRequest(format!(
                "`{key}` is not marked `backfill = true`: its live writes share each batch's \
                 marker with the other features, so a backfill could count a batch twice"
            )));
        }
        let body = match &req.body {
            Body::Bytes(bytes) => bytes,
            Body::TooLarge => {
                return Err(EdgeError::BodyTooLarge {
                    limit: self.config.limits.max_body_bytes,
                });
            }
        };
        let batches = parse_ndjson(body).map_err(|e| EdgeError::BadRequest(e.to_string()))?;
        let only = self.spec.retain(|f| f.key() == key);
        let mut live = 0;
        let mut deltas = Vec::new();
        for b in &batches {
            if b.spec.as_deref() == Some(self.spec.hash()) {
                live += 1;
                continue;
            }
            // An erased person's events stay out, from a log read before its
            // rewrite or from a copy kept elsewhere.
            let (b, _, _) = self.gated(b.clone(), now).await?;
            deltas.extend(aggregate(
                &only,
                &b.to_valid_batch(),
                b.verified_user.as_deref(),
            ));
        }
        let outcomes = self.store.apply(&deltas).await?;
        let applied = outcomes.iter().filter(|a| **a == Applied::Applied).count();
        Ok(Response::json(
            200,
            &json!({
                "feature": key,
                "batches": batches.len(),
                "live": live,
                "applied": applied,
                "duplicates": outcomes.len() - applied,
            }),
        ))
    }
}
