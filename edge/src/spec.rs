//! The feature spec compiled into the worker (`FRESHET_FEATURES` at build
//! time, the example `features.toml` by default), parsed once per isolate.

use std::sync::OnceLock;

use freshet_core::spec::FeatureSpec;

use crate::config::ConfigError;

/// The spec's text, as compiled in.
pub const SPEC_TOML: &str = include_str!(env!("FRESHET_SPEC_PATH"));

/// The compiled-in spec, parsed at the first call.
pub fn compiled_spec() -> Result<&'static FeatureSpec, ConfigError> {
    static SPEC: OnceLock<Result<FeatureSpec, String>> = OnceLock::new();
    SPEC.get_or_init(|| {
        if SPEC_TOML.trim().is_empty() {
            return Err("no feature spec was found at build time (FRESHET_FEATURES)".into());
        }
        FeatureSpec::parse(SPEC_TOML).map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(|e| ConfigError::Spec(e.clone()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_compiled_in_spec_parses() {
        let spec = super::compiled_spec().expect("features.toml parses");
        assert!(spec.entity("user").is_some());
    }
}
