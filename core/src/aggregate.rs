//! From a validated batch to one [`EntityDelta`] per (entity, id): every
//! event folded into every feature that listens to it, with the same merge
//! the stores use, so a delta is already the smallest write it can be.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::spec::{Aggregation, FeatureDef, FeatureSpec, FieldPath};
use crate::state::{Agg, Cells, EntityDelta, FeatureState, Stamped};
use crate::validate::{Event, ValidBatch};

/// Folds a batch into per-entity deltas, in (entity, id) order.
///
/// `verified_user` is the userId an identity token vouched for: an event's
/// `userId` counts only when it equals it, so no visitor can write into
/// another user's features; other events key by their `clientId`.
pub fn aggregate(
    spec: &FeatureSpec,
    batch: &ValidBatch,
    verified_user: Option<&str>,
) -> Vec<EntityDelta> {
    aggregate_checked(spec, batch, verified_user).deltas
}

/// A feature an event carried a bad value for (a vector of the wrong
/// length, text where a number belongs): the event counts for its other
/// features, the batch is accepted, and the reason goes back to the sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The event's position in `ValidBatch::events`.
    pub event: usize,
    /// The feature's storage key, `name@version`.
    pub feature: String,
    pub reason: String,
}

/// What [`aggregate_checked`] makes of a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Aggregated {
    pub deltas: Vec<EntityDelta>,
    pub skipped: Vec<Skipped>,
}

/// [`aggregate`], also naming each feature an event was skipped for.
pub fn aggregate_checked(
    spec: &FeatureSpec,
    batch: &ValidBatch,
    verified_user: Option<&str>,
) -> Aggregated {
    let mut deltas: BTreeMap<(String, String), BTreeMap<String, FeatureState>> = BTreeMap::new();
    let mut skipped = Vec::new();
    for (index, event) in batch.events.iter().enumerate() {
        // The edge's own events (`$link`) carry states, not behaviour.
        if crate::link::is_reserved(event) {
            continue;
        }
        let user = event
            .user_id
            .as_deref()
            .filter(|u| Some(*u) == verified_user);
        for def in spec.features() {
            if !def.listens_to(&event.event_type) || !def.accepts(event, user) {
                continue;
            }
            let Some(entity) = spec.entity(&def.entity) else {
                continue;
            };
            let Some(id) = entity.id_of(event, user) else {
                continue;
            };
            let contribution = match contribution(def, event, user) {
                Ok(Some(contribution)) => contribution,
                Ok(None) => continue,
                Err(reason) => {
                    skipped.push(Skipped {
                        event: index,
                        feature: def.key().to_owned(),
                        reason,
                    });
                    continue;
                }
            };
            let updates = deltas.entry((def.entity.clone(), id)).or_default();
            match updates.get_mut(def.key()) {
                Some(state) => state.merge(contribution, def),
                None => {
                    updates.insert(def.key().to_owned(), contribution);
                }
            }
        }
    }
    let mut out = Vec::with_capacity(deltas.len());
    for ((entity, id), mut updates) in deltas {
        // A version being backfilled is applied under a marker of its own.
        let own: Vec<String> = updates
            .keys()
            .filter(|key| spec.feature(key).is_some_and(|def| def.backfill))
            .cloned()
            .collect();
        for key in own {
            if let Some(state) = updates.remove(&key) {
                out.push(EntityDelta {
                    entity: entity.clone(),
                    id: id.clone(),
                    batch_id: backfill_marker(&batch.batch_id, &key),
                    received_at: batch.received_at,
                    updates: BTreeMap::from([(key, state)]),
                });
            }
        }
        if !updates.is_empty() {
            out.push(EntityDelta {
                entity,
                id,
                batch_id: batch.batch_id.clone(),
                received_at: batch.received_at,
                updates,
            });
        }
    }
    Aggregated {
        deltas: out,
        skipped,
    }
}

