//! The operator's endpoints: liveness, readiness and metrics, and the HTTP
//! metrics layer for the whole app.
//!
//! * `GET /healthz` — the process is alive: always `200 {"status":"ok"}`,
//!   without touching the database (a liveness probe that failed with the
//!   database would restart every replica during a database outage);
//! * `GET /readyz` — the replica can serve: `200` when the database answers
//!   within [`OpsState::check_timeout`], every migration embedded in
//!   [`tandem_store::MIGRATOR`] is applied (successfully, with the same
//!   checksum), and every read-model projection has started and trails the
//!   log by at most [`OpsState::max_lag_events`]; otherwise `503`. Both
//!   carry a [`Readiness`] report naming what failed, in fixed words: error
//!   texts (which may name hosts or users) are logged, not sent. Not
//!   ready is a normal state (at start, during a database outage), so a
//!   probe logs only a change: ready → not ready at WARN with what failed,
//!   not ready → ready (and the first answer) at INFO; each probe's
//!   failures are DEBUG;
//! * `GET /metrics` — [`Metrics`] in Prometheus' text format, projection
//!   lag read from the database at scrape time;
//! * [`http_metrics_layer`] — counts and times every request by method,
//!   route template and status (axum's `from_fn` middleware); add it with `Router::route_layer` (matched routes
//!   only) or `Router::layer` (also 404s, as `unmatched`) so that it sees
//!   the matched route.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{FromFnLayer, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures::future::BoxFuture;
use serde::Serialize;
use sqlx::PgPool;
use tandem_projections::ProjectionLag;

use crate::metrics::{self, Metrics};

/// The `path` label of requests that matched no route.
pub const UNMATCHED_PATH: &str = "unmatched";

/// The `method` label of a request with a non-standard method.
pub const OTHER_METHOD: &str = "other";

/// What the operator endpoints need.
#[derive(Clone, Debug)]
pub struct OpsState {
    /// The API's pool: readiness checks what the API itself would use.
    pub pool: PgPool,
    pub metrics: Metrics,
    /// The most events a read model may trail the log by while the replica
    /// counts as ready. Mutations wait for the read models (read-your-
    /// writes), so far behind means they would time out.
    pub max_lag_events: i64,
    /// How long each readiness query (and the lag query of `/metrics`) may
    /// take; a probe must answer before the orchestrator's own timeout.
    pub check_timeout: Duration,
    /// The last readiness answered, so that only changes are logged.
    /// Clones share it: every clone serves the same replica.
    last_readiness: Arc<AtomicU8>,
}

/// [`OpsState::last_readiness`] before the first probe.
const UNKNOWN: u8 = 0;
const READY: u8 = 1;
const NOT_READY: u8 = 2;

impl OpsState {
    /// The default lag threshold of readiness, in events.
    pub const DEFAULT_MAX_LAG_EVENTS: i64 = 1_000;
    /// The default time each readiness query may take.
    pub const DEFAULT_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

    /// The state with the lag threshold of readiness and the default check
    /// timeout.
    #[must_use]
    pub fn new(pool: PgPool, metrics: Metrics, max_lag_events: i64) -> Self {
        Self {
            pool,
            metrics,
            max_lag_events,
            check_timeout: Self::DEFAULT_CHECK_TIMEOUT,
            last_readiness: Arc::new(AtomicU8::new(UNKNOWN)),
        }
    }

    /// Sets how long each readiness query may take.
    #[must_use]
    pub fn check_timeout(mut self, timeout: Duration) -> Self {
        self.check_timeout = timeout;
        self
    }
}

/// The router of `/healthz`, `/readyz` and `/metrics`, to merge into the
/// app's router.
pub fn router(state: OpsState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_handler))
        .with_state(Arc::new(state))
}

async fn healthz() -> impl IntoResponse {
    no_store(Json(serde_json::json!({ "status": "ok" })))
}

async fn readyz(State(state): State<Arc<OpsState>>) -> impl IntoResponse {
    let report = readiness(&state).await;
    log_change(&state, &report);
    let status = if report.is_ready() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, no_store(Json(report)))
}

