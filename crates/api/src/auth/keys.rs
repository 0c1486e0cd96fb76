//! Verification keys: which algorithms are accepted, which keys verify them,
//! and which key verifies a given token.
//!
//! Exactly one key source is active:
//! * the HS256 secret (development), or
//! * one PEM public key, used for every token whatever its `kid`, or
//! * a JWKS file, whose keys are selected by `kid` only, or
//! * the identity provider's JWKS URL (see `jwks`), selected the same way.
//!
//! Every key remembers its type (RSA, EC P-256/P-384, Ed25519) and, for a
//! JWK, the `alg` it was published for; a key only ever verifies algorithms
//! it was meant for. That is what defeats algorithm confusion: the HMAC
//! verifier never holds a public key, and an RSA key is never offered to an
//! EC or HMAC verifier.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyOperations, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};
use serde::Deserialize;
use serde::de::IgnoredAny;

use super::AuthError;
use super::jwks::RemoteJwks;

/// The keys of a JWKS, by `kid`.
pub(super) type KeySet = HashMap<String, PublicKey>;

/// The algorithms Tandem accepts, by their RFC 7518 names.
const SUPPORTED: [Algorithm; 10] = [
    Algorithm::HS256,
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// The RFC 7518 name of `alg` (as written in a token header).
pub(super) const fn algorithm_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::HS256 => "HS256",
        Algorithm::HS384 => "HS384",
        Algorithm::HS512 => "HS512",
        Algorithm::RS256 => "RS256",
        Algorithm::RS384 => "RS384",
        Algorithm::RS512 => "RS512",
        Algorithm::PS256 => "PS256",
        Algorithm::PS384 => "PS384",
        Algorithm::PS512 => "PS512",
        Algorithm::ES256 => "ES256",
        Algorithm::ES384 => "ES384",
        Algorithm::EdDSA => "EdDSA",
        // `Algorithm` is non-exhaustive; a future variant is not in
        // `SUPPORTED`, so this name never matches a configured algorithm.
        _ => "unsupported",
    }
}

/// Parses one configured algorithm name (exact, case-sensitive).
pub(super) fn parse_algorithm(name: &str) -> Result<Algorithm, AuthError> {
    SUPPORTED
        .into_iter()
        .find(|alg| algorithm_name(*alg) == name)
        .ok_or_else(|| AuthError::UnknownAlgorithm { name: name.to_owned() })
}

/// What a public key is, which decides the algorithms it can verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum KeyType {
    Rsa,
    EcP256,
    EcP384,
    Ed25519,
}

impl KeyType {
    /// Whether a key of this type can verify `alg`. EC keys are tied to
    /// their curve (ES256 needs P-256, ES384 P-384).
    fn verifies(self, alg: Algorithm) -> bool {
        match self {
            Self::Rsa => alg.family() == AlgorithmFamily::Rsa,
            Self::EcP256 => alg == Algorithm::ES256,
            Self::EcP384 => alg == Algorithm::ES384,
            Self::Ed25519 => alg == Algorithm::EdDSA,
        }
    }

    /// A probe algorithm, used to let the crypto backend parse the key.
    const fn probe_algorithm(self) -> Algorithm {
        match self {
            Self::Rsa => Algorithm::RS256,
            Self::EcP256 => Algorithm::ES256,
            Self::EcP384 => Algorithm::ES384,
            Self::Ed25519 => Algorithm::EdDSA,
        }
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Rsa => "RSA",
            Self::EcP256 => "EC P-256",
            Self::EcP384 => "EC P-384",
            Self::Ed25519 => "Ed25519",
        })
    }
}

/// One public key and what it may verify.
#[derive(Clone)]
pub(super) struct PublicKey {
    key_type: KeyType,
    /// The JWK's `alg`, when the JWKS pins one; then only that algorithm.
    alg: Option<Algorithm>,
    /// The JWK's `use` (only `sig` or absent: others are skipped at load).
    key_use: Option<String>,
    key: DecodingKey,
}

impl PublicKey {
    fn verifies(&self, alg: Algorithm) -> bool {
        self.key_type.verifies(alg) && self.alg.is_none_or(|pinned| pinned == alg)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("key_type", &self.key_type)
            .field("alg", &self.alg.map(algorithm_name))
            .field("use", &self.key_use)
            .finish_non_exhaustive()
    }
}

/// The active key source (see the module doc).
#[derive(Clone)]
pub(super) enum KeyStore {
    Secret(DecodingKey),
    Pem(PublicKey),
    Jwks(KeySet),
    Remote(Arc<RemoteJwks>),
}

