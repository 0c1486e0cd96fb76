//! The transport of the GraphQL API: GraphQL over HTTP and over websockets.
//!
//! async-graphql's stock axum service runs mutations over GET, ignores
//! `Accept`, and leaves websocket edge cases (no `connection_init`, duplicate
//! ids, a second init) unpoliced, so Tandem owns this layer. It is generic over
//! any [`async_graphql::Executor`], so it is tested with a toy schema and
//! serves the real one unchanged.
//!
//! Layout:
//! * this file — the public API: [`router`], [`TransportConfig`], and the
//!   [`RequestContext`] hook that turns a request's credentials into
//!   per-request data ([`RequestData`]) or a [`ContextError`];
//! * [`codes`] — the `extensions.code` values this layer emits;
//! * `negotiate` — `Accept` and `Content-Type` parsing (pure);
//! * `params` — the GraphQL request parameters (`query`, `operationName`,
//!   `variables`, `extensions`), validated the same way for HTTP and sockets;
//! * `body` — response bodies: GraphQL responses and transport errors;
//! * `http` — the GraphQL-over-HTTP handler (POST, GET, status codes);
//! * `ws` — the websocket handler for `graphql-transport-ws` and the legacy
//!   `graphql-ws` (subscriptions-transport-ws) protocol;
//! * [`cors`] — cross-origin requests from browsers, when origins are
//!   configured;
//! * `graphiql` — the GraphiQL IDE and its assets, built into the binary.
//!
//! `/graphql` serves POST, GET, and the websocket upgrade (GET with
//! `Upgrade: websocket`); `/graphiql` serves the GraphiQL IDE, and
//! `/graphiql/assets/…` its scripts and styles.

mod body;
pub mod codes;
pub mod cors;
mod graphiql;
mod http;
mod negotiate;
mod params;
mod ws;

use std::{fmt, sync::Arc, time::Duration};

use async_graphql::{Data, Executor};
use axum::{
    Router,
    http::{HeaderMap, HeaderName, HeaderValue},
    routing::any,
};
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use tokio::time::Instant;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

pub use cors::CorsOrigins;

/// Turns a request's credentials into the data its operations run with.
///
/// The transport calls it once per HTTP request, and once per websocket
/// connection when `connection_init` arrives (the token travels in the init
/// payload, since browsers cannot set headers on a websocket).
pub trait RequestContext: Send + Sync + 'static {
    /// Builds the data of one HTTP request from its headers, e.g. the
    /// principal from `Authorization: Bearer …` and fresh DataLoaders.
    ///
    /// An error ends the request before its body is read: the response is a
    /// GraphQL error with `extensions.code = error.code` and the status of
    /// [`ContextError::http_status`] (401 with `WWW-Authenticate: Bearer`
    /// for `UNAUTHENTICATED`).
    fn http<'a>(&'a self, headers: &'a HeaderMap) -> BoxFuture<'a, Result<RequestData, ContextError>>;

    /// Builds the data of one websocket connection from the payload of its
    /// `connection_init` (e.g. `{"authorization": "Bearer …"}`), once.
    ///
    /// An error closes the socket with 4403 (Forbidden).
    fn websocket(&self, init_payload: Option<serde_json::Value>) -> BoxFuture<'_, Result<RequestData, ContextError>>;

    /// Data for one operation on a websocket, given the connection's data.
    ///
    /// A connection lives for hours, so whatever must not outlive one
    /// operation (DataLoaders, whose caches would serve stale rows) is built
    /// here. It shadows the connection's data of the same type. Not called
    /// for HTTP, where [`RequestContext::http`] already runs per request.
    fn operation_data(&self, connection: &Data) -> Data {
        let _ = connection;
        Data::default()
    }
}

/// What a [`RequestContext`] hands to the operations of a request or socket.
#[derive(Debug, Default)]
pub struct RequestData {
    /// Available to resolvers through `ctx.data::<T>()`: per request for
    /// HTTP, per connection (session data) for websockets.
    pub data: Data,
    /// When the credentials stop being valid. A websocket outlives its token:
    /// at this instant every operation on it ends with an `UNAUTHENTICATED`
    /// error and the socket closes with 4403. `None`: never. Ignored for
    /// HTTP, whose credentials are checked as the request arrives.
    pub expires_at: Option<DateTime<Utc>>,
}

impl RequestData {
    /// Data that never expires.
    #[must_use]
    pub fn new(data: Data) -> Self {
        Self { data, expires_at: None }
    }

    /// Sets the instant the credentials expire.
    #[must_use]
    pub fn expires_at(self, expires_at: DateTime<Utc>) -> Self {
        Self { expires_at: Some(expires_at), ..self }
    }
}