/// The batch marker a feature version with `backfill = true` is applied
/// under: `<batchId>|<name@version>`, which no sent batch id can be (those
/// are letters, digits, `_` and `-`). Live writes and `freshet backfill` both
/// use it, so whichever comes second for a batch finds it applied: a batch
/// retried across the deploy that added the version, or logged by the old
/// spec and applied by the new one, counts once.
pub fn backfill_marker(batch_id: &str, feature_key: &str) -> String {
    format!("{batch_id}|{feature_key}")
}

/// One event's state for one feature; `Ok(None)` when the event does not
/// carry what the feature reads (a sum over a missing or non-numeric field),
/// `Err` with a reason when it carries a value a newer aggregation refuses
/// (`avg` of text, `vector_avg` of a vector of the wrong length).
pub fn contribution(
    def: &FeatureDef,
    event: &Event,
    user: Option<&str>,
) -> Result<Option<FeatureState>, String> {
    let value = match fold(def, event, user) {
        Folded::Value(value) => value,
        Folded::Missing => return Ok(None),
        Folded::Refused(reason) => return Err(reason),
    };
    Ok(Some(FeatureState {
        updated_at: event.time,
        value,
    }))
}

enum Folded {
    Value(Agg),
    Missing,
    Refused(String),
}

impl From<Option<Agg>> for Folded {
    fn from(value: Option<Agg>) -> Self {
        value.map_or(Self::Missing, Self::Value)
    }
}

fn fold(def: &FeatureDef, event: &Event, user: Option<&str>) -> Folded {
    let field = || {
        def.field
            .as_ref()
            .and_then(|path| path.get_in(event, user, def.tz.as_ref()))
    };
    fn cell<T>(def: &FeatureDef, event: &Event, v: T) -> Cells<T> {
        match def.window {
            Some(window) => Cells::Buckets(BTreeMap::from([(window.bucket_of(event.time), v)])),
            None => Cells::Total(v),
        }
    }
    let stamped = |v| Stamped {
        t: event.time,
        id: event.id.clone(),
        v,
    };
    let number = || field().and_then(|v| v.as_f64());
    match def.agg {
        Aggregation::Count => Folded::Value(Agg::Count(cell(def, event, 1))),
        Aggregation::Sum => number().map(|x| Agg::Sum(cell(def, event, x))).into(),
        Aggregation::Min => number().map(|x| Agg::Min(cell(def, event, x))).into(),
        Aggregation::Max => number().map(|x| Agg::Max(cell(def, event, x))).into(),
        Aggregation::Last => field().map(|v| Agg::Last(stamped(v))).into(),
        Aggregation::First => field().map(|v| Agg::First(stamped(v))).into(),
        Aggregation::Distinct => field()
            .and_then(|v| distinct_key(&v))
            .map(|k| Agg::Distinct(BTreeMap::from([(k, event.time)])))
            .into(),
        Aggregation::LatestN => field().map(|v| Agg::LatestN(vec![stamped(v)])).into(),
        Aggregation::Avg => match field() {
            None => Folded::Missing,
            Some(v) => match v.as_f64() {
                Some(x) if !def.round(x).is_finite() => Folded::Refused(format!(
                    "{} is too large for float = \"f32\"",
                    field_name(def)
                )),
                Some(x) => Folded::Value(Agg::Avg(cell(def, event, vec![1.0, def.round(x)]))),
                None => Folded::Refused(format!("{} is not a number", field_name(def))),
            },
        },
        Aggregation::Decay => match (def.decay, def.window) {
            (Some(decay), Some(window)) => {
                let start = window.bucket_of(event.time);
                let weight = decay.weight(event.time - start);
                Folded::Value(Agg::Decay(Cells::Buckets(BTreeMap::from([(
                    start, weight,
                )]))))
            }
            // The spec parser gives every decay both.
            _ => Folded::Missing,
        },
        Aggregation::Mode => match field() {
            None => Folded::Missing,
            Some(v) if v.is_array() || v.is_object() => Folded::Refused(format!(
                "{} is an array or object; mode counts strings, numbers and booleans",
                field_name(def)
            )),
            Some(v) => Folded::Value(Agg::Mode(BTreeMap::from([(v.to_string(), 1)]))),
        },
        Aggregation::VectorAvg => match field() {
            None => Folded::Missing,
            Some(v) => match weighted_vector(def, event, user, &v) {
                Ok(parts) => Folded::Value(Agg::VectorAvg(cell(def, event, parts))),
                Err(reason) => Folded::Refused(reason),
            },
        },
    }
}

