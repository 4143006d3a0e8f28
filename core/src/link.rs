//! Sign-in: an anonymous visitor's features follow them to the user they
//! sign in as, online and in replay alike (README, "Identity").
//!
//! Before sign-in a visitor's events count under their `clientId`; after
//! it, under the verified `userId` (an entity keyed `["userId",
//! "clientId"]`, [`follows_sign_in`]). The first batch the edge takes from a
//! client with a verified user *links* the two. From then on the client
//! follows the user: what its entities hold that the user has not been given
//! yet is *moved* to the user's entities (the client's own entity to the
//! user's, a pair `client|item` to `user|item`), by [`moves`]: the
//! difference between the client's documents now and what earlier moves
//! gave. The client keeps its own documents, so the difference is exact
//! whatever batches were still landing on it, and a move made twice (a
//! retry) is one batch with one marker, counted once.
//!
//! A move is logged as it was applied, as a batch of its own
//! (`link.<clientId>.<seq>`, [`Link::to_logged`]) whose `$link` events carry
//! the moved states, at the time the edge applied it. Replay merges them at
//! that time ([`deltas_of`]): a row just before sign-in does not see the
//! visitor's history under the user, one just after does, and the log
//! replays to the store's documents exactly.
//!
//! - A second client of the same user (a second device) moves its own
//!   history in, so the user's counts add up across devices.
//! - A client that signs in as another user later (a shared device that
//!   never signed out) then follows that user, from what it has gained
//!   since: what the first user was given stays theirs and nothing of it goes
//!   to the second. (The tracker's `reset()` at sign-out starts a new
//!   client, which is the usual case.)
//! - A feature with `link = false` stays with the client.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::aggregate::aggregate;
use crate::log::LoggedBatch;
use crate::spec::{
    EntityDef, FeatureDef, FeatureSpec, FieldPath, composite_id, split_composite_id,
};
use crate::state::{Agg, Cells, EntityDelta, FeatureDoc, FeatureState};
use crate::time::Millis;
use crate::validate::Event;

/// The type of a logged event that carries a move. Sent event types start
/// with a lowercase letter (`wire::is_valid_event_type`), so no tracker can
/// send one, and no feature counts it (`aggregate` skips `$` types).
pub const LINK_EVENT: &str = "$link";
/// What a link batch's id starts with; a sent batch id has no dot.
pub const LINK_BATCH_PREFIX: &str = "link.";

/// Whether `def`'s id is the verified user when there is one and the
/// client otherwise: a simple entity keyed by `userId` before `clientId`.
pub fn follows_sign_in(def: &EntityDef) -> bool {
    let at = |path: FieldPath| def.key.iter().position(|p| *p == path);
    matches!((at(FieldPath::UserId), at(FieldPath::ClientId)), (Some(u), Some(c)) if u < c)
}

/// The id entity `entity`'s id `id` takes when `client` signs in as `user`:
/// `None` when the id does not hold the client.
pub fn rekey(
    spec: &FeatureSpec,
    entity: &str,
    id: &str,
    client: &str,
    user: &str,
) -> Option<String> {
    let def = spec.entity(entity)?;
    if !def.is_composite() {
        return (follows_sign_in(def) && id == client).then(|| user.to_owned());
    }
    let mut parts = split_composite_id(id)?;
    let mut hit = false;
    for (part, value) in def.of.iter().zip(parts.iter_mut()) {
        if follows_sign_in(part) && value == client {
            user.clone_into(value);
            hit = true;
        }
    }
    hit.then(|| composite_id(&parts))
}

/// The client's own entities: `(entity, clientId)` for each simple entity
/// that follows sign-in. Its composites the edge finds in the client's
/// index (`core::erasure::indexed_of`).
pub fn own_keys(spec: &FeatureSpec, client: &str) -> Vec<(String, String)> {
    spec.entities()
        .filter(|e| !e.is_composite() && follows_sign_in(e))
        .map(|e| (e.name.clone(), client.to_owned()))
        .collect()
}

/// What one move gives one of the user's entities.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Move {
    pub entity: String,
    /// The user's side of the id (`user`, `user|item`).
    pub id: String,
    /// By storage key, `name@version`.
    pub updates: BTreeMap<String, FeatureState>,
}

