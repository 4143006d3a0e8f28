//! Seed 2's platform at its size, in Redis (BENCHMARKS.md "Seed 2 at scale",
//! `scripts/bench-seed2.sh`): a generated population shaped like seed 2's,
//! written through core's apply path (`aggregate`, then the apply script,
//! one batch per watch, so the batch markers are what a live edge leaves),
//! then `MEMORY USAGE … SAMPLES 0` of every key of sampled users, items and
//! (user, item) pairs, and the whole store's `used_memory`.
//!
//! The population: `users` users and a quarter as many items (seed 2: 2M and
//! 500K). A user's weekly rate of watches is gamma-distributed so that the
//! 7-day count has the registry's `expected` mean 12.5 and stddev 8.3
//! (`user_watch_count_7d`); its watches over 30 days are Poisson at that
//! rate, at uniform times; each picks an item by Zipf popularity (s = 1).
//! An item has one of seed 2's genres and its 32-dim embedding; a watch
//! lasts a lognormal number of minutes (median 20). Watches are applied in
//! time order, received when they happen, so the markers and window
//! buckets are those of a store that ran for 30 days. Markers are counted
//! as they lie: a write drops its entity's groups ten days old, and an
//! entity idle for ten days has lost its marker key to its expiry.
//!
//! Usage: `cargo run --release -p freshet-core --example seed2 -- <users> [redis url]`
//! (a redis-server of its own on a free port when no URL is given). With
//! `SEED2_MONGO=<file>`, also writes MongoDB's updates of a sample of
//! entities there (`mongo.rs`; `python/bench/seed2_mongo.py` measures them).

mod mongo;
#[path = "../../tests/common/redis_server.rs"]
mod redis_server;

use std::collections::{BTreeMap, BTreeSet};

use freshet_core::aggregate::aggregate;
use freshet_core::encode::redis::{EntityKeys, apply_call, apply_script_sha1};
use freshet_core::spec::{Aggregation, FeatureSpec};
use freshet_core::state::{BATCH_MARKER_TTL, EntityDelta, FeatureDoc, apply_delta};
use freshet_core::time::{DAY, Millis, SECOND, parse_rfc3339};
use freshet_core::validate::{Event, ValidBatch};
use mongo::MongoSample;
use redis::Value as R;
use redis_server::RedisServer;
use serde_json::json;

const NOW: &str = "2026-11-22T10:00:00Z";
const SPEC_TEXT: &str = include_str!("../../../examples/media/features.toml");
const PREFIX: &str = "s2";
const GENRES: [&str; 8] = [
    "drama",
    "comedy",
    "action",
    "documentary",
    "thriller",
    "romance",
    "animation",
    "horror",
];
/// Users measured one by one (every key), and items and pairs.
const SAMPLE: usize = 2_000;

/// splitmix64: a small, seeded generator, so a run is repeatable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in (0, 1).
    fn unit(&mut self) -> f64 {
        ((self.next() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        (-2.0 * self.unit().ln()).sqrt() * (std::f64::consts::TAU * self.unit()).cos()
    }
    /// Marsaglia and Tsang; shape >= 1.
    fn gamma(&mut self, shape: f64, scale: f64) -> f64 {
        let d = shape - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let x = self.normal();
            let v = (1.0 + c * x).powi(3);
            if v > 0.0 && self.unit().ln() < 0.5 * x * x + d - d * v + d * v.ln() {
                return d * v * scale;
            }
        }
    }
    /// Knuth's, for the small means it is given (a day's watches).
    fn poisson(&mut self, mean: f64) -> u32 {
        let limit = (-mean).exp();
        let (mut k, mut p) = (0, 1.0);
        loop {
            p *= self.unit();
            if p <= limit {
                return k;
            }
            k += 1;
        }
    }
}

/// Weekly watch rate: gamma with mean 12.5 and variance 8.3² - 12.5 (the
/// Poisson draw adds the mean), so the 7-day count has mean 12.5, stddev 8.3.
fn weekly_rate(rng: &mut Rng) -> f64 {
    let var = 8.3f64.powi(2) - 12.5;
    rng.gamma(12.5 * 12.5 / var, var / 12.5)
}

struct Watch {
    time: Millis,
    user: u32,
    item: u32,
    minutes: f64,
    progress: f64,
}

fn embeddings() -> Vec<Vec<f64>> {
    let mut rng = Rng(7);
    GENRES
        .iter()
        .map(|_| (0..32).map(|_| (rng.unit() * 2.0 - 1.0) * 0.5).collect())
        .collect()
}

