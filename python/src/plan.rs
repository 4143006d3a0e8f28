//! Reads as Python sees them: `ReadPlan` (the store requests of one
//! entity's named features, and the decoding of Redis, MongoDB and edge
//! answers into rows) and `FeatureValue`, one served value.

use freshet_core::encode::redis::{
    RedisValue, is_layout2_store as core_is_layout2_store, layout_mark_read,
};
use freshet_core::limits::MAX_BATCH_ITEMS;
use freshet_core::read::FeatureValue as CoreValue;
use freshet_core::state::FeatureDoc;
use freshet_core::time::Millis;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde_json::Value;

use crate::reader::{Plan, ReaderError};
use crate::values::{now_ms, to_python};

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
pub(crate) struct ReadPlan {
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
        self.plan.redis_commands_per_entity(false)
    }

    /// The same in layout 1.
    #[getter]
    fn layout1_commands_per_entity(&self) -> usize {
        self.plan.redis_commands_per_entity(true)
    }

    /// Every id's commands, in order, for one pipeline; with `layout1`,
    /// layout 1's (for the ids `redis_unwritten` named, in a store without
    /// the layout mark).
    #[pyo3(signature = (prefix, ids, layout1=false))]
    fn redis_commands<'py>(
        &self,
        py: Python<'py>,
        prefix: &str,
        ids: Vec<String>,
        layout1: bool,
    ) -> PyResult<Bound<'py, PyList>> {
        let commands = ids
            .iter()
            .flat_map(|id| self.plan.redis_commands(prefix, id, layout1))
            .map(|c| PyTuple::new(py, c.0.iter().map(|part| PyBytes::new(py, part))))
            .collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, commands)
    }

    /// The positions of the ids whose layout-2 replies (`commands_per_entity`
    /// per id) hold nothing of them.
    fn redis_unwritten(&self, replies: Vec<Bound<'_, PyAny>>) -> PyResult<Vec<usize>> {
        let per = self.plan.redis_commands_per_entity(false).max(1);
        let mut out = Vec::new();
        for (i, part) in replies.chunks(per).enumerate() {
            let part = part.iter().map(redis_value).collect::<PyResult<Vec<_>>>()?;
            if self.plan.is_unwritten(&part) {
                out.push(i);
            }
        }
        Ok(out)
    }

    /// Decodes a pipeline's replies (`commands_per_entity` per id, or
    /// layout 1's per id with `layout1`; an exception object in place of a
    /// failed command) into rows.
    #[pyo3(signature = (prefix, ids, replies, now=None, layout1=false))]
    fn decode_redis<'py>(
        &self,
        py: Python<'py>,
        prefix: &str,
        ids: Vec<String>,
        replies: Vec<Bound<'py, PyAny>>,
        now: Option<Millis>,
        layout1: bool,
    ) -> PyResult<Bound<'py, PyList>> {
        let per = self.plan.redis_commands_per_entity(layout1);
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
                let doc = self.plan.decode_redis(prefix, id, &part, layout1)?;
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
    pub(crate) fn new(py: Python<'_>, plan: Plan) -> Self {
        let column_names = plan
            .columns
            .iter()
            .map(|c| PyString::intern(py, c).unbind())
            .collect();
        Self { plan, column_names }
    }

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

/// A redis-py reply (bytes, str, int, float, None, list, dict, or the
/// exception a pipeline puts in place of a failed command) as a [`RedisValue`].
pub(crate) fn redis_value(obj: &Bound<'_, PyAny>) -> PyResult<RedisValue> {
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

/// `GET` of the store's layout mark (core's `layout_mark_read`).
#[pyfunction]
fn redis_layout_mark<'py>(py: Python<'py>, prefix: &str) -> PyResult<Bound<'py, PyTuple>> {
    PyTuple::new(
        py,
        layout_mark_read(prefix)
            .0
            .iter()
            .map(|p| PyBytes::new(py, p)),
    )
}

/// Whether the reply to `redis_layout_mark` says the store holds no layout 1.
#[pyfunction]
fn is_layout2_store(reply: &Bound<'_, PyAny>) -> PyResult<bool> {
    Ok(core_is_layout2_store(&redis_value(reply)?))
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<ReadPlan>()?;
    m.add_function(wrap_pyfunction!(redis_layout_mark, m)?)?;
    m.add_function(wrap_pyfunction!(is_layout2_store, m)?)?;
    m.add_class::<FeatureValue>()?;
    m.add("MAX_BATCH_ITEMS", MAX_BATCH_ITEMS)?;
    Ok(())
}
