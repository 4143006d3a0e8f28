//! Dead letters: queue messages the consumer gave up on (`max_retries`
//! failed deliveries) reach the dead-letter queue, whose consumer keeps
//! each in the event log's bucket under [`DEAD_LETTERS`]. `/health` counts
//! them; `POST /v1/dead-letters` (admin token) applies them again once the
//! cause is fixed, removing each that applies. The markers keep a message
//! that applied in part before it died counting once.

use freshet_core::time::Millis;
use serde_json::json;

use crate::erasure::Registry;
use crate::error::EdgeError;
use crate::event_log::{Bucket, EventLog, Listed, LogError};
use crate::queue::IngestQueue;
use crate::rate_limit::RateLimit;
use crate::routes::Edge;
use crate::store::FeatureStore;

/// Where dead letters are kept in the bucket (the log's are under `events/`).
pub const DEAD_LETTERS: &str = "dead-letters/";

/// What a re-drive did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Redriven {
    /// Messages applied and removed.
    pub applied: usize,
    /// Messages that failed again, kept, with why.
    pub failed: Vec<(String, String)>,
}

impl<S: FeatureStore, L: RateLimit, B: Bucket, Q: IngestQueue, R: Registry> Edge<S, L, B, Q, R> {
    fn dead_letter_bucket(&self) -> Result<&B, EdgeError> {
        match &self.log {
            EventLog::On(bucket) => Ok(bucket),
            EventLog::Off => Err(EdgeError::LogUnavailable(LogError(
                "the event log is off (FRESHET_EVENT_LOG); dead letters are kept in its bucket"
                    .into(),
            ))),
        }
    }

    /// Keeps a dead message under its queue message id (create-only: a
    /// dead letter delivered twice is kept once).
    pub async fn keep_dead_letter(
        &self,
        id: &str,
        body: Vec<u8>,
        now: Millis,
    ) -> Result<(), EdgeError> {
        let id: String = id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        self.dead_letter_bucket()?
            .put_if_absent(&format!("{DEAD_LETTERS}{id}.ndjson.gz"), body, now)
            .await
            .map(|_| ())
            .map_err(EdgeError::LogUnavailable)
    }

    /// The dead letters kept, oldest first.
    pub async fn dead_letters(&self) -> Result<Vec<Listed>, EdgeError> {
        let mut listed = self
            .dead_letter_bucket()?
            .list(DEAD_LETTERS)
            .await
            .map_err(EdgeError::LogUnavailable)?;
        listed.sort_by(|a, b| (a.received_at, &a.key).cmp(&(b.received_at, &b.key)));
        Ok(listed)
    }

    /// Applies every dead letter again, as the consumer would, and removes
    /// each that applied.
    pub async fn redrive(&self, now: Millis) -> Result<Redriven, EdgeError> {
        let bucket = self.dead_letter_bucket()?;
        let mut out = Redriven::default();
        for letter in self.dead_letters().await? {
            let Some(body) = bucket
                .get(&letter.key)
                .await
                .map_err(EdgeError::LogUnavailable)?
            else {
                continue;
            };
            match self.consume(&body, now).await {
                Ok(_) => {
                    bucket
                        .delete(&letter.key)
                        .await
                        .map_err(EdgeError::LogUnavailable)?;
                    out.applied += 1;
                }
                Err(e) => out.failed.push((letter.key, e.to_string())),
            }
        }
        Ok(out)
    }

    /// `/health`'s count: a number, or why there is none.
    pub(crate) async fn dead_letter_count(&self) -> serde_json::Value {
        match self.dead_letters().await {
            Ok(letters) => letters.len().into(),
            Err(e) => json!(format!("unavailable: {}", e.code())),
        }
    }
}
