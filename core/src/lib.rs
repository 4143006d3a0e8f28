//! Freshet's pure heart: everything that decides what a feature value is.
//!
//! No I/O, no async runtime, no web or worker types: the browser tracker, the
//! edge worker and the offline tools all call into this crate, so a feature is
//! computed in one place only. Cargo features keep the browser build small:
//! `wire` is the wire types alone; `ingest` adds decoding and validation;
//! `spec` adds the feature spec, aggregation, the feature document and the
//! store encodings; `identity` adds signed identity tokens.

#[cfg(feature = "wire")]
pub mod wire;

#[cfg(feature = "ingest")]
pub mod decode;
#[cfg(feature = "ingest")]
pub mod error;
#[cfg(feature = "ingest")]
pub mod ids;
#[cfg(feature = "ingest")]
pub mod limits;
#[cfg(feature = "ingest")]
pub mod time;
#[cfg(feature = "ingest")]
pub mod validate;

#[cfg(feature = "spec")]
pub mod aggregate;
#[cfg(feature = "spec")]
pub mod drift;
#[cfg(feature = "spec")]
pub mod encode;
#[cfg(feature = "spec")]
pub mod erasure;
#[cfg(feature = "spec")]
pub mod fold;
#[cfg(feature = "spec")]
pub mod link;
#[cfg(feature = "spec")]
pub mod log;
#[cfg(feature = "spec")]
pub mod read;
#[cfg(feature = "spec")]
pub mod replay;
#[cfg(feature = "spec")]
pub mod secret;
#[cfg(feature = "spec")]
pub mod spec;
#[cfg(feature = "spec")]
pub mod state;
#[cfg(feature = "spec")]
pub mod store_url;

#[cfg(feature = "identity")]
pub mod identity;
