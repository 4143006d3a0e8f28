//! `freshet._freshet`, the one binding module: `freshet-core`'s spec, store
//! decoding, reads and point-in-time replay as Python classes and functions,
//! and the one mapping from [`ReaderError`] and [`HistoryError`] to Python
//! exceptions. Everything else lives in [`reader`] and [`history`], which
//! know nothing of Python.

pub mod history;
pub mod reader;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use freshet_core::drift::mongo as drift_mongo;
use freshet_core::drift::store::{REDIS_ADD_SCRIPT, redis_add_args, summary_from_fields};
use freshet_core::drift::{
    Baseline, Summary, Thresholds, check_drift, hour_keys, merge_hours, summary_key,
};
use freshet_core::encode::redis::RedisValue;
use freshet_core::read::{FeatureValue as CoreValue, ReadError};
use freshet_core::replay::{AsOf, Row};
use freshet_core::spec::FeatureSpec;
use freshet_core::state::FeatureDoc;
use freshet_core::time::Millis;
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde_json::Value;

use crate::history::{HistoryError, LogEntities, Query, Replays, first_received_at, needed_spec};
use crate::reader::{Plan, ReaderError};

create_exception!(
    freshet,
    FreshetError,
    PyException,
    "Base of every Freshet error."
);
create_exception!(
    freshet,
    InvalidSpec,
    FreshetError,
    "features.toml does not parse or check; the message names the feature."
);
create_exception!(
    freshet,
    UnknownFeature,
    FreshetError,
    "An entity or feature the spec does not know; raised before any I/O."
);
create_exception!(
    freshet,
    StoreUnavailable,
    FreshetError,
    "The store could not be reached or did not answer in time."
);
create_exception!(
    freshet,
    CorruptState,
    FreshetError,
    "The stored state does not have the shape Freshet writes; names the key."
);

create_exception!(
    freshet,
    LogUnavailable,
    FreshetError,
    "The event log could not be reached, listed or fetched; names where."
);
create_exception!(
    freshet,
    CorruptLog,
    FreshetError,
    "A log object or line that does not read; names the object and line."
);

impl From<HistoryError> for PyErr {
    fn from(e: HistoryError) -> Self {
        let message = e.to_string();
        match e {
            HistoryError::Unknown(_) => UnknownFeature::new_err(message),
            HistoryError::MissingId { .. } => PyValueError::new_err(message),
            HistoryError::Log { .. } => CorruptLog::new_err(message),
        }
    }
}

impl From<ReaderError> for PyErr {
    fn from(e: ReaderError) -> Self {
        let message = e.to_string();
        match e {
            ReaderError::Spec(_) => InvalidSpec::new_err(message),
            ReaderError::Unknown(_) => UnknownFeature::new_err(message),
            ReaderError::Corrupt { .. } => CorruptState::new_err(message),
            ReaderError::Unavailable(_) => StoreUnavailable::new_err(message),
            ReaderError::Input(_) => PyValueError::new_err(message),
        }
    }
}

fn now_ms(now: Option<Millis>) -> Millis {
    now.unwrap_or_else(|| {
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| {
            Millis::try_from(d.as_millis()).unwrap_or(Millis::MAX)
        })
    })
}

/// A parsed and checked `features.toml`.
#[pyclass(module = "freshet._freshet", frozen)]
#[derive(Debug)]
struct Spec {
    inner: Arc<FeatureSpec>,
}

