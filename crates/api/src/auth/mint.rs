//! Development tokens: what `tandem token --role R --sub S [--ttl]` prints.
//!
//! Tokens are signed with the HS256 secret of the configuration, so they are
//! only accepted by a server running the same development configuration;
//! production tokens come from an identity provider and are verified with
//! public keys. A minted token satisfies every rule the [`Verifier`]
//! enforces, so minting refuses what verifying would refuse.
//!
//! [`Verifier`]: super::Verifier

use std::time::Duration;

use chrono::Utc;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::ExposeSecret as _;
use serde::Serialize;
use uuid::Uuid;

use super::config::MIN_HS256_SECRET_BYTES;
use super::{AuthConfig, AuthError, Principal, Role};

/// Longest lifetime of a minted token (30 days): development tokens leak
/// into shell histories and chat, so they should not outlive a sprint.
pub const MAX_MINT_TTL: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// Longest lifetime of a token whose only role is `integrator` (366 days):
/// identity providers (Okta, Entra ID) hold one SCIM token for a year or so.
/// Such a token can be revoked by its `jti` (`tandem token revoke`).
pub const MAX_INTEGRATOR_TTL: Duration = Duration::from_secs(366 * 24 * 60 * 60);

/// The longest lifetime a token with `roles` may be minted for.
#[must_use]
pub fn max_ttl(roles: &[Role]) -> Duration {
    if !roles.is_empty() && roles.iter().all(|r| *r == Role::Integrator) { MAX_INTEGRATOR_TTL } else { MAX_MINT_TTL }
}

/// The claims of a minted token.
#[derive(Serialize)]
struct MintedClaims<'a> {
    iss: &'a str,
    aud: &'a str,
    sub: &'a str,
    roles: Vec<&'static str>,
    iat: i64,
    nbf: i64,
    exp: i64,
    jti: String,
}

/// Mints an HS256 token for `subject` with `roles`, valid from now for `ttl`,
/// carrying `iss`, `aud`, `sub`, `roles`, `iat`, `nbf`, `exp` and a fresh
/// `jti` (UUID v7).
///
/// # Errors
/// [`AuthError::NoSecret`] without a secret, [`AuthError::WeakSecret`] for a
/// short one, [`AuthError::EmptySetting`] for an empty issuer or audience,
/// [`AuthError::InvalidTtl`] for a zero or over-long `ttl`, the
/// [`Principal::new`] errors for roles and subject (no role; a participant
/// whose subject is not a person id), and [`AuthError::Signing`].
pub fn mint(config: &AuthConfig, roles: &[Role], subject: &str, ttl: Duration) -> Result<String, AuthError> {
    mint_with_id(config, roles, subject, ttl).map(|(token, _)| token)
}

/// [`mint()`], also returning the token's `jti` (to revoke it later).
///
/// # Errors
/// As [`mint()`]; the longest `ttl` is [`max_ttl`] of `roles`.
pub fn mint_with_id(
    config: &AuthConfig,
    roles: &[Role],
    subject: &str,
    ttl: Duration,
) -> Result<(String, String), AuthError> {
    let secret = config.hs256_secret.as_ref().ok_or(AuthError::NoSecret)?;
    let secret = secret.expose_secret().as_bytes();
    if secret.len() < MIN_HS256_SECRET_BYTES {
        return Err(AuthError::WeakSecret { min_bytes: MIN_HS256_SECRET_BYTES });
    }
    if config.issuer.trim().is_empty() {
        return Err(AuthError::EmptySetting { setting: "TANDEM_JWT_ISSUER" });
    }
    if config.audience.trim().is_empty() {
        return Err(AuthError::EmptySetting { setting: "TANDEM_JWT_AUDIENCE" });
    }
    let max = max_ttl(roles);
    let invalid_ttl = AuthError::InvalidTtl { max_secs: max.as_secs() };
    if ttl.is_zero() || ttl > max {
        return Err(invalid_ttl);
    }
    let ttl = chrono::Duration::from_std(ttl).map_err(|_| invalid_ttl)?;
    // JWT times are whole seconds; round the start down and keep the full
    // lifetime.
    let now = Utc::now().timestamp();
    let expires_at = chrono::DateTime::from_timestamp(now, 0)
        .and_then(|now| now.checked_add_signed(ttl))
        .ok_or(AuthError::InvalidTtl { max_secs: max.as_secs() })?;
    let jti = Uuid::now_v7().to_string();
    // Same rules as verification, so the token is never refused later.
    let principal = Principal::new(subject, roles.iter().copied(), expires_at, Some(jti.clone()))?;

    let claims = MintedClaims {
        iss: &config.issuer,
        aud: &config.audience,
        sub: principal.subject(),
        roles: principal.roles().iter().map(|role| role.as_str()).collect(),
        iat: now,
        nbf: now,
        exp: expires_at.timestamp(),
        jti,
    };
    let jti = claims.jti.clone();
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(secret))
        .map(|token| (token, jti))
        .map_err(AuthError::Signing)
}
