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
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unexpected {} state: {}", self.store, self.detail)
    }
}

impl std::error::Error for DecodeError {}
