//! The event log as Python reads it: point-in-time replay of training rows
//! (`replay_log`), the entities the log touched and the receive time of a
//! log object. Python fetches the pieces; [`crate::history`] parses and
//! folds them with the GIL released.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use freshet_core::limits::{MAX_EXPORT_SPAN, MAX_LATENESS};
use freshet_core::replay::{AsOf, Row};
use freshet_core::time::Millis;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyIterator, PyList};

use crate::history::{
    HistoryError, LogEntities, Query, Replays, WholeBatches, first_received_at, needed_spec,
};
use crate::route::route_lines;
use crate::spec::Spec;
use crate::values::to_python;

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

/// `log_route`'s answer: line offsets, then per (event, entity) pair the
/// line, the entity's index and the id.
type PyRoutes = (Vec<usize>, Vec<usize>, Vec<usize>, Vec<String>);

/// The log cut by entity (`freshet.spark`): for `text`, plain NDJSON whose
/// first line is line `first_line` of `source`, the offsets where its lines
/// begin (and its length last), then for every (event, entity) pair among
/// `entities` the event's line index, the entity's index and the id, as
/// the replay keys them. A line that does not parse raises `CorruptLog`.
#[pyfunction]
#[pyo3(signature = (spec, entities, source, text, first_line=1))]
fn log_route(
    py: Python<'_>,
    spec: PyRef<'_, Spec>,
    entities: Vec<String>,
    source: &str,
    text: &[u8],
    first_line: usize,
) -> PyResult<PyRoutes> {
    let spec = Arc::clone(&spec.inner);
    let routes = py.detach(|| route_lines(&spec, &entities, source, text, first_line))?;
    Ok((routes.offsets, routes.line, routes.entity, routes.id))
}

/// The receive time (ms) of a log object from its first bytes (a prefix of
/// it, gzipped or not, holding its first line); `None` when it is empty.
#[pyfunction]
fn log_received_at(source: &str, head: &[u8]) -> PyResult<Option<Millis>> {
    Ok(first_received_at(source, head)?)
}

/// The log's batches, each whole as NDJSON bytes (`freshet backfill`'s
/// request bodies are made of them), from `pieces` as for `replay_log`.
#[pyfunction]
fn log_batches(pieces: &Bound<'_, PyAny>) -> PyResult<LogBatches> {
    Ok(LogBatches {
        pieces: pieces.try_iter()?.unbind(),
        batches: WholeBatches::default(),
        ready: VecDeque::new(),
        finished: false,
    })
}

/// The iterator of `log_batches`: it pulls the next piece only when the
/// batches read so far are taken, so the log streams through.
#[pyclass(module = "freshet._freshet")]
struct LogBatches {
    pieces: Py<PyIterator>,
    batches: WholeBatches,
    ready: VecDeque<Vec<u8>>,
    finished: bool,
}

#[pymethods]
impl LogBatches {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        loop {
            if let Some(batch) = self.ready.pop_front() {
                return Ok(Some(PyBytes::new(py, &batch)));
            }
            if self.finished {
                return Ok(None);
            }
            let batches = &mut self.batches;
            match self.pieces.bind(py).clone().next() {
                Some(item) => {
                    let item = item?;
                    let (source, data, more): (String, Bound<'_, PyBytes>, bool) =
                        item.extract()?;
                    let bytes = data.as_bytes();
                    self.ready
                        .extend(py.detach(|| batches.feed(&source, bytes, more))?);
                }
                None => {
                    self.finished = true;
                    self.ready.extend(batches.finish()?);
                }
            }
        }
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(replay_log, m)?)?;
    m.add_function(wrap_pyfunction!(log_entities, m)?)?;
    m.add_function(wrap_pyfunction!(log_received_at, m)?)?;
    m.add_function(wrap_pyfunction!(log_route, m)?)?;
    m.add_function(wrap_pyfunction!(log_batches, m)?)?;
    m.add("MAX_EXPORT_SPAN", MAX_EXPORT_SPAN)?;
    m.add("MAX_LATENESS", MAX_LATENESS)?;
    Ok(())
}
