//! What a feature looked like in training: a baseline file written by
//! `freshet profile` from a training set, or the spec's `expected` stats.
//!
//! Numeric bins are the training set's deciles (equal-frequency bins, the
//! usual choice for PSI), so every bin holds about a tenth of the training
//! values; repeated values (a count that is often 0) merge bins.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::spec::{Expected, FeatureSpec};

use super::summary::{MAX_CATEGORIES, Summary, category_of};

/// Bins of a profiled numeric feature, at most.
pub const PROFILE_BINS: usize = 10;

/// A baseline file: every profiled feature by its key (`clicks@1`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    /// Where it came from (a file name, "expected"), for people.
    #[serde(default)]
    pub source: String,
    pub features: BTreeMap<String, FeatureBaseline>,
}

/// One feature's training distribution.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureBaseline {
    /// Values profiled (0 for a baseline from `expected`).
    pub count: u64,
    #[serde(default)]
    pub nulls: u64,
    pub mean: Option<f64>,
    pub stddev: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// Cut points `c1 < … < ck`: bin 0 is `v <= c1`, bin i is
    /// `c(i) < v <= c(i+1)`, bin k is `v > ck`.
    #[serde(default)]
    pub cuts: Vec<f64>,
    /// Share of the numbers in each bin (`cuts.len() + 1` of them).
    #[serde(default)]
    pub proportions: Vec<f64>,
    /// Share of each of the top categories among all category occurrences.
    #[serde(default)]
    pub categories: BTreeMap<String, f64>,
    /// Share of the categories not listed.
    #[serde(default)]
    pub other: f64,
}

impl FeatureBaseline {
    /// The baseline of the values a feature had in a training set.
    pub fn profile(values: &[Value]) -> Self {
        let mut summary = Summary::default();
        let mut numbers: Vec<f64> = Vec::new();
        let mut categories: BTreeMap<String, u64> = BTreeMap::new();
        for v in values {
            summary.add(v);
            match v {
                Value::Number(n) => numbers.extend(n.as_f64().filter(|x| x.is_finite())),
                Value::Array(items) => {
                    for item in items {
                        *categories.entry(category_of(item)).or_default() += 1;
                    }
                }
                Value::Null => {}
                other => *categories.entry(category_of(other)).or_default() += 1,
            }
        }
        numbers.sort_by(f64::total_cmp);
        let cuts = decile_cuts(&numbers);
        let proportions = if numbers.is_empty() {
            Vec::new()
        } else {
            let mut counts = vec![0u64; cuts.len() + 1];
            for x in &numbers {
                counts[bin_of(&cuts, *x)] += 1;
            }
            shares(&counts)
        };
        let total: u64 = categories.values().sum();
        let mut top: Vec<(String, u64)> = categories.into_iter().collect();
        // Most frequent first, ties by name, so a profile is reproducible.
        top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let kept: u64 = top.iter().take(MAX_CATEGORIES).map(|(_, c)| c).sum();
        #[allow(clippy::cast_precision_loss)]
        let share = |c: u64| {
            if total == 0 {
                0.0
            } else {
                c as f64 / total as f64
            }
        };
        Self {
            count: summary.count,
            nulls: summary.nulls,
            mean: summary.mean(),
            stddev: summary.stddev(),
            min: summary.min,
            max: summary.max,
            cuts,
            proportions,
            categories: top
                .iter()
                .take(MAX_CATEGORIES)
                .map(|(k, c)| (k.clone(), share(*c)))
                .collect(),
            other: share(total - kept),
        }
    }

    /// A baseline of the spec's `expected` stats only: the seed's rule can
    /// be checked, PSI cannot (no bins).
    pub fn from_expected(e: &Expected) -> Self {
        Self {
            mean: e.mean,
            stddev: e.stddev,
            min: e.min,
            max: e.max,
            ..Self::default()
        }
    }

    pub fn is_numeric(&self) -> bool {
        self.mean.is_some() || !self.proportions.is_empty()
    }

