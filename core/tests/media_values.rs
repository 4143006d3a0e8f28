//! Seed 2's registry (`examples/media/features.toml`) on a small watch log,
//! each value checked against the seed's SQL ("Step 2") worked out by hand
//! in closed form: the same events, delivered whole, one by one and out of
//! order, read the same, and equal what the SQL would return at `NOW`.
//!
//! `NOW` is a midnight (UTC), so the day buckets of the 7-, 14- and 30-day
//! windows start exactly `span` before it, as the SQL's `watched_at > NOW() -
//! INTERVAL` does (no event sits exactly on an edge).

mod common;

use std::collections::BTreeMap;

use common::batch;

use freshet_core::aggregate::{Skipped, aggregate_checked};
use freshet_core::read::read_features;
use freshet_core::spec::FeatureSpec;
use freshet_core::state::{FeatureDoc, apply_delta};
use freshet_core::time::{DAY, HOUR, MINUTE, Millis};
use freshet_core::validate::{Event, ValidBatch};
use serde_json::{Value, json};

const NOW: Millis = 1_795_305_600_000; // 2026-11-22T00:00:00Z

fn spec() -> FeatureSpec {
    FeatureSpec::parse(include_str!("../../examples/media/features.toml")).expect("media spec")
}

/// A genre's 32-number embedding: distinct per genre, not whole numbers.
fn embedding(genre: usize) -> Vec<f64> {
    (0..32)
        .map(|k| ((genre * 32 + k) as f64 * 0.37).sin())
        .collect()
}

struct Watch {
    user: &'static str,
    item: &'static str,
    genre: usize,
    ago: Millis,
    minutes: f64,
}

const GENRES: [&str; 3] = ["drama", "comedy", "action"];

fn watches() -> Vec<Watch> {
    let w = |user, item, genre, ago, minutes| Watch {
        user,
        item,
        genre,
        ago,
        minutes,
    };
    vec![
        // u1: hours (UTC) 20, 20, 21, 9 and, outside 7 days, 20 again.
        w("u1", "v1", 0, 4 * HOUR, 42.0), // 20:00 the day before NOW
        w("u1", "v2", 1, DAY + 4 * HOUR - 30 * MINUTE, 12.5), // 20:30
        w("u1", "v1", 0, 2 * DAY + 3 * HOUR, 30.0), // 21:00
        w("u1", "v3", 2, 3 * DAY + 15 * HOUR, 7.25), // 09:00
        w("u1", "v1", 0, 10 * DAY + 4 * HOUR, 90.0), // 20:00, 10 days ago
        // Older than 30 days: no window of u1 sees it; item v1's 14 days neither.
        w("u1", "v1", 1, 31 * DAY + 2 * HOUR, 300.0),
        // u2: hours 3, 5 and 22 once each: a tie, the earliest hour wins.
        w("u2", "v2", 1, 5 * DAY + 21 * HOUR, 60.0), // 03:00
        w("u2", "v1", 0, 13 * DAY + 19 * HOUR, 15.0), // 05:00, inside 14 days
        w("u2", "v3", 2, 15 * DAY + 2 * HOUR, 20.0), // 22:00, outside 14 days
    ]
}

fn events() -> Vec<Event> {
    watches()
        .iter()
        .enumerate()
        .map(|(i, w)| Event {
            id: format!("e{i:03}"),
            event_type: "watch".into(),
            time: NOW - w.ago,
            client_id: w.user.into(),
            session_id: None,
            user_id: None,
            payload: json!({
                "itemId": w.item,
                "genre": GENRES[w.genre],
                "watchDurationMin": w.minutes,
                "genreEmbedding": embedding(w.genre),
            })
            .as_object()
            .cloned()
            .unwrap_or_default(),
        })
        .collect()
}

type Docs = BTreeMap<(String, String), FeatureDoc>;

fn deliver(spec: &FeatureSpec, batches: &[ValidBatch]) -> (Docs, Vec<Skipped>) {
    let mut docs = Docs::new();
    let mut skipped = Vec::new();
    for b in batches {
        let out = aggregate_checked(spec, b, None);
        skipped.extend(out.skipped);
        for delta in out.deltas {
            let doc = docs
                .entry((delta.entity.clone(), delta.id.clone()))
                .or_default();
            apply_delta(spec, doc, &delta);
        }
    }
    (docs, skipped)
}

fn read(spec: &FeatureSpec, docs: &Docs, entity: &str, id: &str) -> BTreeMap<String, Value> {
    let doc = docs
        .get(&(entity.to_owned(), id.to_owned()))
        .cloned()
        .unwrap_or_default();
    read_features(spec, entity, &doc, None, NOW)
        .expect("read")
        .into_iter()
        .map(|(name, v)| (name, v.value))
        .collect()
}

