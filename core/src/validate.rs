//! From a batch's JSON text to validated events: the whole-batch checks, then
//! each event on its own, so one bad event never costs the good ones.

use std::borrow::Cow;
use std::collections::HashSet;

use serde::Deserialize;

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::decode::decode_body;
use crate::error::{BatchError, EventError};
use crate::ids::{derive_batch_id, derive_event_id};
use crate::limits::Limits;
use crate::time::{Millis, SECOND, parse_rfc3339};
use crate::wire::{WireBatch, is_valid_event_type, is_valid_id};

/// Longest `clientId`, `sessionId` or `userId`, in bytes.
pub const MAX_IDENTIFIER_BYTES: usize = 128;

/// A batch that passed the whole-batch checks, with its events sorted into
/// the valid and the refused.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidBatch {
    /// The sent `batchId`, or one derived from the body's hash.
    pub batch_id: String,
    /// When the edge received it, by the edge's clock.
    pub received_at: Millis,
    /// The client's clock error, added to every event time: `receivedAt -
    /// sentAt` as [`clock_skew`] takes it.
    pub skew: Millis,
    pub write_key: Option<String>,
    pub identity: Option<String>,
    pub events: Vec<Event>,
    pub rejected: Vec<Rejection>,
}

impl ValidBatch {
    /// The position in the sent batch of `events[event]`: valid events keep
    /// their order around the rejected ones.
    pub fn body_index(&self, event: usize) -> usize {
        let mut index = event;
        for r in &self.rejected {
            if r.index > index {
                break;
            }
            index += 1;
        }
        index
    }
}

/// One valid event, its time corrected for client clock skew.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: String,
    pub event_type: String,
    pub time: Millis,
    pub client_id: String,
    pub session_id: Option<String>,
    /// As sent; honoured only when an identity token vouches for it.
    pub user_id: Option<String>,
    pub payload: Map<String, Value>,
}

/// A refused event: its position in the batch and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub index: usize,
    pub error: EventError,
}

/// Decodes (gunzips if needed) and validates a received body.
pub fn receive(raw: &[u8], received_at: Millis, limits: &Limits) -> Result<ValidBatch, BatchError> {
    let json = decode_body(raw, limits)?;
    validate_batch(&json, received_at, limits)
}

/// Validates a batch's JSON text.
pub fn validate_batch(
    json: &[u8],
    received_at: Millis,
    limits: &Limits,
) -> Result<ValidBatch, BatchError> {
    if json.len() > limits.max_body_bytes {
        return Err(BatchError::BodyTooLarge {
            limit: limits.max_body_bytes,
        });
    }
    let wire: WireBatch<&RawValue> =
        serde_json::from_slice(json).map_err(|e| BatchError::MalformedJson {
            detail: e.to_string(),
        })?;
    if wire.events.is_empty() {
        return Err(BatchError::EmptyBatch);
    }
    if wire.events.len() > limits.max_events {
        return Err(BatchError::TooManyEvents {
            count: wire.events.len(),
            limit: limits.max_events,
        });
    }
    let batch_id = match wire.batch_id {
        Some(id) if is_valid_id(&id) => id,
        Some(_) => return Err(BatchError::BadBatchId),
        None => derive_batch_id(json),
    };
    let skew = match wire.sent_at.as_deref() {
        Some(sent) => clock_skew(received_at - parse_rfc3339(sent).ok_or(BatchError::BadSentAt)?),
        None => 0,
    };

    let mut events = Vec::with_capacity(wire.events.len());
    let mut rejected = Vec::new();
    let mut seen = HashSet::with_capacity(wire.events.len());
    for (index, raw) in wire.events.iter().enumerate() {
        let checked = validate_event(raw, index, received_at, skew, limits).and_then(|event| {
            if seen.insert(event.id.clone()) {
                Ok(event)
            } else {
                Err(EventError::DuplicateId)
            }
        });
        match checked {
            Ok(event) => events.push(event),
            Err(error) => rejected.push(Rejection { index, error }),
        }
    }
    Ok(ValidBatch {
        batch_id,
        received_at,
        skew,
        write_key: wire.write_key,
        identity: wire.identity,
        events,
        rejected,
    })
}

