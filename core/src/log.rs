//! The event log: every accepted batch as the edge saw it (its valid events
//! after clock-skew correction, the verified user, the write key, the batch
//! id and the receive time), so training data and new feature versions can
//! be replayed from it with the same code that fed the online store.
//!
//! A logged batch is NDJSON, one line per event, each line carrying its
//! batch's fields too, so DuckDB or pyarrow read a log object as a flat table
//! (`read_json_auto('…/*.ndjson.gz')`). Times are RFC 3339 with milliseconds,
//! exact for the millisecond clock the edge runs on. Objects are gzipped.
//!
//! The object's key is `events/YYYY/MM/DD/HH/<batchId>.ndjson.gz`, the hour
//! being that of the batch's earliest (skew-corrected) event time: a property
//! of the batch's contents rather than of the request that carried it, so a
//! retry lands on the same key and a create-only write keeps the batch in the
//! log exactly once. Corrected times move between retries only when a
//! wrong client clock's correction crosses a half second
//! ([`crate::validate::clock_skew`]); near an hour boundary
//! ([`BOUNDARY_MARGIN`]) the writer also looks in the neighbouring hour.

use std::io::{Read, Write};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::time::{HOUR, Millis, SECOND, format_rfc3339, parse_rfc3339};
use crate::validate::{Event, ValidBatch};

/// Where log objects live in the bucket.
pub const PREFIX: &str = "events/";
/// A batch whose partition time is this close to an hour boundary may land in
/// either hour on a retry; the writer checks both.
pub const BOUNDARY_MARGIN: Millis = 60 * SECOND;
/// Most NDJSON bytes of one part of a batch ([`LoggedBatch::parts`]): a
/// Cloudflare Queues message holds 128 KB, and a part travels gzipped.
pub const MAX_PART_BYTES: usize = 120 * 1024;

/// One accepted batch, as logged.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedBatch {
    pub batch_id: String,
    /// When the edge received the request that logged it.
    pub received_at: Millis,
    pub write_key: String,
    /// The userId an identity token vouched for, if any.
    pub verified_user: Option<String>,
    /// The hash of the feature spec the receiving edge ran
    /// ([`crate::spec::FeatureSpec::hash`]); `None` in logs written before
    /// edges logged it. `freshet backfill` skips batches logged by the spec
    /// it backfills for: their live writes covered them.
    pub spec: Option<String>,
    /// The valid events, their times corrected for client clock skew.
    pub events: Vec<Event>,
}

/// One NDJSON line: an event with its batch's fields.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Line {
    batch_id: String,
    received_at: String,
    write_key: String,
    verified_user: Option<String>,
    #[serde(default)]
    spec: Option<String>,
    id: String,
    #[serde(rename = "type")]
    event_type: String,
    timestamp: String,
    client_id: String,
    session_id: Option<String>,
    user_id: Option<String>,
    payload: Map<String, Value>,
}

/// Why a log object could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogError(pub String);

impl std::fmt::Display for LogError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "event log: {}", self.0)
    }
}

impl std::error::Error for LogError {}

impl LoggedBatch {
    /// What the edge logs of a batch it accepted.
    pub fn of(
        batch: &ValidBatch,
        write_key: &str,
        verified_user: Option<&str>,
        spec_hash: &str,
    ) -> Self {
        Self {
            batch_id: batch.batch_id.clone(),
            received_at: batch.received_at,
            write_key: write_key.to_owned(),
            verified_user: verified_user.map(str::to_owned),
            spec: Some(spec_hash.to_owned()),
            events: batch.events.clone(),
        }
    }

    /// The batch as [`crate::aggregate::aggregate`] takes it.
    pub fn to_valid_batch(&self) -> ValidBatch {
        ValidBatch {
            batch_id: self.batch_id.clone(),
            received_at: self.received_at,
            skew: 0,
            write_key: Some(self.write_key.clone()),
            identity: None,
            events: self.events.clone(),
            rejected: Vec::new(),
        }
    }

