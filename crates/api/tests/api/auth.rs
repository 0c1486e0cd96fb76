//! Auth tests: real tokens, signed with the test-only keys in
//! `tests/fixtures/` (see its README), checked by the real `Verifier`. Each
//! refused case has its own test so a regression names the hole it opened.
//! Tokens are assembled by hand (`sign`) rather than with
//! `jsonwebtoken::encode`, so the tests control every header byte.

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};
use tandem_api::auth::{AuthConfig, AuthError, MAX_TOKEN_BYTES, Principal, Role, Verifier, mint};
use uuid::Uuid;

/// 35 bytes: long enough for HS256.
const SECRET: &str = "tandem-test-secret-0123456789abcdef";
const PERSON: &str = "0190f1c2-3d4e-7f60-8a9b-0c1d2e3f4a5b";

// ---- fixtures and helpers ----

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).unwrap()
}

/// A file under the temp dir, removed on drop (for JWKS variations that are
/// not worth a committed fixture).
struct TempFile(PathBuf);

impl TempFile {
    fn new(contents: &str) -> Self {
        let path = std::env::temp_dir().join(format!("tandem-auth-test-{}.json", Uuid::now_v7()));
        std::fs::write(&path, contents).unwrap();
        Self(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn hs_config() -> AuthConfig {
    AuthConfig { hs256_secret: Some(SECRET.into()), ..AuthConfig::default() }
}

fn pem_config(algorithms: &[&str], pem: &str) -> AuthConfig {
    AuthConfig {
        algorithms: algorithms.iter().map(|alg| (*alg).to_owned()).collect(),
        public_key_pem_file: Some(fixture(pem)),
        ..AuthConfig::default()
    }
}

fn jwks_config() -> AuthConfig {
    AuthConfig {
        algorithms: vec!["RS256".into(), "ES256".into(), "EdDSA".into()],
        jwks_file: Some(fixture("jwks.json")),
        ..AuthConfig::default()
    }
}

fn verifier(config: &AuthConfig) -> Verifier {
    Verifier::new(config).unwrap()
}

fn now() -> i64 {
    Utc::now().timestamp()
}

/// Valid claims for `sub` with `roles`, expiring in ten minutes.
fn claims(sub: &str, roles: &[&str]) -> Value {
    let now = now();
    json!({
        "iss": "tandem",
        "aud": "tandem-api",
        "sub": sub,
        "roles": roles,
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": "token-1",
    })
}

fn participant() -> Value {
    claims(PERSON, &["participant"])
}

/// `claims` with `name` removed.
fn without(mut claims: Value, name: &str) -> Value {
    claims.as_object_mut().unwrap().remove(name);
    claims
}

/// `claims` with `name` set to `value`.
fn with(mut claims: Value, name: &str, value: Value) -> Value {
    claims.as_object_mut().unwrap().insert(name.to_owned(), value);
    claims
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn b64_json(value: &Value) -> String {
    b64(&serde_json::to_vec(value).unwrap())
}

/// A compact JWS over exactly this header and these claims.
fn sign(header: &Value, claims: &Value, key: &EncodingKey, alg: Algorithm) -> String {
    let message = format!("{}.{}", b64_json(header), b64_json(claims));
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), key, alg).unwrap();
    format!("{message}.{signature}")
}

fn hs256_key() -> EncodingKey {
    EncodingKey::from_secret(SECRET.as_bytes())
}

fn rsa_key() -> EncodingKey {
    EncodingKey::from_rsa_pem(&read("rsa_private.pem")).unwrap()
}

fn rsa2_key() -> EncodingKey {
    EncodingKey::from_rsa_pem(&read("rsa2_private.pem")).unwrap()
}

fn ec_key() -> EncodingKey {
    EncodingKey::from_ec_pem(&read("ec_p256_private.pem")).unwrap()
}

fn ed_key() -> EncodingKey {
    EncodingKey::from_ed_pem(&read("ed25519_private.pem")).unwrap()
}

fn hs256(claims: &Value) -> String {
    sign(&json!({"alg": "HS256", "typ": "JWT"}), claims, &hs256_key(), Algorithm::HS256)
}

/// RS256 with the JWKS key `rsa-1` (also the PEM key `rsa_public.pem`).
fn rs256(claims: &Value) -> String {
    sign(&json!({"alg": "RS256", "typ": "JWT", "kid": "rsa-1"}), claims, &rsa_key(), Algorithm::RS256)
}

fn segments(token: &str) -> Vec<String> {
    token.split('.').map(str::to_owned).collect()
}

/// Verifies `token`, expecting a refusal, and checks what every refusal
/// must satisfy: UNAUTHENTICATED, and no part of the token in the message.
fn refused(verifier: &Verifier, token: &str) -> AuthError {
    let err = verifier.verify(token).unwrap_err();
    assert!(err.is_token_refusal(), "{err:?} is not a token refusal");
    assert_eq!(err.api_code(), "UNAUTHENTICATED");
    assert!(err.code().starts_with("TOKEN_"), "{}", err.code());
    let message = err.to_string();
    for part in token.split('.').filter(|part| part.len() >= 6) {
        assert!(!message.contains(part), "message echoes the token: {message}");
    }
    err
}

fn refused_at_start_up(config: &AuthConfig) -> AuthError {
    let err = Verifier::new(config).unwrap_err();
    assert!(!err.is_token_refusal(), "{err:?}");
    assert_eq!(err.api_code(), "INTERNAL_SERVER_ERROR");
    assert!(err.code().starts_with("AUTH_CONFIG_"), "{}", err.code());
    err
}

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, 0).unwrap()
}

