//! [`AuthError`]: why a token was refused, or why the auth configuration
//! cannot be used.
//!
//! Two audiences read these errors. A client whose token is refused gets
//! `UNAUTHENTICATED` ([`AuthError::api_code`]) and may be told the specific
//! [`AuthError::code`] (e.g. `TOKEN_EXPIRED`, so it knows to refresh). An
//! operator whose configuration is refused at start-up reads the message.
//! Messages therefore never contain the token, any part of it, or a value
//! taken from it (a `kid`, an `alg`, a role string): a token is a
//! credential, and echoing attacker-chosen text into logs invites log
//! injection. Only names fixed by this module (a claim or header name) and
//! operator-supplied configuration (file paths, algorithm names) appear.

use std::path::PathBuf;

/// Everything that can go wrong in authentication.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    // ---- A presented token is refused (client error, UNAUTHENTICATED). ----
    /// Not three base64url segments of a JSON header and payload (this
    /// includes the empty string, garbage and JWE's five segments).
    #[error("the bearer token is not a well-formed JWT")]
    Malformed,
    /// Longer than [`MAX_TOKEN_BYTES`](super::MAX_TOKEN_BYTES); refused before
    /// any decoding so a huge header cannot cost parsing time.
    #[error("the bearer token is longer than {max} bytes")]
    TooLong {
        /// The limit, in bytes.
        max: usize,
    },
    /// `alg: none` in any spelling: an unsigned token proves nothing.
    #[error("unsigned tokens (alg `none`) are refused")]
    Unsigned,
    /// The header names an algorithm the configuration does not accept.
    #[error("the token's signing algorithm is not accepted")]
    AlgorithmNotAllowed,
    /// The header carries a parameter that would let the token choose its
    /// own key (`jku`, `x5u`, `jwk`, `x5c`) or demand unsupported processing
    /// (`crit`, `enc`, `zip`).
    #[error("the token header parameter `{parameter}` is refused")]
    ForbiddenHeader {
        /// The refused header parameter.
        parameter: &'static str,
    },
    /// Keys come from a JWKS, and the header names none with `kid`.
    #[error("the token header names no key (`kid`)")]
    MissingKeyId,
    /// The header's `kid` is not in the JWKS.
    #[error("the token's key id is not known")]
    UnknownKeyId,
    /// The key the `kid` selects was published for another algorithm or key
    /// type than the header's `alg`.
    #[error("the selected key is not for the token's algorithm")]
    KeyAlgorithmMismatch,
    /// The signature does not match the header and payload (tampering, or a
    /// key the configuration does not trust).
    #[error("the token signature is invalid")]
    BadSignature,
    /// `exp` is in the past, beyond the leeway.
    #[error("the token has expired")]
    Expired,
    /// `nbf` is in the future, beyond the leeway.
    #[error("the token is not valid yet")]
    NotYetValid,
    /// `iss` is not the configured issuer.
    #[error("the token was issued by an issuer that is not trusted")]
    WrongIssuer,
    /// `aud` does not contain the configured audience.
    #[error("the token is not meant for this API (audience)")]
    WrongAudience,
    /// A required claim (`exp`, `iss`, `aud`, `sub`) is absent.
    #[error("the token lacks the required `{claim}` claim")]
    MissingClaim {
        /// The missing claim.
        claim: &'static str,
    },
    /// A claim has the wrong JSON type or an unusable value.
    #[error("the token's `{claim}` claim is malformed")]
    InvalidClaim {
        /// The malformed claim.
        claim: &'static str,
    },
    /// The roles claim is absent, empty, or holds no role Tandem knows (or,
    /// with a role map, no mapped name).
    #[error("the token grants no known role")]
    NoKnownRole,
    /// A participant acts as a person, so their `sub` must be a person id.
    #[error("a participant token's subject must be a person id (UUID)")]
    SubjectNotAPerson,

    // ---- A verified token that names no usable person (FORBIDDEN). ----
    /// A participant token lacks the configured person claim
    /// (`TANDEM_JWT_PERSON_CLAIM`), or it is not a non-empty string.
    #[error("the token does not carry the claim that identifies the participant's person")]
    PersonClaimMissing,
    /// Matching by e-mail, and the token says the address is not verified
    /// (`email_verified: false`): anyone could have typed it.
    #[error("the token's e-mail address is not verified by the identity provider")]
    EmailNotVerified,
    /// No person of the organisation matches the person claim.
    #[error("no person of the organisation matches the token's person claim")]
    PersonNotFound,
    /// Several people match the person claim (two people sharing an e-mail
    /// address); guessing would let one act as the other.
    #[error("more than one person matches the token's person claim")]
    PersonAmbiguous,

    // ---- The check could not be made (the server's problem). ----
    /// Keys come from the identity provider's JWKS URL and none has been
    /// fetched yet (the provider was unreachable since start-up).
    #[error("the identity provider's signing keys are not available yet; retry in {retry_after_secs} s")]
    KeysUnavailable {
        /// When the next fetch may start, in seconds.
        retry_after_secs: u64,
    },
    /// Looking the participant's person up failed (the database).
    #[error("the participant's person could not be looked up")]
    PersonLookupFailed(#[source] sqlx::Error),
    /// A person claim is configured but the verifier was given no database
    /// to look people up in (`Verifier::with_people`), or a caller used the
    /// synchronous `Verifier::verify`, which cannot look anything up.
    #[error("TANDEM_JWT_PERSON_CLAIM is set but people cannot be looked up here")]
    NoPersonDirectory,

    // ---- Configuration refused at start-up (operator error). ----
    /// The HS256 secret is shorter than the minimum.
    #[error("TANDEM_JWT_SECRET must be at least {min_bytes} bytes long")]
    WeakSecret {
        /// The minimum length in bytes.
        min_bytes: usize,
    },
    /// HS256 and public-key algorithms in one configuration: the classic
    /// algorithm-confusion setup (a public key used as an HMAC secret).
    #[error("TANDEM_JWT_ALGORITHMS mixes HS256 with public-key algorithms")]
    MixedAlgorithms,
    /// The algorithm list is empty.
    #[error("TANDEM_JWT_ALGORITHMS names no algorithm")]
    NoAlgorithm,
    /// An algorithm name that is unknown, unsupported or `none`.
    #[error(
        "TANDEM_JWT_ALGORITHMS: unknown or unsupported algorithm `{name}` (accepted: HS256, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA; `none` never)"
    )]
    UnknownAlgorithm {
        /// The name as configured.
        name: String,
    },
    /// An accepted algorithm has no key to verify it.
    #[error("no key is configured for {algorithm}")]
    MissingKey {
        /// The algorithm without a key.
        algorithm: String,
    },
    /// The configured key cannot verify an accepted algorithm.
    #[error("the configured {key} key cannot verify {algorithm}")]
    KeyMismatch {
        /// The algorithm.
        algorithm: String,
        /// The key's type (e.g. `EC P-256`).
        key: String,
    },
    /// Both a PEM key and a JWKS are configured: which key verifies a token
    /// without `kid` would be ambiguous.
    #[error("set only one of TANDEM_JWT_PUBLIC_KEY_FILE, TANDEM_JWT_JWKS_FILE and TANDEM_JWT_JWKS_URL")]
    AmbiguousKeySource,
    /// The JWKS URL is not a URL Tandem fetches keys from.
    #[error("TANDEM_JWT_JWKS_URL: {reason}")]
    InvalidJwksUrl {
        /// Why.
        reason: String,
    },
    /// The role map does not parse.
    #[error("TANDEM_JWT_ROLE_MAP: {reason}")]
    InvalidRoleMap {
        /// Why.
        reason: String,
    },
    /// A claim path setting is empty or malformed.
    #[error("{setting} must name a claim (a name, or a dotted path such as realm_access.roles)")]
    InvalidClaimPath {
        /// The environment variable of the setting.
        setting: &'static str,
    },
    /// A JWKS cache bound is out of range (e.g. a minimum above the maximum).
    #[error("JWKS cache: {reason}")]
    InvalidJwksCache {
        /// Why.
        reason: String,
    },
    /// Key material is configured that the accepted algorithms never use;
    /// refused so a secret never sits beside public keys (and vice versa).
    #[error("{setting} is set but no accepted algorithm uses it")]
    UnusedKeyMaterial {
        /// The environment variable of the unused setting.
        setting: &'static str,
    },
    /// A key file could not be read.
    #[error("cannot read key file {}", path.display())]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A PEM key file holds no usable public key.
    #[error("key file {}: {reason}", path.display())]
    InvalidKey {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A JWKS file is malformed or holds an unusable key.
    #[error("JWKS file {}: {reason}", path.display())]
    InvalidJwks {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The leeway exceeds the maximum.
    #[error("TANDEM_JWT_LEEWAY is {leeway_secs} s; at most {max_secs} s is accepted")]
    LeewayTooLarge {
        /// The configured leeway.
        leeway_secs: u64,
        /// The maximum.
        max_secs: u64,
    },
    /// The issuer or audience is empty.
    #[error("{setting} must not be empty")]
    EmptySetting {
        /// The environment variable of the empty setting.
        setting: &'static str,
    },
    /// A role name (from the command line) that Tandem does not know.
    #[error("unknown role `{name}` (known: admin, coordinator, participant, integrator, analyst)")]
    UnknownRole {
        /// The name as given.
        name: String,
    },

    // ---- Minting development tokens. ----
    /// Minting needs the HS256 secret.
    #[error("minting a token needs TANDEM_JWT_SECRET")]
    NoSecret,
    /// The requested lifetime is zero or too long.
    #[error("a minted token must live between 1 s and {max_secs} s")]
    InvalidTtl {
        /// The longest lifetime.
        max_secs: u64,
    },
    /// Signing failed (the cause comes from `jsonwebtoken` and holds no
    /// secret).
    #[error("signing the token failed")]
    Signing(#[source] jsonwebtoken::errors::Error),
}

impl AuthError {
    /// A stable, machine-readable code for this error. `TOKEN_*` codes are
    /// refusals of a presented token; `AUTH_CONFIG_*` are start-up errors;
    /// `AUTH_MINT_*` come from minting.
    #[must_use]
    pub const fn code(&self) -> &'static str {
        match self {
            Self::Malformed => "TOKEN_MALFORMED",
            Self::TooLong { .. } => "TOKEN_TOO_LONG",
            Self::Unsigned => "TOKEN_UNSIGNED",
            Self::AlgorithmNotAllowed => "TOKEN_ALGORITHM_NOT_ALLOWED",
            Self::ForbiddenHeader { .. } => "TOKEN_FORBIDDEN_HEADER",
            Self::MissingKeyId => "TOKEN_MISSING_KID",
            Self::UnknownKeyId => "TOKEN_UNKNOWN_KID",
            Self::KeyAlgorithmMismatch => "TOKEN_KEY_ALGORITHM_MISMATCH",
            Self::BadSignature => "TOKEN_BAD_SIGNATURE",
            Self::Expired => "TOKEN_EXPIRED",
            Self::NotYetValid => "TOKEN_NOT_YET_VALID",
            Self::WrongIssuer => "TOKEN_WRONG_ISSUER",
            Self::WrongAudience => "TOKEN_WRONG_AUDIENCE",
            Self::MissingClaim { .. } => "TOKEN_MISSING_CLAIM",
            Self::InvalidClaim { .. } => "TOKEN_INVALID_CLAIM",
            Self::NoKnownRole => "TOKEN_NO_KNOWN_ROLE",
            Self::SubjectNotAPerson => "TOKEN_SUBJECT_NOT_A_PERSON",
            Self::PersonClaimMissing => "TOKEN_PERSON_CLAIM_MISSING",
            Self::EmailNotVerified => "TOKEN_EMAIL_NOT_VERIFIED",
            Self::PersonNotFound => "TOKEN_PERSON_NOT_FOUND",
            Self::PersonAmbiguous => "TOKEN_PERSON_AMBIGUOUS",
            Self::KeysUnavailable { .. } => "AUTH_KEYS_UNAVAILABLE",
            Self::PersonLookupFailed(_) => "AUTH_PERSON_LOOKUP_FAILED",
            Self::NoPersonDirectory => "AUTH_CONFIG_NO_PERSON_DIRECTORY",
            Self::WeakSecret { .. } => "AUTH_CONFIG_WEAK_SECRET",
            Self::MixedAlgorithms => "AUTH_CONFIG_MIXED_ALGORITHMS",
            Self::NoAlgorithm => "AUTH_CONFIG_NO_ALGORITHM",
            Self::UnknownAlgorithm { .. } => "AUTH_CONFIG_UNKNOWN_ALGORITHM",
            Self::MissingKey { .. } => "AUTH_CONFIG_MISSING_KEY",
            Self::KeyMismatch { .. } => "AUTH_CONFIG_KEY_MISMATCH",
            Self::AmbiguousKeySource => "AUTH_CONFIG_AMBIGUOUS_KEY_SOURCE",
            Self::InvalidJwksUrl { .. } => "AUTH_CONFIG_INVALID_JWKS_URL",
            Self::InvalidRoleMap { .. } => "AUTH_CONFIG_INVALID_ROLE_MAP",
            Self::InvalidClaimPath { .. } => "AUTH_CONFIG_INVALID_CLAIM_PATH",
            Self::InvalidJwksCache { .. } => "AUTH_CONFIG_INVALID_JWKS_CACHE",
            Self::UnusedKeyMaterial { .. } => "AUTH_CONFIG_UNUSED_KEY_MATERIAL",
            Self::KeyFile { .. } => "AUTH_CONFIG_KEY_FILE",
            Self::InvalidKey { .. } => "AUTH_CONFIG_INVALID_KEY",
            Self::InvalidJwks { .. } => "AUTH_CONFIG_INVALID_JWKS",
            Self::LeewayTooLarge { .. } => "AUTH_CONFIG_LEEWAY_TOO_LARGE",
            Self::EmptySetting { .. } => "AUTH_CONFIG_EMPTY_SETTING",
            Self::UnknownRole { .. } => "AUTH_CONFIG_UNKNOWN_ROLE",
            Self::NoSecret => "AUTH_MINT_NO_SECRET",
            Self::InvalidTtl { .. } => "AUTH_MINT_INVALID_TTL",
            Self::Signing(_) => "AUTH_MINT_SIGNING_FAILED",
        }
    }

    /// Whether this is the refusal of a presented token (the client's
    /// problem) rather than a configuration or minting error (ours).
    #[must_use]
    pub const fn is_token_refusal(&self) -> bool {
        matches!(
            self,
            Self::Malformed
                | Self::TooLong { .. }
                | Self::Unsigned
                | Self::AlgorithmNotAllowed
                | Self::ForbiddenHeader { .. }
                | Self::MissingKeyId
                | Self::UnknownKeyId
                | Self::KeyAlgorithmMismatch
                | Self::BadSignature
                | Self::Expired
                | Self::NotYetValid
                | Self::WrongIssuer
                | Self::WrongAudience
                | Self::MissingClaim { .. }
                | Self::InvalidClaim { .. }
                | Self::NoKnownRole
                | Self::SubjectNotAPerson
        )
    }

    /// Whether the token verified but names no person Tandem can act for
    /// (HTTP 403: the credentials are genuine, they just do not let the
    /// caller in, and presenting them again will not help).
    #[must_use]
    pub const fn is_person_refusal(&self) -> bool {
        matches!(self, Self::PersonClaimMissing | Self::EmailNotVerified | Self::PersonNotFound | Self::PersonAmbiguous)
    }

    /// The GraphQL `extensions.code` for this error: `UNAUTHENTICATED` for
    /// every token refusal; `FORBIDDEN` for a verified token naming no
    /// usable person; `AUTH_UNAVAILABLE` (HTTP 503, retry later) while the
    /// identity provider's keys have not arrived; `INTERNAL_SERVER_ERROR`
    /// for the rest, which are server-side faults a client can do nothing
    /// about.
    #[must_use]
    pub const fn api_code(&self) -> &'static str {
        if self.is_token_refusal() {
            "UNAUTHENTICATED"
        } else if self.is_person_refusal() {
            "FORBIDDEN"
        } else if matches!(self, Self::KeysUnavailable { .. }) {
            "AUTH_UNAVAILABLE"
        } else {
            "INTERNAL_SERVER_ERROR"
        }
    }
}
