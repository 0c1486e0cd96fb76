//! Auth settings, as one plain struct.
//!
//! The binary fills [`AuthConfig`] from clap flags and environment variables
//! (the variable of each field is named in its doc); this module does not
//! read the environment itself so that tests and the `tandem token` command
//! can build a configuration directly. Nothing is validated here: the
//! [`Verifier`](super::Verifier) checks the whole configuration at start-up
//! and refuses to start on anything unsafe.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;

/// Default for [`AuthConfig::issuer`].
pub const DEFAULT_ISSUER: &str = "tandem";
/// Default for [`AuthConfig::audience`].
pub const DEFAULT_AUDIENCE: &str = "tandem-api";
/// Default for [`AuthConfig::leeway_secs`].
pub const DEFAULT_LEEWAY_SECS: u64 = 30;
/// Largest accepted [`AuthConfig::leeway_secs`]: clocks that disagree by more
/// than five minutes are a problem to fix, not to paper over, and a long
/// leeway extends the life of every stolen token.
pub const MAX_LEEWAY_SECS: u64 = 300;
/// Default for [`AuthConfig::algorithms`] (development: HS256 with a secret).
pub const DEFAULT_ALGORITHMS: &str = "HS256";
/// Shortest accepted HS256 secret, in bytes: RFC 7518 §3.2 requires a key at
/// least as long as the hash output (256 bits); a shorter secret can be
/// brute-forced offline from any token.
pub const MIN_HS256_SECRET_BYTES: usize = 32;
/// Default for [`AuthConfig::roles_claim`]: Tandem's own tokens and Entra
/// ID's app roles both use `roles`.
pub const DEFAULT_ROLES_CLAIM: &str = "roles";

/// How a person is found from [`AuthConfig::person_claim`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PersonMatch {
    /// The claim is an e-mail address, compared without regard to case
    /// with the people read model's `email` (erased people never match).
    #[default]
    Email,
    /// The claim is the person's external id (the HRIS or SCIM id they were
    /// registered under), compared without regard to case, as the
    /// registration guard compares them.
    ExternalId,
}

impl std::str::FromStr for PersonMatch {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "email" => Ok(Self::Email),
            "external_id" => Ok(Self::ExternalId),
            other => Err(format!("unknown person match `{other}` (email or external_id)")),
        }
    }
}

/// How the key set of [`AuthConfig::jwks_url`] is cached and refetched.
/// The defaults suit every identity provider we know of; tests shorten them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JwksCache {
    /// How long a fetched key set is used when the response says nothing
    /// (no `Cache-Control: max-age`). Default 5 min.
    pub default_ttl: Duration,
    /// The shortest lifetime granted, whatever `max-age` says (`no-cache`
    /// and `max-age=0` included): a provider asking for no caching must not
    /// make every request a fetch. Default 30 s.
    pub min_ttl: Duration,
    /// The longest lifetime granted, so a revoked key is dropped within a
    /// day even behind a generous `max-age`. Default 24 h.
    pub max_ttl: Duration,
    /// No fetch starts sooner than this after the previous one began,
    /// whatever triggers it (an unknown `kid`, an expired set, a provider
    /// that is down), so a flood of tokens naming made-up key ids cannot
    /// turn the API into a load generator against the identity provider.
    /// Default 30 s.
    pub min_refetch_interval: Duration,
    /// Time one fetch may take, connection included. Default 5 s.
    pub fetch_timeout: Duration,
}

impl Default for JwksCache {
    fn default() -> Self {
        Self {
            default_ttl: Duration::from_secs(5 * 60),
            min_ttl: Duration::from_secs(30),
            max_ttl: Duration::from_secs(24 * 60 * 60),
            min_refetch_interval: Duration::from_secs(30),
            fetch_timeout: Duration::from_secs(5),
        }
    }
}

