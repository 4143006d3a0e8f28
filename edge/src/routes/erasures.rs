//! Erasure (README, "Erasure"): `POST /v1/erasures` and
//! `GET /v1/erasures/{id}` (admin token), the gate every batch passes at
//! ingest and in the queue's consumer, and the job that finishes an
//! erasure once it has settled ([`Edge::advance_erasures`]).
//!
//! The order makes it safe while the person's traffic flows: the tombstone
//! is durable before the store is swept, so a batch gated after it drops
//! the erased events; a batch gated before it is at most one store round
//! trip from its write (the store's timeout bounds it), and the sweep at
//! `settled_at` removes what it wrote. Later events of the person wait
//! (503, `Retry-After`) until then, so that sweep removes nothing of theirs.

use std::collections::BTreeMap;

use freshet_core::aggregate::aggregate_checked;
use freshet_core::erasure::{
    Principal, Subject, Tombstone, Verdict, indexed_of, own_keys, principals_of, scrub_all,
};
use freshet_core::log::{LoggedBatch, PREFIX, day_prefix, parse_ndjson, to_object};
use freshet_core::state::EntityDelta;
use freshet_core::time::{DAY, Millis, SECOND};
use freshet_core::validate::SKEW_TOLERANCE;
use futures_util::future::try_join_all;
use serde_json::json;

use super::Edge;
use super::auth::bearer;
use crate::erasure::{Erasure, Index, PartDone, Registry, Touch, Touched};
use crate::error::EdgeError;
use crate::event_log::{Bucket, EventLog};
use crate::http::{Body, Method, Request, Response};
use crate::queue::IngestQueue;
use crate::rate_limit::RateLimit;
use crate::store::{EntityKey, FeatureStore};

/// Where the erasures' routes live.
pub const PATH: &str = "/v1/erasures";
/// How long a runner's claim on an erasure's last sweep holds; past it,
/// another runner takes over (the first died).
pub const CLAIM_MS: Millis = 60 * SECOND;
/// Log objects rewritten at once, then dropped from the index.
pub const REWRITE_CHUNK: usize = 50;
/// Days of log a run of the job scans, when an erasure asks for a scan.
pub const SCAN_DAYS_PER_RUN: u32 = 7;
/// Most days of log one erasure may ask to scan.
pub const MAX_SCAN_DAYS: u32 = 3_660;

impl<S: FeatureStore, L: RateLimit, B: Bucket, Q: IngestQueue, R: Registry> Edge<S, L, B, Q, R> {
    /// How long an erasure settles: two store round trips at their timeout
    /// and a second (the longest a batch gated before the tombstone can
    /// still be on its way to the store), and at least the clock skew
    /// ingest leaves uncorrected and a second (how far past its receipt an
    /// event's time can be). Events up to then are the erasure's.
    pub fn settle_ms(&self) -> Millis {
        let timeout = i64::try_from(self.config.store_timeout_ms).unwrap_or(i64::MAX / 4);
        (2 * timeout + SECOND).max(SKEW_TOLERANCE + SECOND)
    }

    pub(super) async fn erasures_route(
        &self,
        req: &Request,
        now: Millis,
    ) -> Result<Response, EdgeError> {
        bearer(
            req,
            &self.config.admin_tokens,
            EdgeError::ErasureDisabled,
            EdgeError::AdminUnauthorized,
        )?;
        let Some(rest) = req.path.strip_prefix(PATH) else {
            return Err(EdgeError::NotFound);
        };
        let id = rest.trim_start_matches('/');
        match (id, req.method) {
            ("", Method::Post) => self.erase(req, now).await,
            ("", _) | (_, Method::Post) => Err(EdgeError::MethodNotAllowed {
                allow: if id.is_empty() { "POST" } else { "GET" },
            }),
            (id, _) => {
                // The job runs here too when it is due: whoever asks sees
                // the erasure move on, cron or not.
                let mut erasure = self
                    .registry
                    .load(id)
                    .await
                    .map_err(EdgeError::StoreUnavailable)?
                    .ok_or(EdgeError::UnknownErasure)?;
                if !erasure.is_done() && now >= erasure.settled_at {
                    erasure = self.finish(erasure, now).await?;
                }
                Ok(Response::json(200, &erasure.receipt()))
            }
        }
    }

