//! One feature at one version, as checked: what it listens to, how it folds,
//! and the training distribution its drift is measured against.

use std::collections::BTreeSet;

use serde::Deserialize;
use serde_json::Value;

use super::aggregation::Aggregation;
use super::decay::Decay;
use super::field_path::FieldPath;
use super::window::Window;
use crate::time::Millis;
use crate::validate::Event;

/// One feature at one version.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureDef {
    pub name: String,
    pub version: u32,
    pub entity: String,
    pub on: EventMatch,
    pub agg: Aggregation,
    pub field: Option<FieldPath>,
    /// Only events whose fields equal these values count.
    pub filter: Vec<(FieldPath, Value)>,
    pub window: Option<Window>,
    pub ttl: Option<Millis>,
    pub default: Value,
    /// Bound of `distinct`, `latest_n` and `mode`.
    pub max: usize,
    /// `decay`'s rate and normalisation.
    pub decay: Option<Decay>,
    /// `vector_avg`: the length every vector must have.
    pub dim: usize,
    /// `vector_avg`: the field each vector is weighted by (1 without one).
    pub weight: Option<FieldPath>,
    /// The time zone of the derived fields `hour_of_day` and `day_of_week`
    /// (UTC without one).
    pub tz: Option<jiff::tz::TimeZone>,
    pub expected: Option<Expected>,
    pub description: Option<String>,
    /// `backfill = true`: the version is new and `freshet backfill` gives it
    /// its history. Its live writes then carry a batch marker of their own
    /// ([`crate::aggregate::backfill_marker`]), so live and backfill apply
    /// each batch to it once between them (README, "Backfill").
    pub backfill: bool,
    pub(super) key: String,
}

/// Which event types a feature listens to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventMatch {
    All,
    Types(BTreeSet<String>),
}

/// The training distribution of a numeric feature, for drift checks.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expected {
    pub mean: Option<f64>,
    pub stddev: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

impl FeatureDef {
    /// The storage key: `name@version`.
    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn listens_to(&self, event_type: &str) -> bool {
        match &self.on {
            EventMatch::All => true,
            EventMatch::Types(types) => types.contains(event_type),
        }
    }

    /// How many numbers a cell of `avg` (count, sum) or `vector_avg` (total
    /// weight, then one weighted sum per element) keeps; 0 for the others.
    pub fn cell_parts(&self) -> usize {
        match self.agg {
            Aggregation::Avg => 2,
            Aggregation::VectorAvg => self.dim + 1,
            _ => 0,
        }
    }

    /// Whether `event` passes the feature's `where` filter.
    pub fn accepts(&self, event: &Event, user_id: Option<&str>) -> bool {
        self.filter
            .iter()
            .all(|(path, wanted)| path.get(event, user_id).as_ref() == Some(wanted))
    }
}
