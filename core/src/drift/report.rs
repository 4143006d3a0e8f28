//! The drift report: each feature's live summary against its baseline.
//!
//! Checks and their default thresholds (README, "Drift"):
//! - PSI over the baseline's bins: notable from 0.1, alert from 0.25 (the
//!   credit-scoring convention that Evidently and NannyML also use).
//! - Jensen–Shannon distance over the baseline's top categories, natural
//!   log (scipy's `jensenshannon` default, as Evidently computes it): alert
//!   from 0.1, Evidently's default threshold for its `jensenshannon` test.
//! - The seed's rule: the mean moved more than 20 %, or the stddev more than
//!   30 %, relative to the baseline's (absolute when the baseline's is 0).
//!
//! Below `min_samples` live values a feature is "not enough data", never an
//! alert. A missing baseline or an unreadable summary is reported per
//! feature and never stops the report.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::baseline::{Baseline, FeatureBaseline, bin_of, shares};
use super::summary::{Summary, bucket_bounds};
use crate::spec::FeatureSpec;

/// Thresholds of every check, with the defaults above.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Thresholds {
    pub min_samples: u64,
    pub psi_notable: f64,
    pub psi_alert: f64,
    pub js_alert: f64,
    pub mean_shift: f64,
    pub stddev_shift: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            min_samples: 100,
            psi_notable: 0.1,
            psi_alert: 0.25,
            js_alert: 0.1,
            mean_shift: 0.2,
            stddev_shift: 0.3,
        }
    }
}

/// Live category occurrences the JS distance needs per category compared
/// (the baseline's top categories and `other`), at least: the distance of
/// two samples of one distribution is about `sqrt((k - 1) / 8 * (1/n + 1/m))`
/// for `k` categories, so with fewer than ~30 per category noise alone
/// reaches Evidently's and NannyML's 0.1 (measured: 9 categories, 143 live
/// samples against 300 gave 0.105).
pub const JS_SAMPLES_PER_CATEGORY: u64 = 30;

/// A share below this counts as this in PSI, so an empty bin gives
/// a large but finite term.
pub const MIN_SHARE: f64 = 1e-4;

/// What became of one feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Ok,
    Alert,
    NotEnoughData,
    NoBaseline,
    /// The live summary could not be read.
    Corrupt,
}

/// One check: its value, its threshold and whether it alerts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Check {
    pub value: f64,
    pub threshold: f64,
    pub alert: bool,
}

impl Check {
    fn new(value: f64, threshold: f64) -> Self {
        Self {
            value,
            threshold,
            alert: value >= threshold,
        }
    }
}

/// Count, mean, stddev, min and max of one side.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub count: u64,
    pub nulls: u64,
    pub mean: Option<f64>,
    pub stddev: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

/// Baseline against live shares per bin or category, for a picture.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    pub labels: Vec<String>,
    pub baseline: Vec<f64>,
    pub live: Vec<f64>,
}

/// One feature's line of the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureReport {
    pub feature: String,
    pub status: Status,
    pub alert: bool,
    pub live: Stats,
    pub baseline: Option<Stats>,
    pub psi: Option<Check>,
    /// PSI at or above `psi_notable`, below the alert.
    pub psi_notable: bool,
    pub js: Option<Check>,
    pub mean_shift: Option<Check>,
    pub stddev_shift: Option<Check>,
    pub histogram: Option<Histogram>,
    /// Why a check could not run.
    pub message: Option<String>,
}

/// The whole report; `alert` when any feature alerts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftReport {
    pub alert: bool,
    pub thresholds: Thresholds,
    pub features: Vec<FeatureReport>,
}

/// A feature's live side: its summary, or why it could not be read.
pub type Live = Result<Summary, String>;

/// A drift check as `GET /v1/drift` and `freshet drift` answer it: the
/// report, and where its baseline came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftCheck {
    /// The baseline's `source` (a file name, or "expected").
    pub baseline: String,
    pub report: DriftReport,
}

