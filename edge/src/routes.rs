//! The routes: from a [`Request`] to a [`Response`], with the store behind
//! [`FeatureStore`] and the time passed in, so every path is tested natively.

use std::collections::BTreeMap;

use freshet_core::aggregate::{aggregate, aggregate_checked};
use freshet_core::drift::{Baseline, SUMMARY_TTL_SECS, Summary, Thresholds, check_drift};
use freshet_core::identity::verify_token;
use freshet_core::log::{LoggedBatch, parse_ndjson};
use freshet_core::read::{FeatureValues, ReadError, read_features};
use freshet_core::spec::{EntityDef, FeatureSpec, PairError, parse_duration};
use freshet_core::state::Applied;
use freshet_core::time::{DAY, HOUR, Millis, SECOND, format_rfc3339, parse_rfc3339};
use freshet_core::validate::{ValidBatch, receive};
use freshet_core::wire::WRITE_KEY_HEADER;
use serde::Deserialize;
use serde_json::json;

use crate::config::{Config, ConfigError, WRITE_KEYS_VAR};
use crate::error::EdgeError;
use crate::event_log::{Bucket, EventLog, MAX_EXPORT_BATCHES, MemoryBucket};
use crate::http::{Body, Method, Request, Response, percent_decode};
use crate::rate_limit::{RateLimit, Scope, Unlimited, key_of};

use crate::store::{EntityKey, EntityRead, FeatureStore};

