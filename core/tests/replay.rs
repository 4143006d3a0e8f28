//! Replay from the event log gives the online state, and point-in-time reads
//! see what was served (or, asked, what had happened) at each row's time.

mod common;

use std::collections::BTreeMap;

use common::{Docs, NOW, batch, deliver, events, features, spec};
use freshet_core::log::{LoggedBatch, parse_ndjson};
use freshet_core::read::FeatureValue;
use freshet_core::replay::{AsOf, PointInTime, Replay, Row};
use freshet_core::time::{DAY, HOUR, Millis};
use freshet_core::validate::{Event, ValidBatch};
use proptest::prelude::*;
use serde_json::{Value, json};

fn logged(b: &ValidBatch) -> LoggedBatch {
    LoggedBatch::of(b, "dev", None, "0123456789abcdef")
}

fn replayed(log: &[LoggedBatch]) -> Docs {
    let spec = spec();
    let mut replay = Replay::new(&spec);
    for b in log {
        // Through the bytes the edge writes, so the format is part of the test.
        for back in parse_ndjson(&b.to_object()).expect("log object reads") {
            replay.apply(&back);
        }
    }
    replay.docs().clone()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Any log, split into batches in any way, delivered online in any order
    /// with retries: the replay of the log (each batch once, as the edge
    /// logs it) equals the online documents.
    #[test]
    fn replay_of_the_log_equals_the_online_state(
        events in events(60),
        groups in prop::collection::vec(0..6usize, 1..60),
        order in prop::collection::vec(any::<prop::sample::Index>(), 1..30),
    ) {
        let spec = spec();
        let n = groups.iter().copied().max().unwrap_or(0) + 1;
        let mut parts = vec![Vec::new(); n];
        for (event, g) in events.iter().zip(groups.iter().cycle()) {
            parts[*g].push(event.clone());
        }
        let batches: Vec<ValidBatch> = parts.into_iter().enumerate()
            .filter(|(_, p)| !p.is_empty())
            .map(|(i, p)| batch(&format!("b{i}"), p))
            .collect();
        let mut schedule: Vec<&ValidBatch> = order.iter().map(|i| i.get(&batches)).collect();
        schedule.extend(batches.iter());
        schedule.reverse();
        let online = deliver(&spec, schedule.iter().copied());
        // The log: each batch once, in the order it was first accepted.
        let mut seen = std::collections::BTreeSet::new();
        let log: Vec<LoggedBatch> = schedule.iter()
            .filter(|b| seen.insert(b.batch_id.clone()))
            .map(|b| logged(b))
            .collect();
        prop_assert_eq!(features(&replayed(&log)), features(&online));
    }
}

// ---- point in time, as fixtures ----

const T: Millis = NOW;

fn click(id: &str, client: &str, time: Millis) -> Event {
    Event {
        id: id.to_owned(),
        event_type: "product_click".to_owned(),
        time,
        client_id: client.to_owned(),
        session_id: None,
        user_id: None,
        payload: json!({"productId": "prod-1"})
            .as_object()
            .cloned()
            .unwrap_or_default(),
    }
}

fn received(id: &str, at: Millis, events: Vec<Event>) -> LoggedBatch {
    let mut b = batch(id, events);
    b.received_at = at;
    logged(&b)
}

fn row(at: Millis, user: &str) -> Row {
    Row {
        at,
        ids: BTreeMap::from([
            ("user".to_owned(), user.to_owned()),
            ("product".to_owned(), "prod-1".to_owned()),
        ]),
    }
}

/// `entity:name` pairs as `PointInTime` takes them.
fn entity_features(names: &[&str]) -> Vec<(String, String)> {
    names
        .iter()
        .map(|n| {
            let (entity, name) = n.split_once(':').expect("entity:name");
            (entity.to_owned(), name.to_owned())
        })
        .collect()
}

fn point_in_time(
    log: &[LoggedBatch],
    rows: Vec<Row>,
    names: &[&str],
    as_of: AsOf,
) -> Vec<Vec<FeatureValue>> {
    let spec = spec();
    let features = entity_features(names);
    let mut pit = PointInTime::new(&spec, &features, rows, as_of).expect("features resolve");
    for b in log {
        pit.feed(b.clone()).expect("receive order");
    }
    pit.finish()
}

fn values(rows: &[Vec<FeatureValue>]) -> Vec<Vec<Value>> {
    rows.iter()
        .map(|r| r.iter().map(|v| v.value.clone()).collect())
        .collect()
}

#[test]
fn an_event_received_exactly_at_the_row_time_counts_and_one_after_does_not() {
    let log = [
        received("b1", T - HOUR, vec![click("e1", "cid-a", T - HOUR)]),
        received("b2", T, vec![click("e2", "cid-a", T)]),
        received("b3", T + 1, vec![click("e3", "cid-a", T + 1)]),
    ];
    let got = point_in_time(
        &log,
        vec![row(T, "cid-a"), row(T - 1, "cid-a"), row(T + 1, "cid-a")],
        &["user:clicks_product_card"],
        AsOf::Served,
    );
    assert_eq!(values(&got), [[json!(2)], [json!(1)], [json!(3)]]);
}

#[test]
fn a_late_event_is_left_out_as_served_and_counted_by_event_time() {
    // Happened before T, reached the edge after T (a queue replayed later).
    let log = [
        received("b1", T - HOUR, vec![click("e1", "cid-a", T - HOUR)]),
        received("late", T + HOUR, vec![click("e2", "cid-a", T - 2 * HOUR)]),
    ];
    let rows = || vec![row(T, "cid-a")];
    let served = point_in_time(&log, rows(), &["user:clicks_product_card"], AsOf::Served);
    let by_event = point_in_time(&log, rows(), &["user:clicks_product_card"], AsOf::EventTime);
    assert_eq!(values(&served), [[json!(1)]]);
    assert_eq!(values(&by_event), [[json!(2)]]);
}

