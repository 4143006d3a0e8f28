//! The MongoDB store against a real wire-protocol server (SecantusDB from
//! PyPI, installed by `scripts/tools.sh mongo`), started on a free port with
//! authentication on, over tokio's TCP stream: the same code the worker runs
//! over its socket. Skipped when the server is not installed, unless
//! `FRESHET_REQUIRE_MONGO` is set (scripts/test-mongo.sh sets it).

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bson::{Bson, Document, doc};
use freshet_core::aggregate::aggregate;
use freshet_core::read::read_features;
use freshet_core::state::{Applied, EntityDelta};
use freshet_core::time::parse_rfc3339;
use freshet_core::validate::receive;
use tokio::net::TcpStream;

use super::wire::Message;
use super::{Connector, MongoStore, MongoUrl};
use crate::spec::compiled_spec;
use crate::store::memory::MemoryStore;
use crate::store::test_support::{
    assert_a_delivery_folds_and_a_regrouped_one_counts_once, free_port, silent_server,
};
use crate::store::{EntityKey, EntityRead, FeatureStore, StoreError};

const TRACKER: &str = include_str!("../../../tests/fixtures/tracker.json");
const SEED: &str = include_str!("../../../tests/fixtures/seed.json");

/// tokio's TCP stream and timer; counts the connections it opens.
#[derive(Debug, Default)]
pub(super) struct Tokio {
    connects: std::cell::Cell<usize>,
}

impl Connector for Tokio {
    type Conn = TcpStream;
    async fn connect(&self, host: &str, port: u16, _tls: bool) -> std::io::Result<TcpStream> {
        self.connects.set(self.connects.get() + 1);
        TcpStream::connect((host, port)).await
    }
    fn sleep(&self, ms: u64) -> impl Future<Output = ()> {
        tokio::time::sleep(Duration::from_millis(ms))
    }
    fn now_ms(&self) -> f64 {
        static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        START
            .get_or_init(std::time::Instant::now)
            .elapsed()
            .as_secs_f64()
            * 1e3
    }
}

/// A SecantusDB child on a free port, stopped on drop.
pub(super) struct Server {
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        // SIGTERM, so the storage is checkpointed for the next start.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

pub(super) fn secantusd() -> Option<PathBuf> {
    let path = std::env::var_os("FRESHET_SECANTUSD").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/venv/bin/secantusd-py"),
        PathBuf::from,
    );
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var_os("FRESHET_REQUIRE_MONGO").is_none(),
        "{} is missing; scripts/tools.sh mongo installs it",
        path.display()
    );
    eprintln!("skipped: SecantusDB not installed; scripts/tools.sh mongo installs it");
    None
}

