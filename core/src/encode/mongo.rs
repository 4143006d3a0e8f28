//! MongoDB layout and encoding: one document per entity in the collection
//! `<entity>_features`, `_id` the entity id, written by one `updateOne` with
//! `upsert` per delta. The document stays plain, so a model server can read
//! it with `find_one({"_id": id})` and no Freshet code:
//!
//! - `pageviews@1: 3` (count, sum, min, max: `$inc`, `$min`, `$max`);
//! - `clicks_7d@1: {"<bucket start, Unix seconds>": 2, …}` (windowed);
//! - `last_product@1: {t, id, v}` kept by `$max`/`$min` on the embedded
//!   document, which MongoDB compares field by field: by time, then event id;
//! - `viewed_categories@1: {"<value>": <time>, …}` by `$max` per value (keys
//!   escaped: `%`, `.` and `$` as `%25`, `%2E`, `%24`);
//! - `recent_products@1: [{t, id, v}, …]` by `$push` with `$sort` and `$slice`;
//! - `avg@1: {"0": <count>, "1": <sum>}` and `vector_avg@1: {"0": <total
//!   weight>, "1": <weighted sum of element 0>, …}` by `$inc` per part
//!   (windowed: `{"<bucket start>": {"0": …, …}, …}`); `decay@1:
//!   {"<bucket start>": <fixed-point sum>, …}` by `$inc` (see
//!   [`crate::spec::Decay`]); `mode@1: {"<value as JSON>": <count>, …}` by
//!   `$inc` per value, keys escaped as `distinct`'s;
//! - `_ts: {"<feature>": <latest event time>}` by `$max`;
//! - `_b: {"<slot>": [<marker>, …], …}`: the applied-batch markers
//!   ([`marker_member`], 16 hex digits), in [`MARKER_SLOTS`] slots by receive
//!   day (the day number modulo 11). A write `$push`es its marker into its
//!   day's slot (keeping that slot's last [`MAX_MARKERS_PER_DAY`]) and
//!   `$unset`s the next day's slot, which holds markers of ten days before,
//!   past [`BATCH_MARKER_TTL`]. The filter says `"_b.<slot>": {$ne: marker}`
//!   for every other slot: a retried batch matches no document, the upsert
//!   then collides on `_id`, and that duplicate-key error means "already
//!   applied". So a retry counts once for as long as the edge takes any of
//!   its events (8 days and an hour), for an entity of up to 1,000 batches a
//!   day; a day slot is bounded, so a document holds at most 11,000 markers
//!   (~290 KB) however hot its entity. A queue delivery's deltas of one
//!   entity go as one fold ([`folded_update`]): `$nin` of all their markers,
//!   all pushed at once.
//! - `_batches: [<batch id>, …]`: the markers of the layout before `_b`,
//!   still in the filter (a batch applied before an upgrade counts once) and
//!   no longer written.
//!
//! Old window buckets, and `distinct` and `mode` values beyond `max`, are not
//! removed by the update (it cannot see the document); reads ignore them.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value, json};

use super::{DecodeError, marker_member};

use crate::fold::FoldedDelta;
use crate::spec::{Aggregation, FeatureDef, FeatureSpec};
use crate::state::{Agg, BATCH_MARKER_TTL, Cells, EntityDelta, FeatureDoc, FeatureState, Stamped};
use crate::time::{DAY, Millis, SECOND};

/// How many day slots of batch markers a document has: a marker is kept
/// until its slot is cleared, ten days after its day began, longer than
/// [`BATCH_MARKER_TTL`] from any time of that day.
pub const MARKER_SLOTS: Millis = 11;
pub use super::MAX_MARKERS_PER_DAY;

// The slot cleared on day D is day D - 10's: its markers are at least nine
// days old, past their TTL; every marker younger than the TTL is in a slot
// the filter checks (days D - 9 to D).
const _: () = assert!((MARKER_SLOTS - 2) * DAY >= BATCH_MARKER_TTL);

