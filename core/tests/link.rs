//! Sign-in (`core::link`): the moves of a client's state to its user, and
//! replay of the log they are written to giving the documents a store
//! holds.

use std::collections::BTreeMap;

use freshet_core::link::{Link, logged_deltas, moves, rekey, residual};
use freshet_core::log::{LoggedBatch, parse_ndjson};
use freshet_core::replay::Replay;
use freshet_core::spec::FeatureSpec;
use freshet_core::state::{FeatureDoc, FeatureState, apply_delta};
use freshet_core::time::Millis;
use freshet_core::validate::Event;
use serde_json::json;

const SPEC: &str = r#"
[entities.user]
key = ["userId", "clientId"]
[entities.device]
key = ["clientId"]
[entities.product]
key = ["payload.productId"]
[entities.user_product]
of = ["user", "product"]

[[feature]]
name = "clicks"
entity = "user"
on = ["product_click"]
agg = "count"

[[feature]]
name = "clicks_1h"
entity = "user"
on = ["product_click"]
agg = "count"
window = "1h"

[[feature]]
name = "spent"
entity = "user"
on = ["product_click"]
agg = "sum"
field = "payload.price"

[[feature]]
name = "recent"
entity = "user"
on = ["product_click"]
agg = "latest_n"
field = "payload.productId"
max = 3

[[feature]]
name = "visits"
entity = "user"
on = ["page_view"]
agg = "count"
link = false

[[feature]]
name = "everything"
entity = "user"
on = ["*"]
agg = "count"

[[feature]]
name = "device_clicks"
entity = "device"
on = ["product_click"]
agg = "count"

[[feature]]
name = "popularity"
entity = "product"
on = ["product_click"]
agg = "count"

[[feature]]
name = "pair_clicks"
entity = "user_product"
on = ["product_click"]
agg = "count"
"#;

const T0: Millis = 1_800_000_000_000;

fn spec() -> FeatureSpec {
    FeatureSpec::parse(SPEC).expect("spec")
}

fn event(
    id: &str,
    kind: &str,
    client: &str,
    user: Option<&str>,
    product: &str,
    t: Millis,
) -> Event {
    Event {
        id: id.into(),
        event_type: kind.into(),
        time: t,
        client_id: client.into(),
        session_id: Some("s-1".into()),
        user_id: user.map(str::to_owned),
        payload: json!({"productId": product, "price": 2.5})
            .as_object()
            .cloned()
            .unwrap_or_default(),
    }
}

fn batch(id: &str, at: Millis, user: Option<&str>, events: Vec<Event>) -> LoggedBatch {
    LoggedBatch {
        batch_id: id.into(),
        received_at: at,
        write_key: "k".into(),
        verified_user: user.map(str::to_owned),
        spec: None,
        events,
    }
}

/// A store: every batch's deltas applied with their markers, as the edge
/// does; a link's deltas likewise.
#[derive(Default)]
struct Store(BTreeMap<(String, String), FeatureDoc>);

impl Store {
    fn take(&mut self, spec: &FeatureSpec, b: &LoggedBatch) {
        for d in logged_deltas(spec, b) {
            apply_delta(
                spec,
                self.0.entry((d.entity.clone(), d.id.clone())).or_default(),
                &d,
            );
        }
    }

    /// The client's documents that move: its own and its pairs.
    fn client_docs(&self, client: &str) -> Vec<(String, String, FeatureDoc)> {
        self.0
            .iter()
            .filter(|((e, id), _)| {
                (e == "user" && id == client)
                    || (e == "user_product" && id.starts_with(&format!("{client}|")))
            })
            .map(|((e, id), d)| (e.clone(), id.clone(), d.clone()))
            .collect()
    }
}

fn json_of<T: serde::Serialize>(v: T) -> serde_json::Value {
    serde_json::to_value(v).expect("json")
}

type Given = BTreeMap<(String, String), BTreeMap<String, FeatureState>>;

fn given_of(docs: &[(String, String, FeatureDoc)]) -> Given {
    docs.iter()
        .map(|(e, id, d)| ((e.clone(), id.clone()), d.features.clone()))
        .collect()
}