/// A fresh folder for one server's storage.
pub(super) fn storage_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("{tag}-{}-{}", std::process::id(), free_port()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub(super) fn start(bin: &Path, dir: &Path, port: u16, auth: bool) -> Server {
    let mut cmd = Command::new(bin);
    cmd.args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .arg("--storage-path")
        .arg(dir)
        .args(["--standalone", "--log-level", "WARNING"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if auth {
        cmd.arg("--auth");
    }
    let child = cmd.spawn().unwrap();
    let server = Server { child };
    for _ in 0..600 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return server;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("SecantusDB did not start on {port}");
}

fn store(url: &str, timeout_ms: u64) -> MongoStore<Tokio> {
    MongoStore::new(
        compiled_spec().unwrap(),
        MongoUrl::parse(url).unwrap(),
        timeout_ms,
        Tokio::default(),
    )
}

/// Runs raw commands through the store's own handshake.
async fn run(store: &MongoStore<Tokio>, commands: Vec<Document>) -> Vec<Document> {
    let messages: Vec<Message> = commands.into_iter().map(Message::command).collect();
    store
        .exchange(async |conn| store.session(conn, |_| Ok(messages.clone())).await)
        .await
        .unwrap()
}

/// The document `_id` of `collection`, through the store's own handshake.
async fn find_one(store: &MongoStore<Tokio>, db: &str, collection: &str, id: &str) -> Document {
    let found = run(
        store,
        vec![doc! {"find": collection, "filter": {"_id": id}, "$db": db}],
    )
    .await;
    found[0]
        .get_document("cursor")
        .unwrap()
        .get_array("firstBatch")
        .unwrap()[0]
        .as_document()
        .unwrap()
        .clone()
}

fn deltas_of(body: &str) -> Vec<EntityDelta> {
    let spec = compiled_spec().unwrap();
    let now = parse_rfc3339("2026-11-22T10:00:00Z").unwrap();
    let batch = receive(body.as_bytes(), now, &Default::default()).unwrap();
    aggregate(spec, &batch, None)
}

#[tokio::test]
async fn against_a_real_server_with_authentication() {
    let Some(bin) = secantusd() else { return };
    let dir = storage_dir("freshet-mongo");
    let port = free_port();
    let db = format!("t{}", std::process::id());

    // Open first, only to create the user; then again with --auth.
    {
        let _open = start(&bin, &dir, port, false);
        let admin = store(&format!("mongodb://127.0.0.1:{port}/admin"), 10_000);
        let created = run(
            &admin,
            vec![doc! {"createUser": "freshet", "pwd": "s3cret",
            "roles": [{"role": "readWrite", "db": db.as_str()}], "$db": "admin"}],
        )
        .await;
        assert_eq!(created[0].get_f64("ok").ok(), Some(1.0), "{created:?}");
    }
    let _server = start(&bin, &dir, port, true);
    let url = format!("mongodb://freshet:s3cret@127.0.0.1:{port}/{db}?authSource=admin");
    let mongo = store(&url, 10_000);
    let spec = compiled_spec().unwrap();
    let now = parse_rfc3339("2026-11-22T10:00:00Z").unwrap();

    // A wrong password: a clear error without the password, nothing written.
    let wrong = store(
        &format!("mongodb://freshet:hunter2@127.0.0.1:{port}/{db}?authSource=admin"),
        10_000,
    );
    let e = wrong.apply(&deltas_of(TRACKER)).await.unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, StoreError::Server(_)), "{text}");
    assert!(text.contains("authentication failed"), "{text}");
    assert!(
        text.ends_with(
            "MongoDB authentication failed for user \"freshet\" (authSource admin): \
             18 AuthenticationFailed: authentication failed"
        ),
        "{text}"
    );
    assert!(!text.contains("hunter2"), "{text}");

    // Deltas apply once and read back as the memory store has them.
    let memory = MemoryStore::new(spec);
    for body in [TRACKER, SEED] {
        let deltas = deltas_of(body);
        assert!(!deltas.is_empty());
        let applied = mongo.apply(&deltas).await.unwrap();
        assert!(
            applied.iter().all(|a| *a == Applied::Applied),
            "{applied:?}"
        );
        memory.apply(&deltas).await.unwrap();
        let again = mongo.apply(&deltas).await.unwrap();
        assert!(again.iter().all(|a| *a == Applied::Duplicate), "{again:?}");
    }
    // PBKDF2 ran once for every request of the store.
    assert_eq!(mongo.salted_passwords(), 1);
    let keys = [
        EntityKey::new("user", "cid-tracker-1"),
        EntityKey::new("user", "cid-seed-1"),
        EntityKey::new("product", "prod-7"),
        EntityKey::new("user", "nobody"),
        EntityKey::new("user", "cid-seed-1"),
    ];
    let from_mongo = mongo.load(&EntityRead::all_of(&keys)).await.unwrap();
    let from_memory = memory.load(&EntityRead::all_of(&keys)).await.unwrap();
    for ((key, m), mem) in keys.iter().zip(&from_mongo).zip(&from_memory) {
        let m = read_features(spec, &key.entity, m, None, now).unwrap();
        let mem = read_features(spec, &key.entity, mem, None, now).unwrap();
        assert_eq!(m, mem, "{key:?}");
    }

    // Different batches racing to create the same new document: each counts
    // once (a collision on the first insert is not taken for a duplicate).
    // SecantusDB may well serialize these, so this guards the counts more
    // than it provokes the race.
    let racing: Vec<Vec<EntityDelta>> = (0..8)
        .map(|i| {
            deltas_of(&format!(
                r#"{{"batchId":"race-{i}","events":[{{"id":"race-{i}","type":"page_view",
                "timestamp":"2026-11-22T09:59:00Z","clientId":"cid-race","payload":{{}}}}]}}"#
            ))
        })
        .collect();
    let outcomes =
        futures_util::future::join_all(racing.iter().map(|deltas| mongo.apply(deltas))).await;
    for outcome in outcomes {
        assert_eq!(outcome.unwrap(), vec![Applied::Applied]);
    }
    let raced = mongo
        .load(&EntityRead::all_of(&[EntityKey::new("user", "cid-race")]))
        .await
        .unwrap();
    let raced = read_features(spec, "user", &raced[0], None, now).unwrap();
    assert_eq!(raced["pageviews"].value, serde_json::json!(8));

    // `last` and `latest_n` order by time, then event id: here the later
    // click has the smaller id, so an order by id first (BSON fields written
    // in serde_json's sorted order, `id` before `t`) would keep the earlier.
    let click = |id: &str, minute: u32, product: &str| {
        deltas_of(&format!(
            r#"{{"batchId":"order-{id}","events":[{{"id":"{id}","type":"product_click",
            "timestamp":"2026-11-22T09:{minute}:00Z","clientId":"cid-order",
            "payload":{{"productId":"{product}"}}}}]}}"#
        ))
    };
    mongo.apply(&click("z-early", 50, "early")).await.unwrap();
    mongo.apply(&click("a-late", 55, "late")).await.unwrap();
    mongo.apply(&click("m-middle", 52, "middle")).await.unwrap();
    let ordered = mongo
        .load(&EntityRead::all_of(&[EntityKey::new("user", "cid-order")]))
        .await
        .unwrap();
    let ordered = read_features(spec, "user", &ordered[0], None, now).unwrap();
    assert_eq!(
        ordered["last_interacted_product"].value,
        serde_json::json!("late")
    );
    assert_eq!(
        ordered["recent_products"].value,
        serde_json::json!(["late", "middle", "early"])
    );

    // The document is plain: counts are Int64 at `<name>@<version>`.
    let doc = find_one(&mongo, &db, "user_features", "cid-seed-1").await;
    assert_eq!(doc.get("pageviews@1"), Some(&Bson::Int64(1)), "{doc}");
    // One marker, in its day's slot; nothing in the layout before's `_batches`.
    let slots = doc.get_document("_b").unwrap();
    assert_eq!(slots.len(), 1, "{doc}");
    let (_, slot) = slots.iter().next().unwrap();
    assert_eq!(slot.as_array().unwrap().len(), 1, "{doc}");
    assert!(doc.get("_batches").is_none(), "{doc}");

    // Pooled, as in the gateway object: one connection, authenticated once,
    // serves every later exchange with the commands alone.
    let pooled = MongoStore::pooled(
        spec,
        MongoUrl::parse(&url).unwrap(),
        10_000,
        Tokio::default(),
        crate::store::pool::PoolLimits {
            max_idle: 4,
            max_idle_ms: 60_000,
        },
    );
    let tracker = deltas_of(TRACKER);
    for _ in 0..3 {
        let again = pooled.apply(&tracker).await.unwrap();
        assert!(again.iter().all(|a| *a == Applied::Duplicate), "{again:?}");
    }
    let read = pooled.load(&EntityRead::all_of(&keys)).await.unwrap();
    assert_eq!(read, from_mongo);
    assert_eq!(pooled.connector.connects.get(), 1);
    assert_eq!(pooled.idle_connections(), 1);

    // A field never written reads as its default; a field someone broke
    // fails the read, naming the document and the field, as in Redis: a
    // corrupt document is never served as defaults.
    let broke = run(
        &mongo,
        vec![doc! {"update": "user_features", "updates": [
            {"q": {"_id": "cid-race"}, "u": {"$unset": {"pageviews@1": ""}}},
            {"q": {"_id": "cid-order"}, "u": {"$set": {"recent_products@1.1.t": "soon"}}},
        ], "$db": db.as_str()}],
    )
    .await;
    assert_eq!(broke[0].get_i32("nModified").ok(), Some(2), "{broke:?}");
    let unset = mongo
        .load(&EntityRead::all_of(&[EntityKey::new("user", "cid-race")]))
        .await
        .unwrap();
    let unset = read_features(spec, "user", &unset[0], None, now).unwrap();
    assert_eq!(unset["pageviews"].value, serde_json::json!(0));
    let e = mongo
        .load(&EntityRead::all_of(&[EntityKey::new("user", "cid-order")]))
        .await
        .unwrap_err();
    assert_eq!(
        e,
        StoreError::Corrupt(
            "user_features document \"cid-order\": unexpected MongoDB state: \
             field `recent_products@1.1.t` is a string, not an integer"
                .into()
        )
    );
}

