//! A feature checked: each of its keys on its own, then together, with
//! errors that say what to write instead.

use std::collections::BTreeMap;

use serde_json::Value;

use super::aggregation::{Aggregation, MAX_BOUND, MAX_DIM};
use super::check_entity::is_valid_name;
use super::decay::{Decay, decay_window};
use super::duration::parse_duration;
use super::entity::EntityDef;
use super::feature::{EventMatch, Expected, FeatureDef, tag_of};
use super::field_path::FieldPath;
use super::raw::{RawFeature, toml_to_json};
use super::window::{MAX_WINDOW, MAX_WINDOW_BUCKETS, Window};
use crate::time::{DAY, MINUTE};
use crate::wire::is_valid_event_type;

/// The checks run in a fixed order, so a feature with several faults is
/// always refused for the same one.
pub(super) fn check_feature(
    raw: RawFeature,
    entities: &BTreeMap<String, EntityDef>,
) -> Result<FeatureDef, String> {
    check_identity(&raw, entities)?;
    let agg = check_agg(&raw.agg)?;
    let on = check_on(&raw.on)?;
    let field = check_field(agg, raw.field.as_deref())?;
    let tz = check_tz(field.as_ref(), raw.tz.as_deref())?;
    let decay = check_decay(agg, raw.rate, raw.half_life.as_deref(), raw.scale, raw.cap)?;
    let (dim, weight) = check_vector(agg, raw.dim, raw.weight.as_deref())?;
    let f32 = check_float(agg, raw.float.as_deref())?;
    let filter = check_filter(raw.filter)?;
    let window = check_window(agg, raw.window.as_deref(), raw.precision.as_deref())?;
    let window = match decay {
        Some(d) => Some(decay_window(&d, window)),
        None => window,
    };
    let ttl = raw
        .ttl
        .as_deref()
        .map(|t| parse_duration(t).map_err(|e| format!("ttl: {e}")))
        .transpose()?;
    let max = check_max(agg, raw.max, field.as_ref())?;
    check_expected(agg, raw.expected.as_ref())?;
    let default = match raw.default {
        Some(v) => toml_to_json(v),
        None => default_of(agg, dim),
    };
    let key = format!("{}@{}", raw.name, raw.version);
    let tag = tag_of(&key);
    Ok(FeatureDef {
        name: raw.name,
        version: raw.version,
        entity: raw.entity,
        on,
        agg,
        field,
        filter,
        window,
        ttl,
        default,
        max,
        decay,
        dim,
        weight,
        f32,
        tz,
        expected: raw.expected,
        description: raw.description,
        backfill: raw.backfill,
        link: raw.link.unwrap_or(true),
        key,
        tag,
    })
}

/// `float`: `"f64"` (the default) or `"f32"`, for the aggregations that
/// keep sums of fractions (`avg`, `vector_avg`).
fn check_float(agg: Aggregation, float: Option<&str>) -> Result<bool, String> {
    match float {
        None | Some("f64") => Ok(false),
        Some("f32") if matches!(agg, Aggregation::Avg | Aggregation::VectorAvg) => Ok(true),
        Some("f32") => Err(format!(
            "float = \"f32\" applies to avg and vector_avg, not {}",
            agg.name()
        )),
        Some(other) => Err(format!("float must be \"f64\" or \"f32\", not \"{other}\"")),
    }
}

/// The name, version and entity: what the feature is called and of what.
fn check_identity(raw: &RawFeature, entities: &BTreeMap<String, EntityDef>) -> Result<(), String> {
    if !is_valid_name(&raw.name, 64) {
        return Err("name must match ^[a-z][a-z0-9_]{0,63}$".to_owned());
    }
    if raw.version == 0 {
        return Err("version must be 1 or more".to_owned());
    }
    if !entities.contains_key(&raw.entity) {
        let known: Vec<&str> = entities.keys().map(String::as_str).collect();
        return Err(format!(
            "unknown entity `{}` (defined: {})",
            raw.entity,
            known.join(", ")
        ));
    }
    Ok(())
}

fn check_agg(agg: &str) -> Result<Aggregation, String> {
    Aggregation::ALL
        .into_iter()
        .find(|a| a.name() == agg)
        .ok_or_else(|| {
            let names: Vec<&str> = Aggregation::ALL.iter().map(|a| a.name()).collect();
            format!(
                "unknown aggregation `{agg}` (expected one of {})",
                names.join(", ")
            )
        })
}