fn zipf_cdf(items: usize) -> Vec<f64> {
    let mut acc = 0.0;
    let mut cdf: Vec<f64> = (1..=items)
        .map(|r| {
            acc += 1.0 / r as f64;
            acc
        })
        .collect();
    for c in &mut cdf {
        *c /= acc;
    }
    cdf
}

/// Every watch of the population over the 30 days before `now`, in time
/// order; and the three named users (12, 54 and 90 watches) appended as
/// users `users`, `users + 1`, `users + 2`.
fn population(users: usize, items: usize, now: Millis) -> Vec<Watch> {
    let mut rng = Rng(2);
    let cdf = zipf_cdf(items);
    let mut watches = Vec::new();
    let mut add = |rng: &mut Rng, user: u32, n: u32| {
        for _ in 0..n {
            let u = rng.unit();
            let item = cdf.partition_point(|c| *c < u).min(items - 1) as u32;
            watches.push(Watch {
                time: now - (rng.unit() * (30 * DAY) as f64) as Millis,
                user,
                item,
                minutes: (3.0 + 0.6 * rng.normal()).exp(),
                progress: rng.unit(),
            });
        }
    };
    for user in 0..users {
        let per_day = weekly_rate(&mut rng) / 7.0;
        let n: u32 = (0..30).map(|_| rng.poisson(per_day)).sum();
        add(&mut rng, user as u32, n);
    }
    for (k, n) in [12, 54, 90].into_iter().enumerate() {
        add(&mut rng, (users + k) as u32, n);
    }
    watches.sort_by_key(|w| w.time);
    watches
}

fn batch(i: usize, w: &Watch, emb: &[Vec<f64>]) -> ValidBatch {
    let genre = w.item as usize % GENRES.len();
    let payload = json!({"itemId": format!("v-{}", w.item), "genre": GENRES[genre],
        "genreEmbedding": emb[genre], "watchDurationMin": (w.minutes * 10.0).round() / 10.0,
        "progress": (w.progress * 100.0).round() / 100.0});
    ValidBatch {
        batch_id: format!("0190c0de-{i:012x}-7c4e-9a4b-5d2e8f1a3b6c"),
        received_at: w.time + 2 * SECOND,
        skew: 0,
        write_key: None,
        identity: None,
        events: vec![Event {
            id: format!("w{i}"),
            event_type: "watch".into(),
            time: w.time,
            client_id: format!("u-{}", w.user),
            session_id: None,
            user_id: None,
            payload: payload.as_object().cloned().unwrap_or_default(),
        }],
        rejected: Vec::new(),
    }
}

/// The entities whose MongoDB documents are measured: about 300 users (and
/// the three named ones), 100 items and 300 (user, item) pairs.
fn mongo_sample(users: usize, items: usize, watches: &[Watch]) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for u in (0..users)
        .step_by((users / 300).max(1))
        .chain(users..users + 3)
    {
        out.insert(("user".to_owned(), format!("u-{u}")));
    }
    for i in (0..items).step_by((items / 100).max(1)) {
        out.insert(("item".to_owned(), format!("v-{i}")));
    }
    for w in watches.iter().step_by((watches.len() / 300).max(1)) {
        out.insert(("user_item".to_owned(), format!("u-{}|v-{}", w.user, w.item)));
    }
    out
}

fn query(con: &mut redis::Connection, parts: &[Vec<u8>]) -> R {
    let mut cmd = redis::cmd(std::str::from_utf8(&parts[0]).expect("verb"));
    for p in &parts[1..] {
        cmd.arg(p.as_slice());
    }
    cmd.query(con).expect("redis")
}

/// Applies every delta through the script, pipelined.
fn load(con: &mut redis::Connection, spec: &FeatureSpec, deltas: &[EntityDelta]) {
    let sha = apply_script_sha1();
    // Once, so EVALSHA finds it.
    let first = apply_call(spec, PREFIX, &deltas[0]);
    query(con, &first.eval().0);
    for chunk in deltas[1..].chunks(1_000) {
        let mut pipe = redis::pipe();
        for d in chunk {
            let parts = apply_call(spec, PREFIX, d).evalsha(&sha).0;
            let cmd = pipe.cmd(std::str::from_utf8(&parts[0]).expect("verb"));
            for p in &parts[1..] {
                cmd.arg(p.as_slice());
            }
        }
        let _: Vec<R> = pipe.query(con).expect("apply script");
    }
}

