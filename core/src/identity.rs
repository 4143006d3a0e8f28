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

    /// The token vectors every other copy of this rule is tested against
    /// (`freshet/server` in `npm/src/server.js`, by `tests/sdk/server.test.mjs`):
    /// made here, kept in `tests/fixtures/identity-tokens.json`. The test
    /// fails when the file and this module disagree; `FRESHET_BLESS=1`
    /// rewrites the file after a deliberate change (review the diff).
    #[test]
    fn the_shared_token_vectors_are_what_core_computes() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/identity-tokens.json"
        );
        let got = token_vectors();
        if std::env::var_os("FRESHET_BLESS").is_some() {
            let text = serde_json::to_string_pretty(&got).expect("json") + "\n";
            std::fs::write(path, text).expect("write the vectors");
        }
        let kept: serde_json::Value = serde_json::from_slice(
            &std::fs::read(path).expect("the vectors; run with FRESHET_BLESS=1"),
        )
        .expect("the vectors are JSON");
        assert_eq!(got, kept, "{path} is not what core computes");
    }

    /// Each vector: the secret the verifier holds, the token, `now` in Unix
    /// seconds and the verdict; `claims` (userId, expiry) when the token is
    /// exactly what `issue_token` gives for them with that secret, else null
    /// (tampered, signed elsewhere, or written by hand).
    fn token_vectors() -> serde_json::Value {
        use serde_json::json;
        const SECRET: &str = "site-secret";
        const EXPIRY: i64 = 1_795_000_000; // 2026-11-18T11:06:40Z
        let vector = |case: &str, claims: Option<(&str, i64)>, token: String, now: i64| {
            let verdict = match verify_token(SECRET.as_bytes(), &token, now) {
                Ok(user_id) => json!({ "userId": user_id }),
                Err(e) => json!({ "error": e.code() }),
            };
            let claims =
                claims.map(|(user_id, expiry)| json!({ "userId": user_id, "expiry": expiry }));
            json!({ "case": case, "secret": SECRET, "claims": claims, "now": now, "token": token, "verdict": verdict })
        };
        let issued = |case: &str, user_id: &str, expiry: i64, now: i64| {
            let token = issue_token(SECRET.as_bytes(), user_id, expiry);
            vector(case, Some((user_id, expiry)), token, now)
        };
        // Signed with the secret, over claims written as issue_token never
        // writes them.
        let signed = |claims: &str| {
            let tag = mac(SECRET.as_bytes(), claims).finalize().into_bytes();
            format!("{claims}.{}", URL_SAFE_NO_PAD.encode(tag))
        };
        let token = issue_token(SECRET.as_bytes(), "user-1", EXPIRY);
        let other = issue_token(b"other-secret", "user-1", EXPIRY);
        let before = EXPIRY - 600;
        let vectors = vec![
            issued("valid before its expiry", "user-1", EXPIRY, before),
            issued("valid during its expiry second", "user-1", EXPIRY, EXPIRY),
            issued("expired from the next second", "user-1", EXPIRY, EXPIRY + 1),
            issued(
                "a userId with dots: split from the right",
                "user.42",
                EXPIRY,
                before,
            ),
            issued(
                "a userId freshet/server does not issue",
                "ann@example.com",
                EXPIRY,
                before,
            ),
            issued("an expiry before 1970", "user-1", -1, before),
            vector(
                "the latest expiry",
                None,
                signed("user-1.9223372036854775807"),
                before,
            ),
            vector(
                "an expiry past 64 bits",
                None,
                signed("user-1.9223372036854775808"),
                before,
            ),
            vector(
                "an expiry with a plus sign",
                None,
                signed("user-1.+1795000000"),
                before,
            ),
            vector("an empty userId", None, signed(".1795000000"), before),
            vector("signed with another secret", None, other.clone(), before),
            vector(
                "signed with another secret and expired: the signature comes first",
                None,
                other,
                EXPIRY + 1,
            ),
            vector(
                "the userId changed",
                None,
                token.replacen("user-1", "user-2", 1),
                before,
            ),
            vector(
                "the expiry moved",
                None,
                token.replacen(".1795000000.", ".1795086400.", 1),
                before,
            ),
            vector("the signature padded", None, format!("{token}="), before),
            vector(
                "the signature not base64url",
                None,
                "user-1.1795000000.!!".into(),
                before,
            ),
            vector(
                "an expiry that is not a number",
                None,
                "user-1.soon.c2ln".into(),
                before,
            ),
            vector("no signature", None, "user-1.1795000000".into(), before),
            vector("only a userId", None, "user-1".into(), before),
            vector("empty", None, String::new(), before),
        ];
        json!({
            "about": "Identity tokens as core/src/identity.rs issues and verifies them, made by its test the_shared_token_vectors_are_what_core_computes (FRESHET_BLESS=1 rewrites this file). now and expiry are Unix seconds; claims are what issue_token signed into the token, null when it did not make it with this secret.",
            "vectors": vectors,
        })
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