/// The moves of a client's documents to `user`: for each `(entity,
/// client-side id, document now)`, what its linked features gained since
/// `given` (the same entity's features as the earlier moves gave them),
/// under the user's id. Entities with nothing new are left out.
pub fn moves(
    spec: &FeatureSpec,
    client: &str,
    user: &str,
    now: &[(String, String, FeatureDoc)],
    given: &BTreeMap<(String, String), BTreeMap<String, FeatureState>>,
) -> Vec<Move> {
    let none = BTreeMap::new();
    let mut out = Vec::new();
    for (entity, id, doc) in now {
        let Some(to) = rekey(spec, entity, id, client, user) else {
            continue;
        };
        let before = given.get(&(entity.clone(), id.clone())).unwrap_or(&none);
        let updates: BTreeMap<String, FeatureState> = doc
            .features
            .iter()
            .filter_map(|(key, state)| {
                let def = spec.feature(key).filter(|d| d.link)?;
                residual(def, state, before.get(key)).map(|r| (key.clone(), r))
            })
            .collect();
        if !updates.is_empty() {
            out.push(Move {
                entity: entity.clone(),
                id: to,
                updates,
            });
        }
    }
    out
}

/// What `now` holds beyond `before` (an earlier state of the same
/// feature), as a state to merge: `None` when nothing. Sums and counts give
/// the difference per cell; `latest_n` the items `before` lacked; the other
/// idempotent aggregations give `now` whole (merged again it changes
/// nothing); `mode` gives each value's gained count. A cell or value
/// `before` had and `now` no longer has (a window moved on, a bound dropped
/// it) gives nothing.
pub fn residual(
    def: &FeatureDef,
    now: &FeatureState,
    before: Option<&FeatureState>,
) -> Option<FeatureState> {
    let Some(before) = before else {
        return Some(now.clone());
    };
    if now == before {
        return None;
    }
    let value = match (&now.value, &before.value) {
        (Agg::Count(a), Agg::Count(b)) | (Agg::Decay(a), Agg::Decay(b)) => {
            let cells = minus_cells(a, b, |x, y| (x != y).then(|| x - y))?;
            if matches!(now.value, Agg::Count(_)) {
                Agg::Count(cells)
            } else {
                Agg::Decay(cells)
            }
        }
        (Agg::Sum(a), Agg::Sum(b)) => Agg::Sum(minus_cells(a, b, |x, y| {
            (x != y).then(|| def.round(x - y))
        })?),
        (Agg::Avg(a), Agg::Avg(b)) | (Agg::VectorAvg(a), Agg::VectorAvg(b)) => {
            let cells = minus_cells(a, b, |x: &Vec<f64>, y: &Vec<f64>| {
                (x != y && x.len() == y.len())
                    .then(|| x.iter().zip(y).map(|(p, q)| def.round(p - q)).collect())
            })?;
            if matches!(now.value, Agg::Avg(_)) {
                Agg::Avg(cells)
            } else {
                Agg::VectorAvg(cells)
            }
        }
        (Agg::Mode(a), Agg::Mode(b)) => {
            let gained: BTreeMap<String, i64> = a
                .iter()
                .filter_map(|(v, n)| {
                    let d = n - b.get(v).copied().unwrap_or(0);
                    (d > 0).then(|| (v.clone(), d))
                })
                .collect();
            if gained.is_empty() {
                return None;
            }
            Agg::Mode(gained)
        }
        // The items `before` lacked (an item is an event, by id): pushed
        // again whole, a store that appends (MongoDB's `$push`) would hold
        // an item twice.
        (Agg::LatestN(a), Agg::LatestN(b)) => {
            let new: Vec<_> = a
                .iter()
                .filter(|item| !b.iter().any(|old| old.id == item.id))
                .cloned()
                .collect();
            if new.is_empty() {
                return None;
            }
            Agg::LatestN(new)
        }
        // min, max, last, first, distinct: merged whole (merged again, they
        // change nothing in any store).
        _ => now.value.clone(),
    };
    Some(FeatureState {
        updated_at: now.updated_at,
        value,
    })
}

/// Cell by cell, `diff(now, before)` where both have the cell (`None`:
/// unchanged), `now`'s own where only it has one; `None` when no cell
/// changed.
fn minus_cells<T: Clone + PartialEq>(
    now: &Cells<T>,
    before: &Cells<T>,
    diff: impl Fn(&T, &T) -> Option<T>,
) -> Option<Cells<T>> {
    match (now, before) {
        (Cells::Total(a), Cells::Total(b)) => diff(a, b).map(Cells::Total),
        (Cells::Buckets(a), Cells::Buckets(b)) => {
            let out: BTreeMap<Millis, T> = a
                .iter()
                .filter_map(|(start, x)| match b.get(start) {
                    Some(y) => diff(x, y).map(|d| (*start, d)),
                    None => Some((*start, x.clone())),
                })
                .collect();
            (!out.is_empty()).then_some(Cells::Buckets(out))
        }
        // The window was added or removed without a new version: all of it.
        (now, _) => Some(now.clone()),
    }
}