impl fmt::Debug for KeyStore {
    /// Never prints key bytes (the secret above all): only the kind and the
    /// public metadata.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Secret(_) => f.write_str("Secret([REDACTED])"),
            Self::Pem(key) => f.debug_tuple("Pem").field(key).finish(),
            Self::Jwks(keys) => {
                let mut kids: Vec<_> = keys.iter().collect();
                kids.sort_unstable_by(|a, b| a.0.cmp(b.0));
                f.debug_map().entries(kids).finish()
            }
            Self::Remote(remote) => f.debug_tuple("Remote").field(remote).finish(),
        }
    }
}

impl KeyStore {
    /// The key that verifies a token signed with `alg` (already known to be
    /// accepted) naming `kid`.
    pub(super) fn select(&self, alg: Algorithm, kid: Option<&str>) -> Result<&DecodingKey, AuthError> {
        match self {
            Self::Secret(key) if alg == Algorithm::HS256 => Ok(key),
            Self::Secret(_) => Err(AuthError::KeyAlgorithmMismatch),
            // One configured key: `kid` carries no information.
            Self::Pem(key) if key.verifies(alg) => Ok(&key.key),
            Self::Pem(_) => Err(AuthError::KeyAlgorithmMismatch),
            Self::Jwks(keys) => select_jwk(keys, alg, kid),
            // The caller selects from the current set itself (it may have
            // to fetch first); here there is no set to borrow from.
            Self::Remote(_) => Err(AuthError::UnknownKeyId),
        }
    }

    /// Whether some key can verify `alg` (start-up check).
    pub(super) fn verifies(&self, alg: Algorithm) -> bool {
        match self {
            Self::Secret(_) => alg == Algorithm::HS256,
            Self::Pem(key) => key.verifies(alg),
            Self::Jwks(keys) => keys.values().any(|key| key.verifies(alg)),
            // Unknown until fetched; the provider decides its algorithms.
            Self::Remote(_) => true,
        }
    }

    /// The type of the single PEM key, for error messages.
    pub(super) const fn pem_key_type(&self) -> Option<KeyType> {
        match self {
            Self::Pem(key) => Some(key.key_type),
            _ => None,
        }
    }

    /// The JWKS key ids, sorted (for start-up logging).
    pub(super) fn key_ids(&self) -> Vec<&str> {
        let mut kids: Vec<&str> = match self {
            Self::Jwks(keys) => keys.keys().map(String::as_str).collect(),
            _ => Vec::new(),
        };
        kids.sort_unstable();
        kids
    }
}

/// The key of a JWKS that verifies a token signed with `alg` naming `kid`.
pub(super) fn select_jwk<'k>(
    keys: &'k KeySet,
    alg: Algorithm,
    kid: Option<&str>,
) -> Result<&'k DecodingKey, AuthError> {
    let kid = kid.ok_or(AuthError::MissingKeyId)?;
    let key = keys.get(kid).ok_or(AuthError::UnknownKeyId)?;
    if key.verifies(alg) { Ok(&key.key) } else { Err(AuthError::KeyAlgorithmMismatch) }
}

/// Loads one public key from a PEM file and works out its type.
pub(super) fn load_pem(path: &Path) -> Result<PublicKey, AuthError> {
    let invalid = |reason: &str| AuthError::InvalidKey { path: path.to_owned(), reason: reason.to_owned() };
    let bytes = std::fs::read(path).map_err(|source| AuthError::KeyFile { path: path.to_owned(), source })?;
    let text = std::str::from_utf8(&bytes).map_err(|_| invalid("not a PEM file"))?;
    // Only public keys: a private key on an API server is a secret that has
    // no business there (and jsonwebtoken would quietly accept one).
    let label = text.trim_start();
    if !(label.starts_with("-----BEGIN PUBLIC KEY-----") || label.starts_with("-----BEGIN RSA PUBLIC KEY-----")) {
        return Err(invalid(if text.contains("PRIVATE KEY") {
            "holds a private key; give the public key (openssl pkey -pubout)"
        } else {
            "not a PEM public key (expected -----BEGIN PUBLIC KEY-----)"
        }));
    }
    // jsonwebtoken classifies the key by its algorithm OID; exactly one of
    // these succeeds for a supported key.
    let (key_type, key) = if let Ok(key) = DecodingKey::from_rsa_pem(&bytes) {
        (KeyType::Rsa, key)
    } else if let Ok(key) = DecodingKey::from_ec_pem(&bytes) {
        // The uncompressed SEC1 point's length gives the curve.
        let key_type = match key.try_get_as_bytes().map(<[u8]>::len) {
            Ok(65) => KeyType::EcP256,
            Ok(97) => KeyType::EcP384,
            _ => return Err(invalid("EC key on an unsupported curve (use P-256 or P-384)")),
        };
        (key_type, key)
    } else if let Ok(key) = DecodingKey::from_ed_pem(&bytes) {
        (KeyType::Ed25519, key)
    } else {
        return Err(invalid("unsupported or corrupt public key (RSA, EC P-256/P-384 or Ed25519)"));
    };
    probe(&key, key_type).map_err(|()| invalid("the public key is corrupt"))?;
    Ok(PublicKey { key_type, alg: None, key_use: None, key })
}

