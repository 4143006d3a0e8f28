//! What to do with a batch after an attempt: the edge's answers mapped to
//! deliver, retry (exponential backoff with jitter, or `Retry-After`), resend
//! without the identity token the edge refused, or drop.

/// First retry waits about this long; each further one doubles it.
pub const BASE_DELAY_MS: u64 = 1_000;
/// Backoff stops growing here, so a recovered edge hears from us soon.
pub const MAX_DELAY_MS: u64 = 5 * 60_000;
/// A `Retry-After` longer than this is clamped: the events are still worth sending.
pub const MAX_RETRY_AFTER_MS: u64 = 60 * 60_000;

/// The result of one attempt to send a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// The request never got an HTTP answer (offline, DNS, CORS, reset).
    NetworkError,
    /// An HTTP status and, when the answer carried one, `Retry-After` in ms.
    Status {
        status: u16,
        retry_after_ms: Option<u64>,
    },
    /// `401` with an `identity_…` error code: the write key was fine, the
    /// identity token was not (malformed, forged or expired), and the edge
    /// applied nothing of the batch.
    IdentityRefused,
}

impl Attempt {
    /// An HTTP answer: its status (0 for none: `fetch` rejected), `Retry-After`
    /// in ms and the `error` code of its JSON body (empty when it had none).
    pub fn answer(status: u16, retry_after_ms: Option<u64>, error_code: &str) -> Self {
        if status == 0 {
            Self::NetworkError
        } else if status == 401 && error_code.starts_with("identity_") {
            Self::IdentityRefused
        } else {
            Self::Status {
                status,
                retry_after_ms,
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    Delivered,
    /// Try again after this many milliseconds, with the same batch id.
    RetryAfter(u64),
    /// Send the batch again at once, same batch id and events, without the
    /// identity token: without one the edge keys its events by clientId.
    WithoutIdentity,
    /// The edge will never take this batch (400, 401, 413, other 4xx).
    Drop,
}

/// Decides a batch's fate. `attempts` counts the attempts made so far,
/// this one included; `random` is a fresh random number for the jitter.
pub fn dispose(attempt: Attempt, attempts: u32, random: u32) -> Disposition {
    match attempt {
        Attempt::NetworkError => Disposition::RetryAfter(backoff_ms(attempts, random)),
        Attempt::IdentityRefused => Disposition::WithoutIdentity,
        Attempt::Status {
            status,
            retry_after_ms,
        } => match status {
            200..=299 => Disposition::Delivered,
            // Rate limited or unavailable: the edge asks for the same batch again.
            408 | 429 | 500..=599 => Disposition::RetryAfter(match retry_after_ms {
                Some(ms) => ms.min(MAX_RETRY_AFTER_MS),
                None => backoff_ms(attempts, random),
            }),
            // 400 malformed, 401 bad write key, 413 too large: retrying
            // cannot help, and a redirect or 404 means a wrong endpoint.
            _ => Disposition::Drop,
        },
    }
}

/// Exponential backoff with "equal jitter": half the window fixed, half random,
/// so clients that failed together do not retry together.
pub fn backoff_ms(attempts: u32, random: u32) -> u64 {
    let exp = attempts.saturating_sub(1).min(20);
    let window = (BASE_DELAY_MS << exp).min(MAX_DELAY_MS);
    let half = window / 2;
    half + u64::from(random) % (half + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(status: u16) -> Attempt {
        Attempt::Status {
            status,
            retry_after_ms: None,
        }
    }

    #[test]
    fn success_delivers_and_client_errors_drop() {
        assert_eq!(dispose(status(202), 1, 0), Disposition::Delivered);
        assert_eq!(dispose(status(200), 1, 0), Disposition::Delivered);
        for s in [400, 401, 403, 404, 413, 422] {
            assert_eq!(dispose(status(s), 1, 0), Disposition::Drop, "{s}");
        }
    }

    #[test]
    fn unavailable_and_network_errors_retry_with_growing_backoff() {
        for s in [408, 429, 500, 502, 503] {
            assert!(
                matches!(dispose(status(s), 1, 0), Disposition::RetryAfter(_)),
                "{s}"
            );
        }
        assert_eq!(
            dispose(Attempt::NetworkError, 1, 0),
            Disposition::RetryAfter(500)
        );
        assert_eq!(
            dispose(Attempt::NetworkError, 1, u32::MAX),
            Disposition::RetryAfter(500 + u64::from(u32::MAX) % 501)
        );
        let mins: Vec<u64> = (1..=5).map(|n| backoff_ms(n, 0)).collect();
        assert_eq!(mins, [500, 1_000, 2_000, 4_000, 8_000]);
        for n in 1..40 {
            for r in [0, 1, 12_345, u32::MAX] {
                let d = backoff_ms(n, r);
                let window = (BASE_DELAY_MS << (n - 1).min(20)).min(MAX_DELAY_MS);
                assert!(d >= window / 2 && d <= window, "{n} {r} {d}");
            }
        }
        assert_eq!(backoff_ms(30, 0), MAX_DELAY_MS / 2);
    }

    #[test]
    fn a_refused_identity_is_told_apart_from_a_refused_write_key() {
        for code in [
            "identity_malformed",
            "identity_bad_signature",
            "identity_expired",
        ] {
            let a = Attempt::answer(401, None, code);
            assert_eq!(a, Attempt::IdentityRefused, "{code}");
            assert_eq!(dispose(a, 1, 0), Disposition::WithoutIdentity);
        }
        for code in ["unknown_write_key", "missing_write_key", "", "scripted"] {
            let a = Attempt::answer(401, None, code);
            assert_eq!(a, status(401), "{code}");
            assert_eq!(dispose(a, 1, 0), Disposition::Drop, "{code}");
        }
        assert_eq!(
            Attempt::answer(400, None, "identity_expired"),
            status(400),
            "only a 401 says the token was refused"
        );
    }

    #[test]
    fn jitter_spreads_clients() {
        let delays: std::collections::BTreeSet<u64> =
            (0..100u32).map(|r| backoff_ms(4, r * 7919)).collect();
        assert!(delays.len() > 50);
    }

    #[test]
    fn retry_after_wins_over_backoff_and_is_clamped() {
        let a = Attempt::Status {
            status: 429,
            retry_after_ms: Some(7_000),
        };
        assert_eq!(dispose(a, 9, 0), Disposition::RetryAfter(7_000));
        let a = Attempt::Status {
            status: 503,
            retry_after_ms: Some(u64::MAX),
        };
        assert_eq!(
            dispose(a, 1, 0),
            Disposition::RetryAfter(MAX_RETRY_AFTER_MS)
        );
        let a = Attempt::Status {
            status: 400,
            retry_after_ms: Some(1),
        };
        assert_eq!(dispose(a, 1, 0), Disposition::Drop);
    }
}