/// The day slot of a batch received at `received_at`.
pub fn marker_slot(received_at: Millis) -> Millis {
    received_at.div_euclid(DAY).rem_euclid(MARKER_SLOTS)
}

/// One `updateOne`: where, what, and always `upsert: true`.
#[derive(Debug, Clone, PartialEq)]
pub struct MongoUpdate {
    pub collection: String,
    pub filter: Value,
    pub update: Value,
}

/// The collection an entity's documents live in.
pub fn collection(entity: &str) -> String {
    format!("{entity}_features")
}

/// The `updateOne` that applies `delta`.
pub fn update_one(spec: &FeatureSpec, delta: &EntityDelta) -> MongoUpdate {
    // A delta that merges idempotently needs no marker: applied again, it
    // changes nothing.
    let marked: &[String] = if delta.needs_marker(spec) {
        std::slice::from_ref(&delta.batch_id)
    } else {
        &[]
    };
    update_marked(spec, delta, marked)
}

/// The `updateOne` that applies a fold of several batches' deltas of one
/// entity ([`crate::fold::fold_deltas`]) in one atomic write: its filter
/// matches only while none of the folded batches' markers is there, and it
/// records them all. Should one be there, the upsert collides on `_id` and
/// writes nothing, which the store reads as "apply the fold's deltas one by
/// one", each under its own marker, as a Redis fold's [`super::redis`]
/// script answers. A fold of one delta is [`update_one`]'s.
pub fn folded_update(spec: &FeatureSpec, fold: &FoldedDelta) -> MongoUpdate {
    if fold.is_fold() {
        update_marked(spec, &fold.delta, &fold.marked)
    } else {
        update_one(spec, &fold.delta)
    }
}

/// `delta`'s update, applied only where none of the batches `marked` was
/// applied before, and recording each.
fn update_marked(spec: &FeatureSpec, delta: &EntityDelta, marked: &[String]) -> MongoUpdate {
    let mut ops: BTreeMap<&str, Map<String, Value>> = BTreeMap::new();
    let mut set = |op: &'static str, path: String, value: Value| {
        ops.entry(op).or_default().insert(path, value);
    };
    for (key, state) in &delta.updates {
        let Some(def) = spec.feature(key) else {
            continue;
        };
        set("$max", format!("_ts.{key}"), Value::from(state.updated_at));
        match &state.value {
            Agg::Count(c) => cells(c, key, |p, v| set("$inc", p, Value::from(*v))),
            Agg::Sum(c) => cells(c, key, |p, v| set("$inc", p, Value::from(*v))),
            Agg::Min(c) => cells(c, key, |p, v| set("$min", p, Value::from(*v))),
            Agg::Max(c) => cells(c, key, |p, v| set("$max", p, Value::from(*v))),
            Agg::Last(s) => set("$max", key.clone(), stamped(s)),
            Agg::First(s) => set("$min", key.clone(), stamped(s)),
            Agg::Distinct(seen) => {
                for (value, t) in seen {
                    set(
                        "$max",
                        format!("{key}.{}", escape_key(value)),
                        Value::from(*t),
                    );
                }
            }
            Agg::Avg(_) | Agg::VectorAvg(_) | Agg::Decay(_) | Agg::Mode(_) => {
                increments(&state.value, key, |p, v| set("$inc", p, v));
            }
            Agg::LatestN(items) => set(
                "$push",
                key.clone(),
                json!({
                    "$each": items.iter().map(stamped).collect::<Vec<_>>(),
                    "$sort": {"t": -1, "id": -1},
                    "$slice": def.max,
                }),
            ),
        }
    }
    let filter = if marked.is_empty() {
        json!({"_id": delta.id})
    } else {
        let markers: Vec<String> = marked.iter().map(|b| marker_member(b)).collect();
        let slot = marker_slot(delta.received_at);
        let stale = (slot + 1).rem_euclid(MARKER_SLOTS);
        set(
            "$push",
            format!("_b.{slot}"),
            json!({"$each": markers, "$slice": -(MAX_MARKERS_PER_DAY as i64)}),
        );
        set("$unset", format!("_b.{stale}"), Value::from(""));
        marker_filter(&delta.id, marked, &markers, stale)
    };
    let update: Map<String, Value> = ops
        .into_iter()
        .map(|(op, fields)| (op.to_owned(), Value::Object(fields)))
        .collect();
    MongoUpdate {
        collection: collection(&delta.entity),
        filter,
        update: Value::Object(update),
    }
}

