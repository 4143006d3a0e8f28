//! How a summary lives in MongoDB: one document per feature@version per hour
//! in the collection [`COLLECTION`], `_id: "clicks@1|2026112905"`, updated by
//! increments so concurrent sampling points never lose a count, and removed
//! by a TTL index on `at` (the last write's time) [`SUMMARY_TTL_SECS`] later.
//!
//! Fields are the Redis hash's ([`super::store`]), flat, with numbers as
//! numbers: `n`, `null`, `num`, `z`, `other`, `cats` (counts), `sum`, `sq`,
//! `min`, `max`, `p:<i>` / `m:<i>` (buckets), `c:<name>` (a category, the name
//! escaped as entity documents' keys are: `%`, `.`, `$` as `%25`, `%2E`,
//! `%24`, so no key has a `.` or starts with `$`), plus `at` (a date),
//! `feature` and `hour` (for people reading the collection).
//!
//! One ordered `update` of [`update_statements`] adds a summary: the first
//! statement upserts the counters (`$inc`, `$min`, `$max`); then, per
//! category, three statements keep at most [`MAX_CATEGORIES`] category
//! fields without reading the document first:
//!
//! 1. `{c:<name>: {$exists: false}, cats: {$lt: 64}}` → `$inc {c:<name>: 0,
//!    cats: 1}`: the field is created, with no count yet, while there is room
//!    (the test and the increment of `cats` are one atomic update, so `cats`
//!    never passes the bound);
//! 2. `{c:<name>: {$exists: true}}` → `$inc {c:<name>: n}`;
//! 3. `{c:<name>: {$exists: false}, cats: {$gte: 64}}` → `$inc {other: n}`.
//!
//! Exactly one of 2 and 3 counts `n`, whatever other writers do in between:
//! a field is never removed, so if it existed at 1 it exists at 2; if 1 did
//! not create it, `cats` was full, nobody can create it any more, and 3
//! matches. A field created by 1 whose count has not arrived yet reads as no
//! category.

use bson::{Bson, DateTime, Document, doc};

use crate::encode::mongo::{escape_key, unescape_key};
use crate::time::{HOUR, Millis};

use super::store::{SUMMARY_TTL_SECS, hour_label, summary_from_fields};
use super::summary::{CorruptSummary, MAX_CATEGORIES, Summary};

/// The collection the summaries live in, next to `<entity>_features`.
pub const COLLECTION: &str = "drift";

/// The TTL index's name.
pub const TTL_INDEX: &str = "freshet_drift_ttl";

/// Fields that are not the summary's.
const LABELS: [&str; 4] = ["_id", "at", "feature", "hour"];

/// The `_id` of a feature's summary for the hour holding `t`.
pub fn summary_id(feature_key: &str, t: Millis) -> String {
    format!("{feature_key}|{}", hour_label(t))
}

/// The ids of the hours from `now - since` up to `now`, oldest first.
pub fn hour_ids(feature_key: &str, now: Millis, since: Millis) -> Vec<String> {
    let last = now.div_euclid(HOUR);
    let first = (now - since.max(0)).div_euclid(HOUR);
    (first..=last)
        .map(|h| summary_id(feature_key, h * HOUR))
        .collect()
}

/// The index spec for `createIndexes`: documents go [`SUMMARY_TTL_SECS`]
/// after their last write.
pub fn ttl_index() -> Document {
    doc! {
        "key": {"at": 1_i32},
        "name": TTL_INDEX,
        "expireAfterSeconds": i64::try_from(SUMMARY_TTL_SECS).unwrap_or(i64::MAX),
    }
}

fn count(n: u64) -> Bson {
    Bson::Int64(i64::try_from(n).unwrap_or(i64::MAX))
}

