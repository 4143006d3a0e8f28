//! Feature state and how two states merge: the one operation behind both
//! aggregation (events into a delta) and `apply_delta` (a delta into a
//! stored document).
//!
//! Merging is commutative, associative and, for everything but counts and
//! sums, idempotent; counts and sums are made exactly-once by the batch
//! marker. So any split of the events into batches, in any delivery order,
//! with any retries, yields the same document. Bounds (`distinct`'s and
//! `latest_n`'s `max`, window pruning) keep that property because each
//! entry's rank is fixed: an entry dropped once could never have come back.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::limits::{DEFAULT_MAX_FUTURE, DEFAULT_MAX_PAST};
use crate::spec::{FeatureDef, FeatureSpec, Window};
use crate::time::{HOUR, Millis};

/// How long a store remembers that a batch was applied, from its receive
/// time: as long as the edge would take any of its events again. An event
/// is at most [`DEFAULT_MAX_FUTURE`] ahead of the receive time that took it,
/// and is taken until it is [`DEFAULT_MAX_PAST`] old, so a copy of the batch
/// sent later than this (the end-of-visit beacon resent on a return days
/// later) has every event refused as too old and changes nothing; an hour
/// of margin on top. A retry within it finds the marker and counts once.
/// (docs/ARCHITECTURE.md#exactly-once)
pub const BATCH_MARKER_TTL: Millis = DEFAULT_MAX_PAST + DEFAULT_MAX_FUTURE + HOUR;
/// Most batch markers one document keeps (the most recent ones).
pub const MAX_BATCH_MARKERS: usize = 10_000;

/// One feature's state, or one delta to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FeatureState {
    /// The latest event time that touched the feature: drives staleness and
    /// window pruning (an event time, so the result does not depend on when
    /// batches arrive).
    pub updated_at: Millis,
    pub value: Agg,
}

/// The accumulated value of one aggregation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Agg {
    Count(Cells<i64>),
    Sum(Cells<f64>),
    Min(Cells<f64>),
    Max(Cells<f64>),
    Last(Stamped),
    First(Stamped),
    /// Each distinct value with the latest time it was seen.
    Distinct(BTreeMap<String, Millis>),
    /// Newest first, by `(time, id)`.
    LatestN(Vec<Stamped>),
    /// Per cell `[count, sum]`.
    Avg(Cells<Vec<f64>>),
    /// Per bucket the fixed-point sum of weights relative to the bucket's
    /// start (see [`crate::spec::Decay`]); always windowed.
    Decay(Cells<i64>),
    /// Each value (as JSON text) with how many events carried it; the `max`
    /// highest counts are kept.
    Mode(BTreeMap<String, i64>),
    /// Per cell `[total weight, weighted sum of element 0, of element 1, …]`.
    VectorAvg(Cells<Vec<f64>>),
}

/// A number for the whole history, or one per time bucket of a window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cells<T> {
    Total(T),
    /// Bucket start (milliseconds) to the bucket's value.
    Buckets(BTreeMap<Millis, T>),
}

/// A value with the time and id of the event it came from; ordered by
/// `(time, id)`, so ties between events at the same millisecond are broken
/// the same way everywhere.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stamped {
    pub t: Millis,
    pub id: String,
    pub v: Value,
}

impl Stamped {
    fn rank(&self) -> (Millis, &str) {
        (self.t, &self.id)
    }
}

/// Every feature of one entity, plus the batches already applied to it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FeatureDoc {
    /// By storage key, `name@version`.
    pub features: BTreeMap<String, FeatureState>,
    /// Batch id to its receive time, for [`BATCH_MARKER_TTL`].
    #[serde(default)]
    pub batches: BTreeMap<String, Millis>,
}

/// What one batch changes for one entity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntityDelta {
    pub entity: String,
    pub id: String,
    pub batch_id: String,
    pub received_at: Millis,
    /// By storage key, `name@version`.
    pub updates: BTreeMap<String, FeatureState>,
}

impl EntityDelta {
    /// Whether applying the delta twice would change more than applying it
    /// once: some feature it updates adds up (`count`, `sum`, `avg`,
    /// `decay`, `mode`, `vector_avg`). Only then must a store remember its
    /// batch; features the spec no longer has are not applied, so they do
    /// not count.
    pub fn needs_marker(&self, spec: &FeatureSpec) -> bool {
        self.updates
            .keys()
            .filter_map(|key| spec.feature(key))
            .any(|def| !def.agg.is_idempotent())
    }
}

/// Whether `apply_delta` changed the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Applied,
    /// The batch was applied before: nothing changed.
    Duplicate,
}

