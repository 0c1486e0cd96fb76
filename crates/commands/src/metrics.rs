//! The command service's metrics: the events it commits, counted where
//! they are appended (an idempotent replay appends nothing and counts
//! nothing).

use prometheus::{IntCounterVec, Opts, Registry};
use tandem_store::RecordedEvent;

/// The name of the counter of committed events, labelled `event_type`.
pub const EVENTS_APPENDED: &str = "tandem_events_appended_total";

/// The help text of [`EVENTS_APPENDED`].
const EVENTS_APPENDED_HELP: &str = "Events appended to the event store by this process, by type.";

/// The counter of committed events ([`EVENTS_APPENDED`]), or nothing for a
/// service without a registry (tests, tools). Clones share the counter.
#[derive(Clone, Debug, Default)]
pub struct EventMetrics {
    appended: Option<IntCounterVec>,
}

impl EventMetrics {
    /// Creates the counter and registers it into `registry`. Fails when the
    /// registry already holds a metric of that name.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let appended = IntCounterVec::new(Opts::new(EVENTS_APPENDED, EVENTS_APPENDED_HELP), &["event_type"])?;
        registry.register(Box::new(appended.clone()))?;
        Ok(Self { appended: Some(appended) })
    }

    /// Counts `events`, which have just been committed.
    pub fn record(&self, events: &[RecordedEvent]) {
        if let Some(appended) = &self.appended {
            for e in events {
                appended.with_label_values(&[e.event_type.as_str()]).inc();
            }
        }
    }
}