/// Checks `live` against `baseline`, a baseline file (without one, the
/// source is "expected"), its missing features filled in by the spec's
/// `expected` stats: the one way the edge and the Python reader assemble
/// the report.
pub fn check_drift(
    spec: &FeatureSpec,
    live: &BTreeMap<String, Live>,
    baseline: Option<Baseline>,
    thresholds: &Thresholds,
) -> DriftCheck {
    let baseline = baseline
        .unwrap_or_else(|| Baseline {
            source: "expected".to_owned(),
            ..Baseline::default()
        })
        .with_expected(spec);
    DriftCheck {
        report: report(live, &baseline.features, thresholds),
        baseline: baseline.source,
    }
}

/// Compares each feature's live summary with its baseline. `live` and
/// `baselines` are keyed by feature key; every feature of either appears.
pub fn report(
    live: &BTreeMap<String, Live>,
    baselines: &BTreeMap<String, FeatureBaseline>,
    thresholds: &Thresholds,
) -> DriftReport {
    let mut keys: Vec<&String> = live.keys().chain(baselines.keys()).collect();
    keys.sort();
    keys.dedup();
    let empty = Ok(Summary::default());
    let features: Vec<FeatureReport> = keys
        .into_iter()
        .map(|k| {
            feature_report(
                k,
                live.get(k).unwrap_or(&empty),
                baselines.get(k),
                thresholds,
            )
        })
        .collect();
    DriftReport {
        alert: features.iter().any(|f| f.alert),
        thresholds: *thresholds,
        features,
    }
}

fn live_stats(s: &Summary) -> Stats {
    Stats {
        count: s.count,
        nulls: s.nulls,
        mean: s.mean(),
        stddev: s.stddev(),
        min: s.min,
        max: s.max,
    }
}

fn baseline_stats(b: &FeatureBaseline) -> Stats {
    Stats {
        count: b.count,
        nulls: b.nulls,
        mean: b.mean,
        stddev: b.stddev,
        min: b.min,
        max: b.max,
    }
}

/// One feature's report.
pub fn feature_report(
    key: &str,
    live: &Live,
    baseline: Option<&FeatureBaseline>,
    t: &Thresholds,
) -> FeatureReport {
    let mut r = FeatureReport {
        feature: key.to_owned(),
        status: Status::Ok,
        alert: false,
        live: Stats::default(),
        baseline: baseline.map(baseline_stats),
        psi: None,
        psi_notable: false,
        js: None,
        mean_shift: None,
        stddev_shift: None,
        histogram: None,
        message: None,
    };
    let s = match live {
        Ok(s) => s,
        Err(why) => {
            r.status = Status::Corrupt;
            r.message = Some(why.clone());
            return r;
        }
    };
    r.live = live_stats(s);
    let Some(b) = baseline else {
        r.status = Status::NoBaseline;
        r.message = Some("no baseline: profile a training set or give `expected`".to_owned());
        return r;
    };
    if s.count < t.min_samples {
        r.status = Status::NotEnoughData;
        r.message = Some(format!(
            "not enough data: {} of {} samples",
            s.count, t.min_samples
        ));
        return r;
    }
    if b.is_numeric() {
        if let (Some(bm), Some(lm)) = (b.mean, s.mean()) {
            r.mean_shift = Some(Check::new(relative_change(bm, lm), t.mean_shift));
        }
        if let (Some(bs), Some(ls)) = (b.stddev, s.stddev()) {
            r.stddev_shift = Some(Check::new(relative_change(bs, ls), t.stddev_shift));
        }
        if !b.proportions.is_empty() && s.numbers > 0 {
            let live = shares(&rebin(s, &b.cuts));
            let psi = psi(&b.proportions, &live);
            r.psi = Some(Check::new(psi, t.psi_alert));
            r.psi_notable = psi >= t.psi_notable && psi < t.psi_alert;
            r.histogram = Some(Histogram {
                labels: bin_labels(&b.cuts),
                baseline: b.proportions.clone(),
                live,
            });
        }
    }
    if b.is_categorical() {
        let (labels, base, live, n) = category_shares(b, s);
        let needed = t
            .min_samples
            .max(JS_SAMPLES_PER_CATEGORY * labels.len() as u64);
        if n >= needed {
            r.js = Some(Check::new(js_distance(&base, &live), t.js_alert));
        } else if !b.is_numeric() {
            r.status = Status::NotEnoughData;
            r.message = Some(format!(
                "not enough data: {n} of {needed} category samples ({JS_SAMPLES_PER_CATEGORY} per category)"
            ));
            return r;
        }
        if r.histogram.is_none() {
            r.histogram = Some(Histogram {
                labels,
                baseline: base,
                live,
            });
        }
    }
    if r.psi.is_none() && r.js.is_none() && r.mean_shift.is_none() {
        r.message =
            Some("no check applies: the baseline and the live values share no kind".to_owned());
    }
    r.alert = [r.psi, r.js, r.mean_shift, r.stddev_shift]
        .iter()
        .flatten()
        .any(|c| c.alert);
    r.status = if r.alert { Status::Alert } else { Status::Ok };
    r
}

