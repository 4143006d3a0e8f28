//! Moving an entity from layout 1 to layout 2: what to read, what to
//! watch, and the one script call that writes it anew.

use super::replies::bad;
use super::{
    ApplyCall, DecodeError, EntityKeys, RedisCommand, RedisValue, call_head, encode_updates,
    is_set_feature, layout1,
};
use crate::spec::FeatureSpec;
use crate::state::BATCH_MARKER_TTL;
use crate::time::{DAY, Millis, SECOND};

/// The commands that read what a migration moves from layout 1: the reads
/// of [`read_commands`](super::read_commands)'s layout-1 part, then the marker zset's
/// `ZRANGE … WITHSCORES`. Send them after `WATCH` of [`migrate_watch`]'s
/// keys, and [`migrate_call`]'s script in `MULTI`/`EXEC`, so a layout-1
/// write between the two (an edge of the version before) aborts it.
pub fn migrate_reads(
    spec: &FeatureSpec,
    prefix: &str,
    entity: &str,
    id: &str,
) -> Vec<RedisCommand> {
    let keys = EntityKeys { prefix, entity, id };
    let mut commands = layout1::read_commands(spec, &keys, None);
    commands.push(layout1::zrange(keys.layout1_batch_markers()));
    commands
}

/// The keys a migration reads, for `WATCH`.
pub fn migrate_watch(spec: &FeatureSpec, prefix: &str, entity: &str, id: &str) -> Vec<String> {
    let keys = EntityKeys { prefix, entity, id };
    let mut out = vec![keys.layout1_hash(), keys.layout1_batch_markers()];
    out.extend(layout1_sets(spec, &keys));
    out
}

fn layout1_sets(spec: &FeatureSpec, keys: &EntityKeys<'_>) -> Vec<String> {
    spec.features_of(keys.entity)
        .filter(|def| is_set_feature(def))
        .map(|def| keys.layout1_set(def.key()))
        .collect()
}

/// The script call that moves an entity from layout 1 to layout 2, given
/// the replies to [`migrate_reads`] and the time (`now`, for which markers
/// are still live): its state is written in layout 2 as one delta onto
/// nothing (which yields the state itself), its live markers go to their
/// day's group, and its layout-1 keys are deleted, in one script call. The
/// script replies 1, or 0 when there was nothing left to move.
pub fn migrate_call(
    spec: &FeatureSpec,
    prefix: &str,
    entity: &str,
    id: &str,
    replies: &[RedisValue],
    now: Millis,
) -> Result<ApplyCall, DecodeError> {
    let keys = EntityKeys { prefix, entity, id };
    let (marker_reply, state_replies) = replies.split_last().ok_or_else(|| bad("no replies"))?;
    let doc = layout1::decode(spec, entity, None, state_replies)?;
    let markers = layout1::markers(marker_reply, now.div_euclid(SECOND))?;
    let mut call = call_head(&keys, "-", String::new(), now);
    let sets = layout1_sets(spec, &keys);
    call.args.extend([
        "migrate".to_owned(),
        sets.len().to_string(),
        markers.len().to_string(),
    ]);
    for (hex, expiry_s) in markers {
        let received = expiry_s * SECOND - BATCH_MARKER_TTL;
        call.args
            .extend([received.div_euclid(DAY).to_string(), hex]);
    }
    call.keys.extend(sets);
    encode_updates(spec, &mut call, &keys, &doc.features);
    Ok(call)
}

/// One `SCAN` that finds layout-1 keys: `SCAN <cursor> MATCH <pattern>
/// COUNT <n> TYPE <kind>`, each key found named by [`layout1_entity`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout1Scan {
    pub pattern: String,
    pub kind: &'static str,
}

/// The scans that find every entity with layout-1 state under `prefix`:
/// its hash (`fs:{user:cid-1}`, a hash) and, for an entity whose features
/// are gone but whose markers are live, its marker zset
/// (`fs:{user:cid-1}:b`). Layout 2's keys never match: its hash ends in
/// `:2`, its markers are a string and its zsets end in a 4-character tag.
pub fn layout1_scans(prefix: &str) -> [Layout1Scan; 2] {
    let base = format!("{}:{{*}}", glob_escape(prefix));
    [
        Layout1Scan {
            pattern: base.clone(),
            kind: "hash",
        },
        Layout1Scan {
            pattern: format!("{base}:b"),
            kind: "zset",
        },
    ]
}

/// The entity and id of a key [`layout1_scans`] found, or `None` for a key
/// of another shape.
pub fn layout1_entity<'k>(prefix: &str, key: &'k str) -> Option<(&'k str, &'k str)> {
    let rest = key.strip_prefix(prefix)?.strip_prefix(":{")?;
    let inner = rest
        .strip_suffix("}:b")
        .or_else(|| rest.strip_suffix('}'))?;
    inner.split_once(':')
}

/// `prefix` as a `SCAN … MATCH` pattern that matches only itself.
fn glob_escape(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len());
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout1_keys_name_their_entity() {
        assert_eq!(
            layout1_entity("fs", "fs:{user:cid-1}"),
            Some(("user", "cid-1"))
        );
        assert_eq!(
            layout1_entity("fs", "fs:{user_item:u-1|v-2}:b"),
            Some(("user_item", "u-1|v-2"))
        );
        assert_eq!(layout1_entity("fs", "fs:{user:cid-1}:2"), None);
        assert_eq!(layout1_entity("fs", "fs:drift:{x@1}:2026-12-07T10"), None);
        assert_eq!(layout1_entity("fs", "other:{user:cid-1}"), None);
        let [hash, markers] = layout1_scans("a*b");
        assert_eq!((hash.pattern.as_str(), hash.kind), ("a\\*b:{*}", "hash"));
        assert_eq!(
            (markers.pattern.as_str(), markers.kind),
            ("a\\*b:{*}:b", "zset")
        );
    }
}
