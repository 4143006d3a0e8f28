//! How a feature folds its events: the aggregations and what each takes.

use serde::Deserialize;

/// Largest `max` a bounded feature (`distinct`, `latest_n`) may keep.
pub const MAX_BOUND: usize = 1_000;

/// Longest `dim` a `vector_avg` may have: a cell keeps `dim + 1` numbers.
pub const MAX_DIM: usize = 1_024;

/// How a feature folds its events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregation {
    Count,
    Sum,
    Min,
    Max,
    /// The field's value at the latest event time.
    Last,
    /// The field's value at the earliest event time.
    First,
    /// The distinct values seen, bounded: keeps the `max` most recently seen.
    Distinct,
    /// The field's values of the `max` latest events, newest first.
    LatestN,
    /// The mean of a numeric field: a sum and a count per cell.
    Avg,
    /// A sum of exponentially decayed contributions, read as of the read
    /// time: `sum(exp(-rate * age))`, times `scale`, at most `cap`.
    Decay,
    /// The most frequent value, with the `max` highest counts kept.
    Mode,
    /// The element-wise (weighted) mean of a fixed-length number array.
    VectorAvg,
}

impl Aggregation {
    pub const ALL: [Self; 12] = [
        Self::Count,
        Self::Sum,
        Self::Min,
        Self::Max,
        Self::Last,
        Self::First,
        Self::Distinct,
        Self::LatestN,
        Self::Avg,
        Self::Decay,
        Self::Mode,
        Self::VectorAvg,
    ];

    /// Whether merging a state into itself leaves it as it was, so a batch
    /// applied twice changes nothing and needs no marker: `min`, `max`,
    /// `last`, `first`, `distinct` and `latest_n`.
    pub fn is_idempotent(self) -> bool {
        matches!(
            self,
            Self::Min | Self::Max | Self::Last | Self::First | Self::Distinct | Self::LatestN
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Count => "count",
            Self::Sum => "sum",
            Self::Min => "min",
            Self::Max => "max",
            Self::Last => "last",
            Self::First => "first",
            Self::Distinct => "distinct",
            Self::LatestN => "latest_n",
            Self::Avg => "avg",
            Self::Decay => "decay",
            Self::Mode => "mode",
            Self::VectorAvg => "vector_avg",
        }
    }

    pub(super) fn needs_field(self) -> bool {
        !matches!(self, Self::Count | Self::Decay)
    }

    pub(super) fn is_numeric(self) -> bool {
        matches!(
            self,
            Self::Sum | Self::Min | Self::Max | Self::Avg | Self::Decay
        )
    }

    /// Whether the aggregation keeps a bounded set (`max` applies).
    pub(super) fn is_bounded(self) -> bool {
        matches!(self, Self::Distinct | Self::LatestN | Self::Mode)
    }
}
