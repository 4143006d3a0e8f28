//! What is wrong with a spec, and why a ranking read's pairs have no entity.

use std::fmt;

/// Why a ranking read's pairs have no entity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PairError {
    /// The pair entity named is not in the spec.
    UnknownEntity(String),
    /// It does not pair the user and item entities, or the spec has none that does.
    NoPair(String),
}

impl fmt::Display for PairError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownEntity(e) => write!(f, "unknown entity `{e}`"),
            Self::NoPair(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for PairError {}

/// A spec that cannot be used, naming the feature or entity at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    /// `feature `name@v``, `entity `user``, or empty for the file as a whole.
    pub subject: String,
    pub message: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.subject.is_empty() {
            write!(f, "features.toml: {}", self.message)
        } else {
            write!(f, "features.toml: {}: {}", self.subject, self.message)
        }
    }
}

impl std::error::Error for SpecError {}