/// `|live - base| / |base|`, or `|live - base|` when the baseline is 0.
pub fn relative_change(base: f64, live: f64) -> f64 {
    let d = (live - base).abs();
    if base == 0.0 { d } else { d / base.abs() }
}

/// Live numbers counted per baseline bin. A sketch bucket goes to the bin
/// below every cut inside it: a value equal to a cut (a count of exactly 3)
/// then lands in the bin that holds the cut, as in the baseline, and a
/// continuous value is off by at most one bucket's width (0.5 %).
pub fn rebin(s: &Summary, cuts: &[f64]) -> Vec<u64> {
    let mut counts = vec![0u64; cuts.len() + 1];
    counts[bin_of(cuts, 0.0)] += s.zeros;
    for (i, c) in &s.positive {
        // Values in (lo, hi].
        let (lo, _) = bucket_bounds(*i);
        counts[cuts.partition_point(|cut| *cut <= lo)] += c;
    }
    for (i, c) in &s.negative {
        // Values in [-hi, -lo).
        let (_, hi) = bucket_bounds(*i);
        counts[cuts.partition_point(|cut| *cut < -hi)] += c;
    }
    counts
}

/// Population stability index of `live` shares against `base` shares.
pub fn psi(base: &[f64], live: &[f64]) -> f64 {
    base.iter()
        .zip(live)
        .map(|(b, l)| {
            let (b, l) = (b.max(MIN_SHARE), l.max(MIN_SHARE));
            (l - b) * (l / b).ln()
        })
        .sum()
}

/// Jensen–Shannon distance (natural log): the square root of the mean KL
/// divergence of each side from their average.
pub fn js_distance(p: &[f64], q: &[f64]) -> f64 {
    let norm = |v: &[f64]| {
        let t: f64 = v.iter().sum();
        v.iter()
            .map(|x| if t > 0.0 { x / t } else { 0.0 })
            .collect::<Vec<_>>()
    };
    let (p, q) = (norm(p), norm(q));
    let kl = |a: &[f64], m: &[f64]| -> f64 {
        a.iter()
            .zip(m)
            .filter(|(x, _)| **x > 0.0)
            .map(|(x, y)| x * (x / y).ln())
            .sum()
    };
    let m: Vec<f64> = p.iter().zip(&q).map(|(a, b)| (a + b) / 2.0).collect();
    ((kl(&p, &m) + kl(&q, &m)) / 2.0).max(0.0).sqrt()
}

/// The baseline's categories (most frequent first) and `other`, with the
/// baseline's and the live shares of each, and the live occurrences.
fn category_shares(b: &FeatureBaseline, s: &Summary) -> (Vec<String>, Vec<f64>, Vec<f64>, u64) {
    let mut names: Vec<(&String, f64)> = b.categories.iter().map(|(k, v)| (k, *v)).collect();
    names.sort_by(|x, y| y.1.total_cmp(&x.1).then_with(|| x.0.cmp(y.0)));
    let mut labels: Vec<String> = names.iter().map(|(k, _)| (*k).clone()).collect();
    let mut base: Vec<f64> = names.iter().map(|(_, v)| *v).collect();
    let mut counts: Vec<u64> = names
        .iter()
        .map(|(k, _)| s.categories.get(*k).copied().unwrap_or(0))
        .collect();
    let listed: u64 = counts.iter().sum();
    let all: u64 = s.categories.values().sum::<u64>() + s.other;
    labels.push("(other)".to_owned());
    base.push(b.other);
    counts.push(all - listed);
    (labels, base, shares(&counts), all)
}

