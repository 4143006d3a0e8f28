//! Bytes per entity, measured on a redis-server this starts, through the
//! apply script. `window`: what a window's `precision` costs: one 7-day
//! count window with every bucket filled (a click every 5 minutes for 7
//! days), at the default precision and finer ones, stored three ways: the
//! Redis hash (`MEMORY USAGE`), the MongoDB document (BSON bytes of the
//! fields the update writes) and the Durable Object's document (its JSON
//! text) (`scripts/bench-window.sh`). `media`: a user and an item of seed
//! 2's media spec after a month of watches, in Redis
//! (`scripts/bench-aggregations.sh`). Each prints its BENCHMARKS.md section.

#[path = "../tests/common/redis_server.rs"]
mod redis_server;

use freshet_core::aggregate::aggregate;
use freshet_core::encode::mongo::{json_to_bson, update_one};
use freshet_core::encode::redis::{apply_call, apply_script_sha1};
use freshet_core::read::read_features;
use freshet_core::spec::FeatureSpec;
use freshet_core::state::{FeatureDoc, apply_delta};
use freshet_core::time::{DAY, MINUTE, Millis, parse_rfc3339};
use freshet_core::validate::{Event, ValidBatch};
use redis_server::RedisServer;
use serde_json::{Map, Value};

const NOW: &str = "2026-11-22T10:00:00Z";

fn spec(precision: Option<&str>) -> FeatureSpec {
    let precision = precision.map_or(String::new(), |p| format!("precision = \"{p}\"\n"));
    FeatureSpec::parse(&format!(
        "[entities.user]\nkey = [\"clientId\"]\n[[feature]]\nname = \"clicks_7d\"\nentity = \"user\"\n\
         on = [\"product_click\"]\nagg = \"count\"\nwindow = \"7d\"\n{precision}"
    ))
    .expect("spec")
}

fn clicks(now: Millis) -> Vec<ValidBatch> {
    let every = 5 * MINUTE;
    (0..(7 * DAY / every))
        .map(|i| {
            let time = now - 7 * DAY + i * every + MINUTE;
            ValidBatch {
                batch_id: format!("b{i}"),
                received_at: time,
                skew: 0,
                write_key: None,
                identity: None,
                events: vec![Event {
                    id: format!("e{i}"),
                    event_type: "product_click".into(),
                    time,
                    client_id: "cid-1".into(),
                    session_id: None,
                    user_id: None,
                    payload: Map::new(),
                }],
                rejected: Vec::new(),
            }
        })
        .collect()
}

fn redis_cmd(con: &mut redis::Connection, parts: &[Vec<u8>]) -> redis::RedisResult<redis::Value> {
    let mut cmd = redis::cmd(std::str::from_utf8(&parts[0]).expect("verb"));
    for p in &parts[1..] {
        cmd.arg(p.as_slice());
    }
    cmd.query(con)
}

fn main() {
    let server = RedisServer::start();
    let mut con = redis::Client::open(server.url())
        .and_then(|c| c.get_connection())
        .expect("redis");
    match std::env::args().nth(1).as_deref() {
        Some("window") => window(&mut con),
        Some("media") => media(&mut con),
        _ => panic!("usage: entity_memory window|media"),
    }
}

/// Applies `batches` through the script under `prefix`.
fn apply_all(
    con: &mut redis::Connection,
    spec: &FeatureSpec,
    prefix: &str,
    batches: &[ValidBatch],
) {
    let sha = apply_script_sha1();
    for b in batches {
        for delta in aggregate(spec, b, None) {
            let call = apply_call(spec, prefix, &delta);
            if redis_cmd(con, &call.evalsha(&sha).0).is_err() {
                redis_cmd(con, &call.eval().0).expect("apply script");
            }
        }
    }
}

