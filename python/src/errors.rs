//! The one mapping from the binding's Rust errors ([`ReaderError`],
//! [`HistoryError`]) to Freshet's Python exceptions, and those exceptions.

use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;

use crate::history::HistoryError;
use crate::reader::ReaderError;

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

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("FreshetError", py.get_type::<FreshetError>())?;
    m.add("InvalidSpec", py.get_type::<InvalidSpec>())?;
    m.add("UnknownFeature", py.get_type::<UnknownFeature>())?;
    m.add("StoreUnavailable", py.get_type::<StoreUnavailable>())?;
    m.add("CorruptState", py.get_type::<CorruptState>())?;
    m.add("LogUnavailable", py.get_type::<LogUnavailable>())?;
    m.add("CorruptLog", py.get_type::<CorruptLog>())?;
    Ok(())
}
