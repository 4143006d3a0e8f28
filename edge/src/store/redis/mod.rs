//! Redis over a TCP socket (`worker::Socket` in the worker, a tokio stream in
//! the native tests). Per exchange: a pooled connection or a new one, then one
//! pipelined round trip of one `EVALSHA` per entity delta of the batch, with
//! `AUTH`/`SELECT` from the URL at its head on a new connection; `NOSCRIPT`
//! answers are re-sent as `EVAL` (which also loads the script). The whole
//! exchange is bounded by the store timeout. The pool keeps connections only
//! where they outlive a request (the `StoreGateway` Durable Object); a pooled
//! connection that fails with an I/O error (the server restarted while it was
//! idle) is dropped and the exchange runs again once on a new one, which is
//! safe because the script applies a batch at most once. A cluster URL
//! routes each command to its slot's node instead (`cluster.rs`); the
//! operations below are written once, over a [`Link`] to either.

mod cluster;
mod conn;
mod resp;
#[cfg(target_arch = "wasm32")]
mod socket;

#[cfg(test)]
mod cluster_tests;
#[cfg(test)]
mod integration_tests;

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};

use freshet_core::drift::store::{REDIS_ADD_SCRIPT, redis_add_args, summary_from_fields};
use freshet_core::drift::{Summary, hour_keys, merge_hours, summary_key};
use freshet_core::encode::redis::{
    ApplyCall, ApplyReply, DecodeError, EntityKeys, RedisCommand, RedisValue, apply_call,
    apply_script_sha1, decode_layout1_for, decode_state_for, erase_command, folded_apply_call,
    is_layout2_store, is_unwritten, layout_mark_read, layout1_read_commands_for, migrate_call,
    migrate_reads, migrate_watch, read_commands_for,
};
use freshet_core::fold::fold_deltas;
use freshet_core::read::resolve_names;
use freshet_core::spec::FeatureSpec;
use freshet_core::state::{Applied, EntityDelta, FeatureDoc};
use freshet_core::time::Millis;
use futures_util::future::{Either, select};
use tokio::io::{AsyncRead, AsyncWrite};

use cluster::ClusterState;
pub use cluster::ClusterStats;
pub use conn::Connection;
pub use freshet_core::store_url::RedisUrl;
#[cfg(target_arch = "wasm32")]
pub use socket::SocketConnector;

use super::pool::{Pool, PoolLimits};
use super::{EntityKey, EntityRead, FeatureStore, StoreError};

/// How the store reaches a server, waits and tells the time: the worker's
/// socket, timer and clock, or tokio's in native tests.
#[allow(async_fn_in_trait)]
pub trait Connector {
    type Conn: AsyncRead + AsyncWrite + Unpin;
    async fn connect(&self, url: &RedisUrl) -> std::io::Result<Self::Conn>;
    fn sleep(&self, ms: u64) -> impl Future<Output = ()>;
    /// Milliseconds on any fixed scale, for the pool's idle ages.
    fn now_ms(&self) -> f64;
}

#[derive(Debug)]
pub struct RedisStore<C: Connector> {
    spec: &'static FeatureSpec,
    url: RedisUrl,
    script_sha1: String,
    timeout_ms: u64,
    connector: C,
    pool: Pool<Connection<C::Conn>>,
    /// Seen the store's layout mark: it holds no layout 1 (core's `layout_mark`).
    /// A cluster is layout 2 from the start: no edge before this one wrote to one.
    layout2: AtomicBool,
    /// The slot map and a pool per node, for a `redis+cluster://` URL.
    cluster: Option<ClusterState<Connection<C::Conn>>>,
}

/// Where an operation's pipelines go: one connection to the one server for
/// the whole operation, or the cluster's nodes, each pipeline split by slot.
enum Link<'a, C: Connector> {
    One(&'a RedisStore<C>, &'a mut Connection<C::Conn>),
    Cluster(&'a RedisStore<C>),
}

