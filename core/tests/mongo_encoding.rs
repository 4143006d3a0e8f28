//! The MongoDB `updateOne` of the seed's payload: the operators the seed's
//! `processEventsForUpdate` used, and a document that decodes to what
//! `apply_delta` gives. Running it against a real wire-protocol server is
//! the edge's MongoDB test; this pins the encoding itself.

mod common;

use common::{NOW, spec};
use freshet_core::aggregate::aggregate;
use freshet_core::encode::marker_member;
use freshet_core::encode::mongo::{MARKER_SLOTS, decode_document, marker_slot, update_one};
use freshet_core::limits::Limits;
use freshet_core::state::{FeatureDoc, apply_delta};
use freshet_core::validate::receive;
use serde_json::{Map, Value, json};

/// What an upsert into no document stores: the filter's `_id`, and each
/// operator's value as the field's first value (`$push` keeps its `$each`,
/// sorted and sliced as asked).
fn first_upsert(filter: &Value, update: &Value) -> Value {
    let mut doc = Map::new();
    doc.insert("_id".into(), filter["_id"].clone());
    for (op, fields) in update.as_object().expect("update") {
        if op == "$unset" {
            continue; // nothing to remove from no document
        }
        for (path, value) in fields.as_object().expect("fields") {
            let value = if op == "$push" {
                let mut each = value["$each"].as_array().expect("$each").clone();
                if value.get("$sort").is_some() {
                    each.sort_by(|a, b| {
                        (b["t"].as_i64(), b["id"].as_str())
                            .cmp(&(a["t"].as_i64(), a["id"].as_str()))
                    });
                }
                let slice = value["$slice"].as_i64().expect("$slice");
                let keep = usize::try_from(slice.unsigned_abs()).expect("slice");
                if slice >= 0 {
                    each.truncate(keep)
                } else {
                    each = each.split_off(each.len().saturating_sub(keep))
                }
                Value::Array(each)
            } else {
                value.clone()
            };
            set_path(&mut doc, path, value);
        }
    }
    Value::Object(doc)
}

fn set_path(doc: &mut Map<String, Value>, path: &str, value: Value) {
    match path.split_once('.') {
        Some((head, rest)) => {
            let child = doc.entry(head).or_insert_with(|| Value::Object(Map::new()));
            set_path(child.as_object_mut().expect("object"), rest, value);
        }
        None => {
            doc.insert(path.to_owned(), value);
        }
    }
}

#[test]
fn seed_payload_becomes_one_upsert_with_the_seeds_operators() {
    let spec = spec();
    let raw = include_bytes!("fixtures/seed_payload.json");
    let batch = receive(raw, NOW, &Limits::default()).expect("valid");
    let deltas = aggregate(&spec, &batch, None);
    let user = deltas
        .iter()
        .find(|d| d.entity == "user")
        .expect("user delta");
    let update = update_one(&spec, user);
    assert_eq!(update.collection, "user_features");
    // The markers: the batch's, in the slot of its receive day, and checked
    // in every other slot but the next day's (cleared by this write), and in
    // the layout before's `_batches`.
    let marker = marker_member(&batch.batch_id);
    let slot = marker_slot(NOW);
    let cleared = (slot + 1) % MARKER_SLOTS;
    let mut filter =
        json!({"_id": "cid-1732269480000-k3j9x2", "_batches": {"$ne": batch.batch_id}});
    for s in (0..MARKER_SLOTS).filter(|s| *s != cleared) {
        filter[format!("_b.{s}")] = json!({"$ne": marker});
    }
    assert_eq!(update.filter, filter);
    let u = &update.update;
    assert_eq!(u["$inc"]["pageviews@1"], 2);
    assert_eq!(u["$inc"]["clicks_product_card@1"], 2);
    assert_eq!(u["$max"]["last_interacted_product@1"]["v"], "prod-67890");
    assert_eq!(
        u["$max"]["viewed_categories@1.cameras"],
        1_795_341_550_000_i64
    );
    assert_eq!(u["$max"]["last_event_at@1"], 1_795_341_560_000.0);
    assert_eq!(
        u["$push"][format!("_b.{slot}")],
        json!({"$each": [marker], "$slice": -1000})
    );
    assert_eq!(u["$unset"][format!("_b.{cleared}")], "");

    let stored = first_upsert(&update.filter, &update.update);
    let mut expected = FeatureDoc::default();
    apply_delta(&spec, &mut expected, user);
    assert_eq!(
        decode_document(&spec, "user", &stored)
            .expect("decodes")
            .features,
        expected.features
    );
}
