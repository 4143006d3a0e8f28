//! Redis layout 2 and its encoding (docs/ARCHITECTURE.md#redis). Per entity:
//!
//! - `fs:{user:cid-1}:2`: one hash. Each feature is named by its 4-character
//!   [`FeatureDef::tag`]: `<tag>` holds an unwindowed number or a `last`/
//!   `first` value (JSON), `<tag>|<n>` window bucket number n (its start
//!   divided by the bucket width), `_t<tag>` the latest event time (ms),
//!   `_o<tag>` the `time|id` that ranks a `last`/`first` value.
//! - `fs:{user:cid-1}:2:b`: the applied-batch markers, 8 bytes each
//!   ([`marker_member`]), grouped by the day they were received (a string:
//!   per day its number and count, u16 each, then its markers); a write
//!   drops the groups ten days old, so a marker is kept nine days or more,
//!   beyond [`BATCH_MARKER_TTL`](crate::state::BATCH_MARKER_TTL), and the key expires ten days after its
//!   newest day. A string, not hash fields: a field over 64 bytes (more
//!   than 8 batches in a day) would turn the whole hash into Redis's
//!   hashtable encoding. A delta whose features all merge idempotently
//!   (`min`, `max`, `last`, `first`, `distinct`, `latest_n`) carries no
//!   marker: applying it twice changes nothing.
//! - `fs:{user:cid-1}:<tag>`: a string per `avg` and `vector_avg` feature,
//!   its cells packed (see `apply.lua`): a cell of 33 doubles is 268 bytes
//!   where its text took ~600, and a hash keeps its compact encoding only
//!   while every value is at most 64 bytes (`hash-max-listpack-value`).
//!   `float = "f32"` halves it again.
//! - `fs:{user:cid-1}:<tag>`: a zset per `distinct` feature (member the
//!   value, score the latest time seen), `latest_n` feature (member
//!   `<event id> <JSON value>`, score the event time) and `mode` feature
//!   (member the value as JSON, score its count), trimmed to `max`.
//!
//! The hash tag `{user:cid-1}` keeps an entity's keys in one cluster slot, so
//! one script call can apply its whole delta atomically.
//!
//! Layout 1 (`layout1.rs`: full names and decimal text) is still read: an
//! entity that holds it reads from it, and its first write in layout 2 is
//! refused (the script replies 2) until [`migrate_call`] has moved it, which
//! `freshet migrate` does for a whole store.

pub mod cluster;
mod layout1;
mod migrate;
mod read;
mod replies;
mod stored;

use std::collections::BTreeMap;

pub use super::{DecodeError, marker_member};
use crate::fold::FoldedDelta;
use crate::spec::{Aggregation, FeatureDef, FeatureSpec};
use crate::state::{Agg, Cells, EntityDelta, FeatureState, Stamped};
use crate::time::{Millis, SECOND};
pub use migrate::{
    Layout1Scan, layout1_entity, layout1_scans, migrate_call, migrate_reads, migrate_watch,
};
pub use read::{
    LAYOUT_MARK_VALUE, decode_layout1_for, decode_state, decode_state_for, is_layout2_store,
    is_unwritten, layout_mark, layout_mark_read, layout1_read_commands_for, read_commands,
    read_commands_for,
};
use replies::bad;

/// The script that applies one delta; replies 1 if applied, 0 if the batch
/// was applied before.
pub const APPLY_SCRIPT: &str = include_str!("apply.lua");

/// The default key prefix.
pub const DEFAULT_PREFIX: &str = "fs";

/// The script's SHA-1, as `EVALSHA` wants it.
pub fn apply_script_sha1() -> String {
    sha1_smol::Sha1::from(APPLY_SCRIPT).digest().to_string()
}

/// One Redis command: its name and arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisCommand(pub Vec<Vec<u8>>);

impl RedisCommand {
    pub fn new<I, A>(parts: I) -> Self
    where
        I: IntoIterator<Item = A>,
        A: Into<Vec<u8>>,
    {
        Self(parts.into_iter().map(Into::into).collect())
    }
}

/// A reply, as far as decoding needs one (RESP2 and RESP3).
#[derive(Debug, Clone, PartialEq)]
pub enum RedisValue {
    Nil,
    Int(i64),
    Double(f64),
    Simple(String),
    Bulk(Vec<u8>),
    Array(Vec<RedisValue>),
    Map(Vec<(RedisValue, RedisValue)>),
    Error(String),
}