    /// `POST /v1/erasures {"userId": …, "clientId": …}`: tombstones, the
    /// first sweep of the store, and the record; 202 with the receipt.
    async fn erase(&self, req: &Request, now: Millis) -> Result<Response, EdgeError> {
        let body = match &req.body {
            Body::Bytes(bytes) => bytes,
            Body::TooLarge => {
                return Err(EdgeError::BodyTooLarge {
                    limit: self.config.limits.max_body_bytes,
                });
            }
        };
        let (subject, scan_days) = parse_request(body)?;
        let principals = subject.principals();
        let mut erasure = Erasure {
            id: erasure_id(&principals, now),
            requested_at: now,
            settled_at: now + self.settle_ms(),
            principals,
            store: None,
            composites: None,
            log: None,
            log_objects: 0,
            log_lines: 0,
            log_indexed: false,
            scan_days_left: scan_days,
            scan_days_done: 0,
            swept: false,
            claimed_at: None,
            version: 0,
        };
        // The record first: should this request fail half-way, the job
        // finishes what it began (tombstones included).
        self.registry
            .save(&erasure)
            .await
            .map_err(EdgeError::StoreUnavailable)?;
        self.tombstone_and_sweep(&mut erasure, now).await?;
        let erasure = self.save_or_current(erasure).await?;
        Ok(Response::json(202, &erasure.receipt()))
    }

    /// Tombstones every principal of `erasure` (a user's first: its index
    /// names the clients it signed in from, which join the erasure), then
    /// deletes their own entities and the indexed ones from the store. Run
    /// by the request, and again by the job as the last sweep.
    async fn tombstone_and_sweep(
        &self,
        erasure: &mut Erasure,
        now: Millis,
    ) -> Result<(), EdgeError> {
        let tomb = Tombstone {
            erased_at: erasure.settled_at,
            swept: false,
        };
        let mut keys = Vec::new();
        let mut composites = Vec::new();
        let mut i = 0;
        while i < erasure.principals.len() {
            let index = self
                .registry
                .tombstone(&erasure.principals[i], tomb)
                .await
                .map_err(EdgeError::StoreUnavailable)?;
            for client in index.clients {
                let linked = Principal::Client(client);
                if !erasure.principals.contains(&linked) {
                    erasure.principals.push(linked);
                }
            }
            keys.extend(own_keys(self.spec, &erasure.principals[i]));
            composites.extend(index.composites);
            i += 1;
        }
        let removed = self.sweep(&keys).await?;
        let pairs = self.sweep(&composites).await?;
        for (part, n) in [
            (&mut erasure.store, removed),
            (&mut erasure.composites, pairs),
        ] {
            match part {
                Some(done) => done.removed += n,
                None => {
                    *part = Some(PartDone {
                        at: now,
                        removed: n,
                    })
                }
            }
        }
        Ok(())
    }

    async fn sweep(&self, keys: &[(String, String)]) -> Result<usize, EdgeError> {
        let keys: Vec<EntityKey> = keys
            .iter()
            .map(|(e, id)| EntityKey::new(e.as_str(), id.as_str()))
            .collect();
        self.store
            .delete(&keys)
            .await
            .map_err(EdgeError::StoreUnavailable)
    }

    /// Finishes every open erasure that has settled (the worker's cron and
    /// the `wait_until` after a `POST` call this); answers how many are done.
    pub async fn advance_erasures(&self, now: Millis) -> Result<usize, EdgeError> {
        let open = self
            .registry
            .open()
            .await
            .map_err(EdgeError::StoreUnavailable)?;
        let mut finished = 0;
        for erasure in open.into_iter().filter(|e| now >= e.settled_at) {
            finished += usize::from(self.finish(erasure, now).await?.is_done());
        }
        Ok(finished)
    }