/// The fields of an event, borrowed from the body where no escape forces a
/// copy. Unknown fields are ignored (newer trackers may send more).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EventFields<'a> {
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "type")]
    event_type: Cow<'a, str>,
    #[serde(borrow)]
    timestamp: Cow<'a, str>,
    #[serde(borrow)]
    client_id: Cow<'a, str>,
    #[serde(borrow, default)]
    session_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    user_id: Option<Cow<'a, str>>,
    #[serde(default)]
    payload: Value,
}

/// Below this, `receivedAt - sentAt` is the request's time in flight, not a
/// wrong clock: no correction.
pub const SKEW_TOLERANCE: Millis = 5 * SECOND;

/// The correction for a client clock from `receivedAt - sentAt`: none within
/// [`SKEW_TOLERANCE`], else that difference to the whole second. What a
/// request spent in flight differs from one attempt of a batch to the next,
/// and the store and the event log may each keep a different attempt (the
/// store's write failed in the first, say, and the log's in the second): a
/// correction that followed it to the millisecond would give the two
/// different event times for the same event, and the log would no longer
/// replay to what was served. A clock within 5 s is trusted as it is; a
/// wrong one is corrected to the second, which a retry's jitter changes
/// only when it crosses a half second.
pub fn clock_skew(received_minus_sent: Millis) -> Millis {
    if received_minus_sent.abs() < SKEW_TOLERANCE {
        0
    } else {
        (received_minus_sent as f64 / SECOND as f64).round() as Millis * SECOND
    }
}

fn validate_event(
    raw: &RawValue,
    index: usize,
    received_at: Millis,
    skew: Millis,
    limits: &Limits,
) -> Result<Event, EventError> {
    let text = raw.get();
    if text.len() > limits.max_event_bytes {
        return Err(EventError::TooLarge {
            limit: limits.max_event_bytes,
        });
    }
    // The typed parse is the fast path; when it fails, the field-by-field
    // one says which field is wrong.
    let fields: EventFields<'_> = match serde_json::from_str(text) {
        Ok(fields) => fields,
        Err(e) => return Err(explain_malformed(text, &e)),
    };
    if !is_valid_event_type(&fields.event_type) {
        return Err(EventError::BadType);
    }
    let id = match fields.id {
        Some(id) if is_valid_id(&id) => id.into_owned(),
        Some(_) => return Err(EventError::BadId),
        None => derive_event_id(text.as_bytes(), index),
    };
    check_identifier(&fields.client_id, "clientId")?;
    if let Some(s) = &fields.session_id {
        check_identifier(s, "sessionId")?;
    }
    if let Some(u) = &fields.user_id {
        check_identifier(u, "userId")?;
    }
    let sent_time = parse_rfc3339(&fields.timestamp).ok_or(EventError::BadTimestamp)?;
    let time = sent_time.saturating_add(skew);
    if time > received_at.saturating_add(limits.max_future) {
        return Err(EventError::TooFarAhead);
    }
    if time < received_at.saturating_sub(limits.max_past) {
        return Err(EventError::TooOld);
    }
    let payload = match fields.payload {
        Value::Null => Map::new(),
        Value::Object(map) => map,
        _ => return Err(EventError::PayloadNotObject),
    };
    if object_depth(&payload) > limits.max_payload_depth {
        return Err(EventError::PayloadTooDeep {
            limit: limits.max_payload_depth,
        });
    }
    Ok(Event {
        id,
        event_type: fields.event_type.into_owned(),
        time,
        client_id: fields.client_id.into_owned(),
        session_id: fields.session_id.map(Cow::into_owned),
        user_id: fields.user_id.map(Cow::into_owned),
        payload,
    })
}

