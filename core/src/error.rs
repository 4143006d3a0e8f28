//! Why a batch or one of its events was refused, each with a stable code.
//!
//! A [`BatchError`] refuses the whole body (the edge answers 4xx and stores
//! nothing); an [`EventError`] refuses one event, and the rest of the batch
//! is still accepted. The codes are part of the API: clients and dashboards
//! match on them, so they never change meaning.

use std::fmt;

/// A reason to refuse the whole batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchError {
    /// The body (as received, or after decompression) is over the limit.
    BodyTooLarge { limit: usize },
    /// The body starts with the gzip magic bytes but does not inflate.
    BadGzip,
    /// The body is not a JSON document of the expected shape.
    MalformedJson { detail: String },
    /// `events` is an empty array.
    EmptyBatch,
    /// More events than the limit.
    TooManyEvents { count: usize, limit: usize },
    /// `batchId` is present but not 1-64 of `[A-Za-z0-9_-]`.
    BadBatchId,
    /// `sentAt` is present but not an RFC 3339 time.
    BadSentAt,
}

impl BatchError {
    /// The stable code sent to clients.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BodyTooLarge { .. } => "body_too_large",
            Self::BadGzip => "bad_gzip",
            Self::MalformedJson { .. } => "malformed_json",
            Self::EmptyBatch => "empty_batch",
            Self::TooManyEvents { .. } => "too_many_events",
            Self::BadBatchId => "bad_batch_id",
            Self::BadSentAt => "bad_sent_at",
        }
    }
}

impl fmt::Display for BatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BodyTooLarge { limit } => write!(f, "the body is larger than {limit} bytes"),
            Self::BadGzip => f.write_str("the body starts like gzip but does not decompress"),
            Self::MalformedJson { detail } => write!(f, "the body is not a valid batch: {detail}"),
            Self::EmptyBatch => f.write_str("the batch has no events"),
            Self::TooManyEvents { count, limit } => {
                write!(f, "the batch has {count} events, more than {limit}")
            }
            Self::BadBatchId => f.write_str("batchId must be 1 to 64 of A-Z a-z 0-9 _ -"),
            Self::BadSentAt => f.write_str("sentAt must be an RFC 3339 time"),
        }
    }
}

impl std::error::Error for BatchError {}

/// A reason to refuse one event of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventError {
    /// The event is not a JSON object with the required fields and types.
    Malformed { detail: String },
    /// Its JSON text is over the per-event limit.
    TooLarge { limit: usize },
    /// `type` does not match `^[a-z][a-z0-9_]{0,63}$`.
    BadType,
    /// `id` is present but not 1-64 of `[A-Za-z0-9_-]`.
    BadId,
    /// An earlier event of the same batch has the same id.
    DuplicateId,
    /// `clientId`, `sessionId` or `userId` is empty or longer than 128 bytes.
    BadIdentifier { field: &'static str },
    /// `timestamp` is not an RFC 3339 time.
    BadTimestamp,
    /// The corrected event time is too far ahead of the receive time.
    TooFarAhead,
    /// The corrected event time is too far behind the receive time.
    TooOld,
    /// `payload` is not an object.
    PayloadNotObject,
    /// `payload` nests deeper than the limit.
    PayloadTooDeep { limit: usize },
}

impl EventError {
    /// The stable code sent to clients in `rejected[].reason`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Malformed { .. } => "malformed_event",
            Self::TooLarge { .. } => "event_too_large",
            Self::BadType => "bad_type",
            Self::BadId => "bad_id",
            Self::DuplicateId => "duplicate_id",
            Self::BadIdentifier { .. } => "bad_identifier",
            Self::BadTimestamp => "bad_timestamp",
            Self::TooFarAhead => "timestamp_in_future",
            Self::TooOld => "timestamp_too_old",
            Self::PayloadNotObject => "payload_not_object",
            Self::PayloadTooDeep { .. } => "payload_too_deep",
        }
    }
}

impl fmt::Display for EventError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed { detail } => write!(f, "malformed event: {detail}"),
            Self::TooLarge { limit } => write!(f, "the event is larger than {limit} bytes"),
            Self::BadType => f.write_str("type must match ^[a-z][a-z0-9_]{0,63}$"),
            Self::BadId => f.write_str("id must be 1 to 64 of A-Z a-z 0-9 _ -"),
            Self::DuplicateId => f.write_str("an earlier event in this batch has the same id"),
            Self::BadIdentifier { field } => write!(f, "{field} must be 1 to 128 bytes"),
            Self::BadTimestamp => f.write_str("timestamp must be an RFC 3339 time"),
            Self::TooFarAhead => f.write_str("timestamp is too far in the future"),
            Self::TooOld => f.write_str("timestamp is too far in the past"),
            Self::PayloadNotObject => f.write_str("payload must be an object"),
            Self::PayloadTooDeep { limit } => write!(f, "payload nests deeper than {limit}"),
        }
    }
}

impl std::error::Error for EventError {}
