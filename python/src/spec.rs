//! The spec as Python sees it: `Spec` (a parsed and checked
//! `features.toml`, and the read plans made from it), composite ids and the
//! spec's duration syntax.

use std::collections::HashMap;
use std::sync::Arc;

use freshet_core::read::{ReadError, resolve_names};
use freshet_core::spec::FeatureSpec;
use freshet_core::time::Millis;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::plan::ReadPlan;
use crate::reader::{self, Plan, ReaderError};

/// A parsed and checked `features.toml`.
#[pyclass(module = "freshet._freshet", frozen)]
#[derive(Debug)]
pub(crate) struct Spec {
    pub(crate) inner: Arc<FeatureSpec>,
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
        Ok(ReadPlan::new(py, plan))
    }

    /// The aggregation of one feature (`name` or `name@version`), e.g.
    /// `"count"` or `"latest_n"`: what kind of value it reads as.
    fn aggregation(&self, entity: &str, name: &str) -> PyResult<&'static str> {
        let defs = resolve_names(&self.inner, entity, Some(&[name.to_owned()]))
            .map_err(ReaderError::from)?;
        Ok(defs.first().map_or("", |(_, def)| def.agg.name()))
    }

    fn __repr__(&self) -> String {
        format!("Spec(hash={:?})", self.inner.hash())
    }
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

/// `24h`, `7d`… in milliseconds (the spec's duration syntax).
#[pyfunction]
fn parse_duration(text: &str) -> PyResult<Millis> {
    freshet_core::spec::parse_duration(text).map_err(PyValueError::new_err)
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Spec>()?;
    m.add_function(wrap_pyfunction!(composite_id, m)?)?;
    m.add_function(wrap_pyfunction!(split_composite_id, m)?)?;
    m.add_function(wrap_pyfunction!(full_feature_name, m)?)?;
    m.add_function(wrap_pyfunction!(split_full_feature_name, m)?)?;
    m.add_function(wrap_pyfunction!(parse_duration, m)?)?;
    Ok(())
}
