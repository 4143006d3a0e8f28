//! The commands the store sends and what it reads from the replies: `hello`
//! (with the SCRAM first step folded in as `speculativeAuthenticate`),
//! `saslStart`/`saslContinue`, one `update` per collection carrying one upsert
//! per entity delta as a document sequence, and one `find` per collection.
//! Also the bridge between `core`'s JSON and BSON, numbers kept as they are:
//! i64 as Int64, f64 as Double, and back.

use bson::spec::BinarySubtype;
use bson::{Binary, Bson, Document, doc};
#[cfg(test)]
use freshet_core::encode::marker_member;
use freshet_core::encode::mongo::{MongoUpdate, collection, update_one};
pub use freshet_core::encode::mongo::{document_to_json, json_to_document as to_document};
use freshet_core::spec::FeatureSpec;
use freshet_core::state::{Applied, EntityDelta};
use serde_json::Value;

use super::MongoUrl;
use super::scram::MECHANISM;
use super::wire::{Message, Sequence};
use crate::store::{EntityKey, StoreError};

/// Wire version 6 is MongoDB 3.6, the first with OP_MSG.
pub const MIN_WIRE_VERSION: i64 = 6;
/// A duplicate key: on our upsert, the batch marker says "applied before".
pub const DUPLICATE_KEY: i64 = 11000;
/// A statement may exceed maxBsonObjectSize by this much (the command's own fields).
const STATEMENT_SLACK: usize = 16 * 1024;
/// Room for the header, flags and the command body around the sequence.
const MESSAGE_SLACK: usize = 16 * 1024;

/// What `hello` says about the server's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    pub max_bson_object_size: usize,
    pub max_message_size_bytes: usize,
    pub max_write_batch_size: usize,
    pub max_wire_version: i64,
}

impl Default for ServerLimits {
    /// MongoDB's values, used until a server has said its own.
    fn default() -> Self {
        Self {
            max_bson_object_size: 16 * 1024 * 1024,
            max_message_size_bytes: 48_000_000,
            max_write_batch_size: 100_000,
            max_wire_version: MIN_WIRE_VERSION,
        }
    }
}

// ---- JSON <-> BSON ----

// ---- replies ----

fn number(doc: &Document, key: &str) -> Option<i64> {
    match doc.get(key)? {
        Bson::Int32(i) => Some(i64::from(*i)),
        Bson::Int64(i) => Some(*i),
        Bson::Double(f) if f.fract() == 0.0 => Some(*f as i64),
        Bson::Boolean(b) => Some(i64::from(*b)),
        _ => None,
    }
}

/// `{ok: 1}`, or the server's error as a [`StoreError::Server`].
pub fn check_ok(reply: &Document) -> Result<(), StoreError> {
    if number(reply, "ok") == Some(1) {
        return Ok(());
    }
    Err(StoreError::Server(server_error(reply)))
}

/// `code codeName: errmsg` of an error reply or a write error.
pub fn server_error(doc: &Document) -> String {
    let code = number(doc, "code").map_or_else(|| "?".to_owned(), |c| c.to_string());
    let name = doc.get_str("codeName").unwrap_or("");
    let msg = doc.get_str("errmsg").unwrap_or("no message");
    format!("{code} {name}: {msg}").replace("  ", " ")
}

// ---- the handshake ----

/// The handshake, sent as OP_QUERY on `admin.$cmd`: `isMaster` with
/// `helloOk`, which every server knows, where `hello` over OP_MSG would make
/// a server older than 3.6 hang up without a word.
pub fn handshake(url: &MongoUrl, speculative: Option<Document>) -> Document {
    let mut body = doc! {
        "isMaster": 1_i32,
        "helloOk": true,
        "client": {
            "driver": {"name": "freshet-edge", "version": env!("CARGO_PKG_VERSION")},
            "os": {"type": "cloudflare-workers"},
        },
    };
    if let Some(name) = &url.app_name
        && let Ok(client) = body.get_document_mut("client")
    {
        client.insert("application", doc! {"name": name});
    }
    if let Some(s) = speculative {
        body.insert("speculativeAuthenticate", s);
    }
    body
}

