//! `GET /health`: what an operator or a load balancer checks.

use serde_json::json;

use super::Edge;
use crate::config::Pipeline;
use crate::erasure::Registry;
use crate::event_log::Bucket;
use crate::queue::IngestQueue;
use crate::rate_limit::RateLimit;
use crate::store::FeatureStore;

impl<S: FeatureStore, L: RateLimit, B: Bucket, Q: IngestQueue, R: Registry> Edge<S, L, B, Q, R> {
    /// `/health`: the store, the hash of the compiled-in spec (readers and
    /// trained models compare theirs with it), whether ingest can run, the
    /// pipeline (and in the queue pipeline, how many dead letters wait), and
    /// how many values each secret has; where erasure keeps its registry
    /// (`off` without the binding).
    pub(super) async fn health(&self) -> serde_json::Value {
        let ingest = if self.config.write_keys.is_empty() {
            "misconfigured"
        } else {
            "ok"
        };
        let mut health = json!({
            "status": "ok",
            "store": self.store.kind(),
            "spec": self.spec.hash(),
            "ingest": ingest,
            "log": self.log.kind(),
            "erasure": self.registry.kind(),
            "pipeline": self.config.pipeline.name(),
            // How many values each secret holds (two during a rotation), never which.
            "secrets": {
                "read": self.config.read_tokens.len(),
                "admin": self.config.admin_tokens.len(),
                "identity": self.config.identity_secrets.len(),
            },
        });
        // The queue pipeline's dead letters (a listing of the bucket).
        if self.config.pipeline == Pipeline::Queue {
            health["deadLetters"] = self.dead_letter_count().await;
        }
        // A moved clock is a test's; never hidden.
        if self.config.clock_offset_ms != 0 {
            health["clockOffsetMs"] = self.config.clock_offset_ms.into();
        }
        health
    }
}
