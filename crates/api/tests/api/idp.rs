//! Tokens from an identity provider: a real JWKS server inside the test
//! (axum on 127.0.0.1:0) publishes the public halves of the test-only keys
//! in `tests/fixtures/` (see its README), tokens are signed with the private
//! halves, and the real `Verifier` fetches, caches and refetches the key set
//! over HTTP. The JWKS server counts its requests, so the tests can say how
//! often the API asked. The person-claim cases run the whole server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use sqlx::PgPool;
use tandem_api::auth::{AuthConfig, AuthError, JwksCache, PersonMatch, Role, Verifier};
use tandem_testkit::ws;

use crate::support::{Options, REGISTER, TestServer};

const ISSUER: &str = "https://idp.example.com/realms/tandem";
const ROLE_MAP: &str = "coach-admin=admin,hr-integration=integrator,analytics=analyst,employee=participant";

// ---- the identity provider ----

/// A signing key of the identity provider: its private half signs, its
/// public half is published as a JWK.
struct Key {
    kid: &'static str,
    alg: Algorithm,
    private: EncodingKey,
    public: Value,
}

impl Key {
    fn new(kid: &'static str, alg: Algorithm, pem: &str) -> Self {
        let bytes = std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(pem)).unwrap();
        let private = match alg {
            Algorithm::ES256 => EncodingKey::from_ec_pem(&bytes).unwrap(),
            _ => EncodingKey::from_rsa_pem(&bytes).unwrap(),
        };
        let mut public = serde_json::to_value(Jwk::from_encoding_key(&private, alg).unwrap()).unwrap();
        public["kid"] = json!(kid);
        public["use"] = json!("sig");
        Self { kid, alg, private, public }
    }

    fn rsa1() -> Self {
        Self::new("rsa-1", Algorithm::RS256, "rsa_private.pem")
    }

    fn rsa2() -> Self {
        Self::new("rsa-2", Algorithm::RS256, "rsa2_private.pem")
    }

    fn ec1() -> Self {
        Self::new("ec-1", Algorithm::ES256, "ec_p256_private.pem")
    }

    /// A token over `claims` signed by this key, naming `kid`.
    fn sign_as(&self, kid: &str, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(kid.to_owned());
        jsonwebtoken::encode(&header, claims, &self.private).unwrap()
    }

    fn sign(&self, claims: &Value) -> String {
        self.sign_as(self.kid, claims)
    }
}

/// Keys an identity provider publishes beside its signing keys and that
/// Tandem cannot use; they must be skipped without losing the set.
fn unusable_keys() -> Vec<Value> {
    let mut encryption = Key::rsa2().public;
    encryption["kid"] = json!("enc-1");
    encryption["use"] = json!("enc");
    vec![
        encryption,
        json!({"kty": "oct", "kid": "hmac-1", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"}),
        json!({"kty": "XYZ", "kid": "future-1", "foo": "bar"}),
        json!({"kty": "RSA", "kid": "broken-1", "n": "AQAB"}),
        json!({"kty": "EC", "crv": "P-256", "x": "abc", "y": "def"}),
    ]
}

#[derive(Default)]
struct IdpState {
    keys: Mutex<Vec<Value>>,
    cache_control: Mutex<Option<&'static str>>,
    down: AtomicBool,
    hits: AtomicUsize,
}

/// The JWKS endpoint of an identity provider, on 127.0.0.1:0.
struct Idp {
    addr: SocketAddr,
    state: Arc<IdpState>,
    task: tokio::task::JoinHandle<()>,
}

async fn jwks(State(state): State<Arc<IdpState>>) -> Response {
    state.hits.fetch_add(1, Ordering::SeqCst);
    if state.down.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "maintenance").into_response();
    }
    let body = json!({ "keys": *state.keys.lock().unwrap() });
    let mut response = axum::Json(body).into_response();
    if let Some(value) = *state.cache_control.lock().unwrap() {
        response.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static(value));
    }
    response
}

impl Idp {
    async fn start(keys: &[&Key]) -> Self {
        let state = Arc::new(IdpState::default());
        let idp = {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let app = axum::Router::new()
                .route("/realms/tandem/protocol/openid-connect/certs", axum::routing::get(jwks))
                .with_state(state.clone());
            let task = tokio::spawn(async move {
                axum::serve(listener, app).await.unwrap();
            });
            Self { addr, state, task }
        };
        idp.publish(keys);
        idp
    }

