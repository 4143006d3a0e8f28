//! Aggregation is a function of the events only: any split of a batch, any
//! delivery order and any retry give the same feature documents.

mod common;

use common::{Docs, batch, deliver, events, features, spec};
use freshet_core::validate::ValidBatch;
use proptest::prelude::*;

/// Splits events into sub-batches by the given group of each event.
fn split(events: &[freshet_core::validate::Event], groups: &[usize]) -> Vec<ValidBatch> {
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
}