async fn metrics_handler(State(state): State<Arc<OpsState>>) -> impl IntoResponse {
    match tokio::time::timeout(state.check_timeout, state.metrics.refresh_projection_lag(&state.pool)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "reading projection lag for /metrics failed"),
        Err(_) => tracing::warn!(timeout = ?state.check_timeout, "reading projection lag for /metrics timed out"),
    }
    let body = state.metrics.render();
    no_store(([(header::CONTENT_TYPE, HeaderValue::from_static(metrics::CONTENT_TYPE))], body))
}

/// Probes and scrapes must see the state of now, not a cache's.
fn no_store(response: impl IntoResponse) -> impl IntoResponse {
    ([(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))], response)
}

/// Logs the probe's answer when it differs from the last one: probes run
/// every few seconds, and a replica that is not ready (starting, or during
/// a database outage) must not fill the log.
fn log_change(state: &OpsState, report: &Readiness) {
    let now = if report.is_ready() { READY } else { NOT_READY };
    let before = state.last_readiness.swap(now, Ordering::Relaxed);
    match (before, now) {
        (same, now) if same == now => {}
        (_, READY) => tracing::info!("readiness: ready"),
        (UNKNOWN, _) => tracing::info!(failed = %report.failed_checks(), "readiness: not ready yet"),
        _ => tracing::warn!(
            failed = %report.failed_checks(),
            errors = ?report.errors,
            "readiness: not ready"
        ),
    }
}

/// The outcome of one readiness check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    Ok,
    Failed,
    /// Not run because the database did not answer.
    Skipped,
}

/// Why a check failed, in fixed words (never an error's text).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureReason {
    /// The query did not finish within the check timeout.
    Timeout,
    /// The database refused or failed the query (the error is logged).
    DatabaseError,
    /// Some migrations are missing, failed or differ from the embedded ones.
    MigrationsNotApplied,
    /// Some projections have not started or trail the log too far.
    ProjectionsBehind,
}

/// The database check.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DatabaseCheck {
    pub status: CheckStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<FailureReason>,
}

impl fmt::Display for FailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Timeout => "timeout",
            Self::DatabaseError => "database_error",
            Self::MigrationsNotApplied => "migrations_not_applied",
            Self::ProjectionsBehind => "projections_behind",
        })
    }
}

/// The migrations check: versions by what is wrong with them.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MigrationsCheck {
    pub status: CheckStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<FailureReason>,
    /// Embedded migrations with no row in the migrations table.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<i64>,
    /// Migrations recorded as failed (`success = false`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<i64>,
    /// Migrations applied with another checksum than the embedded one.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub checksum_mismatch: Vec<i64>,
}

impl MigrationsCheck {
    fn new(status: CheckStatus, reason: Option<FailureReason>) -> Self {
        Self { status, reason, missing: Vec::new(), failed: Vec::new(), checksum_mismatch: Vec::new() }
    }
}

/// One projection that keeps the replica from being ready.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LaggingProjection {
    pub name: String,
    /// False when the projection has no checkpoint yet (never ran here).
    pub started: bool,
    pub events_behind: i64,
    pub seconds_behind: f64,
}

/// The projections check.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProjectionsCheck {
    pub status: CheckStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<FailureReason>,
    pub max_lag_events: i64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub lagging: Vec<LaggingProjection>,
}

/// Every readiness check.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Checks {
    pub database: DatabaseCheck,
    pub migrations: MigrationsCheck,
    pub projections: ProjectionsCheck,
}

/// The body of `/readyz`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Readiness {
    /// `ready` or `not_ready`.
    pub status: &'static str,
    pub checks: Checks,
    /// The error texts behind failed checks, for the log only.
    #[serde(skip)]
    pub errors: Vec<String>,
}

impl Readiness {
    /// Whether every check passed.
    #[must_use]
    pub fn is_ready(&self) -> bool {
        self.status == "ready"
    }

    /// The failed checks and why, e.g. `database: timeout`.
    #[must_use]
    pub fn failed_checks(&self) -> String {
        let c = &self.checks;
        [
            ("database", c.database.status, c.database.reason),
            ("migrations", c.migrations.status, c.migrations.reason),
            ("projections", c.projections.status, c.projections.reason),
        ]
        .into_iter()
        .filter(|(_, status, _)| *status == CheckStatus::Failed)
        .map(|(name, _, reason)| reason.map_or_else(|| name.to_owned(), |r| format!("{name}: {r}")))
        .collect::<Vec<_>>()
        .join(", ")
    }
}

