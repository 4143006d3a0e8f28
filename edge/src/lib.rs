//! Freshet's edge worker: `POST /v1/ingest`, the serving API and `/health`
//! on Cloudflare Workers.
//!
//! Everything but the runtime glue is plain Rust tested natively: the routes
//! take a [`http::Request`] and give a [`http::Response`], the store sits
//! behind [`store::FeatureStore`], and the time is passed in. The wasm32-only
//! [`glue`] turns `worker` requests into ours and picks the store from the
//! configuration. `core` decides every feature value; this crate moves bytes.

pub mod config;
pub mod erasure;
pub mod error;
pub mod event_log;
pub mod http;
pub mod queue;
pub mod rate_limit;
pub mod routes;
pub use freshet_core::secret;
pub mod spec;
pub mod store;

#[cfg(target_arch = "wasm32")]
pub mod glue;

#[cfg(test)]
mod tests;
