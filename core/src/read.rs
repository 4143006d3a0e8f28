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
        Agg::Avg(c) => cells_value(c, def.window, now, add_parts)
            .and_then(|parts| mean(&parts))
            .and_then(|means| means.first().copied())
            .map(number),
        Agg::VectorAvg(c) => cells_value(c, def.window, now, add_parts)
            .and_then(|parts| mean(&parts))
            .map(|means| Value::Array(means.into_iter().map(number).collect())),
        Agg::Decay(c) => def.decay.map(|decay| {
            let raw = match (c, def.window) {
                (Cells::Buckets(buckets), Some(window)) => buckets
                    .range(window.cutoff(now)..)
                    .map(|(start, fixed)| decay.value_at(*start, *fixed, now))
                    .sum(),
                _ => 0.0,
            };
            number(decay.normalise(raw))
        }),
        Agg::Mode(counts) => most_frequent(counts),
    };
    FeatureValue {
        value: value.unwrap_or_else(|| def.default.clone()),
        updated_at: Some(format_rfc3339(state.updated_at)),
        stale: def.ttl.is_some_and(|ttl| now - state.updated_at > ttl),
    }
}

/// The value of a number feature: its total, or the fold of its live buckets.
fn cells_value<T: Clone, R>(
    cells: &Cells<T>,
    window: Option<Window>,
    now: Millis,
    fold: impl FnOnce(&mut dyn Iterator<Item = T>) -> Option<R>,
) -> Option<R> {
    match (cells, window) {
        (Cells::Total(v), _) => fold(&mut std::iter::once(v.clone())),
        (Cells::Buckets(buckets), Some(window)) => {
            let mut live = buckets.range(window.cutoff(now)..).map(|(_, v)| v.clone());
            fold(&mut live)
        }
        (Cells::Buckets(buckets), None) => fold(&mut buckets.values().cloned()),
    }
}

/// The part-by-part sum of cells of several numbers (`avg`, `vector_avg`).
fn add_parts(cells: &mut dyn Iterator<Item = Vec<f64>>) -> Option<Vec<f64>> {
    cells.reduce(|mut total, cell| {
        total.iter_mut().zip(cell).for_each(|(t, x)| *t += x);
        total
    })
}

/// `[weight, sum…]` to each sum over the weight; none without weight.
fn mean(parts: &[f64]) -> Option<Vec<f64>> {
    let (weight, sums) = parts.split_first()?;
    (*weight > 0.0).then(|| sums.iter().map(|s| s / weight).collect())
}

/// The value with the highest count; a tie goes to the smallest value
/// (numbers by size, before text), as SQL's `ORDER BY n DESC, value` would.
fn most_frequent(counts: &BTreeMap<String, i64>) -> Option<Value> {
    let values = counts
        .iter()
        .filter_map(|(text, n)| Some((*n, serde_json::from_str::<Value>(text).ok()?)));
    let best = values.reduce(|best, next| {
        let order = next
            .0
            .cmp(&best.0)
            .then_with(|| value_order(&best.1, &next.1));
        if order.is_gt() { next } else { best }
    })?;
    Some(best.1)
}

/// Numbers by size, before any other value, which order by their JSON text.
fn value_order(a: &Value, b: &Value) -> std::cmp::Ordering {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x.total_cmp(&y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.to_string().cmp(&b.to_string()),
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::state::FeatureState;
    use crate::time::DAY;

    const T0: Millis = 100 * DAY;

    fn spec() -> FeatureSpec {
        FeatureSpec::parse(include_str!("../../features.toml")).expect("example spec")
    }

    fn doc(key: &str, state: FeatureState) -> FeatureDoc {
        FeatureDoc {
            features: BTreeMap::from([(key.to_owned(), state)]),
            ..FeatureDoc::default()
        }
    }

    #[test]
    fn window_sums_the_buckets_still_inside_it() {
        let spec = spec();
        let buckets = BTreeMap::from([(T0 - 8 * DAY, 100), (T0 - 6 * DAY, 2), (T0, 3)]);
        let d = doc(
            "clicks_product_card_7d@1",
            FeatureState {
                updated_at: T0,
                value: Agg::Count(Cells::Buckets(buckets)),
            },
        );
        let names = ["clicks_product_card_7d".to_owned()];
        let at = |now| {
            read_features(&spec, "user", &d, Some(&names), now).expect("read")
            ["clicks_product_card_7d"]
            .value
            .clone()
        };
        assert_eq!(at(T0), json!(5));
        assert_eq!(
            at(T0 + 2 * DAY),
            json!(3),
            "the bucket of T0-6d left the window"
        );
        assert_eq!(at(T0 + 8 * DAY), json!(0));
    }

    #[test]
    fn stale_after_ttl_and_defaults_when_missing() {
        let spec = spec();
        let d = doc(
            "last_interacted_product@1",
            FeatureState {
                updated_at: T0,
                value: Agg::Last(Stamped {
                    t: T0,
                    id: "e1".into(),
                    v: json!("prod-1"),
                }),
            },
        );
        let read = |now| read_features(&spec, "user", &d, None, now).expect("read");
        let fresh = &read(T0 + DAY)["last_interacted_product"];
        assert_eq!((fresh.value.clone(), fresh.stale), (json!("prod-1"), false));
        let stale = &read(T0 + DAY + 1)["last_interacted_product"];
        assert_eq!((stale.value.clone(), stale.stale), (json!("prod-1"), true));
        let missing = &read(T0)["pageviews"];
        assert_eq!(
            missing,
            &FeatureValue {
                value: json!(0),
                updated_at: None,
                stale: false
            }
        );
        assert_eq!(read(T0)["viewed_categories"].value, json!([]));
        assert_eq!(
            fresh.updated_at.as_deref(),
            Some("1970-04-11T00:00:00.000Z")
        );
    }

    #[test]
    fn names_resolve_to_versions_or_fail_clearly() {
        let spec = spec();
        let d = FeatureDoc::default();
        let names = ["pageviews@1".to_owned(), "searches".to_owned()];
        let got = read_features(&spec, "user", &d, Some(&names), T0).expect("read");
        assert_eq!(got.keys().collect::<Vec<_>>(), ["pageviews@1", "searches"]);
        let unknown = ["nope".to_owned()];
        assert_eq!(
            read_features(&spec, "user", &d, Some(&unknown), T0).map_err(|e| e.to_string()),
            Err("entity `user` has no feature `nope`".to_owned())
        );
        assert_eq!(
            read_features(&spec, "shop", &d, None, T0),
            Err(ReadError::UnknownEntity("shop".into()))
        );
        let popularity = ["popularity_7d".to_owned()];
        assert!(read_features(&spec, "user", &d, Some(&popularity), T0).is_err());
        assert_eq!(number(2.0), json!(2));
        assert_eq!(number(2.5), json!(2.5));
    }
}