    /// The time that names the batch's hour: its earliest event time.
    pub fn partition_time(&self) -> Millis {
        self.events
            .iter()
            .map(|e| e.time)
            .min()
            .unwrap_or(self.received_at)
    }

    /// The object key, and the key in the neighbouring hour a retry might
    /// have used when the partition time is near a boundary.
    pub fn object_keys(&self) -> (String, Option<String>) {
        let t = self.partition_time();
        let own = object_key(t, &self.batch_id);
        let offset = t.rem_euclid(HOUR);
        let neighbour = if offset < BOUNDARY_MARGIN {
            Some(object_key(t - HOUR, &self.batch_id))
        } else if HOUR - offset <= BOUNDARY_MARGIN {
            Some(object_key(t + HOUR, &self.batch_id))
        } else {
            None
        };
        (own, neighbour)
    }

    /// The batch as NDJSON lines.
    pub fn to_ndjson(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 * self.events.len());
        let received_at = format_rfc3339(self.received_at);
        for e in &self.events {
            self.write_line(&mut out, &received_at, e);
        }
        out
    }

    /// One event's line, with its batch's fields (`received_at` formatted),
    /// and its newline.
    fn write_line(&self, out: &mut Vec<u8>, received_at: &str, e: &Event) {
        let line = Line {
            batch_id: self.batch_id.clone(),
            received_at: received_at.to_owned(),
            write_key: self.write_key.clone(),
            verified_user: self.verified_user.clone(),
            spec: self.spec.clone(),
            id: e.id.clone(),
            event_type: e.event_type.clone(),
            timestamp: format_rfc3339(e.time),
            client_id: e.client_id.clone(),
            session_id: e.session_id.clone(),
            user_id: e.user_id.clone(),
            payload: e.payload.clone(),
        };
        // A struct of strings and JSON values always serializes.
        if serde_json::to_writer(&mut *out, &line).is_ok() {
            out.push(b'\n');
        }
    }

    /// The batch cut, in event order, into parts whose NDJSON is at most
    /// `max_bytes` each (a queue message each); the batch itself when it
    /// fits. Part k of n > 1 is the batch `<batchId>.<k>`, with markers and
    /// a log object of its own: a sent batch id has no dot
    /// (`wire::is_valid_id`), so a part's id is never a batch's. Lines are
    /// measured with their times (fixed-width) and batch fields, so the same
    /// events sent again are cut the same way and each part counts once.
    pub fn parts(&self, max_bytes: usize) -> Vec<Self> {
        // Room for the longest suffix a part's id can take on every line.
        let suffix = format!(".{}", self.events.len()).len();
        let received_at = format_rfc3339(self.received_at);
        // Where each part after the first begins, by event index.
        let mut starts = Vec::new();
        let (mut size, mut line) = (0, Vec::new());
        for (i, e) in self.events.iter().enumerate() {
            line.clear();
            self.write_line(&mut line, &received_at, e);
            let len = line.len() + suffix;
            if i > 0 && size + len > max_bytes {
                starts.push(i);
                size = 0;
            }
            size += len;
        }
        if starts.is_empty() {
            return vec![self.clone()];
        }
        let ends = starts.iter().copied().chain([self.events.len()]);
        std::iter::once(0)
            .chain(starts.iter().copied())
            .zip(ends)
            .enumerate()
            .map(|(k, (from, to))| Self {
                batch_id: format!("{}.{}", self.batch_id, k + 1),
                received_at: self.received_at,
                write_key: self.write_key.clone(),
                verified_user: self.verified_user.clone(),
                spec: self.spec.clone(),
                events: self.events[from..to].to_vec(),
            })
            .collect()
    }

    /// The gzipped object the edge writes.
    pub fn to_object(&self) -> Vec<u8> {
        gzip(&self.to_ndjson())
    }
}

/// Several batches as one gzipped object (an object rewritten by an
/// erasure holds its batch and the batch's anonymous part).
pub fn to_object(batches: &[LoggedBatch]) -> Vec<u8> {
    let ndjson: Vec<u8> = batches.iter().flat_map(LoggedBatch::to_ndjson).collect();
    gzip(&ndjson)
}