/// Why this spec cannot be kept in MongoDB, if it cannot: `$inc` adds in
/// doubles, so a `float = "f32"` feature's sums would not be the ones core
/// rounds (README, "Where we deviate").
pub fn unsupported(spec: &FeatureSpec) -> Option<String> {
    spec.features().iter().find(|def| def.f32).map(|def| {
        format!(
            "feature `{}` has float = \"f32\", which MongoDB cannot keep exactly ($inc adds in doubles): use Redis or the Durable Object, or drop float",
            def.key()
        )
    })
}

/// The document, unless one of its slots (but the one being cleared) or the
/// layout before's `_batches` holds the batch's marker.
fn marker_filter(id: &str, batch_ids: &[String], markers: &[String], stale: Millis) -> Value {
    // One marker: `$ne`; several (a fold): `$nin`.
    let none_of = |values: &[String]| match values {
        [one] => json!({"$ne": one}),
        many => json!({"$nin": many}),
    };
    let mut filter = Map::new();
    filter.insert("_id".into(), Value::from(id));
    for slot in (0..MARKER_SLOTS).filter(|s| *s != stale) {
        filter.insert(format!("_b.{slot}"), none_of(markers));
    }
    filter.insert("_batches".into(), none_of(batch_ids));
    Value::Object(filter)
}

/// The `$inc`s of the aggregations that only add: `avg`, `vector_avg`,
/// `decay` and `mode`.
fn increments(value: &Agg, key: &str, mut inc: impl FnMut(String, Value)) {
    match value {
        Agg::Avg(c) | Agg::VectorAvg(c) => cells(c, key, |path, parts| {
            for (k, x) in parts.iter().enumerate() {
                inc(format!("{path}.{k}"), Value::from(*x));
            }
        }),
        Agg::Decay(c) => cells(c, key, |path, v| inc(path, Value::from(*v))),
        Agg::Mode(counts) => {
            for (value, n) in counts {
                inc(format!("{key}.{}", escape_key(value)), Value::from(*n));
            }
        }
        _ => {}
    }
}

fn cells<T>(cells: &Cells<T>, key: &str, mut put: impl FnMut(String, &T)) {
    match cells {
        Cells::Total(v) => put(key.to_owned(), v),
        Cells::Buckets(buckets) => {
            for (start, v) in buckets {
                put(format!("{key}.{}", start / SECOND), v);
            }
        }
    }
}

fn stamped(s: &Stamped) -> Value {
    json!({"t": s.t, "id": s.id, "v": s.v})
}

/// Escapes a value for use as a field name.
pub fn escape_key(value: &str) -> String {
    if value.is_empty() {
        return "%".to_owned();
    }
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '%' => out.push_str("%25"),
            '.' => out.push_str("%2E"),
            '$' => out.push_str("%24"),
            c => out.push(c),
        }
    }
    out
}

/// Reverses [`escape_key`].
pub fn unescape_key(key: &str) -> String {
    if key == "%" {
        return String::new();
    }
    key.replace("%2E", ".")
        .replace("%24", "$")
        .replace("%25", "%")
}

/// How errors name an entity's document: its collection and `_id`.
pub fn document_name(entity: &str, id: &str) -> String {
    format!("{} document {id:?}", collection(entity))
}

