//! The MongoDB store on a replica set whose primary moves. SecantusDB is
//! one server that cannot step down, so two members stand in front of it
//! here: each a proxy of the wire protocol that passes commands through,
//! answers `hello` as a member of `rs0` (which of the two is primary, and
//! which is named as primary, switched by the test), and, while it is not
//! the primary, refuses every command but the handshake and authentication
//! with `10107 NotWritablePrimary`, as a stepped-down mongod does. The two
//! share one server, as a set's members share their data once replicated.
//! Batches go on while the primary moves twice; each is applied until the
//! store takes it and sent again after, then every entity is read back and
//! compared with the memory store that applied each batch once.

#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex as StdMutex};

use bson::{Document, doc};
use freshet_core::time::parse_rfc3339;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::{TcpListener, TcpStream};

use super::integration_tests::{Tokio, secantusd, start, storage_dir};
use super::wire::{self, Message, OP_MSG, OP_REPLY};
use super::{MongoStore, MongoUrl};
use crate::spec::compiled_spec;
use crate::store::memory::MemoryStore;
use crate::store::pool::PoolLimits;
use crate::store::test_support::{assert_reads_as_memory, deliver, free_port, numbered_batch};
use crate::store::{EntityKey, EntityRead, FeatureStore};

/// Which member is primary, and the members' ports.
#[derive(Clone)]
struct Set {
    primary: Arc<AtomicUsize>,
    ports: Arc<Vec<u16>>,
}

impl Set {
    fn address(&self, i: usize) -> String {
        format!("127.0.0.1:{}", self.ports[i])
    }

    /// A member's `hello`, from the server's own answer.
    fn hello(&self, me: usize, mut reply: Document) -> Document {
        let primary = self.primary.load(Ordering::SeqCst);
        let writable = me == primary;
        reply.insert("setName", "rs0");
        reply.insert("hosts", vec![self.address(0), self.address(1)]);
        reply.insert("primary", self.address(primary));
        reply.insert("me", self.address(me));
        reply.insert("isWritablePrimary", writable);
        reply.insert("ismaster", writable);
        reply.insert("secondary", !writable);
        reply
    }
}

async fn frame(from: &mut OwnedReadHalf) -> Option<Vec<u8>> {
    let mut len = [0u8; 4];
    from.read_exact(&mut len).await.ok()?;
    let n = usize::try_from(i32::from_le_bytes(len)).ok()?;
    let mut out = len.to_vec();
    out.resize(n, 0);
    from.read_exact(&mut out[4..]).await.ok()?;
    Some(out)
}

fn opcode(frame: &[u8]) -> i32 {
    i32::from_le_bytes(frame[12..16].try_into().unwrap())
}

/// An OP_MSG answering request `to` with `body`.
fn op_msg(request_id: &[u8], to: &[u8], body: Document) -> Vec<u8> {
    let mut out = Vec::new();
    Message::command(body).encode(0, &mut out).unwrap();
    out[4..8].copy_from_slice(request_id);
    out[8..12].copy_from_slice(to);
    out
}

/// The server's answer, with a `hello` in it rewritten as member `me`'s.
fn as_member(set: &Set, me: usize, reply: Vec<u8>) -> Vec<u8> {
    let is_hello = |d: &Document| d.contains_key("maxWireVersion");
    match opcode(&reply) {
        OP_MSG => {
            let body = wire::decode(&reply).unwrap().message.body;
            if !is_hello(&body) {
                return reply;
            }
            op_msg(&reply[4..8], &reply[8..12], set.hello(me, body))
        }
        OP_REPLY => {
            let body = Document::from_reader(&reply[36..]).unwrap();
            let mut out = reply[..36].to_vec();
            set.hello(me, body).to_writer(&mut out).unwrap();
            let n = i32::try_from(out.len()).unwrap();
            out[..4].copy_from_slice(&n.to_le_bytes());
            out
        }
        _ => reply,
    }
}

/// Commands a member that is not primary still serves.
const ANY_MEMBER: [&str; 6] = [
    "isMaster",
    "ismaster",
    "hello",
    "saslStart",
    "saslContinue",
    "ping",
];

