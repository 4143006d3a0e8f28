//! Sign-in (README, "Identity"; the rule is `core::link`): the gate links a
//! client to the user of its first verified batch, and the edge moves what
//! the client's entities hold to the user's: right after that batch is
//! written (before its 202, so the next read sees the visitor's history
//! under the user), after each later batch of the client, and once more
//! when the store has settled ([`Edge::advance_links`], from the glue's
//! `wait_until` and the cron), for a write that was still on its way.
//!
//! A move is recorded in the client's registry object before it is applied
//! (write-ahead): a runner that dies half-way leaves it for the next, which
//! applies the same move under the same marker and writes the same
//! create-only log object, so it counts once. Two runners at once: the
//! second finds the version moved on and leaves the client to its
//! settle-time move.

use std::collections::BTreeSet;

use freshet_core::erasure::{Principal, Verdict, indexed_of};
use freshet_core::link::{self, Link};
use freshet_core::time::Millis;
use futures_util::future::{join_all, try_join_all};

use super::Edge;
use crate::erasure::{Given, LinkState, PendingMove, Registry, Touch, Touched};
use crate::error::EdgeError;
use crate::event_log::Bucket;
use crate::queue::IngestQueue;
use crate::rate_limit::RateLimit;
use crate::store::{EntityKey, EntityRead, FeatureStore};

/// Clients moved at once by one run of [`Edge::advance_links`].
const MOVES_PER_RUN: usize = 100;

