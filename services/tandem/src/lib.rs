//! The `tandem` command line: configuration from flags and environment
//! ([`config`]), and one function per subcommand. `main.rs` only calls
//! [`main`].

pub mod config;
pub mod embedded;
pub mod export;
pub mod import;
pub(crate) mod keys;
pub mod progress;
pub mod telemetry;

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Parser;
use secrecy::{ExposeSecret, SecretString};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tandem_api::auth::{AuthConfig, Revocations, Role, Verifier, mint_with_id};
use tandem_api::context::ApiContext;
use tandem_api::metrics::Metrics;
use tandem_api::schema::{self, ApiState, EventHub, Limits};
use tandem_api::transport::TransportConfig;
use tandem_commands::CommandService;
use tandem_projections::{Projections, Waiter};
use tandem_store::ServerSecret;
use tokio_util::sync::CancellationToken;

use crate::config::{
    BenchArgs, BenchSize, Cli, Commands, DbArgs, DemoArgs, JwtArgs, ReplayArgs, RevokeArgs, ServeArgs, TokenAction,
    TokenArgs, parse_ttl,
};
use crate::embedded::EmbeddedPostgres;

/// Runs the command line.
pub async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Commands::Serve(args) => serve(*args).await,
        Commands::Migrate(db) => {
            let _log = telemetry::init_basic();
            with_database_vault(&db, keys::vault_if_configured(&db)?, |pool| async move {
                tandem_store::MIGRATOR.run(&pool).await.context("applying migrations")?;
                tracing::info!("migrations applied");
                Ok(())
            })
            .await
        }
        Commands::Replay(args) => replay(args).await,
        Commands::Token(args) => match &args.action {
            Some(TokenAction::Revoke(r)) => revoke(r).await,
            None => token(&args),
        },
        Commands::Demo(args) => demo(args).await,
        Commands::Bench(args) => bench(args).await,
        Commands::Keys(args) => {
            let _log = telemetry::init_basic();
            match args.action {
                config::KeysAction::Rotate(r) => keys::rotate(r).await,
            }
        }
        Commands::Export(args) => {
            let _log = telemetry::init_basic();
            export::run(args).await
        }
        Commands::Import(args) => {
            let _log = telemetry::init_basic();
            import::run(args).await
        }
    }
}

/// A database for a one-shot command: the given URL, or the embedded
/// cluster started for the command and stopped after it.
pub(crate) async fn with_database<F, Fut>(db: &DbArgs, f: F) -> anyhow::Result<()>
where
    F: FnOnce(PgPool) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    with_database_vault(db, keys::vault(db)?, f).await
}

/// [`with_database`] with the given vault installed.
pub(crate) async fn with_database_vault<F, Fut>(db: &DbArgs, vault: tandem_store::Vault, f: F) -> anyhow::Result<()>
where
    F: FnOnce(PgPool) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let (pool, embedded) = connect_with(db, vault).await?;
    let result = f(pool.clone()).await;
    pool.close().await;
    if let Some(pg) = embedded {
        pg.stop().await?;
    }
    result
}

/// Connects to DATABASE_URL, or starts the embedded cluster, and installs
/// the configured master key (checked against the keys already stored).
async fn connect(db: &DbArgs) -> anyhow::Result<(PgPool, Option<EmbeddedPostgres>)> {
    connect_with(db, keys::vault(db)?).await
}

async fn connect_with(db: &DbArgs, vault: tandem_store::Vault) -> anyhow::Result<(PgPool, Option<EmbeddedPostgres>)> {
    let (url, embedded) = match &db.database_url {
        Some(url) => (url.clone(), None),
        None => {
            let pg = EmbeddedPostgres::start(&db.data_dir).await?;
            (SecretString::from(pg.url()), Some(pg))
        }
    };
    let pool = PgPoolOptions::new()
        .max_connections(db.db_max_connections.max(4))
        .acquire_timeout(Duration::from_secs(10))
        .connect(url.expose_secret())
        .await
        .context("connecting to the database")?;
    keys::install(&pool, vault).await?;
    Ok((pool, embedded))
}

