//! The configuration read from the worker's environment (wasm32 only): once
//! per isolate, for the worker and the `StoreGateway` objects alike, so the
//! glue and the stores import it from here and not from each other.

use std::sync::OnceLock;

use freshet_core::spec::FeatureSpec;
use worker::Env;

use super::{ALL_VARS, Config, ConfigError};
use crate::spec::{SPEC_VAR, worker_spec};

/// The isolate's feature spec: `FRESHET_SPEC` when set, else the compiled-in one.
pub fn spec(env: &Env) -> Result<&'static FeatureSpec, ConfigError> {
    worker_spec(|| env.var(SPEC_VAR).ok().map(|v| v.to_string()))
}

/// The configuration, parsed once per isolate (the worker's and the
/// gateway objects' alike).
pub fn config(env: &Env) -> Result<&'static Config, ConfigError> {
    static CONFIG: OnceLock<Result<Config, ConfigError>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let vars: Vec<(&str, Option<String>)> = ALL_VARS
                .iter()
                .map(|name| (*name, env.var(name).ok().map(|v| v.to_string())))
                .collect();
            Config::from_lookup(|name| {
                vars.iter()
                    .find(|(n, _)| *n == name)
                    .and_then(|(_, v)| v.clone())
            })
        })
        .as_ref()
        .map_err(Clone::clone)
}