/// Where one entity's keys live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntityKeys<'a> {
    pub prefix: &'a str,
    pub entity: &'a str,
    pub id: &'a str,
}

impl EntityKeys<'_> {
    fn base(&self) -> String {
        format!("{}:{{{}:{}}}", self.prefix, self.entity, self.id)
    }

    /// The entity's hash.
    pub fn hash(&self) -> String {
        format!("{}:2", self.base())
    }

    /// The entity's applied-batch markers.
    pub fn batch_markers(&self) -> String {
        format!("{}:2:b", self.base())
    }

    /// The key of a feature kept apart from the hash (cells or a zset).
    pub fn feature(&self, def: &FeatureDef) -> String {
        format!("{}:{}", self.base(), def.tag())
    }

    /// The entity's hash in layout 1.
    pub fn layout1_hash(&self) -> String {
        self.base()
    }

    /// A set feature's zset in layout 1.
    pub fn layout1_set(&self, feature_key: &str) -> String {
        format!("{}:{feature_key}", self.base())
    }

    /// The zset of the entity's applied-batch markers in layout 1.
    pub fn layout1_batch_markers(&self) -> String {
        format!("{}:b", self.base())
    }

    /// A batch's marker key before that (`SET NX EX 86400`).
    pub fn legacy_batch_marker(&self, batch_id: &str) -> String {
        format!("{}:b:{batch_id}", self.base())
    }
}

/// The command that removes one entity whole (an erasure): `DEL` of every
/// key it can have in either layout, its markers included. The keys share
/// the entity's hash tag, so a cluster serves it on one node. A batch's
/// marker key of the layout before layout 1 (`:b:<batchId>`) is not named:
/// those expired a day after their write. Replies how many keys it removed.
pub fn erase_command(spec: &FeatureSpec, keys: &EntityKeys<'_>) -> RedisCommand {
    let mut parts = vec![
        "DEL".to_owned(),
        keys.hash(),
        keys.batch_markers(),
        keys.layout1_hash(),
        keys.layout1_batch_markers(),
    ];
    for def in spec.features_of(keys.entity) {
        if place(def) != Place::Hash {
            parts.push(keys.feature(def));
        }
        if is_set_feature(def) {
            parts.push(keys.layout1_set(def.key()));
        }
    }
    RedisCommand::new(parts)
}

/// Where a feature lives in layout 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Hash,
    /// A string of packed cells.
    Cells,
    Set,
}

fn place(def: &FeatureDef) -> Place {
    match def.agg {
        Aggregation::Distinct | Aggregation::LatestN | Aggregation::Mode => Place::Set,
        Aggregation::Avg | Aggregation::VectorAvg => Place::Cells,
        _ => Place::Hash,
    }
}

/// Whether a feature lives in a zset of its own.
fn is_set_feature(def: &FeatureDef) -> bool {
    place(def) == Place::Set
}

/// The keys and arguments of one [`APPLY_SCRIPT`] call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyCall {
    pub keys: Vec<String>,
    pub args: Vec<String>,
}

impl ApplyCall {
    /// `EVALSHA <sha> <numkeys> keys… args…`
    pub fn evalsha(&self, sha1: &str) -> RedisCommand {
        self.command("EVALSHA", sha1)
    }

    /// `EVAL <script> …`, for when the server answers `NOSCRIPT`.
    pub fn eval(&self) -> RedisCommand {
        self.command("EVAL", APPLY_SCRIPT)
    }

    fn command(&self, verb: &str, script: &str) -> RedisCommand {
        let mut parts: Vec<Vec<u8>> = Vec::with_capacity(3 + self.keys.len() + self.args.len());
        parts.push(verb.into());
        parts.push(script.into());
        parts.push(self.keys.len().to_string().into());
        parts.extend(self.keys.iter().map(|k| k.clone().into_bytes()));
        parts.extend(self.args.iter().map(|a| a.clone().into_bytes()));
        RedisCommand(parts)
    }
}

/// What the script replies to one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyReply {
    Applied,
    /// The batch was applied before: nothing changed.
    Duplicate,
    /// The entity still holds layout-1 state: [`migrate_call`] first.
    NeedsMigration,
    /// Some of a fold's batches were applied before: nothing changed; apply
    /// its deltas one by one ([`folded_apply_call`]).
    Partly,
}

