//! The TOML shape of `features.toml`, as written, before any check.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::feature::Expected;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSpec {
    #[serde(default)]
    pub(super) entities: BTreeMap<String, RawEntity>,
    #[serde(default)]
    pub(super) feature: Vec<toml::Table>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEntity {
    pub(super) key: Option<Vec<String>>,
    pub(super) of: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFeature {
    pub(super) name: String,
    #[serde(default = "one")]
    pub(super) version: u32,
    pub(super) entity: String,
    pub(super) on: Vec<String>,
    pub(super) agg: String,
    pub(super) field: Option<String>,
    #[serde(rename = "where", default)]
    pub(super) filter: toml::Table,
    pub(super) window: Option<String>,
    pub(super) precision: Option<String>,
    pub(super) ttl: Option<String>,
    pub(super) default: Option<toml::Value>,
    pub(super) max: Option<usize>,
    pub(super) rate: Option<f64>,
    pub(super) half_life: Option<String>,
    pub(super) scale: Option<f64>,
    pub(super) cap: Option<f64>,
    pub(super) dim: Option<usize>,
    pub(super) weight: Option<String>,
    pub(super) float: Option<String>,
    pub(super) tz: Option<String>,
    pub(super) expected: Option<Expected>,
    pub(super) description: Option<String>,
    #[serde(default)]
    pub(super) backfill: bool,
    pub(super) link: Option<bool>,
}

fn one() -> u32 {
    1
}

pub(super) fn toml_to_json(value: toml::Value) -> Value {
    match value {
        toml::Value::String(s) => Value::String(s),
        toml::Value::Integer(i) => Value::from(i),
        toml::Value::Float(f) => Value::from(f),
        toml::Value::Boolean(b) => Value::Bool(b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(items) => Value::Array(items.into_iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => {
            Value::Object(t.into_iter().map(|(k, v)| (k, toml_to_json(v))).collect())
        }
    }
}
