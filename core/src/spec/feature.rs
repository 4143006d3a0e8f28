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
    /// `float = "f32"` (`avg`, `vector_avg`): every number of the state is
    /// rounded to single precision after each product and sum, everywhere
    /// core computes it, so a store may keep it in 4 bytes and a replay
    /// agrees to the last bit. `false` (the default) keeps doubles.
    pub f32: bool,
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
    /// Whether a visitor's value follows them when they sign in
    /// ([`crate::link`]): `true` unless `link = false`. Only features of an
    /// entity keyed by `userId` then `clientId` (and composites of one) move.
    pub link: bool,
    pub(super) key: String,
    pub(super) tag: String,
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

/// See [`FeatureDef::tag`].
pub(super) fn tag_of(key: &str) -> String {
    use sha2::{Digest, Sha256};
    const DIGITS: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let digest = Sha256::digest(key.as_bytes());
    let mut n = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
    (0..4)
        .map(|_| {
            let d = char::from(DIGITS[usize::try_from(n % 62).expect("< 62")]);
            n /= 62;
            d
        })
        .collect()
}

impl FeatureDef {
    /// The storage key: `name@version`.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The short name a store's layout 2 keeps the feature under (Redis
    /// fields and keys): 4 characters of `[0-9A-Za-z]` from the SHA-256 of
    /// the storage key, unique among the entity's features (the spec is
    /// refused otherwise), so the same feature has the same tag in every
    /// deployment and a new version gets a new one.
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// Rounds a number of the state to what the feature keeps: itself, or
    /// the nearest single-precision float for `float = "f32"`.
    pub fn round(&self, x: f64) -> f64 {
        if self.f32 {
            #[allow(clippy::cast_possible_truncation)]
            f64::from(x as f32)
        } else {
            x
        }
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
