//! A real Tandem server for tests: the whole router on 127.0.0.1:0 over the
//! test's migrated database, with its projection runners and event hub,
//! verifying tokens signed with [`crate::tokens::SECRET`], and helpers to
//! call it as any role.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use sqlx::ConnectOptions as _;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tandem_api::auth::{Role, Verifier};
use tandem_api::context::ApiContext;
use tandem_api::metrics::Metrics;
use tandem_api::ops::OpsState;
use tandem_api::schema::{self, ApiState, EventHub, Limits};
use tandem_api::transport::{CorsOrigins, TransportConfig};
use tandem_commands::CommandService;
use tandem_projections::{Projections, ProjectionsHandle, RunnerOptions};
use tokio_util::sync::CancellationToken;

use crate::client::GraphqlClient;
use crate::tokens;

pub struct TestServer {
    pub addr: SocketAddr,
    pub pool: PgPool,
    pub shutdown: CancellationToken,
    pub state: ApiState,
    projections: Option<ProjectionsHandle>,
    server: tokio::task::JoinHandle<()>,
    client: GraphqlClient,
}

/// Options of a test server.
#[derive(Clone, Debug, Default)]
pub struct Options {
    pub limits: Option<Limits>,
    pub transport: Option<fn(TransportConfig) -> TransportConfig>,
    /// Do not run the projections (read-your-writes then times out).
    pub no_projections: bool,
    /// Requests per subject per minute (0: unlimited).
    pub rate_limit_per_minute: u32,
    /// The auth configuration (default: HS256 with [`tokens::SECRET`]).
    pub auth: Option<tandem_api::auth::AuthConfig>,
    /// Browser origins allowed across origins (set after `transport`, so
    /// a test can allow an origin it learns at run time).
    pub cors: Option<CorsOrigins>,
}

impl TestServer {
    pub async fn start(pool: PgPool) -> Self {
        Self::start_with(pool, Options::default()).await
    }

    pub async fn start_with(test_pool: PgPool, options: Options) -> Self {
        if std::env::var_os("TANDEM_TEST_LOG").is_some() {
            let _ = tracing_subscriber::fmt().with_test_writer().with_env_filter("info,sqlx=warn").try_init();
        }
        // The per-test pool is small; the server gets its own.
        let connect = crate::db::options(&test_pool).log_statements(log::LevelFilter::Debug);
        let pool =
            PgPoolOptions::new().max_connections(30).connect_with(connect).await.expect("connect the server's pool");
        let projections = (!options.no_projections).then(|| {
            Projections::new(pool.clone())
                .options(RunnerOptions { poll_interval: Duration::from_millis(50), ..RunnerOptions::default() })
                .spawn()
                .expect("start the projections")
        });
        if let Some(p) = &projections {
            // Serve only once the read-model tables exist.
            let wanted = tandem_projections::read_models().len();
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            while p.waiter().positions().len() < wanted {
                assert!(std::time::Instant::now() < deadline, "projections did not start");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        let waiter = projections
            .as_ref()
            .map_or_else(|| tandem_projections::Waiter::for_read_models(pool.clone()), ProjectionsHandle::waiter);
        let shutdown = CancellationToken::new();
        let metrics = Metrics::new();
        // The command service counts appended events into the API's registry, as `serve` wires it.
        let commands = CommandService::from_pool(pool.clone())
            .with_secret(crate::test_secret())
            .with_metrics(metrics.registry())
            .expect("registers once");
        let store = commands.store().clone();
        let hub = EventHub::start(store.clone(), shutdown.child_token());
        let mut limits = options.limits.clone().unwrap_or_default();
        if options.limits.is_none() {
            limits.read_your_writes_timeout = Duration::from_secs(10);
        }
        let state = ApiState { pool: pool.clone(), store, commands, waiter, hub, limits, metrics: metrics.clone() };
        let mut transport = TransportConfig { shutdown: shutdown.clone(), ..TransportConfig::default() };
        if let Some(f) = options.transport {
            transport = f(transport);
        }
        if let Some(cors) = options.cors.clone() {
            transport.cors = cors;
        }
        let auth = options.auth.clone().unwrap_or_else(tokens::auth_config);
        let verifier = Verifier::new(&auth).expect("the test auth configuration");
        verifier.prefetch().await;
        let verifier = Arc::new(verifier.with_people(pool.clone()));
        let app = tandem_api::app::router(
            schema::build(state.clone()),
            Arc::new(ApiContext::new(verifier, pool.clone()).with_rate_limit(options.rate_limit_per_minute)),
            transport,
            OpsState::new(pool.clone(), metrics, 1000),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("the bound address");
        let token = shutdown.clone();
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { token.cancelled().await })
                .await
                .expect("serve");
        });
        let client = GraphqlClient::new(format!("http://{addr}/graphql"));
        Self { addr, pool, shutdown, state, projections, server, client }
    }

    pub fn url(&self) -> String {
        self.client.url().to_owned()
    }

    /// `http://127.0.0.1:<port>`: the origin of this server.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/graphql", self.addr)
    }

    /// The GraphQL client of this server.
    pub fn client(&self) -> &GraphqlClient {
        &self.client
    }

    pub fn token(&self, roles: &[Role], sub: &str) -> String {
        tokens::token(roles, sub)
    }

    pub fn admin(&self) -> String {
        tokens::admin()
    }

    /// POSTs a GraphQL request; returns the status and the JSON body.
    pub async fn post(&self, token: Option<&str>, query: &str, variables: Value) -> (u16, Value) {
        self.client.post(token, query, variables).await
    }

    /// A request expected to succeed: returns `data`, failing on any error.
    pub async fn ok(&self, token: &str, query: &str, variables: Value) -> Value {
        self.client.ok(token, query, variables).await
    }

    /// The first error's `extensions.code`.
    pub async fn error_code(&self, token: Option<&str>, query: &str, variables: Value) -> String {
        self.client.error_code(token, query, variables).await
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.server.await;
        if let Some(p) = self.projections {
            p.shutdown().await;
        }
    }
}