/// Reads the handshake's answer: the limits; servers without OP_MSG refused;
/// the
/// `speculativeAuthenticate` answer when there is one.
pub fn parse_hello(reply: &Document) -> Result<(ServerLimits, Option<Document>), StoreError> {
    check_ok(reply).map_err(|e| match e {
        StoreError::Server(m) => StoreError::Server(format!("hello refused: {m}")),
        other => other,
    })?;
    let defaults = ServerLimits::default();
    let size = |key: &str, default: usize| {
        number(reply, key)
            .and_then(|n| usize::try_from(n).ok())
            .filter(|n| *n > 0)
            .unwrap_or(default)
    };
    let max_wire_version = number(reply, "maxWireVersion").unwrap_or(0);
    if max_wire_version < MIN_WIRE_VERSION {
        return Err(StoreError::Protocol(format!(
            "the server speaks wire version {max_wire_version}; OP_MSG needs {MIN_WIRE_VERSION} \
             (MongoDB 3.6) or later"
        )));
    }
    let limits = ServerLimits {
        max_bson_object_size: size("maxBsonObjectSize", defaults.max_bson_object_size),
        max_message_size_bytes: size("maxMessageSizeBytes", defaults.max_message_size_bytes),
        max_write_batch_size: size("maxWriteBatchSize", defaults.max_write_batch_size),
        max_wire_version,
    };
    let speculative = reply.get_document("speculativeAuthenticate").ok().cloned();
    Ok((limits, speculative))
}

/// What a member's `hello` says of the replica set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    /// `isWritablePrimary` (`ismaster` before 5.0).
    pub writable: bool,
    /// `primary`: the member it takes for the primary, as `host:port`.
    pub primary: Option<(String, u16)>,
    /// `setName`: none on a standalone server or a mongos.
    pub set_name: Option<String>,
}

/// The role of the member that answered `hello`.
pub fn parse_role(reply: &Document) -> Role {
    let flag = |key| reply.get_bool(key).ok();
    let primary = reply.get_str("primary").ok().and_then(|hp| {
        let (host, port) = hp.rsplit_once(':')?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        Some((host.to_owned(), port.parse().ok()?))
    });
    Role {
        writable: flag("isWritablePrimary")
            .or_else(|| flag("ismaster"))
            .unwrap_or(false),
        primary,
        set_name: reply.get_str("setName").ok().map(str::to_owned),
    }
}

/// The errors after which the primary is elsewhere (or soon will be): the
/// exchange is sent again to the primary found anew. By code name, as
/// `server_error` writes them, and the legacy "not master" text.
pub fn is_not_primary(e: &StoreError) -> bool {
    const NAMES: [&str; 7] = [
        "NotWritablePrimary",
        "NotPrimaryNoSecondaryOk",
        "NotPrimaryOrSecondary",
        "PrimarySteppedDown",
        "InterruptedDueToReplStateChange",
        "ShutdownInProgress",
        "InterruptedAtShutdown",
    ];
    match e {
        StoreError::Server(m) => NAMES.iter().any(|n| m.contains(n)) || m.contains("not master"),
        _ => false,
    }
}

// ---- SASL ----

fn binary(bytes: Vec<u8>) -> Binary {
    Binary {
        subtype: BinarySubtype::Generic,
        bytes,
    }
}

/// `saslStart` as its own command, or (with `db` inside) as `speculativeAuthenticate`.
pub fn sasl_start(auth_source: &str, payload: Vec<u8>, speculative: bool) -> Document {
    let mut body = doc! {
        "saslStart": 1_i32,
        "mechanism": MECHANISM,
        "payload": binary(payload),
        // MongoDB 4.4+ then ends the conversation one step earlier.
        "options": {"skipEmptyExchange": true},
    };
    let key = if speculative { "db" } else { "$db" };
    body.insert(key, auth_source);
    body
}

pub fn sasl_continue(auth_source: &str, conversation_id: &Bson, payload: Vec<u8>) -> Message {
    Message::command(doc! {
        "saslContinue": 1_i32,
        "conversationId": conversation_id.clone(),
        "payload": binary(payload),
        "$db": auth_source,
    })
}

/// One SASL step's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct SaslReply {
    pub conversation_id: Bson,
    pub payload: Vec<u8>,
    pub done: bool,
}

pub fn parse_sasl(reply: &Document) -> Result<SaslReply, StoreError> {
    check_ok(reply)?;
    let conversation_id = reply
        .get("conversationId")
        .cloned()
        .ok_or_else(|| StoreError::Protocol("SASL reply without conversationId".into()))?;
    let payload = match reply.get("payload") {
        Some(Bson::Binary(b)) => b.bytes.clone(),
        Some(Bson::String(s)) => s.as_bytes().to_vec(),
        _ => return Err(StoreError::Protocol("SASL reply without payload".into())),
    };
    Ok(SaslReply {
        conversation_id,
        payload,
        done: reply.get_bool("done").unwrap_or(false),
    })
}