    pub fn is_categorical(&self) -> bool {
        !self.categories.is_empty()
    }
}

impl Baseline {
    /// Profiles columns of training values, each named by its feature key.
    pub fn profile<'a>(
        source: &str,
        columns: impl IntoIterator<Item = (&'a str, &'a [Value])>,
    ) -> Self {
        Self {
            source: source.to_owned(),
            features: columns
                .into_iter()
                .map(|(k, vs)| (k.to_owned(), FeatureBaseline::profile(vs)))
                .collect(),
        }
    }

    /// The spec's `expected` stats, for features this baseline lacks.
    pub fn with_expected(mut self, spec: &FeatureSpec) -> Self {
        for f in spec.features() {
            if let Some(e) = &f.expected {
                self.features
                    .entry(f.key().to_owned())
                    .or_insert_with(|| FeatureBaseline::from_expected(e));
            }
        }
        self
    }

    pub fn from_json(text: &str) -> Result<Self, String> {
        serde_json::from_str(text).map_err(|e| format!("baseline file: {e}"))
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

/// The distinct deciles of sorted numbers.
fn decile_cuts(sorted: &[f64]) -> Vec<f64> {
    let Some(last) = sorted.len().checked_sub(1) else {
        return Vec::new();
    };
    let mut cuts: Vec<f64> = (1..PROFILE_BINS)
        .map(|q| sorted[q * last / PROFILE_BINS])
        .collect();
    cuts.dedup();
    // A constant feature still gets two bins: its value, and above it.
    if cuts.is_empty() {
        cuts.push(sorted[0]);
    }
    cuts
}

/// The bin of `x`: how many cuts lie below it.
pub fn bin_of(cuts: &[f64], x: f64) -> usize {
    cuts.partition_point(|c| *c < x)
}

/// Counts as shares of their total.
pub fn shares(counts: &[u64]) -> Vec<f64> {
    let total: u64 = counts.iter().sum();
    #[allow(clippy::cast_precision_loss)]
    counts
        .iter()
        .map(|c| {
            if total == 0 {
                0.0
            } else {
                *c as f64 / total as f64
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn profiles_numbers_into_deciles() {
        let values: Vec<Value> = (1..=100).map(|i| json!(i)).collect();
        let b = FeatureBaseline::profile(&values);
        assert_eq!(b.count, 100);
        assert_eq!(b.cuts.len(), 9);
        assert_eq!(b.proportions.len(), 10);
        assert!(
            b.proportions.iter().all(|p| (p - 0.1).abs() < 0.02),
            "{:?}",
            b.proportions
        );
        assert_eq!(b.mean, Some(50.5));
        assert_eq!((b.min, b.max), (Some(1.0), Some(100.0)));
    }

    #[test]
    fn repeated_values_merge_bins() {
        let values: Vec<Value> = (0..100)
            .map(|i| json!(if i < 80 { 0 } else { i }))
            .collect();
        let b = FeatureBaseline::profile(&values);
        assert_eq!(b.cuts[0], 0.0);
        assert!((b.proportions[0] - 0.8).abs() < 1e-12);
        let constant = FeatureBaseline::profile(&[json!(3), json!(3)]);
        assert_eq!(
            (constant.cuts.clone(), constant.proportions.clone()),
            (vec![3.0], vec![1.0, 0.0])
        );
    }

    #[test]
    fn profiles_categories_and_lists() {
        let b = FeatureBaseline::profile(&[json!("a"), json!(["a", "b"]), json!(null), json!("c")]);
        assert_eq!(b.categories.get("a"), Some(&0.5));
        assert_eq!(b.nulls, 1);
        assert!(!b.is_numeric());
        let file = Baseline::profile("t", [("x@1", &[json!(1)][..])]);
        assert_eq!(Baseline::from_json(&file.to_json()), Ok(file));
        assert!(Baseline::from_json("{\"features\":{},\"bogus\":1}").is_err());
    }
}
