//! The command line and its configuration: every flag also reads an
//! environment variable, and every one is listed in the README with its
//! default. Secrets (database password, JWT secret) are never printed:
//! clap is told to hide their values and they are kept in `secrecy` types.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use secrecy::SecretString;

/// Tandem: an open backend for peer-coaching programs.
#[derive(Debug, Parser)]
#[command(name = "tandem", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Commands,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Commands {
    /// Run the GraphQL API (and the projections) until SIGTERM or Ctrl-C.
    Serve(Box<ServeArgs>),
    /// Apply the database migrations and exit.
    Migrate(DbArgs),
    /// Rebuild read models from the event log into fresh tables and swap them in.
    Replay(ReplayArgs),
    /// Mint a token signed with the configured HS256 secret, or revoke one (`token revoke JTI`).
    Token(Box<TokenArgs>),
    /// Fill the database with a realistic demo organisation through the command path.
    Demo(DemoArgs),
    /// Export the event log, the fact tables or a retention study for analysts.
    Export(crate::export::ExportArgs),
    /// Import people from a CSV file through the command path (`import people --file F.csv`).
    Import(crate::import::ImportArgs),
    /// Run the benchmark suite in a database it creates (and drops) on the
    /// server of DATABASE_URL, printing each figure beside raw PostgreSQL.
    Bench(BenchArgs),
    /// Manage the master key (`keys rotate`).
    Keys(KeysArgs),
}

/// `tandem keys`.
#[derive(Debug, Args)]
pub struct KeysArgs {
    #[command(subcommand)]
    pub action: KeysAction,
}

/// What `tandem keys` does.
#[derive(Debug, Subcommand)]
pub enum KeysAction {
    /// Rewrap every person's data key under a new master key, without
    /// touching events. The current master key comes from the usual
    /// configuration; the new one from --new-key-file, which is created
    /// (readable by its owner only) with a fresh key when it does not
    /// exist.
    Rotate(RotateArgs),
}

/// `tandem keys rotate`.
#[derive(Debug, Args)]
pub struct RotateArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// The new master key's file.
    #[arg(long)]
    pub new_key_file: PathBuf,
}

/// Where the database is.
#[derive(Debug, Args, Clone)]
pub struct DbArgs {
    /// PostgreSQL URL. Without it, Tandem runs a private PostgreSQL cluster
    /// under --data-dir from the PostgreSQL binaries on this machine.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<SecretString>,
    /// Directory of the embedded PostgreSQL cluster (used without DATABASE_URL).
    #[arg(long, env = "TANDEM_DATA_DIR", default_value = ".tandem")]
    pub data_dir: PathBuf,
    /// Most database connections this process opens.
    #[arg(long, env = "TANDEM_DB_MAX_CONNECTIONS", default_value_t = 20)]
    pub db_max_connections: u32,
    #[command(flatten)]
    pub keys: MasterKeyArgs,
}

/// The master key that wraps the per-person data keys (see
/// `docs/PRIVACY.md`). Every process of a database needs the same one.
#[derive(Debug, Args, Clone)]
pub struct MasterKeyArgs {
    /// The master key: 32 bytes as 64 hex digits or base64. Required with
    /// DATABASE_URL (or --master-key-file); without DATABASE_URL one is
    /// generated once into --data-dir/master.key.
    #[arg(long, env = "TANDEM_MASTER_KEY", hide_env_values = true)]
    pub master_key: Option<SecretString>,
    /// A file holding the master key (surrounding white space ignored).
    #[arg(long, env = "TANDEM_MASTER_KEY_FILE", conflicts_with = "master_key")]
    pub master_key_file: Option<PathBuf>,
    /// A file holding the master key being rotated out: data keys it
    /// wrapped are still opened (new ones are wrapped by the master key),
    /// so servers keep reading while `tandem keys rotate` runs.
    #[arg(long, env = "TANDEM_PREVIOUS_MASTER_KEY_FILE")]
    pub previous_master_key_file: Option<PathBuf>,
}

/// Log output format.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Logging and tracing.
#[derive(Debug, Args, Clone)]
pub struct LogArgs {
    /// Log format.
    #[arg(long, env = "TANDEM_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Log filter (tracing `EnvFilter` syntax).
    #[arg(long, env = "RUST_LOG", default_value = "info,sqlx=warn")]
    pub log: String,
    /// OTLP/HTTP endpoint to export traces to, e.g. http://localhost:4318.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
    /// Service name reported in traces.
    #[arg(long, env = "OTEL_SERVICE_NAME", default_value = "tandem")]
    pub service_name: String,
}

