//! Erasure's durable state (README, "Erasure"): per principal (a verified
//! user or an anonymous client) its tombstone, the composite entities and
//! log objects its batches wrote, and, for a user, the clients it signed in
//! from; and the erasure records with their progress. Kept behind
//! [`Registry`]: one Durable Object per principal and one for the records in
//! the worker (`object.rs`), [`MemoryRegistry`] in the native tests. What an
//! erasure removes is `core::erasure`'s to decide.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use freshet_core::erasure::{Principal, Tombstone};
use freshet_core::time::Millis;
use serde::{Deserialize, Serialize};

use crate::store::StoreError;

mod link;
#[cfg(target_arch = "wasm32")]
pub mod object;
mod record;

pub use link::{Given, LinkState, PendingMove};
pub use record::{Erasure, PartDone};

/// What one batch adds to its principal's index.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Touch {
    /// Entities it wrote that hold the principal's data under another id:
    /// composites with it as a part, entities keyed by its sessions.
    pub composites: Vec<(String, String)>,
    /// The log object it went to.
    pub log_keys: Vec<String>,
    /// For a user: the clients it was verified from.
    pub clients: Vec<String>,
}

/// What was indexed of a principal.
pub type Index = Touch;

/// What the registry answers a touch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Touched {
    pub tomb: Option<Tombstone>,
    /// For a user: the clients of the touch it has no confirmed link with
    /// yet ([`Registry::confirm_client`], after the link's first move).
    pub unlinked: Vec<String>,
    /// For a client: the user it follows since a sign-in.
    pub follows: Option<String>,
}

/// Erasure's durable state. Every call is one round trip; a failure is the
/// store's kind of failure (503, retried with the same batch id).
#[allow(async_fn_in_trait)]
pub trait Registry {
    /// `durable-object`, `memory`, or `off` (no binding): shown by `/health`.
    fn kind(&self) -> &'static str;

    /// Adds `touch` to the principal's index and answers its tombstone and
    /// sign-in links.
    async fn touch(&self, principal: &Principal, touch: &Touch) -> Result<Touched, StoreError>;
    /// Marks the user's link with `client` made (see [`Touched::unlinked`]).
    async fn confirm_client(&self, user: &str, client: &str) -> Result<(), StoreError>;
    /// Makes `client` follow `user` from `at` (a new link, or the same
    /// again) and answers its link.
    async fn link(&self, client: &str, user: &str, at: Millis) -> Result<LinkState, StoreError>;
    async fn load_link(&self, client: &str) -> Result<Option<LinkState>, StoreError>;
    /// Saves `state` if the stored link is still version `read`.
    async fn save_link(
        &self,
        client: &str,
        state: &LinkState,
        read: u64,
    ) -> Result<bool, StoreError>;
    /// Asks for a move of `client` at `due` (the latest asked is kept).
    async fn move_due(&self, client: &str, due: Millis) -> Result<(), StoreError>;
    /// The clients whose move is due at `now`, with the time it was asked for.
    async fn moves_due(&self, now: Millis) -> Result<Vec<(String, Millis)>, StoreError>;
    /// Drops the ask for a move of `client` made for `due`, unless a later
    /// one replaced it.
    async fn moved(&self, client: &str, due: Millis) -> Result<(), StoreError>;
    /// Sets the principal's tombstone, unless a later erasure's is there, and
    /// answers its index; a client's link goes (it holds the person's
    /// features).
    async fn tombstone(&self, principal: &Principal, tomb: Tombstone) -> Result<Index, StoreError>;
    /// The principal's index.
    async fn index(&self, principal: &Principal) -> Result<Index, StoreError>;
    /// Removes `done` from the principal's index: what an erasure has swept
    /// and rewritten is not kept (its composite ids hold the person's).
    async fn forget(&self, principal: &Principal, done: &Index) -> Result<(), StoreError>;
    /// Saves a new record.
    async fn save(&self, erasure: &Erasure) -> Result<(), StoreError>;
    /// Saves `erasure` if the stored one is still version `read`; `false`
    /// when another runner saved since.
    async fn save_if(&self, erasure: &Erasure, read: u64) -> Result<bool, StoreError>;
    async fn load(&self, id: &str) -> Result<Option<Erasure>, StoreError>;
    /// The erasures not done yet.
    async fn open(&self) -> Result<Vec<Erasure>, StoreError>;
}

/// The registry of the native tests.
#[derive(Debug, Default)]
pub struct MemoryRegistry {
    principals: RefCell<BTreeMap<Principal, (Option<Tombstone>, IndexSets)>>,
    records: RefCell<BTreeMap<String, Erasure>>,
    links: RefCell<BTreeMap<String, LinkState>>,
    /// User and client pairs whose link is made.
    confirmed: RefCell<BTreeSet<(String, String)>>,
    due: RefCell<BTreeMap<String, Millis>>,
    pub fail: std::cell::Cell<bool>,
    /// Calls to `touch`, for the tests.
    pub touches: std::cell::Cell<usize>,
}

#[derive(Debug, Default, Clone)]
struct IndexSets {
    composites: BTreeSet<(String, String)>,
    log_keys: BTreeSet<String>,
    clients: BTreeSet<String>,
}

impl IndexSets {
    fn add(&mut self, t: &Touch) {
        self.composites.extend(t.composites.iter().cloned());
        self.log_keys.extend(t.log_keys.iter().cloned());
        self.clients.extend(t.clients.iter().cloned());
    }

    fn remove(&mut self, t: &Touch) {
        for c in &t.composites {
            self.composites.remove(c);
        }
        for k in &t.log_keys {
            self.log_keys.remove(k);
        }
        for c in &t.clients {
            self.clients.remove(c);
        }
    }

