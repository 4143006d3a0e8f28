//! `freshet._freshet`, the one binding module: `freshet-core`'s spec, store
//! decoding, reads, point-in-time replay, drift and store URLs as Python classes and
//! functions, one file per surface, registered here. [`reader`] and
//! [`history`] hold the work and know nothing of Python; [`errors`] is the
//! one mapping from their errors to Python exceptions.

mod drift;
mod errors;
pub mod history;
mod migrate;
mod plan;
pub mod reader;
mod replay;
pub mod route;
mod spec;
mod store_url;
mod values;

use pyo3::prelude::*;

#[pymodule]
fn _freshet(m: &Bound<'_, PyModule>) -> PyResult<()> {
    errors::register(m)?;
    spec::register(m)?;
    plan::register(m)?;
    replay::register(m)?;
    drift::register(m)?;
    migrate::register(m)?;
    store_url::register(m)?;
    Ok(())
}