impl<C: Connector> Link<'_, C> {
    /// Sends `commands` and gives one reply each, in order.
    async fn send(&mut self, commands: Vec<RedisCommand>) -> Result<Vec<RedisValue>, StoreError> {
        match self {
            Link::One(store, conn) => store.run(conn, commands).await,
            Link::Cluster(store) => store.cluster_send(commands).await,
        }
    }
}

impl<C: Connector> RedisStore<C> {
    /// A store that opens a connection per exchange (the worker's own requests).
    pub fn new(spec: &'static FeatureSpec, url: RedisUrl, timeout_ms: u64, connector: C) -> Self {
        Self::pooled(spec, url, timeout_ms, connector, PoolLimits::NONE)
    }

    /// A store that keeps up to `limits.max_idle` connections between exchanges.
    pub fn pooled(
        spec: &'static FeatureSpec,
        url: RedisUrl,
        timeout_ms: u64,
        connector: C,
        limits: PoolLimits,
    ) -> Self {
        Self {
            spec,
            script_sha1: apply_script_sha1(),
            timeout_ms,
            connector,
            pool: Pool::new(limits),
            layout2: AtomicBool::new(url.cluster),
            cluster: url.cluster.then(|| ClusterState::new(limits)),
            url,
        }
    }

    /// What the store met of its cluster's changes (`None` for one server).
    pub fn cluster_stats(&self) -> Option<ClusterStats> {
        self.cluster.as_ref().map(ClusterState::stats)
    }

    /// Idle pooled connections (for tests and logs).
    pub fn idle_connections(&self) -> usize {
        match &self.cluster {
            Some(cluster) => cluster.idle(),
            None => self.pool.idle(),
        }
    }

    /// Runs `work` over a link to the store within the timeout: on a pooled
    /// connection or a new one (the reconnect after a dead pooled
    /// connection included), or through the cluster.
    async fn exchange<T>(
        &self,
        work: impl AsyncFn(&mut Link<'_, C>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if self.cluster.is_some() {
            let run = async || work(&mut Link::Cluster(self)).await;
            return self.within_timeout(run()).await;
        }
        let connect = async || {
            let stream = self
                .connector
                .connect(&self.url)
                .await
                .map_err(|e| StoreError::Io(format!("connect: {e}")))?;
            Ok(Connection::new(stream))
        };
        let run = self.pool.run(
            || self.connector.now_ms(),
            connect,
            async |conn| work(&mut Link::One(self, conn)).await,
        );
        self.within_timeout(run).await
    }

    /// `run`, or a timeout error once the store's timeout has passed.
    async fn within_timeout<T>(
        &self,
        run: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        match select(pin!(run), pin!(self.connector.sleep(self.timeout_ms))).await {
            Either::Left((result, _)) => result,
            // The connection in use is dropped with `run`, never pooled.
            Either::Right(((), _)) => Err(StoreError::Timeout {
                ms: self.timeout_ms,
            }),
        }
    }

    /// `AUTH` and `SELECT` from the URL, sent at the head of the pipeline.
    fn prelude(&self) -> Vec<RedisCommand> {
        let mut out = Vec::new();
        if let Some(password) = &self.url.password {
            let mut auth = vec![b"AUTH".to_vec()];
            if let Some(user) = &self.url.username {
                auth.push(user.as_bytes().to_vec());
            }
            auth.push(password.expose().as_bytes().to_vec());
            out.push(RedisCommand(auth));
        }
        if self.url.db != 0 {
            out.push(RedisCommand::new([
                "SELECT".to_owned(),
                self.url.db.to_string(),
            ]));
        }
        out
    }

