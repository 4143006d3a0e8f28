//! Redis layout and encoding (docs/ARCHITECTURE.md#redis):
//!
//! - `fs:{user:cid-1}`: one hash per entity. Plain features are fields
//!   `pageviews@1`; window buckets are fields `clicks_7d@1|<bucket start, Unix
//!   seconds>`; `_ts:<feature>` holds the latest event time (ms) and
//!   `_o:<feature>` the `time|id` that ranks a `last`/`first` value, whose
//!   field holds the value as JSON.
//! - `fs:{user:cid-1}:viewed_categories@1`: a zset per `distinct` feature
//!   (member the value, score the latest time seen) and per `latest_n` feature
//!   (member `<event id> <JSON value>`, score the event time), trimmed to `max`.
//! - `avg` and `vector_avg` keep each cell's numbers (`[count, sum]`,
//!   `[weight, weighted sums…]`) in one field, as a `sum` keeps its number,
//!   written `1,42.5` (each number's exact text, joined by `,`) and added
//!   in doubles by the script, as core adds them; `decay` keeps its
//!   fixed-point bucket sums as a windowed `count` does, with `HINCRBY`.
//! - `fs:{user:cid-1}:preferred_hour@1`: a zset per `mode` feature, member
//!   the value as JSON, score its count (`ZINCRBY`), trimmed to `max`.
//! - `fs:{user:cid-1}:b`: the entity's applied-batch markers, a zset: member
//!   the 8 bytes of [`marker_member`] (the first 8 of the batch id's SHA-256;
//!   the script turns the hex it is given into bytes), score when
//!   the marker expires (Unix seconds, [`BATCH_MARKER_TTL`] after the batch
//!   was received); the script drops the expired ones on every write, and
//!   the key expires with its last marker.
//! - `fs:{user:cid-1}:b:<batchId>`: the marker of the layout before (a
//!   string, `EX 86400`); no longer written, still honoured by the script
//!   until the last of them has expired.
//!
//! The hash tag `{user:cid-1}` keeps an entity's keys in one cluster slot, so
//! one script call can apply its whole delta atomically.
//!
//! Bucket fields name their start in Unix seconds rather than the original
//! design's `YYYYMMDD` (docs/ARCHITECTURE.md#where-we-deviate-from-the-original-design):
//! the script then prunes buckets by arithmetic alone, and any reader turns
//! them into dates with one division.

use std::collections::BTreeMap;

pub use super::{DecodeError, marker_member};
use crate::spec::{Aggregation, FeatureDef, FeatureSpec};
use crate::state::{Agg, BATCH_MARKER_TTL, Cells, EntityDelta, FeatureDoc, FeatureState, Stamped};
use crate::time::{Millis, SECOND};

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
    pub fn hash(&self) -> String {
        format!("{}:{{{}:{}}}", self.prefix, self.entity, self.id)
    }

    pub fn set(&self, feature_key: &str) -> String {
        format!("{}:{feature_key}", self.hash())
    }

    /// The zset of the entity's applied-batch markers.
    pub fn batch_markers(&self) -> String {
        format!("{}:b", self.hash())
    }

    /// The marker key of the layout before the zset (`SET NX EX 86400`).
    pub fn legacy_batch_marker(&self, batch_id: &str) -> String {
        format!("{}:b:{batch_id}", self.hash())
    }
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