// ---- accepted tokens ----

#[test]
fn accepts_hs256_token() {
    let claims = participant();
    let principal = verifier(&hs_config()).verify(&hs256(&claims)).unwrap();
    assert_eq!(principal.subject(), PERSON);
    assert_eq!(principal.roles(), [Role::Participant]);
    assert_eq!(principal.person_id().map(|id| id.to_string()).as_deref(), Some(PERSON));
    assert_eq!(principal.expires_at(), at(claims["exp"].as_i64().unwrap()));
    assert_eq!(principal.token_id(), Some("token-1"));
    assert_eq!(principal.actor_role(), "participant");
    assert!(!principal.is_admin());
}

#[test]
fn accepts_rs256_token_with_pem_key() {
    let principal = verifier(&pem_config(&["RS256"], "rsa_public.pem"))
        .verify(&rs256(&claims("hr-sync", &["integrator"])))
        .unwrap();
    assert_eq!(principal.subject(), "hr-sync");
    assert_eq!(principal.roles(), [Role::Integrator]);
    assert_eq!(principal.person_id(), None);
}

#[test]
fn accepts_pem_key_token_without_kid() {
    let token = sign(&json!({"alg": "RS256"}), &participant(), &rsa_key(), Algorithm::RS256);
    let principal = verifier(&pem_config(&["RS256"], "rsa_public.pem")).verify(&token).unwrap();
    assert_eq!(principal.subject(), PERSON);
}

#[test]
fn accepts_rs256_token_with_jwks() {
    let principal = verifier(&jwks_config()).verify(&rs256(&claims(PERSON, &["coordinator"]))).unwrap();
    assert_eq!(principal.roles(), [Role::Coordinator]);
    assert!(principal.person_id().is_some());
}

#[test]
fn accepts_es256_token_with_jwks_and_pem() {
    let claims = claims(PERSON, &["analyst"]);
    let token = sign(&json!({"alg": "ES256", "typ": "JWT", "kid": "ec-1"}), &claims, &ec_key(), Algorithm::ES256);
    for config in [jwks_config(), pem_config(&["ES256"], "ec_p256_public.pem")] {
        let principal = verifier(&config).verify(&token).unwrap();
        assert_eq!(principal.roles(), [Role::Analyst]);
        assert_eq!(principal.actor_role(), "analyst");
    }
}

#[test]
fn accepts_eddsa_token_with_jwks_and_pem() {
    let claims = claims(PERSON, &["admin"]);
    let token = sign(&json!({"alg": "EdDSA", "typ": "JWT", "kid": "ed-1"}), &claims, &ed_key(), Algorithm::EdDSA);
    for config in [jwks_config(), pem_config(&["EdDSA"], "ed25519_public.pem")] {
        let principal = verifier(&config).verify(&token).unwrap();
        assert!(principal.is_admin());
        assert_eq!(principal.token_id(), Some("token-1"));
    }
}

#[test]
fn accepts_audience_array_containing_ours() {
    let claims = with(participant(), "aud", json!(["other-api", "tandem-api"]));
    verifier(&hs_config()).verify(&hs256(&claims)).unwrap();
}

#[test]
fn roles_are_sorted_deduplicated_and_unknown_ones_ignored() {
    let claims = claims(PERSON, &["participant", "superuser", "admin", "participant"]);
    let principal = verifier(&hs_config()).verify(&hs256(&claims)).unwrap();
    assert_eq!(principal.roles(), [Role::Admin, Role::Participant]);
    assert!(principal.has(Role::Participant));
    assert!(!principal.has(Role::Coordinator));
    assert_eq!(principal.actor_role(), "admin");
}

