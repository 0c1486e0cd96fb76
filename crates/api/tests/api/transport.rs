//! Transport tests: a toy schema behind the real router on 127.0.0.1:0,
//! driven by a real HTTP client (reqwest), a real websocket client
//! (tokio-tungstenite), and the graphql-http conformance audit (node).
//!
//! The toy [`ToyContext`] reads `Authorization: Bearer <token>` (HTTP) and
//! `{"token": …}` (connection_init): `good` is alice, `short` is alice for
//! 1 s, `expired` is already expired, `bad` is refused as UNAUTHENTICATED,
//! `forbidden` as FORBIDDEN, `down` as INTERNAL_SERVER_ERROR, and no token is
//! anonymous.

use std::{
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use async_graphql::{Context, Data, Object, Schema, Subscription};
use axum::http::HeaderMap;
use futures::{SinkExt, Stream, StreamExt, future::BoxFuture};
use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};
use tandem_api::transport::{ContextError, RequestContext, RequestData, TransportConfig, codes, router};
use tandem_testkit::ws::{
    self, LEGACY_WS, TRANSPORT_WS, Ws, expect_close, next_frame, recv, send, send_raw, subscribe,
};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};

// ---- the toy schema ----

/// The caller, as the toy context sees it.
struct Principal(String);

/// Tells operations on one socket apart: `operation_data` numbers them.
struct OperationNumber(u64);

struct Query;

#[Object]
impl Query {
    async fn hello(&self) -> &str {
        "world"
    }

    async fn whoami(&self, ctx: &Context<'_>) -> Option<String> {
        ctx.data_opt::<Principal>().map(|p| p.0.clone())
    }

    async fn operation_number(&self, ctx: &Context<'_>) -> Option<u64> {
        ctx.data_opt::<OperationNumber>().map(|n| n.0)
    }

    async fn echo(&self, value: String) -> String {
        value
    }

    async fn slow(&self, millis: u64) -> bool {
        tokio::time::sleep(Duration::from_millis(millis)).await;
        true
    }

    async fn boom(&self) -> async_graphql::Result<Option<i32>> {
        Err("boom".into())
    }
}

struct Mutation;

#[Object]
impl Mutation {
    async fn increment(&self, ctx: &Context<'_>) -> u64 {
        ctx.data_unchecked::<AtomicU64>().fetch_add(1, Ordering::SeqCst) + 1
    }
}

struct SubscriptionRoot;

#[Subscription]
impl SubscriptionRoot {
    async fn ticks(&self, count: u32) -> impl Stream<Item = u32> {
        futures::stream::iter(1..=count).then(|n| async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            n
        })
    }

    async fn forever(&self) -> impl Stream<Item = u32> {
        futures::stream::iter(1..).then(|n| async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            n
        })
    }

    async fn whoami(&self, ctx: &Context<'_>) -> impl Stream<Item = String> {
        let who = ctx.data_opt::<Principal>().map_or_else(|| "anonymous".to_owned(), |p| p.0.clone());
        futures::stream::once(async move { who })
    }
}

type ToySchema = Schema<Query, Mutation, SubscriptionRoot>;

fn schema() -> ToySchema {
    Schema::build(Query, Mutation, SubscriptionRoot).data(AtomicU64::new(0)).finish()
}

struct ToyContext {
    operations: AtomicU64,
}

impl ToyContext {
    fn data(token: Option<&str>) -> Result<RequestData, ContextError> {
        let mut data = Data::default();
        match token {
            None => return Ok(RequestData::new(data)),
            Some("good") => data.insert(Principal("alice".to_owned())),
            Some("short") => {
                data.insert(Principal("alice".to_owned()));
                let expires = chrono::Utc::now() + chrono::Duration::milliseconds(1000);
                return Ok(RequestData::new(data).expires_at(expires));
            }
            Some("expired") => {
                data.insert(Principal("alice".to_owned()));
                let expired = chrono::Utc::now() - chrono::Duration::seconds(1);
                return Ok(RequestData::new(data).expires_at(expired));
            }
            Some("forbidden") => return Err(ContextError::forbidden("not allowed here")),
            Some("down") => {
                return Err(ContextError {
                    code: codes::INTERNAL_SERVER_ERROR,
                    message: "the token store is down".to_owned(),
                    headers: Vec::new(),
                });
            }
            Some(_) => return Err(ContextError::unauthenticated("invalid token")),
        }
        Ok(RequestData::new(data))
    }
}

impl RequestContext for ToyContext {
    fn http<'a>(&'a self, headers: &'a HeaderMap) -> BoxFuture<'a, Result<RequestData, ContextError>> {
        Box::pin(async move {
            let token = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "));
            Self::data(token)
        })
    }

    fn websocket(&self, init_payload: Option<Value>) -> BoxFuture<'_, Result<RequestData, ContextError>> {
        Box::pin(async move {
            let token = init_payload.as_ref().and_then(|p| p.get("token")).and_then(Value::as_str);
            Self::data(token)
        })
    }

    fn operation_data(&self, _connection: &Data) -> Data {
        let mut data = Data::default();
        data.insert(OperationNumber(self.operations.fetch_add(1, Ordering::SeqCst)));
        data
    }
}

// ---- the server ----

struct TestServer {
    /// `http://127.0.0.1:<port>`.
    base: String,
    config: TransportConfig,
}

impl TestServer {
    fn graphql(&self) -> String {
        format!("{}/graphql", self.base)
    }

    fn ws_url(&self) -> String {
        format!("{}/graphql", self.base.replacen("http", "ws", 1))
    }
}

