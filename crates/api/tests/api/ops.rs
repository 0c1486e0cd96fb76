//! The operator endpoints (`/healthz`, `/readyz`, `/metrics`), the HTTP
//! metrics layer and the GraphQL metrics extension.

use std::collections::BTreeMap;
use std::time::Duration;

use async_graphql::futures_util::{Stream, StreamExt as _, stream};
use async_graphql::{ErrorExtensions as _, Object, Schema, Subscription};
use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use axum::routing::get;
use serde_json::{Value, json};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tandem_api::error::ErrorCodes;
use tandem_api::metrics::{GraphqlMetrics, Metrics};
use tandem_api::ops::{self, OpsState};
use tandem_store::{Actor, EventStore, ExpectedVersion, Metadata, NewEvent};
use tower::ServiceExt as _;
use uuid::Uuid;

/// Tandem's five read models, in the order `lag` reports them.
const READ_MODELS: usize = 5;

async fn get_path(app: Router, path: &str) -> (StatusCode, Option<String>, String) {
    let response = app.oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap();
    let status = response.status();
    let content_type = response.headers().get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap().to_owned());
    let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    (status, content_type, String::from_utf8(body.to_vec()).unwrap())
}

async fn get_json(app: Router, path: &str) -> (StatusCode, Value) {
    let (status, content_type, body) = get_path(app, path).await;
    assert_eq!(content_type.as_deref(), Some("application/json"), "{path}: {body}");
    (status, serde_json::from_str(&body).unwrap())
}

fn app(pool: PgPool, max_lag_events: i64) -> Router {
    ops::router(OpsState::new(pool, Metrics::new(), max_lag_events))
}

/// Brings every read model to the head of the log, as a runner would.
async fn catch_up(pool: &PgPool) {
    tandem_projections::rebuild(pool, None, |_| {}).await.unwrap();
}

fn metadata() -> Metadata {
    Metadata {
        actor: Actor { subject: "ops-test".to_owned(), role: "admin".to_owned() },
        correlation_id: Uuid::now_v7(),
        causation_id: None,
        idempotency_key: None,
        trace_id: None,
    }
}

/// Appends `n` events the projections have not seen (their type matters
/// only to the metrics: lag counts events, whatever they are).
async fn append_raw(pool: &PgPool, n: usize) -> Vec<tandem_store::RecordedEvent> {
    let events: Vec<NewEvent> = (0..n).map(|i| NewEvent::new("OpsProbe", 1, json!({ "i": i }))).collect();
    let outcome = EventStore::new(pool.clone())
        .append(Uuid::now_v7(), "ops_probe", ExpectedVersion::NoStream, &events, &metadata())
        .await
        .unwrap();
    outcome.events
}