    /// Sends prelude (on a new connection) + `commands`, checks the
    /// prelude's answers, and gives the commands' replies.
    async fn run(
        &self,
        conn: &mut Connection<C::Conn>,
        commands: Vec<RedisCommand>,
    ) -> Result<Vec<RedisValue>, StoreError> {
        let mut all = if conn.is_set_up() {
            Vec::new()
        } else {
            self.prelude()
        };
        let skip = all.len();
        all.extend(commands);
        let mut replies = conn.pipeline(&all).await?;
        for reply in replies.drain(..skip) {
            if let RedisValue::Error(e) = reply {
                // AUTH/SELECT errors name no secret, but keep only the code.
                let code = e.split_whitespace().next().unwrap_or("ERR").to_owned();
                return Err(StoreError::Server(format!(
                    "connection setup refused: {code}"
                )));
            }
        }
        conn.mark_set_up();
        Ok(replies)
    }
}

impl<C: Connector> RedisStore<C> {
    /// Moves one entity from layout 1 to layout 2 (core's `migrate_call`):
    /// `WATCH` its layout-1 keys, read them, then the move in
    /// `MULTI`/`EXEC`, which Redis aborts if an edge of the version before
    /// wrote them in between; then read again and retry, a few times.
    async fn migrate(&self, link: &mut Link<'_, C>, delta: &EntityDelta) -> Result<(), StoreError> {
        // Layout 1 was never written to a cluster (no edge before this one spoke to one).
        let Link::One(_, conn) = link else {
            return Err(StoreError::Corrupt(format!(
                "{}/{}: layout-1 state in a cluster",
                delta.entity, delta.id
            )));
        };
        let (prefix, entity, id) = (
            self.url.prefix.as_str(),
            delta.entity.as_str(),
            delta.id.as_str(),
        );
        for _ in 0..5 {
            let mut watch = vec![b"WATCH".to_vec()];
            watch.extend(
                migrate_watch(self.spec, prefix, entity, id)
                    .into_iter()
                    .map(String::into_bytes),
            );
            let mut reads = vec![RedisCommand(watch)];
            reads.extend(migrate_reads(self.spec, prefix, entity, id));
            let replies = self.run(conn, reads).await?;
            let call = migrate_call(
                self.spec,
                prefix,
                entity,
                id,
                &replies[1..],
                delta.received_at,
            )
            .map_err(|e| StoreError::Corrupt(format!("{entity}/{id}: {e}")))?;
            let exec = vec![
                RedisCommand::new(["MULTI"]),
                call.eval(),
                RedisCommand::new(["EXEC"]),
            ];
            let replies = self.run(conn, exec).await?;
            match replies.last() {
                Some(RedisValue::Array(done)) => {
                    if let Some(RedisValue::Error(e)) = done.first() {
                        return Err(StoreError::Server(e.clone()));
                    }
                    return Ok(());
                }
                // Aborted: a watched key changed.
                Some(RedisValue::Nil) => continue,
                other => {
                    return Err(StoreError::Protocol(format!(
                        "unexpected EXEC reply {other:?}"
                    )));
                }
            }
        }
        Err(StoreError::Server(format!(
            "{entity}/{id}: its layout-1 state kept changing during its migration"
        )))
    }
}

impl<C: Connector> RedisStore<C> {
    /// One script call per delta, all in one round trip.
    async fn apply_each(&self, deltas: &[EntityDelta]) -> Result<Vec<Applied>, StoreError> {
        let calls = deltas
            .iter()
            .map(|d| apply_call(self.spec, &self.url.prefix, d))
            .collect();
        self.run_applies(deltas, calls).await
    }

