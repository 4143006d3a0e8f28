//! The Redis store against a real `redis-server`, started on a free port for
//! each test with a random key prefix, over tokio's TCP stream: the same
//! code the worker runs over its socket.

#![allow(clippy::unwrap_used)]

use std::cell::Cell;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use freshet_core::aggregate::aggregate;
use freshet_core::read::read_features;
use freshet_core::state::{Applied, EntityDelta};
use freshet_core::time::{Millis, parse_rfc3339};
use freshet_core::validate::receive;
use tokio::net::TcpStream;

use super::{Connector, RedisStore, RedisUrl};
use crate::spec::compiled_spec;
use crate::store::memory::MemoryStore;
use crate::store::pool::PoolLimits;
use crate::store::test_support::{
    assert_a_delivery_folds_and_a_regrouped_one_counts_once, free_port, silent_server,
};
use crate::store::{EntityKey, EntityRead, FeatureStore, StoreError};

const TRACKER: &str = include_str!("../../../tests/fixtures/tracker.json");
const SEED: &str = include_str!("../../../tests/fixtures/seed.json");

/// tokio's TCP stream and timer; counts the connections it opens.
#[derive(Debug, Default)]
pub(super) struct Tokio {
    connects: Cell<usize>,
}

impl Connector for Tokio {
    type Conn = TcpStream;
    async fn connect(&self, url: &RedisUrl) -> std::io::Result<TcpStream> {
        self.connects.set(self.connects.get() + 1);
        TcpStream::connect((url.host.as_str(), url.port)).await
    }
    fn sleep(&self, ms: u64) -> impl Future<Output = ()> {
        tokio::time::sleep(Duration::from_millis(ms))
    }
    fn now_ms(&self) -> f64 {
        static START: OnceLock<Instant> = OnceLock::new();
        START.get_or_init(Instant::now).elapsed().as_secs_f64() * 1e3
    }
}

/// A `redis-server` child on a free port, stopped on drop.
struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `None` (the test is skipped) when redis-server is not installed, unless
/// `CI` is set: there it must be.
fn start(extra: &[&str]) -> Option<Server> {
    start_on(free_port(), extra)
}

fn start_on(port: u16, extra: &[&str]) -> Option<Server> {
    let mut cmd = Command::new("redis-server");
    cmd.args([
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
    ])
    .args(extra)
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    let child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) if std::env::var_os("CI").is_none() => {
            eprintln!(
                "skipped: redis-server not runnable ({e}); scripts/tools.sh redis installs it"
            );
            return None;
        }
        Err(e) => panic!("redis-server: {e}"),
    };
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some(Server { child, port });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("redis-server did not start on {port}");
}

pub(super) fn prefix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("t{}_{nanos}", std::process::id())
}

fn store(url: &str) -> RedisStore<Tokio> {
    let spec = compiled_spec().unwrap();
    RedisStore::new(spec, RedisUrl::parse(url).unwrap(), 2_000, Tokio::default())
}

/// A store on `server` under a prefix of its own, and that prefix.
fn prefixed_store(server: &Server) -> (RedisStore<Tokio>, String) {
    let prefix = prefix();
    let url = format!("redis://127.0.0.1:{}?prefix={prefix}", server.port);
    (store(&url), prefix)
}

/// The tracker fixture's deltas, received at `at`.
fn tracker_deltas_at(at: Millis) -> Vec<EntityDelta> {
    let spec = compiled_spec().unwrap();
    aggregate(
        spec,
        &receive(TRACKER.as_bytes(), at, &Default::default()).unwrap(),
        None,
    )
}

pub(super) const POOL: PoolLimits = PoolLimits {
    max_idle: 4,
    max_idle_ms: 60_000,
};

fn pooled(url: &str) -> RedisStore<Tokio> {
    let spec = compiled_spec().unwrap();
    RedisStore::pooled(
        spec,
        RedisUrl::parse(url).unwrap(),
        2_000,
        Tokio::default(),
        POOL,
    )
}

