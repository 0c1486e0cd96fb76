//! The export of the event log: every event after a cursor, in the log's
//! gap-free order, one row each with its envelope and its analyst-safe
//! payload ([`crate::render`]).
//!
//! An export is bounded when it starts: it reads up to the head of the log
//! at that moment ([`EventExport::end`]), so it ends even while writers
//! keep appending, and resuming `--after` that cursor continues exactly
//! where it stopped (with the same filters, nothing is read twice and
//! nothing is skipped). With `until`, only events recorded at or before
//! that instant are written, and the instant must be settled
//! ([`tandem_projections::stats::check_as_of`]), so the same request gives
//! the same bytes later.
//!
//! Memory is bounded: one page of the store at a time, and for Parquet one
//! row group.

use std::io::Write;

use chrono::{DateTime, Utc};
use tandem_domain::DomainEvent;
use tandem_domain::event::{EVENT_TYPES, StreamType};
use tandem_store::{Cursor, EventStore, ReadFilter, RecordedEvent};

use crate::error::{ExportError, Result};
use crate::pseudonym::Pseudonymizer;
use crate::render::analyst_payload;
use crate::table::{Column, ColumnType as T, Format, TableOptions, TableWriter, Value, col};

/// The columns of an event export, in order.
pub const EVENT_COLUMNS: &[Column] = &[
    col("cursor", T::Text),
    col("position", T::Int64),
    col("transaction_id", T::UInt64),
    col("stream_type", T::Text),
    col("stream_id", T::Text),
    col("stream_version", T::Int32),
    col("event_id", T::Text),
    col("event_type", T::Text),
    col("schema_version", T::Int16),
    col("recorded_at", T::Timestamp),
    col("actor_role", T::Text),
    col("correlation_id", T::Text),
    col("data", T::Json),
];

/// What to export.
#[derive(Clone, Debug)]
pub struct EventQuery {
    /// Start strictly after this cursor.
    pub after: Cursor,
    /// Only events recorded at or before this instant.
    pub until: Option<DateTime<Utc>>,
    /// Only these event types (`None`: all).
    pub types: Option<Vec<String>>,
    pub pseudonyms: Pseudonymizer,
    /// Events read from the store at a time.
    pub page_size: i64,
}

impl EventQuery {
    /// Everything, pseudonymised with `pseudonyms`.
    #[must_use]
    pub fn all(pseudonyms: Pseudonymizer) -> Self {
        Self { after: Cursor::START, until: None, types: None, pseudonyms, page_size: 5_000 }
    }
}

/// Checks a list of event type names against the catalogue.
pub fn parse_types(names: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for n in names.iter().flat_map(|n| n.split(',')).map(str::trim).filter(|n| !n.is_empty()) {
        if !EVENT_TYPES.iter().any(|(t, _, _)| *t == n) {
            return Err(ExportError::InvalidInput {
                field: "types",
                reason: format!("unknown event type {:?}", n.chars().take(64).collect::<String>()),
            });
        }
        if !out.iter().any(|o| o == n) {
            out.push(n.to_owned());
        }
    }
    Ok(out)
}

/// Progress of an export.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Rows written.
    pub rows: u64,
    /// Events read (written or filtered out by `until`).
    pub read: u64,
    /// Where the export has got to.
    pub at: Cursor,
    /// Where it will stop.
    pub end: Cursor,
}

/// A running export of the event log into `W`, page by page.
pub struct EventExport<W: Write + Send> {
    store: EventStore,
    query: EventQuery,
    filter: ReadFilter,
    writer: TableWriter<W>,
    at: Cursor,
    end: Cursor,
    read: u64,
    last_row: Option<Cursor>,
    done: bool,
}

