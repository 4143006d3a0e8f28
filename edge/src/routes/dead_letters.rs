//! `/v1/dead-letters` (admin token): `GET` lists the queue pipeline's dead
//! letters, `POST` applies them again (`crate::queue::dead`).

use serde_json::json;

use super::Edge;
use super::auth::bearer;
use crate::erasure::Registry;
use crate::error::EdgeError;
use crate::event_log::Bucket;
use crate::http::{Method, Request, Response};
use crate::queue::IngestQueue;
use crate::rate_limit::RateLimit;
use crate::store::FeatureStore;

impl<S: FeatureStore, L: RateLimit, B: Bucket, Q: IngestQueue, R: Registry> Edge<S, L, B, Q, R> {
    pub(super) async fn dead_letters_route(
        &self,
        req: &Request,
        now: freshet_core::time::Millis,
    ) -> Result<Response, EdgeError> {
        bearer(
            req,
            &self.config.admin_tokens,
            EdgeError::DeadLettersDisabled,
            EdgeError::AdminUnauthorized,
        )?;
        if req.method == Method::Post {
            let done = self.redrive(now).await?;
            let failed: Vec<_> = done
                .failed
                .iter()
                .map(|(key, why)| json!({"key": key, "error": why}))
                .collect();
            return Ok(Response::json(
                200,
                &json!({"applied": done.applied, "failed": failed}),
            ));
        }
        let letters = self.dead_letters().await?;
        let keys: Vec<&str> = letters.iter().map(|l| l.key.as_str()).collect();
        Ok(Response::json(
            200,
            &json!({"count": letters.len(), "keys": keys}),
        ))
    }
}
