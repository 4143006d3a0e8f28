//! The tracker's one error type. Each is a misuse by the host page and is
//! thrown into it as a `TypeError` with this message; nothing else throws.

use std::fmt;

use crate::encode::push_u64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrackerError {
    /// `createTracker` got an option it does not know (a typo, most often).
    UnknownOption(String),
    /// An option has the wrong type or is out of range.
    BadOption {
        name: &'static str,
        expected: Expected,
    },
    MissingOption(&'static str),
    BadEventType(String),
    BadPayload(&'static str),
    /// The event would not fit one batch, or exceeds the edge's per-event limit.
    EventTooLarge {
        bytes: usize,
        limit: usize,
    },
    BadUserId,
    BadIdentityToken,
}

/// What an option must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    Text { max: usize },
    Boolean,
    Range { min: u32, max: u32, integer: bool },
}

impl TrackerError {
    /// The message thrown into the page. Built by hand rather than with
    /// `format!`: `core::fmt` would be most of the shipped wasm.
    pub fn message(&self) -> String {
        let mut m = String::from("freshet: ");
        match self {
            Self::UnknownOption(name) => {
                m.push_str("unknown option '");
                m.push_str(name);
                m.push('\'');
            }
            Self::BadOption { name, expected } => {
                m.push_str("option '");
                m.push_str(name);
                m.push_str("' must be ");
                match *expected {
                    Expected::Text { max } => {
                        m.push_str("a string of 1 to ");
                        push_u64(&mut m, max as u64);
                        m.push_str(" characters without spaces");
                    }
                    Expected::Boolean => m.push_str("a boolean"),
                    Expected::Range { min, max, integer } => {
                        m.push_str(if integer {
                            "an integer from "
                        } else {
                            "a number from "
                        });
                        push_u64(&mut m, u64::from(min));
                        m.push_str(" to ");
                        push_u64(&mut m, u64::from(max));
                    }
                }
            }
            Self::MissingOption(name) => {
                m.push_str("option '");
                m.push_str(name);
                m.push_str("' is required");
            }
            Self::BadEventType(name) => {
                m.push_str("event type '");
                m.push_str(name);
                m.push_str("' must match ^[a-z][a-z0-9_]{0,63}$");
            }
            Self::BadPayload(why) => {
                m.push_str("payload ");
                m.push_str(why);
            }
            Self::EventTooLarge { bytes, limit } => {
                m.push_str("event is ");
                push_u64(&mut m, *bytes as u64);
                m.push_str(" bytes as JSON, more than the ");
                push_u64(&mut m, *limit as u64);
                m.push_str(" allowed");
            }
            Self::BadUserId => {
                m.push_str("userId must be 1 to 64 characters of A-Z, a-z, 0-9, '_' or '-'")
            }
            Self::BadIdentityToken => m.push_str(
                "identityToken must be 1 to 512 characters without spaces (issued by your server)",
            ),
        }
        m
    }
}

impl fmt::Display for TrackerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for TrackerError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_problem() {
        let e = TrackerError::EventTooLarge {
            bytes: 40_000,
            limit: 32_768,
        };
        assert_eq!(
            e.to_string(),
            "freshet: event is 40000 bytes as JSON, more than the 32768 allowed"
        );
        let e = TrackerError::BadOption {
            name: "gzip",
            expected: Expected::Boolean,
        };
        assert_eq!(e.to_string(), "freshet: option 'gzip' must be a boolean");
        assert_eq!(
            TrackerError::UnknownOption("x".into()).to_string(),
            "freshet: unknown option 'x'"
        );
    }
}
