//! MongoDB over a TCP socket (`worker::Socket` in the worker, a tokio stream
//! in the native tests), speaking the wire protocol itself: no Rust driver
//! builds for wasm32. On a new connection: connect (TLS when the URL says
//! `tls=true`), the handshake (`isMaster` with `helloOk`, as the OP_QUERY
//! every server answers, so one too old for OP_MSG is refused by name) with
//! the SCRAM first step folded in, then the SCRAM
//! proof with the request's commands pipelined behind it, so an
//! authenticated request takes two round trips and an open server one.
//! Writes are one `update` per collection with one upsert per entity delta
//! (`core`'s encoding); reads one `find` per collection. The server's
//! signature is checked before any answer is believed. A pooled connection
//! (in the `StoreGateway` Durable Object, `store::pool`) is already
//! authenticated: an exchange on it is the commands alone, one round trip.
//! The whole exchange is bounded by the store timeout.
//!
//! A replica set (`mongodb://h1,h2,h3/db?replicaSet=rs0`): the exchange goes
//! to the member last found to be the primary, at first the first seed. A
//! member whose handshake says it is not the writable primary (naming the
//! primary, when it knows one), a write or read refused as not primary, or
//! a member that does not answer sends the exchange to the primary found
//! anew: the member it named, else the next seed; within the store's
//! timeout, at most once per seed and once more. A re-sent write is safe:
//! each entity's batch marker applies a batch once.

mod commands;
mod conn;
mod scram;
mod wire;

#[cfg(target_arch = "wasm32")]
mod socket;

#[cfg(test)]
mod integration_tests;
#[cfg(test)]
mod replica_set_tests;

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::pin;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bson::Document;
use freshet_core::drift::mongo::{
    COLLECTION as DRIFT, hour_ids, summary_from_document, ttl_index, update_statements,
};
use freshet_core::drift::{Summary, merge_hours};
use freshet_core::encode::mongo::{MongoUpdate, folded_update};
use freshet_core::encode::mongo::{decode_document, document_name};
use freshet_core::fold::fold_deltas;
use freshet_core::spec::FeatureSpec;
use freshet_core::state::{Applied, EntityDelta, FeatureDoc};
use freshet_core::time::Millis;
use futures_util::future::{Either, select};
use tokio::io::{AsyncRead, AsyncWrite};

pub use commands::ServerLimits;
use commands::{
    PlannedUpdate, document_id, document_to_json, handshake, is_not_primary, parse_delete_reply,
    parse_find_reply, parse_hello, parse_role, parse_sasl, parse_update_reply, plan_deletes,
    plan_finds, plan_statements, plan_updates, sasl_continue, sasl_start,
};
pub use conn::Connection;
pub use freshet_core::store_url::{MongoUrl, SRV_REFUSED};
use scram::{ClientFinal, ClientFirst, SaltedPasswords, ServerFirst};
#[cfg(target_arch = "wasm32")]
pub use socket::WorkerSocket;
use wire::Message;

use super::pool::{Pool, PoolLimits};
use super::{EntityKey, EntityRead, FeatureStore, StoreError};

/// How the store reaches a server and waits: the worker's socket and timer,
/// or tokio's in native tests.
#[allow(async_fn_in_trait)]
pub trait Connector {
    type Conn: AsyncRead + AsyncWrite + Unpin;
    async fn connect(&self, host: &str, port: u16, tls: bool) -> std::io::Result<Self::Conn>;
    fn sleep(&self, ms: u64) -> impl Future<Output = ()>;
    /// Milliseconds on any fixed scale, for the pool's idle ages.
    fn now_ms(&self) -> f64;
}

#[derive(Debug)]
pub struct MongoStore<C: Connector> {
    spec: &'static FeatureSpec,
    url: MongoUrl,
    timeout_ms: u64,
    connector: C,
    /// PBKDF2's result, kept for the isolate's life.
    salted: SaltedPasswords,
    /// What the last `hello` said; MongoDB's defaults before the first.
    limits: Cell<Option<ServerLimits>>,
    pool: Pool<Connection<C::Conn>>,
    /// Whether the drift collection's TTL index was made by this isolate.
    drift_indexed: Cell<bool>,
    /// A replica set's member to send to: the primary as last found, or the
    /// seed to try next.
    target: RefCell<(String, u16)>,
    /// Which seed a lost primary is looked for at next.
    next_seed: Cell<usize>,
    /// Times the store went to another member (for tests and logs).
    primary_changes: Cell<u64>,
    /// Update statements sent (for tests and the benchmark).
    statements: Cell<u64>,
}

