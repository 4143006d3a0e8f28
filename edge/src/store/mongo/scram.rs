//! SCRAM-SHA-256 (RFC 5802, RFC 7677) as MongoDB runs it in `saslStart` and
//! `saslContinue`: the client-first message, the proof from the salted
//! password, and the check of the server's signature, so a server that does
//! not know the password cannot pass for the real one. Pure: the nonce comes
//! in, nothing is sent from here. PBKDF2 is the costly step (15,000 rounds by
//! default), so [`SaltedPasswords`] keeps its result for the isolate's life.

use std::cell::RefCell;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

pub use freshet_core::store_url::mongo::AUTH_MECHANISM as MECHANISM;
/// RFC 7677 asks for at least 4096 rounds; fewer means a weak or forged server.
const MIN_ITERATIONS: u32 = 4096;
/// More than this would stall the isolate for seconds: refused.
const MAX_ITERATIONS: u32 = 1_000_000;
/// `n,,`: no channel binding, no authorization identity.
const GS2_HEADER: &str = "n,,";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramError(pub String);

impl std::fmt::Display for ScramError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SCRAM-SHA-256: {}", self.0)
    }
}

fn err(why: impl Into<String>) -> ScramError {
    ScramError(why.into())
}

/// The first step of one conversation.
#[derive(Debug, Clone)]
pub struct ClientFirst {
    nonce: String,
    bare: String,
}

impl ClientFirst {
    /// `nonce`: printable, without `,` (base64 of random bytes).
    pub fn new(username: &str, nonce: &str) -> Self {
        // RFC 5802: `=` and `,` in a name are escaped as =3D and =2C.
        let user = username.replace('=', "=3D").replace(',', "=2C");
        Self {
            nonce: nonce.to_owned(),
            bare: format!("n={user},r={nonce}"),
        }
    }

    /// The `payload` of `saslStart`.
    pub fn message(&self) -> Vec<u8> {
        format!("{GS2_HEADER}{}", self.bare).into_bytes()
    }
}

/// What the server's first message says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerFirst {
    raw: String,
    nonce: String,
    pub salt: Vec<u8>,
    pub iterations: u32,
}

impl ServerFirst {
    pub fn parse(payload: &[u8], client: &ClientFirst) -> Result<Self, ScramError> {
        let raw = std::str::from_utf8(payload)
            .map_err(|_| err("the server's first message is not UTF-8"))?
            .to_owned();
        let (mut nonce, mut salt, mut iterations) = (None, None, None);
        for attr in raw.split(',') {
            match attr.split_once('=') {
                Some(("m", _)) => return Err(err("the server asks for an unknown extension")),
                Some(("e", why)) => return Err(err(format!("the server refused: {why}"))),
                Some(("r", v)) => nonce = Some(v.to_owned()),
                Some(("s", v)) => {
                    salt = Some(B64.decode(v).map_err(|_| err("the salt is not base64"))?);
                }
                Some(("i", v)) => {
                    iterations = Some(
                        v.parse::<u32>()
                            .map_err(|_| err("the iteration count is not a number"))?,
                    );
                }
                _ => {}
            }
        }
        let nonce = nonce.ok_or_else(|| err("the server's first message has no nonce"))?;
        if !nonce.starts_with(&client.nonce) || nonce.len() <= client.nonce.len() {
            return Err(err("the server's nonce does not extend ours"));
        }
        let salt = salt
            .filter(|s| !s.is_empty())
            .ok_or_else(|| err("the server's first message has no salt"))?;
        let iterations = iterations.ok_or_else(|| err("no iteration count"))?;
        if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
            return Err(err(format!(
                "{iterations} iterations is outside {MIN_ITERATIONS}..={MAX_ITERATIONS}"
            )));
        }
        Ok(Self {
            raw,
            nonce,
            salt,
            iterations,
        })
    }
}

/// `Hi(password, salt, i)` of RFC 5802: PBKDF2 with HMAC-SHA-256.
pub fn salted_password(password: &str, salt: &[u8], iterations: u32) -> [u8; 32] {
    let mut out = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), salt, iterations, &mut out);
    out
}

fn hmac(key: &[u8], data: &[u8]) -> HmacSha256 {
    let mut mac = <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(data);
    mac
}

/// The client's final message and what the server must answer to it.
#[derive(Debug, Clone)]
pub struct ClientFinal {
    message: String,
    server_key: [u8; 32],
    auth_message: String,
}

impl ClientFinal {
    pub fn new(client: &ClientFirst, server: &ServerFirst, salted: &[u8; 32]) -> Self {
        let without_proof = format!("c={},r={}", B64.encode(GS2_HEADER), server.nonce);
        let auth_message = format!("{},{},{without_proof}", client.bare, server.raw);
        let client_key = hmac(salted, b"Client Key").finalize().into_bytes();
        let stored_key = Sha256::digest(client_key);
        let signature = hmac(&stored_key, auth_message.as_bytes())
            .finalize()
            .into_bytes();
        let proof: Vec<u8> = client_key
            .iter()
            .zip(signature.iter())
            .map(|(k, s)| k ^ s)
            .collect();
        let server_key = hmac(salted, b"Server Key").finalize().into_bytes().into();
        Self {
            message: format!("{without_proof},p={}", B64.encode(proof)),
            server_key,
            auth_message,
        }
    }