#[tokio::test]
async fn a_silent_server_times_out_and_a_closed_port_fails_fast() {
    // Accepts, then never answers.
    let (port, _hold) = silent_server().await;
    let silent = store(&format!("mongodb://u:p@127.0.0.1:{port}/fs"), 150);
    let e = silent
        .load(&EntityRead::all_of(&[EntityKey::new("user", "x")]))
        .await
        .unwrap_err();
    assert_eq!(e, StoreError::Timeout { ms: 150 });

    let closed = store(&format!("mongodb://127.0.0.1:{}/fs", free_port()), 2_000);
    let e = closed.apply(&deltas_of(TRACKER)).await.unwrap_err();
    assert!(matches!(e, StoreError::Io(_)), "{e}");
}

#[tokio::test]
async fn a_server_too_old_for_op_msg_is_refused_by_name() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // What MongoDB 3.4 does: answers the OP_QUERY handshake with OP_REPLY
    // (wire version 5), and would hang up on OP_MSG.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let _old = tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let mut header = [0u8; 16];
            if s.read_exact(&mut header).await.is_err() {
                continue;
            }
            let len = i32::from_le_bytes(header[..4].try_into().unwrap()) as usize;
            let mut rest = vec![0u8; len - 16];
            let _ = s.read_exact(&mut rest).await;
            let body = doc! {"ok": 1.0, "ismaster": true, "maxWireVersion": 5_i32}
                .to_vec()
                .unwrap();
            let mut out = Vec::new();
            out.extend_from_slice(&((16 + 20 + body.len()) as i32).to_le_bytes());
            out.extend_from_slice(&1i32.to_le_bytes());
            out.extend_from_slice(&header[4..8]); // responseTo: the request's id
            out.extend_from_slice(&1i32.to_le_bytes()); // OP_REPLY
            out.extend_from_slice(&[0; 16]); // flags, cursor id, startingFrom
            out.extend_from_slice(&1i32.to_le_bytes()); // numberReturned
            out.extend_from_slice(&body);
            let _ = s.write_all(&out).await;
        }
    });
    for url in [
        format!("mongodb://127.0.0.1:{port}/fs"),
        format!("mongodb://u:p@127.0.0.1:{port}/fs"),
    ] {
        let e = store(&url, 2_000)
            .apply(&deltas_of(TRACKER))
            .await
            .unwrap_err();
        assert!(matches!(e, StoreError::Protocol(_)), "{e}");
        assert!(e.to_string().contains("wire version 5"), "{e}");
        assert!(e.to_string().contains("MongoDB 3.6"), "{e}");
    }
}

