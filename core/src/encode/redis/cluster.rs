//! Redis Cluster routing, as the cluster spec defines it: a key's slot
//! (CRC16 of its hash tag, mod 16384), the key of each command we send, the
//! slot map from `CLUSTER SHARDS`, and the `MOVED`/`ASK` redirections. The
//! edge's cluster client and its tests use these; nothing here does I/O.

use super::{RedisCommand, RedisValue};

/// Slots of a Redis Cluster.
pub const SLOTS: u16 = 16384;

/// A node's address as the cluster announces it.
pub type Node = (String, u16);

/// CRC16-CCITT (XModem), the cluster spec's key hash.
fn crc16(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in bytes {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// The slot of a key: of its hash tag (what is between the first `{` and
/// the first `}` after it, when not empty), else of the whole key.
pub fn key_slot(key: &[u8]) -> u16 {
    let tagged = key.iter().position(|&b| b == b'{').and_then(|open| {
        let rest = &key[open + 1..];
        let close = rest.iter().position(|&b| b == b'}')?;
        (close > 0).then(|| &rest[..close])
    });
    crc16(tagged.unwrap_or(key)) % SLOTS
}

/// The key a command of ours routes by: the first of `EVAL`/`EVALSHA`'s
/// keys, the first argument of a key command, none for `MULTI`, `EXEC`,
/// `ASKING` and the connection's own commands (any node serves those).
pub fn command_key(command: &RedisCommand) -> Option<&[u8]> {
    let parts = &command.0;
    let name = parts.first()?.to_ascii_uppercase();
    match name.as_slice() {
        b"EVAL" | b"EVALSHA" | b"EVAL_RO" | b"EVALSHA_RO" | b"FCALL" => {
            let n: usize = std::str::from_utf8(parts.get(2)?).ok()?.parse().ok()?;
            if n == 0 {
                None
            } else {
                parts.get(3).map(Vec::as_slice)
            }
        }
        b"MULTI" | b"EXEC" | b"DISCARD" | b"ASKING" | b"PING" | b"AUTH" | b"SELECT" | b"HELLO"
        | b"CLUSTER" | b"READONLY" | b"SCRIPT" | b"SCAN" | b"INFO" => None,
        _ => parts.get(1).map(Vec::as_slice),
    }
}

/// The slot a command routes by, `None` for a command any node serves.
pub fn command_slot(command: &RedisCommand) -> Option<u16> {
    command_key(command).map(key_slot)
}

/// Which node serves each slot: ranges of slots, each with its master.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlotMap {
    /// `(first, last, master)`, sorted by `first`; inclusive.
    ranges: Vec<(u16, u16, Node)>,
}

impl SlotMap {
    /// The master serving `slot`, if the map has one.
    pub fn node(&self, slot: u16) -> Option<&Node> {
        let i = self.ranges.partition_point(|(_, last, _)| *last < slot);
        self.ranges
            .get(i)
            .filter(|(first, _, _)| *first <= slot)
            .map(|(_, _, node)| node)
    }

    /// Every master, each once, in slot order.
    pub fn masters(&self) -> Vec<Node> {
        let mut out: Vec<Node> = Vec::new();
        for (_, _, node) in &self.ranges {
            if !out.contains(node) {
                out.push(node.clone());
            }
        }
        out
    }

    /// How many slots the map covers (16384 when the cluster is whole).
    pub fn covered(&self) -> usize {
        self.ranges
            .iter()
            .map(|(first, last, _)| usize::from(last - first) + 1)
            .sum()
    }

    /// The map of a `CLUSTER SHARDS` reply (RESP2 arrays of field/value
    /// pairs, or RESP3 maps): each shard's slots go to its master that is
    /// `online`; `tls` takes each node's `tls-port`. A shard without an
    /// online master serves nothing until its failover is done.
    pub fn from_shards(reply: &RedisValue, tls: bool) -> Result<Self, String> {
        let RedisValue::Array(shards) = reply else {
            return Err(format!("CLUSTER SHARDS replied {reply:?}"));
        };
        let mut ranges = Vec::new();
        for shard in shards {
            let fields = pairs(shard)?;
            let slots = match field(&fields, "slots") {
                Some(RedisValue::Array(s)) => s,
                _ => return Err("a shard has no slots".into()),
            };
            let nodes = match field(&fields, "nodes") {
                Some(RedisValue::Array(n)) => n,
                _ => return Err("a shard has no nodes".into()),
            };
            let mut master = None;
            for node in nodes {
                let f = pairs(node)?;
                let text = |name| field(&f, name).and_then(as_text);
                if text("role").as_deref() != Some("master")
                    || text("health").as_deref() != Some("online")
                {
                    continue;
                }
                let host = text("endpoint")
                    .filter(|e| !e.is_empty() && e != "?")
                    .or_else(|| text("ip"))
                    .ok_or("a master has no address")?;
                let port = field(&f, if tls { "tls-port" } else { "port" })
                    .and_then(as_int)
                    .and_then(|p| u16::try_from(p).ok())
                    .ok_or("a master has no port")?;
                master = Some((host, port));
            }
            let Some(master) = master else { continue };
            for pair in slots.chunks(2) {
                let bound = |v: Option<&RedisValue>| {
                    v.and_then(as_int)
                        .and_then(|s| u16::try_from(s).ok())
                        .filter(|s| *s < SLOTS)
                        .ok_or_else(|| "a slot range is not two slots".to_string())
                };
                let (first, last) = (bound(pair.first())?, bound(pair.get(1))?);
                if first > last {
                    return Err("a slot range ends before it starts".into());
                }
                ranges.push((first, last, master.clone()));
            }
        }
        ranges.sort_by_key(|(first, _, _)| *first);
        Ok(Self { ranges })
    }
}

/// A reply that sends a command elsewhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redirect {
    /// The slot has moved for good: refresh the map, send it there.
    Moved { slot: u16, node: Node },
    /// The slot is being migrated and this key is already there: send this
    /// one command there, after `ASKING`.
    Ask { slot: u16, node: Node },
}

