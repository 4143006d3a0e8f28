//! Folding the deltas of many batches into one per entity: what the queue
//! pipeline's consumer writes for a whole delivery, so a store pays one
//! atomic write per entity where it would pay one per entity and batch.
//!
//! Merging is commutative and associative (`state`), so folding deltas
//! first and applying the fold once gives the document that applying them
//! one by one gives. What keeps each batch exactly-once is the store's
//! check of every folded batch's marker before it writes: if none is there
//! it applies the fold and records them all; if any is there it writes
//! nothing, and the batches are applied one by one instead, each under its
//! own marker (a redelivery that regrouped messages, a resent batch).

use std::collections::BTreeMap;

use crate::spec::FeatureSpec;
use crate::state::EntityDelta;
use crate::time::DAY;

/// Several batches' deltas of one entity, folded into one.
#[derive(Debug, Clone, PartialEq)]
pub struct FoldedDelta {
    /// The fold: the first batch's id, the latest receive time (all share
    /// the receive day, the day a store files markers under), every update.
    pub delta: EntityDelta,
    /// Where the folded deltas were in the input, in order.
    pub members: Vec<usize>,
    /// The ids of the folded batches whose deltas need a marker
    /// ([`EntityDelta::needs_marker`]), one marker each.
    pub marked: Vec<String>,
}

impl FoldedDelta {
    /// Whether the fold holds more than one delta.
    pub fn is_fold(&self) -> bool {
        self.members.len() > 1
    }
}

/// Folds `deltas` per entity and receive day, in the order each entity was
/// first seen. A batch id appears at most once in a fold: a second copy of
/// a batch (a resend in the same delivery) goes to a fold of its own, which
/// the first copy's marker then stops.
pub fn fold_deltas(spec: &FeatureSpec, deltas: &[EntityDelta]) -> Vec<FoldedDelta> {
    let mut folds: Vec<FoldedDelta> = Vec::new();
    // (entity, id, receive day) -> the folds of that key, in order.
    let mut by_key: BTreeMap<(&str, &str, i64), Vec<usize>> = BTreeMap::new();
    for (i, delta) in deltas.iter().enumerate() {
        let day = delta.received_at.div_euclid(DAY);
        let slots = by_key
            .entry((delta.entity.as_str(), delta.id.as_str(), day))
            .or_default();
        let open = slots.iter().copied().find(|&f| {
            !folds[f]
                .members
                .iter()
                .any(|&m| deltas[m].batch_id == delta.batch_id)
        });
        let marked = delta.needs_marker(spec);
        match open {
            Some(f) => {
                let fold = &mut folds[f];
                fold.members.push(i);
                if marked {
                    fold.marked.push(delta.batch_id.clone());
                }
                fold.delta.received_at = fold.delta.received_at.max(delta.received_at);
                for (key, update) in &delta.updates {
                    match (fold.delta.updates.get_mut(key), spec.feature(key)) {
                        (Some(state), Some(def)) => state.merge(update.clone(), def),
                        // A feature the spec does not know is not applied.
                        (Some(_), None) => {}
                        (None, _) => {
                            fold.delta.updates.insert(key.clone(), update.clone());
                        }
                    }
                }
            }
            None => {
                slots.push(folds.len());
                folds.push(FoldedDelta {
                    delta: delta.clone(),
                    members: vec![i],
                    marked: if marked {
                        vec![delta.batch_id.clone()]
                    } else {
                        Vec::new()
                    },
                });
            }
        }
    }
    folds
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{FeatureDoc, apply_delta};
    use crate::validate::{ValidBatch, receive};

    const SPEC: &str = r#"
        [entities.user]
        key = ["clientId"]
        [entities.product]
        key = ["payload.productId"]

        [[feature]]
        name = "clicks"
        entity = "user"
        on = ["product_click"]
        agg = "count"
        window = "1h"

        [[feature]]
        name = "last_product"
        entity = "user"
        on = ["product_click"]
        agg = "last"
        field = "payload.productId"

        [[feature]]
        name = "popularity"
        entity = "product"
        on = ["product_click"]
        agg = "count"
    "#;

    fn batch(id: &str, client: &str, product: &str, at: &str) -> ValidBatch {
        let body = format!(
            r#"{{"batchId":"{id}","sentAt":"{at}","events":[{{"id":"e-{id}","type":"product_click",
            "timestamp":"{at}","clientId":"{client}","payload":{{"productId":"{product}"}}}}]}}"#
        );
        let received = crate::time::parse_rfc3339(at).expect("time");
        receive(body.as_bytes(), received, &Default::default()).expect("batch")
    }

    fn deltas(spec: &FeatureSpec, batches: &[ValidBatch]) -> Vec<EntityDelta> {
        batches
            .iter()
            .flat_map(|b| crate::aggregate::aggregate(spec, b, None))
            .collect()
    }

    #[test]
    fn a_fold_applied_once_gives_the_document_its_deltas_give_one_by_one() {
        let spec = FeatureSpec::parse(SPEC).expect("spec");
        let batches = [
            batch("b1", "c1", "p1", "2026-11-22T10:00:00.000Z"),
            batch("b2", "c2", "p1", "2026-11-22T10:00:01.000Z"),
            batch("b3", "c1", "p2", "2026-11-22T10:00:02.000Z"),
        ];
        let all = deltas(&spec, &batches);
        let folds = fold_deltas(&spec, &all);
        // c1, p1, c2, p2: four entities for six deltas.
        assert_eq!(folds.len(), 4);
        let c1 = folds
            .iter()
            .find(|f| (f.delta.entity.as_str(), f.delta.id.as_str()) == ("user", "c1"))
            .expect("c1's fold");
        assert_eq!(c1.marked, ["b1", "b3"]);
        assert!(c1.is_fold());
        let mut one_by_one: BTreeMap<(String, String), FeatureDoc> = BTreeMap::new();
        for d in &all {
            apply_delta(
                &spec,
                one_by_one
                    .entry((d.entity.clone(), d.id.clone()))
                    .or_default(),
                d,
            );
        }
        for fold in &folds {
            let mut doc = FeatureDoc::default();
            crate::state::merge_delta(&spec, &mut doc, &fold.delta);
            let want = &one_by_one[&(fold.delta.entity.clone(), fold.delta.id.clone())];
            assert_eq!(
                doc.features, want.features,
                "{}:{}",
                fold.delta.entity, fold.delta.id
            );
        }
    }

    #[test]
    fn a_second_copy_of_a_batch_and_another_receive_day_get_folds_of_their_own() {
        let spec = FeatureSpec::parse(SPEC).expect("spec");
        let batches = [
            batch("b1", "c1", "p1", "2026-11-22T23:59:59.000Z"),
            batch("b1", "c1", "p1", "2026-11-22T23:59:59.500Z"),
            batch("b2", "c1", "p1", "2026-11-23T00:00:01.000Z"),
            batch("b3", "c1", "p1", "2026-11-22T23:59:58.000Z"),
        ];
        let all = deltas(&spec, &batches);
        let users: Vec<_> = fold_deltas(&spec, &all)
            .into_iter()
            .filter(|f| f.delta.entity == "user")
            .map(|f| f.marked)
            .collect();
        assert_eq!(users, [vec!["b1", "b3"], vec!["b1"], vec!["b2"]]);
    }
}