/// Waits until the last appended events are readable (below the log's
/// transaction horizon, which a concurrent transaction elsewhere in the
/// cluster may hold back for a moment): every read model trails by `n`.
async fn wait_readable(pool: &PgPool, n: i64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let lags = tandem_projections::lag::lag_of_read_models(pool).await.unwrap();
        if lags.iter().all(|l| l.events_behind == n) {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "events never became readable: {lags:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A pool whose server is not there: a port just closed on loopback, with
/// a password that must not leak.
fn unreachable_pool() -> PgPool {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let options = PgConnectOptions::new()
        .host("127.0.0.1")
        .port(port)
        .username("tandem")
        .password("hunter2-secret")
        .database("tandem");
    PgPoolOptions::new().acquire_timeout(Duration::from_millis(500)).connect_lazy_with(options)
}

// ---------------------------------------------------------------- /healthz

#[tokio::test]
async fn healthz_is_ok_without_touching_the_database() {
    let (status, body) = get_json(app(unreachable_pool(), 0), "/healthz").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({ "status": "ok" }));
}

// ----------------------------------------------------------------- /readyz

#[sqlx::test(migrations = "../../migrations")]
async fn readyz_is_ready_on_a_migrated_database_with_caught_up_projections(pool: PgPool) {
    catch_up(&pool).await;
    let (status, body) = get_json(app(pool, 0), "/readyz").await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    assert_eq!(body["status"], "ready");
    for check in ["database", "migrations", "projections"] {
        assert_eq!(body["checks"][check]["status"], "ok", "{check}: {body:#}");
    }
}

#[sqlx::test(migrations = "../../migrations")]
async fn readyz_is_unavailable_while_projections_have_not_started(pool: PgPool) {
    let (status, body) = get_json(app(pool, 1_000), "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body:#}");
    assert_eq!(body["status"], "not_ready");
    assert_eq!(body["checks"]["database"]["status"], "ok");
    assert_eq!(body["checks"]["migrations"]["status"], "ok");
    let projections = &body["checks"]["projections"];
    assert_eq!(projections["status"], "failed");
    assert_eq!(projections["reason"], "projections_behind");
    let lagging = projections["lagging"].as_array().unwrap();
    assert_eq!(lagging.len(), READ_MODELS, "{body:#}");
    assert!(lagging.iter().all(|p| p["started"] == false), "{body:#}");
}

#[sqlx::test(migrations = "../../migrations")]
async fn readyz_compares_projection_lag_with_the_threshold(pool: PgPool) {
    catch_up(&pool).await;
    append_raw(&pool, 3).await;
    wait_readable(&pool, 3).await;

    let (status, body) = get_json(app(pool.clone(), 2), "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body:#}");
    let projections = &body["checks"]["projections"];
    assert_eq!(projections["max_lag_events"], 2);
    let lagging = projections["lagging"].as_array().unwrap();
    assert_eq!(lagging.len(), READ_MODELS, "{body:#}");
    for p in lagging {
        assert_eq!(p["events_behind"], 3, "{body:#}");
        assert_eq!(p["started"], true);
    }

    let (status, body) = get_json(app(pool, 3), "/readyz").await;
    assert_eq!(status, StatusCode::OK, "at the threshold is still ready: {body:#}");
}

#[sqlx::test(migrations = false)]
async fn readyz_is_unavailable_when_migrations_are_missing(pool: PgPool) {
    let (status, body) = get_json(app(pool.clone(), 1_000), "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body:#}");
    assert_eq!(body["checks"]["database"]["status"], "ok");
    let migrations = &body["checks"]["migrations"];
    assert_eq!(migrations["status"], "failed");
    assert_eq!(migrations["reason"], "migrations_not_applied");
    let all: Vec<i64> = tandem_store::MIGRATOR.iter().map(|m| m.version).collect();
    assert_eq!(migrations["missing"], json!(all), "{body:#}");

    // Half-way: the first migration only.
    let first = tandem_store::MIGRATOR.iter().next().unwrap();
    let mut conn = pool.acquire().await.unwrap();
    let only_first = sqlx::migrate::Migrator::with_migrations(vec![first.clone()]);
    only_first.run(&mut *conn).await.unwrap();
    drop(conn);
    let (status, body) = get_json(app(pool, 1_000), "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body:#}");
    assert_eq!(body["checks"]["migrations"]["missing"], json!(all[1..]), "{body:#}");
}

#[tokio::test]
async fn readyz_is_unavailable_when_the_database_is_unreachable() {
    let state = OpsState::new(unreachable_pool(), Metrics::new(), 1_000).check_timeout(Duration::from_secs(2));
    let started = std::time::Instant::now();
    let (status, _, text) = get_path(ops::router(state), "/readyz").await;
    assert!(started.elapsed() < Duration::from_secs(5), "bounded by the check timeout");
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["status"], "not_ready");
    assert_eq!(body["checks"]["database"]["status"], "failed");
    assert!(["timeout", "database_error"].contains(&body["checks"]["database"]["reason"].as_str().unwrap()));
    assert_eq!(body["checks"]["migrations"]["status"], "skipped");
    assert_eq!(body["checks"]["projections"]["status"], "skipped");
    for secret in ["hunter2", "tandem@", "127.0.0.1", "refused"] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
}

/// What a test's code logs, one formatted line per event (`LEVEL target: message fields`).
#[derive(Clone, Default)]
struct Logs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    /// Captures this thread's events of `tandem_api::ops` at DEBUG and above.
    fn capture() -> (Self, tracing::subscriber::DefaultGuard) {
        let logs = Self::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter("tandem_api::ops=debug")
            .with_ansi(false)
            .without_time()
            .with_writer(move || writer.clone())
            .finish();
        (logs, tracing::subscriber::set_default(subscriber))
    }

    /// The lines at `level` (`INFO`, `WARN`, ...), and empties the buffer.
    fn take(&self, level: &str) -> Vec<String> {
        let text = String::from_utf8(std::mem::take(&mut *self.0.lock().unwrap())).unwrap();
        text.lines().filter(|l| l.trim_start().starts_with(level)).map(str::to_owned).collect()
    }
}

