//! Signing secrets: made at random, shown once in the Standard Webhooks
//! form (`whsec_` and the standard base64 of 32 bytes), and kept sealed in
//! `webhook_secrets`, never in the event log.
//!
//! A secret is sealed with ChaCha20-Poly1305 under a key derived from the
//! server secret (`HMAC-SHA-256(server secret, "tandem webhook secrets v1")`,
//! through [`ServerSecret::mac`]), with a fresh random nonce, and with the
//! endpoint id and the secret id as associated data: a sealed value copied
//! into another row does not open. Every process that delivers webhooks
//! must be given the same server secret as the one that created them.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use sqlx::PgPool;
use tandem_store::ServerSecret;
use uuid::Uuid;

use crate::error::WebhookError;

/// The bytes of a signing secret.
pub const SECRET_LEN: usize = 32;

/// The prefix of a secret in its Standard Webhooks form.
pub const SECRET_PREFIX: &str = "whsec_";

/// The purpose label of the sealing key's derivation.
const KEY_PURPOSE: &str = "tandem webhook secrets v1";

/// A signing secret. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningSecret([u8; SECRET_LEN]);

impl std::fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningSecret(redacted)")
    }
}

impl SigningSecret {
    /// A fresh secret from the operating system's generator.
    pub fn generate() -> Result<Self, WebhookError> {
        let mut bytes = [0_u8; SECRET_LEN];
        getrandom::fill(&mut bytes).map_err(|e| WebhookError::Random(e.to_string()))?;
        Ok(Self(bytes))
    }

    /// The secret's bytes: the HMAC key.
    #[must_use]
    pub fn bytes(&self) -> &[u8; SECRET_LEN] {
        &self.0
    }

    /// The form shown to the client once: `whsec_` and standard base64.
    #[must_use]
    pub fn reveal(&self) -> String {
        format!("{SECRET_PREFIX}{}", STANDARD.encode(self.0))
    }
}

/// Seals and opens signing secrets, and keeps them in `webhook_secrets`.
#[derive(Clone)]
pub struct SecretBox {
    cipher: ChaCha20Poly1305,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(redacted)")
    }
}

fn associated(endpoint: Uuid, secret: Uuid) -> [u8; 32] {
    let mut ad = [0_u8; 32];
    ad[..16].copy_from_slice(endpoint.as_bytes());
    ad[16..].copy_from_slice(secret.as_bytes());
    ad
}

impl SecretBox {
    /// The box whose key is derived from `server`.
    #[must_use]
    pub fn new(server: &ServerSecret) -> Self {
        let key = server.mac(KEY_PURPOSE, &[]);
        Self { cipher: ChaCha20Poly1305::new(&Key::from(key)) }
    }

    /// Seals `secret` of `endpoint` under `secret_id`: (nonce, sealed bytes).
    pub fn seal(
        &self,
        endpoint: Uuid,
        secret_id: Uuid,
        secret: &SigningSecret,
    ) -> Result<([u8; 12], Vec<u8>), WebhookError> {
        let mut nonce = [0_u8; 12];
        getrandom::fill(&mut nonce).map_err(|e| WebhookError::Random(e.to_string()))?;
        let ad = associated(endpoint, secret_id);
        let sealed = self
            .cipher
            .encrypt(&Nonce::from(nonce), Payload { msg: secret.bytes(), aad: &ad })
            .map_err(|_| WebhookError::Sealing)?;
        Ok((nonce, sealed))
    }

    /// Opens what [`SecretBox::seal`] sealed.
    pub fn open(
        &self,
        endpoint: Uuid,
        secret_id: Uuid,
        nonce: &[u8],
        sealed: &[u8],
    ) -> Result<SigningSecret, WebhookError> {
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| WebhookError::Sealing)?;
        let ad = associated(endpoint, secret_id);
        let plain = self
            .cipher
            .decrypt(&Nonce::from(nonce), Payload { msg: sealed, aad: &ad })
            .map_err(|_| WebhookError::Sealing)?;
        let bytes: [u8; SECRET_LEN] = plain.as_slice().try_into().map_err(|_| WebhookError::Sealing)?;
        Ok(SigningSecret(bytes))
    }

    /// Makes a new secret for `endpoint`, stores it sealed and returns its
    /// id with the secret (to be shown once). The row is committed before
    /// the event that names it is written; a secret no event names is
    /// never used.
    pub async fn issue(&self, pool: &PgPool, endpoint: Uuid) -> Result<(Uuid, SigningSecret), WebhookError> {
        let secret = SigningSecret::generate()?;
        let id = Uuid::now_v7();
        let (nonce, sealed) = self.seal(endpoint, id, &secret)?;
        sqlx::query("INSERT INTO webhook_secrets (secret_id, endpoint_id, nonce, sealed) VALUES ($1, $2, $3, $4)")
            .bind(id)
            .bind(endpoint)
            .bind(&nonce[..])
            .bind(&sealed)
            .execute(pool)
            .await?;
        Ok((id, secret))
    }

    /// The secret `secret_id` of `endpoint`, opened; `None` when there is no
    /// such row.
    pub async fn load(
        &self,
        pool: &PgPool,
        endpoint: Uuid,
        secret_id: Uuid,
    ) -> Result<Option<SigningSecret>, WebhookError> {
        let row: Option<(Vec<u8>, Vec<u8>)> =
            sqlx::query_as("SELECT nonce, sealed FROM webhook_secrets WHERE secret_id = $1 AND endpoint_id = $2")
                .bind(secret_id)
                .bind(endpoint)
                .fetch_optional(pool)
                .await?;
        row.map(|(nonce, sealed)| self.open(endpoint, secret_id, &nonce, &sealed)).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server() -> ServerSecret {
        ServerSecret::new(*b"a server secret of 32 bytes or more").expect("long enough")
    }

    #[test]
    fn a_sealed_secret_opens_only_in_its_own_row() {
        let b = SecretBox::new(&server());
        let s = SigningSecret::generate().expect("random");
        let (e, id) = (Uuid::now_v7(), Uuid::now_v7());
        let (nonce, sealed) = b.seal(e, id, &s).expect("seals");
        assert_eq!(sealed.len(), 48);
        assert_eq!(b.open(e, id, &nonce, &sealed).expect("opens"), s);
        assert!(b.open(Uuid::now_v7(), id, &nonce, &sealed).is_err());
        assert!(b.open(e, Uuid::now_v7(), &nonce, &sealed).is_err());
        let other = SecretBox::new(&ServerSecret::new(*b"another server secret, 32 bytes+").expect("long"));
        assert!(other.open(e, id, &nonce, &sealed).is_err());
    }

    #[test]
    fn the_revealed_form_is_whsec_and_standard_base64_of_32_bytes() {
        let s = SigningSecret::generate().expect("random");
        let shown = s.reveal();
        let b64 = shown.strip_prefix("whsec_").expect("prefix");
        assert_eq!(STANDARD.decode(b64).expect("base64"), s.bytes().to_vec());
        assert_eq!(format!("{s:?}"), "SigningSecret(redacted)");
    }
}
