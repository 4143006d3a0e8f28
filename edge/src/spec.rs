//! The worker's feature spec, parsed once per isolate: the one compiled in
//! (`FRESHET_FEATURES` at build time, the example `features.toml` by
//! default), or the text of the `FRESHET_SPEC` variable when it is set (one
//! build serves any spec: the tests run seed 2's media spec and the next
//! deploy's spec on the same worker build this way).

use std::sync::OnceLock;

use freshet_core::spec::FeatureSpec;

use crate::config::ConfigError;

/// The spec's text, as compiled in.
pub const SPEC_TOML: &str = include_str!(env!("FRESHET_SPEC_PATH"));

/// The variable whose text, when set, is the spec instead of the compiled-in one.
pub const SPEC_VAR: &str = "FRESHET_SPEC";

/// The compiled-in spec, parsed at the first call.
pub fn compiled_spec() -> Result<&'static FeatureSpec, ConfigError> {
    worker_spec(|| None)
}

/// The spec of this isolate: the text `text` gives (the `FRESHET_SPEC`
/// variable) when set, else the compiled-in one. Parsed at the first call,
/// and `text` is only asked then: an isolate has one environment, so later
/// calls (every Durable Object request) get the same spec without reading it.
pub fn worker_spec(
    text: impl FnOnce() -> Option<String>,
) -> Result<&'static FeatureSpec, ConfigError> {
    static SPEC: OnceLock<Result<FeatureSpec, String>> = OnceLock::new();
    SPEC.get_or_init(|| parse_worker_spec(text().as_deref()))
        .as_ref()
        .map_err(|e| ConfigError::Spec(e.clone()))
}

fn parse_worker_spec(text: Option<&str>) -> Result<FeatureSpec, String> {
    match text.filter(|t| !t.trim().is_empty()) {
        Some(text) => FeatureSpec::parse(text).map_err(|e| format!("{SPEC_VAR}: {e}")),
        None if SPEC_TOML.trim().is_empty() => {
            Err("no feature spec was found at build time (FRESHET_FEATURES)".into())
        }
        None => FeatureSpec::parse(SPEC_TOML).map_err(|e| e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_compiled_in_spec_parses() {
        let spec = super::compiled_spec().expect("features.toml parses");
        assert!(spec.entity("user").is_some());
    }

    #[test]
    fn freshet_spec_replaces_the_compiled_in_spec_and_a_bad_one_is_named() {
        let media = include_str!("../../examples/media/features.toml");
        let spec = super::parse_worker_spec(Some(media)).expect("the media spec parses");
        assert!(spec.lookup("user", "user_watch_count_7d").is_some());
        assert!(spec.lookup("user", "pageviews").is_none());
        // Unset or blank: the compiled-in spec.
        for none in [None, Some(""), Some("  \n")] {
            let spec = super::parse_worker_spec(none).expect("the compiled-in spec");
            assert!(spec.lookup("user", "pageviews").is_some());
        }
        let bad = super::parse_worker_spec(Some("[[feature]]\nname = 1")).expect_err("refused");
        assert!(bad.starts_with("FRESHET_SPEC: "), "{bad}");
    }
}