/// Probes `/readyz` `n` times; the status of each.
async fn probe(app: &Router, n: usize) -> Vec<StatusCode> {
    let mut statuses = Vec::new();
    for _ in 0..n {
        statuses.push(get_path(app.clone(), "/readyz").await.0);
    }
    statuses
}

/// Readiness is logged once per change: ready at INFO, ready → not ready at
/// WARN (with what failed), back to ready at INFO; repeated probes of the
/// same state log nothing above DEBUG.
#[sqlx::test(migrations = "../../migrations")]
async fn readyz_logs_each_change_once(pool: PgPool) {
    let (logs, _guard) = Logs::capture();
    catch_up(&pool).await;
    let state = OpsState::new(pool.clone(), Metrics::new(), 2);
    // A clone serves the same replica (it shares what was last logged);
    // its higher threshold brings the replica back to ready below.
    let mut lenient = state.clone();
    lenient.max_lag_events = 3;
    let app = ops::router(state);
    assert_eq!(probe(&app, 3).await, [StatusCode::OK; 3]);
    let info = logs.take("INFO");
    assert_eq!(info.len(), 1, "{info:?}");
    assert!(info[0].contains("readiness: ready"), "{info:?}");

    append_raw(&pool, 3).await;
    wait_readable(&pool, 3).await;
    assert_eq!(probe(&app, 4).await, [StatusCode::SERVICE_UNAVAILABLE; 4]);
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let warn = logs.take("WARN");
    assert_eq!(warn.len(), 1, "one WARN for the change, not one per probe:\n{text}");
    assert!(
        warn[0].contains("readiness: not ready") && warn[0].contains("projections: projections_behind"),
        "{warn:?}"
    );
    assert!(warn[0].contains("3 events"), "the log says what is behind: {warn:?}");
    assert!(text.lines().filter(|l| l.contains("DEBUG")).count() >= 4, "each probe's failure at DEBUG:\n{text}");

    assert_eq!(probe(&ops::router(lenient), 2).await, [StatusCode::OK; 2]);
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(!text.contains("WARN"), "{text}");
    let info = logs.take("INFO");
    assert_eq!(info.len(), 1, "{info:?}");
    assert!(info[0].contains("readiness: ready"), "{info:?}");
}

/// Not ready from the first probe (a replica starting while the database
/// is down) is the normal start: INFO once, never WARN.
#[tokio::test]
async fn readyz_not_ready_at_start_is_info_once() {
    let (logs, _guard) = Logs::capture();
    let state = OpsState::new(unreachable_pool(), Metrics::new(), 1_000).check_timeout(Duration::from_secs(2));
    let app = ops::router(state);
    assert_eq!(probe(&app, 3).await, [StatusCode::SERVICE_UNAVAILABLE; 3]);
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(!text.contains("WARN") && !text.contains("ERROR"), "{text}");
    let info = logs.take("INFO");
    assert_eq!(info.len(), 1, "{info:?}");
    assert!(info[0].contains("not ready yet") && info[0].contains("database"), "{info:?}");
}

// ---------------------------------------------------------------- /metrics

/// One parsed sample: metric name, labels, value.
type Sample = (String, BTreeMap<String, String>, f64);

/// Parses the text exposition format strictly enough for the tests: every
/// line is a `# HELP`, a `# TYPE` or a sample of a declared family.
fn parse_exposition(text: &str) -> (BTreeMap<String, String>, Vec<Sample>) {
    let mut types = BTreeMap::new();
    let mut samples = Vec::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, ty) = rest.split_once(' ').unwrap();
            assert!(["counter", "gauge", "histogram", "summary", "untyped"].contains(&ty), "{line}");
            types.insert(name.to_owned(), ty.to_owned());
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        assert!(!line.starts_with('#'), "unexpected comment {line}");
        let (series, value) = line.rsplit_once(' ').unwrap();
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("bad value in {line}")),
        };
        let (name, labels) = match series.split_once('{') {
            None => (series.to_owned(), BTreeMap::new()),
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').unwrap();
                let labels = body
                    .split("\",")
                    .filter(|kv| !kv.is_empty())
                    .map(|kv| {
                        let (k, v) = kv.split_once("=\"").unwrap();
                        (k.to_owned(), v.trim_end_matches('"').to_owned())
                    })
                    .collect();
                (name.to_owned(), labels)
            }
        };
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|f| types.get(*f).is_some_and(|t| t == "histogram")))
            .unwrap_or(&name);
        assert!(types.contains_key(family), "sample of undeclared family: {line}");
        samples.push((name, labels, value));
    }
    (types, samples)
}

