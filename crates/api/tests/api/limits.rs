//! Every 429 says when to retry: `Retry-After` and the RateLimit fields,
//! on SCIM as on GraphQL (whose own test is in `api.rs`).

use std::sync::Arc;

use sqlx::PgPool;
use tandem_api::auth::Verifier;
use tandem_api::context::ApiContext;
use tandem_hris::{ScimConfig, ScimState};

use crate::support::{TestServer, auth_config};

#[sqlx::test(migrations = "../../migrations")]
async fn a_scim_client_over_its_budget_gets_retry_after_and_the_ratelimit_fields(pool: PgPool) {
    let s = TestServer::start(pool).await;
    let verifier = Arc::new(Verifier::new(&auth_config()).unwrap());
    let context = Arc::new(ApiContext::new(verifier, s.pool.clone()).with_rate_limit(2));
    let state = ScimState {
        pool: s.pool.clone(),
        commands: s.state.commands.clone(),
        waiter: s.state.waiter.clone(),
        config: ScimConfig::default(),
    };
    let app = axum::Router::new().nest("/scim/v2", tandem_api::scim::router(context, state));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/scim/v2/Users", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let token = tandem_testkit::tokens::integrator();
    let client = reqwest::Client::new();
    for _ in 0..2 {
        let r = client.get(&url).bearer_auth(&token).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    let r = client.get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), 429);
    let header = |name: &str| r.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    // Two a minute: one request back every 30 s.
    let retry_after: u64 = header("retry-after").expect("Retry-After on 429").parse().unwrap();
    assert!((1..=30).contains(&retry_after), "Retry-After {retry_after}");
    assert_eq!(header("ratelimit-limit").as_deref(), Some("2"));
    assert_eq!(header("ratelimit-remaining").as_deref(), Some("0"));
    assert_eq!(header("ratelimit-reset"), Some(retry_after.to_string()));
    assert_eq!(header("ratelimit-policy").as_deref(), Some("2;w=60"));
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["status"], "429", "a SCIM error message: {body:#}");
    server.abort();
    s.stop().await;
}