fn bin_labels(cuts: &[f64]) -> Vec<String> {
    let mut labels = Vec::with_capacity(cuts.len() + 1);
    for (i, c) in cuts.iter().enumerate() {
        labels.push(match i {
            0 => format!("≤{}", short(*c)),
            _ => format!("{}–{}", short(cuts[i - 1]), short(*c)),
        });
    }
    if let Some(last) = cuts.last() {
        labels.push(format!(">{}", short(*last)));
    }
    labels
}

fn short(x: f64) -> String {
    let text = format!("{x:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn summary(values: &[Value]) -> Summary {
        let mut s = Summary::default();
        values.iter().for_each(|v| s.add(v));
        s
    }

    fn uniform(range: std::ops::Range<i64>, times: usize) -> Vec<Value> {
        range.cycle().take(times).map(|i| json!(i)).collect()
    }

    #[test]
    fn same_distribution_does_not_alert_and_a_doubled_one_does() {
        let base = FeatureBaseline::profile(&uniform(0..50, 1000));
        let t = Thresholds::default();
        let same = feature_report("x@1", &Ok(summary(&uniform(0..50, 300))), Some(&base), &t);
        assert_eq!(same.status, Status::Ok, "{same:?}");
        assert!(same.psi.is_some_and(|c| c.value < 0.05));
        let doubled: Vec<Value> = (0..50).cycle().take(300).map(|i| json!(i * 2)).collect();
        let shifted = feature_report("x@1", &Ok(summary(&doubled)), Some(&base), &t);
        assert_eq!(shifted.status, Status::Alert);
        assert!(
            shifted.psi.is_some_and(|c| c.alert && c.value > 0.25),
            "{shifted:?}"
        );
        assert!(shifted.mean_shift.is_some_and(|c| c.alert));
        assert!(shifted.histogram.is_some());
    }

    #[test]
    fn integers_equal_to_cuts_land_in_their_bins() {
        let values = uniform(0..5, 500);
        let base = FeatureBaseline::profile(&values);
        let live = rebin(&summary(&values), &base.cuts);
        assert_eq!(shares(&live), base.proportions);
        let neg: Vec<Value> = (-5..0).cycle().take(500).map(|i| json!(i)).collect();
        let base = FeatureBaseline::profile(&neg);
        assert_eq!(shares(&rebin(&summary(&neg), &base.cuts)), base.proportions);
    }

    #[test]
    fn too_few_samples_is_not_an_alarm() {
        let base = FeatureBaseline::profile(&uniform(0..50, 1000));
        let few: Vec<Value> = (0..99).map(|i| json!(i * 100)).collect();
        let r = feature_report(
            "x@1",
            &Ok(summary(&few)),
            Some(&base),
            &Thresholds::default(),
        );
        assert_eq!((r.status, r.alert), (Status::NotEnoughData, false));
    }

    #[test]
    fn corrupt_and_missing_are_reported() {
        let base = FeatureBaseline::profile(&uniform(0..50, 1000));
        let mut live = BTreeMap::new();
        live.insert("bad@1".to_owned(), Err("field `n`: not a count".to_owned()));
        live.insert("nobase@1".to_owned(), Ok(summary(&uniform(0..5, 200))));
        let mut baselines = BTreeMap::new();
        baselines.insert("bad@1".to_owned(), base.clone());
        baselines.insert("unread@1".to_owned(), base);
        let r = report(&live, &baselines, &Thresholds::default());
        let status: Vec<_> = r
            .features
            .iter()
            .map(|f| (f.feature.as_str(), f.status))
            .collect();
        assert_eq!(
            status,
            [
                ("bad@1", Status::Corrupt),
                ("nobase@1", Status::NoBaseline),
                ("unread@1", Status::NotEnoughData)
            ]
        );
        assert!(!r.alert);
    }

    #[test]
    fn categories_by_js_distance() {
        let train: Vec<Value> = ["a", "b", "c", "a"]
            .iter()
            .cycle()
            .take(400)
            .map(|s| json!(s))
            .collect();
        let base = FeatureBaseline::profile(&train);
        let t = Thresholds::default();
        let same = feature_report("c@1", &Ok(summary(&train[..200])), Some(&base), &t);
        assert_eq!(same.status, Status::Ok);
        let moved: Vec<Value> = ["d", "b"]
            .iter()
            .cycle()
            .take(200)
            .map(|s| json!(s))
            .collect();
        let r = feature_report("c@1", &Ok(summary(&moved)), Some(&base), &t);
        assert!(r.js.is_some_and(|c| c.alert), "{r:?}");
        let labels = r.histogram.map(|h| h.labels).unwrap_or_default();
        assert_eq!(labels, ["a", "b", "c", "(other)"]);
    }

    #[test]
    fn expected_stats_check_the_seed_rule() {
        let base = FeatureBaseline::from_expected(&crate::spec::Expected {
            mean: Some(10.0),
            stddev: Some(5.0),
            min: Some(0.0),
            max: None,
        });
        let live: Vec<Value> = (0..200).map(|i| json!(10 + (i % 11) - 5)).collect();
        let r = feature_report(
            "e@1",
            &Ok(summary(&live)),
            Some(&base),
            &Thresholds::default(),
        );
        assert!(r.psi.is_none());
        assert!(r.mean_shift.is_some_and(|c| !c.alert));
        assert!(r.stddev_shift.is_some_and(|c| c.alert), "{r:?}"); // stddev ~3.2 vs 5
    }

    #[test]
    fn js_needs_samples_per_category() {
        let train: Vec<Value> = (0..900).map(|i| json!(format!("p{}", i % 9))).collect();
        let base = FeatureBaseline::profile(&train);
        let t = Thresholds::default();
        // 10 labels (9 + other): 300 needed.
        let few = feature_report("c@1", &Ok(summary(&train[..299])), Some(&base), &t);
        assert_eq!(few.status, Status::NotEnoughData, "{few:?}");
        assert!(few.message.is_some_and(|m| m.contains("299 of 300")));
        let enough = feature_report("c@1", &Ok(summary(&train[..300])), Some(&base), &t);
        assert_eq!(enough.status, Status::Ok);
    }

    #[test]
    fn js_and_psi_known_values() {
        assert!(js_distance(&[1.0, 0.0], &[1.0, 0.0]).abs() < 1e-12);
        // Disjoint supports: sqrt(ln 2).
        assert!((js_distance(&[1.0, 0.0], &[0.0, 1.0]) - 2f64.ln().sqrt()).abs() < 1e-12);
        let p = psi(&[0.5, 0.5], &[0.25, 0.75]);
        assert!((p - (-0.25 * 0.5f64.ln() + 0.25 * 1.5f64.ln())).abs() < 1e-12);
    }

    #[test]
    fn a_check_fills_the_baseline_from_the_spec_and_names_its_source() {
        let spec = FeatureSpec::parse(
            "[entities.user]\nkey = [\"userId\"]\n\
             [[feature]]\nname = \"n\"\nentity = \"user\"\non = [\"*\"]\nagg = \"count\"\n\
             expected = { mean = 2.0, stddev = 1.0 }\n\
             [[feature]]\nname = \"m\"\nentity = \"user\"\non = [\"*\"]\nagg = \"count\"\n",
        )
        .expect("spec");
        let live: BTreeMap<String, Live> = [("m@1".to_owned(), Err("broken".to_owned()))].into();
        let t = Thresholds::default();
        let expected = check_drift(&spec, &live, None, &t);
        assert_eq!(expected.baseline, "expected");
        let keys: Vec<&str> = expected
            .report
            .features
            .iter()
            .map(|f| f.feature.as_str())
            .collect();
        assert_eq!(keys, ["m@1", "n@1"]);
        assert_eq!(expected.report.features[0].status, Status::Corrupt);
        let train: Vec<Value> = (0..200).map(|i| json!(i % 5)).collect();
        let file = Baseline::profile("train.parquet", [("m@1", train.as_slice())]);
        let profiled = check_drift(&spec, &live, Some(file), &t);
        assert_eq!(profiled.baseline, "train.parquet");
        assert_eq!(
            profiled.report,
            report(
                &live,
                &Baseline::profile("", [("m@1", train.as_slice())])
                    .with_expected(&spec)
                    .features,
                &t
            )
        );
        let text = serde_json::to_value(&profiled).expect("json");
        assert_eq!(text["baseline"], "train.parquet");
        assert!(text["report"]["features"].is_array());
    }
}