fn value_of(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let wanted: BTreeMap<String, String> = labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    samples.iter().find(|(n, l, _)| n == name && *l == wanted).map(|(_, _, v)| *v)
}

#[sqlx::test(migrations = "../../migrations")]
async fn metrics_is_prometheus_text_with_every_family(pool: PgPool) {
    catch_up(&pool).await;
    append_raw(&pool, 2).await;
    wait_readable(&pool, 2).await;
    let metrics = Metrics::new();
    metrics.set_open_subscriptions(|| 3);
    let app = ops::router(OpsState::new(pool, metrics.clone(), 1_000)).layer(ops::http_metrics_layer(metrics));
    get_path(app.clone(), "/healthz").await;

    let (status, content_type, text) = get_path(app, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type.as_deref(), Some("text/plain; version=0.0.4; charset=utf-8"));
    let (types, samples) = parse_exposition(&text);
    for (name, ty) in [
        ("tandem_projection_lag_events", "gauge"),
        ("tandem_projection_lag_seconds", "gauge"),
        ("tandem_subscriptions_open", "gauge"),
        ("tandem_http_requests_total", "counter"),
        ("tandem_http_request_duration_seconds", "histogram"),
        ("process_cpu_seconds_total", "counter"),
        ("process_resident_memory_bytes", "gauge"),
        ("process_virtual_memory_bytes", "gauge"),
        ("process_open_fds", "gauge"),
        ("process_max_fds", "gauge"),
        ("process_start_time_seconds", "gauge"),
        ("process_threads", "gauge"),
    ] {
        assert_eq!(types.get(name).map(String::as_str), Some(ty), "{name}:\n{text}");
    }
    assert_eq!(value_of(&samples, "tandem_subscriptions_open", &[]), Some(3.0));
    // The process metrics describe this very process.
    let rss = value_of(&samples, "process_resident_memory_bytes", &[]).unwrap();
    assert!(rss > 1_000_000.0, "{rss}");
    let fds = value_of(&samples, "process_open_fds", &[]).unwrap();
    assert!(fds >= 3.0 && fds <= value_of(&samples, "process_max_fds", &[]).unwrap(), "{fds}");
    let started = value_of(&samples, "process_start_time_seconds", &[]).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    assert!(started > now - 86_400.0 && started <= now + 1.0, "{started} vs {now}");
    for projection in ["people", "programs", "pairs", "participation"] {
        assert_eq!(
            value_of(&samples, "tandem_projection_lag_events", &[("projection", projection)]),
            Some(2.0),
            "{projection}:\n{text}"
        );
        assert!(value_of(&samples, "tandem_projection_lag_seconds", &[("projection", projection)]).unwrap() >= 0.0);
    }
    assert_eq!(
        value_of(&samples, "tandem_http_requests_total", &[("method", "GET"), ("path", "/healthz"), ("status", "200")]),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value_of(&samples, "tandem_http_request_duration_seconds_count", &[("method", "GET"), ("path", "/healthz")]),
        Some(1.0)
    );
}

#[tokio::test]
async fn http_metrics_use_route_templates_never_raw_paths() {
    let metrics = Metrics::new();
    let app = Router::new()
        .route("/things/{id}", get(|| async { "thing" }).post(|| async { StatusCode::CREATED }))
        .layer(ops::http_metrics_layer(metrics.clone()));
    for path in ["/things/1", "/things/2", "/nothing/here"] {
        get_path(app.clone(), path).await;
    }
    let send = |method: &str| Request::builder().method(method).uri("/things/3").body(Body::empty()).unwrap();
    app.clone().oneshot(send("POST")).await.unwrap();
    app.clone().oneshot(send("BREW")).await.unwrap();
    let (_, samples) = parse_exposition(&metrics.render());
    let count = |method, path, status| {
        value_of(&samples, "tandem_http_requests_total", &[("method", method), ("path", path), ("status", status)])
    };
    assert_eq!(count("GET", "/things/{id}", "200"), Some(2.0));
    assert_eq!(count("POST", "/things/{id}", "201"), Some(1.0));
    assert_eq!(count(ops::OTHER_METHOD, "/things/{id}", "405"), Some(1.0), "unknown methods share one label");
    assert_eq!(count("GET", ops::UNMATCHED_PATH, "404"), Some(1.0));
    let duration = |method, path| {
        value_of(&samples, "tandem_http_request_duration_seconds_count", &[("method", method), ("path", path)])
    };
    assert_eq!(duration("GET", "/things/{id}"), Some(2.0));
    assert_eq!(duration("POST", "/things/{id}"), Some(1.0));
    assert!(samples.iter().all(|(_, l, _)| l.get("path").is_none_or(|p| !p.contains("nothing"))));
    assert!(samples.iter().all(|(_, l, _)| l.get("method").is_none_or(|m| m != "BREW")));
}

