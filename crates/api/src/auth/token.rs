//! Checks on the raw token text and its header, before `jsonwebtoken` sees
//! the token.
//!
//! `jsonwebtoken` verifies signatures and claims but leaves some decisions to
//! the caller: it parses header parameters such as `jwk`, `jku`, `x5u` and
//! `x5c` without refusing them, ignores `crit`, and keeps the last of
//! duplicated header keys. Here the header is decoded independently (strict
//! base64url, duplicate keys refused) so that a token is refused before any
//! key is chosen when it:
//! * is empty, too long, not three base64url segments, or has an empty
//!   signature;
//! * says `alg: none` in any spelling;
//! * names an algorithm outside the configured set;
//! * carries a header parameter that lets the token choose its own key or
//!   demands processing we do not do (`jku`, `x5u`, `jwk`, `x5c`, `crit`,
//!   `enc`, `zip`).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::{Map, Value};

use super::AuthError;
use super::keys::algorithm_name;

/// Longest accepted token, in bytes. Most tokens are under 2 KiB, but an
/// Entra ID token carries up to 200 group ids (over 10 KiB once encoded),
/// and Okta's with a `groups` claim grow likewise; the cap bounds the work
/// an unauthenticated caller can cause.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Header parameters that are refused whatever their value.
/// `jku`/`x5u` would make us fetch a key from a URL the token chooses;
/// `jwk`/`x5c` embed a key the token's author controls; `crit` names
/// extensions we would be required to understand; `enc`/`zip` belong to
/// JWE, which we do not accept.
const FORBIDDEN_HEADER_PARAMETERS: [&str; 7] = ["jku", "x5u", "jwk", "x5c", "crit", "enc", "zip"];

/// Longest accepted `kid`; key ids are short labels.
const MAX_KID_LEN: usize = 256;

/// What the verifier needs from a header that passed the checks.
#[derive(Debug)]
pub(super) struct CheckedHeader {
    /// The signing algorithm, one of the accepted ones.
    pub(super) alg: Algorithm,
    /// The key id, if any.
    pub(super) kid: Option<String>,
}

/// Runs every pre-verification check on `token` (see the module doc).
pub(super) fn check(token: &str, accepted: &[Algorithm]) -> Result<CheckedHeader, AuthError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(AuthError::TooLong { max: MAX_TOKEN_BYTES });
    }
    let mut segments = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (segments.next(), segments.next(), segments.next(), segments.next())
    else {
        return Err(AuthError::Malformed);
    };
    if header.is_empty()
        || payload.is_empty()
        || ![header, payload, signature].iter().all(|segment| is_base64url(segment))
    {
        return Err(AuthError::Malformed);
    }

    let header_bytes = URL_SAFE_NO_PAD.decode(header).map_err(|_| AuthError::Malformed)?;
    let UniqueKeyObject(header) = serde_json::from_slice(&header_bytes).map_err(|_| AuthError::Malformed)?;

    let alg = match header.get("alg") {
        Some(Value::String(alg)) => alg,
        _ => return Err(AuthError::Malformed),
    };
    // `none` first, in any case and with stray blanks: some libraries
    // compare case-insensitively, and the refusal must not depend on that.
    if alg.trim().eq_ignore_ascii_case("none") {
        return Err(AuthError::Unsigned);
    }
    if let Some(parameter) = FORBIDDEN_HEADER_PARAMETERS.into_iter().find(|parameter| header.contains_key(*parameter)) {
        return Err(AuthError::ForbiddenHeader { parameter });
    }
    // Exact, case-sensitive match against the configured set only.
    let alg = accepted
        .iter()
        .copied()
        .find(|accepted| algorithm_name(*accepted) == alg)
        .ok_or(AuthError::AlgorithmNotAllowed)?;

    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(kid)) if !kid.is_empty() && kid.len() <= MAX_KID_LEN => Some(kid.clone()),
        Some(_) => return Err(AuthError::Malformed),
    };

    // Checked last so that an unsigned token with an empty signature is
    // reported as unsigned, the more telling reason.
    if signature.is_empty() {
        return Err(AuthError::Malformed);
    }
    Ok(CheckedHeader { alg, kid })
}

/// The unpadded base64url alphabet (RFC 7515 §2); anything else, including
/// `=` padding and blanks, makes the token malformed.
fn is_base64url(segment: &str) -> bool {
    segment.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A JSON object that refuses duplicate keys. RFC 7515 §4 lets a parser
/// reject them, and must: with duplicates, two parsers can read two
/// different headers from one token (`{"alg":"none","alg":"RS256"}`).
/// The verifier decodes the claims with it too, for the same reason.
pub(super) struct UniqueKeyObject(pub(super) Map<String, Value>);

impl<'de> Deserialize<'de> for UniqueKeyObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor;

        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = UniqueKeyObject;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object without duplicate keys")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
                let mut object = Map::new();
                while let Some(key) = access.next_key::<String>()? {
                    if object.contains_key(&key) {
                        return Err(de::Error::custom("duplicate key"));
                    }
                    let value = access.next_value()?;
                    object.insert(key, value);
                }
                Ok(UniqueKeyObject(object))
            }
        }

        deserializer.deserialize_map(ObjectVisitor)
    }
}