    /// The `payload` of the first `saslContinue`.
    pub fn message(&self) -> Vec<u8> {
        self.message.as_bytes().to_vec()
    }

    /// Checks `v=<server signature>` in constant time.
    pub fn verify(&self, server_final: &[u8]) -> Result<(), ScramError> {
        let text = std::str::from_utf8(server_final)
            .map_err(|_| err("the server's final message is not UTF-8"))?;
        let mut signature = None;
        for attr in text.split(',') {
            match attr.split_once('=') {
                Some(("e", why)) => return Err(err(format!("the server refused: {why}"))),
                Some(("v", v)) => signature = Some(v),
                _ => {}
            }
        }
        let signature = signature
            .and_then(|v| B64.decode(v).ok())
            .ok_or_else(|| err("the server's final message has no signature"))?;
        hmac(&self.server_key, self.auth_message.as_bytes())
            .verify_slice(&signature)
            .map_err(|_| err("the server's signature is wrong: it does not know the password"))
    }
}

/// A salt, an iteration count, and the salted password.
type Salted = (Vec<u8>, u32, [u8; 32]);

/// Salted passwords by salt and iteration count: a user's salt changes only
/// when the password does, so one PBKDF2 per isolate is the usual cost.
#[derive(Debug, Default)]
pub struct SaltedPasswords {
    known: RefCell<Vec<Salted>>,
}

impl SaltedPasswords {
    /// Keeps a few entries only: a server that changes salts cannot grow it.
    const KEEP: usize = 4;

    pub fn get(&self, password: &str, server: &ServerFirst) -> [u8; 32] {
        if let Some((_, _, salted)) = self
            .known
            .borrow()
            .iter()
            .find(|(s, i, _)| *s == server.salt && *i == server.iterations)
        {
            return *salted;
        }
        let salted = salted_password(password, &server.salt, server.iterations);
        let mut known = self.known.borrow_mut();
        if known.len() >= Self::KEEP {
            known.remove(0);
        }
        known.push((server.salt.clone(), server.iterations, salted));
        salted
    }

    /// How many salted passwords are held.
    pub fn count(&self) -> usize {
        self.known.borrow().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7677, section 3.
    const NONCE: &str = "rOprNGfwEbeRWgbNEkqO";
    const SERVER_FIRST: &str =
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    const CLIENT_FINAL: &str = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    const SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

    fn conversation() -> (ClientFirst, ServerFirst) {
        let client = ClientFirst::new("user", NONCE);
        let server = ServerFirst::parse(SERVER_FIRST.as_bytes(), &client).expect("server first");
        (client, server)
    }

    #[test]
    fn rfc_7677_test_vector() {
        let (client, server) = conversation();
        assert_eq!(client.message(), b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        assert_eq!(server.iterations, 4096);
        let salted = salted_password("pencil", &server.salt, server.iterations);
        let last = ClientFinal::new(&client, &server, &salted);
        assert_eq!(
            String::from_utf8(last.message()).expect("utf8"),
            CLIENT_FINAL
        );
        last.verify(SERVER_FINAL.as_bytes())
            .expect("server signature");
    }

    #[test]
    fn a_wrong_server_signature_or_an_error_is_refused() {
        let (client, server) = conversation();
        let salted = salted_password("not pencil", &server.salt, server.iterations);
        let last = ClientFinal::new(&client, &server, &salted);
        assert_ne!(
            String::from_utf8(last.message()).expect("utf8"),
            CLIENT_FINAL
        );
        let e = last.verify(SERVER_FINAL.as_bytes()).expect_err("wrong key");
        assert!(e.0.contains("does not know the password"), "{e}");
        let e = last.verify(b"e=invalid-proof").expect_err("e=");
        assert!(e.0.contains("invalid-proof"));
        assert!(last.verify(b"v=not base64!").is_err());
        assert!(last.verify(b"").is_err());
    }

    #[test]
    fn server_first_messages_are_checked() {
        let client = ClientFirst::new("user", NONCE);
        for bad in [
            // Not our nonce, or not extended.
            "r=other%,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            "r=rOprNGfwEbeRWgbNEkqO,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            // Too few or too many rounds, no salt, a mandatory extension.
            "r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4095",
            "r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=1000001",
            "r=rOprNGfwEbeRWgbNEkqOx,i=4096",
            "m=x,r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            "e=unknown-user",
        ] {
            assert!(
                ServerFirst::parse(bad.as_bytes(), &client).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn names_are_escaped() {
        let c = ClientFirst::new("a=b,c", "n0nce");
        assert_eq!(c.message(), b"n,,n=a=3Db=2Cc,r=n0nce");
    }

    #[test]
    fn salted_passwords_are_computed_once_per_salt() {
        let (_, server) = conversation();
        let cache = SaltedPasswords::default();
        let first = cache.get("pencil", &server);
        assert_eq!(cache.get("pencil", &server), first);
        assert_eq!(cache.count(), 1);
        assert_eq!(
            first,
            salted_password("pencil", &server.salt, server.iterations)
        );
    }
}
