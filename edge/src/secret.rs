//! A secret of the configuration (a bearer token, the identity signing key,
//! a store's password) that prints as `***`, so a `Config` logged whole or
//! formatted into an error never shows one; as vector's `SensitiveString`.

use std::fmt;

/// The value is read only through [`Secret::expose`], where it is used.
/// `==` is for configurations and tests; a request's token is checked with
/// [`Secret::matches`], which takes the same time wherever they differ.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself, for the one place that sends or checks it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `given` is this secret, compared without an early exit, so
    /// timing tells nothing of where they differ.
    pub fn matches(&self, given: &[u8]) -> bool {
        let expected = self.0.as_bytes();
        if given.len() != expected.len() {
            return false;
        }
        given
            .iter()
            .zip(expected)
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_prints_as_stars_and_matches_only_itself() {
        let s = Secret::new("hunter2");
        assert_eq!(
            format!("{s:?} {s} {s:#?} {:?}", Some(&s)),
            "*** *** *** Some(***)"
        );
        assert_eq!(s.expose(), "hunter2");
        assert!(s.matches(b"hunter2"));
        for other in [&b"hunter3"[..], b"hunter", b"hunter22", b""] {
            assert!(!s.matches(other));
        }
    }
}
