//! The whole HTTP application: the GraphQL transport (`/graphql`,
//! `/graphiql`), the operational endpoints (`/healthz`, `/readyz`,
//! `/metrics`), any further routes (the SCIM server), HTTP metrics and a
//! tracing span per request.

use std::sync::Arc;

use axum::Router;
use tower_http::trace::TraceLayer;

use crate::ops::{self, OpsState};
use crate::schema::TandemSchema;
use crate::transport::{self, RequestContext, TransportConfig};

/// Builds the router of the service.
pub fn router(
    schema: TandemSchema,
    context: Arc<dyn RequestContext>,
    transport_config: TransportConfig,
    ops_state: OpsState,
) -> Router {
    router_with(schema, context, transport_config, ops_state, Router::new())
}

/// [`router`] with more routes beside GraphQL (the SCIM server at
/// `/scim/v2`, say), served under the same metrics and tracing.
pub fn router_with(
    schema: TandemSchema,
    context: Arc<dyn RequestContext>,
    transport_config: TransportConfig,
    ops_state: OpsState,
    extra: Router,
) -> Router {
    let metrics = ops_state.metrics.clone();
    transport::router(schema, context, transport_config)
        .merge(ops::router(ops_state))
        .merge(extra)
        // `route_layer` runs after routing, so the matched path is known
        // and unmatched paths never become metric labels.
        .route_layer(ops::http_metrics_layer(metrics))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<axum::body::Body>| http_span(req)))
}

/// The span of one HTTP request: a child of the caller's trace when the
/// request carries W3C trace context (`traceparent`, `tracestate`), read
/// by the process's propagator.
pub fn http_span<B>(req: &axum::http::Request<B>) -> tracing::Span {
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    let span = tracing::info_span!("http", method = %req.method(), path = %req.uri().path());
    let parent = opentelemetry::global::get_text_map_propagator(|p| p.extract(&Headers(req.headers())));
    // Without an OpenTelemetry layer (no OTLP endpoint) there is no trace to
    // join, and nothing to do.
    let _ = span.set_parent(parent);
    span
}

/// Request headers as the propagator reads them.
struct Headers<'a>(&'a axum::http::HeaderMap);

impl opentelemetry::propagation::Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(axum::http::HeaderName::as_str).collect()
    }
}
