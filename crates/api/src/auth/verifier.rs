//! [`Verifier`]: checks the auth configuration once at start-up, then turns
//! bearer tokens into [`Principal`]s.
//!
//! Verification order, cheapest and most telling first: the raw token and
//! its header (`token`), then key selection by algorithm and `kid` (`keys`),
//! then `jsonwebtoken` (signature first, then `exp`, `nbf`, `iss`, `aud` and
//! the presence of `sub`), and last Tandem's own claims (`roles`, `sub` as a
//! person id, `jti`). No claim is looked at before the signature holds.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, Validation};
use secrecy::ExposeSecret as _;
use serde::Deserialize;
use serde_json::Value;

use super::config::{MAX_LEEWAY_SECS, MIN_HS256_SECRET_BYTES};
use super::keys::{self, KeyStore, algorithm_name, parse_algorithm};
use super::{AuthConfig, AuthError, Principal, Role, token};

/// Verifies bearer tokens against one validated configuration. Cheap to
/// clone; build it once at start-up and share it.
#[derive(Clone)]
pub struct Verifier {
    /// The accepted algorithms, in configuration order.
    algorithms: Vec<Algorithm>,
    /// One `jsonwebtoken` validation per accepted algorithm: `jsonwebtoken`
    /// requires every algorithm of a validation to fit the key, so a mixed
    /// RSA/EC/EdDSA configuration needs one each.
    validations: HashMap<Algorithm, Validation>,
    keys: KeyStore,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("algorithms", &self.algorithms.iter().map(|alg| algorithm_name(*alg)).collect::<Vec<_>>())
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// Validates `config` and loads its keys.
    ///
    /// # Errors
    /// Refuses to start (see [`AuthError`]'s configuration variants) on: an
    /// empty issuer or audience; a leeway over 300 s; no algorithm, an
    /// unknown one or `none`; HS256 mixed with public-key algorithms; HS256
    /// without a secret or with one shorter than 32 bytes; a public-key
    /// algorithm without a key, or with a key of the wrong type; both a PEM
    /// key and a JWKS; key material no accepted algorithm uses; an
    /// unreadable, private, corrupt or unsupported key or JWKS.
    pub fn new(config: &AuthConfig) -> Result<Self, AuthError> {
        if config.issuer.trim().is_empty() {
            return Err(AuthError::EmptySetting { setting: "TANDEM_JWT_ISSUER" });
        }
        if config.audience.trim().is_empty() {
            return Err(AuthError::EmptySetting { setting: "TANDEM_JWT_AUDIENCE" });
        }
        if config.leeway_secs > MAX_LEEWAY_SECS {
            return Err(AuthError::LeewayTooLarge { leeway_secs: config.leeway_secs, max_secs: MAX_LEEWAY_SECS });
        }
        let algorithms = parse_algorithms(&config.algorithms)?;
        let keys = load_keys(config, &algorithms)?;
        let validations = algorithms.iter().map(|alg| (*alg, validation(config, *alg))).collect();
        tracing::info!(
            algorithms = ?algorithms.iter().map(|alg| algorithm_name(*alg)).collect::<Vec<_>>(),
            key_ids = ?keys.key_ids(),
            issuer = %config.issuer,
            audience = %config.audience,
            leeway_secs = config.leeway_secs,
            "JWT verifier configured"
        );
        Ok(Self { algorithms, validations, keys })
    }

    /// Verifies a bearer token (without the `Bearer ` prefix).
    ///
    /// # Errors
    /// A token refusal ([`AuthError::is_token_refusal`]); the error never
    /// contains the token or anything taken from it.
    pub fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let header = token::check(token, &self.algorithms)?;
        let key = self.keys.select(header.alg, header.kid.as_deref())?;
        let validation = self.validations.get(&header.alg).ok_or(AuthError::AlgorithmNotAllowed)?;
        let claims = jsonwebtoken::decode::<Claims>(token, key, validation).map_err(|err| refusal(&err))?.claims;
        claims.into_principal()
    }
}

