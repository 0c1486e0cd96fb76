//! Cross-origin requests from browsers (CORS), for front ends served from
//! another origin than the API.
//!
//! Off by default: without configured origins no CORS header is sent and a
//! preflight `OPTIONS` is refused like any other method. With origins
//! ([`CorsOrigins`], `TANDEM_CORS_ORIGINS`), tower-http's `CorsLayer`
//! answers preflights itself with 204 No Content, the methods
//! [`ALLOWED_METHODS`], the request headers [`ALLOWED_HEADERS`] (those of
//! Apollo Client, urql, Relay, W3C trace context), `Access-Control-Max-Age`
//! and `Vary: Origin`; responses to allowed origins expose
//! [`EXPOSED_HEADERS`] (`Retry-After` and the RateLimit fields of a 429,
//! `WWW-Authenticate` of a 401) to the page's script.
//!
//! Credentials: Tandem authenticates by bearer token only, never by cookie,
//! so CORS credentials carry no authority here. A list of origins still
//! allows them, so a client configured with `credentials: "include"` works;
//! `*` never does (browsers refuse `*` with credentials).
//!
//! Websockets are not subject to CORS: a browser opens one from any page,
//! sending its `Origin`, which Tandem does not check. That is safe because
//! a socket's token travels in `connection_init`, which a foreign page
//! cannot read from the browser, rather than in ambient cookies.

use std::{fmt, str::FromStr, sync::Arc, time::Duration};

use axum::{
    Router,
    extract::Request,
    http::{HeaderName, HeaderValue, Method, StatusCode, header},
    middleware::{self, Next},
    response::Response,
};
use tower_http::cors::{AllowCredentials, AllowOrigin, CorsLayer};

/// Methods a cross-origin page may use: GraphQL over HTTP is GET and POST.
pub const ALLOWED_METHODS: [Method; 3] = [Method::GET, Method::POST, Method::OPTIONS];

/// Request headers a cross-origin page may send.
pub const ALLOWED_HEADERS: [&str; 11] = [
    "authorization",
    "content-type",
    "accept",
    // Apollo Client's client awareness and CSRF prevention, and the
    // operation name Apollo's tools send.
    "apollographql-client-name",
    "apollographql-client-version",
    "apollo-require-preflight",
    "x-apollo-operation-name",
    // W3C trace context and baggage, as OpenTelemetry's browser SDK sends them.
    "traceparent",
    "tracestate",
    "baggage",
    // graphql-sse's token of a reserved stream (single-connection mode).
    "x-graphql-event-stream-token",
];

/// Response headers a cross-origin page's script may read.
pub const EXPOSED_HEADERS: [&str; 7] = [
    "retry-after",
    "ratelimit-limit",
    "ratelimit-remaining",
    "ratelimit-reset",
    "ratelimit-policy",
    "www-authenticate",
    "content-length",
];

/// How long a browser may reuse a preflight's answer: two hours, the most
/// Chromium honours. Removing an origin takes effect at once all the same,
/// since the actual responses stop carrying its `Access-Control-Allow-Origin`.
pub const MAX_AGE: Duration = Duration::from_secs(2 * 60 * 60);

/// The origins allowed to call the API from a browser.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum CorsOrigins {
    /// No CORS: no headers, preflights refused (405).
    #[default]
    None,
    /// Any origin (`*`), never with credentials.
    Any,
    /// These origins (`scheme://host[:port]`, lower case), with credentials.
    List(Vec<String>),
}

/// Why a `TANDEM_CORS_ORIGINS` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CorsOriginsError {
    /// `*` must stand alone.
    #[error("`*` allows every origin and cannot be combined with a list of origins")]
    WildcardInList,
    /// An entry is not a serialized origin.
    #[error("{0:?} is not an origin: write scheme://host[:port], without path, query or trailing slash")]
    NotAnOrigin(String),
}

impl FromStr for CorsOrigins {
    type Err = CorsOriginsError;

    /// A comma-separated list of origins, or `*`; empty means none.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let entries: Vec<&str> = s.split(',').map(str::trim).filter(|e| !e.is_empty()).collect();
        if entries.is_empty() {
            return Ok(Self::None);
        }
        if entries.contains(&"*") {
            return if entries.len() == 1 { Ok(Self::Any) } else { Err(CorsOriginsError::WildcardInList) };
        }
        let mut origins = Vec::with_capacity(entries.len());
        for entry in entries {
            let origin = parse_origin(entry).ok_or_else(|| CorsOriginsError::NotAnOrigin(entry.to_owned()))?;
            if !origins.contains(&origin) {
                origins.push(origin);
            }
        }
        Ok(Self::List(origins))
    }
}

impl fmt::Display for CorsOrigins {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str(""),
            Self::Any => f.write_str("*"),
            Self::List(origins) => f.write_str(&origins.join(",")),
        }
    }
}

