//! Entities: what a feature describes, how an event names one, and the ids
//! of composite entities (pairs such as `user_item`).

use serde_json::Value;

use super::field_path::FieldPath;
use crate::validate::Event;

/// What a feature describes (`user`, `product`, or a pair of them such as
/// `user_item`) and how events name it.
#[derive(Debug, Clone, PartialEq)]
pub struct EntityDef {
    pub name: String,
    /// Tried in order; the first present, non-empty one is the entity's id.
    /// Empty for a composite entity.
    pub key: Vec<FieldPath>,
    /// A composite entity's parts, in the order of its `of` (each a simple
    /// entity of the spec): its id is theirs joined by [`composite_id`].
    /// Empty for a simple entity.
    pub of: Vec<EntityDef>,
}

impl EntityDef {
    /// The entity id of `event`: the first key path with a non-empty string or
    /// number; for a composite entity, its parts' ids joined by
    /// [`composite_id`], when the event names every part. `user_id` is the
    /// verified userId, if any.
    pub fn id_of(&self, event: &Event, user_id: Option<&str>) -> Option<String> {
        if self.is_composite() {
            let parts = self
                .of
                .iter()
                .map(|part| part.id_of(event, user_id))
                .collect::<Option<Vec<String>>>()?;
            return Some(composite_id(&parts));
        }
        self.key
            .iter()
            .find_map(|path| match path.get(event, user_id)? {
                Value::String(s) if !s.is_empty() && s.len() <= MAX_KEY_BYTES => Some(s),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
    }

    /// Whether the entity is keyed by others (`of`).
    pub fn is_composite(&self) -> bool {
        !self.of.is_empty()
    }

    /// The names of a composite entity's parts, in order.
    pub fn part_names(&self) -> Vec<&str> {
        self.of.iter().map(|p| p.name.as_str()).collect()
    }

    /// Whether this is a composite of exactly `user` and `item` (either order).
    pub fn pairs(&self, user: &str, item: &str) -> bool {
        let mut parts = self.part_names();
        parts.sort_unstable();
        let mut wanted = [user, item];
        wanted.sort_unstable();
        parts == wanted
    }

    /// The id of a composite entity from its parts' ids given by entity
    /// name (a ranking read's user and item): `None` when `ids` lacks a part.
    pub fn compose(&self, ids: &[(&str, &str)]) -> Option<String> {
        let parts = self
            .of
            .iter()
            .map(|part| {
                ids.iter()
                    .find(|(entity, _)| *entity == part.name)
                    .map(|(_, id)| *id)
            })
            .collect::<Option<Vec<&str>>>()?;
        Some(composite_id(&parts))
    }

    /// The parts of an id given for this entity (a serving path): a simple
    /// entity's id is its one part; a composite id must split into one
    /// non-empty id per part, as [`composite_id`] writes it.
    pub fn split_id(&self, id: &str) -> Result<Vec<String>, String> {
        if !self.is_composite() {
            return Ok(vec![id.to_owned()]);
        }
        match split_composite_id(id) {
            Some(parts) if parts.len() == self.of.len() => Ok(parts),
            _ => Err(format!(
                "a `{}` id is the ids of {} joined by `|`, each with `%` written `%25` and `|` \
                 written `%7C`",
                self.name,
                self.part_names().join(", ")
            )),
        }
    }
}

/// Longest entity id an event's key field may give (a composite id is
/// longer: its parts' ids, escaped and joined).
pub const MAX_KEY_BYTES: usize = 128;

/// The id of a composite entity from its parts' ids, in the entity's `of`
/// order: each part with `%` written `%25` and `|` written `%7C`, joined by
/// `|`. No two lists of parts give the same id, whatever the parts hold;
/// [`split_composite_id`] gives the parts back. Every reader (the edge, the
/// Python reader) builds ids with this, never by hand.
pub fn composite_id<S: AsRef<str>>(parts: &[S]) -> String {
    let mut id = String::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            id.push('|');
        }
        for c in part.as_ref().chars() {
            match c {
                '%' => id.push_str("%25"),
                '|' => id.push_str("%7C"),
                c => id.push(c),
            }
        }
    }
    id
}

/// The parts of an id [`composite_id`] made; `None` for text it cannot have
/// made (an empty part, a `%` other than `%25` or `%7C`), so an id has one
/// spelling only.
pub fn split_composite_id(id: &str) -> Option<Vec<String>> {
    id.split('|')
        .map(|escaped| {
            let mut part = String::with_capacity(escaped.len());
            let mut rest = escaped;
            while let Some(at) = rest.find('%') {
                part.push_str(&rest[..at]);
                let code = rest.get(at..at + 3)?;
                part.push(match code {
                    "%25" => '%',
                    "%7C" => '|',
                    _ => return None,
                });
                rest = &rest[at + 3..];
            }
            part.push_str(rest);
            (!part.is_empty()).then_some(part)
        })
        .collect()
}
