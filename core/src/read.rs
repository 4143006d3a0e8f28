//! Reading features for a model: values with the spec's defaults, window
//! sums as of a given time, and staleness by `ttl`. Every store decodes its
//! state into a [`FeatureDoc`] and answers through this one function, so a
//! value read from Redis, MongoDB or a Durable Object is the same value.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use serde_json::Value;

use crate::spec::{FeatureDef, FeatureSpec, Window};
use crate::state::{Agg, Cells, FeatureDoc, FeatureState, Stamped};
use crate::time::{Millis, format_rfc3339};

/// One feature as served: `{"value":…,"updatedAt":…,"stale":false}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FeatureValue {
    pub value: Value,
    /// RFC 3339 time of the latest event that touched it; `null` if none has.
    pub updated_at: Option<String>,
    /// Older than the feature's `ttl`; a missing feature is not stale.
    pub stale: bool,
}

/// Served features by the name they were asked for.
pub type FeatureValues = BTreeMap<String, FeatureValue>;

/// A read that cannot be answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadError {
    UnknownEntity(String),
    UnknownFeature { entity: String, name: String },
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownEntity(e) => write!(f, "unknown entity `{e}`"),
            Self::UnknownFeature { entity, name } => {
                write!(f, "entity `{entity}` has no feature `{name}`")
            }
        }
    }
}

impl std::error::Error for ReadError {}

/// The features of `entity` named in `names` (`name` for its highest
/// version, or `name@version`), or all of its features when `names` is
/// `None`, as of `now`.
pub fn read_features(
    spec: &FeatureSpec,
    entity: &str,
    doc: &FeatureDoc,
    names: Option<&[String]>,
    now: Millis,
) -> Result<FeatureValues, ReadError> {
    let defs = resolve_names(spec, entity, names)?;
    Ok(defs
        .into_iter()
        .map(|(name, def)| (name, read_one(def, doc.features.get(def.key()), now)))
        .collect())
}

/// The features a read asks for, by the name it used.
pub fn resolve_names<'a>(
    spec: &'a FeatureSpec,
    entity: &str,
    names: Option<&[String]>,
) -> Result<Vec<(String, &'a FeatureDef)>, ReadError> {
    if spec.entity(entity).is_none() {
        return Err(ReadError::UnknownEntity(entity.to_owned()));
    }
    match names {
        Some(names) => names
            .iter()
            .map(|name| {
                spec.lookup(entity, name)
                    .map(|def| (name.clone(), def))
                    .ok_or_else(|| ReadError::UnknownFeature {
                        entity: entity.to_owned(),
                        name: name.clone(),
                    })
            })
            .collect(),
        None => {
            let mut latest: BTreeMap<&str, &FeatureDef> = BTreeMap::new();
            for def in spec.features().iter().filter(|f| f.entity == entity) {
                let slot = latest.entry(&def.name).or_insert(def);
                if def.version > slot.version {
                    *slot = def;
                }
            }
            Ok(latest
                .into_iter()
                .map(|(name, def)| (name.to_owned(), def))
                .collect())
        }
    }
}

/// One feature's served value from its state (or its default without one).
pub fn read_one(def: &FeatureDef, state: Option<&FeatureState>, now: Millis) -> FeatureValue {
    let Some(state) = state else {
        return FeatureValue {
            value: def.default.clone(),
            updated_at: None,
            stale: false,
        };
    };
    let live = |t: Millis| def.window.is_none_or(|w: Window| t >= now - w.span);
    let value = match &state.value {
        Agg::Count(c) => {
            cells_value(c, def.window, now, |vs| Some(vs.sum::<i64>())).map(Value::from)
        }
        Agg::Sum(c) => cells_value(c, def.window, now, |vs| Some(vs.sum::<f64>())).map(number),
        Agg::Min(c) => cells_value(c, def.window, now, |vs| vs.reduce(f64::min)).map(number),
        Agg::Max(c) => cells_value(c, def.window, now, |vs| vs.reduce(f64::max)).map(number),
        Agg::Last(s) | Agg::First(s) => live(s.t).then(|| s.v.clone()),
        Agg::Distinct(seen) => {
            let mut ranked: Vec<(Millis, &String)> = seen
                .iter()
                .filter(|(_, t)| live(**t))
                .map(|(v, t)| (*t, v))
                .collect();
            ranked.sort_unstable_by(|a, b| b.cmp(a));
            ranked.truncate(def.max);
            Some(Value::Array(
                ranked
                    .into_iter()
                    .map(|(_, v)| Value::from(v.as_str()))
                    .collect(),
            ))
        }
        Agg::LatestN(items) => Some(Value::Array(
            items
                .iter()
                .filter(|s| live(s.t))
                .take(def.max)
                .map(|s: &Stamped| s.v.clone())
                .collect(),
        )),
    };
    FeatureValue {
        value: value.unwrap_or_else(|| def.default.clone()),
        updated_at: Some(format_rfc3339(state.updated_at)),
        stale: def.ttl.is_some_and(|ttl| now - state.updated_at > ttl),
    }
}

/// The value of a number feature: its total, or the fold of its live buckets.
fn cells_value<T: Copy, R>(
    cells: &Cells<T>,
    window: Option<Window>,
    now: Millis,
    fold: impl FnOnce(&mut dyn Iterator<Item = T>) -> Option<R>,
) -> Option<R> {
    match (cells, window) {
        (Cells::Total(v), _) => fold(&mut std::iter::once(*v)),
        (Cells::Buckets(buckets), Some(window)) => {
            let mut live = buckets.range(window.cutoff(now)..).map(|(_, v)| *v);
            fold(&mut live)
        }
        (Cells::Buckets(buckets), None) => fold(&mut buckets.values().copied()),
    }
}

/// A JSON number; whole numbers print without a fraction.
pub fn number(x: f64) -> Value {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    if x.fract() == 0.0 && x.abs() < EXACT {
        // Exact: whole and below 2^53.
        #[allow(clippy::cast_possible_truncation)]
        return Value::from(x as i64);
    }
    serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
}