/// The development secret of an embedded setup: generated once into the
/// data directory (readable by its owner only) so that `tandem serve` and
/// `tandem token` agree without configuration. Only used when no JWT
/// configuration is given at all and no DATABASE_URL is set.
fn dev_secret(data_dir: &Path) -> anyhow::Result<SecretString> {
    let path = data_dir.join("jwt.secret");
    if let Ok(s) = std::fs::read_to_string(&path) {
        return Ok(SecretString::from(s.trim().to_owned()));
    }
    std::fs::create_dir_all(data_dir)?;
    let secret = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    std::fs::write(&path, &secret)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(SecretString::from(secret))
}

/// The server secret of `tandem serve` (see [`server_secret_of`]).
fn server_secret(args: &ServeArgs) -> anyhow::Result<ServerSecret> {
    server_secret_of(args.server_secret.as_ref(), args.server_secret_file.as_ref(), &args.db)
}

/// The server secret of any process writing commands (`serve`, `import`):
/// given, read from its file, or else generated once into the data
/// directory (readable by its owner only) and reused.
pub(crate) fn server_secret_of(
    secret: Option<&SecretString>,
    file: Option<&std::path::PathBuf>,
    db: &DbArgs,
) -> anyhow::Result<ServerSecret> {
    let invalid = |e| anyhow::anyhow!("the server secret: {e}");
    if let Some(secret) = secret {
        return ServerSecret::new(secret.expose_secret().as_bytes()).map_err(invalid);
    }
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        return ServerSecret::new(text.trim().as_bytes()).map_err(invalid);
    }
    let dir = &db.data_dir;
    let path = dir.join("server.secret");
    if let Ok(text) = std::fs::read_to_string(&path) {
        return ServerSecret::new(text.trim().as_bytes()).map_err(invalid);
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let text = tandem_store::secret::hex(&ServerSecret::generate().mac("server-secret", &[]));
    std::fs::write(&path, &text).with_context(|| format!("writing {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    }
    if db.database_url.is_some() {
        tracing::warn!(
            path = %path.display(),
            "no server secret given: generated one for this machine; give every process of this database \
             the same TANDEM_SERVER_SECRET, or idempotency keys will not replay across them"
        );
    } else {
        tracing::info!(path = %path.display(), "generated the server secret of the embedded setup");
    }
    ServerSecret::new(text.into_bytes()).map_err(invalid)
}

fn auth_config(jwt: &JwtArgs, dev_data_dir: Option<&Path>) -> anyhow::Result<AuthConfig> {
    let mut secret = jwt.jwt_secret.clone();
    let asymmetric = jwt.jwt_public_key_file.is_some() || jwt.jwt_jwks_file.is_some() || jwt.jwt_jwks_url.is_some();
    if secret.is_none()
        && !asymmetric
        && let Some(dir) = dev_data_dir
    {
        secret = Some(dev_secret(dir)?);
        tracing::warn!(
            path = %dir.join("jwt.secret").display(),
            "no JWT configuration given: using the development HS256 secret of the embedded setup"
        );
    }
    Ok(AuthConfig {
        issuer: jwt.jwt_issuer.clone(),
        audience: jwt.jwt_audience.clone(),
        leeway_secs: jwt.jwt_leeway,
        algorithms: jwt.jwt_algorithms.split(',').map(|a| a.trim().to_owned()).filter(|a| !a.is_empty()).collect(),
        hs256_secret: secret,
        public_key_pem_file: jwt.jwt_public_key_file.clone(),
        jwks_file: jwt.jwt_jwks_file.clone(),
        jwks_url: jwt.jwt_jwks_url.clone(),
        jwks_allow_http: jwt.jwt_jwks_allow_http,
        jwks_cache: tandem_api::auth::JwksCache {
            min_refetch_interval: Duration::from_secs(jwt.jwt_jwks_min_refetch_secs),
            ..tandem_api::auth::JwksCache::default()
        },
        roles_claim: jwt.jwt_roles_claim.clone(),
        role_map: jwt.jwt_role_map.clone().filter(|map| !map.trim().is_empty()),
        person_claim: jwt.jwt_person_claim.clone().filter(|claim| !claim.trim().is_empty()),
        person_match: jwt.jwt_person_match,
    })
}

fn token(args: &TokenArgs) -> anyhow::Result<()> {
    let ttl = parse_ttl(&args.ttl).map_err(anyhow::Error::msg)?;
    let roles = args
        .roles
        .iter()
        .flat_map(|r| r.split(','))
        .map(|r| r.trim().parse::<Role>().map_err(|_| anyhow::anyhow!("unknown role {r:?}")))
        .collect::<anyhow::Result<Vec<Role>>>()?;
    let data_dir = std::env::var_os("TANDEM_DATA_DIR").map_or_else(|| ".tandem".into(), std::path::PathBuf::from);
    let dev_dir = (std::env::var_os("DATABASE_URL").is_none()).then_some(data_dir.as_path());
    let config = auth_config(&args.jwt, dev_dir)?;
    // A machine client is named after its role unless told otherwise; a
    // participant's subject is their person id and has no default.
    let sub = match (&args.sub, roles.first()) {
        (Some(s), _) => s.clone(),
        (None, Some(r)) if *r != Role::Participant => r.as_str().to_owned(),
        _ => bail!("--sub is required for this role (a participant's person id)"),
    };
    let (token, jti) = mint_with_id(&config, &roles, &sub, ttl).context("minting the token")?;
    println!("{token}");
    // On stderr, so that `$(tandem token …)` captures the token alone.
    eprintln!("token id (jti): {jti} (revoke with `tandem token revoke {jti}`)");
    Ok(())
}

/// `tandem token revoke JTI`: adds the token to the deny list that every
/// server sharing the database reads.
async fn revoke(args: &RevokeArgs) -> anyhow::Result<()> {
    let jti = args.jti.trim().to_owned();
    if jti.is_empty() || jti.len() > 200 {
        bail!("the jti must be 1 to 200 characters");
    }
    let reason = args.reason.clone();
    with_database_vault(&args.db, keys::vault_if_configured(&args.db)?, |pool| async move {
        tandem_store::MIGRATOR.run(&pool).await.context("applying migrations")?;
        let added = Revocations::revoke(&pool, &jti, None, &reason).await.context("recording the revocation")?;
        if added {
            println!("revoked {jti}");
        } else {
            println!("{jti} was already revoked");
        }
        Ok(())
    })
    .await
}

async fn replay(args: ReplayArgs) -> anyhow::Result<()> {
    let _log = telemetry::init_basic();
    let projection = args.projection.clone();
    with_database(&args.db, |pool| async move {
        tandem_store::MIGRATOR.run(&pool).await.context("applying migrations")?;
        let started = Instant::now();
        let mut bar = ReplayBar::new();
        let reports = tandem_projections::rebuild(&pool, projection.as_deref(), |p| bar.update(&p))
            .await
            .context("rebuilding")?;
        bar.finish();
        for r in &reports {
            println!(
                "{}: {} events in {:.1}s ({:.0} events/s), now at {}",
                r.projection,
                r.events,
                r.elapsed.as_secs_f64(),
                r.events_per_second,
                r.position
            );
        }
        println!("replay finished in {:.1}s", started.elapsed().as_secs_f64());
        Ok(())
    })
    .await
}

/// The progress bar of `tandem replay`: events replayed by the slowest
/// projection against the log's length, with the rate and the time left,
/// and the phase in the message. `indicatif` draws it on stderr only when
/// stderr is a terminal, so logs and pipes stay clean.
struct ReplayBar {
    bar: indicatif::ProgressBar,
    /// Per projection: events done and phase.
    state: std::collections::BTreeMap<String, (u64, tandem_projections::Phase)>,
}

impl ReplayBar {
    fn new() -> Self {
        let bar = indicatif::ProgressBar::with_draw_target(Some(0), indicatif::ProgressDrawTarget::stderr());
        let style = indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{wide_bar}] {human_pos}/{human_len} events  {per_sec}  ETA {eta}  {msg}",
        )
        .map_or_else(|_| indicatif::ProgressStyle::default_bar(), |s| s.progress_chars("=> "));
        bar.set_style(style);
        Self { bar, state: std::collections::BTreeMap::new() }
    }

    fn update(&mut self, p: &tandem_projections::Progress) {
        use tandem_projections::Phase;
        self.state.insert(p.projection.clone(), (p.events_done, p.phase));
        self.bar.set_length(p.events_total);
        let slowest = self.state.values().map(|(done, _)| *done).min().unwrap_or_default();
        self.bar.set_position(slowest);
        let phase_of = |phase: Phase| {
            self.state.iter().filter(|(_, (_, ph))| *ph == phase).map(|(n, _)| n.as_str()).collect::<Vec<_>>()
        };
        let swapping = phase_of(Phase::Swapping);
        let msg = if !swapping.is_empty() {
            format!("swapping {}", swapping.join(", "))
        } else if self.state.values().all(|(_, ph)| *ph == Phase::Swapped) {
            "swapped".to_owned()
        } else {
            format!("replaying {} projections", self.state.len())
        };
        self.bar.set_message(msg);
    }

    fn finish(self) {
        self.bar.finish_and_clear();
    }
}

