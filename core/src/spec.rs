//! The feature spec: `features.toml` parsed into a typed [`FeatureSpec`] and
//! checked once, with errors that name the feature. Features as code: the
//! edge compiles the file in, and replay and the Python reader read the same
//! file, so a feature is defined in exactly one place.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Deserialize;
use serde_json::Value;

use crate::time::{DAY, HOUR, MINUTE, Millis, SECOND};
use crate::validate::Event;
use crate::wire::is_valid_event_type;

/// Largest `max` a bounded feature (`distinct`, `latest_n`) may keep.
pub const MAX_BOUND: usize = 1_000;
/// Longest window a feature may have: events older than 7 days are refused
/// at ingest, so a longer window would still be right, but buckets beyond a
/// quarter make reads slow for no model we know of.
pub const MAX_WINDOW: Millis = 90 * DAY;
/// Most buckets a window's `precision` may ask for: 7 days of 5 minutes.
/// Each is a field of the entity's record, and a write that moves the window
/// deletes the buckets that left it, one by one.
pub const MAX_WINDOW_BUCKETS: Millis = 2_016;

/// Every entity and feature of a `features.toml`, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureSpec {
    entities: BTreeMap<String, EntityDef>,
    features: Vec<FeatureDef>,
    hash: String,
}

/// What a feature describes (`user`, `product`, or a pair of them such as
/// `user_item`) and how events name it.
#[derive(Debug, Clone, PartialEq)]
pub struct EntityDef {
    pub name: String,
    /// Tried in order; the first present, non-empty one is the entity's id.
    /// Empty for a composite entity.
    pub key: Vec<FieldPath>,
    /// A composite entity's parts, in the order of its `of` (each a simple
    /// entity of the spec): its id is theirs joined by [`composite_id`].
    /// Empty for a simple entity.
    pub of: Vec<EntityDef>,
}

/// One feature at one version.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureDef {
    pub name: String,
    pub version: u32,
    pub entity: String,
    pub on: EventMatch,
    pub agg: Aggregation,
    pub field: Option<FieldPath>,
    /// Only events whose fields equal these values count.
    pub filter: Vec<(FieldPath, Value)>,
    pub window: Option<Window>,
    pub ttl: Option<Millis>,
    pub default: Value,
    /// Bound of `distinct`, `latest_n` and `mode`.
    pub max: usize,
    /// `decay`'s rate and normalisation.
    pub decay: Option<Decay>,
    /// `vector_avg`: the length every vector must have.
    pub dim: usize,
    /// `vector_avg`: the field each vector is weighted by (1 without one).
    pub weight: Option<FieldPath>,
    /// The time zone of the derived fields `hour_of_day` and `day_of_week`
    /// (UTC without one).
    pub tz: Option<jiff::tz::TimeZone>,
    pub expected: Option<Expected>,
    pub description: Option<String>,
    /// `backfill = true`: the version is new and `freshet backfill` gives it
    /// its history. Its live writes then carry a batch marker of their own
    /// ([`crate::aggregate::backfill_marker`]), so live and backfill apply
    /// each batch to it once between them (README, "Backfill").
    pub backfill: bool,
    key: String,
}

/// Which event types a feature listens to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventMatch {
    All,
    Types(BTreeSet<String>),
}

/// How a feature folds its events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregation {
    Count,
    Sum,
    Min,
    Max,
    /// The field's value at the latest event time.
    Last,
    /// The field's value at the earliest event time.
    First,
    /// The distinct values seen, bounded: keeps the `max` most recently seen.
    Distinct,
    /// The field's values of the `max` latest events, newest first.
    LatestN,
    /// The mean of a numeric field: a sum and a count per cell.
    Avg,
    /// A sum of exponentially decayed contributions, read as of the read
    /// time: `sum(exp(-rate * age))`, times `scale`, at most `cap`.
    Decay,
    /// The most frequent value, with the `max` highest counts kept.
    Mode,
    /// The element-wise (weighted) mean of a fixed-length number array.
    VectorAvg,
}

impl Aggregation {
    pub const ALL: [Self; 12] = [
        Self::Count,
        Self::Sum,
        Self::Min,
        Self::Max,
        Self::Last,
        Self::First,
        Self::Distinct,
        Self::LatestN,
        Self::Avg,
        Self::Decay,
        Self::Mode,
        Self::VectorAvg,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Count => "count",
            Self::Sum => "sum",
            Self::Min => "min",
            Self::Max => "max",
            Self::Last => "last",
            Self::First => "first",
            Self::Distinct => "distinct",
            Self::LatestN => "latest_n",
            Self::Avg => "avg",
            Self::Decay => "decay",
            Self::Mode => "mode",
            Self::VectorAvg => "vector_avg",
        }
    }

    fn needs_field(self) -> bool {
        !matches!(self, Self::Count | Self::Decay)
    }

    fn is_numeric(self) -> bool {
        matches!(
            self,
            Self::Sum | Self::Min | Self::Max | Self::Avg | Self::Decay
        )
    }

    /// Whether the aggregation keeps a bounded set (`max` applies).
    fn is_bounded(self) -> bool {
        matches!(self, Self::Distinct | Self::LatestN | Self::Mode)
    }
}

/// A sliding window kept as time buckets ("tiles") keyed by event time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub span: Millis,
    /// Bucket width: by default minutes up to 1 h, hours up to 2 days, days
    /// beyond, so a window needs at most ~60 buckets; a feature's `precision`
    /// chooses it (at most [`MAX_WINDOW_BUCKETS`] buckets). A read counts the
    /// buckets that start at or after the bucket holding `now - span`, so the
    /// window reaches back by up to one bucket more than its span: the
    /// leading edge is off by less than one bucket.
    pub granule: Millis,
}

impl Window {
    /// The window with its default bucket width ([`Window::default_granule`]).
    pub fn new(span: Millis) -> Self {
        Self {
            span,
            granule: Self::default_granule(span),
        }
    }

    /// Minutes up to 1 h, hours up to 2 days, days beyond: at most 60
    /// buckets. A feature's `precision` sets another width.
    pub fn default_granule(span: Millis) -> Millis {
        if span <= HOUR {
            MINUTE
        } else if span <= 2 * DAY {
            HOUR
        } else {
            DAY
        }
    }

    /// Start of the bucket holding `t`, in milliseconds.
    pub fn bucket_of(&self, t: Millis) -> Millis {
        t.div_euclid(self.granule) * self.granule
    }

    /// The oldest bucket start still inside the window as of `t`.
    pub fn cutoff(&self, t: Millis) -> Millis {
        self.bucket_of(t - self.span)
    }
}