async fn serve(config: TransportConfig) -> TestServer {
    let context = Arc::new(ToyContext { operations: AtomicU64::new(0) });
    let app = router(schema(), context, config.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let shutdown = config.shutdown.clone();
    tokio::spawn(async move {
        axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await.unwrap();
    });
    TestServer { base: format!("http://{address}"), config }
}

async fn default_server() -> TestServer {
    serve(TransportConfig::default()).await
}

// ---- HTTP helpers ----

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";

struct Reply {
    status: StatusCode,
    headers: header::HeaderMap,
    body: Value,
}

impl Reply {
    fn content_type(&self) -> &str {
        self.headers.get(header::CONTENT_TYPE).map_or("", |v| v.to_str().unwrap())
    }

    fn code(&self) -> &str {
        self.body["errors"][0]["extensions"]["code"].as_str().unwrap_or("")
    }
}

async fn reply(request: reqwest::RequestBuilder) -> Reply {
    let response = request.send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    let body =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("body is not JSON ({e}): {text:?} (status {status})"));
    Reply { status, headers, body }
}

async fn post(server: &TestServer, accept: Option<&str>, body: Value) -> Reply {
    let mut request = reqwest::Client::new()
        .post(server.graphql())
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.to_string());
    if let Some(accept) = accept {
        request = request.header(header::ACCEPT, accept);
    }
    reply(request).await
}

async fn get(server: &TestServer, accept: Option<&str>, params: &[(&str, &str)]) -> Reply {
    let url = reqwest::Url::parse_with_params(&server.graphql(), params).unwrap();
    let mut request = reqwest::Client::new().get(url);
    if let Some(accept) = accept {
        request = request.header(header::ACCEPT, accept);
    }
    reply(request).await
}

// ---- GraphQL over HTTP ----

#[tokio::test]
async fn post_executes_a_query_as_graphql_response_json() {
    let server = default_server().await;
    let reply = post(&server, Some(GRAPHQL_RESPONSE), json!({"query": "{ hello }"})).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.content_type(), "application/graphql-response+json; charset=utf-8");
    assert_eq!(reply.body, json!({"data": {"hello": "world"}}));
    assert_eq!(reply.headers.get(header::VARY).unwrap(), "accept");
}

#[tokio::test]
async fn accept_is_negotiated() {
    let server = default_server().await;
    let query = json!({"query": "{ hello }"});
    for (accept, expected) in [
        (None, "application/json; charset=utf-8"),
        (Some("*/*"), "application/json; charset=utf-8"),
        (Some("application/json"), "application/json; charset=utf-8"),
        (
            Some("application/graphql-response+json, application/json;q=0.9"),
            "application/graphql-response+json; charset=utf-8",
        ),
        (Some("application/graphql-response+json;q=0.5, application/json"), "application/json; charset=utf-8"),
    ] {
        let reply = post(&server, accept, query.clone()).await;
        assert_eq!(reply.status, StatusCode::OK, "{accept:?}");
        assert_eq!(reply.content_type(), expected, "{accept:?}");
    }
}

#[tokio::test]
async fn unacceptable_accept_is_406() {
    let server = default_server().await;
    for accept in ["text/html", "application/json;q=0, application/graphql-response+json;q=0"] {
        let reply = post(&server, Some(accept), json!({"query": "{ hello }"})).await;
        assert_eq!(reply.status, StatusCode::NOT_ACCEPTABLE, "{accept}");
        assert_eq!(reply.code(), "NOT_ACCEPTABLE");
        assert!(reply.content_type().starts_with("application/json"));
    }
}

#[tokio::test]
async fn malformed_post_bodies_are_400() {
    let server = default_server().await;
    let client = reqwest::Client::new();
    let cases: [(&str, &str); 12] = [
        ("{ \"not a JSON", "not valid JSON"),
        ("", "empty"),
        ("\"{ hello }\"", "JSON object"),
        ("[{\"query\": \"{ hello }\"}]", "batched"),
        ("{}", "`query`"),
        ("{\"notquery\": \"{ hello }\"}", "`query`"),
        ("{\"query\": 1}", "`query`"),
        ("{\"query\": [\"{ hello }\"]}", "`query`"),
        ("{\"query\": \"{ hello }\", \"operationName\": 1}", "`operationName`"),
        ("{\"query\": \"{ hello }\", \"variables\": \"{}\"}", "`variables`"),
        ("{\"query\": \"{ hello }\", \"variables\": [1]}", "`variables`"),
        ("{\"query\": \"{ hello }\", \"extensions\": false}", "`extensions`"),
    ];
    for accept in [GRAPHQL_RESPONSE, "application/json"] {
        for (body, says) in cases {
            let reply = reply(
                client
                    .post(server.graphql())
                    .header(header::CONTENT_TYPE, "application/json")
                    .header(header::ACCEPT, accept)
                    .body(body),
            )
            .await;
            assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(reply.code(), "BAD_REQUEST", "{body}");
            let message = reply.body["errors"][0]["message"].as_str().unwrap();
            assert!(message.contains(says), "{body}: {message}");
            assert!(reply.body.get("data").is_none(), "{body}");
        }
    }
}