// ---- writes ----

/// One `update` command and the deltas (by index) its statements stand for.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedUpdate {
    pub message: Message,
    pub indices: Vec<usize>,
}

/// One `update` per collection, `ordered: false` so a duplicate does not stop
/// the other entities' statements, split where the server's limits say.
pub fn plan_updates(
    spec: &FeatureSpec,
    db: &str,
    deltas: &[EntityDelta],
    limits: &ServerLimits,
) -> Result<Vec<PlannedUpdate>, StoreError> {
    let updates: Vec<MongoUpdate> = deltas.iter().map(|d| update_one(spec, d)).collect();
    plan_statements(db, &updates, limits)
}

/// [`plan_updates`] of core's updates as given (a fold's among them); the
/// indices are theirs.
pub fn plan_statements(
    db: &str,
    updates: &[MongoUpdate],
    limits: &ServerLimits,
) -> Result<Vec<PlannedUpdate>, StoreError> {
    /// A delta's index, its upsert statement, and the statement's size.
    type Statement = (usize, Document, usize);
    let mut by_collection: Vec<(String, Vec<Statement>)> = Vec::new();
    for (i, update) in updates.iter().enumerate() {
        let (Value::Object(filter), Value::Object(u)) = (&update.filter, &update.update) else {
            return Err(StoreError::Protocol(
                "core's update is not a pair of documents".into(),
            ));
        };
        let statement = doc! {"q": to_document(filter), "u": to_document(u), "upsert": true};
        let size = statement
            .to_vec()
            .map_err(|e| StoreError::Protocol(format!("update does not encode: {e}")))?
            .len();
        if size > limits.max_bson_object_size + STATEMENT_SLACK {
            return Err(StoreError::Protocol(format!(
                "the update of one entity is {size} bytes, over the server's maxBsonObjectSize"
            )));
        }
        match by_collection
            .iter_mut()
            .find(|(c, _)| *c == update.collection)
        {
            Some((_, list)) => list.push((i, statement, size)),
            None => by_collection.push((update.collection.clone(), vec![(i, statement, size)])),
        }
    }
    let room = limits
        .max_message_size_bytes
        .saturating_sub(MESSAGE_SLACK)
        .max(1);
    let mut planned = Vec::new();
    for (coll, statements) in by_collection {
        let mut chunk: Vec<(usize, Document)> = Vec::new();
        let mut bytes = 0;
        let flush = |chunk: &mut Vec<(usize, Document)>, planned: &mut Vec<PlannedUpdate>| {
            if chunk.is_empty() {
                return;
            }
            let (indices, documents): (Vec<usize>, Vec<Document>) =
                std::mem::take(chunk).into_iter().unzip();
            planned.push(PlannedUpdate {
                message: Message {
                    flags: 0,
                    body: doc! {"update": coll.as_str(), "ordered": false, "$db": db},
                    sequences: vec![Sequence {
                        identifier: "updates".into(),
                        documents,
                    }],
                },
                indices,
            });
        };
        for (i, statement, size) in statements {
            if !chunk.is_empty()
                && (chunk.len() >= limits.max_write_batch_size.max(1) || bytes + size > room)
            {
                flush(&mut chunk, &mut planned);
                bytes = 0;
            }
            bytes += size;
            chunk.push((i, statement));
        }
        flush(&mut chunk, &mut planned);
    }
    Ok(planned)
}

/// The outcome of each statement of one `update`: a duplicate key on the
/// upsert is a batch applied before; any other write error, or a write
/// concern error, fails the whole batch (the client retries it, and what
/// did apply is then a duplicate).
pub fn parse_update_reply(reply: &Document, statements: usize) -> Result<Vec<Applied>, StoreError> {
    check_ok(reply)?;
    if let Ok(wce) = reply.get_document("writeConcernError") {
        return Err(StoreError::Server(format!(
            "write concern not met: {}",
            server_error(wce)
        )));
    }
    let mut out = vec![Applied::Applied; statements];
    if let Ok(errors) = reply.get_array("writeErrors") {
        for error in errors {
            let Bson::Document(error) = error else {
                return Err(StoreError::Protocol(
                    "a writeError is not a document".into(),
                ));
            };
            let index = number(error, "index")
                .and_then(|i| usize::try_from(i).ok())
                .filter(|i| *i < statements)
                .ok_or_else(|| StoreError::Protocol("a writeError without a valid index".into()))?;
            if number(error, "code") == Some(DUPLICATE_KEY) {
                out[index] = Applied::Duplicate;
            } else {
                return Err(StoreError::Server(format!(
                    "write error: {}",
                    server_error(error)
                )));
            }
        }
    }
    Ok(out)
}