    /// Takes a settled erasure as far as it goes; any runner may call it, at
    /// any time, as often as it likes (the cron, the `wait_until`, a `GET`).
    ///
    /// 1. The last sweep of the store, by one runner: it claims the record
    ///    first (a compare-and-set on its version; a claim older than
    ///    [`CLAIM_MS`] is taken over), then sweeps, then records the sweep.
    ///    Until the tombstones say swept, no later event of the principals
    ///    is written, so a sweep run twice removes nothing that should stay.
    /// 2. The tombstones marked swept (again, if a runner died before).
    /// 3. The log's objects rewritten, [`REWRITE_CHUNK`] at a time, each
    ///    chunk then dropped from the indexes, so a runner that dies leaves
    ///    the rest to the next; then the record forgets whom it erased.
    async fn finish(&self, mut erasure: Erasure, now: Millis) -> Result<Erasure, EdgeError> {
        let fail = EdgeError::StoreUnavailable;
        if !erasure.swept {
            if erasure.claimed_at.is_some_and(|t| now - t < CLAIM_MS) {
                return Ok(erasure);
            }
            erasure.claimed_at = Some(now);
            if !self.save_next(&mut erasure).await? {
                return self.current(&erasure.id).await;
            }
            // What a batch gated before the tombstone wrote since the first
            // sweep (or all of it, should the request have failed half-way).
            self.tombstone_and_sweep(&mut erasure, now).await?;
            erasure.swept = true;
            if !self.save_next(&mut erasure).await? {
                return self.current(&erasure.id).await;
            }
        }
        let swept = Tombstone {
            erased_at: erasure.settled_at,
            swept: true,
        };
        let erased: BTreeMap<Principal, Millis> = erasure
            .principals
            .iter()
            .map(|p| (p.clone(), erasure.settled_at))
            .collect();
        if !erasure.log_indexed {
            let mut log_keys = Vec::new();
            for p in &erasure.principals {
                // The principal's later events count again from here.
                self.registry.tombstone(p, swept).await.map_err(fail)?;
                log_keys.extend(self.registry.index(p).await.map_err(fail)?.log_keys);
            }
            log_keys.sort_unstable();
            log_keys.dedup();
            for chunk in log_keys.chunks(REWRITE_CHUNK) {
                let (objects, lines) = self.rewrite_log(chunk, &erased).await?;
                erasure.log_objects += objects;
                erasure.log_lines += lines;
                let done = Index {
                    log_keys: chunk.to_vec(),
                    ..Index::default()
                };
                for p in &erasure.principals {
                    self.registry.forget(p, &done).await.map_err(fail)?;
                }
            }
            // Whatever is left of the indexes holds the person's ids: gone too.
            for p in &erasure.principals {
                let rest = self.registry.index(p).await.map_err(fail)?;
                self.registry.forget(p, &rest).await.map_err(fail)?;
            }
            erasure.log_indexed = true;
            if !self.save_next(&mut erasure).await? {
                return self.current(&erasure.id).await;
            }
        }
        // Asked for: every object of the days before, read (a log written
        // before the edge indexed objects), a few days a run.
        if erasure.scan_days_left > 0 {
            let EventLog::On(bucket) = &self.log else {
                erasure.scan_days_left = 0;
                return self.save_or_current(erasure).await;
            };
            let days = erasure.scan_days_left.min(SCAN_DAYS_PER_RUN);
            for _ in 0..days {
                let day = erasure.settled_at - DAY * Millis::from(erasure.scan_days_done);
                let listed = bucket
                    .list(&format!("{PREFIX}{}", day_prefix(day)))
                    .await
                    .map_err(EdgeError::LogUnavailable)?;
                let keys: Vec<String> = listed.into_iter().map(|l| l.key).collect();
                for chunk in keys.chunks(REWRITE_CHUNK) {
                    let (objects, lines) = self.rewrite_log(chunk, &erased).await?;
                    erasure.log_objects += objects;
                    erasure.log_lines += lines;
                }
                erasure.scan_days_done += 1;
                erasure.scan_days_left -= 1;
            }
            if erasure.scan_days_left > 0 {
                return self.save_or_current(erasure).await;
            }
        }
        erasure.log = Some(PartDone {
            at: now,
            removed: erasure.log_lines,
        });
        erasure.principals.clear();
        self.save_or_current(erasure).await
    }

    /// `erasure` saved as its next version, or the stored one when another
    /// runner saved first.
    async fn save_or_current(&self, mut erasure: Erasure) -> Result<Erasure, EdgeError> {
        if self.save_next(&mut erasure).await? {
            Ok(erasure)
        } else {
            self.current(&erasure.id).await
        }
    }

    /// Saves `erasure` as its next version, unless another runner saved
    /// since it was read: `false` then.
    async fn save_next(&self, erasure: &mut Erasure) -> Result<bool, EdgeError> {
        let read = erasure.version;
        erasure.version += 1;
        self.registry
            .save_if(erasure, read)
            .await
            .map_err(EdgeError::StoreUnavailable)
    }

    async fn current(&self, id: &str) -> Result<Erasure, EdgeError> {
        self.registry
            .load(id)
            .await
            .map_err(EdgeError::StoreUnavailable)?
            .ok_or(EdgeError::UnknownErasure)
    }