/// Parses and cross-checks the configured algorithm names.
fn parse_algorithms(names: &[String]) -> Result<Vec<Algorithm>, AuthError> {
    let mut algorithms = Vec::new();
    for name in names.iter().map(|name| name.trim()).filter(|name| !name.is_empty()) {
        let alg = parse_algorithm(name)?;
        if !algorithms.contains(&alg) {
            algorithms.push(alg);
        }
    }
    if algorithms.is_empty() {
        return Err(AuthError::NoAlgorithm);
    }
    let hmac = algorithms.iter().any(|alg| alg.family() == AlgorithmFamily::Hmac);
    if hmac && algorithms.len() > 1 {
        return Err(AuthError::MixedAlgorithms);
    }
    Ok(algorithms)
}

/// Loads the one key source the algorithms call for, refusing any other.
fn load_keys(config: &AuthConfig, algorithms: &[Algorithm]) -> Result<KeyStore, AuthError> {
    let hmac = algorithms.contains(&Algorithm::HS256);
    if hmac {
        if config.public_key_pem_file.is_some() {
            return Err(AuthError::UnusedKeyMaterial { setting: "TANDEM_JWT_PUBLIC_KEY_FILE" });
        }
        if config.jwks_file.is_some() {
            return Err(AuthError::UnusedKeyMaterial { setting: "TANDEM_JWT_JWKS_FILE" });
        }
        let secret =
            config.hs256_secret.as_ref().ok_or_else(|| AuthError::MissingKey { algorithm: "HS256".to_owned() })?;
        let secret = secret.expose_secret().as_bytes();
        if secret.len() < MIN_HS256_SECRET_BYTES {
            return Err(AuthError::WeakSecret { min_bytes: MIN_HS256_SECRET_BYTES });
        }
        return Ok(KeyStore::Secret(DecodingKey::from_secret(secret)));
    }

    if config.hs256_secret.is_some() {
        return Err(AuthError::UnusedKeyMaterial { setting: "TANDEM_JWT_SECRET" });
    }
    let keys = match (&config.public_key_pem_file, &config.jwks_file) {
        (Some(_), Some(_)) => return Err(AuthError::AmbiguousKeySource),
        (Some(pem), None) => KeyStore::Pem(keys::load_pem(pem)?),
        (None, Some(jwks)) => KeyStore::Jwks(keys::load_jwks(jwks)?),
        (None, None) => {
            return Err(AuthError::MissingKey {
                algorithm: algorithms.first().map_or("", |alg| algorithm_name(*alg)).to_owned(),
            });
        }
    };
    for alg in algorithms {
        if !keys.verifies(*alg) {
            let algorithm = algorithm_name(*alg).to_owned();
            return Err(match keys.pem_key_type() {
                Some(key_type) => AuthError::KeyMismatch { algorithm, key: key_type.to_string() },
                None => AuthError::MissingKey { algorithm },
            });
        }
    }
    Ok(keys)
}

/// The `jsonwebtoken` rules for one algorithm, every default made explicit
/// because several are unsafe for us (see `STYLE.md`, "Known traps").
fn validation(config: &AuthConfig, alg: Algorithm) -> Validation {
    let mut validation = Validation::new(alg);
    // Without this, a token lacking `iss` or `aud` skips those checks.
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation.set_issuer(&[config.issuer.as_str()]);
    validation.set_audience(&[config.audience.as_str()]);
    validation.leeway = config.leeway_secs;
    validation.validate_exp = true;
    // Off by default: a token issued for later would be accepted now.
    validation.validate_nbf = true;
    validation.validate_aud = true;
    validation.reject_tokens_expiring_in_less_than = 0;
    validation
}