impl<S: FeatureStore, L: RateLimit, B: Bucket, Q: IngestQueue, R: Registry> Edge<S, L, B, Q, R> {
    /// The gate's part in sign-in, given each principal of a batch and the
    /// registry's answer to its touch: links each client a user's batch came
    /// from that the user has no link with yet, and answers the clients to
    /// move once the batch is written (those, and those that follow a user
    /// already). Each is also due again once the store has settled.
    pub(super) async fn link_clients<'a>(
        &self,
        touched: impl Iterator<Item = (&'a Principal, &'a Touched)>,
        now: Millis,
    ) -> Result<Vec<String>, EdgeError> {
        let mut new = Vec::new();
        let mut follow = Vec::new();
        for (principal, t) in touched {
            match principal {
                Principal::User(user) => {
                    new.extend(t.unlinked.iter().map(|c| (c.clone(), user.clone())));
                }
                Principal::Client(client) if t.follows.is_some() => follow.push(client.clone()),
                Principal::Client(_) => {}
            }
        }
        if new.is_empty() && follow.is_empty() {
            return Ok(Vec::new());
        }
        let due = now + self.settle_ms();
        let fail = EdgeError::StoreUnavailable;
        // Confirmed once the first move is done (`move_client`): a batch
        // retried after a failure links again and moves.
        try_join_all(new.iter().map(|(client, user)| async move {
            self.registry.link(client, user, now).await?;
            self.registry.move_due(client, due).await
        }))
        .await
        .map_err(fail)?;
        try_join_all(follow.iter().map(|c| self.registry.move_due(c, due)))
            .await
            .map_err(fail)?;
        follow.extend(new.into_iter().map(|(c, _)| c));
        follow.sort_unstable();
        follow.dedup();
        Ok(follow)
    }

    /// Moves each client's new state to its user, side by side. A move that
    /// fails or finds another runner on the client is left to the
    /// settle-time move the gate asked for; the batch that asked is written
    /// either way. Answers the first failure, for the operator's log.
    pub(crate) async fn move_clients(&self, clients: &[String], now: Millis) -> Option<EdgeError> {
        let done = join_all(clients.iter().map(|c| self.move_client(c, now))).await;
        done.into_iter()
            .find_map(Result::err)
            .map(|e| EdgeError::SignInMove(Box::new(e)))
    }

    /// The moves due at `now` (a settle-time pass, one that failed), up to
    /// [`MOVES_PER_RUN`]; answers how many clients were done.
    pub async fn advance_links(&self, now: Millis) -> Result<usize, EdgeError> {
        let due = self
            .registry
            .moves_due(now)
            .await
            .map_err(EdgeError::StoreUnavailable)?;
        let due = &due[..due.len().min(MOVES_PER_RUN)];
        let done = join_all(due.iter().map(|(c, _)| self.move_client(c, now))).await;
        let mut n = 0;
        let mut failed = None;
        for ((client, at), result) in due.iter().zip(done) {
            match result {
                Ok(true) => {
                    self.registry
                        .moved(client, *at)
                        .await
                        .map_err(EdgeError::StoreUnavailable)?;
                    n += 1;
                }
                Ok(false) => {}
                Err(e) => failed = failed.or(Some(e)),
            }
        }
        failed.map_or(Ok(n), Err)
    }

    /// One move of `client`'s new state to the user it follows. `Ok(false)`
    /// when another runner holds the client (it stays due).
    pub(crate) async fn move_client(&self, client: &str, now: Millis) -> Result<bool, EdgeError> {
        let fail = EdgeError::StoreUnavailable;
        let Some(mut state) = self.registry.load_link(client).await.map_err(fail)? else {
            return Ok(true);
        };
        let read = state.version;
        let pending = match state.pending.take() {
            Some(pending) => pending,
            None => match self.next_move(client, &state, now).await? {
                Some(pending) => pending,
                None => {
                    if !state.confirmed {
                        self.save_moved(client, state, read).await?;
                    }
                    return Ok(true);
                }
            },
        };
        // Write-ahead: recorded before it is applied.
        state.pending = Some(pending.clone());
        state.version = read + 1;
        if !self
            .registry
            .save_link(client, &state, read)
            .await
            .map_err(fail)?
        {
            return Ok(false);
        }
        if self.apply_move(&pending.link, now).await? {
            state.given = pending.given;
            state.seq = pending.link.seq;
        }
        state.pending = None;
        self.save_moved(client, state, read + 1).await?;
        Ok(true)
    }

    /// Saves a link after its move (or none to make), read at version
    /// `read`; the first time, the user's registry object confirms the link
    /// before. Another runner that saved first lost nothing.
    async fn save_moved(
        &self,
        client: &str,
        mut state: LinkState,
        read: u64,
    ) -> Result<(), EdgeError> {
        let fail = EdgeError::StoreUnavailable;
        if !state.confirmed {
            self.registry
                .confirm_client(&state.user, client)
                .await
                .map_err(fail)?;
            state.confirmed = true;
        }
        state.version = read + 1;
        self.registry
            .save_link(client, &state, read)
            .await
            .map_err(fail)?;
        Ok(())
    }

    /// The client's next move: its documents now against what the moves so
    /// far gave; `None` when nothing is new.
    async fn next_move(
        &self,
        client: &str,
        state: &LinkState,
        now: Millis,
    ) -> Result<Option<PendingMove>, EdgeError> {
        let fail = EdgeError::StoreUnavailable;
        let mut keys = link::own_keys(self.spec, client);
        let index = self
            .registry
            .index(&Principal::Client(client.to_owned()))
            .await
            .map_err(fail)?;
        keys.extend(
            index
                .composites
                .into_iter()
                .filter(|(e, id)| link::rekey(self.spec, e, id, client, &state.user).is_some()),
        );
        let reads: Vec<EntityRead> = keys
            .iter()
            .map(|(e, id)| EntityRead::new(EntityKey::new(e, id), None))
            .collect();
        let docs = self.store.load(&reads).await?;
        let now_docs: Vec<(String, String, _)> = keys
            .into_iter()
            .zip(docs)
            .map(|((e, id), doc)| (e, id, doc))
            .collect();
        let moves = link::moves(
            self.spec,
            client,
            &state.user,
            &now_docs,
            &state.given_map(),
        );
        if moves.is_empty() {
            return Ok(None);
        }
        let given = now_docs
            .into_iter()
            .map(|(entity, id, doc)| Given {
                entity,
                id,
                features: doc.features,
            })
            .collect();
        Ok(Some(PendingMove {
            link: Link {
                client: client.to_owned(),
                user: state.user.clone(),
                seq: state.seq + 1,
                at: now,
                moves,
            },
            given,
        }))
    }

    /// Applies a move and logs it, through the user's erasure gate (which
    /// also indexes what the move wrote for the user). `Ok(false)`: the
    /// user was erased, nothing applied.
    async fn apply_move(&self, link: &Link, now: Millis) -> Result<bool, EdgeError> {
        let fail = EdgeError::StoreUnavailable;
        let logged = link.to_logged("", self.spec.hash());
        let deltas = link.deltas();
        let user = Principal::User(link.user.clone());
        let touch = Touch {
            composites: indexed_of(self.spec, &deltas, &user, &BTreeSet::new()),
            log_keys: self.log_keys_of(&logged),
            clients: Vec::new(),
        };
        let touched = self.registry.touch(&user, &touch).await.map_err(fail)?;
        match touched.tomb.map(|t| t.verdict(link.at, now)) {
            Some(Verdict::Drop) => return Ok(false),
            Some(Verdict::Wait { .. }) => {
                return Err(EdgeError::Erasing {
                    retry_after_s: u32::try_from(self.settle_ms() / 1000).unwrap_or(60),
                });
            }
            Some(Verdict::Keep) | None => {}
        }
        self.store_and_log(&deltas, &logged).await?;
        Ok(true)
    }
}