async fn member_connection(set: Set, me: usize, client: TcpStream, server_port: u16) {
    let server = TcpStream::connect(("127.0.0.1", server_port))
        .await
        .unwrap();
    let (mut client_in, mut client_out) = client.into_split();
    let (mut server_in, mut server_out) = server.into_split();
    // Requests to refuse: the server gets a `ping` in their place, so the
    // answers keep their order, and its answer becomes the refusal.
    let refused: Arc<StdMutex<HashSet<[u8; 4]>>> = Arc::default();
    let to_refuse = refused.clone();
    let answers = set.clone();
    tokio::spawn(async move {
        while let Some(reply) = frame(&mut server_in).await {
            let to: [u8; 4] = reply[8..12].try_into().unwrap();
            let reply = if to_refuse.lock().unwrap().remove(&to) {
                let refusal = doc! {"ok": 0.0, "code": 10107, "codeName": "NotWritablePrimary",
                "errmsg": "not primary"};
                op_msg(&reply[4..8], &to, refusal)
            } else {
                as_member(&answers, me, reply)
            };
            if client_out.write_all(&reply).await.is_err() {
                break;
            }
        }
    });
    while let Some(mut request) = frame(&mut client_in).await {
        if opcode(&request) == OP_MSG && set.primary.load(Ordering::SeqCst) != me {
            let body = wire::decode(&request).unwrap().message.body;
            let name = body.keys().next().cloned().unwrap_or_default();
            if !ANY_MEMBER.contains(&name.as_str()) {
                let id: [u8; 4] = request[4..8].try_into().unwrap();
                refused.lock().unwrap().insert(id);
                let mut ping = op_msg(&id, &[0; 4], doc! {"ping": 1, "$db": "admin"});
                ping[4..8].copy_from_slice(&id);
                request = ping;
            }
        }
        if server_out.write_all(&request).await.is_err() {
            break;
        }
    }
}

/// Two members in front of the server on `server_port`; the first primary.
async fn replica_set(server_port: u16) -> Set {
    let listeners = [
        TcpListener::bind("127.0.0.1:0").await.unwrap(),
        TcpListener::bind("127.0.0.1:0").await.unwrap(),
    ];
    let set = Set {
        primary: Arc::new(AtomicUsize::new(0)),
        ports: Arc::new(
            listeners
                .iter()
                .map(|l| l.local_addr().unwrap().port())
                .collect(),
        ),
    };
    for (me, listener) in listeners.into_iter().enumerate() {
        let set = set.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(member_connection(set.clone(), me, client, server_port));
            }
        });
    }
    set
}

#[tokio::test]
async fn the_primary_moving_twice_loses_and_doubles_nothing() {
    let Some(bin) = secantusd() else { return };
    let dir = storage_dir("freshet-rs");
    let port = free_port();
    let _server = start(&bin, &dir, port, false);
    let set = replica_set(port).await;
    // The first seed is a secondary from the start: its hello names the primary.
    set.primary.store(1, Ordering::SeqCst);
    let url = format!(
        "mongodb://{},{}/rs_{}?replicaSet=rs0",
        set.address(0),
        set.address(1),
        free_port()
    );
    let spec = compiled_spec().unwrap();
    let store = MongoStore::pooled(
        spec,
        MongoUrl::parse(&url).unwrap(),
        5_000,
        Tokio::default(),
        PoolLimits {
            max_idle: 4,
            max_idle_ms: 60_000,
        },
    );
    let memory = MemoryStore::new(spec);
    let now = parse_rfc3339("2026-11-22T10:00:00Z").unwrap();
    let mut batches = Vec::new();
    let mut retried = 0;
    for k in 0..120 {
        // Pooled connections to the old primary are refused from here.
        match k {
            40 => set.primary.store(0, Ordering::SeqCst),
            80 => set.primary.store(1, Ordering::SeqCst),
            _ => {}
        }
        let deltas = numbered_batch(k, now);
        retried += deliver(&store, &deltas, 40, 50).await - 1;
        memory.apply(&deltas).await.unwrap();
        batches.push(deltas);
    }
    // The store followed the primary itself: no batch needed the client to resend it.
    assert_eq!(retried, 0);
    assert!(store.primary_changes() >= 3, "{}", store.primary_changes());
    assert_reads_as_memory(&store, &memory, &batches, now).await;
}

#[tokio::test]
async fn a_member_of_another_set_is_refused_by_name() {
    let Some(bin) = secantusd() else { return };
    let dir = storage_dir("freshet-rs-other");
    let port = free_port();
    let _server = start(&bin, &dir, port, false);
    let set = replica_set(port).await;
    let url = format!("mongodb://{}/fs?replicaSet=other", set.address(0));
    let store = MongoStore::new(
        compiled_spec().unwrap(),
        MongoUrl::parse(&url).unwrap(),
        2_000,
        Tokio::default(),
    );
    let e = store
        .load(&EntityRead::all_of(&[EntityKey::new("user", "u")]))
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("not a member of the replica set \"other\""),
        "{e}"
    );
}