/// `decay`'s parameters. Each window bucket keeps, in fixed point,
/// `sum(exp(rate * (t - bucket_start)))` over its events: relative to the
/// bucket's start, so one event adds at most 2 (the bucket is at most one
/// half-life wide) and integers add exactly in any order. A read decays each
/// bucket from its start to the read time: `exp(-rate * (now - start))`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decay {
    /// Per millisecond.
    pub rate: f64,
    /// The raw sum is multiplied by this (default 1).
    pub scale: f64,
    /// The scaled value is at most this.
    pub cap: Option<f64>,
}

/// One event's weight at its bucket's start in [`Decay`]'s fixed point:
/// 2^32, so one event is kept to within 1.2e-10 of its weight, and a bucket
/// holds 2^30 events before its `i64` could overflow.
pub const DECAY_ONE: f64 = 4_294_967_296.0;

/// A decay older than this many half-lives weighs less than one fixed-point
/// unit (2^-33 < 1 / [`DECAY_ONE`]): an unwindowed decay keeps buckets this
/// far back only, and loses nothing it could have represented.
pub const DECAY_HORIZON_HALF_LIVES: i64 = 33;

impl Decay {
    /// The fixed-point weight of an event `since` ms after its bucket's start.
    pub fn weight(&self, since: Millis) -> i64 {
        // At most 2 * 2^32 (since < one half-life): exact in an f64 and an i64.
        #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
        let w = ((self.rate * since as f64).exp() * DECAY_ONE).round() as i64;
        w
    }

    /// The raw decayed sum, as of `now`, of a bucket starting at `start`.
    pub fn value_at(&self, start: Millis, fixed: i64, now: Millis) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let (age, fixed) = ((now - start) as f64, fixed as f64);
        (-self.rate * age).exp() * fixed / DECAY_ONE
    }

    /// The served value of a raw decayed sum.
    pub fn normalise(&self, raw: f64) -> f64 {
        let scaled = raw * self.scale;
        self.cap.map_or(scaled, |cap| scaled.min(cap))
    }
}

/// The training distribution of a numeric feature, for drift checks.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expected {
    pub mean: Option<f64>,
    pub stddev: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

/// Where a value is read from an event.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum FieldPath {
    Id,
    Type,
    Timestamp,
    ClientId,
    SessionId,
    UserId,
    Payload(Vec<String>),
    /// The event time's hour, 0-23 (derived; in the feature's `tz`).
    HourOfDay,
    /// The event time's day of the week, 0 = Sunday … 6 = Saturday, as SQL's
    /// `EXTRACT(DOW …)` (derived; in the feature's `tz`).
    DayOfWeek,
}

impl FieldPath {
    pub fn parse(path: &str) -> Result<Self, String> {
        Ok(match path {
            "id" => Self::Id,
            "type" => Self::Type,
            "timestamp" => Self::Timestamp,
            "clientId" => Self::ClientId,
            "sessionId" => Self::SessionId,
            "userId" => Self::UserId,
            "hour_of_day" => Self::HourOfDay,
            "day_of_week" => Self::DayOfWeek,
            _ => {
                let rest = path.strip_prefix("payload.").ok_or_else(|| {
                    format!(
                        "field path `{path}` must be payload.<name>[.<name>…] or one of \
                         id, type, timestamp, clientId, sessionId, userId, hour_of_day, \
                         day_of_week"
                    )
                })?;
                let segments: Vec<String> = rest.split('.').map(str::to_owned).collect();
                if segments.iter().any(String::is_empty) {
                    return Err(format!("field path `{path}` has an empty segment"));
                }
                Self::Payload(segments)
            }
        })
    }

    /// The value at this path in `event`; the event time reads as milliseconds,
    /// derived fields in UTC. `user_id` is the userId to honour (verified),
    /// not the one sent.
    pub fn get(&self, event: &Event, user_id: Option<&str>) -> Option<Value> {
        self.get_in(event, user_id, None)
    }

    /// Like [`FieldPath::get`], with derived fields in the time zone `tz`.
    pub fn get_in(
        &self,
        event: &Event,
        user_id: Option<&str>,
        tz: Option<&jiff::tz::TimeZone>,
    ) -> Option<Value> {
        let local = || {
            let at = jiff::Timestamp::from_millisecond(event.time).ok()?;
            Some(tz.unwrap_or(&jiff::tz::TimeZone::UTC).to_datetime(at))
        };
        match self {
            Self::HourOfDay => Some(Value::from(local()?.hour())),
            Self::DayOfWeek => Some(Value::from(local()?.weekday().to_sunday_zero_offset())),
            Self::Id => Some(Value::from(event.id.as_str())),
            Self::Type => Some(Value::from(event.event_type.as_str())),
            Self::Timestamp => Some(Value::from(event.time)),
            Self::ClientId => Some(Value::from(event.client_id.as_str())),
            Self::SessionId => event.session_id.as_deref().map(Value::from),
            Self::UserId => user_id.map(Value::from),
            Self::Payload(segments) => {
                let (first, rest) = segments.split_first()?;
                let mut value = event.payload.get(first)?;
                for segment in rest {
                    value = value.as_object()?.get(segment)?;
                }
                (!value.is_null()).then(|| value.clone())
            }
        }
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Id => f.write_str("id"),
            Self::Type => f.write_str("type"),
            Self::Timestamp => f.write_str("timestamp"),
            Self::ClientId => f.write_str("clientId"),
            Self::SessionId => f.write_str("sessionId"),
            Self::UserId => f.write_str("userId"),
            Self::HourOfDay => f.write_str("hour_of_day"),
            Self::DayOfWeek => f.write_str("day_of_week"),
            Self::Payload(segments) => write!(f, "payload.{}", segments.join(".")),
        }
    }
}

/// Why a ranking read's pairs have no entity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PairError {
    /// The pair entity named is not in the spec.
    UnknownEntity(String),
    /// It does not pair the user and item entities, or the spec has none that does.
    NoPair(String),
}

impl fmt::Display for PairError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownEntity(e) => write!(f, "unknown entity `{e}`"),
            Self::NoPair(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for PairError {}

/// A spec that cannot be used, naming the feature or entity at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    /// `feature `name@v``, `entity `user``, or empty for the file as a whole.
    pub subject: String,
    pub message: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.subject.is_empty() {
            write!(f, "features.toml: {}", self.message)
        } else {
            write!(f, "features.toml: {}: {}", self.subject, self.message)
        }
    }
}

