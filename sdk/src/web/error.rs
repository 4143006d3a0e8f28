//! The Rust tracker's error type.

use std::fmt;

use crate::error::TrackerError;

/// Why a call was refused. Nothing that was valid is lost: a refused
/// `track` queues nothing, and the tracker goes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// A bad option, event type, payload, user id or identity token: the same
    /// checks, and the same messages, as the npm package's `TypeError`s.
    Invalid(TrackerError),
    /// The payload did not serialize to a JSON object; serde's reason.
    Payload(String),
    /// `Tracker::start` outside a browser page (a worker, a server render).
    NoWindow,
}

impl From<TrackerError> for Error {
    fn from(e: TrackerError) -> Self {
        Self::Invalid(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid(e) => e.fmt(f),
            Self::Payload(why) => write!(f, "freshet: payload must be a JSON object: {why}"),
            Self::NoWindow => {
                f.write_str("freshet: the tracker needs a browser window and document")
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Invalid(e) => Some(e),
            _ => None,
        }
    }
}
