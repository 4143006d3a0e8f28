//! The Lua script pinned to core's semantics: random deltas, split and
//! retried, applied through the script on a real Redis and through
//! `apply_delta` in memory, must leave the same state and read the same.

mod common;
#[path = "common/redis_calls.rs"]
mod redis_calls;
#[path = "common/redis_server.rs"]
mod redis_server;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use common::{NOW, batch, events, spec, split};
use freshet_core::aggregate::aggregate;
use freshet_core::encode::redis::{
    APPLY_SCRIPT, RedisValue, apply_call, apply_script_sha1, folded_apply_call,
};
use freshet_core::fold::fold_deltas;
use freshet_core::read::read_features;
use freshet_core::spec::FeatureSpec;
use freshet_core::state::{Agg, Applied, Cells, FeatureDoc, apply_delta};
use freshet_core::validate::ValidBatch;
use proptest::prelude::*;
use redis_calls::{convert, read_entity, run};
use redis_server::RedisServer;

/// A Redis server of the test's own and a connection to it.
fn connected() -> (RedisServer, redis::Connection) {
    let server = RedisServer::start();
    let con = redis::Client::open(server.url())
        .and_then(|c| c.get_connection())
        .expect("connect");
    (server, con)
}

static PREFIX: AtomicU64 = AtomicU64::new(0);
/// Folds the script refused because some of their batches were applied
/// before (reply 3), over a whole test: the case must occur.
static PARTLY: AtomicU64 = AtomicU64::new(0);

/// Applies the schedule both ways and compares every entity touched.
fn check(
    con: &mut redis::Connection,
    spec: &FeatureSpec,
    schedule: &[&ValidBatch],
) -> Result<(), TestCaseError> {
    let prefix = format!(
        "t{}-{}",
        std::process::id(),
        PREFIX.fetch_add(1, Ordering::Relaxed)
    );
    let sha = apply_script_sha1();
    let mut docs: BTreeMap<(String, String), FeatureDoc> = BTreeMap::new();
    for b in schedule {
        for delta in aggregate(spec, b, None) {
            let doc = docs
                .entry((delta.entity.clone(), delta.id.clone()))
                .or_default();
            let expected = apply_delta(spec, doc, &delta);
            let call = apply_call(spec, &prefix, &delta);
            let reply = match run(con, &call.evalsha(&sha).0) {
                Err(e) if e.code() == Some("NOSCRIPT") => run(con, &call.eval().0),
                other => other,
            };
            let applied = match reply.map_err(|e| TestCaseError::fail(e.to_string()))? {
                redis::Value::Int(1) => Applied::Applied,
                redis::Value::Int(0) => Applied::Duplicate,
                other => return Err(TestCaseError::fail(format!("script replied {other:?}"))),
            };
            prop_assert_eq!(applied, expected, "batch {}", b.batch_id);
        }
    }
    for ((entity, id), doc) in &docs {
        let stored = read_entity(con, spec, &prefix, entity, id);
        prop_assert_eq!(&stored.features, &doc.features, "{}/{}", entity, id);
        let from_redis = read_features(spec, entity, &stored, None, NOW).expect("read");
        let from_core = read_features(spec, entity, doc, None, NOW).expect("read");
        prop_assert_eq!(from_redis, from_core);
    }
    Ok(())
}

#[test]
fn script_sha1_is_what_redis_computes() {
    let (_server, mut con) = connected();
    let sha: String = redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg(APPLY_SCRIPT)
        .query(&mut con)
        .expect("load");
    assert_eq!(sha, apply_script_sha1());
}

/// A spec of `features` over a `user` keyed by the client id.
fn client_spec(features: &str) -> FeatureSpec {
    FeatureSpec::parse(&format!(
        "[entities.user]\nkey = [\"clientId\"]\n{features}"
    ))
    .expect("spec")
}

/// Random batches of `events`, split, applied newest first, then retried.
fn script_equals_core(spec: &FeatureSpec, cases: u32) {
    let (_server, con) = connected();
    let con = std::cell::RefCell::new(con);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases,
        ..ProptestConfig::default()
    });
    let strategy = (
        events(50),
        prop::collection::vec(0..5usize, 1..50),
        prop::collection::vec(any::<prop::sample::Index>(), 0..12),
    );
    runner
        .run(&strategy, |(events, groups, retries)| {
            let batches = split(&events, &groups);
            let mut schedule: Vec<&ValidBatch> = batches.iter().rev().collect();
            schedule.extend(retries.iter().map(|i| i.get(&batches)));
            check(&mut con.borrow_mut(), spec, &schedule)
        })
        .expect("Redis and apply_delta agree");
}

#[test]
fn script_state_equals_apply_delta_for_random_batches_and_retries() {
    script_equals_core(&spec(), 96);
}