/// Decodes an entity's document (as relaxed extended JSON: numbers plain)
/// into its [`FeatureDoc`]. A feature without its value or its `_ts` entry
/// was never written and is left out (it reads as its default); a part that
/// is there but does not have the shape [`update_one`] writes is an error
/// naming its field, as Redis's decoding is ([`super`]).
pub fn decode_document(
    spec: &FeatureSpec,
    entity: &str,
    document: &Value,
) -> Result<FeatureDoc, DecodeError> {
    let mut doc = FeatureDoc::default();
    let ts = document.get("_ts").map(|t| object(t, "_ts")).transpose()?;
    for def in spec.features_of(entity) {
        let key = def.key();
        let (Some(updated_at), Some(raw)) = (ts.and_then(|t| t.get(key)), document.get(key)) else {
            continue;
        };
        let updated_at = integer(updated_at, &format!("_ts.{key}"))?;
        let mut state = FeatureState {
            updated_at,
            value: decode_value(def, raw)?,
        };
        state.settle(def);
        doc.features.insert(key.to_owned(), state);
    }
    Ok(doc)
}

/// Reads back one feature's field as [`update_one`] wrote it.
fn decode_value(def: &FeatureDef, raw: &Value) -> Result<Agg, DecodeError> {
    let key = def.key();
    let windowed = def.window.is_some();
    // `avg` and `vector_avg` cells: a part never incremented is 0.
    let parts = |cell: &Value, field: &str| -> Result<Vec<f64>, DecodeError> {
        let parts = object(cell, field)?;
        (0..def.cell_parts())
            .map(|k| {
                let k = k.to_string();
                parts
                    .get(&k)
                    .map_or(Ok(0.0), |x| number(x, &format!("{field}.{k}")))
            })
            .collect()
    };
    Ok(match def.agg {
        Aggregation::Count => Agg::Count(decode_cells(raw, key, windowed, integer)?),
        Aggregation::Sum => Agg::Sum(decode_cells(raw, key, windowed, number)?),
        Aggregation::Min => Agg::Min(decode_cells(raw, key, windowed, number)?),
        Aggregation::Max => Agg::Max(decode_cells(raw, key, windowed, number)?),
        Aggregation::Last => Agg::Last(decode_stamped(raw, key)?),
        Aggregation::First => Agg::First(decode_stamped(raw, key)?),
        Aggregation::Distinct => Agg::Distinct(decode_counts(raw, key)?),
        Aggregation::LatestN => Agg::LatestN(
            array(raw, key)?
                .iter()
                .enumerate()
                .map(|(i, item)| decode_stamped(item, &format!("{key}.{i}")))
                .collect::<Result<_, _>>()?,
        ),
        Aggregation::Avg => Agg::Avg(decode_cells(raw, key, windowed, parts)?),
        Aggregation::VectorAvg => Agg::VectorAvg(decode_cells(raw, key, windowed, parts)?),
        Aggregation::Decay => Agg::Decay(decode_cells(raw, key, windowed, integer)?),
        Aggregation::Mode => Agg::Mode(decode_counts(raw, key)?),
    })
}

fn decode_cells<T>(
    raw: &Value,
    field: &str,
    windowed: bool,
    get: impl Fn(&Value, &str) -> Result<T, DecodeError>,
) -> Result<Cells<T>, DecodeError> {
    if !windowed {
        return get(raw, field).map(Cells::Total);
    }
    let mut buckets = BTreeMap::new();
    for (start, v) in object(raw, field)? {
        let at = format!("{field}.{start}");
        let start = start
            .parse::<Millis>()
            .ok()
            .and_then(|s| s.checked_mul(SECOND))
            .ok_or_else(|| bad(&at, "is not a bucket start (Unix seconds)"))?;
        buckets.insert(start, get(v, &at)?);
    }
    Ok(Cells::Buckets(buckets))
}

/// `distinct`'s times and `mode`'s counts, by escaped value.
fn decode_counts(raw: &Value, field: &str) -> Result<BTreeMap<String, i64>, DecodeError> {
    object(raw, field)?
        .iter()
        .map(|(k, n)| Ok((unescape_key(k), integer(n, &format!("{field}.{k}"))?)))
        .collect()
}

