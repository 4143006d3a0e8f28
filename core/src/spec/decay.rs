//! `decay`'s parameters, its fixed-point weights and the buckets it is kept in.

use super::window::Window;
use crate::time::{DAY, MINUTE, Millis};

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

/// `decay`'s buckets: at most one half-life wide (whole minutes), so an
/// event's weight relative to its bucket's start stays in [1, 2]; without a
/// window, kept [`DECAY_HORIZON_HALF_LIVES`] back.
pub(super) fn decay_window(decay: &Decay, window: Option<Window>) -> Window {
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
