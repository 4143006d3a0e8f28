//! Training data, consistency checks and backfill, free of Python: the event
//! log read piece by piece (whole objects, or an export streamed in chunks
//! that cut lines anywhere), fed to `freshet-core`'s point-in-time replay or
//! regrouped into whole batches. The binding (`replay.rs`) only moves bytes in
//! and values out.

use std::collections::BTreeSet;
use std::fmt;
use std::io::Read;

use freshet_core::link;
use freshet_core::log::{LoggedBatch, parse_ndjson, parse_ndjson_lines};
use freshet_core::read::{FeatureValue, ReadError, resolve_names};
use freshet_core::replay::{AsOf, PointInTime, ReplayError, Row};
use freshet_core::spec::FeatureSpec;
use freshet_core::time::Millis;

/// Why training data could not be made; the binding maps each to one
/// Python exception.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HistoryError {
    /// An entity or feature the spec does not know, found before any I/O.
    Unknown(ReadError),
    /// A row lacks an id the features need.
    MissingId { row: usize, entity: String },
    /// A log source that does not read: which one, and where in it.
    Log { source: String, detail: String },
}

impl fmt::Display for HistoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unknown(e) => write!(f, "{e}"),
            Self::MissingId { row, entity } => write!(f, "row {row} has no `{entity}` id"),
            Self::Log { source, detail } => write!(f, "{source}: {detail}"),
        }
    }
}

impl std::error::Error for HistoryError {}

fn log_error(source: &str, detail: impl fmt::Display) -> HistoryError {
    HistoryError::Log {
        source: source.to_owned(),
        detail: detail.to_string(),
    }
}

/// Turns pieces of the log into batches. A piece is a whole object (gzipped
/// or not), or, with `more`, a chunk of a plain NDJSON stream whose last
/// line may go on in the next chunk of the same source; line numbers in
/// errors count from the start of the source.
#[derive(Debug, Default)]
pub struct LogPieces {
    source: String,
    /// Lines of `source` already parsed.
    lines: usize,
    /// The unfinished last line of a streamed source.
    partial: Vec<u8>,
}

impl LogPieces {
    pub fn new() -> Self {
        Self::default()
    }

    /// The batches in `data`, the next piece of `source`.
    pub fn batches(
        &mut self,
        source: &str,
        data: &[u8],
        more: bool,
    ) -> Result<Vec<LoggedBatch>, HistoryError> {
        if source != self.source {
            self.end()?;
            source.clone_into(&mut self.source);
            self.lines = 0;
        }
        if self.lines == 0 && self.partial.is_empty() && data.starts_with(&[0x1f, 0x8b]) {
            if more {
                return Err(log_error(
                    source,
                    "a gzipped object is read whole, not in pieces",
                ));
            }
            return parse_ndjson(data).map_err(|e| log_error(source, e.0));
        }
        let mut text = std::mem::take(&mut self.partial);
        text.extend_from_slice(data);
        if more {
            let cut = text.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
            self.partial = text.split_off(cut);
        }
        let first = self.lines + 1;
        self.lines += text.iter().filter(|b| **b == b'\n').count();
        parse_ndjson_lines(&text, first).map_err(|e| log_error(source, e.0))
    }

    /// Checks that the last source did not stop in the middle of a line.
    pub fn end(&mut self) -> Result<(), HistoryError> {
        if self.partial.iter().all(u8::is_ascii_whitespace) {
            self.partial.clear();
            return Ok(());
        }
        Err(log_error(
            &self.source,
            format!("line {} is cut off: the log ends mid-line", self.lines + 1),
        ))
    }
}

/// One set of training rows: the `(entity, name)` features every row gets,
/// and the rows.
#[derive(Debug, Clone)]
pub struct Query {
    pub features: Vec<(String, String)>,
    pub rows: Vec<Row>,
}