/// `MEMORY USAGE` of every key of one entity (its hash and its sets), batch
/// markers (the `:b` zset, and the layout before's `:b:<id>` keys) left out.
fn entity_bytes(con: &mut redis::Connection, prefix: &str, entity: &str, id: &str) -> i64 {
    let pattern = format!("{prefix}:{{{entity}:{id}}}*");
    let keys: Vec<String> = redis::cmd("KEYS").arg(&pattern).query(con).expect("KEYS");
    keys.iter()
        .filter(|k| !k.contains(":b:") && !k.ends_with(":b"))
        .map(|k| {
            let usage = [
                b"MEMORY".to_vec(),
                b"USAGE".to_vec(),
                k.as_bytes().to_vec(),
                b"SAMPLES".to_vec(),
                b"0".to_vec(),
            ];
            match redis_cmd(con, &usage).expect("MEMORY USAGE") {
                redis::Value::Int(n) => n,
                other => panic!("MEMORY USAGE: {other:?}"),
            }
        })
        .sum()
}

fn watch(i: i64, time: Millis, user: &str, item: &str) -> Event {
    let genre = ["drama", "comedy", "action", "documentary"][(i % 4) as usize];
    let embedding: Vec<Value> = (0..32)
        .map(|k| Value::from(((i * 7 + k) % 13) as f64 / 13.0 - 0.5))
        .collect();
    let payload = serde_json::json!({"itemId": item, "genre": genre, "genreEmbedding": embedding,
                                     "watchDurationMin": 10.0 + (i % 90) as f64, "progress": 0.5});
    Event {
        id: format!("w{i}"),
        event_type: "watch".into(),
        time,
        client_id: user.into(),
        session_id: None,
        user_id: None,
        payload: payload.as_object().cloned().unwrap_or_default(),
    }
}

fn one_batch(id: String, events: Vec<Event>) -> ValidBatch {
    ValidBatch {
        batch_id: id,
        received_at: events.iter().map(|e| e.time).max().unwrap_or(0),
        skew: 0,
        write_key: None,
        identity: None,
        events,
        rejected: Vec::new(),
    }
}

fn media(con: &mut redis::Connection) {
    let now = parse_rfc3339(NOW).expect("time");
    let spec =
        FeatureSpec::parse(include_str!("../../examples/media/features.toml")).expect("media spec");
    // A user who watches three times a day for 30 days, at hours that vary;
    // an item watched 20 times a day for 14 days by as many users.
    let user: Vec<ValidBatch> = (0..90)
        .map(|i| {
            let t = now - 30 * DAY + i * DAY / 3 + (i % 5) * 60 * MINUTE;
            one_batch(
                format!("u{i}"),
                vec![watch(i, t, "u-1", &format!("v-{}", i % 40))],
            )
        })
        .collect();
    let item: Vec<ValidBatch> = (0..280)
        .map(|i| {
            let t = now - 14 * DAY + i * DAY / 20;
            one_batch(
                format!("i{i}"),
                vec![watch(1000 + i, t, &format!("u-{}", 100 + i), "v-hot")],
            )
        })
        .collect();
    apply_all(con, &spec, "m", &user);
    apply_all(con, &spec, "m", &item);
    let user_bytes = entity_bytes(con, "m", "user", "u-1");
    let item_bytes = entity_bytes(con, "m", "item", "v-hot");
    println!(
        "`scripts/bench-aggregations.sh` (core/examples/entity_memory.rs media): seed 2's media spec \
         (examples/media/features.toml) in Redis through the apply script, `MEMORY USAGE … SAMPLES 0` of every key of the \
         entity (its hash, and the sorted set of its `mode`), batch markers left out.\n"
    );
    println!("| entity | history | Redis bytes |");
    println!("|---|---|---:|");
    println!(
        "| user (watch count 7d, genre preferences 32 dims 30d, average duration 30d, preferred hour) | 90 watches over 30 days | {user_bytes} B |"
    );
    println!(
        "| item (popularity decayed over 14d, genre) | 280 watches over 14 days | {item_bytes} B |"
    );
}

