//! The identity provider's key set, fetched from its JWKS URL and cached.
//!
//! [`RemoteJwks`] holds the last good key set and decides when to fetch a
//! new one:
//! * at start-up ([`RemoteJwks::refresh`] from `Verifier::prefetch`), but the
//!   server starts even when the provider cannot be reached: until a set
//!   arrives, tokens are answered `AUTH_UNAVAILABLE` (HTTP 503 with
//!   `Retry-After`), never let through;
//! * when the set is older than its lifetime: the provider's
//!   `Cache-Control: max-age` within [`JwksCache`]'s bounds (5 min when it
//!   says nothing). The stale set keeps verifying while one background task
//!   fetches, so no request waits for the provider;
//! * when a token names a `kid` the set does not hold (the provider rotated
//!   its keys): the request waits for one fetch and is verified against the
//!   new set. Concurrent requests share that fetch.
//!
//! Whatever the trigger, no fetch starts within
//! [`JwksCache::min_refetch_interval`] of the previous one, so made-up key
//! ids cannot make the API hammer the provider: they are refused from the
//! cached set. When a fetch fails (the provider is down, answers an error or
//! a document without a usable key) the last good set keeps serving; the
//! failure is logged at WARN once per distinct reason, and the recovery at
//! INFO.
//!
//! With [`JwksMetrics`] registered, `tandem_jwks_fetches_total{outcome}`
//! counts fetches (`ok`, `error`) and the ones the rate limit turned away
//! (`rate_limited`: a flood of made-up key ids shows here), and
//! `tandem_jwks_keys` the usable keys of the current set.
//!
//! The URL is the operator's, never the token's (`jku` and `x5u` are
//! refused before anything is fetched). Redirects are not followed, and the
//! body is capped at [`MAX_JWKS_BYTES`].

use std::fmt;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};

use prometheus::{IntCounterVec, IntGauge, Opts, Registry};
use reqwest::Url;
use reqwest::header::{ACCEPT, CACHE_CONTROL, HeaderMap};

use super::AuthError;
use super::config::JwksCache;
use super::keys::{KeySet, parse_remote_jwks};

/// The largest key set accepted, in bytes. Real ones are a few KiB.
pub const MAX_JWKS_BYTES: usize = 512 * 1024;

/// The key set and what is known about its freshness.
#[derive(Default)]
struct Cached {
    /// The last good set; `None` until the first fetch succeeds.
    keys: Option<Arc<KeySet>>,
    /// Until when `keys` is fresh.
    fresh_until: Option<Instant>,
}

/// The bookkeeping of fetches, behind the one lock that serialises them.
#[derive(Default)]
struct Fetches {
    /// When the last fetch started: the rate limit counts from here.
    last_started: Option<Instant>,
    /// The reason of the failure last logged, so a provider that stays down
    /// is logged once, not once per attempt.
    failing: Option<String>,
}

/// The metrics of a remote key set (see the module doc).
#[derive(Clone, Debug)]
pub(super) struct JwksMetrics {
    fetches: IntCounterVec,
    keys: IntGauge,
}

impl JwksMetrics {
    /// Registers the metrics with `registry`.
    pub(super) fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let fetches = IntCounterVec::new(
            Opts::new(
                "tandem_jwks_fetches_total",
                "Fetches of the identity provider's JWKS by outcome (ok, error, rate_limited: not started).",
            ),
            &["outcome"],
        )?;
        let keys = IntGauge::new("tandem_jwks_keys", "Usable keys in the identity provider's current JWKS.")?;
        registry.register(Box::new(fetches.clone()))?;
        registry.register(Box::new(keys.clone()))?;
        Ok(Self { fetches, keys })
    }
}

/// A key set fetched from a URL (see the module doc).
pub struct RemoteJwks {
    url: Url,
    client: reqwest::Client,
    policy: JwksCache,
    cached: RwLock<Cached>,
    /// Held during a fetch: the single flight.
    fetches: tokio::sync::Mutex<Fetches>,
    /// Set while a background refresh of a stale set is under way.
    refreshing: AtomicBool,
    /// Set once, when the server registers them.
    metrics: OnceLock<JwksMetrics>,
}