/// Maps a `jsonwebtoken` error to a refusal, keeping its details out.
fn refusal(err: &jsonwebtoken::errors::Error) -> AuthError {
    match err.kind() {
        ErrorKind::InvalidSignature => AuthError::BadSignature,
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
        ErrorKind::InvalidAudience => AuthError::WrongAudience,
        ErrorKind::MissingRequiredClaim(claim) => AuthError::MissingClaim { claim: claim_name(claim) },
        ErrorKind::InvalidClaimFormat(claim) => AuthError::InvalidClaim { claim: claim_name(claim) },
        ErrorKind::InvalidAlgorithm
        | ErrorKind::MissingAlgorithm
        | ErrorKind::InvalidAlgorithmName
        | ErrorKind::UnsupportedAlgorithm => AuthError::AlgorithmNotAllowed,
        // A key the backend cannot use for this token (e.g. a malformed
        // signature length) amounts to a signature that does not verify.
        ErrorKind::InvalidEcdsaKey
        | ErrorKind::InvalidEddsaKey
        | ErrorKind::InvalidRsaKey(_)
        | ErrorKind::InvalidKeyFormat => AuthError::BadSignature,
        _ => AuthError::Malformed,
    }
}

/// The claim names `jsonwebtoken` reports, as static strings.
fn claim_name(claim: &str) -> &'static str {
    match claim {
        "exp" => "exp",
        "nbf" => "nbf",
        "iss" => "iss",
        "aud" => "aud",
        "sub" => "sub",
        _ => "unknown",
    }
}

/// The claims Tandem reads beyond `jsonwebtoken`'s checks. Every field is a
/// loose JSON value so that a wrongly typed claim is reported by name
/// (`InvalidClaim`) instead of failing deserialization as a whole; by the
/// time these are read, `jsonwebtoken` has verified the signature and that
/// `exp` and `sub` are present. No `flatten`: serde's derive then refuses
/// duplicate claims.
#[derive(Deserialize)]
struct Claims {
    sub: Option<Value>,
    exp: Option<Value>,
    roles: Option<Value>,
    jti: Option<Value>,
}

impl Claims {
    fn into_principal(self) -> Result<Principal, AuthError> {
        let Some(Value::String(subject)) = self.sub else {
            return Err(AuthError::InvalidClaim { claim: "sub" });
        };
        let expires_at = self.exp.as_ref().and_then(numeric_date).ok_or(AuthError::InvalidClaim { claim: "exp" })?;
        let token_id = match self.jti {
            None => None,
            Some(Value::String(jti)) => Some(jti),
            Some(_) => return Err(AuthError::InvalidClaim { claim: "jti" }),
        };
        let roles = match self.roles {
            None => return Err(AuthError::NoKnownRole),
            Some(Value::Array(roles)) => roles,
            Some(_) => return Err(AuthError::InvalidClaim { claim: "roles" }),
        };
        let mut known = Vec::with_capacity(roles.len());
        for role in roles {
            let Value::String(role) = role else {
                return Err(AuthError::InvalidClaim { claim: "roles" });
            };
            // Unknown role names are ignored, not refused: an identity
            // provider shared with other applications may grant their roles
            // in the same token. A token with no role Tandem knows is
            // refused by `Principal::new`.
            if let Ok(role) = role.parse::<Role>() {
                known.push(role);
            }
        }
        Principal::new(subject, known, expires_at, token_id)
    }
}

/// An RFC 7519 NumericDate (seconds since the epoch, possibly fractional).
fn numeric_date(value: &Value) -> Option<DateTime<Utc>> {
    let Value::Number(number) = value else {
        return None;
    };
    let seconds = match number.as_i64() {
        Some(seconds) => seconds,
        None => {
            let seconds = number.as_f64()?;
            if !seconds.is_finite() || seconds.abs() > 1e15 {
                return None;
            }
            // Finite and bounded just above, so the cast cannot saturate;
            // sub-second precision is not needed.
            seconds.floor() as i64
        }
    };
    DateTime::from_timestamp(seconds, 0)
}