/// Runs one script call (`EVAL` if the server lacks the script) and
/// returns its integer reply.
fn reply_of(
    con: &mut redis::Connection,
    call: &freshet_core::encode::redis::ApplyCall,
) -> Result<i64, TestCaseError> {
    let reply = match run(con, &call.evalsha(&apply_script_sha1()).0) {
        Err(e) if e.code() == Some("NOSCRIPT") => run(con, &call.eval().0),
        other => other,
    };
    match reply.map_err(|e| TestCaseError::fail(e.to_string()))? {
        redis::Value::Int(n) => Ok(n),
        other => Err(TestCaseError::fail(format!("script replied {other:?}"))),
    }
}

/// Deliveries of batches (a queue's consumer): each delivery's deltas
/// folded per entity, one script call a fold, a fold refused because some
/// of its batches were applied before (3) applied delta by delta. The
/// store must end as core's `apply_delta` of every batch in the order
/// given leaves it, each batch counted once.
fn fold_check(
    con: &mut redis::Connection,
    spec: &FeatureSpec,
    deliveries: &[Vec<&ValidBatch>],
) -> Result<(), TestCaseError> {
    let prefix = format!(
        "f{}-{}",
        std::process::id(),
        PREFIX.fetch_add(1, Ordering::Relaxed)
    );
    let mut docs: BTreeMap<(String, String), FeatureDoc> = BTreeMap::new();
    for delivery in deliveries {
        let deltas: Vec<_> = delivery
            .iter()
            .flat_map(|b| aggregate(spec, b, None))
            .collect();
        for delta in &deltas {
            let doc = docs
                .entry((delta.entity.clone(), delta.id.clone()))
                .or_default();
            apply_delta(spec, doc, delta);
        }
        for fold in fold_deltas(spec, &deltas) {
            match reply_of(con, &folded_apply_call(spec, &prefix, &fold))? {
                0 | 1 => {}
                3 => {
                    prop_assert!(fold.is_fold(), "3 for a single delta");
                    PARTLY.fetch_add(1, Ordering::Relaxed);
                    for &m in &fold.members {
                        let n = reply_of(con, &apply_call(spec, &prefix, &deltas[m]))?;
                        prop_assert!(n == 0 || n == 1, "replied {}", n);
                    }
                }
                n => return Err(TestCaseError::fail(format!("script replied {n}"))),
            }
        }
    }
    for ((entity, id), doc) in &docs {
        let stored = read_entity(con, spec, &prefix, entity, id);
        prop_assert_eq!(&stored.features, &doc.features, "{}/{}", entity, id);
    }
    Ok(())
}

/// Random batches delivered in random groups, then redelivered regrouped
/// (some batches again, in other company): one script call per entity and
/// delivery gives what applying each batch once gives.
#[test]
fn folded_deliveries_and_regrouped_redeliveries_equal_apply_delta() {
    let spec = spec();
    let (_server, con) = connected();
    let con = std::cell::RefCell::new(con);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 64,
        ..ProptestConfig::default()
    });
    let strategy = (
        events(50),
        prop::collection::vec(0..8usize, 1..50),
        prop::collection::vec(0..4usize, 1..12),
        prop::collection::vec(any::<prop::sample::Index>(), 0..12),
    );
    runner
        .run(&strategy, |(events, groups, cuts, again)| {
            let batches = split(&events, &groups);
            // Deliveries cut from the batches in order, then redeliveries
            // of random batches in groups of their own.
            let mut deliveries: Vec<Vec<&ValidBatch>> = vec![Vec::new()];
            for (b, cut) in batches.iter().zip(cuts.iter().cycle()) {
                if *cut == 0 {
                    deliveries.push(Vec::new());
                }
                deliveries.last_mut().expect("a delivery").push(b);
            }
            for chunk in again.chunks(3) {
                deliveries.push(chunk.iter().map(|i| i.get(&batches)).collect());
            }
            fold_check(&mut con.borrow_mut(), &spec, &deliveries)
        })
        .expect("folded deliveries and apply_delta agree");
    assert!(
        PARTLY.load(Ordering::Relaxed) > 0,
        "no redelivery met a fold"
    );
}

/// Bounds that bite: a `mode` keeping 2 of 4 videos' counts, a `distinct`
/// keeping 2 of 4 categories. The Redis zset trims as `keep_top` does, so
/// even past `max` the script and core agree for the same deliveries.
#[test]
fn tight_bounds_trim_the_same_in_the_script_and_in_core() {
    let tight = client_spec(
        r#"
[[feature]]
name = "favourite_video"
entity = "user"
on = ["watch"]
agg = "mode"
field = "payload.videoId"
max = 2

[[feature]]
name = "categories"
entity = "user"
on = ["viewed_category"]
agg = "distinct"
field = "payload.category"
max = 2
"#,
    );
    script_equals_core(&tight, 64);
}