impl fmt::Debug for RemoteJwks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kids = self.current().map(|keys| sorted_kids(&keys));
        f.debug_struct("RemoteJwks").field("url", &self.url.as_str()).field("key_ids", &kids).finish_non_exhaustive()
    }
}

impl RemoteJwks {
    /// Checks the URL and the cache bounds; fetches nothing yet.
    ///
    /// # Errors
    /// [`AuthError::InvalidJwksUrl`] for a URL that is not absolute `https`
    /// (or `http` to a loopback address, or anywhere with `allow_http`), or
    /// that carries credentials; [`AuthError::InvalidJwksCache`] for bounds
    /// out of order.
    pub(super) fn new(url: &str, allow_http: bool, policy: JwksCache) -> Result<Self, AuthError> {
        let url = check_url(url, allow_http)?;
        check_policy(&policy)?;
        let client = reqwest::Client::builder()
            .timeout(policy.fetch_timeout)
            .connect_timeout(policy.fetch_timeout)
            // The operator named this URL; a redirect would let whoever
            // answers it name another one.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("tandem/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| AuthError::InvalidJwksUrl { reason: format!("cannot build the HTTP client: {err}") })?;
        Ok(Self {
            url,
            client,
            policy,
            cached: RwLock::new(Cached::default()),
            fetches: tokio::sync::Mutex::new(Fetches::default()),
            refreshing: AtomicBool::new(false),
            metrics: OnceLock::new(),
        })
    }

    /// Records into `metrics` from now on (the first registration wins).
    pub(super) fn set_metrics(&self, metrics: JwksMetrics) {
        if let Some(keys) = self.current() {
            metrics.keys.set(i64::try_from(keys.len()).unwrap_or(i64::MAX));
        }
        let _ = self.metrics.set(metrics);
    }

    fn count(&self, outcome: &str) {
        if let Some(metrics) = self.metrics.get() {
            metrics.fetches.with_label_values(&[outcome]).inc();
        }
    }

    /// The last good key set, if any.
    pub(super) fn current(&self) -> Option<Arc<KeySet>> {
        self.read().keys.clone()
    }

    /// The last good key set; when it is stale, a background refresh is
    /// started (at most one at a time, and only inside a Tokio runtime).
    pub(super) fn current_refreshing(self: &Arc<Self>) -> Option<Arc<KeySet>> {
        let (keys, stale) = {
            let cached = self.read();
            (cached.keys.clone(), cached.fresh_until.is_none_or(|until| Instant::now() >= until))
        };
        if stale
            && keys.is_some()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
            && !self.refreshing.swap(true, Ordering::AcqRel)
        {
            let this = Arc::clone(self);
            runtime.spawn(async move {
                this.refresh().await;
                this.refreshing.store(false, Ordering::Release);
            });
        }
        keys
    }

    /// Fetches the key set unless a fetch started less than the minimum
    /// interval ago; waits for a fetch under way instead of starting
    /// another. Returns whether a key set is at hand afterwards.
    pub(super) async fn refresh(&self) -> bool {
        let mut fetches = self.fetches.lock().await;
        if fetches.last_started.is_some_and(|at| at.elapsed() < self.policy.min_refetch_interval) {
            self.count("rate_limited");
            return self.current().is_some();
        }
        fetches.last_started = Some(Instant::now());
        match self.fetch().await {
            Ok((keys, skipped, ttl)) => {
                let kids = sorted_kids(&keys);
                let changed = self.current().is_none_or(|old| sorted_kids(&old) != kids);
                if fetches.failing.take().is_some() {
                    tracing::info!(url = %self.url, key_ids = ?kids, "JWKS fetched again after failures");
                } else if changed {
                    tracing::info!(url = %self.url, key_ids = ?kids, ttl_secs = ttl.as_secs(), "JWKS fetched");
                } else {
                    tracing::debug!(url = %self.url, ttl_secs = ttl.as_secs(), "JWKS unchanged");
                }
                if !skipped.is_empty() && changed {
                    tracing::info!(url = %self.url, skipped = ?skipped, "JWKS keys Tandem cannot use were skipped");
                }
                self.count("ok");
                if let Some(metrics) = self.metrics.get() {
                    metrics.keys.set(i64::try_from(keys.len()).unwrap_or(i64::MAX));
                }
                let mut cached = self.write();
                cached.keys = Some(Arc::new(keys));
                cached.fresh_until = Some(Instant::now() + ttl);
                true
            }
            Err(reason) => {
                self.count("error");
                let have = self.current().is_some();
                if fetches.failing.as_deref() != Some(reason.as_str()) {
                    tracing::warn!(
                        url = %self.url,
                        reason = %reason,
                        serving_cached_keys = have,
                        "fetching the JWKS failed; {}",
                        if have { "the last good key set keeps verifying tokens" } else { "tokens cannot be verified until it succeeds" }
                    );
                    fetches.failing = Some(reason);
                }
                have
            }
        }
    }

