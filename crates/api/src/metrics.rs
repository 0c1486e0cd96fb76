//! Prometheus metrics of the service, and what records them.
//!
//! Layout:
//! * [`Metrics`] — the registry and every metric, cheap to clone (one
//!   `Arc`); [`Metrics::render`] writes the text exposition format
//!   ([`CONTENT_TYPE`]) a Prometheus server scrapes, refreshing the gauges
//!   that are read at scrape time (open subscriptions through a callback,
//!   projection lag through [`Metrics::refresh_projection_lag`], which the
//!   `/metrics` handler of [`crate::ops`] calls first);
//! * [`GraphqlMetrics`] — an async-graphql extension counting operations by
//!   name, kind and outcome and timing queries and mutations; it also opens
//!   the `graphql` span of each query and mutation over HTTP, the parent of
//!   its resolvers' spans and SQL events in a trace;
//! * [`Metrics::record_http`] for the HTTP layer ([`crate::ops::http_metrics_layer`]);
//! * `tandem_events_appended_total` is counted by the command service where
//!   it commits, registered into [`Metrics::registry`] by whoever builds the
//!   service (`CommandService::with_metrics`).
//!
//! Label values are bounded so that a client cannot blow up the number of
//! series: operation names beyond [`MAX_OPERATION_NAMES`] distinct ones are
//! counted as `other`, HTTP paths are the router's route templates (never
//! the raw path), and outcomes are error codes.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `tandem_graphql_requests_total` | counter | `operation`, `kind`, `outcome` |
//! | `tandem_graphql_request_duration_seconds` | histogram | `operation`, `kind` |
//! | `tandem_events_appended_total` | counter | `event_type` |
//! | `tandem_projection_lag_events` | gauge | `projection` |
//! | `tandem_projection_lag_seconds` | gauge | `projection` |
//! | `tandem_subscriptions_open` | gauge | |
//! | `tandem_http_requests_total` | counter | `method`, `path`, `status` |
//! | `tandem_http_request_duration_seconds` | histogram | `method`, `path` |

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextPrepareRequest, NextRequest, NextSubscribe,
    NextValidation,
};
use async_graphql::parser::types::{ExecutableDocument, OperationType};
use async_graphql::{Request, Response, ServerError, ServerResult, ValidationResult, Variables};
use futures::StreamExt as _;
use futures::stream::BoxStream;
use prometheus::{
    Encoder as _, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};
use sqlx::PgPool;
use tandem_projections::ProjectionLag;
use tracing::Instrument as _;

/// The media type of [`Metrics::render`]: Prometheus' text format 0.0.4.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The most distinct operation names labelled; later ones count as `other`.
pub const MAX_OPERATION_NAMES: usize = 256;

/// The longest operation name used as a label; longer ones count as `other`.
const MAX_OPERATION_NAME_LEN: usize = 100;

/// The operation label of an operation without a name.
pub const ANONYMOUS: &str = "anonymous";

/// The operation label once [`MAX_OPERATION_NAMES`] is reached.
pub const OTHER: &str = "other";

/// The outcome label of an operation without errors.
pub const OK: &str = "ok";

/// Outcome of a document that does not parse (as the transport codes it).
const GRAPHQL_PARSE_FAILED: &str = "GRAPHQL_PARSE_FAILED";
/// Outcome of a document refused before execution (validation, limits).
const GRAPHQL_VALIDATION_FAILED: &str = "GRAPHQL_VALIDATION_FAILED";
/// Outcome of an execution error that carries no code (should not happen:
/// `ErrorCodes` codes them all).
const INTERNAL_SERVER_ERROR: &str = "INTERNAL_SERVER_ERROR";

/// The kind of a GraphQL operation, the `kind` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OperationKind {
    Query,
    Mutation,
    Subscription,
    /// The document did not parse, so its kind is not known.
    Unknown,
}

impl OperationKind {
    /// The label value.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Query => "query",
            Self::Mutation => "mutation",
            Self::Subscription => "subscription",
            Self::Unknown => "unknown",
        }
    }
}

impl From<OperationType> for OperationKind {
    fn from(t: OperationType) -> Self {
        match t {
            OperationType::Query => Self::Query,
            OperationType::Mutation => Self::Mutation,
            OperationType::Subscription => Self::Subscription,
        }
    }
}

