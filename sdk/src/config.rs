//! `createTracker`'s options: typed, with defaults, parsed once, unknown
//! keys refused. Table-driven, because one `match` arm and message per
//! option cost a kilobyte of gzipped wasm.

use crate::encode::{parse_u64, split_ascii};
use crate::error::{Expected, TrackerError};

/// The largest body `sendBeacon` and `fetch(keepalive)` reliably take is
/// 64 KiB; a batch must fit one, with room for the envelope.
pub const MAX_BATCH_BYTES_LIMIT: u32 = 64_000;
/// The edge refuses events larger than this (docs/ARCHITECTURE.md#wire-format-and-limits).
pub const MAX_EVENT_BYTES: usize = 32 * 1024;

const STRINGS: [&str; 2] = ["endpoint", "writeKey"];
/// Longest endpoint URL and write key. The key rides in every body, so with
/// an identity token (at most 512) it stays inside the envelope's room.
const MAX_STRING: [usize; 2] = [2048, 256];
const BOOLS: [&str; 3] = ["persist", "gzip", "leadingEdge"];
/// Numeric options with their ranges; all but the last are integers.
const NUMBERS: [(&str, u32, u32); 6] = [
    ("batchSize", 1, 500),
    ("maxBatchBytes", 1024, MAX_BATCH_BYTES_LIMIT),
    ("flushIntervalMs", 10, 3_600_000),
    ("sessionTimeoutMin", 1, 1440),
    ("maxQueue", 1, 100_000),
    ("sampleRate", 0, 1),
];

/// An option's value as the page gave it.
#[derive(Debug, Clone, PartialEq)]
pub enum OptionValue {
    /// `undefined`: the default.
    Unset,
    Str(String),
    Num(f64),
    Bool(bool),
    /// Anything else: an object, a function, a symbol, null.
    Other,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub endpoint: String,
    pub write_key: String,
    pub batch_size: u32,
    pub max_batch_bytes: u32,
    pub flush_interval_ms: u32,
    pub session_timeout_ms: u64,
    pub max_queue: u32,
    pub sample_rate: f64,
    pub persist: bool,
    pub gzip: bool,
    /// The first event after a quiet spell (no batch for `flush_interval_ms`)
    /// goes at once, in a batch of its own (`TrackerCore::track`).
    pub leading_edge: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            endpoint: String::new(),
            write_key: String::new(),
            batch_size: 20,
            max_batch_bytes: 60_000,
            flush_interval_ms: 5_000,
            session_timeout_ms: 30 * 60_000,
            max_queue: 1_000,
            sample_rate: 1.0,
            persist: true,
            gzip: true,
            leading_edge: true,
        }
    }
}

impl Config {
    /// Sets one option, or says what is wrong with it.
    pub fn set(&mut self, key: &str, value: OptionValue) -> Result<(), TrackerError> {
        if let Some(i) = STRINGS.iter().position(|n| *n == key) {
            let name = STRINGS[i];
            let s = match value {
                OptionValue::Unset => return Ok(()),
                OptionValue::Str(s)
                    if !s.is_empty()
                        && s.len() <= MAX_STRING[i]
                        && !s.bytes().any(|b| b <= b' ') =>
                {
                    s
                }
                _ => {
                    return Err(TrackerError::BadOption {
                        name,
                        expected: Expected::Text { max: MAX_STRING[i] },
                    });
                }
            };
            if i == 0 {
                self.endpoint = s;
            } else {
                self.write_key = s;
            }
        } else if let Some(i) = BOOLS.iter().position(|n| *n == key) {
            let b = match value {
                OptionValue::Unset => return Ok(()),
                OptionValue::Bool(b) => b,
                _ => {
                    return Err(TrackerError::BadOption {
                        name: BOOLS[i],
                        expected: Expected::Boolean,
                    });
                }
            };
            match i {
                0 => self.persist = b,
                1 => self.gzip = b,
                _ => self.leading_edge = b,
            }
        } else if let Some(i) = NUMBERS.iter().position(|(n, ..)| *n == key) {
            let (name, min, max) = NUMBERS[i];
            let integer = i < NUMBERS.len() - 1;
            let v = match value {
                OptionValue::Unset => return Ok(()),
                OptionValue::Num(v)
                    if v >= f64::from(min)
                        && v <= f64::from(max)
                        && (!integer || v.fract() == 0.0) =>
                {
                    v
                }
                _ => {
                    return Err(TrackerError::BadOption {
                        name,
                        expected: Expected::Range { min, max, integer },
                    });
                }
            };
            match i {
                0 => self.batch_size = v as u32,
                1 => self.max_batch_bytes = v as u32,
                2 => self.flush_interval_ms = v as u32,
                3 => self.session_timeout_ms = v as u64 * 60_000,
                4 => self.max_queue = v as u32,
                _ => self.sample_rate = v,
            }
        } else {
            return Err(TrackerError::UnknownOption(key.to_owned()));
        }
        Ok(())
    }