#[sqlx::test(migrations = "../../migrations")]
async fn appended_events_are_counted_by_type(pool: PgPool) {
    let metrics = Metrics::new();
    // Registered into the API's registry as the service wiring does.
    let counter = tandem_commands::EventMetrics::register(metrics.registry()).unwrap();
    counter.record(&append_raw(&pool, 2).await);
    let (types, samples) = parse_exposition(&metrics.render());
    assert_eq!(types["tandem_events_appended_total"], "counter");
    assert_eq!(value_of(&samples, "tandem_events_appended_total", &[("event_type", "OpsProbe")]), Some(2.0));
}

// ------------------------------------------------- the GraphQL extension

struct Query;

#[Object]
impl Query {
    async fn hello(&self) -> &str {
        "hello"
    }

    async fn refused(&self) -> async_graphql::Result<i32> {
        Err(async_graphql::Error::new("no").extend_with(|_, e| e.set("code", "BAD_USER_INPUT")))
    }
}

struct Mutation;

#[Object]
impl Mutation {
    async fn bump(&self) -> i32 {
        1
    }
}

struct Subscription;

#[Subscription]
impl Subscription {
    async fn ticks(&self) -> impl Stream<Item = i32> {
        stream::iter([1, 2, 3])
    }
}

#[tokio::test]
async fn graphql_operations_are_counted_by_name_kind_and_outcome() {
    let metrics = Metrics::new();
    let schema = Schema::build(Query, Mutation, Subscription)
        .extension(ErrorCodes)
        .extension(GraphqlMetrics::new(metrics.clone()))
        .finish();

    for _ in 0..2 {
        assert!(schema.execute("query Hello { hello }").await.errors.is_empty());
    }
    assert!(!schema.execute("query Refuse { refused }").await.errors.is_empty());
    assert!(!schema.execute("{ hello").await.errors.is_empty());
    assert!(!schema.execute("query Bad { nope }").await.errors.is_empty());
    assert!(schema.execute("mutation { bump }").await.errors.is_empty());
    let two = async_graphql::Request::new("query A { hello } mutation B { bump }").operation_name("B");
    assert!(schema.execute(two).await.errors.is_empty());
    // Over a websocket everything runs as a stream.
    let ticks: Vec<_> = schema.execute_stream("subscription Ticks { ticks }").take(2).collect().await;
    assert_eq!(ticks.len(), 2);
    let once: Vec<_> = schema.execute_stream("query Streamed { hello }").collect().await;
    assert_eq!(once.len(), 1);

    let text = metrics.render();
    let (types, samples) = parse_exposition(&text);
    assert_eq!(types["tandem_graphql_requests_total"], "counter");
    assert_eq!(types["tandem_graphql_request_duration_seconds"], "histogram");
    let count = |op, kind, outcome| {
        value_of(&samples, "tandem_graphql_requests_total", &[("operation", op), ("kind", kind), ("outcome", outcome)])
    };
    assert_eq!(count("Hello", "query", "ok"), Some(2.0), "{text}");
    assert_eq!(count("Refuse", "query", "BAD_USER_INPUT"), Some(1.0), "{text}");
    assert_eq!(count("anonymous", "unknown", "GRAPHQL_PARSE_FAILED"), Some(1.0), "{text}");
    assert_eq!(count("Bad", "query", "GRAPHQL_VALIDATION_FAILED"), Some(1.0), "{text}");
    assert_eq!(count("anonymous", "mutation", "ok"), Some(1.0), "{text}");
    assert_eq!(count("B", "mutation", "ok"), Some(1.0), "{text}");
    assert_eq!(count("Ticks", "subscription", "ok"), Some(1.0), "counted once, not per event: {text}");
    assert_eq!(count("Streamed", "query", "ok"), Some(1.0), "{text}");

    let timed = |op, kind| {
        value_of(&samples, "tandem_graphql_request_duration_seconds_count", &[("operation", op), ("kind", kind)])
    };
    assert_eq!(timed("Hello", "query"), Some(2.0));
    assert_eq!(timed("Streamed", "query"), Some(1.0));
    assert_eq!(timed("Ticks", "subscription"), None, "a subscription's lifetime is not a request duration");
}
