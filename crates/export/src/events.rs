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

use std::collections::BTreeMap;
use std::io::Write;

use chrono::{DateTime, Utc};
use tandem_domain::DomainEvent;
use tandem_domain::event::{EVENT_TYPES, StreamType};
use tandem_store::{Cursor, EventStore, ReadFilter, RecordedEvent};

use crate::error::{ExportError, Result};
use crate::pseudonym::Pseudonymizer;
use crate::render::analyst_payload;
use crate::table::{Column, ColumnType as T, Format, TableOptions, TableWriter, Value, col};
use crate::typed;

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

/// The paging both kinds of export share: the log from a cursor to the
/// end fixed at the start, page by page, with `until` applied.
struct Pager {
    store: EventStore,
    query: EventQuery,
    filter: ReadFilter,
    at: Cursor,
    end: Cursor,
    read: u64,
    last_row: Option<Cursor>,
    done: bool,
    /// The next page, read (and decoded) while the caller writes this one.
    ahead: Option<tokio::task::JoinHandle<tandem_store::Result<Vec<RecordedEvent>>>>,
}

impl Drop for Pager {
    fn drop(&mut self) {
        // An export given up (a client gone) reads no further.
        if let Some(task) = self.ahead.take() {
            task.abort();
        }
    }
}

impl Pager {
    async fn start(store: EventStore, query: EventQuery) -> Result<Self> {
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
        let at = query.after;
        Ok(Self {
            store,
            filter: ReadFilter { event_types: types, ..ReadFilter::default() },
            query,
            at,
            end,
            read: 0,
            last_row: None,
            done: at >= end,
            ahead: None,
        })
    }

    /// Starts reading the page after `self.at`.
    fn read_ahead(&mut self) {
        let (store, filter, at, limit) = (self.store.clone(), self.filter.clone(), self.at, self.query.page_size);
        self.ahead = Some(tokio::spawn(async move { store.read_all_filtered(at, limit, &filter).await }));
    }

    /// The next page's events to write (possibly none, when `until` leaves
    /// them all out); `None` once the end is reached.
    async fn next(&mut self) -> Result<Option<Vec<RecordedEvent>>> {
        if self.done {
            return Ok(None);
        }
        let page = match self.ahead.take() {
            Some(task) => match task.await {
                Ok(page) => page?,
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                // Only `Drop` aborts it.
                Err(_) => return Ok(None),
            },
            None => self.store.read_all_filtered(self.at, self.query.page_size, &self.filter).await?,
        };
        if page.is_empty() {
            self.done = true;
            return Ok(None);
        }
        let mut out = Vec::with_capacity(page.len());
        for e in page {
            if e.cursor() > self.end {
                self.done = true;
                break;
            }
            self.at = e.cursor();
            self.read += 1;
            if self.query.until.is_some_and(|t| e.recorded_at > t) {
                continue;
            }
            self.last_row = Some(e.cursor());
            out.push(e);
        }
        if self.at >= self.end {
            self.done = true;
        }
        if !self.done {
            // The database reads the next page while this one is written.
            self.read_ahead();
        }
        Ok(Some(out))
    }

    fn progress(&self, rows: u64) -> Progress {
        Progress { rows, read: self.read, at: self.at, end: self.end }
    }
}

