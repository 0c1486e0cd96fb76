//! Reading the event log for projections: an [`EventStore`] whose reads are
//! upcast to today's shapes, and decoding into [`Envelope`]s.

use std::sync::Arc;

use serde_json::Value;
use sqlx::PgPool;
use tandem_domain::DomainEvent;
use tandem_domain::event::{event_type_info, upcast};
use tandem_store::{EventStore, RecordedEvent, UpcastError, Upcaster};

use crate::error::{ProjectionError, Result};
use crate::projection::Envelope;

/// The domain's upcaster chain as the store's [`Upcaster`]. (The command
/// service has the same adapter; depending on that crate for ten lines
/// would tie the read side to the write side.)
#[derive(Clone, Copy, Debug, Default)]
struct DomainUpcaster;

impl Upcaster for DomainUpcaster {
    fn upcast(&self, event_type: &str, schema_version: i16, data: Value) -> Result<(String, i16, Value), UpcastError> {
        let Some((_, current)) = event_type_info(event_type) else {
            return Err(UpcastError::new(format!("unknown event type {event_type:?}")));
        };
        let data = upcast(event_type, schema_version, data).map_err(|e| UpcastError::new(e.to_string()))?;
        Ok((event_type.to_owned(), current, data))
    }
}

/// An event store over `pool` that upcasts what it reads.
pub(crate) fn store(pool: PgPool) -> EventStore {
    EventStore::with_upcaster(pool, Arc::new(DomainUpcaster))
}

/// Decodes a batch. An event that does not decode stops the batch: skipping
/// it would leave the read models silently wrong.
pub(crate) fn decode(events: Vec<RecordedEvent>) -> Result<Vec<Envelope>> {
    events
        .into_iter()
        .map(|e| {
            // `data` is already upcast, so decode's own upcast is a no-op;
            // the clone keeps the stored payload on the envelope.
            match DomainEvent::decode(&e.event_type, e.schema_version, e.data.clone()) {
                Ok(d) => Ok((e, d)),
                Err(source) => {
                    Err(ProjectionError::Decode { cursor: e.cursor(), event_type: e.event_type.clone(), source })
                }
            }
        })
        .collect()
}
