//! The Redis store against a real Redis Cluster (3 masters, 3 replicas on
//! loopback, `scripts/redis-cluster.sh`), each test its own: batches of many
//! entities while slots move and a master fails over, each batch applied
//! until the store takes it and sent again after, then every entity read
//! back and compared with the memory store that applied each batch once.

#![allow(clippy::unwrap_used)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use freshet_core::drift::Summary;
use freshet_core::encode::redis::EntityKeys;
use freshet_core::encode::redis::cluster::key_slot;
use freshet_core::state::EntityDelta;
use freshet_core::time::{DAY, HOUR, format_rfc3339, parse_rfc3339};

use super::integration_tests::{POOL, Tokio, prefix, redis_cli};
use super::{RedisStore, RedisUrl};
use crate::spec::compiled_spec;
use crate::store::memory::MemoryStore;
use crate::store::test_support::{self, assert_reads_as_memory, numbered_batch};
use crate::store::{Applied, FeatureStore};

/// A cluster of six `redis-server`s, stopped on drop.
struct Cluster {
    dir: PathBuf,
    first: u16,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script())
            .arg("down")
            .arg(&self.dir)
            .status();
        if std::thread::panicking() {
            // The nodes' configs and logs, for whoever reads the failure.
            eprintln!("the nodes' logs are kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/redis-cluster.sh")
}

/// Six free ports in a row, and their cluster bus ports (+10000).
fn free_ports() -> u16 {
    let seed = std::process::id() as u64 * 7919
        + SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos() as u64;
    for attempt in 0..200 {
        let first = 20_000 + ((seed + attempt * 37) % 9_000) as u16;
        let free = (0..6).all(|i| {
            TcpListener::bind(("127.0.0.1", first + i)).is_ok()
                && TcpListener::bind(("127.0.0.1", first + i + 10_000)).is_ok()
        });
        if free {
            return first;
        }
    }
    panic!("no six free ports in a row");
}

impl Cluster {
    /// `None` (the test is skipped) without redis-server, unless `CI` is set.
    fn up() -> Option<Self> {
        if Command::new("redis-server")
            .arg("--version")
            .output()
            .is_err()
        {
            assert!(std::env::var_os("CI").is_none(), "redis-server is missing");
            eprintln!("skipped: redis-server not runnable; scripts/tools.sh redis installs it");
            return None;
        }
        let dir = std::env::temp_dir().join(format!("freshet-cluster-{}", prefix()));
        let first = free_ports();
        let cluster = Self { dir, first };
        let status = Command::new("bash")
            .arg(script())
            .arg("up")
            .arg(&cluster.dir)
            .arg(first.to_string())
            .status()
            .unwrap();
        assert!(status.success(), "the cluster did not come up");
        Some(cluster)
    }

    /// What the nodes logged of failovers and elections.
    fn failover_log(&self) -> String {
        let mut out = String::new();
        for port in self.ports() {
            let log = std::fs::read_to_string(self.dir.join(format!("node-{port}.log")))
                .unwrap_or_default();
            for line in log
                .lines()
                .filter(|l| l.contains("ailover") || l.contains("lection"))
            {
                out.push_str(&format!("{port}: {line}\n"));
            }
        }
        out
    }

    /// A store on the cluster under a prefix of its own; two seeds.
    fn store(&self) -> RedisStore<Tokio> {
        let url = format!(
            "redis+cluster://127.0.0.1:{},127.0.0.1:{}?prefix={}",
            self.first,
            self.first + 1,
            prefix()
        );
        RedisStore::pooled(
            compiled_spec().unwrap(),
            RedisUrl::parse(&url).unwrap(),
            2_000,
            Tokio::default(),
            POOL,
        )
    }

    fn ports(&self) -> impl Iterator<Item = u16> {
        self.first..self.first + 6
    }

    async fn id(&self, port: u16) -> String {
        redis_cli(port, &["cluster", "myid"]).await
    }

