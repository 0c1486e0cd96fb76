//! The bridge between the transport and the schema: turns a request's
//! bearer token into the caller ([`Viewer`]) and gives every operation its
//! own DataLoaders.
//!
//! A request without a token runs anonymously and every operation then
//! answers `UNAUTHENTICATED` (the policy allows nothing to anonymous
//! callers); a request with a token that does not verify is refused before
//! anything runs.
//!
//! Each authenticated subject also has a request budget (a token bucket
//! refilled continuously, `TANDEM_RATE_LIMIT_PER_MINUTE`); past it requests
//! and new websocket connections are refused with `RATE_LIMITED` (HTTP 429)
//! until the bucket refills.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_graphql::Data;
use axum::http::HeaderMap;
use futures::future::BoxFuture;
use sqlx::PgPool;

use crate::auth::{Principal, Revocations, Verifier};
use crate::schema::Viewer;
use crate::schema::loaders::Loaders;
use crate::transport::{ContextError, RequestContext, RequestData};

/// Most subjects whose buckets are remembered; beyond it the full ones are
/// forgotten (a full bucket is the same as no bucket).
const MAX_BUCKETS: usize = 100_000;

/// Per-subject token buckets.
#[derive(Debug)]
pub struct RateLimiter {
    per_minute: u32,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    /// A limiter allowing `per_minute` requests per subject per minute, with
    /// bursts up to the same number.
    #[must_use]
    pub fn new(per_minute: u32) -> Self {
        Self { per_minute, buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes one token for `subject`; false when the budget is spent.
    pub fn allow(&self, subject: &str) -> bool {
        let capacity = f64::from(self.per_minute);
        let now = Instant::now();
        let Ok(mut buckets) = self.buckets.lock() else {
            // A poisoned lock only means another request panicked while
            // holding it; failing open keeps the API usable.
            return true;
        };
        if buckets.len() >= MAX_BUCKETS {
            buckets.retain(|_, (tokens, at)| *tokens + at.elapsed().as_secs_f64() * capacity / 60.0 < capacity);
        }
        let (tokens, at) = buckets.entry(subject.to_owned()).or_insert((capacity, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * capacity / 60.0).min(capacity);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The [`RequestContext`] of the Tandem API.
pub struct ApiContext {
    verifier: Arc<Verifier>,
    pool: PgPool,
    limiter: Option<RateLimiter>,
    /// The deny list of revoked tokens; `None` checks nothing.
    revocations: Option<Revocations>,
}

impl std::fmt::Debug for ApiContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiContext")
    }
}

impl ApiContext {
    /// A context verifying tokens with `verifier` and loading from `pool`.
    #[must_use]
    pub fn new(verifier: Arc<Verifier>, pool: PgPool) -> Self {
        Self { verifier, pool, limiter: None, revocations: None }
    }

    /// Refuses tokens whose `jti` is on `revocations`' deny list.
    #[must_use]
    pub fn with_revocations(mut self, revocations: Revocations) -> Self {
        self.revocations = Some(revocations);
        self
    }

    /// Limits each subject to `per_minute` requests a minute (0: no limit).
    #[must_use]
    pub fn with_rate_limit(mut self, per_minute: u32) -> Self {
        self.limiter = (per_minute > 0).then(|| RateLimiter::new(per_minute));
        self
    }

    async fn principal(&self, token: Option<&str>) -> Result<Option<Principal>, ContextError> {
        let principal = match token {
            None => None,
            Some(t) => Some(self.verifier.verify(t).map_err(|e| {
                tracing::debug!(error = %e, "token refused");
                ContextError::unauthenticated(format!("invalid token: {e}"))
            })?),
        };
        if let (Some(revocations), Some(p)) = (&self.revocations, &principal) {
            check_not_revoked(revocations, p).await?;
        }
        if let (Some(limiter), Some(p)) = (&self.limiter, &principal)
            && !limiter.allow(p.subject())
        {
            return Err(ContextError {
                code: crate::transport::codes::RATE_LIMITED,
                message: "too many requests for this subject; retry in a few seconds".to_owned(),
            });
        }
        Ok(principal)
    }

    /// The caller of an HTTP request from its `Authorization` header, with
    /// every check GraphQL requests get (signature and claims, the deny
    /// list, the rate limit); `None` without a header. For the endpoints
    /// beside GraphQL, such as SCIM.
    ///
    /// # Errors
    /// The [`ContextError`] to answer with.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Option<Principal>, ContextError> {
        let token = match headers.get(axum::http::header::AUTHORIZATION) {
            None => None,
            Some(v) => {
                Some(bearer(v.to_str().map_err(|_| ContextError::unauthenticated("malformed Authorization header"))?)?)
            }
        };
        self.principal(token).await
    }

    fn data(&self, principal: Option<Principal>) -> RequestData {
        let expires = principal.as_ref().map(Principal::expires_at);
        let mut data = Data::default();
        data.insert(Viewer(principal));
        data.insert(Loaders::new(&self.pool));
        let rd = RequestData::new(data);
        match expires {
            Some(e) => rd.expires_at(e),
            None => rd,
        }
    }
}

/// Refuses a principal whose token was revoked; fails closed when the deny
/// list cannot be read.
///
/// # Errors
/// `UNAUTHENTICATED` for a revoked token, `INTERNAL_SERVER_ERROR` when the
/// deny list is unreadable.
pub async fn check_not_revoked(revocations: &Revocations, p: &Principal) -> Result<(), ContextError> {
    let Some(jti) = p.token_id() else { return Ok(()) };
    match revocations.is_revoked(jti).await {
        Ok(false) => Ok(()),
        Ok(true) => {
            tracing::info!(jti, subject = p.subject(), "revoked token refused");
            Err(ContextError::unauthenticated("invalid token: the token was revoked"))
        }
        Err(e) => {
            tracing::error!(error = %e, "reading the token deny list failed");
            Err(ContextError {
                code: crate::transport::codes::INTERNAL_SERVER_ERROR,
                message: "the token could not be checked; retry".to_owned(),
            })
        }
    }
}

/// The token of an `Authorization: Bearer …` value.
pub fn bearer(value: &str) -> Result<&str, ContextError> {
    let (scheme, token) =
        value.trim().split_once(' ').ok_or_else(|| ContextError::unauthenticated("expected `Bearer <token>`"))?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(ContextError::unauthenticated("expected `Bearer <token>`"));
    }
    Ok(token.trim())
}

impl RequestContext for ApiContext {
    fn http<'a>(&'a self, headers: &'a HeaderMap) -> BoxFuture<'a, Result<RequestData, ContextError>> {
        Box::pin(async move { Ok(self.data(self.authenticate(headers).await?)) })
    }

    fn websocket(&self, init_payload: Option<serde_json::Value>) -> BoxFuture<'_, Result<RequestData, ContextError>> {
        Box::pin(async move {
            let payload = init_payload.unwrap_or(serde_json::Value::Null);
            let field = |k: &str| payload.get(k).and_then(serde_json::Value::as_str);
            let token = match (field("authorization").or_else(|| field("Authorization")), field("token")) {
                (Some(h), _) => Some(bearer(h)?),
                (None, Some(t)) => Some(t),
                (None, None) => None,
            };
            Ok(self.data(self.principal(token).await?))
        })
    }

    fn operation_data(&self, _connection: &Data) -> Data {
        let mut data = Data::default();
        data.insert(Loaders::new(&self.pool));
        data
    }
}
