//! Store URLs as the Python reader takes them: read by core's parser, the
//! edge's, so a URL the edge refuses for `FRESHET_STORE` is refused here too,
//! with the same reason, before any connection.

use freshet_core::store_url::{MongoUrl, RedisUrl};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

fn refused(why: String) -> PyErr {
    PyValueError::new_err(format!("invalid store URL: {why}"))
}

/// The key prefix of a `redis://` or `rediss://` URL (`?prefix=`, else the
/// edge's default); `ValueError` saying what is wrong with a URL the edge
/// refuses.
#[pyfunction]
fn redis_key_prefix(url: &str) -> PyResult<String> {
    RedisUrl::parse(url).map(|u| u.prefix).map_err(refused)
}

/// A Redis Cluster's URL (`redis+cluster://` or `rediss+cluster://`) as
/// `(seeds, tls, username, password)`, the seeds `(host, port)`; `None` for
/// one server's URL; `ValueError` for a URL the edge refuses.
#[pyfunction]
#[allow(clippy::type_complexity)]
fn redis_cluster(
    url: &str,
) -> PyResult<Option<(Vec<(String, u16)>, bool, Option<String>, Option<String>)>> {
    let u = RedisUrl::parse(url).map_err(refused)?;
    Ok(u.cluster.then(|| {
        (
            u.nodes,
            u.tls,
            u.username,
            u.password.map(|p| p.expose().to_owned()),
        )
    }))
}

/// The database of a `mongodb://` URL, which the edge requires; `ValueError`
/// saying what is wrong with a URL the edge refuses (`mongodb+srv://`
/// included).
#[pyfunction]
fn mongo_database(url: &str) -> PyResult<String> {
    MongoUrl::parse(url).map(|u| u.db).map_err(refused)
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(redis_key_prefix, m)?)?;
    m.add_function(wrap_pyfunction!(redis_cluster, m)?)?;
    m.add_function(wrap_pyfunction!(mongo_database, m)?)?;
    Ok(())
}
