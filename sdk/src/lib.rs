//! Freshet's browser tracker. The logic (config, queue and batches, retry
//! schedule, sessions, ids, the storage form) is plain Rust in the modules
//! below and tested natively; `web` is the thin wasm-bindgen surface, and the
//! npm package's small JS driver (`npm/src/index.js`) lends it a clock,
//! storage, a timer, the network and the page's lifecycle.

pub mod config;
pub mod encode;
pub mod error;
pub mod queue;
pub mod retry;
pub mod session;
pub mod tracker;

#[cfg(target_arch = "wasm32")]
mod web;

pub use config::Config;
pub use error::TrackerError;
pub use tracker::{Entropy, Stored, TrackerCore};