    /// The master serving `slot` now, as the nodes say (`CLUSTER NODES`).
    async fn master_of(&self, slot: u16) -> u16 {
        for port in self.ports() {
            let nodes = redis_cli(port, &["cluster", "nodes"]).await;
            let me = nodes.lines().find(|l| l.contains("myself")).unwrap();
            if !me.contains("master") {
                continue;
            }
            // Fields 9 on: `a-b`, `a`, or `[a->-id]` while migrating.
            let owns = me.split_whitespace().skip(8).any(|range| {
                let mut ends = range.split('-');
                match (ends.next().and_then(|a| a.parse::<u16>().ok()), ends.next()) {
                    (Some(a), None) => a == slot,
                    (Some(a), Some(b)) => b.parse::<u16>().is_ok_and(|b| a <= slot && slot <= b),
                    _ => false,
                }
            });
            if owns {
                return port;
            }
        }
        panic!("no master serves slot {slot}");
    }
}

const NOW: &str = "2026-11-22T10:00:00Z";

async fn deliver(store: &RedisStore<Tokio>, deltas: &[EntityDelta]) -> usize {
    test_support::deliver(store, deltas, 60, 100).await
}

/// The batches sent, each with when the store took it and in how many tries.
#[derive(Default)]
struct Sent {
    batches: Vec<Vec<EntityDelta>>,
    taken: Vec<(SystemTime, usize)>,
}

impl Sent {
    fn len(&self) -> usize {
        self.batches.len()
    }

    fn push(&mut self, deltas: Vec<EntityDelta>, tries: usize) {
        self.batches.push(deltas);
        self.taken.push((SystemTime::now(), tries));
    }
}

/// Every batch is in the store once: sent again, none counts (a batch
/// that does was lost, and is named with when the store took it, beside
/// what the nodes logged of failovers); then every entity reads as in
/// `memory`.
async fn assert_same(
    store: &RedisStore<Tokio>,
    memory: &MemoryStore,
    sent: &Sent,
    cluster: &Cluster,
) {
    let mut lost = Vec::new();
    for (k, (deltas, (at, tries))) in sent.batches.iter().zip(&sent.taken).enumerate() {
        let again = store.apply(deltas).await.unwrap();
        let gone: Vec<&str> = deltas
            .iter()
            .zip(&again)
            .filter(|(_, a)| **a != Applied::Duplicate)
            .map(|(d, _)| d.id.as_str())
            .collect();
        if !gone.is_empty() {
            let ms = at.duration_since(UNIX_EPOCH).unwrap().as_millis() as i64;
            let at = format_rfc3339(ms);
            lost.push(format!("batch {k} (taken {at}, {tries} tries): {gone:?}"));
        }
    }
    assert!(
        lost.is_empty(),
        "{} batches lost, then sent again:\n{}\nthe nodes' failovers:\n{}",
        lost.len(),
        lost.join("\n"),
        cluster.failover_log()
    );
    assert_reads_as_memory(store, memory, &sent.batches, parse_rfc3339(NOW).unwrap()).await;
}

/// Sends batches `range` through `store` (and once each to `memory`) while
/// `busy` says the cluster is changing, and at least `min` of them.
async fn traffic(
    store: &RedisStore<Tokio>,
    memory: &MemoryStore,
    sent: &mut Sent,
    min: usize,
    mut busy: impl FnMut() -> bool,
) -> usize {
    let now = parse_rfc3339(NOW).unwrap();
    let mut tries = 0;
    let start = sent.len();
    while sent.len() < start + min || busy() {
        let deltas = numbered_batch(sent.len(), now);
        let took = deliver(store, &deltas).await;
        tries += took;
        memory.apply(&deltas).await.unwrap();
        sent.push(deltas, took);
        assert!(
            sent.len() < start + 20_000,
            "the cluster change never ended"
        );
    }
    tries - (sent.len() - start)
}

