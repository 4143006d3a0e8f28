//! Reading an entity back: layout 2's commands and their replies decoded
//! into its document; then, only for an entity layout 2 holds nothing of
//! in a store not marked as wholly in layout 2 ([`layout_mark`]), layout
//! 1's, in a second round trip.

use std::collections::BTreeMap;

use super::replies::{bad, bytes, pairs, parse, utf8};
use super::stored::{Stored, decode_feature};
use super::{DecodeError, EntityKeys, Place, RedisCommand, RedisValue, layout1, place};
use crate::spec::{FeatureDef, FeatureSpec};
use crate::state::{Cells, FeatureDoc};
use crate::time::Millis;

/// The commands that read an entity's whole state, in one pipeline.
pub fn read_commands(
    spec: &FeatureSpec,
    prefix: &str,
    entity: &str,
    id: &str,
) -> Vec<RedisCommand> {
    read_commands_for(spec, prefix, entity, id, None)
}

/// The commands that read an entity's state, in one pipeline: `HGETALL` of
/// its hash, `GET` of each cells feature and `ZRANGE … WITHSCORES` of each
/// set feature whose storage key (`name@version`) is in `wanted` (all when
/// `None`). Where [`is_unwritten`] says the replies hold nothing, a store
/// that may still hold layout 1 is read again with [`layout1_read_commands_for`].
pub fn read_commands_for(
    spec: &FeatureSpec,
    prefix: &str,
    entity: &str,
    id: &str,
    wanted: Option<&[&str]>,
) -> Vec<RedisCommand> {
    let keys = EntityKeys { prefix, entity, id };
    let mut commands = vec![RedisCommand::new(["HGETALL".to_owned(), keys.hash()])];
    for def in apart(spec, entity, wanted) {
        commands.push(match place(def) {
            Place::Set => layout1::zrange(keys.feature(def)),
            _ => RedisCommand::new(["GET".to_owned(), keys.feature(def)]),
        });
    }
    commands
}

/// Whether the replies to [`read_commands_for`] hold nothing of the entity
/// (its layout-2 hash, which every write fills, is empty).
pub fn is_unwritten(replies: &[RedisValue]) -> bool {
    replies.first().is_none_or(layout1::is_empty)
}

/// The commands that read an entity's state in layout 1, with the same
/// `wanted` as [`read_commands_for`]: for an entity layout 2 holds nothing
/// of, in a store without the [`layout_mark`].
pub fn layout1_read_commands_for(
    spec: &FeatureSpec,
    prefix: &str,
    entity: &str,
    id: &str,
    wanted: Option<&[&str]>,
) -> Vec<RedisCommand> {
    layout1::read_commands(spec, &EntityKeys { prefix, entity, id }, wanted)
}

/// Decodes the replies to [`layout1_read_commands_for`] with the same
/// `wanted`; an error says it came from layout 1.
pub fn decode_layout1_for(
    spec: &FeatureSpec,
    entity: &str,
    wanted: Option<&[&str]>,
    replies: &[RedisValue],
) -> Result<FeatureDoc, DecodeError> {
    let expected = layout1::reply_count(spec, entity, wanted);
    if replies.len() != expected {
        return Err(bad(format!(
            "{} replies where the layout-1 reads have {expected}",
            replies.len()
        )));
    }
    layout1::decode(spec, entity, wanted, replies).map_err(|e| DecodeError { layout1: true, ..e })
}

/// The key that marks a store (one key prefix) as wholly in layout 2:
/// `freshet migrate` sets it to [`LAYOUT_MARK_VALUE`] once it has moved
/// every layout-1 entity, and readers that find it read no layout 1.
pub fn layout_mark(prefix: &str) -> String {
    format!("{prefix}:layout")
}

/// The value of [`layout_mark`] in a store wholly in layout 2.
pub const LAYOUT_MARK_VALUE: &str = "2";

/// `GET` of the [`layout_mark`].
pub fn layout_mark_read(prefix: &str) -> RedisCommand {
    RedisCommand::new(["GET".to_owned(), layout_mark(prefix)])
}

/// Whether the reply to [`layout_mark_read`] says the store holds no layout 1.
pub fn is_layout2_store(reply: &RedisValue) -> bool {
    bytes(reply).ok().flatten().as_deref() == Some(LAYOUT_MARK_VALUE.as_bytes())
}

/// The wanted features kept apart from the hash, in the order they are read.
fn apart<'a>(
    spec: &'a FeatureSpec,
    entity: &'a str,
    wanted: Option<&'a [&'a str]>,
) -> impl Iterator<Item = &'a FeatureDef> {
    spec.features_of(entity).filter(move |def| {
        place(def) != Place::Hash && wanted.is_none_or(|w| w.contains(&def.key()))
    })
}

/// Decodes the replies to [`read_commands`] into the entity's document.
/// Batch markers are not read: `batches` stays empty.
pub fn decode_state(
    spec: &FeatureSpec,
    entity: &str,
    replies: &[RedisValue],
) -> Result<FeatureDoc, DecodeError> {
    decode_state_for(spec, entity, None, replies)
}