impl Redirect {
    /// Reads `MOVED 3999 127.0.0.1:6381` or `ASK …`; an empty host (a node
    /// that announces none) is `from`'s host.
    pub fn parse(error: &str, from: &str) -> Option<Self> {
        let mut words = error.split_whitespace();
        let kind = words.next()?;
        let slot: u16 = words.next()?.parse().ok().filter(|s| *s < SLOTS)?;
        let (host, port) = words.next()?.rsplit_once(':')?;
        let host = if host.is_empty() { from } else { host };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let node = (host.to_owned(), port.parse().ok()?);
        match kind {
            "MOVED" => Some(Self::Moved { slot, node }),
            "ASK" => Some(Self::Ask { slot, node }),
            _ => None,
        }
    }
}

/// An error reply after which the same command may succeed on the same
/// node soon: a slot mid-migration (`TRYAGAIN`), a cluster that is
/// reconfiguring (`CLUSTERDOWN`), a replica being promoted (`LOADING`,
/// `MASTERDOWN`), or a master that became a replica (`READONLY`).
pub fn is_transient(error: &str) -> bool {
    [
        "TRYAGAIN",
        "CLUSTERDOWN",
        "LOADING",
        "MASTERDOWN",
        "READONLY",
    ]
    .iter()
    .any(|code| error.starts_with(code))
}

fn pairs(value: &RedisValue) -> Result<Vec<(String, &RedisValue)>, String> {
    match value {
        RedisValue::Array(items) => items
            .chunks(2)
            .map(|kv| match kv {
                [k, v] => as_text(k)
                    .map(|k| (k, v))
                    .ok_or_else(|| "a field name is not text".to_string()),
                _ => Err("a map has an odd length".to_string()),
            })
            .collect(),
        RedisValue::Map(kv) => kv
            .iter()
            .map(|(k, v)| {
                as_text(k)
                    .map(|k| (k, v))
                    .ok_or_else(|| "a field name is not text".to_string())
            })
            .collect(),
        other => Err(format!("not a map: {other:?}")),
    }
}

fn field<'a>(fields: &[(String, &'a RedisValue)], name: &str) -> Option<&'a RedisValue> {
    fields.iter().find(|(k, _)| k == name).map(|(_, v)| *v)
}

fn as_text(value: &RedisValue) -> Option<String> {
    match value {
        RedisValue::Bulk(b) => String::from_utf8(b.clone()).ok(),
        RedisValue::Simple(s) => Some(s.clone()),
        _ => None,
    }
}