fn decode_stamped(raw: &Value, field: &str) -> Result<Stamped, DecodeError> {
    let s = object(raw, field)?;
    let part = |name: &str| {
        let at = format!("{field}.{name}");
        s.get(name)
            .map(|v| (v, at.clone()))
            .ok_or_else(|| bad(&at, "is missing"))
    };
    let (t, t_at) = part("t")?;
    let (id, id_at) = part("id")?;
    let (v, _) = part("v")?;
    Ok(Stamped {
        t: integer(t, &t_at)?,
        id: id
            .as_str()
            .ok_or_else(|| bad(&id_at, format!("is {}, not a string", kind(id))))?
            .to_owned(),
        v: v.clone(),
    })
}

fn bad(field: &str, why: impl fmt::Display) -> DecodeError {
    DecodeError {
        store: "MongoDB",
        detail: format!("field `{field}` {why}"),
        layout1: false,
    }
}

fn integer(v: &Value, field: &str) -> Result<i64, DecodeError> {
    v.as_i64()
        .ok_or_else(|| bad(field, format!("is {}, not an integer", kind(v))))
}

fn number(v: &Value, field: &str) -> Result<f64, DecodeError> {
    v.as_f64()
        .ok_or_else(|| bad(field, format!("is {}, not a number", kind(v))))
}

fn object<'a>(v: &'a Value, field: &str) -> Result<&'a Map<String, Value>, DecodeError> {
    v.as_object()
        .ok_or_else(|| bad(field, format!("is {}, not a document", kind(v))))
}

fn array<'a>(v: &'a Value, field: &str) -> Result<&'a Vec<Value>, DecodeError> {
    v.as_array()
        .ok_or_else(|| bad(field, format!("is {}, not an array", kind(v))))
}

/// What a misshapen value is, without its content (which may be large).
fn kind(v: &Value) -> &'static str {
    match v {
        // Also every BSON type Freshet never writes ([`bson_to_json`]).
        Value::Null => "null or of a type Freshet never writes",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a float",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "a document",
    }
}

