//! The event log the edge writes: each accepted batch once, as `core::log`
//! formats it, in an object bucket (R2 by default). The logic (create-only
//! writes that a retry finds, the export in receive order) is here, over a
//! small [`Bucket`] seam, so it runs natively against [`MemoryBucket`] in the
//! tests and against R2 in the worker (`r2.rs`).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;

use freshet_core::erasure::{Principal, scrub_all};
use freshet_core::log::{LoggedBatch, PREFIX, day_prefix, parse_ndjson};
use freshet_core::spec::FeatureSpec;
use freshet_core::time::{DAY, Millis};

#[cfg(target_arch = "wasm32")]
pub mod r2;

/// Custom metadata on each object: the receive time, so the export orders
/// and filters objects without reading them.
pub const RECEIVED_AT_META: &str = "receivedAt";
/// Most batches one export answer holds; the rest by the `next` time.
pub const MAX_EXPORT_BATCHES: usize = 10_000;

/// Why the log could not be written or read; the detail is for the log only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogError(pub String);

impl fmt::Display for LogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "event log: {}", self.0)
    }
}

impl std::error::Error for LogError {}

/// One listed object: its key and receive time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub key: String,
    pub received_at: Millis,
}

/// What the log needs of an object store.
#[allow(async_fn_in_trait)]
pub trait Bucket {
    /// `r2`, `memory`: shown by `/health`.
    const KIND: &'static str;
    /// Writes `key` unless it exists; `Ok(false)` when it did (nothing written).
    async fn put_if_absent(
        &self,
        key: &str,
        body: Vec<u8>,
        received_at: Millis,
    ) -> Result<bool, LogError>;
    /// Writes `key` whether or not it exists (an erasure's rewrite).
    async fn put(&self, key: &str, body: Vec<u8>, received_at: Millis) -> Result<(), LogError>;
    async fn exists(&self, key: &str) -> Result<bool, LogError>;
    /// Every object under `prefix`.
    async fn list(&self, prefix: &str) -> Result<Vec<Listed>, LogError>;
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, LogError>;
    /// Removes `key`; removing what is not there is no error.
    async fn delete(&self, key: &str) -> Result<(), LogError>;
}

/// One page of the export: NDJSON lines in receive order, and the receive
/// time to ask from for the next page, if the page was cut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Export {
    pub ndjson: Vec<u8>,
    pub batches: usize,
    pub next_from: Option<Millis>,
}

/// The log, on or off.
#[derive(Debug)]
pub enum EventLog<B> {
    Off,
    On(B),
}

