//! What both browser drivers do the same way: the JS one of the npm package
//! (`npm/src/index.js`) and the Rust one of the `web` feature (`web/`). The
//! storage keys and the cookie are shared, so a site that moves from one
//! driver to the other keeps its visitors' client ids and queued events. The
//! JS driver keeps its own copy of these few constants, of the codes the
//! wasm answers it with, and of two rules (which slot to adopt, what a
//! `Retry-After` says): reading them from the wasm would grow the npm
//! package (the two rules in the wasm cost 266 bytes gzip, measured). A
//! test below checks the copies agree.

use crate::encode::parse_u64;
use crate::retry::Disposition;

/// localStorage key of the client id.
pub const CLIENT_KEY: &str = "freshet:cid";
/// localStorage key of the session shared by a site's tabs (`<id>.<lastMs>`).
pub const SESSION_KEY: &str = "freshet:sid";
/// localStorage key set to `1` while the visitor has opted out.
pub const OPT_OUT_KEY: &str = "freshet:optout";
/// Each tab saves its queue under its own slot: this prefix and a random name.
pub const SLOT_PREFIX: &str = "freshet:q:";
/// The cookie that keeps the client id where localStorage is blocked.
pub const CLIENT_COOKIE: &str = "freshet_cid";
/// The cookie's lifetime: two years.
pub const CLIENT_COOKIE_MAX_AGE_S: u64 = 63_072_000;
/// A slot whose tab neither closed nor wrote for this long belongs to a tab
/// that died: the next tracker to start adopts it.
pub const ADOPT_AFTER_MS: u64 = 15 * 60_000;
/// A burst of `track` calls costs one write to storage.
pub const SAVE_DELAY_MS: u64 = 250;
/// Below this a body is sent as it is: gzip would not pay for itself.
pub const GZIP_MIN_BYTES: usize = 1024;
/// Dispatched on `window` when the edge refuses the identity token;
/// `detail.code` is the reason.
pub const IDENTITY_REJECTED_EVENT: &str = "freshet:identityrejected";

/// Bits of `Core.track`'s answer to the JS driver: the event was queued (0:
/// opted or sampled out), a batch is ready to send, old events were evicted
/// over `maxQueue`.
pub const TRACK_QUEUED: u8 = 1;
pub const TRACK_SEALED: u8 = 2;
pub const TRACK_EVICTED: u8 = 4;

/// `Core.settle`'s answer to the JS driver: 0 delivered, 1 to be retried, 2
/// dropped for good (the driver warns), 3 the identity token was refused and
/// forgotten and the batch goes again without it (the driver tells the page).
pub fn settled_code(disposition: Disposition) -> u8 {
    match disposition {
        Disposition::Delivered => 0,
        Disposition::RetryAfter(_) => 1,
        Disposition::Drop => 2,
        Disposition::WithoutIdentity => 3,
    }
}

/// Whether a saved slot is another tab's to adopt at `now`: its tab closed
/// (heartbeat 0) or has not written for `ADOPT_AFTER_MS`.
pub fn adoptable(saved: &str, now: u64) -> bool {
    let heartbeat = saved.split('\n').next().and_then(parse_u64).unwrap_or(0);
    heartbeat == 0 || now.saturating_sub(heartbeat) > ADOPT_AFTER_MS
}

/// The client id in a `document.cookie` string, if a valid one is there.
pub fn client_id_from_cookie(cookies: &str) -> Option<&str> {
    cookies
        .split(';')
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == CLIENT_COOKIE)
        .map(|(_, value)| value)
        .filter(|v| {
            !v.is_empty()
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        })
}

