//! The mergeable summary of one feature's served values in one hour.
//!
//! Every part merges by addition (counts, sums) or by min/max, so summaries
//! from any number of sampling points and hours combine to the same result in
//! any order. Numbers go into a DDSketch-style log-bucketed histogram (bucket
//! `i` holds `(γ^(i-1), γ^i]`, γ = (1+α)/(1-α), α = 0.5 %): a bucket index is
//! a plain counter, so a store merges it atomically with an increment (Redis
//! `HINCRBY`, MongoDB `$inc`), which an opaque sketch object from a crate
//! would not allow without a read-modify-write. The index range is clamped
//! ([`MIN_MAGNITUDE`]..[`MAX_MAGNITUDE`]), so the histogram is bounded.
//! Strings, booleans and list elements are counted per category, at most
//! [`MAX_CATEGORIES`] of them, the rest in `other`.
//!
//! Exactness: counts, bins, min and max merge exactly in any order; `sum` and
//! `sum_sq` are floating point and agree across orders to about 1e-12
//! relative, far below any threshold of the report. Which categories get a
//! count of their own once more than [`MAX_CATEGORIES`] are seen depends on
//! arrival order (the total stays exact; `other` takes the rest).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Relative accuracy of a numeric bucket: a bucket's values are within
/// 0.5 % of each other.
pub const RELATIVE_ACCURACY: f64 = 0.005;
/// Magnitudes below this count as zero.
pub const MIN_MAGNITUDE: f64 = 1e-9;
/// Magnitudes above this land in the top bucket.
pub const MAX_MAGNITUDE: f64 = 1e15;
/// Categories with a count of their own; the rest count as `other`.
pub const MAX_CATEGORIES: usize = 64;
/// Longest category name kept, in bytes (cut at a character boundary).
pub const MAX_CATEGORY_BYTES: usize = 64;

fn gamma() -> f64 {
    (1.0 + RELATIVE_ACCURACY) / (1.0 - RELATIVE_ACCURACY)
}

/// The bucket index of a magnitude `m >= MIN_MAGNITUDE`.
pub fn bucket_of(m: f64) -> i32 {
    let m = m.clamp(MIN_MAGNITUDE, MAX_MAGNITUDE);
    // Bounded by the clamp: |index| < 7_000.
    #[allow(clippy::cast_possible_truncation)]
    let i = (m.ln() / gamma().ln()).ceil() as i32;
    i
}

/// The magnitudes bucket `i` holds: `(lower, upper]`.
pub fn bucket_bounds(i: i32) -> (f64, f64) {
    let g = gamma();
    (g.powi(i - 1), g.powi(i))
}

/// One feature's sampled values over some time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Every value sampled, nulls included.
    pub count: u64,
    pub nulls: u64,
    /// Numbers among them.
    pub numbers: u64,
    pub sum: f64,
    pub sum_sq: f64,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub zeros: u64,
    /// Bucket index → count, for positive numbers.
    pub positive: BTreeMap<i32, u64>,
    /// Bucket index of the magnitude → count, for negative numbers.
    pub negative: BTreeMap<i32, u64>,
    /// Category → count (strings, booleans, list elements).
    pub categories: BTreeMap<String, u64>,
    pub other: u64,
}

impl Summary {
    /// Adds one served value. A list (`distinct`, `latest_n`) counts once,
    /// and each of its elements as a category.
    pub fn add(&mut self, value: &Value) {
        self.count += 1;
        match value {
            Value::Null => self.nulls += 1,
            Value::Number(n) => match n.as_f64() {
                Some(x) if x.is_finite() => self.add_number(x, 1),
                _ => self.other += 1,
            },
            Value::Array(items) => {
                for item in items {
                    self.add_category(&category_of(item), 1);
                }
            }
            other => self.add_category(&category_of(other), 1),
        }
    }