impl ApplyReply {
    /// The script's integer reply.
    pub fn from_reply(reply: &RedisValue) -> Result<Self, DecodeError> {
        match reply {
            RedisValue::Int(1) => Ok(Self::Applied),
            RedisValue::Int(0) => Ok(Self::Duplicate),
            RedisValue::Int(2) => Ok(Self::NeedsMigration),
            RedisValue::Int(3) => Ok(Self::Partly),
            RedisValue::Error(e) => Err(bad(format!("apply script: {e}"))),
            other => Err(bad(format!("apply script replied {other:?}"))),
        }
    }
}

/// The script call that applies `delta`. Features the spec does not know
/// are left out, as `apply_delta` leaves them out.
pub fn apply_call(spec: &FeatureSpec, prefix: &str, delta: &EntityDelta) -> ApplyCall {
    let keys = EntityKeys {
        prefix,
        entity: &delta.entity,
        id: &delta.id,
    };
    let marker = if delta.needs_marker(spec) {
        marker_member(&delta.batch_id)
    } else {
        String::new()
    };
    let mut call = call_head(&keys, &delta.batch_id, marker, delta.received_at);
    call.args.push("apply".to_owned());
    encode_updates(spec, &mut call, &keys, &delta.updates);
    call
}

/// The script call that applies a fold of several batches' deltas of one
/// entity ([`crate::fold::fold_deltas`]) in one atomic write: applied only
/// if none of its batches' markers is there, all of them recorded; else
/// [`ApplyReply::Partly`] and nothing written. A fold of one delta is
/// [`apply_call`]'s call.
pub fn folded_apply_call(spec: &FeatureSpec, prefix: &str, fold: &FoldedDelta) -> ApplyCall {
    let delta = &fold.delta;
    if !fold.is_fold() {
        return apply_call(spec, prefix, delta);
    }
    let keys = EntityKeys {
        prefix,
        entity: &delta.entity,
        id: &delta.id,
    };
    let markers: String = fold.marked.iter().map(|b| marker_member(b)).collect();
    let mut call = call_head(&keys, &delta.batch_id, markers, delta.received_at);
    // One marker key of the layout before per marked batch (at least one).
    if fold.marked.len() > 1 {
        call.keys.truncate(4);
        call.keys
            .extend(fold.marked.iter().map(|b| keys.legacy_batch_marker(b)));
    } else if let Some(b) = fold.marked.first() {
        call.keys[4] = keys.legacy_batch_marker(b);
    }
    call.args.push("fold".to_owned());
    encode_updates(spec, &mut call, &keys, &delta.updates);
    call
}

fn call_head(
    keys: &EntityKeys<'_>,
    batch_id: &str,
    marker: String,
    received_at: Millis,
) -> ApplyCall {
    ApplyCall {
        keys: vec![
            keys.hash(),
            keys.batch_markers(),
            keys.layout1_hash(),
            keys.layout1_batch_markers(),
            keys.legacy_batch_marker(batch_id),
        ],
        args: vec![marker, received_at.div_euclid(SECOND).to_string()],
    }
}

fn encode_updates(
    spec: &FeatureSpec,
    call: &mut ApplyCall,
    keys: &EntityKeys<'_>,
    updates: &BTreeMap<String, FeatureState>,
) {
    for (key, state) in updates {
        let Some(def) = spec.feature(key) else {
            continue;
        };
        encode_update(call, keys, def, state);
    }
}

fn encode_update(
    call: &mut ApplyCall,
    keys: &EntityKeys<'_>,
    def: &FeatureDef,
    state: &FeatureState,
) {
    let head = |call: &mut ApplyCall, op: &str| {
        call.args.extend([
            op.to_owned(),
            def.tag().to_owned(),
            state.updated_at.to_string(),
        ]);
    };
    match &state.value {
        Agg::Count(cells) | Agg::Decay(cells) => {
            encode_cells(call, def, head, "count", cells, i64::to_string);
        }
        Agg::Sum(cells) => encode_cells(call, def, head, "sum", cells, f64::to_string),
        Agg::Min(cells) => encode_cells(call, def, head, "min", cells, f64::to_string),
        Agg::Max(cells) => encode_cells(call, def, head, "max", cells, f64::to_string),
        Agg::Last(s) | Agg::First(s) => {
            head(
                call,
                if matches!(state.value, Agg::Last(_)) {
                    "last"
                } else {
                    "first"
                },
            );
            call.args
                .extend([s.t.to_string(), s.id.clone(), s.v.to_string()]);
        }
        Agg::Distinct(seen) => {
            let members = seen.iter().map(|(value, t)| (t.to_string(), value.clone()));
            encode_set(call, keys, def, head, "distinct", seen.len(), members);
        }
        Agg::LatestN(items) => {
            let members = items.iter().map(|s| (s.t.to_string(), latest_member(s)));
            encode_set(call, keys, def, head, "latest", items.len(), members);
        }
        Agg::Mode(counts) => {
            let members = counts
                .iter()
                .map(|(value, n)| (n.to_string(), value.clone()));
            encode_set(call, keys, def, head, "mode", counts.len(), members);
        }
        Agg::Avg(cells) | Agg::VectorAvg(cells) => {
            head(call, "cells");
            call.keys.push(keys.feature(def));
            let (span, granule) = window_of(def);
            call.args.extend([
                span.to_string(),
                granule.to_string(),
                if def.f32 { "f" } else { "d" }.to_owned(),
                def.cell_parts().to_string(),
            ]);
            push_cells(call, def, cells, |parts| join_parts(parts));
        }
    }
}

