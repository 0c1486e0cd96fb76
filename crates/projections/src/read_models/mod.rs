//! Tandem's read models, one module per projection. Each module holds the
//! projection (its DDL and `apply`) and the row types of its tables, which
//! [`crate::queries`] returns to the API.
//!
//! Every `apply` works the same way, so that a batch of hundreds of events
//! costs a handful of statements rather than one per event: load the rows
//! the batch touches (`to_jsonb`), fold the events into them in memory in
//! log order, then write the changed rows back as one JSON batch per table.
//! Rows keep only facts derived from events (timestamps are the events'
//! `recorded_at`, never `now()`), so a rebuild reproduces them exactly.
//!
//! Erasure: a read model that keeps personal data (names, contact details,
//! free text) blanks it when the person it concerns is erased, in the same
//! batch as the `PersonErased` event. A rebuild after the erasure reads the
//! same fields as erased (their keys are gone) and writes the same blanks.

pub mod pairs;
pub mod participation;
pub mod people;
pub mod programs;
pub mod webhooks;

use tandem_domain::DomainEvent;
use tandem_domain::person::PersonEvent;
use uuid::Uuid;

use crate::projection::Envelope;

/// The people a batch erases.
pub(crate) fn erased(events: &[Envelope]) -> Vec<Uuid> {
    events
        .iter()
        .filter_map(|(_, e)| match e {
            DomainEvent::Person(PersonEvent::PersonErased(e)) => Some(e.person_id.as_uuid()),
            _ => None,
        })
        .collect()
}