#[test]
fn a_read_of_some_features_reads_only_their_sets() {
    use freshet_core::encode::redis::{decode_state_for, read_commands_for};
    let (_server, mut con) = connected();
    let spec = spec();
    let events = common::tracker_like_events();
    let b = batch("b1", events);
    let mut doc = FeatureDoc::default();
    for delta in aggregate(&spec, &b, None)
        .into_iter()
        .filter(|d| d.entity == "user")
    {
        apply_delta(&spec, &mut doc, &delta);
        let call = apply_call(&spec, "part", &delta);
        run(&mut con, &call.eval().0).expect("apply");
    }
    let wanted = ["pageviews@1", "viewed_categories@1"];
    let commands = read_commands_for(&spec, "part", "user", "cid-0", Some(&wanted));
    assert_eq!(
        commands.len(),
        2,
        "HGETALL and one ZRANGE, not one per set feature"
    );
    let replies: Vec<RedisValue> = commands
        .iter()
        .map(|c| convert(run(&mut con, &c.0).expect("read")))
        .collect();
    let stored = decode_state_for(&spec, "user", Some(&wanted), &replies).expect("decode");
    assert_eq!(
        stored.features.get("viewed_categories@1"),
        doc.features.get("viewed_categories@1")
    );
    assert_eq!(
        stored.features.get("pageviews@1"),
        doc.features.get("pageviews@1")
    );
    assert!(!stored.features.contains_key("recent_products@1"));
    assert!(doc.features.contains_key("recent_products@1"));
}

const FLOATS: &str = r#"
[[feature]]
name = "minutes"
entity = "user"
on = ["watch"]
agg = "avg"
field = "payload.minutes"
window = "7d"

[[feature]]
name = "taste"
entity = "user"
on = ["watch"]
agg = "vector_avg"
field = "payload.v"
dim = 3
weight = "payload.minutes"
"#;

/// Fractional numbers: the script adds `avg` and `vector_avg` cells in
/// doubles, in the order core adds them, and packs them as their 8 bytes,
/// so even the last bit agrees (`HINCRBYFLOAT`'s long double would not).
#[test]
fn fractional_averages_agree_to_the_last_bit() {
    use freshet_core::time::DAY;
    use freshet_core::validate::Event;
    let floats = client_spec(FLOATS);
    let event = |i: i32| Event {
        id: format!("e{i:03}"),
        event_type: "watch".into(),
        time: NOW - i64::from(i) * DAY / 5,
        client_id: format!("c{}", i % 2),
        session_id: None,
        user_id: None,
        payload: serde_json::json!({
            "minutes": (f64::from(i) * 1.37).sin().abs() * 100.0,
            "v": [0.1 * f64::from(i), (f64::from(i)).cos(), 1.0 / 3.0],
        })
        .as_object()
        .cloned()
        .unwrap_or_default(),
    };
    let batches: Vec<ValidBatch> = (0..6)
        .map(|b| batch(&format!("f{b}"), (0..7).map(|k| event(b * 7 + k)).collect()))
        .collect();
    let mut schedule: Vec<&ValidBatch> = batches.iter().rev().collect();
    schedule.extend(batches.iter().step_by(2));
    let (_server, mut con) = connected();
    check(&mut con, &floats, &schedule).expect("Redis and apply_delta agree");
    // Single precision, as `float = "f32"` asks: the script rounds each sum
    // as core does, so the cells agree to the last bit of their 4 bytes.
    let singles = client_spec(&FLOATS.replace("agg = ", "float = \"f32\"\nagg = "));
    check(&mut con, &singles, &schedule).expect("Redis and apply_delta agree in f32");
    let mut doc = FeatureDoc::default();
    for b in &schedule {
        for delta in aggregate(&singles, b, None).iter().filter(|d| d.id == "c0") {
            apply_delta(&singles, &mut doc, delta);
        }
    }
    let Some(Agg::VectorAvg(Cells::Total(parts))) = doc.features.get("taste@1").map(|s| &s.value)
    else {
        panic!("taste@1 is a vector_avg total: {doc:?}");
    };
    #[allow(clippy::cast_possible_truncation)]
    let single = |x: f64| f64::from(x as f32);
    assert!(parts.iter().all(|x| single(*x) == *x), "{parts:?}");
}

