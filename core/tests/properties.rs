//! Aggregation is a function of the events only: any split of a batch, any
//! delivery order and any retry give the same feature documents.

mod common;

use std::collections::BTreeMap;

use common::{Docs, batch, deliver, events, features, spec, split};
use freshet_core::aggregate::aggregate;
use freshet_core::state::{FeatureDoc, apply_delta};
use freshet_core::validate::ValidBatch;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_split_gives_the_same_features(
        events in events(60),
        groups in prop::collection::vec(0..6usize, 1..60),
    ) {
        let spec = spec();
        let whole = deliver(&spec, &[batch("all", events.clone())]);
        let parts = split(&events, &groups);
        prop_assert_eq!(features(&deliver(&spec, &parts)), features(&whole));
    }

    #[test]
    fn any_order_and_any_retry_give_the_same_documents(
        events in events(60),
        groups in prop::collection::vec(0..6usize, 1..60),
        order in prop::collection::vec(any::<prop::sample::Index>(), 1..30),
    ) {
        let spec = spec();
        let parts = split(&events, &groups);
        let in_order: Docs = deliver(&spec, &parts);
        // Deliver each batch at least once, in a shuffled order, with retries.
        let mut schedule: Vec<&ValidBatch> = order.iter().map(|i| i.get(&parts)).collect();
        schedule.extend(parts.iter());
        schedule.reverse();
        let shuffled = deliver(&spec, schedule);
        prop_assert_eq!(shuffled, in_order);
    }

    /// The Durable Object keeps its document as JSON text between writes:
    /// that changes no value, floats included.
    #[test]
    fn a_document_kept_as_json_text_between_writes_is_the_same(
        events in events(60),
        groups in prop::collection::vec(0..6usize, 1..60),
    ) {
        let spec = spec();
        let parts = split(&events, &groups);
        let mut texts: BTreeMap<(String, String), String> = BTreeMap::new();
        for b in &parts {
            for delta in aggregate(&spec, b, None) {
                let text = texts.entry((delta.entity.clone(), delta.id.clone())).or_default();
                let mut doc: FeatureDoc = if text.is_empty() {
                    FeatureDoc::default()
                } else {
                    serde_json::from_str(text).expect("stored document")
                };
                apply_delta(&spec, &mut doc, &delta);
                *text = serde_json::to_string(&doc).expect("document");
            }
        }
        let stored: Docs = texts
            .into_iter()
            .map(|(k, text)| (k, serde_json::from_str(&text).expect("document")))
            .collect();
        prop_assert_eq!(stored, deliver(&spec, &parts));
    }
}

/// The properties above are not vacuous: the generated events reach every
/// feature of the test spec, each new aggregation included.
#[test]
fn the_generated_events_reach_every_feature() {
    use proptest::strategy::ValueTree;
    let spec = spec();
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..8 {
        let sample = events(60).new_tree(&mut runner).expect("events").current();
        for doc in deliver(&spec, &[batch("b", sample)]).values() {
            seen.extend(doc.features.keys().cloned());
        }
    }
    let all: std::collections::BTreeSet<String> =
        spec.features().iter().map(|f| f.key().to_owned()).collect();
    assert_eq!(seen, all);
}
