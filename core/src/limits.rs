//! The limits every received batch is held to
//! (docs/ARCHITECTURE.md#wire-format-and-limits), and those of the edge's
//! read and export routes, which the Python reader keeps to as well (it reads
//! them from here, through the extension).

use crate::time::{DAY, HOUR, Millis};

/// Configurable limits; [`Limits::default`] gives docs/ARCHITECTURE.md#wire-format-and-limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest body, in bytes, after decompression (and before it, since a
    /// compressed body is never larger than what it expands to, in practice).
    pub max_body_bytes: usize,
    /// Largest single event, in bytes of its JSON text.
    pub max_event_bytes: usize,
    /// Most events in one batch.
    pub max_events: usize,
    /// Deepest nesting of a payload; the payload object itself is depth 1.
    pub max_payload_depth: usize,
    /// How far ahead of the corrected receive time an event may be.
    pub max_future: Millis,
    /// How far behind the corrected receive time an event may be.
    pub max_past: Millis,
}

/// How far behind its receive time the edge takes an event, by default.
pub const DEFAULT_MAX_PAST: Millis = 7 * DAY;

/// How far ahead of its receive time the edge takes an event, by default.
pub const DEFAULT_MAX_FUTURE: Millis = 24 * HOUR;

/// The longest an event reaches the edge after its time under the default
/// limits, with an hour of margin: what an event-time replay of the log
/// waits for before it answers a row.
pub const MAX_LATENESS: Millis = DEFAULT_MAX_PAST + HOUR;

/// Most items in one `POST /v1/features/batch`.
pub const MAX_BATCH_ITEMS: usize = 200;

/// Longest receive-time span of one `GET /v1/events`: each day of it (and 9
/// around it) is one listing of the bucket.
pub const MAX_EXPORT_SPAN: Millis = 31 * DAY;

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 512 * 1024,
            max_event_bytes: 32 * 1024,
            max_events: 500,
            max_payload_depth: 8,
            max_future: DEFAULT_MAX_FUTURE,
            max_past: DEFAULT_MAX_PAST,
        }
    }
}
