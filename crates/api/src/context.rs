//! The bridge between the transport and the schema: turns a request's
//! bearer token into the caller ([`Viewer`]) and gives every operation its
//! own DataLoaders.
//!
//! A request without a token runs anonymously and every operation then
//! answers `UNAUTHENTICATED` (the policy allows nothing to anonymous
//! callers); a request with a token that does not verify is refused before
//! anything runs.
//!
//! Each authenticated subject also has a request budget
//! (`TANDEM_RATE_LIMIT_PER_MINUTE` requests a minute, refilled continuously,
//! bursts up to the same number), kept by `governor`'s keyed GCRA limiter;
//! past it requests are refused with `RATE_LIMITED` (HTTP 429 with
//! `Retry-After` and the RateLimit headers) and new websocket connections
//! are closed with 1013 until the budget refills.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_graphql::Data;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use futures::future::BoxFuture;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter as Gcra};
use sqlx::PgPool;

use crate::auth::{AuthError, Principal, Revocations, Verifier};
use crate::schema::Viewer;
use crate::schema::loaders::Loaders;
use crate::transport::{ContextError, RequestContext, RequestData};

/// Subjects remembered before the limiter forgets the ones whose budget is
/// full again (a full budget is the same as no entry), checked on every
/// request so memory stays bounded by the subjects active within about a
/// minute.
const MAX_TRACKED_SUBJECTS: usize = 100_000;

/// Every this many checks the limiter also forgets full budgets, so a
/// quiet server gives back the memory of yesterday's subjects.
const PRUNE_EVERY: u64 = 4_096;

/// The keyed GCRA limiter with the state snapshot of each allowed request.
type KeyedGcra<C> = Gcra<String, DefaultKeyedStateStore<String>, C, StateInformationMiddleware>;

/// Per-subject request budgets over a clock `C` (the monotonic clock in
/// the service; a fake one in unit tests).
pub struct RateLimiter<C: Clock = DefaultClock> {
    per_minute: NonZeroU32,
    gcra: KeyedGcra<C>,
    checks: AtomicU64,
}

impl<C: Clock> std::fmt::Debug for RateLimiter<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter").field("per_minute", &self.per_minute).finish_non_exhaustive()
    }
}

/// The budget after one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Budget {
    /// Allowed; `remaining` more requests would be allowed right now.
    Allowed { remaining: u32 },
    /// Refused; the next request is allowed after `retry_after`.
    Exhausted { retry_after: Duration },
}

impl RateLimiter {
    /// A limiter allowing `per_minute` requests per subject per minute, with
    /// bursts up to the same number.
    #[must_use]
    pub fn new(per_minute: NonZeroU32) -> Self {
        Self::with_clock(per_minute, DefaultClock::default())
    }
}

impl<C: Clock> RateLimiter<C> {
    /// The limiter over `clock`.
    pub fn with_clock(per_minute: NonZeroU32, clock: C) -> Self {
        let gcra = Gcra::dashmap_with_clock(Quota::per_minute(per_minute), clock)
            .with_middleware::<StateInformationMiddleware>();
        Self { per_minute, gcra, checks: AtomicU64::new(0) }
    }

    /// The configured requests per subject per minute.
    #[must_use]
    pub fn per_minute(&self) -> u32 {
        self.per_minute.get()
    }

    /// Takes one request from `subject`'s budget.
    pub fn check(&self, subject: &str) -> Budget {
        let n = self.checks.fetch_add(1, Ordering::Relaxed);
        if n % PRUNE_EVERY == PRUNE_EVERY - 1 || self.gcra.len() >= MAX_TRACKED_SUBJECTS {
            self.prune();
        }
        match self.gcra.check_key(&subject.to_owned()) {
            Ok(state) => Budget::Allowed { remaining: state.remaining_burst_capacity() },
            Err(not_until) => Budget::Exhausted { retry_after: not_until.wait_time_from(self.gcra.clock().now()) },
        }
    }

    /// Forgets the subjects whose budget has been full again for at least
    /// one refill interval (`60 s / per_minute`).
    pub fn prune(&self) {
        self.gcra.retain_recent();
        self.gcra.shrink_to_fit();
    }

