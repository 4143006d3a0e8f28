//! `POST /v1/ingest` and its CORS preflight: a tracker's batch checked
//! (write key, origin, identity, rate limits), aggregated by `core`, and
//! answered 202 only once the store and the event log hold it, or, in the
//! queue pipeline, once the ingest queue does (`crate::queue`).

use freshet_core::aggregate::aggregate_checked;
use freshet_core::identity::{IdentityError, verify_token};
use freshet_core::log::LoggedBatch;
use freshet_core::state::EntityDelta;
use freshet_core::time::Millis;
use freshet_core::validate::{ValidBatch, receive};
use freshet_core::wire::WRITE_KEY_HEADER;
use serde_json::json;

use super::erasures::erased_skip;
use super::{Edge, Route, without};
use crate::config::{ConfigError, Pipeline, WRITE_KEYS_VAR};
use crate::erasure::Registry;
use crate::error::EdgeError;
use crate::event_log::Bucket;
use crate::http::{Body, Request, Response};
use crate::queue::{IngestQueue, messages_of};
use crate::rate_limit::{RateLimit, Scope, key_of};
use crate::store::FeatureStore;

/// Seconds an identity token is still honoured after its expiry. A batch
/// first sent while its token was valid (a beacon, an answer lost on the way)
/// is resent to confirm it; batch markers are per entity, so if the resend
/// were refused as expired, the tracker's fallback (resend without the token,
/// under the clientId) would count it a second time, under another entity.
/// The tracker resends within about 30 s; five minutes covers that and
/// ordinary clock skew between the site's server and the edge.
pub const IDENTITY_GRACE_S: i64 = 300;

impl<S: FeatureStore, L: RateLimit, B: Bucket, Q: IngestQueue, R: Registry> Edge<S, L, B, Q, R> {
    /// A deployment with no write key would refuse every batch as 401, which
    /// reads as the tracker's fault; say what is wrong instead.
    fn require_write_keys(&self) -> Result<(), EdgeError> {
        if self.config.write_keys.is_empty() {
            return Err(EdgeError::Misconfigured(ConfigError::Invalid {
                var: WRITE_KEYS_VAR,
                why: "no write key is configured, so ingest is refused; set it to \
                      `key=https://site.example,key2=*` (locally: edge/.dev.vars or --var)"
                    .into(),
            }));
        }
        Ok(())
    }

    pub(super) fn preflight(&self, origin: Option<&str>) -> Result<Response, EdgeError> {
        self.require_write_keys()?;
        let Some(origin) = origin else {
            return Ok(Response::empty(204).with_header("allow", Route::Ingest.allow()));
        };
        if !self.config.any_key_allows(origin) {
            return Err(EdgeError::OriginNotAllowed);
        }
        Ok(with_cors(Response::empty(204), origin)
            .with_header("access-control-allow-methods", "POST, OPTIONS")
            .with_header(
                "access-control-allow-headers",
                "content-type, x-freshet-key",
            )
            .with_header("access-control-max-age", "86400"))
    }

    /// Answers a batch, whether it made or fed a sign-in link, and a
    /// sign-in move that failed (left for the job; the batch is taken).
    pub(super) async fn ingest(
        &self,
        req: &Request,
        now: Millis,
    ) -> Result<(Response, bool, Option<EdgeError>), EdgeError> {
        self.require_write_keys()?;
        check_content_type(req)?;
        let origin = req.header("origin");
        // A key in the header is checked before the body is even parsed.
        let header_key = req.header(WRITE_KEY_HEADER).filter(|k| !k.is_empty());
        if let Some(key) = header_key {
            self.authorize_key(key, origin)?;
        }
        let body = match &req.body {
            Body::Bytes(bytes) => bytes,
            Body::TooLarge => {
                return Err(EdgeError::BodyTooLarge {
                    limit: self.config.limits.max_body_bytes,
                });
            }
        };
        let batch = receive(body, now, &self.config.limits)?;
        let key = header_key
            .or(batch.write_key.as_deref())
            .ok_or(EdgeError::MissingWriteKey)?;
        self.authorize_key(key, origin)?;
        let verified_user = self.verify_identity(&batch, now)?;
        self.rate_limit(key, &batch).await?;

        let mut aggregated = aggregate_checked(self.spec, &batch, verified_user.as_deref());
        let mut logged = LoggedBatch::of(&batch, key, verified_user.as_deref(), self.spec.hash());
        // Events of an erased person, at or before the erasure: never
        // counted, never logged (`erasures.rs`).
        let gate = self.gate(&logged, &aggregated.deltas, now).await?;
        let dropped = gate.dropped;
        // The sent batch's index of each event left.
        let mut kept: Vec<usize> = (0..batch.events.len()).collect();
        if !dropped.is_empty() {
            logged = without(&logged, &dropped);
            kept.retain(|i| dropped.binary_search(i).is_err());
            let mut rest = batch.clone();
            rest.events.clone_from(&logged.events);
            aggregated = aggregate_checked(self.spec, &rest, verified_user.as_deref());
        }
        let mut moved = None;
        match self.config.pipeline {
            Pipeline::Direct => {
                self.store_and_log(&aggregated.deltas, &logged).await?;
                // A sign-in: the visitor's features follow them to the user
                // before the 202, so the next read sees them.
                moved = self.move_clients(&gate.follow, now).await;
            }
            // 202 once the queue holds the batch; its consumer applies it
            // (`Edge::consume`). A batch with no valid event has nothing to send.
            Pipeline::Queue if !logged.events.is_empty() => {
                self.queue
                    .send(messages_of(&logged))
                    .await
                    .map_err(EdgeError::QueueUnavailable)?;
            }
            Pipeline::Queue => {}
        }
        let rejected: Vec<_> = batch
            .rejected
            .iter()
            .map(|r| json!({ "index": r.index, "reason": r.error.code() }))
            .collect();
        let mut answer = json!({ "accepted": batch.events.len(), "rejected": rejected });
        // An accepted event that one feature could not use (a vector of the
        // wrong length): named, so the sender can fix it; its other
        // features counted. An erased person's event: named, not counted.
        let mut skipped: Vec<serde_json::Value> = aggregated
            .skipped
            .iter()
            .map(|s| {
                json!({
                    "index": batch.body_index(kept[s.event]),
                    "feature": s.feature,
                    "reason": s.reason,
                })
            })
            .collect();
        skipped.extend(dropped.iter().map(|&i| erased_skip(batch.body_index(i))));
        if !skipped.is_empty() {
            answer["skipped"] = serde_json::Value::Array(skipped);
        }
        Ok((Response::json(202, &answer), !gate.follow.is_empty(), moved))
    }

