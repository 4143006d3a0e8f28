//! What both browser drivers do the same way: the JS one of the npm package
//! (`npm/src/index.js`) and the Rust one of the `web` feature (`web/`). The
//! storage keys and the cookie are shared, so a site that moves from one
//! driver to the other keeps its visitors' client ids and queued events. The
//! JS driver keeps its own copy of these few constants (reading them from
//! the wasm would grow the npm package); a test below checks they agree.

use crate::encode::parse_u64;

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

    /// The JS driver's copies of the shared constants must agree with these.
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
        ] {
            assert!(js.contains(&needle), "npm/src/index.js lacks {needle:?}");
        }
    }
}
