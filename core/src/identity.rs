//! Signed identity tokens: how a site's server vouches that a visitor is a
//! given user. The token is `<userId>.<expiry>.<signature>`, the signature
//! being base64url (no padding) of HMAC-SHA256 over `<userId>.<expiry>` with
//! a secret the site and the edge share; expiry is in Unix seconds. A userId
//! may itself contain dots: the token is split from the right.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Why a token was refused. The edge answers 401 for every one of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityError {
    /// Not `<userId>.<expiry>.<signature>`, or an empty userId.
    Malformed,
    /// The signature does not match: forged, or signed with another secret.
    BadSignature,
    /// Signed correctly, but its expiry has passed.
    Expired,
}

impl IdentityError {
    pub fn code(self) -> &'static str {
        match self {
            Self::Malformed => "identity_malformed",
            Self::BadSignature => "identity_bad_signature",
            Self::Expired => "identity_expired",
        }
    }
}

impl fmt::Display for IdentityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Malformed => "the identity token is not userId.expiry.signature",
            Self::BadSignature => "the identity token's signature is not valid",
            Self::Expired => "the identity token has expired",
        })
    }
}

impl std::error::Error for IdentityError {}

/// Issues a token for `user_id`, valid until `expiry` (Unix seconds).
pub fn issue_token(secret: &[u8], user_id: &str, expiry: i64) -> String {
    let signed = format!("{user_id}.{expiry}");
    let signature = URL_SAFE_NO_PAD.encode(mac(secret, &signed).finalize().into_bytes());
    format!("{signed}.{signature}")
}

/// Checks a token and returns the userId it vouches for.
pub fn verify_token(secret: &[u8], token: &str, now: i64) -> Result<String, IdentityError> {
    let (signed, signature) = token.rsplit_once('.').ok_or(IdentityError::Malformed)?;
    let (user_id, expiry) = signed.rsplit_once('.').ok_or(IdentityError::Malformed)?;
    let expiry: i64 = expiry.parse().map_err(|_| IdentityError::Malformed)?;
    if user_id.is_empty() {
        return Err(IdentityError::Malformed);
    }
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| IdentityError::Malformed)?;
    // `verify_slice` compares in constant time.
    mac(secret, signed)
        .verify_slice(&signature)
        .map_err(|_| IdentityError::BadSignature)?;
    if expiry < now {
        return Err(IdentityError::Expired);
    }
    Ok(user_id.to_owned())
}

fn mac(secret: &[u8], message: &str) -> HmacSha256 {
    // HMAC takes a key of any length, so this cannot fail.
    let mut mac = <HmacSha256 as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable!());
    mac.update(message.as_bytes());
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"site-secret";

    #[test]
    fn a_token_verifies_until_it_expires() {
        let token = issue_token(SECRET, "user.42", 1_000);
        assert!(token.starts_with("user.42.1000."));
        assert_eq!(
            verify_token(SECRET, &token, 1_000),
            Ok("user.42".to_owned())
        );
        assert_eq!(
            verify_token(SECRET, &token, 1_001),
            Err(IdentityError::Expired)
        );
    }

    #[test]
    fn forged_tokens_are_refused() {
        let token = issue_token(SECRET, "alice", 1_000);
        assert_eq!(
            verify_token(b"other", &token, 0),
            Err(IdentityError::BadSignature)
        );
        let forged = token.replacen("alice", "mallory", 1);
        assert_eq!(
            verify_token(SECRET, &forged, 0),
            Err(IdentityError::BadSignature)
        );
        let later = token.replacen("1000", "9999", 1);
        assert_eq!(
            verify_token(SECRET, &later, 0),
            Err(IdentityError::BadSignature)
        );
        for bad in [
            "",
            "alice",
            "alice.1000",
            "alice.x.sig",
            ".1000.sig",
            "alice.1000.!!",
        ] {
            assert_eq!(
                verify_token(SECRET, bad, 0),
                Err(IdentityError::Malformed),
                "{bad}"
            );
        }
    }

    #[test]
    fn matches_a_known_hmac_sha256_vector() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let tag = mac(b"Jefe", "what do ya want for nothing?")
            .finalize()
            .into_bytes();
        let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
