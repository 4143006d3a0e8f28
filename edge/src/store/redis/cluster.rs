//! A Redis Cluster behind one store (`redis+cluster://h1:p1,h2:p2`): each
//! command goes to the master of its key's slot (core's `cluster` module),
//! one pipeline per node, the nodes' pipelines side by side. The slot map
//! comes from `CLUSTER SHARDS`, asked of any node that answers (the URL's
//! seeds, then the masters last seen), and is asked again after a `MOVED`
//! or a node that does not answer. `ASK` sends that one command to the node
//! importing its slot, after `ASKING`. A command refused for a moment
//! (`TRYAGAIN` mid-migration, `CLUSTERDOWN`/`MASTERDOWN` during a failover)
//! and a node that does not answer are retried with a growing pause, within
//! the store's timeout. Re-sending an apply is safe: the script applies a
//! batch at most once; so is re-sending a read.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use freshet_core::encode::redis::cluster::{Node, Redirect, SlotMap, command_slot, is_transient};
use freshet_core::encode::redis::{RedisCommand, RedisValue};
use futures_util::future::join_all;

use super::{Connection, Connector, RedisStore};
use crate::store::StoreError;
use crate::store::pool::{Pool, PoolLimits};

/// Rounds of sending before the store gives up (the timeout usually ends
/// it first): redirections and retries each take one.
const ROUNDS: u32 = 24;

/// The pause before round `n + 1` after a refused command or a silent
/// node: 25 ms doubling to 400 ms (a replica's promotion takes about the
/// cluster's `cluster-node-timeout`).
fn pause_ms(round: u32) -> u64 {
    (25u64 << round.min(4)).min(400)
}

/// What a store met of the cluster's changes since it started (for tests,
/// benchmarks and logs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClusterStats {
    /// `MOVED` replies: a slot had moved for good.
    pub moved: u64,
    /// `ASK` replies: a slot mid-migration.
    pub asked: u64,
    /// Commands sent again after a refusal or a node that did not answer.
    pub retried: u64,
    /// Slot maps asked for.
    pub refreshes: u64,
}

/// What a store keeps of a cluster: the slot map and a pool per node.
#[derive(Debug)]
pub struct ClusterState<T> {
    map: RefCell<Rc<SlotMap>>,
    pools: RefCell<Vec<(Node, Rc<Pool<T>>)>>,
    limits: PoolLimits,
    stats: Cell<ClusterStats>,
}

impl<T> ClusterState<T> {
    pub fn new(limits: PoolLimits) -> Self {
        Self {
            map: RefCell::new(Rc::new(SlotMap::default())),
            pools: RefCell::new(Vec::new()),
            limits,
            stats: Cell::new(ClusterStats::default()),
        }
    }

    pub fn stats(&self) -> ClusterStats {
        self.stats.get()
    }

    fn count(&self, add: impl FnOnce(&mut ClusterStats)) {
        let mut stats = self.stats.get();
        add(&mut stats);
        self.stats.set(stats);
    }

    fn map(&self) -> Rc<SlotMap> {
        self.map.borrow().clone()
    }

    fn pool(&self, node: &Node) -> Rc<Pool<T>> {
        let mut pools = self.pools.borrow_mut();
        if let Some((_, pool)) = pools.iter().find(|(n, _)| n == node) {
            return pool.clone();
        }
        let pool = Rc::new(Pool::new(self.limits));
        pools.push((node.clone(), pool.clone()));
        pool
    }

    /// Idle connections over every node.
    pub fn idle(&self) -> usize {
        self.pools.borrow().iter().map(|(_, p)| p.idle()).sum()
    }
}

/// What the last round left to do.
#[derive(Default)]
struct Round {
    refresh: bool,
    pause: bool,
    last_error: Option<StoreError>,
}

impl<C: Connector> RedisStore<C> {
    fn cluster(&self) -> &ClusterState<Connection<C::Conn>> {
        self.cluster
            .as_ref()
            .unwrap_or_else(|| unreachable!("cluster routing on a single-node store"))
    }

    /// One pipeline on one node, on a pooled connection or a new one.
    async fn on_node(
        &self,
        node: &Node,
        commands: Vec<RedisCommand>,
    ) -> Result<Vec<RedisValue>, StoreError> {
        let pool = self.cluster().pool(node);
        let mut url = self.url.clone();
        url.host.clone_from(&node.0);
        url.port = node.1;
        let connect = async || {
            let stream =
                self.connector.connect(&url).await.map_err(|e| {
                    StoreError::Io(format!("connect to {}:{}: {e}", node.0, node.1))
                })?;
            Ok(Connection::new(stream))
        };
        pool.run(
            || self.connector.now_ms(),
            connect,
            async |conn| self.run(conn, commands.clone()).await,
        )
        .await
    }

