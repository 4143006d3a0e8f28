//! Drift as Python sees it: training columns profiled into a baseline,
//! sampled reads as the Redis and MongoDB writes that add them to the hourly
//! summaries, summaries merged from either store, and the report; every
//! number comes from `freshet_core::drift`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use freshet_core::drift::mongo as drift_mongo;
use freshet_core::drift::store::{REDIS_ADD_SCRIPT, redis_add_args, summary_from_fields};
use freshet_core::drift::{
    Baseline, DEFAULT_SAMPLES_PER_MILLION, Summary, Thresholds, check_drift, hour_keys,
    merge_hours, summary_key,
};
use freshet_core::spec::FeatureSpec;
use freshet_core::time::Millis;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use serde_json::Value;

use crate::errors::CorruptState;
use crate::spec::Spec;
use crate::values::now_ms;

/// Profiles training columns (feature name or `name@version` → the column's
/// values as JSON text) into a baseline file's JSON text; also the columns
/// that name no feature of the spec (or more than one), skipped.
#[pyfunction]
fn drift_profile(
    py: Python<'_>,
    spec: PyRef<'_, Spec>,
    columns: BTreeMap<String, String>,
    source: &str,
) -> PyResult<(String, Vec<String>)> {
    let spec = Arc::clone(&spec.inner);
    let mut parsed: Vec<(String, Vec<Value>)> = Vec::new();
    let mut skipped = Vec::new();
    for (name, text) in columns {
        let Some(key) = feature_key(&spec, &name) else {
            skipped.push(name);
            continue;
        };
        let values: Vec<Value> = serde_json::from_str(&text)
            .map_err(|e| PyValueError::new_err(format!("column {name}: {e}")))?;
        parsed.push((key, values));
    }
    let baseline = py.detach(|| {
        Baseline::profile(
            source,
            parsed.iter().map(|(k, v)| (k.as_str(), v.as_slice())),
        )
    });
    Ok((baseline.to_json(), skipped))
}

/// The key (`name@version`) a column names: `name@version` itself,
/// `entity__name`, or the latest version of the one feature called `name`.
fn feature_key(spec: &FeatureSpec, name: &str) -> Option<String> {
    // `entity__name`: get_historical_features's full_feature_names.
    if let Some((entity, name)) = freshet_core::spec::split_full_feature_name(name) {
        return spec.lookup(entity, name).map(|f| f.key().to_owned());
    }
    if name.contains('@') {
        return spec.feature(name).map(|f| f.key().to_owned());
    }
    let mut entities = spec
        .features()
        .iter()
        .filter(|f| f.name == name)
        .map(|f| &f.entity);
    let entity = entities.next()?;
    if entities.any(|e| e != entity) {
        return None;
    }
    spec.lookup(entity, name).map(|f| f.key().to_owned())
}

/// The drift report's JSON text: `live` maps each feature key to its merged
/// summary's JSON text, or to `None` with `errors[key]` saying why it could
/// not be read; `baseline` is a baseline file's text (the spec's `expected`
/// stats fill in features it lacks).
#[pyfunction]
#[pyo3(signature = (spec, live, errors, baseline=None, min_samples=None))]
fn drift_report(
    spec: PyRef<'_, Spec>,
    live: BTreeMap<String, String>,
    errors: BTreeMap<String, String>,
    baseline: Option<&str>,
    min_samples: Option<u64>,
) -> PyResult<String> {
    let baseline = baseline
        .map(Baseline::from_json)
        .transpose()
        .map_err(PyValueError::new_err)?;
    let mut all: BTreeMap<String, Result<Summary, String>> = BTreeMap::new();
    for (key, text) in live {
        let s = serde_json::from_str::<Summary>(&text).map_err(|e| format!("summary: {e}"));
        all.insert(key, s);
    }
    for (key, why) in errors {
        all.insert(key, Err(why));
    }
    let mut thresholds = Thresholds::default();
    if let Some(n) = min_samples {
        thresholds.min_samples = n;
    }
    let checked = check_drift(&spec.inner, &all, baseline, &thresholds);
    serde_json::to_string(&checked).map_err(|e| PyValueError::new_err(e.to_string()))
}

/// Merges the hashes of a feature's hours (`HGETALL` answers) into one
/// summary's JSON text; `CorruptState` names the hash and field that do
/// not read.
#[pyfunction]
fn drift_merge_hashes(hashes: Vec<(String, HashMap<String, String>)>) -> PyResult<String> {
    let merged = merge_hours(
        hashes
            .into_iter()
            .map(|(key, fields)| (key, summary_from_fields(fields))),
    )
    .map_err(CorruptState::new_err)?;
    serde_json::to_string(&merged).map_err(|e| PyValueError::new_err(e.to_string()))
}

/// One sampled read's served values (feature key, JSON text) as a summary
/// per feature key.
fn summaries_by_key(values: Vec<(String, String)>) -> PyResult<BTreeMap<String, Summary>> {
    let mut by_key: BTreeMap<String, Summary> = BTreeMap::new();
    for (key, text) in values {
        let v: Value =
            serde_json::from_str(&text).map_err(|e| PyValueError::new_err(e.to_string()))?;
        by_key.entry(key).or_default().add(&v);
    }
    Ok(by_key)
}

