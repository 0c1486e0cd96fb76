//! [`Verifier`]: checks the auth configuration once at start-up, then turns
//! bearer tokens into [`Principal`]s.
//!
//! Verification order, cheapest and most telling first: the raw token and
//! its header (`token`), then key selection by algorithm and `kid` (`keys`,
//! fetching the identity provider's key set when it is remote: `jwks`),
//! then `jsonwebtoken` (signature first, then `exp`, `nbf`, `iss`, `aud` and
//! the presence of `sub`), and last Tandem's own claims (the roles at the
//! configured claim path through the role map, the participant's person
//! from `sub` or from the configured claim (`people`), `jti`). No claim is
//! looked at before the signature holds.
//!
//! Two entry points: [`Verifier::authenticate`] (async) does everything and
//! is what requests use; [`Verifier::verify`] (sync) never waits: it uses
//! the keys at hand and cannot look people up, which suits the command line
//! and configurations whose participants' `sub` is their person id.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, Validation};
use secrecy::ExposeSecret as _;
use serde_json::{Map, Value};
use sqlx::PgPool;

use super::config::{MAX_LEEWAY_SECS, MIN_HS256_SECRET_BYTES, PersonMatch};
use super::jwks::{JwksMetrics, RemoteJwks};
use super::keys::{self, KeyStore, algorithm_name, parse_algorithm};
use super::people::PersonDirectory;
use super::token::{CheckedHeader, UniqueKeyObject};
use super::{AuthConfig, AuthError, Principal, Role, token};

/// Longest accepted claim path setting.
const MAX_CLAIM_PATH_LEN: usize = 256;

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
    /// Where the roles are and what they are called.
    roles: RolesClaim,
    /// The claim naming a participant's person, when it is not `sub`.
    person_claim: Option<(String, PersonMatch)>,
    /// Where people are looked up by [`Self::person_claim`].
    people: Option<Arc<PersonDirectory>>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("algorithms", &self.algorithms.iter().map(|alg| algorithm_name(*alg)).collect::<Vec<_>>())
            .field("keys", &self.keys)
            .field("roles_claim", &self.roles.path)
            .field("person_claim", &self.person_claim)
            .finish_non_exhaustive()
    }
}

/// The roles claim: its path and, when configured, the role map.
#[derive(Clone, Debug)]
struct RolesClaim {
    path: String,
    map: Option<HashMap<String, Role>>,
}

/// A verified token's identity, before the person is looked up.
enum Identity {
    /// Nothing left to look up.
    Ready(Principal),
    /// A participant whose person the claim value names.
    LookUp { subject: String, roles: Vec<Role>, expires_at: DateTime<Utc>, token_id: Option<String>, value: String },
}

