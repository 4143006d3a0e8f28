//! Sliding windows: the span a feature looks back and the time buckets it
//! is kept in.

use crate::time::{DAY, HOUR, MINUTE, Millis};

/// Longest window a feature may have: events older than 7 days are refused
/// at ingest, so a longer window would still be right, but buckets beyond a
/// quarter make reads slow for no model we know of.
pub const MAX_WINDOW: Millis = 90 * DAY;
/// Most buckets a window's `precision` may ask for: 7 days of 5 minutes.
/// Each is a field of the entity's record, and a write that moves the window
/// deletes the buckets that left it, one by one.
pub const MAX_WINDOW_BUCKETS: Millis = 2_016;

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