/// Token validation.
#[derive(Debug, Args, Clone)]
pub struct JwtArgs {
    /// Required `iss` of tokens.
    #[arg(long, env = "TANDEM_JWT_ISSUER", default_value = "tandem")]
    pub jwt_issuer: String,
    /// Required `aud` of tokens.
    #[arg(long, env = "TANDEM_JWT_AUDIENCE", default_value = "tandem-api")]
    pub jwt_audience: String,
    /// Accepted clock skew for exp/nbf, in seconds.
    #[arg(long, env = "TANDEM_JWT_LEEWAY", default_value_t = 30)]
    pub jwt_leeway: u64,
    /// Accepted algorithms, comma-separated: HS256 (development), or any of RS256, ES256, EdDSA.
    #[arg(long, env = "TANDEM_JWT_ALGORITHMS", default_value = "HS256")]
    pub jwt_algorithms: String,
    /// HS256 secret (at least 32 bytes).
    #[arg(long, env = "TANDEM_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<SecretString>,
    /// PEM file with the public key for RS256/ES256/EdDSA.
    #[arg(long, env = "TANDEM_JWT_PUBLIC_KEY_FILE")]
    pub jwt_public_key_file: Option<PathBuf>,
    /// JWKS file with public keys selected by `kid`.
    #[arg(long, env = "TANDEM_JWT_JWKS_FILE")]
    pub jwt_jwks_file: Option<PathBuf>,
    /// The identity provider's JWKS URL (https; http only to loopback), cached and refetched on an unknown `kid`.
    #[arg(long, env = "TANDEM_JWT_JWKS_URL")]
    pub jwt_jwks_url: Option<String>,
    /// Allow an http JWKS URL to a host that is not loopback (an in-cluster identity provider).
    #[arg(long, env = "TANDEM_JWT_JWKS_ALLOW_HTTP", default_value_t = false, action = clap::ArgAction::Set)]
    pub jwt_jwks_allow_http: bool,
    /// Least seconds between two fetches of the JWKS URL (unknown-`kid` floods cannot go faster).
    #[arg(long, env = "TANDEM_JWT_JWKS_MIN_REFETCH_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub jwt_jwks_min_refetch_secs: u64,
    /// Where the roles are: a claim name or dotted path (`realm_access.roles`, `https://example.com/roles`).
    #[arg(long, env = "TANDEM_JWT_ROLES_CLAIM", default_value = "roles")]
    pub jwt_roles_claim: String,
    /// Identity provider role names to Tandem roles: `idp-name=role,…`; only mapped names count when set.
    #[arg(long, env = "TANDEM_JWT_ROLE_MAP")]
    pub jwt_role_map: Option<String>,
    /// The claim naming a participant's person when `sub` is the provider's user id (`email`, `employee_id`).
    #[arg(long, env = "TANDEM_JWT_PERSON_CLAIM")]
    pub jwt_person_claim: Option<String>,
    /// How the person claim is matched: `email` or `external_id`.
    #[arg(long, env = "TANDEM_JWT_PERSON_MATCH", default_value = "email")]
    pub jwt_person_match: tandem_api::auth::PersonMatch,
}