async fn demo(args: DemoArgs) -> anyhow::Result<()> {
    let _log = telemetry::init_basic();
    with_database(&args.db, |pool| async move {
        tandem_store::MIGRATOR.run(&pool).await.context("applying migrations")?;
        let svc = CommandService::from_pool(pool.clone());
        let opts = tandem_demo::DemoOptions {
            seed: args.seed,
            people: args.people,
            months: args.months,
            today: args.today.unwrap_or(tandem_demo::DemoOptions::default().today),
            ..tandem_demo::DemoOptions::default()
        };
        let started = Instant::now();
        let bar = progress::stderr_bar(0, progress::DEMO_TEMPLATE);
        let report = tandem_demo::generate(&svc, &opts, |p| {
            bar.set_message(p.phase);
            bar.set_length(u64::try_from(p.total).unwrap_or(u64::MAX));
            bar.set_position(u64::try_from(p.done).unwrap_or(u64::MAX));
        })
        .await
        .context("generating the demo organisation");
        bar.finish_and_clear();
        let report = report?;
        println!("{report}");
        println!("demo data generated in {:.1}s", started.elapsed().as_secs_f64());
        Ok(())
    })
    .await
}

/// Waits (bounded) until every read model has a position — its tables
/// exist and are caught up to a checkpoint, here or in another process —
/// so the first request does not meet missing tables.
pub(crate) async fn wait_for_read_models(p: &tandem_projections::ProjectionsHandle) {
    let deadline = Instant::now() + Duration::from_secs(120);
    let waiter = p.waiter();
    while Instant::now() < deadline {
        let positions = waiter.positions();
        let roles = p.roles();
        let ready = tandem_projections::read_models().iter().all(|m| {
            positions.contains_key(m.name())
                || roles.get(m.name()).is_some_and(|r| *r == tandem_projections::Role::Standby)
        });
        if ready {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tracing::warn!("projections are still starting; serving anyway (readiness reports the lag)");
}

/// Completes on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

/// Starts the webhook delivery worker (see `tandem_webhooks`), rendering
/// events as the feed does and recording its metrics beside the API's.
fn start_webhooks(
    args: &ServeArgs,
    pool: &sqlx::PgPool,
    commands: &CommandService,
    metrics: &Metrics,
) -> anyhow::Result<tandem_webhooks::WebhooksHandle> {
    let store = commands.store().clone();
    let renderer = Arc::new(tandem_api::schema::events::webhook::FeedRenderer::new(store.clone()));
    let mut options =
        tandem_webhooks::DeliveryOptions { safety: tandem_webhooks::Safety::from_env(), ..Default::default() };
    if let Some(delays) = &args.webhook_retry_delays_ms {
        options.schedule =
            tandem_webhooks::RetrySchedule::new(delays.iter().copied().map(Duration::from_millis).collect());
    }
    let webhook_metrics =
        tandem_webhooks::WebhookMetrics::register(metrics.registry()).context("registering the webhook metrics")?;
    Ok(tandem_webhooks::Webhooks::new(
        pool.clone(),
        store,
        renderer,
        tandem_webhooks::SecretBox::new(commands.secret()),
    )
    .options(options)
    .metrics(webhook_metrics)
    .spawn()?)
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let telemetry = telemetry::init(telemetry::TelemetryOptions {
        log_format: match args.log.log_format {
            config::LogFormat::Text => telemetry::LogFormat::Text,
            config::LogFormat::Json => telemetry::LogFormat::Json,
        },
        filter: args.log.log.clone(),
        otlp_endpoint: args.log.otlp_endpoint.clone(),
        service_name: args.log.service_name.clone(),
    })?;
    let dev_dir = args.db.database_url.is_none().then_some(args.db.data_dir.as_path());
    let metrics = Metrics::new();
    let verifier = Verifier::new(&auth_config(&args.jwt, dev_dir)?)
        .context("JWT configuration")?
        .with_metrics(metrics.registry())
        .context("registering the JWKS metrics")?;
    // The server starts without the identity provider's keys (and answers
    // AUTH_UNAVAILABLE until they arrive) rather than not at all: a
    // provider outage must not turn into an outage of every replica that
    // restarts during it.
    if !verifier.prefetch().await {
        tracing::warn!("starting without the identity provider's keys; tokens are refused until they arrive");
    }
    let (pool, embedded) = connect(&args.db).await?;
    let verifier = Arc::new(verifier.with_people(pool.clone()));
    tandem_store::MIGRATOR.run(&pool).await.context("applying migrations")?;

    let shutdown = CancellationToken::new();
    {
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            shutdown_signal().await;
            tracing::info!("shutdown requested");
            shutdown.cancel();
        });
    }

    let projections = if args.run_projections { Some(Projections::new(pool.clone()).spawn()?) } else { None };
    if let Some(p) = &projections {
        wait_for_read_models(p).await;
    }
    let waiter = projections.as_ref().map_or_else(|| Waiter::for_read_models(pool.clone()), |p| p.waiter());
    let commands = CommandService::from_pool(pool.clone())
        .with_secret(server_secret(&args)?)
        .with_metrics(metrics.registry())
        .context("registering the command metrics")?;
    let store = commands.store().clone();
    let webhooks = if args.run_webhooks { Some(start_webhooks(&args, &pool, &commands, &metrics)?) } else { None };
    let hub = EventHub::start(store.clone(), shutdown.child_token());
    {
        let hub = hub.clone();
        metrics.set_open_subscriptions(move || hub.open_subscriptions());
    }
    let state = ApiState {
        pool: pool.clone(),
        store,
        commands,
        waiter,
        hub,
        limits: Limits {
            max_depth: args.max_depth,
            max_complexity: args.max_complexity,
            max_page_size: args.max_page_size,
            read_your_writes_timeout: Duration::from_millis(args.read_your_writes_timeout_ms),
            introspection: args.introspection,
        },
        metrics: metrics.clone(),
    };
    let sockets = tokio_util::task::TaskTracker::new();
    let transport_config = TransportConfig {
        max_body_bytes: args.max_body_bytes,
        request_timeout: args.request_timeout(),
        shutdown: shutdown.clone(),
        sockets: sockets.clone(),
        graphiql: args.graphiql,
        cors: args.cors_origins.clone().unwrap_or_default(),
        ..TransportConfig::default()
    };
    if transport_config.cors != tandem_api::transport::CorsOrigins::None {
        tracing::info!(origins = %transport_config.cors, "cross-origin requests allowed");
    }
    let salt = args.export_salt.as_ref().map(|s| s.expose_secret().as_bytes().to_vec());
    let context = Arc::new(
        ApiContext::new(verifier, pool.clone())
            .with_rate_limit(args.rate_limit_per_minute)
            .with_revocations(Revocations::new(pool.clone())),
    );
    let exports = tandem_api::export::ExportState::new(state.store.clone(), context.clone(), salt.as_deref())
        .context("TANDEM_EXPORT_SALT")?;
    let scim = tandem_api::scim::router(
        context.clone(),
        tandem_hris::ScimState {
            pool: pool.clone(),
            commands: state.commands.clone(),
            waiter: state.waiter.clone(),
            config: tandem_hris::ScimConfig {
                public_base_url: args.scim.scim_base_url.clone(),
                termination_date_attribute: args.scim.scim_termination_date_attribute.clone(),
                read_your_writes_timeout: Duration::from_millis(args.read_your_writes_timeout_ms),
                max_body_bytes: args.max_body_bytes,
            },
        },
    );
    let app = tandem_api::app::router_with(
        schema::build(state),
        context,
        transport_config,
        tandem_api::ops::OpsState::new(pool.clone(), metrics, args.ready_max_lag),
        axum::Router::new().nest("/scim/v2", scim),
    )
    .merge(tandem_api::export::router(exports));
    let listener =
        tokio::net::TcpListener::bind(args.listen).await.with_context(|| format!("binding {}", args.listen))?;
    tracing::info!(
        address = %args.listen,
        startup_ms = started.elapsed().as_millis() as u64,
        "Tandem is listening: GraphQL at http://{}/graphql, GraphiQL at http://{}/graphiql",
        args.listen,
        args.listen
    );
    let grace = Duration::from_secs(args.shutdown_grace);
    let server = axum::serve(listener, app).with_graceful_shutdown({
        let shutdown = shutdown.clone();
        async move { shutdown.cancelled().await }
    });
    let served = server.await;
    // Sockets were told to close (1001) by the same token; give them the grace period.
    sockets.close();
    if tokio::time::timeout(grace, sockets.wait()).await.is_err() {
        tracing::warn!("websockets still open after the grace period");
    }
    if let Some(w) = webhooks {
        w.shutdown().await;
    }
    if let Some(p) = projections {
        p.shutdown().await;
    }
    pool.close().await;
    if let Some(pg) = embedded {
        pg.stop().await?;
    }
    // Flushing traces blocks (the OTLP client is synchronous).
    let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
    served.context("serving")?;
    if !shutdown.is_cancelled() {
        bail!("the server stopped unexpectedly");
    }
    tracing::info!("stopped");
    Ok(())
}