    /// Adds `times` copies of the number `x`.
    /// Magnitudes above [`MAX_MAGNITUDE`] count as that (so a square never
    /// overflows).
    pub fn add_number(&mut self, x: f64, times: u64) {
        let x = x.clamp(-MAX_MAGNITUDE, MAX_MAGNITUDE);
        self.numbers += times;
        #[allow(clippy::cast_precision_loss)]
        let t = times as f64;
        self.sum += x * t;
        self.sum_sq += x * x * t;
        self.min = Some(self.min.map_or(x, |m| m.min(x)));
        self.max = Some(self.max.map_or(x, |m| m.max(x)));
        if x.abs() < MIN_MAGNITUDE {
            self.zeros += times;
        } else if x > 0.0 {
            *self.positive.entry(bucket_of(x)).or_default() += times;
        } else {
            *self.negative.entry(bucket_of(-x)).or_default() += times;
        }
    }

    /// Counts `times` occurrences of a category, or `other` once
    /// [`MAX_CATEGORIES`] have a count of their own.
    pub fn add_category(&mut self, name: &str, times: u64) {
        let name = cut(name);
        if let Some(c) = self.categories.get_mut(name) {
            *c += times;
        } else if self.categories.len() < MAX_CATEGORIES {
            self.categories.insert(name.to_owned(), times);
        } else {
            self.other += times;
        }
    }

    /// Folds `other` into `self`; the result does not depend on the order.
    pub fn merge(&mut self, other: &Self) {
        self.count += other.count;
        self.nulls += other.nulls;
        self.numbers += other.numbers;
        self.sum += other.sum;
        self.sum_sq += other.sum_sq;
        self.min = min_of(self.min, other.min, f64::min);
        self.max = min_of(self.max, other.max, f64::max);
        self.zeros += other.zeros;
        for (i, c) in &other.positive {
            *self.positive.entry(*i).or_default() += c;
        }
        for (i, c) in &other.negative {
            *self.negative.entry(*i).or_default() += c;
        }
        for (name, c) in &other.categories {
            self.add_category(name, *c);
        }
        self.other += other.other;
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Mean of the numbers, if any.
    pub fn mean(&self) -> Option<f64> {
        #[allow(clippy::cast_precision_loss)]
        (self.numbers > 0).then(|| self.sum / self.numbers as f64)
    }

    /// Population standard deviation of the numbers, if any.
    pub fn stddev(&self) -> Option<f64> {
        let mean = self.mean()?;
        #[allow(clippy::cast_precision_loss)]
        let var = self.sum_sq / self.numbers as f64 - mean * mean;
        Some(var.max(0.0).sqrt())
    }

    /// Every numeric bucket as `(lower, upper, count)` of the values it holds,
    /// ascending; zero is `(0, 0, zeros)`.
    pub fn buckets(&self) -> Vec<(f64, f64, u64)> {
        let mut out = Vec::with_capacity(self.positive.len() + self.negative.len() + 1);
        for (i, c) in self.negative.iter().rev() {
            let (lo, hi) = bucket_bounds(*i);
            out.push((-hi, -lo, *c));
        }
        if self.zeros > 0 {
            out.push((0.0, 0.0, self.zeros));
        }
        for (i, c) in &self.positive {
            let (lo, hi) = bucket_bounds(*i);
            out.push((lo, hi, *c));
        }
        out
    }
}

fn min_of(a: Option<f64>, b: Option<f64>, pick: fn(f64, f64) -> f64) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(pick(a, b)),
        (a, None) => a,
        (None, b) => b,
    }
}

/// A value as a category name: strings as they are, anything else as JSON.
pub fn category_of(value: &Value) -> String {
    match value {
        Value::String(s) => cut(s).to_owned(),
        other => {
            let text = other.to_string();
            cut(&text).to_owned()
        }
    }
}

