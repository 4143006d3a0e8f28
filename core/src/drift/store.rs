//! How a summary lives in an online store: one Redis hash per feature@version
//! per hour, outside the entity key space (`fs:drift:{clicks@1}:2026112905`),
//! updated by increments so concurrent sampling points never lose a count,
//! and expiring after [`SUMMARY_TTL_SECS`].
//!
//! Fields: `n`, `null`, `num` (counts), `sum`, `sq` (floats), `min`, `max`,
//! `z` (zeros), `p:<i>` / `m:<i>` (positive / negative bucket `i`), `c:<name>`
//! (a category), `other`, and `cats` (how many categories have a field, kept
//! by the script to bound them).

use std::collections::HashMap;

use crate::time::{HOUR, Millis, format_rfc3339};

use super::summary::{CorruptSummary, MAX_CATEGORIES, Summary};

/// Summaries are kept 8 days: a week of history for `--since 7d`, and a day
/// of slack.
pub const SUMMARY_TTL_SECS: u64 = 8 * 24 * 3600;

/// The Redis key of a feature's summary for the hour holding `t`, under the
/// store's key prefix (`fs`). Entity keys are `fs:{entity:id}`, so no
/// entity's key can be a summary's.
pub fn summary_key(prefix: &str, feature_key: &str, t: Millis) -> String {
    format!("{prefix}:drift:{{{feature_key}}}:{}", hour_label(t))
}

/// `2026112905` for any time in 05:00–05:59 UTC of 2026-11-29.
pub fn hour_label(t: Millis) -> String {
    let text = format_rfc3339(t.div_euclid(HOUR) * HOUR);
    // 2026-11-29T05:00:00.000Z
    text.chars().filter(char::is_ascii_digit).take(10).collect()
}

/// The keys of the hours from `now - since` up to `now`, oldest first.
pub fn hour_keys(prefix: &str, feature_key: &str, now: Millis, since: Millis) -> Vec<String> {
    let last = now.div_euclid(HOUR);
    let first = (now - since.max(0)).div_euclid(HOUR);
    (first..=last)
        .map(|h| summary_key(prefix, feature_key, h * HOUR))
        .collect()
}

/// Adds a summary's increments to one hash, creating it, and (re)sets its
/// expiry. `KEYS[1]` the hash; `ARGV[1]` ttl seconds, `ARGV[2]` the category
/// bound, then `op, field, value` triples: `i` HINCRBY, `f` HINCRBYFLOAT,
/// `lo` / `hi` keep the smaller / larger number, `c` a category count (or
/// `other` once `cats` reached the bound).
pub const REDIS_ADD_SCRIPT: &str = r"
local key = KEYS[1]
for i = 3, #ARGV, 3 do
  local op, f, v = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if op == 'i' then
    redis.call('HINCRBY', key, f, v)
  elseif op == 'f' then
    redis.call('HINCRBYFLOAT', key, f, v)
  elseif op == 'lo' or op == 'hi' then
    local cur = tonumber(redis.call('HGET', key, f))
    local x = tonumber(v)
    if cur == nil or (op == 'lo' and x < cur) or (op == 'hi' and x > cur) then
      redis.call('HSET', key, f, v)
    end
  elseif op == 'c' then
    if redis.call('HEXISTS', key, f) == 1 then
      redis.call('HINCRBY', key, f, v)
    elseif tonumber(redis.call('HGET', key, 'cats') or '0') < tonumber(ARGV[2]) then
      redis.call('HINCRBY', key, f, v)
      redis.call('HINCRBY', key, 'cats', 1)
    else
      redis.call('HINCRBY', key, 'other', v)
    end
  end
end
redis.call('EXPIRE', key, ARGV[1])
return 1
";

/// The `ARGV` of [`REDIS_ADD_SCRIPT`] that adds `s`.
pub fn redis_add_args(s: &Summary) -> Vec<String> {
    let mut args = vec![SUMMARY_TTL_SECS.to_string(), MAX_CATEGORIES.to_string()];
    let mut push = |op: &str, field: String, value: String| {
        args.push(op.to_owned());
        args.push(field);
        args.push(value);
    };
    for (field, n) in [
        ("n", s.count),
        ("null", s.nulls),
        ("num", s.numbers),
        ("z", s.zeros),
        ("other", s.other),
    ] {
        if n > 0 {
            push("i", field.to_owned(), n.to_string());
        }
    }
    if s.numbers > 0 {
        push("f", "sum".to_owned(), float(s.sum));
        push("f", "sq".to_owned(), float(s.sum_sq));
    }
    if let Some(x) = s.min {
        push("lo", "min".to_owned(), float(x));
    }
    if let Some(x) = s.max {
        push("hi", "max".to_owned(), float(x));
    }
    for (i, n) in &s.positive {
        push("i", format!("p:{i}"), n.to_string());
    }
    for (i, n) in &s.negative {
        push("i", format!("m:{i}"), n.to_string());
    }
    for (name, n) in &s.categories {
        push("c", format!("c:{name}"), n.to_string());
    }
    args
}