/// The spec with only the features the queries read: the replay then
/// aggregates and keeps those alone. Unknown names fail here, before I/O.
pub fn needed_spec(spec: &FeatureSpec, queries: &[Query]) -> Result<FeatureSpec, HistoryError> {
    let mut keys = BTreeSet::new();
    for (entity, name) in queries.iter().flat_map(|q| &q.features) {
        for (_, def) in resolve_names(spec, entity, Some(std::slice::from_ref(name)))
            .map_err(HistoryError::Unknown)?
        {
            keys.insert(def.key().to_owned());
        }
    }
    Ok(spec.retain(|f| keys.contains(f.key())))
}

/// Point-in-time replays of several queries over one pass of the log.
#[derive(Debug)]
pub struct Replays<'s> {
    pits: Vec<PointInTime<'s>>,
    pieces: LogPieces,
    batches: u64,
    events: u64,
}

impl<'s> Replays<'s> {
    /// Checks every feature name and row id before any of the log is read.
    /// `lateness`: see [`PointInTime::lateness`] (the event-time view).
    pub fn new(
        spec: &'s FeatureSpec,
        queries: Vec<Query>,
        as_of: AsOf,
        lateness: Option<Millis>,
    ) -> Result<Self, HistoryError> {
        let pits = queries
            .into_iter()
            .map(|q| {
                let pit =
                    PointInTime::new(spec, &q.features, q.rows, as_of).map_err(|e| match e {
                        ReplayError::Read(e) => HistoryError::Unknown(e),
                        ReplayError::MissingId { row, entity } => {
                            HistoryError::MissingId { row, entity }
                        }
                        ReplayError::OutOfOrder { .. } | ReplayError::TooLate { .. } => {
                            log_error("replay", e)
                        }
                    })?;
                Ok(match lateness {
                    Some(bound) => pit.lateness(bound),
                    None => pit,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            pits,
            pieces: LogPieces::new(),
            batches: 0,
            events: 0,
        })
    }

    /// Feeds the next piece of the log (see [`LogPieces::batches`]).
    pub fn feed(&mut self, source: &str, data: &[u8], more: bool) -> Result<(), HistoryError> {
        for batch in self.pieces.batches(source, data, more)? {
            self.batches += 1;
            self.events += batch.events.len() as u64;
            let Some((last, rest)) = self.pits.split_last_mut() else {
                continue;
            };
            for pit in rest {
                pit.feed(batch.clone()).map_err(|e| log_error(source, e))?;
            }
            last.feed(batch).map_err(|e| log_error(source, e))?;
        }
        Ok(())
    }

    /// Batches and events read so far (a batch cut across pieces counts per piece).
    pub fn counts(&self) -> (u64, u64) {
        (self.batches, self.events)
    }

    /// Each query's rows, one value per feature.
    pub fn finish(mut self) -> Result<Vec<Vec<Vec<FeatureValue>>>, HistoryError> {
        self.pieces.end()?;
        Ok(self.pits.into_iter().map(PointInTime::finish).collect())
    }
}

/// The `(entity, id)` of everything the log's features were computed for,
/// as the edge keyed them (`aggregate`'s deltas).
#[derive(Debug, Default)]
pub struct LogEntities {
    pieces: LogPieces,
    pub seen: BTreeSet<(String, String)>,
}

impl LogEntities {
    pub fn feed(
        &mut self,
        spec: &FeatureSpec,
        source: &str,
        data: &[u8],
        more: bool,
    ) -> Result<(), HistoryError> {
        for batch in self.pieces.batches(source, data, more)? {
            for delta in link::logged_deltas(spec, &batch) {
                self.seen.insert((delta.entity, delta.id));
            }
        }
        Ok(())
    }

    pub fn finish(mut self) -> Result<BTreeSet<(String, String)>, HistoryError> {
        self.pieces.end()?;
        Ok(self.seen)
    }
}

/// The log's batches whole, as NDJSON, for the edge's `POST /v1/backfill`:
/// the lines of a batch cut across pieces come out together, since a batch
/// sent in two requests would have its second half found applied.
#[derive(Debug, Default)]
pub struct WholeBatches {
    pieces: LogPieces,
    /// The batch id of `pending`.
    pending_id: Option<String>,
    /// The lines read so far of the last batch id.
    pending: Vec<u8>,
}

impl WholeBatches {
    /// Feeds the next piece of the log (see [`LogPieces::batches`]); returns
    /// the batches it completed.
    pub fn feed(
        &mut self,
        source: &str,
        data: &[u8],
        more: bool,
    ) -> Result<Vec<Vec<u8>>, HistoryError> {
        let mut done = Vec::new();
        for batch in self.pieces.batches(source, data, more)? {
            if self.pending_id.as_deref() != Some(batch.batch_id.as_str()) {
                done.extend(self.take());
                self.pending_id = Some(batch.batch_id.clone());
            }
            self.pending.extend(batch.to_ndjson());
        }
        Ok(done)
    }

    /// The last batch, once the log is read to its end.
    pub fn finish(&mut self) -> Result<Option<Vec<u8>>, HistoryError> {
        self.pieces.end()?;
        Ok(self.take())
    }

    fn take(&mut self) -> Option<Vec<u8>> {
        self.pending_id.take()?;
        Some(std::mem::take(&mut self.pending))
    }
}

/// The receive time of a log object from its first bytes (the whole object
/// or a prefix of it, gzipped or not), to order objects before reading them.
/// `None` for an object without events; an error when the first line is
/// cut off or does not read.
pub fn first_received_at(source: &str, head: &[u8]) -> Result<Option<Millis>, HistoryError> {
    let mut text = Vec::new();
    if head.starts_with(&[0x1f, 0x8b]) {
        // A prefix of a gzip stream inflates up to where it is cut.
        let mut decoder = flate2::read::MultiGzDecoder::new(head);
        let mut buf = [0u8; 8192];
        loop {
            match decoder.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    text.extend_from_slice(&buf[..n]);
                    if buf[..n].contains(&b'\n') {
                        break;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
                Err(e) => return Err(log_error(source, format!("gzip: {e}"))),
            }
        }
    } else {
        text.extend_from_slice(head);
    }
    let Some(first) = text
        .split(|b| *b == b'\n')
        .find(|l| !l.iter().all(u8::is_ascii_whitespace))
    else {
        return Ok(None);
    };
    let batches = parse_ndjson_lines(first, 1).map_err(|e| log_error(source, e.0))?;
    Ok(batches.first().map(|b| b.received_at))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use freshet_core::log::LoggedBatch;
    use freshet_core::time::parse_rfc3339;
    use freshet_core::validate::Event;
    use serde_json::json;

    use super::*;

    fn spec() -> FeatureSpec {
        FeatureSpec::parse(include_str!("../../features.toml")).expect("example spec")
    }

    fn batch(id: &str, received: &str, clicks: &[(&str, &str, &str)]) -> LoggedBatch {
        LoggedBatch {
            batch_id: id.into(),
            received_at: parse_rfc3339(received).expect("time"),
            write_key: "dev".into(),
            verified_user: None,
            spec: None,
            events: clicks
                .iter()
                .enumerate()
                .map(|(i, (client, product, t))| Event {
                    id: format!("{id}-{i}"),
                    event_type: "product_click".into(),
                    time: parse_rfc3339(t).expect("time"),
                    client_id: (*client).into(),
                    session_id: None,
                    user_id: None,
                    payload: json!({"productId": product})
                        .as_object()
                        .cloned()
                        .unwrap_or_default(),
                })
                .collect(),
        }
    }

    fn log() -> Vec<u8> {
        let mut out = batch(
            "b1",
            "2026-11-22T10:00:00.000Z",
            &[
                ("cid-1", "p-1", "2026-11-22T09:59:59.000Z"),
                ("cid-2", "p-1", "2026-11-22T09:59:59.500Z"),
            ],
        )
        .to_ndjson();
        out.extend(
            batch(
                "b2",
                "2026-11-22T11:00:00.000Z",
                &[("cid-1", "p-2", "2026-11-22T10:59:00.000Z")],
            )
            .to_ndjson(),
        );
        out
    }

    fn rows(at: &[&str]) -> Vec<Row> {
        at.iter()
            .map(|t| Row {
                at: parse_rfc3339(t).expect("time"),
                ids: BTreeMap::from([("user".to_owned(), "cid-1".to_owned())]),
            })
            .collect()
    }

    fn clicks(values: &[Vec<FeatureValue>]) -> Vec<serde_json::Value> {
        values.iter().map(|r| r[0].value.clone()).collect()
    }

    #[test]
    fn a_stream_cut_anywhere_replays_as_a_whole() {
        let spec = spec();
        let features = vec![("user".to_owned(), "clicks_product_card".to_owned())];
        let at = [
            "2026-11-22T09:00:00.000Z",
            "2026-11-22T10:00:00.000Z",
            "2026-11-22T12:00:00.000Z",
        ];
        let text = log();
        let mut whole = Replays::new(
            &spec,
            vec![Query {
                features: features.clone(),
                rows: rows(&at),
            }],
            AsOf::Served,
            None,
        )
        .expect("replay");
        whole.feed("whole", &text, false).expect("feed");
        let whole = whole.finish().expect("finish");
        assert_eq!(clicks(&whole[0]), vec![json!(0), json!(1), json!(2)]);
        for step in [1, 7, 100] {
            let mut cut = Replays::new(
                &spec,
                vec![Query {
                    features: features.clone(),
                    rows: rows(&at),
                }],
                AsOf::Served,
                None,
            )
            .expect("replay");
            for chunk in text.chunks(step) {
                cut.feed("stream", chunk, true).expect("feed");
            }
            assert_eq!(cut.finish().expect("finish"), whole, "chunks of {step}");
        }
    }

    #[test]
    fn the_needed_spec_gives_the_whole_spec_s_values() {
        let spec = spec();
        let names = [
            "clicks_product_card_7d",
            "pageviews@1",
            "last_interacted_product",
            "recent_products",
        ];
        let features: Vec<(String, String)> = names
            .iter()
            .map(|n| ("user".to_owned(), (*n).to_owned()))
            .collect();
        let at = ["2026-11-22T10:00:00.000Z", "2026-11-22T12:00:00.000Z"];
        let query = || {
            vec![Query {
                features: features.clone(),
                rows: rows(&at),
            }]
        };
        let needed = needed_spec(&spec, &query()).expect("known");
        assert_eq!(needed.features().len(), 4);
        let run = |spec: &FeatureSpec, view| {
            let mut r = Replays::new(spec, query(), view, None).expect("replay");
            r.feed("log", &log(), false).expect("feed");
            r.finish().expect("finish")
        };
        for view in [AsOf::Served, AsOf::EventTime] {
            assert_eq!(run(&needed, view), run(&spec, view));
        }
        let unknown = vec![Query {
            features: vec![("user".into(), "nope".into())],
            rows: rows(&at),
        }];
        assert!(matches!(
            needed_spec(&spec, &unknown),
            Err(HistoryError::Unknown(_))
        ));
    }

    #[test]
    fn a_bad_line_names_its_source_and_line_across_chunks() {
        let spec = spec();
        let mut text = log();
        text.extend_from_slice(b"{\"batchId\":1}\n");
        let mut r = Replays::new(&spec, vec![], AsOf::Served, None).expect("replay");
        let err = text
            .chunks(10)
            .try_for_each(|c| r.feed("http://edge/v1/events", c, true))
            .expect_err("bad line");
        assert!(
            err.to_string()
                .starts_with("http://edge/v1/events: line 4: "),
            "{err}"
        );
    }

    #[test]
    fn a_stream_that_stops_mid_line_is_an_error() {
        let spec = spec();
        let text = log();
        let mut r = Replays::new(&spec, vec![], AsOf::Served, None).expect("replay");
        r.feed("s", &text[..text.len() - 5], true).expect("feed");
        let err = r.finish().expect_err("cut off");
        assert_eq!(
            err.to_string(),
            "s: line 3 is cut off: the log ends mid-line"
        );
    }

    #[test]
    fn unknown_features_and_missing_ids_fail_before_the_log() {
        let spec = spec();
        let q = |f: &str, entity: &str| Query {
            features: vec![(entity.to_owned(), f.to_owned())],
            rows: rows(&["2026-11-22T09:00:00.000Z"]),
        };
        let err =
            Replays::new(&spec, vec![q("nope", "user")], AsOf::Served, None).expect_err("unknown");
        assert!(matches!(err, HistoryError::Unknown(_)), "{err}");
        let err = Replays::new(
            &spec,
            vec![q("popularity_7d", "product")],
            AsOf::Served,
            None,
        )
        .expect_err("no id");
        assert_eq!(err.to_string(), "row 0 has no `product` id");
    }

    #[test]
    fn the_first_receive_time_reads_from_a_prefix() {
        let b = batch(
            "b1",
            "2026-11-22T10:00:00.000Z",
            &[("cid-1", "p-1", "2026-11-22T09:59:59.000Z")],
        );
        let object = b.to_object();
        let want = Some(b.received_at);
        assert_eq!(first_received_at("o", &object), Ok(want));
        assert_eq!(
            first_received_at("o", &object[..object.len() - 8]),
            Ok(want)
        );
        assert_eq!(first_received_at("o", &b.to_ndjson()), Ok(want));
        assert_eq!(first_received_at("o", b""), Ok(None));
        assert!(first_received_at("o", b"{\"batchId\":").is_err());
    }

    #[test]
    fn batches_come_out_whole_however_the_log_is_cut() {
        let text = log();
        let whole = |chunks: &[&[u8]], more: bool| {
            let mut batches = WholeBatches::default();
            let mut out = Vec::new();
            for chunk in chunks {
                out.extend(batches.feed("s", chunk, more).expect("feed"));
            }
            out.extend(batches.finish().expect("finish"));
            out
        };
        let b1 = batch(
            "b1",
            "2026-11-22T10:00:00.000Z",
            &[
                ("cid-1", "p-1", "2026-11-22T09:59:59.000Z"),
                ("cid-2", "p-1", "2026-11-22T09:59:59.500Z"),
            ],
        )
        .to_ndjson();
        let want = vec![b1.clone(), text[b1.len()..].to_vec()];
        assert_eq!(whole(&[&text], false), want);
        // One byte a piece cuts between the lines of `b1` too.
        for step in [1, 7, 100] {
            let chunks: Vec<&[u8]> = text.chunks(step).collect();
            assert_eq!(whole(&chunks, true), want, "chunks of {step}");
        }
        let batches = parse_ndjson(&text).expect("log");
        assert_eq!(
            whole(&[&batches[0].to_object(), &batches[1].to_object()], false),
            want
        );
        assert_eq!(whole(&[], true), Vec::<Vec<u8>>::new());
    }

    #[test]
    fn entities_are_those_the_edge_keyed() {
        let spec = spec();
        let mut seen = LogEntities::default();
        seen.feed(&spec, "s", &log(), false).expect("feed");
        let seen = seen.finish().expect("finish");
        let want: BTreeSet<(String, String)> = [
            ("user", "cid-1"),
            ("user", "cid-2"),
            ("product", "p-1"),
            ("product", "p-2"),
            // Each (user, product) a click joined: composite ids.
            ("user_product", "cid-1|p-1"),
            ("user_product", "cid-1|p-2"),
            ("user_product", "cid-2|p-1"),
        ]
        .iter()
        .map(|(e, i)| ((*e).to_owned(), (*i).to_owned()))
        .collect();
        assert_eq!(seen, want);
    }
}