#[pymethods]
impl Spec {
    #[new]
    fn new(text: &str) -> PyResult<Self> {
        let inner = FeatureSpec::parse(text).map_err(|e| ReaderError::Spec(e.to_string()))?;
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// The spec's hash, as the edge shows it in `GET /health`.
    #[getter]
    fn hash(&self) -> &str {
        self.inner.hash()
    }

    /// The entity names, sorted.
    #[getter]
    fn entities(&self) -> Vec<String> {
        let mut names: Vec<String> = self.inner.entities().map(|e| e.name.clone()).collect();
        names.sort();
        names
    }

    /// A composite entity's parts, in order; `[]` for a simple entity.
    fn parts(&self, entity: &str) -> PyResult<Vec<String>> {
        let def = self
            .inner
            .entity(entity)
            .ok_or_else(|| ReaderError::from(ReadError::UnknownEntity(entity.to_owned())))?;
        Ok(def.part_names().into_iter().map(str::to_owned).collect())
    }

    /// The entity of a ranking read's (user, item) pairs: `pair_entity`
    /// checked, or the spec's composite of exactly the two.
    #[pyo3(signature = (user_entity, item_entity, pair_entity=None))]
    fn pair_entity(
        &self,
        user_entity: &str,
        item_entity: &str,
        pair_entity: Option<&str>,
    ) -> PyResult<String> {
        Ok(reader::pair_entity(
            &self.inner,
            user_entity,
            item_entity,
            pair_entity,
        )?)
    }

    /// The ids of a composite entity, row by row, from one list of ids per
    /// part (keyed by the part's entity name).
    fn compose_ids(
        &self,
        entity: &str,
        ids: HashMap<String, Vec<String>>,
    ) -> PyResult<Vec<String>> {
        Ok(reader::compose_ids(&self.inner, entity, &ids)?)
    }

    /// A read of `names` (all of the entity's features when `None`).
    #[pyo3(signature = (entity, names=None))]
    fn plan(&self, py: Python<'_>, entity: &str, names: Option<Vec<String>>) -> PyResult<ReadPlan> {
        let plan = Plan::new(Arc::clone(&self.inner), entity, names)?;
        let column_names = plan
            .columns
            .iter()
            .map(|c| PyString::intern(py, c).unbind())
            .collect();
        Ok(ReadPlan { plan, column_names })
    }

    fn __repr__(&self) -> String {
        format!("Spec(hash={:?})", self.inner.hash())
    }
}

/// One feature as served: its value, the time of the latest event that
/// touched it (RFC 3339, `None` if none has) and whether it is past its ttl.
#[pyclass(module = "freshet._freshet", frozen)]
#[derive(Debug)]
struct FeatureValue {
    #[pyo3(get)]
    value: Py<PyAny>,
    #[pyo3(get)]
    updated_at: Option<String>,
    #[pyo3(get)]
    stale: bool,
}

#[pymethods]
impl FeatureValue {
    fn __eq__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<bool> {
        let Ok(other) = other.cast::<FeatureValue>() else {
            return Ok(false);
        };
        let other = other.get();
        Ok(self.stale == other.stale
            && self.updated_at == other.updated_at
            && self.value.bind(py).eq(other.value.bind(py))?)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "FeatureValue(value={}, updated_at={:?}, stale={})",
            self.value.bind(py).repr()?,
            self.updated_at,
            if self.stale { "True" } else { "False" }
        ))
    }
}

/// A read of one entity's named features: the store requests, and the
/// decoding of their answers into rows (`{column: FeatureValue}`).
#[pyclass(module = "freshet._freshet", frozen)]
#[derive(Debug)]
struct ReadPlan {
    plan: Plan,
    /// The column names as Python strings, made once for every row.
    column_names: Vec<Py<PyString>>,
}

#[pymethods]
impl ReadPlan {
    #[getter]
    fn entity(&self) -> &str {
        &self.plan.entity
    }

    /// The names as asked (or every feature, by name), in order.
    #[getter]
    fn columns(&self) -> Vec<String> {
        self.plan.columns.clone()
    }

    /// Storage keys (`name@version`) of the columns.
    #[getter]
    fn keys(&self) -> Vec<String> {
        self.plan.keys.clone()
    }

    /// The names to send to the serving API (`None`: all).
    #[getter]
    fn names(&self) -> Option<Vec<String>> {
        self.plan.names.clone()
    }

    #[getter]
    fn collection(&self) -> String {
        self.plan.mongo_collection()
    }

    /// The `find` projection's fields: each feature and its `_ts` entry.
    #[getter]
    fn projection(&self) -> Vec<String> {
        self.plan.mongo_projection()
    }

    #[getter]
    fn commands_per_entity(&self) -> usize {
        self.plan.redis_commands_per_entity()
    }