/// The script call that applies `delta`. Features the spec does not know
/// are left out, as `apply_delta` leaves them out.
pub fn apply_call(spec: &FeatureSpec, prefix: &str, delta: &EntityDelta) -> ApplyCall {
    let keys = EntityKeys {
        prefix,
        entity: &delta.entity,
        id: &delta.id,
    };
    let mut call = ApplyCall {
        keys: vec![
            keys.hash(),
            keys.batch_markers(),
            keys.legacy_batch_marker(&delta.batch_id),
        ],
        args: vec![
            marker_member(&delta.batch_id),
            delta.received_at.div_euclid(SECOND).to_string(),
            (delta.received_at + BATCH_MARKER_TTL)
                .div_euclid(SECOND)
                .to_string(),
        ],
    };
    for (key, state) in &delta.updates {
        let Some(def) = spec.feature(key) else {
            continue;
        };
        encode_update(&mut call, &keys, def, state);
    }
    call
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
            def.key().to_owned(),
            state.updated_at.to_string(),
        ]);
    };
    match &state.value {
        Agg::Count(cells) => encode_cells(call, def, head, "count", cells, i64::to_string),
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
        Agg::Decay(cells) => encode_cells(call, def, head, "count", cells, i64::to_string),
        Agg::Avg(cells) | Agg::VectorAvg(cells) => {
            encode_cells(call, def, head, "parts", cells, |parts| join_parts(parts));
        }
    }
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
    call.keys.push(keys.set(def.key()));
    call.args.extend([def.max.to_string(), len.to_string()]);
    for (score, member) in members {
        call.args.extend([score, member]);
    }
}

/// A cell of several numbers as one field: shortest round-trip text joined
/// by `,`; the script writes its sums back as `%.17g`, exact as well.
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
    let (span, granule) = def.window.map_or((0, 0), |w| (w.span, w.granule));
    call.args.extend([span.to_string(), granule.to_string()]);
    match cells {
        Cells::Total(v) => call.args.extend(["1".to_owned(), "-".to_owned(), show(v)]),
        Cells::Buckets(buckets) => {
            call.args.push(buckets.len().to_string());
            for (start, v) in buckets {
                call.args.extend([(start / SECOND).to_string(), show(v)]);
            }
        }
    }
}

fn latest_member(s: &Stamped) -> String {
    // Ids are [A-Za-z0-9_-], all above ' ', so members order by (id, value)
    // exactly as `Stamped` ranks by id.
    format!("{} {}", s.id, s.v)
}

/// The commands that read an entity's whole state, in one pipeline:
/// `HGETALL` of its hash, then `ZRANGE … WITHSCORES` of each set feature.
pub fn read_commands(
    spec: &FeatureSpec,
    prefix: &str,
    entity: &str,
    id: &str,
) -> Vec<RedisCommand> {
    read_commands_for(spec, prefix, entity, id, None)
}

/// Like [`read_commands`], but reads only the set features whose storage key
/// (`name@version`) is in `wanted`, when given: a zset costs a command each,
/// while the hash holds every other feature in one.
pub fn read_commands_for(
    spec: &FeatureSpec,
    prefix: &str,
    entity: &str,
    id: &str,
    wanted: Option<&[&str]>,
) -> Vec<RedisCommand> {
    let keys = EntityKeys { prefix, entity, id };
    let mut commands = vec![RedisCommand::new(["HGETALL".to_owned(), keys.hash()])];
    for def in set_features(spec, entity, wanted) {
        commands.push(RedisCommand::new([
            "ZRANGE".to_owned(),
            keys.set(def.key()),
            "0".to_owned(),
            "-1".to_owned(),
            "WITHSCORES".to_owned(),
        ]));
    }
    commands
}

fn set_features<'a>(
    spec: &'a FeatureSpec,
    entity: &'a str,
    wanted: Option<&'a [&'a str]>,
) -> impl Iterator<Item = &'a FeatureDef> {
    spec.features_of(entity)
        .filter(move |def| is_set_feature(def) && wanted.is_none_or(|w| w.contains(&def.key())))
}

/// Whether a feature lives in a zset of its own rather than in the hash.
fn is_set_feature(def: &FeatureDef) -> bool {
    matches!(
        def.agg,
        Aggregation::Distinct | Aggregation::LatestN | Aggregation::Mode
    )
}

fn bad(what: impl Into<String>) -> DecodeError {
    DecodeError {
        store: "Redis",
        detail: what.into(),
    }
}

/// Decodes the replies to [`read_commands`] into the entity's document.
/// Batch markers are separate keys and are not read: `batches` stays empty.
pub fn decode_state(
    spec: &FeatureSpec,
    entity: &str,
    replies: &[RedisValue],
) -> Result<FeatureDoc, DecodeError> {
    decode_state_for(spec, entity, None, replies)
}