#[test]
fn ids_move_to_the_user_only_where_the_client_is_the_user() {
    let spec = spec();
    assert_eq!(
        rekey(&spec, "user", "c-1", "c-1", "u-1").as_deref(),
        Some("u-1")
    );
    assert_eq!(
        rekey(&spec, "user_product", "c-1|p-1", "c-1", "u-1").as_deref(),
        Some("u-1|p-1")
    );
    assert_eq!(rekey(&spec, "user", "c-2", "c-1", "u-1"), None);
    assert_eq!(
        rekey(&spec, "device", "c-1", "c-1", "u-1"),
        None,
        "keyed by the device alone"
    );
    assert_eq!(rekey(&spec, "product", "c-1", "c-1", "u-1"), None);
    assert_eq!(
        rekey(&spec, "user_product", "c-2|c-1", "c-1", "u-1"),
        None,
        "the product part is not the client"
    );
}

#[test]
fn a_residual_is_what_was_gained_since() {
    let spec = spec();
    let clicks = spec.feature("clicks@1").expect("clicks");
    let mut store = Store::default();
    store.take(
        &spec,
        &batch(
            "b1",
            T0,
            None,
            vec![event("e1", "product_click", "c", None, "p", T0)],
        ),
    );
    let before = store.0[&("user".into(), "c".into())].features["clicks@1"].clone();
    store.take(
        &spec,
        &batch(
            "b2",
            T0 + 5,
            None,
            vec![
                event("e2", "product_click", "c", None, "p", T0 + 1),
                event("e3", "product_click", "c", None, "p", T0 + 2),
            ],
        ),
    );
    let now = store.0[&("user".into(), "c".into())].features["clicks@1"].clone();
    let r = residual(clicks, &now, Some(&before)).expect("two more");
    assert_eq!(json_of(&r.value), json!({"count": {"total": 2}}));
    assert_eq!(residual(clicks, &now, Some(&now)), None);
    assert_eq!(residual(clicks, &now, None), Some(now.clone()));
    // latest_n: the items gained only, so a store that appends holds each once.
    let recent = spec.feature("recent@1").expect("recent");
    let doc = &store.0[&("user".into(), "c".into())];
    let mut earlier = Store::default();
    earlier.take(
        &spec,
        &batch(
            "b1",
            T0,
            None,
            vec![event("e1", "product_click", "c", None, "p", T0)],
        ),
    );
    let before = &earlier.0[&("user".into(), "c".into())].features["recent@1"];
    let gained = residual(recent, &doc.features["recent@1"], Some(before)).expect("two more");
    let ids: Vec<String> = match &gained.value {
        freshet_core::state::Agg::LatestN(items) => items.iter().map(|i| i.id.clone()).collect(),
        other => panic!("{other:?}"),
    };
    assert_eq!(ids, ["e3", "e2"]);
}