    /// Sends the apply calls in one round trip (again as `EVAL` where the
    /// server lost the script; after migrating an entity still in layout
    /// 1). A fold's "some applied before" ([`ApplyReply::Partly`]) comes
    /// back as `Duplicate`, which for a fold means: apply its deltas apart.
    async fn run_applies(
        &self,
        deltas: &[EntityDelta],
        calls: Vec<ApplyCall>,
    ) -> Result<Vec<Applied>, StoreError> {
        let commands: Vec<RedisCommand> =
            calls.iter().map(|c| c.evalsha(&self.script_sha1)).collect();
        self.exchange(async |link| {
            let replies = link.send(commands.clone()).await?;
            let mut outcome: Vec<Option<ApplyReply>> = vec![None; deltas.len()];
            let mut retry = Vec::new();
            for (i, reply) in replies.into_iter().enumerate() {
                match reply {
                    RedisValue::Error(e) if e.starts_with("NOSCRIPT") => retry.push(i),
                    other => outcome[i] = Some(script_answer(&other)?),
                }
            }
            if !retry.is_empty() {
                // EVAL runs the same script and caches it for later EVALSHAs.
                let evals = retry.iter().map(|&i| calls[i].eval()).collect();
                let replies = link.send(evals).await?;
                for (&i, reply) in retry.iter().zip(replies) {
                    outcome[i] = Some(script_answer(&reply)?);
                }
            }
            // Entities still in layout 1: moved to layout 2, then applied.
            for (i, reply) in outcome.iter_mut().enumerate() {
                if *reply == Some(ApplyReply::NeedsMigration) {
                    self.migrate(link, &deltas[i]).await?;
                    let again = link.send(vec![calls[i].eval()]).await?;
                    *reply = Some(script_answer(again.first().unwrap_or(&RedisValue::Nil))?);
                }
            }
            outcome
                .into_iter()
                .map(|o| match o {
                    Some(ApplyReply::Applied) => Ok(Applied::Applied),
                    Some(ApplyReply::Duplicate | ApplyReply::Partly) => Ok(Applied::Duplicate),
                    Some(ApplyReply::NeedsMigration) => Err(StoreError::Protocol(
                        "the entity still holds layout-1 state after its migration".into(),
                    )),
                    None => Err(StoreError::Protocol("a delta got no reply".into())),
                })
                .collect()
        })
        .await
    }
}