fn cut(s: &str) -> &str {
    if s.len() <= MAX_CATEGORY_BYTES {
        return s;
    }
    let mut end = MAX_CATEGORY_BYTES;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A stored summary that does not decode: which field, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorruptSummary {
    pub field: String,
    pub reason: String,
}

impl fmt::Display for CorruptSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "field `{}`: {}", self.field, self.reason)
    }
}

impl std::error::Error for CorruptSummary {}

/// Merges a feature's hourly summaries as a store read them, each named
/// (its key or `_id`) with what decoding it gave. Every hour is read (a
/// caller may be consuming one reply per hour); the first that did not
/// decode is the feature's error, `"<name>: <why>"`.
pub fn merge_hours<N: fmt::Display, E: fmt::Display>(
    hours: impl IntoIterator<Item = (N, Result<Summary, E>)>,
) -> Result<Summary, String> {
    let mut merged = Summary::default();
    let mut error = None;
    for (name, hour) in hours {
        match hour {
            Ok(s) => merged.merge(&s),
            Err(e) => {
                error.get_or_insert_with(|| format!("{name}: {e}"));
            }
        }
    }
    error.map_or(Ok(merged), Err)
}

#[cfg(test)]
mod tests {
    #[test]
    fn hours_merge_and_the_first_corrupt_one_is_named() {
        let mut one = Summary::default();
        one.add(&Value::from(2.0));
        let merged = merge_hours([
            ("h1", Ok::<_, String>(one.clone())),
            ("h2", Ok(one.clone())),
        ])
        .expect("both decode");
        assert_eq!(merged.count, 2);
        let mut seen = 0;
        let hours = [
            ("h1", Ok(one.clone())),
            ("h2", Err("bad field n")),
            ("h3", Err("bad field m")),
            ("h4", Ok(one)),
        ]
        .into_iter()
        .inspect(|_| seen += 1);
        assert_eq!(merge_hours(hours), Err("h2: bad field n".to_owned()));
        assert_eq!(seen, 4, "every hour is read");
    }

    use serde_json::json;

    use super::*;

    #[test]
    fn numbers_land_in_buckets_within_the_accuracy() {
        for x in [1e-6, 0.5, 1.0, 3.0, 12.5, 99.99, 1e6] {
            let (lo, hi) = bucket_bounds(bucket_of(x));
            assert!(lo < x && x <= hi * (1.0 + 1e-12), "{x} in ({lo}, {hi}]");
            assert!(hi / lo <= gamma() + 1e-12);
        }
    }

    #[test]
    fn adds_numbers_categories_lists_and_nulls() {
        let mut s = Summary::default();
        for v in [
            json!(2),
            json!(-3.5),
            json!(0),
            json!(null),
            json!("a"),
            json!(["a", "b"]),
            json!(true),
        ] {
            s.add(&v);
        }
        assert_eq!((s.count, s.nulls, s.numbers, s.zeros), (7, 1, 3, 1));
        assert_eq!(s.min, Some(-3.5));
        assert_eq!(s.max, Some(2.0));
        assert_eq!(s.categories.get("a"), Some(&2));
        assert_eq!(s.categories.get("b"), Some(&1));
        assert_eq!(s.categories.get("true"), Some(&1));
        assert_eq!(s.buckets().len(), 3);
    }

    #[test]
    fn categories_are_bounded() {
        let mut s = Summary::default();
        for i in 0..100 {
            s.add(&json!(format!("c{i}")));
        }
        s.add(&json!("x".repeat(500)));
        assert_eq!(s.categories.len(), MAX_CATEGORIES);
        assert_eq!(s.other, 37);
        assert_eq!(category_of(&json!("é".repeat(40))).len(), 64);
    }

    #[test]
    fn mean_and_stddev() {
        let mut s = Summary::default();
        for x in [2, 4, 4, 4, 5, 5, 7, 9] {
            s.add(&json!(x));
        }
        assert_eq!(s.mean(), Some(5.0));
        assert!((s.stddev().unwrap_or_default() - 2.0).abs() < 1e-12);
    }
}