/// Decodes the replies to [`read_commands_for`] with the same `wanted`; set
/// features not wanted are left out of the document.
pub fn decode_state_for(
    spec: &FeatureSpec,
    entity: &str,
    wanted: Option<&[&str]>,
    replies: &[RedisValue],
) -> Result<FeatureDoc, DecodeError> {
    let (hash_reply, set_replies) = replies.split_first().ok_or_else(|| bad("no replies"))?;
    let hash = pairs(hash_reply)?;
    let mut fields: BTreeMap<&str, &str> = BTreeMap::new();
    for (field, value) in &hash {
        fields.insert(field.as_str(), value.as_str());
    }
    let mut sets = set_replies.iter();
    let mut doc = FeatureDoc::default();
    for def in spec.features_of(entity) {
        let set = if !is_set_feature(def) {
            None
        } else if wanted.is_none_or(|w| w.contains(&def.key())) {
            Some(
                sets.next()
                    .ok_or_else(|| bad("fewer set replies than set features"))?,
            )
        } else {
            // A set feature not read: left out rather than read as empty.
            continue;
        };
        let key = def.key();
        let Some(ts) = fields.get(format!("_ts:{key}").as_str()) else {
            continue;
        };
        let updated_at: Millis = parse(ts, key)?;
        let value = match def.agg {
            Aggregation::Count => Agg::Count(cells(def, &fields, |s| parse(s, key))?),
            Aggregation::Sum => Agg::Sum(cells(def, &fields, |s| parse(s, key))?),
            Aggregation::Min => Agg::Min(cells(def, &fields, |s| parse(s, key))?),
            Aggregation::Max => Agg::Max(cells(def, &fields, |s| parse(s, key))?),
            Aggregation::Last | Aggregation::First => {
                let v = fields
                    .get(key)
                    .ok_or_else(|| bad(format!("{key} has no value")))?;
                let order = fields
                    .get(format!("_o:{key}").as_str())
                    .ok_or_else(|| bad(format!("{key} has no _o field")))?;
                let (t, id) = order
                    .split_once('|')
                    .ok_or_else(|| bad(format!("_o:{key}")))?;
                let stamped = Stamped {
                    t: parse(t, key)?,
                    id: id.to_owned(),
                    v: serde_json::from_str(v).map_err(|_| bad(format!("{key} is not JSON")))?,
                };
                if def.agg == Aggregation::Last {
                    Agg::Last(stamped)
                } else {
                    Agg::First(stamped)
                }
            }
            Aggregation::Distinct => {
                let members = scored(set.ok_or_else(|| bad("missing set"))?)?;
                Agg::Distinct(members.into_iter().collect())
            }
            Aggregation::LatestN => {
                let mut items = Vec::new();
                for (member, t) in scored(set.ok_or_else(|| bad("missing set"))?)? {
                    let (id, v) = member
                        .split_once(' ')
                        .ok_or_else(|| bad(format!("{key} member")))?;
                    let v = serde_json::from_str(v).map_err(|_| bad(format!("{key} member")))?;
                    items.push(Stamped {
                        t,
                        id: id.to_owned(),
                        v,
                    });
                }
                items.sort_unstable_by(|a, b| (b.t, &b.id).cmp(&(a.t, &a.id)));
                Agg::LatestN(items)
            }
            Aggregation::Mode => {
                let members = scored(set.ok_or_else(|| bad("missing set"))?)?;
                Agg::Mode(members.into_iter().collect())
            }
            Aggregation::Decay => Agg::Decay(cells(def, &fields, |s| parse(s, key))?),
            Aggregation::Avg => Agg::Avg(cells(def, &fields, |s| split_parts(s, key))?),
            Aggregation::VectorAvg => Agg::VectorAvg(cells(def, &fields, |s| split_parts(s, key))?),
        };
        doc.features
            .insert(key.to_owned(), FeatureState { updated_at, value });
    }
    Ok(doc)
}