/// Runs every readiness check: the database first, then migrations and
/// projection lag together. Updates the lag gauges on the way.
pub async fn readiness(state: &OpsState) -> Readiness {
    let (database, database_error) = check_database(state).await;
    let mut errors: Vec<String> = database_error.into_iter().collect();
    let (migrations, projections) = if database.status == CheckStatus::Ok {
        let ((migrations, e1), (projections, e2)) = tokio::join!(check_migrations(state), check_projections(state));
        errors.extend(e1.into_iter().chain(e2));
        (migrations, projections)
    } else {
        (
            MigrationsCheck::new(CheckStatus::Skipped, None),
            ProjectionsCheck {
                status: CheckStatus::Skipped,
                reason: None,
                max_lag_events: state.max_lag_events,
                lagging: Vec::new(),
            },
        )
    };
    let ready = database.status == CheckStatus::Ok
        && migrations.status == CheckStatus::Ok
        && projections.status == CheckStatus::Ok;
    Readiness {
        status: if ready { "ready" } else { "not_ready" },
        checks: Checks { database, migrations, projections },
        errors,
    }
}

/// Runs `query` within the check timeout. A failure gives its reason and
/// the text for the log (at DEBUG here: [`log_change`] logs the change).
async fn bounded<T>(
    state: &OpsState,
    what: &'static str,
    query: impl Future<Output = Result<T, impl fmt::Display>>,
) -> Result<T, (FailureReason, String)> {
    let failure = match tokio::time::timeout(state.check_timeout, query).await {
        Ok(Ok(v)) => return Ok(v),
        Ok(Err(e)) => (FailureReason::DatabaseError, format!("{what}: {e}")),
        Err(_) => (FailureReason::Timeout, format!("{what}: no answer within {:?}", state.check_timeout)),
    };
    tracing::debug!(check = what, error = %failure.1, "readiness check failed");
    Err(failure)
}

async fn check_database(state: &OpsState) -> (DatabaseCheck, Option<String>) {
    let ping = sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(&state.pool);
    match bounded(state, "database", ping).await {
        Ok(_) => (DatabaseCheck { status: CheckStatus::Ok, reason: None }, None),
        Err((reason, error)) => (DatabaseCheck { status: CheckStatus::Failed, reason: Some(reason) }, Some(error)),
    }
}

/// A row of sqlx's migrations table.
type AppliedRow = (i64, bool, Vec<u8>);

async fn applied_migrations(pool: &PgPool) -> Result<Vec<AppliedRow>, sqlx::Error> {
    let table = &tandem_store::MIGRATOR.table_name;
    // Whether the table exists first, so that a database never migrated is
    // "missing everything", not a query error. `to_regclass` takes the name
    // as sqlx writes it (possibly schema-qualified and quoted).
    let exists: bool =
        sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL").bind(table.as_ref()).fetch_one(pool).await?;
    if !exists {
        return Ok(Vec::new());
    }
    // The table name is the migrator's compile-time constant, not input.
    let sql = format!("SELECT version, success, checksum FROM {table}");
    sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(pool).await
}

async fn check_migrations(state: &OpsState) -> (MigrationsCheck, Option<String>) {
    let applied = match bounded(state, "migrations", applied_migrations(&state.pool)).await {
        Ok(rows) => rows,
        Err((reason, error)) => {
            return (MigrationsCheck::new(CheckStatus::Failed, Some(reason)), Some(error));
        }
    };
    let mut check = MigrationsCheck::new(CheckStatus::Ok, None);
    for m in tandem_store::MIGRATOR.iter().filter(|m| !m.migration_type.is_down_migration()) {
        match applied.iter().find(|(version, _, _)| *version == m.version) {
            None => check.missing.push(m.version),
            Some((_, false, _)) => check.failed.push(m.version),
            Some((_, true, checksum)) if checksum.as_slice() != m.checksum.as_ref() => {
                check.checksum_mismatch.push(m.version);
            }
            Some(_) => {}
        }
    }
    if check.missing.is_empty() && check.failed.is_empty() && check.checksum_mismatch.is_empty() {
        return (check, None);
    }
    let error = format!(
        "migrations: missing {:?}, failed {:?}, checksum mismatch {:?}",
        check.missing, check.failed, check.checksum_mismatch
    );
    tracing::debug!(%error, "readiness: migrations not applied");
    check.status = CheckStatus::Failed;
    check.reason = Some(FailureReason::MigrationsNotApplied);
    (check, Some(error))
}