/// Reads a value at scrape time (e.g. the event hub's open subscriptions).
type Source = Arc<dyn Fn() -> usize + Send + Sync>;

/// Every metric of the service and the registry they are exposed from.
/// Clones share them.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    graphql_requests: IntCounterVec,
    graphql_duration: HistogramVec,
    projection_lag_events: IntGaugeVec,
    projection_lag_seconds: GaugeVec,
    subscriptions_open: IntGauge,
    /// Where `subscriptions_open` is read from; the service registers the
    /// event hub, which is what counts them.
    subscriptions_source: RwLock<Option<Source>>,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    /// The operation names already used as labels, to bound their number.
    operation_names: Mutex<HashSet<String>>,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect(INVARIANT);
    registry.register(Box::new(c.clone())).expect(INVARIANT);
    c
}

fn histogram(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> HistogramVec {
    let h = HistogramVec::new(HistogramOpts::new(name, help), labels).expect(INVARIANT);
    registry.register(Box::new(h.clone())).expect(INVARIANT);
    h
}

/// Why the `expect`s of [`Metrics::new`] cannot fail: every name, help and
/// label below is a valid constant, each name is registered once, into a
/// registry of our own (a unit test builds it).
const INVARIANT: &str = "constant metric definitions are valid and registered once";

impl Metrics {
    /// Creates the metrics in a registry of their own.
    #[must_use]
    pub fn new() -> Self {
        let registry = Registry::new();
        let graphql_requests = counter(
            &registry,
            "tandem_graphql_requests_total",
            "GraphQL operations by name, kind (query, mutation, subscription) and outcome (ok or the first error's code).",
            &["operation", "kind", "outcome"],
        );
        let graphql_duration = histogram(
            &registry,
            "tandem_graphql_request_duration_seconds",
            "Time to execute a GraphQL query or mutation, from parsing to response.",
            &["operation", "kind"],
        );
        let projection_lag_events = IntGaugeVec::new(
            Opts::new("tandem_projection_lag_events", "Readable events a read-model projection has not applied yet."),
            &["projection"],
        )
        .expect(INVARIANT);
        registry.register(Box::new(projection_lag_events.clone())).expect(INVARIANT);
        let projection_lag_seconds = GaugeVec::new(
            Opts::new(
                "tandem_projection_lag_seconds",
                "How long the oldest event a projection has not applied has been waiting (0 when caught up).",
            ),
            &["projection"],
        )
        .expect(INVARIANT);
        registry.register(Box::new(projection_lag_seconds.clone())).expect(INVARIANT);
        let subscriptions_open =
            IntGauge::new("tandem_subscriptions_open", "GraphQL subscriptions open in this process.").expect(INVARIANT);
        registry.register(Box::new(subscriptions_open.clone())).expect(INVARIANT);
        let http_requests = counter(
            &registry,
            "tandem_http_requests_total",
            "HTTP requests by method, route template and status.",
            &["method", "path", "status"],
        );
        let http_duration = histogram(
            &registry,
            "tandem_http_request_duration_seconds",
            "Time to the response head of an HTTP request, by method and route template.",
            &["method", "path"],
        );
        // The standard `process_*` metrics (CPU seconds, resident and
        // virtual memory, open and maximum file descriptors, threads, start
        // time), read from /proc at each scrape.
        #[cfg(target_os = "linux")]
        registry.register(Box::new(prometheus::process_collector::ProcessCollector::for_self())).expect(INVARIANT);
        Self {
            inner: Arc::new(Inner {
                registry,
                graphql_requests,
                graphql_duration,
                projection_lag_events,
                projection_lag_seconds,
                subscriptions_open,
                subscriptions_source: RwLock::new(None),
                http_requests,
                http_duration,
                operation_names: Mutex::new(HashSet::new()),
            }),
        }
    }

    /// The registry, to register more collectors.
    #[must_use]
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// Records one GraphQL operation. `elapsed` is `None` for
    /// subscriptions, whose duration is their lifetime.
    pub fn record_graphql(
        &self,
        operation: Option<&str>,
        kind: OperationKind,
        outcome: &str,
        elapsed: Option<Duration>,
    ) {
        let operation = self.operation_label(operation);
        let kind = kind.as_str();
        self.inner.graphql_requests.with_label_values(&[operation.as_str(), kind, outcome]).inc();
        if let Some(elapsed) = elapsed {
            self.inner.graphql_duration.with_label_values(&[operation.as_str(), kind]).observe(elapsed.as_secs_f64());
        }
    }

    /// The `operation` label of a name: the name itself while fewer than
    /// [`MAX_OPERATION_NAMES`] have been seen, else [`OTHER`].
    fn operation_label(&self, name: Option<&str>) -> String {
        let Some(name) = name else { return ANONYMOUS.to_owned() };
        if name.len() > MAX_OPERATION_NAME_LEN {
            return OTHER.to_owned();
        }
        let mut seen = self.inner.operation_names.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.contains(name) {
            name.to_owned()
        } else if seen.len() < MAX_OPERATION_NAMES {
            seen.insert(name.to_owned());
            name.to_owned()
        } else {
            OTHER.to_owned()
        }
    }

    /// Records one HTTP request: `method` is a bounded label (see
    /// [`crate::ops::http_metrics_layer`]), `path` the route template (or a
    /// fixed placeholder when none matched), never the raw path.
    pub fn record_http(&self, method: &str, path: &str, status: u16, elapsed: Duration) {
        let status = status.to_string();
        self.inner.http_requests.with_label_values(&[method, path, status.as_str()]).inc();
        self.inner.http_duration.with_label_values(&[method, path]).observe(elapsed.as_secs_f64());
    }

    /// Sets the projection lag gauges.
    pub fn observe_projection_lag(&self, lags: &[ProjectionLag]) {
        for l in lags {
            self.inner.projection_lag_events.with_label_values(&[l.name.as_str()]).set(l.events_behind);
            self.inner.projection_lag_seconds.with_label_values(&[l.name.as_str()]).set(l.seconds_behind);
        }
    }

    /// Reads every read model's lag from the database and sets the lag
    /// gauges; on failure the gauges keep their last values.
    pub async fn refresh_projection_lag(&self, pool: &PgPool) -> Result<(), tandem_projections::ProjectionError> {
        let lags = tandem_projections::lag::lag_of_read_models(pool).await?;
        self.observe_projection_lag(&lags);
        Ok(())
    }

    /// Registers where `tandem_subscriptions_open` is read from at scrape
    /// time, e.g. `move || hub.open_subscriptions()`. A later call replaces
    /// the earlier source.
    pub fn set_open_subscriptions(&self, source: impl Fn() -> usize + Send + Sync + 'static) {
        *self.inner.subscriptions_source.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(source));
    }

    /// Reads the scrape-time sources into their gauges and writes every
    /// metric in the text format ([`CONTENT_TYPE`]).
    #[must_use]
    pub fn render(&self) -> String {
        let source = self.inner.subscriptions_source.read().unwrap_or_else(PoisonError::into_inner).clone();
        if let Some(source) = source {
            self.inner.subscriptions_open.set(i64::try_from(source()).unwrap_or(i64::MAX));
        }
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.inner.registry.gather(), &mut out) {
            // Only a collector registered by someone else can make the
            // encoder fail (an inconsistent family); ours are consistent.
            tracing::error!(error = %e, "encoding metrics failed");
        }
        String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }

    /// A schema extension recording these metrics for every operation.
    #[must_use]
    pub fn graphql_extension(&self) -> GraphqlMetrics {
        GraphqlMetrics { metrics: self.clone() }
    }
}

