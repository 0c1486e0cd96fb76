//! The values that go into the store and come out of it.
//!
//! [`NewEvent`] is what a command handler appends; [`RecordedEvent`] is what
//! every reader gets back, with the store's bookkeeping (position,
//! transaction, version, time) and its data already upcast to today's shape.
//! [`Metadata`] travels with every event in its own `jsonb` column.
//! [`crate::ExpectedVersion`] has a module of its own, [`crate::version`],
//! because errors name it too.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::cursor::{Cursor, parse_xid8};
use crate::error::{Result, StoreError};
use crate::upcast::Upcaster;

/// An event to append: already serialised by the domain.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// Chosen by the writer (UUID v7), unique across the store, so a blind
    /// retry cannot store the same event twice.
    pub event_id: Uuid,
    /// The event's name, e.g. `PairFormed`.
    pub event_type: String,
    /// The shape `data` is written in (>= 1); readers upcast from it.
    pub schema_version: i16,
    /// The event's payload.
    pub data: Value,
}

impl NewEvent {
    /// A new event with a fresh UUID v7 id.
    pub fn new(event_type: impl Into<String>, schema_version: i16, data: Value) -> Self {
        NewEvent { event_id: Uuid::now_v7(), event_type: event_type.into(), schema_version, data }
    }
}

/// Who acted: the authenticated subject and the role they acted in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// The token's subject (a person id for participants, a client id for
    /// integrators).
    pub subject: String,
    /// The role the command was authorised under.
    pub role: String,
}

/// Why and by whom an event was written; stored as the `metadata` column.
///
/// `recorded_at` is deliberately not here: the database's clock stamps the
/// row, so all events of one transaction share one time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// Who caused the event.
    pub actor: Actor,
    /// Groups everything one client request caused, across streams.
    pub correlation_id: Uuid,
    /// The event or command that directly caused this one, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<Uuid>,
    /// The client's idempotency key, for audits ("which retry wrote this?").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// The distributed trace the write happened in, to jump from an event
    /// to its request's trace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
}

/// A stored event as every reader sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedEvent {
    /// Insertion order in the table (not commit order, see [`Cursor`]).
    pub position: i64,
    /// The writing transaction's xid8.
    pub transaction_id: u64,
    pub stream_id: Uuid,
    pub stream_type: String,
    /// 1, 2, 3 … within the stream.
    pub stream_version: i32,
    pub event_id: Uuid,
    /// Today's type name (after upcasting).
    pub event_type: String,
    /// Today's schema version (after upcasting).
    pub schema_version: i16,
    /// Today's shape of the payload (after upcasting).
    pub data: Value,
    pub metadata: Metadata,
    /// When the writing transaction started, by the database's clock.
    pub recorded_at: DateTime<Utc>,
}

impl RecordedEvent {
    /// The cursor right at this event: reading after it continues with the
    /// next one.
    pub fn cursor(&self) -> Cursor {
        Cursor::new(self.transaction_id, self.position)
    }
}

/// What an append stored.
#[derive(Debug, Clone, PartialEq)]
pub struct AppendOutcome {
    pub stream_id: Uuid,
    /// Position of the first event appended.
    pub first_position: i64,
    /// Position of the last event appended.
    pub last_position: i64,
    /// The transaction that wrote them.
    pub transaction_id: u64,
    /// The stream's version after this append: what the next append to it
    /// should expect.
    pub next_expected_version: i32,
    /// The events as stored, in stream order.
    pub events: Vec<RecordedEvent>,
}

impl AppendOutcome {
    /// The cursor a client waits on for read-your-writes: a reader (projection)
    /// that has reached it has seen every event of this append.
    pub fn commit_cursor(&self) -> Cursor {
        Cursor::new(self.transaction_id, self.last_position)
    }
}

/// A row of `events` as selected with `event_columns!()`.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct EventRow {
    pub position: i64,
    pub transaction_id_text: String,
    pub stream_id: Uuid,
    pub stream_type: String,
    pub stream_version: i32,
    pub event_id: Uuid,
    pub event_type: String,
    pub schema_version: i16,
    pub data: Value,
    pub metadata: Value,
    pub recorded_at: DateTime<Utc>,
}

impl EventRow {
    /// Decodes the row and brings its data to today's shape.
    pub(crate) fn into_recorded(self, upcaster: &dyn Upcaster) -> Result<RecordedEvent> {
        let position = self.position;
        let transaction_id = parse_xid8(&self.transaction_id_text).ok_or_else(|| StoreError::Decode {
            position,
            reason: format!("transaction id {:?} is not an xid8", self.transaction_id_text),
        })?;
        let metadata: Metadata = serde_json::from_value(self.metadata)
            .map_err(|error| StoreError::Decode { position, reason: format!("metadata: {error}") })?;
        let (event_type, schema_version, data) =
            upcaster.upcast(&self.event_type, self.schema_version, self.data).map_err(|source| StoreError::Upcast {
                position,
                event_type: self.event_type.clone(),
                schema_version: self.schema_version,
                source,
            })?;
        Ok(RecordedEvent {
            position,
            transaction_id,
            stream_id: self.stream_id,
            stream_type: self.stream_type,
            stream_version: self.stream_version,
            event_id: self.event_id,
            event_type,
            schema_version,
            data,
            metadata,
            recorded_at: self.recorded_at,
        })
    }
}

/// Decodes rows in order, stopping at the first that fails.
pub(crate) fn decode_rows(rows: Vec<EventRow>, upcaster: &dyn Upcaster) -> Result<Vec<RecordedEvent>> {
    rows.into_iter().map(|row| row.into_recorded(upcaster)).collect()
}
