//! The spec's hash: what decides values, without comments or layout.

use super::error::SpecError;

/// See [`FeatureSpec::hash`]: SHA-256 over a canonical JSON form (tables
/// are sorted maps; features sorted by `name@version`), first 16 hex digits.
pub(super) fn meaning_hash(text: &str) -> Result<String, SpecError> {
    use sha2::{Digest, Sha256};
    let mut table: toml::Table = toml::from_str(text).map_err(|e| SpecError {
        subject: String::new(),
        message: e.to_string().trim_end().to_owned(),
    })?;
    if let Some(toml::Value::Array(features)) = table.get_mut("feature") {
        for feature in features.iter_mut() {
            if let toml::Value::Table(t) = feature {
                t.remove("description");
                t.remove("expected");
                // How a version's writes are marked, not what it computes.
                t.remove("backfill");
                t.entry("version").or_insert(toml::Value::Integer(1));
            }
        }
        let rank = |v: &toml::Value| {
            let name = v.get("name").and_then(toml::Value::as_str).unwrap_or("");
            let version = v.get("version").and_then(toml::Value::as_integer);
            (name.to_owned(), version)
        };
        features.sort_by_key(rank);
    }
    let canonical = serde_json::to_string(&table).map_err(|e| SpecError {
        subject: String::new(),
        message: e.to_string(),
    })?;
    let digest = Sha256::digest(canonical.as_bytes());
    Ok(digest[..8].iter().map(|b| format!("{b:02x}")).collect())
}