impl Verifier {
    /// Validates `config` and loads its keys (a JWKS URL is not fetched
    /// here: see [`Verifier::prefetch`]).
    ///
    /// # Errors
    /// Refuses to start (see [`AuthError`]'s configuration variants) on: an
    /// empty issuer or audience; a leeway over 300 s; no algorithm, an
    /// unknown one or `none`; HS256 mixed with public-key algorithms; HS256
    /// without a secret or with one shorter than 32 bytes; a public-key
    /// algorithm without a key, or with a key of the wrong type; more than
    /// one of a PEM key, a JWKS file and a JWKS URL; key material no
    /// accepted algorithm uses; an unreadable, private, corrupt or
    /// unsupported key or JWKS; a JWKS URL that is not https (or loopback
    /// http); an empty claim path; a role map that does not parse.
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
        let roles = RolesClaim {
            path: claim_path(&config.roles_claim, "TANDEM_JWT_ROLES_CLAIM")?,
            map: config.role_map.as_deref().map(parse_role_map).transpose()?,
        };
        let person_claim = match &config.person_claim {
            None => None,
            Some(path) => Some((claim_path(path, "TANDEM_JWT_PERSON_CLAIM")?, config.person_match)),
        };
        let keys = load_keys(config, &algorithms)?;
        let validations = algorithms.iter().map(|alg| (*alg, validation(config, *alg))).collect();
        tracing::info!(
            algorithms = ?algorithms.iter().map(|alg| algorithm_name(*alg)).collect::<Vec<_>>(),
            key_ids = ?keys.key_ids(),
            jwks_url = config.jwks_url.as_deref().map(str::trim),
            issuer = %config.issuer,
            audience = %config.audience,
            leeway_secs = config.leeway_secs,
            roles_claim = %roles.path,
            role_map = roles.map.is_some(),
            person_claim = person_claim.as_ref().map(|(path, _)| path.as_str()),
            person_match = ?person_claim.as_ref().map(|(_, matching)| *matching),
            "JWT verifier configured"
        );
        Ok(Self { algorithms, validations, keys, roles, person_claim, people: None })
    }

    /// Looks participants' people up in `pool` when a person claim is
    /// configured (see `people`); without one this changes nothing.
    #[must_use]
    pub fn with_people(mut self, pool: PgPool) -> Self {
        if let Some((_, matching)) = &self.person_claim {
            self.people = Some(Arc::new(PersonDirectory::new(pool, *matching)));
        }
        self
    }

    /// Records the fetches of the identity provider's key set in
    /// `registry` (`tandem_jwks_fetches_total`, `tandem_jwks_keys`); without
    /// a JWKS URL nothing is registered.
    ///
    /// # Errors
    /// The registry's error when the metrics are registered twice.
    pub fn with_metrics(self, registry: &prometheus::Registry) -> Result<Self, prometheus::Error> {
        if let KeyStore::Remote(remote) = &self.keys {
            remote.set_metrics(JwksMetrics::register(registry)?);
        }
        Ok(self)
    }

    /// Fetches the identity provider's key set now, when keys come from a
    /// JWKS URL; returns whether keys are at hand (always true for the
    /// other key sources). The server starts either way: without keys,
    /// requests are answered `AUTH_UNAVAILABLE` until a fetch succeeds.
    pub async fn prefetch(&self) -> bool {
        match &self.keys {
            KeyStore::Remote(remote) => remote.refresh().await,
            _ => true,
        }
    }

    /// Verifies a bearer token (without the `Bearer ` prefix) with the keys
    /// at hand, without waiting for anything: a remote key set is not
    /// fetched (an unknown `kid` is refused), and a person claim cannot be
    /// looked up ([`AuthError::NoPersonDirectory`] for a participant). For
    /// requests, use [`Verifier::authenticate`].
    ///
    /// # Errors
    /// A token refusal ([`AuthError::is_token_refusal`]); the error never
    /// contains the token or anything taken from it.
    pub fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let header = token::check(token, &self.algorithms)?;
        let claims = match &self.keys {
            KeyStore::Remote(remote) => {
                let keys = remote.current_refreshing().ok_or_else(|| unavailable(remote))?;
                self.decode(token, &header, keys::select_jwk(&keys, header.alg, header.kid.as_deref())?)?
            }
            store => self.decode(token, &header, store.select(header.alg, header.kid.as_deref())?)?,
        };
        match self.identify(claims)? {
            Identity::Ready(principal) => Ok(principal),
            Identity::LookUp { .. } => Err(AuthError::NoPersonDirectory),
        }
    }

    /// Verifies a bearer token (without the `Bearer ` prefix): fetches the
    /// identity provider's key set when it holds no key of the token's
    /// `kid` (rate-limited, see `jwks`) and looks a participant's person up
    /// by the configured claim.
    ///
    /// # Errors
    /// A token refusal ([`AuthError::is_token_refusal`], UNAUTHENTICATED);
    /// a person refusal ([`AuthError::is_person_refusal`], FORBIDDEN);
    /// [`AuthError::KeysUnavailable`] while no key set has been fetched;
    /// [`AuthError::PersonLookupFailed`] when the database cannot be read.
    /// The error never contains the token or anything taken from it.
    pub async fn authenticate(&self, token: &str) -> Result<Principal, AuthError> {
        let header = token::check(token, &self.algorithms)?;
        let claims = match &self.keys {
            KeyStore::Remote(remote) => {
                let keys = match remote.current_refreshing() {
                    Some(keys) if header.kid.as_ref().is_none_or(|kid| keys.contains_key(kid)) => keys,
                    _ => {
                        // An unknown kid: the provider may have rotated.
                        remote.refresh().await;
                        remote.current().ok_or_else(|| unavailable(remote))?
                    }
                };
                self.decode(token, &header, keys::select_jwk(&keys, header.alg, header.kid.as_deref())?)?
            }
            store => self.decode(token, &header, store.select(header.alg, header.kid.as_deref())?)?,
        };
        match self.identify(claims)? {
            Identity::Ready(principal) => Ok(principal),
            Identity::LookUp { subject, roles, expires_at, token_id, value } => {
                let people = self.people.as_ref().ok_or(AuthError::NoPersonDirectory)?;
                let person = people.find(&value).await?;
                Principal::with_person(subject, roles, Some(person), expires_at, token_id)
            }
        }
    }

    /// The signature and the standard claims; then the claims as a map.
    fn decode(&self, token: &str, header: &CheckedHeader, key: &DecodingKey) -> Result<Map<String, Value>, AuthError> {
        let validation = self.validations.get(&header.alg).ok_or(AuthError::AlgorithmNotAllowed)?;
        jsonwebtoken::decode::<UniqueKeyObject>(token, key, validation)
            .map(|data| data.claims.0)
            .map_err(|err| refusal(&err))
    }

    /// Tandem's own claims of a verified token. Every claim is read as a
    /// loose JSON value so that a wrongly typed claim is reported by name
    /// (`InvalidClaim`); by now `jsonwebtoken` has verified the signature
    /// and that `exp` and `sub` are present, and duplicate claims were
    /// refused while decoding.
    fn identify(&self, claims: Map<String, Value>) -> Result<Identity, AuthError> {
        let Some(Value::String(subject)) = claims.get("sub") else {
            return Err(AuthError::InvalidClaim { claim: "sub" });
        };
        let expires_at = claims.get("exp").and_then(numeric_date).ok_or(AuthError::InvalidClaim { claim: "exp" })?;
        let token_id = match claims.get("jti") {
            None => None,
            Some(Value::String(jti)) => Some(jti.clone()),
            Some(_) => return Err(AuthError::InvalidClaim { claim: "jti" }),
        };
        let roles = self.roles.read(&claims)?;
        let Some((path, matching)) = &self.person_claim else {
            return Principal::new(subject.clone(), roles, expires_at, token_id).map(Identity::Ready);
        };
        if !roles.contains(&Role::Participant) {
            // Only participants act as a person; nobody else is looked up.
            return Principal::with_person(subject.clone(), roles, None, expires_at, token_id).map(Identity::Ready);
        }
        let value = match claim_at(&claims, path) {
            Some(Value::String(value)) if !value.trim().is_empty() => value.clone(),
            _ => return Err(AuthError::PersonClaimMissing),
        };
        // OpenID Connect's `email_verified` (a string in some providers,
        // Cognito's among them). Absent means the provider does not say
        // (Entra ID): its addresses are the directory's own.
        let unverified = match claims.get("email_verified") {
            Some(Value::Bool(verified)) => !verified,
            Some(Value::String(verified)) => verified == "false",
            _ => false,
        };
        if *matching == PersonMatch::Email && unverified {
            return Err(AuthError::EmailNotVerified);
        }
        Ok(Identity::LookUp { subject: subject.clone(), roles, expires_at, token_id, value })
    }
}

