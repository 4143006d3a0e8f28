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
//! - `_batches: [<batch id>, …]`, the last 1,000 applied, by `$push` with
//!   `$slice`. The filter says `_batches: {$ne: batchId}`: a retried batch
//!   matches no document, the upsert then collides on `_id`, and that
//!   duplicate-key error means "already applied". A retry is recognised while
//!   fewer than 1,000 newer batches touched the same entity: for a product
//!   clicked by many visitors that is the window that matters (at 10 batches
//!   a second, 100 s), and 1,000 ids (~40 KB) keep the document small.
//!
//! Old window buckets, and `distinct` and `mode` values beyond `max`, are not
//! removed by the update (it cannot see the document); reads ignore them.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::spec::{Aggregation, FeatureDef, FeatureSpec};
use crate::state::{Agg, Cells, EntityDelta, FeatureDoc, FeatureState, Stamped};
use crate::time::{Millis, SECOND};

/// How many batch ids a document remembers.
pub const MAX_BATCH_MARKERS: usize = 1_000;

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
    set(
        "$push",
        "_batches".to_owned(),
        json!({"$each": [delta.batch_id], "$slice": -(MAX_BATCH_MARKERS as i64)}),
    );
    let update: Map<String, Value> = ops
        .into_iter()
        .map(|(op, fields)| (op.to_owned(), Value::Object(fields)))
        .collect();
    MongoUpdate {
        collection: collection(&delta.entity),
        filter: json!({"_id": delta.id, "_batches": {"$ne": delta.batch_id}}),
        update: Value::Object(update),
    }
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

/// Reads back what [`increments`] wrote.
fn decode_increments(def: &FeatureDef, raw: &Value) -> Option<Agg> {
    let windowed = def.window.is_some();
    let parts = |v: &Value| -> Option<Vec<f64>> {
        let parts = v.as_object()?;
        let n = def.cell_parts();
        (0..n)
            .map(|k| parts.get(&k.to_string()).map_or(Some(0.0), Value::as_f64))
            .collect()
    };
    match def.agg {
        Aggregation::Avg => decode_cells(raw, windowed, parts).map(Agg::Avg),
        Aggregation::VectorAvg => decode_cells(raw, windowed, parts).map(Agg::VectorAvg),
        Aggregation::Decay => decode_cells(raw, windowed, Value::as_i64).map(Agg::Decay),
        Aggregation::Mode => raw.as_object().map(|counts| {
            Agg::Mode(
                counts
                    .iter()
                    .filter_map(|(k, n)| Some((unescape_key(k), n.as_i64()?)))
                    .collect(),
            )
        }),
        _ => None,
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

/// Decodes an entity's document (as relaxed extended JSON: numbers plain)
/// into its [`FeatureDoc`]. Parts that do not have Freshet's shape are skipped.
pub fn decode_document(spec: &FeatureSpec, entity: &str, document: &Value) -> FeatureDoc {
    let mut doc = FeatureDoc::default();
    let ts = document.get("_ts").and_then(Value::as_object);
    for def in spec.features_of(entity) {
        let key = def.key();
        let (Some(updated_at), Some(raw)) = (
            ts.and_then(|t| t.get(key)).and_then(Value::as_i64),
            document.get(key),
        ) else {
            continue;
        };
        let windowed = def.window.is_some();
        let value = match def.agg {
            Aggregation::Count => decode_cells(raw, windowed, Value::as_i64).map(Agg::Count),
            Aggregation::Sum => decode_cells(raw, windowed, Value::as_f64).map(Agg::Sum),
            Aggregation::Min => decode_cells(raw, windowed, Value::as_f64).map(Agg::Min),
            Aggregation::Max => decode_cells(raw, windowed, Value::as_f64).map(Agg::Max),
            Aggregation::Last => decode_stamped(raw).map(Agg::Last),
            Aggregation::First => decode_stamped(raw).map(Agg::First),
            Aggregation::Distinct => raw.as_object().map(|seen| {
                Agg::Distinct(
                    seen.iter()
                        .filter_map(|(k, t)| Some((unescape_key(k), t.as_i64()?)))
                        .collect(),
                )
            }),
            Aggregation::LatestN => raw
                .as_array()
                .map(|items| Agg::LatestN(items.iter().filter_map(decode_stamped).collect())),
            Aggregation::Avg | Aggregation::VectorAvg | Aggregation::Decay | Aggregation::Mode => {
                decode_increments(def, raw)
            }
        };
        if let Some(value) = value {
            let mut state = FeatureState { updated_at, value };
            state.settle(def);
            doc.features.insert(key.to_owned(), state);
        }
    }
    doc
}

fn decode_cells<T>(
    raw: &Value,
    windowed: bool,
    get: impl Fn(&Value) -> Option<T>,
) -> Option<Cells<T>> {
    if !windowed {
        return get(raw).map(Cells::Total);
    }
    let buckets = raw
        .as_object()?
        .iter()
        .filter_map(|(start, v)| Some((start.parse::<Millis>().ok()? * SECOND, get(v)?)))
        .collect();
    Some(Cells::Buckets(buckets))
}

fn decode_stamped(raw: &Value) -> Option<Stamped> {
    Some(Stamped {
        t: raw.get("t")?.as_i64()?,
        id: raw.get("id")?.as_str()?.to_owned(),
        v: raw.get("v")?.clone(),
    })
}

/// BSON as the relaxed JSON [`decode_document`] reads: Int32/Int64
/// integers, Double floats; types Freshet never writes (dates, ids, binary)
/// become null, which decoding skips.
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