/// `tandem serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "TANDEM_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub log: LogArgs,
    #[command(flatten)]
    pub jwt: JwtArgs,
    /// Run the projection runners in this process (one leader per projection
    /// across all processes sharing the database).
    #[arg(long, env = "TANDEM_RUN_PROJECTIONS", default_value_t = true, action = clap::ArgAction::Set)]
    pub run_projections: bool,
    /// /readyz fails when a projection is more than this many events behind.
    #[arg(long, env = "TANDEM_READY_MAX_LAG", default_value_t = 1000)]
    pub ready_max_lag: i64,
    /// Run the webhook delivery worker in this process (one leader across
    /// all processes sharing the database).
    #[arg(long, env = "TANDEM_RUN_WEBHOOKS", default_value_t = true, action = clap::ArgAction::Set)]
    pub run_webhooks: bool,
    /// The delays between webhook delivery attempts, in milliseconds,
    /// comma-separated (one attempt more than delays). The default is the
    /// Standard Webhooks schedule: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
    /// For development and tests.
    #[arg(long, env = "TANDEM_WEBHOOKS_RETRY_DELAYS_MS", value_delimiter = ',')]
    pub webhook_retry_delays_ms: Option<Vec<u64>>,
    /// Largest request body in bytes.
    #[arg(long, env = "TANDEM_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Time limit of one HTTP request, in seconds.
    #[arg(long, env = "TANDEM_REQUEST_TIMEOUT", default_value_t = 30)]
    pub request_timeout: u64,
    /// Deepest query accepted (introspection's `__schema` and `__type`
    /// have a cap of their own, which the standard introspection query of
    /// graphql-js passes).
    #[arg(long, env = "TANDEM_MAX_DEPTH", default_value_t = 12)]
    pub max_depth: usize,
    /// Answer introspection (`__schema`, `__type`); `false` in a production
    /// that ships its schema to clients some other way. GraphiQL needs it.
    #[arg(long, env = "TANDEM_INTROSPECTION", default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub introspection: bool,
    /// Largest query complexity accepted.
    #[arg(long, env = "TANDEM_MAX_COMPLEXITY", default_value_t = 5000)]
    pub max_complexity: usize,
    /// Largest page of any list.
    #[arg(long, env = "TANDEM_MAX_PAGE_SIZE", default_value_t = 100)]
    pub max_page_size: usize,
    /// How long a mutation waits for the read models, in milliseconds.
    #[arg(long, env = "TANDEM_READ_YOUR_WRITES_TIMEOUT_MS", default_value_t = 5000)]
    pub read_your_writes_timeout_ms: u64,
    /// Time given to in-flight requests and subscriptions on shutdown, in seconds.
    #[arg(long, env = "TANDEM_SHUTDOWN_GRACE", default_value_t = 20)]
    pub shutdown_grace: u64,
    /// Requests (and new websocket connections) each authenticated subject
    /// may make per minute; 0 turns the limit off.
    #[arg(long, env = "TANDEM_RATE_LIMIT_PER_MINUTE", default_value_t = 1200)]
    pub rate_limit_per_minute: u32,
    /// The salt of the pseudonyms in exports over HTTP (`GET /export/events`,
    /// at least 16 bytes). Without it that endpoint refuses every export.
    #[arg(long, env = "TANDEM_EXPORT_SALT", hide_env_values = true)]
    pub export_salt: Option<SecretString>,
    /// The server secret (at least 32 bytes) that keys the digests stored in
    /// place of idempotency keys and requests. Every process sharing the
    /// database needs the same one, kept across restarts. Without it (and
    /// without --server-secret-file) one is generated once into
    /// --data-dir/server.secret.
    #[arg(long, env = "TANDEM_SERVER_SECRET", hide_env_values = true)]
    pub server_secret: Option<SecretString>,
    /// A file holding the server secret (surrounding white space ignored).
    #[arg(long, env = "TANDEM_SERVER_SECRET_FILE", conflicts_with = "server_secret")]
    pub server_secret_file: Option<PathBuf>,
    /// Serve the GraphiQL IDE at /graphiql.
    #[arg(long, env = "TANDEM_GRAPHIQL", default_value_t = true, action = clap::ArgAction::Set)]
    pub graphiql: bool,
    /// Browser origins allowed to call /graphql from another origin (CORS),
    /// comma-separated (e.g. https://app.example.com,http://localhost:5173),
    /// or `*` for any origin, without credentials. Default: none, and no
    /// CORS headers are sent.
    #[arg(long, env = "TANDEM_CORS_ORIGINS", value_name = "ORIGINS")]
    pub cors_origins: Option<tandem_api::transport::CorsOrigins>,
    #[command(flatten)]
    pub scim: ScimArgs,
}

impl ServeArgs {
    /// The request timeout.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout)
    }
}

/// `tandem replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Rebuild only this projection (default: all).
    #[arg(long)]
    pub projection: Option<String>,
}

/// `tandem token`: mint a token, or `tandem token revoke JTI`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct TokenArgs {
    #[command(subcommand)]
    pub action: Option<TokenAction>,
    /// Role(s) to grant: admin, coordinator, participant, integrator, analyst (repeatable).
    #[arg(long = "role", required = true)]
    pub roles: Vec<String>,
    /// The subject: a person id for a participant, a client name otherwise
    /// (default: the role's name, e.g. `integrator`).
    #[arg(long)]
    pub sub: Option<String>,
    /// Lifetime, e.g. 3600s, 90m, 12h, 7d; at most 30d, or 366d for a token
    /// whose only role is integrator.
    #[arg(long, default_value = "12h")]
    pub ttl: String,
    #[command(flatten)]
    pub jwt: JwtArgs,
}

/// What `tandem token` does besides minting.
#[derive(Debug, Subcommand)]
pub enum TokenAction {
    /// Revoke a token by its `jti` (printed when it was minted): every
    /// server sharing the database refuses it within a second, no restart.
    Revoke(RevokeArgs),
}