/// A fresh client nonce: 24 random bytes, base64 (no `,` in it).
fn client_nonce() -> Result<String, StoreError> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes)
        .map_err(|e| StoreError::Io(format!("no randomness for the SCRAM nonce: {e}")))?;
    Ok(B64.encode(bytes))
}

/// `createIndexes` of the drift collection's TTL index (a no-op once made).
fn drift_index_command(db: &str) -> Document {
    bson::doc! {"createIndexes": DRIFT, "indexes": [ttl_index()], "$db": db}
}

/// One ordered `update` of a feature's drift statements.
fn drift_update(db: &str, statements: Vec<Document>) -> Message {
    Message {
        flags: 0,
        body: bson::doc! {"update": DRIFT, "ordered": true, "$db": db},
        sequences: vec![wire::Sequence {
            identifier: "updates".into(),
            documents: statements,
        }],
    }
}

impl<C: Connector> MongoStore<C> {
    /// A store that opens a connection per exchange (the worker's own requests).
    pub fn new(spec: &'static FeatureSpec, url: MongoUrl, timeout_ms: u64, connector: C) -> Self {
        Self::pooled(spec, url, timeout_ms, connector, PoolLimits::NONE)
    }

    /// A store that keeps up to `limits.max_idle` authenticated connections
    /// between exchanges.
    pub fn pooled(
        spec: &'static FeatureSpec,
        url: MongoUrl,
        timeout_ms: u64,
        connector: C,
        limits: PoolLimits,
    ) -> Self {
        Self {
            spec,
            timeout_ms,
            connector,
            salted: SaltedPasswords::default(),
            limits: Cell::new(None),
            pool: Pool::new(limits),
            drift_indexed: Cell::new(false),
            target: RefCell::new((url.host.clone(), url.port)),
            next_seed: Cell::new(1),
            primary_changes: Cell::new(0),
            statements: Cell::new(0),
            url,
        }
    }

    /// Times the store went to another member of its replica set.
    pub fn primary_changes(&self) -> u64 {
        self.primary_changes.get()
    }

    /// Update statements sent so far, each one entity's write.
    pub fn statements(&self) -> u64 {
        self.statements.get()
    }

    /// Sends later exchanges to `member`; the idle connections to the one
    /// before are closed.
    fn go_to(&self, member: (String, u16)) {
        if *self.target.borrow() != member {
            *self.target.borrow_mut() = member;
            self.pool.clear();
            self.primary_changes.set(self.primary_changes.get() + 1);
        }
    }

    /// The primary is not where it was: next, the member `hint` names, else
    /// the next seed.
    fn lost_primary(&self, hint: Option<(String, u16)>) {
        let member = hint.unwrap_or_else(|| {
            let hosts = &self.url.hosts;
            let i = self.next_seed.get() % hosts.len();
            self.next_seed.set(i + 1);
            hosts[i].clone()
        });
        self.go_to(member);
    }

    /// Idle pooled connections (for tests and logs).
    pub fn idle_connections(&self) -> usize {
        self.pool.idle()
    }