/// Applies one delta to a stored document, at most once per batch id: the
/// document remembers the batch ids of the last [`BATCH_MARKER_TTL`].
/// A delta whose features all merge idempotently is merged without one
/// ([`EntityDelta::needs_marker`]): applied again, it changes nothing.
pub fn apply_delta(spec: &FeatureSpec, doc: &mut FeatureDoc, delta: &EntityDelta) -> Applied {
    if !delta.needs_marker(spec) {
        merge_delta(spec, doc, delta);
        return Applied::Applied;
    }
    if doc.batches.contains_key(&delta.batch_id) {
        return Applied::Duplicate;
    }
    merge_delta(spec, doc, delta);
    remember_batch(&mut doc.batches, &delta.batch_id, delta.received_at);
    Applied::Applied
}

/// Merges one delta's updates into a document without looking at or
/// recording its batch id: for a store that keeps batch markers elsewhere
/// (the Durable Object keeps them in a table of their own, so a hot entity's
/// write does not rewrite thousands of ids). The store must then make sure
/// each batch is merged at most once.
pub fn merge_delta(spec: &FeatureSpec, doc: &mut FeatureDoc, delta: &EntityDelta) {
    for (key, update) in &delta.updates {
        // A feature the spec no longer has is kept as it was: dropping it
        // would lose data a newer deploy of the old spec may still read.
        let Some(def) = spec.feature(key) else {
            continue;
        };
        match doc.features.get_mut(key) {
            Some(state) => state.merge(update.clone(), def),
            None => {
                let mut state = update.clone();
                state.settle(def);
                doc.features.insert(key.clone(), state);
            }
        }
    }
}

fn remember_batch(batches: &mut BTreeMap<String, Millis>, batch_id: &str, received_at: Millis) {
    let newest = batches
        .values()
        .copied()
        .max()
        .unwrap_or(received_at)
        .max(received_at);
    let horizon = newest - BATCH_MARKER_TTL;
    if received_at >= horizon {
        batches.insert(batch_id.to_owned(), received_at);
    }
    batches.retain(|_, at| *at >= horizon);
    keep_top(batches, MAX_BATCH_MARKERS);
}

/// Keeps the `max` entries with the highest ranks (latest times, highest
/// counts), ties kept for the byte-wise larger key: a fixed rank per entry,
/// so trimming never depends on arrival order, and the order Redis's sorted
/// sets trim by (`ZREMRANGEBYRANK` drops the lowest score, then the smallest
/// member).
///
/// For `mode`'s counts this is exact while a feature sees at most `max`
/// distinct values; beyond that a value dropped once restarts from zero
/// when it comes back, as in every bounded top-k.
fn keep_top<R: Ord + Copy>(entries: &mut BTreeMap<String, R>, max: usize) {
    if entries.len() <= max {
        return;
    }
    let mut ranked: Vec<(R, String)> = entries.iter().map(|(key, t)| (*t, key.clone())).collect();
    ranked.sort_unstable_by(|a, b| b.cmp(a));
    for (_, key) in ranked.drain(max..) {
        entries.remove(&key);
    }
}

impl FeatureState {
    /// Folds `other` into `self`; both must be states of `def`.
    pub fn merge(&mut self, other: Self, def: &FeatureDef) {
        self.updated_at = self.updated_at.max(other.updated_at);
        match (&mut self.value, other.value) {
            (Agg::Count(a), Agg::Count(b)) => a.merge(b, |x, y| *x += y),
            (Agg::Sum(a), Agg::Sum(b)) => a.merge(b, |x, y| *x += y),
            (Agg::Min(a), Agg::Min(b)) => a.merge(b, |x, y| *x = x.min(y)),
            (Agg::Max(a), Agg::Max(b)) => a.merge(b, |x, y| *x = x.max(y)),
            (Agg::Last(a), Agg::Last(b)) => {
                if b.rank() > a.rank() {
                    *a = b;
                }
            }
            (Agg::First(a), Agg::First(b)) => {
                if b.rank() < a.rank() {
                    *a = b;
                }
            }
            (Agg::Distinct(a), Agg::Distinct(b)) => {
                for (value, t) in b {
                    let seen = a.entry(value).or_insert(t);
                    *seen = (*seen).max(t);
                }
            }
            (Agg::LatestN(a), Agg::LatestN(b)) => a.extend(b),
            (Agg::Avg(a), Agg::Avg(b)) | (Agg::VectorAvg(a), Agg::VectorAvg(b)) => {
                a.merge(b, |x, y| add_parts(x, y, def));
            }
            // Saturating: past 2^30 events in one bucket the value stops
            // growing instead of wrapping (Redis and MongoDB refuse the write).
            (Agg::Decay(a), Agg::Decay(b)) => a.merge(b, |x, y| *x = x.saturating_add(y)),
            (Agg::Mode(a), Agg::Mode(b)) => {
                for (value, n) in b {
                    *a.entry(value).or_insert(0) += n;
                }
            }
            // A stored state of another kind means the spec changed the
            // aggregation without a new version; the newer state wins.
            (value, other) => *value = other,
        }
        self.settle(def);
    }