/// Why an event that failed the typed parse is malformed, naming the field.
fn explain_malformed(text: &str, typed: &serde_json::Error) -> EventError {
    let mut fields: Map<String, Value> = match serde_json::from_str(text) {
        Ok(Value::Object(map)) => map,
        Ok(_) => return malformed("an event must be an object"),
        Err(e) => return malformed(&e.to_string()),
    };
    for name in ["type", "timestamp", "clientId"] {
        if let Err(e) = required_string(&mut fields, name) {
            return e;
        }
    }
    for name in ["id", "sessionId", "userId"] {
        if let Err(e) = optional_string(&mut fields, name) {
            return e;
        }
    }
    match fields.get("payload") {
        Some(Value::Object(_) | Value::Null) | None => malformed(&typed.to_string()),
        Some(_) => EventError::PayloadNotObject,
    }
}

fn malformed(detail: &str) -> EventError {
    EventError::Malformed {
        detail: detail.to_owned(),
    }
}

fn required_string(fields: &mut Map<String, Value>, name: &str) -> Result<String, EventError> {
    optional_string(fields, name)?.ok_or_else(|| malformed(&format!("{name} is required")))
}

fn optional_string(
    fields: &mut Map<String, Value>,
    name: &str,
) -> Result<Option<String>, EventError> {
    match fields.remove(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(malformed(&format!("{name} must be a string"))),
    }
}

fn check_identifier(value: &str, field: &'static str) -> Result<(), EventError> {
    if value.is_empty() || value.len() > MAX_IDENTIFIER_BYTES {
        return Err(EventError::BadIdentifier { field });
    }
    Ok(())
}