    /// Runs `work` on a pooled connection or a new one, within the timeout
    /// (a reconnect after a dead pooled connection included); in a replica
    /// set, again at the primary found anew when this member is not it.
    async fn exchange<T>(
        &self,
        work: impl AsyncFn(&mut Connection<C::Conn>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let tries = if self.url.replica_set.is_some() {
            self.url.hosts.len() + 2
        } else {
            1
        };
        let run = async || {
            let mut last = None;
            for n in 0..tries {
                if n > 1 {
                    // Past the member named and the next seed: an election may be under way.
                    self.connector.sleep(100 * n as u64).await;
                }
                let (host, port) = self.target.borrow().clone();
                let connect = async || {
                    let stream = self
                        .connector
                        .connect(&host, port, self.url.tls)
                        .await
                        .map_err(|e| StoreError::Io(format!("connect to {host}:{port}: {e}")))?;
                    let limits = self.limits.get().unwrap_or_default();
                    Ok(Connection::new(stream, limits.max_message_size_bytes))
                };
                match self
                    .pool
                    .run(|| self.connector.now_ms(), connect, &work)
                    .await
                {
                    Err(e)
                        if tries > 1 && (is_not_primary(&e) || matches!(e, StoreError::Io(_))) =>
                    {
                        // The handshake may have named the primary already.
                        if *self.target.borrow() == (host, port) {
                            self.lost_primary(None);
                        }
                        last = Some(e);
                    }
                    done => return done,
                }
            }
            Err(last.unwrap_or_else(|| StoreError::Io("no replica set member answered".into())))
        };
        match select(pin!(run()), pin!(self.connector.sleep(self.timeout_ms))).await {
            Either::Left((result, _)) => result,
            Either::Right(((), _)) => Err(StoreError::Timeout {
                ms: self.timeout_ms,
            }),
        }
    }

    /// In a replica set, refuses a member that is not the writable primary
    /// (after its handshake), pointing later exchanges at the primary it names.
    fn check_role(&self, hello: &Document) -> Result<(), StoreError> {
        let Some(want) = &self.url.replica_set else {
            return Ok(());
        };
        let role = parse_role(hello);
        let (host, port) = self.target.borrow().clone();
        if role.set_name.as_deref() != Some(want.as_str()) {
            return Err(StoreError::Server(format!(
                "{host}:{port} is not a member of the replica set {want:?} (its setName: {:?})",
                role.set_name
            )));
        }
        if role.writable {
            return Ok(());
        }
        self.lost_primary(role.primary.filter(|p| *p != (host.clone(), port)));
        Err(StoreError::Server(format!(
            "10107 NotWritablePrimary: {host}:{port} is not the replica set's primary"
        )))
    }

    fn auth_failed(&self, why: impl std::fmt::Display) -> StoreError {
        // The server's own words, without a second "server error:" prefix.
        let why = why.to_string();
        let why = why.strip_prefix("server error: ").unwrap_or(&why);
        StoreError::Server(format!(
            "MongoDB authentication failed for user {:?} (authSource {}): {why}",
            self.url.username.as_deref().unwrap_or(""),
            self.url.auth_source
        ))
    }

    /// The handshake (on a new connection), then `plan`'s commands; gives
    /// their replies in order.
    async fn session(
        &self,
        conn: &mut Connection<C::Conn>,
        plan: impl FnOnce(&ServerLimits) -> Result<Vec<Message>, StoreError>,
    ) -> Result<Vec<Document>, StoreError> {
        if conn.is_set_up() {
            let messages = plan(&self.limits.get().unwrap_or_default())?;
            return conn.round_trip(&messages).await;
        }
        let replies = self.set_up_and_send(conn, plan).await?;
        conn.mark_set_up();
        Ok(replies)
    }

    /// The handshake with authentication folded in, then `plan`'s commands.
    async fn set_up_and_send(
        &self,
        conn: &mut Connection<C::Conn>,
        plan: impl FnOnce(&ServerLimits) -> Result<Vec<Message>, StoreError>,
    ) -> Result<Vec<Document>, StoreError> {
        let (Some(user), Some(password)) = (&self.url.username, &self.url.password) else {
            // No credentials: the handshake goes ahead of the commands in
            // the same write, which are sized by the limits the last
            // handshake gave. A server too old for OP_MSG answers the
            // handshake and is refused before its other answers are read.
            let messages = plan(&self.limits.get().unwrap_or_default())?;
            let ids = conn
                .send_with_handshake(&handshake(&self.url, None), &messages)
                .await?;
            let hello = conn.receive_handshake(ids[0]).await?;
            let (limits, _) = parse_hello(&hello)?;
            self.check_role(&hello)?;
            self.limits.set(Some(limits));
            conn.set_max_reply(limits.max_message_size_bytes);
            let mut replies = Vec::with_capacity(ids.len() - 1);
            for id in &ids[1..] {
                replies.push(conn.receive(*id).await?);
            }
            return Ok(replies);
        };
        let source = self.url.auth_source.as_str();
        let first = ClientFirst::new(user, &client_nonce()?);
        let speculative = sasl_start(source, first.message(), true);
        let ids = conn
            .send_with_handshake(&handshake(&self.url, Some(speculative)), &[])
            .await?;
        let hello = conn.receive_handshake(ids[0]).await?;
        let (limits, speculative) = parse_hello(&hello)?;
        self.check_role(&hello)?;
        self.limits.set(Some(limits));
        conn.set_max_reply(limits.max_message_size_bytes);
        // A server that declines speculation (or does not know the user)
        // answers the explicit saslStart, with its error when there is one.
        let started = match speculative {
            Some(reply) => reply,
            None => conn
                .round_trip(&[Message::command(sasl_start(source, first.message(), false))])
                .await?
                .remove(0),
        };
        let started = parse_sasl(&started).map_err(|e| self.auth_failed(e))?;
        let server_first =
            ServerFirst::parse(&started.payload, &first).map_err(|e| self.auth_failed(e))?;
        let salted = self.salted.get(password.expose(), &server_first);
        let last = ClientFinal::new(&first, &server_first, &salted);
        let commands = plan(&limits)?;
        let mut messages = vec![sasl_continue(
            source,
            &started.conversation_id,
            last.message(),
        )];
        messages.extend(commands.iter().cloned());
        let ids = conn.send(&messages).await?;
        // The proof's answer first: a refused login fails with its own
        // message, and nothing after it is believed before the server has
        // shown that it knows the password.
        let proved = parse_sasl(&conn.receive(ids[0]).await?).map_err(|e| self.auth_failed(e))?;
        last.verify(&proved.payload)
            .map_err(|e| self.auth_failed(e))?;
        let mut replies = Vec::with_capacity(commands.len());
        for id in &ids[1..] {
            replies.push(conn.receive(*id).await?);
        }
        if !proved.done {
            // A server without skipEmptyExchange (before 4.4) wants one more
            // empty step, and refused the commands as unauthenticated; they
            // go again. A write that did land is a duplicate by its marker.
            let end = conn
                .round_trip(&[sasl_continue(source, &proved.conversation_id, Vec::new())])
                .await?
                .remove(0);
            if !parse_sasl(&end).map_err(|e| self.auth_failed(e))?.done {
                return Err(self.auth_failed("the conversation did not end"));
            }
            replies = conn.round_trip(&commands).await?;
        }
        Ok(replies)
    }

    /// How many PBKDF2 results the store holds (for tests of the cache).
    pub fn salted_passwords(&self) -> usize {
        self.salted.count()
    }
}

impl<C: Connector> MongoStore<C> {
    /// One statement per delta, in one round trip; a duplicate key sent
    /// once more (the race of two first writes of a document).
    async fn apply_each(&self, deltas: &[EntityDelta]) -> Result<Vec<Applied>, StoreError> {
        self.count_statements(deltas.len());
        let spec = self.spec;
        let db = self.url.db.as_str();
        self.exchange(async |conn| {
            let mut planned = Vec::new();
            let replies = self
                .session(conn, |limits| {
                    planned = plan_updates(spec, db, deltas, limits)?;
                    Ok(planned.iter().map(|p| p.message.clone()).collect())
                })
                .await?;
            let mut outcome: Vec<Option<Applied>> = vec![None; deltas.len()];
            record_outcomes(&planned, &replies, &mut outcome, |i| i)?;
            // A duplicate key means the marker was there, unless another
            // batch inserted the same new document between our match and our
            // insert. Sent once more, the upsert now matches an existing
            // document: it applies if that was the race, and collides again
            // only if the marker is really there.
            let again: Vec<usize> = (0..deltas.len())
                .filter(|&i| outcome[i] == Some(Applied::Duplicate))
                .collect();
            if !again.is_empty() {
                let retried: Vec<EntityDelta> = again.iter().map(|&i| deltas[i].clone()).collect();
                let limits = self.limits.get().unwrap_or_default();
                let planned = plan_updates(spec, db, &retried, &limits)?;
                let messages: Vec<Message> = planned.iter().map(|p| p.message.clone()).collect();
                let replies = conn.round_trip(&messages).await?;
                record_outcomes(&planned, &replies, &mut outcome, |j| again[j])?;
            }
            outcome
                .into_iter()
                .map(|o| o.ok_or_else(|| StoreError::Protocol("a delta got no reply".into())))
                .collect()
        })
        .await
    }