fn window_of(def: &FeatureDef) -> (Millis, Millis) {
    def.window.map_or((0, 0), |w| (w.span, w.granule))
}

/// A zset feature's args: its key, `max`, then (score, member) pairs.
fn encode_set(
    call: &mut ApplyCall,
    keys: &EntityKeys<'_>,
    def: &FeatureDef,
    head: impl Fn(&mut ApplyCall, &str),
    op: &str,
    len: usize,
    members: impl Iterator<Item = (String, String)>,
) {
    head(call, op);
    call.keys.push(keys.feature(def));
    call.args.extend([def.max.to_string(), len.to_string()]);
    for (score, member) in members {
        call.args.extend([score, member]);
    }
}

/// A cell of several numbers as one argument: shortest round-trip text
/// joined by `,`, which the script reads back exactly.
fn join_parts(parts: &[f64]) -> String {
    parts
        .iter()
        .map(f64::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

fn encode_cells<T>(
    call: &mut ApplyCall,
    def: &FeatureDef,
    head: impl Fn(&mut ApplyCall, &str),
    op: &str,
    cells: &Cells<T>,
    show: impl Fn(&T) -> String,
) {
    head(call, op);
    let (span, granule) = window_of(def);
    call.args.extend([span.to_string(), granule.to_string()]);
    push_cells(call, def, cells, show);
}

/// The cells' count, then (bucket number, value) pairs; an unwindowed
/// feature's one value is bucket 0.
fn push_cells<T>(
    call: &mut ApplyCall,
    def: &FeatureDef,
    cells: &Cells<T>,
    show: impl Fn(&T) -> String,
) {
    match cells {
        Cells::Total(v) => call.args.extend(["1".to_owned(), "0".to_owned(), show(v)]),
        Cells::Buckets(buckets) => {
            let granule = window_of(def).1.max(1);
            call.args.push(buckets.len().to_string());
            for (start, v) in buckets {
                call.args
                    .extend([start.div_euclid(granule).to_string(), show(v)]);
            }
        }
    }
}

fn latest_member(s: &Stamped) -> String {
    // Ids are [A-Za-z0-9_-], all above ' ', so members order by (id, value)
    // exactly as `Stamped` ranks by id.
    format!("{} {}", s.id, s.v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_layout() {
        let keys = EntityKeys {
            prefix: "fs",
            entity: "user",
            id: "cid-123",
        };
        assert_eq!(keys.hash(), "fs:{user:cid-123}:2");
        assert_eq!(keys.batch_markers(), "fs:{user:cid-123}:2:b");
        assert_eq!(keys.layout1_hash(), "fs:{user:cid-123}");
        assert_eq!(
            keys.layout1_set("viewed_categories@1"),
            "fs:{user:cid-123}:viewed_categories@1"
        );
        assert_eq!(keys.layout1_batch_markers(), "fs:{user:cid-123}:b");
        assert_eq!(keys.legacy_batch_marker("b1"), "fs:{user:cid-123}:b:b1");
        assert_eq!(marker_member("b1"), marker_member("b1"));
        assert_ne!(marker_member("b1"), marker_member("b2"));
        assert_eq!(marker_member("b1").len(), 16);
    }

    #[test]
    fn sha1_is_stable_hex() {
        let sha = apply_script_sha1();
        assert_eq!(sha.len(), 40);
        assert!(sha.bytes().all(|b| b.is_ascii_hexdigit()));
    }
}
