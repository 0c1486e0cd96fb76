//! The GraphiQL IDE at `/graphiql`, served whole from the binary.
//!
//! The page loads nothing from elsewhere: GraphiQL's and React's published
//! browser bundles are vendored under `crates/api/assets/graphiql/` (see
//! `scripts/vendor-graphiql.sh` and the `SHA256SUMS` there) and built in
//! with `include_bytes!`, beside the small script that starts the IDE
//! (`assets/graphiql-start.js`). So GraphiQL renders behind a firewall
//! that lets a browser reach Tandem and nothing else, and the page's
//! `Content-Security-Policy` says so: scripts, styles and connections from
//! the page's own origin only.
//!
//! Assets are served at `/graphiql/assets/{name}` with an `ETag` (a digest
//! of the bytes) and `If-None-Match`. The page names them with `?v=` and
//! that digest; a request with the current digest may be cached for a year
//! (`immutable`), any other must revalidate, so an upgraded server never
//! leaves a browser on a stale bundle.

use std::sync::{Arc, LazyLock};

use axum::{
    Router,
    extract::{Path, Query},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use sha2::{Digest, Sha256};

/// Where the page fetches its assets from, below the GraphiQL path.
const ASSETS: &str = "/graphiql/assets";

/// One file served under [`ASSETS`].
struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
    /// A third-party release file listed in `SHA256SUMS` (else Tandem's own).
    #[cfg_attr(not(test), expect(dead_code, reason = "read by the test of SHA256SUMS"))]
    vendored: bool,
}

const JAVASCRIPT: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// Every asset, in the order the page loads them.
const FILES: [Asset; 6] = [
    Asset {
        name: "graphiql.min.css",
        content_type: CSS,
        bytes: include_bytes!("../../assets/graphiql/graphiql.min.css"),
        vendored: true,
    },
    Asset {
        name: "graphiql-page.css",
        content_type: CSS,
        bytes: include_bytes!("../../assets/graphiql-page.css"),
        vendored: false,
    },
    Asset {
        name: "react.production.min.js",
        content_type: JAVASCRIPT,
        bytes: include_bytes!("../../assets/graphiql/react.production.min.js"),
        vendored: true,
    },
    Asset {
        name: "react-dom.production.min.js",
        content_type: JAVASCRIPT,
        bytes: include_bytes!("../../assets/graphiql/react-dom.production.min.js"),
        vendored: true,
    },
    Asset {
        name: "graphiql.min.js",
        content_type: JAVASCRIPT,
        bytes: include_bytes!("../../assets/graphiql/graphiql.min.js"),
        vendored: true,
    },
    Asset {
        name: "graphiql-start.js",
        content_type: JAVASCRIPT,
        bytes: include_bytes!("../../assets/graphiql-start.js"),
        vendored: false,
    },
];

/// An asset with its digest, computed once.
struct Served {
    asset: &'static Asset,
    /// The first 32 hex digits of the SHA-256 of the bytes: the `?v=` of
    /// the page's links, and (quoted) the `ETag`.
    version: String,
    etag: HeaderValue,
}

static SERVED: LazyLock<Vec<Served>> = LazyLock::new(|| {
    FILES
        .iter()
        .map(|asset| {
            let digest = Sha256::digest(asset.bytes);
            let version: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
            // Hex digits between quotes: always a valid header value.
            let etag = HeaderValue::try_from(format!("\"{version}\"")).unwrap_or(HeaderValue::from_static("\"\""));
            Served { asset, version, etag }
        })
        .collect()
});

fn served(name: &str) -> Option<&'static Served> {
    SERVED.iter().find(|s| s.asset.name == name)
}

/// The page's Content-Security-Policy. GraphiQL's stylesheet embeds its
/// fonts and icons as `data:` URLs, and its components set inline styles;
/// `connect-src 'self'` covers the same-origin websocket as well.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     font-src 'self' data:; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

/// The routes of the IDE: the page and its assets.
pub(super) fn router(graphql_path: &str) -> Router {
    let page = Arc::new(page(graphql_path));
    Router::new()
        .route(
            "/graphiql",
            get(move || {
                let page = page.clone();
                async move { page_response(&page) }
            }),
        )
        .route(&format!("{ASSETS}/{{name}}"), get(asset))
}