fn field_name(def: &FeatureDef) -> String {
    name_of(def.field.as_ref())
}

fn name_of(path: Option<&FieldPath>) -> String {
    path.map(ToString::to_string).unwrap_or_default()
}

/// `[weight, weight * x0, weight * x1, …]` of a `vector_avg` event.
fn weighted_vector(
    def: &FeatureDef,
    event: &Event,
    user: Option<&str>,
    value: &Value,
) -> Result<Vec<f64>, String> {
    let name = field_name(def);
    let items = value
        .as_array()
        .ok_or_else(|| format!("{name} is not an array of numbers"))?;
    if items.len() != def.dim {
        return Err(format!(
            "{name} has {} numbers, the feature wants {}",
            items.len(),
            def.dim
        ));
    }
    let weight = match &def.weight {
        None => 1.0,
        Some(path) => match path.get(event, user).as_ref().map(Value::as_f64) {
            Some(Some(w)) if w >= 0.0 => def.round(w),
            Some(_) => return Err(format!("{path} is not a number of 0 or more")),
            None => return Err(format!("{path} is missing")),
        },
    };
    let mut parts = Vec::with_capacity(def.dim + 1);
    parts.push(weight);
    for item in items {
        let x = item
            .as_f64()
            .ok_or_else(|| format!("{name} holds something other than a number"))?;
        // Exact in doubles for two f32 numbers, so rounding once gives the
        // single-precision product.
        let weighted = def.round(weight * def.round(x));
        if !weighted.is_finite() {
            let weight = name_of(def.weight.as_ref());
            return Err(format!("{name} times {weight} is too large"));
        }
        parts.push(weighted);
    }
    Ok(parts)
}