/// BSON as the relaxed JSON [`decode_document`] reads: Int32/Int64
/// integers, Double floats; types Freshet never writes (dates, ids, binary)
/// become null, which decoding refuses.
#[cfg(feature = "bson")]
pub fn bson_to_json(value: &bson::Bson) -> Value {
    use bson::Bson;
    match value {
        Bson::Boolean(b) => Value::Bool(*b),
        Bson::Int32(i) => Value::from(*i),
        Bson::Int64(i) => Value::from(*i),
        Bson::Double(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
        Bson::String(s) => Value::String(s.clone()),
        Bson::Array(items) => Value::Array(items.iter().map(bson_to_json).collect()),
        Bson::Document(d) => document_to_json(d),
        _ => Value::Null,
    }
}

/// `core`'s JSON as BSON: integers Int64, other numbers Double, and the
/// fields of every document in [`field_order`].
#[cfg(feature = "bson")]
pub fn json_to_bson(value: &Value) -> bson::Bson {
    use bson::Bson;
    match value {
        Value::Null => Bson::Null,
        Value::Bool(b) => Bson::Boolean(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Bson::Int64(i),
            None => Bson::Double(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => Bson::String(s.clone()),
        Value::Array(items) => Bson::Array(items.iter().map(json_to_bson).collect()),
        Value::Object(fields) => Bson::Document(json_to_document(fields)),
    }
}

/// A JSON object as a BSON document ([`json_to_bson`]).
#[cfg(feature = "bson")]
pub fn json_to_document(fields: &Map<String, Value>) -> bson::Document {
    let mut ordered: Vec<_> = fields.iter().collect();
    ordered.sort_by(|(a, _), (b, _)| field_order(a, b));
    ordered
        .into_iter()
        .map(|(k, v)| (k.clone(), json_to_bson(v)))
        .collect()
}

/// The order a document's fields are written in: `t`, then `id`, then the
/// rest by name. MongoDB compares embedded documents field by field in the
/// order they were written, so `$max`/`$min` on a stamped value `{t, id, v}`
/// and the `latest_n` sort `{t: -1, id: -1}` must see the time first and the
/// event id second. serde_json's objects sort their keys (`id` before `t`),
/// which made them compare by event id: the order is decided here, where
/// JSON becomes BSON, for every writer.
pub fn field_order(a: &str, b: &str) -> std::cmp::Ordering {
    let rank = |k: &str| match k {
        "t" => 0,
        "id" => 1,
        _ => 2,
    };
    rank(a).cmp(&rank(b)).then_with(|| a.cmp(b))
}

/// A BSON document as JSON, field by field ([`bson_to_json`]).
#[cfg(feature = "bson")]
pub fn document_to_json(doc: &bson::Document) -> Value {
    Value::Object(
        doc.iter()
            .map(|(k, v)| (k.clone(), bson_to_json(v)))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "bson")]
    #[test]
    fn stamped_values_and_sorts_compare_time_first() {
        let keys = |v: &Value| -> Vec<String> {
            let bson::Bson::Document(d) = json_to_bson(v) else {
                panic!("document")
            };
            d.keys().cloned().collect()
        };
        let s = stamped(&Stamped {
            t: 5,
            id: "a".into(),
            v: json!(1),
        });
        assert_eq!(keys(&s), ["t", "id", "v"]);
        assert_eq!(keys(&json!({"id": -1, "t": -1})), ["t", "id"]);
        assert_eq!(keys(&json!({"b": 1, "a": 2})), ["a", "b"]);
    }

    const SHAPES: &str = r#"
[entities.user]
key = ["userId"]

[[feature]]
name = "n"
entity = "user"
on = ["*"]
agg = "count"

[[feature]]
name = "n_1d"
entity = "user"
on = ["*"]
agg = "count"
window = "1d"

[[feature]]
name = "s"
entity = "user"
on = ["*"]
agg = "sum"
field = "payload.x"

[[feature]]
name = "lo"
entity = "user"
on = ["*"]
agg = "min"
field = "payload.x"

[[feature]]
name = "hi"
entity = "user"
on = ["*"]
agg = "max"
field = "payload.x"

[[feature]]
name = "l"
entity = "user"
on = ["*"]
agg = "last"
field = "payload.x"

[[feature]]
name = "f"
entity = "user"
on = ["*"]
agg = "first"
field = "payload.x"

[[feature]]
name = "d"
entity = "user"
on = ["*"]
agg = "distinct"
field = "payload.x"

[[feature]]
name = "r"
entity = "user"
on = ["*"]
agg = "latest_n"
field = "payload.x"

[[feature]]
name = "a"
entity = "user"
on = ["*"]
agg = "avg"
field = "payload.x"

[[feature]]
name = "a_1d"
entity = "user"
on = ["*"]
agg = "avg"
field = "payload.x"
window = "1d"

[[feature]]
name = "v"
entity = "user"
on = ["*"]
agg = "vector_avg"
field = "payload.x"
dim = 2

[[feature]]
name = "e"
entity = "user"
on = ["*"]
agg = "decay"
half_life = "1d"

[[feature]]
name = "m"
entity = "user"
on = ["*"]
agg = "mode"
field = "payload.x"
"#;

    const AT: i64 = 1_700_000_000_000;

    fn decode(key: &str, value: Value) -> Result<FeatureDoc, DecodeError> {
        let spec = FeatureSpec::parse(SHAPES).expect("spec");
        let document = json!({"_id": "u1", "_ts": {key: AT}, key: value});
        decode_document(&spec, "user", &document)
    }

    #[test]
    fn every_shape_decodes_and_a_malformed_part_is_named() {
        // (feature, as written, malformed, the field the error names)
        let cases = [
            ("n@1", json!(3), json!("3"), "n@1"),
            (
                "n_1d@1",
                json!({"1700000000": 2}),
                json!({"1700000000": "2"}),
                "n_1d@1.1700000000",
            ),
            (
                "n_1d@1",
                json!({"1700000000": 2}),
                json!({"soon": 2}),
                "n_1d@1.soon",
            ),
            ("n_1d@1", json!({"1700000000": 2}), json!(2), "n_1d@1"),
            ("s@1", json!(2.5), json!([2.5]), "s@1"),
            ("lo@1", json!(-1), json!(null), "lo@1"),
            ("hi@1", json!(7.5), json!(true), "hi@1"),
            (
                "l@1",
                json!({"t": AT, "id": "e1", "v": "x"}),
                json!({"t": AT, "v": "x"}),
                "l@1.id",
            ),
            (
                "f@1",
                json!({"t": AT, "id": "e1", "v": 1}),
                json!({"t": "1", "id": "e1", "v": 1}),
                "f@1.t",
            ),
            (
                "f@1",
                json!({"t": AT, "id": "e1", "v": 1}),
                json!("x"),
                "f@1",
            ),
            ("d@1", json!({"a": AT}), json!({"a": AT, "b": 1.5}), "d@1.b"),
            (
                "r@1",
                json!([{"t": AT, "id": "e1", "v": 1}]),
                json!([{"t": AT, "id": "e1", "v": 1}, 7]),
                "r@1.1",
            ),
            ("r@1", json!([]), json!({"0": 1}), "r@1"),
            (
                "a@1",
                json!({"0": 2, "1": 3.0}),
                json!({"0": 2, "1": "3"}),
                "a@1.1",
            ),
            (
                "a_1d@1",
                json!({"1700000000": {"0": 1, "1": 2}}),
                json!({"1700000000": 3}),
                "a_1d@1.1700000000",
            ),
            (
                "v@1",
                json!({"0": 1, "1": 0.5, "2": 0.5}),
                json!({"0": 1, "1": null}),
                "v@1.1",
            ),
            (
                "e@1",
                json!({"1700000000": 4_294_967_296_i64}),
                json!({"1700000000": 1.5}),
                "e@1.1700000000",
            ),
            ("m@1", json!({"x": 3}), json!({"x": "3"}), "m@1.x"),
        ];
        for (key, good, malformed, field) in cases {
            let doc = decode(key, good).unwrap_or_else(|e| panic!("{key}: {e}"));
            assert!(doc.features.contains_key(key), "{key}");
            let e = decode(key, malformed).expect_err(key).to_string();
            assert!(
                e.starts_with(&format!("unexpected MongoDB state: field `{field}` ")),
                "{key}: {e}"
            );
        }
    }

    #[test]
    fn a_part_never_written_is_absent_and_a_malformed_time_is_named() {
        let spec = FeatureSpec::parse(SHAPES).expect("spec");
        let decode = |document: Value| decode_document(&spec, "user", &document);
        // A value without its time, a time without its value, no `_ts`: absent.
        let doc = decode(json!({"_id": "u1", "_ts": {"s@1": AT}, "n@1": 3})).expect("decodes");
        assert!(doc.features.is_empty());
        let doc = decode(json!({"_id": "u1", "n@1": 3})).expect("decodes");
        assert!(doc.features.is_empty());
        // An `avg` part never incremented is 0.
        let doc =
            decode(json!({"_id": "u1", "_ts": {"a@1": AT}, "a@1": {"0": 1}})).expect("decodes");
        assert_eq!(
            doc.features["a@1"].value,
            Agg::Avg(Cells::Total(vec![1.0, 0.0]))
        );
        let e = decode(json!({"_ts": {"n@1": "late"}, "n@1": 3})).expect_err("time");
        assert_eq!(
            e.to_string(),
            "unexpected MongoDB state: field `_ts.n@1` is a string, not an integer"
        );
        let e = decode(json!({"_ts": 5})).expect_err("_ts");
        assert_eq!(
            e.to_string(),
            "unexpected MongoDB state: field `_ts` is an integer, not a document"
        );
        assert_eq!(document_name("user", "u1"), "user_features document \"u1\"");
    }

    #[test]
    fn keys_escape_and_unescape() {
        for v in ["", "a.b", "$x", "100%", "%2E", "plain"] {
            let k = escape_key(v);
            assert!(
                !k.contains('.') && !k.starts_with('$') && !k.is_empty(),
                "{k}"
            );
            assert_eq!(unescape_key(&k), v);
        }
    }
}