/// Formats a float so Redis and Lua read it back exactly (shortest round
/// trip, with an exponent for large or small magnitudes).
fn float(x: f64) -> String {
    format!("{x:?}")
}

/// Reads a summary back from a hash's fields (`HGETALL`). Unknown fields and
/// unreadable values are refused with the field's name: a corrupt summary is
/// reported, never guessed at.
pub fn summary_from_fields<K: AsRef<str>, V: AsRef<str>>(
    fields: impl IntoIterator<Item = (K, V)>,
) -> Result<Summary, CorruptSummary> {
    let mut s = Summary::default();
    let mut categories = HashMap::new();
    for (k, v) in fields {
        let (k, v) = (k.as_ref(), v.as_ref());
        let bad = |reason: &str| CorruptSummary {
            field: k.to_owned(),
            reason: reason.to_owned(),
        };
        let count = || v.parse::<u64>().map_err(|_| bad("not a count"));
        let number = || {
            v.parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or_else(|| bad("not a number"))
        };
        let index = |i: &str| i.parse::<i32>().map_err(|_| bad("not a bucket index"));
        match k {
            "n" => s.count = count()?,
            "null" => s.nulls = count()?,
            "num" => s.numbers = count()?,
            "z" => s.zeros = count()?,
            "other" => s.other = count()?,
            "cats" => {
                count()?;
            }
            "sum" => s.sum = number()?,
            "sq" => s.sum_sq = number()?,
            "min" => s.min = Some(number()?),
            "max" => s.max = Some(number()?),
            _ => {
                if let Some(i) = k.strip_prefix("p:") {
                    s.positive.insert(index(i)?, count()?);
                } else if let Some(i) = k.strip_prefix("m:") {
                    s.negative.insert(index(i)?, count()?);
                } else if let Some(name) = k.strip_prefix("c:") {
                    categories.insert(name.to_owned(), count()?);
                } else {
                    return Err(bad("unknown field"));
                }
            }
        }
    }
    s.categories = categories.into_iter().collect();
    check(&s)?;
    Ok(s)
}

/// The counts of a decoded summary must add up.
fn check(s: &Summary) -> Result<(), CorruptSummary> {
    let bad = |field: &str, reason: String| {
        Err(CorruptSummary {
            field: field.to_owned(),
            reason,
        })
    };
    let binned = s.zeros + s.positive.values().sum::<u64>() + s.negative.values().sum::<u64>();
    if binned != s.numbers {
        return bad(
            "num",
            format!("{} numbers but {binned} in buckets", s.numbers),
        );
    }
    if s.nulls + s.numbers > s.count {
        return bad(
            "n",
            format!(
                "{} values but {} nulls and {} numbers",
                s.count, s.nulls, s.numbers
            ),
        );
    }
    if s.numbers > 0 && (s.min.is_none() || s.max.is_none()) {
        return bad("min", "numbers without a min and max".to_owned());
    }
    Ok(())
}

/// The ISO hour a key covers, for messages: `2026-11-29T05:00:00.000Z`.
pub fn hour_start(t: Millis) -> String {
    format_rfc3339(t.div_euclid(HOUR) * HOUR)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn keys_per_hour() {
        let t = crate::time::parse_rfc3339("2026-11-29T05:59:59Z").unwrap_or_default();
        assert_eq!(
            summary_key("fs", "clicks@1", t),
            "fs:drift:{clicks@1}:2026112905"
        );
        let keys = hour_keys("t", "clicks@1", t, 24 * HOUR);
        assert_eq!(keys.len(), 25);
        assert_eq!(keys[0], "t:drift:{clicks@1}:2026112805");
    }

    #[test]
    fn fields_round_trip() {
        let mut s = Summary::default();
        for v in [
            json!(0.1),
            json!(-2),
            json!(0),
            json!(1e14),
            json!(null),
            json!("x"),
        ] {
            s.add(&v);
        }
        let args = redis_add_args(&s);
        // What the script would store, when the hash starts empty.
        let mut fields = vec![("cats".to_owned(), s.categories.len().to_string())];
        for t in args[2..].chunks(3) {
            fields.push((t[1].clone(), t[2].clone()));
        }
        assert_eq!(summary_from_fields(fields), Ok(s));
    }

    #[test]
    fn corrupt_fields_are_named() {
        let err = |f: &[(&str, &str)]| {
            summary_from_fields(f.iter().copied())
                .err()
                .map(|e| e.field)
        };
        assert_eq!(err(&[("n", "x")]), Some("n".to_owned()));
        assert_eq!(err(&[("bogus", "1")]), Some("bogus".to_owned()));
        assert_eq!(err(&[("n", "1"), ("num", "1")]), Some("num".to_owned()));
        assert_eq!(err(&[("sum", "inf")]), Some("sum".to_owned()));
        assert_eq!(err(&[("p:x", "1")]), Some("p:x".to_owned()));
    }
}
