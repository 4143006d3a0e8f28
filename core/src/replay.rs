//! Replay: logged batches folded into feature documents with exactly the
//! code the edge runs ([`aggregate`], [`merge_delta`], [`read_one`]), and
//! point-in-time reads over them for training data and consistency checks.
//!
//! Two views of a row at time `T`:
//! - [`AsOf::Served`] (the default): what the online store served at `T`,
//!   i.e. every batch the edge had received by `T` (`receivedAt <= T`), read
//!   as of `T` (windows and ttl at `T`). Batches must be fed in receive order;
//!   the answer for a row is taken just before the first batch received
//!   after it.
//! - [`AsOf::EventTime`]: every logged event whose (corrected) event time is
//!   at or before `T`, late arrivals included, read as of `T`.
//!
//! Memory is bounded by the entities the rows name, not by the log: only
//! their documents are kept (and, for the event-time view, only their events
//! until the end).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::aggregate::aggregate;
use crate::log::LoggedBatch;
use crate::read::{FeatureValue, ReadError, read_one, resolve_names};
use crate::spec::{FeatureDef, FeatureSpec};
use crate::state::{FeatureDoc, merge_delta};
use crate::time::Millis;
use crate::validate::{Event, ValidBatch};

/// Which view of the past a row sees; see the module's documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsOf {
    Served,
    EventTime,
}

/// One training row: the time it is read as of, and its id per entity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub at: Millis,
    pub ids: BTreeMap<String, String>,
}

/// A replay that cannot run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplayError {
    Read(ReadError),
    /// A row lacks the id of an entity one of the features needs.
    MissingId {
        row: usize,
        entity: String,
    },
    /// Served view: a batch older than one already fed.
    OutOfOrder {
        batch_id: String,
    },
}

impl fmt::Display for ReplayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Read(e) => e.fmt(f),
            Self::MissingId { row, entity } => {
                write!(f, "row {row} has no `{entity}` id")
            }
            Self::OutOfOrder { batch_id } => write!(
                f,
                "batch `{batch_id}` was received before one already replayed: feed batches in receive order"
            ),
        }
    }
}

impl std::error::Error for ReplayError {}

impl From<ReadError> for ReplayError {
    fn from(e: ReadError) -> Self {
        Self::Read(e)
    }
}

type EntityId = (String, String);

/// Documents folded from logged batches, for the entities asked about (or
/// every entity).
#[derive(Debug, Clone)]
pub struct Replay<'s> {
    spec: &'s FeatureSpec,
    keep: Option<BTreeSet<EntityId>>,
    docs: BTreeMap<EntityId, FeatureDoc>,
}

impl<'s> Replay<'s> {
    /// Keeps every entity's document.
    pub fn new(spec: &'s FeatureSpec) -> Self {
        Self {
            spec,
            keep: None,
            docs: BTreeMap::new(),
        }
    }

    /// Keeps only the documents of `entities` (entity, id).
    pub fn only(spec: &'s FeatureSpec, entities: BTreeSet<EntityId>) -> Self {
        Self {
            spec,
            keep: Some(entities),
            docs: BTreeMap::new(),
        }
    }

    /// Folds one logged batch in, as the edge folded it into the store. The
    /// log holds each batch once, so no batch marker is needed.
    pub fn apply(&mut self, batch: &LoggedBatch) {
        if self.keep.is_none() {
            self.apply_events(batch, &batch.events);
            return;
        }
        // Only the events of kept entities: the others would be folded for
        // nothing (an event adds to its own entities only).
        let user = batch.verified_user.as_deref();
        let kept: Vec<Event> = batch
            .events
            .iter()
            .filter(|e| self.touches_kept(e, user))
            .cloned()
            .collect();
        if !kept.is_empty() {
            self.apply_events(batch, &kept);
        }
    }

    /// Whether `event` adds to an entity whose document is kept.
    fn touches_kept(&self, event: &Event, verified_user: Option<&str>) -> bool {
        let Some(keep) = &self.keep else {
            return true;
        };
        let user = event
            .user_id
            .as_deref()
            .filter(|u| Some(*u) == verified_user);
        self.spec.entities().any(|entity| {
            entity
                .id_of(event, user)
                .is_some_and(|id| keep.contains(&(entity.name.clone(), id)))
        })
    }

    fn apply_events(&mut self, batch: &LoggedBatch, events: &[Event]) {
        let valid = ValidBatch {
            batch_id: batch.batch_id.clone(),
            received_at: batch.received_at,
            skew: 0,
            write_key: Some(batch.write_key.clone()),
            identity: None,
            events: events.to_vec(),
            rejected: Vec::new(),
        };
        for delta in aggregate(self.spec, &valid, batch.verified_user.as_deref()) {
            let key = (delta.entity.clone(), delta.id.clone());
            if self.keep.as_ref().is_some_and(|k| !k.contains(&key)) {
                continue;
            }
            merge_delta(self.spec, self.docs.entry(key).or_default(), &delta);
        }
    }

    /// The document of one entity; the empty document if no event touched it.
    pub fn doc(&self, entity: &str, id: &str) -> FeatureDoc {
        self.docs
            .get(&(entity.to_owned(), id.to_owned()))
            .cloned()
            .unwrap_or_default()
    }

