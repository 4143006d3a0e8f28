//! Durations as a spec writes them (`30m`, `24h`, `7d`).

use crate::time::{DAY, HOUR, MINUTE, Millis, SECOND};

pub fn parse_duration(text: &str) -> Result<Millis, String> {
    let unit_at = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(unit_at);
    let n: Millis = digits
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 30m, 24h or 7d"))?;
    let unit = match unit {
        "s" => SECOND,
        "m" => MINUTE,
        "h" => HOUR,
        "d" => DAY,
        "w" => 7 * DAY,
        _ => return Err(format!("`{text}` is not a duration like 30m, 24h or 7d")),
    };
    if n == 0 {
        return Err(format!("`{text}` must be longer than zero"));
    }
    n.checked_mul(unit)
        .ok_or_else(|| format!("`{text}` is too long"))
}