    /// Applies the feature's bounds: window pruning, `max`, newest-first order.
    pub fn settle(&mut self, def: &FeatureDef) {
        let updated_at = self.updated_at;
        match &mut self.value {
            Agg::Count(c) => c.prune(def.window, updated_at),
            Agg::Sum(c) | Agg::Min(c) | Agg::Max(c) => c.prune(def.window, updated_at),
            Agg::Last(_) | Agg::First(_) => {}
            Agg::Distinct(seen) => keep_top(seen, def.max),
            Agg::Avg(c) | Agg::VectorAvg(c) => c.prune(def.window, updated_at),
            Agg::Decay(c) => c.prune(def.window, updated_at),
            Agg::Mode(counts) => keep_top(counts, def.max),
            Agg::LatestN(items) => {
                items.sort_unstable_by(|a, b| b.rank().cmp(&a.rank()));
                items.dedup_by(|a, b| a.id == b.id);
                items.truncate(def.max);
            }
        }
    }
}

/// Adds a cell of several numbers part by part, each sum rounded as the
/// feature keeps its numbers ([`FeatureDef::round`]); cells of another
/// length mean the spec changed `dim` without a new version, and the newer
/// one wins.
fn add_parts(a: &mut Vec<f64>, b: Vec<f64>, def: &FeatureDef) {
    if a.len() == b.len() {
        a.iter_mut()
            .zip(b)
            .for_each(|(x, y)| *x = def.round(*x + y));
    } else {
        *a = b;
    }
}

impl<T: Clone> Cells<T> {
    fn merge(&mut self, other: Self, fold: impl Fn(&mut T, T)) {
        match (self, other) {
            (Self::Total(a), Self::Total(b)) => fold(a, b),
            (Self::Buckets(a), Self::Buckets(b)) => {
                for (start, v) in b {
                    match a.get_mut(&start) {
                        Some(cur) => fold(cur, v),
                        None => {
                            a.insert(start, v);
                        }
                    }
                }
            }
            // The window was added or removed without a new version.
            (this, other) => *this = other,
        }
    }