/// One sampled read as the Redis calls that add it: per feature key with
/// its served value (JSON text), the summary's hash for the hour of `now`
/// and the `ARGV` of `DRIFT_ADD_SCRIPT`.
#[pyfunction]
#[pyo3(signature = (values, prefix="", now=None))]
fn drift_sample_calls(
    values: Vec<(String, String)>,
    prefix: &str,
    now: Option<Millis>,
) -> PyResult<Vec<(String, Vec<String>)>> {
    let now = now_ms(now);
    Ok(summaries_by_key(values)?
        .into_iter()
        .map(|(k, s)| (summary_key(prefix, &k, now), redis_add_args(&s)))
        .collect())
}

/// One sampled read as MongoDB's drift writes: per feature key with its
/// served value (JSON text), the ordered statements (raw BSON documents) of
/// one `update` on the drift collection that add it to the hour of `now`,
/// the same statements the edge sends.
#[pyfunction]
#[pyo3(signature = (values, now=None))]
fn drift_mongo_updates<'py>(
    py: Python<'py>,
    values: Vec<(String, String)>,
    now: Option<Millis>,
) -> PyResult<Vec<(String, Vec<Bound<'py, PyBytes>>)>> {
    let now = now_ms(now);
    summaries_by_key(values)?
        .into_iter()
        .map(|(k, s)| {
            let statements = drift_mongo::update_statements(&k, now, &s)
                .iter()
                .map(|d| raw_bson(py, d))
                .collect::<PyResult<Vec<_>>>()?;
            Ok((k, statements))
        })
        .collect()
}

/// The drift collection's name and its TTL index (raw BSON, for
/// `createIndexes`).
#[pyfunction]
fn drift_mongo_index(py: Python<'_>) -> PyResult<(&'static str, Bound<'_, PyBytes>)> {
    Ok((
        drift_mongo::COLLECTION,
        raw_bson(py, &drift_mongo::ttl_index())?,
    ))
}

/// The `_id`s of a feature's hourly documents from `now - since` to `now`.
#[pyfunction]
#[pyo3(signature = (feature_key, since, now=None))]
fn drift_mongo_ids(feature_key: &str, since: Millis, now: Option<Millis>) -> Vec<String> {
    drift_mongo::hour_ids(feature_key, now_ms(now), since)
}

/// Merges a feature's hourly documents (raw BSON) into one summary's JSON
/// text; `CorruptState` names the document and field that do not read.
#[pyfunction]
fn drift_merge_documents(documents: Vec<Vec<u8>>) -> PyResult<String> {
    let merged = merge_hours(documents.iter().map(|raw| {
        match bson::Document::from_reader(raw.as_slice()) {
            Ok(doc) => (
                doc.get_str("_id").unwrap_or("?").to_owned(),
                drift_mongo::summary_from_document(&doc).map_err(|e| e.to_string()),
            ),
            Err(e) => ("a drift document".to_owned(), Err(e.to_string())),
        }
    }))
    .map_err(CorruptState::new_err)?;
    serde_json::to_string(&merged).map_err(|e| PyValueError::new_err(e.to_string()))
}

fn raw_bson<'py>(py: Python<'py>, doc: &bson::Document) -> PyResult<Bound<'py, PyBytes>> {
    let bytes = doc
        .to_vec()
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    Ok(PyBytes::new(py, &bytes))
}

/// The hashes of a feature's summaries from `now - since` to `now` (ms).
#[pyfunction]
#[pyo3(signature = (feature_key, since, prefix="", now=None))]
fn drift_hour_keys(
    feature_key: &str,
    since: Millis,
    prefix: &str,
    now: Option<Millis>,
) -> Vec<String> {
    hour_keys(prefix, feature_key, now_ms(now), since)
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(drift_profile, m)?)?;
    m.add_function(wrap_pyfunction!(drift_report, m)?)?;
    m.add_function(wrap_pyfunction!(drift_merge_hashes, m)?)?;
    m.add_function(wrap_pyfunction!(drift_sample_calls, m)?)?;
    m.add_function(wrap_pyfunction!(drift_hour_keys, m)?)?;
    m.add_function(wrap_pyfunction!(drift_mongo_updates, m)?)?;
    m.add_function(wrap_pyfunction!(drift_mongo_index, m)?)?;
    m.add_function(wrap_pyfunction!(drift_mongo_ids, m)?)?;
    m.add_function(wrap_pyfunction!(drift_merge_documents, m)?)?;
    m.add("DRIFT_ADD_SCRIPT", REDIS_ADD_SCRIPT)?;
    m.add(
        "DEFAULT_DRIFT_SAMPLE_RATE",
        f64::from(DEFAULT_SAMPLES_PER_MILLION) / 1e6,
    )?;
    Ok(())
}
