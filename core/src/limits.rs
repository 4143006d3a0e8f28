//! The limits every received batch is held to (docs/ARCHITECTURE.md#wire-format-and-limits).

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

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 512 * 1024,
            max_event_bytes: 32 * 1024,
            max_events: 500,
            max_payload_depth: 8,
            max_future: 24 * HOUR,
            max_past: 7 * DAY,
        }
    }
}
