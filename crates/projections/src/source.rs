//! Reading the event log for projections: an [`EventStore`] that reads
//! through the domain's upcaster chain, and decoding into [`Envelope`]s.

use std::sync::Arc;

use sqlx::PgPool;
use tandem_domain::event::StoredEvent;
use tandem_store::{DomainUpcaster, EventStore, RecordedEvent};

use crate::error::{ProjectionError, Result};
use crate::projection::Envelope;

/// An event store over `pool` that upcasts what it reads.
pub(crate) fn store(pool: PgPool) -> EventStore {
    EventStore::with_upcaster(pool, Arc::new(DomainUpcaster))
}

/// Decodes a batch, leniently: an event a newer version of Tandem wrote and
/// this build cannot interpret becomes [`tandem_domain::DomainEvent::Unrecognised`],
/// which every read model passes over, and the checkpoint moves past it like
/// any other. An event this build should understand and does not (a
/// malformed payload) stops the batch: skipping it would leave the read
/// models silently wrong.
pub(crate) fn decode(events: Vec<RecordedEvent>) -> Result<Vec<Envelope>> {
    events
        .into_iter()
        .map(|e| {
            // `data` is already upcast, so the read's own upcast is a no-op;
            // the clone keeps the stored payload on the envelope.
            match StoredEvent::read(e.stream_id, &e.event_type, e.schema_version, e.data.clone()) {
                Ok(read) => {
                    if let tandem_domain::DomainEvent::Unrecognised(u) = &read.event {
                        tracing::debug!(cursor = %e.cursor(), event_type = %u.event_type, schema_version = u.schema_version, "passing over an event this build does not understand");
                    }
                    Ok((e, read.event))
                }
                Err(source) => {
                    Err(ProjectionError::Decode { cursor: e.cursor(), event_type: e.event_type.clone(), source })
                }
            }
        })
        .collect()
}
