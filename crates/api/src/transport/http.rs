//! The GraphQL-over-HTTP handler of `/graphql`, after the GraphQL-over-HTTP
//! spec (<https://graphql.github.io/graphql-over-http/draft/>).
//!
//! One request goes through, in order: the method (GET or POST, else 405; a
//! websocket upgrade goes to [`super::ws`]); `Accept` (else 406); for POST
//! the `Content-Type` (`application/json`, else 415) and the declared length
//! (else 413); the [`RequestContext`](super::RequestContext) (401/403);
//! the body within `max_body_bytes` (413) and the request timeout (408); the
//! parameters (400); the document's size (413, 414 for GET), parse and
//! selected operation — a mutation over GET is 405 with `Allow: POST`, a
//! subscription is a request error (sockets serve those); then execution
//! within what is left of the timeout (503 `TIMEOUT` beyond).
//!
//! Status codes of GraphQL responses follow the negotiated media type:
//! under `application/graphql-response+json` a request error (no `data`) is
//! 400 and an executed operation 200 even with field errors; under the legacy
//! `application/json` both are 200. Transport failures (the list above) use
//! their HTTP status under either type, with a GraphQL-shaped JSON body whose
//! error carries `extensions.code` (see [`super::codes`]).

use std::sync::Arc;

use async_graphql::{Executor, parser::types::OperationType};
use axum::{
    body::Body as HttpBody,
    extract::{Query, Request, State},
    http::{
        HeaderMap, HeaderValue, Method, StatusCode,
        header::{self, HeaderName},
        request::Parts,
    },
    response::{IntoResponse, Response},
};
use futures::StreamExt;
use tokio::time::{Instant, timeout_at};
use tracing::{Instrument, field};

use super::{
    Shared,
    body::{self, Body, Outcome},
    codes, deadline_after,
    negotiate::{self, MediaType},
    params::{self, Refused},
    ws,
};

/// Entry point of `/graphql` for every method.
pub(super) async fn graphql<E: Executor>(State(shared): State<Arc<Shared<E>>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    if ws::is_upgrade(&parts) {
        return ws::upgrade(shared, parts).await;
    }
    let span = tracing::info_span!(
        "graphql.http",
        http.method = %parts.method,
        graphql.operation.name = field::Empty,
        graphql.operation.type = field::Empty,
        http.status = field::Empty,
    );
    let response = handle(&shared, parts, body).instrument(span.clone()).await;
    span.record("http.status", response.status().as_u16());
    let status = response.status();
    span.in_scope(|| {
        if status.is_server_error() {
            tracing::warn!(status = status.as_u16(), "GraphQL request failed");
        } else {
            tracing::debug!(status = status.as_u16(), "GraphQL request served");
        }
    });
    response
}

/// A failure of the transport, answered with a JSON error body.
struct Failure {
    status: StatusCode,
    code: &'static str,
    message: String,
    /// Extra headers: `Allow` on 405, `WWW-Authenticate` on 401,
    /// `Retry-After` and the RateLimit fields on 429.
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl Failure {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), headers: Vec::new() }
    }

    fn header(mut self, name: HeaderName, value: &'static str) -> Self {
        self.headers.push((name, HeaderValue::from_static(value)));
        self
    }

    fn into_response(self, media: MediaType) -> Response {
        let mut response = json_response(self.status, media, body::error_json(self.code, self.message));
        response.headers_mut().extend(self.headers);
        response
    }

    fn timeout(config: &super::TransportConfig) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            codes::TIMEOUT,
            format!(
                "the request did not finish within {} s; a mutation may or may not have taken effect",
                config.request_timeout.as_secs_f32()
            ),
        )
    }
}

fn json_response(status: StatusCode, media: MediaType, bytes: Vec<u8>) -> Response {
    let mut response = (status, bytes).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, media.content_type());
    // The body depends on Accept: caches must key on it.
    headers.insert(header::VARY, HeaderValue::from_static("accept"));
    response
}

async fn handle<E: Executor>(shared: &Shared<E>, parts: Parts, body: HttpBody) -> Response {
    let config = &shared.config;
    let deadline = deadline_after(config.request_timeout);

    let method = parts.method.clone();
    if method != Method::GET && method != Method::POST {
        return Failure::new(
            StatusCode::METHOD_NOT_ALLOWED,
            codes::METHOD_NOT_ALLOWED,
            format!("method {method} is not allowed: use POST, or GET for queries"),
        )
        .header(header::ALLOW, "GET, POST")
        .into_response(MediaType::Json);
    }
    let Some(media) = negotiate::negotiate(parts.headers.get_all(header::ACCEPT).iter()) else {
        return Failure::new(
            StatusCode::NOT_ACCEPTABLE,
            codes::NOT_ACCEPTABLE,
            "the Accept header admits no media type served here: accept \
             application/graphql-response+json or application/json",
        )
        .into_response(MediaType::Json);
    };
    match respond(shared, &parts, body, media, deadline).await {
        Ok(response) => response,
        Err(failure) => failure.into_response(media),
    }
}