/// How bearer tokens are verified (and development tokens minted).
///
/// `Debug` is safe to print: the secret is a [`SecretString`], which
/// prints as `[REDACTED]`.
#[derive(Clone, Debug)]
pub struct AuthConfig {
    /// The only accepted `iss` claim; tokens from any other issuer are
    /// refused. Env: `TANDEM_JWT_ISSUER`, default `tandem`.
    pub issuer: String,
    /// The only accepted `aud` value (the token's `aud` must contain it), so
    /// a token minted for another service cannot be replayed here.
    /// Env: `TANDEM_JWT_AUDIENCE`, default `tandem-api`.
    pub audience: String,
    /// Clock-skew allowance in seconds applied to `exp` and `nbf`.
    /// Env: `TANDEM_JWT_LEEWAY`, default 30, at most 300
    /// ([`MAX_LEEWAY_SECS`]); `jsonwebtoken`'s own default (60) is not used.
    pub leeway_secs: u64,
    /// The accepted signing algorithms, the only ones a token's header may
    /// name. Either `HS256` alone (development) or any of `RS256`, `RS384`,
    /// `RS512`, `PS256`, `PS384`, `PS512`, `ES256`, `ES384`, `EdDSA` — never
    /// HMAC and public-key algorithms together, and never `none`. Names are
    /// case-sensitive as in RFC 7518; surrounding blanks and empty entries
    /// are ignored. Env: `TANDEM_JWT_ALGORITHMS`, comma-separated, default
    /// `HS256`.
    pub algorithms: Vec<String>,
    /// The shared HMAC secret for HS256 (at least 32 bytes); required when
    /// `HS256` is accepted and by [`mint`](fn@super::mint), refused otherwise so
    /// a secret never sits beside public keys. Env: `TANDEM_JWT_SECRET`.
    pub hs256_secret: Option<SecretString>,
    /// A PEM file holding one public key (`-----BEGIN PUBLIC KEY-----`, or
    /// `RSA PUBLIC KEY`) for the public-key algorithms; the header's `kid`
    /// is then optional and ignored. Private keys are refused.
    /// Env: `TANDEM_JWT_PUBLIC_KEY_FILE`.
    pub public_key_pem_file: Option<PathBuf>,
    /// A JWKS (RFC 7517) JSON file of public keys, read once at start-up
    /// (never fetched over the network); a token must then name its key with
    /// `kid`. Exclusive with `public_key_pem_file` and `jwks_url`.
    /// Env: `TANDEM_JWT_JWKS_FILE`.
    pub jwks_file: Option<PathBuf>,
    /// The identity provider's JWKS URL (its `jwks_uri`), fetched at
    /// start-up and cached (see [`JwksCache`]); a token must name its key
    /// with `kid`, and an unknown `kid` makes the set be fetched again
    /// (rate-limited), so the provider's key rotation needs no restart.
    /// `https` only, except `http` to a loopback address or with
    /// [`jwks_allow_http`](Self::jwks_allow_http). Exclusive with the PEM
    /// key and the JWKS file. Env: `TANDEM_JWT_JWKS_URL`.
    pub jwks_url: Option<String>,
    /// Allows an `http` JWKS URL to a host that is not a loopback address
    /// (an identity provider inside the cluster network). Keys fetched in
    /// the clear can be replaced by anyone on the path, so this is off by
    /// default. Env: `TANDEM_JWT_JWKS_ALLOW_HTTP`, default false.
    pub jwks_allow_http: bool,
    /// Caching of the key set of [`jwks_url`](Self::jwks_url).
    pub jwks_cache: JwksCache,
    /// Where the roles are in the token: a claim name or a dotted path into
    /// nested objects (`realm_access.roles`). A claim whose name contains
    /// dots (`https://example.com/roles`) is found because, at each level,
    /// the longest key that matches the rest of the path wins: the whole
    /// path as one key first, then shorter prefixes. The value is an array
    /// of strings or one string of names separated by blanks or commas.
    /// Env: `TANDEM_JWT_ROLES_CLAIM`, default `roles`.
    pub roles_claim: String,
    /// Maps the identity provider's role names to Tandem's, as
    /// `idp-name=tandem-role` pairs separated by commas
    /// (`coach-admin=admin,employee=participant`). When set, only mapped
    /// names grant roles (a Tandem role name grants nothing unless mapped,
    /// `admin=admin`), so a role of the same name in another application of
    /// a shared provider never leaks into Tandem. Unset: the names are
    /// Tandem's own. Names are compared exactly. Env: `TANDEM_JWT_ROLE_MAP`.
    pub role_map: Option<String>,
    /// The claim (same path syntax as [`roles_claim`](Self::roles_claim))
    /// that identifies a participant's person, for identity providers whose
    /// `sub` is their own user id. Unset: a participant's `sub` must be the
    /// Tandem person id. Set: a participant's person always comes from this
    /// claim (a provider's `sub` may itself be a UUID, as Keycloak's is, and
    /// must not be mistaken for a Tandem id). Env: `TANDEM_JWT_PERSON_CLAIM`.
    pub person_claim: Option<String>,
    /// How [`person_claim`](Self::person_claim) is matched.
    /// Env: `TANDEM_JWT_PERSON_MATCH` (`email` or `external_id`), default
    /// `email`.
    pub person_match: PersonMatch,
}

impl Default for AuthConfig {
    /// The development defaults: issuer `tandem`, audience `tandem-api`,
    /// 30 s leeway, HS256, roles in `roles`, a participant's `sub` is their
    /// person id — and no secret, which must still be supplied.
    fn default() -> Self {
        Self {
            issuer: DEFAULT_ISSUER.to_owned(),
            audience: DEFAULT_AUDIENCE.to_owned(),
            leeway_secs: DEFAULT_LEEWAY_SECS,
            algorithms: vec![DEFAULT_ALGORITHMS.to_owned()],
            hs256_secret: None,
            public_key_pem_file: None,
            jwks_file: None,
            jwks_url: None,
            jwks_allow_http: false,
            jwks_cache: JwksCache::default(),
            roles_claim: DEFAULT_ROLES_CLAIM.to_owned(),
            role_map: None,
            person_claim: None,
            person_match: PersonMatch::default(),
        }
    }
}