/// The set member a distinct value is kept as: strings as they are, numbers
/// and booleans as their JSON text; objects and arrays are not counted.
fn distinct_key(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Map, json};

    use super::*;

    fn spec(extra: &str) -> FeatureSpec {
        FeatureSpec::parse(&format!(
            "[entities.user]\nkey = [\"userId\", \"clientId\"]\n\
             [entities.product]\nkey = [\"payload.productId\"]\n{extra}"
        ))
        .expect("spec")
    }

    fn event(id: &str, user: Option<&str>, payload: Value) -> Event {
        Event {
            id: id.into(),
            event_type: "product_click".into(),
            time: 1_000,
            client_id: "cid-1".into(),
            session_id: None,
            user_id: user.map(str::to_owned),
            payload: payload.as_object().cloned().unwrap_or_else(Map::new),
        }
    }

    fn batch(events: Vec<Event>) -> ValidBatch {
        ValidBatch {
            batch_id: "b".into(),
            received_at: 2_000,
            skew: 0,
            write_key: None,
            identity: None,
            events,
            rejected: Vec::new(),
        }
    }

    const CLICKS: &str = "[[feature]]\nname = \"clicks\"\nentity = \"user\"\non = [\"product_click\"]\nagg = \"count\"\n";

    fn ids(deltas: &[EntityDelta]) -> Vec<(String, String)> {
        deltas
            .iter()
            .map(|d| (d.entity.clone(), d.id.clone()))
            .collect()
    }

    #[test]
    fn user_id_counts_only_when_verified() {
        let spec = spec(CLICKS);
        let b = batch(vec![
            event("e1", Some("alice"), json!({})),
            event("e2", Some("bob"), json!({})),
        ]);
        let unverified = aggregate(&spec, &b, None);
        assert_eq!(ids(&unverified), [("user".into(), "cid-1".into())]);
        let verified = aggregate(&spec, &b, Some("alice"));
        assert_eq!(
            ids(&verified),
            [
                ("user".into(), "alice".into()),
                ("user".into(), "cid-1".into())
            ],
            "bob is not vouched for: his event stays with the client"
        );
    }

    #[test]
    fn a_version_being_backfilled_is_applied_under_its_own_marker() {
        let spec = spec(&format!(
            "{CLICKS}[[feature]]\nname = \"clicks\"\nversion = 2\nentity = \"user\"\n\
             on = [\"product_click\"]\nagg = \"count\"\nbackfill = true\n"
        ));
        let deltas = aggregate(&spec, &batch(vec![event("e1", None, json!({}))]), None);
        let marked: Vec<(&str, Vec<&str>)> = deltas
            .iter()
            .map(|d| {
                let keys = d.updates.keys().map(String::as_str).collect();
                (d.batch_id.as_str(), keys)
            })
            .collect();
        assert_eq!(
            marked,
            [("b|clicks@2", vec!["clicks@2"]), ("b", vec!["clicks@1"])]
        );
        // Only the version being backfilled: no empty delta under the batch's marker.
        let only = spec.retain(|f| f.backfill);
        let deltas = aggregate(&only, &batch(vec![event("e1", None, json!({}))]), None);
        assert_eq!(deltas.len(), 1);
        assert_eq!(deltas[0].batch_id, "b|clicks@2");
    }

    #[test]
    fn where_filters_and_entities_without_a_key_are_skipped() {
        let spec = spec(&format!(
            "{CLICKS}[[feature]]\nname = \"card_clicks\"\nentity = \"user\"\non = [\"product_click\"]\n\
             agg = \"count\"\nwhere = {{ \"payload.component\" = \"ProductCard\" }}\n\
             [[feature]]\nname = \"popularity\"\nentity = \"product\"\non = [\"product_click\"]\nagg = \"count\"\n"
        ));
        let b = batch(vec![
            event(
                "e1",
                None,
                json!({"component": "ProductCard", "productId": "p1"}),
            ),
            event("e2", None, json!({"component": "Banner"})),
        ]);
        let deltas = aggregate(&spec, &b, None);
        assert_eq!(
            ids(&deltas),
            [
                ("product".into(), "p1".into()),
                ("user".into(), "cid-1".into())
            ]
        );
        let user = &deltas[1].updates;
        assert_eq!(user["clicks@1"].value, Agg::Count(Cells::Total(2)));
        assert_eq!(user["card_clicks@1"].value, Agg::Count(Cells::Total(1)));
    }

    #[test]
    fn new_aggregations_name_the_values_they_refuse() {
        let spec = spec(
            "[[feature]]\nname = \"taste\"\nentity = \"user\"\non = [\"product_click\"]\n\
             agg = \"vector_avg\"\nfield = \"payload.v\"\ndim = 2\nweight = \"payload.w\"\n\
             [[feature]]\nname = \"fav\"\nentity = \"user\"\non = [\"product_click\"]\n\
             agg = \"mode\"\nfield = \"payload.v\"\n\
             [[feature]]\nname = \"mean\"\nentity = \"user\"\non = [\"product_click\"]\n\
             agg = \"avg\"\nfield = \"payload.w\"\n",
        );
        let b = batch(vec![
            event("e0", None, json!({"v": [1, 2], "w": 2})),
            event("e1", None, json!({"v": [1, 2, 3], "w": 1})),
            event("e2", None, json!({"v": [1, "x"], "w": 1})),
            event("e3", None, json!({"v": [1, 2], "w": -1})),
            event("e4", None, json!({"v": [1, 2]})),
            event("e5", None, json!({"v": [1e300, 2], "w": 1e300})),
            event("e6", None, json!({"v": "a", "w": "heavy"})),
            event("e7", None, json!({})),
        ]);
        let out = aggregate_checked(&spec, &b, None);
        let reasons: Vec<(usize, &str, &str)> = out
            .skipped
            .iter()
            .map(|s| (s.event, s.feature.as_str(), s.reason.as_str()))
            .collect();
        assert_eq!(
            reasons,
            [
                (
                    0,
                    "fav@1",
                    "payload.v is an array or object; mode counts strings, numbers and booleans"
                ),
                (1, "taste@1", "payload.v has 3 numbers, the feature wants 2"),
                (
                    1,
                    "fav@1",
                    "payload.v is an array or object; mode counts strings, numbers and booleans"
                ),
                (
                    2,
                    "taste@1",
                    "payload.v holds something other than a number"
                ),
                (
                    2,
                    "fav@1",
                    "payload.v is an array or object; mode counts strings, numbers and booleans"
                ),
                (3, "taste@1", "payload.w is not a number of 0 or more"),
                (
                    3,
                    "fav@1",
                    "payload.v is an array or object; mode counts strings, numbers and booleans"
                ),
                (4, "taste@1", "payload.w is missing"),
                (
                    4,
                    "fav@1",
                    "payload.v is an array or object; mode counts strings, numbers and booleans"
                ),
                (5, "taste@1", "payload.v times payload.w is too large"),
                (
                    5,
                    "fav@1",
                    "payload.v is an array or object; mode counts strings, numbers and booleans"
                ),
                (6, "taste@1", "payload.v is not an array of numbers"),
                (6, "mean@1", "payload.w is not a number"),
            ]
        );
        // Only e0 counts for taste; five events carry a number for mean.
        let user = &out.deltas[0].updates;
        assert_eq!(
            user["taste@1"].value,
            Agg::VectorAvg(Cells::Total(vec![2.0, 2.0, 4.0]))
        );
        assert_eq!(
            user["mean@1"].value,
            Agg::Avg(Cells::Total(vec![5.0, 2.0 + 1.0 + 1.0 - 1.0 + 1e300]))
        );
        assert_eq!(
            user["fav@1"].value,
            Agg::Mode(BTreeMap::from([("\"a\"".to_owned(), 1)]))
        );
    }

    #[test]
    fn a_composite_entity_gets_one_delta_per_pair() {
        let spec = spec(
            "[entities.user_product]\nof = [\"user\", \"product\"]\n\
             [[feature]]\nname = \"pair_clicks\"\nentity = \"user_product\"\n\
             on = [\"product_click\"]\nagg = \"count\"\n",
        );
        let b = batch(vec![
            event("e1", Some("alice"), json!({"productId": "p|1"})),
            event("e2", Some("alice"), json!({"productId": "p|1"})),
            event("e3", None, json!({"productId": "p2"})),
            event("e4", None, json!({})),
        ]);
        let deltas = aggregate(&spec, &b, Some("alice"));
        assert_eq!(
            ids(&deltas),
            [
                ("user_product".into(), "alice|p%7C1".into()),
                ("user_product".into(), "cid-1|p2".into())
            ]
        );
        assert_eq!(
            deltas[0].updates["pair_clicks@1"].value,
            Agg::Count(Cells::Total(2))
        );
    }

    #[test]
    fn numeric_aggregations_skip_events_without_a_number() {
        let spec = spec(
            "[[feature]]\nname = \"spent\"\nentity = \"user\"\non = [\"product_click\"]\nagg = \"sum\"\n\
             field = \"payload.price\"\n",
        );
        let b = batch(vec![
            event("e1", None, json!({"price": 2.5})),
            event("e2", None, json!({"price": "free"})),
            event("e3", None, json!({})),
        ]);
        let deltas = aggregate(&spec, &b, None);
        assert_eq!(
            deltas[0].updates["spent@1"].value,
            Agg::Sum(Cells::Total(2.5))
        );
    }
}
