//! Per-export pseudonyms of people.
//!
//! With a salt, a person id becomes `HMAC-SHA-256(salt, id)` truncated to
//! 128 bits and written as 32 lowercase hex digits: the same salt gives the
//! same pseudonym in every export (so files of one study join), another
//! salt gives unrelated ones, and without the salt nobody can go back from
//! a pseudonym to the id (or test a guessed id). Without a salt, ids are
//! written as they are (only for operators, who see them anyway).

use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

use crate::error::{ExportError, Result};

/// The shortest salt accepted: 16 bytes, so that the pseudonyms cannot be
/// reversed by trying salts.
pub const MIN_SALT_BYTES: usize = 16;

/// Turns person ids into what an export shows of them.
#[derive(Clone)]
pub struct Pseudonymizer {
    key: Option<Hmac<Sha256>>,
}

impl std::fmt::Debug for Pseudonymizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The salt is a secret: never printed.
        f.debug_struct("Pseudonymizer").field("pseudonymous", &self.key.is_some()).finish()
    }
}

impl Pseudonymizer {
    /// Pseudonyms keyed by `salt` (at least [`MIN_SALT_BYTES`] bytes).
    pub fn with_salt(salt: &[u8]) -> Result<Self> {
        if salt.len() < MIN_SALT_BYTES {
            return Err(ExportError::InvalidInput {
                field: "pseudonymize",
                reason: format!("the salt must be at least {MIN_SALT_BYTES} bytes long"),
            });
        }
        // HMAC accepts keys of any length; the error cannot happen.
        let key = Hmac::<Sha256>::new_from_slice(salt)
            .map_err(|e| ExportError::InvalidInput { field: "pseudonymize", reason: e.to_string() })?;
        Ok(Self { key: Some(key) })
    }

    /// Ids as they are.
    #[must_use]
    pub fn identity() -> Self {
        Self { key: None }
    }

    /// Whether ids are replaced.
    #[must_use]
    pub fn is_pseudonymous(&self) -> bool {
        self.key.is_some()
    }

    /// What the export shows of person `id`.
    #[must_use]
    pub fn person(&self, id: Uuid) -> String {
        match &self.key {
            None => id.to_string(),
            Some(key) => {
                let mut mac = key.clone();
                mac.update(id.as_bytes());
                let digest = mac.finalize().into_bytes();
                digest[..16].iter().map(|b| format!("{b:02x}")).collect()
            }
        }
    }
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    #[test]
    fn pseudonyms_are_stable_per_salt_and_differ_across_salts() {
        let id = Uuid::now_v7();
        let a = Pseudonymizer::with_salt(b"0123456789abcdef").unwrap();
        let b = Pseudonymizer::with_salt(b"0123456789abcdeg").unwrap();
        assert_eq!(a.person(id), a.person(id));
        assert_ne!(a.person(id), b.person(id));
        assert_eq!(a.person(id).len(), 32);
        assert!(!a.person(id).contains(&id.simple().to_string()));
        assert!(Pseudonymizer::with_salt(b"short").is_err());
        assert_eq!(Pseudonymizer::identity().person(id), id.to_string());
    }
}