/// The async-graphql extension that records `tandem_graphql_requests_total`
/// and `tandem_graphql_request_duration_seconds`: add it to the schema with
/// `.extension(metrics.graphql_extension())`.
///
/// The operation is the one the request selects (by `operationName`, or
/// the document's only one), labelled with its name or `anonymous`; the
/// outcome is the first error's `extensions.code`, else `ok`. Errors that
/// carry no code are labelled as the transport codes them
/// (`GRAPHQL_PARSE_FAILED`, `GRAPHQL_VALIDATION_FAILED`), and a document
/// that does not parse has kind `unknown`.
///
/// Queries and mutations are recorded when their response is ready, over
/// HTTP ([`Extension::request`]) or a websocket (the stream's one response).
/// A subscription is counted once, at its first response (`ok`, or the code
/// of the error that ended it) or, when it ends before sending any, then.
///
/// Each query and mutation over HTTP runs in an info span `graphql` (exported
/// as `query Name`, with `graphql.operation.name`, `graphql.operation.type`
/// and `graphql.outcome`), so that a trace groups its resolvers and SQL.
#[derive(Clone, Debug)]
pub struct GraphqlMetrics {
    metrics: Metrics,
}

impl GraphqlMetrics {
    /// The extension over `metrics`.
    #[must_use]
    pub fn new(metrics: Metrics) -> Self {
        Self { metrics }
    }
}