pub(super) async fn redis_cli(port: u16, args: &[&str]) -> String {
    let out = tokio::process::Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .await
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[tokio::test]
async fn deltas_apply_once_and_read_back_like_the_memory_store() {
    let Some(server) = start(&[]) else { return };
    let spec = compiled_spec().unwrap();
    let now = parse_rfc3339("2026-11-22T10:00:00Z").unwrap();
    let redis = store(&format!(
        "redis://127.0.0.1:{}?prefix={}",
        server.port,
        prefix()
    ));
    let memory = MemoryStore::new(spec);
    for body in [TRACKER, SEED] {
        let batch = receive(body.as_bytes(), now, &Default::default()).unwrap();
        let deltas = aggregate(spec, &batch, None);
        assert!(!deltas.is_empty());
        let applied = redis.apply(&deltas).await.unwrap();
        assert!(applied.iter().all(|a| *a == Applied::Applied));
        memory.apply(&deltas).await.unwrap();
        // The same batch again changes nothing.
        let again = redis.apply(&deltas).await.unwrap();
        assert!(again.iter().all(|a| *a == Applied::Duplicate), "{again:?}");
    }
    let keys = [
        EntityKey::new("user", "cid-tracker-1"),
        EntityKey::new("user", "cid-seed-1"),
        EntityKey::new("product", "prod-7"),
        EntityKey::new("user", "nobody"),
    ];
    let from_redis = redis.load(&EntityRead::all_of(&keys)).await.unwrap();
    let from_memory = memory.load(&EntityRead::all_of(&keys)).await.unwrap();
    for ((key, r), m) in keys.iter().zip(&from_redis).zip(&from_memory) {
        let r = read_features(spec, &key.entity, r, None, now).unwrap();
        let m = read_features(spec, &key.entity, m, None, now).unwrap();
        assert_eq!(r, m, "{key:?}");
    }
}

/// The applies (`EVALSHA` and `EVAL` calls) the server has run so far.
async fn script_calls(port: u16) -> u64 {
    redis_cli(port, &["info", "commandstats"])
        .await
        .lines()
        .filter(|l| l.starts_with("cmdstat_evalsha:") || l.starts_with("cmdstat_eval:"))
        .filter_map(|l| {
            l.split("calls=")
                .nth(1)?
                .split(',')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

#[tokio::test]
async fn a_delivery_of_batches_is_one_script_call_per_entity_and_a_regrouped_one_counts_once() {
    let Some(server) = start(&[]) else { return };
    let (redis, _) = prefixed_store(&server);
    // The script loaded, so no EVALSHA falls back to EVAL.
    redis_cli(
        server.port,
        &["script", "load", freshet_core::encode::redis::APPLY_SCRIPT],
    )
    .await;
    assert_a_delivery_folds_and_a_regrouped_one_counts_once(&redis, || script_calls(server.port))
        .await;
}

#[tokio::test]
async fn noscript_falls_back_to_eval() {
    let Some(server) = start(&[]) else { return };
    let spec = compiled_spec().unwrap();
    let now = parse_rfc3339("2026-11-22T10:00:00Z").unwrap();
    let redis = store(&format!(
        "redis://127.0.0.1:{}?prefix={}",
        server.port,
        prefix()
    ));
    assert_eq!(redis_cli(server.port, &["SCRIPT", "FLUSH"]).await, "OK");
    let batch = receive(TRACKER.as_bytes(), now, &Default::default()).unwrap();
    let deltas = aggregate(spec, &batch, None);
    let applied = redis.apply(&deltas).await.unwrap();
    assert!(applied.iter().all(|a| *a == Applied::Applied));
}

#[tokio::test]
async fn auth_and_select_come_from_the_url() {
    let Some(server) = start(&["--requirepass", "s3cret"]) else {
        return;
    };
    let spec = compiled_spec().unwrap();
    let now = parse_rfc3339("2026-11-22T10:00:00Z").unwrap();
    let batch = receive(TRACKER.as_bytes(), now, &Default::default()).unwrap();
    let deltas = aggregate(spec, &batch, None);

    let wrong = store(&format!("redis://:nope@127.0.0.1:{}/3", server.port));
    let e = wrong.apply(&deltas).await.unwrap_err();
    // Redis answers WRONGPASS, or closes an unauthenticated connection
    // that sends a large command: either way a store error, so a 503.
    assert!(
        matches!(e, StoreError::Server(_) | StoreError::Io(_)),
        "{e}"
    );
    assert!(!e.to_string().contains("nope"));

    let right = store(&format!(
        "redis://default:s3cret@127.0.0.1:{}/3",
        server.port
    ));
    right.apply(&deltas).await.unwrap();
    let in_db3 = redis_cli(
        server.port,
        &["-a", "s3cret", "-n", "3", "--no-auth-warning", "DBSIZE"],
    )
    .await;
    assert_ne!(in_db3, "0");
    let in_db0 = redis_cli(
        server.port,
        &["-a", "s3cret", "-n", "0", "--no-auth-warning", "DBSIZE"],
    )
    .await;
    assert_eq!(in_db0, "0");
}

#[tokio::test]
async fn a_silent_server_times_out_and_a_closed_port_fails_fast() {
    // Accepts, then never answers.
    let (port, _hold) = silent_server().await;
    let spec = compiled_spec().unwrap();
    let silent = RedisStore::new(
        spec,
        RedisUrl::parse(&format!("redis://127.0.0.1:{port}")).unwrap(),
        150,
        Tokio::default(),
    );
    let e = silent
        .load(&EntityRead::all_of(&[EntityKey::new("user", "x")]))
        .await
        .unwrap_err();
    assert_eq!(e, StoreError::Timeout { ms: 150 });

    let closed = store(&format!("redis://127.0.0.1:{}", free_port()));
    let e = closed
        .load(&EntityRead::all_of(&[EntityKey::new("user", "x")]))
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Io(_)), "{e}");
}

/// The tracker fixture's deltas, received at a fixed time.
fn tracker_deltas() -> Vec<EntityDelta> {
    tracker_deltas_at(parse_rfc3339("2026-11-22T10:00:00Z").unwrap())
}

async fn pageviews(store: &RedisStore<Tokio>, id: &str) -> serde_json::Value {
    let spec = compiled_spec().unwrap();
    let now = parse_rfc3339("2026-11-22T10:00:00Z").unwrap();
    let key = EntityKey::new("user", id);
    let names = vec!["pageviews".to_owned()];
    let doc = store
        .load(&[EntityRead::new(key.clone(), Some(names.clone()))])
        .await
        .unwrap()
        .pop()
        .unwrap();
    let values = read_features(spec, "user", &doc, Some(&names), now).unwrap();
    serde_json::to_value(&values).unwrap()["pageviews"]["value"].clone()
}

#[tokio::test]
async fn a_pooled_connection_is_reused_and_stays_authenticated() {
    let Some(server) = start(&["--requirepass", "s3cret"]) else {
        return;
    };
    let redis = pooled(&format!(
        "redis://default:s3cret@127.0.0.1:{}/3?prefix={}",
        server.port,
        prefix()
    ));
    let deltas = tracker_deltas();
    redis.apply(&deltas).await.unwrap();
    assert_eq!(redis.idle_connections(), 1);
    // Later exchanges skip AUTH/SELECT on the same connection and still
    // reach db 3: the duplicate is recognised there.
    let again = redis.apply(&deltas).await.unwrap();
    assert!(again.iter().all(|a| *a == Applied::Duplicate), "{again:?}");
    assert_eq!(
        pageviews(&redis, "cid-tracker-1").await,
        serde_json::json!(1)
    );
    assert_eq!(redis.connector.connects.get(), 1);
    assert_eq!(redis.idle_connections(), 1);
}

#[tokio::test]
async fn concurrent_exchanges_never_share_a_connection() {
    let Some(server) = start(&[]) else { return };
    let redis = pooled(&format!(
        "redis://127.0.0.1:{}?prefix={}",
        server.port,
        prefix()
    ));
    let deltas = tracker_deltas();
    let (a, b, c) = tokio::join!(
        redis.apply(&deltas),
        pageviews(&redis, "cid-tracker-1"),
        redis.apply(&deltas),
    );
    // One of the two applies wins, the other is the duplicate.
    let mut outcomes = [a.unwrap()[0], c.unwrap()[0]];
    outcomes.sort_by_key(|o| *o == Applied::Duplicate);
    assert_eq!(outcomes, [Applied::Applied, Applied::Duplicate]);
    assert!(
        b == serde_json::json!(0) || b == serde_json::json!(1),
        "{b}"
    );
    assert_eq!(redis.connector.connects.get(), 3);
    assert_eq!(redis.idle_connections(), 3);
    // Taken one at a time afterwards, one connection serves.
    assert_eq!(
        pageviews(&redis, "cid-tracker-1").await,
        serde_json::json!(1)
    );
    assert_eq!(redis.connector.connects.get(), 3);
}

#[tokio::test]
async fn a_killed_pooled_connection_is_replaced_without_double_counting() {
    let Some(server) = start(&[]) else { return };
    let redis = pooled(&format!(
        "redis://127.0.0.1:{}?prefix={}",
        server.port,
        prefix()
    ));
    let deltas = tracker_deltas();
    redis.apply(&deltas).await.unwrap();
    assert_eq!(redis.idle_connections(), 1);
    // The server closes every client connection, the pooled one included.
    redis_cli(server.port, &["CLIENT", "KILL", "TYPE", "normal"]).await;
    let again = redis.apply(&deltas).await.unwrap();
    assert!(again.iter().all(|a| *a == Applied::Duplicate), "{again:?}");
    assert_eq!(redis.connector.connects.get(), 2);
    assert_eq!(
        pageviews(&redis, "cid-tracker-1").await,
        serde_json::json!(1)
    );
}

#[tokio::test]
async fn a_restarted_server_fails_once_then_serves_on_a_new_connection() {
    let port = free_port();
    let Some(server) = start_on(port, &[]) else {
        return;
    };
    let redis = pooled(&format!("redis://127.0.0.1:{port}?prefix={}", prefix()));
    let deltas = tracker_deltas();
    redis.apply(&deltas).await.unwrap();
    drop(server);
    // Down: the pooled connection is dead and no new one opens.
    let e = redis.apply(&deltas).await.unwrap_err();
    assert!(matches!(e, StoreError::Io(_)), "{e}");
    assert_eq!(redis.idle_connections(), 0);
    // Back (empty: it saved nothing): the next exchange connects anew.
    let _server = start_on(port, &[]).unwrap();
    let applied = redis.apply(&deltas).await.unwrap();
    assert!(applied.iter().all(|a| *a == Applied::Applied));
    assert_eq!(redis.idle_connections(), 1);
}

#[tokio::test]
async fn a_timed_out_exchange_drops_its_connection() {
    // Accepts, then never answers.
    let (port, _hold) = silent_server().await;
    let spec = compiled_spec().unwrap();
    let silent = RedisStore::pooled(
        spec,
        RedisUrl::parse(&format!("redis://127.0.0.1:{port}")).unwrap(),
        100,
        Tokio::default(),
        POOL,
    );
    for _ in 0..2 {
        let e = silent.apply(&tracker_deltas()).await.unwrap_err();
        assert_eq!(e, StoreError::Timeout { ms: 100 });
        assert_eq!(silent.idle_connections(), 0);
    }
    // Each exchange opened its own: the timed-out one was not reused.
    assert_eq!(silent.connector.connects.get(), 2);
}

#[tokio::test]
async fn a_read_asks_only_for_the_named_features() {
    let Some(server) = start(&[]) else { return };
    let spec = compiled_spec().unwrap();
    let now = parse_rfc3339("2026-11-22T10:00:00Z").unwrap();
    let redis = store(&format!(
        "redis://127.0.0.1:{}?prefix={}",
        server.port,
        prefix()
    ));
    redis.apply(&tracker_deltas()).await.unwrap();
    let key = EntityKey::new("user", "cid-tracker-1");
    let all = redis
        .load(&[EntityRead::new(key.clone(), None)])
        .await
        .unwrap()
        .pop()
        .unwrap();
    let names = vec!["pageviews".to_owned()];
    let some = redis
        .load(&[EntityRead::new(key.clone(), Some(names.clone()))])
        .await
        .unwrap()
        .pop()
        .unwrap();
    // The same values for what was asked, and no set read for the rest.
    assert_eq!(
        read_features(spec, "user", &some, Some(&names), now).unwrap(),
        read_features(spec, "user", &all, Some(&names), now).unwrap()
    );
    let set_key = spec
        .lookup("user", "recent_products")
        .unwrap()
        .key()
        .to_owned();
    assert!(all.features.contains_key(&set_key), "{all:?}");
    assert!(!some.features.contains_key(&set_key), "{some:?}");
}

#[tokio::test]
async fn drift_summaries_add_up_across_hours_and_a_corrupt_one_is_named() {
    use freshet_core::drift::Summary;
    use freshet_core::time::HOUR;
    let Some(server) = start(&[]) else { return };
    let prefix = prefix();
    let redis = store(&format!(
        "redis://127.0.0.1:{}?prefix={prefix}",
        server.port
    ));
    let now = parse_rfc3339("2026-11-22T10:30:00Z").unwrap();
    let summary = |values: &[serde_json::Value]| {
        let mut s = Summary::default();
        values.iter().for_each(|v| s.add(v));
        s
    };
    let a = summary(&[serde_json::json!(1), serde_json::json!(2.5)]);
    let b = summary(&[
        serde_json::json!(0),
        serde_json::json!(null),
        serde_json::json!(-4),
    ]);
    let c = summary(&[serde_json::json!("prod-1"), serde_json::json!(["x", "y"])]);
    redis
        .add_drift(now - 3 * HOUR, &[("pageviews@1".into(), a.clone())])
        .await
        .unwrap();
    redis
        .add_drift(
            now,
            &[
                ("pageviews@1".into(), b.clone()),
                ("last_interacted_product@1".into(), c.clone()),
            ],
        )
        .await
        .unwrap();
    // 30 hours ago: outside `--since 24h`.
    redis
        .add_drift(now - 30 * HOUR, &[("pageviews@1".into(), b.clone())])
        .await
        .unwrap();
    let features = vec![
        "pageviews@1".to_owned(),
        "last_interacted_product@1".to_owned(),
        "searches@1".to_owned(),
    ];
    let live = redis
        .load_drift(&features, now - 24 * HOUR, now)
        .await
        .unwrap();
    let mut expected = a.clone();
    expected.merge(&b);
    assert_eq!(
        live[0]
            .as_ref()
            .map(|s| (s.count, s.numbers, s.nulls, s.min, s.max)),
        Ok((5, 4, 1, Some(-4.0), Some(2.5)))
    );
    assert_eq!(
        live[0].as_ref().map(|s| s.positive.clone()),
        Ok(expected.positive)
    );
    assert_eq!(live[1], Ok(c));
    assert_eq!(live[2], Ok(Summary::default()));
    let ttl = redis_cli(
        server.port,
        &["TTL", &format!("{prefix}:drift:{{pageviews@1}}:2026112210")],
    )
    .await;
    assert!(ttl.parse::<i64>().unwrap() > 7 * 24 * 3600, "{ttl}");
    // A field someone broke, and a key of the wrong type: reported, not a crash.
    redis_cli(
        server.port,
        &[
            "HSET",
            &format!("{prefix}:drift:{{pageviews@1}}:2026112210"),
            "n",
            "many",
        ],
    )
    .await;
    redis_cli(
        server.port,
        &[
            "SET",
            &format!("{prefix}:drift:{{searches@1}}:2026112210"),
            "x",
        ],
    )
    .await;
    let live = redis
        .load_drift(&features, now - 24 * HOUR, now)
        .await
        .unwrap();
    assert!(
        live[0].as_ref().is_err_and(|e| e.contains("field `n`")),
        "{:?}",
        live[0]
    );
    assert!(live[1].is_ok());
    assert!(
        live[2].as_ref().is_err_and(|e| e.contains("WRONGTYPE")),
        "{:?}",
        live[2]
    );
}

/// The end-of-visit beacon: applied, its answer never read, and the same
/// batch resent on a return two days later counts once. The entity keeps
/// its markers grouped by the day they were received, nine days or more
/// (past [`BATCH_MARKER_TTL`], the last moment the edge takes any of their
/// batch's events), dropped on the tenth; a marker of the layouts before
/// still counts.
#[tokio::test]
async fn a_batch_resent_two_days_later_counts_once() {
    use freshet_core::encode::redis::EntityKeys;
    use freshet_core::state::BATCH_MARKER_TTL;
    use freshet_core::time::DAY;
    let Some(server) = start(&[]) else { return };
    let spec = compiled_spec().unwrap();
    let (redis, prefix) = prefixed_store(&server);
    let now = parse_rfc3339("2026-11-22T10:00:00Z").unwrap();
    let deltas = tracker_deltas_at;
    let first = deltas(now);
    let applied = redis.apply(&first).await.unwrap();
    assert!(
        applied.iter().all(|a| *a == Applied::Applied),
        "{applied:?}"
    );
    let keys = [EntityKey::new("user", "cid-tracker-1")];
    let state = || async { redis.load(&EntityRead::all_of(&keys)).await.unwrap() };
    let before = state().await;

    let later = deltas(now + 2 * DAY);
    assert_eq!(
        later.len(),
        first.len(),
        "two days on, every event is still taken"
    );
    let again = redis.apply(&later).await.unwrap();
    for (d, a) in later.iter().zip(&again) {
        // A delta that merges idempotently carries no marker: applied again.
        let expected = if d.needs_marker(spec) {
            Applied::Duplicate
        } else {
            Applied::Applied
        };
        assert_eq!(*a, expected, "{}/{}", d.entity, d.id);
    }
    assert_eq!(state().await, before, "counted once");

    let markers = EntityKeys {
        prefix: &prefix,
        entity: "user",
        id: "cid-tracker-1",
    }
    .batch_markers();
    assert_eq!(
        redis_cli(server.port, &["STRLEN", &markers]).await,
        "12",
        "one day's group: its day and count, then the one 8-byte marker"
    );
    const _: () = assert!(9 * DAY > BATCH_MARKER_TTL);

    // Ten days on, the write of that day drops the old group (the edge would
    // refuse every event of a copy sent then as too old; here the deltas
    // are applied as if it had not, to show the window ends).
    let late = now + 10 * DAY;
    let mut other = first.clone();
    for d in &mut other {
        d.batch_id = "b-ten-days-on".into();
        d.received_at = late;
    }
    redis.apply(&other).await.unwrap();
    assert_eq!(
        redis_cli(server.port, &["STRLEN", &markers]).await,
        "12",
        "only the new day's group is left"
    );
    let mut expired = first.clone();
    for d in &mut expired {
        d.received_at = late;
    }
    let applied = redis.apply(&expired).await.unwrap();
    assert!(
        applied.iter().all(|a| *a == Applied::Applied),
        "{applied:?}"
    );

    // A batch applied before the zset layout: its string marker still counts.
    let mut old_layout = first.clone();
    old_layout.retain(|d| d.entity == "user");
    for d in &mut old_layout {
        d.batch_id = "b-before-the-upgrade".into();
    }
    let legacy = format!("{prefix}:{{user:cid-tracker-1}}:b:b-before-the-upgrade");
    assert_eq!(
        redis_cli(server.port, &["SET", &legacy, "1", "EX", "86400"]).await,
        "OK"
    );
    let applied = redis.apply(&old_layout).await.unwrap();
    assert_eq!(applied, vec![Applied::Duplicate]);
}

/// A store written before layout 2: the entity's first write in layout 2
/// moves its layout-1 state over (WATCH, read, MULTI/EXEC), then applies,
/// and the values go on from where layout 1 left them.
#[tokio::test]
async fn an_entity_in_layout_1_is_moved_on_its_first_write() {
    let Some(server) = start(&[]) else { return };
    let (redis, prefix) = prefixed_store(&server);
    let now = parse_rfc3339("2026-11-22T10:00:00Z").unwrap();
    let old = format!("{prefix}:{{user:cid-tracker-1}}");
    let t = (now - 1_000).to_string();
    assert_eq!(
        redis_cli(
            server.port,
            &["HSET", &old, "_ts:pageviews@1", &t, "pageviews@1", "5"]
        )
        .await,
        "2"
    );
    let keys = [EntityKey::new("user", "cid-tracker-1")];
    let pageviews = || async {
        let docs = redis.load(&EntityRead::all_of(&keys)).await.unwrap();
        match docs[0].features.get("pageviews@1").map(|s| &s.value) {
            Some(freshet_core::state::Agg::Count(freshet_core::state::Cells::Total(n))) => *n,
            other => panic!("pageviews@1: {other:?}"),
        }
    };
    assert_eq!(pageviews().await, 5, "layout 1 reads as it lies");
    let deltas = tracker_deltas_at(now);
    let added = deltas
        .iter()
        .find(|d| d.entity == "user")
        .and_then(|d| d.updates.get("pageviews@1"))
        .map(|s| match &s.value {
            freshet_core::state::Agg::Count(freshet_core::state::Cells::Total(n)) => *n,
            _ => 0,
        })
        .unwrap_or(0);
    let applied = redis.apply(&deltas).await.unwrap();
    assert!(
        applied.iter().all(|a| *a == Applied::Applied),
        "{applied:?}"
    );
    assert_eq!(pageviews().await, 5 + added, "moved, then applied once");
    assert_eq!(redis_cli(server.port, &["EXISTS", &old]).await, "0");
    let again = redis.apply(&deltas).await.unwrap();
    assert!(again.contains(&Applied::Duplicate), "{again:?}");
    assert_eq!(pageviews().await, 5 + added);
}

/// Layout 1 is read only where layout 2 holds nothing, and not at all once
/// the store carries the layout mark (`freshet migrate` sets it): the mark
/// is trusted, so a layout-1 key left behind then reads as nothing.
#[tokio::test]
async fn a_store_marked_as_layout_2_reads_no_layout_1() {
    let Some(server) = start(&[]) else { return };
    let (redis, prefix) = prefixed_store(&server);
    let now = parse_rfc3339("2026-11-22T10:00:00Z").unwrap();
    let t = (now - 1_000).to_string();
    let old = format!("{prefix}:{{user:cid-left}}");
    redis_cli(
        server.port,
        &["HSET", &old, "_ts:pageviews@1", &t, "pageviews@1", "5"],
    )
    .await;
    redis.apply(&tracker_deltas_at(now)).await.unwrap();
    let keys = [
        EntityKey::new("user", "cid-left"),
        EntityKey::new("user", "cid-tracker-1"),
        EntityKey::new("user", "cid-nobody"),
    ];
    let read = async |store: &RedisStore<Tokio>| -> Vec<bool> {
        let docs = store.load(&EntityRead::all_of(&keys)).await.unwrap();
        docs.iter()
            .map(|d| d.features.contains_key("pageviews@1"))
            .collect()
    };
    assert_eq!(
        read(&redis).await,
        [true, true, false],
        "unmarked: layout 1 read"
    );
    assert_eq!(
        redis_cli(server.port, &["SET", &format!("{prefix}:layout"), "2"]).await,
        "OK"
    );
    let fresh = store(&format!(
        "redis://127.0.0.1:{}?prefix={prefix}",
        server.port
    ));
    assert_eq!(
        read(&fresh).await,
        [false, true, false],
        "marked: layout 2 only"
    );
    // The store that read before the mark learns it on its next read.
    assert_eq!(read(&redis).await, [false, true, false]);
}
