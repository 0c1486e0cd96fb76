//! The server secret: the key of the keyed hashes (HMAC-SHA-256) the server
//! keeps in place of values it must recognise again but must not store or
//! reveal, such as idempotency keys and the requests made under them.
//!
//! A plain digest of a request would not do: requests are low in entropy
//! (a name, an e-mail, a date), so anyone reading the table could confirm a
//! guess by hashing it. With the secret, a digest is only comparable by the
//! server. Every process sharing a database must use the same secret, and
//! it must stay the same across restarts, or retried requests are no longer
//! recognised.

use std::sync::Arc;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::{Result, StoreError};

/// The shortest secret accepted, in bytes (the HMAC-SHA-256 block of
/// security the digests are meant to have).
pub const MIN_SECRET_LEN: usize = 32;

/// The server secret. Its bytes are never printed (`Debug` is redacted).
#[derive(Clone)]
pub struct ServerSecret(Arc<[u8]>);

impl std::fmt::Debug for ServerSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerSecret(redacted)")
    }
}

impl ServerSecret {
    /// A secret from its bytes; at least [`MIN_SECRET_LEN`] of them.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Self> {
        let bytes = bytes.into();
        if bytes.len() < MIN_SECRET_LEN {
            return Err(StoreError::InvalidSecret { len: bytes.len() });
        }
        Ok(Self(bytes.into()))
    }

    /// A fresh random secret (from the operating system's generator, through
    /// random UUIDs: two of them give 244 random bits).
    #[must_use]
    pub fn generate() -> Self {
        let mut bytes = Vec::with_capacity(32);
        bytes.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
        bytes.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
        Self(bytes.into())
    }

    /// The HMAC-SHA-256 of `parts` for `purpose`. Each part is prefixed by
    /// its length, so that no two different lists of parts (`["ab", "c"]`
    /// and `["a", "bc"]`) share an input, and the purpose keeps the digests
    /// of one use from standing for those of another.
    #[must_use]
    pub fn mac(&self, purpose: &str, parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = hmac(&self.0);
        for part in std::iter::once(purpose.as_bytes()).chain(parts.iter().copied()) {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }

    /// [`ServerSecret::mac`] as 64 lower-case hex digits.
    #[must_use]
    pub fn mac_hex(&self, purpose: &str, parts: &[&[u8]]) -> String {
        hex(&self.mac(purpose, parts))
    }
}

fn hmac(key: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of every length (longer ones are hashed first), so
    // this constructor cannot fail.
    <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts keys of any length")
}

/// Lower-case hex of `bytes`.
#[must_use]
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> ServerSecret {
        ServerSecret::new(*b"0123456789abcdef0123456789abcdef").expect("32 bytes")
    }

    #[test]
    fn short_secrets_are_refused() {
        assert!(matches!(ServerSecret::new(vec![7; 31]), Err(StoreError::InvalidSecret { len: 31 })));
    }

    #[test]
    fn parts_are_delimited_and_purposes_apart() {
        let s = secret();
        assert_ne!(s.mac("p", &[b"ab", b"c"]), s.mac("p", &[b"a", b"bc"]));
        assert_ne!(s.mac("p", &[b"x"]), s.mac("q", &[b"x"]));
        assert_eq!(s.mac_hex("p", &[b"x"]), s.mac_hex("p", &[b"x"]));
        assert_eq!(s.mac_hex("p", &[b"x"]).len(), 64);
    }

    #[test]
    fn another_secret_gives_other_digests() {
        let other = ServerSecret::new(*b"fedcba9876543210fedcba9876543210").expect("32 bytes");
        assert_ne!(secret().mac("p", &[b"x"]), other.mac("p", &[b"x"]));
        assert_ne!(ServerSecret::generate().mac("p", &[b"x"]), ServerSecret::generate().mac("p", &[b"x"]));
    }

    #[test]
    fn debug_does_not_print_the_bytes() {
        assert_eq!(format!("{:?}", secret()), "ServerSecret(redacted)");
    }
}
