//! From a validated batch to one [`EntityDelta`] per (entity, id): every
//! event folded into every feature that listens to it, with the same merge
//! the stores use, so a delta is already the smallest write it can be.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::spec::{Aggregation, FeatureDef, FeatureSpec};
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
    let mut deltas: BTreeMap<(String, String), BTreeMap<String, FeatureState>> = BTreeMap::new();
    for event in &batch.events {
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
            let Some(contribution) = contribution(def, event, user) else {
                continue;
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
    out
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

/// One event's state for one feature, or `None` when the event does not
/// carry what the feature reads (a sum over a missing or non-numeric field).
pub fn contribution(def: &FeatureDef, event: &Event, user: Option<&str>) -> Option<FeatureState> {
    let field = || def.field.as_ref().and_then(|path| path.get(event, user));
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
    let value = match def.agg {
        Aggregation::Count => Agg::Count(cell(def, event, 1)),
        Aggregation::Sum => Agg::Sum(cell(def, event, field()?.as_f64()?)),
        Aggregation::Min => Agg::Min(cell(def, event, field()?.as_f64()?)),
        Aggregation::Max => Agg::Max(cell(def, event, field()?.as_f64()?)),
        Aggregation::Last => Agg::Last(stamped(field()?)),
        Aggregation::First => Agg::First(stamped(field()?)),
        Aggregation::Distinct => {
            Agg::Distinct(BTreeMap::from([(distinct_key(&field()?)?, event.time)]))
        }
        Aggregation::LatestN => Agg::LatestN(vec![stamped(field()?)]),
    };
    Some(FeatureState {
        updated_at: event.time,
        value,
    })
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