/// A scripted server that behaves as MongoDB before 4.4 does: no
/// speculative authentication, no `skipEmptyExchange` (one more empty
/// `saslContinue` before the login counts), and commands refused with
/// `Unauthorized` until then. Gives how many `update` commands it refused
/// and accepted.
async fn pre_44_server(listener: tokio::net::TcpListener, password: &'static str) -> (u32, u32) {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD as B64;
    use hmac::{Hmac, Mac};
    use sha2::Sha256;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let (mut s, _) = listener.accept().await.unwrap();
    let (mut refused, mut accepted) = (0, 0);
    let (mut step, mut authenticated) = (0, false);
    let (mut bare, mut server_first) = (String::new(), String::new());
    let salt = b"0123456789abcdef".to_vec();
    loop {
        let mut header = [0u8; 16];
        if s.read_exact(&mut header).await.is_err() {
            return (refused, accepted);
        }
        let len = i32::from_le_bytes(header[..4].try_into().unwrap()) as usize;
        let mut frame = header.to_vec();
        frame.resize(len, 0);
        s.read_exact(&mut frame[16..]).await.unwrap();
        let request_id = i32::from_le_bytes(header[4..8].try_into().unwrap());
        if i32::from_le_bytes(header[12..16].try_into().unwrap()) == super::wire::OP_QUERY {
            let body = doc! {"ok": 1.0, "ismaster": true, "maxWireVersion": 8_i32}
                .to_vec()
                .unwrap();
            let mut out = Vec::new();
            out.extend_from_slice(&((36 + body.len()) as i32).to_le_bytes());
            out.extend_from_slice(&1i32.to_le_bytes());
            out.extend_from_slice(&request_id.to_le_bytes());
            out.extend_from_slice(&1i32.to_le_bytes());
            out.extend_from_slice(&[0; 16]);
            out.extend_from_slice(&1i32.to_le_bytes());
            out.extend_from_slice(&body);
            s.write_all(&out).await.unwrap();
            continue;
        }
        let body = super::wire::decode(&frame).unwrap().message.body;
        let payload = |d: &Document| match d.get("payload") {
            Some(Bson::Binary(b)) => String::from_utf8(b.bytes.clone()).unwrap(),
            _ => String::new(),
        };
        let binary = |text: String| {
            Bson::Binary(bson::Binary {
                subtype: bson::spec::BinarySubtype::Generic,
                bytes: text.into_bytes(),
            })
        };
        let reply = if body.contains_key("saslStart") {
            bare = payload(&body).trim_start_matches("n,,").to_owned();
            let nonce = bare.split("r=").nth(1).unwrap().to_owned();
            server_first = format!("r={nonce}SERVER,s={},i=4096", B64.encode(&salt));
            step = 1;
            doc! {"ok": 1.0, "conversationId": 1_i32, "done": false,
            "payload": binary(server_first.clone())}
        } else if body.contains_key("saslContinue") && step == 1 {
            let last = payload(&body);
            let without_proof = last.split(",p=").next().unwrap();
            let auth_message = format!("{bare},{server_first},{without_proof}");
            let salted = super::scram::salted_password(password, &salt, 4096);
            let mac = |key: &[u8], data: &[u8]| {
                let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap();
                m.update(data);
                m.finalize().into_bytes()
            };
            let server_key = mac(&salted, b"Server Key");
            let signature = B64.encode(mac(&server_key, auth_message.as_bytes()));
            step = 2;
            doc! {"ok": 1.0, "conversationId": 1_i32, "done": false,
            "payload": binary(format!("v={signature}"))}
        } else if body.contains_key("saslContinue") && step == 2 {
            authenticated = true;
            doc! {"ok": 1.0, "conversationId": 1_i32, "done": true, "payload": binary(String::new())}
        } else if !authenticated {
            refused += 1;
            doc! {"ok": 0.0, "code": 13_i32, "codeName": "Unauthorized", "errmsg": "not authorized"}
        } else {
            accepted += 1;
            doc! {"ok": 1.0, "n": 1_i32}
        };
        let mut out = Vec::new();
        Message::command(reply).encode(100, &mut out).unwrap();
        out[8..12].copy_from_slice(&request_id.to_le_bytes());
        s.write_all(&out).await.unwrap();
    }
}