    /// Every id's commands, in order, for one pipeline.
    fn redis_commands<'py>(
        &self,
        py: Python<'py>,
        prefix: &str,
        ids: Vec<String>,
    ) -> PyResult<Bound<'py, PyList>> {
        let commands = ids
            .iter()
            .flat_map(|id| self.plan.redis_commands(prefix, id))
            .map(|c| PyTuple::new(py, c.0.iter().map(|part| PyBytes::new(py, part))))
            .collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, commands)
    }

    /// Decodes a pipeline's replies (`commands_per_entity` per id; an
    /// exception object in place of a failed command) into rows.
    #[pyo3(signature = (prefix, ids, replies, now=None))]
    fn decode_redis<'py>(
        &self,
        py: Python<'py>,
        prefix: &str,
        ids: Vec<String>,
        replies: Vec<Bound<'py, PyAny>>,
        now: Option<Millis>,
    ) -> PyResult<Bound<'py, PyList>> {
        let per = self.plan.redis_commands_per_entity();
        if replies.len() != per * ids.len() {
            return Err(ReaderError::Unavailable(format!(
                "expected {} Redis replies, got {}",
                per * ids.len(),
                replies.len()
            ))
            .into());
        }
        let now = now_ms(now);
        let rows = ids
            .iter()
            .zip(replies.chunks(per.max(1)))
            .map(|(id, part)| {
                let part = part.iter().map(redis_value).collect::<PyResult<Vec<_>>>()?;
                let doc = self.plan.decode_redis(prefix, id, &part)?;
                self.row(py, &doc, now)
            })
            .collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, rows)
    }

    /// Decodes the raw BSON documents a `find` returned into one row per id
    /// (an id without a document reads as defaults).
    #[pyo3(signature = (ids, documents, now=None))]
    fn decode_mongo<'py>(
        &self,
        py: Python<'py>,
        ids: Vec<String>,
        documents: Vec<Vec<u8>>,
        now: Option<Millis>,
    ) -> PyResult<Bound<'py, PyList>> {
        let now = now_ms(now);
        let mut found: Vec<(String, FeatureDoc)> = Vec::with_capacity(documents.len());
        for raw in &documents {
            if let (Some(id), doc) = self.plan.decode_mongo(raw)? {
                found.push((id, doc));
            }
        }
        let empty = FeatureDoc::default();
        let rows = ids
            .iter()
            .map(|id| {
                let doc = found
                    .iter()
                    .find(|(f, _)| f == id)
                    .map_or(&empty, |(_, d)| d);
                self.row(py, doc, now)
            })
            .collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, rows)
    }

    /// Decodes the serving API's JSON answer: a `GET /v1/features/…` body
    /// (`part=None`), or the `user` or `items` of a `POST /v1/features/batch`.
    #[pyo3(signature = (body, part=None))]
    fn decode_served<'py>(
        &self,
        py: Python<'py>,
        body: &[u8],
        part: Option<&str>,
    ) -> PyResult<Bound<'py, PyList>> {
        let answer: Value = serde_json::from_slice(body)
            .map_err(|e| ReaderError::Unavailable(format!("the edge's answer is not JSON: {e}")))?;
        let answers: Vec<&Value> = match part {
            None => vec![&answer],
            Some("user") => vec![&answer["user"]],
            Some(part) => answer["items"]
                .as_array()
                .map(|items| match part {
                    // Each item's (user, item) pair.
                    "pairs" => items.iter().map(|item| &item["pair"]).collect(),
                    _ => items.iter().collect(),
                })
                .ok_or_else(|| {
                    ReaderError::Unavailable("the edge's answer has no `items`".into())
                })?,
        };
        let rows = answers
            .into_iter()
            .map(|a| {
                let values = self.plan.decode_served(a)?;
                self.values_row(py, values)
            })
            .collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, rows)
    }
}