#[test]
fn a_window_is_read_as_of_the_row_and_a_ttl_expires_by_it() {
    let log = [received(
        "b1",
        T - 6 * DAY,
        vec![click("e1", "cid-a", T - 6 * DAY)],
    )];
    let names = [
        "user:clicks_product_card_7d",
        "product:popularity_7d",
        "user:last_interacted_product",
    ];
    let got = point_in_time(
        &log,
        vec![row(T, "cid-a"), row(T + 3 * DAY, "cid-a")],
        &names,
        AsOf::Served,
    );
    assert_eq!(
        values(&got),
        [
            vec![json!(1), json!(1), json!("prod-1")],
            vec![json!(0), json!(0), json!("prod-1")],
        ]
    );
    // last_interacted_product has a ttl of 1 day: stale at both rows.
    assert!(got[0][2].stale && got[1][2].stale);
    assert!(!got[0][0].stale, "30-day ttl");
}

#[test]
fn an_entity_with_no_events_reads_the_defaults() {
    let log = [received(
        "b1",
        T - HOUR,
        vec![click("e1", "cid-a", T - HOUR)],
    )];
    let got = point_in_time(
        &log,
        vec![row(T, "cid-nobody")],
        &[
            "user:clicks_product_card",
            "user:viewed_categories",
            "user:last_interacted_product",
        ],
        AsOf::Served,
    );
    assert_eq!(values(&got), [[json!(0), json!([]), Value::Null]]);
    assert!(got[0].iter().all(|v| v.updated_at.is_none() && !v.stale));
}

#[test]
fn unknown_features_and_out_of_order_batches_are_errors() {
    let spec = spec();
    let e = PointInTime::new(
        &spec,
        &[("user".into(), "nope".into())],
        vec![row(T, "a")],
        AsOf::Served,
    )
    .expect_err("unknown");
    assert_eq!(e.to_string(), "entity `user` has no feature `nope`");
    let mut pit = PointInTime::new(
        &spec,
        &[("user".into(), "pageviews".into())],
        vec![row(T, "a")],
        AsOf::Served,
    )
    .expect("known");
    pit.feed(received("b2", T, vec![])).expect("first");
    let e = pit.feed(received("b1", T - 1, vec![])).expect_err("older");
    assert!(e.to_string().contains("receive order"), "{e}");
}

// ---- event time with a lateness bound: rows answered as the log goes by ----

fn event_time(
    log: &[LoggedBatch],
    rows: Vec<Row>,
    names: &[&str],
    bound: Option<Millis>,
) -> Vec<Vec<FeatureValue>> {
    let spec = spec();
    let features = entity_features(names);
    let mut pit =
        PointInTime::new(&spec, &features, rows, AsOf::EventTime).expect("features resolve");
    if let Some(bound) = bound {
        pit = pit.lateness(bound);
    }
    for b in log {
        pit.feed(b.clone()).expect("within the bound");
    }
    pit.finish()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// With every event within the bound of its receipt, answering rows as
    /// the log goes by (holding only the last bound's events) gives the rows
    /// that holding every event until the end gives.
    #[test]
    fn a_lateness_bound_changes_no_row(
        batches in prop::collection::vec(
            (0..3 * HOUR, prop::collection::vec((0..3usize, -HOUR..6 * HOUR, any::<bool>()), 1..5)),
            1..25,
        ),
        rows in prop::collection::vec((0..3usize, -6 * HOUR..40 * HOUR), 1..30),
    ) {
        let bound = 6 * HOUR;
        let mut at = T;
        let mut log = Vec::new();
        for (i, (gap, events)) in batches.iter().enumerate() {
            at += gap;
            let events = events.iter().enumerate().map(|(j, (client, late, clicked))| {
                let mut e = click(&format!("e{i}-{j}"), &format!("cid-{client}"), at - late);
                if !clicked {
                    e.event_type = "page_view".to_owned();
                }
                e
            }).collect();
            log.push(received(&format!("b{i}"), at, events));
        }
        let rows = || rows.iter().map(|(client, t)| row(T + t, &format!("cid-{client}"))).collect::<Vec<_>>();
        let names = ["user:clicks_product_card", "user:clicks_product_card_7d", "user:pageviews",
                     "product:popularity_7d", "user:last_interacted_product", "user:recent_products"];
        prop_assert_eq!(event_time(&log, rows(), &names, Some(bound)), event_time(&log, rows(), &names, None));
    }
}

#[test]
fn an_event_later_than_the_bound_is_an_error_not_a_wrong_row() {
    let spec = spec();
    let features = [("user".to_owned(), "clicks_product_card".to_owned())];
    let mut pit = PointInTime::new(&spec, &features, vec![row(T, "cid-a")], AsOf::EventTime)
        .expect("known")
        .lateness(HOUR);
    // Received 3 h after T: the row at T is answered (nothing later than 1 h can precede it).
    pit.feed(received(
        "b1",
        T + 3 * HOUR,
        vec![click("e1", "cid-a", T - HOUR)],
    ))
    .expect("in time");
    let e = pit
        .feed(received(
            "b2",
            T + 3 * HOUR,
            vec![click("e2", "cid-a", T - 1)],
        ))
        .expect_err("too late");
    assert!(
        e.to_string()
            .starts_with("event `e2` of batch `b2` arrived later"),
        "{e}"
    );
    let e = pit.feed(received("b0", T, vec![])).expect_err("older");
    assert!(e.to_string().contains("receive order"), "{e}");
}