#[tokio::test]
async fn null_optional_parameters_are_allowed() {
    let server = default_server().await;
    let reply = post(
        &server,
        Some(GRAPHQL_RESPONSE),
        json!({"query": "{ hello }", "operationName": null, "variables": null, "extensions": null}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, json!({"data": {"hello": "world"}}));
}

#[tokio::test]
async fn content_type_is_required_and_must_be_json() {
    let server = default_server().await;
    let client = reqwest::Client::new();
    let body = json!({"query": "{ hello }"}).to_string();

    let missing = reply(client.post(server.graphql()).body(body.clone())).await;
    assert_eq!(missing.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(missing.code(), "UNSUPPORTED_MEDIA_TYPE");
    assert!(missing.body["errors"][0]["message"].as_str().unwrap().contains("Content-Type header is missing"));

    for content_type in ["text/plain", "application/json; charset=latin1", "application/graphql"] {
        let refused =
            reply(client.post(server.graphql()).header(header::CONTENT_TYPE, content_type).body(body.clone())).await;
        assert_eq!(refused.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{content_type}");
    }

    let utf8 = reply(
        client
            .post(server.graphql())
            .header(header::CONTENT_TYPE, "application/json; charset=utf-8")
            .body(json!({"query": "{ echo(value: \"Run🏃Swim🏊\") }"}).to_string()),
    )
    .await;
    assert_eq!(utf8.status, StatusCode::OK);
    assert_eq!(utf8.body["data"]["echo"], "Run🏃Swim🏊");
}

#[tokio::test]
async fn get_executes_queries_with_json_variables() {
    let server = default_server().await;
    let reply = get(
        &server,
        Some(GRAPHQL_RESPONSE),
        &[
            ("query", "query Echo($v: String!) { echo(value: $v) }"),
            ("variables", r#"{"v": "hi"}"#),
            ("operationName", "Echo"),
        ],
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, json!({"data": {"echo": "hi"}}));

    let missing = get(&server, None, &[]).await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    let bad_variables = get(&server, None, &[("query", "{ hello }"), ("variables", "{")]).await;
    assert_eq!(bad_variables.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn mutations_over_get_are_405_and_do_not_run() {
    let server = default_server().await;
    for accept in [Some(GRAPHQL_RESPONSE), None] {
        let reply = get(&server, accept, &[("query", "mutation { increment }")]).await;
        assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(reply.headers.get(header::ALLOW).unwrap(), "POST");
        assert_eq!(reply.code(), "OPERATION_NOT_SUPPORTED");
    }
    let named =
        get(&server, None, &[("query", "query Q { hello } mutation M { increment }"), ("operationName", "M")]).await;
    assert_eq!(named.status, StatusCode::METHOD_NOT_ALLOWED);
    // The query of the same document is fine over GET.
    let query =
        get(&server, None, &[("query", "query Q { hello } mutation M { increment }"), ("operationName", "Q")]).await;
    assert_eq!(query.status, StatusCode::OK);

    // None of the refused mutations ran: the first POSTed one counts 1.
    let posted = post(&server, None, json!({"query": "mutation { increment }"})).await;
    assert_eq!(posted.body, json!({"data": {"increment": 1}}));
}

#[tokio::test]
async fn other_methods_are_405() {
    let server = default_server().await;
    let reply = reply(reqwest::Client::new().request(Method::PUT, server.graphql())).await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.headers.get(header::ALLOW).unwrap(), "GET, POST");
}

#[tokio::test]
async fn subscriptions_over_http_are_refused() {
    let server = default_server().await;
    let query = json!({"query": "subscription { ticks(count: 1) }"});
    let new = post(&server, Some(GRAPHQL_RESPONSE), query.clone()).await;
    assert_eq!(new.status, StatusCode::BAD_REQUEST);
    assert_eq!(new.code(), "OPERATION_NOT_SUPPORTED");
    assert!(new.body.get("data").is_none());
    let legacy = post(&server, Some("application/json"), query).await;
    assert_eq!(legacy.status, StatusCode::OK);
    assert_eq!(legacy.code(), "OPERATION_NOT_SUPPORTED");
}

#[tokio::test]
async fn request_errors_are_400_without_data_under_graphql_response_json() {
    let server = default_server().await;
    let cases = [
        (json!({"query": "{"}), "GRAPHQL_PARSE_FAILED"),
        (json!({"query": "{ nope }"}), "GRAPHQL_VALIDATION_FAILED"),
        (json!({"query": "query A { hello } query B { hello }"}), "GRAPHQL_VALIDATION_FAILED"),
        (json!({"query": "query E($v: String!) { echo(value: $v) }", "variables": {"v": null}}), "BAD_USER_INPUT"),
    ];
    for (body, code) in cases {
        let new = post(&server, Some(GRAPHQL_RESPONSE), body.clone()).await;
        assert_eq!(new.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(new.code(), code, "{body}");
        assert!(new.body.get("data").is_none(), "{body}: {}", new.body);

        let legacy = post(&server, Some("application/json"), body.clone()).await;
        assert_eq!(legacy.status, StatusCode::OK, "{body}");
        assert_eq!(legacy.code(), code, "{body}");
        assert!(legacy.body.get("data").is_none(), "{body}");
    }
}

#[tokio::test]
async fn field_errors_are_200_with_data() {
    let server = default_server().await;
    for accept in [GRAPHQL_RESPONSE, "application/json"] {
        let reply = post(&server, Some(accept), json!({"query": "{ hello boom }"})).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.body["data"]["hello"], "world");
        assert_eq!(reply.body["errors"][0]["path"], json!(["boom"]));
    }
}

#[tokio::test]
async fn oversized_bodies_and_documents_are_413() {
    let server =
        serve(TransportConfig { max_body_bytes: 1024, max_query_bytes: 100, ..TransportConfig::default() }).await;
    let big = format!("{{ hello {} }}", " ".repeat(2000));
    let body = post(&server, None, json!({"query": big})).await;
    assert_eq!(body.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body.code(), "PAYLOAD_TOO_LARGE");

    let long = format!("{{ hello {} }}", " ".repeat(200));
    let document = post(&server, None, json!({"query": long})).await;
    assert_eq!(document.status, StatusCode::PAYLOAD_TOO_LARGE);
    let over_get = get(&server, None, &[("query", long.as_str())]).await;
    assert_eq!(over_get.status, StatusCode::URI_TOO_LONG);
}

#[tokio::test]
async fn slow_requests_time_out_with_503() {
    let server =
        serve(TransportConfig { request_timeout: Duration::from_millis(500), ..TransportConfig::default() }).await;
    let reply = post(&server, Some(GRAPHQL_RESPONSE), json!({"query": "{ slow(millis: 5000) }"})).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.code(), "TIMEOUT");
    assert!(reply.body.get("data").is_none());
}

#[tokio::test]
async fn request_context_errors_use_http_statuses() {
    let server = default_server().await;
    let client = reqwest::Client::new();
    let send = |token: &'static str| {
        client
            .post(server.graphql())
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, GRAPHQL_RESPONSE)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(json!({"query": "{ whoami }"}).to_string())
    };
    let unauthenticated = reply(send("bad")).await;
    assert_eq!(unauthenticated.status, StatusCode::UNAUTHORIZED);
    assert_eq!(unauthenticated.code(), "UNAUTHENTICATED");
    assert_eq!(unauthenticated.headers.get(header::WWW_AUTHENTICATE).unwrap(), "Bearer");
    let forbidden = reply(send("forbidden")).await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
    assert_eq!(forbidden.code(), "FORBIDDEN");
    let down = reply(send("down")).await;
    assert_eq!(down.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(down.code(), "INTERNAL_SERVER_ERROR");

    // The request's data reaches the resolvers.
    let alice = reply(send("good")).await;
    assert_eq!(alice.body, json!({"data": {"whoami": "alice"}}));
    let anonymous = post(&server, None, json!({"query": "{ whoami }"})).await;
    assert_eq!(anonymous.body, json!({"data": {"whoami": null}}));
}

#[tokio::test]
async fn graphiql_is_served_with_its_assets_from_the_server_itself() {
    let server = default_server().await;
    let response = reqwest::get(format!("{}/graphiql", server.base)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let csp = response.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap().to_owned();
    assert!(csp.contains("script-src 'self'") && csp.contains("connect-src 'self'"), "{csp}");
    assert!(!csp.contains("unsafe-eval"), "{csp}");
    assert!(response.headers()[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/html"));
    let page = response.text().await.unwrap();
    assert!(page.contains(r#"{"subscriptionUrl":"/graphql","url":"/graphql"}"#), "{page}");
    // Every script and stylesheet is one of the server's own paths.
    let links: Vec<&str> = page.split(['"']).filter(|part| part.starts_with("/graphiql/assets/")).collect();
    assert_eq!(links.len(), 6, "{page}");
    assert!(!page.contains("://"), "nothing is loaded from elsewhere: {page}");

    let client = reqwest::Client::new();
    for (link, content_type) in
        links.iter().map(|l| (*l, if l.contains(".css") { "text/css" } else { "text/javascript" }))
    {
        let url = format!("{}{link}", server.base);
        let asset = client.get(&url).send().await.unwrap();
        assert_eq!(asset.status(), StatusCode::OK, "{link}");
        assert!(asset.headers()[header::CONTENT_TYPE].to_str().unwrap().starts_with(content_type), "{link}");
        assert_eq!(asset.headers()[header::CACHE_CONTROL], "public, max-age=31536000, immutable", "{link}");
        assert_eq!(asset.headers()["x-content-type-options"], "nosniff");
        let etag = asset.headers()[header::ETAG].clone();
        assert!(!asset.bytes().await.unwrap().is_empty());
        // Revalidation: the same ETag is 304 without a body.
        let again = client.get(&url).header(header::IF_NONE_MATCH, etag.clone()).send().await.unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{link}");
        assert_eq!(again.headers()[header::ETAG], etag);
        assert!(again.bytes().await.unwrap().is_empty());
        // Without the current version the asset must be revalidated.
        let unversioned = client.get(url.split('?').next().unwrap()).send().await.unwrap();
        assert_eq!(unversioned.headers()[header::CACHE_CONTROL], "no-cache", "{link}");
        assert_eq!(unversioned.headers()[header::ETAG], etag);
    }
    let graphiql = client.get(format!("{}/graphiql/assets/graphiql.min.js", server.base)).send().await.unwrap();
    assert!(graphiql.text().await.unwrap().contains("GraphiQL"));
    let missing = client.get(format!("{}/graphiql/assets/nope.js", server.base)).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn graphiql_can_be_turned_off() {
    let server = serve(TransportConfig { graphiql: false, ..TransportConfig::default() }).await;
    for path in ["/graphiql", "/graphiql/assets/graphiql.min.js"] {
        let response = reqwest::get(format!("{}{path}", server.base)).await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
    }
}

// ---- CORS ----

const APP: &str = "https://app.example.com";

async fn cors_server(origins: &str) -> TestServer {
    serve(TransportConfig { cors: origins.parse().unwrap(), ..TransportConfig::default() }).await
}

/// A browser's preflight of a POST with a bearer token and Apollo's headers.
async fn preflight(server: &TestServer, path: &str, origin: &str) -> reqwest::Response {
    reqwest::Client::new()
        .request(Method::OPTIONS, format!("{}{path}", server.base))
        .header(header::ORIGIN, origin)
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
        .header(
            header::ACCESS_CONTROL_REQUEST_HEADERS,
            "authorization,content-type,apollographql-client-name,traceparent",
        )
        .send()
        .await
        .unwrap()
}

fn list(headers: &header::HeaderMap, name: header::HeaderName) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .flat_map(|v| v.to_str().unwrap().split(',').map(|s| s.trim().to_ascii_lowercase()).collect::<Vec<_>>())
        .collect()
}

/// A cross-origin POST as a browser sends it after the preflight.
async fn cross_origin_post(server: &TestServer, origin: &str, token: &str) -> Reply {
    reply(
        reqwest::Client::new()
            .post(server.graphql())
            .header(header::ORIGIN, origin)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(json!({"query": "{ whoami }"}).to_string()),
    )
    .await
}

#[tokio::test]
async fn without_configured_origins_there_is_no_cors() {
    let server = default_server().await;
    let response = preflight(&server, "/graphql", APP).await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(response.headers().get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
    let post = cross_origin_post(&server, APP, "good").await;
    assert_eq!(post.body, json!({"data": {"whoami": "alice"}}));
    assert!(post.headers.keys().all(|name| !name.as_str().starts_with("access-control-")), "{:?}", post.headers);
}

#[tokio::test]
async fn a_preflight_from_an_allowed_origin_gets_204_with_the_methods_and_headers() {
    let server = cors_server(&format!("http://localhost:5173, {APP}")).await;
    for path in ["/graphql", "/graphiql"] {
        let response = preflight(&server, path, APP).await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT, "{path}");
        let h = response.headers().clone();
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_ORIGIN], APP);
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");
        assert_eq!(list(&h, header::ACCESS_CONTROL_ALLOW_METHODS), ["get", "post", "options"]);
        let allowed = list(&h, header::ACCESS_CONTROL_ALLOW_HEADERS);
        for name in [
            "authorization",
            "content-type",
            "accept",
            "apollographql-client-name",
            "apollographql-client-version",
            "apollo-require-preflight",
            "x-apollo-operation-name",
            "traceparent",
            "tracestate",
        ] {
            assert!(allowed.iter().any(|a| a == name), "{name} not in {allowed:?}");
        }
        assert_eq!(h[header::ACCESS_CONTROL_MAX_AGE], "7200");
        assert!(list(&h, header::VARY).contains(&"origin".to_owned()), "{h:?}");
        assert!(response.bytes().await.unwrap().is_empty());
    }
    // The other configured origin is allowed too, and named alone.
    let other = preflight(&server, "/graphql", "http://localhost:5173").await;
    assert_eq!(other.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "http://localhost:5173");
}

#[tokio::test]
async fn the_actual_request_of_an_allowed_origin_exposes_the_headers_clients_read() {
    let server = cors_server(APP).await;
    let post = cross_origin_post(&server, APP, "good").await;
    assert_eq!(post.status, StatusCode::OK);
    assert_eq!(post.body, json!({"data": {"whoami": "alice"}}));
    assert_eq!(post.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], APP);
    assert_eq!(post.headers[header::ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");
    let exposed = list(&post.headers, header::ACCESS_CONTROL_EXPOSE_HEADERS);
    for name in [
        "retry-after",
        "ratelimit-limit",
        "ratelimit-remaining",
        "ratelimit-reset",
        "ratelimit-policy",
        "www-authenticate",
    ] {
        assert!(exposed.iter().any(|e| e == name), "{name} not in {exposed:?}");
    }
    // The transport's own `Vary: accept` is kept beside CORS's.
    let vary = list(&post.headers, header::VARY);
    assert!(vary.contains(&"accept".to_owned()) && vary.contains(&"origin".to_owned()), "{vary:?}");
    // Refusals carry the CORS headers too, so the page can read them.
    let refused = cross_origin_post(&server, APP, "bad").await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert_eq!(refused.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], APP);
    // So does a GET.
    let get = reqwest::Client::new()
        .get(format!("{}?query=%7Bhello%7D", server.graphql()))
        .header(header::ORIGIN, APP)
        .send()
        .await
        .unwrap();
    assert_eq!(get.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], APP);
}

#[tokio::test]
async fn other_origins_get_no_cors_headers() {
    let server = cors_server(APP).await;
    for origin in ["https://evil.example.com", "https://app.example.com.evil.example", "http://app.example.com", "null"]
    {
        let response = preflight(&server, "/graphql", origin).await;
        assert!(response.headers().get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none(), "{origin}");
        assert!(response.headers().get(header::ACCESS_CONTROL_ALLOW_CREDENTIALS).is_none(), "{origin}");
        assert!(list(response.headers(), header::VARY).contains(&"origin".to_owned()), "{origin}");
        let post = cross_origin_post(&server, origin, "good").await;
        assert!(post.headers.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none(), "{origin}");
    }
    // A same-origin or non-browser request has no Origin and is served as before.
    let plain = post(&server, None, json!({"query": "{ hello }"})).await;
    assert_eq!(plain.body, json!({"data": {"hello": "world"}}));
}

#[tokio::test]
async fn a_wildcard_allows_every_origin_without_credentials() {
    let server = cors_server("*").await;
    let response = preflight(&server, "/graphql", "https://anywhere.example").await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(response.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    assert!(response.headers().get(header::ACCESS_CONTROL_ALLOW_CREDENTIALS).is_none());
    // `*` in Allow-Headers would not cover Authorization: it is named.
    assert!(list(response.headers(), header::ACCESS_CONTROL_ALLOW_HEADERS).contains(&"authorization".to_owned()));
    let post = cross_origin_post(&server, "https://anywhere.example", "good").await;
    assert_eq!(post.body, json!({"data": {"whoami": "alice"}}));
    assert_eq!(post.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    assert!(post.headers.get(header::ACCESS_CONTROL_ALLOW_CREDENTIALS).is_none());
}

#[tokio::test]
async fn websockets_are_opened_from_any_origin_as_before() {
    // Browsers do not apply CORS to websockets; the token in
    // `connection_init` is what authenticates, whatever the Origin.
    let server = cors_server(APP).await;
    for origin in [APP, "https://elsewhere.example"] {
        let mut request = server.ws_url().into_client_request().unwrap();
        request.headers_mut().insert("sec-websocket-protocol", "graphql-transport-ws".parse().unwrap());
        request.headers_mut().insert("origin", origin.parse().unwrap());
        let (mut ws, response) = tokio_tungstenite::connect_async(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS, "{origin}");
        ws.send(Message::text(json!({"type": "connection_init", "payload": {"token": "good"}}).to_string()))
            .await
            .unwrap();
        let ack = ws.next().await.unwrap().unwrap();
        assert_eq!(serde_json::from_str::<Value>(ack.to_text().unwrap()).unwrap()["type"], "connection_ack");
    }
}

/// Where `conformance/` is: the workspace root holds it.
fn conformance_dir() -> Option<PathBuf> {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|dir| dir.join("conformance"))
        .find(|dir| dir.join("audit.mjs").is_file())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphql_over_http_audit_passes() {
    let Some(dir) = conformance_dir() else {
        panic!("conformance/audit.mjs not found above {}", env!("CARGO_MANIFEST_DIR"));
    };
    let node_found =
        std::process::Command::new("node").arg("--version").output().is_ok_and(|output| output.status.success());
    // CI must run the audit; a developer without Node may skip it.
    let must_run = std::env::var_os("CI").is_some();
    if !node_found {
        assert!(!must_run, "`node` is not installed");
        eprintln!("SKIPPED graphql_over_http_audit_passes: `node` is not installed");
        return;
    }
    if !dir.join("node_modules/graphql-http").is_dir() {
        assert!(!must_run, "run `npm ci --prefix conformance` first");
        eprintln!("SKIPPED graphql_over_http_audit_passes: run `npm ci --prefix {}` first", dir.display());
        return;
    }
    let server = default_server().await;
    let url = server.graphql();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node").arg(dir.join("audit.mjs")).arg(url).output().unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}");
    eprintln!("{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "the graphql-http audit reported MUST failures or SHOULD warnings:\n{stdout}");
    assert!(stdout.contains("0 MUST failed, 0 SHOULD warned"), "{stdout}");
}

// ---- websocket helpers ----

async fn connect(server: &TestServer, protocol: Option<&str>) -> Ws {
    ws::connect(&server.ws_url(), protocol).await
}

/// A socket past `connection_ack`, authenticated as `token`.
async fn acked(server: &TestServer, token: &str) -> Ws {
    ws::acked(&server.ws_url(), json!({"token": token})).await
}

// ---- graphql-transport-ws ----

#[tokio::test]
async fn ws_subscription_streams_then_completes() {
    let server = default_server().await;
    let mut ws = acked(&server, "good").await;
    send(&mut ws, subscribe("s1", "subscription { ticks(count: 3) }")).await;
    for n in 1..=3 {
        assert_eq!(recv(&mut ws).await, json!({"type": "next", "id": "s1", "payload": {"data": {"ticks": n}}}));
    }
    assert_eq!(recv(&mut ws).await, json!({"type": "complete", "id": "s1"}));
}

#[tokio::test]
async fn ws_queries_and_mutations_give_one_result_then_complete() {
    let server = default_server().await;
    let mut ws = acked(&server, "good").await;
    send(&mut ws, subscribe("q", "{ hello whoami }")).await;
    assert_eq!(
        recv(&mut ws).await,
        json!({"type": "next", "id": "q", "payload": {"data": {"hello": "world", "whoami": "alice"}}})
    );
    assert_eq!(recv(&mut ws).await, json!({"type": "complete", "id": "q"}));
    send(&mut ws, subscribe("m", "mutation { increment }")).await;
    assert_eq!(recv(&mut ws).await, json!({"type": "next", "id": "m", "payload": {"data": {"increment": 1}}}));
    assert_eq!(recv(&mut ws).await, json!({"type": "complete", "id": "m"}));
}

#[tokio::test]
async fn ws_operations_get_connection_and_operation_data() {
    let server = default_server().await;
    let mut ws = acked(&server, "good").await;
    send(&mut ws, subscribe("w", "subscription { whoami }")).await;
    assert_eq!(recv(&mut ws).await["payload"]["data"]["whoami"], "alice");
    assert_eq!(recv(&mut ws).await["type"], "complete");
    let mut numbers = Vec::new();
    for id in ["a", "b"] {
        send(&mut ws, subscribe(id, "{ operationNumber }")).await;
        numbers.push(recv(&mut ws).await["payload"]["data"]["operationNumber"].clone());
        assert_eq!(recv(&mut ws).await["type"], "complete");
    }
    assert_ne!(numbers[0], numbers[1], "each operation gets fresh data");
}

#[tokio::test]
async fn ws_ping_is_answered_with_pong_even_before_init() {
    let server = default_server().await;
    let mut ws = connect(&server, Some(TRANSPORT_WS)).await;
    send(&mut ws, json!({"type": "ping", "payload": {"at": 1}})).await;
    assert_eq!(recv(&mut ws).await, json!({"type": "pong", "payload": {"at": 1}}));
    send(&mut ws, json!({"type": "ping"})).await;
    assert_eq!(recv(&mut ws).await, json!({"type": "pong"}));
    // A pong needs no answer.
    send(&mut ws, json!({"type": "pong"})).await;
    send(&mut ws, json!({"type": "connection_init"})).await;
    assert_eq!(recv(&mut ws).await, json!({"type": "connection_ack"}));
}

#[tokio::test]
async fn ws_complete_from_the_client_stops_the_operation() {
    let server = default_server().await;
    let mut ws = acked(&server, "good").await;
    send(&mut ws, subscribe("f", "subscription { forever }")).await;
    assert_eq!(recv(&mut ws).await["type"], "next");
    send(&mut ws, json!({"type": "complete", "id": "f"})).await;
    // After the complete, the next message is the answer to this ping: any
    // result of `f` still in flight has been dropped, none follows.
    tokio::time::sleep(Duration::from_millis(200)).await;
    send(&mut ws, json!({"type": "ping"})).await;
    loop {
        let message = recv(&mut ws).await;
        if message["type"] == "pong" {
            break;
        }
        // Results sent before the complete arrived may still be queued.
        assert_eq!(message["type"], "next", "{message}");
    }
    send(&mut ws, json!({"type": "ping"})).await;
    assert_eq!(recv(&mut ws).await, json!({"type": "pong"}));
    // The id is free again.
    send(&mut ws, subscribe("f", "{ hello }")).await;
    assert_eq!(recv(&mut ws).await["payload"]["data"]["hello"], "world");
}

#[tokio::test]
async fn ws_request_errors_end_the_operation_with_error() {
    let server = default_server().await;
    let mut ws = acked(&server, "good").await;
    send(&mut ws, subscribe("v", "subscription { nope }")).await;
    let error = recv(&mut ws).await;
    assert_eq!(error["type"], "error");
    assert_eq!(error["id"], "v");
    assert_eq!(error["payload"][0]["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED");
    send(&mut ws, subscribe("p", "subscription {")).await;
    let error = recv(&mut ws).await;
    assert_eq!(error["payload"][0]["extensions"]["code"], "GRAPHQL_PARSE_FAILED");
    // No complete follows an error: the next message answers this ping.
    send(&mut ws, json!({"type": "ping"})).await;
    assert_eq!(recv(&mut ws).await, json!({"type": "pong"}));
}

#[tokio::test]
async fn ws_invalid_messages_close_with_4400() {
    let server = default_server().await;
    for text in [
        "{ not json",
        r#"{"type": "nonsense"}"#,
        r#"{"id": "1"}"#,
        r#"{"type": "subscribe", "payload": {"query": "{ hello }"}}"#,
        r#"{"type": "subscribe", "id": "", "payload": {"query": "{ hello }"}}"#,
        r#"{"type": "subscribe", "id": "1", "payload": {"query": 1}}"#,
        r#"{"type": "complete"}"#,
        r#"{"type": "next", "id": "1", "payload": {}}"#,
    ] {
        let mut ws = acked(&server, "good").await;
        send_raw(&mut ws, text).await;
        let (code, reason) = expect_close(&mut ws).await;
        assert_eq!(code, 4400, "{text}: {reason}");
        assert!(!reason.is_empty(), "{text}");
    }
    let mut ws = acked(&server, "good").await;
    ws.send(Message::binary(b"{}".to_vec())).await.unwrap();
    assert_eq!(expect_close(&mut ws).await.0, 4400);
}

#[tokio::test]
async fn ws_subscribe_before_ack_closes_with_4401() {
    let server = default_server().await;
    let mut ws = connect(&server, Some(TRANSPORT_WS)).await;
    send(&mut ws, subscribe("1", "{ hello }")).await;
    assert_eq!(expect_close(&mut ws).await, (4401, "Unauthorized".to_owned()));
}

#[tokio::test]
async fn ws_refused_init_closes_with_4403() {
    let server = default_server().await;
    for token in ["bad", "forbidden", "expired"] {
        let mut ws = connect(&server, Some(TRANSPORT_WS)).await;
        send(&mut ws, json!({"type": "connection_init", "payload": {"token": token}})).await;
        let (code, reason) = expect_close(&mut ws).await;
        assert_eq!(code, 4403, "{token}");
        assert!(reason.starts_with("Forbidden"), "{token}: {reason}");
    }
    // A failure of the server is not a refusal: 1011 tells clients to retry.
    let mut ws = connect(&server, Some(TRANSPORT_WS)).await;
    send(&mut ws, json!({"type": "connection_init", "payload": {"token": "down"}})).await;
    assert_eq!(expect_close(&mut ws).await, (1011, "Internal error".to_owned()));
}

#[tokio::test]
async fn ws_operations_per_connection_are_bounded() {
    let server = serve(TransportConfig { max_operations_per_connection: 1, ..TransportConfig::default() }).await;
    let mut ws = acked(&server, "good").await;
    send(&mut ws, subscribe("one", "subscription { forever }")).await;
    send(&mut ws, subscribe("two", "subscription { forever }")).await;
    loop {
        let message = recv(&mut ws).await;
        if message["id"] == "two" {
            assert_eq!(message["type"], "error");
            assert_eq!(message["payload"][0]["extensions"]["code"], "TOO_MANY_OPERATIONS");
            break;
        }
        assert_eq!(message["type"], "next", "{message}");
    }
    // Once the first ends, there is room again.
    send(&mut ws, json!({"type": "complete", "id": "one"})).await;
    send(&mut ws, subscribe("three", "{ hello }")).await;
    loop {
        let message = recv(&mut ws).await;
        if message["id"] == "three" {
            assert_eq!(message["payload"]["data"]["hello"], "world");
            break;
        }
    }
}

#[tokio::test]
async fn ws_without_init_closes_with_4408() {
    let server =
        serve(TransportConfig { connection_init_timeout: Duration::from_millis(200), ..TransportConfig::default() })
            .await;
    let mut ws = connect(&server, Some(TRANSPORT_WS)).await;
    assert_eq!(expect_close(&mut ws).await, (4408, "Connection initialisation timeout".to_owned()));
}

#[tokio::test]
async fn ws_duplicate_subscription_id_closes_with_4409() {
    let server = default_server().await;
    let mut ws = acked(&server, "good").await;
    send(&mut ws, subscribe("dup", "subscription { forever }")).await;
    send(&mut ws, subscribe("dup", "subscription { forever }")).await;
    loop {
        match next_frame(&mut ws).await {
            Message::Text(_) => continue, // results of the first subscription
            Message::Close(Some(frame)) => {
                assert_eq!(u16::from(frame.code), 4409);
                assert_eq!(frame.reason.as_str(), "Subscriber for dup already exists");
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[tokio::test]
async fn ws_second_init_closes_with_4429() {
    let server = default_server().await;
    let mut ws = acked(&server, "good").await;
    send(&mut ws, json!({"type": "connection_init"})).await;
    assert_eq!(expect_close(&mut ws).await, (4429, "Too many initialisation requests".to_owned()));
}

#[tokio::test]
async fn ws_expired_credentials_end_operations_then_close_with_4403() {
    let server = default_server().await;
    let mut ws = acked(&server, "short").await;
    send(&mut ws, subscribe("a", "subscription { forever }")).await;
    send(&mut ws, subscribe("b", "subscription { forever }")).await;
    let mut errors = Vec::new();
    let close = loop {
        match next_frame(&mut ws).await {
            Message::Text(text) => {
                let message: Value = serde_json::from_str(text.as_str()).unwrap();
                match message["type"].as_str().unwrap() {
                    "next" => {}
                    "error" => errors.push(message),
                    other => panic!("unexpected {other}: {message}"),
                }
            }
            Message::Close(Some(frame)) => break frame,
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(u16::from(close.code), 4403);
    assert_eq!(close.reason.as_str(), "token expired");
    let mut ids: Vec<&str> = errors.iter().map(|e| e["id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["a", "b"]);
    for error in &errors {
        assert_eq!(error["payload"], json!([{"message": "token expired", "extensions": {"code": "UNAUTHENTICATED"}}]));
    }
}

#[tokio::test]
async fn ws_shutdown_closes_sockets_with_1001() {
    let server = default_server().await;
    let mut ws = acked(&server, "good").await;
    send(&mut ws, subscribe("f", "subscription { forever }")).await;
    assert_eq!(recv(&mut ws).await["type"], "next");
    server.config.shutdown.cancel();
    let close = loop {
        match next_frame(&mut ws).await {
            Message::Text(_) => {}
            Message::Close(Some(frame)) => break frame,
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(u16::from(close.code), 1001);
    // Every socket task ends, so a server can wait for them before exiting.
    drop(ws);
    server.config.sockets.close();
    tokio::time::timeout(Duration::from_secs(5), server.config.sockets.wait()).await.unwrap();
}

#[tokio::test]
async fn ws_without_a_known_subprotocol_is_closed_with_4406() {
    let server = default_server().await;
    let mut ws = connect(&server, None).await;
    assert_eq!(expect_close(&mut ws).await, (4406, "Subprotocol not acceptable".to_owned()));
    // A client offering only unknown subprotocols gets none back, which
    // RFC 6455 clients treat as a failed handshake.
    let mut request = server.ws_url().into_client_request().unwrap();
    request.headers_mut().insert(header::SEC_WEBSOCKET_PROTOCOL, "mqtt".parse().unwrap());
    assert!(tokio_tungstenite::connect_async(request).await.is_err());
}

#[tokio::test]
async fn ws_oversized_messages_close_with_1009() {
    let server = serve(TransportConfig { max_body_bytes: 1024, ..TransportConfig::default() }).await;
    let mut ws = acked(&server, "good").await;
    let query = format!("{{ hello {} }}", " ".repeat(4096));
    // The server may close before the whole frame is written.
    let _ = ws.send(Message::text(subscribe("big", &query).to_string())).await;
    match ws.next().await {
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(u16::from(frame.code), 1009),
        other => panic!("expected close 1009, got {other:?}"),
    }
}

// ---- legacy graphql-ws ----

#[tokio::test]
async fn legacy_protocol_streams_stops_and_terminates() {
    let server = default_server().await;
    let mut ws = connect(&server, Some(LEGACY_WS)).await;
    send(&mut ws, json!({"type": "connection_init", "payload": {"token": "good"}})).await;
    assert_eq!(recv(&mut ws).await, json!({"type": "connection_ack"}));
    assert_eq!(recv(&mut ws).await, json!({"type": "ka"}));

    send(&mut ws, json!({"type": "start", "id": "1", "payload": {"query": "subscription { ticks(count: 2) }"}})).await;
    for n in 1..=2 {
        assert_eq!(recv(&mut ws).await, json!({"type": "data", "id": "1", "payload": {"data": {"ticks": n}}}));
    }
    assert_eq!(recv(&mut ws).await, json!({"type": "complete", "id": "1"}));

    send(&mut ws, json!({"type": "start", "id": "2", "payload": {"query": "subscription { forever }"}})).await;
    assert_eq!(recv(&mut ws).await["type"], "data");
    send(&mut ws, json!({"type": "stop", "id": "2"})).await;
    loop {
        let message = recv(&mut ws).await;
        if message["type"] == "complete" {
            assert_eq!(message["id"], "2");
            break;
        }
        assert_eq!(message["type"], "data");
    }

    // Request errors come as data with errors, then complete.
    send(&mut ws, json!({"type": "start", "id": "3", "payload": {"query": "{ nope }"}})).await;
    let data = recv(&mut ws).await;
    assert_eq!(data["type"], "data");
    assert_eq!(data["payload"]["errors"][0]["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED");
    assert_eq!(recv(&mut ws).await, json!({"type": "complete", "id": "3"}));

    // A malformed start payload fails that operation only.
    send(&mut ws, json!({"type": "start", "id": "4", "payload": {"query": 1}})).await;
    let error = recv(&mut ws).await;
    assert_eq!(error["type"], "error");
    assert_eq!(error["payload"]["extensions"]["code"], "BAD_REQUEST");

    send(&mut ws, json!({"type": "connection_terminate"})).await;
    assert_eq!(expect_close(&mut ws).await.0, 1000);
}

#[tokio::test]
async fn legacy_refused_init_sends_connection_error_then_closes() {
    let server = default_server().await;
    let mut ws = connect(&server, Some(LEGACY_WS)).await;
    send(&mut ws, json!({"type": "connection_init", "payload": {"token": "bad"}})).await;
    let error = recv(&mut ws).await;
    assert_eq!(error["type"], "connection_error");
    assert_eq!(error["payload"]["extensions"]["code"], "UNAUTHENTICATED");
    assert_eq!(expect_close(&mut ws).await.0, 4403);
}