#[test]
fn accepts_expired_token_within_leeway() {
    let now = now();
    let claims = with(with(participant(), "exp", json!(now - 10)), "nbf", json!(now - 600));
    verifier(&hs_config()).verify(&hs256(&claims)).unwrap();
}

#[test]
fn accepts_not_before_within_leeway() {
    let claims = with(participant(), "nbf", json!(now() + 10));
    verifier(&hs_config()).verify(&hs256(&claims)).unwrap();
}

#[test]
fn accepts_token_without_nbf_or_jti() {
    let claims = without(without(participant(), "nbf"), "jti");
    let principal = verifier(&hs_config()).verify(&hs256(&claims)).unwrap();
    assert_eq!(principal.token_id(), None);
}

// ---- refused: unsigned and algorithm confusion ----

#[test]
fn refuses_alg_none_in_any_spelling() {
    let verifiers =
        [verifier(&hs_config()), verifier(&pem_config(&["RS256"], "rsa_public.pem")), verifier(&jwks_config())];
    for alg in ["none", "None", "NONE", "nOnE", " none"] {
        let unsigned =
            format!("{}.{}.", b64_json(&json!({"alg": alg, "typ": "JWT"})), b64_json(&claims(PERSON, &["admin"])));
        // Also with a signature segment, in case a parser only looks there.
        let with_signature = format!("{unsigned}{}", b64(b"not a signature"));
        for verifier in &verifiers {
            for token in [&unsigned, &with_signature] {
                assert!(matches!(refused(verifier, token), AuthError::Unsigned));
            }
        }
    }
}

