//! An in-memory store for tests: the same `apply_delta` the Durable Object
//! runs, over a map. It can be told to fail, to test the 503 path.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;

use freshet_core::drift::{Summary, hour_keys, summary_key};
use freshet_core::spec::FeatureSpec;
use freshet_core::state::{Applied, EntityDelta, FeatureDoc, apply_delta};
use freshet_core::time::Millis;

use super::{EntityKey, EntityRead, FeatureStore, StoreError};

#[derive(Debug)]
pub struct MemoryStore {
    spec: &'static FeatureSpec,
    docs: RefCell<BTreeMap<EntityKey, FeatureDoc>>,
    /// Drift summaries by their Redis key.
    drift: RefCell<BTreeMap<String, Summary>>,
    down: Cell<bool>,
    /// How many `apply` calls reached the store (a round trip each in a
    /// real one).
    pub applies: Cell<usize>,
}

impl MemoryStore {
    pub fn new(spec: &'static FeatureSpec) -> Self {
        Self {
            spec,
            docs: RefCell::default(),
            drift: RefCell::default(),
            down: Cell::new(false),
            applies: Cell::new(0),
        }
    }

    /// While down, every call fails as an unreachable server would.
    pub fn set_down(&self, down: bool) {
        self.down.set(down);
    }

    /// A copy of every stored document, to compare before and after.
    pub fn snapshot(&self) -> BTreeMap<EntityKey, FeatureDoc> {
        self.docs.borrow().clone()
    }

    fn check_up(&self) -> Result<(), StoreError> {
        if self.down.get() {
            Err(StoreError::Io("memory store is down".into()))
        } else {
            Ok(())
        }
    }
}

impl FeatureStore for MemoryStore {
    fn kind(&self) -> &'static str {
        "memory"
    }

    async fn apply(&self, deltas: &[EntityDelta]) -> Result<Vec<Applied>, StoreError> {
        self.check_up()?;
        self.applies.set(self.applies.get() + 1);
        let mut docs = self.docs.borrow_mut();
        Ok(deltas
            .iter()
            .map(|d| {
                let doc = docs
                    .entry(EntityKey::new(d.entity.as_str(), d.id.as_str()))
                    .or_default();
                apply_delta(self.spec, doc, d)
            })
            .collect())
    }

    async fn delete(&self, keys: &[EntityKey]) -> Result<usize, StoreError> {
        self.check_up()?;
        let mut docs = self.docs.borrow_mut();
        Ok(keys.iter().filter(|k| docs.remove(*k).is_some()).count())
    }

    async fn load(&self, reads: &[EntityRead]) -> Result<Vec<FeatureDoc>, StoreError> {
        self.check_up()?;
        let docs = self.docs.borrow();
        Ok(reads
            .iter()
            .map(|r| docs.get(&r.key).cloned().unwrap_or_default())
            .collect())
    }

    async fn add_drift(&self, now: Millis, adds: &[(String, Summary)]) -> Result<(), StoreError> {
        self.check_up()?;
        let mut drift = self.drift.borrow_mut();
        for (feature, s) in adds {
            drift
                .entry(summary_key("fs", feature, now))
                .or_default()
                .merge(s);
        }
        Ok(())
    }

    async fn load_drift(
        &self,
        features: &[String],
        from: Millis,
        to: Millis,
    ) -> Result<Vec<Result<Summary, String>>, StoreError> {
        self.check_up()?;
        let drift = self.drift.borrow();
        Ok(features
            .iter()
            .map(|f| {
                let mut s = Summary::default();
                for key in hour_keys("fs", f, to, to - from) {
                    if let Some(hour) = drift.get(&key) {
                        s.merge(hour);
                    }
                }
                Ok(s)
            })
            .collect())
    }
}