fn close(got: &Value, want: f64) -> bool {
    got.as_f64()
        .is_some_and(|g| (g - want).abs() <= 1e-9 * want.abs().max(1e-300))
}

/// The seed's SQL, in closed form over [`watches`].
mod sql {
    use super::*;

    fn live(w: &Watch, span: Millis) -> bool {
        w.ago < span
    }

    /// The 30-day features keep 6-day buckets (`precision = "6d"`): their
    /// window starts where the bucket holding `NOW() - 30 days` starts, up
    /// to 6 days earlier, so the SQL's condition is
    /// `watched_at >= <that bucket's start>`.
    fn live_30d(w: &Watch) -> bool {
        let granule = 6 * DAY;
        NOW - w.ago >= (NOW - 30 * DAY).div_euclid(granule) * granule
    }

    /// `SELECT COUNT(*) … watched_at > NOW() - INTERVAL '7 days'`
    pub fn watch_count_7d(user: &str) -> usize {
        watches()
            .iter()
            .filter(|w| w.user == user && live(w, 7 * DAY))
            .count()
    }

    /// `computeUserGenrePreferences` without its `LIMIT 100` (fewer rows here).
    pub fn genre_preferences(user: &str) -> Vec<f64> {
        let all = watches();
        let rows: Vec<&Watch> = all
            .iter()
            .filter(|w| w.user == user && live_30d(w))
            .collect();
        let total: f64 = rows.iter().map(|w| w.minutes).sum();
        let mut out = vec![0.0; 32];
        for w in rows {
            for (o, x) in out.iter_mut().zip(embedding(w.genre)) {
                *o += x * (w.minutes / total);
            }
        }
        out
    }

    /// `AVG(watch_duration_min) … > NOW() - INTERVAL '30 days'`
    pub fn avg_duration(user: &str) -> f64 {
        let m: Vec<f64> = watches()
            .iter()
            .filter(|w| w.user == user && live_30d(w))
            .map(|w| w.minutes)
            .collect();
        m.iter().sum::<f64>() / m.len() as f64
    }

    /// `computeItemPopularity`: `min(1, SUM(EXP(-0.1 * age_days)) / 1000)`.
    pub fn popularity_raw(item: &str) -> f64 {
        watches()
            .iter()
            .filter(|w| w.item == item && live(w, 14 * DAY))
            .map(|w| (-0.1 * w.ago as f64 / DAY as f64).exp())
            .sum()
    }
}

/// Equal, numbers to within `rel` of their size (integers exactly).
fn same_up_to_rounding(a: &Value, b: &Value, rel: f64) -> bool {
    use serde_json::Value as V;
    match (a, b) {
        (V::Number(x), V::Number(y)) => match (x.as_i64(), y.as_i64(), x.as_f64(), y.as_f64()) {
            (Some(i), Some(j), _, _) => i == j,
            (_, _, Some(x), Some(y)) => (x - y).abs() <= rel * x.abs().max(y.abs()).max(1.0),
            _ => false,
        },
        (V::Array(x), V::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_up_to_rounding(x, y, rel))
        }
        (V::Object(x), V::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_up_to_rounding(v, w, rel)))
        }
        _ => a == b,
    }
}