/// Most items in one `POST /v1/features/batch`.
pub const MAX_BATCH_ITEMS: usize = 200;
/// Seconds an identity token is still honoured after its expiry. A batch
/// first sent while its token was valid (a beacon, an answer lost on the way)
/// is resent to confirm it; batch markers are per entity, so if the resend
/// were refused as expired, the tracker's fallback (resend without the token,
/// under the clientId) would count it a second time, under another entity.
/// The tracker resends within about 30 s; five minutes covers that and
/// ordinary clock skew between the site's server and the edge.
pub const IDENTITY_GRACE_S: i64 = 300;
/// Longest entity id in a serving path or batch read.
pub const MAX_ID_BYTES: usize = 256;
/// Longest receive-time span of one `GET /v1/events`: each day of it (and 9
/// around it) is one listing of the bucket.
pub const MAX_EXPORT_SPAN: Millis = 31 * DAY;

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
        let mut sink: DriftSink = (draw < rate && self.store.keeps_drift()).then(BTreeMap::new);
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
            response = with_cors(response, origin);
        }
        Handled {
            response,
            fault,
            drift,
        }
    }

    /// `/health`: the store, the hash of the compiled-in spec (readers and
    /// trained models compare theirs with it), and whether ingest can run.
    fn health(&self) -> serde_json::Value {
        let ingest = if self.config.write_keys.is_empty() {
            "misconfigured"
        } else {
            "ok"
        };
        json!({
            "status": "ok",
            "store": self.store.kind(),
            "spec": self.spec.hash(),
            "ingest": ingest,
            "log": self.log.kind(),
        })
    }

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

    fn preflight(&self, origin: Option<&str>) -> Result<Response, EdgeError> {
        self.require_write_keys()?;
        let Some(origin) = origin else {
            return Ok(Response::empty(204).with_header("allow", "POST, OPTIONS"));
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

    async fn ingest(&self, req: &Request, now: Millis) -> Result<Response, EdgeError> {
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

        let aggregated = aggregate_checked(self.spec, &batch, verified_user.as_deref());
        let deltas = aggregated.deltas;
        // The store and the log in parallel; 202 only once both hold the
        // batch. A retry after a failure of either finds the store's batch
        // marker (nothing applied twice) and the log's object (nothing
        // logged twice), and completes whichever was missing.
        let logged = LoggedBatch::of(&batch, key, verified_user.as_deref(), self.spec.hash());
        let (stored, logged) =
            futures_util::future::join(self.store.apply(&deltas), self.log.append(&logged)).await;
        stored?;
        logged.map_err(EdgeError::LogUnavailable)?;
        let rejected: Vec<_> = batch
            .rejected
            .iter()
            .map(|r| json!({ "index": r.index, "reason": r.error.code() }))
            .collect();
        let mut answer = json!({ "accepted": batch.events.len(), "rejected": rejected });
        // An accepted event that one feature could not use (a vector of the
        // wrong length): named, so the sender can fix it; its other
        // features counted.
        if !aggregated.skipped.is_empty() {
            answer["skipped"] = aggregated
                .skipped
                .iter()
                .map(|s| {
                    json!({
                        "index": batch.body_index(s.event),
                        "feature": s.feature,
                        "reason": s.reason,
                    })
                })
                .collect();
        }
        Ok(Response::json(202, &answer))
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

    /// The userId an identity token vouches for; without a configured
    /// secret, tokens are ignored and features key by clientId. A token is
    /// honoured for [`IDENTITY_GRACE_S`] past its expiry: see there.
    fn verify_identity(
        &self,
        batch: &ValidBatch,
        now: Millis,
    ) -> Result<Option<String>, EdgeError> {
        let as_of = now.div_euclid(1000) - IDENTITY_GRACE_S;
        match (&self.config.identity_secret, &batch.identity) {
            (Some(secret), Some(token)) => verify_token(secret, token, as_of)
                .map(Some)
                .map_err(EdgeError::Identity),
            _ => Ok(None),
        }
    }

    fn authorize_read(&self, req: &Request) -> Result<(), EdgeError> {
        let expected = self.config.read_token.as_deref();
        bearer(
            req,
            expected,
            EdgeError::ServingDisabled,
            EdgeError::Unauthorized,
        )
    }

    /// `POST /v1/backfill?feature=<name@version>`, admin token: NDJSON log
    /// lines (as `GET /v1/events` or a log object has them, whole batches)
    /// folded into that one feature version and applied to the store under
    /// the version's own batch marker
    /// ([`freshet_core::aggregate::backfill_marker`]). Batches logged
    /// by this edge's spec are skipped: its live writes applied them. So
    /// live writes and any number of backfill runs count each batch once.
    async fn backfill(&self, req: &Request) -> Result<Response, EdgeError> {
        let expected = self.config.admin_token.as_deref();
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

    /// `GET /v1/events?from=…[&to=…][&limit=N]`: the logged batches received
    /// in `[from, to]` (RFC 3339 or milliseconds; `to` defaults to now, and
    /// one request spans at most [`MAX_EXPORT_SPAN`]), as NDJSON in receive
    /// order; a cut page names where to go on in `Freshet-Next-From`.
    async fn export_events(&self, req: &Request, now: Millis) -> Result<Response, EdgeError> {
        self.authorize_read(req)?;
        if matches!(self.log, EventLog::Off) {
            return Err(EdgeError::NotFound);
        }
        let time = |name: &str| -> Result<Option<Millis>, EdgeError> {
            req.query_param(name)
                .map(|v| {
                    v.parse::<Millis>()
                        .ok()
                        .or_else(|| parse_rfc3339(&v))
                        .ok_or_else(|| {
                            EdgeError::BadRequest(format!(
                                "`{name}` must be an RFC 3339 time or milliseconds since the epoch"
                            ))
                        })
                })
                .transpose()
        };
        let from =
            time("from")?.ok_or_else(|| EdgeError::BadRequest("`from` is required".into()))?;
        // Nothing is received in the future.
        let to = time("to")?.unwrap_or(now).min(now);
        if from > to {
            return Err(EdgeError::BadRequest("`from` is after `to`".into()));
        }
        if to - from > MAX_EXPORT_SPAN {
            return Err(EdgeError::BadRequest(format!(
                "one export spans at most {} days; page by `from`",
                MAX_EXPORT_SPAN / DAY
            )));
        }
        let limit = match req.query_param("limit") {
            None => MAX_EXPORT_BATCHES,
            Some(v) => match v.parse::<usize>() {
                Ok(n) if (1..=MAX_EXPORT_BATCHES).contains(&n) => n,
                _ => {
                    return Err(EdgeError::BadRequest(format!(
                        "`limit` must be 1 to {MAX_EXPORT_BATCHES} batches"
                    )));
                }
            },
        };
        let export = self
            .log
            .export(from, to, limit)
            .await
            .map_err(EdgeError::LogUnavailable)?;
        let mut res = Response {
            status: 200,
            headers: vec![("content-type", "application/x-ndjson".to_owned())],
            body: export.ndjson,
        }
        .with_header("freshet-batches", export.batches.to_string());
        if let Some(next) = export.next_from {
            res = res.with_header("freshet-next-from", next.to_string());
        }
        Ok(res)
    }

    async fn read_one(
        &self,
        req: &Request,
        path: &str,
        now: Millis,
        sink: &mut DriftSink,
    ) -> Result<Response, EdgeError> {
        self.authorize_read(req)?;
        let rest = path.strip_prefix("/v1/features/").unwrap_or_default();
        let mut parts = rest.split('/');
        let (Some(entity), Some(id), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(EdgeError::NotFound);
        };
        let entity = percent_decode(entity).ok_or(EdgeError::NotFound)?;
        let def = self.spec.entity(&entity).ok_or(EdgeError::UnknownEntity)?;
        let id = percent_decode(id)
            .ok_or_else(|| EdgeError::BadRequest("the id is not percent-encoded UTF-8".into()))?;
        // A composite id: each part within the bound of a simple one.
        let parts = def.split_id(&id).map_err(EdgeError::BadRequest)?;
        if let Some(bad) = parts.iter().find(|p| !valid_id(p)) {
            return Err(bad_id(bad));
        }
        let names = req.query_param("names").map(|n| split_names(&n));
        // Unknown names are refused before the store is asked.
        check_names(self.spec, &entity, names.as_deref())?;
        let key = EntityKey::new(entity, id);
        let doc = self
            .store
            .load(&[EntityRead::new(key.clone(), names.clone())])
            .await?
            .pop()
            .unwrap_or_default();
        let features = read(self.spec, &key.entity, &doc, names.as_deref(), now)?;
        sample(self.spec, &key.entity, &features, sink);
        Ok(Response::json(200, &entity_json(&key, &features)))
    }

    async fn read_batch(
        &self,
        req: &Request,
        now: Millis,
        sink: &mut DriftSink,
    ) -> Result<Response, EdgeError> {
        self.authorize_read(req)?;
        let body = match &req.body {
            Body::Bytes(b) => b,
            Body::TooLarge => {
                return Err(EdgeError::BodyTooLarge {
                    limit: self.config.limits.max_body_bytes,
                });
            }
        };
        let ask: BatchRead = serde_json::from_slice(body).map_err(|_| {
            EdgeError::BadRequest("the body must be a batch read (see README)".into())
        })?;
        if ask.user_id.is_none() && ask.item_ids.is_empty() {
            return Err(EdgeError::BadRequest("give userId, itemIds or both".into()));
        }
        if ask.item_ids.len() > MAX_BATCH_ITEMS {
            return Err(EdgeError::BadRequest(format!(
                "at most {MAX_BATCH_ITEMS} itemIds per read"
            )));
        }
        if let Some(bad) = ask
            .user_id
            .iter()
            .chain(&ask.item_ids)
            .find(|id| !valid_id(id))
        {
            return Err(bad_id(bad));
        }
        let user_entity = ask.user_entity.as_deref().unwrap_or("user");
        let item_entity = ask.item_entity.as_deref().unwrap_or("product");
        let pair_entity = self.pair_entity(&ask, user_entity, item_entity)?;
        // Every read in one list: the user, the items, then each item's pair.
        let mut reads = Vec::with_capacity(2 * ask.item_ids.len() + 1);
        if let Some(user) = &ask.user_id {
            self.spec
                .entity(user_entity)
                .ok_or(EdgeError::UnknownEntity)?;
            check_names(self.spec, user_entity, ask.user_features.as_deref())?;
            let key = EntityKey::new(user_entity, user.as_str());
            reads.push(EntityRead::new(key, ask.user_features.clone()));
        }
        if !ask.item_ids.is_empty() {
            self.spec
                .entity(item_entity)
                .ok_or(EdgeError::UnknownEntity)?;
            check_names(self.spec, item_entity, ask.item_features.as_deref())?;
            reads.extend(ask.item_ids.iter().map(|id| {
                EntityRead::new(
                    EntityKey::new(item_entity, id.as_str()),
                    ask.item_features.clone(),
                )
            }));
        }
        if let (Some(pair), Some(user)) = (pair_entity, &ask.user_id) {
            check_names(self.spec, &pair.name, ask.pair_features.as_deref())?;
            for item in &ask.item_ids {
                let id = pair
                    .compose(&[(user_entity, user), (item_entity, item)])
                    .ok_or(EdgeError::UnknownEntity)?;
                let key = EntityKey::new(pair.name.as_str(), id);
                reads.push(EntityRead::new(key, ask.pair_features.clone()));
            }
        }
        // One store round trip for the user, every item and every pair.
        let docs = self.store.load(&reads).await?;
        let mut answers = reads.iter().zip(docs.iter()).map(|(r, doc)| {
            let f = read(self.spec, &r.key.entity, doc, r.names.as_deref(), now)?;
            sample(self.spec, &r.key.entity, &f, sink);
            Ok::<_, EdgeError>(entity_json(&r.key, &f))
        });
        let user = match &ask.user_id {
            Some(_) => answers.next().transpose()?.unwrap_or_default(),
            None => serde_json::Value::Null,
        };
        let mut items = (&mut answers)
            .take(ask.item_ids.len())
            .collect::<Result<Vec<_>, _>>()?;
        if pair_entity.is_some() {
            for (item, pair) in items.iter_mut().zip(answers) {
                item["pair"] = pair?;
            }
        }
        Ok(Response::json(
            200,
            &json!({ "user": user, "items": items }),
        ))
    }

    /// `GET /v1/drift?since=24h`: every feature's served values of the
    /// last `since` (at most the 8 days summaries are kept) against the
    /// baseline (`FRESHET_DRIFT_BASELINE`, else the spec's `expected`).
    /// `summaries=1` adds the merged live summaries, for `freshet drift`
    /// to compare with a baseline file of its own.
    async fn drift(&self, req: &Request, now: Millis) -> Result<Response, EdgeError> {
        self.authorize_read(req)?;
        if !self.store.keeps_drift() {
            return Err(EdgeError::DriftNotKept {
                store: self.store.kind(),
            });
        }
        let since = match req.query_param("since") {
            None => DAY,
            Some(text) => parse_duration(&text).map_err(EdgeError::BadRequest)?,
        };
        #[allow(clippy::cast_possible_wrap)]
        let kept = SUMMARY_TTL_SECS as Millis * SECOND;
        if since <= 0 || since > kept {
            return Err(EdgeError::BadRequest(format!(
                "since must be from 1h to {}d",
                kept / DAY
            )));
        }
        let since = since.max(HOUR);
        let keys: Vec<String> = self
            .spec
            .features()
            .iter()
            .map(|f| f.key().to_owned())
            .collect();
        let from = now - since;
        let live = self.store.load_drift(&keys, from, now).await?;
        let live: BTreeMap<String, Result<Summary, String>> = keys.into_iter().zip(live).collect();
        let baseline = self
            .config
            .drift_baseline
            .as_deref()
            // Checked when the configuration was read.
            .map(|text| Baseline::from_json(text).unwrap_or_default());
        let checked = check_drift(self.spec, &live, baseline, &Thresholds::default());
        let mut body = json!({
            "from": format_rfc3339(from),
            "to": format_rfc3339(now),
            "baseline": checked.baseline,
            "report": checked.report,
        });
        if req.query_param("summaries").as_deref() == Some("1") {
            let summaries: BTreeMap<&String, serde_json::Value> = live
                .iter()
                .map(|(k, s)| {
                    let v = match s {
                        Ok(s) => json!({ "summary": s }),
                        Err(e) => json!({ "error": e }),
                    };
                    (k, v)
                })
                .collect();
            body["summaries"] = json!(summaries);
        }
        Ok(Response::json(200, &body))
    }

    /// The entity of a batch read's pairs: `None` when none are asked for
    /// (no `pairFeatures`, no `pairEntity`), else as
    /// [`FeatureSpec::pair_entity`] finds it.
    fn pair_entity(
        &self,
        ask: &BatchRead,
        user: &str,
        item: &str,
    ) -> Result<Option<&'static EntityDef>, EdgeError> {
        if ask.pair_features.is_none() && ask.pair_entity.is_none() {
            return Ok(None);
        }
        if ask.user_id.is_none() || ask.item_ids.is_empty() {
            return Err(EdgeError::BadRequest(
                "pairs need a userId and itemIds".into(),
            ));
        }
        let spec: &'static FeatureSpec = self.spec;
        match spec.pair_entity(user, item, ask.pair_entity.as_deref()) {
            Ok(def) => Ok(Some(def)),
            Err(PairError::UnknownEntity(_)) => Err(EdgeError::UnknownEntity),
            Err(e @ PairError::NoPair(_)) => Err(EdgeError::BadRequest(e.to_string())),
        }
    }
}

/// `POST /v1/features/batch`: one user and many items, for ranking.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct BatchRead {
    user_id: Option<String>,
    #[serde(default)]
    item_ids: Vec<String>,
    user_features: Option<Vec<String>>,
    item_features: Option<Vec<String>>,
    user_entity: Option<String>,
    item_entity: Option<String>,
    /// The features of each (user, item) pair: `items[i].pair`.
    pair_features: Option<Vec<String>>,
    /// The pairs' composite entity (default: the one of exactly the user
    /// and item entities).
    pair_entity: Option<String>,
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

fn with_cors(res: Response, origin: &str) -> Response {
    res.with_header("access-control-allow-origin", origin)
        .with_header("vary", "Origin")
        // A tracker calling the edge cross-origin must see how long to back off.
        .with_header("access-control-expose-headers", "Retry-After")
}

fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_ID_BYTES
}

fn bad_id(id: &str) -> EdgeError {
    EdgeError::BadRequest(format!(
        "ids must be 1 to {MAX_ID_BYTES} bytes (got {} bytes)",
        id.len()
    ))
}

fn split_names(names: &str) -> Vec<String> {
    names
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .collect()
}

fn check_names(
    spec: &FeatureSpec,
    entity: &str,
    names: Option<&[String]>,
) -> Result<(), EdgeError> {
    let empty = freshet_core::state::FeatureDoc::default();
    read(spec, entity, &empty, names, 0).map(|_| ())
}

fn read(
    spec: &FeatureSpec,
    entity: &str,
    doc: &freshet_core::state::FeatureDoc,
    names: Option<&[String]>,
    now: Millis,
) -> Result<FeatureValues, EdgeError> {
    read_features(spec, entity, doc, names, now).map_err(|e| match e {
        ReadError::UnknownEntity(_) => EdgeError::UnknownEntity,
        ReadError::UnknownFeature { name, .. } => EdgeError::UnknownFeature(name),
    })
}

/// Adds a read's served values to the drift sink, by feature key.
fn sample(spec: &FeatureSpec, entity: &str, features: &FeatureValues, sink: &mut DriftSink) {
    let Some(sink) = sink else { return };
    for (name, served) in features {
        if let Some(def) = spec.lookup(entity, name) {
            sink.entry(def.key().to_owned())
                .or_default()
                .add(&served.value);
        }
    }
}

fn entity_json(key: &EntityKey, features: &FeatureValues) -> serde_json::Value {
    json!({ "entity": key.entity, "id": key.id, "features": features })
}

/// Compares secrets without an early exit, so timing tells nothing.
/// Checks `Authorization: Bearer <expected>`: `disabled` when no token is
/// configured, `refused` when the given one is missing or wrong.
fn bearer(
    req: &Request,
    expected: Option<&str>,
    disabled: EdgeError,
    refused: EdgeError,
) -> Result<(), EdgeError> {
    let Some(expected) = expected else {
        return Err(disabled);
    };
    let given = req.header("authorization").and_then(|h| {
        h.strip_prefix("Bearer ")
            .or_else(|| h.strip_prefix("bearer "))
    });
    match given {
        Some(given) if constant_time_eq(given.trim().as_bytes(), expected.as_bytes()) => Ok(()),
        _ => Err(refused),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