impl ExtensionFactory for GraphqlMetrics {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(GraphqlMetricsExtension {
            metrics: self.metrics.clone(),
            state: Arc::new(Mutex::new(OperationState::new())),
        })
    }
}

/// What one request has learned so far; shared with the wrapped stream of
/// a subscription, which outlives the extension's hooks.
#[derive(Debug)]
struct OperationState {
    started: Instant,
    /// `operationName` of the request.
    requested_name: Option<String>,
    /// The selected operation's name and kind, once parsed.
    operation: Option<(Option<String>, OperationKind)>,
    /// The stage that failed before execution, if any.
    failed_stage: Option<&'static str>,
    recorded: bool,
}

impl OperationState {
    fn new() -> Self {
        Self { started: Instant::now(), requested_name: None, operation: None, failed_stage: None, recorded: false }
    }

    /// The outcome label of a response.
    fn outcome(&self, errors: &[ServerError]) -> String {
        let Some(first) = errors.first() else { return OK.to_owned() };
        let code = first.extensions.as_ref().and_then(|x| x.get("code")).and_then(|v| match v {
            async_graphql::Value::String(s) => Some(s.clone()),
            async_graphql::Value::Enum(s) => Some(s.to_string()),
            _ => None,
        });
        code.unwrap_or_else(|| self.failed_stage.unwrap_or(INTERNAL_SERVER_ERROR).to_owned())
    }

    fn name_and_kind(&self) -> (Option<&str>, OperationKind) {
        match &self.operation {
            Some((name, kind)) => (name.as_deref(), *kind),
            None => (self.requested_name.as_deref(), OperationKind::Unknown),
        }
    }

    /// Records the operation once; later calls do nothing.
    fn record(&mut self, metrics: &Metrics, errors: &[ServerError]) {
        if self.recorded {
            return;
        }
        self.recorded = true;
        let outcome = self.outcome(errors);
        let (name, kind) = self.name_and_kind();
        let elapsed = (kind != OperationKind::Subscription).then(|| self.started.elapsed());
        metrics.record_graphql(name, kind, &outcome, elapsed);
    }
}

struct GraphqlMetricsExtension {
    metrics: Metrics,
    state: Arc<Mutex<OperationState>>,
}

impl GraphqlMetricsExtension {
    fn state(&self) -> std::sync::MutexGuard<'_, OperationState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The operation `requested` selects in `doc`, as (name, kind).
fn selected_operation(doc: &ExecutableDocument, requested: Option<&str>) -> Option<(Option<String>, OperationKind)> {
    let mut ops = doc.operations.iter();
    let (name, op) = match requested {
        Some(wanted) => ops.find(|(name, _)| name.is_some_and(|n| n.as_str() == wanted))?,
        None => {
            let first = ops.next()?;
            if ops.next().is_some() {
                // Several operations and none chosen: the executor refuses it.
                return None;
            }
            first
        }
    };
    Some((name.map(ToString::to_string), op.node.ty.into()))
}

/// Records the operation when the stream yields its first response or,
/// failing that, when it is dropped.
struct RecordOnDrop {
    metrics: Metrics,
    state: Arc<Mutex<OperationState>>,
}

impl RecordOnDrop {
    fn record(&self, errors: &[ServerError]) {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).record(&self.metrics, errors);
    }
}

