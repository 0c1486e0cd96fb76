//! The signing secret of test servers and a token for every role.
//!
//! Test servers verify HS256 tokens signed with [`SECRET`]; the tokens are
//! minted by the API's own `mint`, the same code `tandem token` runs.

use std::time::Duration;

use secrecy::SecretString;
use tandem_api::auth::{AuthConfig, Role, mint};

pub const SECRET: &str = "test-secret-test-secret-test-secret-0123456789";

/// The auth configuration of a test server: HS256 with [`SECRET`].
pub fn auth_config() -> AuthConfig {
    auth_config_with(SECRET)
}

/// HS256 with `secret`, for servers started with a secret of their own.
pub fn auth_config_with(secret: &str) -> AuthConfig {
    AuthConfig { hs256_secret: Some(SecretString::from(secret.to_owned())), ..AuthConfig::default() }
}

/// A token of `roles` for `sub`, valid for an hour, signed with [`SECRET`].
pub fn token(roles: &[Role], sub: &str) -> String {
    token_with(&auth_config(), roles, sub)
}

/// A token of `roles` for `sub`, valid for an hour, under `config`.
pub fn token_with(config: &AuthConfig, roles: &[Role], sub: &str) -> String {
    mint(config, roles, sub, Duration::from_secs(3600)).expect("mint a test token")
}

pub fn admin() -> String {
    token(&[Role::Admin], "admin-1")
}

pub fn coordinator() -> String {
    token(&[Role::Coordinator], "coordinator-1")
}

/// A participant token: the subject is the person's id.
pub fn participant(person: &str) -> String {
    token(&[Role::Participant], person)
}

pub fn integrator() -> String {
    token(&[Role::Integrator], "integrator-1")
}

pub fn analyst() -> String {
    token(&[Role::Analyst], "analyst-1")
}
