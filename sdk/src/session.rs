//! Sessions: an id that rotates after `sessionTimeoutMin` without activity.
//! Kept in storage as `<id>.<lastActivityMs>` so tabs share one session.

use crate::encode::parse_u64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: String,
    pub last_activity_ms: u64,
}

impl Session {
    /// Whether the session has been idle for longer than `timeout_ms` at `now`.
    pub fn expired(&self, now: u64, timeout_ms: u64) -> bool {
        now.saturating_sub(self.last_activity_ms) > timeout_ms
    }

    pub fn encode(&self) -> String {
        let mut out = self.id.clone();
        out.push('.');
        crate::encode::push_u64(&mut out, self.last_activity_ms);
        out
    }

    pub fn decode(text: &str) -> Option<Self> {
        let dot = text.bytes().rposition(|b| b == b'.')?;
        let (id, last) = (text.get(..dot)?, text.get(dot + 1..)?);
        if !freshet_core::wire::is_valid_id(id) {
            return None;
        }
        Some(Self {
            id: id.to_owned(),
            last_activity_ms: parse_u64(last)?,
        })
    }

    /// The session to use for activity at `now`: this one, touched, or a new
    /// one with `new_id` when this one has expired. Returns whether it rotated.
    pub fn touch(&mut self, now: u64, timeout_ms: u64, new_id: impl FnOnce() -> String) -> bool {
        let rotated = self.expired(now, timeout_ms);
        if rotated {
            self.id = new_id();
        }
        self.last_activity_ms = self.last_activity_ms.max(now);
        rotated
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const THIRTY_MIN: u64 = 30 * 60_000;

    #[test]
    fn activity_within_the_timeout_keeps_the_session() {
        let mut s = Session {
            id: "s1".into(),
            last_activity_ms: 1_000,
        };
        assert!(!s.touch(1_000 + THIRTY_MIN, THIRTY_MIN, || "s2".into()));
        assert_eq!(s.id, "s1");
        assert_eq!(s.last_activity_ms, 1_000 + THIRTY_MIN);
        // Idle is measured from the last activity, not the session's start.
        assert!(!s.touch(1_000 + 2 * THIRTY_MIN, THIRTY_MIN, || "s2".into()));
        assert_eq!(s.id, "s1");
    }

    #[test]
    fn idle_past_the_timeout_rotates() {
        let mut s = Session {
            id: "s1".into(),
            last_activity_ms: 1_000,
        };
        assert!(s.touch(1_001 + THIRTY_MIN, THIRTY_MIN, || "s2".into()));
        assert_eq!(s.id, "s2");
    }

    #[test]
    fn a_clock_that_steps_back_does_not_rotate_or_rewind() {
        let mut s = Session {
            id: "s1".into(),
            last_activity_ms: 10_000,
        };
        assert!(!s.touch(5_000, THIRTY_MIN, || "s2".into()));
        assert_eq!(s.last_activity_ms, 10_000);
    }

    #[test]
    fn storage_form_round_trips_and_refuses_garbage() {
        let s = Session {
            id: "0190-abc".into(),
            last_activity_ms: 42,
        };
        assert_eq!(Session::decode(&s.encode()), Some(s));
        for bad in ["", "abc", "a b.1", ".5", "abc.x", "abc.-1"] {
            assert_eq!(Session::decode(bad), None, "{bad}");
        }
    }
}
