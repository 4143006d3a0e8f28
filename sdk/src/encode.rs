//! Text the tracker writes by hand: uuid v7 ids, RFC 3339 times and JSON
//! strings. Hand-written because serde_json's serializer and float formatting
//! would double the shipped wasm; the native tests check the output against
//! `freshet-core`'s wire types.

const HEX: &[u8; 16] = b"0123456789abcdef";

/// A uuid v7 string: 48 bits of Unix milliseconds, then 74 random bits.
///
/// Ids sort by creation time, which keeps store keys and logs in order, and
/// satisfy `freshet_core::wire::is_valid_id`.
pub fn uuid_v7(unix_ms: u64, random: [u8; 10]) -> String {
    let mut bytes = [0u8; 16];
    bytes[..6].copy_from_slice(&unix_ms.to_be_bytes()[2..]);
    bytes[6] = 0x70 | (random[0] & 0x0f);
    bytes[7] = random[1];
    bytes[8] = 0x80 | (random[2] & 0x3f);
    bytes[9..].copy_from_slice(&random[3..]);
    let mut out = String::with_capacity(36);
    for (i, b) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push(HEX[usize::from(b >> 4)] as char);
        out.push(HEX[usize::from(b & 0x0f)] as char);
    }
    out
}

fn push_digits(out: &mut String, value: u64, width: usize) {
    let mut buf = [b'0'; 20];
    let mut v = value;
    for slot in buf[20 - width..].iter_mut().rev() {
        *slot = b'0' + (v % 10) as u8;
        v /= 10;
    }
    for &b in &buf[20 - width..] {
        out.push(b as char);
    }
}

/// Appends `value` in decimal (without `core::fmt`, which is large in wasm).
pub fn push_u64(out: &mut String, value: u64) {
    let mut width = 1;
    let mut v = value;
    while v >= 10 {
        v /= 10;
        width += 1;
    }
    push_digits(out, value, width);
}

/// `2026-11-22T10:00:00.000Z` for milliseconds since the Unix epoch.
pub fn rfc3339_ms(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let mut out = String::with_capacity(24);
    push_digits(&mut out, year as u64, 4);
    out.push('-');
    push_digits(&mut out, month as u64, 2);
    out.push('-');
    push_digits(&mut out, day as u64, 2);
    out.push('T');
    push_digits(&mut out, rem / 3600, 2);
    out.push(':');
    push_digits(&mut out, rem % 3600 / 60, 2);
    out.push(':');
    push_digits(&mut out, rem % 60, 2);
    out.push('.');
    push_digits(&mut out, unix_ms % 1000, 3);
    out.push('Z');
    out
}

/// Appends `value` as a JSON string literal, quotes included.
pub fn push_json_str(out: &mut String, value: &str) {
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                out.push_str("\\u00");
                out.push(HEX[(c as usize) >> 4] as char);
                out.push(HEX[(c as usize) & 0x0f] as char);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends `"key":"value",` for a string field of a JSON object.
pub fn push_field(out: &mut String, key: &str, value: &str) {
    out.push('"');
    out.push_str(key);
    out.push_str("\":");
    push_json_str(out, value);
    out.push(',');
}

/// Parses a decimal unsigned integer, nothing else (no sign, no spaces).
pub fn parse_u64(text: &str) -> Option<u64> {
    if text.is_empty() || text.len() > 19 {
        return None;
    }
    text.bytes().try_fold(0u64, |acc, b| {
        b.is_ascii_digit().then(|| acc * 10 + u64::from(b - b'0'))
    })
}

/// The parts of `text` between `sep` bytes, like `str::split` with an ASCII
/// separator, without the generic char-pattern searcher (a kilobyte of wasm).
pub fn split_ascii(text: &str, sep: u8) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let current = rest?;
        match current.bytes().position(|b| b == sep) {
            Some(at) => {
                rest = current.get(at + 1..);
                current.get(..at)
            }
            None => rest.take(),
        }
    })
}

/// FNV-1a, 32 bits: a stable hash of the client id for sampling.
pub fn fnv1a(text: &str) -> u32 {
    text.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use freshet_core::wire::is_valid_id;

    #[test]
    fn uuid_v7_has_version_variant_and_time_prefix() {
        let id = uuid_v7(0x0190_1234_5678, [0xff; 10]);
        assert_eq!(id.len(), 36);
        assert!(id.starts_with("01901234-5678-7"), "{id}");
        assert_eq!(&id[19..20], "b");
        assert!(is_valid_id(&id));
        let zero = uuid_v7(0, [0; 10]);
        assert_eq!(zero, "00000000-0000-7000-8000-000000000000");
    }

    #[test]
    fn uuid_v7_sorts_by_time() {
        let a = uuid_v7(1_700_000_000_000, [0xff; 10]);
        let b = uuid_v7(1_700_000_000_001, [0; 10]);
        assert!(a < b);
    }

    #[test]
    fn rfc3339_matches_known_instants() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339_ms(1_795_341_599_123), "2026-11-22T09:59:59.123Z");
        assert_eq!(rfc3339_ms(4_102_444_799_999), "2099-12-31T23:59:59.999Z");
    }

    #[test]
    fn json_strings_escape_what_json_requires() {
        let mut out = String::new();
        push_json_str(&mut out, "a\"b\\c\nd\u{1}é");
        assert_eq!(out, r#""a\"b\\c\nd\u0001é""#);
        let back: String = serde_json::from_str(&out).expect("valid JSON");
        assert_eq!(back, "a\"b\\c\nd\u{1}é");
    }

    #[test]
    fn split_ascii_matches_str_split() {
        for text in ["", "a", "a b", " a  b ", "é b\nc"] {
            let ours: Vec<&str> = split_ascii(text, b' ').collect();
            let std: Vec<&str> = text.split(' ').collect();
            assert_eq!(ours, std, "{text:?}");
        }
    }

    #[test]
    fn parse_u64_takes_digits_only() {
        assert_eq!(parse_u64("120"), Some(120));
        assert_eq!(parse_u64(""), None);
        assert_eq!(parse_u64("-1"), None);
        assert_eq!(parse_u64("1.5"), None);
        assert_eq!(parse_u64("99999999999999999999"), None);
        for v in [0, 7, 10, 99, 1_000_000, u64::MAX] {
            let mut out = String::new();
            push_u64(&mut out, v);
            assert_eq!(out, v.to_string());
        }
    }
}