#[test]
fn refuses_hs256_signed_with_the_rsa_public_key_when_rs256_is_configured() {
    // The classic confusion: the attacker signs HS256 with the server's
    // public key bytes as the HMAC secret.
    let public_pem = EncodingKey::from_secret(&read("rsa_public.pem"));
    for (config, header) in [
        (pem_config(&["RS256"], "rsa_public.pem"), json!({"alg": "HS256", "typ": "JWT"})),
        (jwks_config(), json!({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"})),
    ] {
        let token = sign(&header, &claims(PERSON, &["admin"]), &public_pem, Algorithm::HS256);
        assert!(matches!(refused(&verifier(&config), &token), AuthError::AlgorithmNotAllowed));
    }
}

#[test]
fn refuses_algorithm_not_configured() {
    // RS384 fits the RSA key but is not accepted by this configuration.
    let token = sign(&json!({"alg": "RS384", "kid": "rsa-1"}), &participant(), &rsa_key(), Algorithm::RS384);
    let rs = verifier(&pem_config(&["RS256"], "rsa_public.pem"));
    assert!(matches!(refused(&rs, &token), AuthError::AlgorithmNotAllowed));
    // An RS256 token against an HS256 server.
    let hs = verifier(&hs_config());
    assert!(matches!(refused(&hs, &rs256(&participant())), AuthError::AlgorithmNotAllowed));
}

#[test]
fn refuses_algorithm_name_in_another_case() {
    let token = sign(&json!({"alg": "rs256", "kid": "rsa-1"}), &participant(), &rsa_key(), Algorithm::RS256);
    assert!(matches!(refused(&verifier(&jwks_config()), &token), AuthError::AlgorithmNotAllowed));
}

#[test]
fn refuses_kid_whose_key_is_for_another_algorithm() {
    // ES256 token naming the RSA key.
    let token = sign(&json!({"alg": "ES256", "kid": "rsa-1"}), &participant(), &ec_key(), Algorithm::ES256);
    assert!(matches!(refused(&verifier(&jwks_config()), &token), AuthError::KeyAlgorithmMismatch));
}

// ---- refused: tampering and untrusted signers ----

#[test]
fn refuses_tampered_header() {
    let token = rs256(&participant());
    let mut parts = segments(&token);
    parts[0] = b64_json(&json!({"alg": "RS256", "typ": "JWT", "kid": "rsa-1", "x": 1}));
    let tampered = parts.join(".");
    assert!(matches!(refused(&verifier(&jwks_config()), &tampered), AuthError::BadSignature));
}

#[test]
fn refuses_tampered_payload() {
    let token = rs256(&participant());
    let mut parts = segments(&token);
    parts[1] = b64_json(&claims(PERSON, &["admin"]));
    let tampered = parts.join(".");
    assert!(matches!(refused(&verifier(&jwks_config()), &tampered), AuthError::BadSignature));
    // Same for HS256.
    let mut parts = segments(&hs256(&participant()));
    parts[1] = b64_json(&claims(PERSON, &["admin"]));
    assert!(matches!(refused(&verifier(&hs_config()), &parts.join(".")), AuthError::BadSignature));
}

#[test]
fn refuses_tampered_signature() {
    for (config, token) in [(jwks_config(), rs256(&participant())), (hs_config(), hs256(&participant()))] {
        let mut parts = segments(&token);
        // Change one character in the middle (the end may carry padding bits
        // that make the base64 non-canonical instead).
        let mut signature = parts[2].clone().into_bytes();
        signature[10] = if signature[10] == b'A' { b'B' } else { b'A' };
        parts[2] = String::from_utf8(signature).unwrap();
        assert!(matches!(refused(&verifier(&config), &parts.join(".")), AuthError::BadSignature));
    }
}

#[test]
fn refuses_token_signed_by_an_untrusted_key() {
    let token = sign(&json!({"alg": "RS256", "kid": "rsa-1"}), &participant(), &rsa2_key(), Algorithm::RS256);
    for config in [jwks_config(), pem_config(&["RS256"], "rsa_public.pem")] {
        assert!(matches!(refused(&verifier(&config), &token), AuthError::BadSignature));
    }
    // HS256 with another secret.
    let token = sign(
        &json!({"alg": "HS256"}),
        &participant(),
        &EncodingKey::from_secret(b"another-secret-that-is-long-enough-32"),
        Algorithm::HS256,
    );
    assert!(matches!(refused(&verifier(&hs_config()), &token), AuthError::BadSignature));
}

// ---- refused: claims ----

#[test]
fn refuses_wrong_issuer() {
    let claims = with(participant(), "iss", json!("evil"));
    assert!(matches!(refused(&verifier(&hs_config()), &hs256(&claims)), AuthError::WrongIssuer));
}

#[test]
fn refuses_missing_issuer() {
    let claims = without(participant(), "iss");
    assert!(matches!(refused(&verifier(&hs_config()), &hs256(&claims)), AuthError::MissingClaim { claim: "iss" }));
}

#[test]
fn refuses_wrong_audience() {
    for aud in [json!("other-api"), json!(["other-api", "more-api"]), json!([])] {
        let claims = with(participant(), "aud", aud);
        let err = refused(&verifier(&hs_config()), &hs256(&claims));
        assert!(matches!(err, AuthError::WrongAudience | AuthError::MissingClaim { claim: "aud" }), "{err:?}");
    }
}

#[test]
fn refuses_missing_audience() {
    let claims = without(participant(), "aud");
    assert!(matches!(refused(&verifier(&hs_config()), &hs256(&claims)), AuthError::MissingClaim { claim: "aud" }));
}

#[test]
fn refuses_missing_exp() {
    let claims = without(participant(), "exp");
    assert!(matches!(refused(&verifier(&hs_config()), &hs256(&claims)), AuthError::MissingClaim { claim: "exp" }));
}

#[test]
fn refuses_non_numeric_exp() {
    let claims = with(participant(), "exp", json!("tomorrow"));
    let err = refused(&verifier(&hs_config()), &hs256(&claims));
    assert!(
        matches!(err, AuthError::InvalidClaim { claim: "exp" } | AuthError::MissingClaim { claim: "exp" }),
        "{err:?}"
    );
}

#[test]
fn refuses_missing_sub() {
    let claims = without(participant(), "sub");
    assert!(matches!(refused(&verifier(&hs_config()), &hs256(&claims)), AuthError::MissingClaim { claim: "sub" }));
}

#[test]
fn refuses_expired_token_beyond_leeway() {
    let now = now();
    let claims = with(with(participant(), "exp", json!(now - 120)), "nbf", json!(now - 600));
    assert!(matches!(refused(&verifier(&hs_config()), &hs256(&claims)), AuthError::Expired));
}

#[test]
fn refuses_not_yet_valid_token_beyond_leeway() {
    let claims = with(participant(), "nbf", json!(now() + 120));
    assert!(matches!(refused(&verifier(&hs_config()), &hs256(&claims)), AuthError::NotYetValid));
}

#[test]
fn refuses_token_without_roles() {
    let claims = without(participant(), "roles");
    assert!(matches!(refused(&verifier(&hs_config()), &hs256(&claims)), AuthError::NoKnownRole));
}

#[test]
fn refuses_empty_roles() {
    let claims = claims(PERSON, &[]);
    assert!(matches!(refused(&verifier(&hs_config()), &hs256(&claims)), AuthError::NoKnownRole));
}

#[test]
fn refuses_only_unknown_roles() {
    // Role names are exact and lowercase: `Admin` is not `admin`.
    let claims = claims(PERSON, &["superuser", "Admin", "root"]);
    assert!(matches!(refused(&verifier(&hs_config()), &hs256(&claims)), AuthError::NoKnownRole));
}

#[test]
fn accepts_roles_as_one_string_of_names() {
    // OAuth's `scope` style (Okta's `scp` as a string, say).
    for roles in [json!("participant admin"), json!("participant,admin"), json!(" admin ,  participant ")] {
        let claims = with(participant(), "roles", roles);
        let principal = verifier(&hs_config()).verify(&hs256(&claims)).unwrap();
        assert_eq!(principal.roles(), [Role::Admin, Role::Participant]);
    }
}

#[test]
fn refuses_roles_that_are_not_strings() {
    for roles in [json!(42), json!([1, 2]), json!(["admin", null]), json!({"admin": true})] {
        let claims = with(participant(), "roles", roles);
        assert!(matches!(
            refused(&verifier(&hs_config()), &hs256(&claims)),
            AuthError::InvalidClaim { claim: "roles" }
        ));
    }
}

#[test]
fn refuses_participant_with_non_uuid_sub() {
    for sub in ["alice", "0190f1c23d4e7f608a9b0c1d2e3f4a5b", "{0190f1c2-3d4e-7f60-8a9b-0c1d2e3f4a5b}"] {
        let claims = claims(sub, &["participant", "analyst"]);
        assert!(matches!(refused(&verifier(&hs_config()), &hs256(&claims)), AuthError::SubjectNotAPerson));
    }
}

// ---- refused: header parameters ----

fn refused_header(config: &AuthConfig, header: &Value) -> AuthError {
    let token = sign(header, &participant(), &rsa_key(), Algorithm::RS256);
    refused(&verifier(config), &token)
}

#[test]
fn refuses_jku_header() {
    let header = json!({"alg": "RS256", "kid": "rsa-1", "jku": "https://evil.example/jwks.json"});
    for config in [jwks_config(), pem_config(&["RS256"], "rsa_public.pem")] {
        assert!(matches!(refused_header(&config, &header), AuthError::ForbiddenHeader { parameter: "jku" }));
    }
}

#[test]
fn refuses_x5u_header() {
    let header = json!({"alg": "RS256", "kid": "rsa-1", "x5u": "https://evil.example/cert.pem"});
    assert!(matches!(refused_header(&jwks_config(), &header), AuthError::ForbiddenHeader { parameter: "x5u" }));
}

#[test]
fn refuses_embedded_jwk_header() {
    // The attacker signs with their own key and embeds its public half.
    let jwks: Value = serde_json::from_slice(&read("jwks.json")).unwrap();
    let mut jwk = jwks["keys"][0].clone();
    jwk["kid"] = json!("attacker");
    let header = json!({"alg": "RS256", "jwk": jwk});
    let token = sign(&header, &participant(), &rsa2_key(), Algorithm::RS256);
    for config in [jwks_config(), pem_config(&["RS256"], "rsa_public.pem")] {
        assert!(matches!(refused(&verifier(&config), &token), AuthError::ForbiddenHeader { parameter: "jwk" }));
    }
}

#[test]
fn refuses_x5c_header() {
    let header = json!({"alg": "RS256", "kid": "rsa-1", "x5c": ["MIIB"]});
    assert!(matches!(refused_header(&jwks_config(), &header), AuthError::ForbiddenHeader { parameter: "x5c" }));
}

#[test]
fn refuses_crit_header() {
    let header = json!({"alg": "RS256", "kid": "rsa-1", "crit": ["exp"], "exp": 1});
    assert!(matches!(refused_header(&jwks_config(), &header), AuthError::ForbiddenHeader { parameter: "crit" }));
}

#[test]
fn refuses_duplicate_header_keys() {
    // Two parsers could read two different algorithms from this header.
    let header = b64(br#"{"alg":"none","alg":"HS256"}"#);
    let payload = b64_json(&participant());
    let message = format!("{header}.{payload}");
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), &hs256_key(), Algorithm::HS256).unwrap();
    assert!(matches!(refused(&verifier(&hs_config()), &format!("{message}.{signature}")), AuthError::Malformed));
}

#[test]
fn refuses_unknown_kid_with_jwks() {
    let token = sign(&json!({"alg": "RS256", "kid": "rsa-9"}), &participant(), &rsa_key(), Algorithm::RS256);
    assert!(matches!(refused(&verifier(&jwks_config()), &token), AuthError::UnknownKeyId));
}

#[test]
fn refuses_missing_kid_with_jwks() {
    let token = sign(&json!({"alg": "RS256"}), &participant(), &rsa_key(), Algorithm::RS256);
    assert!(matches!(refused(&verifier(&jwks_config()), &token), AuthError::MissingKeyId));
}

// ---- refused: not a JWT ----

#[test]
fn refuses_empty_token() {
    assert!(matches!(refused(&verifier(&hs_config()), ""), AuthError::Malformed));
}

#[test]
fn refuses_garbage_tokens() {
    let verifier = verifier(&hs_config());
    let valid = hs256(&participant());
    let garbage = [
        "garbage".to_owned(),
        "..".to_owned(),
        "a.b.c".to_owned(),
        "!!!.###.$$$".to_owned(),
        format!("Bearer {valid}"),
        format!(" {valid}"),
        format!("{valid}\n"),
        // Padding is not part of JWS base64url.
        valid.replacen('.', "=.", 1),
        // A header that is not JSON, and one that is JSON but not an object.
        format!("{}.{}", b64(b"not json"), segments(&valid)[1..].join(".")),
        format!("{}.{}", b64(b"[\"HS256\"]"), segments(&valid)[1..].join(".")),
        // An empty signature on a signed algorithm.
        format!("{}.{}.", segments(&valid)[0], segments(&valid)[1]),
        // A payload that is not JSON.
        format!("{}.{}.{}", segments(&valid)[0], b64(b"garbage"), segments(&valid)[2]),
    ];
    for token in &garbage {
        let err = refused(&verifier, token);
        assert!(matches!(err, AuthError::Malformed | AuthError::BadSignature), "{token:?}: {err:?}");
    }
}

#[test]
fn refuses_too_few_or_too_many_segments() {
    let verifier = verifier(&hs_config());
    let valid = hs256(&participant());
    let parts = segments(&valid);
    for token in [
        parts[0].clone(),
        format!("{}.{}", parts[0], parts[1]),
        format!("{valid}.{}", parts[2]),
        // JWE compact serialization has five segments.
        format!("{valid}.{}.{}", parts[1], parts[2]),
    ] {
        assert!(matches!(refused(&verifier, &token), AuthError::Malformed));
    }
}

#[test]
fn refuses_overlong_token() {
    let padding = "a".repeat(MAX_TOKEN_BYTES);
    let claims = with(participant(), "padding", json!(padding));
    let token = hs256(&claims);
    assert!(token.len() > MAX_TOKEN_BYTES);
    assert!(matches!(refused(&verifier(&hs_config()), &token), AuthError::TooLong { .. }));
}

// ---- start-up: configurations refused ----

#[test]
fn refuses_hs256_secret_shorter_than_32_bytes_at_start_up() {
    let config = AuthConfig { hs256_secret: Some("x".repeat(31).into()), ..AuthConfig::default() };
    assert!(matches!(refused_at_start_up(&config), AuthError::WeakSecret { min_bytes: 32 }));
    let config = AuthConfig { hs256_secret: Some("x".repeat(32).into()), ..AuthConfig::default() };
    Verifier::new(&config).unwrap();
}

#[test]
fn refuses_hs256_without_secret_at_start_up() {
    assert!(matches!(refused_at_start_up(&AuthConfig::default()), AuthError::MissingKey { .. }));
}

#[test]
fn refuses_hs256_mixed_with_asymmetric_algorithms_at_start_up() {
    let config = AuthConfig {
        algorithms: vec!["RS256".into(), "HS256".into()],
        hs256_secret: Some(SECRET.into()),
        public_key_pem_file: Some(fixture("rsa_public.pem")),
        ..AuthConfig::default()
    };
    assert!(matches!(refused_at_start_up(&config), AuthError::MixedAlgorithms));
}

#[test]
fn refuses_asymmetric_algorithm_without_key_at_start_up() {
    let config = AuthConfig { algorithms: vec!["RS256".into()], ..AuthConfig::default() };
    assert!(matches!(refused_at_start_up(&config), AuthError::MissingKey { .. }));
    // A JWKS without a key for one of the algorithms (`rsa-1` is pinned to
    // RS256, so nothing verifies PS256).
    let config = AuthConfig { algorithms: vec!["RS256".into(), "PS256".into()], ..jwks_config() };
    assert!(matches!(refused_at_start_up(&config), AuthError::MissingKey { .. }));
}

#[test]
fn refuses_key_of_the_wrong_type_at_start_up() {
    for (algorithms, pem) in [
        (&["RS256"][..], "ec_p256_public.pem"),
        (&["ES256"][..], "rsa_public.pem"),
        (&["EdDSA"][..], "ec_p256_public.pem"),
        (&["RS256", "ES256"][..], "rsa_public.pem"),
    ] {
        assert!(matches!(refused_at_start_up(&pem_config(algorithms, pem)), AuthError::KeyMismatch { .. }));
    }
}

#[test]
fn refuses_no_algorithm_at_start_up() {
    for algorithms in [vec![], vec![" ".to_owned(), String::new()]] {
        let config = AuthConfig { algorithms, ..hs_config() };
        assert!(matches!(refused_at_start_up(&config), AuthError::NoAlgorithm));
    }
}

#[test]
fn refuses_unknown_algorithm_names_at_start_up() {
    for name in ["none", "None", "HS257", "rs256", "ES512", "HS384"] {
        let config = AuthConfig { algorithms: vec![name.to_owned()], ..hs_config() };
        assert!(matches!(refused_at_start_up(&config), AuthError::UnknownAlgorithm { .. }));
    }
}

#[test]
fn refuses_private_key_as_public_key_at_start_up() {
    assert!(matches!(refused_at_start_up(&pem_config(&["RS256"], "rsa_private.pem")), AuthError::InvalidKey { .. }));
}

#[test]
fn refuses_missing_key_file_at_start_up() {
    assert!(matches!(refused_at_start_up(&pem_config(&["RS256"], "no-such-key.pem")), AuthError::KeyFile { .. }));
}

#[test]
fn refuses_both_pem_and_jwks_at_start_up() {
    let config = AuthConfig { public_key_pem_file: Some(fixture("rsa_public.pem")), ..jwks_config() };
    assert!(matches!(refused_at_start_up(&config), AuthError::AmbiguousKeySource));
}

#[test]
fn refuses_secret_beside_public_keys_at_start_up() {
    let config = AuthConfig { hs256_secret: Some(SECRET.into()), ..jwks_config() };
    assert!(matches!(refused_at_start_up(&config), AuthError::UnusedKeyMaterial { setting: "TANDEM_JWT_SECRET" }));
}

#[test]
fn refuses_leeway_over_five_minutes_at_start_up() {
    let config = AuthConfig { leeway_secs: 301, ..hs_config() };
    assert!(matches!(refused_at_start_up(&config), AuthError::LeewayTooLarge { .. }));
}

#[test]
fn refuses_empty_issuer_or_audience_at_start_up() {
    for config in
        [AuthConfig { issuer: String::new(), ..hs_config() }, AuthConfig { audience: " ".into(), ..hs_config() }]
    {
        assert!(matches!(refused_at_start_up(&config), AuthError::EmptySetting { .. }));
    }
}

#[test]
fn refuses_unusable_jwks_at_start_up() {
    let jwks: Value = serde_json::from_slice(&read("jwks.json")).unwrap();
    let rsa = jwks["keys"][0].clone();
    let ec = jwks["keys"][1].clone();
    let cases = [
        // Not a JWKS.
        json!({"kty": "RSA"}),
        // Private key material.
        json!({"keys": [with(rsa.clone(), "d", json!("AQAB"))]}),
        // A symmetric key.
        json!({"keys": [{"kty": "oct", "kid": "k", "k": "c2VjcmV0"}]}),
        // No kid.
        json!({"keys": [without(rsa.clone(), "kid")]}),
        // The same kid twice.
        json!({"keys": [rsa.clone(), rsa.clone()]}),
        // `alg` contradicting the key type.
        json!({"keys": [with(ec.clone(), "alg", json!("RS256"))]}),
        json!({"keys": [with(rsa.clone(), "alg", json!("HS256"))]}),
        // EC point of the wrong length, and not on the curve.
        json!({"keys": [with(ec.clone(), "x", json!("AAAA"))]}),
        json!({"keys": [with(ec.clone(), "x", json!(b64(&[7; 32])))]}),
        // Unsupported curve.
        json!({"keys": [with(ec, "crv", json!("P-521"))]}),
    ];
    for jwks in cases {
        let file = TempFile::new(&jwks.to_string());
        let err = refused_at_start_up(&AuthConfig {
            algorithms: vec!["RS256".into()],
            jwks_file: Some(file.0.clone()),
            ..jwks_config()
        });
        assert!(matches!(err, AuthError::InvalidJwks { .. }), "{jwks}: {err:?}");
    }
}

#[test]
fn skips_jwks_encryption_keys() {
    let jwks: Value = serde_json::from_slice(&read("jwks.json")).unwrap();
    let mut keys = jwks["keys"].as_array().unwrap().clone();
    let mut enc = keys[0].clone();
    enc["kid"] = json!("enc-1");
    enc["use"] = json!("enc");
    enc["alg"] = json!("RSA-OAEP");
    keys.push(enc);
    let file = TempFile::new(&json!({"keys": keys}).to_string());
    let config = AuthConfig { jwks_file: Some(file.0.clone()), ..jwks_config() };
    let verifier = verifier(&config);
    verifier.verify(&rs256(&participant())).unwrap();
    let token = sign(&json!({"alg": "RS256", "kid": "enc-1"}), &participant(), &rsa_key(), Algorithm::RS256);
    assert!(matches!(refused(&verifier, &token), AuthError::UnknownKeyId));
}

// ---- secrets stay secret ----

#[test]
fn debug_output_never_shows_the_secret() {
    let config = hs_config();
    assert!(!format!("{config:?}").contains(SECRET));
    assert!(!format!("{:?}", verifier(&config)).contains(SECRET));
    assert!(!format!("{:?}", verifier(&config)).contains(&SECRET[..8]));
}

// ---- minting ----

#[test]
fn minted_token_verifies() {
    let config = hs_config();
    let before = now();
    let token = mint(&config, &[Role::Participant, Role::Coordinator], PERSON, Duration::from_secs(3600)).unwrap();
    let principal = verifier(&config).verify(&token).unwrap();
    assert_eq!(principal.subject(), PERSON);
    assert_eq!(principal.roles(), [Role::Coordinator, Role::Participant]);
    assert_eq!(principal.actor_role(), "coordinator");
    let exp = principal.expires_at().timestamp();
    assert!((before + 3600..=now() + 3600).contains(&exp));
    let jti = Uuid::parse_str(principal.token_id().unwrap()).unwrap();
    assert_eq!(jti.get_version_num(), 7);

    let claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segments(&token)[1].as_bytes()).unwrap()).unwrap();
    for claim in ["iss", "aud", "sub", "roles", "iat", "nbf", "exp", "jti"] {
        assert!(claims.get(claim).is_some(), "minted token lacks {claim}");
    }
    assert_eq!(claims["iss"], "tandem");
    assert_eq!(claims["aud"], "tandem-api");
}