/// `tandem token revoke`.
#[derive(Debug, Args)]
pub struct RevokeArgs {
    /// The token's `jti` claim.
    pub jti: String,
    /// Why, for the audit trail.
    #[arg(long, default_value = "")]
    pub reason: String,
    #[command(flatten)]
    pub db: DbArgs,
}

/// SCIM settings of `tandem serve`.
#[derive(Debug, Args, Clone)]
pub struct ScimArgs {
    /// The SCIM base URL as clients reach it, for `meta.location` and
    /// `$ref` (e.g. https://tandem.example.com/scim/v2); default: from
    /// each request's Host and X-Forwarded-Proto.
    #[arg(long, env = "TANDEM_SCIM_BASE_URL")]
    pub scim_base_url: Option<String>,
    /// The SCIM attribute path whose date says when a deactivated user
    /// left (without it, or without a value, the day of deactivation).
    #[arg(
        long,
        env = "TANDEM_SCIM_TERMINATION_DATE_ATTRIBUTE",
        default_value = "urn:ietf:params:scim:schemas:extension:tandem:2.0:User:terminationDate"
    )]
    pub scim_termination_date_attribute: String,
}

/// `tandem demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// How many people to create.
    #[arg(long, default_value_t = 300)]
    pub people: usize,
    /// Months of history.
    #[arg(long, default_value_t = 6)]
    pub months: u32,
    /// Random seed.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// The day the history ends (YYYY-MM-DD; default: today). With a fixed
    /// day and seed, the history's dates and counts are the same on every
    /// run (the ids are new each time).
    #[arg(long, value_name = "DATE")]
    pub today: Option<chrono::NaiveDate>,
}

/// `tandem bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// `full` gives the figures of BENCHMARKS.md; `smoke` runs every part in
    /// seconds, with figures that mean nothing, to keep the suite working.
    #[arg(long, value_enum, default_value = "full")]
    pub size: BenchSize,
    /// Run only these parts (comma-separated): append, read-all, export, replay,
    /// query, mutation, subscriptions, stall, import, webhooks.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Events in the generated history (default: 1,000,000 full, 20,000 smoke).
    #[arg(long)]
    pub events: Option<u64>,
    /// Seconds each throughput measurement runs (default: 10 full).
    #[arg(long)]
    pub seconds: Option<f64>,
    /// Websocket subscribers (default: 1,000 full, 20 smoke).
    #[arg(long)]
    pub subscribers: Option<usize>,
    /// Keep the bench database instead of dropping it.
    #[arg(long)]
    pub keep_database: bool,
    /// Also write the report as a Markdown table to this file.
    #[arg(long)]
    pub markdown: Option<PathBuf>,
}

/// `tandem bench --size`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BenchSize {
    Smoke,
    Full,
}

/// Parses a duration like `90s`, `15m`, `12h`, `7d` (or plain seconds).
pub fn parse_ttl(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s.find(|c: char| !c.is_ascii_digit()).map_or((s, "s"), |i| s.split_at(i));
    let n: u64 = num.parse().map_err(|_| format!("invalid duration {s:?}"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(format!("invalid duration unit in {s:?} (use s, m, h or d)")),
    };
    if secs == 0 || secs > 366 * 86_400 {
        return Err("duration must be between 1 second and a year".into());
    }
    Ok(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;
    use tandem_api::transport::CorsOrigins;

    use super::*;

    fn serve(args: &[&str]) -> Result<Box<ServeArgs>, clap::Error> {
        let argv = ["tandem", "serve"].iter().chain(args).copied();
        match Cli::try_parse_from(argv)?.command {
            Commands::Serve(args) => Ok(args),
            _ => unreachable!("parsed `serve`"),
        }
    }

    #[test]
    fn cors_origins_are_a_list_or_a_wildcard_and_none_by_default() {
        assert_eq!(serve(&[]).expect("parses").cors_origins, None);
        let list = serve(&["--cors-origins", "https://app.example.com, http://localhost:5173"]).expect("parses");
        assert_eq!(
            list.cors_origins,
            Some(CorsOrigins::List(vec!["https://app.example.com".into(), "http://localhost:5173".into()]))
        );
        assert_eq!(serve(&["--cors-origins", "*"]).expect("parses").cors_origins, Some(CorsOrigins::Any));
        let refused = serve(&["--cors-origins", "https://app.example.com/"]).expect_err("refused");
        assert!(refused.to_string().contains("is not an origin"), "{refused}");
    }
}