    /// Rewrites each object of `keys` without the erased events (core's
    /// `scrub`), in place (the key is the batch's, which a retry must still
    /// find), or removes it when nothing is left; answers the objects
    /// changed and the events taken out.
    async fn rewrite_log(
        &self,
        keys: &[String],
        erased: &BTreeMap<Principal, Millis>,
    ) -> Result<(usize, usize), EdgeError> {
        let EventLog::On(bucket) = &self.log else {
            return Ok((0, 0));
        };
        let rewritten = try_join_all(
            keys.iter()
                .map(|key| self.rewrite_object(bucket, key, erased)),
        )
        .await?;
        Ok((
            rewritten.iter().filter(|n| **n > 0).count(),
            rewritten.iter().sum(),
        ))
    }

    /// One object rewritten without the erased events, in place, or removed
    /// when nothing is left; answers the events taken out.
    async fn rewrite_object(
        &self,
        bucket: &B,
        key: &str,
        erased: &BTreeMap<Principal, Millis>,
    ) -> Result<usize, EdgeError> {
        let fail = EdgeError::LogUnavailable;
        let Some(body) = bucket.get(key).await.map_err(fail)? else {
            return Ok(0);
        };
        let batches = parse_ndjson(&body).map_err(|e| {
            EdgeError::LogUnavailable(crate::event_log::LogError(format!("{key}: {e}")))
        })?;
        let (kept, removed) = scrub_all(self.spec, batches, erased);
        if removed == 0 {
            return Ok(0);
        }
        match kept.first().map(|b| b.received_at) {
            Some(received_at) => bucket
                .put(key, to_object(&kept), received_at)
                .await
                .map_err(fail)?,
            None => bucket.delete(key).await.map_err(fail)?,
        }
        Ok(removed)
    }

    /// The erasures not finished yet, as the log's readers skip them: each
    /// principal with its erasure time.
    pub(crate) async fn erasing(&self) -> Result<BTreeMap<Principal, Millis>, EdgeError> {
        let open = self
            .registry
            .open()
            .await
            .map_err(EdgeError::StoreUnavailable)?;
        Ok(open
            .iter()
            .flat_map(|e| e.principals.iter().map(|p| (p.clone(), e.settled_at)))
            .collect())
    }

    /// The log object `logged` goes to, as the registry indexes it: none
    /// while the log is off.
    pub(crate) fn log_keys_of(&self, logged: &LoggedBatch) -> Vec<String> {
        match &self.log {
            EventLog::On(_) => vec![logged.object_keys().0],
            EventLog::Off => Vec::new(),
        }
    }

    /// A logged batch through the erasure gate: without the events it
    /// drops, its deltas, and the clients to move once it is written
    /// ([`Gate::follow`]).
    pub(crate) async fn gated(
        &self,
        logged: LoggedBatch,
        now: Millis,
    ) -> Result<(LoggedBatch, Vec<EntityDelta>, Vec<String>), EdgeError> {
        let deltas = |b: &LoggedBatch| {
            aggregate_checked(self.spec, &b.to_valid_batch(), b.verified_user.as_deref()).deltas
        };
        let all = deltas(&logged);
        let gate = self.gate(&logged, &all, now).await?;
        if gate.dropped.is_empty() {
            return Ok((logged, all, gate.follow));
        }
        let rest = without(&logged, &gate.dropped);
        let rest_deltas = deltas(&rest);
        Ok((rest, rest_deltas, gate.follow))
    }

