//! The HTTP surface of the SCIM server, to be nested at `/scim/v2`.
//!
//! Authentication happens before these handlers: the embedding application
//! verifies the bearer token and inserts the caller as an
//! `Extension<tandem_store::Actor>`; a request without one is refused with
//! 401. Every body, errors included, is `application/scim+json`; request
//! bodies may be `application/scim+json` or `application/json`.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use serde_json::{Map, Value};
use tandem_store::Actor;

use crate::discovery;
use crate::error::{HrisError, Result, SCIM_CONTENT_TYPE};
use crate::filter;
use crate::list::{self, Query};
use crate::resource::user_document;
use crate::users::{ScimState, enrich, version_of};

/// The SCIM router: `/ServiceProviderConfig`, `/ResourceTypes`, `/Schemas`,
/// `/Users` (and `/Users/.search`), with 501 for `/Groups`, `/Bulk` and
/// `/Me`, and SCIM 404s for anything else.
pub fn router(state: ScimState) -> Router {
    let limit = state.config.max_body_bytes;
    Router::new()
        .route("/ServiceProviderConfig", get(service_provider_config).fallback(method_not_allowed))
        .route("/ResourceTypes", get(resource_types).fallback(method_not_allowed))
        .route("/ResourceTypes/{id}", get(resource_type).fallback(method_not_allowed))
        .route("/Schemas", get(schemas).fallback(method_not_allowed))
        .route("/Schemas/{id}", get(schema).fallback(method_not_allowed))
        .route("/Users", get(list_users).post(create_user).fallback(method_not_allowed))
        .route("/Users/.search", post(search_users).fallback(method_not_allowed))
        .route(
            "/Users/{id}",
            get(get_user).put(replace_user).patch(patch_user).delete(delete_user).fallback(method_not_allowed),
        )
        .route("/.search", post(search_users).fallback(method_not_allowed))
        .route("/Groups", any(groups))
        .route("/Groups/{*rest}", any(groups))
        .route("/Bulk", any(not_served))
        .route("/Me", any(not_served))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

async fn method_not_allowed() -> HrisError {
    HrisError::MethodNotAllowed
}

async fn not_found() -> HrisError {
    HrisError::NotFound("no SCIM endpoint at this address".into())
}

async fn groups() -> HrisError {
    HrisError::NotImplemented(
        "Groups are not supported: Tandem's programs and pairs are not directory groups; provision Users only".into(),
    )
}

async fn not_served() -> HrisError {
    HrisError::NotImplemented("this SCIM endpoint is not supported (see /ServiceProviderConfig)".into())
}

/// The caller, inserted by the authentication layer.
fn actor(headers_ext: Option<axum::Extension<Actor>>) -> Result<Actor> {
    headers_ext.map(|axum::Extension(a)| a).ok_or_else(|| HrisError::Unauthorized("a bearer token is required".into()))
}

/// The SCIM base URL of this request.
fn base(state: &ScimState, headers: &HeaderMap) -> String {
    if let Some(b) = &state.config.public_base_url {
        return b.trim_end_matches('/').to_owned();
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    let proto = headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .filter(|p| *p == "https" || *p == "http")
        .unwrap_or("http");
    format!("{proto}://{host}/scim/v2")
}

fn scim_json(status: StatusCode, body: &Value) -> Response {
    let mut r = (status, body.to_string()).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(SCIM_CONTENT_TYPE));
    r
}

fn with_etag(mut r: Response, etag: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(etag) {
        r.headers_mut().insert(header::ETAG, v);
    }
    r
}

fn parse_body(headers: &HeaderMap, body: &Bytes) -> Result<Value> {
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        if ct != "application/scim+json" && ct != "application/json" {
            return Err(HrisError::UnsupportedMediaType);
        }
    }
    serde_json::from_slice(body).map_err(|e| HrisError::InvalidSyntax(format!("the body is not JSON: {e}")))
}

fn query_pairs(raw: Option<&str>) -> Vec<(String, String)> {
    raw.map(url_pairs).unwrap_or_default()
}

/// Decodes `application/x-www-form-urlencoded` pairs (`+` is a space).
fn url_pairs(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn etag_matches(header_value: &str, etag: &str) -> bool {
    let strip = |t: &str| t.trim().trim_start_matches("W/").trim_matches('"').to_owned();
    let want = strip(etag);
    header_value.split(',').any(|t| t.trim() == "*" || strip(t) == want)
}

/// 412 unless `If-Match` (when sent) names the current version.
fn check_if_match(headers: &HeaderMap, current: &str) -> Result<()> {
    match headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok()) {
        Some(v) if !etag_matches(v, current) => Err(HrisError::PreconditionFailed { current: current.to_owned() }),
        _ => Ok(()),
    }
}

async fn service_provider_config(State(s): State<ScimState>, headers: HeaderMap) -> Response {
    scim_json(StatusCode::OK, &discovery::service_provider_config(&base(&s, &headers)))
}

async fn resource_types(State(s): State<ScimState>, headers: HeaderMap) -> Response {
    let all = discovery::resource_types(&base(&s, &headers));
    scim_json(StatusCode::OK, &list::list_response(all.len(), 1, all))
}

async fn resource_type(State(s): State<ScimState>, headers: HeaderMap, Path(id): Path<String>) -> Result<Response> {
    discovery::resource_types(&base(&s, &headers))
        .into_iter()
        .find(|r| r["id"].as_str().is_some_and(|i| i.eq_ignore_ascii_case(&id)))
        .map(|r| scim_json(StatusCode::OK, &r))
        .ok_or_else(|| HrisError::NotFound(format!("no ResourceType {id:?}")))
}