    /// The options as the driver passes them, one `key\ttypeof\tString(value)`
    /// a line: cheaper in wasm than walking a JS object through `Reflect`.
    pub fn from_lines(options: &str) -> Result<Self, TrackerError> {
        let mut config = Self::default();
        for line in split_ascii(options, b'\n').filter(|l| !l.is_empty()) {
            let mut parts = split_ascii(line, b'\t');
            let (key, kind) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            let text = line.get(key.len() + kind.len() + 2..).unwrap_or("");
            let value = match kind {
                "undefined" => OptionValue::Unset,
                "string" => OptionValue::Str(text.to_owned()),
                "number" => parse_decimal(text).map_or(OptionValue::Other, OptionValue::Num),
                "boolean" => OptionValue::Bool(text == "true"),
                _ => OptionValue::Other,
            };
            config.set(key, value)?;
        }
        config.finish()
    }

    /// Checks what no single option can: that the required ones were given.
    pub fn finish(self) -> Result<Self, TrackerError> {
        if self.endpoint.is_empty() {
            return Err(TrackerError::MissingOption("endpoint"));
        }
        if self.write_key.is_empty() {
            return Err(TrackerError::MissingOption("writeKey"));
        }
        Ok(self)
    }
}

impl Config {
    /// Checks options given as a Rust struct against the same names, types
    /// and ranges as the JS options (`sessionTimeoutMin` is
    /// `session_timeout_ms` in whole minutes).
    pub fn check(self) -> Result<Self, TrackerError> {
        use OptionValue::{Bool, Num, Str, Unset};
        let text = |s: String| if s.is_empty() { Unset } else { Str(s) };
        let mut c = Self::default();
        c.set("endpoint", text(self.endpoint))?;
        c.set("writeKey", text(self.write_key))?;
        c.set("batchSize", Num(f64::from(self.batch_size)))?;
        c.set("maxBatchBytes", Num(f64::from(self.max_batch_bytes)))?;
        c.set("flushIntervalMs", Num(f64::from(self.flush_interval_ms)))?;
        c.set(
            "sessionTimeoutMin",
            Num(self.session_timeout_ms as f64 / 60_000.0),
        )?;
        c.set("maxQueue", Num(f64::from(self.max_queue)))?;
        c.set("sampleRate", Num(self.sample_rate))?;
        c.set("persist", Bool(self.persist))?;
        c.set("gzip", Bool(self.gzip))?;
        c.set("leadingEdge", Bool(self.leading_edge))?;
        c.finish()
    }
}