/// `events/YYYY/MM/DD/HH/<batchId>.ndjson.gz` for the hour of `t`.
pub fn object_key(t: Millis, batch_id: &str) -> String {
    format!("{}{}{batch_id}.ndjson.gz", PREFIX, hour_prefix(t))
}

/// `YYYY/MM/DD/HH/` of the hour holding `t`.
pub fn hour_prefix(t: Millis) -> String {
    let iso = format_rfc3339(t); // 2026-11-22T10:00:00.000Z
    format!(
        "{}/{}/{}/{}/",
        &iso[0..4],
        &iso[5..7],
        &iso[8..10],
        &iso[11..13]
    )
}

/// `YYYY/MM/DD/` of the day holding `t`.
pub fn day_prefix(t: Millis) -> String {
    let iso = format_rfc3339(t);
    format!("{}/{}/{}/", &iso[0..4], &iso[5..7], &iso[8..10])
}

/// Reads NDJSON lines (gzipped or not) back into batches, consecutive lines
/// of one batch id making one batch. A bad line is an error naming its line
/// number: a log that does not read must not turn into silent gaps.
pub fn parse_ndjson(bytes: &[u8]) -> Result<Vec<LoggedBatch>, LogError> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(bytes)
            .read_to_end(&mut out)
            .map_err(|e| LogError(format!("gzip: {e}")))?;
        parse_ndjson_lines(&out, 1)
    } else {
        parse_ndjson_lines(bytes, 1)
    }
}