impl ReadPlan {
    fn row<'py>(
        &self,
        py: Python<'py>,
        doc: &FeatureDoc,
        now: Millis,
    ) -> PyResult<Bound<'py, PyDict>> {
        self.values_row(py, self.plan.values(doc, now))
    }

    fn values_row<'py>(
        &self,
        py: Python<'py>,
        values: Vec<CoreValue>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let row = PyDict::new(py);
        for (column, v) in self.column_names.iter().zip(values) {
            let value = FeatureValue {
                value: to_python(py, &v.value)?.unbind(),
                updated_at: v.updated_at,
                stale: v.stale,
            };
            row.set_item(column.bind(py), Py::new(py, value)?)?;
        }
        Ok(row)
    }
}

/// A JSON value as the Python object `json.loads` would give.
fn to_python<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => i.into_pyobject(py)?.into_any(),
            (None, Some(u)) => u.into_pyobject(py)?.into_any(),
            _ => PyFloat::new(py, n.as_f64().unwrap_or(f64::NAN)).into_any(),
        },
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(items) => PyList::new(
            py,
            items
                .iter()
                .map(|v| to_python(py, v))
                .collect::<PyResult<Vec<_>>>()?,
        )?
        .into_any(),
        Value::Object(fields) => {
            let d = PyDict::new(py);
            for (k, v) in fields {
                d.set_item(k, to_python(py, v)?)?;
            }
            d.into_any()
        }
    })
}

/// A redis-py reply (bytes, str, int, float, None, list, dict, or the
/// exception a pipeline puts in place of a failed command) as a [`RedisValue`].
fn redis_value(obj: &Bound<'_, PyAny>) -> PyResult<RedisValue> {
    if obj.is_none() {
        return Ok(RedisValue::Nil);
    }
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(RedisValue::Bulk(b.as_bytes().to_vec()));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(RedisValue::Bulk(s.to_str()?.as_bytes().to_vec()));
    }
    if let Ok(l) = obj.cast::<PyList>() {
        return Ok(RedisValue::Array(
            l.iter().map(|i| redis_value(&i)).collect::<PyResult<_>>()?,
        ));
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        return Ok(RedisValue::Map(
            d.iter()
                .map(|(k, v)| Ok((redis_value(&k)?, redis_value(&v)?)))
                .collect::<PyResult<_>>()?,
        ));
    }
    if obj.is_instance_of::<PyBool>() || obj.is_instance_of::<PyInt>() {
        return Ok(RedisValue::Int(obj.extract()?));
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        return Ok(RedisValue::Double(f.value()));
    }
    if let Ok(t) = obj.cast::<PyTuple>() {
        return Ok(RedisValue::Array(
            t.iter().map(|i| redis_value(&i)).collect::<PyResult<_>>()?,
        ));
    }
    if obj.is_instance_of::<pyo3::exceptions::PyBaseException>() {
        return Ok(RedisValue::Error(obj.str()?.to_string()));
    }
    Ok(RedisValue::Error(format!(
        "unexpected reply type {}",
        obj.get_type().name()?
    )))
}

// ---- the event log: point-in-time replay ----

fn as_of(name: &str) -> PyResult<AsOf> {
    match name {
        "served" => Ok(AsOf::Served),
        "event_time" => Ok(AsOf::EventTime),
        _ => Err(PyValueError::new_err(format!(
            "as_of is \"served\" or \"event_time\", not {name:?}"
        ))),
    }
}

/// One query as Python gives it: `(features, ids, at)`, the features as
/// `(entity, name)` pairs, the ids as one list per entity, `at` in ms.
type PyQuery = (
    Vec<(String, String)>,
    HashMap<String, Vec<String>>,
    Vec<Millis>,
);

fn query((features, ids, at): PyQuery) -> PyResult<Query> {
    let n = at.len();
    let mut rows: Vec<Row> = at
        .into_iter()
        .map(|at| Row {
            at,
            ids: BTreeMap::new(),
        })
        .collect();
    for (entity, column) in ids {
        if column.len() != n {
            return Err(PyValueError::new_err(format!(
                "{} `{entity}` ids for {n} rows",
                column.len()
            )));
        }
        for (row, id) in rows.iter_mut().zip(column) {
            row.ids.insert(entity.clone(), id);
        }
    }
    Ok(Query { features, rows })
}