/// Lets the crypto backend parse the key now, so a corrupt key stops the
/// start-up instead of failing every request. (The RSA backend parses its
/// key only while verifying, so an RSA key passes here; its ASN.1 was
/// already checked when the PEM was read.)
fn probe(key: &DecodingKey, key_type: KeyType) -> Result<(), ()> {
    match jsonwebtoken::crypto::verify("AA", b"probe", key, key_type.probe_algorithm()) {
        Ok(_) => Ok(()),
        Err(err) => match err.kind() {
            ErrorKind::InvalidEcdsaKey
            | ErrorKind::InvalidEddsaKey
            | ErrorKind::InvalidRsaKey(_)
            | ErrorKind::InvalidKeyFormat => Err(()),
            // Any other error concerns the dummy signature, not the key.
            _ => Ok(()),
        },
    }
}

/// The members of each JWKS entry that `jsonwebtoken::jwk` parses past:
/// private key material, which a key set for verification must not hold
/// (an RSA or EC private JWK parses as its public half there).
#[derive(Deserialize)]
struct PrivateMembers {
    keys: Vec<PrivateMember>,
}

#[derive(Deserialize)]
struct PrivateMember {
    /// The private exponent / scalar of RSA, EC and OKP keys.
    d: Option<IgnoredAny>,
}

/// Loads a JWKS file into keys by `kid`. The document is decoded by
/// `jsonwebtoken::jwk` (RFC 7517); this function adds the policy.
///
/// Refused (the server does not start): unreadable or malformed JSON, a key
/// without `kid`, duplicate `kid`s, private or symmetric key material, a
/// key type or curve Tandem cannot verify, an `alg` that contradicts the key
/// type. Skipped: keys whose `use` is not `sig` or whose `key_ops` exclude
/// `verify` (encryption keys published alongside signing keys).
pub(super) fn load_jwks(path: &Path) -> Result<KeySet, AuthError> {
    let invalid = |reason: String| AuthError::InvalidJwks { path: path.to_owned(), reason };
    let bytes = std::fs::read(path).map_err(|source| AuthError::KeyFile { path: path.to_owned(), source })?;
    let set: JwkSet = serde_json::from_slice(&bytes).map_err(|err| invalid(format!("not a JWKS document: {err}")))?;
    let private: PrivateMembers =
        serde_json::from_slice(&bytes).map_err(|err| invalid(format!("not a JWKS document: {err}")))?;

    let mut keys = HashMap::new();
    for (index, (jwk, secret)) in set.keys.iter().zip(&private.keys).enumerate() {
        let kid = jwk.common.key_id.as_deref();
        let name = kid.map_or_else(|| format!("key #{index}"), |kid| format!("key `{kid}`"));
        if secret.d.is_some() || matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_)) {
            return Err(invalid(format!(
                "{name} holds private or symmetric key material; a JWKS for verification holds public keys only"
            )));
        }
        let for_signatures = jwk.common.public_key_use.as_ref().is_none_or(|u| *u == PublicKeyUse::Signature)
            && jwk.common.key_operations.as_ref().is_none_or(|ops| ops.contains(&KeyOperations::Verify));
        if !for_signatures {
            tracing::debug!(key = %name, "JWKS key skipped: not a signature key");
            continue;
        }
        let kid = match kid {
            Some(kid) if !kid.is_empty() => kid.to_owned(),
            _ => return Err(invalid(format!("{name} has no `kid`; tokens select keys by kid"))),
        };
        let key = jwk_to_key(jwk).map_err(|reason| invalid(format!("{name}: {reason}")))?;
        if keys.insert(kid, key).is_some() {
            return Err(invalid(format!("{name} appears twice")));
        }
    }
    Ok(keys)
}