#[test]
fn media_features_equal_the_seeds_sql() {
    let spec = spec();
    let all = events();
    let one_by_one: Vec<ValidBatch> = all
        .iter()
        .rev()
        .enumerate()
        .map(|(i, e)| batch(&format!("b{i}"), vec![e.clone()]))
        .collect();
    let (whole, skipped) = deliver(&spec, &[batch("all", all.clone())]);
    assert!(skipped.is_empty(), "{skipped:?}");
    let (split, _) = deliver(&spec, &one_by_one);
    for (key, doc) in &whole {
        let (a, b) = (
            serde_json::to_value(&doc.features).expect("json"),
            serde_json::to_value(&split[key].features).expect("json"),
        );
        // Sums of fractions (a 6-day cell of several watches) depend on the
        // order they were added in, in their last bits (single precision
        // for user_genre_preferences: about 1e-7 of the sum): a store and a
        // replay that apply the same batches in the same order agree exactly.
        assert!(
            same_up_to_rounding(&a, &b, 1e-6),
            "{key:?}: the state does not depend on batching or order\n{a}\n{b}"
        );
    }

    for user in ["u1", "u2"] {
        let f = read(&spec, &whole, "user", user);
        assert_eq!(
            f["user_watch_count_7d"],
            json!(sql::watch_count_7d(user)),
            "{user}"
        );
        assert!(
            close(&f["user_avg_watch_duration_min"], sql::avg_duration(user)),
            "{user}: {} vs {}",
            f["user_avg_watch_duration_min"],
            sql::avg_duration(user)
        );
        let got = f["user_genre_preferences"].as_array().expect("a vector");
        let want = sql::genre_preferences(user);
        assert_eq!(got.len(), 32);
        for (g, w) in got.iter().zip(&want) {
            let g = g.as_f64().expect("number");
            // Single precision (`float = "f32"`): each product and sum
            // rounded to 24 bits, so within ~1e-6 of the SQL's doubles.
            assert!(
                (g - w).abs() <= 1e-6 * (1.0 + w.abs()),
                "{user}: {g} vs {w}"
            );
        }
    }
    let u1 = read(&spec, &whole, "user", "u1");
    assert_eq!(u1["user_watch_count_7d"], json!(4));
    assert_eq!(u1["user_preferred_hour"], json!(20));
    let u2 = read(&spec, &whole, "user", "u2");
    assert_eq!(
        u2["user_preferred_hour"],
        json!(3),
        "a tie goes to the earlier hour"
    );

    for item in ["v1", "v2", "v3"] {
        let f = read(&spec, &whole, "item", item);
        let raw = sql::popularity_raw(item);
        assert!(raw > 0.0 && raw < 1000.0);
        assert!(
            close(&f["item_popularity_score"], raw / 1000.0),
            "{item}: {} vs {}",
            f["item_popularity_score"],
            raw / 1000.0
        );
    }
    let v1 = read(&spec, &whole, "item", "v1");
    assert_eq!(v1["item_genre"], json!("drama"));

    // Nothing watched: the seed's defaults.
    let nobody = read(&spec, &whole, "user", "u9");
    assert_eq!(nobody["user_preferred_hour"], json!(20));
    assert_eq!(nobody["user_avg_watch_duration_min"], json!(0));
    assert_eq!(nobody["user_genre_preferences"], json!(vec![0; 32]));
    assert_eq!(
        read(&spec, &whole, "item", "v9")["item_genre"],
        json!("unknown")
    );
}

#[test]
fn popularity_caps_at_one_and_decays_as_the_read_time_moves() {
    let spec = spec();
    let click = |i: usize, ago: Millis| Event {
        id: format!("p{i:05}"),
        event_type: "watch".into(),
        time: NOW - ago,
        client_id: "u".into(),
        session_id: None,
        user_id: None,
        payload: json!({"itemId": "hit"})
            .as_object()
            .cloned()
            .unwrap_or_default(),
    };
    let (docs, _) = deliver(
        &spec,
        &[batch("many", (0..1500).map(|i| click(i, 1)).collect())],
    );
    let doc = &docs[&("item".to_owned(), "hit".to_owned())];
    let at = |now| {
        read_features(&spec, "item", doc, None, now).expect("read")["item_popularity_score"]
            .value
            .clone()
    };
    assert_eq!(at(NOW), json!(1), "1500 fresh views cap at 1");
    // Four days on: 1500 * exp(-0.4) / 1000 = 1.0055: still capped; ten
    // days on: 1500 * exp(-1.0) / 1000 = 0.5518.
    assert_eq!(at(NOW + 4 * DAY), json!(1));
    let ten = 1.5 * (-0.1 * (10.0 * DAY as f64 + 1.0) / DAY as f64).exp();
    assert!(
        close(&at(NOW + 10 * DAY), ten),
        "{} vs {ten}",
        at(NOW + 10 * DAY)
    );
    assert_eq!(at(NOW + 15 * DAY), json!(0), "out of the 14-day window");
}

#[test]
fn a_vector_of_the_wrong_length_skips_that_feature_only() {
    let spec = spec();
    let mut bad = events().remove(0);
    bad.payload
        .insert("genreEmbedding".into(), json!([1.0, 2.0, 3.0]));
    let mut text = events().remove(1);
    text.payload
        .insert("watchDurationMin".into(), json!("long"));
    let out = aggregate_checked(&spec, &batch("b", vec![bad, text]), None);
    assert_eq!(
        out.skipped,
        [
            Skipped {
                event: 0,
                feature: "user_genre_preferences@2".into(),
                reason: "payload.genreEmbedding has 3 numbers, the feature wants 32".into(),
            },
            Skipped {
                event: 1,
                feature: "user_genre_preferences@2".into(),
                reason: "payload.watchDurationMin is not a number of 0 or more".into(),
            },
            Skipped {
                event: 1,
                feature: "user_avg_watch_duration_min@2".into(),
                reason: "payload.watchDurationMin is not a number".into(),
            },
        ]
    );
    // Both still count where their values are fine.
    let user = out
        .deltas
        .iter()
        .find(|d| d.entity == "user")
        .expect("user");
    assert!(user.updates.contains_key("user_watch_count_7d@2"));
    assert!(user.updates.contains_key("user_avg_watch_duration_min@2"));
    assert!(!user.updates.contains_key("user_genre_preferences@2"));
}