// ---- reads ----

/// One `find` per collection and the keys (by index) it answers.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedFind {
    pub message: Message,
    pub indices: Vec<usize>,
}

/// `find` by `_id: {$in: […]}`, without the batch markers, in one batch.
pub fn plan_finds(db: &str, keys: &[EntityKey]) -> Vec<PlannedFind> {
    let mut by_collection: Vec<(String, Vec<usize>)> = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let coll = collection(&key.entity);
        match by_collection.iter_mut().find(|(c, _)| *c == coll) {
            Some((_, list)) => list.push(i),
            None => by_collection.push((coll, vec![i])),
        }
    }
    by_collection
        .into_iter()
        .map(|(coll, indices)| {
            let mut ids: Vec<&str> = indices.iter().map(|&i| keys[i].id.as_str()).collect();
            ids.sort_unstable();
            ids.dedup();
            let n = i32::try_from(ids.len()).unwrap_or(i32::MAX);
            PlannedFind {
                message: Message::command(doc! {
                    "find": coll.as_str(),
                    "filter": {"_id": {"$in": ids}},
                    "projection": {"_batches": 0_i32, "_b": 0_i32},
                    "batchSize": n,
                    "singleBatch": true,
                    "$db": db,
                }),
                indices,
            }
        })
        .collect()
}

/// `delete` by `_id: {$in: […]}`, one command per collection: an erasure's
/// entities, their markers with them (they live in the document).
pub fn plan_deletes(db: &str, keys: &[EntityKey]) -> Vec<Message> {
    plan_finds(db, keys)
        .into_iter()
        .map(|plan| {
            let coll = collection(&keys[plan.indices[0]].entity);
            let mut ids: Vec<&str> = plan.indices.iter().map(|&i| keys[i].id.as_str()).collect();
            ids.sort_unstable();
            ids.dedup();
            Message::command(doc! {
                "delete": coll.as_str(),
                "deletes": [{"q": {"_id": {"$in": ids}}, "limit": 0_i32}],
                "ordered": true,
                "$db": db,
            })
        })
        .collect()
}

/// How many documents a `delete` reply says it removed.
pub fn parse_delete_reply(reply: &Document) -> Result<usize, StoreError> {
    check_ok(reply)?;
    if let Ok(errors) = reply.get_array("writeErrors")
        && !errors.is_empty()
    {
        return Err(StoreError::Server(format!("delete refused: {errors:?}")));
    }
    number(reply, "n")
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| StoreError::Protocol("delete reply without n".into()))
}

/// The documents of a `find` reply; all of them, or an error.
pub fn parse_find_reply(reply: &Document) -> Result<Vec<Document>, StoreError> {
    check_ok(reply)?;
    let cursor = reply
        .get_document("cursor")
        .map_err(|_| StoreError::Protocol("find reply without a cursor".into()))?;
    if number(cursor, "id").is_some_and(|id| id != 0) {
        return Err(StoreError::Protocol(
            "find left documents on the server (reply over 16 MiB)".into(),
        ));
    }
    let batch = cursor
        .get_array("firstBatch")
        .map_err(|_| StoreError::Protocol("find reply without firstBatch".into()))?;
    batch
        .iter()
        .map(|d| match d {
            Bson::Document(d) => Ok(d.clone()),
            _ => Err(StoreError::Protocol(
                "a found item is not a document".into(),
            )),
        })
        .collect()
}

/// The `_id` of a found document, when it is a string (ours always are).
pub fn document_id(doc: &Document) -> Option<&str> {
    doc.get_str("_id").ok()
}

#[cfg(test)]
mod tests {
    use freshet_core::aggregate::aggregate;
    use freshet_core::encode::mongo::{bson_to_json as to_json, json_to_bson as to_bson};
    use freshet_core::time::parse_rfc3339;
    use freshet_core::validate::receive;
    use serde_json::json;

    use super::*;
    use crate::spec::compiled_spec;

