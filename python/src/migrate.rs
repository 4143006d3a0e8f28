//! `freshet migrate`'s pieces from core: the scans that find layout-1
//! entities, the keys a move watches and reads, the script call that moves
//! one entity, and the store's layout mark. `freshet/migrate.py` sends them.

use freshet_core::encode::redis::{
    EntityKeys, LAYOUT_MARK_VALUE, RedisCommand, layout_mark, layout1_entity, layout1_scans,
    migrate_call, migrate_reads, migrate_watch,
};
use freshet_core::time::Millis;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};

use crate::plan::redis_value;
use crate::reader::ReaderError;
use crate::spec::Spec;

fn commands<'py>(py: Python<'py>, commands: &[RedisCommand]) -> PyResult<Bound<'py, PyList>> {
    let tuples = commands
        .iter()
        .map(|c| PyTuple::new(py, c.0.iter().map(|part| PyBytes::new(py, part))))
        .collect::<PyResult<Vec<_>>>()?;
    PyList::new(py, tuples)
}

/// `(pattern, type)` of each `SCAN` that finds layout-1 keys under `prefix`.
#[pyfunction]
fn redis_layout1_scans(prefix: &str) -> Vec<(String, &'static str)> {
    layout1_scans(prefix)
        .into_iter()
        .map(|s| (s.pattern, s.kind))
        .collect()
}

/// `(entity, id)` of a key those scans found; `None` for another key.
#[pyfunction]
fn redis_layout1_entity(prefix: &str, key: &str) -> Option<(String, String)> {
    layout1_entity(prefix, key).map(|(e, id)| (e.to_owned(), id.to_owned()))
}

/// The keys to `WATCH` while moving one entity.
#[pyfunction]
fn redis_migrate_watch(spec: &Spec, prefix: &str, entity: &str, id: &str) -> Vec<String> {
    migrate_watch(&spec.inner, prefix, entity, id)
}

/// The commands that read what the move takes, after the `WATCH`.
#[pyfunction]
fn redis_migrate_reads<'py>(
    py: Python<'py>,
    spec: &Spec,
    prefix: &str,
    entity: &str,
    id: &str,
) -> PyResult<Bound<'py, PyList>> {
    commands(py, &migrate_reads(&spec.inner, prefix, entity, id))
}

/// The `EVAL` that moves the entity, from the replies to the reads and the
/// time `now` (ms; markers live at `now` move); send it in `MULTI`/`EXEC`.
#[pyfunction]
fn redis_migrate_call<'py>(
    py: Python<'py>,
    spec: &Spec,
    prefix: &str,
    entity: &str,
    id: &str,
    replies: Vec<Bound<'py, PyAny>>,
    now: Millis,
) -> PyResult<Bound<'py, PyTuple>> {
    let replies = replies
        .iter()
        .map(redis_value)
        .collect::<PyResult<Vec<_>>>()?;
    let call = migrate_call(&spec.inner, prefix, entity, id, &replies, now).map_err(|e| {
        ReaderError::Corrupt {
            key: EntityKeys { prefix, entity, id }.layout1_hash(),
            detail: e.to_string(),
        }
    })?;
    PyTuple::new(py, call.eval().0.iter().map(|part| PyBytes::new(py, part)))
}

/// The key of the store's layout mark, and the value that says the store
/// holds no layout 1.
#[pyfunction]
fn redis_layout_mark_key(prefix: &str) -> (String, &'static str) {
    (layout_mark(prefix), LAYOUT_MARK_VALUE)
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(redis_layout1_scans, m)?)?;
    m.add_function(wrap_pyfunction!(redis_layout1_entity, m)?)?;
    m.add_function(wrap_pyfunction!(redis_migrate_watch, m)?)?;
    m.add_function(wrap_pyfunction!(redis_migrate_reads, m)?)?;
    m.add_function(wrap_pyfunction!(redis_migrate_call, m)?)?;
    m.add_function(wrap_pyfunction!(redis_layout_mark_key, m)?)?;
    Ok(())
}