fn check_on(on: &[String]) -> Result<EventMatch, String> {
    if on.is_empty() {
        return Err("on must list at least one event type, or \"*\"".to_owned());
    }
    if on.iter().any(|t| t == "*") {
        return Ok(EventMatch::All);
    }
    if let Some(bad) = on.iter().find(|t| !is_valid_event_type(t)) {
        return Err(format!("on: `{bad}` is not a valid event type"));
    }
    Ok(EventMatch::Types(on.iter().cloned().collect()))
}

/// The field folded: every aggregation but `count` and `decay` needs one.
fn check_field(agg: Aggregation, field: Option<&str>) -> Result<Option<FieldPath>, String> {
    let field = field.map(FieldPath::parse).transpose()?;
    match (&field, agg.needs_field()) {
        (None, true) => Err(format!("agg = \"{}\" needs a field", agg.name())),
        (Some(_), false) => Err(format!("agg = \"{}\" takes no field", agg.name())),
        _ => Ok(field),
    }
}

/// The time zone of a derived field (`hour_of_day`, `day_of_week`).
fn check_tz(
    field: Option<&FieldPath>,
    tz: Option<&str>,
) -> Result<Option<jiff::tz::TimeZone>, String> {
    let derived = matches!(field, Some(FieldPath::HourOfDay | FieldPath::DayOfWeek));
    match tz {
        Some(_) if !derived => {
            Err("tz applies to the derived fields hour_of_day and day_of_week only".to_owned())
        }
        Some(name) => {
            Ok(Some(jiff::tz::TimeZone::get(name).map_err(|_| {
                format!("tz: `{name}` is not an IANA time zone")
            })?))
        }
        None => Ok(None),
    }
}

fn check_decay(
    agg: Aggregation,
    rate: Option<f64>,
    half_life: Option<&str>,
    scale: Option<f64>,
    cap: Option<f64>,
) -> Result<Option<Decay>, String> {
    if agg != Aggregation::Decay {
        return match (rate, half_life, scale, cap) {
            (None, None, None, None) => Ok(None),
            _ => Err(format!(
                "agg = \"{}\" takes no rate, half_life, scale or cap (they are decay's)",
                agg.name()
            )),
        };
    }
    let per_day = match (rate, half_life) {
        (Some(_), Some(_)) => return Err("give rate or half_life, not both".to_owned()),
        (None, None) => {
            return Err(
                "agg = \"decay\" needs a rate (per day) or a half_life (like \"7d\")".to_owned(),
            );
        }
        (Some(r), None) if !(r.is_finite() && r > 0.0) => {
            return Err(format!("rate must be a positive number per day, not {r}"));
        }
        (Some(r), None) => r,
        (None, Some(text)) => {
            let ms = parse_duration(text).map_err(|e| format!("half_life: {e}"))?;
            #[allow(clippy::cast_precision_loss)]
            let days = ms as f64 / DAY as f64;
            std::f64::consts::LN_2 / days
        }
    };
    #[allow(clippy::cast_precision_loss)]
    let rate = per_day / DAY as f64;
    if std::f64::consts::LN_2 / rate < MINUTE as f64 {
        return Err("the half-life must be a minute or longer".to_owned());
    }
    let scale = scale.unwrap_or(1.0);
    if !(scale.is_finite() && scale > 0.0) {
        return Err(format!("scale must be a positive number, not {scale}"));
    }
    if let Some(c) = cap.filter(|c| !c.is_finite()) {
        return Err(format!("cap must be a finite number, not {c}"));
    }
    Ok(Some(Decay { rate, scale, cap }))
}

fn check_vector(
    agg: Aggregation,
    dim: Option<usize>,
    weight: Option<&str>,
) -> Result<(usize, Option<FieldPath>), String> {
    if agg != Aggregation::VectorAvg {
        return match (dim, weight) {
            (None, None) => Ok((0, None)),
            _ => Err(format!(
                "agg = \"{}\" takes no dim or weight (they are vector_avg's)",
                agg.name()
            )),
        };
    }
    let dim = dim.ok_or("agg = \"vector_avg\" needs dim, the length of its vectors")?;
    if !(1..=MAX_DIM).contains(&dim) {
        return Err(format!("dim must be 1 to {MAX_DIM}"));
    }
    let weight = weight
        .map(|w| FieldPath::parse(w).map_err(|e| format!("weight: {e}")))
        .transpose()?;
    Ok((dim, weight))
}

