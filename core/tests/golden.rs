//! Golden fixtures: real payloads (the seed's, the tracker's) and malformed
//! ones, kept as files under `tests/fixtures/`, replayed through receive →
//! aggregate → apply → read. Each outcome is compared with its
//! `<fixture>.expected.json`; `FRESHET_BLESS=1 cargo test` rewrites those
//! files after a deliberate change (review the diff).

use std::path::Path;

use freshet_core::aggregate::aggregate;
use freshet_core::limits::Limits;
use freshet_core::read::read_features;
use freshet_core::spec::FeatureSpec;
use freshet_core::state::{FeatureDoc, apply_delta};
use freshet_core::time::{Millis, parse_rfc3339};
use freshet_core::validate::receive;
use serde_json::{Map, Value, json};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

fn now() -> Millis {
    parse_rfc3339("2026-11-22T10:00:00Z").expect("time")
}

fn spec() -> FeatureSpec {
    FeatureSpec::parse(include_str!("../../features.toml")).expect("example spec")
}

/// The outcome of one body: the edge's answer and the features it leaves.
fn outcome(raw: &[u8]) -> Value {
    let spec = spec();
    let batch = match receive(raw, now(), &Limits::default()) {
        Ok(batch) => batch,
        Err(e) => return json!({"error": e.code(), "message": e.to_string()}),
    };
    let rejected: Vec<Value> = batch
        .rejected
        .iter()
        .map(|r| json!({"index": r.index, "reason": r.error.code()}))
        .collect();
    let mut features = Map::new();
    for delta in aggregate(&spec, &batch, None) {
        let mut doc = FeatureDoc::default();
        apply_delta(&spec, &mut doc, &delta);
        let values = read_features(&spec, &delta.entity, &doc, None, now()).expect("read");
        features.insert(
            format!("{}/{}", delta.entity, delta.id),
            serde_json::to_value(values).expect("json"),
        );
    }
    json!({"accepted": batch.events.len(), "rejected": rejected, "features": features})
}

fn check(fixture: &str) -> Value {
    let raw = std::fs::read(Path::new(FIXTURES).join(fixture)).expect("fixture");
    let got = outcome(&raw);
    let expected_path = Path::new(FIXTURES).join(format!("{fixture}.expected.json"));
    if std::env::var_os("FRESHET_BLESS").is_some() {
        let text = serde_json::to_string_pretty(&got).expect("json") + "\n";
        std::fs::write(&expected_path, text).expect("write expected");
    }
    let expected: Value = serde_json::from_slice(
        &std::fs::read(&expected_path).expect("expected file; run with FRESHET_BLESS=1"),
    )
    .expect("expected is JSON");
    assert_eq!(
        got,
        expected,
        "{fixture} differs from {}",
        expected_path.display()
    );
    got
}

#[test]
fn seed_payload_gives_what_process_events_for_update_intended() {
    let got = check("seed_payload.json");
    let user = &got["features"]["user/cid-1732269480000-k3j9x2"];
    // $inc session.pageviews, $inc counters.clicks_product_card
    assert_eq!(user["pageviews"]["value"], 2);
    assert_eq!(user["clicks_product_card"]["value"], 2);
    assert_eq!(user["searches"]["value"], 1);
    // $set session.lastInteractedProductId: the latest click's product
    assert_eq!(user["last_interacted_product"]["value"], "prod-67890");
    // $addToSet sets.viewedCategories, most recent first
    assert_eq!(
        user["viewed_categories"]["value"],
        json!(["cameras", "lenses"])
    );
    // $max recency.last_event_ts
    let last = parse_rfc3339("2026-11-22T09:59:20.000Z").expect("time");
    assert_eq!(user["last_event_at"]["value"], last);
    assert_eq!(
        got["features"]["product/prod-1"]["popularity_7d"]["value"],
        1
    );
}

#[test]
fn tracker_payload() {
    let got = check("tracker_payload.json");
    let user = &got["features"]["user/cid-9f3a"];
    assert_eq!(got["accepted"], 5);
    assert_eq!(
        user["recent_products"]["value"],
        json!(["prod-2", "prod-7"])
    );
    assert_eq!(user["cart_value_1h"]["value"], 129);
    assert_eq!(user["watch_count_7d"]["value"], 1);
    // sentAt 09:59:59 received at 10:00:00: one second in flight is no
    // clock error (validate::SKEW_TOLERANCE), so times stay as sent.
    let t = parse_rfc3339("2026-11-22T09:59:54.000Z").expect("time");
    assert_eq!(user["last_event_at"]["value"], t);
}

#[test]
fn malformed_bodies() {
    assert_eq!(check("truncated.json")["error"], "malformed_json");
    assert_eq!(check("events_not_array.json")["error"], "malformed_json");
    assert_eq!(check("too_big.json.gz")["error"], "body_too_large");
    assert_eq!(check("gzip_bomb.gz")["error"], "body_too_large");
}

#[test]
fn malformed_events_cost_only_themselves() {
    let reasons = |got: &Value| -> Vec<String> {
        got["rejected"]
            .as_array()
            .expect("rejected")
            .iter()
            .map(|r| r["reason"].as_str().expect("reason").to_owned())
            .collect()
    };
    let got = check("wrong_types.json");
    assert_eq!(got["accepted"], 1);
    assert_eq!(
        reasons(&got),
        [
            "malformed_event",
            "malformed_event",
            "malformed_event",
            "payload_not_object",
            "malformed_event"
        ]
    );
    let got = check("too_deep.json");
    assert_eq!(
        (got["accepted"].clone(), reasons(&got)),
        (json!(1), vec!["payload_too_deep".to_owned()])
    );
    let got = check("bad_timestamps.json");
    assert_eq!(got["accepted"], 1);
    assert_eq!(
        reasons(&got),
        [
            "bad_timestamp",
            "bad_timestamp",
            "timestamp_in_future",
            "timestamp_too_old"
        ]
    );
    let got = check("bad_type_names.json");
    assert_eq!(got["accepted"], 1);
    assert_eq!(
        reasons(&got),
        ["bad_type", "bad_type", "bad_type", "bad_type"]
    );
}
