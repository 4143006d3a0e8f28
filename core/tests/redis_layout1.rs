//! A store written in layout 1 (before issue 23's compact layout) under
//! this version: it still reads, its first write in layout 2 is refused
//! until the entity is migrated, and the migration keeps every value and
//! every live batch marker (a batch applied before counts once after).

mod common;
#[path = "common/redis_calls.rs"]
mod redis_calls;
#[path = "common/redis_server.rs"]
mod redis_server;

use common::{NOW, batch, spec, tracker_like_events};
use freshet_core::aggregate::aggregate;
use freshet_core::encode::marker_member;
use freshet_core::encode::redis::{
    ApplyCall, ApplyReply, EntityKeys, RedisValue, apply_call, migrate_call, migrate_reads,
    migrate_watch,
};
use freshet_core::spec::{Aggregation, FeatureSpec};
use freshet_core::state::{Agg, BATCH_MARKER_TTL, Cells, EntityDelta, FeatureDoc, apply_delta};
use freshet_core::time::SECOND;
use redis_calls::{pipeline, read_entity, run};
use redis_server::RedisServer;

/// Writes `doc` as layout 1 kept it: full names, decimal text, bucket
/// starts in seconds, a zset per set feature and the marker zset.
fn write_layout1(
    con: &mut redis::Connection,
    spec: &FeatureSpec,
    keys: &EntityKeys<'_>,
    doc: &FeatureDoc,
) {
    let hash = keys.layout1_hash();
    let mut fields: Vec<(String, String)> = Vec::new();
    for (key, state) in &doc.features {
        let def = spec.feature(key).expect("spec feature");
        fields.push((format!("_ts:{key}"), state.updated_at.to_string()));
        let mut cells = |c: &Cells<String>| match c {
            Cells::Total(v) => fields.push((key.clone(), v.clone())),
            Cells::Buckets(b) => {
                for (start, v) in b {
                    fields.push((format!("{key}|{}", start / SECOND), v.clone()));
                }
            }
        };
        let text = |c: &Cells<f64>| map(c, f64::to_string);
        let zset = |members: Vec<(String, i64)>| {
            let mut cmd = redis::cmd("ZADD");
            cmd.arg(keys.layout1_set(key));
            for (m, score) in members {
                cmd.arg(score).arg(m);
            }
            cmd
        };
        match &state.value {
            Agg::Count(c) | Agg::Decay(c) => cells(&map(c, i64::to_string)),
            Agg::Sum(c) | Agg::Min(c) | Agg::Max(c) => cells(&text(c)),
            Agg::Avg(c) | Agg::VectorAvg(c) => cells(&map(c, |parts| {
                parts
                    .iter()
                    .map(f64::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            })),
            Agg::Last(s) | Agg::First(s) => {
                fields.push((key.clone(), s.v.to_string()));
                fields.push((format!("_o:{key}"), format!("{}|{}", s.t, s.id)));
            }
            Agg::Distinct(seen) => {
                let _: i64 = zset(seen.iter().map(|(v, t)| (v.clone(), *t)).collect())
                    .query(con)
                    .expect("ZADD");
            }
            Agg::Mode(counts) => {
                let _: i64 = zset(counts.iter().map(|(v, n)| (v.clone(), *n)).collect())
                    .query(con)
                    .expect("ZADD");
            }
            Agg::LatestN(items) => {
                let members = items
                    .iter()
                    .map(|s| (format!("{} {}", s.id, s.v), s.t))
                    .collect();
                let _: i64 = zset(members).query(con).expect("ZADD");
            }
        }
        assert!(def.agg != Aggregation::VectorAvg || !def.f32);
    }
    let _: i64 = redis::cmd("HSET")
        .arg(&hash)
        .arg(fields)
        .query(con)
        .expect("HSET");
    for (batch_id, received) in &doc.batches {
        let member: Vec<u8> = (0..8)
            .map(|i| {
                u8::from_str_radix(&marker_member(batch_id)[2 * i..2 * i + 2], 16).expect("hex")
            })
            .collect();
        let _: i64 = redis::cmd("ZADD")
            .arg(keys.layout1_batch_markers())
            .arg((received + BATCH_MARKER_TTL) / SECOND)
            .arg(member)
            .query(con)
            .expect("ZADD marker");
    }
}

fn map<T, U>(cells: &Cells<T>, f: impl Fn(&T) -> U) -> Cells<U> {
    match cells {
        Cells::Total(v) => Cells::Total(f(v)),
        Cells::Buckets(b) => Cells::Buckets(b.iter().map(|(k, v)| (*k, f(v))).collect()),
    }
}

fn apply(con: &mut redis::Connection, spec: &FeatureSpec, delta: &EntityDelta) -> ApplyReply {
    let call = apply_call(spec, "fs", delta);
    let reply = redis_calls::convert(run(con, &call.eval().0).expect("apply"));
    ApplyReply::from_reply(&reply).expect("reply")
}

/// The first half of a migration, as the edge runs it: `WATCH` the
/// entity's layout-1 keys, read them, and build the move as of `now`.
fn watch_and_read(
    con: &mut redis::Connection,
    spec: &FeatureSpec,
    id: &str,
    now: i64,
) -> ApplyCall {
    let _: () = redis::cmd("WATCH")
        .arg(migrate_watch(spec, "fs", "user", id))
        .query(con)
        .expect("WATCH");
    let replies = pipeline(con, &migrate_reads(spec, "fs", "user", id));
    migrate_call(spec, "fs", "user", id, &replies, now).expect("migrate call")
}

/// The second half: the move in `MULTI`/`EXEC`; `None` when Redis aborted
/// it because a watched key changed.
fn exec(con: &mut redis::Connection, call: &ApplyCall) -> Option<Vec<i64>> {
    let mut tx = redis::pipe();
    tx.atomic();
    let mut cmd = redis::cmd("EVAL");
    for p in &call.eval().0[1..] {
        cmd.arg(p.as_slice());
    }
    tx.add_command(cmd);
    tx.query(con).expect("EXEC")
}

/// A user's first batch, applied by core and written as layout 1 kept it.
fn user_in_layout1(con: &mut redis::Connection, spec: &FeatureSpec) -> (EntityDelta, FeatureDoc) {
    let delta = aggregate(spec, &batch("b1", tracker_like_events()), None)
        .into_iter()
        .find(|d| d.entity == "user")
        .expect("a user delta");
    let mut doc = FeatureDoc::default();
    apply_delta(spec, &mut doc, &delta);
    let keys = EntityKeys {
        prefix: "fs",
        entity: "user",
        id: &delta.id,
    };
    write_layout1(con, spec, &keys, &doc);
    (delta, doc)
}

#[test]
fn a_layout1_entity_reads_is_migrated_once_and_keeps_its_markers() {
    let server = RedisServer::start();
    let mut con = redis::Client::open(server.url())
        .and_then(|c| c.get_connection())
        .expect("connect");
    let spec = spec();
    let (delta, mut doc) = user_in_layout1(&mut con, &spec);
    let delta = &delta;
    assert!(doc.features.len() > 5 && doc.batches.len() == 1, "{doc:?}");

    // Read as it lies, in layout 1.
    assert_eq!(
        read_entity(&mut con, &spec, "fs", "user", &delta.id).features,
        doc.features
    );
    // A write in layout 2 is refused while layout 1 is there: nothing changes.
    assert_eq!(apply(&mut con, &spec, delta), ApplyReply::NeedsMigration);

    // The migration, as the edge runs it: WATCH, read, MULTI/EXEC.
    let call = watch_and_read(&mut con, &spec, &delta.id, delta.received_at + SECOND);
    assert_eq!(exec(&mut con, &call), Some(vec![1]));

    // Layout 1 is gone, layout 2 holds the same state.
    let left: i64 = redis::cmd("EXISTS")
        .arg(migrate_watch(&spec, "fs", "user", &delta.id))
        .query(&mut con)
        .expect("EXISTS");
    assert_eq!(left, 0);
    assert_eq!(
        read_entity(&mut con, &spec, "fs", "user", &delta.id).features,
        doc.features
    );
    // The batch applied in layout 1 is still known: its retry counts once.
    assert_eq!(apply(&mut con, &spec, delta), ApplyReply::Duplicate);
    // A second migration finds nothing to move.
    let again = migrate_call(
        &spec,
        "fs",
        "user",
        &delta.id,
        &pipeline(&mut con, &migrate_reads(&spec, "fs", "user", &delta.id)),
        NOW,
    )
    .expect("migrate call");
    let reply = redis_calls::convert(run(&mut con, &again.eval().0).expect("migrate"));
    assert_eq!(reply, RedisValue::Int(0));

    // New batches apply in layout 2 as core applies them.
    let second = batch("b2", tracker_like_events());
    for d in aggregate(&spec, &second, None)
        .iter()
        .filter(|d| d.entity == "user")
    {
        apply_delta(&spec, &mut doc, d);
        assert_eq!(apply(&mut con, &spec, d), ApplyReply::Applied);
    }
    assert_eq!(
        read_entity(&mut con, &spec, "fs", "user", &delta.id).features,
        doc.features
    );
}

#[test]
fn a_watched_write_between_read_and_move_aborts_the_migration() {
    let server = RedisServer::start();
    let mut con = redis::Client::open(server.url())
        .and_then(|c| c.get_connection())
        .expect("connect");
    let mut other = redis::Client::open(server.url())
        .and_then(|c| c.get_connection())
        .expect("connect");
    let spec = spec();
    let (delta, _) = user_in_layout1(&mut con, &spec);
    let keys = EntityKeys {
        prefix: "fs",
        entity: "user",
        id: &delta.id,
    };
    let call = watch_and_read(&mut con, &spec, &delta.id, NOW);
    // An edge of the version before writes the entity in between.
    let _: i64 = redis::cmd("HINCRBY")
        .arg(keys.layout1_hash())
        .arg("pageviews@1")
        .arg(1)
        .query(&mut other)
        .expect("HINCRBY");
    assert_eq!(
        exec(&mut con, &call),
        None,
        "EXEC of a changed watch is refused"
    );
    let left: i64 = redis::cmd("EXISTS")
        .arg(keys.layout1_hash())
        .query(&mut con)
        .expect("EXISTS");
    assert_eq!(left, 1, "layout 1 is left as it was");
    let hash_v2: i64 = redis::cmd("EXISTS")
        .arg(keys.hash())
        .query(&mut con)
        .expect("EXISTS");
    assert_eq!(hash_v2, 0, "and nothing was written in layout 2");
}