#[tokio::test]
async fn a_server_without_skip_empty_exchange_gets_its_last_step_and_the_commands_again() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(pre_44_server(listener, "pencil"));
    let mongo = store(&format!("mongodb://user:pencil@127.0.0.1:{port}/fs"), 5_000);
    // One user delta: one update command.
    let deltas: Vec<EntityDelta> = deltas_of(TRACKER)
        .into_iter()
        .filter(|d| d.entity == "user")
        .collect();
    assert_eq!(deltas.len(), 1);
    assert_eq!(mongo.apply(&deltas).await.unwrap(), vec![Applied::Applied]);
    drop(mongo);
    // Refused once before the last step, accepted once after it.
    assert_eq!(server.await.unwrap(), (1, 1));
}

/// Every aggregation of seed 2's media spec, plus an unwindowed `avg`, a
/// `mode` of a payload field in a time zone's hours and an unwindowed
/// `decay`: the same batches, split and retried, read back from the server
/// as the memory store reads them. The media spec keeps its genre vector in
/// single precision, which MongoDB refuses (`$inc` adds in doubles); the
/// spec here is the same without `float`, and the refusal is checked too.
#[tokio::test]
async fn every_aggregation_reads_back_as_core_has_it() {
    let Some(bin) = secantusd() else { return };
    let media = include_str!("../../../../examples/media/features.toml");
    assert!(media.contains("float = \"f32\"\n"));
    let spec: &'static freshet_core::spec::FeatureSpec = Box::leak(Box::new(
        freshet_core::spec::FeatureSpec::parse(&format!(
            "{}{}",
            media.replace("float = \"f32\"\n", ""),
            r#"
[[feature]]
name = "avg_all_time"
entity = "user"
on = ["watch"]
agg = "avg"
field = "payload.watchDurationMin"

[[feature]]
name = "local_hour"
entity = "user"
on = ["watch"]
agg = "mode"
field = "hour_of_day"
tz = "Asia/Kolkata"

[[feature]]
name = "favourite_genre"
entity = "user"
on = ["watch"]
agg = "mode"
field = "payload.genre"

[[feature]]
name = "views_decayed"
entity = "item"
on = ["watch"]
agg = "decay"
half_life = "2h"
"#
        ))
        .unwrap(),
    ));
    let dir = storage_dir("freshet-mongo-aggs");
    let port = free_port();
    let _server = start(&bin, &dir, port, false);
    let mongo = MongoStore::new(
        spec,
        MongoUrl::parse(&format!(
            "mongodb://127.0.0.1:{port}/aggs{}",
            std::process::id()
        ))
        .unwrap(),
        10_000,
        Tokio::default(),
    );
    let memory = MemoryStore::new(spec);
    let now = parse_rfc3339("2026-11-22T10:00:00Z").unwrap();
    let genres = ["drama", "comedy", "action", "drama.live", "$pecial"];
    let batches: Vec<Vec<EntityDelta>> = (0..6)
        .map(|b| {
            let events: Vec<serde_json::Value> = (0..7)
                .map(|i| {
                    let n = b * 7 + i;
                    let embedding: Vec<f64> = (0..32).map(|k| ((n + k) % 5) as f64 * 0.25).collect();
                    serde_json::json!({
                        "id": format!("w{n}"), "type": "watch", "clientId": format!("u{}", n % 3),
                        // Up to 6 days 22 hours back (accepted by ingest), minutes apart.
                        "timestamp": freshet_core::time::format_rfc3339(now - (n as i64 * 239 * 60_000)),
                        "payload": {"itemId": format!("v{}", n % 4), "genre": genres[n % 5],
                                    "watchDurationMin": (n % 9) as f64 * 1.5 + 0.1,
                                    "progress": (n % 10) as f64 / 10.0, "genreEmbedding": embedding}})
                })
                .collect();
            let body = serde_json::json!({"batchId": format!("m{b}"), "events": events});
            let batch = receive(body.to_string().as_bytes(), now, &Default::default()).unwrap();
            assert!(batch.rejected.is_empty(), "{:?}", batch.rejected);
            aggregate(spec, &batch, None)
        })
        .collect();
    let as_given: &'static freshet_core::spec::FeatureSpec = Box::leak(Box::new(
        freshet_core::spec::FeatureSpec::parse(media).unwrap(),
    ));
    let refusing = MongoStore::new(
        as_given,
        MongoUrl::parse(&format!("mongodb://127.0.0.1:{port}/f32")).unwrap(),
        10_000,
        Tokio::default(),
    );
    let refused = refusing.apply(&batches[0]).await.unwrap_err().to_string();
    assert!(
        refused.contains("user_genre_preferences@2") && refused.contains("float"),
        "{refused}"
    );
    // Newest batches first, each retried once.
    for deltas in batches.iter().rev().chain(batches.iter()) {
        let from_mongo = mongo.apply(deltas).await.unwrap();
        let from_memory = memory.apply(deltas).await.unwrap();
        assert_eq!(from_mongo, from_memory);
    }
    // Every user and item, and every (user, item) pair: `user_item_features`
    // keyed by the composite id.
    let pairs = (0..3).flat_map(|u| {
        (0..4).map(move |v| {
            let id = freshet_core::spec::composite_id(&[format!("u{u}"), format!("v{v}")]);
            EntityKey::new("user_item", id)
        })
    });
    let keys: Vec<EntityKey> = (0..3)
        .map(|u| EntityKey::new("user", format!("u{u}")))
        .chain((0..4).map(|v| EntityKey::new("item", format!("v{v}"))))
        .chain(pairs)
        .collect();
    let from_mongo = mongo.load(&EntityRead::all_of(&keys)).await.unwrap();
    let from_memory = memory.load(&EntityRead::all_of(&keys)).await.unwrap();
    for ((key, m), mem) in keys.iter().zip(&from_mongo).zip(&from_memory) {
        assert_eq!(m.features, mem.features, "{key:?}");
        for at in [now, now + 3 * freshet_core::time::DAY] {
            let m = read_features(spec, &key.entity, m, None, at).unwrap();
            let mem = read_features(spec, &key.entity, mem, None, at).unwrap();
            assert_eq!(m, mem, "{key:?}");
        }
    }
    let progress: Vec<&serde_json::Value> = from_mongo[7..]
        .iter()
        .filter_map(|doc| doc.features.get("user_item_watch_progress@1"))
        .map(|state| &state.value)
        .map(|agg| match agg {
            freshet_core::state::Agg::Last(stamped) => &stamped.v,
            other => panic!("not a last: {other:?}"),
        })
        .collect();
    assert_eq!(progress.len(), 12, "every pair was watched");
}

