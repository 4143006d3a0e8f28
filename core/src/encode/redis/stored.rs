//! One feature's stored parts, as either layout hands them over, decoded
//! into its state: the rules both layouts share.

use std::collections::BTreeMap;

use super::replies::{bad, parse, scored_text};
use super::{DecodeError, RedisValue};
use crate::spec::{Aggregation, FeatureDef};
use crate::state::{Agg, Cells, FeatureState, Stamped};
use crate::time::Millis;

/// What a layout found for one feature.
pub(super) struct Stored<'a> {
    /// The latest event time's text: a feature without one was never written.
    pub ts: Option<&'a str>,
    /// The value field (an unwindowed number, or a `last`/`first` value).
    pub value: Option<&'a str>,
    /// `last`/`first`'s `time|id`.
    pub order: Option<&'a str>,
    /// Windowed cells as text, by bucket start (ms).
    pub buckets: BTreeMap<Millis, &'a str>,
    /// The reply of a set feature's `ZRANGE`.
    pub set: Option<&'a RedisValue>,
    /// `avg` and `vector_avg`'s cells, already numbers.
    pub parts: Option<Cells<Vec<f64>>>,
}

pub(super) fn decode_feature(
    def: &FeatureDef,
    stored: Stored<'_>,
) -> Result<Option<FeatureState>, DecodeError> {
    let key = def.key();
    let Some(ts) = stored.ts else {
        return Ok(None);
    };
    let updated_at: Millis = parse(ts, key)?;
    let number_cells = |stored: &Stored<'_>| -> Result<_, DecodeError> {
        cells(def, stored, |s| parse::<f64>(s, key))
    };
    let value = match def.agg {
        Aggregation::Count => Agg::Count(cells(def, &stored, |s| parse(s, key))?),
        Aggregation::Decay => Agg::Decay(cells(def, &stored, |s| parse(s, key))?),
        Aggregation::Sum => Agg::Sum(number_cells(&stored)?),
        Aggregation::Min => Agg::Min(number_cells(&stored)?),
        Aggregation::Max => Agg::Max(number_cells(&stored)?),
        Aggregation::Last | Aggregation::First => {
            let v = stored
                .value
                .ok_or_else(|| bad(format!("{key} has no value")))?;
            let order = stored
                .order
                .ok_or_else(|| bad(format!("{key} has no order field")))?;
            let (t, id) = order
                .split_once('|')
                .ok_or_else(|| bad(format!("{key}'s order field")))?;
            let stamped = Stamped {
                t: parse(t, key)?,
                id: id.to_owned(),
                v: serde_json::from_str(v).map_err(|_| bad(format!("{key} is not JSON")))?,
            };
            if def.agg == Aggregation::Last {
                Agg::Last(stamped)
            } else {
                Agg::First(stamped)
            }
        }
        Aggregation::Distinct => Agg::Distinct(scored_text(set(&stored)?)?.into_iter().collect()),
        Aggregation::LatestN => {
            let mut items = Vec::new();
            for (member, t) in scored_text(set(&stored)?)? {
                let (id, v) = member
                    .split_once(' ')
                    .ok_or_else(|| bad(format!("{key} member")))?;
                let v = serde_json::from_str(v).map_err(|_| bad(format!("{key} member")))?;
                items.push(Stamped {
                    t,
                    id: id.to_owned(),
                    v,
                });
            }
            items.sort_unstable_by(|a, b| (b.t, &b.id).cmp(&(a.t, &a.id)));
            Agg::LatestN(items)
        }
        Aggregation::Mode => Agg::Mode(scored_text(set(&stored)?)?.into_iter().collect()),
        Aggregation::Avg | Aggregation::VectorAvg => {
            let parts = match stored.parts {
                Some(parts) => parts,
                None => cells(def, &stored, |s| split_parts(s, key))?,
            };
            if def.agg == Aggregation::Avg {
                Agg::Avg(parts)
            } else {
                Agg::VectorAvg(parts)
            }
        }
    };
    Ok(Some(FeatureState { updated_at, value }))
}

fn set<'a>(stored: &Stored<'a>) -> Result<&'a RedisValue, DecodeError> {
    stored.set.ok_or_else(|| bad("missing set"))
}

fn cells<T>(
    def: &FeatureDef,
    stored: &Stored<'_>,
    parse_value: impl Fn(&str) -> Result<T, DecodeError>,
) -> Result<Cells<T>, DecodeError> {
    if def.window.is_none() {
        let v = stored
            .value
            .ok_or_else(|| bad(format!("{} has no value", def.key())))?;
        return Ok(Cells::Total(parse_value(v)?));
    }
    let buckets = stored
        .buckets
        .iter()
        .map(|(start, v)| Ok((*start, parse_value(v)?)))
        .collect::<Result<_, DecodeError>>()?;
    Ok(Cells::Buckets(buckets))
}

fn split_parts(text: &str, key: &str) -> Result<Vec<f64>, DecodeError> {
    text.split(',').map(|x| parse(x, key)).collect()
}