    /// Asks `CLUSTER SHARDS` of the masters last seen, then the URL's seeds,
    /// and keeps the first whole answer.
    async fn refresh_slots(&self) -> Result<(), StoreError> {
        self.cluster().count(|s| s.refreshes += 1);
        let mut ask: Vec<Node> = self.cluster().map().masters();
        for seed in &self.url.nodes {
            if !ask.contains(seed) {
                ask.push(seed.clone());
            }
        }
        let mut last = StoreError::Io("no cluster node to ask for the slot map".into());
        for node in &ask {
            let reply = match self
                .on_node(node, vec![RedisCommand::new(["CLUSTER", "SHARDS"])])
                .await
            {
                Ok(mut replies) => replies.pop().unwrap_or(RedisValue::Nil),
                Err(e) => {
                    last = e;
                    continue;
                }
            };
            if let RedisValue::Error(e) = &reply {
                last = StoreError::Server(format!("CLUSTER SHARDS: {e}"));
                continue;
            }
            let map = SlotMap::from_shards(&reply, self.url.tls).map_err(StoreError::Protocol)?;
            *self.cluster().map.borrow_mut() = Rc::new(map);
            return Ok(());
        }
        Err(last)
    }

    /// Sends `commands` to the nodes serving their slots and gives their
    /// replies in order, following redirections and retrying what a node
    /// refused for a moment.
    pub(super) async fn cluster_send(
        &self,
        commands: Vec<RedisCommand>,
    ) -> Result<Vec<RedisValue>, StoreError> {
        let mut replies: Vec<Option<RedisValue>> = vec![None; commands.len()];
        let mut asked: Vec<Option<Node>> = vec![None; commands.len()];
        let mut round = Round {
            refresh: self.cluster().map().covered() == 0,
            ..Round::default()
        };
        for n in 0..ROUNDS {
            if round.pause {
                self.connector.sleep(pause_ms(n)).await;
            }
            if round.refresh {
                // A silent seed or a failed master: the next round tries again.
                if let Err(e) = self.refresh_slots().await {
                    round = Round {
                        refresh: true,
                        pause: true,
                        last_error: Some(e),
                    };
                    continue;
                }
            }
            let map = self.cluster().map();
            let mut next = Round::default();
            let mut groups: Vec<(Node, Vec<usize>)> = Vec::new();
            for (i, _) in replies.iter().enumerate().filter(|(_, r)| r.is_none()) {
                let node = asked[i]
                    .clone()
                    .or_else(|| match command_slot(&commands[i]) {
                        Some(slot) => map.node(slot).cloned(),
                        None => map.masters().into_iter().next(),
                    });
                let Some(node) = node else {
                    // A slot no master serves yet: a failover under way.
                    next.refresh = true;
                    next.pause = true;
                    continue;
                };
                match groups.iter_mut().find(|(n, _)| *n == node) {
                    Some((_, group)) => group.push(i),
                    None => groups.push((node, vec![i])),
                }
            }
            if groups.is_empty() {
                round = next;
                continue;
            }
            let sent = join_all(groups.iter().map(|(node, group)| {
                let mut pipeline = Vec::with_capacity(group.len());
                for &i in group {
                    if asked[i].is_some() {
                        pipeline.push(RedisCommand::new(["ASKING"]));
                    }
                    pipeline.push(commands[i].clone());
                }
                self.on_node(node, pipeline)
            }))
            .await;
            round = next;
            for ((node, group), result) in groups.into_iter().zip(sent) {
                let node_replies = match result {
                    Ok(r) => r,
                    // A master that does not answer: failed, or its slots moved.
                    Err(e @ (StoreError::Io(_) | StoreError::Timeout { .. })) => {
                        round.refresh = true;
                        round.pause = true;
                        round.last_error = Some(e);
                        self.cluster().count(|s| s.retried += group.len() as u64);
                        for &i in &group {
                            asked[i] = None;
                        }
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                let mut node_replies = node_replies.into_iter();
                for &i in &group {
                    if asked[i].take().is_some() {
                        // ASKING's +OK.
                        node_replies.next();
                    }
                    let reply = node_replies
                        .next()
                        .ok_or_else(|| StoreError::Protocol("too few replies".into()))?;
                    let RedisValue::Error(e) = &reply else {
                        replies[i] = Some(reply);
                        continue;
                    };
                    match Redirect::parse(e, &node.0) {
                        Some(Redirect::Moved { .. }) => {
                            self.cluster().count(|s| s.moved += 1);
                            round.refresh = true;
                        }
                        Some(Redirect::Ask { node, .. }) => {
                            self.cluster().count(|s| s.asked += 1);
                            asked[i] = Some(node);
                        }
                        None if is_transient(e) => {
                            self.cluster().count(|s| s.retried += 1);
                            round.pause = true;
                            round.last_error = Some(StoreError::Server(e.clone()));
                            // A master demoted by a failover answers READONLY.
                            round.refresh |= e.starts_with("READONLY");
                        }
                        None => replies[i] = Some(reply),
                    }
                }
            }
            if replies.iter().all(Option::is_some) {
                return Ok(replies.into_iter().flatten().collect());
            }
        }
        Err(round.last_error.unwrap_or_else(|| {
            StoreError::Server(format!(
                "the cluster still redirected after {ROUNDS} rounds"
            ))
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_grow_to_a_cap() {
        let pauses: Vec<u64> = (0..7).map(pause_ms).collect();
        assert_eq!(pauses, [25, 50, 100, 200, 400, 400, 400]);
    }
}
