//! `GET /export/events`: the event log for analysts over HTTP, streamed.
//!
//! ```text
//! GET /export/events?format=ndjson|csv|parquet&after=CURSOR&until=RFC3339&types=A,B
//! Authorization: Bearer <token of an analyst or admin>
//! ```
//!
//! The body is the file `tandem export events` would write, streamed page
//! by page as it is read (memory stays at one page, plus one row group for
//! Parquet). The header `Tandem-Export-End` carries the cursor the export
//! stops at: `after=` that cursor, with the same filters, continues exactly
//! with what came later. Every row carries its own cursor too.
//!
//! Over HTTP an export is always pseudonymous, whoever asks: person ids
//! are keyed with the server's salt (`TANDEM_EXPORT_SALT`). Without one the
//! endpoint refuses (`FORBIDDEN`) rather than hand out ids. The callers
//! allowed are those who read the whole event feed (the `events` row of the
//! access matrix with access `all`: admins and analysts). At most
//! [`MAX_RUNNING`] exports run at once; more are `RATE_LIMITED` (429 with
//! `Retry-After` and the RateLimit fields).
//!
//! Errors before the first byte are the API's JSON errors with
//! `extensions.code` (and `extensions.field` for bad input). An error in
//! the middle of a stream cuts the body short (the client sees an
//! incomplete transfer); the cause is logged.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use serde_json::json;
use tandem_export::{EventExport, EventQuery, ExportError, Format, Pseudonymizer, TableOptions};
use tandem_store::{Cursor, EventStore};
use tokio::sync::{Semaphore, mpsc};

use crate::context::ApiContext;
use crate::policy::{self, Access};

/// Exports running at once, across all callers.
pub const MAX_RUNNING: usize = 2;

/// The `Retry-After` of a refused export, in seconds: an export runs for
/// seconds to minutes, so a client polling at this pace gets in soon after
/// one ends without keeping the server busy refusing.
pub const RETRY_AFTER_SECONDS: u32 = 5;

/// What the export endpoint needs.
#[derive(Clone)]
pub struct ExportState {
    store: EventStore,
    context: Arc<ApiContext>,
    pseudonyms: Option<Pseudonymizer>,
    running: Arc<Semaphore>,
}

impl std::fmt::Debug for ExportState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportState").field("pseudonyms", &self.pseudonyms).finish_non_exhaustive()
    }
}

impl ExportState {
    /// Exports of `store`, for callers `context` accepts (with every check
    /// GraphQL requests get: the token, the deny list, the rate limit),
    /// pseudonymised with `salt` (without one, the endpoint refuses every
    /// export).
    pub fn new(store: EventStore, context: Arc<ApiContext>, salt: Option<&[u8]>) -> Result<Self, ExportError> {
        let pseudonyms = salt.map(Pseudonymizer::with_salt).transpose()?;
        Ok(Self { store, context, pseudonyms, running: Arc::new(Semaphore::new(MAX_RUNNING)) })
    }
}

/// The routes of the export endpoint.
pub fn router(state: ExportState) -> Router {
    Router::new().route("/export/events", get(events)).with_state(state)
}

fn error(status: StatusCode, code: &str, message: &str, field: Option<&str>) -> Response {
    let mut ext = json!({ "code": code });
    if let Some(f) = field {
        ext["field"] = json!(f);
    }
    let body = json!({ "errors": [{ "message": message, "extensions": ext }] });
    let mut r = (status, axum::Json(body)).into_response();
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    r
}

/// The 429 of an export refused because [`MAX_RUNNING`] are running:
/// `Retry-After`, and the RateLimit fields that describe a concurrency
/// limit (`RateLimit-Limit` exports at once, none remaining, and the
/// seconds of `Retry-After` as `RateLimit-Reset`). No `RateLimit-Policy`:
/// the limit has no time window.
fn too_many_running() -> Response {
    let message = format!("too many exports running; retry in {RETRY_AFTER_SECONDS} s");
    let mut r = error(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED", &message, None);
    let h = r.headers_mut();
    h.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
    h.insert("ratelimit-limit", HeaderValue::from(MAX_RUNNING));
    h.insert("ratelimit-remaining", HeaderValue::from_static("0"));
    h.insert("ratelimit-reset", HeaderValue::from(RETRY_AFTER_SECONDS));
    r
}

fn bad_input(field: &str, message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, "BAD_USER_INPUT", message, Some(field))
}

/// A writer whose bytes are taken out after every page.
#[derive(Clone, Default)]
struct Chunks(Arc<Mutex<Vec<u8>>>);

impl Chunks {
    fn take(&self) -> Vec<u8> {
        self.0.lock().map(|mut b| std::mem::take(&mut *b)).unwrap_or_default()
    }
}

