//! Store encodings as plain data: what to send to Redis or MongoDB for one
//! delta, and how to read their replies back into a [`crate::state::FeatureDoc`].
//! The edge's adapters only move these bytes; they decide nothing.

pub mod mongo;
pub mod redis;
