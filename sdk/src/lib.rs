//! Freshet's browser tracker. The logic (config, queue and batches, retry
//! schedule, sessions, ids, the storage form) is plain Rust in the modules
//! below and tested natively. Two thin drivers give it a clock, storage,
//! timers, the network and the page's lifecycle:
//!
//! - `js` (feature `js`): the wasm-bindgen surface of the npm package, whose
//!   small JS driver (`npm/src/index.js`) does the browser I/O;
//! - [`web`] (feature `web`): the tracker for Rust web apps (Leptos, Yew,
//!   Dioxus, plain wasm-bindgen), with the browser I/O in Rust.

pub mod config;
pub mod driver;
pub mod encode;
pub mod error;
pub mod queue;
pub mod retry;
pub mod session;
pub mod tracker;

#[cfg(all(target_arch = "wasm32", any(feature = "js", feature = "web")))]
mod entropy;
#[cfg(all(target_arch = "wasm32", feature = "js"))]
mod js;
#[cfg(all(target_arch = "wasm32", feature = "web"))]
pub mod web;

pub use config::Config;
pub use error::TrackerError;
pub use tracker::{Entropy, Stored, TrackerCore};
