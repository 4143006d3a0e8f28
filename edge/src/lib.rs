//! Freshet's edge worker. Filled in by the edge issue; for now it proves that
//! all of `freshet-core` builds for the worker.

pub use freshet_core::validate::receive;
