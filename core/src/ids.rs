//! Stable ids for what arrives without one (the seed's shape has no ids):
//! a hash of the bytes, so a retry of the same body gets the same ids and is
//! recognised as a duplicate by every store.

use sha2::{Digest, Sha256};

/// The batch id of a body that has none: a hash of its (decompressed) bytes.
pub fn derive_batch_id(body: &[u8]) -> String {
    hashed_id("b", &[body])
}

/// The id of an event that has none: a hash of its JSON text and its
/// position, so two identical events in one batch are still two events.
pub fn derive_event_id(event_json: &[u8], index: usize) -> String {
    hashed_id("e", &[event_json, &index.to_le_bytes()])
}

fn hashed_id(prefix: &str, parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    let digest = hasher.finalize();
    let mut id = String::with_capacity(prefix.len() + 33);
    id.push_str(prefix);
    id.push('-');
    for byte in &digest[..16] {
        id.push(char::from(HEX[usize::from(byte >> 4)]));
        id.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    id
}

const HEX: &[u8; 16] = b"0123456789abcdef";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::is_valid_id;

    #[test]
    fn derived_ids_are_stable_valid_and_distinct() {
        let a = derive_event_id(b"{\"type\":\"x\"}", 0);
        assert_eq!(a, derive_event_id(b"{\"type\":\"x\"}", 0));
        assert_ne!(a, derive_event_id(b"{\"type\":\"x\"}", 1));
        assert_ne!(a, derive_event_id(b"{\"type\":\"y\"}", 0));
        assert!(is_valid_id(&a));
        let b = derive_batch_id(b"{}");
        assert!(is_valid_id(&b) && b.starts_with("b-") && b.len() == 34);
    }
}