    const SEED: &str = include_str!("../../../tests/fixtures/seed.json");

    #[test]
    fn numbers_keep_their_kind_both_ways() {
        let v = json!({"n": 3, "f": 2.5, "whole_float": 4.0, "neg": -7, "s": "x",
                       "a": [1, {"t": 5, "v": null}], "b": true});
        let b = to_bson(&v);
        let Bson::Document(d) = &b else {
            panic!("document")
        };
        assert_eq!(d.get("n"), Some(&Bson::Int64(3)));
        assert_eq!(d.get("f"), Some(&Bson::Double(2.5)));
        assert_eq!(d.get("whole_float"), Some(&Bson::Double(4.0)));
        assert_eq!(d.get("neg"), Some(&Bson::Int64(-7)));
        assert_eq!(to_json(&b), v);
        // What another writer may have stored reads as plain numbers too.
        assert_eq!(to_json(&Bson::Int32(5)), json!(5));
        assert_eq!(to_json(&Bson::Double(f64::NAN)), Value::Null);
    }

    #[test]
    fn hello_limits_and_old_servers() {
        let (limits, spec) = parse_hello(&doc! {
            "ok": 1.0, "maxWireVersion": 21_i32, "maxBsonObjectSize": 1000_i32,
            "maxMessageSizeBytes": 5000_i32, "maxWriteBatchSize": 3_i32,
            "speculativeAuthenticate": {"conversationId": 1_i32, "payload": "x", "done": false},
        })
        .expect("hello");
        assert_eq!(
            limits,
            ServerLimits {
                max_bson_object_size: 1000,
                max_message_size_bytes: 5000,
                max_write_batch_size: 3,
                max_wire_version: 21
            }
        );
        assert!(spec.is_some());
        let e = parse_hello(&doc! {"ok": 1.0, "maxWireVersion": 5_i32}).expect_err("3.4");
        assert!(e.to_string().contains("OP_MSG"), "{e}");
        assert!(parse_hello(&doc! {"ok": 1.0}).is_err());
        let e = parse_hello(&doc! {"ok": 0.0, "code": 59_i32, "errmsg": "no such command"})
            .expect_err("refused");
        assert!(e.to_string().contains("hello refused"), "{e}");
    }

    #[test]
    fn sasl_commands_and_replies() {
        let start = sasl_start("admin", b"n,,n=u,r=x".to_vec(), true);
        assert_eq!(start.get_str("db").ok(), Some("admin"));
        assert_eq!(start.get_str("mechanism").ok(), Some("SCRAM-SHA-256"));
        let reply = parse_sasl(&doc! {"ok": 1.0, "conversationId": 1_i32, "done": true,
        "payload": binary(b"v=abc".to_vec())})
        .expect("sasl");
        assert_eq!(
            (reply.payload.as_slice(), reply.done),
            (&b"v=abc"[..], true)
        );
        let e = parse_sasl(
            &doc! {"ok": 0.0, "code": 18_i32, "codeName": "AuthenticationFailed",
            "errmsg": "Authentication failed."},
        )
        .expect_err("auth");
        assert_eq!(
            e,
            StoreError::Server("18 AuthenticationFailed: Authentication failed.".into())
        );
    }

    fn deltas() -> Vec<EntityDelta> {
        let spec = compiled_spec().expect("spec");
        let now = parse_rfc3339("2026-11-22T10:00:00Z").expect("time");
        let batch = receive(SEED.as_bytes(), now, &Default::default()).expect("seed");
        aggregate(spec, &batch, None)
    }