async fn schemas(State(s): State<ScimState>, headers: HeaderMap) -> Response {
    let all = discovery::schemas(&base(&s, &headers));
    scim_json(StatusCode::OK, &list::list_response(all.len(), 1, all))
}

async fn schema(State(s): State<ScimState>, headers: HeaderMap, Path(id): Path<String>) -> Result<Response> {
    discovery::schemas(&base(&s, &headers))
        .into_iter()
        .find(|r| r["id"].as_str().is_some_and(|i| i.eq_ignore_ascii_case(&id)))
        .map(|r| scim_json(StatusCode::OK, &r))
        .ok_or_else(|| HrisError::NotFound(format!("no Schema {id:?}")))
}

fn document(view: &crate::resource::User, base: &str) -> Map<String, Value> {
    match user_document(view, base) {
        Value::Object(o) => o,
        _ => Map::new(),
    }
}

async fn run_query(s: &ScimState, base: &str, q: &Query) -> Result<Response> {
    let parsed = q.filter.as_deref().map(filter::parse).transpose()?;
    let fast = parsed.as_ref().and_then(filter::user_name_eq);
    let mut matched = Vec::new();
    for p in s.candidates(fast).await? {
        let doc = document(&p, base);
        let keep = match &parsed {
            None => true,
            Some(f) => {
                let mut seen = doc.clone();
                enrich(&mut seen);
                filter::matches(f, &seen)?
            }
        };
        if keep {
            matched.push(doc);
        }
    }
    if let Some(by) = &q.sort_by {
        list::sort(&mut matched, by, q.descending);
    }
    let total = matched.len();
    let page: Vec<Value> = matched
        .into_iter()
        .skip(q.start_index - 1)
        .take(q.count)
        .map(|d| Value::Object(list::select(d, &q.attributes, &q.excluded)))
        .collect();
    Ok(scim_json(StatusCode::OK, &list::list_response(total, q.start_index, page)))
}

async fn list_users(
    State(s): State<ScimState>,
    ext: Option<axum::Extension<Actor>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    actor(ext)?;
    let q = Query::from_pairs(&query_pairs(raw.as_deref()))?;
    run_query(&s, &base(&s, &headers), &q).await
}

async fn search_users(
    State(s): State<ScimState>,
    ext: Option<axum::Extension<Actor>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    actor(ext)?;
    let q = Query::from_search(&parse_body(&headers, &body)?)?;
    run_query(&s, &base(&s, &headers), &q).await
}

fn one(view: &crate::resource::User, base: &str, status: StatusCode, q: &Query) -> Response {
    let doc = list::select(document(view, base), &q.attributes, &q.excluded);
    let mut r = with_etag(scim_json(status, &Value::Object(doc)), &version_of(view));
    if status == StatusCode::CREATED
        && let Ok(v) = HeaderValue::from_str(&crate::resource::user_location(base, view.person_id))
    {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

async fn get_user(
    State(s): State<ScimState>,
    ext: Option<axum::Extension<Actor>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    actor(ext)?;
    let q = Query::from_pairs(&query_pairs(raw.as_deref()))?;
    let view = s.get(&id).await?;
    let etag = version_of(&view);
    if let Some(v) = headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok())
        && etag_matches(v, &etag)
    {
        return Ok(with_etag(StatusCode::NOT_MODIFIED.into_response(), &etag));
    }
    Ok(one(&view, &base(&s, &headers), StatusCode::OK, &q))
}

async fn create_user(
    State(s): State<ScimState>,
    ext: Option<axum::Extension<Actor>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    let actor = actor(ext)?;
    let view = s.create(parse_body(&headers, &body)?, &actor).await?;
    Ok(one(&view, &base(&s, &headers), StatusCode::CREATED, &Query::default()))
}

async fn replace_user(
    State(s): State<ScimState>,
    ext: Option<axum::Extension<Actor>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response> {
    let actor = actor(ext)?;
    let body = parse_body(&headers, &body)?;
    let current = s.get(&id).await?;
    check_if_match(&headers, &version_of(&current))?;
    let view = s.replace(&current, body, &actor).await?;
    Ok(one(&view, &base(&s, &headers), StatusCode::OK, &Query::default()))
}

async fn patch_user(
    State(s): State<ScimState>,
    ext: Option<axum::Extension<Actor>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response> {
    let actor = actor(ext)?;
    let body = parse_body(&headers, &body)?;
    let current = s.get(&id).await?;
    check_if_match(&headers, &version_of(&current))?;
    let view = s.patch(&current, &body, &actor).await?;
    Ok(one(&view, &base(&s, &headers), StatusCode::OK, &Query::default()))
}

async fn delete_user(
    State(s): State<ScimState>,
    ext: Option<axum::Extension<Actor>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response> {
    let actor = actor(ext)?;
    let current = s.get(&id).await?;
    check_if_match(&headers, &version_of(&current))?;
    s.delete(&current, &actor).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_decode() {
        let p = url_pairs("filter=userName%20eq%20%22a%2Bb%40x.com%22&count=2&attributes=userName,emails.value");
        assert_eq!(p[0], ("filter".into(), "userName eq \"a+b@x.com\"".into()));
        assert_eq!(p[1], ("count".into(), "2".into()));
        assert_eq!(url_pairs("filter=title+pr")[0].1, "title pr");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }

    #[test]
    fn etags() {
        assert!(etag_matches("W/\"3\"", "W/\"3\""));
        assert!(etag_matches("\"3\"", "W/\"3\""));
        assert!(etag_matches("*", "W/\"3\""));
        assert!(etag_matches("W/\"1\", W/\"3\"", "W/\"3\""));
        assert!(!etag_matches("W/\"2\"", "W/\"3\""));
    }
}