    fn count_statements(&self, n: usize) {
        let n = u64::try_from(n).unwrap_or(u64::MAX);
        self.statements.set(self.statements.get().saturating_add(n));
    }

    /// Core's updates as given, in one round trip: each one's outcome.
    async fn run_updates(&self, updates: &[MongoUpdate]) -> Result<Vec<Applied>, StoreError> {
        self.count_statements(updates.len());
        let db = self.url.db.as_str();
        self.exchange(async |conn| {
            let mut planned = Vec::new();
            let replies = self
                .session(conn, |limits| {
                    planned = plan_statements(db, updates, limits)?;
                    Ok(planned.iter().map(|p| p.message.clone()).collect())
                })
                .await?;
            let mut outcome: Vec<Option<Applied>> = vec![None; updates.len()];
            record_outcomes(&planned, &replies, &mut outcome, |i| i)?;
            outcome
                .into_iter()
                .map(|o| o.ok_or_else(|| StoreError::Protocol("a fold got no reply".into())))
                .collect()
        })
        .await
    }
}

/// Each statement's outcome from `replies`, the answers to `planned`, put
/// in `outcome` at `slot` of the statement's index.
fn record_outcomes(
    planned: &[PlannedUpdate],
    replies: &[Document],
    outcome: &mut [Option<Applied>],
    slot: impl Fn(usize) -> usize,
) -> Result<(), StoreError> {
    for (plan, reply) in planned.iter().zip(replies) {
        let applied = parse_update_reply(reply, plan.indices.len())?;
        for (&i, a) in plan.indices.iter().zip(applied) {
            outcome[slot(i)] = Some(a);
        }
    }
    Ok(())
}

impl<C: Connector> FeatureStore for MongoStore<C> {
    fn kind(&self) -> &'static str {
        "mongodb"
    }

