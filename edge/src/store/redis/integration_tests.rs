//! The Redis store against a real `redis-server`, started on a free port for
//! each test with a random key prefix, over tokio's TCP stream: the same
//! code the worker runs over its socket.

#![allow(clippy::unwrap_used)]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use freshet_core::aggregate::aggregate;
use freshet_core::read::read_features;
use freshet_core::state::Applied;
use freshet_core::time::parse_rfc3339;
use freshet_core::validate::receive;
use tokio::net::TcpStream;

use super::{Connector, RedisStore, RedisUrl};
use crate::spec::compiled_spec;
use crate::store::memory::MemoryStore;
use crate::store::{EntityKey, FeatureStore, StoreError};

const TRACKER: &str = include_str!("../../../tests/fixtures/tracker.json");
const SEED: &str = include_str!("../../../tests/fixtures/seed.json");

#[derive(Debug)]
struct Tokio;

impl Connector for Tokio {
    type Conn = TcpStream;
    async fn connect(&self, url: &RedisUrl) -> std::io::Result<TcpStream> {
        TcpStream::connect((url.host.as_str(), url.port)).await
    }
    fn sleep(&self, ms: u64) -> impl Future<Output = ()> {
        tokio::time::sleep(Duration::from_millis(ms))
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

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `None` (the test is skipped) when redis-server is not installed, unless
/// `CI` is set: there it must be.
fn start(extra: &[&str]) -> Option<Server> {
    let port = free_port();
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

fn prefix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("t{}_{nanos}", std::process::id())
}

fn store(url: &str) -> RedisStore<Tokio> {
    let spec = compiled_spec().unwrap();
    RedisStore::new(spec, RedisUrl::parse(url).unwrap(), 2_000, Tokio)
}

async fn redis_cli(port: u16, args: &[&str]) -> String {
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
    let from_redis = redis.load(&keys).await.unwrap();
    let from_memory = memory.load(&keys).await.unwrap();
    for ((key, r), m) in keys.iter().zip(&from_redis).zip(&from_memory) {
        let r = read_features(spec, &key.entity, r, None, now).unwrap();
        let m = read_features(spec, &key.entity, m, None, now).unwrap();
        assert_eq!(r, m, "{key:?}");
    }
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
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    // Accepts, then never answers.
    let _hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let spec = compiled_spec().unwrap();
    let silent = RedisStore::new(
        spec,
        RedisUrl::parse(&format!("redis://127.0.0.1:{port}")).unwrap(),
        150,
        Tokio,
    );
    let e = silent
        .load(&[EntityKey::new("user", "x")])
        .await
        .unwrap_err();
    assert_eq!(e, StoreError::Timeout { ms: 150 });

    let closed = store(&format!("redis://127.0.0.1:{}", free_port()));
    let e = closed
        .load(&[EntityKey::new("user", "x")])
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Io(_)), "{e}");
}