async fn respond<E: Executor>(
    shared: &Shared<E>,
    parts: &Parts,
    body: HttpBody,
    media: MediaType,
    deadline: Instant,
) -> Result<Response, Failure> {
    let config = &shared.config;
    let is_get = parts.method == Method::GET;
    if !is_get {
        negotiate::check_content_type(parts.headers.get(header::CONTENT_TYPE)).map_err(|error| {
            Failure::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, codes::UNSUPPORTED_MEDIA_TYPE, error.message())
        })?;
        if declared_length(&parts.headers).is_some_and(|length| length > config.max_body_bytes) {
            return Err(too_large(config.max_body_bytes));
        }
    }

    // Credentials first: an unauthenticated client does not get its body read.
    let data = match timeout_at(deadline, shared.context.http(&parts.headers)).await {
        Err(_) => return Err(Failure::timeout(config)),
        Ok(Err(error)) => {
            let status = error.http_status();
            let mut failure = Failure::new(status, error.code, error.message);
            failure.headers = error.headers;
            if status == StatusCode::UNAUTHORIZED {
                failure = failure.header(header::WWW_AUTHENTICATE, "Bearer");
            }
            return Err(failure);
        }
        Ok(Ok(data)) => data,
    };

    let request = if is_get {
        let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            .map_err(|error| Failure::new(StatusCode::BAD_REQUEST, codes::BAD_REQUEST, error.body_text()))?;
        params::from_query_pairs(pairs)
    } else {
        let bytes = match timeout_at(deadline, read_body(body, config.max_body_bytes)).await {
            Err(_) => {
                return Err(Failure::new(
                    StatusCode::REQUEST_TIMEOUT,
                    codes::TIMEOUT,
                    "the request body did not arrive in time",
                ));
            }
            Ok(result) => result?,
        };
        if bytes.is_empty() {
            return Err(bad_request("the request body is empty: send a JSON object with `query`"));
        }
        let json = serde_json::from_slice::<serde_json::Value>(&bytes)
            .map_err(|error| bad_request(format!("the request body is not valid JSON: {error}")))?;
        params::from_json(json)
    }
    .map_err(|error| bad_request(error.to_string()))?;

    let prepared = match params::prepare(request, config.max_query_bytes) {
        Ok(prepared) => prepared,
        Err(Refused::QueryTooLarge { limit }) => {
            let status = if is_get { StatusCode::URI_TOO_LONG } else { StatusCode::PAYLOAD_TOO_LARGE };
            return Err(Failure::new(
                status,
                codes::PAYLOAD_TOO_LARGE,
                format!("the GraphQL document is longer than {limit} bytes"),
            ));
        }
        Err(Refused::RequestError(error)) => {
            return Ok(request_errors(media, &[error]));
        }
    };
    let span = tracing::Span::current();
    if let Some(name) = &prepared.operation_name {
        span.record("graphql.operation.name", name.as_str());
    }
    if let Some(kind) = prepared.operation_type {
        span.record("graphql.operation.type", kind.to_string().as_str());
    }
    match prepared.operation_type {
        Some(OperationType::Mutation) if is_get => {
            return Err(Failure::new(
                StatusCode::METHOD_NOT_ALLOWED,
                codes::OPERATION_NOT_SUPPORTED,
                "mutations are not allowed over GET: use POST",
            )
            .header(header::ALLOW, "POST"));
        }
        Some(OperationType::Subscription) => {
            return Ok(request_errors(
                media,
                &[body::error(
                    codes::OPERATION_NOT_SUPPORTED,
                    "subscriptions are not served over plain HTTP: open a websocket on this \
                     endpoint with the graphql-transport-ws subprotocol",
                )],
            ));
        }
        _ => {}
    }

    let mut request = prepared.request;
    request.data = data.data;
    let mut response =
        timeout_at(deadline, shared.executor.execute(request)).await.map_err(|_| Failure::timeout(config))?;
    let outcome = body::classify(&mut response);
    let status = match (outcome, media) {
        (Outcome::RequestError, MediaType::GraphQlResponse) => StatusCode::BAD_REQUEST,
        _ => StatusCode::OK,
    };
    let mut http = json_response(status, media, body::to_json(&Body::of(&response, outcome)));
    let headers = http.headers_mut();
    for (name, value) in &response.http_headers {
        // Resolvers may add headers; they may not change the framing.
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            headers.append(name.clone(), value.clone());
        }
    }
    if is_get
        && response.errors.is_empty()
        && let Some(value) = response.cache_control.value().and_then(|value| HeaderValue::from_str(&value).ok())
    {
        headers.insert(header::CACHE_CONTROL, value);
    }
    Ok(http)
}

/// Request errors raised before execution, in the status the media type asks.
fn request_errors(media: MediaType, errors: &[async_graphql::ServerError]) -> Response {
    let status = match media {
        MediaType::GraphQlResponse => StatusCode::BAD_REQUEST,
        MediaType::Json => StatusCode::OK,
    };
    json_response(status, media, body::to_json(&Body::errors(errors)))
}

fn bad_request(message: impl Into<String>) -> Failure {
    Failure::new(StatusCode::BAD_REQUEST, codes::BAD_REQUEST, message)
}

fn too_large(limit: usize) -> Failure {
    Failure::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        codes::PAYLOAD_TOO_LARGE,
        format!("the request body is larger than {limit} bytes"),
    )
}

fn declared_length(headers: &HeaderMap) -> Option<usize> {
    headers.get(header::CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

/// Reads a body of at most `limit` bytes, stopping as soon as it is over
/// (a declared length can lie, or be absent with chunked encoding).
async fn read_body(body: HttpBody, limit: usize) -> Result<Vec<u8>, Failure> {
    let mut stream = body.into_data_stream();
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|error| bad_request(format!("the request body could not be read: {error}")))?;
        if bytes.len() + chunk.len() > limit {
            return Err(too_large(limit));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}