    /// One ordered `update` per feature (core's statements), behind a
    /// `createIndexes` of the TTL index the first time in this isolate.
    async fn add_drift(&self, now: Millis, adds: &[(String, Summary)]) -> Result<(), StoreError> {
        if adds.is_empty() {
            return Ok(());
        }
        let db = self.url.db.as_str();
        let index = !self.drift_indexed.get();
        let mut messages = Vec::with_capacity(adds.len() + 1);
        if index {
            messages.push(Message::command(drift_index_command(db)));
        }
        for (feature, summary) in adds {
            messages.push(drift_update(db, update_statements(feature, now, summary)));
        }
        let replies = self
            .exchange(async |conn| self.session(conn, |_| Ok(messages.clone())).await)
            .await?;
        if replies.len() != messages.len() {
            return Err(StoreError::Protocol("a drift update got no reply".into()));
        }
        let mut replies = replies.iter();
        if index {
            if let Some(reply) = replies.next() {
                commands::check_ok(reply).map_err(|e| {
                    StoreError::Server(format!("the drift collection's TTL index: {e}"))
                })?;
            }
            self.drift_indexed.set(true);
        }
        for (reply, message) in replies.zip(&messages[usize::from(index)..]) {
            let statements = message.sequences.first().map_or(0, |q| q.documents.len());
            let applied = parse_update_reply(reply, statements)?;
            if applied.contains(&Applied::Duplicate) {
                return Err(StoreError::Server(
                    "a drift summary's upsert collided with another's".into(),
                ));
            }
        }
        Ok(())
    }