#[tokio::test]
async fn drift_summaries_merge_in_any_order_stay_bounded_and_a_corrupt_one_is_named() {
    use freshet_core::drift::Summary;
    use freshet_core::drift::summary::MAX_CATEGORIES;
    use freshet_core::time::HOUR;
    use serde_json::json;
    let Some(bin) = secantusd() else { return };
    let dir = storage_dir("freshet-mongo-drift");
    let port = free_port();
    let _server = start(&bin, &dir, port, false);
    let now = parse_rfc3339("2026-11-22T10:30:00Z").unwrap();
    let summary = |values: &[serde_json::Value]| {
        let mut s = Summary::default();
        values.iter().for_each(|v| s.add(v));
        s
    };
    let a = summary(&[json!(1), json!(2.5), json!("x.y")]);
    let b = summary(&[json!(0), json!(null), json!(-4), json!("$z")]);
    let c = summary(&[json!("prod-1"), json!(["x", "y"]), json!(7)]);
    let features = vec![
        "pageviews@1".to_owned(),
        "last_interacted_product@1".to_owned(),
        "searches@1".to_owned(),
    ];
    let mut expected = a.clone();
    expected.merge(&b);
    expected.merge(&c);
    // The same three samples in two orders, each into its own database,
    // give core's in-memory merge.
    for (db, order) in [("ordera", [&a, &b, &c]), ("orderb", [&c, &b, &a])] {
        let mongo = store(&format!("mongodb://127.0.0.1:{port}/{db}"), 10_000);
        for (i, s) in order.iter().enumerate() {
            let adds = vec![
                ("pageviews@1".to_owned(), (*s).clone()),
                ("last_interacted_product@1".to_owned(), c.clone()),
            ];
            // Two hours apart: the hours add up too.
            let t = now - i64::try_from(i).unwrap() * 2 * HOUR;
            mongo.add_drift(t, &adds).await.unwrap();
        }
        // 30 hours ago: outside `--since 24h`.
        mongo
            .add_drift(now - 30 * HOUR, &[("pageviews@1".into(), b.clone())])
            .await
            .unwrap();
        let live = mongo
            .load_drift(&features, now - 24 * HOUR, now)
            .await
            .unwrap();
        assert_eq!(live[0], Ok(expected.clone()), "{db}");
        let mut thrice = c.clone();
        thrice.merge(&c);
        thrice.merge(&c);
        assert_eq!(live[1], Ok(thrice), "{db}");
        assert_eq!(live[2], Ok(Summary::default()), "{db}");
    }

    let mongo = store(&format!("mongodb://127.0.0.1:{port}/ordera"), 10_000);
    // The TTL index: documents go 8 days after their last write.
    let indexes = run(&mongo, vec![doc! {"listIndexes": "drift", "$db": "ordera"}]).await;
    let batch = indexes[0]
        .get_document("cursor")
        .and_then(|c| c.get_array("firstBatch"))
        .unwrap();
    let ttl = batch
        .iter()
        .filter_map(Bson::as_document)
        .find(|i| i.get_str("name").ok() == Some("freshet_drift_ttl"))
        .unwrap_or_else(|| panic!("no TTL index: {batch:?}"));
    assert_eq!(ttl.get_document("key").unwrap(), &doc! {"at": 1_i32});
    let expire = ttl.get("expireAfterSeconds").unwrap();
    assert_eq!(
        expire.as_i64().or(expire.as_i32().map(i64::from)),
        Some(8 * 24 * 3600)
    );
    let stored = run(
        &mongo,
        vec![doc! {"find": "drift", "filter": {"_id": "pageviews@1|2026112210"}, "$db": "ordera"}],
    )
    .await;
    let first = stored[0]
        .get_document("cursor")
        .and_then(|c| c.get_array("firstBatch"))
        .unwrap()[0]
        .as_document()
        .unwrap()
        .clone();
    assert!(
        matches!(first.get("at"), Some(Bson::DateTime(_))),
        "{first}"
    );
    assert!(first.contains_key("c:x%2Ey"), "{first}");

    // Categories stay bounded: 70 new ones in one hour, in two samples.
    let many: Vec<serde_json::Value> = (0..70).map(|i| json!(format!("cat-{i}"))).collect();
    let bounded = store(&format!("mongodb://127.0.0.1:{port}/bounded"), 10_000);
    for half in many.chunks(35) {
        bounded
            .add_drift(now, &[("searches@1".into(), summary(half))])
            .await
            .unwrap();
    }
    let live = bounded
        .load_drift(&features[2..], now - HOUR, now)
        .await
        .unwrap();
    let s = live[0].as_ref().unwrap();
    assert_eq!(s.categories.len(), MAX_CATEGORIES);
    assert_eq!(s.other, 70 - MAX_CATEGORIES as u64);
    assert_eq!(s.count, 70);
    // Counted again: the known ones count, the rest go to `other`.
    bounded
        .add_drift(now, &[("searches@1".into(), summary(&many))])
        .await
        .unwrap();
    let live = bounded
        .load_drift(&features[2..], now - HOUR, now)
        .await
        .unwrap();
    let s = live[0].as_ref().unwrap();
    assert_eq!(s.categories.len(), MAX_CATEGORIES);
    assert!(s.categories.values().all(|n| *n == 2), "{s:?}");
    assert_eq!(s.other, 2 * (70 - MAX_CATEGORIES as u64));

    // A field someone broke: that feature's error, not a crash; the others read.
    let broke = run(
        &mongo,
        vec![doc! {"update": "drift", "updates": [
            {"q": {"_id": "pageviews@1|2026112210"}, "u": {"$set": {"n": "many"}}},
            {"q": {"_id": "searches@1|2026112210"}, "u": {"$set": {"z": 1_i64}}, "upsert": true},
        ], "$db": "ordera"}],
    )
    .await;
    assert_eq!(broke[0].get_i32("n").ok(), Some(2), "{broke:?}");
    let live = mongo
        .load_drift(&features, now - 24 * HOUR, now)
        .await
        .unwrap();
    assert!(
        live[0]
            .as_ref()
            .is_err_and(|e| e.contains("pageviews@1|2026112210") && e.contains("field `n`")),
        "{:?}",
        live[0]
    );
    assert!(live[1].is_ok());
    assert!(
        live[2].as_ref().is_err_and(|e| e.contains("field `num`")),
        "{:?}",
        live[2]
    );
}

