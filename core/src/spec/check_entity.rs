//! Entities checked: a simple entity's key paths, a composite one's parts.

use std::collections::BTreeMap;

use super::entity::EntityDef;
use super::field_path::FieldPath;
use super::raw::RawEntity;
use crate::wire::is_valid_event_type;

pub(super) fn is_valid_name(name: &str, max_len: usize) -> bool {
    name.len() <= max_len && is_valid_event_type(name)
}

/// An entity checked on its own: a composite one still names its parts.
pub(super) enum Checked {
    Simple(EntityDef),
    Composite(Vec<String>),
}

pub(super) fn check_entity(name: &str, raw: RawEntity) -> Result<Checked, String> {
    if !is_valid_name(name, 32) {
        return Err("entity names must match ^[a-z][a-z0-9_]{0,31}$".to_owned());
    }
    let key = match (raw.key, raw.of) {
        (Some(_), Some(_)) => {
            return Err(
                "give key (the fields that name it) or of (the entities it pairs), not both"
                    .to_owned(),
            );
        }
        (None, None) => {
            return Err(
                "needs key = [field paths] or, for a composite entity, of = [entities]".to_owned(),
            );
        }
        (None, Some(of)) => return Ok(Checked::Composite(of)),
        (Some(key), None) => key,
    };
    if key.is_empty() {
        return Err("key must list at least one field path".to_owned());
    }
    let key = key
        .iter()
        .map(|p| FieldPath::parse(p))
        .collect::<Result<_, _>>()?;
    Ok(Checked::Simple(EntityDef {
        name: name.to_owned(),
        key,
        of: Vec::new(),
    }))
}

/// A composite entity: at least two distinct simple entities of the spec.
pub(super) fn check_composite(
    name: &str,
    of: &[String],
    simple: &BTreeMap<String, EntityDef>,
) -> Result<EntityDef, String> {
    if of.len() < 2 {
        return Err("of must list at least two entities".to_owned());
    }
    let mut parts: Vec<EntityDef> = Vec::with_capacity(of.len());
    for part in of {
        if parts.iter().any(|p| &p.name == part) {
            return Err(format!("of: `{part}` is listed twice"));
        }
        let def = simple.get(part).ok_or_else(|| {
            if part == name {
                format!("of: `{part}` is this entity itself")
            } else {
                let known: Vec<&str> = simple.keys().map(String::as_str).collect();
                format!(
                    "of: `{part}` is not a simple entity of the spec (simple entities: {})",
                    known.join(", ")
                )
            }
        })?;
        parts.push(def.clone());
    }
    Ok(EntityDef {
        name: name.to_owned(),
        key: Vec::new(),
        of: parts,
    })
}