#[tokio::test]
async fn a_cluster_applies_and_reads_as_one_server_does() {
    let Some(cluster) = Cluster::up() else { return };
    let store = cluster.store();
    let memory = MemoryStore::new(compiled_spec().unwrap());
    let mut sent = Sent::default();
    let retries = traffic(&store, &memory, &mut sent, 120, || false).await;
    assert_eq!(retries, 0);
    assert_same(&store, &memory, &sent, &cluster).await;
    // The entities are spread over the three masters.
    let mut masters = Vec::new();
    for d in sent.batches.iter().flatten().take(60) {
        let keys = EntityKeys {
            prefix: "x",
            entity: &d.entity,
            id: &d.id,
        };
        masters.push(cluster.master_of(key_slot(keys.hash().as_bytes())).await);
    }
    masters.sort_unstable();
    masters.dedup();
    assert_eq!(masters.len(), 3, "{masters:?}");
    // Drift summaries (a key per feature and hour, in their own slots)
    // add up as on one server.
    let now = parse_rfc3339(NOW).unwrap();
    let mut one = Summary::default();
    one.add(&serde_json::json!(2));
    let features: Vec<String> = ["pageviews@1", "searches@1", "last_interacted_product@1"]
        .map(str::to_owned)
        .into();
    let adds: Vec<(String, Summary)> = features.iter().map(|f| (f.clone(), one.clone())).collect();
    store.add_drift(now - HOUR, &adds).await.unwrap();
    store.add_drift(now, &adds).await.unwrap();
    let live = store.load_drift(&features, now - DAY, now).await.unwrap();
    for summary in live {
        assert_eq!(summary.map(|s| s.count), Ok(2));
    }
}