impl Drop for RecordOnDrop {
    fn drop(&mut self) {
        self.record(&[]);
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for GraphqlMetricsExtension {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        // Fields named after OpenTelemetry's GraphQL conventions; `otel.name`
        // renames the exported span to e.g. `query Hello`.
        let span = tracing::info_span!(
            "graphql",
            otel.name = tracing::field::Empty,
            graphql.operation.name = tracing::field::Empty,
            graphql.operation.type = tracing::field::Empty,
            graphql.outcome = tracing::field::Empty,
        );
        let response = next.run(ctx).instrument(span.clone()).await;
        let mut state = self.state();
        state.record(&self.metrics, &response.errors);
        let (name, kind) = state.name_and_kind();
        let outcome = state.outcome(&response.errors);
        span.record("otel.name", format!("{} {}", kind.as_str(), name.unwrap_or(ANONYMOUS)));
        if let Some(name) = name {
            span.record("graphql.operation.name", name);
        }
        span.record("graphql.operation.type", kind.as_str());
        span.record("graphql.outcome", outcome.as_str());
        drop(state);
        response
    }

    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        let guard = RecordOnDrop { metrics: self.metrics.clone(), state: self.state.clone() };
        next.run(ctx, stream)
            .map(move |response| {
                guard.record(&response.errors);
                response
            })
            .boxed()
    }

    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        self.state().requested_name.clone_from(&request.operation_name);
        next.run(ctx, request).await
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let result = next.run(ctx, query, variables).await;
        let mut state = self.state();
        match &result {
            Ok(doc) => {
                let requested = state.requested_name.clone();
                state.operation = selected_operation(doc, requested.as_deref());
                if state.operation.is_none() {
                    // No operation selected: the executor refuses the request.
                    state.operation = Some((requested, OperationKind::Unknown));
                    state.failed_stage = Some(GRAPHQL_VALIDATION_FAILED);
                }
            }
            Err(_) => state.failed_stage = Some(GRAPHQL_PARSE_FAILED),
        }
        result
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let result = next.run(ctx).await;
        if result.is_err() {
            self.state().failed_stage = Some(GRAPHQL_VALIDATION_FAILED);
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An event as the store returns it after a commit.
    fn committed(event_type: &str) -> tandem_store::RecordedEvent {
        tandem_store::RecordedEvent {
            position: 1,
            transaction_id: 1,
            stream_id: uuid::Uuid::now_v7(),
            stream_type: "pair".to_owned(),
            stream_version: 1,
            event_id: uuid::Uuid::now_v7(),
            event_type: event_type.to_owned(),
            schema_version: 1,
            data: serde_json::Value::Null,
            metadata: tandem_store::Metadata {
                actor: tandem_store::Actor { subject: "test".to_owned(), role: "admin".to_owned() },
                correlation_id: uuid::Uuid::now_v7(),
                causation_id: None,
                idempotency_key: None,
                trace_id: None,
            },
            recorded_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn every_metric_is_registered_and_rendered() {
        let m = Metrics::new();
        m.record_graphql(Some("Q"), OperationKind::Query, OK, Some(Duration::from_millis(3)));
        m.record_http("GET", "/healthz", 200, Duration::from_millis(1));
        // The command service's counter, registered as the service does.
        let events = tandem_commands::EventMetrics::register(m.registry()).expect("registers once");
        events.record(&[committed("PairFormed")]);
        m.inner.projection_lag_events.with_label_values(&["people"]).set(0);
        m.inner.projection_lag_seconds.with_label_values(&["people"]).set(0.0);
        m.set_open_subscriptions(|| 7);
        let text = m.render();
        for (name, ty) in [
            ("tandem_graphql_requests_total", "counter"),
            ("tandem_graphql_request_duration_seconds", "histogram"),
            ("tandem_events_appended_total", "counter"),
            ("tandem_projection_lag_events", "gauge"),
            ("tandem_projection_lag_seconds", "gauge"),
            ("tandem_subscriptions_open", "gauge"),
            ("tandem_http_requests_total", "counter"),
            ("tandem_http_request_duration_seconds", "histogram"),
        ] {
            assert!(text.contains(&format!("# TYPE {name} {ty}\n")), "{name} {ty} missing in:\n{text}");
        }
        assert!(text.contains("tandem_subscriptions_open 7\n"), "{text}");
    }

    #[test]
    fn operation_names_are_bounded() {
        let m = Metrics::new();
        for i in 0..MAX_OPERATION_NAMES {
            assert_eq!(m.operation_label(Some(&format!("Op{i}"))), format!("Op{i}"));
        }
        assert_eq!(m.operation_label(Some("OneTooMany")), OTHER);
        assert_eq!(m.operation_label(Some("Op0")), "Op0", "names already seen keep their label");
        assert_eq!(m.operation_label(None), ANONYMOUS);
        assert_eq!(m.operation_label(Some(&"x".repeat(MAX_OPERATION_NAME_LEN + 1))), OTHER);
    }
}