/// The projections of `lags` that keep the replica from being ready.
#[must_use]
pub fn lagging(lags: &[ProjectionLag], max_lag_events: i64) -> Vec<LaggingProjection> {
    lags.iter()
        .filter(|l| l.checkpoint.is_none() || l.events_behind > max_lag_events)
        .map(|l| LaggingProjection {
            name: l.name.clone(),
            started: l.checkpoint.is_some(),
            events_behind: l.events_behind,
            seconds_behind: l.seconds_behind,
        })
        .collect()
}

async fn check_projections(state: &OpsState) -> (ProjectionsCheck, Option<String>) {
    let max_lag_events = state.max_lag_events;
    let lags = bounded(state, "projections", tandem_projections::lag::lag_of_read_models(&state.pool)).await;
    match lags {
        Err((reason, error)) => (
            ProjectionsCheck { status: CheckStatus::Failed, reason: Some(reason), max_lag_events, lagging: Vec::new() },
            Some(error),
        ),
        Ok(lags) => {
            state.metrics.observe_projection_lag(&lags);
            let lagging = lagging(&lags, max_lag_events);
            if lagging.is_empty() {
                return (ProjectionsCheck { status: CheckStatus::Ok, reason: None, max_lag_events, lagging }, None);
            }
            let behind: Vec<String> = lagging
                .iter()
                .map(|l| {
                    if l.started {
                        format!("{} ({} events)", l.name, l.events_behind)
                    } else {
                        format!("{} (not started)", l.name)
                    }
                })
                .collect();
            let error = format!("projections behind (more than {max_lag_events} events): {}", behind.join(", "));
            tracing::debug!(%error, "readiness: projections behind");
            let check = ProjectionsCheck {
                status: CheckStatus::Failed,
                reason: Some(FailureReason::ProjectionsBehind),
                max_lag_events,
                lagging,
            };
            (check, Some(error))
        }
    }
}

/// The function [`http_metrics_layer`] runs around each request.
type RecordFn = fn(State<Metrics>, Request, Next) -> BoxFuture<'static, Response>;

/// The layer of [`http_metrics_layer`]: axum's `from_fn` middleware.
pub type HttpMetricsLayer = FromFnLayer<RecordFn, Metrics, (State<Metrics>, Request)>;

/// A layer recording `tandem_http_requests_total` and
/// `tandem_http_request_duration_seconds` for every request, by method,
/// route template and status.
///
/// Add it with `Router::route_layer` or `Router::layer` (after the routes,
/// so that it wraps them): the `path` label is the route template from
/// [`MatchedPath`], which the router sets before calling a route; requests
/// that match none (404s under `layer`, and any request when the layer
/// wraps the router from outside) are labelled [`UNMATCHED_PATH`], so raw
/// paths never become labels. The duration is the time to the response
/// head (a websocket counts until its `101`).
pub fn http_metrics_layer(metrics: Metrics) -> HttpMetricsLayer {
    axum::middleware::from_fn_with_state(metrics, record_http_request as RecordFn)
}

fn record_http_request(State(metrics): State<Metrics>, request: Request, next: Next) -> BoxFuture<'static, Response> {
    let path = request.extensions().get::<MatchedPath>().map_or(UNMATCHED_PATH, MatchedPath::as_str).to_owned();
    let method = method_label(request.method());
    Box::pin(async move {
        let started = Instant::now();
        let response = next.run(request).await;
        metrics.record_http(method, &path, response.status().as_u16(), started.elapsed());
        response
    })
}

/// The `method` label: the standard methods by name, any other (a client
/// may send any token) as [`OTHER_METHOD`], so the label stays bounded.
fn method_label(method: &Method) -> &'static str {
    const STANDARD: [(Method, &str); 9] = [
        (Method::GET, "GET"),
        (Method::POST, "POST"),
        (Method::PUT, "PUT"),
        (Method::DELETE, "DELETE"),
        (Method::HEAD, "HEAD"),
        (Method::OPTIONS, "OPTIONS"),
        (Method::PATCH, "PATCH"),
        (Method::CONNECT, "CONNECT"),
        (Method::TRACE, "TRACE"),
    ];
    STANDARD.iter().find(|(m, _)| m == method).map_or(OTHER_METHOD, |(_, name)| name)
}
