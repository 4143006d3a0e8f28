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
use serde::{Deserialize, Serialize};

use crate::store::StoreError;

#[cfg(target_arch = "wasm32")]
pub mod object;
mod record;

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

/// Erasure's durable state. Every call is one round trip; a failure is the
/// store's kind of failure (503, retried with the same batch id).
#[allow(async_fn_in_trait)]
pub trait Registry {
    /// `durable-object`, `memory`, or `off` (no binding): shown by `/health`.
    fn kind(&self) -> &'static str;

    /// Adds `touch` to the principal's index and answers its tombstone.
    async fn touch(
        &self,
        principal: &Principal,
        touch: &Touch,
    ) -> Result<Option<Tombstone>, StoreError>;
    /// Sets the principal's tombstone, unless a later erasure's is there, and
    /// answers its index.
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

    async fn touch(
        &self,
        principal: &Principal,
        touch: &Touch,
    ) -> Result<Option<Tombstone>, StoreError> {
        self.check()?;
        self.touches.set(self.touches.get() + 1);
        let mut all = self.principals.borrow_mut();
        let entry = all.entry(principal.clone()).or_default();
        entry.1.add(touch);
        Ok(entry.0)
    }

    async fn tombstone(&self, principal: &Principal, tomb: Tombstone) -> Result<Index, StoreError> {
        self.check()?;
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