/// An origin as browsers serialize it in the `Origin` header: a scheme,
/// `://`, a host and a port unless it is the scheme's default, in lower
/// case. Anything else (a path, a trailing slash, user info, `null`) would
/// never match a request, so it is refused rather than silently ignored.
fn parse_origin(entry: &str) -> Option<String> {
    let lower = entry.to_ascii_lowercase();
    let (scheme, authority) = lower.split_once("://")?;
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    if !scheme_ok {
        return None;
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (address, after) = v6.split_once(']')?;
        if address.is_empty() || !address.chars().all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.') {
            return None;
        }
        let port = if after.is_empty() { None } else { Some(after.strip_prefix(':')?) };
        (format!("[{address}]"), port)
    } else {
        let (host, port) = match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        };
        if host.is_empty() || !host.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.') {
            return None;
        }
        (host.to_owned(), port)
    };
    let port = match port {
        None => None,
        Some(p) if !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()) => Some(p.parse::<u16>().ok()?),
        Some(_) => return None,
    };
    let default_port = match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    };
    Some(match port {
        Some(p) if Some(p) != default_port => format!("{scheme}://{host}:{p}"),
        _ => format!("{scheme}://{host}"),
    })
}

/// Adds CORS to `router` for `origins`; unchanged for [`CorsOrigins::None`].
pub(super) fn apply(router: Router, origins: &CorsOrigins) -> Router {
    let (allow, credentials) = match origins {
        CorsOrigins::None => return router,
        CorsOrigins::Any => (AllowOrigin::any(), AllowCredentials::default()),
        CorsOrigins::List(list) => {
            let list: Arc<[HeaderValue]> = list.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect();
            let allowed = list.clone();
            // Only to the origins allowed: another origin gets no CORS
            // header that could suggest otherwise.
            let credentials = AllowCredentials::predicate(move |origin, _| allowed.contains(origin));
            (AllowOrigin::list(list.iter().cloned()), credentials)
        }
    };
    let layer = CorsLayer::new()
        .allow_origin(allow)
        .allow_credentials(credentials)
        .allow_methods(ALLOWED_METHODS)
        .allow_headers(ALLOWED_HEADERS.map(HeaderName::from_static))
        .expose_headers(EXPOSED_HEADERS.map(HeaderName::from_static))
        .max_age(MAX_AGE);
    // The CORS layer answers every OPTIONS with an empty 200; outside it,
    // that answer becomes 204 No Content, as a preflight's should be.
    router.layer(layer).layer(middleware::from_fn(no_content_preflight))
}

async fn no_content_preflight(request: Request, next: Next) -> Response {
    let options = request.method() == Method::OPTIONS;
    let mut response = next.run(request).await;
    if options && response.status() == StatusCode::OK {
        *response.status_mut() = StatusCode::NO_CONTENT;
        response.headers_mut().remove(header::CONTENT_LENGTH);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<CorsOrigins, CorsOriginsError> {
        s.parse()
    }

    #[test]
    fn origins_are_parsed_and_normalised() {
        assert_eq!(parse(""), Ok(CorsOrigins::None));
        assert_eq!(parse(" , "), Ok(CorsOrigins::None));
        assert_eq!(parse("*"), Ok(CorsOrigins::Any));
        assert_eq!(parse(" * "), Ok(CorsOrigins::Any));
        assert_eq!(
            parse("https://App.Example.com, http://localhost:5173,https://app.example.com"),
            Ok(CorsOrigins::List(vec!["https://app.example.com".into(), "http://localhost:5173".into()]))
        );
        assert_eq!(parse("http://[::1]:3000"), Ok(CorsOrigins::List(vec!["http://[::1]:3000".into()])));
        assert_eq!(parse("http://127.0.0.1"), Ok(CorsOrigins::List(vec!["http://127.0.0.1".into()])));
        // Browsers leave out the scheme's default port.
        assert_eq!(parse("https://a.example:443"), Ok(CorsOrigins::List(vec!["https://a.example".into()])));
        assert_eq!(parse("http://a.example:0080"), Ok(CorsOrigins::List(vec!["http://a.example".into()])));
    }

    #[test]
    fn what_no_browser_sends_as_an_origin_is_refused() {
        for bad in [
            "https://app.example.com/",
            "https://app.example.com/path",
            "https://app.example.com?x=1",
            "https://user@app.example.com",
            "app.example.com",
            "null",
            "https://",
            "https://app.example.com:",
            "https://app.example.com:99999",
            "https://app.example.com:+80",
            "http://[::1",
            "http://[]:80",
            "1http://x",
        ] {
            assert!(matches!(parse(bad), Err(CorsOriginsError::NotAnOrigin(_))), "{bad}: {:?}", parse(bad));
        }
        assert_eq!(parse("*, https://a.example"), Err(CorsOriginsError::WildcardInList));
    }

    #[test]
    fn display_round_trips() {
        for s in ["", "*", "https://a.example,http://localhost:8080"] {
            assert_eq!(parse(s).expect("parses").to_string(), s);
        }
    }
}
