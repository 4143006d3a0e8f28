//! Replay: logged batches folded into feature documents with exactly the
//! code the edge runs ([`link::logged_deltas`]: `aggregate` and the sign-in
//! moves; [`merge_delta`], [`read_one`]), and point-in-time reads over them
//! for training data and consistency checks.
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
//! their documents are kept. The event-time view also holds their events
//! until the rows they precede are answered: all of them until the end, or,
//! given a lateness bound ([`PointInTime::lateness`]: no event arrives more
//! than that after its time, as the edge's ingest limit guarantees) and
//! batches in receive order, only those of the last bound's worth of log.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::fmt;

use crate::link::{self, is_reserved};
use crate::log::LoggedBatch;
use crate::read::{FeatureValue, ReadError, read_one, resolve_names};
use crate::spec::{FeatureDef, FeatureSpec};
use crate::state::{FeatureDoc, merge_delta};
use crate::time::Millis;
use crate::validate::Event;

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
    /// Served view, or a lateness bound: a batch older than one already fed.
    OutOfOrder {
        batch_id: String,
    },
    /// Event-time view with a lateness bound: an event that arrived later
    /// than the bound allows, after rows it precedes were answered.
    TooLate {
        batch_id: String,
        event_id: String,
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
            Self::TooLate { batch_id, event_id } => write!(
                f,
                "event `{event_id}` of batch `{batch_id}` arrived later after its time than the lateness bound: \
                 rows it precedes were already answered (raise the bound to the edge's limit)"
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
            self.apply_events(batch);
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
            self.apply_events(&LoggedBatch {
                batch_id: batch.batch_id.clone(),
                received_at: batch.received_at,
                write_key: batch.write_key.clone(),
                verified_user: batch.verified_user.clone(),
                spec: batch.spec.clone(),
                events: kept,
            });
        }
    }

    /// Whether `event` adds to an entity whose document is kept.
    fn touches_kept(&self, event: &Event, verified_user: Option<&str>) -> bool {
        let Some(keep) = &self.keep else {
            return true;
        };
        if is_reserved(event) {
            return link::target_of(event, verified_user).is_some_and(|k| keep.contains(&k));
        }
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

    fn apply_events(&mut self, batch: &LoggedBatch) {
        for delta in link::logged_deltas(self.spec, batch) {
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
    /// Event-time view: the kept entities' events not yet folded, earliest
    /// first, each as a batch of one (its batch's fields with it).
    pending: BinaryHeap<Reverse<Pending>>,
    lateness: Option<Millis>,
    /// Event-time view: the time of the latest row answered.
    answered_through: Option<Millis>,
    seq: u64,
}

/// One event waiting to be folded, ordered by its time (then arrival).
#[derive(Debug)]
struct Pending {
    time: Millis,
    seq: u64,
    batch: LoggedBatch,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        (self.time, self.seq) == (other.time, other.seq)
    }
}

impl Eq for Pending {}

impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Pending {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.time, self.seq).cmp(&(other.time, other.seq))
    }
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
            pending: BinaryHeap::new(),
            lateness: None,
            answered_through: None,
            seq: 0,
        })
    }

    /// Event-time view: no event arrives more than `bound` after its time
    /// (the edge refuses older ones), and batches come in receive order. Rows
    /// are then answered as the log goes by, and only the events of the last
    /// `bound` of it are held. An event later than that is an error, never
    /// a silently wrong row.
    #[must_use]
    pub fn lateness(mut self, bound: Millis) -> Self {
        self.lateness = Some(bound);
        self
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
                let Some(bound) = self.lateness else {
                    self.hold(batch)?;
                    return Ok(());
                };
                if self.last_received.is_some_and(|t| batch.received_at < t) {
                    return Err(ReplayError::OutOfOrder {
                        batch_id: batch.batch_id,
                    });
                }
                self.last_received = Some(batch.received_at);
                let watermark = batch.received_at.saturating_sub(bound);
                self.hold(batch)?;
                // Every event still to come is at or after the watermark.
                self.answer_events_before(watermark);
            }
        }
        Ok(())
    }

    /// Event-time view: holds the kept entities' events of `batch` (only
    /// those, so memory follows the rows' entities) until they are folded.
    fn hold(&mut self, mut batch: LoggedBatch) -> Result<(), ReplayError> {
        let events = std::mem::take(&mut batch.events);
        let user = batch.verified_user.clone();
        for event in events {
            if !self.replay.touches_kept(&event, user.as_deref()) {
                continue;
            }
            if self.answered_through.is_some_and(|t| event.time <= t) {
                return Err(ReplayError::TooLate {
                    batch_id: batch.batch_id,
                    event_id: event.id,
                });
            }
            self.seq += 1;
            self.pending.push(Reverse(Pending {
                time: event.time,
                seq: self.seq,
                batch: LoggedBatch {
                    batch_id: batch.batch_id.clone(),
                    received_at: batch.received_at,
                    write_key: batch.write_key.clone(),
                    verified_user: batch.verified_user.clone(),
                    spec: batch.spec.clone(),
                    events: vec![event],
                },
            }));
        }
        Ok(())
    }

    /// Event-time view: answers every open row whose time is before `t`,
    /// each after folding the held events at or before it.
    fn answer_events_before(&mut self, t: Millis) {
        while let Some(&row) = self.order.get(self.answered) {
            let at = self.rows[row].at;
            if at >= t {
                break;
            }
            while self.pending.peek().is_some_and(|p| p.0.time <= at) {
                if let Some(Reverse(p)) = self.pending.pop() {
                    self.replay.apply_events(&p.batch);
                }
            }
            self.answer(row);
            self.answered += 1;
            self.answered_through = Some(at);
        }
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
            // A row at T sees the events at or before T (folding is order-free).
            self.answer_events_before(Millis::MAX);
        }
        self.answer_before(Millis::MAX);
        self.answers
            .into_iter()
            .map(Option::unwrap_or_default)
            .collect()
    }
}