/// Nesting depth of an object: `{}` is 1, `{"a":{}}` and `{"a":[]}` are 2.
/// Iterative, so a deep payload cannot exhaust the stack.
pub fn object_depth(map: &Map<String, Value>) -> usize {
    let mut deepest = 1;
    let mut stack: Vec<(&Value, usize)> = map.values().map(|v| (v, 2)).collect();
    while let Some((value, depth)) = stack.pop() {
        match value {
            Value::Object(m) => {
                deepest = deepest.max(depth);
                stack.extend(m.values().map(|v| (v, depth + 1)));
            }
            Value::Array(items) => {
                deepest = deepest.max(depth);
                stack.extend(items.iter().map(|v| (v, depth + 1)));
            }
            _ => {}
        }
    }
    deepest
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::time::{DAY, HOUR};

    const NOW: Millis = 1_795_341_600_000; // 2026-11-22T10:00:00Z

    fn event(extra: Value) -> Value {
        let mut e = json!({
            "type": "product_click",
            "timestamp": "2026-11-22T09:59:58.120Z",
            "clientId": "cid-1",
            "payload": {"productId": "prod-1"}
        });
        if let (Value::Object(base), Value::Object(extra)) = (&mut e, extra) {
            base.extend(extra);
        }
        e
    }

    fn batch(events: Vec<Value>) -> Vec<u8> {
        serde_json::to_vec(&json!({ "events": events })).expect("serialize")
    }

    fn validate(body: &[u8]) -> Result<ValidBatch, BatchError> {
        validate_batch(body, NOW, &Limits::default())
    }

    fn only_rejection(extra: Value) -> EventError {
        let b = validate(&batch(vec![event(extra)])).expect("batch is valid");
        assert!(
            b.events.is_empty(),
            "expected a rejection, got {:?}",
            b.events
        );
        b.rejected.into_iter().next().expect("one rejection").error
    }

    #[test]
    fn seed_shape_gets_derived_stable_ids() {
        let body = batch(vec![event(json!({})), event(json!({}))]);
        let a = validate(&body).expect("valid");
        let b = validate(&body).expect("valid");
        assert_eq!(a.batch_id, b.batch_id);
        assert_eq!(a.events.len(), 2);
        assert_ne!(
            a.events[0].id, a.events[1].id,
            "identical events stay two events"
        );
        assert_eq!(a.events[0].id, b.events[0].id);
        assert_eq!(a.events[0].time, NOW - 1_880);
    }

    #[test]
    fn sent_at_corrects_client_clock_skew() {
        // The client's clock is one hour behind: it says it sent at 09:00.
        let body = serde_json::to_vec(&json!({
            "batchId": "b1", "sentAt": "2026-11-22T09:00:00.000Z",
            "events": [event(json!({"timestamp": "2026-11-22T08:59:58.120Z"}))]
        }))
        .expect("serialize");
        let b = validate(&body).expect("valid");
        assert_eq!(b.skew, HOUR);
        assert_eq!(b.events[0].time, NOW - 1_880);
        // Time in flight is no clock error; a wrong clock is corrected to the
        // second, the same for two attempts a few milliseconds apart.
        assert_eq!(clock_skew(120), 0);
        assert_eq!(clock_skew(-4_999), 0);
        assert_eq!(clock_skew(HOUR + 37), HOUR);
        assert_eq!(clock_skew(HOUR + 12), HOUR);
        assert_eq!(clock_skew(-7_400), -7_000);
        let bad = serde_json::to_vec(&json!({"sentAt": "yesterday", "events": [event(json!({}))]}))
            .expect("serialize");
        assert_eq!(validate(&bad), Err(BatchError::BadSentAt));
    }

    #[test]
    fn one_bad_event_costs_only_itself() {
        let body = batch(vec![
            event(json!({})),
            event(json!({"type": "Bad-Type"})),
            event(json!({"timestamp": "not a time"})),
            json!("not an object"),
            event(json!({"clientId": 7})),
            event(json!({})),
        ]);
        let b = validate(&body).expect("valid");
        assert_eq!(b.events.len(), 2);
        let codes: Vec<_> = b
            .rejected
            .iter()
            .map(|r| (r.index, r.error.code()))
            .collect();
        assert_eq!(
            codes,
            [
                (1, "bad_type"),
                (2, "bad_timestamp"),
                (3, "malformed_event"),
                (4, "malformed_event")
            ]
        );
    }

    #[test]
    fn whole_batch_errors() {
        assert!(matches!(
            validate(b"{\"events\":["),
            Err(BatchError::MalformedJson { .. })
        ));
        assert!(matches!(
            validate(b"not json"),
            Err(BatchError::MalformedJson { .. })
        ));
        assert!(matches!(
            validate(b"{\"events\":{}}"),
            Err(BatchError::MalformedJson { .. })
        ));
        assert!(matches!(
            validate(b"{}"),
            Err(BatchError::MalformedJson { .. })
        ));
        assert_eq!(validate(b"{\"events\":[]}"), Err(BatchError::EmptyBatch));
        let bad_id = serde_json::to_vec(&json!({"batchId": "a b", "events": [event(json!({}))]}))
            .expect("serialize");
        assert_eq!(validate(&bad_id), Err(BatchError::BadBatchId));
    }

    #[test]
    fn event_count_limit_at_and_over() {
        let at = batch(vec![event(json!({})); 500]);
        assert_eq!(validate(&at).expect("valid").events.len(), 500);
        let over = batch(vec![event(json!({})); 501]);
        assert_eq!(
            validate(&over),
            Err(BatchError::TooManyEvents {
                count: 501,
                limit: 500
            })
        );
    }

    #[test]
    fn body_limit_at_and_over() {
        let body = batch(vec![event(json!({}))]);
        let limits = Limits {
            max_body_bytes: body.len(),
            ..Limits::default()
        };
        assert!(validate_batch(&body, NOW, &limits).is_ok());
        let limits = Limits {
            max_body_bytes: body.len() - 1,
            ..Limits::default()
        };
        assert_eq!(
            validate_batch(&body, NOW, &limits),
            Err(BatchError::BodyTooLarge {
                limit: body.len() - 1
            })
        );
    }

    #[test]
    fn event_size_limit_at_and_over() {
        let base = serde_json::to_string(&event(json!({"payload": {"s": ""}}))).expect("ser");
        let pad = 32 * 1024 - base.len();
        let at = event(json!({"payload": {"s": "x".repeat(pad)}}));
        assert_eq!(serde_json::to_string(&at).expect("ser").len(), 32 * 1024);
        assert_eq!(validate(&batch(vec![at])).expect("valid").events.len(), 1);
        let over = event(json!({"payload": {"s": "x".repeat(pad + 1)}}));
        assert_eq!(
            only_rejection_of(over),
            EventError::TooLarge { limit: 32 * 1024 }
        );
    }

    fn only_rejection_of(e: Value) -> EventError {
        let b = validate(&batch(vec![e])).expect("batch is valid");
        assert!(b.events.is_empty());
        b.rejected[0].error.clone()
    }

    fn nested(depth: usize) -> Value {
        let mut v = json!(1);
        for _ in 1..depth {
            v = json!({ "n": v });
        }
        json!({ "n": v })
    }

    #[test]
    fn payload_depth_at_and_over() {
        assert_eq!(object_depth(nested(8).as_object().expect("object")), 8);
        let at = event(json!({ "payload": nested(8) }));
        assert_eq!(validate(&batch(vec![at])).expect("valid").events.len(), 1);
        assert_eq!(
            only_rejection(json!({ "payload": nested(9) })),
            EventError::PayloadTooDeep { limit: 8 }
        );
        assert_eq!(
            only_rejection(json!({ "payload": [1] })),
            EventError::PayloadNotObject
        );
    }

    #[test]
    fn time_window_at_and_over() {
        let at = |t: Millis| json!({ "timestamp": crate::time::format_rfc3339(t) });
        let ok = validate(&batch(vec![
            event(at(NOW + 24 * HOUR)),
            event(at(NOW - 7 * DAY)),
        ]))
        .expect("valid");
        assert_eq!(ok.events.len(), 2);
        assert_eq!(
            only_rejection(at(NOW + 24 * HOUR + 1)),
            EventError::TooFarAhead
        );
        assert_eq!(only_rejection(at(NOW - 7 * DAY - 1)), EventError::TooOld);
    }

    #[test]
    fn identifiers_and_ids() {
        assert_eq!(
            only_rejection(json!({"clientId": ""})),
            EventError::BadIdentifier { field: "clientId" }
        );
        assert_eq!(
            only_rejection(json!({"userId": "u".repeat(129)})),
            EventError::BadIdentifier { field: "userId" }
        );
        let at =
            validate(&batch(vec![event(json!({"sessionId": "s".repeat(128)}))])).expect("valid");
        assert_eq!(at.events.len(), 1);
        assert_eq!(
            only_rejection(json!({"id": "has space"})),
            EventError::BadId
        );
        let dup = validate(&batch(vec![
            event(json!({"id": "e1"})),
            event(json!({"id": "e1"})),
        ]))
        .expect("valid");
        assert_eq!(dup.events.len(), 1);
        assert_eq!(
            dup.rejected[0],
            Rejection {
                index: 1,
                error: EventError::DuplicateId
            }
        );
        let missing = only_rejection(json!({"clientId": null}));
        assert_eq!(missing.to_string(), "malformed event: clientId is required");
        let twice = br#"{"events":[{"type":"a","type":"b","timestamp":"2026-11-22T09:59:58Z","clientId":"c"}]}"#;
        let b = validate(twice).expect("batch is valid");
        assert!(
            b.rejected[0]
                .error
                .to_string()
                .contains("duplicate field `type`"),
            "{:?}",
            b.rejected
        );
    }

    #[test]
    fn body_index_counts_the_rejected_before_an_event() {
        // Sent: bad, ok, bad, bad, ok, ok.
        let b = validate(&batch(vec![
            event(json!({"clientId": ""})),
            event(json!({"id": "a"})),
            event(json!({"clientId": ""})),
            event(json!({"clientId": ""})),
            event(json!({"id": "b"})),
            event(json!({"id": "c"})),
        ]))
        .expect("valid");
        let positions: Vec<usize> = (0..b.events.len()).map(|k| b.body_index(k)).collect();
        assert_eq!(positions, [1, 4, 5]);
    }
}