/// Why a [`RequestContext`] refused a request or a connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ContextError {
    /// Sent as `extensions.code`, e.g. [`codes::UNAUTHENTICATED`].
    pub code: &'static str,
    /// Sent to the client: say what is wrong, never why internally.
    pub message: String,
    /// Extra headers of the HTTP refusal, e.g. `Retry-After` on 429.
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl ContextError {
    /// Missing, malformed or expired credentials (HTTP 401).
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self { code: codes::UNAUTHENTICATED, message: message.into(), headers: Vec::new() }
    }

    /// Valid credentials that may not use the API (HTTP 403).
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self { code: codes::FORBIDDEN, message: message.into(), headers: Vec::new() }
    }

    /// The HTTP status for this error: the request failed at the HTTP level
    /// (before any GraphQL), so the status says so under either response
    /// media type, as the GraphQL-over-HTTP spec allows.
    #[must_use]
    pub fn http_status(&self) -> axum::http::StatusCode {
        use axum::http::StatusCode;
        match self.code {
            codes::UNAUTHENTICATED => StatusCode::UNAUTHORIZED,
            codes::FORBIDDEN => StatusCode::FORBIDDEN,
            codes::RATE_LIMITED => StatusCode::TOO_MANY_REQUESTS,
            codes::AUTH_UNAVAILABLE => StatusCode::SERVICE_UNAVAILABLE,
            codes::INTERNAL_SERVER_ERROR => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// Limits and knobs of the transport. `Default` gives production values.
#[derive(Clone)]
pub struct TransportConfig {
    /// Largest HTTP request body, and largest websocket message, accepted
    /// (413 / close 1009 beyond). Default 1 MiB.
    pub max_body_bytes: usize,
    /// Largest GraphQL document (`query`) accepted, so parsing and
    /// validation stay cheap. Default 64 KiB.
    pub max_query_bytes: usize,
    /// Time for one HTTP request, body and execution included; past it the
    /// client gets 408 (still sending) or 503 `TIMEOUT` (executing). Default
    /// 30 s.
    pub request_timeout: Duration,
    /// Time a websocket has to send `connection_init` and be authenticated;
    /// past it the socket closes with 4408. Default 10 s.
    pub connection_init_timeout: Duration,
    /// Interval of keep-alives on idle sockets (`ka` for legacy `graphql-ws`,
    /// a websocket ping otherwise) so proxies keep them open. Default 15 s.
    pub keep_alive_interval: Duration,
    /// Time one websocket write may take; a client that stops reading is
    /// disconnected rather than holding its operations forever. Default 30 s.
    pub websocket_write_timeout: Duration,
    /// Operations one websocket may run at once; more are refused with an
    /// error for that operation. Default 100.
    pub max_operations_per_connection: usize,
    /// Fires to shut down: every open socket closes with 1001 (Going Away).
    pub shutdown: CancellationToken,
    /// Tracks the socket tasks, so shutdown can wait for them:
    /// `shutdown.cancel(); sockets.close(); sockets.wait().await`.
    pub sockets: TaskTracker,
    /// Serve the GraphiQL IDE at `/graphiql`. Default true.
    pub graphiql: bool,
    /// Path of `/graphql` as browsers see it (when the router is nested or
    /// behind a prefix), for GraphiQL. Default `/graphql`.
    pub public_graphql_path: String,
    /// The browser origins allowed to call `/graphql` (and load GraphiQL)
    /// across origins. Default none: no CORS headers at all.
    pub cors: CorsOrigins,
}

impl Default for TransportConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 1024 * 1024,
            max_query_bytes: 64 * 1024,
            request_timeout: Duration::from_secs(30),
            connection_init_timeout: Duration::from_secs(10),
            keep_alive_interval: Duration::from_secs(15),
            websocket_write_timeout: Duration::from_secs(30),
            max_operations_per_connection: 100,
            shutdown: CancellationToken::new(),
            sockets: TaskTracker::new(),
            graphiql: true,
            public_graphql_path: "/graphql".to_owned(),
            cors: CorsOrigins::None,
        }
    }
}

impl fmt::Debug for TransportConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransportConfig")
            .field("max_body_bytes", &self.max_body_bytes)
            .field("max_query_bytes", &self.max_query_bytes)
            .field("request_timeout", &self.request_timeout)
            .field("connection_init_timeout", &self.connection_init_timeout)
            .field("keep_alive_interval", &self.keep_alive_interval)
            .field("websocket_write_timeout", &self.websocket_write_timeout)
            .field("max_operations_per_connection", &self.max_operations_per_connection)
            .field("shutdown", &self.shutdown.is_cancelled())
            .field("open_sockets", &self.sockets.len())
            .field("graphiql", &self.graphiql)
            .field("public_graphql_path", &self.public_graphql_path)
            .field("cors", &self.cors)
            .finish()
    }
}

/// `now + duration`, saturating instead of overflowing on absurd durations.
fn deadline_after(duration: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(duration).or_else(|| now.checked_add(Duration::from_secs(60 * 60 * 24 * 365))).unwrap_or(now)
}

/// What every handler shares.
struct Shared<E> {
    executor: E,
    context: Arc<dyn RequestContext>,
    config: TransportConfig,
}

/// The router of the GraphQL endpoint: `/graphql` (POST, GET, websocket
/// upgrade) and, unless disabled, `/graphiql` with its assets; with CORS
/// for the configured origins.
pub fn router<E: Executor>(executor: E, context: Arc<dyn RequestContext>, config: TransportConfig) -> Router {
    let graphiql = config.graphiql.then(|| graphiql::router(&config.public_graphql_path));
    let cors = config.cors.clone();
    let shared = Arc::new(Shared { executor, context, config });
    let mut router = Router::new().route("/graphql", any(http::graphql::<E>)).with_state(shared);
    if let Some(ide) = graphiql {
        router = router.merge(ide);
    }
    cors::apply(router, &cors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absurd_durations_do_not_overflow() {
        assert!(deadline_after(Duration::MAX) > Instant::now());
    }
}
