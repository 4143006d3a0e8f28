//! Drift summaries merge to the same result in any order: across hours and
//! sampling points in memory, and through the Redis script on a real Redis
//! (each part added by a different "sampling point", in shuffled order).

#[path = "common/redis_server.rs"]
mod redis_server;

use freshet_core::drift::Summary;
use freshet_core::drift::store::{REDIS_ADD_SCRIPT, redis_add_args, summary_from_fields};
use proptest::prelude::*;
use redis_server::RedisServer;
use serde_json::{Value, json};

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        (-1_000i64..1_000).prop_map(|i| json!(i)),
        (-1e6f64..1e6).prop_map(|x| json!(x)),
        prop::sample::select(vec!["a", "b", "c", "shoes", "bags"]).prop_map(|s| json!(s)),
        prop::collection::vec(prop::sample::select(vec!["x", "y", "z"]), 0..4)
            .prop_map(|v| json!(v)),
    ]
}

/// Values split into parts (hours × sampling points), and a permutation.
fn parts() -> impl Strategy<Value = (Vec<Vec<Value>>, Vec<usize>)> {
    prop::collection::vec(prop::collection::vec(value(), 0..30), 1..8).prop_flat_map(|parts| {
        let n = parts.len();
        (Just(parts), Just((0..n).collect::<Vec<_>>()).prop_shuffle())
    })
}

fn summary(values: &[Value]) -> Summary {
    let mut s = Summary::default();
    values.iter().for_each(|v| s.add(v));
    s
}

/// Equal, with `sum` and `sum_sq` within floating-point reassociation.
fn same(a: &Summary, b: &Summary) -> Result<(), TestCaseError> {
    let close = |x: f64, y: f64| (x - y).abs() <= 1e-9 * (1.0 + x.abs().max(y.abs()));
    prop_assert!(close(a.sum, b.sum), "sum {} vs {}", a.sum, b.sum);
    prop_assert!(
        close(a.sum_sq, b.sum_sq),
        "sum_sq {} vs {}",
        a.sum_sq,
        b.sum_sq
    );
    let strip = |s: &Summary| Summary {
        sum: 0.0,
        sum_sq: 0.0,
        ..s.clone()
    };
    prop_assert_eq!(strip(a), strip(b));
    Ok(())
}

proptest! {
    #[test]
    fn merging_in_any_order_gives_one_summary((parts, order) in parts()) {
        let all: Vec<Value> = parts.iter().flatten().cloned().collect();
        let whole = summary(&all);
        let mut merged = Summary::default();
        for i in &order {
            merged.merge(&summary(&parts[*i]));
        }
        same(&merged, &whole)?;
        // Merging merged summaries (two halves) is the same again.
        let (left, right) = order.split_at(order.len() / 2);
        let mut l = Summary::default();
        left.iter().for_each(|i| l.merge(&summary(&parts[*i])));
        let mut r = Summary::default();
        right.iter().for_each(|i| r.merge(&summary(&parts[*i])));
        r.merge(&l);
        same(&r, &whole)?;
    }
}

#[test]
fn the_redis_script_merges_in_any_order() {
    let server = RedisServer::start();
    let con = redis::Client::open(server.url())
        .and_then(|c| c.get_connection())
        .expect("connect");
    let con = std::cell::RefCell::new(con);
    let case = std::cell::Cell::new(0u32);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(48));
    runner
        .run(&parts(), |(parts, order)| {
            case.set(case.get() + 1);
            let key = format!("fs:drift:{{t@1}}:{}", case.get());
            let mut con = con.borrow_mut();
            for i in &order {
                let s = summary(&parts[*i]);
                if s.is_empty() {
                    continue;
                }
                let mut cmd = redis::cmd("EVAL");
                cmd.arg(REDIS_ADD_SCRIPT).arg(1).arg(&key);
                for a in redis_add_args(&s) {
                    cmd.arg(a);
                }
                cmd.query::<i64>(&mut *con)
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
            }
            let fields: Vec<(String, String)> = redis::cmd("HGETALL")
                .arg(&key)
                .query(&mut *con)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            let stored =
                summary_from_fields(fields).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let all: Vec<Value> = parts.iter().flatten().cloned().collect();
            same(&stored, &summary(&all))?;
            let ttl: i64 = redis::cmd("TTL")
                .arg(&key)
                .query(&mut *con)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert!(stored.is_empty() || (ttl > 0 && ttl <= 8 * 24 * 3600));
            Ok(())
        })
        .expect("the script merges like core");
}