#[tokio::test]
async fn slots_moving_under_traffic_lose_and_double_nothing() {
    let Some(cluster) = Cluster::up() else { return };
    let store = cluster.store();
    let memory = MemoryStore::new(compiled_spec().unwrap());
    let mut sent = Sent::default();
    traffic(&store, &memory, &mut sent, 40, || false).await;

    // One slot by hand, half-way: the source answers ASK for the keys that
    // have gone, and refuses a script over keys of both nodes (TRYAGAIN)
    // until the slot is wholly moved.
    // An entity the next batch writes, written before.
    let next = numbered_batch(sent.len(), parse_rfc3339(NOW).unwrap());
    let keys = EntityKeys {
        prefix: "x",
        entity: &next[0].entity,
        id: &next[0].id,
    };
    let slot = key_slot(keys.hash().as_bytes());
    let from = cluster.master_of(slot).await;
    let to = cluster.ports().take(3).find(|p| *p != from).unwrap();
    let (from_id, to_id) = (cluster.id(from).await, cluster.id(to).await);
    let s = slot.to_string();
    redis_cli(to, &["cluster", "setslot", &s, "importing", &from_id]).await;
    redis_cli(from, &["cluster", "setslot", &s, "migrating", &to_id]).await;
    let moving = redis_cli(from, &["cluster", "getkeysinslot", &s, "100"]).await;
    let moving: Vec<&str> = moving.lines().collect();
    assert!(!moving.is_empty());
    let to_port = to.to_string();
    let mut migrate = vec!["migrate", "127.0.0.1", &to_port, "", "0", "5000", "keys"];
    migrate.extend(moving.iter().copied());
    assert_eq!(redis_cli(from, &migrate).await, "OK");
    assert_reads_as_memory(
        &store,
        &memory,
        std::slice::from_ref(&next),
        parse_rfc3339(NOW).unwrap(),
    )
    .await;
    assert!(store.cluster_stats().unwrap().asked > 0);
    // The next batch writes that entity: refused (TRYAGAIN) until the slot
    // is handed over, which happens once the store has been refused.
    let masters: Vec<u16> = cluster.ports().take(3).collect();
    let hand_over = async {
        for _ in 0..500 {
            if store.cluster_stats().unwrap().retried > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        for port in masters {
            redis_cli(port, &["cluster", "setslot", &s, "node", &to_id]).await;
        }
    };
    let (tries, ()) = futures_util::future::join(deliver(&store, &next), hand_over).await;
    assert_eq!(tries, 1, "the store waited the slot out itself");
    memory.apply(&next).await.unwrap();
    sent.push(next, tries);
    traffic(&store, &memory, &mut sent, 40, || false).await;
    let stats = store.cluster_stats().unwrap();
    assert!(stats.retried > 0 && stats.moved > 0, "{stats:?}");

    // Then a reshard of 1,000 slots by redis-cli while batches flow.
    let mut reshard = Command::new("redis-cli")
        .args([
            "--cluster",
            "reshard",
            &format!("127.0.0.1:{}", cluster.first),
        ])
        .args(["--cluster-from", &cluster.id(to).await])
        .args(["--cluster-to", &cluster.id(from).await])
        .args([
            "--cluster-slots",
            "1000",
            "--cluster-yes",
            "--cluster-pipeline",
            "1",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let before = store.cluster_stats().unwrap();
    traffic(&store, &memory, &mut sent, 100, || {
        reshard.try_wait().unwrap().is_none()
    })
    .await;
    assert!(reshard.wait().unwrap().success());
    traffic(&store, &memory, &mut sent, 40, || false).await;
    let after = store.cluster_stats().unwrap();
    assert!(after.moved > before.moved, "{before:?} → {after:?}");
    eprintln!("{} batches; {after:?}", sent.len());
    assert_same(&store, &memory, &sent, &cluster).await;
}

#[tokio::test]
async fn a_master_failing_over_under_traffic_loses_and_doubles_nothing() {
    let Some(cluster) = Cluster::up() else { return };
    let store = cluster.store();
    let memory = MemoryStore::new(compiled_spec().unwrap());
    let mut sent = Sent::default();
    traffic(&store, &memory, &mut sent, 40, || false).await;
    // A replica of the first master takes over (a maintenance window's
    // failover: the replica catches up first, so nothing acknowledged is lost).
    let master_id = cluster.id(cluster.first).await;
    let mut replica = None;
    for port in cluster.ports() {
        let nodes = redis_cli(port, &["cluster", "nodes"]).await;
        let me = nodes
            .lines()
            .find(|l| l.contains("myself"))
            .unwrap()
            .to_owned();
        if me.contains("slave") && me.contains(&master_id) {
            replica = Some(port);
        }
    }
    let replica = replica.expect("the first master has a replica");
    let is_master = || {
        let role = Command::new("redis-cli")
            .args(["-p", &replica.to_string(), "role"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&role.stdout).starts_with("master")
    };
    let ask = || {
        let out = Command::new("redis-cli")
            .args(["-p", &replica.to_string(), "cluster", "failover"])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "OK");
    };
    ask();
    // A manual failover that has not happened within its own timeout
    // (5 s, CLUSTER_MF_TIMEOUT: a replica that could not catch up in time
    // on a loaded machine) is asked for again, as an operator would.
    let (started, mut asked_at, mut asks) = (Instant::now(), Instant::now(), 1);
    traffic(&store, &memory, &mut sent, 60, || {
        if is_master() {
            return false;
        }
        if asked_at.elapsed() > Duration::from_secs(6) {
            ask();
            (asked_at, asks) = (Instant::now(), asks + 1);
        }
        started.elapsed() < Duration::from_secs(60)
    })
    .await;
    assert!(
        is_master(),
        "the replica never took over ({asks} requests in 60 s):\n{}",
        cluster.failover_log()
    );
    traffic(&store, &memory, &mut sent, 60, || false).await;
    let stats = store.cluster_stats().unwrap();
    eprintln!("{} batches; {stats:?}", sent.len());
    assert!(stats.moved + stats.retried > 0, "{stats:?}");
    assert_same(&store, &memory, &sent, &cluster).await;
}