/// `12`, `0.25`: what `String(n)` writes for the numbers an option may take.
/// Anything else (NaN, 1e+21, -1) is `None`, which the range check refuses.
pub fn parse_decimal(text: &str) -> Option<f64> {
    let (int, frac) = match text.bytes().position(|b| b == b'.') {
        Some(dot) => (text.get(..dot)?, text.get(dot + 1..)?),
        None => (text, ""),
    };
    let mut value = parse_u64(int)? as f64;
    let mut scale = 0.1;
    for b in frac.bytes() {
        if !b.is_ascii_digit() {
            return None;
        }
        value += f64::from(b - b'0') * scale;
        scale /= 10.0;
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rust_struct_is_checked_like_the_js_options() {
        let ok = Config {
            endpoint: "https://edge.example/v1/ingest".into(),
            write_key: "wk".into(),
            batch_size: 5,
            ..Config::default()
        };
        assert_eq!(ok.clone().check(), Ok(ok.clone()));
        assert!(ok.leading_edge, "the leading edge is on by default");
        assert_eq!(
            Config::default().check(),
            Err(TrackerError::MissingOption("endpoint"))
        );
        let e = Config {
            batch_size: 0,
            ..ok.clone()
        }
        .check()
        .expect_err("out of range");
        assert_eq!(
            e.to_string(),
            "freshet: option 'batchSize' must be an integer from 1 to 500"
        );
        let e = Config {
            session_timeout_ms: 90_000,
            ..ok.clone()
        }
        .check()
        .expect_err("not whole minutes");
        assert!(e.to_string().contains("'sessionTimeoutMin'"), "{e}");
        let e = Config {
            write_key: "a key".into(),
            ..ok
        }
        .check()
        .expect_err("space");
        assert!(e.to_string().contains("'writeKey'"), "{e}");
    }
    use OptionValue::{Bool, Num, Str, Unset};

    fn base() -> Config {
        let mut c = Config::default();
        c.set("endpoint", Str("/api/ingest".into()))
            .expect("endpoint");
        c.set("writeKey", Str("wk_test".into())).expect("writeKey");
        c
    }

    fn bad(c: &mut Config, key: &str, value: OptionValue) -> String {
        c.set(key, value).expect_err("refused").to_string()
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let c = base().finish().expect("valid");
        assert_eq!(
            (c.batch_size, c.max_batch_bytes, c.flush_interval_ms),
            (20, 60_000, 5_000)
        );
        assert_eq!((c.session_timeout_ms, c.max_queue), (1_800_000, 1_000));
        assert!(c.persist && c.gzip && c.sample_rate == 1.0);
    }

    #[test]
    fn every_option_is_set_at_its_limits() {
        let mut c = base();
        for (key, v) in [
            ("batchSize", 500.0),
            ("maxBatchBytes", 64_000.0),
            ("flushIntervalMs", 10.0),
            ("maxQueue", 1.0),
        ] {
            c.set(key, Num(v)).expect(key);
        }
        c.set("sessionTimeoutMin", Num(2.0)).expect("minutes");
        c.set("sampleRate", Num(0.25)).expect("rate");
        c.set("persist", Bool(false)).expect("persist");
        c.set("gzip", Bool(false)).expect("gzip");
        c.set("batchSize", Unset)
            .expect("undefined keeps the value");
        assert_eq!(
            (
                c.batch_size,
                c.max_batch_bytes,
                c.flush_interval_ms,
                c.max_queue
            ),
            (500, 64_000, 10, 1)
        );
        assert_eq!(
            (c.session_timeout_ms, c.sample_rate, c.persist, c.gzip),
            (120_000, 0.25, false, false)
        );
    }

    #[test]
    fn unknown_and_mistyped_options_are_refused_with_clear_messages() {
        let mut c = base();
        assert_eq!(
            bad(&mut c, "batchsize", Num(5.0)),
            "freshet: unknown option 'batchsize'"
        );
        assert_eq!(
            bad(&mut c, "batchSize", Bool(true)),
            "freshet: option 'batchSize' must be an integer from 1 to 500"
        );
        assert_eq!(
            bad(&mut c, "batchSize", Num(2.5)),
            "freshet: option 'batchSize' must be an integer from 1 to 500"
        );
        assert_eq!(
            bad(&mut c, "batchSize", Num(501.0)),
            "freshet: option 'batchSize' must be an integer from 1 to 500"
        );
        assert!(bad(&mut c, "maxBatchBytes", Num(64_001.0)).contains("from 1024 to 64000"));
        assert_eq!(
            bad(&mut c, "sampleRate", Num(1.5)),
            "freshet: option 'sampleRate' must be a number from 0 to 1"
        );
        assert!(bad(&mut c, "sampleRate", Num(f64::NAN)).contains("sampleRate"));
        assert_eq!(
            bad(&mut c, "writeKey", Str("a b".into())),
            "freshet: option 'writeKey' must be a string of 1 to 256 characters without spaces"
        );
        assert_eq!(
            bad(&mut c, "gzip", OptionValue::Other),
            "freshet: option 'gzip' must be a boolean"
        );
        assert_eq!(c.set("batchSize", Num(1.0)), Ok(()));
    }

    #[test]
    fn options_are_read_from_the_drivers_lines() {
        let c = Config::from_lines(
            "endpoint\tstring\t/api/ingest\nwriteKey\tstring\twk\nbatchSize\tnumber\t5\nsampleRate\tnumber\t0.25\ngzip\tboolean\tfalse\nmaxQueue\tundefined\tundefined",
        )
        .expect("valid");
        assert_eq!(
            (c.batch_size, c.sample_rate, c.gzip, c.max_queue),
            (5, 0.25, false, 1_000)
        );
        let err = Config::from_lines(
            "endpoint\tstring\t/x\nwriteKey\tstring\twk\nbatchSize\tobject\tnull",
        );
        assert_eq!(
            err.expect_err("refused").to_string(),
            "freshet: option 'batchSize' must be an integer from 1 to 500"
        );
        let err = Config::from_lines("endpoint\tstring\t/x\nwritekey\tstring\twk");
        assert_eq!(
            err.expect_err("refused").to_string(),
            "freshet: unknown option 'writekey'"
        );
        assert_eq!(
            Config::from_lines("").expect_err("refused"),
            TrackerError::MissingOption("endpoint")
        );
    }

    #[test]
    fn decimals_are_what_string_of_a_number_writes() {
        assert_eq!(parse_decimal("20"), Some(20.0));
        assert_eq!(parse_decimal("0.5"), Some(0.5));
        assert!(parse_decimal("0.25").is_some_and(|v| (v - 0.25).abs() < 1e-12));
        for bad in ["", "-1", "NaN", "1e+21", "Infinity", ".5", "1.2.3"] {
            assert_eq!(parse_decimal(bad), None, "{bad}");
        }
    }

    #[test]
    fn endpoint_and_write_key_are_required() {
        assert_eq!(
            Config::default().finish(),
            Err(TrackerError::MissingOption("endpoint"))
        );
        let mut c = Config::default();
        c.set("endpoint", Str("https://e.example/v1/ingest".into()))
            .expect("ok");
        assert_eq!(c.finish(), Err(TrackerError::MissingOption("writeKey")));
    }
}