    /// The subjects currently remembered.
    #[must_use]
    pub fn tracked_subjects(&self) -> usize {
        self.gcra.len()
    }

    /// The 429 refusal for a budget exhausted until `retry_after`.
    ///
    /// Headers: `Retry-After` (RFC 9110, whole seconds, rounded up so that a
    /// client retrying on time is allowed) and the RateLimit fields of the
    /// IETF draft in their separate-field form: `RateLimit-Limit`,
    /// `RateLimit-Remaining` (0), `RateLimit-Reset` (seconds until a request
    /// is allowed again: the budget refills continuously, so there is no
    /// window boundary to name) and `RateLimit-Policy` (`N;w=60`). The
    /// separate fields are plain integers every HTTP client can read,
    /// whereas the combined structured-field `RateLimit` header has changed
    /// syntax from one draft to the next.
    fn refusal(&self, retry_after: Duration) -> ContextError {
        let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
        let seconds = seconds.max(1);
        let limit = self.per_minute.get();
        let header = |name: &'static str, value: String| {
            // Digits, `;` and `=` only: always a valid header value.
            HeaderValue::try_from(value).ok().map(|v| (HeaderName::from_static(name), v))
        };
        let headers = [
            header("retry-after", seconds.to_string()),
            header("ratelimit-limit", limit.to_string()),
            header("ratelimit-remaining", "0".to_owned()),
            header("ratelimit-reset", seconds.to_string()),
            header("ratelimit-policy", format!("{limit};w=60")),
        ];
        ContextError {
            code: crate::transport::codes::RATE_LIMITED,
            message: format!("too many requests for this subject; retry in {seconds} s"),
            headers: headers.into_iter().flatten().collect(),
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
        self.limiter = NonZeroU32::new(per_minute).map(RateLimiter::new);
        self
    }

