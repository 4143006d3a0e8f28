//! Store encodings as plain data: what to send to Redis or MongoDB for one
//! delta, and how to read their replies back into a [`crate::state::FeatureDoc`].
//! The edge's adapters only move these bytes; they decide nothing.
//!
//! One rule for reading state back, in every store: a feature never written
//! reads as absent (its default is served), while a part that is there but
//! does not have the shape Freshet writes is a [`DecodeError`] naming its
//! field. Corrupt state is never served to a model as defaults.

use std::fmt;

pub mod mongo;
pub mod redis;

/// Stored state that does not have the shape Freshet writes: the store, and
/// what is wrong, naming the field (the reader adds the key or document).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// `Redis` or `MongoDB`.
    pub store: &'static str,
    pub detail: String,
    /// Whether the state is Redis layout 1's (read where layout 2 holds
    /// nothing), so the error names that key.
    pub layout1: bool,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unexpected {} state: {}", self.store, self.detail)
    }
}

impl std::error::Error for DecodeError {}

/// Most markers an entity keeps for one receive day in Redis and MongoDB
/// (the latest); beyond them, a batch of that day resent later than 1,000
/// newer ones of the same day for the same entity counts again. It bounds
/// a hot entity's markers (a popular item's) to ten days of 1,000.
pub const MAX_MARKERS_PER_DAY: usize = 1_000;
// Redis keeps a day's markers in one group with a u16 count.
const _: () = assert!(MAX_MARKERS_PER_DAY <= u16::MAX as usize);

/// How a store names one applied-batch marker (Redis's marker zset,
/// MongoDB's day slots): the first 8 bytes of the SHA-256 of the batch id
/// (or of a backfill marker, `<batchId>|name@version`), in hex. A batch id
/// is the tracker's UUID (36 bytes) or a client's own, up to 128; these 16
/// keep an entity's markers small, and two batches of one entity share one
/// with odds of 2^-64 each pair (an entity would need 2^32 batches within
/// the markers' lifetime for even odds).
pub fn marker_member(batch_id: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(batch_id.as_bytes());
    let mut out = String::with_capacity(16);
    for byte in &digest[..8] {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    out
}

const HEX: &[u8; 16] = b"0123456789abcdef";