impl<W: Write + Send> EventExport<W> {
    /// Checks the query, fixes the end of the export (the head of the log
    /// now) and opens the writer.
    pub async fn start(
        store: EventStore,
        query: EventQuery,
        format: Format,
        options: TableOptions,
        out: W,
    ) -> Result<Self> {
        if let Some(t) = query.until {
            tandem_projections::stats::check_as_of(&store, t).await?;
        }
        let types = match &query.types {
            Some(t) => Some(parse_types(t)?),
            None => None,
        };
        if query.page_size < 1 {
            return Err(ExportError::InvalidInput { field: "pageSize", reason: "must be at least 1".into() });
        }
        // One reading: the head covers every event committed before this
        // call (unless an older writer is still open) and never goes back,
        // so an export `until` an instant does not stop short of it.
        let end = store.head().await?;
        let writer = TableWriter::new(format, EVENT_COLUMNS, out, options)?;
        let at = query.after;
        Ok(Self {
            store,
            filter: ReadFilter { event_types: types, ..ReadFilter::default() },
            query,
            writer,
            at,
            end,
            read: 0,
            last_row: None,
            done: at >= end,
        })
    }

    /// The cursor the export stops at: resuming after it continues exactly.
    #[must_use]
    pub fn end(&self) -> Cursor {
        self.end
    }

    /// Where the export has got to.
    #[must_use]
    pub fn progress(&self) -> Progress {
        Progress { rows: self.writer.rows(), read: self.read, at: self.at, end: self.end }
    }

    /// The cursor of the last row written.
    #[must_use]
    pub fn last_row(&self) -> Option<Cursor> {
        self.last_row
    }

    /// Exports one page; `false` once everything is written.
    pub async fn step(&mut self) -> Result<bool> {
        if self.done {
            return Ok(false);
        }
        let page = self.store.read_all_filtered(self.at, self.query.page_size, &self.filter).await?;
        if page.is_empty() {
            self.done = true;
            return Ok(false);
        }
        let mut rows = Vec::with_capacity(page.len());
        for e in &page {
            if e.cursor() > self.end {
                self.done = true;
                break;
            }
            self.at = e.cursor();
            self.read += 1;
            if self.query.until.is_some_and(|t| e.recorded_at > t) {
                continue;
            }
            rows.push(row(e, &self.query.pseudonyms)?);
            self.last_row = Some(e.cursor());
        }
        self.writer.write(&rows)?;
        self.writer.flush()?;
        if self.at >= self.end {
            self.done = true;
        }
        Ok(!self.done)
    }

    /// Runs the export to its end, reporting progress after every page.
    pub async fn run(mut self, mut progress: impl FnMut(Progress)) -> Result<(W, Progress)> {
        while self.step().await? {
            progress(self.progress());
        }
        let p = self.progress();
        progress(p);
        Ok((self.writer.finish()?, p))
    }

    /// Ends the output (Parquet's footer) and gives it back.
    pub fn finish(self) -> Result<W> {
        self.writer.finish()
    }
}

/// One event as a row of [`EVENT_COLUMNS`].
pub fn row(e: &RecordedEvent, ids: &Pseudonymizer) -> Result<Vec<Value>> {
    let event =
        DomainEvent::decode(&e.event_type, e.schema_version, e.data.clone()).map_err(|err| ExportError::Decode {
            cursor: e.cursor().to_string(),
            event_type: e.event_type.clone(),
            reason: err.to_string(),
        })?;
    // A person stream's id is the person's id.
    let stream_id = if StreamType::parse(&e.stream_type) == Some(StreamType::Person) {
        ids.person(e.stream_id)
    } else {
        e.stream_id.to_string()
    };
    Ok(vec![
        Value::Text(e.cursor().to_string()),
        Value::Int(e.position),
        Value::UInt(e.transaction_id),
        Value::Text(e.stream_type.clone()),
        Value::Text(stream_id),
        Value::Int(i64::from(e.stream_version)),
        Value::Text(e.event_id.to_string()),
        Value::Text(e.event_type.clone()),
        Value::Int(i64::from(e.schema_version)),
        Value::Timestamp(e.recorded_at),
        // The subject is left out: for participants it is their person id,
        // for others a client name that may name someone.
        Value::Text(e.metadata.actor.role.clone()),
        Value::Text(e.metadata.correlation_id.to_string()),
        Value::Json(analyst_payload(&event, ids)),
    ])
}