fn memory(con: &mut redis::Connection, key: &str) -> i64 {
    match redis::cmd("MEMORY")
        .arg("USAGE")
        .arg(key)
        .arg("SAMPLES")
        .arg(0)
        .query(con)
        .expect("MEMORY")
    {
        R::Int(n) => n,
        _ => 0,
    }
}

/// Bytes of one entity's keys: (its features: hash, cells and sets; its
/// markers).
fn entity_bytes(
    con: &mut redis::Connection,
    spec: &FeatureSpec,
    entity: &str,
    id: &str,
) -> (i64, i64) {
    let keys = EntityKeys {
        prefix: PREFIX,
        entity,
        id,
    };
    let mut features = memory(con, &keys.hash());
    for def in spec.features().iter().filter(|d| d.entity == entity) {
        if matches!(
            def.agg,
            Aggregation::Distinct
                | Aggregation::LatestN
                | Aggregation::Mode
                | Aggregation::Avg
                | Aggregation::VectorAvg
        ) {
            features += memory(con, &keys.feature(def));
        }
    }
    (features, memory(con, &keys.batch_markers()))
}

/// Drops the marker groups ten days old at `now` (and the keys left
/// empty), as the next write or the key's expiry would: the load ran its
/// 30 days of writes in minutes, so no key has expired by Redis's clock.
fn expire_markers(con: &mut redis::Connection, now: Millis) {
    let today = now.div_euclid(DAY);
    let mut cursor = 0u64;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{PREFIX}:*:2:b"))
            .arg("COUNT")
            .arg(10_000)
            .query(con)
            .expect("SCAN");
        for key in keys {
            let text: Vec<u8> = redis::cmd("GET").arg(&key).query(con).expect("GET");
            let mut kept = Vec::new();
            let mut at = 0;
            while at + 4 <= text.len() {
                let word = |i: usize| u16::from_le_bytes(text[i..i + 2].try_into().expect("2"));
                let (day, n) = (i64::from(word(at)), usize::from(word(at + 2)));
                let end = at + 4 + 8 * n;
                if day > today - 10 {
                    kept.extend_from_slice(&text[at..end]);
                }
                at = end;
            }
            if kept.is_empty() {
                let _: i64 = redis::cmd("DEL").arg(&key).query(con).expect("DEL");
            } else if kept.len() < text.len() {
                let _: () = redis::cmd("SET")
                    .arg(&key)
                    .arg(kept)
                    .arg("KEEPTTL")
                    .query(con)
                    .expect("SET");
            }
        }
        if next == 0 {
            return;
        }
        cursor = next;
    }
}

fn used_memory(con: &mut redis::Connection) -> i64 {
    let info: String = redis::cmd("INFO").arg("memory").query(con).expect("INFO");
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("used_memory")
}

struct Stats {
    mean: f64,
    p50: i64,
    p99: i64,
}

fn stats(mut v: Vec<i64>) -> Stats {
    v.sort_unstable();
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    Stats {
        mean: v.iter().sum::<i64>() as f64 / v.len() as f64,
        p50: at(0.5),
        p99: at(0.99),
    }
}