impl<B: Bucket> EventLog<B> {
    /// `r2`, `memory` or `off`: shown by `/health`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::On(_) => B::KIND,
        }
    }

    /// Puts the batch in the log unless it is there already (a retry): the
    /// create-only write on its key, after a look at the neighbouring hour's
    /// key when the batch sits near an hour boundary (`core::log`).
    pub async fn append(&self, batch: &LoggedBatch) -> Result<(), LogError> {
        let Self::On(bucket) = self else {
            return Ok(());
        };
        if batch.events.is_empty() {
            return Ok(());
        }
        let (key, neighbour) = batch.object_keys();
        if let Some(other) = neighbour
            && bucket.exists(&other).await?
        {
            return Ok(());
        }
        bucket
            .put_if_absent(&key, batch.to_object(), batch.received_at)
            .await
            .map(|_| ())
    }

    /// The batches received in `[from, to]`, oldest first, as NDJSON.
    ///
    /// A batch's key carries the hour of its earliest event time, which is
    /// at most 7 days before and 24 hours after its receipt (the ingest
    /// limits), so those days are listed and filtered by receive time.
    /// The events of `erased` principals (erasures not finished yet) are
    /// scrubbed out as the rewrite will (`core::erasure::scrub`).
    pub async fn export(
        &self,
        spec: &FeatureSpec,
        from: Millis,
        to: Millis,
        limit: usize,
        erased: &BTreeMap<Principal, Millis>,
    ) -> Result<Export, LogError> {
        let Self::On(bucket) = self else {
            return Err(LogError("the event log is off (FRESHET_EVENT_LOG)".into()));
        };
        let mut listed = Vec::new();
        let mut day = from.saturating_sub(8 * DAY);
        let last = to.saturating_add(2 * DAY);
        while day <= last {
            let prefix = format!("{PREFIX}{}", day_prefix(day));
            listed.extend(
                bucket
                    .list(&prefix)
                    .await?
                    .into_iter()
                    .filter(|o| (from..=to).contains(&o.received_at)),
            );
            day += DAY;
        }
        listed.sort_by(|a, b| (a.received_at, &a.key).cmp(&(b.received_at, &b.key)));
        // Cut only between receive times, so `next_from` repeats nothing.
        let mut next_from = None;
        if listed.len() > limit {
            let cut_at = listed[limit].received_at;
            if listed[0].received_at == cut_at {
                return Err(LogError(format!(
                    "more than {limit} batches share the receive time {cut_at}: raise the limit"
                )));
            }
            listed.retain(|o| o.received_at < cut_at);
            next_from = Some(cut_at);
        }
        let mut ndjson = Vec::new();
        for object in &listed {
            let body = bucket
                .get(&object.key)
                .await?
                .ok_or_else(|| LogError(format!("{} was listed but is gone", object.key)))?;
            let batches =
                parse_ndjson(&body).map_err(|e| LogError(format!("{}: {e}", object.key)))?;
            for batch in scrub_all(spec, batches, erased).0 {
                ndjson.extend_from_slice(&batch.to_ndjson());
            }
        }
        Ok(Export {
            ndjson,
            batches: listed.len(),
            next_from,
        })
    }
}

/// An in-memory bucket for the native tests; `fail` makes every call fail,
/// and `puts_left`, once set, fails every write past that many (a worker
/// that dies half-way through its writes).
#[derive(Debug, Default)]
pub struct MemoryBucket {
    objects: RefCell<BTreeMap<String, (Millis, Vec<u8>)>>,
    pub fail: std::cell::Cell<bool>,
    pub puts_left: std::cell::Cell<Option<usize>>,
}

impl MemoryBucket {
    fn check(&self) -> Result<(), LogError> {
        if self.fail.get() {
            Err(LogError("bucket unavailable (test)".into()))
        } else {
            Ok(())
        }
    }

    /// Every key, in key order.
    pub fn keys(&self) -> Vec<String> {
        self.objects.borrow().keys().cloned().collect()
    }
}

impl Bucket for MemoryBucket {
    const KIND: &'static str = "memory";

    async fn put_if_absent(
        &self,
        key: &str,
        body: Vec<u8>,
        received_at: Millis,
    ) -> Result<bool, LogError> {
        self.check()?;
        match self.puts_left.get() {
            Some(0) => return Err(LogError("bucket gone mid-way (test)".into())),
            Some(n) => self.puts_left.set(Some(n - 1)),
            None => {}
        }
        let mut objects = self.objects.borrow_mut();
        if objects.contains_key(key) {
            return Ok(false);
        }
        objects.insert(key.to_owned(), (received_at, body));
        Ok(true)
    }

    async fn put(&self, key: &str, body: Vec<u8>, received_at: Millis) -> Result<(), LogError> {
        self.check()?;
        self.objects
            .borrow_mut()
            .insert(key.to_owned(), (received_at, body));
        Ok(())
    }

    async fn exists(&self, key: &str) -> Result<bool, LogError> {
        self.check()?;
        Ok(self.objects.borrow().contains_key(key))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<Listed>, LogError> {
        self.check()?;
        Ok(self
            .objects
            .borrow()
            .range(prefix.to_owned()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, (t, _))| Listed {
                key: k.clone(),
                received_at: *t,
            })
            .collect())
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, LogError> {
        self.check()?;
        Ok(self.objects.borrow().get(key).map(|(_, b)| b.clone()))
    }

    async fn delete(&self, key: &str) -> Result<(), LogError> {
        self.check()?;
        self.objects.borrow_mut().remove(key);
        Ok(())
    }
}
