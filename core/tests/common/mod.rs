//! Shared by the integration tests: the example spec, random events, and
//! folding batches into documents the way a store does.

#![allow(dead_code)]

use std::collections::BTreeMap;

use freshet_core::aggregate::aggregate;
use freshet_core::spec::FeatureSpec;
use freshet_core::state::{FeatureDoc, apply_delta};
use freshet_core::time::{DAY, Millis};
use freshet_core::validate::{Event, ValidBatch};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

pub const NOW: Millis = 1_795_341_600_000; // 2026-11-22T10:00:00Z

/// The example spec, plus a feature of every aggregation and shape it does
/// not use (windowed or not, bucket widths of a day and an hour, a time zone
/// with summer time, a weight), over the events [`events`] makes.
pub fn spec() -> FeatureSpec {
    let text = format!("{}{MORE_FEATURES}", include_str!("../../../features.toml"));
    FeatureSpec::parse(&text).expect("example spec")
}

const MORE_FEATURES: &str = r#"
[[feature]]
name = "avg_minutes"
entity = "user"
on = ["watch"]
agg = "avg"
field = "payload.minutes"

[[feature]]
name = "avg_minutes_7d"
entity = "user"
on = ["watch"]
agg = "avg"
field = "payload.minutes"
window = "7d"

[[feature]]
name = "popularity_score"
entity = "product"
on = ["product_click", "add_to_cart"]
agg = "decay"
rate = 0.1
window = "7d"
scale = 0.001
cap = 1

[[feature]]
name = "heat"
entity = "product"
on = ["product_click"]
agg = "decay"
half_life = "3h"
window = "1d"

[[feature]]
name = "popularity_all_time"
entity = "user"
on = ["watch", "product_click"]
agg = "decay"
half_life = "1d"

[[feature]]
name = "preferred_hour"
entity = "user"
on = ["*"]
agg = "mode"
field = "hour_of_day"
tz = "America/New_York"
default = 20

[[feature]]
name = "preferred_weekday"
entity = "user"
on = ["watch"]
agg = "mode"
field = "day_of_week"

[[feature]]
name = "preferred_video"
entity = "user"
on = ["watch"]
agg = "mode"
field = "payload.videoId"
max = 4

[[feature]]
name = "taste"
entity = "user"
on = ["watch"]
agg = "vector_avg"
field = "payload.embedding"
dim = 3

[[feature]]
name = "taste_7d"
entity = "user"
on = ["watch"]
agg = "vector_avg"
field = "payload.embedding"
dim = 3
weight = "payload.minutes"
window = "7d"
"#;

/// Events over nine days (so 7-day windows prune), few clients, products and
/// categories (so features collide), times often equal (so ties are broken
/// by id), whole-number prices, minutes and vectors (so sums are exact in
/// any order), one watch in ten with a vector of the wrong length.
pub fn events(max: usize) -> impl Strategy<Value = Vec<Event>> {
    let event = (
        0..6usize,
        0..3usize,
        0..4usize,
        prop_oneof![Just(0i64), 0..9 * DAY, (0..20i64).prop_map(|m| m * 60_000)],
        0..500i64,
    );
    prop::collection::vec(event, 1..max).prop_map(|raw| {
        raw.into_iter()
            .enumerate()
            .map(|(i, (kind, client, item, ago, price))| {
                let (event_type, payload) = match kind {
                    0 => ("page_view", json!({"path": format!("/p/{item}")})),
                    1 => (
                        "product_click",
                        json!({"productId": format!("prod-{item}")}),
                    ),
                    2 => (
                        "viewed_category",
                        json!({"category": format!("cat-{item}")}),
                    ),
                    3 => (
                        "add_to_cart",
                        json!({"productId": format!("prod-{item}"), "price": price}),
                    ),
                    4 => ("search", json!({"query": "q"})),
                    _ => {
                        let mut embedding = vec![json!(item), json!(price % 7), json!(1)];
                        if price % 10 == 0 {
                            embedding.pop();
                        }
                        (
                            "watch",
                            json!({"videoId": format!("v-{item}"), "minutes": price % 120,
                                   "embedding": embedding}),
                        )
                    }
                };
                let payload: Map<String, Value> = payload.as_object().cloned().unwrap_or_default();
                Event {
                    id: format!("e{i:04}"),
                    event_type: event_type.to_owned(),
                    time: NOW - ago,
                    client_id: format!("cid-{client}"),
                    session_id: None,
                    user_id: None,
                    payload,
                }
            })
            .collect()
    })
}

pub fn batch(id: &str, events: Vec<Event>) -> ValidBatch {
    ValidBatch {
        batch_id: id.to_owned(),
        received_at: NOW,
        skew: 0,
        write_key: None,
        identity: None,
        events,
        rejected: Vec::new(),
    }
}

pub type Docs = BTreeMap<(String, String), FeatureDoc>;

/// `events` split into batches `b0`, `b1`… by the group each is given
/// (`groups`, cycled); empty groups make no batch.
pub fn split(events: &[Event], groups: &[usize]) -> Vec<ValidBatch> {
    let n = groups.iter().copied().max().unwrap_or(0) + 1;
    let mut parts = vec![Vec::new(); n];
    for (event, g) in events.iter().zip(groups.iter().cycle()) {
        parts[*g].push(event.clone());
    }
    parts
        .into_iter()
        .enumerate()
        .filter(|(_, p)| !p.is_empty())
        .map(|(i, p)| batch(&format!("b{i}"), p))
        .collect()
}

/// Delivers batches in the given order, the way every store applies them.
pub fn deliver<'a>(spec: &FeatureSpec, batches: impl IntoIterator<Item = &'a ValidBatch>) -> Docs {
    let mut docs = Docs::new();
    for b in batches {
        for delta in aggregate(spec, b, None) {
            let doc = docs
                .entry((delta.entity.clone(), delta.id.clone()))
                .or_default();
            apply_delta(spec, doc, &delta);
        }
    }
    docs
}

/// The features alone: which batches carried them is bookkeeping.
pub fn features(docs: &Docs) -> BTreeMap<(String, String), BTreeMap<String, Value>> {
    docs.iter()
        .map(|(k, doc)| {
            let f = doc
                .features
                .iter()
                .map(|(name, s)| (name.clone(), serde_json::to_value(s).expect("json")))
                .collect();
            (k.clone(), f)
        })
        .collect()
}

/// One client's page view, category view and product click, all at `NOW`.
pub fn tracker_like_events() -> Vec<Event> {
    let event = |id: &str, event_type: &str, payload: Value| Event {
        id: id.to_owned(),
        event_type: event_type.to_owned(),
        time: NOW,
        client_id: "cid-0".to_owned(),
        session_id: None,
        user_id: None,
        payload: payload.as_object().cloned().unwrap_or_default(),
    };
    vec![
        event("e1", "page_view", json!({"path": "/"})),
        event("e2", "viewed_category", json!({"category": "cameras"})),
        event("e3", "product_click", json!({"productId": "prod-1"})),
    ]
}