/// Reads plain NDJSON lines whose first is line `first_line` of a longer
/// stream (an export read in pieces), so an error names the stream's line.
pub fn parse_ndjson_lines(text: &[u8], first_line: usize) -> Result<Vec<LoggedBatch>, LogError> {
    let mut batches: Vec<LoggedBatch> = Vec::new();
    for (i, raw) in text.split(|b| *b == b'\n').enumerate() {
        let n = first_line + i;
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let line: Line =
            serde_json::from_slice(raw).map_err(|e| LogError(format!("line {n}: {e}")))?;
        let time = |s: &str, what: &str| {
            parse_rfc3339(s).ok_or_else(|| LogError(format!("line {n}: bad {what} `{s}`")))
        };
        let received_at = time(&line.received_at, "receivedAt")?;
        let event = Event {
            id: line.id,
            event_type: line.event_type,
            time: time(&line.timestamp, "timestamp")?,
            client_id: line.client_id,
            session_id: line.session_id,
            user_id: line.user_id,
            payload: line.payload,
        };
        match batches.last_mut() {
            Some(b) if b.batch_id == line.batch_id && b.received_at == received_at => {
                b.events.push(event);
            }
            _ => batches.push(LoggedBatch {
                batch_id: line.batch_id,
                received_at,
                write_key: line.write_key,
                verified_user: line.verified_user,
                spec: line.spec,
                events: vec![event],
            }),
        }
    }
    Ok(batches)
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(data);
    enc.finish().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::time::parse_rfc3339;

    fn event(id: &str, t: &str) -> Event {
        Event {
            id: id.into(),
            event_type: "product_click".into(),
            time: parse_rfc3339(t).expect("time"),
            client_id: "cid-1".into(),
            session_id: Some("s-1".into()),
            user_id: None,
            payload: json!({"productId": "prod-1"})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        }
    }

    fn logged(events: Vec<Event>) -> LoggedBatch {
        LoggedBatch {
            batch_id: "b-1".into(),
            received_at: parse_rfc3339("2026-11-22T10:30:00.000Z").expect("time"),
            write_key: "dev".into(),
            verified_user: Some("u-1".into()),
            spec: Some("0123456789abcdef".into()),
            events,
        }
    }

    #[test]
    fn round_trips_through_gzipped_ndjson() {
        let b = logged(vec![
            event("e1", "2026-11-22T10:29:59.120Z"),
            event("e2", "2026-11-22T09:00:00.000Z"),
        ]);
        let object = b.to_object();
        assert_eq!(&object[..2], &[0x1f, 0x8b]);
        assert_eq!(parse_ndjson(&object), Ok(vec![b.clone()]));
        let text = String::from_utf8(b.to_ndjson()).expect("utf-8");
        assert_eq!(text.lines().count(), 2);
        assert!(text.starts_with(r#"{"batchId":"b-1","receivedAt":"2026-11-22T10:30:00.000Z","writeKey":"dev","verifiedUser":"u-1","spec":"0123456789abcdef","id":"e1","type":"product_click""#), "{text}");
        // A log written before edges logged their spec reads with none.
        let old = text.replace(r#""spec":"0123456789abcdef","#, "");
        let read = parse_ndjson(old.as_bytes()).expect("old log");
        assert_eq!(read[0].spec, None);
    }

    #[test]
    fn the_key_follows_the_earliest_event_and_looks_next_door_near_a_boundary() {
        let b = logged(vec![
            event("e1", "2026-11-22T10:29:59.120Z"),
            event("e2", "2026-11-22T09:30:00.000Z"),
        ]);
        assert_eq!(
            b.object_keys(),
            ("events/2026/11/22/09/b-1.ndjson.gz".to_owned(), None)
        );
        let early = logged(vec![event("e1", "2026-11-22T10:00:20.000Z")]);
        assert_eq!(
            early.object_keys().1.as_deref(),
            Some("events/2026/11/22/09/b-1.ndjson.gz")
        );
        let late = logged(vec![event("e1", "2026-11-22T23:59:30.000Z")]);
        assert_eq!(
            late.object_keys().1.as_deref(),
            Some("events/2026/11/23/00/b-1.ndjson.gz")
        );
    }

    #[test]
    fn a_batch_too_large_for_a_message_is_cut_into_parts_the_same_way_each_time() {
        let events: Vec<Event> = (0..300)
            .map(|i| {
                let mut e = event(&format!("e{i}"), "2026-11-22T10:00:00.000Z");
                e.payload
                    .insert("note".into(), json!("x".repeat(i % 7 * 100)));
                e
            })
            .collect();
        let b = logged(events);
        let small = logged(b.events[..20].to_vec());
        assert!(
            small.parts(MAX_PART_BYTES) == vec![small.clone()],
            "a batch that fits is one part"
        );
        let parts = b.parts(20_000);
        assert!(parts.len() > 3, "{}", parts.len());
        for (k, part) in parts.iter().enumerate() {
            assert_eq!(part.batch_id, format!("b-1.{}", k + 1));
            assert!(part.to_ndjson().len() <= 20_000);
            assert_eq!(
                (part.received_at, &part.verified_user),
                (b.received_at, &b.verified_user)
            );
        }
        let all: Vec<&Event> = parts.iter().flat_map(|p| &p.events).collect();
        assert!(
            all == b.events.iter().collect::<Vec<_>>(),
            "the parts hold the events in order"
        );
        // Sent again, later, after a different clock correction: the same cut.
        let mut again = b.clone();
        again.received_at += 3_600_123;
        for e in &mut again.events {
            e.time += 1_234;
        }
        let cut = |ps: &[LoggedBatch]| ps.iter().map(|p| p.events.len()).collect::<Vec<_>>();
        assert_eq!(cut(&again.parts(20_000)), cut(&parts));
        // A line longer than a part is a part of its own.
        let single = b.parts(100);
        assert_eq!(single.len(), 300);
    }

    #[test]
    fn a_bad_line_is_an_error_naming_it() {
        let mut text = logged(vec![event("e1", "2026-11-22T10:00:00.000Z")]).to_ndjson();
        text.extend_from_slice(b"{\"batchId\":1}\n");
        let e = parse_ndjson(&text).expect_err("bad line");
        assert!(e.0.starts_with("line 2:"), "{e}");
    }
}