    #[test]
    fn one_update_per_collection_with_one_upsert_per_delta() {
        let spec = compiled_spec().expect("spec");
        let deltas = deltas();
        let planned = plan_updates(spec, "fs", &deltas, &ServerLimits::default()).expect("plan");
        let mut covered: Vec<usize> = planned.iter().flat_map(|p| p.indices.clone()).collect();
        covered.sort_unstable();
        assert_eq!(covered, (0..deltas.len()).collect::<Vec<_>>());
        let mut collections: Vec<&str> = planned
            .iter()
            .map(|p| p.message.body.get_str("update").expect("update"))
            .collect();
        collections.dedup();
        assert_eq!(collections.len(), planned.len());
        for p in &planned {
            assert_eq!(p.message.body.get_bool("ordered").ok(), Some(false));
            assert_eq!(p.message.body.get_str("$db").ok(), Some("fs"));
            let seq = &p.message.sequences[0];
            assert_eq!(seq.identifier, "updates");
            assert_eq!(seq.documents.len(), p.indices.len());
            for (stmt, &i) in seq.documents.iter().zip(&p.indices) {
                assert_eq!(stmt.get_bool("upsert").ok(), Some(true));
                let q = stmt.get_document("q").expect("q");
                assert_eq!(q.get_str("_id").ok(), Some(deltas[i].id.as_str()));
                assert_eq!(
                    q.get_document("_batches")
                        .expect("the layout before's marker")
                        .get_str("$ne")
                        .ok(),
                    Some(deltas[i].batch_id.as_str())
                );
                let marker = marker_member(&deltas[i].batch_id);
                let slots = q.keys().filter(|k| k.starts_with("_b.")).count();
                assert_eq!(slots, 10, "every day slot but the one cleared");
                let slot = q.get_document("_b.0").or_else(|_| q.get_document("_b.1"));
                assert_eq!(
                    slot.expect("a slot").get_str("$ne").ok(),
                    Some(marker.as_str())
                );
            }
        }
        // A write batch limit of 1 splits every statement into its own command.
        let tiny = ServerLimits {
            max_write_batch_size: 1,
            ..ServerLimits::default()
        };
        let split = plan_updates(spec, "fs", &deltas, &tiny).expect("plan");
        assert_eq!(split.len(), deltas.len());
    }

    #[test]
    fn update_replies_per_statement() {
        let ok = doc! {"ok": 1.0, "n": 2_i32, "nModified": 1_i32,
        "upserted": [{"index": 1_i32, "_id": "b"}]};
        assert_eq!(
            parse_update_reply(&ok, 2),
            Ok(vec![Applied::Applied, Applied::Applied])
        );
        let dup = doc! {"ok": 1.0, "n": 1_i32, "writeErrors": [
        {"index": 0_i32, "code": 11000_i32, "errmsg": "E11000 duplicate key"}]};
        assert_eq!(
            parse_update_reply(&dup, 2),
            Ok(vec![Applied::Duplicate, Applied::Applied])
        );
        let other = doc! {"ok": 1.0, "writeErrors": [
        {"index": 1_i32, "code": 2_i32, "codeName": "BadValue", "errmsg": "bad"}]};
        assert!(matches!(
            parse_update_reply(&other, 2),
            Err(StoreError::Server(_))
        ));
        let wce = doc! {"ok": 1.0, "n": 2_i32,
        "writeConcernError": {"code": 64_i32, "errmsg": "waiting for replication timed out"}};
        let e = parse_update_reply(&wce, 2).expect_err("wce");
        assert!(e.to_string().contains("write concern"), "{e}");
        let bad_index = doc! {"ok": 1.0, "writeErrors": [{"index": 5_i32, "code": 11000_i32}]};
        assert!(matches!(
            parse_update_reply(&bad_index, 2),
            Err(StoreError::Protocol(_))
        ));
        assert!(parse_update_reply(&doc! {"ok": 0.0, "errmsg": "x"}, 1).is_err());
    }

    #[test]
    fn finds_group_by_collection_and_need_every_document() {
        let keys = [
            EntityKey::new("user", "a"),
            EntityKey::new("product", "p"),
            EntityKey::new("user", "b"),
            EntityKey::new("user", "a"),
        ];
        let planned = plan_finds("fs", &keys);
        assert_eq!(planned.len(), 2);
        assert_eq!(planned[0].indices, vec![0, 2, 3]);
        let body = &planned[0].message.body;
        assert_eq!(body.get_str("find").ok(), Some("user_features"));
        assert_eq!(
            body.get_document("filter").expect("filter"),
            &doc! {"_id": {"$in": ["a", "b"]}}
        );
        assert_eq!(
            body.get_document("projection").expect("projection"),
            &doc! {"_batches": 0_i32, "_b": 0_i32}
        );
        let docs = parse_find_reply(
            &doc! {"ok": 1.0, "cursor": {"id": 0_i64, "ns": "fs.user_features",
            "firstBatch": [{"_id": "a", "pageviews@1": 3_i64}]}},
        )
        .expect("found");
        assert_eq!(document_id(&docs[0]), Some("a"));
        assert!(
            parse_find_reply(&doc! {"ok": 1.0, "cursor": {"id": 9_i64, "firstBatch": []}}).is_err()
        );
    }
}
