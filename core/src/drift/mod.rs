//! Drift monitoring: what models are served, compared with what they were
//! trained on. The edge and the Python reader sample served values into a
//! [`Summary`] per feature per hour (kept in the online store, merged by
//! addition), `freshet profile` turns a training set into a [`Baseline`],
//! and [`check_drift`] compares the two the same way for `freshet drift` and
//! `GET /v1/drift`.

pub mod baseline;
#[cfg(feature = "bson")]
pub mod mongo;
pub mod report;
pub mod store;
pub mod summary;

pub use baseline::{Baseline, FeatureBaseline};
pub use report::{
    Check, DriftCheck, DriftReport, FeatureReport, Status, Thresholds, check_drift, report,
};
pub use store::{SUMMARY_TTL_SECS, hour_keys, summary_key};
pub use summary::{Summary, merge_hours};

/// Reads sampled into the summaries when the edge or the reader is not
/// told otherwise, per million: the seed's 1 %.
pub const DEFAULT_SAMPLES_PER_MILLION: u32 = 10_000;