fn as_int(value: &RedisValue) -> Option<i64> {
    match value {
        RedisValue::Int(i) => Some(*i),
        RedisValue::Bulk(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::redis::EntityKeys;

    #[test]
    fn slots_follow_the_spec() {
        // The cluster spec's test vector, and its hash-tag examples.
        assert_eq!(crc16(b"123456789"), 0x31C3);
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(key_slot(b"foo{}{bar}"), key_slot(b"foo{}{bar}"));
        assert_ne!(key_slot(b"foo{}{bar}"), key_slot(b"bar"));
        assert_eq!(key_slot(b"foo{{bar}}zap"), key_slot(b"{bar"));
        assert_eq!(key_slot(b"foo{bar}{zap}"), key_slot(b"bar"));
    }

    #[test]
    fn an_entity_s_keys_share_one_slot() {
        let keys = EntityKeys {
            prefix: "fs",
            entity: "user_item",
            id: "u{1}|i%7C2",
        };
        let slot = key_slot(keys.hash().as_bytes());
        for key in [
            keys.batch_markers(),
            keys.layout1_hash(),
            keys.layout1_batch_markers(),
            keys.legacy_batch_marker("b-1"),
        ] {
            assert_eq!(key_slot(key.as_bytes()), slot, "{key}");
        }
    }

    #[test]
    fn commands_route_by_their_first_key() {
        let eval = RedisCommand::new(["EVALSHA", "abc", "2", "fs:{u:1}:2", "fs:{u:1}:2:b", "x"]);
        assert_eq!(command_key(&eval), Some(&b"fs:{u:1}:2"[..]));
        let none = RedisCommand::new(["EVAL", "return 1", "0"]);
        assert_eq!(command_key(&none), None);
        assert_eq!(
            command_key(&RedisCommand::new(["hgetall", "k"])),
            Some(&b"k"[..])
        );
        assert_eq!(command_key(&RedisCommand::new(["MULTI"])), None);
    }

    fn bulk(s: &str) -> RedisValue {
        RedisValue::Bulk(s.as_bytes().to_vec())
    }

    fn node(role: &str, port: i64, health: &str) -> RedisValue {
        RedisValue::Array(vec![
            bulk("id"),
            bulk("abc"),
            bulk("port"),
            RedisValue::Int(port),
            bulk("ip"),
            bulk("127.0.0.1"),
            bulk("endpoint"),
            bulk("127.0.0.1"),
            bulk("role"),
            bulk(role),
            bulk("health"),
            bulk(health),
        ])
    }

    #[test]
    fn the_slot_map_takes_each_shard_s_online_master() {
        let shard = |slots: &[i64], nodes: Vec<RedisValue>| {
            RedisValue::Array(vec![
                bulk("slots"),
                RedisValue::Array(slots.iter().map(|s| RedisValue::Int(*s)).collect()),
                bulk("nodes"),
                RedisValue::Array(nodes),
            ])
        };
        let reply = RedisValue::Array(vec![
            shard(
                &[0, 5460, 16000, 16383],
                vec![
                    node("replica", 7003, "online"),
                    node("master", 7000, "online"),
                ],
            ),
            shard(&[5461, 10922], vec![node("master", 7001, "online")]),
            // Its master failed and no replica is promoted yet.
            shard(&[10923, 15999], vec![node("master", 7002, "failed")]),
        ]);
        let map = SlotMap::from_shards(&reply, false).expect("map");
        let at = |slot| map.node(slot).map(|(_, p)| *p);
        assert_eq!(at(0), Some(7000));
        assert_eq!(at(5460), Some(7000));
        assert_eq!(at(5461), Some(7001));
        assert_eq!(at(12000), None);
        assert_eq!(at(16383), Some(7000));
        assert_eq!(map.covered(), 5461 + 384 + 5462);
        assert_eq!(map.masters().len(), 2);
        assert!(SlotMap::from_shards(&bulk("no"), false).is_err());
    }

    #[test]
    fn redirections_name_slot_and_node() {
        assert_eq!(
            Redirect::parse("MOVED 3999 127.0.0.1:6381", "h"),
            Some(Redirect::Moved {
                slot: 3999,
                node: ("127.0.0.1".into(), 6381)
            })
        );
        assert_eq!(
            Redirect::parse("ASK 1 :7002", "10.0.0.9"),
            Some(Redirect::Ask {
                slot: 1,
                node: ("10.0.0.9".into(), 7002)
            })
        );
        assert_eq!(Redirect::parse("ERR no", "h"), None);
        assert_eq!(Redirect::parse("MOVED 99999 h:1", "h"), None);
        assert!(is_transient(
            "TRYAGAIN Multiple keys request during rehashing of slot"
        ));
        assert!(!is_transient("ERR wrong"));
    }
}