    /// Every document folded so far, by (entity, id).
    pub fn docs(&self) -> &BTreeMap<EntityId, FeatureDoc> {
        &self.docs
    }

    fn value(&self, entity: &str, id: &str, def: &FeatureDef, at: Millis) -> FeatureValue {
        let state = self
            .docs
            .get(&(entity.to_owned(), id.to_owned()))
            .and_then(|doc| doc.features.get(def.key()));
        read_one(def, state, at)
    }
}

/// Point-in-time values for training rows, fed the log batch by batch.
#[derive(Debug)]
pub struct PointInTime<'s> {
    replay: Replay<'s>,
    as_of: AsOf,
    features: Vec<(String, &'s FeatureDef)>,
    rows: Vec<Row>,
    /// Row indexes by time, and how many have been answered.
    order: Vec<usize>,
    answered: usize,
    answers: Vec<Option<Vec<FeatureValue>>>,
    last_received: Option<Millis>,
    /// Event-time view: the kept entities' events with their batch, until the end.
    pending: Vec<(Millis, String, usize, usize)>,
    batches: Vec<LoggedBatch>,
}

impl<'s> PointInTime<'s> {
    /// `features` are `(entity, name)` pairs, `name` or `name@version`;
    /// unknown ones fail here, before any of the log is read.
    pub fn new(
        spec: &'s FeatureSpec,
        features: &[(String, String)],
        rows: Vec<Row>,
        as_of: AsOf,
    ) -> Result<Self, ReplayError> {
        let mut defs = Vec::with_capacity(features.len());
        for (entity, name) in features {
            let resolved = resolve_names(spec, entity, Some(std::slice::from_ref(name)))?;
            defs.extend(resolved.into_iter().map(|(_, def)| (entity.clone(), def)));
        }
        let mut keep = BTreeSet::new();
        for (i, row) in rows.iter().enumerate() {
            for (entity, _) in &defs {
                let id = row.ids.get(entity).ok_or_else(|| ReplayError::MissingId {
                    row: i,
                    entity: entity.clone(),
                })?;
                keep.insert((entity.clone(), id.clone()));
            }
        }
        let mut order: Vec<usize> = (0..rows.len()).collect();
        order.sort_by_key(|i| rows[*i].at);
        Ok(Self {
            replay: Replay::only(spec, keep),
            as_of,
            features: defs,
            answers: vec![None; rows.len()],
            rows,
            order,
            answered: 0,
            last_received: None,
            pending: Vec::new(),
            batches: Vec::new(),
        })
    }

    /// Feeds the next logged batch. Served view: batches in receive order.
    pub fn feed(&mut self, batch: LoggedBatch) -> Result<(), ReplayError> {
        match self.as_of {
            AsOf::Served => {
                if self.last_received.is_some_and(|t| batch.received_at < t) {
                    return Err(ReplayError::OutOfOrder {
                        batch_id: batch.batch_id,
                    });
                }
                self.last_received = Some(batch.received_at);
                // Rows before this batch's receipt see the store without it.
                self.answer_before(batch.received_at);
                self.replay.apply(&batch);
            }
            AsOf::EventTime => {
                // Only the kept entities' events are held until the end, so
                // memory follows the rows' entities, not the log's length.
                let mut batch = batch;
                let user = batch.verified_user.clone();
                let events = std::mem::take(&mut batch.events);
                batch.events = events
                    .into_iter()
                    .filter(|e| self.replay.touches_kept(e, user.as_deref()))
                    .collect();
                if batch.events.is_empty() {
                    return Ok(());
                }
                let b = self.batches.len();
                for (i, e) in batch.events.iter().enumerate() {
                    self.pending.push((e.time, e.id.clone(), b, i));
                }
                self.batches.push(batch);
            }
        }
        Ok(())
    }

    /// Answers every row still open whose time is before `t`.
    fn answer_before(&mut self, t: Millis) {
        while let Some(&row) = self.order.get(self.answered) {
            if self.rows[row].at >= t {
                break;
            }
            self.answer(row);
            self.answered += 1;
        }
    }

    fn answer(&mut self, row: usize) {
        let at = self.rows[row].at;
        let values = self
            .features
            .iter()
            .map(|(entity, def)| {
                let id = self.rows[row].ids.get(entity).map_or("", String::as_str);
                self.replay.value(entity, id, def, at)
            })
            .collect();
        self.answers[row] = Some(values);
    }

    /// The values of every row, in the rows' order, one per feature.
    pub fn finish(mut self) -> Vec<Vec<FeatureValue>> {
        if self.as_of == AsOf::EventTime {
            // Events in time order (ties by id, as aggregation breaks them);
            // a row at T sees the events at or before T.
            let mut pending = std::mem::take(&mut self.pending);
            pending.sort();
            let batches = std::mem::take(&mut self.batches);
            let mut next = 0;
            while let Some(&row) = self.order.get(self.answered) {
                let at = self.rows[row].at;
                while let Some((t, _, b, i)) = pending.get(next) {
                    if *t > at {
                        break;
                    }
                    let batch = &batches[*b];
                    self.replay
                        .apply_events(batch, std::slice::from_ref(&batch.events[*i]));
                    next += 1;
                }
                self.answer(row);
                self.answered += 1;
            }
        }
        self.answer_before(Millis::MAX);
        self.answers
            .into_iter()
            .map(Option::unwrap_or_default)
            .collect()
    }
}