    /// Seconds until a fetch may start again (at least 1), for `Retry-After`.
    pub(super) fn retry_after_secs(&self) -> u64 {
        let wait = self
            .fetches
            .try_lock()
            .ok()
            .and_then(|fetches| fetches.last_started)
            .map_or(Duration::ZERO, |at| self.policy.min_refetch_interval.saturating_sub(at.elapsed()));
        (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
    }

    /// One GET of the URL: the usable keys, the skipped ones, and the
    /// lifetime the response grants.
    async fn fetch(&self) -> Result<(KeySet, Vec<String>, Duration), String> {
        let mut response = self
            .client
            .get(self.url.clone())
            .header(ACCEPT, "application/jwk-set+json, application/json")
            .send()
            .await
            .map_err(|err| format!("request failed: {}", error_chain(&err)))?;
        let status = response.status();
        if status != reqwest::StatusCode::OK {
            return Err(format!("answered HTTP {}", status.as_u16()));
        }
        if response.content_length().is_some_and(|len| len > MAX_JWKS_BYTES as u64) {
            return Err(format!("the key set is larger than {MAX_JWKS_BYTES} bytes"));
        }
        let ttl = lifetime(response.headers(), &self.policy);
        let mut body = Vec::new();
        while let Some(chunk) =
            response.chunk().await.map_err(|err| format!("reading failed: {}", error_chain(&err)))?
        {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err(format!("the key set is larger than {MAX_JWKS_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        let (keys, skipped) = parse_remote_jwks(&body)?;
        if keys.is_empty() {
            return Err(format!("the key set holds no key Tandem can use (skipped: {})", skipped.join("; ")));
        }
        Ok((keys, skipped, ttl))
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Cached> {
        // A panic while holding the lock cannot leave `Cached` half
        // written (each write replaces whole fields), so a poisoned lock is
        // still sound to use.
        self.cached.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Cached> {
        self.cached.write().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The key ids of a set, sorted (for the log and to tell a change).
fn sorted_kids(keys: &KeySet) -> Vec<String> {
    let mut kids: Vec<String> = keys.keys().cloned().collect();
    kids.sort_unstable();
    kids
}

/// An error with its sources, for the log (reqwest's top-level message
/// alone says little: "error sending request").
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The accepted JWKS URL: absolute, `https`, or `http` to a loopback host
/// (or anywhere with `allow_http`), without user info.
fn check_url(url: &str, allow_http: bool) -> Result<Url, AuthError> {
    let invalid = |reason: &str| AuthError::InvalidJwksUrl { reason: reason.to_owned() };
    let parsed =
        Url::parse(url.trim()).map_err(|err| AuthError::InvalidJwksUrl { reason: format!("not a URL: {err}") })?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(invalid("must not carry credentials"));
    }
    match parsed.scheme() {
        "https" => {}
        "http" if allow_http || is_loopback(&parsed) => {}
        "http" => {
            return Err(invalid(
                "must be https (http only to a loopback address, or with TANDEM_JWT_JWKS_ALLOW_HTTP=true)",
            ));
        }
        _ => return Err(invalid("must be an https URL")),
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(invalid("has no host"));
    }
    Ok(parsed)
}

/// Whether the URL's host is `localhost` or a loopback address.
fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

fn check_policy(policy: &JwksCache) -> Result<(), AuthError> {
    let invalid = |reason: &str| AuthError::InvalidJwksCache { reason: reason.to_owned() };
    if policy.min_ttl > policy.max_ttl {
        return Err(invalid("the shortest lifetime exceeds the longest"));
    }
    if policy.default_ttl < policy.min_ttl || policy.default_ttl > policy.max_ttl {
        return Err(invalid("the default lifetime lies outside the bounds"));
    }
    if policy.fetch_timeout.is_zero() {
        return Err(invalid("the fetch timeout must be positive"));
    }
    Ok(())
}

/// How long a response's key set is fresh: `Cache-Control: max-age`
/// clamped to the policy's bounds; `no-cache`, `no-store` and `max-age=0`
/// give the shortest lifetime; nothing usable gives the default.
fn lifetime(headers: &HeaderMap, policy: &JwksCache) -> Duration {
    let mut max_age = None;
    let mut no_cache = false;
    for value in headers.get_all(CACHE_CONTROL) {
        let Ok(value) = value.to_str() else { continue };
        for directive in value.split(',').map(str::trim) {
            let (name, argument) = directive.split_once('=').map_or((directive, None), |(n, a)| (n.trim(), Some(a)));
            if name.eq_ignore_ascii_case("no-cache") || name.eq_ignore_ascii_case("no-store") {
                no_cache = true;
            } else if name.eq_ignore_ascii_case("max-age")
                && let Some(seconds) = argument.and_then(|a| a.trim().trim_matches('"').parse::<u64>().ok())
            {
                // The first max-age counts, as RFC 9111 §4.2.1 asks.
                max_age.get_or_insert(seconds);
            }
        }
    }
    let ttl = if no_cache { Duration::ZERO } else { max_age.map_or(policy.default_ttl, Duration::from_secs) };
    ttl.clamp(policy.min_ttl, policy.max_ttl)
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "a test fails by panicking")]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    fn ttl(values: &[&str]) -> Duration {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(CACHE_CONTROL, HeaderValue::from_str(value).unwrap());
        }
        lifetime(&headers, &JwksCache::default())
    }

    #[test]
    fn max_age_is_honoured_within_bounds() {
        assert_eq!(ttl(&[]), Duration::from_secs(300), "default");
        assert_eq!(ttl(&["public, max-age=3600"]), Duration::from_secs(3600));
        assert_eq!(ttl(&["max-age=5"]), Duration::from_secs(30), "at least the minimum");
        assert_eq!(ttl(&["max-age=0"]), Duration::from_secs(30));
        assert_eq!(ttl(&["no-cache"]), Duration::from_secs(30));
        assert_eq!(ttl(&["no-store, max-age=600"]), Duration::from_secs(30));
        assert_eq!(ttl(&["max-age=999999999"]), Duration::from_secs(86_400), "at most a day");
        assert_eq!(ttl(&["max-age=\"120\""]), Duration::from_secs(120));
        assert_eq!(ttl(&["max-age=abc"]), Duration::from_secs(300), "unparsable: the default");
        assert_eq!(ttl(&["max-age=60", "max-age=7200"]), Duration::from_secs(60), "the first counts");
    }

    #[test]
    fn only_https_or_loopback_http_urls_are_accepted() {
        for ok in [
            "https://idp.example.com/.well-known/jwks.json",
            "http://127.0.0.1:8080/jwks",
            "http://localhost/jwks",
            "http://[::1]:9000/jwks",
        ] {
            check_url(ok, false).unwrap();
        }
        for bad in [
            "http://idp.example.com/jwks",
            "ftp://idp.example.com/jwks",
            "file:///etc/jwks.json",
            "https://user:pass@idp.example.com/jwks",
            "idp.example.com/jwks",
            "",
        ] {
            assert!(matches!(check_url(bad, false), Err(AuthError::InvalidJwksUrl { .. })), "{bad}");
        }
        check_url("http://keycloak.auth.svc:8080/realms/x/protocol/openid-connect/certs", true).unwrap();
    }

    #[test]
    fn cache_bounds_must_be_ordered() {
        check_policy(&JwksCache::default()).unwrap();
        let inverted =
            JwksCache { min_ttl: Duration::from_secs(100), max_ttl: Duration::from_secs(10), ..JwksCache::default() };
        assert!(check_policy(&inverted).is_err());
        let outside = JwksCache { default_ttl: Duration::from_secs(1), ..JwksCache::default() };
        assert!(check_policy(&outside).is_err());
    }
}
