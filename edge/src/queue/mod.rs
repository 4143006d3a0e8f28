//! The queue pipeline (`FRESHET_PIPELINE=queue`, docs/ARCHITECTURE.md,
//! "The queue pipeline"): the ingest route checks a batch and sends it to a
//! queue as the log's gzipped NDJSON, in parts that each fit a message
//! ([`LoggedBatch::parts`]), and answers 202; the worker's consumer applies
//! each message to the store and the event log ([`Edge::consume`]). Queues
//! deliver at least once; the batch markers and the log's create-only
//! writes make each batch count once however often a message comes.
//!
//! The logic is here, over a small [`IngestQueue`] seam, so it runs natively
//! against [`MemoryQueue`] in the tests and against Cloudflare Queues in the
//! worker (`cf.rs`).

use std::cell::{Cell, RefCell};
use std::fmt;

use freshet_core::log::{LoggedBatch, MAX_PART_BYTES, parse_ndjson};
use freshet_core::state::EntityDelta;
use freshet_core::time::Millis;
use futures_util::future::try_join_all;

use crate::erasure::Registry;
use crate::error::EdgeError;
use crate::event_log::Bucket;
use crate::rate_limit::RateLimit;
use crate::routes::Edge;
use crate::store::{FeatureStore, StoreError};

#[cfg(target_arch = "wasm32")]
pub mod cf;
pub mod dead;

/// Why the queue did not take a batch; the detail is for the log only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueError(pub String);

impl fmt::Display for QueueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ingest queue: {}", self.0)
    }
}

impl std::error::Error for QueueError {}

/// What the ingest route needs of a queue.
#[allow(async_fn_in_trait)]
pub trait IngestQueue {
    /// Sends every body, one message each, or fails (then none may have
    /// been sent, or some: a resent batch finds its markers either way).
    async fn send(&self, bodies: Vec<Vec<u8>>) -> Result<(), QueueError>;
}

/// A queue in memory for the native tests: what was sent, in order;
/// `fail` makes every send fail.
#[derive(Debug, Default)]
pub struct MemoryQueue {
    pub sent: RefCell<Vec<Vec<u8>>>,
    pub fail: Cell<bool>,
}

impl MemoryQueue {
    /// Takes every message sent so far, as a consumer batch would.
    pub fn drain(&self) -> Vec<Vec<u8>> {
        self.sent.take()
    }
}

impl IngestQueue for MemoryQueue {
    async fn send(&self, bodies: Vec<Vec<u8>>) -> Result<(), QueueError> {
        if self.fail.get() {
            return Err(QueueError("queue unavailable (test)".into()));
        }
        self.sent.borrow_mut().extend(bodies);
        Ok(())
    }
}

/// How long one consumer invocation waits out an outage of the store or
/// the log, retrying the message it is on, before it hands the rest back
/// to the queue (each hand-back costs a delivery of the `max_retries`).
pub const OUTAGE_WAIT_MS: u64 = 30_000;

/// Whether a consumer's failure is an outage of the store or the log (the
/// rest of its batch then waits for the next delivery rather than each for
/// the timeout) rather than a fault of the message's own, such as a store
/// that refuses its write: the other messages are still tried, so one
/// message that cannot apply holds up no other.
pub fn is_outage(e: &EdgeError) -> bool {
    matches!(
        e,
        EdgeError::StoreUnavailable(StoreError::Io(_) | StoreError::Timeout { .. })
            | EdgeError::LogUnavailable(_)
            | EdgeError::Erasing { .. }
    )
}

/// The messages of one logged batch: its parts, gzipped.
pub fn messages_of(batch: &LoggedBatch) -> Vec<Vec<u8>> {
    batch
        .parts(MAX_PART_BYTES)
        .iter()
        .map(LoggedBatch::to_object)
        .collect()
}

impl<S: FeatureStore, L: RateLimit, B: Bucket, Q: IngestQueue, R: Registry> Edge<S, L, B, Q, R> {
    /// Applies a whole delivery of messages at once: every batch in them
    /// aggregated, then one store apply for all their deltas (one pipeline
    /// of scripts for Redis, one update command for MongoDB, every
    /// entity's object at once for Durable Objects) beside their log
    /// objects, written side by side. Where the direct pipeline makes a
    /// store round trip per batch, a delivery of 100 makes one. `Ok` with
    /// the batches applied. An error does not say which message failed:
    /// the caller then applies them one by one ([`Self::consume`]), which
    /// the markers and the log's create-only writes make safe, so the
    /// messages that can apply do and only the failing one is retried.
    pub async fn consume_delivery(
        &self,
        bodies: &[Vec<u8>],
        now: Millis,
    ) -> Result<usize, EdgeError> {
        let mut batches = Vec::new();
        for body in bodies {
            batches.extend(parse_ndjson(body).map_err(|e| EdgeError::BadMessage(e.to_string()))?);
        }
        // Each batch through the erasure gate, side by side: a message
        // queued before an erasure is consumed after it.
        let gated = try_join_all(batches.into_iter().map(|b| self.gated(b, now))).await?;
        let deltas: Vec<EntityDelta> = gated.iter().flat_map(|(_, d, _)| d.clone()).collect();
        let (stored, appended) = futures_util::future::join(
            self.store.apply(&deltas),
            futures_util::future::join_all(gated.iter().map(|(b, _, _)| self.log.append(b))),
        )
        .await;
        stored?;
        for a in appended {
            a.map_err(EdgeError::LogUnavailable)?;
        }
        let mut follow: Vec<String> = gated.iter().flat_map(|(_, _, f)| f.clone()).collect();
        follow.sort_unstable();
        follow.dedup();
        // A failed move is left due for the job; the delivery is applied.
        let _ = self.move_clients(&follow, now).await;
        Ok(gated.len())
    }

    /// Applies one queue message: each batch in it to the store and the
    /// log, as the direct pipeline does in the request. `Ok` with the
    /// batches applied; an error leaves the message to be delivered again
    /// (a body that does not read fails every time, and so reaches the
    /// dead-letter queue).
    pub async fn consume(&self, body: &[u8], now: Millis) -> Result<usize, EdgeError> {
        let batches = parse_ndjson(body).map_err(|e| EdgeError::BadMessage(e.to_string()))?;
        let n = batches.len();
        for logged in batches {
            let (logged, deltas, follow) = self.gated(logged, now).await?;
            self.store_and_log(&deltas, &logged).await?;
            let _ = self.move_clients(&follow, now).await;
        }
        Ok(n)
    }
}
