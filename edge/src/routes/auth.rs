//! The bearer tokens of the serving and admin routes, compared without an
//! early exit ([`Secrets::matches`]); each takes several values, for a
//! rotation.

use super::Edge;
use crate::erasure::Registry;
use crate::error::EdgeError;
use crate::event_log::Bucket;
use crate::http::Request;
use crate::queue::IngestQueue;
use crate::rate_limit::RateLimit;
use crate::secret::Secrets;
use crate::store::FeatureStore;

impl<S: FeatureStore, L: RateLimit, B: Bucket, Q: IngestQueue, R: Registry> Edge<S, L, B, Q, R> {
    pub(super) fn authorize_read(&self, req: &Request) -> Result<(), EdgeError> {
        let expected = &self.config.read_tokens;
        bearer(
            req,
            expected,
            EdgeError::ServingDisabled,
            EdgeError::Unauthorized,
        )
    }
}

/// Checks `Authorization: Bearer <token>` against every value of `expected`:
/// `disabled` when none is configured, `refused` when the given one is
/// missing or none of them.
pub(super) fn bearer(
    req: &Request,
    expected: &Secrets,
    disabled: EdgeError,
    refused: EdgeError,
) -> Result<(), EdgeError> {
    if expected.is_empty() {
        return Err(disabled);
    }
    let given = req.header("authorization").and_then(|h| {
        h.strip_prefix("Bearer ")
            .or_else(|| h.strip_prefix("bearer "))
    });
    match given {
        Some(given) if expected.matches(given.trim().as_bytes()) => Ok(()),
        _ => Err(refused),
    }
}