impl std::error::Error for SpecError {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    #[serde(default)]
    entities: BTreeMap<String, RawEntity>,
    #[serde(default)]
    feature: Vec<toml::Table>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntity {
    key: Option<Vec<String>>,
    of: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFeature {
    name: String,
    #[serde(default = "one")]
    version: u32,
    entity: String,
    on: Vec<String>,
    agg: String,
    field: Option<String>,
    #[serde(rename = "where", default)]
    filter: toml::Table,
    window: Option<String>,
    precision: Option<String>,
    ttl: Option<String>,
    default: Option<toml::Value>,
    max: Option<usize>,
    rate: Option<f64>,
    half_life: Option<String>,
    scale: Option<f64>,
    cap: Option<f64>,
    dim: Option<usize>,
    weight: Option<String>,
    tz: Option<String>,
    expected: Option<Expected>,
    description: Option<String>,
    #[serde(default)]
    backfill: bool,
}

fn one() -> u32 {
    1
}

impl FeatureSpec {
    /// Parses and checks a `features.toml`.
    pub fn parse(text: &str) -> Result<Self, SpecError> {
        let raw: RawSpec = toml::from_str(text).map_err(|e| SpecError {
            subject: String::new(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        let mut entities = BTreeMap::new();
        let mut composites = Vec::new();
        // Simple entities first: a composite one refers to them.
        for (name, raw_entity) in raw.entities {
            let fail = |message| SpecError {
                subject: format!("entity `{name}`"),
                message,
            };
            match check_entity(&name, raw_entity).map_err(fail)? {
                Checked::Simple(entity) => {
                    entities.insert(name, entity);
                }
                Checked::Composite(of) => composites.push((name, of)),
            }
        }
        let mut composed = Vec::with_capacity(composites.len());
        for (name, of) in composites {
            let entity = check_composite(&name, &of, &entities).map_err(|message| SpecError {
                subject: format!("entity `{name}`"),
                message,
            })?;
            composed.push(entity);
        }
        entities.extend(composed.into_iter().map(|e| (e.name.clone(), e)));
        let mut features: Vec<FeatureDef> = Vec::with_capacity(raw.feature.len());
        for (index, table) in raw.feature.into_iter().enumerate() {
            let subject = feature_subject(&table, index);
            let fail = |message: String| SpecError {
                subject: subject.clone(),
                message,
            };
            let raw_feature: RawFeature = toml::Value::Table(table)
                .try_into()
                .map_err(|e: toml::de::Error| fail(e.to_string().trim_end().to_owned()))?;
            let feature = check_feature(raw_feature, &entities).map_err(fail)?;
            if features.iter().any(|f| f.key == feature.key) {
                return Err(fail(format!("`{}` is defined twice", feature.key)));
            }
            features.push(feature);
        }
        if features.is_empty() {
            return Err(SpecError {
                subject: String::new(),
                message: "no [[feature]] is defined".to_owned(),
            });
        }
        let hash = meaning_hash(text)?;
        Ok(Self {
            entities,
            features,
            hash,
        })
    }

    /// A short hash of what decides values in this spec: the entities and
    /// every feature's definition, without comments, layout, key order,
    /// `description` or `expected` (documentation and drift baselines decide
    /// no value). The edge shows it in `/health`, the Python reader and a
    /// trained model carry theirs, so a deployment whose parts were built
    /// from different specs says so.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    pub fn entities(&self) -> impl Iterator<Item = &EntityDef> {
        self.entities.values()
    }

    pub fn entity(&self, name: &str) -> Option<&EntityDef> {
        self.entities.get(name)
    }

    /// The entity of a ranking read's (user, item) pairs: `named` when
    /// given (it must be a composite of exactly `user` and `item`, in either
    /// order), else the spec's composite of exactly those two (the first by
    /// name if several are).
    pub fn pair_entity(
        &self,
        user: &str,
        item: &str,
        named: Option<&str>,
    ) -> Result<&EntityDef, PairError> {
        match named {
            Some(name) => {
                let def = self
                    .entity(name)
                    .ok_or_else(|| PairError::UnknownEntity(name.to_owned()))?;
                if def.pairs(user, item) {
                    Ok(def)
                } else {
                    Err(PairError::NoPair(format!(
                        "`{name}` is not a composite entity of `{user}` and `{item}`"
                    )))
                }
            }
            None => self
                .entities
                .values()
                .find(|e| e.pairs(user, item))
                .ok_or_else(|| {
                    PairError::NoPair(format!(
                        "the spec has no composite entity of `{user}` and `{item}` \
                         (of = [\"{user}\", \"{item}\"]); name one as the pair entity"
                    ))
                }),
        }
    }

    pub fn features(&self) -> &[FeatureDef] {
        &self.features
    }

    /// The spec with only the features `keep` accepts, every entity kept,
    /// its hash still the whole spec's: a replay that reads a few features
    /// folds only those (each feature is folded on its own, so the values
    /// are the same).
    pub fn retain(&self, keep: impl Fn(&FeatureDef) -> bool) -> Self {
        Self {
            entities: self.entities.clone(),
            features: self.features.iter().filter(|f| keep(f)).cloned().collect(),
            hash: self.hash.clone(),
        }
    }

    /// The features of one entity, in file order.
    pub fn features_of<'a>(&'a self, entity: &'a str) -> impl Iterator<Item = &'a FeatureDef> {
        self.features.iter().filter(move |f| f.entity == entity)
    }

    /// A feature by its storage key, `name@version`.
    pub fn feature(&self, key: &str) -> Option<&FeatureDef> {
        self.features.iter().find(|f| f.key == key)
    }

    /// A feature of `entity` by `name` (its highest version) or `name@version`.
    pub fn lookup(&self, entity: &str, name: &str) -> Option<&FeatureDef> {
        match name.split_once('@') {
            Some(_) => self.feature(name).filter(|f| f.entity == entity),
            None => self
                .features
                .iter()
                .filter(|f| f.entity == entity && f.name == name)
                .max_by_key(|f| f.version),
        }
    }
}

impl FeatureDef {
    /// The storage key: `name@version`.
    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn listens_to(&self, event_type: &str) -> bool {
        match &self.on {
            EventMatch::All => true,
            EventMatch::Types(types) => types.contains(event_type),
        }
    }

    /// How many numbers a cell of `avg` (count, sum) or `vector_avg` (total
    /// weight, then one weighted sum per element) keeps; 0 for the others.
    pub fn cell_parts(&self) -> usize {
        match self.agg {
            Aggregation::Avg => 2,
            Aggregation::VectorAvg => self.dim + 1,
            _ => 0,
        }
    }

    /// Whether `event` passes the feature's `where` filter.
    pub fn accepts(&self, event: &Event, user_id: Option<&str>) -> bool {
        self.filter
            .iter()
            .all(|(path, wanted)| path.get(event, user_id).as_ref() == Some(wanted))
    }
}

impl EntityDef {
    /// The entity id of `event`: the first key path with a non-empty string or
    /// number; for a composite entity, its parts' ids joined by
    /// [`composite_id`], when the event names every part. `user_id` is the
    /// verified userId, if any.
    pub fn id_of(&self, event: &Event, user_id: Option<&str>) -> Option<String> {
        if self.is_composite() {
            let parts = self
                .of
                .iter()
                .map(|part| part.id_of(event, user_id))
                .collect::<Option<Vec<String>>>()?;
            return Some(composite_id(&parts));
        }
        self.key
            .iter()
            .find_map(|path| match path.get(event, user_id)? {
                Value::String(s) if !s.is_empty() && s.len() <= MAX_KEY_BYTES => Some(s),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
    }

    /// Whether the entity is keyed by others (`of`).
    pub fn is_composite(&self) -> bool {
        !self.of.is_empty()
    }

    /// The names of a composite entity's parts, in order.
    pub fn part_names(&self) -> Vec<&str> {
        self.of.iter().map(|p| p.name.as_str()).collect()
    }

    /// Whether this is a composite of exactly `user` and `item` (either order).
    pub fn pairs(&self, user: &str, item: &str) -> bool {
        let mut parts = self.part_names();
        parts.sort_unstable();
        let mut wanted = [user, item];
        wanted.sort_unstable();
        parts == wanted
    }

    /// The id of a composite entity from its parts' ids given by entity
    /// name (a ranking read's user and item): `None` when `ids` lacks a part.
    pub fn compose(&self, ids: &[(&str, &str)]) -> Option<String> {
        let parts = self
            .of
            .iter()
            .map(|part| {
                ids.iter()
                    .find(|(entity, _)| *entity == part.name)
                    .map(|(_, id)| *id)
            })
            .collect::<Option<Vec<&str>>>()?;
        Some(composite_id(&parts))
    }

    /// The parts of an id given for this entity (a serving path): a simple
    /// entity's id is its one part; a composite id must split into one
    /// non-empty id per part, as [`composite_id`] writes it.
    pub fn split_id(&self, id: &str) -> Result<Vec<String>, String> {
        if !self.is_composite() {
            return Ok(vec![id.to_owned()]);
        }
        match split_composite_id(id) {
            Some(parts) if parts.len() == self.of.len() => Ok(parts),
            _ => Err(format!(
                "a `{}` id is the ids of {} joined by `|`, each with `%` written `%25` and `|` \
                 written `%7C`",
                self.name,
                self.part_names().join(", ")
            )),
        }
    }
}

/// Longest entity id an event's key field may give (a composite id is
/// longer: its parts' ids, escaped and joined).
pub const MAX_KEY_BYTES: usize = 128;

/// The id of a composite entity from its parts' ids, in the entity's `of`
/// order: each part with `%` written `%25` and `|` written `%7C`, joined by
/// `|`. No two lists of parts give the same id, whatever the parts hold;
/// [`split_composite_id`] gives the parts back. Every reader (the edge, the
/// Python reader) builds ids with this, never by hand.
pub fn composite_id<S: AsRef<str>>(parts: &[S]) -> String {
    let mut id = String::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            id.push('|');
        }
        for c in part.as_ref().chars() {
            match c {
                '%' => id.push_str("%25"),
                '|' => id.push_str("%7C"),
                c => id.push(c),
            }
        }
    }
    id
}

/// The parts of an id [`composite_id`] made; `None` for text it cannot have
/// made (an empty part, a `%` other than `%25` or `%7C`), so an id has one
/// spelling only.
pub fn split_composite_id(id: &str) -> Option<Vec<String>> {
    id.split('|')
        .map(|escaped| {
            let mut part = String::with_capacity(escaped.len());
            let mut rest = escaped;
            while let Some(at) = rest.find('%') {
                part.push_str(&rest[..at]);
                let code = rest.get(at..at + 3)?;
                part.push(match code {
                    "%25" => '%',
                    "%7C" => '|',
                    _ => return None,
                });
                rest = &rest[at + 3..];
            }
            part.push_str(rest);
            (!part.is_empty()).then_some(part)
        })
        .collect()
}

/// See [`FeatureSpec::hash`]: SHA-256 over a canonical JSON form (tables
/// are sorted maps; features sorted by `name@version`), first 16 hex digits.
fn meaning_hash(text: &str) -> Result<String, SpecError> {
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

fn feature_subject(table: &toml::Table, index: usize) -> String {
    let name = table.get("name").and_then(toml::Value::as_str);
    let version = table
        .get("version")
        .and_then(toml::Value::as_integer)
        .unwrap_or(1);
    match name {
        Some(name) => format!("feature `{name}@{version}`"),
        None => format!("feature #{}", index + 1),
    }
}

fn is_valid_name(name: &str, max_len: usize) -> bool {
    name.len() <= max_len && is_valid_event_type(name)
}

/// An entity checked on its own: a composite one still names its parts.
enum Checked {
    Simple(EntityDef),
    Composite(Vec<String>),
}

fn check_entity(name: &str, raw: RawEntity) -> Result<Checked, String> {
    if !is_valid_name(name, 32) {
        return Err("entity names must match ^[a-z][a-z0-9_]{0,31}$".to_owned());
    }
    let key = match (raw.key, raw.of) {
        (Some(_), Some(_)) => {
            return Err(
                "give key (the fields that name it) or of (the entities it pairs), not both"
                    .to_owned(),
            );
        }
        (None, None) => {
            return Err(
                "needs key = [field paths] or, for a composite entity, of = [entities]".to_owned(),
            );
        }
        (None, Some(of)) => return Ok(Checked::Composite(of)),
        (Some(key), None) => key,
    };
    if key.is_empty() {
        return Err("key must list at least one field path".to_owned());
    }
    let key = key
        .iter()
        .map(|p| FieldPath::parse(p))
        .collect::<Result<_, _>>()?;
    Ok(Checked::Simple(EntityDef {
        name: name.to_owned(),
        key,
        of: Vec::new(),
    }))
}

/// A composite entity: at least two distinct simple entities of the spec.
fn check_composite(
    name: &str,
    of: &[String],
    simple: &BTreeMap<String, EntityDef>,
) -> Result<EntityDef, String> {
    if of.len() < 2 {
        return Err("of must list at least two entities".to_owned());
    }
    let mut parts: Vec<EntityDef> = Vec::with_capacity(of.len());
    for part in of {
        if parts.iter().any(|p| &p.name == part) {
            return Err(format!("of: `{part}` is listed twice"));
        }
        let def = simple.get(part).ok_or_else(|| {
            if part == name {
                format!("of: `{part}` is this entity itself")
            } else {
                let known: Vec<&str> = simple.keys().map(String::as_str).collect();
                format!(
                    "of: `{part}` is not a simple entity of the spec (simple entities: {})",
                    known.join(", ")
                )
            }
        })?;
        parts.push(def.clone());
    }
    Ok(EntityDef {
        name: name.to_owned(),
        key: Vec::new(),
        of: parts,
    })
}

fn check_feature(
    raw: RawFeature,
    entities: &BTreeMap<String, EntityDef>,
) -> Result<FeatureDef, String> {
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
    let agg = Aggregation::ALL
        .into_iter()
        .find(|a| a.name() == raw.agg)
        .ok_or_else(|| {
            let names: Vec<&str> = Aggregation::ALL.iter().map(|a| a.name()).collect();
            format!(
                "unknown aggregation `{}` (expected one of {})",
                raw.agg,
                names.join(", ")
            )
        })?;
    let on = check_on(&raw.on)?;
    let field = raw.field.as_deref().map(FieldPath::parse).transpose()?;
    match (&field, agg.needs_field()) {
        (None, true) => return Err(format!("agg = \"{}\" needs a field", agg.name())),
        (Some(_), false) => return Err(format!("agg = \"{}\" takes no field", agg.name())),
        _ => {}
    }
    let derived = matches!(field, Some(FieldPath::HourOfDay | FieldPath::DayOfWeek));
    let tz = match raw.tz.as_deref() {
        Some(_) if !derived => {
            return Err(
                "tz applies to the derived fields hour_of_day and day_of_week only".to_owned(),
            );
        }
        Some(name) => Some(
            jiff::tz::TimeZone::get(name)
                .map_err(|_| format!("tz: `{name}` is not an IANA time zone"))?,
        ),
        None => None,
    };
    let decay = check_decay(agg, raw.rate, raw.half_life.as_deref(), raw.scale, raw.cap)?;
    let (dim, weight) = check_vector(agg, raw.dim, raw.weight.as_deref())?;
    let filter = raw
        .filter
        .into_iter()
        .map(|(path, value)| {
            let path = FieldPath::parse(&path)?;
            let value = toml_to_json(value);
            if value.is_object() || value.is_array() {
                return Err(format!("where.{path} must be a string, number or boolean"));
            }
            Ok((path, value))
        })
        .collect::<Result<Vec<_>, String>>()?;
    let window = raw
        .window
        .as_deref()
        .map(|w| parse_duration(w).map_err(|e| format!("window: {e}")))
        .transpose()?;
    if let Some(span) = window {
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
    let precision = raw
        .precision
        .as_deref()
        .map(|p| parse_duration(p).map_err(|e| format!("precision: {e}")))
        .transpose()?;
    let window = match (window, precision) {
        (None, Some(_)) => {
            return Err("precision applies to a window: add `window = \"…\"`".to_owned());
        }
        (None, None) => None,
        (Some(span), None) => Some(Window::new(span)),
        (Some(span), Some(granule)) => {
            if granule > span {
                return Err(format!(
                    "precision {} is coarser than the window {}",
                    raw.precision.as_deref().unwrap_or_default(),
                    raw.window.as_deref().unwrap_or_default()
                ));
            }
            let buckets = (span + granule - 1) / granule;
            if buckets > MAX_WINDOW_BUCKETS {
                return Err(format!(
                    "precision {} makes {buckets} buckets of the window {}; at most {MAX_WINDOW_BUCKETS}",
                    raw.precision.as_deref().unwrap_or_default(),
                    raw.window.as_deref().unwrap_or_default()
                ));
            }
            Some(Window { span, granule })
        }
    };
    let window = match decay {
        Some(d) => Some(decay_window(&d, window)),
        None => window,
    };
    let ttl = raw
        .ttl
        .as_deref()
        .map(|t| parse_duration(t).map_err(|e| format!("ttl: {e}")))
        .transpose()?;
    let max = match (agg, raw.max) {
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
    };
    if raw.expected.is_some() && !(agg.is_numeric() || agg == Aggregation::Count) {
        return Err("expected stats apply to numeric features only".to_owned());
    }
    let default = match raw.default {
        Some(v) => toml_to_json(v),
        None => match agg {
            Aggregation::Count | Aggregation::Sum | Aggregation::Decay => Value::from(0),
            Aggregation::Distinct | Aggregation::LatestN => Value::Array(Vec::new()),
            Aggregation::VectorAvg => Value::Array(vec![Value::from(0); dim]),
            _ => Value::Null,
        },
    };
    let key = format!("{}@{}", raw.name, raw.version);
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
        tz,
        expected: raw.expected,
        description: raw.description,
        backfill: raw.backfill,
        key,
    })
}

/// Longest `dim` a `vector_avg` may have: a cell keeps `dim + 1` numbers.
pub const MAX_DIM: usize = 1_024;

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

/// `decay`'s buckets: at most one half-life wide (whole minutes), so an
/// event's weight relative to its bucket's start stays in [1, 2]; without a
/// window, kept [`DECAY_HORIZON_HALF_LIVES`] back.
fn decay_window(decay: &Decay, window: Option<Window>) -> Window {
    #[allow(clippy::cast_possible_truncation)]
    let half_life = (std::f64::consts::LN_2 / decay.rate).round() as Millis;
    let fits = (half_life / MINUTE * MINUTE).clamp(MINUTE, DAY);
    match window {
        Some(w) => Window {
            span: w.span,
            granule: w.granule.min(fits),
        },
        None => Window {
            span: DECAY_HORIZON_HALF_LIVES * half_life,
            granule: fits,
        },
    }
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

/// Parses `90s`, `30m`, `24h`, `7d` or `2w` into milliseconds.
pub fn parse_duration(text: &str) -> Result<Millis, String> {
    let unit_at = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(unit_at);
    let n: Millis = digits
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 30m, 24h or 7d"))?;
    let unit = match unit {
        "s" => SECOND,
        "m" => MINUTE,
        "h" => HOUR,
        "d" => DAY,
        "w" => 7 * DAY,
        _ => return Err(format!("`{text}` is not a duration like 30m, 24h or 7d")),
    };
    if n == 0 {
        return Err(format!("`{text}` must be longer than zero"));
    }
    n.checked_mul(unit)
        .ok_or_else(|| format!("`{text}` is too long"))
}

fn toml_to_json(value: toml::Value) -> Value {
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

#[cfg(test)]
mod tests {
    use super::*;

    const ENTITIES: &str = "[entities.user]\nkey = [\"userId\", \"clientId\"]\n";

    fn parse_feature(feature: &str) -> Result<FeatureSpec, SpecError> {
        FeatureSpec::parse(&format!("{ENTITIES}[[feature]]\n{feature}"))
    }

    #[test]
    fn hash_follows_meaning_not_layout() {
        let a = parse_feature("name = \"a\"\nentity = \"user\"\non = [\"x\"]\nagg = \"count\"\n")
            .expect("spec");
        let same = parse_feature(
            "# a comment\nagg = \"count\"\non = [\"x\"]\nentity = \"user\"\nversion = 1\nname = \"a\"\ndescription = \"words\"\nexpected = { mean = 1.0 }\nbackfill = true\n",
        )
        .expect("spec");
        let other =
            parse_feature("name = \"a\"\nentity = \"user\"\non = [\"y\"]\nagg = \"count\"\n")
                .expect("spec");
        assert_eq!(a.hash(), same.hash());
        assert_ne!(a.hash(), other.hash());
        assert_eq!(a.hash().len(), 16);
    }

    fn error_of(feature: &str) -> String {
        parse_feature(feature)
            .expect_err("spec should be refused")
            .to_string()
    }

    #[test]
    fn the_example_spec_parses() {
        let spec = FeatureSpec::parse(include_str!("../../features.toml")).expect("valid spec");
        assert!(spec.features().len() >= 9);
        assert!(spec.entity("product").is_some());
        let clicks = spec
            .lookup("user", "clicks_product_card_7d")
            .expect("feature");
        assert_eq!(
            clicks.window,
            Some(Window {
                span: 7 * DAY,
                granule: DAY
            })
        );
    }

    #[test]
    fn errors_name_the_feature() {
        let e = error_of("name = \"x\"\nentity = \"user\"\non = [\"a\"]\nagg = \"median\"");
        assert_eq!(
            e,
            "features.toml: feature `x@1`: unknown aggregation `median` (expected one of \
             count, sum, min, max, last, first, distinct, latest_n, avg, decay, mode, vector_avg)"
        );
        let e = error_of("name = \"Bad\"\nentity = \"user\"\non = [\"a\"]\nagg = \"count\"");
        assert!(e.contains("feature `Bad@1`: name must match"), "{e}");
        let e = error_of("name = \"x\"\nentity = \"shop\"\non = [\"a\"]\nagg = \"count\"");
        assert!(e.contains("unknown entity `shop` (defined: user)"), "{e}");
        let e = error_of("name = \"x\"\nentity = \"user\"\non = [\"a\"]\nagg = \"sum\"");
        assert!(
            e.contains("feature `x@1`: agg = \"sum\" needs a field"),
            "{e}"
        );
        let e = error_of(
            "name = \"x\"\nentity = \"user\"\non = [\"a\"]\nagg = \"sum\"\nfield = \"amount\"",
        );
        assert!(
            e.contains("field path `amount` must be payload.<name>"),
            "{e}"
        );
        let e = error_of(
            "name = \"x\"\nentity = \"user\"\non = [\"a\"]\nagg = \"count\"\nwindow = \"7y\"",
        );
        assert!(e.contains("window: `7y` is not a duration"), "{e}");
        let e = error_of(
            "name = \"x\"\nentity = \"user\"\non = [\"a\"]\nagg = \"count\"\nttl = \"0d\"",
        );
        assert!(e.contains("ttl: `0d` must be longer than zero"), "{e}");
        let e =
            error_of("name = \"x\"\nentity = \"user\"\non = [\"a\"]\nagg = \"count\"\nagg2 = 1");
        assert!(e.contains("feature `x@1`") && e.contains("agg2"), "{e}");
        let e = error_of(
            "name = \"x\"\nentity = \"user\"\non = [\"a\"]\nagg = \"first\"\nfield = \"id\"\nwindow = \"1d\"",
        );
        assert!(e.contains("cannot have a window"), "{e}");
        let e = error_of("name = \"x\"\nentity = \"user\"\non = [\"Click\"]\nagg = \"count\"");
        assert!(e.contains("on: `Click` is not a valid event type"), "{e}");
    }

    #[test]
    fn duplicate_name_at_version_is_refused_but_a_new_version_is_not() {
        let f = "name = \"x\"\nentity = \"user\"\non = [\"a\"]\nagg = \"count\"\n";
        let twice = format!("{ENTITIES}[[feature]]\n{f}[[feature]]\n{f}");
        let e = FeatureSpec::parse(&twice)
            .expect_err("duplicate")
            .to_string();
        assert_eq!(e, "features.toml: feature `x@1`: `x@1` is defined twice");
        let versions = format!("{ENTITIES}[[feature]]\n{f}[[feature]]\n{f}version = 2\n");
        let spec = FeatureSpec::parse(&versions).expect("two versions");
        assert_eq!(spec.lookup("user", "x").map(FeatureDef::key), Some("x@2"));
        assert_eq!(spec.lookup("user", "x@1").map(FeatureDef::key), Some("x@1"));
        assert_eq!(spec.lookup("user", "x@3"), None);
    }

    #[test]
    fn bounds_of_max_and_window() {
        let base =
            "name = \"x\"\nentity = \"user\"\non = [\"a\"]\nagg = \"distinct\"\nfield = \"id\"\n";
        assert_eq!(
            parse_feature(&format!("{base}max = 1000")).map(|s| s.features()[0].max),
            Ok(1000)
        );
        assert!(error_of(&format!("{base}max = 1001")).contains("max must be at most 1000"));
        assert!(error_of(&format!("{base}max = 0")).contains("max must be 1 or more"));
        let w = "name = \"x\"\nentity = \"user\"\non = [\"a\"]\nagg = \"count\"\n";
        assert!(parse_feature(&format!("{w}window = \"90d\"")).is_ok());
        assert!(error_of(&format!("{w}window = \"91d\"")).contains("longer than 90 days"));
    }

    const F: &str = "name = \"x\"\nentity = \"user\"\non = [\"a\"]\n";

    #[test]
    fn new_aggregations_parse_with_their_parameters() {
        let one = |rest: &str| {
            parse_feature(&format!("{F}{rest}"))
                .map(|s| s.features()[0].clone())
                .expect("valid feature")
        };
        let avg = one("agg = \"avg\"\nfield = \"payload.minutes\"\nwindow = \"30d\"");
        assert_eq!(avg.agg, Aggregation::Avg);
        assert_eq!(avg.default, Value::Null);
        let decay = one("agg = \"decay\"\nrate = 0.1\nwindow = \"14d\"\nscale = 0.001\ncap = 1");
        let d = decay.decay.expect("decay");
        assert!((d.rate * DAY as f64 - 0.1).abs() < 1e-15);
        assert_eq!((d.scale, d.cap), (0.001, Some(1.0)));
        assert_eq!(
            decay.window,
            Some(Window {
                span: 14 * DAY,
                granule: DAY
            })
        );
        assert_eq!(decay.default, Value::from(0));
        // Buckets one half-life wide (whole minutes); no window: 33 half-lives kept.
        let fast = one("agg = \"decay\"\nhalf_life = \"90m\"");
        assert_eq!(
            fast.window,
            Some(Window {
                span: 33 * 90 * MINUTE,
                granule: 90 * MINUTE
            })
        );
        let integer_rate = one("agg = \"decay\"\nrate = 1");
        assert!(integer_rate.decay.is_some());
        let mode =
            one("agg = \"mode\"\nfield = \"hour_of_day\"\ntz = \"Europe/Paris\"\ndefault = 20");
        assert_eq!((mode.max, mode.field), (24, Some(FieldPath::HourOfDay)));
        assert_eq!(mode.tz, jiff::tz::TimeZone::get("Europe/Paris").ok());
        assert_eq!(one("agg = \"mode\"\nfield = \"day_of_week\"").max, 7);
        assert_eq!(one("agg = \"mode\"\nfield = \"payload.genre\"").max, 50);
        let vector = one(
            "agg = \"vector_avg\"\nfield = \"payload.embedding\"\ndim = 3\nweight = \"payload.minutes\"",
        );
        assert_eq!(vector.dim, 3);
        assert_eq!(
            vector.weight,
            Some(FieldPath::Payload(vec!["minutes".into()]))
        );
        assert_eq!(vector.default, serde_json::json!([0, 0, 0]));
    }

    #[test]
    fn bad_parameters_of_new_aggregations_are_refused_clearly() {
        let cases = [
            ("agg = \"avg\"", "agg = \"avg\" needs a field"),
            ("agg = \"decay\"", "needs a rate (per day) or a half_life"),
            (
                "agg = \"decay\"\nrate = 0.1\nhalf_life = \"7d\"",
                "rate or half_life, not both",
            ),
            (
                "agg = \"decay\"\nrate = -1",
                "rate must be a positive number per day",
            ),
            (
                "agg = \"decay\"\nrate = 0.0",
                "rate must be a positive number per day",
            ),
            (
                "agg = \"decay\"\nrate = nan",
                "rate must be a positive number per day",
            ),
            (
                "agg = \"decay\"\nhalf_life = \"30s\"",
                "half-life must be a minute or longer",
            ),
            (
                "agg = \"decay\"\nhalf_life = \"7x\"",
                "half_life: `7x` is not a duration",
            ),
            (
                "agg = \"decay\"\nrate = 1\nscale = 0",
                "scale must be a positive number",
            ),
            (
                "agg = \"decay\"\nrate = 1\ncap = inf",
                "cap must be a finite number",
            ),
            (
                "agg = \"decay\"\nrate = 1\nfield = \"id\"",
                "agg = \"decay\" takes no field",
            ),
            (
                "agg = \"sum\"\nfield = \"id\"\nrate = 1",
                "agg = \"sum\" takes no rate",
            ),
            (
                "agg = \"mode\"\nfield = \"id\"\nwindow = \"1d\"",
                "mode\" cannot have a window",
            ),
            (
                "agg = \"mode\"\nfield = \"id\"\nmax = 0",
                "max must be 1 or more",
            ),
            (
                "agg = \"mode\"\nfield = \"id\"\nmax = 1001",
                "max must be at most 1000",
            ),
            (
                "agg = \"mode\"\nfield = \"id\"\ntz = \"UTC\"",
                "tz applies to the derived fields",
            ),
            (
                "agg = \"mode\"\nfield = \"hour_of_day\"\ntz = \"Mars/Olympus\"",
                "tz: `Mars/Olympus` is not an IANA time zone",
            ),
            ("agg = \"vector_avg\"\nfield = \"payload.v\"", "needs dim"),
            (
                "agg = \"vector_avg\"\nfield = \"payload.v\"\ndim = 0",
                "dim must be 1 to 1024",
            ),
            (
                "agg = \"vector_avg\"\nfield = \"payload.v\"\ndim = 1025",
                "dim must be 1 to 1024",
            ),
            (
                "agg = \"vector_avg\"\nfield = \"payload.v\"\ndim = 2\nweight = \"minutes\"",
                "weight: field path `minutes` must be payload.",
            ),
            (
                "agg = \"avg\"\nfield = \"id\"\ndim = 2",
                "agg = \"avg\" takes no dim or weight",
            ),
            ("agg = \"count\"\nmax = 3", "agg = \"count\" takes no max"),
        ];
        for (rest, wanted) in cases {
            let e = error_of(&format!("{F}{rest}"));
            assert!(
                e.contains("feature `x@1`") && e.contains(wanted),
                "{rest}: {e}"
            );
        }
    }

    #[test]
    fn derived_fields_read_the_event_time_in_the_zone() {
        let event = |time| Event {
            id: "e".into(),
            event_type: "a".into(),
            time,
            client_id: "c".into(),
            session_id: None,
            user_id: None,
            payload: serde_json::Map::new(),
        };
        // 2026-11-22T23:30:00Z, a Sunday: Monday 00:30 in Paris (UTC+1).
        let e = event(1_795_390_200_000);
        let paris = jiff::tz::TimeZone::get("Europe/Paris").ok();
        assert_eq!(FieldPath::HourOfDay.get(&e, None), Some(Value::from(23)));
        assert_eq!(FieldPath::DayOfWeek.get(&e, None), Some(Value::from(0)));
        assert_eq!(
            FieldPath::HourOfDay.get_in(&e, None, paris.as_ref()),
            Some(Value::from(0))
        );
        assert_eq!(
            FieldPath::DayOfWeek.get_in(&e, None, paris.as_ref()),
            Some(Value::from(1))
        );
        // Summer time: 2026-07-01T12:00:00Z is 14:00 in Paris (UTC+2).
        let summer = event(1_782_907_200_000);
        assert_eq!(
            FieldPath::HourOfDay.get_in(&summer, None, paris.as_ref()),
            Some(Value::from(14))
        );
        assert_eq!(FieldPath::parse("hour_of_day"), Ok(FieldPath::HourOfDay));
        assert_eq!(FieldPath::DayOfWeek.to_string(), "day_of_week");
    }

    #[test]
    fn bucket_granularity_follows_the_window() {
        assert_eq!(Window::new(HOUR).granule, MINUTE);
        assert_eq!(Window::new(HOUR + 1).granule, HOUR);
        assert_eq!(Window::new(2 * DAY).granule, HOUR);
        assert_eq!(Window::new(2 * DAY + 1).granule, DAY);
        let w = Window::new(7 * DAY);
        assert_eq!(w.bucket_of(DAY + 5), DAY);
        assert_eq!(w.cutoff(10 * DAY + 5), 3 * DAY);
    }

    #[test]
    fn precision_sets_the_bucket_width_within_bounds() {
        let w = "name = \"x\"\nentity = \"user\"\non = [\"a\"]\nagg = \"count\"\n";
        let spec = parse_feature(&format!("{w}window = \"7d\"\nprecision = \"1h\"")).expect("spec");
        let window = spec.features()[0].window.expect("window");
        assert_eq!((window.span, window.granule), (7 * DAY, HOUR));
        assert!(parse_feature(&format!("{w}window = \"7d\"\nprecision = \"5m\"")).is_ok());
        for (bad, why) in [
            (
                "window = \"7d\"\nprecision = \"4m\"",
                "makes 2520 buckets of the window 7d; at most 2016",
            ),
            (
                "window = \"1h\"\nprecision = \"2h\"",
                "precision 2h is coarser than the window 1h",
            ),
            ("precision = \"1h\"", "precision applies to a window"),
            (
                "window = \"7d\"\nprecision = \"soon\"",
                "precision: `soon` is not a duration",
            ),
        ] {
            let e = error_of(&format!("{w}{bad}"));
            assert!(e.contains(why), "{e}");
        }
        // A different precision computes different values: a different spec.
        let default = parse_feature(&format!("{w}window = \"7d\"")).expect("spec");
        assert_ne!(spec.hash(), default.hash());
    }

    const PAIRS: &str = "[entities.user]\nkey = [\"userId\", \"clientId\"]\n\
                         [entities.item]\nkey = [\"payload.itemId\"]\n";

    fn entities_error(entities: &str) -> String {
        FeatureSpec::parse(&format!(
            "{PAIRS}{entities}[[feature]]\nname = \"x\"\nentity = \"user\"\non = [\"a\"]\nagg = \"count\"\n"
        ))
        .expect_err("spec should be refused")
        .to_string()
    }

    #[test]
    fn a_composite_entity_is_keyed_by_its_parts() {
        let spec = FeatureSpec::parse(&format!(
            "{PAIRS}[entities.user_item]\nof = [\"user\", \"item\"]\n[[feature]]\n\
             name = \"progress\"\nentity = \"user_item\"\non = [\"watch\"]\nagg = \"last\"\n\
             field = \"payload.progress\"\n"
        ))
        .expect("spec");
        let pair = spec.entity("user_item").expect("entity");
        assert!(pair.is_composite() && pair.key.is_empty());
        assert_eq!(pair.part_names(), ["user", "item"]);
        assert!(pair.pairs("item", "user") && !pair.pairs("user", "user"));
        let name = |r: Result<&EntityDef, PairError>| r.map(|e| e.name.clone());
        assert_eq!(
            name(spec.pair_entity("item", "user", None)),
            Ok("user_item".into())
        );
        assert_eq!(
            name(spec.pair_entity("user", "item", Some("user_item"))),
            Ok("user_item".into())
        );
        assert_eq!(
            name(spec.pair_entity("user", "product", None)).map_err(|e| e.to_string()),
            Err("the spec has no composite entity of `user` and `product` \
                 (of = [\"user\", \"product\"]); name one as the pair entity"
                .into())
        );
        assert_eq!(
            name(spec.pair_entity("user", "item", Some("user"))).map_err(|e| e.to_string()),
            Err("`user` is not a composite entity of `user` and `item`".into())
        );
        assert_eq!(
            name(spec.pair_entity("user", "item", Some("ghost"))),
            Err(PairError::UnknownEntity("ghost".into()))
        );
        let mut e = Event {
            id: "e".into(),
            event_type: "watch".into(),
            time: 0,
            client_id: "c|1".into(),
            session_id: None,
            user_id: None,
            payload: serde_json::json!({"itemId": "50%"})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        };
        assert_eq!(pair.id_of(&e, None).as_deref(), Some("c%7C1|50%25"));
        e.user_id = Some("u".into());
        assert_eq!(pair.id_of(&e, Some("u")).as_deref(), Some("u|50%25"));
        // An event without an item has no pair.
        e.payload.clear();
        assert_eq!(pair.id_of(&e, Some("u")), None);
        assert_eq!(
            pair.compose(&[("item", "i|2"), ("user", "u")]).as_deref(),
            Some("u|i%7C2")
        );
        assert_eq!(pair.compose(&[("user", "u")]), None);
        assert_eq!(
            pair.split_id("u|i%7C2"),
            Ok(vec!["u".to_owned(), "i|2".to_owned()])
        );
        let user = spec.entity("user").expect("user");
        assert_eq!(user.split_id("u|i"), Ok(vec!["u|i".to_owned()]));
        for bad in ["u", "u|i|j", "u|", "|i", "u|i%7c", "u|i%2"] {
            let e = pair.split_id(bad).expect_err(bad);
            assert!(
                e.starts_with("a `user_item` id is the ids of user, item joined by `|`"),
                "{e}"
            );
        }
        // The pair's id is part of what the spec means.
        let other = FeatureSpec::parse(&format!(
            "{PAIRS}[entities.user_item]\nof = [\"item\", \"user\"]\n[[feature]]\n\
             name = \"progress\"\nentity = \"user_item\"\non = [\"watch\"]\nagg = \"last\"\n\
             field = \"payload.progress\"\n"
        ))
        .expect("spec");
        assert_ne!(spec.hash(), other.hash());
    }

    #[test]
    fn composite_ids_never_collide_and_split_back() {
        let cases: [&[&str]; 8] = [
            &["u", "i"],
            &["u|i", "j"],
            &["u", "i|j"],
            &["u%7Ci", "j"],
            &["%", "|"],
            &["%25", "%7C"],
            &["a", "b", "c"],
            &["a|b", "c"],
        ];
        let ids: Vec<String> = cases.iter().map(|parts| composite_id(parts)).collect();
        assert_eq!(ids[1], "u%7Ci|j");
        assert_eq!(ids[3], "u%257Ci|j");
        assert_eq!(ids[4], "%25|%7C");
        for (parts, id) in cases.iter().zip(&ids) {
            assert_eq!(
                split_composite_id(id).as_deref(),
                Some(&parts.iter().map(|p| p.to_string()).collect::<Vec<_>>()[..])
            );
        }
        let distinct: BTreeSet<&String> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len());
        for bad in ["", "a||b", "a%", "a%2", "a%41", "a%7c|b"] {
            assert_eq!(split_composite_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn composite_entities_are_checked() {
        for (entities, wanted) in [
            (
                "[entities.pair]\nof = [\"user\"]\n",
                "entity `pair`: of must list at least two entities",
            ),
            (
                "[entities.pair]\nof = [\"user\", \"user\"]\n",
                "entity `pair`: of: `user` is listed twice",
            ),
            (
                "[entities.pair]\nof = [\"user\", \"shop\"]\n",
                "entity `pair`: of: `shop` is not a simple entity of the spec (simple entities: item, user)",
            ),
            (
                "[entities.pair]\nof = [\"user\", \"item\"]\n[entities.triple]\nof = [\"pair\", \"item\"]\n",
                "entity `triple`: of: `pair` is not a simple entity of the spec",
            ),
            (
                "[entities.pair]\nof = [\"user\", \"pair\"]\n",
                "entity `pair`: of: `pair` is this entity itself",
            ),
            (
                "[entities.pair]\nkey = [\"clientId\"]\nof = [\"user\", \"item\"]\n",
                "entity `pair`: give key (the fields that name it) or of (the entities it pairs), not both",
            ),
            (
                "[entities.pair]\n",
                "entity `pair`: needs key = [field paths] or, for a composite entity, of = [entities]",
            ),
        ] {
            let e = entities_error(entities);
            assert!(e.contains(wanted), "{entities}: {e}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(90 * SECOND));
        assert_eq!(parse_duration("30m"), Ok(30 * MINUTE));
        assert_eq!(parse_duration("2w"), Ok(14 * DAY));
        for bad in ["", "d", "7", "7 d", "-7d", "7D", "1.5h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