impl RolesClaim {
    /// The Tandem roles the token grants: the names at the claim path (an
    /// array of strings, or one string of names separated by blanks or
    /// commas, as OAuth's `scope` is), through the role map when there is
    /// one. Unknown names are ignored, not refused: an identity provider
    /// shared with other applications may grant their roles in the same
    /// token. A token with no role Tandem knows is refused by `Principal`.
    fn read(&self, claims: &Map<String, Value>) -> Result<Vec<Role>, AuthError> {
        let invalid = AuthError::InvalidClaim { claim: "roles" };
        let names: Vec<&str> = match claim_at(claims, &self.path) {
            None => return Err(AuthError::NoKnownRole),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| item.as_str().ok_or(AuthError::InvalidClaim { claim: "roles" }))
                .collect::<Result<_, _>>()?,
            Some(Value::String(names)) => {
                names.split(|c: char| c.is_whitespace() || c == ',').filter(|name| !name.is_empty()).collect()
            }
            Some(_) => return Err(invalid),
        };
        Ok(names
            .into_iter()
            .filter_map(|name| match &self.map {
                Some(map) => map.get(name).copied(),
                None => name.parse::<Role>().ok(),
            })
            .collect())
    }
}

/// The value at `path` in `object`: at each level the longest key that
/// matches a prefix of the rest of the path wins, the whole rest first. So
/// `roles` is the top-level claim, `realm_access.roles` the `roles` member
/// of `realm_access`, and `https://example.com/roles` the namespaced claim
/// of that name, dots and all.
fn claim_at<'a>(object: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    if let Some(value) = object.get(path) {
        return Some(value);
    }
    path.rmatch_indices('.').find_map(|(at, _)| match object.get(&path[..at]) {
        Some(Value::Object(inner)) => claim_at(inner, &path[at + 1..]),
        _ => None,
    })
}