/// Each `(source, data, more)` piece of the log that `pieces` yields, given
/// to `feed` with the GIL released: the fetching stays in Python, the
/// parsing and folding in Rust, and a model server's other threads run.
fn for_each_piece(
    py: Python<'_>,
    pieces: &Bound<'_, PyAny>,
    mut feed: impl FnMut(&str, &[u8], bool) -> Result<(), HistoryError> + Send,
) -> PyResult<()> {
    for item in pieces.try_iter()? {
        let item = item?;
        let (source, data, more): (String, Bound<'_, PyBytes>, bool) = item.extract()?;
        let bytes = data.as_bytes();
        py.detach(|| feed(&source, bytes, more))?;
    }
    Ok(())
}

/// Point-in-time values of training rows from the event log: for each
/// query `(features, ids, at)`, the rows' values as `freshet-core`'s replay
/// computes them, as columns: `(values, stale, updated_at)`, each one list
/// per feature. `pieces` yields `(source, bytes, more)`: a whole log object
/// (gzipped or not) with `more=False`, or a chunk of a streamed NDJSON
/// export with `more=True` (its last line may go on in the next chunk of
/// the same source). Served view: pieces in receive order. Event-time
/// view with `lateness` (ms): pieces in receive order too, and no event
/// later than that after its time, so only that much of the log is held.
/// Also returns the batches and events read.
#[pyfunction]
#[pyo3(signature = (spec, queries, pieces, as_of="served", lateness=None))]
fn replay_log<'py>(
    py: Python<'py>,
    spec: PyRef<'_, Spec>,
    queries: Vec<PyQuery>,
    pieces: &Bound<'py, PyAny>,
    as_of: &str,
    lateness: Option<Millis>,
) -> PyResult<(Bound<'py, PyList>, u64, u64)> {
    let view = self::as_of(as_of)?;
    let spec = Arc::clone(&spec.inner);
    let queries = queries
        .into_iter()
        .map(query)
        .collect::<PyResult<Vec<_>>>()?;
    let widths: Vec<usize> = queries.iter().map(|q| q.features.len()).collect();
    // Only the features asked for are folded.
    let spec = needed_spec(&spec, &queries)?;
    let mut replays = Replays::new(&spec, queries, view, lateness)?;
    for_each_piece(py, pieces, |source, data, more| {
        replays.feed(source, data, more)
    })?;
    let (batches, events) = replays.counts();
    let answers = py.detach(|| replays.finish())?;
    let out = PyList::empty(py);
    for (rows, width) in answers.into_iter().zip(widths) {
        let values = PyList::empty(py);
        let stale = PyList::empty(py);
        let updated = PyList::empty(py);
        for f in 0..width {
            let column = rows
                .iter()
                .map(|r| to_python(py, &r[f].value))
                .collect::<PyResult<Vec<_>>>()?;
            values.append(PyList::new(py, column)?)?;
            stale.append(PyList::new(py, rows.iter().map(|r| r[f].stale))?)?;
            updated.append(PyList::new(
                py,
                rows.iter().map(|r| r[f].updated_at.as_deref()),
            )?)?;
        }
        out.append((values, stale, updated))?;
    }
    Ok((out, batches, events))
}

/// The id of a composite entity from its parts' ids, in the entity's
/// order: each part with `%` written `%25` and `|` written `%7C`, joined by
/// `|` (`freshet-core`'s `composite_id`).
#[pyfunction]
fn composite_id(parts: Vec<String>) -> PyResult<String> {
    if parts.len() < 2 || parts.iter().any(String::is_empty) {
        return Err(PyValueError::new_err(
            "a composite id has two or more parts, each a non-empty id",
        ));
    }
    Ok(freshet_core::spec::composite_id(&parts))
}

/// The parts of a composite id; `ValueError` for text `composite_id` cannot
/// have made.
#[pyfunction]
fn split_composite_id(id: &str) -> PyResult<Vec<String>> {
    freshet_core::spec::split_composite_id(id).ok_or_else(|| {
        PyValueError::new_err(format!(
            "{id:?} is not a composite id: parts joined by `|`, each non-empty, with `%` \
             written `%25` and `|` written `%7C`"
        ))
    })
}