    fn prune(&mut self, window: Option<Window>, updated_at: Millis) {
        if let (Self::Buckets(buckets), Some(window)) = (self, window) {
            let cutoff = window.cutoff(updated_at);
            buckets.retain(|start, _| *start >= cutoff);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::DAY;

    fn spec() -> FeatureSpec {
        FeatureSpec::parse(include_str!("../../features.toml")).expect("example spec")
    }

    fn delta(batch: &str, received_at: Millis, key: &str, state: FeatureState) -> EntityDelta {
        EntityDelta {
            entity: "user".into(),
            id: "cid-1".into(),
            batch_id: batch.into(),
            received_at,
            updates: BTreeMap::from([(key.to_owned(), state)]),
        }
    }

    fn count(n: i64) -> FeatureState {
        FeatureState {
            updated_at: 5,
            value: Agg::Count(Cells::Total(n)),
        }
    }

    #[test]
    fn a_batch_applies_once() {
        let spec = spec();
        let mut doc = FeatureDoc::default();
        let d = delta("b1", 0, "pageviews@1", count(2));
        assert_eq!(apply_delta(&spec, &mut doc, &d), Applied::Applied);
        assert_eq!(apply_delta(&spec, &mut doc, &d), Applied::Duplicate);
        assert_eq!(
            doc.features["pageviews@1"].value,
            Agg::Count(Cells::Total(2))
        );
        let d2 = delta("b2", 0, "pageviews@1", count(3));
        assert_eq!(apply_delta(&spec, &mut doc, &d2), Applied::Applied);
        assert_eq!(
            doc.features["pageviews@1"].value,
            Agg::Count(Cells::Total(5))
        );
    }

    #[test]
    fn batch_markers_expire_after_the_last_time_the_edge_takes_their_events() {
        let spec = spec();
        let mut doc = FeatureDoc::default();
        let ttl = BATCH_MARKER_TTL;
        apply_delta(&spec, &mut doc, &delta("old", 0, "pageviews@1", count(1)));
        // The end-of-visit beacon resent on a return two days later.
        let two_days = 2 * DAY;
        let again = delta("old", two_days, "pageviews@1", count(1));
        assert_eq!(apply_delta(&spec, &mut doc, &again), Applied::Duplicate);
        apply_delta(&spec, &mut doc, &delta("new", ttl, "pageviews@1", count(1)));
        assert!(
            doc.batches.contains_key("old"),
            "exactly the TTL old is kept"
        );
        apply_delta(
            &spec,
            &mut doc,
            &delta("newer", ttl + 1, "pageviews@1", count(1)),
        );
        assert!(!doc.batches.contains_key("old"));
        // A batch older than the horizon is applied but not remembered.
        apply_delta(&spec, &mut doc, &delta("late", 0, "pageviews@1", count(1)));
        assert!(!doc.batches.contains_key("late"));
        assert_eq!(doc.batches.len(), 2);
    }

    /// The marker outlives every copy of its batch the edge would take an
    /// event of: the latest event a batch received at `t` can hold (at the
    /// limit ahead of it) is still taken at `t + max_future + max_past`,
    /// refused a millisecond later, and the marker is kept past both.
    #[test]
    fn the_marker_outlives_every_copy_whose_events_the_edge_takes() {
        use crate::limits::Limits;
        use crate::validate::receive;
        let limits = Limits::default();
        let t: Millis = 1_795_000_000_000;
        let ahead = t + limits.max_future;
        let body = serde_json::json!({"batchId": "b1", "events": [{
            "type": "page_view", "clientId": "cid-1",
            "timestamp": crate::time::format_rfc3339(ahead),
        }]});
        let body = serde_json::to_vec(&body).expect("json");
        let taken = |at: Millis| receive(&body, at, &limits).expect("valid").events.len();
        assert_eq!(taken(t), 1, "first sent");
        let last = ahead + limits.max_past;
        assert_eq!(taken(last), 1, "the last moment a copy still counts");
        assert_eq!(taken(last + 1), 0, "after it, every event is too old");
        assert!(
            last - t < BATCH_MARKER_TTL,
            "the marker is still there at the last moment"
        );
    }

    #[test]
    fn distinct_keeps_the_most_recent_max() {
        let spec = FeatureSpec::parse(
            "[entities.user]\nkey=[\"clientId\"]\n[[feature]]\nname=\"c\"\nentity=\"user\"\n\
             on=[\"v\"]\nagg=\"distinct\"\nfield=\"payload.c\"\nmax=2\n",
        )
        .expect("spec");
        let def = &spec.features()[0];
        let mut s = FeatureState {
            updated_at: 3,
            value: Agg::Distinct(BTreeMap::from([("a".into(), 1), ("b".into(), 3)])),
        };
        s.merge(
            FeatureState {
                updated_at: 2,
                value: Agg::Distinct(BTreeMap::from([("c".into(), 2), ("a".into(), 0)])),
            },
            def,
        );
        assert_eq!(
            s.value,
            Agg::Distinct(BTreeMap::from([("b".into(), 3), ("c".into(), 2)]))
        );
    }

    #[test]
    fn a_document_survives_json_text_exactly() {
        // The Durable Object stores the document as JSON text.
        let mut x: f64 = 0.123_456_789;
        let mut sums = Vec::new();
        for i in 0..2_000 {
            x = (x * 3.7 + f64::from(i).sin()).fract() * 10f64.powi(i % 40 - 20);
            sums.push(x);
        }
        let state = FeatureState {
            updated_at: 1,
            value: Agg::VectorAvg(Cells::Total(sums)),
        };
        let text = serde_json::to_string(&state).expect("json");
        let back: FeatureState = serde_json::from_str(&text).expect("json");
        assert_eq!(back, state);
    }

    #[test]
    fn windows_prune_buckets_that_left() {
        let spec = spec();
        let def = spec.feature("clicks_product_card_7d@1").expect("feature");
        let mut s = FeatureState {
            updated_at: DAY,
            value: Agg::Count(Cells::Buckets(BTreeMap::from([(0, 1), (DAY, 1)]))),
        };
        s.merge(
            FeatureState {
                updated_at: 8 * DAY,
                value: Agg::Count(Cells::Buckets(BTreeMap::from([(8 * DAY, 1)]))),
            },
            def,
        );
        assert_eq!(
            s.value,
            Agg::Count(Cells::Buckets(BTreeMap::from([(DAY, 1), (8 * DAY, 1)])))
        );
    }
}
