//! Layout 1, read only: what this version reads from a store written before
//! layout 2, and what a migration moves. Per entity:
//!
//! - `fs:{user:cid-1}`: a hash. Plain features are fields `pageviews@1`;
//!   window buckets `clicks_7d@1|<bucket start, Unix seconds>`;
//!   `_ts:<feature>` the latest event time (ms); `_o:<feature>` the
//!   `time|id` that ranks a `last`/`first` value, whose field holds the
//!   value as JSON; `avg`/`vector_avg` cells as their numbers' text joined
//!   by `,`.
//! - `fs:{user:cid-1}:<feature>`: a zset per `distinct`, `latest_n` and
//!   `mode` feature.
//! - `fs:{user:cid-1}:b`: the applied-batch markers, a zset (member the
//!   marker's 8 bytes, score its expiry in Unix seconds).

use std::collections::BTreeMap;

use super::replies::{bad, pairs, parse, scored, utf8};
use super::stored::{Stored, decode_feature};
use super::{DecodeError, EntityKeys, RedisCommand, RedisValue, is_set_feature};
use crate::spec::FeatureSpec;
use crate::state::FeatureDoc;
use crate::time::{Millis, SECOND};

/// `HGETALL` of the entity's layout-1 hash, then `ZRANGE … WITHSCORES` of
/// each wanted set feature.
pub(super) fn read_commands(
    spec: &FeatureSpec,
    keys: &EntityKeys<'_>,
    wanted: Option<&[&str]>,
) -> Vec<RedisCommand> {
    let mut commands = vec![RedisCommand::new([
        "HGETALL".to_owned(),
        keys.layout1_hash(),
    ])];
    for def in spec.features_of(keys.entity) {
        if is_set_feature(def) && wanted.is_none_or(|w| w.contains(&def.key())) {
            commands.push(zrange(keys.layout1_set(def.key())));
        }
    }
    commands
}

pub(super) fn zrange(key: String) -> RedisCommand {
    RedisCommand::new([
        "ZRANGE".to_owned(),
        key,
        "0".to_owned(),
        "-1".to_owned(),
        "WITHSCORES".to_owned(),
    ])
}

/// How many replies [`read_commands`] has.
pub(super) fn reply_count(spec: &FeatureSpec, entity: &str, wanted: Option<&[&str]>) -> usize {
    1 + spec
        .features_of(entity)
        .filter(|def| is_set_feature(def) && wanted.is_none_or(|w| w.contains(&def.key())))
        .count()
}

/// Whether the layout-1 hash reply holds anything.
pub(super) fn is_empty(hash: &RedisValue) -> bool {
    match hash {
        RedisValue::Array(items) => items.is_empty(),
        RedisValue::Map(entries) => entries.is_empty(),
        _ => matches!(hash, RedisValue::Nil),
    }
}

/// Decodes the replies to [`read_commands`].
pub(super) fn decode(
    spec: &FeatureSpec,
    entity: &str,
    wanted: Option<&[&str]>,
    replies: &[RedisValue],
) -> Result<FeatureDoc, DecodeError> {
    let (hash_reply, set_replies) = replies.split_first().ok_or_else(|| bad("no replies"))?;
    let hash = pairs(hash_reply)?;
    let mut fields: BTreeMap<&str, &str> = BTreeMap::new();
    for (field, value) in &hash {
        let (field, value) = (utf8(field)?, utf8(value)?);
        fields.insert(field, value);
    }
    let mut sets = set_replies.iter();
    let mut doc = FeatureDoc::default();
    for def in spec.features_of(entity) {
        let set = if !is_set_feature(def) {
            None
        } else if wanted.is_none_or(|w| w.contains(&def.key())) {
            Some(
                sets.next()
                    .ok_or_else(|| bad("fewer set replies than set features"))?,
            )
        } else {
            continue;
        };
        let key = def.key();
        let prefix = format!("{key}|");
        let mut buckets = BTreeMap::new();
        for (field, v) in fields.range(prefix.as_str()..) {
            let Some(start) = field.strip_prefix(&prefix) else {
                break;
            };
            buckets.insert(parse::<Millis>(start, key)? * SECOND, *v);
        }
        let stored = Stored {
            ts: fields.get(format!("_ts:{key}").as_str()).copied(),
            value: fields.get(key).copied(),
            order: fields.get(format!("_o:{key}").as_str()).copied(),
            buckets,
            set,
            parts: None,
        };
        if let Some(state) = decode_feature(def, stored)? {
            doc.features.insert(key.to_owned(), state);
        }
    }
    Ok(doc)
}

/// The layout-1 markers still unexpired at `now_s` from the marker zset's
/// `ZRANGE … WITHSCORES`: each marker's 8 bytes in hex and its expiry (Unix s).
pub(super) fn markers(
    reply: &RedisValue,
    now_s: Millis,
) -> Result<Vec<(String, Millis)>, DecodeError> {
    Ok(scored(reply)?
        .into_iter()
        .filter(|(_, expiry)| *expiry >= now_s)
        .map(|(member, expiry)| (member.iter().map(|b| format!("{b:02x}")).collect(), expiry))
        .collect())
}