    /// Writes a batch's deltas to the store and the batch to the log, in
    /// parallel: ingest does it before its 202 in the direct pipeline, the
    /// queue's consumer for each message. A retry after a failure of either
    /// finds the store's batch marker (nothing applied twice) and the log's
    /// object (nothing logged twice), and completes whichever was missing.
    pub(crate) async fn store_and_log(
        &self,
        deltas: &[EntityDelta],
        logged: &LoggedBatch,
    ) -> Result<(), EdgeError> {
        let (stored, appended) =
            futures_util::future::join(self.store.apply(deltas), self.log.append(logged)).await;
        stored?;
        appended.map_err(EdgeError::LogUnavailable)
    }

    /// Counts the batch against its client's limit, then its site's. Only a
    /// batch that passed every other check is counted, so bad keys cannot use
    /// up a site's limit, and a client over its own limit no longer counts
    /// against its site's, so one flooding browser cannot starve the others.
    async fn rate_limit(&self, write_key: &str, batch: &ValidBatch) -> Result<(), EdgeError> {
        // A batch whose events were all rejected counts under an empty client id.
        let client = batch.events.first().map_or("", |e| e.client_id.as_str());
        for scope in [Scope::Client, Scope::Site] {
            if !self
                .limiter
                .admit(scope, &key_of(scope, write_key, client))
                .await
            {
                return Err(EdgeError::RateLimited {
                    scope,
                    retry_after_s: self.config.rate_limit_period_s,
                });
            }
        }
        Ok(())
    }

    fn authorize_key(&self, key: &str, origin: Option<&str>) -> Result<(), EdgeError> {
        let key = self
            .config
            .write_key(key)
            .ok_or(EdgeError::UnknownWriteKey)?;
        match origin {
            Some(origin) if !key.origins.allows(origin) => Err(EdgeError::OriginNotAllowed),
            _ => Ok(()),
        }
    }

    /// The userId an identity token vouches for, by any of the identity
    /// secrets; without one, tokens are ignored and features key by clientId. A token is
    /// honoured for [`IDENTITY_GRACE_S`] past its expiry: see there.
    fn verify_identity(
        &self,
        batch: &ValidBatch,
        now: Millis,
    ) -> Result<Option<String>, EdgeError> {
        let as_of = now.div_euclid(1000) - IDENTITY_GRACE_S;
        let Some(token) = &batch.identity else {
            return Ok(None);
        };
        if self.config.identity_secrets.is_empty() {
            return Ok(None);
        }
        // Any of the secrets (a rotation holds two); a token one of them
        // signed but that has expired is `identity_expired`, one none of
        // them signed `identity_bad_signature`.
        let mut refused = IdentityError::BadSignature;
        for secret in self.config.identity_secrets.iter() {
            match verify_token(secret.value.expose().as_bytes(), token, as_of) {
                Ok(user) => return Ok(Some(user)),
                Err(IdentityError::BadSignature) => {}
                Err(e) => refused = e,
            }
        }
        Err(EdgeError::Identity(refused))
    }
}

fn check_content_type(req: &Request) -> Result<(), EdgeError> {
    let Some(ct) = req.header("content-type") else {
        return Ok(());
    };
    let media = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match media.as_str() {
        "application/json" | "text/plain" | "" => Ok(()),
        _ => Err(EdgeError::UnsupportedMediaType),
    }
}

pub(super) fn with_cors(res: Response, origin: &str) -> Response {
    res.with_header("access-control-allow-origin", origin)
        .with_header("vary", "Origin")
        // A tracker calling the edge cross-origin must see how long to back off.
        .with_header("access-control-expose-headers", "Retry-After")
}