/// The end-of-visit beacon: applied, its answer never read, and the same
/// batch resent on a return two days later counts once. Ten days on, the
/// write of that day clears the first day's slot; a batch applied before
/// the day slots (in `_batches`) still counts once.
#[tokio::test]
async fn a_batch_resent_two_days_later_counts_once() {
    use freshet_core::time::DAY;
    let Some(bin) = secantusd() else { return };
    let dir = storage_dir("freshet-mongo-resend");
    let port = free_port();
    let _server = start(&bin, &dir, port, false);
    let mongo = store(&format!("mongodb://127.0.0.1:{port}/resend"), 10_000);
    let first = deltas_of(TRACKER);
    let at = |deltas: &[EntityDelta], shift: i64, batch: Option<&str>| {
        let mut out = deltas.to_vec();
        for d in &mut out {
            d.received_at += shift;
            if let Some(b) = batch {
                d.batch_id = b.into();
            }
        }
        out
    };
    let applied = mongo.apply(&first).await.unwrap();
    assert!(
        applied.iter().all(|a| *a == Applied::Applied),
        "{applied:?}"
    );
    let keys = [EntityKey::new("user", "cid-tracker-1")];
    let before = mongo.load(&EntityRead::all_of(&keys)).await.unwrap();

    let again = mongo.apply(&at(&first, 2 * DAY, None)).await.unwrap();
    assert!(again.iter().all(|a| *a == Applied::Duplicate), "{again:?}");
    assert_eq!(
        mongo.load(&EntityRead::all_of(&keys)).await.unwrap(),
        before,
        "counted once"
    );

    // Ten days on: that day's write clears the first day's slot.
    mongo
        .apply(&at(&first, 10 * DAY, Some("b-ten-days-on")))
        .await
        .unwrap();
    let doc = find_one(&mongo, "resend", "user_features", "cid-tracker-1").await;
    let slots = doc.get_document("_b").unwrap();
    assert_eq!(slots.len(), 1, "only the tenth day's slot: {doc}");

    // A batch the layout before marked, in `_batches`, still counts once.
    run(
        &mongo,
        vec![
            doc! {"update": "user_features", "updates": [{"q": {"_id": "cid-tracker-1"},
            "u": {"$push": {"_batches": "b-before-the-upgrade"}}}], "$db": "resend"},
        ],
    )
    .await;
    let mut old = at(&first, 10 * DAY, Some("b-before-the-upgrade"));
    old.retain(|d| d.entity == "user");
    assert_eq!(mongo.apply(&old).await.unwrap(), vec![Applied::Duplicate]);
}

#[tokio::test]
async fn a_delivery_of_batches_is_one_statement_per_entity_and_a_regrouped_one_counts_once() {
    let Some(bin) = secantusd() else { return };
    let dir = storage_dir("freshet-mongo-fold");
    let port = free_port();
    let _server = start(&bin, &dir, port, false);
    let mongo = store(&format!("mongodb://127.0.0.1:{port}/fold"), 10_000);
    assert_a_delivery_folds_and_a_regrouped_one_counts_once(&mongo, || async {
        mongo.statements()
    })
    .await;
}