/// `where`: each path must equal a string, number or boolean.
fn check_filter(filter: toml::Table) -> Result<Vec<(FieldPath, Value)>, String> {
    filter
        .into_iter()
        .map(|(path, value)| {
            let path = FieldPath::parse(&path)?;
            let value = toml_to_json(value);
            if value.is_object() || value.is_array() {
                return Err(format!("where.{path} must be a string, number or boolean"));
            }
            Ok((path, value))
        })
        .collect()
}

/// The window and its `precision` (bucket width), within their bounds.
fn check_window(
    agg: Aggregation,
    window: Option<&str>,
    precision: Option<&str>,
) -> Result<Option<Window>, String> {
    let span = window
        .map(|w| parse_duration(w).map_err(|e| format!("window: {e}")))
        .transpose()?;
    if let Some(span) = span {
        if span > MAX_WINDOW {
            return Err(format!("window is longer than {} days", MAX_WINDOW / DAY));
        }
        if agg == Aggregation::First {
            return Err(
                "agg = \"first\" cannot have a window (the first event may have left it)"
                    .to_owned(),
            );
        }
        if agg == Aggregation::Mode {
            return Err("agg = \"mode\" cannot have a window".to_owned());
        }
    }
    let granule = precision
        .map(|p| parse_duration(p).map_err(|e| format!("precision: {e}")))
        .transpose()?;
    Ok(match (span, granule) {
        (None, Some(_)) => {
            return Err("precision applies to a window: add `window = \"…\"`".to_owned());
        }
        (None, None) => None,
        (Some(span), None) => Some(Window::new(span)),
        (Some(span), Some(granule)) => {
            if granule > span {
                return Err(format!(
                    "precision {} is coarser than the window {}",
                    precision.unwrap_or_default(),
                    window.unwrap_or_default()
                ));
            }
            let buckets = (span + granule - 1) / granule;
            if buckets > MAX_WINDOW_BUCKETS {
                return Err(format!(
                    "precision {} makes {buckets} buckets of the window {}; at most {MAX_WINDOW_BUCKETS}",
                    precision.unwrap_or_default(),
                    window.unwrap_or_default()
                ));
            }
            Some(Window { span, granule })
        }
    })
}

/// `max`: the bound of `distinct`, `latest_n` and `mode`, with their defaults.
fn check_max(
    agg: Aggregation,
    max: Option<usize>,
    field: Option<&FieldPath>,
) -> Result<usize, String> {
    Ok(match (agg, max) {
        (_, Some(0)) if agg.is_bounded() => {
            return Err("max must be 1 or more".to_owned());
        }
        (_, Some(m)) if agg.is_bounded() && m > MAX_BOUND => {
            return Err(format!("max must be at most {MAX_BOUND}"));
        }
        (_, Some(m)) if agg.is_bounded() => m,
        (Aggregation::Distinct | Aggregation::Mode, None) => match field {
            Some(FieldPath::HourOfDay) => 24,
            Some(FieldPath::DayOfWeek) => 7,
            _ => 50,
        },
        (Aggregation::LatestN, None) => 10,
        (_, Some(_)) => return Err(format!("agg = \"{}\" takes no max", agg.name())),
        (_, None) => 0,
    })
}

fn check_expected(agg: Aggregation, expected: Option<&Expected>) -> Result<(), String> {
    if expected.is_some() && !(agg.is_numeric() || agg == Aggregation::Count) {
        return Err("expected stats apply to numeric features only".to_owned());
    }
    Ok(())
}

/// The value served before any event, when the spec gives no `default`.
fn default_of(agg: Aggregation, dim: usize) -> Value {
    match agg {
        Aggregation::Count | Aggregation::Sum | Aggregation::Decay => Value::from(0),
        Aggregation::Distinct | Aggregation::LatestN => Value::Array(Vec::new()),
        Aggregation::VectorAvg => Value::Array(vec![Value::from(0); dim]),
        _ => Value::Null,
    }
}