/// Decodes the replies to [`read_commands_for`] with the same `wanted`;
/// set and cells features not wanted are left out of the document.
pub fn decode_state_for(
    spec: &FeatureSpec,
    entity: &str,
    wanted: Option<&[&str]>,
    replies: &[RedisValue],
) -> Result<FeatureDoc, DecodeError> {
    let own = 1 + apart(spec, entity, wanted).count();
    if replies.len() != own {
        return Err(bad(format!(
            "{} replies where the reads have {own}",
            replies.len()
        )));
    }
    decode_layout2(spec, entity, wanted, replies)
}

fn decode_layout2(
    spec: &FeatureSpec,
    entity: &str,
    wanted: Option<&[&str]>,
    replies: &[RedisValue],
) -> Result<FeatureDoc, DecodeError> {
    let (hash_reply, apart_replies) = replies.split_first().ok_or_else(|| bad("no replies"))?;
    let hash = pairs(hash_reply)?;
    let mut fields: BTreeMap<&str, &str> = BTreeMap::new();
    for (field, value) in &hash {
        fields.insert(utf8(field)?, utf8(value)?);
    }
    let mut apart_replies = apart_replies.iter();
    let mut doc = FeatureDoc::default();
    for def in spec.features_of(entity) {
        let here = place(def);
        let reply = if here == Place::Hash {
            None
        } else if wanted.is_none_or(|w| w.contains(&def.key())) {
            Some(
                apart_replies
                    .next()
                    .ok_or_else(|| bad("fewer replies than features kept apart"))?,
            )
        } else {
            continue;
        };
        let tag = def.tag();
        let mut buckets = BTreeMap::new();
        if let (Place::Hash, Some(window)) = (here, def.window) {
            let prefix = format!("{tag}|");
            for (field, v) in fields.range(prefix.as_str()..) {
                let Some(n) = field.strip_prefix(&prefix) else {
                    break;
                };
                buckets.insert(parse::<Millis>(n, def.key())? * window.granule, *v);
            }
        }
        let ts = fields.get(format!("_t{tag}").as_str()).copied();
        let parts = match (here, reply) {
            (Place::Cells, Some(reply)) if ts.is_some() => Some(decode_cells(def, reply)?),
            _ => None,
        };
        let stored = Stored {
            ts,
            value: fields.get(tag).copied(),
            order: fields.get(format!("_o{tag}").as_str()).copied(),
            buckets,
            set: reply.filter(|_| here == Place::Set),
            parts,
        };
        if let Some(state) = decode_feature(def, stored)? {
            doc.features.insert(def.key().to_owned(), state);
        }
    }
    Ok(doc)
}

/// The 3-byte header of a cells string: the number format (`d` or `f`) and
/// how many numbers a cell keeps (u16, little-endian).
fn cells_header(def: &FeatureDef) -> [u8; 3] {
    let parts = u16::try_from(def.cell_parts()).expect("dim is at most MAX_DIM");
    let [lo, hi] = parts.to_le_bytes();
    [if def.f32 { b'f' } else { b'd' }, lo, hi]
}

/// A cells string back into cells: bucket number (i32) and numbers per cell.
fn decode_cells(def: &FeatureDef, reply: &RedisValue) -> Result<Cells<Vec<f64>>, DecodeError> {
    let key = def.key();
    let blob = bytes(reply)?.unwrap_or_default();
    let mut buckets = BTreeMap::new();
    if blob.is_empty() {
        // Every cell of a window can have left it; a total is always there.
        return match def.window {
            Some(_) => Ok(Cells::Buckets(buckets)),
            None => Err(bad(format!("{key} has no value"))),
        };
    }
    let header = cells_header(def);
    if blob.get(..3) != Some(&header[..]) {
        return Err(bad(format!(
            "{key}'s cells are kept in another shape than its spec says (another dim or float): give the feature a new version"
        )));
    }
    let size = if def.f32 { 4 } else { 8 };
    let width = 4 + def.cell_parts() * size;
    let body = &blob[3..];
    if body.len() % width != 0 {
        return Err(bad(format!(
            "{key}'s cells are {} bytes, not whole cells",
            body.len()
        )));
    }
    for cell in body.chunks_exact(width) {
        let (n, numbers) = cell.split_at(4);
        let n = i32::from_le_bytes(n.try_into().expect("4 bytes"));
        let parts = numbers
            .chunks_exact(size)
            .map(|x| match x.try_into() {
                Ok(eight) => f64::from_le_bytes(eight),
                Err(_) => f64::from(f32::from_le_bytes(x.try_into().expect("4 bytes"))),
            })
            .collect();
        buckets.insert(i64::from(n), parts);
    }
    match def.window {
        Some(window) => Ok(Cells::Buckets(
            buckets
                .into_iter()
                .map(|(n, parts)| (n * window.granule, parts))
                .collect(),
        )),
        None => buckets
            .remove(&0)
            .map(Cells::Total)
            .ok_or_else(|| bad(format!("{key} has no value"))),
    }
}