fn main() {
    let users: usize = std::env::args()
        .nth(1)
        .map_or(10_000, |n| n.parse().expect("users"));
    let items = (users / 4).max(100);
    let server;
    let url = match std::env::args().nth(2) {
        Some(url) => url,
        None => {
            server = RedisServer::start();
            server.url()
        }
    };
    let mut con = redis::Client::open(url)
        .and_then(|c| c.get_connection())
        .expect("redis");
    let spec = FeatureSpec::parse(SPEC_TEXT).expect("media spec");
    let now = parse_rfc3339(NOW).expect("time");
    let emb = embeddings();
    let before = used_memory(&mut con);

    let started = std::time::Instant::now();
    let watches = population(users, items, now);
    // The Durable Object's form of the same state, for a sample: core's
    // document (its JSON is what the object stores) and its marker rows.
    let mut sampled: BTreeMap<(String, String), FeatureDoc> = BTreeMap::new();
    for u in (0..users).step_by((users / SAMPLE).max(1)) {
        sampled.insert(("user".into(), format!("u-{u}")), FeatureDoc::default());
    }
    // Every fifth item at most: core's document of a popular item keeps
    // thousands of markers in a map, and this is only a sample.
    for i in (0..items).step_by((items / (SAMPLE / 4)).max(1)) {
        sampled.insert(("item".into(), format!("v-{i}")), FeatureDoc::default());
    }
    let mut mongo = std::env::var("SEED2_MONGO")
        .ok()
        .map(|path| MongoSample::new(&path, SPEC_TEXT, mongo_sample(users, items, &watches)));
    let mut deltas = Vec::new();
    let mut per_user: BTreeMap<u32, u32> = BTreeMap::new();
    for (i, w) in watches.iter().enumerate() {
        *per_user.entry(w.user).or_default() += 1;
        let b = batch(i, w, &emb);
        if let Some(m) = &mut mongo {
            m.write(&b);
        }
        let batch_deltas = aggregate(&spec, &b, None);
        for d in &batch_deltas {
            if let Some(doc) = sampled.get_mut(&(d.entity.clone(), d.id.clone())) {
                apply_delta(&spec, doc, d);
            }
        }
        deltas.extend(batch_deltas);
        if deltas.len() >= 30_000 {
            load(&mut con, &spec, &deltas);
            deltas.clear();
        }
    }
    if !deltas.is_empty() {
        load(&mut con, &spec, &deltas);
    }
    if let Some(m) = mongo {
        m.finish();
    }
    let loaded = started.elapsed().as_secs_f64();
    expire_markers(&mut con, now);
    let total = used_memory(&mut con) - before;

    // Per entity: a sample of users (every SAMPLE-th), items, pairs.
    let step = (users / SAMPLE).max(1);
    let mut u_feat = Vec::new();
    let mut u_mark = Vec::new();
    for u in (0..users).step_by(step) {
        let (f, m) = entity_bytes(&mut con, &spec, "user", &format!("u-{u}"));
        if f > 0 {
            u_feat.push(f);
            u_mark.push(m);
        }
    }
    let mut i_feat = Vec::new();
    let mut i_mark = Vec::new();
    for i in (0..items).step_by((items / SAMPLE).max(1)) {
        let (f, m) = entity_bytes(&mut con, &spec, "item", &format!("v-{i}"));
        if f > 0 {
            i_feat.push(f);
            i_mark.push(m);
        }
    }
    let mut pairs = BTreeSet::new();
    for w in watches.iter().step_by((watches.len() / SAMPLE).max(1)) {
        pairs.insert((w.user, w.item));
    }
    let mut p_feat = Vec::new();
    let mut p_mark = Vec::new();
    for (u, i) in &pairs {
        let (f, m) = entity_bytes(&mut con, &spec, "user_item", &format!("u-{u}|v-{i}"));
        p_feat.push(f);
        p_mark.push(m);
    }
    let distinct_pairs: usize = {
        let all: BTreeSet<(u32, u32)> = watches.iter().map(|w| (w.user, w.item)).collect();
        all.len()
    };
    let active_items = {
        let all: BTreeSet<u32> = watches.iter().map(|w| w.item).collect();
        all.len()
    };
    let named: Vec<(u32, (i64, i64))> = (0..3u32)
        .map(|k| {
            let u = users as u32 + k;
            (
                per_user[&u],
                entity_bytes(&mut con, &spec, "user", &format!("u-{u}")),
            )
        })
        .collect();

    let week: Vec<f64> = {
        // The 7-day counts of the population, against the registry's expected 12.5 / 8.3.
        let mut c = vec![0u32; users];
        for w in &watches {
            if w.time > now - 7 * DAY && (w.user as usize) < users {
                c[w.user as usize] += 1;
            }
        }
        c.into_iter().map(f64::from).collect()
    };
    let mean = week.iter().sum::<f64>() / week.len() as f64;
    let sd = (week.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / week.len() as f64).sqrt();

    // The object's document JSON, and its live marker rows (batch id and
    // receive time; SQLite's own row and index overhead not counted).
    let do_bytes = |entity: &str| -> (Stats, Stats) {
        let mut docs = Vec::new();
        let mut rows = Vec::new();
        for ((e, _), doc) in &sampled {
            if e != entity || doc.features.is_empty() {
                continue;
            }
            let mut plain = doc.clone();
            plain.batches.clear();
            docs.push(serde_json::to_string(&plain).expect("json").len() as i64);
            rows.push(
                doc.batches
                    .iter()
                    .filter(|(_, at)| **at > now - BATCH_MARKER_TTL)
                    .map(|(id, _)| id.len() as i64 + 8)
                    .sum(),
            );
        }
        (stats(docs), stats(rows))
    };
    let (do_user, do_user_rows) = do_bytes("user");
    let (do_item, do_item_rows) = do_bytes("item");
    let uf = stats(u_feat.clone());
    let um = stats(u_mark.clone());
    let ifs = stats(i_feat.clone());
    let im = stats(i_mark.clone());
    let pf = stats(p_feat.clone());
    let pm = stats(p_mark.clone());
    let user_all: Vec<i64> = u_feat.iter().zip(&u_mark).map(|(a, b)| a + b).collect();
    let item_all: Vec<i64> = i_feat.iter().zip(&i_mark).map(|(a, b)| a + b).collect();
    let pair_all: Vec<i64> = p_feat.iter().zip(&p_mark).map(|(a, b)| a + b).collect();
    let (ua, ia, pa) = (stats(user_all), stats(item_all), stats(pair_all));
    let scale = 2_000_000.0 / users as f64;
    let gb = |b: f64| b / 1e9;
    println!(
        "Seed 2's registry (examples/media/features.toml) in Redis {}, through the apply script, one batch per watch; \
              `cargo run --release -p freshet-core --example seed2 -- {users}` ({loaded:.0} s to generate and load).\n",
        redis_version(&mut con)
    );
    println!(
        "Population: {users} users, {items} items ({active_items} watched), {} watches over 30 days, \
              {distinct_pairs} (user, item) pairs; 7-day watch count mean {mean:.1}, stddev {sd:.1} \
              (registry: 12.5, 8.3).\n",
        watches.iter().filter(|w| (w.user as usize) < users).count()
    );
    println!(
        "| per entity (sampled: {} users, {} items, {} pairs) | features mean / p50 / p99 | markers mean / p50 / p99 | together mean / p50 / p99 |",
        u_feat.len(),
        i_feat.len(),
        p_feat.len()
    );
    println!("|---|---|---|---|");
    for (name, f, m, a) in [
        ("user", &uf, &um, &ua),
        ("item", &ifs, &im, &ia),
        ("user_item pair", &pf, &pm, &pa),
    ] {
        println!(
            "| {name} | {:.0} / {} / {} B | {:.0} / {} / {} B | {:.0} / {} / {} B |",
            f.mean, f.p50, f.p99, m.mean, m.p50, m.p99, a.mean, a.p50, a.p99
        );
    }
    println!();
    println!("| user | watches over 30 days | features | markers |");
    println!("|---|---:|---:|---:|");
    for ((n, (f, m)), name) in named.iter().zip(["light", "typical", "heavy"]) {
        println!("| {name} | {n} | {f} B | {m} B |");
    }
    println!();
    let users_b = ua.mean * 2_000_000.0;
    let items_b = ia.mean * 500_000.0 * active_items as f64 / items as f64;
    let pairs_b = pa.mean * distinct_pairs as f64 * scale;
    println!(
        "| at seed 2's size (the means above × 2M users, 500K items, {:.1}M pairs) | GB |",
        distinct_pairs as f64 * scale / 1e6
    );
    println!("|---|---:|");
    println!("| users | {:.2} |", gb(users_b));
    println!("| items | {:.2} |", gb(items_b));
    println!("| user_item pairs | {:.2} |", gb(pairs_b));
    println!(
        "| whole store, `used_memory` of this run × {scale:.0} | {:.2} |",
        gb(total as f64 * scale)
    );
    println!("| seed 2's Redis (users and items) | 4.2 |");
    println!();
    println!(
        "| users and items together, per entity (2M users and 500K items: the seed's 1.7 KB) | {:.0} B |",
        (users_b + items_b) / 2_500_000.0
    );
    println!();
    println!(
        "Durable Object (the same sample through core's `apply_delta`): the stored document's JSON \
         and its live marker rows (batch id + receive time; SQLite's own overhead not counted), mean / p50 / p99:\n"
    );
    println!("| per entity | document JSON | marker rows |");
    println!("|---|---|---|");
    for (name, d, r) in [
        ("user", &do_user, &do_user_rows),
        ("item", &do_item, &do_item_rows),
    ] {
        println!(
            "| {name} | {:.0} / {} / {} B | {:.0} / {} / {} B |",
            d.mean, d.p50, d.p99, r.mean, r.p50, r.p99
        );
    }
}

fn redis_version(con: &mut redis::Connection) -> String {
    let info: String = redis::cmd("INFO").arg("server").query(con).expect("INFO");
    info.lines()
        .find_map(|l| l.strip_prefix("redis_version:"))
        .unwrap_or("?")
        .trim()
        .to_owned()
}
