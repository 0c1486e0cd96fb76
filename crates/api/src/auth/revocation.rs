//! The deny list of revoked tokens, by `jti` (table `revoked_tokens`,
//! migration 0007).
//!
//! Every authenticated request asks [`Revocations::is_revoked`]. The answer
//! comes from an in-memory copy of the table that is re-read when it is
//! older than [`REFRESH_EVERY`], so a revocation takes effect on every
//! replica within about a second, without a restart, and the hot path costs
//! no query per request. Only rows added since the last read are fetched.
//!
//! If the table cannot be read, requests are refused (fail closed): a
//! revoked token must never pass because the database hiccuped.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tokio::sync::Mutex;

/// How old the in-memory copy may get before a request re-reads it.
pub const REFRESH_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, Default)]
struct Cache {
    revoked: HashSet<String>,
    /// Newest `revoked_at` seen: the next read fetches rows from it on.
    seen_until: Option<DateTime<Utc>>,
    read_at: Option<Instant>,
}

/// The revoked `jti`s, shared by every request of a process.
#[derive(Clone, Debug)]
pub struct Revocations {
    pool: PgPool,
    cache: Arc<Mutex<Cache>>,
}

impl Revocations {
    /// A deny list read from `pool`.
    #[must_use]
    pub fn new(pool: PgPool) -> Self {
        Self { pool, cache: Arc::new(Mutex::new(Cache::default())) }
    }

    /// Whether the token `jti` was revoked.
    ///
    /// # Errors
    /// The database error when the deny list cannot be read.
    pub async fn is_revoked(&self, jti: &str) -> Result<bool, sqlx::Error> {
        let mut cache = self.cache.lock().await;
        if cache.read_at.is_none_or(|t| t.elapsed() >= REFRESH_EVERY) {
            // A row's `revoked_at` is its transaction's start, which may
            // precede the newest one seen when transactions overlap: the
            // window reaches back ten seconds, and a set makes the repeats
            // harmless.
            let rows: Vec<(String, DateTime<Utc>)> = sqlx::query_as(
                "SELECT jti, revoked_at FROM revoked_tokens
                  WHERE $1::timestamptz IS NULL OR revoked_at >= $1 - interval '10 seconds'",
            )
            .bind(cache.seen_until)
            .fetch_all(&self.pool)
            .await?;
            for (jti, at) in rows {
                cache.seen_until = Some(cache.seen_until.map_or(at, |s| s.max(at)));
                cache.revoked.insert(jti);
            }
            cache.read_at = Some(Instant::now());
        }
        Ok(cache.revoked.contains(jti))
    }

    /// Revokes `jti` (idempotent: revoking twice keeps the first record).
    /// `expires_at` is when the token would have expired, if known.
    ///
    /// # Errors
    /// The database error.
    pub async fn revoke(
        pool: &PgPool,
        jti: &str,
        expires_at: Option<DateTime<Utc>>,
        reason: &str,
    ) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "INSERT INTO revoked_tokens (jti, expires_at, reason) VALUES ($1, $2, $3) ON CONFLICT (jti) DO NOTHING",
        )
        .bind(jti)
        .bind(expires_at)
        .bind(reason)
        .execute(pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