/// `tandem bench`: the suite of `tandem-bench` on DATABASE_URL's server, or
/// on the embedded cluster.
async fn bench(args: BenchArgs) -> anyhow::Result<()> {
    let _log = telemetry::init_basic();
    // The suite works in a database of its own, created for the run: a
    // master key of its own will do when none is configured.
    let vault = if args.db.keys.master_key.is_some() || args.db.keys.master_key_file.is_some() {
        keys::vault(&args.db)?
    } else {
        tandem_store::Vault::new(tandem_store::MasterKey::generate()?)
    };
    if tandem_store::Vault::install(vault).is_err() {
        tracing::debug!("the vault was already installed");
    }
    let (url, embedded) = match &args.db.database_url {
        Some(url) => (url.expose_secret().to_owned(), None),
        None => {
            let pg = EmbeddedPostgres::start(&args.db.data_dir).await?;
            (pg.url(), Some(pg))
        }
    };
    let size = match args.size {
        BenchSize::Smoke => tandem_bench::Size::Smoke,
        BenchSize::Full => tandem_bench::Size::Full,
    };
    let exe = std::env::current_exe().context("locating the tandem binary")?;
    let mut opts = tandem_bench::BenchOptions::sized(url, exe, size);
    if !args.only.is_empty() {
        opts.parts = args
            .only
            .iter()
            .map(|p| tandem_bench::Part::parse(p.trim()).with_context(|| format!("unknown part {p:?}")))
            .collect::<anyhow::Result<_>>()?;
    }
    if let Some(n) = args.events {
        opts.events = n;
    }
    if let Some(s) = args.seconds {
        opts.duration = Duration::try_from_secs_f64(s).context("--seconds")?;
    }
    if let Some(n) = args.subscribers {
        opts.subscribers = n;
    }
    opts.keep_database = args.keep_database;
    let result = tandem_bench::run(&opts).await;
    if let Some(pg) = embedded {
        pg.stop().await?;
    }
    let report = result?;
    if let Some(path) = &args.markdown {
        std::fs::write(path, report.markdown()).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