/// A claim path setting, trimmed; refused when empty or overlong.
fn claim_path(path: &str, setting: &'static str) -> Result<String, AuthError> {
    let path = path.trim();
    if path.is_empty() || path.len() > MAX_CLAIM_PATH_LEN || path.starts_with('.') || path.ends_with('.') {
        return Err(AuthError::InvalidClaimPath { setting });
    }
    Ok(path.to_owned())
}

/// Parses `TANDEM_JWT_ROLE_MAP`: `idp-name=tandem-role` pairs separated by
/// commas, blanks around names ignored. The last `=` separates the pair
/// (Tandem's role names have none), so an identity provider's name may
/// contain `=`; it may not contain a comma.
fn parse_role_map(spec: &str) -> Result<HashMap<String, Role>, AuthError> {
    let invalid = |reason: String| AuthError::InvalidRoleMap { reason };
    let mut map = HashMap::new();
    for entry in spec.split(',').map(str::trim).filter(|entry| !entry.is_empty()) {
        let Some((name, role)) = entry.rsplit_once('=') else {
            return Err(invalid(format!("`{entry}` is not idp-name=tandem-role")));
        };
        let (name, role) = (name.trim(), role.trim());
        if name.is_empty() {
            return Err(invalid(format!("`{entry}` names no identity provider role")));
        }
        let role = role.parse::<Role>().map_err(|_| {
            invalid(format!("`{role}` is not a Tandem role (admin, coordinator, participant, integrator, analyst)"))
        })?;
        if map.insert(name.to_owned(), role).is_some() {
            return Err(invalid(format!("`{name}` is mapped twice")));
        }
    }
    if map.is_empty() {
        return Err(invalid("maps no role; unset it to use Tandem's role names".to_owned()));
    }
    Ok(map)
}

/// The refusal while a remote key set has not arrived.
fn unavailable(remote: &RemoteJwks) -> AuthError {
    AuthError::KeysUnavailable { retry_after_secs: remote.retry_after_secs() }
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
        if config.jwks_url.is_some() {
            return Err(AuthError::UnusedKeyMaterial { setting: "TANDEM_JWT_JWKS_URL" });
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
    let keys = match (&config.public_key_pem_file, &config.jwks_file, &config.jwks_url) {
        (Some(pem), None, None) => KeyStore::Pem(keys::load_pem(pem)?),
        (None, Some(jwks), None) => KeyStore::Jwks(keys::load_jwks(jwks)?),
        // The provider decides which keys it publishes, and may rotate
        // them: nothing about them can be checked before they arrive.
        (None, None, Some(url)) => {
            return Ok(KeyStore::Remote(Arc::new(RemoteJwks::new(url, config.jwks_allow_http, config.jwks_cache)?)));
        }
        (None, None, None) => {
            return Err(AuthError::MissingKey {
                algorithm: algorithms.first().map_or("", |alg| algorithm_name(*alg)).to_owned(),
            });
        }
        _ => return Err(AuthError::AmbiguousKeySource),
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
