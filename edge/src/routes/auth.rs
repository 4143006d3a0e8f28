//! The bearer tokens of the serving and admin routes, compared without an
//! early exit.

use super::Edge;
use crate::error::EdgeError;
use crate::event_log::Bucket;
use crate::http::Request;
use crate::rate_limit::RateLimit;
use crate::store::FeatureStore;

impl<S: FeatureStore, L: RateLimit, B: Bucket> Edge<S, L, B> {
    pub(super) fn authorize_read(&self, req: &Request) -> Result<(), EdgeError> {
        let expected = self.config.read_token.as_deref();
        bearer(
            req,
            expected,
            EdgeError::ServingDisabled,
            EdgeError::Unauthorized,
        )
    }
}

/// Checks `Authorization: Bearer <expected>`: `disabled` when no token is
/// configured, `refused` when the given one is missing or wrong.
pub(super) fn bearer(
    req: &Request,
    expected: Option<&str>,
    disabled: EdgeError,
    refused: EdgeError,
) -> Result<(), EdgeError> {
    let Some(expected) = expected else {
        return Err(disabled);
    };
    let given = req.header("authorization").and_then(|h| {
        h.strip_prefix("Bearer ")
            .or_else(|| h.strip_prefix("bearer "))
    });
    match given {
        Some(given) if constant_time_eq(given.trim().as_bytes(), expected.as_bytes()) => Ok(()),
        _ => Err(refused),
    }
}

/// Compares secrets without an early exit, so timing tells nothing.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