    /// The gate: each principal of the batch told what the batch wrote for
    /// it (composites, log object, linked clients) and asked for its
    /// tombstone, in one registry call each, side by side. Answers the
    /// indexes of the events to drop (at or before an erasure), or
    /// `Erasing` when an event comes after an erasure still settling; and
    /// the clients whose state moves to a user once the batch is written:
    /// those it links to their user (a sign-in, `sign_in.rs`), and those
    /// that follow a user already.
    pub(crate) async fn gate(
        &self,
        logged: &LoggedBatch,
        deltas: &[EntityDelta],
        now: Millis,
    ) -> Result<Gate, EdgeError> {
        if logged.events.is_empty() {
            return Ok(Gate::default());
        }
        let log_key = self.log_keys_of(logged);
        // An erasure's anonymous events (an empty clientId, as a rewritten
        // log holds them, sent to backfill) are nobody's.
        let mut groups = principals_of(logged);
        groups.remove(&Principal::Client(String::new()));
        let tombs: Vec<Touched> = try_join_all(groups.iter().map(|(p, events)| {
            let clients = match p {
                Principal::User(_) => {
                    let mut c: Vec<String> = events
                        .iter()
                        .map(|&i| logged.events[i].client_id.clone())
                        .collect();
                    c.sort_unstable();
                    c.dedup();
                    c
                }
                Principal::Client(_) => Vec::new(),
            };
            let sessions = events
                .iter()
                .filter_map(|&i| logged.events[i].session_id.clone())
                .collect();
            let touch = Touch {
                composites: indexed_of(self.spec, deltas, p, &sessions),
                log_keys: log_key.clone(),
                clients,
            };
            async move { self.registry.touch(p, &touch).await }
        }))
        .await
        .map_err(EdgeError::StoreUnavailable)?;
        let mut dropped = Vec::new();
        for ((_, events), touched) in groups.iter().zip(&tombs) {
            let Some(tomb) = touched.tomb else { continue };
            for &i in events {
                match tomb.verdict(logged.events[i].time, now) {
                    Verdict::Keep => {}
                    Verdict::Drop => dropped.push(i),
                    Verdict::Wait { until } => {
                        let s = (until - now).div_euclid(SECOND) + 1;
                        return Err(EdgeError::Erasing {
                            retry_after_s: u32::try_from(s).unwrap_or(u32::MAX),
                        });
                    }
                }
            }
        }
        dropped.sort_unstable();
        // The rest goes to another object when the earliest event left:
        // indexed too, for the principals whose events stay.
        if !dropped.is_empty() && !log_key.is_empty() {
            let rest = without(logged, &dropped);
            if !rest.events.is_empty() && rest.object_keys().0 != log_key[0] {
                let touch = Touch {
                    log_keys: vec![rest.object_keys().0],
                    ..Touch::default()
                };
                try_join_all(
                    principals_of(&rest)
                        .keys()
                        .map(|p| self.registry.touch(p, &touch)),
                )
                .await
                .map_err(EdgeError::StoreUnavailable)?;
            }
        }
        let follow = self.link_clients(groups.keys().zip(&tombs), now).await?;
        Ok(Gate { dropped, follow })
    }
}

/// What the gate says of a batch.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    /// The indexes of the events to drop.
    pub dropped: Vec<usize>,
    /// The clients to move to their user once the batch is written.
    pub follow: Vec<String>,
}

/// An erasure request: whom (`userId`, `clientId`), and how many days of
/// log before it to scan whole (`scanLogDays`, for a log written before the
/// edge indexed each person's objects; default none).
fn parse_request(body: &[u8]) -> Result<(Subject, u32), EdgeError> {
    let mut fields: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(body)
        .map_err(|e| {
            EdgeError::BadRequest(format!(
                "the body is {{\"userId\": \"…\"}} and/or {{\"clientId\": \"…\"}}: {e}"
            ))
        })?;
    let scan = match fields.remove("scanLogDays") {
        None => 0,
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| *n <= MAX_SCAN_DAYS)
            .ok_or_else(|| {
                EdgeError::BadRequest(format!("scanLogDays is 0 to {MAX_SCAN_DAYS} days"))
            })?,
    };
    let rest = serde_json::to_vec(&fields).map_err(|e| EdgeError::BadRequest(e.to_string()))?;
    Ok((Subject::parse(&rest).map_err(EdgeError::BadRequest)?, scan))
}

/// `batch` without the events at `dropped` (sorted indexes).
pub(crate) fn without(batch: &LoggedBatch, dropped: &[usize]) -> LoggedBatch {
    let mut out = batch.clone();
    out.events = batch
        .events
        .iter()
        .enumerate()
        .filter(|(i, _)| dropped.binary_search(i).is_err())
        .map(|(_, e)| e.clone())
        .collect();
    out
}

/// `e-` and 16 hex digits of a hash of whom and when: the same request at
/// the same millisecond is the same erasure.
fn erasure_id(principals: &[Principal], now: Millis) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for p in principals {
        h.update(p.name().as_bytes());
        h.update([0]);
    }
    h.update(now.to_be_bytes());
    let digest = h.finalize();
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("e-{hex}")
}

/// The `skipped` entry of an event dropped as erased.
pub(crate) fn erased_skip(index: usize) -> serde_json::Value {
    json!({ "index": index, "reason": "erased" })
}
