//! Auth settings, as one plain struct.
//!
//! The binary fills [`AuthConfig`] from clap flags and environment variables
//! (the variable of each field is named in its doc); this module does not
//! read the environment itself so that tests and the `tandem token` command
//! can build a configuration directly. Nothing is validated here: the
//! [`Verifier`](super::Verifier) checks the whole configuration at start-up
//! and refuses to start on anything unsafe.

use std::path::PathBuf;

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
    /// `kid`. Exclusive with `public_key_pem_file`.
    /// Env: `TANDEM_JWT_JWKS_FILE`.
    pub jwks_file: Option<PathBuf>,
}

impl Default for AuthConfig {
    /// The development defaults: issuer `tandem`, audience `tandem-api`,
    /// 30 s leeway, HS256 — and no secret, which must still be supplied.
    fn default() -> Self {
        Self {
            issuer: DEFAULT_ISSUER.to_owned(),
            audience: DEFAULT_AUDIENCE.to_owned(),
            leeway_secs: DEFAULT_LEEWAY_SECS,
            algorithms: vec![DEFAULT_ALGORITHMS.to_owned()],
            hs256_secret: None,
            public_key_pem_file: None,
            jwks_file: None,
        }
    }
}