    /// Replaces the published key set (a rotation), unusable keys included.
    fn publish(&self, keys: &[&Key]) {
        let mut set: Vec<Value> = keys.iter().map(|key| key.public.clone()).collect();
        set.splice(0..0, unusable_keys());
        *self.state.keys.lock().unwrap() = set;
    }

    fn url(&self) -> String {
        format!("http://{}/realms/tandem/protocol/openid-connect/certs", self.addr)
    }

    fn hits(&self) -> usize {
        self.state.hits.load(Ordering::SeqCst)
    }

    fn set_down(&self, down: bool) {
        self.state.down.store(down, Ordering::SeqCst);
    }

    /// Auth settings trusting this provider: RS256 and ES256 from its JWKS
    /// URL, roles at `realm_access.roles` through [`ROLE_MAP`] (Keycloak's
    /// shape), refetching at most every `min_refetch` .
    fn config(&self, min_refetch: Duration) -> AuthConfig {
        AuthConfig {
            issuer: ISSUER.to_owned(),
            algorithms: vec!["RS256".into(), "ES256".into()],
            jwks_url: Some(self.url()),
            jwks_cache: JwksCache { min_refetch_interval: min_refetch, ..JwksCache::default() },
            roles_claim: "realm_access.roles".to_owned(),
            role_map: Some(ROLE_MAP.to_owned()),
            ..AuthConfig::default()
        }
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Claims as Keycloak issues them: its own user id as `sub`, the roles
/// under `realm_access`, the e-mail beside them.
fn claims(sub: &str, roles: &[&str]) -> Value {
    let now = Utc::now().timestamp();
    json!({
        "iss": ISSUER,
        "aud": ["account", "tandem-api"],
        "sub": sub,
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": uuid::Uuid::now_v7().to_string(),
        "realm_access": {"roles": roles},
        "scope": "openid email profile",
    })
}

fn with(mut claims: Value, name: &str, value: Value) -> Value {
    claims.as_object_mut().unwrap().insert(name.to_owned(), value);
    claims
}

// ---- keys from the JWKS URL ----

#[tokio::test]
async fn rsa_and_ec_tokens_verify_against_the_fetched_key_set_once_fetched() {
    let (rsa, ec) = (Key::rsa1(), Key::ec1());
    let idp = Idp::start(&[&rsa, &ec]).await;
    let verifier = Verifier::new(&idp.config(Duration::from_secs(30))).unwrap();
    assert!(verifier.prefetch().await, "the set loads though it holds keys Tandem cannot use");
    assert_eq!(idp.hits(), 1);

    let admin = verifier.authenticate(&rsa.sign(&claims("kc-user-1", &["coach-admin"]))).await.unwrap();
    assert_eq!(admin.roles(), [Role::Admin]);
    assert_eq!(admin.subject(), "kc-user-1");
    let analyst =
        verifier.authenticate(&ec.sign(&claims("kc-user-2", &["analytics", "offline_access"]))).await.unwrap();
    assert_eq!(analyst.roles(), [Role::Analyst]);
    // The synchronous path uses the cached set too.
    verifier.verify(&rsa.sign(&claims("kc-user-1", &["hr-integration"]))).unwrap();
    assert_eq!(idp.hits(), 1, "verified from the cache");

    // The skipped keys are not keys: a token naming one is refused.
    let token = rsa.sign_as("enc-1", &claims("kc-user-1", &["coach-admin"]));
    let err = verifier.authenticate(&token).await.unwrap_err();
    assert!(matches!(err, AuthError::UnknownKeyId), "{err:?}");
    assert_eq!(err.api_code(), "UNAUTHENTICATED");
}

#[tokio::test]
async fn a_token_from_a_rotated_key_makes_the_key_set_be_fetched_again() {
    let (old, new) = (Key::rsa1(), Key::rsa2());
    let idp = Idp::start(&[&old]).await;
    let verifier = Verifier::new(&idp.config(Duration::from_millis(300))).unwrap();
    verifier.authenticate(&old.sign(&claims("u", &["coach-admin"]))).await.unwrap();
    assert_eq!(idp.hits(), 1, "the first token fetched the set");

    // The provider rotates: the new key replaces the old one.
    idp.publish(&[&new]);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let principal = verifier.authenticate(&new.sign(&claims("u", &["coach-admin"]))).await.unwrap();
    assert!(principal.is_admin());
    assert_eq!(idp.hits(), 2, "one refetch for the unknown kid");
    verifier.authenticate(&new.sign(&claims("u", &["analytics"]))).await.unwrap();
    assert_eq!(idp.hits(), 2);

    // The retired key is gone from the set.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let err = verifier.authenticate(&old.sign(&claims("u", &["coach-admin"]))).await.unwrap_err();
    assert!(matches!(err, AuthError::UnknownKeyId), "{err:?}");
}

#[tokio::test]
async fn a_flood_of_unknown_kids_fetches_at_most_once_per_interval() {
    let key = Key::rsa1();
    let idp = Idp::start(&[&key]).await;
    let registry = prometheus::Registry::new();
    let verifier =
        Arc::new(Verifier::new(&idp.config(Duration::from_secs(60))).unwrap().with_metrics(&registry).unwrap());
    assert!(verifier.prefetch().await);
    assert_eq!(idp.hits(), 1);

    let mut tasks = Vec::new();
    for n in 0..200 {
        let verifier = verifier.clone();
        let token = key.sign_as(&format!("made-up-{n}"), &claims("attacker", &["coach-admin"]));
        tasks.push(tokio::spawn(async move { verifier.authenticate(&token).await }));
    }
    for task in tasks {
        let err = task.await.unwrap().unwrap_err();
        assert!(matches!(err, AuthError::UnknownKeyId), "{err:?}");
    }
    // The prefetch started the interval: not one of the 200 fetched.
    assert_eq!(idp.hits(), 1, "no fetch within the interval of the last one");
    // The known key still verifies, from the cache.
    verifier.authenticate(&key.sign(&claims("u", &["coach-admin"]))).await.unwrap();
    assert_eq!(idp.hits(), 1);
    // The flood is visible to the operator.
    let mut text = Vec::new();
    prometheus::Encoder::encode(&prometheus::TextEncoder::new(), &registry.gather(), &mut text).unwrap();
    let text = String::from_utf8(text).unwrap();
    assert!(text.contains("tandem_jwks_fetches_total{outcome=\"ok\"} 1\n"), "{text}");
    assert!(text.contains("tandem_jwks_fetches_total{outcome=\"rate_limited\"} 200\n"), "{text}");
    assert!(text.contains("tandem_jwks_keys 1\n"), "{text}");

    // Once the interval has passed, one unknown kid fetches, once, however many ask.
    let verifier = Arc::new(Verifier::new(&idp.config(Duration::from_secs(2))).unwrap());
    assert!(verifier.prefetch().await);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let mut tasks = Vec::new();
    for n in 0..200 {
        let verifier = verifier.clone();
        let token = key.sign_as(&format!("made-up-{n}"), &claims("attacker", &["coach-admin"]));
        tasks.push(tokio::spawn(async move { verifier.authenticate(&token).await }));
    }
    for task in tasks {
        assert!(matches!(task.await.unwrap(), Err(AuthError::UnknownKeyId)));
    }
    assert_eq!(idp.hits(), 3, "the second verifier's prefetch and exactly one refetch");
}

#[tokio::test]
async fn cached_keys_keep_verifying_while_the_provider_is_down() {
    let key = Key::rsa1();
    let idp = Idp::start(&[&key]).await;
    *idp.state.cache_control.lock().unwrap() = Some("public, max-age=0");
    let short = JwksCache {
        default_ttl: Duration::from_millis(200),
        min_ttl: Duration::from_millis(200),
        min_refetch_interval: Duration::from_millis(100),
        ..JwksCache::default()
    };
    let verifier = Verifier::new(&AuthConfig { jwks_cache: short, ..idp.config(Duration::ZERO) }).unwrap();
    assert!(verifier.prefetch().await);
    idp.set_down(true);

    // The set is stale (max-age=0 gives the shortest lifetime): every
    // request may start a background refresh, which fails; the stale set
    // keeps verifying meanwhile.
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let principal = verifier.authenticate(&key.sign(&claims("u", &["coach-admin"]))).await.unwrap();
        assert!(principal.is_admin());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let hits = idp.hits();
    assert!((2..=6).contains(&hits), "background refreshes were tried, rate-limited: {hits}");
    // An unknown kid waits for a fetch, which fails: refused, not unavailable.
    tokio::time::sleep(Duration::from_millis(150)).await;
    let err = verifier.authenticate(&key.sign_as("rsa-9", &claims("u", &["coach-admin"]))).await.unwrap_err();
    assert!(matches!(err, AuthError::UnknownKeyId), "{err:?}");

    // Back up: the next refresh takes the new set.
    let rotated = Key::rsa2();
    idp.publish(&[&rotated]);
    idp.set_down(false);
    tokio::time::sleep(Duration::from_millis(150)).await;
    verifier.authenticate(&rotated.sign(&claims("u", &["coach-admin"]))).await.unwrap();
}

#[tokio::test]
async fn without_any_key_set_tokens_are_answered_unavailable_until_one_arrives() {
    let key = Key::rsa1();
    let idp = Idp::start(&[&key]).await;
    idp.set_down(true);
    let verifier = Verifier::new(&idp.config(Duration::from_millis(300))).unwrap();
    assert!(!verifier.prefetch().await, "started without keys");
    let token = key.sign(&claims("u", &["coach-admin"]));
    let err = verifier.authenticate(&token).await.unwrap_err();
    assert!(matches!(err, AuthError::KeysUnavailable { retry_after_secs: 1 }), "{err:?}");
    assert_eq!(err.api_code(), "AUTH_UNAVAILABLE");
    assert!(!err.is_token_refusal());
    assert_eq!(idp.hits(), 1, "rate-limited: the refused request did not fetch again");

    idp.set_down(false);
    tokio::time::sleep(Duration::from_millis(400)).await;
    verifier.authenticate(&token).await.unwrap();
    assert_eq!(idp.hits(), 2);
}

#[tokio::test]
async fn an_unreachable_provider_at_start_up_is_no_reason_not_to_start() {
    // Nothing listens on the port any more.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let config = AuthConfig {
        algorithms: vec!["RS256".into()],
        jwks_url: Some(format!("http://{addr}/jwks")),
        ..AuthConfig::default()
    };
    let verifier = Verifier::new(&config).unwrap();
    assert!(!verifier.prefetch().await);
    let token = Key::rsa1().sign(&claims("u", &["admin"]));
    assert!(matches!(verifier.authenticate(&token).await, Err(AuthError::KeysUnavailable { .. })));
    assert!(matches!(verifier.verify(&token), Err(AuthError::KeysUnavailable { .. })));
}

// ---- roles from a claim path ----

#[tokio::test]
async fn roles_come_from_the_configured_path_through_the_role_map() {
    let key = Key::rsa1();
    let idp = Idp::start(&[&key]).await;
    let verifier = Verifier::new(&idp.config(Duration::from_secs(30))).unwrap();
    let roles = |names: &[&str]| claims("u", names);

    let p =
        verifier.authenticate(&key.sign(&roles(&["offline_access", "hr-integration", "coach-admin"]))).await.unwrap();
    assert_eq!(p.roles(), [Role::Admin, Role::Integrator]);
    // With a map, only mapped names count: Tandem's own names grant nothing.
    for names in [&["admin"][..], &["offline_access", "uma_authorization"], &[]] {
        let err = verifier.authenticate(&key.sign(&roles(names))).await.unwrap_err();
        assert!(matches!(err, AuthError::NoKnownRole), "{names:?}: {err:?}");
        assert_eq!(err.code(), "TOKEN_NO_KNOWN_ROLE");
    }
    // A top-level `roles` claim is not where this configuration looks.
    let top_level = with(with(roles(&[]), "roles", json!(["coach-admin"])), "realm_access", json!({}));
    assert!(matches!(verifier.authenticate(&key.sign(&top_level)).await, Err(AuthError::NoKnownRole)));
    // Wrongly typed roles are a malformed claim.
    let typed = with(roles(&[]), "realm_access", json!({"roles": [1, 2]}));
    assert!(matches!(verifier.authenticate(&key.sign(&typed)).await, Err(AuthError::InvalidClaim { claim: "roles" })));
}

#[tokio::test]
async fn roles_at_a_namespaced_url_claim_and_as_a_scope_string() {
    let key = Key::rsa1();
    let idp = Idp::start(&[&key]).await;
    let base = idp.config(Duration::from_secs(30));
    let token = |claims: &Value| key.sign(claims);

    // Auth0: a namespaced claim, dots in its name.
    let auth0 =
        Verifier::new(&AuthConfig { roles_claim: "https://tandem.example.com/roles".into(), ..base.clone() }).unwrap();
    let claims0 = with(claims("auth0|64f1", &[]), "https://tandem.example.com/roles", json!(["analytics"]));
    assert_eq!(auth0.authenticate(&token(&claims0)).await.unwrap().roles(), [Role::Analyst]);

    // Inside a namespaced object: the longest matching key wins at each level.
    let nested =
        Verifier::new(&AuthConfig { roles_claim: "https://tandem.example.com/claims.roles".into(), ..base.clone() })
            .unwrap();
    let claims1 =
        with(claims("auth0|64f1", &[]), "https://tandem.example.com/claims", json!({"roles": ["hr-integration"]}));
    assert_eq!(nested.authenticate(&token(&claims1)).await.unwrap().roles(), [Role::Integrator]);

    // Okta: `scp` as one blank-separated string.
    let okta = Verifier::new(&AuthConfig { roles_claim: "scp".into(), ..base.clone() }).unwrap();
    let claims2 = with(claims("00u1abcd", &[]), "scp", json!("openid analytics profile"));
    assert_eq!(okta.authenticate(&token(&claims2)).await.unwrap().roles(), [Role::Analyst]);

    // Without a map, Tandem's own names, wherever the path points.
    let plain = Verifier::new(&AuthConfig { roles_claim: "groups".into(), role_map: None, ..base }).unwrap();
    let claims3 = with(claims("u", &[]), "groups", json!("coordinator, everyone"));
    assert_eq!(plain.authenticate(&token(&claims3)).await.unwrap().roles(), [Role::Coordinator]);
}

#[test]
fn idp_settings_are_checked_at_start_up() {
    let base = AuthConfig { algorithms: vec!["RS256".into()], ..AuthConfig::default() };
    let refused = |config: AuthConfig| {
        let err = Verifier::new(&config).unwrap_err();
        assert_eq!(err.api_code(), "INTERNAL_SERVER_ERROR");
        assert!(err.code().starts_with("AUTH_CONFIG_"), "{}", err.code());
        err
    };
    let url = |url: &str| AuthConfig { jwks_url: Some(url.to_owned()), ..base.clone() };
    assert!(matches!(refused(url("http://idp.example.com/jwks")), AuthError::InvalidJwksUrl { .. }));
    assert!(matches!(refused(url("not a url")), AuthError::InvalidJwksUrl { .. }));
    Verifier::new(&AuthConfig { jwks_allow_http: true, ..url("http://keycloak.auth:8080/certs") }).unwrap();
    let both = AuthConfig {
        jwks_file: Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/jwks.json")),
        ..url("https://idp.example.com/jwks")
    };
    assert!(matches!(refused(both), AuthError::AmbiguousKeySource));
    let hs = AuthConfig {
        algorithms: vec!["HS256".into()],
        hs256_secret: Some("0123456789abcdef0123456789abcdef".into()),
        ..url("https://idp.example.com/jwks")
    };
    assert!(matches!(refused(hs), AuthError::UnusedKeyMaterial { setting: "TANDEM_JWT_JWKS_URL" }));

    let ok = url("https://idp.example.com/jwks");
    for map in ["coach-admin", "coach-admin=root", "=admin", "a=admin,a=analyst", " , "] {
        let config = AuthConfig { role_map: Some(map.to_owned()), ..ok.clone() };
        assert!(matches!(refused(config), AuthError::InvalidRoleMap { .. }), "{map}");
    }
    Verifier::new(&AuthConfig { role_map: Some(" a=admin , b = analyst,".into()), ..ok.clone() }).unwrap();
    for path in ["", "  ", ".roles", "realm_access."] {
        let config = AuthConfig { roles_claim: path.to_owned(), ..ok.clone() };
        assert!(matches!(refused(config), AuthError::InvalidClaimPath { setting: "TANDEM_JWT_ROLES_CLAIM" }));
        let config = AuthConfig { person_claim: Some(path.to_owned()), ..ok.clone() };
        assert!(matches!(refused(config), AuthError::InvalidClaimPath { setting: "TANDEM_JWT_PERSON_CLAIM" }));
    }
}

// ---- a participant's person by claim, through the whole server ----

const ME: &str = "{ me { subject roles person { id } } }";

/// Registers a person through the API as the provider's admin.
async fn register(s: &TestServer, admin: &str, external_id: &str, name: &str, email: &str) -> String {
    let d = s
        .ok(
            admin,
            REGISTER,
            json!({"i": {"externalId": external_id, "name": name, "email": email, "department": "Engineering",
                "title": "Engineer", "level": 3, "hiredOn": "2021-04-01"}}),
        )
        .await;
    d["registerPerson"]["person"]["id"].as_str().unwrap().to_owned()
}

async fn idp_server(pool: PgPool, idp: &Idp, person_claim: &str, matching: PersonMatch) -> TestServer {
    let auth = AuthConfig {
        person_claim: Some(person_claim.to_owned()),
        person_match: matching,
        ..idp.config(Duration::from_secs(30))
    };
    TestServer::start_with(pool, Options { auth: Some(auth), ..Options::default() }).await
}

/// The status, first error code and message of a request.
async fn refusal(s: &TestServer, token: &str) -> (u16, String, String) {
    let (status, body) = s.post(Some(token), ME, json!({})).await;
    let error = &body["errors"][0];
    (status, error["extensions"]["code"].as_str().unwrap_or_default().to_owned(), error["message"].to_string())
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_participant_is_found_by_the_email_claim(pool: PgPool) {
    let key = Key::ec1();
    let idp = Idp::start(&[&key]).await;
    let s = idp_server(pool, &idp, "email", PersonMatch::Email).await;
    let admin = key.sign(&claims("kc-admin", &["coach-admin"]));
    let ada = register(&s, &admin, "E-ADA", "Ada Lovelace", "ada.lovelace@example.com").await;

    // Keycloak's `sub` is a UUID of its own: never taken for a person id.
    let kc_sub = uuid::Uuid::new_v4().to_string();
    let token = key.sign(&with(claims(&kc_sub, &["employee"]), "email", json!("Ada.Lovelace@Example.COM")));
    let me = s.ok(&token, ME, json!({})).await;
    assert_eq!(me["me"]["person"]["id"], ada.as_str(), "{me}");
    assert_eq!(me["me"]["subject"], kc_sub.as_str());
    assert_eq!(me["me"]["roles"], json!(["participant"]));
    let verified = with(
        with(claims(&kc_sub, &["employee"]), "email", json!("ada.lovelace@example.com")),
        "email_verified",
        json!(true),
    );
    s.ok(&key.sign(&verified), ME, json!({})).await;

    // Nobody of that address: 403, coded, never a 500.
    let stranger = key.sign(&with(claims("kc-2", &["employee"]), "email", json!("eve@example.com")));
    let (status, code, message) = refusal(&s, &stranger).await;
    assert_eq!((status, code.as_str()), (403, "FORBIDDEN"), "{message}");
    assert!(message.contains("no person"), "{message}");
    let mut ws = ws::connect(&s.ws_url(), Some("graphql-transport-ws")).await;
    ws::send(&mut ws, json!({"type": "connection_init", "payload": {"token": stranger}})).await;
    assert_eq!(ws::expect_close(&mut ws).await.0, 4403);
    // No e-mail claim at all, or one the provider did not verify: 403 too.
    let (status, code, _) = refusal(&s, &key.sign(&claims("kc-3", &["employee"]))).await;
    assert_eq!((status, code.as_str()), (403, "FORBIDDEN"));
    let unverified = with(
        with(claims(&kc_sub, &["employee"]), "email", json!("ada.lovelace@example.com")),
        "email_verified",
        json!(false),
    );
    let (status, code, message) = refusal(&s, &key.sign(&unverified)).await;
    assert_eq!((status, code.as_str()), (403, "FORBIDDEN"));
    assert!(message.contains("not verified"), "{message}");
    // Two people sharing an address: neither is guessed.
    register(&s, &admin, "E-TWIN-1", "Twin One", "twins@example.com").await;
    register(&s, &admin, "E-TWIN-2", "Twin Two", "twins@example.com").await;
    let twin = key.sign(&with(claims("kc-6", &["employee"]), "email", json!("twins@example.com")));
    let (status, code, message) = refusal(&s, &twin).await;
    assert_eq!((status, code.as_str()), (403, "FORBIDDEN"));
    assert!(message.contains("more than one"), "{message}");
    // Roles Tandem does not know: 401 as before.
    let (status, code, _) = refusal(&s, &key.sign(&claims("kc-4", &["offline_access"]))).await;
    assert_eq!((status, code.as_str()), (401, "UNAUTHENTICATED"));
    // Other roles are not looked up and need no person.
    let analyst = s.ok(&key.sign(&claims("kc-5", &["analytics"])), ME, json!({})).await;
    assert_eq!(analyst["me"]["person"], Value::Null);
    s.stop().await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_participant_is_found_by_an_external_id_claim(pool: PgPool) {
    let key = Key::rsa1();
    let idp = Idp::start(&[&key]).await;
    let s = idp_server(pool, &idp, "employee_id", PersonMatch::ExternalId).await;
    let admin = key.sign(&claims("kc-admin", &["coach-admin"]));
    let bob = register(&s, &admin, "HR-0042", "Bob Babbage", "bob@example.com").await;

    // The HRIS id, compared without regard to case as registration does.
    let token = key.sign(&with(claims("00u-bob", &["employee"]), "employee_id", json!("hr-0042")));
    let me = s.ok(&token, ME, json!({})).await;
    assert_eq!(me["me"]["person"]["id"], bob.as_str(), "{me}");
    // Again, from the lookup cache.
    s.ok(&token, ME, json!({})).await;

    let unknown = key.sign(&with(claims("00u-x", &["employee"]), "employee_id", json!("HR-9999")));
    let (status, code, message) = refusal(&s, &unknown).await;
    assert_eq!((status, code.as_str()), (403, "FORBIDDEN"), "{message}");
    // An erased person is nobody.
    let cy = register(&s, &admin, "HR-0043", "Cy Clarke", "cy@example.com").await;
    s.ok(
        &admin,
        "mutation($i: ErasePersonInput!) { erasePerson(input: $i) { consistent } }",
        json!({"i": {"personId": cy}}),
    )
    .await;
    let erased = key.sign(&with(claims("00u-cy", &["employee"]), "employee_id", json!("HR-0043")));
    let (status, code, _) = refusal(&s, &erased).await;
    assert_eq!((status, code.as_str()), (403, "FORBIDDEN"));
    // A number is not an external id.
    let typed = key.sign(&with(claims("00u-x", &["employee"]), "employee_id", json!(42)));
    let (status, code, _) = refusal(&s, &typed).await;
    assert_eq!((status, code.as_str()), (403, "FORBIDDEN"));
    s.stop().await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn requests_are_answered_503_with_retry_after_until_the_keys_arrive(pool: PgPool) {
    let key = Key::rsa1();
    let idp = Idp::start(&[&key]).await;
    idp.set_down(true);
    let auth = idp.config(Duration::from_secs(30));
    let s = TestServer::start_with(pool, Options { auth: Some(auth), ..Options::default() }).await;
    let response = reqwest::Client::new()
        .post(s.url())
        .bearer_auth(key.sign(&claims("u", &["coach-admin"])))
        .json(&json!({"query": ME}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 503);
    let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=30).contains(&retry_after), "{retry_after}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "AUTH_UNAVAILABLE", "{body}");
    // A websocket is told to try again later, not that it is forbidden.
    let mut ws = ws::connect(&s.ws_url(), Some("graphql-transport-ws")).await;
    let token = key.sign(&claims("u", &["coach-admin"]));
    ws::send(&mut ws, json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {token}")}}))
        .await;
    let (code, reason) = ws::expect_close(&mut ws).await;
    assert_eq!(code, 1013, "{reason}");
    s.stop().await;
}