    fn to_index(&self) -> Index {
        Index {
            composites: self.composites.iter().cloned().collect(),
            log_keys: self.log_keys.iter().cloned().collect(),
            clients: self.clients.iter().cloned().collect(),
        }
    }
}

impl MemoryRegistry {
    fn check(&self) -> Result<(), StoreError> {
        if self.fail.get() {
            Err(StoreError::Io("registry unavailable (test)".into()))
        } else {
            Ok(())
        }
    }

    /// Whether anything is indexed of `principal` (for the tests).
    pub fn indexed(&self, principal: &Principal) -> Index {
        self.principals
            .borrow()
            .get(principal)
            .map(|(_, i)| i.to_index())
            .unwrap_or_default()
    }
}

impl Registry for MemoryRegistry {
    fn kind(&self) -> &'static str {
        "memory"
    }

    async fn touch(&self, principal: &Principal, touch: &Touch) -> Result<Touched, StoreError> {
        self.check()?;
        self.touches.set(self.touches.get() + 1);
        let mut all = self.principals.borrow_mut();
        let entry = all.entry(principal.clone()).or_default();
        entry.1.add(touch);
        let confirmed = self.confirmed.borrow();
        Ok(match principal {
            Principal::User(u) => Touched {
                tomb: entry.0,
                unlinked: touch
                    .clients
                    .iter()
                    .filter(|c| !confirmed.contains(&(u.clone(), (*c).clone())))
                    .cloned()
                    .collect(),
                follows: None,
            },
            Principal::Client(c) => Touched {
                tomb: entry.0,
                unlinked: Vec::new(),
                follows: self.links.borrow().get(c).map(|l| l.user.clone()),
            },
        })
    }

    async fn confirm_client(&self, user: &str, client: &str) -> Result<(), StoreError> {
        self.check()?;
        self.confirmed
            .borrow_mut()
            .insert((user.to_owned(), client.to_owned()));
        Ok(())
    }

    async fn link(&self, client: &str, user: &str, at: Millis) -> Result<LinkState, StoreError> {
        self.check()?;
        let mut links = self.links.borrow_mut();
        let state = links
            .entry(client.to_owned())
            .or_insert_with(|| LinkState::new(user, at));
        state.follow(user, at);
        Ok(state.clone())
    }

    async fn load_link(&self, client: &str) -> Result<Option<LinkState>, StoreError> {
        self.check()?;
        Ok(self.links.borrow().get(client).cloned())
    }

    async fn save_link(
        &self,
        client: &str,
        state: &LinkState,
        read: u64,
    ) -> Result<bool, StoreError> {
        self.check()?;
        let mut links = self.links.borrow_mut();
        if links.get(client).is_none_or(|l| l.version != read) {
            return Ok(false);
        }
        links.insert(client.to_owned(), state.clone());
        Ok(true)
    }

    async fn move_due(&self, client: &str, due: Millis) -> Result<(), StoreError> {
        self.check()?;
        let mut all = self.due.borrow_mut();
        let at = all.entry(client.to_owned()).or_insert(due);
        *at = (*at).max(due);
        Ok(())
    }

    async fn moves_due(&self, now: Millis) -> Result<Vec<(String, Millis)>, StoreError> {
        self.check()?;
        Ok(self
            .due
            .borrow()
            .iter()
            .filter(|(_, due)| **due <= now)
            .map(|(c, due)| (c.clone(), *due))
            .collect())
    }

    async fn moved(&self, client: &str, due: Millis) -> Result<(), StoreError> {
        self.check()?;
        let mut all = self.due.borrow_mut();
        if all.get(client) == Some(&due) {
            all.remove(client);
        }
        Ok(())
    }

    async fn tombstone(&self, principal: &Principal, tomb: Tombstone) -> Result<Index, StoreError> {
        self.check()?;
        if let Principal::Client(c) = principal {
            self.links.borrow_mut().remove(c);
        }
        let mut all = self.principals.borrow_mut();
        let entry = all.entry(principal.clone()).or_default();
        if entry.0.is_none_or(|t| t.erased_at <= tomb.erased_at) {
            entry.0 = Some(tomb);
        }
        Ok(entry.1.to_index())
    }

    async fn index(&self, principal: &Principal) -> Result<Index, StoreError> {
        self.check()?;
        Ok(self.indexed(principal))
    }

    async fn forget(&self, principal: &Principal, done: &Index) -> Result<(), StoreError> {
        self.check()?;
        if let Some((_, sets)) = self.principals.borrow_mut().get_mut(principal) {
            sets.remove(done);
        }
        Ok(())
    }

    async fn save(&self, erasure: &Erasure) -> Result<(), StoreError> {
        self.check()?;
        self.records
            .borrow_mut()
            .insert(erasure.id.clone(), erasure.clone());
        Ok(())
    }

    async fn save_if(&self, erasure: &Erasure, read: u64) -> Result<bool, StoreError> {
        self.check()?;
        let mut records = self.records.borrow_mut();
        if records.get(&erasure.id).is_some_and(|e| e.version != read) {
            return Ok(false);
        }
        records.insert(erasure.id.clone(), erasure.clone());
        Ok(true)
    }

    async fn load(&self, id: &str) -> Result<Option<Erasure>, StoreError> {
        self.check()?;
        Ok(self.records.borrow().get(id).cloned())
    }

    async fn open(&self) -> Result<Vec<Erasure>, StoreError> {
        self.check()?;
        Ok(self
            .records
            .borrow()
            .values()
            .filter(|e| !e.is_done())
            .cloned()
            .collect())
    }
}
