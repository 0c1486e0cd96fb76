//! A real Tandem server for the API tests: the whole router on
//! 127.0.0.1:0 over a migrated per-test database, with its projection
//! runners and event hub, and helpers to call it as any role.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use serde_json::{Value, json};
use sqlx::ConnectOptions as _;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tandem_api::auth::{AuthConfig, Role, Verifier, mint};
use tandem_api::context::ApiContext;
use tandem_api::metrics::Metrics;
use tandem_api::ops::OpsState;
use tandem_api::schema::{self, ApiState, EventHub, Limits};
use tandem_api::transport::TransportConfig;
use tandem_commands::CommandService;
use tandem_projections::{Projections, ProjectionsHandle, RunnerOptions};
use tokio_util::sync::CancellationToken;

pub const SECRET: &str = "test-secret-test-secret-test-secret-0123456789";

pub fn auth_config() -> AuthConfig {
    AuthConfig { hs256_secret: Some(SecretString::from(SECRET)), ..AuthConfig::default() }
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub pool: PgPool,
    pub shutdown: CancellationToken,
    pub state: ApiState,
    projections: Option<ProjectionsHandle>,
    server: tokio::task::JoinHandle<()>,
    http: reqwest::Client,
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
        let connect = test_pool.connect_options().as_ref().clone().log_statements(log::LevelFilter::Debug);
        let pool = PgPoolOptions::new().max_connections(30).connect_with(connect).await.unwrap();
        let projections = (!options.no_projections).then(|| {
            Projections::new(pool.clone())
                .options(RunnerOptions { poll_interval: Duration::from_millis(50), ..RunnerOptions::default() })
                .spawn()
                .unwrap()
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
        let commands = CommandService::from_pool(pool.clone()).with_metrics(metrics.registry()).unwrap();
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
        let verifier = Arc::new(Verifier::new(&auth_config()).unwrap());
        let app = tandem_api::app::router(
            schema::build(state.clone()),
            Arc::new(ApiContext::new(verifier, pool.clone()).with_rate_limit(options.rate_limit_per_minute)),
            transport,
            OpsState::new(pool.clone(), metrics, 1000),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let token = shutdown.clone();
        let server = tokio::spawn(async move {
            axum::serve(listener, app).with_graceful_shutdown(async move { token.cancelled().await }).await.unwrap();
        });
        Self { addr, pool, shutdown, state, projections, server, http: reqwest::Client::new() }
    }

    pub fn url(&self) -> String {
        format!("http://{}/graphql", self.addr)
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/graphql", self.addr)
    }

    pub fn token(&self, roles: &[Role], sub: &str) -> String {
        mint(&auth_config(), roles, sub, Duration::from_secs(3600)).unwrap()
    }

    pub fn admin(&self) -> String {
        self.token(&[Role::Admin], "admin-1")
    }

    /// POSTs a GraphQL request; returns the status and the JSON body.
    pub async fn post(&self, token: Option<&str>, query: &str, variables: Value) -> (u16, Value) {
        let mut req = self
            .http
            .post(self.url())
            .header("content-type", "application/json")
            .header("accept", "application/graphql-response+json")
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        (status, body)
    }

    /// A request expected to succeed: returns `data`, failing on any error.
    pub async fn ok(&self, token: &str, query: &str, variables: Value) -> Value {
        let (status, body) = self.post(Some(token), query, variables).await;
        assert!(body.get("errors").is_none() && status == 200, "{status}: {body:#}");
        body["data"].clone()
    }

    /// The first error's `extensions.code`.
    pub async fn error_code(&self, token: Option<&str>, query: &str, variables: Value) -> String {
        let (_, body) = self.post(token, query, variables).await;
        body["errors"][0]["extensions"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("no error code in {body:#}"))
            .to_owned()
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.server.await;
        if let Some(p) = self.projections {
            p.shutdown().await;
        }
    }
}

/// A small organisation built through the API: a program, four people
/// enrolled, two pairs.
pub struct Org {
    pub program: String,
    pub people: Vec<String>,
    pub pairs: Vec<String>,
}

pub const REGISTER: &str =
    "mutation($i: RegisterPersonInput!) { registerPerson(input: $i) { position person { id name } } }";
pub const LAUNCH: &str =
    "mutation($i: LaunchProgramInput!) { launchProgram(input: $i) { position program { id name } } }";
pub const ENROL: &str =
    "mutation($i: EnrolParticipantInput!) { enrolParticipant(input: $i) { position program { id participantCount } } }";
pub const FORM: &str = "mutation($i: FormPairInput!) { formPair(input: $i) { position pair { id status memberIds } } }";
pub const HOLD: &str =
    "mutation($i: HoldSessionInput!) { holdSession(input: $i) { position session { id status activities } } }";
pub const FEEDBACK: &str =
    "mutation($i: GiveFeedbackInput!) { giveFeedback(input: $i) { position feedback { id visibility strengths } } }";

pub async fn register(s: &TestServer, name: &str, level: i32, manager: Option<&str>) -> String {
    let d = s
        .ok(
            &s.admin(),
            REGISTER,
            json!({"i": {"externalId": format!("E-{}", name.replace(' ', "-")), "name": name,
                "email": format!("{}@example.com", name.to_lowercase().replace(' ', ".")),
                "department": "Engineering", "title": "Engineer", "level": level, "managerId": manager,
                "hiredOn": "2020-01-01"}}),
        )
        .await;
    d["registerPerson"]["person"]["id"].as_str().unwrap().to_owned()
}

pub async fn org(s: &TestServer) -> Org {
    let admin = s.admin();
    let d = s
        .ok(
            &admin,
            LAUNCH,
            json!({"i": {"name": "Onboarding buddies", "purpose": "ONBOARDING", "kind": "PAIRS", "maxLevelGap": 2,
                "cadenceDays": 14, "startsOn": "2024-01-01"}}),
        )
        .await;
    let program = d["launchProgram"]["program"]["id"].as_str().unwrap().to_owned();
    let mut people = Vec::new();
    for name in ["Ada Lovelace", "Bob Moses", "Cy Young", "Di Prince"] {
        let id = register(s, name, 3, None).await;
        s.ok(&admin, ENROL, json!({"i": {"programId": program, "personId": id, "enrolledOn": "2024-01-02"}})).await;
        people.push(id);
    }
    let mut pairs = Vec::new();
    for members in [[&people[0], &people[1]], [&people[2], &people[3]]] {
        let d = s
            .ok(&admin, FORM, json!({"i": {"programId": program, "memberIds": members, "formedOn": "2024-01-10"}}))
            .await;
        pairs.push(d["formPair"]["pair"]["id"].as_str().unwrap().to_owned());
    }
    Org { program, people, pairs }
}