/// A running export of the event log into `W`, page by page.
pub struct EventExport<W: Write + Send> {
    pager: Pager,
    writer: TableWriter<W>,
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
        let pager = Pager::start(store, query).await?;
        let writer = TableWriter::new(format, EVENT_COLUMNS, out, options)?;
        Ok(Self { pager, writer })
    }

    /// The cursor the export stops at: resuming after it continues exactly.
    #[must_use]
    pub fn end(&self) -> Cursor {
        self.pager.end
    }

    /// Where the export has got to.
    #[must_use]
    pub fn progress(&self) -> Progress {
        self.pager.progress(self.writer.rows())
    }

    /// The cursor of the last row written.
    #[must_use]
    pub fn last_row(&self) -> Option<Cursor> {
        self.pager.last_row
    }

    /// Exports one page; `false` once everything is written.
    pub async fn step(&mut self) -> Result<bool> {
        let Some(page) = self.pager.next().await? else { return Ok(false) };
        let rows = page.into_iter().map(|e| row(e, &self.pager.query.pseudonyms)).collect::<Result<Vec<_>>>()?;
        self.writer.write(&rows)?;
        self.writer.flush()?;
        Ok(!self.pager.done)
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

/// Opens the output of one event type's table.
pub type OpenTable<W> = Box<dyn FnMut(&str) -> Result<W> + Send>;

/// A running export of the event log split by event type: one table per
/// event type that occurs, with the envelope's columns and the payload as
/// typed columns ([`crate::typed`]) instead of one JSON column. Each
/// table's output is opened (by the caller's `open`, given the event type)
/// when its first row comes.
pub struct SplitExport<W: Write + Send> {
    pager: Pager,
    format: Format,
    options: TableOptions,
    open: OpenTable<W>,
    writers: BTreeMap<String, TableWriter<W>>,
}

impl<W: Write + Send> SplitExport<W> {
    /// Checks the query and fixes the end of the export, as
    /// [`EventExport::start`]. The byte budget of a Parquet row group is
    /// shared by the tables, which are open together.
    pub async fn start(
        store: EventStore,
        query: EventQuery,
        format: Format,
        options: TableOptions,
        open: OpenTable<W>,
    ) -> Result<Self> {
        let pager = Pager::start(store, query).await?;
        let options = TableOptions { row_group_bytes: options.row_group_bytes / EVENT_TYPES.len().max(1), ..options };
        Ok(Self { pager, format, options, open, writers: BTreeMap::new() })
    }

    /// The cursor the export stops at: resuming after it continues exactly.
    #[must_use]
    pub fn end(&self) -> Cursor {
        self.pager.end
    }

    /// Where the export has got to (rows of every table).
    #[must_use]
    pub fn progress(&self) -> Progress {
        self.pager.progress(self.writers.values().map(TableWriter::rows).sum())
    }

    /// The cursor of the last row written.
    #[must_use]
    pub fn last_row(&self) -> Option<Cursor> {
        self.pager.last_row
    }

    /// Exports one page; `false` once everything is written.
    pub async fn step(&mut self) -> Result<bool> {
        let Some(mut page) = self.pager.next().await? else { return Ok(false) };
        let mut by_type: BTreeMap<&str, Vec<Vec<Value>>> = BTreeMap::new();
        for e in &mut page {
            let row = typed_row(e, &self.pager.query.pseudonyms)?;
            by_type.entry(e.event_type.as_str()).or_default().push(row);
        }
        for (event_type, rows) in by_type {
            let writer = match self.writers.entry(event_type.to_owned()) {
                std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::btree_map::Entry::Vacant(v) => {
                    let out = (self.open)(event_type)?;
                    v.insert(TableWriter::new(self.format, &typed::table_columns(event_type), out, self.options)?)
                }
            };
            writer.write(&rows)?;
            writer.flush()?;
        }
        Ok(!self.pager.done)
    }

    /// Runs the export to its end, reporting progress after every page, and
    /// ends every table; gives back each event type's output and row count.
    pub async fn run(mut self, mut progress: impl FnMut(Progress)) -> Result<(Vec<(String, W, u64)>, Progress)> {
        while self.step().await? {
            progress(self.progress());
        }
        let p = self.progress();
        progress(p);
        let mut out = Vec::with_capacity(self.writers.len());
        for (t, w) in self.writers {
            let rows = w.rows();
            out.push((t, w.finish()?, rows));
        }
        Ok((out, p))
    }
}

/// One event as a row of its event type's table ([`typed::table_columns`]).
pub fn typed_row(e: &mut RecordedEvent, ids: &Pseudonymizer) -> Result<Vec<Value>> {
    let payload = payload(e, ids)?;
    let mut cells = envelope(e, ids);
    cells.extend(typed::payload_cells(&e.event_type, &payload)?);
    Ok(cells)
}

/// One event as a row of [`EVENT_COLUMNS`].
pub fn row(mut e: RecordedEvent, ids: &Pseudonymizer) -> Result<Vec<Value>> {
    let payload = payload(&mut e, ids)?;
    let mut cells = envelope(&e, ids);
    cells.push(Value::Json(payload));
    Ok(cells)
}

/// The analyst payload of a stored event; takes the event's data (which
/// is read once, here).
fn payload(e: &mut RecordedEvent, ids: &Pseudonymizer) -> Result<serde_json::Value> {
    let data = std::mem::take(&mut e.data);
    let event = DomainEvent::decode(&e.event_type, e.schema_version, data).map_err(|err| ExportError::Decode {
        cursor: e.cursor().to_string(),
        event_type: e.event_type.clone(),
        reason: err.to_string(),
    })?;
    Ok(analyst_payload(&event, ids))
}

/// The envelope's cells: every column of [`EVENT_COLUMNS`] but `data`.
fn envelope(e: &RecordedEvent, ids: &Pseudonymizer) -> Vec<Value> {
    // A person stream's id is the person's id.
    let stream_id = if StreamType::parse(&e.stream_type) == Some(StreamType::Person) {
        ids.person(e.stream_id)
    } else {
        e.stream_id.to_string()
    };
    vec![
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
    ]
}
