//! Redis replies read back as plain data: a hash's fields, a zset's scored
//! members, a string's bytes (RESP2 and RESP3 shapes alike).

use super::{DecodeError, RedisValue};
use crate::time::Millis;

pub(super) fn bad(what: impl Into<String>) -> DecodeError {
    DecodeError {
        store: "Redis",
        detail: what.into(),
        layout1: false,
    }
}

pub(super) fn parse<T: std::str::FromStr>(text: &str, key: &str) -> Result<T, DecodeError> {
    text.parse()
        .map_err(|_| bad(format!("{key}: `{text}` is not a number")))
}

/// The bytes of a string reply; `None` for a missing key.
pub(super) fn bytes(value: &RedisValue) -> Result<Option<Vec<u8>>, DecodeError> {
    match value {
        RedisValue::Nil => Ok(None),
        RedisValue::Bulk(b) => Ok(Some(b.clone())),
        RedisValue::Simple(s) => Ok(Some(s.clone().into_bytes())),
        RedisValue::Int(i) => Ok(Some(i.to_string().into_bytes())),
        RedisValue::Double(d) => Ok(Some(d.to_string().into_bytes())),
        RedisValue::Error(e) => Err(bad(format!("error reply: {e}"))),
        other => Err(bad(format!("expected a string, got {other:?}"))),
    }
}

pub(super) fn text(value: &RedisValue) -> Result<String, DecodeError> {
    let b = bytes(value)?.ok_or_else(|| bad("expected a string, got nil"))?;
    String::from_utf8(b).map_err(|_| bad("non-UTF-8 string"))
}

/// A hash field and its value, as bytes.
pub(super) type Field = (Vec<u8>, Vec<u8>);

/// Field-value pairs of an `HGETALL` reply (a flat RESP2 array or a RESP3 map).
pub(super) fn pairs(reply: &RedisValue) -> Result<Vec<Field>, DecodeError> {
    let one = |k: &RedisValue, v: &RedisValue| -> Result<Field, DecodeError> {
        Ok((
            bytes(k)?.ok_or_else(|| bad("nil hash field"))?,
            bytes(v)?.ok_or_else(|| bad("nil hash value"))?,
        ))
    };
    match reply {
        RedisValue::Array(items) => items
            .chunks(2)
            .map(|pair| match pair {
                [k, v] => one(k, v),
                _ => Err(bad("odd-length HGETALL reply")),
            })
            .collect(),
        RedisValue::Map(entries) => entries.iter().map(|(k, v)| one(k, v)).collect(),
        RedisValue::Nil => Ok(Vec::new()),
        RedisValue::Error(e) => Err(bad(format!("error reply: {e}"))),
        other => Err(bad(format!("expected HGETALL's array, got {other:?}"))),
    }
}

/// Member-score pairs of a `ZRANGE … WITHSCORES` reply (RESP2 flat or RESP3 nested).
pub(super) fn scored(reply: &RedisValue) -> Result<Vec<(Vec<u8>, Millis)>, DecodeError> {
    let score = |v: &RedisValue| -> Result<Millis, DecodeError> {
        match v {
            // Scores are whole numbers (milliseconds, counts), exact in a double.
            #[allow(clippy::cast_possible_truncation)]
            RedisValue::Double(d) => Ok(*d as Millis),
            other => parse(&text(other)?, "score"),
        }
    };
    let member = |v: &RedisValue| bytes(v)?.ok_or_else(|| bad("nil zset member"));
    let RedisValue::Array(items) = reply else {
        return match reply {
            RedisValue::Nil => Ok(Vec::new()),
            other => Err(bad(format!("expected ZRANGE's array, got {other:?}"))),
        };
    };
    if items.iter().all(|i| matches!(i, RedisValue::Array(_))) {
        return items
            .iter()
            .map(|pair| match pair {
                RedisValue::Array(p) if p.len() == 2 => Ok((member(&p[0])?, score(&p[1])?)),
                _ => Err(bad("malformed ZRANGE pair")),
            })
            .collect();
    }
    items
        .chunks(2)
        .map(|pair| match pair {
            [m, s] => Ok((member(m)?, score(s)?)),
            _ => Err(bad("odd-length ZRANGE reply")),
        })
        .collect()
}

/// [`scored`] with UTF-8 members (a feature's values).
pub(super) fn scored_text(reply: &RedisValue) -> Result<Vec<(String, Millis)>, DecodeError> {
    scored(reply)?
        .into_iter()
        .map(|(m, s)| {
            Ok((
                String::from_utf8(m).map_err(|_| bad("non-UTF-8 zset member"))?,
                s,
            ))
        })
        .collect()
}

/// A field or value that must be text.
pub(super) fn utf8(b: &[u8]) -> Result<&str, DecodeError> {
    std::str::from_utf8(b).map_err(|_| bad("non-UTF-8 field"))
}
