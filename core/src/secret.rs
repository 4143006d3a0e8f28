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

/// Every value a secret holds at once (the read token, the admin token, the
/// identity secret): one, or during a rotation the new beside the old, first
/// the one to sign with. Each value may have a name, which logs and
/// configuration errors show; a value is never shown.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Secrets(Vec<NamedSecret>);

/// One value of [`Secrets`], and the name it goes by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedSecret {
    pub name: Option<String>,
    pub value: Secret,
}

impl Secrets {
    pub fn new(values: Vec<NamedSecret>) -> Self {
        Self(values)
    }

    /// One unnamed value (tests, and a configuration without rotation).
    pub fn one(value: impl Into<String>) -> Self {
        Self(vec![NamedSecret {
            name: None,
            value: Secret::new(value),
        }])
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &NamedSecret> {
        self.0.iter()
    }

    /// Whether `given` is one of the values. Every value is compared, each
    /// without an early exit, so timing tells nothing of which or where.
    pub fn matches(&self, given: &[u8]) -> bool {
        self.0
            .iter()
            .fold(false, |hit, s| s.value.matches(given) | hit)
    }

    /// The values' names for a log line: `new, old`; `#2` for an unnamed
    /// second value.
    pub fn names(&self) -> String {
        let names: Vec<String> = self
            .0
            .iter()
            .enumerate()
            .map(|(i, s)| s.name.clone().unwrap_or_else(|| format!("#{}", i + 1)))
            .collect();
        names.join(", ")
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

    #[test]
    fn several_values_match_each_and_print_their_names_only() {
        let s = Secrets::new(vec![
            NamedSecret {
                name: Some("new".into()),
                value: Secret::new("new-hunter2-value"),
            },
            NamedSecret {
                name: None,
                value: Secret::new("old-hunter2-value"),
            },
        ]);
        assert!(s.matches(b"new-hunter2-value") && s.matches(b"old-hunter2-value"));
        assert!(!s.matches(b"new-hunter2-valu") && !Secrets::default().matches(b""));
        assert_eq!(s.names(), "new, #2");
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
