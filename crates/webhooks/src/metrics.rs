//! The delivery metrics, registered in the API's registry (so `/metrics`
//! shows them beside the rest):
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `tandem_webhook_deliveries_total` | counter | `endpoint`, `outcome` (`delivered`, `retrying`, `failed`) |
//! | `tandem_webhook_queue_lag_events` | gauge | `endpoint` |
//! | `tandem_webhook_queue_lag_seconds` | gauge | `endpoint` |
//!
//! `endpoint` is the endpoint's id (endpoints are few, and their series go
//! when they are disabled). The lag is the events for the endpoint that are
//! readable but not done yet, and the age of the oldest of them.

use prometheus::{GaugeVec, IntCounterVec, IntGaugeVec, Opts, Registry};
use uuid::Uuid;

/// The metrics; clones share them. [`WebhookMetrics::default`] records
/// into nothing registered (tools, tests).
#[derive(Clone, Debug)]
pub struct WebhookMetrics {
    deliveries: IntCounterVec,
    lag_events: IntGaugeVec,
    lag_seconds: GaugeVec,
}

impl Default for WebhookMetrics {
    fn default() -> Self {
        Self::unregistered().expect("the metric definitions are valid")
    }
}

impl WebhookMetrics {
    fn unregistered() -> Result<Self, prometheus::Error> {
        Ok(Self {
            deliveries: IntCounterVec::new(
                Opts::new("tandem_webhook_deliveries_total", "Webhook delivery attempts, by endpoint and outcome."),
                &["endpoint", "outcome"],
            )?,
            lag_events: IntGaugeVec::new(
                Opts::new("tandem_webhook_queue_lag_events", "Events readable but not yet delivered, by endpoint."),
                &["endpoint"],
            )?,
            lag_seconds: GaugeVec::new(
                Opts::new(
                    "tandem_webhook_queue_lag_seconds",
                    "Age of the oldest event not yet delivered, by endpoint (0 when none waits).",
                ),
                &["endpoint"],
            )?,
        })
    }

    /// The metrics, registered into `registry`.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let m = Self::unregistered()?;
        registry.register(Box::new(m.deliveries.clone()))?;
        registry.register(Box::new(m.lag_events.clone()))?;
        registry.register(Box::new(m.lag_seconds.clone()))?;
        Ok(m)
    }

    /// Counts one attempt.
    pub fn attempt(&self, endpoint: Uuid, outcome: &str) {
        self.deliveries.with_label_values(&[endpoint.to_string().as_str(), outcome]).inc();
    }

    /// Sets an endpoint's lag.
    pub fn lag(&self, endpoint: Uuid, events: i64, seconds: f64) {
        let e = endpoint.to_string();
        self.lag_events.with_label_values(&[e.as_str()]).set(events);
        self.lag_seconds.with_label_values(&[e.as_str()]).set(seconds);
    }

    /// Drops the series of an endpoint that is no longer delivered to.
    pub fn forget(&self, endpoint: Uuid) {
        let e = endpoint.to_string();
        let _ = self.lag_events.remove_label_values(&[e.as_str()]);
        let _ = self.lag_seconds.remove_label_values(&[e.as_str()]);
    }

    /// The number of attempts counted for `endpoint` with `outcome`.
    #[must_use]
    pub fn attempts(&self, endpoint: Uuid, outcome: &str) -> u64 {
        self.deliveries.with_label_values(&[endpoint.to_string().as_str(), outcome]).get()
    }
}