fn window(con: &mut redis::Connection) {
    let now = parse_rfc3339(NOW).expect("time");
    let sha = apply_script_sha1();
    let batches = clicks(now);
    println!(
        "`scripts/bench-window.sh` (core/examples/entity_memory.rs window): one entity's 7-day count window with every \
         bucket filled ({} clicks, one every 5 minutes), per precision: the buckets kept, the window's \
         worst-case error at its leading edge (events up to one bucket older than 7 days still count), and \
         the bytes per entity in each store: Redis `MEMORY USAGE … SAMPLES 0` (every field counted) of the entity's hash after the apply script \
         (the batch markers are keys of their own, not counted), the MongoDB document's fields as BSON, and \
         the Durable Object's document as the JSON it keeps. Markers excluded everywhere.\n",
        batches.len()
    );
    println!(
        "| precision | buckets | worst-case error | Redis hash | MongoDB fields | Durable Object JSON |"
    );
    println!("|---|---:|---|---:|---:|---:|");
    for precision in [None, Some("1h"), Some("15m"), Some("5m")] {
        let spec = spec(precision);
        let prefix = format!("w{}", precision.unwrap_or("default"));
        let mut doc = FeatureDoc::default();
        let mut mongo = Map::new();
        for b in &batches {
            for delta in aggregate(&spec, b, None) {
                apply_delta(&spec, &mut doc, &delta);
                let call = apply_call(&spec, &prefix, &delta);
                if redis_cmd(con, &call.evalsha(&sha).0).is_err() {
                    redis_cmd(con, &call.eval().0).expect("apply script");
                }
                // The fields the update writes ($inc per bucket, $max of _ts),
                // accumulated as MongoDB would (old buckets stay: see encode::mongo).
                let update = update_one(&spec, &delta).update;
                for (_, fields) in update.as_object().expect("update").iter() {
                    for (path, v) in fields.as_object().expect("fields") {
                        // The batch markers (the day slots) are not the window's.
                        if path == "_batches" || path.starts_with("_b.") {
                            continue;
                        }
                        mongo.insert(path.clone(), v.clone());
                    }
                }
            }
        }
        doc.batches.clear();
        let key = format!("{prefix}:{{user:cid-1}}");
        // SAMPLES 0: every field counted, not an estimate from five.
        let usage = [
            b"MEMORY".to_vec(),
            b"USAGE".to_vec(),
            key.into_bytes(),
            b"SAMPLES".to_vec(),
            b"0".to_vec(),
        ];
        let redis_bytes = match redis_cmd(con, &usage).expect("MEMORY USAGE") {
            redis::Value::Int(n) => n,
            other => panic!("MEMORY USAGE: {other:?}"),
        };
        let bson = match json_to_bson(&Value::Object(mongo)) {
            bson::Bson::Document(d) => d.to_vec().expect("bson").len(),
            other => panic!("not a document: {other}"),
        };
        let json = serde_json::to_string(&doc).expect("json").len();
        let window = spec.features()[0].window.expect("window");
        let value = read_features(&spec, "user", &doc, None, now).expect("read")["clicks_7d"]
            .value
            .clone();
        assert!(
            value.as_i64().unwrap_or(0) >= batches.len() as i64 - 1,
            "{value}"
        );
        let buckets = match &doc.features["clicks_7d@1"].value {
            freshet_core::state::Agg::Count(freshet_core::state::Cells::Buckets(b)) => b.len(),
            other => panic!("not buckets: {other:?}"),
        };
        let label = precision.map_or("default (1 day)".to_owned(), |p| format!("`{p}`"));
        let error = human(window.granule);
        println!("| {label} | {buckets} | < {error} | {redis_bytes} B | {bson} B | {json} B |");
    }
}

fn human(ms: Millis) -> String {
    if ms % DAY == 0 {
        format!("{} d", ms / DAY)
    } else if ms % (60 * MINUTE) == 0 {
        format!("{} h", ms / (60 * MINUTE))
    } else {
        format!("{} min", ms / MINUTE)
    }
}
