//! OTLP export, end to end: a receiver on loopback takes `POST /v1/traces`,
//! telemetry points at it, a span with a SQL call in it is flushed, and the
//! receiver gets it as protobuf.
//!
//! Its own test binary: a process has one global subscriber.

#![expect(clippy::unwrap_used, reason = "tests")]

use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::post;
use sqlx::Connection as _;
use tandem::telemetry::{self, LogFormat, TelemetryOptions};
use tokio::sync::mpsc;
use tracing::Instrument as _;

/// Whether `needle` occurs in `haystack` (protobuf strings are raw UTF-8).
fn contains(haystack: &[u8], needle: &str) -> bool {
    contains_bytes(haystack, needle.as_bytes())
}

fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A caller's trace and span (W3C trace context), as hex.
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_SPAN_ID: &str = "00f067aa0ba902b7";

/// The bytes of a hex string (protobuf carries ids as raw bytes).
fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_and_their_sql_calls_are_exported_over_otlp_http() {
    let (tx, mut rx) = mpsc::unbounded_channel::<(HeaderMap, Bytes)>();
    let receiver = Router::new().route(
        "/v1/traces",
        post(move |headers: HeaderMap, body: Bytes| {
            let tx = tx.clone();
            async move {
                let _ = tx.send((headers, body));
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, receiver).await.unwrap() });

    let guard = telemetry::init(TelemetryOptions {
        log_format: LogFormat::Json,
        filter: telemetry::DEFAULT_FILTER.to_owned(),
        otlp_endpoint: Some(format!("http://{address}")),
        service_name: "tandem-telemetry-test".to_owned(),
    })
    .unwrap();
    assert!(guard.exports_traces());
    assert!(telemetry::init(TelemetryOptions::default()).is_err(), "a second subscriber is refused, not a panic");

    let url =
        std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    async {
        let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::query("SELECT 1 AS otlp_probe").execute(&mut conn).await.unwrap();
        tracing::info!(answer = 42, "inside the span");
    }
    .instrument(tracing::info_span!("telemetry_test_operation"))
    .await;
    // A request that carries a caller's trace context: its span joins that
    // trace, as a child of the caller's span.
    let request = axum::http::Request::builder()
        .uri("/graphql")
        .header("traceparent", format!("00-{TRACE_ID}-{PARENT_SPAN_ID}-01"))
        .body(())
        .unwrap();
    tandem_api::app::http_span(&request).in_scope(|| tracing::info!("inside the request"));

    // Flushing blocks until the batch thread has posted; keep the runtime's
    // threads free for the receiver meanwhile.
    let guard = tokio::task::spawn_blocking(move || {
        guard.flush().unwrap();
        guard
    })
    .await
    .unwrap();

    let mut bodies = Vec::new();
    while let Ok(Some((headers, body))) = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
        assert_eq!(headers.get(header::CONTENT_TYPE).unwrap(), "application/x-protobuf");
        assert!(!body.is_empty());
        bodies.push(body);
        if bodies.iter().any(|b| contains(b, "telemetry_test_operation")) {
            break;
        }
    }
    let body = bodies.iter().find(|b| contains(b, "telemetry_test_operation")).expect("the span was exported");
    assert!(contains(body, "tandem-telemetry-test"), "service.name is the configured one");
    assert!(contains(body, "otlp_probe"), "the SQL statement is an event of the span, despite sqlx=warn in the logs");
    assert!(contains(body, "inside the span"));
    let joined = bodies.iter().any(|b| {
        contains(b, "inside the request")
            && contains_bytes(b, &hex(TRACE_ID))
            && contains_bytes(b, &hex(PARENT_SPAN_ID))
    });
    assert!(joined, "the request's span is in the caller's trace, its parent the caller's span");

    tokio::task::spawn_blocking(move || guard.shutdown()).await.unwrap();
}
