//! The retry schedule and what each answer of a receiver means.
//!
//! The Standard Webhooks schedule: the first attempt at once, then retries
//! 5 seconds, 5 minutes, 30 minutes, 2 hours, 5 hours, 10 hours and 10 hours
//! after each failure: eight attempts over about 27.6 hours. A timeout, a
//! connection failure, a 5xx or a 429 is retried; a 429 or 503 with
//! `Retry-After` (seconds or an HTTP date) waits that long instead (at most
//! a day). Any other 4xx, and a 3xx (redirects are never followed), is not
//! retried. When an attempt that is not retried fails, the endpoint is
//! marked failing and its deliveries wait for `redeliverWebhooks`.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// The longest `Retry-After` honoured.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// The delays before each retry; the number of attempts is one more.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetrySchedule {
    delays: Vec<Duration>,
}

impl Default for RetrySchedule {
    /// The Standard Webhooks schedule.
    fn default() -> Self {
        let m = 60;
        let h = 3600;
        Self::new([5, 5 * m, 30 * m, 2 * h, 5 * h, 10 * h, 10 * h].into_iter().map(Duration::from_secs).collect())
    }
}

impl RetrySchedule {
    /// A schedule with these delays (tests use short ones).
    #[must_use]
    pub fn new(delays: Vec<Duration>) -> Self {
        Self { delays }
    }

    /// How many attempts an event gets.
    #[must_use]
    pub fn attempts(&self) -> usize {
        self.delays.len() + 1
    }

    /// The delay after the `failed`-th failed attempt (1-based), or `None`
    /// when that was the last attempt.
    #[must_use]
    pub fn after_failure(&self, failed: usize) -> Option<Duration> {
        failed.checked_sub(1).and_then(|i| self.delays.get(i)).copied()
    }
}

/// What one attempt came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A 2xx.
    Delivered,
    /// A failure worth another attempt; with the receiver's `Retry-After`.
    Retry { retry_after: Option<Duration> },
    /// A failure another attempt would not change.
    Final,
}

/// The verdict on an HTTP status, with the `Retry-After` header if any.
#[must_use]
pub fn judge(status: u16, retry_after: Option<&str>, now: DateTime<Utc>) -> Verdict {
    match status {
        200..=299 => Verdict::Delivered,
        429 | 503 => Verdict::Retry { retry_after: retry_after.and_then(|v| parse_retry_after(v, now)) },
        500..=599 | 408 => Verdict::Retry { retry_after: None },
        _ => Verdict::Final,
    }
}

/// Parses `Retry-After`: delay seconds or an HTTP date; capped at
/// [`MAX_RETRY_AFTER`].
#[must_use]
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let v = value.trim();
    let d = if let Ok(secs) = v.parse::<u64>() {
        Duration::from_secs(secs)
    } else {
        let at = DateTime::parse_from_rfc2822(v).ok()?.with_timezone(&Utc);
        (at - now).to_std().unwrap_or(Duration::ZERO)
    };
    Some(d.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_schedule_is_the_specifications() {
        let s = RetrySchedule::default();
        assert_eq!(s.attempts(), 8);
        let secs: Vec<u64> = (1..8).map(|i| s.after_failure(i).expect("a retry").as_secs()).collect();
        assert_eq!(secs, [5, 300, 1800, 7200, 18_000, 36_000, 36_000]);
        assert_eq!(s.after_failure(8), None);
    }

    #[test]
    fn statuses_are_judged_as_the_specification_says() {
        let now = Utc::now();
        assert_eq!(judge(200, None, now), Verdict::Delivered);
        assert_eq!(judge(204, None, now), Verdict::Delivered);
        assert_eq!(judge(500, None, now), Verdict::Retry { retry_after: None });
        assert_eq!(judge(502, Some("7"), now), Verdict::Retry { retry_after: None });
        assert_eq!(judge(429, Some("7"), now), Verdict::Retry { retry_after: Some(Duration::from_secs(7)) });
        assert_eq!(judge(503, Some("120"), now), Verdict::Retry { retry_after: Some(Duration::from_secs(120)) });
        assert_eq!(judge(400, None, now), Verdict::Final);
        assert_eq!(judge(404, Some("5"), now), Verdict::Final);
        assert_eq!(judge(301, None, now), Verdict::Final);
    }

    #[test]
    fn retry_after_reads_dates_and_is_capped() {
        let now = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").expect("date").with_timezone(&Utc);
        assert_eq!(parse_retry_after("Thu, 01 Jan 2026 00:01:00 GMT", now), Some(Duration::from_secs(60)));
        assert_eq!(parse_retry_after("Wed, 31 Dec 2025 00:00:00 GMT", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("9999999", now), Some(MAX_RETRY_AFTER));
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