#[test]
fn sign_in_moves_the_visit_to_the_user_once_and_replay_agrees_at_every_time() {
    let spec = spec();
    let mut store = Store::default();
    let mut log: Vec<LoggedBatch> = Vec::new();
    let take = |store: &mut Store, log: &mut Vec<LoggedBatch>, b: LoggedBatch| {
        store.take(&spec, &b);
        log.push(b);
    };
    // Anonymous browsing, then a page view.
    take(
        &mut store,
        &mut log,
        batch(
            "a1",
            T0 + 10,
            None,
            vec![
                event("e1", "product_click", "c", None, "lens", T0),
                event("e2", "product_click", "c", None, "lens", T0 + 1),
                event("e3", "page_view", "c", None, "lens", T0 + 2),
            ],
        ),
    );
    // The user had an earlier visit on another device.
    take(
        &mut store,
        &mut log,
        batch(
            "u0",
            T0 + 20,
            Some("u"),
            vec![event("e4", "product_click", "d", Some("u"), "cam", T0 + 15)],
        ),
    );
    // Sign-in: the first verified batch from c, then the move.
    take(
        &mut store,
        &mut log,
        batch(
            "v1",
            T0 + 100,
            Some("u"),
            vec![event("e5", "page_view", "c", Some("u"), "lens", T0 + 90)],
        ),
    );
    let docs = store.client_docs("c");
    let link1 = Link {
        client: "c".into(),
        user: "u".into(),
        seq: 1,
        at: T0 + 101,
        moves: moves(&spec, "c", "u", &docs, &Given::new()),
    };
    assert_eq!(
        link1.moves.len(),
        2,
        "the user and the lens pair: {:?}",
        link1.moves
    );
    assert!(
        link1
            .moves
            .iter()
            .all(|m| !m.updates.contains_key("visits@1")),
        "link = false stays"
    );
    let logged1 = link1.to_logged("k", "h");
    // Through NDJSON, as the log holds it.
    let logged1 = parse_ndjson(&logged1.to_ndjson()).expect("log").remove(0);
    take(&mut store, &mut log, logged1.clone());
    // A retried move: its marker, nothing twice.
    store.take(&spec, &logged1);
    // A second tab still anonymous: lands on c, then moves as a residual.
    take(
        &mut store,
        &mut log,
        batch(
            "a2",
            T0 + 200,
            None,
            vec![event("e6", "product_click", "c", None, "lens", T0 + 150)],
        ),
    );
    let given = given_of(&docs);
    let docs2 = store.client_docs("c");
    let link2 = Link {
        client: "c".into(),
        user: "u".into(),
        seq: 2,
        at: T0 + 201,
        moves: moves(&spec, "c", "u", &docs2, &given),
    };
    take(&mut store, &mut log, link2.to_logged("k", "h"));

    let user = |docs: &BTreeMap<(String, String), FeatureDoc>, k: &str| {
        docs.get(&("user".to_owned(), "u".to_owned()))
            .and_then(|d| d.features.get(k))
            .map(|s| json_of(&s.value))
    };
    // Three lens clicks of c and the camera click: all the user's.
    assert_eq!(
        user(&store.0, "clicks@1"),
        Some(json!({"count": {"total": 4}}))
    );
    assert_eq!(
        user(&store.0, "spent@1"),
        Some(json!({"sum": {"total": 10.0}}))
    );
    // The page view before sign-in stays with the client (link = false).
    assert_eq!(
        user(&store.0, "visits@1"),
        Some(json!({"count": {"total": 1}}))
    );
    // The pair moved: 3 lens clicks.
    let pair =
        &store.0[&("user_product".to_owned(), "u|lens".to_owned())].features["pair_clicks@1"];
    assert_eq!(json_of(&pair.value), json!({"count": {"total": 3}}));
    // The device keeps its own; no `$link` event counted anywhere.
    assert_eq!(
        json_of(&store.0[&("device".to_owned(), "c".to_owned())].features["device_clicks@1"].value),
        json!({"count": {"total": 3}})
    );
    assert_eq!(
        user(&store.0, "everything@1"),
        Some(json!({"count": {"total": 6}})),
        "5 events of c, 1 of d; none of the links"
    );

    // Replay of the log: the store's documents, features and all.
    let mut replay = Replay::new(&spec);
    for b in &log {
        replay.apply(b);
    }
    for (key, doc) in &store.0 {
        assert_eq!(
            replay.docs().get(key).map(|d| &d.features),
            Some(&doc.features),
            "{key:?}"
        );
    }
    // Just before the first move the user has only their own click; just
    // after, the visit too (a replay kept to the user alone).
    let keep = [("user".to_owned(), "u".to_owned())].into_iter().collect();
    let mut only = Replay::only(&spec, keep);
    for b in log.iter().filter(|b| b.received_at < T0 + 101) {
        only.apply(b);
    }
    assert_eq!(
        user(only.docs(), "clicks@1"),
        Some(json!({"count": {"total": 1}}))
    );
    only.apply(&logged1);
    assert_eq!(
        user(only.docs(), "clicks@1"),
        Some(json!({"count": {"total": 3}}))
    );
}

#[test]
fn a_shared_device_gives_the_second_user_only_what_came_after() {
    let spec = spec();
    let mut store = Store::default();
    store.take(
        &spec,
        &batch(
            "a1",
            T0,
            None,
            vec![event("e1", "product_click", "c", None, "p", T0)],
        ),
    );
    let docs = store.client_docs("c");
    let first = moves(&spec, "c", "u1", &docs, &Given::new());
    assert_eq!(first.len(), 2);
    let given = given_of(&docs);
    // Nothing new: nothing for the second user.
    assert!(moves(&spec, "c", "u2", &store.client_docs("c"), &given).is_empty());
    store.take(
        &spec,
        &batch(
            "a2",
            T0 + 9,
            None,
            vec![event("e2", "product_click", "c", None, "q", T0 + 5)],
        ),
    );
    let second = moves(&spec, "c", "u2", &store.client_docs("c"), &given);
    let clicks: Vec<_> = second
        .iter()
        .filter(|m| m.entity == "user")
        .map(|m| json_of(&m.updates["clicks@1"].value))
        .collect();
    assert_eq!(clicks, vec![json!({"count": {"total": 1}})]);
    assert_eq!(
        second
            .iter()
            .filter(|m| m.entity == "user_product")
            .map(|m| m.id.as_str())
            .collect::<Vec<_>>(),
        vec!["u2|q"]
    );
}