fn cells<T>(
    def: &FeatureDef,
    fields: &BTreeMap<&str, &str>,
    parse_value: impl Fn(&str) -> Result<T, DecodeError>,
) -> Result<Cells<T>, DecodeError> {
    let key = def.key();
    if def.window.is_none() {
        let v = fields
            .get(key)
            .ok_or_else(|| bad(format!("{key} has no value")))?;
        return Ok(Cells::Total(parse_value(v)?));
    }
    let prefix = format!("{key}|");
    let mut buckets = BTreeMap::new();
    for (field, v) in fields.range(prefix.as_str()..) {
        let Some(start) = field.strip_prefix(&prefix) else {
            break;
        };
        let start: Millis = parse(start, key)?;
        buckets.insert(start * SECOND, parse_value(v)?);
    }
    Ok(Cells::Buckets(buckets))
}

fn split_parts(text: &str, key: &str) -> Result<Vec<f64>, DecodeError> {
    text.split(',').map(|x| parse(x, key)).collect()
}

fn parse<T: std::str::FromStr>(text: &str, key: &str) -> Result<T, DecodeError> {
    text.parse()
        .map_err(|_| bad(format!("{key}: `{text}` is not a number")))
}

fn text(value: &RedisValue) -> Result<String, DecodeError> {
    match value {
        RedisValue::Bulk(b) => String::from_utf8(b.clone()).map_err(|_| bad("non-UTF-8 string")),
        RedisValue::Simple(s) => Ok(s.clone()),
        RedisValue::Int(i) => Ok(i.to_string()),
        RedisValue::Double(d) => Ok(d.to_string()),
        RedisValue::Error(e) => Err(bad(format!("error reply: {e}"))),
        other => Err(bad(format!("expected a string, got {other:?}"))),
    }
}

/// Field-value pairs of an `HGETALL` reply (a flat RESP2 array or a RESP3 map).
fn pairs(reply: &RedisValue) -> Result<Vec<(String, String)>, DecodeError> {
    match reply {
        RedisValue::Array(items) => items
            .chunks(2)
            .map(|pair| match pair {
                [k, v] => Ok((text(k)?, text(v)?)),
                _ => Err(bad("odd-length HGETALL reply")),
            })
            .collect(),
        RedisValue::Map(entries) => entries
            .iter()
            .map(|(k, v)| Ok((text(k)?, text(v)?)))
            .collect(),
        RedisValue::Nil => Ok(Vec::new()),
        RedisValue::Error(e) => Err(bad(format!("error reply: {e}"))),
        other => Err(bad(format!("expected HGETALL's array, got {other:?}"))),
    }
}

/// Member-score pairs of a `ZRANGE … WITHSCORES` reply (RESP2 flat or RESP3 nested).
fn scored(reply: &RedisValue) -> Result<Vec<(String, Millis)>, DecodeError> {
    let score = |v: &RedisValue| -> Result<Millis, DecodeError> {
        match v {
            // Scores are whole milliseconds, exact in a double.
            #[allow(clippy::cast_possible_truncation)]
            RedisValue::Double(d) => Ok(*d as Millis),
            other => parse(&text(other)?, "score"),
        }
    };
    let RedisValue::Array(items) = reply else {
        return match reply {
            RedisValue::Nil => Ok(Vec::new()),
            other => Err(bad(format!("expected ZRANGE's array, got {other:?}"))),
        };
    };
    if items.iter().all(|i| matches!(i, RedisValue::Array(_))) {
        return items
            .iter()
            .map(|pair| match pair {
                RedisValue::Array(p) if p.len() == 2 => Ok((text(&p[0])?, score(&p[1])?)),
                _ => Err(bad("malformed ZRANGE pair")),
            })
            .collect();
    }
    items
        .chunks(2)
        .map(|pair| match pair {
            [m, s] => Ok((text(m)?, score(s)?)),
            _ => Err(bad("odd-length ZRANGE reply")),
        })
        .collect()
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
        assert_eq!(keys.hash(), "fs:{user:cid-123}");
        assert_eq!(
            keys.set("viewed_categories@1"),
            "fs:{user:cid-123}:viewed_categories@1"
        );
        assert_eq!(keys.batch_markers(), "fs:{user:cid-123}:b");
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