/// The HTML of the page: links to the assets and the endpoints in a JSON
/// block that `graphiql-start.js` reads (no inline script, so the CSP
/// needs no `unsafe-inline` for scripts).
fn page(graphql_path: &str) -> String {
    let config = serde_json::json!({ "url": graphql_path, "subscriptionUrl": graphql_path });
    // `<` escaped, so no value can close the script element.
    let config = config.to_string().replace('<', "\\u003c");
    let link = |name: &str| {
        let version = served(name).map_or("", |s| s.version.as_str());
        format!("{ASSETS}/{name}?v={version}")
    };
    let (mut styles, mut scripts) = (String::new(), String::new());
    for asset in &FILES {
        if asset.content_type == CSS {
            styles.push_str(&format!("    <link rel=\"stylesheet\" href=\"{}\">\n", link(asset.name)));
        } else {
            scripts.push_str(&format!("    <script src=\"{}\"></script>\n", link(asset.name)));
        }
    }
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="robots" content="noindex">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>Tandem GraphiQL</title>
    <link rel="icon" href="data:,">
{styles}    <script type="application/json" id="tandem-graphiql-config">{config}</script>
  </head>
  <body>
    <div id="graphiql">Loading…</div>
{scripts}  </body>
</html>
"#,
    )
}

fn page_response(page: &str) -> Response {
    let mut response = (StatusCode::OK, page.to_owned()).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

#[derive(serde::Deserialize)]
struct Version {
    v: Option<String>,
}

async fn asset(Path(name): Path<String>, Query(query): Query<Version>, headers: HeaderMap) -> Response {
    let Some(served) = served(&name) else {
        return (StatusCode::NOT_FOUND, "no such GraphiQL asset").into_response();
    };
    let cache = if query.v.as_deref() == Some(served.version.as_str()) {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let fresh = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .any(|value| value.to_str().is_ok_and(|v| v.split(',').any(|tag| matches(tag.trim(), served.etag.as_bytes()))));
    let mut response =
        if fresh { StatusCode::NOT_MODIFIED.into_response() } else { served.asset.bytes.into_response() };
    let h = response.headers_mut();
    if !fresh {
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(served.asset.content_type));
    }
    h.insert(header::ETAG, served.etag.clone());
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

/// `If-None-Match` uses the weak comparison (RFC 9110 13.1.2): `W/"x"`
/// matches `"x"`, and `*` matches anything.
fn matches(tag: &str, etag: &[u8]) -> bool {
    tag == "*" || tag.strip_prefix("W/").unwrap_or(tag).as_bytes() == etag
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vendored files are the release files `scripts/vendor-graphiql.sh`
    /// recorded, unmodified.
    #[test]
    fn vendored_files_match_their_checksums() {
        let sums = include_str!("../../assets/graphiql/SHA256SUMS");
        let mut checked = 0;
        for line in sums.lines().filter(|l| !l.trim().is_empty()) {
            let (sum, name) = line.split_once("  ").expect("`sha256sum` lines");
            let asset = FILES
                .iter()
                .find(|a| a.name == name && a.vendored)
                .unwrap_or_else(|| panic!("{name} is not served as a vendored file"));
            let digest: String = Sha256::digest(asset.bytes).iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(digest, sum, "{name} differs from the vendored release file");
            checked += 1;
        }
        assert_eq!(checked, FILES.iter().filter(|a| a.vendored).count(), "every vendored file is in SHA256SUMS");
    }

    #[test]
    fn the_page_links_only_local_assets_and_escapes_its_configuration() {
        let page = page("/api/</script><script>alert(1)</script>");
        assert!(!page.contains("</script><script>alert"), "{page}");
        assert!(!page.contains("http:") && !page.contains("https:") && !page.contains("//unpkg"), "{page}");
        for asset in &FILES {
            assert!(page.contains(&format!("{ASSETS}/{}?v=", asset.name)), "{} linked: {page}", asset.name);
        }
    }

    #[test]
    fn if_none_match_uses_the_weak_comparison() {
        assert!(matches("\"abc\"", b"\"abc\""));
        assert!(matches("W/\"abc\"", b"\"abc\""));
        assert!(matches("*", b"\"abc\""));
        assert!(!matches("\"abd\"", b"\"abc\""));
    }
}
