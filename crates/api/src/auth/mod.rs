//! Authentication: who is calling, and with which roles.
//!
//! Every request carries a JWT bearer token. This module turns the token into
//! a [`Principal`] or refuses it, and mints development tokens for
//! `tandem token`. Authorization (what a principal may see) is decided by the
//! schema from the principal's roles; nothing here knows about queries.
//!
//! Layout:
//! * [`config`] — [`AuthConfig`], the plain settings the binary fills from
//!   flags and environment variables.
//! * `keys` — loading the verification keys (HS256 secret, PEM public key
//!   or JWKS file) and choosing the key for a token.
//! * `jwks` — the identity provider's key set from its JWKS URL: cached,
//!   refetched on an unknown `kid` (rate-limited), kept while the provider
//!   is down.
//! * [`people`] — a participant's person found by a token claim (e-mail or
//!   external id) when `sub` is the identity provider's own user id.
//! * `token` — checks on the raw token text and its header, done before
//!   the token reaches `jsonwebtoken`, for the attacks it does not stop.
//! * [`verifier`] — [`Verifier`]: start-up validation of the configuration
//!   and per-request verification.
//! * [`principal`] and [`role`] — the verified caller.
//! * [`mint`](mod@mint) — development tokens ([`mint()`](fn@mint)).
//! * [`revocation`] — [`Revocations`], the deny list of revoked `jti`s.
//! * [`error`] — [`AuthError`], the one error type of the module.
//!
//! Hardening beyond `jsonwebtoken`'s defaults (see `STYLE.md`, "Known
//! traps"): `iss`, `aud`, `exp` and `sub` are required, `nbf` is checked,
//! the leeway is ours, algorithms come from configuration only, `alg: none`
//! in any spelling and key-carrying headers (`jku`, `x5u`, `jwk`, `x5c`)
//! are refused, HMAC never mixes with public-key algorithms, and a JWKS key
//! is only used for the `kid` and algorithm it was published for. Keys are
//! fetched only from the configured JWKS URL, never from a URL a token
//! names.

pub mod config;
pub mod error;
mod jwks;
mod keys;
pub mod mint;
pub mod people;
pub mod principal;
pub mod revocation;
pub mod role;
mod token;
pub mod verifier;

pub use config::{AuthConfig, JwksCache, PersonMatch};
pub use error::AuthError;
pub use mint::{mint, mint_with_id};
pub use principal::Principal;
pub use revocation::Revocations;
pub use role::Role;
pub use token::MAX_TOKEN_BYTES;
pub use verifier::Verifier;