/// The column `get_historical_features(full_feature_names=True)` gives a
/// feature: `entity__name` (`freshet-core`'s `full_feature_name`).
#[pyfunction]
fn full_feature_name(entity: &str, name: &str) -> String {
    freshet_core::spec::full_feature_name(entity, name)
}

/// The entity and name of an `entity__name` column; `None` for another.
#[pyfunction]
fn split_full_feature_name(column: &str) -> Option<(String, String)> {
    freshet_core::spec::split_full_feature_name(column)
        .map(|(entity, name)| (entity.to_owned(), name.to_owned()))
}

/// Every `(entity, id)` the log's events were folded into, as the edge keyed
/// them, sorted; `pieces` as for `replay_log`.
#[pyfunction]
fn log_entities(
    py: Python<'_>,
    spec: PyRef<'_, Spec>,
    pieces: &Bound<'_, PyAny>,
) -> PyResult<Vec<(String, String)>> {
    let spec = Arc::clone(&spec.inner);
    let mut seen = LogEntities::default();
    for_each_piece(py, pieces, |source, data, more| {
        seen.feed(&spec, source, data, more)
    })?;
    Ok(seen.finish()?.into_iter().collect())
}

/// The receive time (ms) of a log object from its first bytes (a prefix of
/// it, gzipped or not, holding its first line); `None` when it is empty.
#[pyfunction]
fn log_received_at(source: &str, head: &[u8]) -> PyResult<Option<Millis>> {
    Ok(first_received_at(source, head)?)
}

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

/// `24h`, `7d`… in milliseconds (the spec's duration syntax).
#[pyfunction]
fn parse_duration(text: &str) -> PyResult<Millis> {
    freshet_core::spec::parse_duration(text).map_err(PyValueError::new_err)
}

#[pymodule]
fn _freshet(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_class::<Spec>()?;
    m.add_class::<ReadPlan>()?;
    m.add_class::<FeatureValue>()?;
    m.add_function(wrap_pyfunction!(replay_log, m)?)?;
    m.add_function(wrap_pyfunction!(log_entities, m)?)?;
    m.add_function(wrap_pyfunction!(log_received_at, m)?)?;
    m.add_function(wrap_pyfunction!(composite_id, m)?)?;
    m.add_function(wrap_pyfunction!(split_composite_id, m)?)?;
    m.add_function(wrap_pyfunction!(full_feature_name, m)?)?;
    m.add_function(wrap_pyfunction!(split_full_feature_name, m)?)?;
    m.add_function(wrap_pyfunction!(drift_profile, m)?)?;
    m.add_function(wrap_pyfunction!(drift_report, m)?)?;
    m.add_function(wrap_pyfunction!(drift_merge_hashes, m)?)?;
    m.add_function(wrap_pyfunction!(drift_sample_calls, m)?)?;
    m.add_function(wrap_pyfunction!(drift_hour_keys, m)?)?;
    m.add_function(wrap_pyfunction!(drift_mongo_updates, m)?)?;
    m.add_function(wrap_pyfunction!(drift_mongo_index, m)?)?;
    m.add_function(wrap_pyfunction!(drift_mongo_ids, m)?)?;
    m.add_function(wrap_pyfunction!(drift_merge_documents, m)?)?;
    m.add_function(wrap_pyfunction!(parse_duration, m)?)?;
    m.add("DRIFT_ADD_SCRIPT", REDIS_ADD_SCRIPT)?;
    m.add("FreshetError", py.get_type::<FreshetError>())?;
    m.add("InvalidSpec", py.get_type::<InvalidSpec>())?;
    m.add("UnknownFeature", py.get_type::<UnknownFeature>())?;
    m.add("StoreUnavailable", py.get_type::<StoreUnavailable>())?;
    m.add("CorruptState", py.get_type::<CorruptState>())?;
    m.add("LogUnavailable", py.get_type::<LogUnavailable>())?;
    m.add("CorruptLog", py.get_type::<CorruptLog>())?;
    Ok(())
}