    /// One `find` of every asked feature's hours; a document that does not
    /// decode is its feature's error.
    async fn load_drift(
        &self,
        features: &[String],
        from: Millis,
        to: Millis,
    ) -> Result<Vec<Result<Summary, String>>, StoreError> {
        if features.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<Vec<String>> = features
            .iter()
            .map(|f| hour_ids(f, to, to - from))
            .collect();
        let all: Vec<&str> = ids.iter().flatten().map(String::as_str).collect();
        let n = i32::try_from(all.len()).unwrap_or(i32::MAX);
        let find = Message::command(bson::doc! {
            "find": DRIFT,
            "filter": {"_id": {"$in": all}},
            "batchSize": n,
            "singleBatch": true,
            "$db": self.url.db.as_str(),
        });
        let replies = self
            .exchange(async |conn| self.session(conn, |_| Ok(vec![find.clone()])).await)
            .await?;
        let reply = replies
            .first()
            .ok_or_else(|| StoreError::Protocol("the drift find got no reply".into()))?;
        let found = parse_find_reply(reply)?;
        Ok(ids
            .iter()
            .map(|hours| {
                merge_hours(found.iter().filter_map(|doc| {
                    let id = document_id(doc)?;
                    hours
                        .iter()
                        .any(|h| h == id)
                        .then(|| (id, summary_from_document(doc)))
                }))
            })
            .collect())
    }

    /// Deltas of one entity from several batches (a queue delivery) go as
    /// one fold (core's `fold_deltas`): one statement per entity. A fold
    /// some of whose batches were applied before writes nothing and is
    /// applied again delta by delta, each under its own marker.
    async fn apply(&self, deltas: &[EntityDelta]) -> Result<Vec<Applied>, StoreError> {
        if deltas.is_empty() {
            return Ok(Vec::new());
        }
        if let Some(why) = freshet_core::encode::mongo::unsupported(self.spec) {
            return Err(StoreError::Server(why));
        }
        let folds = fold_deltas(self.spec, deltas);
        if folds.len() == deltas.len() {
            return self.apply_each(deltas).await;
        }
        let updates: Vec<MongoUpdate> = folds.iter().map(|f| folded_update(self.spec, f)).collect();
        let replies = self.run_updates(&updates).await?;
        let mut outcome = vec![Applied::Applied; deltas.len()];
        let mut apart = Vec::new();
        for (fold, reply) in folds.iter().zip(replies) {
            match reply {
                // A duplicate key: a marker was there, or another batch
                // made the document first; alone, each delta tells which.
                Applied::Duplicate => apart.extend(fold.members.iter().copied()),
                Applied::Applied => {}
            }
        }
        if !apart.is_empty() {
            let singles: Vec<EntityDelta> = apart.iter().map(|&i| deltas[i].clone()).collect();
            for (i, applied) in apart.into_iter().zip(self.apply_each(&singles).await?) {
                outcome[i] = applied;
            }
        }
        Ok(outcome)
    }
    async fn delete(&self, keys: &[EntityKey]) -> Result<usize, StoreError> {
        if keys.is_empty() {
            return Ok(0);
        }
        let messages = plan_deletes(&self.url.db, keys);
        self.exchange(async |conn| {
            let replies = self.session(conn, |_| Ok(messages.clone())).await?;
            if replies.len() != messages.len() {
                return Err(StoreError::Protocol("a delete got no reply".into()));
            }
            replies.iter().map(parse_delete_reply).sum()
        })
        .await
    }

    async fn load(&self, reads: &[EntityRead]) -> Result<Vec<FeatureDoc>, StoreError> {
        if reads.is_empty() {
            return Ok(Vec::new());
        }
        // Whole documents: one small document per entity, read by `_id`.
        let keys: Vec<EntityKey> = reads.iter().map(|r| r.key.clone()).collect();
        let planned = plan_finds(&self.url.db, &keys);
        let messages: Vec<Message> = planned.iter().map(|p| p.message.clone()).collect();
        self.exchange(async |conn| {
            let replies = self.session(conn, |_| Ok(messages.clone())).await?;
            let mut docs = vec![FeatureDoc::default(); keys.len()];
            for (plan, reply) in planned.iter().zip(&replies) {
                for found in parse_find_reply(reply)? {
                    let Some(id) = document_id(&found) else {
                        continue;
                    };
                    let json = document_to_json(&found);
                    for &i in plan.indices.iter().filter(|&&i| keys[i].id == id) {
                        let key = &keys[i];
                        docs[i] = decode_document(self.spec, &key.entity, &json).map_err(|e| {
                            StoreError::Corrupt(format!(
                                "{}: {e}",
                                document_name(&key.entity, &key.id)
                            ))
                        })?;
                    }
                }
            }
            if replies.len() != planned.len() {
                return Err(StoreError::Protocol("a find got no reply".into()));
            }
            Ok(docs)
        })
        .await
    }
}