/// The statements (`{q, u, upsert}`) of one ordered `update` on
/// [`COLLECTION`] that add `s` to the summary of `feature_key` for the hour
/// holding `now`. They must run in order (`ordered: true`).
pub fn update_statements(feature_key: &str, now: Millis, s: &Summary) -> Vec<Document> {
    let id = summary_id(feature_key, now);
    let mut inc = doc! {"n": count(s.count)};
    for (field, n) in [
        ("null", s.nulls),
        ("num", s.numbers),
        ("z", s.zeros),
        ("other", s.other),
    ] {
        if n > 0 {
            inc.insert(field, count(n));
        }
    }
    if s.numbers > 0 {
        inc.insert("sum", s.sum);
        inc.insert("sq", s.sum_sq);
    }
    for (i, n) in &s.positive {
        inc.insert(format!("p:{i}"), count(*n));
    }
    for (i, n) in &s.negative {
        inc.insert(format!("m:{i}"), count(*n));
    }
    let mut max = doc! {"at": DateTime::from_millis(now)};
    if let Some(x) = s.max {
        max.insert("max", x);
    }
    let mut update = doc! {
        "$inc": inc,
        "$max": max,
        "$setOnInsert": {"cats": 0_i64, "feature": feature_key, "hour": hour_label(now)},
    };
    if let Some(x) = s.min {
        update.insert("$min", doc! {"min": x});
    }
    let mut statements = vec![doc! {"q": {"_id": id.as_str()}, "u": update, "upsert": true}];
    let bound = i64::try_from(MAX_CATEGORIES).unwrap_or(i64::MAX);
    for (name, n) in &s.categories {
        let field = format!("c:{}", escape_key(name));
        let mut absent = doc! {"_id": id.as_str()};
        absent.insert(field.as_str(), doc! {"$exists": false});
        let mut room = absent.clone();
        room.insert("cats", doc! {"$lt": bound});
        let mut full = absent;
        full.insert("cats", doc! {"$gte": bound});
        let mut present = doc! {"_id": id.as_str()};
        present.insert(field.as_str(), doc! {"$exists": true});
        let mut create = doc! {"cats": 1_i64};
        create.insert(field.as_str(), 0_i64);
        let mut add = Document::new();
        add.insert(field.as_str(), count(*n));
        statements.push(doc! {"q": room, "u": {"$inc": create}});
        statements.push(doc! {"q": present, "u": {"$inc": add}});
        statements.push(doc! {"q": full, "u": {"$inc": {"other": count(*n)}}});
    }
    statements
}

/// Reads a summary back from its document. Unknown fields and values that
/// are not numbers are refused with the field's name, as in Redis.
pub fn summary_from_document(document: &Document) -> Result<Summary, CorruptSummary> {
    let mut fields = Vec::with_capacity(document.len());
    for (k, v) in document {
        if LABELS.contains(&k.as_str()) {
            continue;
        }
        let text = match v {
            Bson::Int32(n) => n.to_string(),
            Bson::Int64(n) => n.to_string(),
            Bson::Double(x) => {
                // Counts stored as whole doubles (a client that wrote them
                // as floats) still read as counts.
                if x.fract() == 0.0 && x.abs() < 9e15 && !matches!(k.as_str(), "sum" | "sq") {
                    format!("{}", *x as i64)
                } else {
                    format!("{x:?}")
                }
            }
            other => {
                return Err(CorruptSummary {
                    field: k.clone(),
                    reason: format!("not a number ({:?})", other.element_type()),
                });
            }
        };
        let key = match k.strip_prefix("c:") {
            Some(name) => {
                if text == "0" {
                    // Created by the bounding step; its count is on its way.
                    continue;
                }
                format!("c:{}", unescape_key(name))
            }
            None => k.clone(),
        };
        fields.push((key, text));
    }
    summary_from_fields(fields)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::time::parse_rfc3339;

    #[test]
    fn ids_per_hour() {
        let t = parse_rfc3339("2026-11-29T05:59:59Z").unwrap_or_default();
        assert_eq!(summary_id("clicks@1", t), "clicks@1|2026112905");
        let ids = hour_ids("clicks@1", t, 24 * HOUR);
        assert_eq!(ids.len(), 25);
        assert_eq!(ids[0], "clicks@1|2026112805");
    }

    #[test]
    fn category_names_are_escaped_and_bounded_by_cats() {
        let mut s = Summary::default();
        s.add(&json!("a.b"));
        s.add(&json!("$x"));
        let statements = update_statements("f@1", 0, &s);
        assert_eq!(statements.len(), 1 + 3 * 2);
        let first = statements[1].get_document("q").unwrap_or_else(|_| panic!());
        assert!(first.contains_key("c:%24x"), "{first}");
        assert_eq!(
            first.get_document("cats").ok(),
            Some(&doc! {"$lt": MAX_CATEGORIES as i64})
        );
        for st in &statements {
            for (k, _) in st.get_document("u").unwrap_or_else(|_| panic!()) {
                assert!(k.starts_with('$'));
            }
        }
    }

    #[test]
    fn documents_read_back() {
        let mut s = Summary::default();
        for v in [json!(0.1), json!(-2), json!(0), json!(1e14), json!(null)] {
            s.add(&v);
        }
        s.add(&json!("a.b"));
        // What the server holds after the update on an empty collection.
        let statements = update_statements("f@1", 0, &s);
        let u = statements[0].get_document("u").unwrap_or_else(|_| panic!());
        let mut stored =
            doc! {"_id": "f@1|1970010100", "cats": 1_i64, "at": DateTime::from_millis(0)};
        for op in ["$inc", "$min", "$max"] {
            for (k, v) in u.get_document(op).unwrap_or_else(|_| panic!()) {
                stored.insert(k, v.clone());
            }
        }
        stored.insert("c:a%2Eb", 1_i64);
        stored.insert("c:pending", 0_i64);
        assert_eq!(summary_from_document(&stored), Ok(s));
        stored.insert("n", "many");
        assert_eq!(
            summary_from_document(&stored).map_err(|e| e.field),
            Err("n".to_owned())
        );
    }
}