    async fn principal(&self, token: Option<&str>) -> Result<Option<Principal>, ContextError> {
        let principal = match token {
            None => None,
            Some(t) => Some(self.verifier.authenticate(t).await.map_err(|e| auth_refusal(&e))?),
        };
        if let (Some(revocations), Some(p)) = (&self.revocations, &principal) {
            check_not_revoked(revocations, p).await?;
        }
        if let (Some(limiter), Some(p)) = (&self.limiter, &principal)
            && let Budget::Exhausted { retry_after } = limiter.check(p.subject())
        {
            return Err(limiter.refusal(retry_after));
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

/// The answer to a token that did not authenticate: 401 for a refused
/// token, 403 for a genuine token naming no person Tandem knows, 503 with
/// `Retry-After` while the identity provider's keys have not arrived, 500
/// (details logged) for the rest.
#[must_use]
pub fn auth_refusal(e: &AuthError) -> ContextError {
    use crate::transport::codes;
    match e.api_code() {
        codes::UNAUTHENTICATED => {
            tracing::debug!(error = %e, code = e.code(), "token refused");
            ContextError::unauthenticated(format!("invalid token: {e}"))
        }
        codes::FORBIDDEN => {
            tracing::info!(error = %e, code = e.code(), "verified token refused: no person");
            ContextError::forbidden(e.to_string())
        }
        codes::AUTH_UNAVAILABLE => {
            let retry_after = match e {
                AuthError::KeysUnavailable { retry_after_secs } => *retry_after_secs,
                _ => 1,
            };
            ContextError {
                code: codes::AUTH_UNAVAILABLE,
                message: e.to_string(),
                headers: HeaderValue::try_from(retry_after.to_string())
                    .ok()
                    .map(|v| (axum::http::header::RETRY_AFTER, v))
                    .into_iter()
                    .collect(),
            }
        }
        _ => {
            let cause = std::error::Error::source(e).map(ToString::to_string);
            tracing::error!(error = %e, cause, code = e.code(), "authenticating a token failed");
            ContextError {
                code: codes::INTERNAL_SERVER_ERROR,
                message: "the token could not be checked; retry".to_owned(),
                headers: Vec::new(),
            }
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
                headers: Vec::new(),
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use governor::clock::FakeRelativeClock;

    use super::*;

    fn limiter(per_minute: u32) -> (RateLimiter<FakeRelativeClock>, FakeRelativeClock) {
        let clock = FakeRelativeClock::default();
        let n = NonZeroU32::new(per_minute).expect("test budgets are positive");
        (RateLimiter::with_clock(n, clock.clone()), clock)
    }

    #[test]
    fn a_subject_gets_its_budget_then_waits_for_one_refill() {
        let (limiter, clock) = limiter(6);
        for remaining in (0..6).rev() {
            assert_eq!(limiter.check("alice"), Budget::Allowed { remaining });
        }
        // Six a minute: one request back every 10 s.
        assert_eq!(limiter.check("alice"), Budget::Exhausted { retry_after: Duration::from_secs(10) });
        assert_eq!(limiter.check("bob"), Budget::Allowed { remaining: 5 }, "budgets are per subject");
        clock.advance(Duration::from_secs(4));
        assert_eq!(limiter.check("alice"), Budget::Exhausted { retry_after: Duration::from_secs(6) });
        clock.advance(Duration::from_secs(6));
        assert_eq!(limiter.check("alice"), Budget::Allowed { remaining: 0 });
        assert!(matches!(limiter.check("alice"), Budget::Exhausted { .. }));
    }

    #[test]
    fn full_budgets_are_forgotten() {
        let (limiter, clock) = limiter(60);
        for i in 0..1_000 {
            assert!(matches!(limiter.check(&format!("subject-{i}")), Budget::Allowed { .. }));
        }
        assert_eq!(limiter.tracked_subjects(), 1_000);
        // One request a second refills: after 1 s every budget is full, and
        // governor forgets a budget once it has been full for one refill
        // interval more.
        clock.advance(Duration::from_millis(1_500));
        limiter.prune();
        assert_eq!(limiter.tracked_subjects(), 1_000, "budgets still refilling are kept");
        clock.advance(Duration::from_millis(600));
        limiter.prune();
        assert_eq!(limiter.tracked_subjects(), 0);
    }

    #[test]
    fn pruning_runs_by_itself() {
        let (limiter, clock) = limiter(1);
        // Checks 1 .. PRUNE_EVERY - 1: every subject spends its budget.
        for i in 0..PRUNE_EVERY - 1 {
            assert!(matches!(limiter.check(&format!("once-{i}")), Budget::Allowed { .. }));
        }
        assert_eq!(limiter.tracked_subjects(), usize::try_from(PRUNE_EVERY - 1).expect("small"));
        clock.advance(Duration::from_secs(121));
        // The next check prunes first: every budget has been full again for
        // a refill interval.
        assert!(matches!(limiter.check("once-0"), Budget::Allowed { .. }));
        assert_eq!(limiter.tracked_subjects(), 1);
    }

    #[test]
    fn concurrent_requests_of_one_subject_never_exceed_the_budget() {
        let (limiter, _clock) = limiter(50);
        let limiter = Arc::new(limiter);
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let limiter = limiter.clone();
                std::thread::spawn(move || {
                    (0..100).filter(|_| matches!(limiter.check("alice"), Budget::Allowed { .. })).count()
                })
            })
            .collect();
        let allowed: usize = threads.into_iter().map(|t| t.join().expect("no thread panics")).sum();
        assert_eq!(allowed, 50);
    }

    #[test]
    fn the_refusal_carries_retry_after_and_the_ratelimit_fields() {
        let (limiter, _clock) = limiter(120);
        let error = limiter.refusal(Duration::from_millis(400));
        assert_eq!(error.code, "RATE_LIMITED");
        assert_eq!(error.http_status(), axum::http::StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(header_of(&error, "retry-after"), "1", "rounded up, never 0");
        assert_eq!(header_of(&error, "ratelimit-limit"), "120");
        assert_eq!(header_of(&error, "ratelimit-remaining"), "0");
        assert_eq!(header_of(&error, "ratelimit-reset"), "1");
        assert_eq!(header_of(&error, "ratelimit-policy"), "120;w=60");
        let error = limiter.refusal(Duration::from_secs(30));
        assert_eq!(header_of(&error, "retry-after"), "30");
        assert_eq!(error.headers.len(), 5);
    }

    fn header_of<'a>(error: &'a ContextError, name: &str) -> &'a str {
        error.headers.iter().find(|(n, _)| n == name).and_then(|(_, v)| v.to_str().ok()).unwrap_or_default()
    }
}