/// One move of a client's state to a user, as applied and logged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Link {
    pub client: String,
    pub user: String,
    /// 1 for the client's first move, then one more each time.
    pub seq: u64,
    /// When the edge applied it: the receive time of its log batch.
    pub at: Millis,
    pub moves: Vec<Move>,
}

impl Link {
    /// The move's batch id, its marker in the user's documents:
    /// `link.<clientId>.<seq>`.
    pub fn batch_id(&self) -> String {
        format!("{LINK_BATCH_PREFIX}{}.{}", self.client, self.seq)
    }

    /// The deltas the store applies, one per user entity.
    pub fn deltas(&self) -> Vec<EntityDelta> {
        let batch_id = self.batch_id();
        self.moves
            .iter()
            .map(|m| EntityDelta {
                entity: m.entity.clone(),
                id: m.id.clone(),
                batch_id: batch_id.clone(),
                received_at: self.at,
                updates: m.updates.clone(),
            })
            .collect()
    }

    /// The log batch: one `$link` event per move, under the user.
    pub fn to_logged(&self, write_key: &str, spec_hash: &str) -> LoggedBatch {
        let batch_id = self.batch_id();
        let events = self
            .moves
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let mut payload = Map::new();
                payload.insert("entity".into(), Value::String(m.entity.clone()));
                payload.insert("id".into(), Value::String(m.id.clone()));
                payload.insert(
                    "updates".into(),
                    serde_json::to_value(&m.updates).unwrap_or(Value::Null),
                );
                Event {
                    id: format!("{batch_id}.{i}"),
                    event_type: LINK_EVENT.to_owned(),
                    time: self.at,
                    client_id: self.client.clone(),
                    session_id: None,
                    user_id: Some(self.user.clone()),
                    payload,
                }
            })
            .collect();
        LoggedBatch {
            batch_id,
            received_at: self.at,
            write_key: write_key.to_owned(),
            verified_user: Some(self.user.clone()),
            spec: Some(spec_hash.to_owned()),
            events,
        }
    }
}

/// The user entity a `$link` event moves state to, `(entity, id)`: `None`
/// for any other event, or one whose user is not its batch's verified user
/// (a log no edge wrote).
pub fn target_of(event: &Event, verified_user: Option<&str>) -> Option<(String, String)> {
    if event.event_type != LINK_EVENT
        || event.user_id.is_none()
        || event.user_id.as_deref() != verified_user
    {
        return None;
    }
    let text = |k: &str| event.payload.get(k)?.as_str().map(str::to_owned);
    Some((text("entity")?, text("id")?))
}

/// The delta a logged `$link` event carries ([`target_of`]).
pub fn delta_of(batch: &LoggedBatch, event: &Event) -> Option<EntityDelta> {
    let (entity, id) = target_of(event, batch.verified_user.as_deref())?;
    let updates = serde_json::from_value(event.payload.get("updates")?.clone()).ok()?;
    Some(EntityDelta {
        entity,
        id,
        batch_id: batch.batch_id.clone(),
        received_at: batch.received_at,
        updates,
    })
}

/// Every delta a logged batch gives, as the edge wrote them: its events
/// aggregated (`aggregate` skips `$` types) and the moves its `$link`
/// events carry.
pub fn logged_deltas(spec: &FeatureSpec, batch: &LoggedBatch) -> Vec<EntityDelta> {
    let mut deltas = aggregate(
        spec,
        &batch.to_valid_batch(),
        batch.verified_user.as_deref(),
    );
    deltas.extend(deltas_of(batch));
    deltas
}

/// The moves a logged batch's `$link` events carry, as deltas.
pub fn deltas_of(batch: &LoggedBatch) -> Vec<EntityDelta> {
    batch
        .events
        .iter()
        .filter_map(|e| delta_of(batch, e))
        .collect()
}

/// Whether an event is one of the edge's own (`$link`), which no feature
/// counts.
pub fn is_reserved(event: &Event) -> bool {
    event.event_type.starts_with('$')
}