/// Parses a key set fetched from an identity provider. Unlike a file (which
/// an operator wrote and can fix before the server starts), the provider's
/// set is taken as it is: a key Tandem cannot use (`use: enc`, an
/// unsupported `kty` or curve, a malformed member, no `kid`) is skipped
/// and named in `skipped`, so one odd key never hides the good ones.
/// Private key material is skipped too (and reported, since it means the
/// provider publishes secrets). Two keys with one `kid` are both dropped: a
/// token naming it could be meant for either. Fails only when the document
/// is not a JWKS at all.
pub(super) fn parse_remote_jwks(bytes: &[u8]) -> Result<(KeySet, Vec<String>), String> {
    #[derive(Deserialize)]
    struct Document {
        keys: Vec<serde_json::Value>,
    }
    let document: Document = serde_json::from_slice(bytes).map_err(|err| format!("not a JWKS document: {err}"))?;
    let mut keys = KeySet::new();
    let mut duplicates = Vec::new();
    let mut skipped = Vec::new();
    for (index, value) in document.keys.into_iter().enumerate() {
        let kid = value.get("kid").and_then(serde_json::Value::as_str).map(str::to_owned);
        let name = kid.as_deref().map_or_else(|| format!("key #{index}"), |kid| format!("key `{kid}`"));
        if value.get("d").is_some() {
            skipped.push(format!("{name}: holds private key material"));
            continue;
        }
        let jwk: Jwk = match serde_json::from_value(value) {
            Ok(jwk) => jwk,
            Err(err) => {
                skipped.push(format!("{name}: not a JWK: {err}"));
                continue;
            }
        };
        let for_signatures = jwk.common.public_key_use.as_ref().is_none_or(|u| *u == PublicKeyUse::Signature)
            && jwk.common.key_operations.as_ref().is_none_or(|ops| ops.contains(&KeyOperations::Verify));
        if !for_signatures {
            skipped.push(format!("{name}: not a signature key"));
            continue;
        }
        let Some(kid) = kid.filter(|kid| !kid.is_empty()) else {
            skipped.push(format!("{name}: no `kid`"));
            continue;
        };
        match jwk_to_key(&jwk) {
            Ok(key) => {
                if keys.insert(kid.clone(), key).is_some() {
                    duplicates.push(kid);
                }
            }
            Err(reason) => skipped.push(format!("{name}: {reason}")),
        }
    }
    for kid in duplicates {
        if keys.remove(&kid).is_some() {
            skipped.push(format!("key `{kid}`: appears more than once"));
        }
    }
    Ok((keys, skipped))
}

/// Builds one verification key from a JWK, checking that its `kty`, `crv`
/// and `alg` agree and that an EC or Ed25519 point has its curve's length.
fn jwk_to_key(jwk: &Jwk) -> Result<PublicKey, String> {
    let (key_type, point_len) = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => (KeyType::Rsa, None),
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            // SEC1 uncompressed point: 0x04 || x || y.
            EllipticCurve::P256 => (KeyType::EcP256, Some(1 + 2 * 32)),
            EllipticCurve::P384 => (KeyType::EcP384, Some(1 + 2 * 48)),
            ref crv => return Err(format!("unsupported curve `{}` (P-256, P-384, Ed25519)", curve_name(crv))),
        },
        AlgorithmParameters::OctetKeyPair(okp) => match okp.curve {
            EllipticCurve::Ed25519 => (KeyType::Ed25519, Some(32)),
            ref crv => return Err(format!("unsupported curve `{}` (P-256, P-384, Ed25519)", curve_name(crv))),
        },
        AlgorithmParameters::OctetKey(_) => return Err("a symmetric key cannot verify here".to_owned()),
        AlgorithmParameters::Other(other) => {
            let kty = other.fields.get("kty").and_then(serde_json::Value::as_str).unwrap_or("");
            return Err(format!("unsupported key type or members of `{kty}` (RSA, EC, OKP)"));
        }
        // `AlgorithmParameters` is non-exhaustive: a key type added later
        // is not one Tandem verifies.
        _ => return Err("unsupported key type (RSA, EC, OKP)".to_owned()),
    };
    let key = DecodingKey::from_jwk(jwk).map_err(|err| format!("the key members do not decode: {err}"))?;
    if let Some(len) = point_len
        && key.try_get_as_bytes().map(<[u8]>::len) != Ok(len)
    {
        return Err("the public point has the wrong length for the curve".to_owned());
    }
    let alg = match jwk.common.key_algorithm {
        None => None,
        Some(named) => {
            let name = named.to_string();
            let alg = parse_algorithm(&name).map_err(|_| format!("unsupported `alg` `{name}`"))?;
            if !key_type.verifies(alg) {
                return Err(format!("`alg` {name} does not fit a {key_type} key"));
            }
            Some(alg)
        }
    };
    probe(&key, key_type).map_err(|()| "the public key is corrupt".to_owned())?;
    let key_use = jwk.common.public_key_use.as_ref().map(|u| match u {
        PublicKeyUse::Signature => "sig".to_owned(),
        PublicKeyUse::Encryption => "enc".to_owned(),
        PublicKeyUse::Other(other) => other.clone(),
    });
    Ok(PublicKey { key_type, alg, key_use, key })
}

/// The JWK name of a curve.
const fn curve_name(curve: &EllipticCurve) -> &'static str {
    match curve {
        EllipticCurve::P256 => "P-256",
        EllipticCurve::P384 => "P-384",
        EllipticCurve::P521 => "P-521",
        EllipticCurve::Ed25519 => "Ed25519",
        // `EllipticCurve` is non-exhaustive; a curve added later is one
        // Tandem does not verify either.
        _ => "unknown",
    }
}
