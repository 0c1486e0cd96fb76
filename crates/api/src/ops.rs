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
//!   texts (which may name hosts or users) are logged, not sent;
//! * `GET /metrics` — [`Metrics`] in Prometheus' text format, projection
//!   lag read from the database at scrape time;
//! * [`HttpMetricsLayer`] — counts and times every request by route
//!   template and status; add it with `Router::route_layer` (matched routes
//!   only) or `Router::layer` (also 404s, as `unmatched`) so that it sees
//!   the matched route.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, State};
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use sqlx::PgPool;
use tandem_projections::ProjectionLag;
use tower::{Layer, Service};

use crate::metrics::{self, Metrics};

/// The `path` label of requests that matched no route.
pub const UNMATCHED_PATH: &str = "unmatched";

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
}

impl OpsState {
    /// The default lag threshold of readiness, in events.
    pub const DEFAULT_MAX_LAG_EVENTS: i64 = 1_000;
    /// The default time each readiness query may take.
    pub const DEFAULT_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

    /// The state with the lag threshold of readiness and the default check
    /// timeout.
    #[must_use]
    pub fn new(pool: PgPool, metrics: Metrics, max_lag_events: i64) -> Self {
        Self { pool, metrics, max_lag_events, check_timeout: Self::DEFAULT_CHECK_TIMEOUT }
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
}

impl Readiness {
    /// Whether every check passed.
    #[must_use]
    pub fn is_ready(&self) -> bool {
        self.status == "ready"
    }
}

/// Runs every readiness check: the database first, then migrations and
/// projection lag together. Updates the lag gauges on the way.
pub async fn readiness(state: &OpsState) -> Readiness {
    let database = check_database(state).await;
    let (migrations, projections) = if database.status == CheckStatus::Ok {
        tokio::join!(check_migrations(state), check_projections(state))
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
    }
}

/// Runs `query` within the check timeout; logs a failure once, here.
async fn bounded<T>(
    state: &OpsState,
    what: &'static str,
    query: impl Future<Output = Result<T, impl std::fmt::Display>>,
) -> Result<T, FailureReason> {
    match tokio::time::timeout(state.check_timeout, query).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => {
            tracing::warn!(check = what, error = %e, "readiness check failed");
            Err(FailureReason::DatabaseError)
        }
        Err(_) => {
            tracing::warn!(check = what, timeout = ?state.check_timeout, "readiness check timed out");
            Err(FailureReason::Timeout)
        }
    }
}

async fn check_database(state: &OpsState) -> DatabaseCheck {
    let ping = sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(&state.pool);
    match bounded(state, "database", ping).await {
        Ok(_) => DatabaseCheck { status: CheckStatus::Ok, reason: None },
        Err(reason) => DatabaseCheck { status: CheckStatus::Failed, reason: Some(reason) },
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

async fn check_migrations(state: &OpsState) -> MigrationsCheck {
    let applied = match bounded(state, "migrations", applied_migrations(&state.pool)).await {
        Ok(rows) => rows,
        Err(reason) => {
            return MigrationsCheck::new(CheckStatus::Failed, Some(reason));
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
    if !(check.missing.is_empty() && check.failed.is_empty() && check.checksum_mismatch.is_empty()) {
        tracing::warn!(
            missing = ?check.missing,
            failed = ?check.failed,
            checksum_mismatch = ?check.checksum_mismatch,
            "readiness: migrations not applied"
        );
        check.status = CheckStatus::Failed;
        check.reason = Some(FailureReason::MigrationsNotApplied);
    }
    check
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

async fn check_projections(state: &OpsState) -> ProjectionsCheck {
    let max_lag_events = state.max_lag_events;
    let lags = bounded(state, "projections", tandem_projections::lag::lag_of_read_models(&state.pool)).await;
    match lags {
        Err(reason) => {
            ProjectionsCheck { status: CheckStatus::Failed, reason: Some(reason), max_lag_events, lagging: Vec::new() }
        }
        Ok(lags) => {
            state.metrics.observe_projection_lag(&lags);
            let lagging = lagging(&lags, max_lag_events);
            if lagging.is_empty() {
                ProjectionsCheck { status: CheckStatus::Ok, reason: None, max_lag_events, lagging }
            } else {
                tracing::warn!(?lagging, max_lag_events, "readiness: projections behind");
                ProjectionsCheck {
                    status: CheckStatus::Failed,
                    reason: Some(FailureReason::ProjectionsBehind),
                    max_lag_events,
                    lagging,
                }
            }
        }
    }
}

/// A tower layer recording `tandem_http_requests_total` and
/// `tandem_http_request_duration_seconds` for every request.
///
/// Add it with `Router::route_layer` or `Router::layer` (after the routes,
/// so that it wraps them): the `path` label is the route template from
/// [`MatchedPath`], which the router sets before calling a route; requests
/// that match none (404s under `layer`, and any request when the layer
/// wraps the router from outside) are labelled [`UNMATCHED_PATH`], so raw
/// paths never become labels. The
/// duration is the time to the response head (a websocket counts until
/// its `101`).
#[derive(Clone, Debug)]
pub struct HttpMetricsLayer {
    metrics: Metrics,
}

impl HttpMetricsLayer {
    /// The layer recording into `metrics`.
    #[must_use]
    pub fn new(metrics: Metrics) -> Self {
        Self { metrics }
    }
}

impl<S> Layer<S> for HttpMetricsLayer {
    type Service = HttpMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HttpMetrics { inner, metrics: self.metrics.clone() }
    }
}

/// The service of [`HttpMetricsLayer`].
#[derive(Clone, Debug)]
pub struct HttpMetrics<S> {
    inner: S,
    metrics: Metrics,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for HttpMetrics<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let path = request.extensions().get::<MatchedPath>().map_or(UNMATCHED_PATH, MatchedPath::as_str).to_owned();
        let started = Instant::now();
        let metrics = self.metrics.clone();
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await;
            // An error here is a failure of the service itself (axum's
            // routes are infallible); count it as the 500 it becomes.
            let status = response.as_ref().map_or(500, |r| r.status().as_u16());
            metrics.record_http(&path, status, started.elapsed());
            response
        })
    }
}