/// `Retry-After` as milliseconds from `now`: delta-seconds, or an HTTP date
/// already parsed by the browser into `date_ms` (`Date.parse`, NaN if not).
pub fn retry_after_ms(header: &str, now: u64, date_ms: f64) -> Option<u64> {
    let header = header.trim();
    if let Some(seconds) = parse_u64(header) {
        return Some(seconds.saturating_mul(1_000));
    }
    date_ms
        .is_finite()
        .then(|| (date_ms as u64).saturating_sub(now))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_and_dead_tabs_are_adopted_live_ones_are_not() {
        let now = 10_000_000;
        assert!(adoptable("0\nB x 0 s -", now));
        assert!(adoptable(&format!("{}\n", now - ADOPT_AFTER_MS - 1), now));
        assert!(!adoptable(&format!("{}\n", now - 1_000), now));
        assert!(
            adoptable("garbage", now),
            "unreadable: the next page takes it"
        );
    }

    #[test]
    fn the_cookie_gives_a_valid_client_id_only() {
        assert_eq!(
            client_id_from_cookie("a=1; freshet_cid=0193-ab_c; b=2"),
            Some("0193-ab_c")
        );
        assert_eq!(client_id_from_cookie("freshet_cid=a b"), None);
        assert_eq!(client_id_from_cookie("xfreshet_cid=abc"), None);
        assert_eq!(client_id_from_cookie(""), None);
    }

    #[test]
    fn retry_after_takes_seconds_or_a_date() {
        assert_eq!(retry_after_ms(" 3 ", 0, f64::NAN), Some(3_000));
        assert_eq!(retry_after_ms("Wed", 1_000, 5_000.0), Some(4_000));
        assert_eq!(retry_after_ms("Wed", 9_000, 5_000.0), Some(0));
        assert_eq!(retry_after_ms("soon", 0, f64::NAN), None);
    }

    /// The JS driver's copies of the shared constants, of the wasm's answer
    /// codes and of `adoptable` and `retry_after_ms` must agree with these.
    #[test]
    fn the_js_driver_uses_the_same_keys_and_timings() {
        let js =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../npm/src/index.js"))
                .expect("npm/src/index.js");
        for needle in [
            format!("const CLIENT = '{CLIENT_KEY}';"),
            format!("const SESSION = '{SESSION_KEY}';"),
            format!("const OPT_OUT = '{OPT_OUT_KEY}';"),
            format!("const SLOT = '{SLOT_PREFIX}';"),
            format!("{CLIENT_COOKIE}=([\\w-]+)"),
            format!("Max-Age={CLIENT_COOKIE_MAX_AGE_S};"),
            format!("const ADOPT_AFTER_MS = {} * 60e3;", ADOPT_AFTER_MS / 60_000),
            format!("const SAVE_DELAY_MS = {SAVE_DELAY_MS};"),
            format!("const GZIP_MIN_BYTES = {GZIP_MIN_BYTES};"),
            format!("const IDENTITY_REJECTED = '{IDENTITY_REJECTED_EVENT}';"),
            format!("result & {TRACK_EVICTED}"),
            format!("result & {TRACK_SEALED}"),
            format!("settled === {}", settled_code(Disposition::Drop)),
            format!("settled === {}", settled_code(Disposition::WithoutIdentity)),
            // `adoptable` and `retry_after_ms` in JS: the first line's
            // heartbeat read as `parse_u64` reads it (1 to 19 digits), else
            // 0; a Retry-After of seconds, else a date, never in the past.
            // The cases below are what both copies give.
            r"const heartbeat = /^\d{1,19}(\n|$)/.test(text) ? parseInt(text) : 0;".to_owned(),
            "if (heartbeat === 0 || now0 - heartbeat > ADOPT_AFTER_MS) {".to_owned(),
            r"/^\s*\d{1,19}\s*$/.test(header) ? header * 1000 : Math.max(0, Date.parse(header) - Date.now());".to_owned(),
        ] {
            assert!(js.contains(&needle), "npm/src/index.js lacks {needle:?}");
        }
        let now = 10_000_000;
        let nineteen = "9".repeat(19);
        for (saved, adopted) in [
            ("0\nB x 0 s -".to_owned(), true),
            (format!("{}\nB x 0 s -", now - ADOPT_AFTER_MS - 1), true),
            (format!("{}\nB x 0 s -", now - ADOPT_AFTER_MS), false),
            (format!("{}", now - 1), false),
            (format!("{nineteen}\n"), false),
            (format!("1{nineteen}\n"), true),
            ("garbage".to_owned(), true),
            (" 9999999\n".to_owned(), true),
            (String::new(), true),
        ] {
            assert_eq!(
                adoptable(&saved, now),
                adopted,
                "{saved:?}: the JS copy gives {adopted}"
            );
        }
        let date = 5_000.0;
        for (header, ms) in [
            ("3", Some(3_000)),
            (" 3 ", Some(3_000)),
            (nineteen.as_str(), Some(u64::MAX)),
            ("1".repeat(20).as_str(), Some(4_000)),
            ("Wed", Some(4_000)),
            ("3.5", Some(4_000)),
        ] {
            assert_eq!(
                retry_after_ms(header, 1_000, date),
                ms,
                "{header:?}: the JS copy gives {ms:?}"
            );
        }
        assert_eq!(
            retry_after_ms("Wed", 9_000, date),
            Some(0),
            "never in the past"
        );
        assert_eq!(retry_after_ms("soon", 0, f64::NAN), None, "no date: none");
    }
}