impl<C: Connector> FeatureStore for RedisStore<C> {
    fn kind(&self) -> &'static str {
        "redis"
    }

    /// Deltas of one entity from several batches (a queue delivery) go as
    /// one fold (core's `fold_deltas`): one script call per entity. A fold
    /// some of whose batches were applied before changes nothing and is
    /// applied again delta by delta, each under its own marker.
    async fn apply(&self, deltas: &[EntityDelta]) -> Result<Vec<Applied>, StoreError> {
        if deltas.is_empty() {
            return Ok(Vec::new());
        }
        let folds = fold_deltas(self.spec, deltas);
        if folds.len() == deltas.len() {
            return self.apply_each(deltas).await;
        }
        let folded: Vec<EntityDelta> = folds.iter().map(|f| f.delta.clone()).collect();
        let calls = folds
            .iter()
            .map(|f| folded_apply_call(self.spec, &self.url.prefix, f))
            .collect();
        let replies = self.run_applies(&folded, calls).await?;
        let mut outcome = vec![Applied::Applied; deltas.len()];
        let mut apart = Vec::new();
        for (fold, reply) in folds.iter().zip(replies) {
            match reply {
                Applied::Applied | Applied::Duplicate if !fold.is_fold() => {
                    outcome[fold.members[0]] = reply;
                }
                Applied::Applied => {}
                Applied::Duplicate => apart.extend(fold.members.iter().copied()),
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

    /// One `DEL` per entity of every key it can have (core's
    /// `erase_command`), all in one pipeline.
    async fn delete(&self, keys: &[EntityKey]) -> Result<usize, StoreError> {
        if keys.is_empty() {
            return Ok(0);
        }
        let commands: Vec<RedisCommand> = keys
            .iter()
            .map(|k| {
                erase_command(
                    self.spec,
                    &EntityKeys {
                        prefix: &self.url.prefix,
                        entity: &k.entity,
                        id: &k.id,
                    },
                )
            })
            .collect();
        self.exchange(async |link| {
            let mut found = 0;
            for reply in link.send(commands.clone()).await? {
                match reply {
                    RedisValue::Int(n) => found += usize::from(n > 0),
                    RedisValue::Error(e) => return Err(StoreError::Server(e)),
                    other => {
                        return Err(StoreError::Protocol(format!("DEL answered {other:?}")));
                    }
                }
            }
            Ok(found)
        })
        .await
    }

    async fn add_drift(&self, now: Millis, adds: &[(String, Summary)]) -> Result<(), StoreError> {
        if adds.is_empty() {
            return Ok(());
        }
        // EVAL, not EVALSHA: a sampled read is rare and the script is short.
        let commands: Vec<RedisCommand> = adds
            .iter()
            .map(|(feature, summary)| {
                let mut parts = vec![
                    "EVAL".to_owned(),
                    REDIS_ADD_SCRIPT.to_owned(),
                    "1".to_owned(),
                    summary_key(&self.url.prefix, feature, now),
                ];
                parts.extend(redis_add_args(summary));
                RedisCommand::new(parts)
            })
            .collect();
        self.exchange(async |link| {
            for reply in link.send(commands.clone()).await? {
                if let RedisValue::Error(e) = reply {
                    return Err(StoreError::Server(e));
                }
            }
            Ok(())
        })
        .await
    }

    async fn load_drift(
        &self,
        features: &[String],
        from: Millis,
        to: Millis,
    ) -> Result<Vec<Result<Summary, String>>, StoreError> {
        let keys: Vec<Vec<String>> = features
            .iter()
            .map(|f| hour_keys(&self.url.prefix, f, to, to - from))
            .collect();
        let commands: Vec<RedisCommand> = keys
            .iter()
            .flatten()
            .map(|k| RedisCommand::new(["HGETALL".to_owned(), k.clone()]))
            .collect();
        if commands.is_empty() {
            return Ok(Vec::new());
        }
        let replies = self
            .exchange(async |link| link.send(commands.clone()).await)
            .await?;
        let mut replies = replies.into_iter();
        Ok(keys
            .iter()
            .map(|hours| {
                merge_hours(hours.iter().zip(&mut replies).map(|(key, reply)| {
                    let hour = hash_fields(reply)
                        .and_then(|f| summary_from_fields(f).map_err(|e| e.to_string()));
                    (key, hour)
                }))
            })
            .collect())
    }

    async fn load(&self, reads: &[EntityRead]) -> Result<Vec<FeatureDoc>, StoreError> {
        if reads.is_empty() {
            return Ok(Vec::new());
        }
        // The storage keys (`name@version`) of the features each read names;
        // `None` reads them all (also for a name the spec does not know, which
        // the routes refuse before asking).
        let wanted: Vec<Option<Vec<&str>>> = reads
            .iter()
            .map(|r| {
                let names = r.names.as_deref()?;
                let defs = resolve_names(self.spec, &r.key.entity, Some(names)).ok()?;
                Some(defs.iter().map(|(_, def)| def.key()).collect())
            })
            .collect();
        let prefix = self.url.prefix.as_str();
        let mut commands = Vec::new();
        let mut counts = Vec::with_capacity(reads.len());
        for (read, wanted) in reads.iter().zip(&wanted) {
            let key: &EntityKey = &read.key;
            let part =
                read_commands_for(self.spec, prefix, &key.entity, &key.id, wanted.as_deref());
            counts.push(part.len());
            commands.extend(part);
        }
        // Until the store is seen marked as wholly in layout 2, the mark is
        // asked with the reads, and an entity layout 2 holds nothing of is
        // read again in layout 1.
        let ask_mark = !self.layout2.load(Ordering::Relaxed);
        if ask_mark {
            commands.push(layout_mark_read(prefix));
        }
        self.exchange(async |link| {
            let mut replies = link.send(commands.clone()).await?;
            if ask_mark {
                let mark = replies
                    .pop()
                    .ok_or_else(|| StoreError::Protocol("too few replies".into()))?;
                if is_layout2_store(&mark) {
                    self.layout2.store(true, Ordering::Relaxed);
                }
            }
            let layout2 = self.layout2.load(Ordering::Relaxed);
            let mut docs = Vec::with_capacity(reads.len());
            let mut unwritten = Vec::new();
            let mut at = 0;
            for (i, ((read, wanted), n)) in reads
                .iter()
                .zip(&wanted)
                .zip(counts.iter().copied())
                .enumerate()
            {
                let key = &read.key;
                let part = replies
                    .get(at..at + n)
                    .ok_or_else(|| StoreError::Protocol("too few replies".into()))?;
                server_error(part)?;
                if !layout2 && is_unwritten(part) {
                    unwritten.push(i);
                }
                let doc = decode_state_for(self.spec, &key.entity, wanted.as_deref(), part)
                    .map_err(|e| corrupt(prefix, key, e))?;
                docs.push(doc);
                at += n;
            }
            if unwritten.is_empty() {
                return Ok(docs);
            }
            let mut old = Vec::new();
            let mut old_counts = Vec::with_capacity(unwritten.len());
            for &i in &unwritten {
                let key = &reads[i].key;
                let part = layout1_read_commands_for(
                    self.spec,
                    prefix,
                    &key.entity,
                    &key.id,
                    wanted[i].as_deref(),
                );
                old_counts.push(part.len());
                old.extend(part);
            }
            let replies = link.send(old).await?;
            let mut at = 0;
            for (&i, n) in unwritten.iter().zip(old_counts) {
                let key = &reads[i].key;
                let part = replies
                    .get(at..at + n)
                    .ok_or_else(|| StoreError::Protocol("too few replies".into()))?;
                server_error(part)?;
                docs[i] = decode_layout1_for(self.spec, &key.entity, wanted[i].as_deref(), part)
                    .map_err(|e| corrupt(prefix, key, e))?;
                at += n;
            }
            Ok(docs)
        })
        .await
    }
}

/// The first error reply among an entity's replies, as the store's error.
fn server_error(replies: &[RedisValue]) -> Result<(), StoreError> {
    match replies.iter().find(|r| matches!(r, RedisValue::Error(_))) {
        Some(RedisValue::Error(e)) => Err(StoreError::Server(e.clone())),
        _ => Ok(()),
    }
}

/// State that does not decode, naming the hash it was read from: layout
/// 1's when read from it.
fn corrupt(prefix: &str, key: &EntityKey, e: DecodeError) -> StoreError {
    let keys = EntityKeys {
        prefix,
        entity: &key.entity,
        id: &key.id,
    };
    let hash = if e.layout1 {
        keys.layout1_hash()
    } else {
        keys.hash()
    };
    StoreError::Corrupt(format!("{hash}: {e}"))
}

/// The apply script's answer (core's [`ApplyReply`]).
fn script_answer(reply: &RedisValue) -> Result<ApplyReply, StoreError> {
    match reply {
        RedisValue::Error(e) => Err(StoreError::Server(e.clone())),
        other => ApplyReply::from_reply(other).map_err(|e| StoreError::Protocol(e.to_string())),
    }
}

/// The field/value pairs of an `HGETALL` reply (RESP2 array or RESP3 map).
fn hash_fields(reply: RedisValue) -> Result<Vec<(String, String)>, String> {
    let text = |v: RedisValue| match v {
        RedisValue::Bulk(b) => String::from_utf8(b).map_err(|_| "a field is not UTF-8".to_owned()),
        RedisValue::Simple(s) => Ok(s),
        RedisValue::Int(i) => Ok(i.to_string()),
        other => Err(format!("unexpected reply {other:?}")),
    };
    match reply {
        RedisValue::Array(items) => {
            let mut out = Vec::with_capacity(items.len() / 2);
            let mut it = items.into_iter();
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                out.push((text(k)?, text(v)?));
            }
            Ok(out)
        }
        RedisValue::Map(pairs) => pairs
            .into_iter()
            .map(|(k, v)| Ok((text(k)?, text(v)?)))
            .collect(),
        RedisValue::Nil => Ok(Vec::new()),
        RedisValue::Error(e) => Err(format!("server error: {e}")),
        other => Err(format!("not a hash: {other:?}")),
    }
}