impl Write for Chunks {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut b = self.0.lock().map_err(|_| std::io::Error::other("export buffer poisoned"))?;
        b.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct Params {
    format: Format,
    after: Cursor,
    until: Option<DateTime<Utc>>,
    types: Option<Vec<String>>,
}

/// A refused parameter: its name and why.
type Refusal = (String, &'static str);

fn params(q: &HashMap<String, String>) -> Result<Params, Refusal> {
    for k in q.keys() {
        if !["format", "after", "until", "types"].contains(&k.as_str()) {
            return Err((k.clone(), "unknown parameter (known: format, after, until, types)"));
        }
    }
    let refuse = |field: &str, why: &'static str| (field.to_owned(), why);
    let format = match q.get("format") {
        None => Format::Ndjson,
        Some(f) => f.parse().map_err(|_| refuse("format", "expected ndjson, csv or parquet"))?,
    };
    let after = match q.get("after") {
        None => Cursor::START,
        Some(c) => c.parse().map_err(|_| refuse("after", "not a cursor of this log"))?,
    };
    let until = match q.get("until") {
        None => None,
        Some(t) => Some(
            DateTime::parse_from_rfc3339(t)
                .map_err(|_| refuse("until", "expected an RFC 3339 instant"))?
                .with_timezone(&Utc),
        ),
    };
    let types = q.get("types").map(|t| vec![t.clone()]);
    Ok(Params { format, after, until, types })
}

async fn events(
    State(state): State<ExportState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let principal = match state.context.authenticate(&headers).await {
        Ok(Some(p)) => p,
        Ok(None) => {
            return error(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", "send `Authorization: Bearer <token>`", None);
        }
        Err(refusal) => {
            let mut response = error(refusal.http_status(), refusal.code, &refusal.message, None);
            response.headers_mut().extend(refusal.headers);
            return response;
        }
    };
    if policy::access(Some(&principal), "events") != Access::All {
        return error(StatusCode::FORBIDDEN, "FORBIDDEN", "exports are for analysts and admins", None);
    }
    let Some(pseudonyms) = state.pseudonyms.clone() else {
        return error(
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
            "exports over HTTP are off: the server has no pseudonymisation salt (TANDEM_EXPORT_SALT)",
            None,
        );
    };
    let p = match params(&query) {
        Ok(p) => p,
        Err((field, why)) => return bad_input(&field, why),
    };
    let Ok(permit) = state.running.clone().try_acquire_owned() else {
        return too_many_running();
    };
    let q = EventQuery { after: p.after, until: p.until, types: p.types, pseudonyms, page_size: 5_000 };
    let chunks = Chunks::default();
    let export = match EventExport::start(state.store.clone(), q, p.format, TableOptions::default(), chunks.clone())
        .await
    {
        Ok(e) => e,
        Err(ExportError::InvalidInput { field, reason }) => {
            let field = if field == "asOf" { "until" } else { field };
            return bad_input(field, &format!("{field} {reason}"));
        }
        Err(e) => {
            tracing::error!(error = %format!("{:#}", anyhow::Error::from(e)), "export failed to start");
            return error(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_SERVER_ERROR", "internal server error", None);
        }
    };
    let end = export.end();
    let (tx, mut rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(2);
    tokio::spawn(async move {
        let _permit = permit;
        let mut export = export;
        loop {
            let more = match export.step().await {
                Ok(more) => more,
                Err(e) => {
                    tracing::error!(error = %format!("{:#}", anyhow::Error::from(e)), "export failed mid-stream");
                    let _ = tx.send(Err(std::io::Error::other("export failed"))).await;
                    return;
                }
            };
            let chunk = chunks.take();
            if !chunk.is_empty() && tx.send(Ok(Bytes::from(chunk))).await.is_err() {
                // The client went away.
                return;
            }
            if !more {
                break;
            }
        }
        match export.finish() {
            Ok(_) => {
                let chunk = chunks.take();
                if !chunk.is_empty() {
                    let _ = tx.send(Ok(Bytes::from(chunk))).await;
                }
            }
            Err(e) => {
                tracing::error!(error = %format!("{:#}", anyhow::Error::from(e)), "export failed at its end");
                let _ = tx.send(Err(std::io::Error::other("export failed"))).await;
            }
        }
    });
    let stream = async_stream::stream! {
        while let Some(item) = rx.recv().await {
            yield item;
        }
    };
    let mut response = Response::new(Body::from_stream(stream));
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(p.format.media_type()));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"events.{}\"", p.format.extension())) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&end.to_string()) {
        h.insert("tandem-export-end", v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_export_says_when_to_retry() {
        let r = too_many_running();
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        let h = |name: &str| r.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        assert_eq!(h("retry-after"), RETRY_AFTER_SECONDS.to_string());
        assert_eq!(h("ratelimit-limit"), MAX_RUNNING.to_string());
        assert_eq!(h("ratelimit-remaining"), "0");
        assert_eq!(h("ratelimit-reset"), RETRY_AFTER_SECONDS.to_string());
    }
}
