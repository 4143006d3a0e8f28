//! Wire format v1: the JSON a tracker sends to `POST /v1/ingest`.
//!
//! These types are generic over the event and payload representation so the
//! browser can serialize them without a JSON value tree, and the edge can
//! receive them as raw slices it validates one event at a time.

use serde::{Deserialize, Serialize};

/// The current wire format version, sent by the tracker as a path segment.
pub const WIRE_VERSION: u32 = 1;
/// Header that may carry the write key instead of the body's `writeKey`.
pub const WRITE_KEY_HEADER: &str = "x-freshet-key";
/// The first two bytes of a gzip member; a body starting with them is gunzipped.
pub const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// Longest event type name, per `^[a-z][a-z0-9_]{0,63}$`.
pub const MAX_EVENT_TYPE_LEN: usize = 64;

/// A batch as sent: `events` carries the tracker's events or raw slices of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireBatch<E> {
    /// Stable across retries of this batch: the idempotency key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_id: Option<String>,
    /// When this attempt was sent, by the client's clock (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_key: Option<String>,
    /// A signed identity token: `userId.expiry.signature`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    pub events: Vec<E>,
}

/// One event as sent. `P` is the payload: a JSON object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireEvent<P> {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(rename = "type")]
    pub event_type: String,
    pub timestamp: String,
    pub client_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<P>,
}

/// Whether `name` is a valid event type: `^[a-z][a-z0-9_]{0,63}$`.
///
/// The tracker checks this before queueing, so a bad name throws in the page
/// instead of being dropped silently at the edge.
pub fn is_valid_event_type(name: &str) -> bool {
    let bytes = name.as_bytes();
    match bytes.split_first() {
        Some((first, rest)) => {
            first.is_ascii_lowercase()
                && rest.len() < MAX_EVENT_TYPE_LEN
                && rest
                    .iter()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_')
        }
        None => false,
    }
}

/// Whether `id` is a valid event or batch id: 1 to 64 of `[A-Za-z0-9_-]`.
///
/// The charset keeps ids safe inside store keys and orderable byte-wise.
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_type_rule_holds_at_its_edges() {
        assert!(is_valid_event_type("a"));
        assert!(is_valid_event_type("product_click"));
        assert!(is_valid_event_type("a9_"));
        let at_limit = format!("a{}", "b".repeat(63));
        assert!(is_valid_event_type(&at_limit));
        let over = format!("a{}", "b".repeat(64));
        assert!(!is_valid_event_type(&over));
        for bad in ["", "9a", "_a", "Product", "a-b", "a b", "é"] {
            assert!(!is_valid_event_type(bad), "{bad:?}");
        }
    }

    #[test]
    fn id_rule_holds_at_its_edges() {
        assert!(is_valid_id("018f6f7e-aaaa"));
        assert!(is_valid_id(&"a".repeat(64)));
        assert!(!is_valid_id(&"a".repeat(65)));
        assert!(!is_valid_id(""));
        assert!(!is_valid_id("a|b"));
        assert!(!is_valid_id("a b"));
    }
}