#[test]
fn mint_for_a_machine_subject() {
    let config = hs_config();
    let token = mint(&config, &[Role::Integrator], "hr-sync", Duration::from_secs(60)).unwrap();
    let principal = verifier(&config).verify(&token).unwrap();
    assert_eq!(principal.person_id(), None);
    assert_eq!(principal.actor_role(), "integrator");
}

#[test]
fn mint_refuses_without_secret() {
    let err = mint(&AuthConfig::default(), &[Role::Admin], PERSON, Duration::from_secs(60)).unwrap_err();
    assert!(matches!(err, AuthError::NoSecret));
}

#[test]
fn mint_refuses_what_verify_would_refuse() {
    let config = hs_config();
    let ttl = Duration::from_secs(60);
    assert!(matches!(mint(&config, &[Role::Participant], "alice", ttl).unwrap_err(), AuthError::SubjectNotAPerson));
    assert!(matches!(mint(&config, &[], PERSON, ttl).unwrap_err(), AuthError::NoKnownRole));
    assert!(matches!(mint(&config, &[Role::Admin], PERSON, Duration::ZERO).unwrap_err(), AuthError::InvalidTtl { .. }));
    let short = AuthConfig { hs256_secret: Some("short".into()), ..AuthConfig::default() };
    assert!(matches!(mint(&short, &[Role::Admin], PERSON, ttl).unwrap_err(), AuthError::WeakSecret { .. }));
}

// ---- roles and principals ----

#[test]
fn role_names_round_trip() {
    for role in Role::ALL {
        assert_eq!(role.to_string().parse::<Role>().unwrap(), role);
        assert_eq!(role.to_string(), role.to_string().to_lowercase());
    }
    assert!(matches!("Admin".parse::<Role>(), Err(AuthError::UnknownRole { .. })));
}

#[test]
fn actor_role_follows_precedence() {
    let expires = at(now() + 60);
    let cases = [
        (vec![Role::Participant, Role::Admin], "admin"),
        (vec![Role::Analyst, Role::Coordinator], "coordinator"),
        (vec![Role::Participant, Role::Analyst, Role::Integrator], "integrator"),
        (vec![Role::Participant, Role::Analyst], "analyst"),
        (vec![Role::Participant], "participant"),
    ];
    for (roles, actor) in cases {
        let principal = Principal::new(PERSON, roles, expires, None).unwrap();
        assert_eq!(principal.actor_role(), actor);
    }
}