/// A hot entity's day keeps its latest `MAX_MARKERS_PER_DAY` markers, as
/// MongoDB's day slot does: the string stays bounded, a batch among the
/// latest counts once, and one pushed out by 1,000 newer ones of its day
/// counts again (the documented limit).
#[test]
fn a_day_keeps_its_latest_markers_up_to_the_cap() {
    use freshet_core::encode::redis::{APPLY_SCRIPT, EntityKeys};
    use freshet_core::encode::{MAX_MARKERS_PER_DAY, marker_member};
    use freshet_core::time::DAY;
    assert!(
        APPLY_SCRIPT.contains(&format!("local MAX_PER_DAY = {MAX_MARKERS_PER_DAY}\n")),
        "the script keeps core's cap"
    );
    let (_server, mut con) = connected();
    let spec = spec();
    let batches: Vec<ValidBatch> = (0..3)
        .map(|b| batch(&format!("hot-{b}"), common::tracker_like_events()))
        .collect();
    let deltas: Vec<_> = batches
        .iter()
        .map(|b| {
            aggregate(&spec, b, None)
                .into_iter()
                .find(|d| d.entity == "user")
                .expect("a user delta")
        })
        .collect();
    let keys = EntityKeys {
        prefix: "fs",
        entity: "user",
        id: &deltas[0].id,
    };
    let member = |d: &freshet_core::state::EntityDelta| -> Vec<u8> {
        let hex = marker_member(&d.batch_id);
        (0..8)
            .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex"))
            .collect()
    };
    // A full day: the first batch's marker the oldest, the second's the newest.
    let day = u16::try_from(deltas[0].received_at.div_euclid(DAY)).expect("u16 day");
    let cap = u16::try_from(MAX_MARKERS_PER_DAY).expect("u16");
    let mut text: Vec<u8> = Vec::with_capacity(4 + 8 * MAX_MARKERS_PER_DAY);
    text.extend(day.to_le_bytes());
    text.extend(cap.to_le_bytes());
    text.extend(member(&deltas[0]));
    for k in 0..u64::from(cap) - 2 {
        text.extend(k.to_le_bytes());
    }
    text.extend(member(&deltas[1]));
    let _: () = redis::cmd("SET")
        .arg(keys.batch_markers())
        .arg(&text)
        .query(&mut con)
        .expect("SET");
    let apply = |con: &mut redis::Connection, d: &freshet_core::state::EntityDelta| {
        convert(run(con, &apply_call(&spec, "fs", d).eval().0).expect("apply"))
    };
    let len = |con: &mut redis::Connection| -> usize {
        redis::cmd("STRLEN")
            .arg(keys.batch_markers())
            .query(con)
            .expect("STRLEN")
    };
    assert_eq!(
        apply(&mut con, &deltas[0]),
        RedisValue::Int(0),
        "the oldest, still kept"
    );
    assert_eq!(
        apply(&mut con, &deltas[2]),
        RedisValue::Int(1),
        "a new batch"
    );
    assert_eq!(
        len(&mut con),
        4 + 8 * MAX_MARKERS_PER_DAY,
        "still one full group"
    );
    assert_eq!(
        apply(&mut con, &deltas[1]),
        RedisValue::Int(0),
        "among the latest"
    );
    assert_eq!(
        apply(&mut con, &deltas[2]),
        RedisValue::Int(0),
        "the newest"
    );
    assert_eq!(
        apply(&mut con, &deltas[0]),
        RedisValue::Int(1),
        "pushed out by 1,000 newer ones of its day: counts again"
    );
    assert_eq!(len(&mut con), 4 + 8 * MAX_MARKERS_PER_DAY);
}

#[test]
fn a_key_of_another_type_refuses_the_apply_before_anything_is_written() {
    use freshet_core::encode::redis::EntityKeys;
    let (_server, mut con) = connected();
    let spec = spec();
    let b = batch("foreign-1", common::tracker_like_events());
    let delta = aggregate(&spec, &b, None)
        .into_iter()
        .find(|d| d.entity == "user")
        .expect("a user delta");
    let keys = EntityKeys {
        prefix: "fs",
        entity: "user",
        id: &delta.id,
    };
    // Foreign data where the entity's hash belongs.
    let _: () = redis::cmd("SET")
        .arg(keys.hash())
        .arg("not a hash")
        .query(&mut con)
        .expect("SET");
    let call = apply_call(&spec, "fs", &delta);
    let e = run(&mut con, &call.eval().0).expect_err("refused");
    assert_eq!(e.code(), Some("WRONGTYPE"), "{e}");
    let exists: i64 = redis::cmd("EXISTS")
        .arg(keys.batch_markers())
        .query(&mut con)
        .expect("EXISTS");
    assert_eq!(exists, 0, "no marker written");
    // The key cleared, the same batch applies, once.
    let _: () = redis::cmd("DEL")
        .arg(keys.hash())
        .query(&mut con)
        .expect("DEL");
    let apply = |con: &mut redis::Connection| convert(run(con, &call.eval().0).expect("apply"));
    assert_eq!(apply(&mut con), RedisValue::Int(1));
    assert_eq!(apply(&mut con), RedisValue::Int(0));
}
