//! The CSV full-file import of people (`tandem import people`).
//!
//! The file is read as a stream (the `csv` crate), in passes, so memory
//! stays flat whatever its size: what is kept per row is a small index entry
//! (the line, the lower-cased external id, the manager's, the row's depth),
//! never the row itself.
//!
//! 1. **Index.** Every row is parsed and checked; a refused row is reported
//!    with its line and column and takes no further part, and the good rows
//!    go on. The same external id on two lines refuses both. Manager
//!    references within the file are followed: a row's depth is the length
//!    of its chain of managers inside the file, a cycle refuses every row on
//!    it (naming the lines), and a row whose manager's row was refused is
//!    refused too.
//! 2. **Apply**, one pass per depth, managers first: rows are taken in
//!    chunks, compared with the people as the read model has them on the
//!    effective date ([`crate::sync::plan`]), and the differences run as
//!    person commands through the command service, many at once, so that
//!    its group commit writes them in few transactions. Managers named by an
//!    external id outside the file are looked up in Tandem; one nobody holds
//!    refuses the row. A re-run of an unchanged file plans nothing and
//!    appends no event.
//! 3. **Leavers** (only when asked): people still in the organisation whose
//!    external id is not in the file are recorded as having left on the
//!    effective date, unless that is more than the allowed share of them (a
//!    truncated file must not empty the organisation).
//!
//! The columns are listed in [`COLUMNS`]; see `docs/INTEGRATORS.md`.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::NaiveDate;
use futures::StreamExt as _;
use sqlx::PgPool;
use tandem_domain::PersonId;
use tandem_domain::values::{Email, ExternalId, LeaveReason, Level, ShortText};
use tandem_projections::Waiter;
use tandem_projections::queries;
use tandem_store::Cursor;

use crate::sync::{PersonRecord, Planned, SyncCode, SyncError, SyncKind, Syncer, field, plan, plan_absent};

/// The columns of an import file. Only `external_id` is required; a column
/// left out of the header is not managed by the file and stays as it is.
pub const COLUMNS: [&str; 11] = [
    field::EXTERNAL_ID,
    field::NAME,
    field::EMAIL,
    field::TITLE,
    field::DEPARTMENT,
    field::LEVEL,
    field::MANAGER_EXTERNAL_ID,
    field::LOCATION,
    field::HIRED_ON,
    field::LEFT_ON,
    field::LEAVE_REASON,
];

/// How an import runs.
#[derive(Clone, Debug)]
pub struct ImportOptions {
    /// The day changes take effect (and absent people leave).
    pub effective_on: NaiveDate,
    /// Plan and report, write nothing.
    pub dry_run: bool,
    /// Record people absent from the file as having left.
    pub leavers_absent: bool,
    /// The largest share (0 to 1) of the people in the organisation that
    /// `leavers_absent` may record as having left in one run.
    pub max_leavers: f64,
    /// Rows whose commands run at once.
    pub concurrency: usize,
    /// Rows compared with the read model per query.
    pub chunk: usize,
    /// How long to wait for the read models to catch up, before and after.
    pub catch_up_timeout: Duration,
    /// Mixed into every idempotency key (the same content under another
    /// salt is another request).
    pub salt: String,
}

impl ImportOptions {
    /// The defaults for changes effective on `effective_on`.
    #[must_use]
    pub fn new(effective_on: NaiveDate) -> Self {
        Self {
            effective_on,
            dry_run: false,
            leavers_absent: false,
            max_leavers: 0.10,
            concurrency: 256,
            chunk: 1_000,
            catch_up_timeout: Duration::from_secs(600),
            salt: "csv".to_owned(),
        }
    }
}

/// A refused row: its line in the file (the header is line 1), the column
/// when one is at fault, a code and a message quoting no value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowError {
    pub line: u64,
    pub column: Option<&'static str>,
    pub code: SyncCode,
    pub message: String,
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.column {
            Some(c) => write!(f, "line {}, column {c}: {}: {}", self.line, self.code, self.message),
            None => write!(f, "line {}: {}: {}", self.line, self.code, self.message),
        }
    }
}

/// What an import did (or, in a dry run, would do).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportSummary {
    pub created: u64,
    pub updated: u64,
    pub left: u64,
    pub rejoined: u64,
    pub unchanged: u64,
    pub failed: u64,
    /// Events appended.
    pub events: u64,
    /// Refused rows, by line.
    pub errors: Vec<RowError>,
    /// Whether absent people were not recorded as left because too many
    /// were absent, or because some row's external id could not be read.
    pub leavers_refused: Option<String>,
    /// The last commit position.
    pub position: Cursor,
    /// Rows whose commands were all answered from the idempotency records
    /// of an earlier run.
    pub replays: u64,
}

impl ImportSummary {
    fn count(&mut self, kind: SyncKind) {
        match kind {
            SyncKind::Created => self.created += 1,
            SyncKind::Updated => self.updated += 1,
            SyncKind::Left => self.left += 1,
            SyncKind::Rejoined => self.rejoined += 1,
            SyncKind::Unchanged => self.unchanged += 1,
        }
    }
}

impl std::fmt::Display for ImportSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "created {}, updated {}, left {}, rejoined {}, unchanged {}, failed {} ({} events)",
            self.created, self.updated, self.left, self.rejoined, self.unchanged, self.failed, self.events
        )
    }
}

/// What the upsert of one record did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ItemOutcome {
    /// `None` when the record was refused before anything was written.
    pub kind: Option<SyncKind>,
    /// The person, once they exist.
    pub person_id: Option<PersonId>,
    /// Why the record was refused; with `kind` set, what failed after part
    /// of it was committed.
    pub error: Option<SyncError>,
}

/// What a bulk upsert did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upserted {
    /// One per record, in input order.
    pub items: Vec<ItemOutcome>,
    /// The last commit position (for read-your-writes).
    pub position: Cursor,
    pub events: u64,
    /// Whether everything written was the first result of an earlier call.
    pub replayed: bool,
}

/// What an import reports while it runs.
#[derive(Debug)]
pub enum ImportEvent<'a> {
    /// A row's plan that changes something (before it runs).
    Row { line: u64, external_id: &'a str, planned: &'a Planned },
    /// A person absent from the file who is to be recorded as left.
    Absent { external_id: &'a str, planned: &'a Planned },
    /// Rows done so far of all rows.
    Progress { done: u64, total: u64 },
}

/// Why an import could not run at all (a bad row never stops it).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("reading {path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("the header: {0}")]
    Header(String),
    #[error("the database: {0}")]
    Database(String),
}

fn db(e: impl std::error::Error) -> ImportError {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    ImportError::Database(text)
}

/// Where each known column is in the file.
#[derive(Clone, Debug, Default)]
struct Columns {
    at: HashMap<&'static str, usize>,
}

impl Columns {
    fn read(header: &csv::ByteRecord) -> Result<Self, ImportError> {
        let mut at = HashMap::new();
        for (i, raw) in header.iter().enumerate() {
            let name = std::str::from_utf8(raw)
                .map_err(|_| ImportError::Header(format!("column {} is not UTF-8", i + 1)))?
                .trim()
                .trim_start_matches('\u{feff}')
                .to_ascii_lowercase();
            let Some(known) = COLUMNS.iter().find(|c| **c == name) else {
                return Err(ImportError::Header(format!(
                    "unknown column {name:?} (the columns are {})",
                    COLUMNS.join(", ")
                )));
            };
            if at.insert(*known, i).is_some() {
                return Err(ImportError::Header(format!("column {name:?} appears twice")));
            }
        }
        if !at.contains_key(field::EXTERNAL_ID) {
            return Err(ImportError::Header("the external_id column is required".into()));
        }
        Ok(Self { at })
    }

    /// The trimmed cell of `column`: `None` when the file has no such
    /// column, `Some("")` when the cell is empty.
    fn cell<'r>(&self, row: &'r csv::ByteRecord, column: &'static str) -> Result<Option<&'r str>, SyncError> {
        let Some(i) = self.at.get(column) else { return Ok(None) };
        let raw = row.get(*i).unwrap_or_default();
        std::str::from_utf8(raw)
            .map(|s| Some(s.trim()))
            .map_err(|_| SyncError::new(column, SyncCode::InvalidValue, "is not valid UTF-8"))
    }
}

fn text(column: &'static str, s: &str) -> Result<ShortText, SyncError> {
    ShortText::parse(column, s).map_err(|e| SyncError::from_domain(column, &e))
}

fn date(column: &'static str, s: &str) -> Result<NaiveDate, SyncError> {
    let d = NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| SyncError::new(column, SyncCode::InvalidValue, "must be a date as YYYY-MM-DD"))?;
    // The years the read models' date columns and every client agree on.
    if !(1..=9999).contains(&chrono::Datelike::year(&d)) {
        return Err(SyncError::new(column, SyncCode::InvalidValue, "must be in the years 0001 to 9999"));
    }
    Ok(d)
}

/// A leave reason as files spell it.
fn leave_reason(s: &str) -> Result<LeaveReason, SyncError> {
    match s.to_ascii_lowercase().as_str() {
        "" | "other" => Ok(LeaveReason::Other),
        "voluntary" => Ok(LeaveReason::Voluntary),
        "involuntary" => Ok(LeaveReason::Involuntary),
        _ => {
            Err(SyncError::new(field::LEAVE_REASON, SyncCode::InvalidValue, "must be voluntary, involuntary or other"))
        }
    }
}

/// Reads one row into a record (see `docs/INTEGRATORS.md` for what an
/// empty cell means in each column).
fn parse_row(cols: &Columns, row: &csv::ByteRecord) -> Result<PersonRecord, SyncError> {
    let ext = cols.cell(row, field::EXTERNAL_ID)?.unwrap_or_default();
    if ext.is_empty() {
        return Err(SyncError::new(field::EXTERNAL_ID, SyncCode::Required, "every row needs an external_id"));
    }
    let external_id =
        ExternalId::parse(field::EXTERNAL_ID, ext).map_err(|e| SyncError::from_domain(field::EXTERNAL_ID, &e))?;
    let mut r = PersonRecord::new(external_id);
    let given = |c| cols.cell(row, c).map(|v| v.filter(|s| !s.is_empty()));
    r.name = given(field::NAME)?.map(|s| text(field::NAME, s)).transpose()?;
    r.email = given(field::EMAIL)?
        .map(|s| Email::parse(field::EMAIL, s).map_err(|e| SyncError::from_domain(field::EMAIL, &e)))
        .transpose()?;
    r.title = given(field::TITLE)?.map(|s| text(field::TITLE, s)).transpose()?;
    r.department = given(field::DEPARTMENT)?.map(|s| text(field::DEPARTMENT, s)).transpose()?;
    r.level = given(field::LEVEL)?
        .map(|s| {
            let n: i64 = s
                .parse()
                .map_err(|_| SyncError::new(field::LEVEL, SyncCode::InvalidValue, "must be a whole number"))?;
            Level::parse(field::LEVEL, n).map_err(|e| SyncError::from_domain(field::LEVEL, &e))
        })
        .transpose()?;
    if let Some(m) = cols.cell(row, field::MANAGER_EXTERNAL_ID)? {
        r.manager = Some(if m.is_empty() {
            None
        } else {
            Some(
                ExternalId::parse(field::MANAGER_EXTERNAL_ID, m)
                    .map_err(|e| SyncError::from_domain(field::MANAGER_EXTERNAL_ID, &e))?,
            )
        });
    }
    if let Some(l) = cols.cell(row, field::LOCATION)? {
        r.location = Some(if l.is_empty() { None } else { Some(text(field::LOCATION, l)?) });
    }
    r.hired_on = given(field::HIRED_ON)?.map(|s| date(field::HIRED_ON, s)).transpose()?;
    let reason = leave_reason(cols.cell(row, field::LEAVE_REASON)?.unwrap_or_default())?;
    if let Some(l) = cols.cell(row, field::LEFT_ON)? {
        r.left = Some(if l.is_empty() { None } else { Some((date(field::LEFT_ON, l)?, reason)) });
    }
    if let (Some(h), Some(Some((l, _)))) = (r.hired_on, r.left)
        && l < h
    {
        return Err(SyncError::new(field::LEFT_ON, SyncCode::InvalidValue, "must not be before hired_on"));
    }
    if r.manager_key().is_some_and(|m| m == r.key()) {
        return Err(SyncError::new(
            field::MANAGER_EXTERNAL_ID,
            SyncCode::ManagementCycle,
            "a person cannot manage themself",
        ));
    }
    Ok(r)
}

/// Where a row stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Pending,
    Failed,
    Done(PersonId),
}

/// What the import keeps per good row.
#[derive(Debug)]
struct Entry {
    line: u64,
    manager: Option<Box<str>>,
    depth: u32,
    state: State,
    /// What the row did, once done.
    kind: Option<SyncKind>,
}

/// The file's index after the first pass.
#[derive(Debug)]
struct Index {
    /// How a message names a row ("line 7", "people.3").
    label: fn(u64) -> String,
    entries: Vec<Entry>,
    by_key: HashMap<Box<str>, usize>,
    /// External ids of refused rows, with their line: their reports fail too.
    refused_keys: HashMap<String, u64>,
    /// Whether some row's external id could not be read (then absent
    /// people are not marked as left: the row may have been theirs).
    unreadable_ids: bool,
    rows: u64,
}

fn line_label(line: u64) -> String {
    format!("line {line}")
}

fn open(path: &Path) -> Result<csv::Reader<std::fs::File>, ImportError> {
    csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .trim(csv::Trim::None)
        .from_path(path)
        .map_err(|e| ImportError::File { path: path.to_owned(), reason: e.to_string() })
}

/// Reads the next record, turning a row's own fault (wrong number of
/// fields) into a row error; `Ok(None)` at the end.
fn next_row(
    reader: &mut csv::Reader<std::fs::File>,
    row: &mut csv::ByteRecord,
    path: &Path,
) -> Result<Option<Result<u64, RowError>>, ImportError> {
    match reader.read_byte_record(row) {
        Ok(false) => Ok(None),
        Ok(true) => Ok(Some(Ok(row.position().map_or(0, csv::Position::line)))),
        Err(e) => match e.kind() {
            csv::ErrorKind::UnequalLengths { pos, expected_len, len } => Ok(Some(Err(RowError {
                line: pos.as_ref().map_or(0, csv::Position::line),
                column: None,
                code: SyncCode::InvalidValue,
                message: format!("expected {expected_len} fields, found {len}"),
            }))),
            _ => Err(ImportError::File { path: path.to_owned(), reason: e.to_string() }),
        },
    }
}

fn row_error(line: u64, e: SyncError) -> RowError {
    RowError { line, column: Some(e.field), code: e.code, message: e.message }
}

/// Depth marks while the manager chains are followed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mark {
    New,
    OnPath,
    Depth(u32),
    Bad,
}

impl Index {
    fn new(label: fn(u64) -> String) -> Self {
        Self {
            label,
            entries: Vec::new(),
            by_key: HashMap::new(),
            refused_keys: HashMap::new(),
            unreadable_ids: false,
            rows: 0,
        }
    }

    /// The first pass: parse, check, index.
    fn build(path: &Path, errors: &mut Vec<RowError>) -> Result<(Columns, Self), ImportError> {
        let mut reader = open(path)?;
        let header = reader
            .byte_headers()
            .map_err(|e| ImportError::File { path: path.to_owned(), reason: e.to_string() })?
            .clone();
        let cols = Columns::read(&header)?;
        let mut index = Self::new(line_label);
        let mut row = csv::ByteRecord::new();
        while let Some(next) = next_row(&mut reader, &mut row, path)? {
            index.rows += 1;
            let line = match next {
                Ok(line) => line,
                Err(e) => {
                    index.unreadable_ids = true;
                    errors.push(e);
                    continue;
                }
            };
            match parse_row(&cols, &row) {
                Ok(r) => index.add(line, &r, errors),
                Err(e) => {
                    let readable = cols
                        .cell(&row, field::EXTERNAL_ID)
                        .ok()
                        .flatten()
                        .filter(|s| ExternalId::parse(field::EXTERNAL_ID, s).is_ok());
                    match readable {
                        Some(k) => {
                            index.refused_keys.entry(k.to_lowercase()).or_insert(line);
                        }
                        None => index.unreadable_ids = true,
                    }
                    errors.push(row_error(line, e));
                }
            }
        }
        index.place(errors);
        Ok((cols, index))
    }

    fn add(&mut self, line: u64, r: &PersonRecord, errors: &mut Vec<RowError>) {
        let key: Box<str> = r.key().into();
        let i = self.entries.len();
        let mut state = State::Pending;
        if let Some(&first) = self.by_key.get(&key) {
            let first_line = self.entries[first].line;
            if self.entries[first].state != State::Failed {
                self.entries[first].state = State::Failed;
                errors.push(RowError {
                    line: first_line,
                    column: Some(field::EXTERNAL_ID),
                    code: SyncCode::DuplicateExternalId,
                    message: format!("the same external id is on {} too", (self.label)(line)),
                });
            }
            errors.push(RowError {
                line,
                column: Some(field::EXTERNAL_ID),
                code: SyncCode::DuplicateExternalId,
                message: format!("the same external id is on {} too", (self.label)(first_line)),
            });
            state = State::Failed;
        } else {
            self.by_key.insert(key, i);
        }
        let manager = r.manager_key().map(Into::into);
        self.entries.push(Entry { line, manager, depth: 0, state, kind: None });
    }

    /// Follows the manager chains within the file: sets each row's depth,
    /// refuses cycles and rows whose manager's row is refused.
    fn place(&mut self, errors: &mut Vec<RowError>) {
        let n = self.entries.len();
        let mut mark = vec![Mark::New; n];
        for start in 0..n {
            if mark[start] != Mark::New {
                continue;
            }
            let mut path: Vec<usize> = Vec::new();
            let mut cur = start;
            // The depth of `path.last()`, or the line of the refused
            // manager row that stops the chain.
            let mut top: Result<u32, u64> = loop {
                match mark[cur] {
                    Mark::Depth(d) => break Ok(d + 1),
                    Mark::Bad => break Err(self.entries[cur].line),
                    Mark::OnPath => {
                        let at = path.iter().position(|&p| p == cur).unwrap_or(0);
                        let cycle: Vec<usize> = path.split_off(at);
                        let lines: Vec<String> = cycle.iter().map(|&c| (self.label)(self.entries[c].line)).collect();
                        for &c in &cycle {
                            mark[c] = Mark::Bad;
                            self.entries[c].state = State::Failed;
                            errors.push(RowError {
                                line: self.entries[c].line,
                                column: Some(field::MANAGER_EXTERNAL_ID),
                                code: SyncCode::ManagementCycle,
                                message: format!("the managers form a cycle: {}", lines.join(", ")),
                            });
                        }
                        break Err(self.entries[cur].line);
                    }
                    Mark::New => {}
                }
                if self.entries[cur].state == State::Failed {
                    mark[cur] = Mark::Bad;
                    break Err(self.entries[cur].line);
                }
                mark[cur] = Mark::OnPath;
                path.push(cur);
                let Some(m) = self.entries[cur].manager.as_deref() else { break Ok(0) };
                if let Some(&line) = self.refused_keys.get(m) {
                    break Err(line);
                }
                match self.by_key.get(m) {
                    Some(&j) => cur = j,
                    None => break Ok(0),
                }
            };
            // `top` is for the last row on the path; each earlier row is
            // managed by the one after it.
            for &p in path.iter().rev() {
                match top {
                    Ok(d) => {
                        mark[p] = Mark::Depth(d);
                        self.entries[p].depth = d;
                        top = Ok(d + 1);
                    }
                    Err(manager_line) => {
                        mark[p] = Mark::Bad;
                        self.entries[p].state = State::Failed;
                        errors.push(RowError {
                            line: self.entries[p].line,
                            column: Some(field::MANAGER_EXTERNAL_ID),
                            code: SyncCode::ManagerFailed,
                            message: format!("the manager's row ({}) was refused", (self.label)(manager_line)),
                        });
                        top = Err(self.entries[p].line);
                    }
                }
            }
        }
    }

    fn max_depth(&self) -> Option<u32> {
        self.entries.iter().filter(|e| e.state == State::Pending).map(|e| e.depth).max()
    }

    fn known(&self, key: &str) -> bool {
        self.by_key.contains_key(key) || self.refused_keys.contains_key(key)
    }
}

/// Runs imports through the command service.
#[derive(Clone, Debug)]
pub struct Importer {
    pool: PgPool,
    syncer: Syncer,
    waiter: Waiter,
}

/// One row of a chunk: its index entry and its record.
type ChunkRow = (usize, PersonRecord);

impl Importer {
    /// An importer writing through `syncer`, reading the read models of
    /// `pool`, which `waiter` follows.
    #[must_use]
    pub fn new(pool: PgPool, syncer: Syncer, waiter: Waiter) -> Self {
        Self { pool, syncer, waiter }
    }

    /// Imports the file at `path`.
    ///
    /// # Errors
    /// When the file cannot be read or its header is wrong, or the database
    /// fails outside a row's commands. Refused rows are in the summary.
    pub async fn run(
        &self,
        path: &Path,
        opts: &ImportOptions,
        mut on_event: impl FnMut(ImportEvent<'_>),
    ) -> Result<ImportSummary, ImportError> {
        let mut summary = ImportSummary::default();
        let (cols, mut index) = Index::build(path, &mut summary.errors)?;
        let total = index.rows;
        let mut done = total - index.entries.iter().filter(|e| e.state == State::Pending).count() as u64;
        on_event(ImportEvent::Progress { done, total });

        // Compare with everything committed before the run.
        let head = self.syncer.store().head().await.map_err(db)?;
        self.waiter.wait_for(head, opts.catch_up_timeout).await.map_err(db)?;
        summary.position = head;

        if let Some(max_depth) = index.max_depth() {
            for depth in 0..=max_depth {
                let mut reader = open(path)?;
                let mut row = csv::ByteRecord::new();
                let mut at = 0usize;
                let mut chunk: Vec<ChunkRow> = Vec::new();
                while let Some(next) = next_row(&mut reader, &mut row, path)? {
                    let Ok(line) = next else { continue };
                    while at < index.entries.len() && index.entries[at].line < line {
                        at += 1;
                    }
                    let Some(e) = index.entries.get(at).filter(|e| e.line == line) else { continue };
                    if e.state != State::Pending || e.depth != depth {
                        continue;
                    }
                    // Parsed once already; the same bytes parse the same way.
                    match parse_row(&cols, &row) {
                        Ok(r) => chunk.push((at, r)),
                        Err(err) => {
                            index.entries[at].state = State::Failed;
                            summary.errors.push(row_error(line, err));
                        }
                    }
                    if chunk.len() >= opts.chunk {
                        done += self
                            .apply(&mut index, std::mem::take(&mut chunk), opts, &mut summary, &mut on_event)
                            .await?;
                        on_event(ImportEvent::Progress { done, total });
                    }
                }
                if !chunk.is_empty() {
                    done += self.apply(&mut index, chunk, opts, &mut summary, &mut on_event).await?;
                    on_event(ImportEvent::Progress { done, total });
                }
            }
        }
        if opts.leavers_absent {
            self.leavers(&index, opts, &mut summary, &mut on_event).await?;
        }
        summary.errors.sort_by_key(|e| e.line);
        summary.failed = {
            let lines: HashSet<u64> = summary.errors.iter().map(|e| e.line).collect();
            lines.len() as u64
        };
        if !opts.dry_run {
            // So that what the run wrote is readable when it returns.
            self.waiter.wait_for(summary.position, opts.catch_up_timeout).await.map_err(db)?;
        }
        on_event(ImportEvent::Progress { done: total, total });
        Ok(summary)
    }

    /// Upserts a batch of records given in memory (the bulk upsert of the
    /// API): the same comparison, manager ordering and idempotency as a
    /// file, with results per record in input order. A record that could
    /// not be read is given as its error. Messages name records as
    /// `people.N` (0-based).
    ///
    /// # Errors
    /// When the database fails outside a record's commands.
    pub async fn upsert(
        &self,
        records: Vec<Result<PersonRecord, SyncError>>,
        opts: &ImportOptions,
    ) -> Result<Upserted, ImportError> {
        let mut summary = ImportSummary::default();
        let mut index = Index::new(|i| format!("people.{i}"));
        let mut kept: Vec<Option<PersonRecord>> = Vec::with_capacity(records.len());
        for (i, r) in records.into_iter().enumerate() {
            let line = i as u64;
            index.rows += 1;
            match r {
                Ok(r) => {
                    index.add(line, &r, &mut summary.errors);
                    kept.push(Some(r));
                }
                Err(e) => {
                    summary.errors.push(row_error(line, e));
                    kept.push(None);
                }
            }
        }
        index.place(&mut summary.errors);
        let entry_of: HashMap<u64, usize> = index.entries.iter().enumerate().map(|(i, e)| (e.line, i)).collect();
        if let Some(max_depth) = index.max_depth() {
            for depth in 0..=max_depth {
                let chunk: Vec<ChunkRow> = index
                    .entries
                    .iter()
                    .enumerate()
                    .filter(|(_, e)| e.state == State::Pending && e.depth == depth)
                    .filter_map(|(i, e)| usize::try_from(e.line).ok().and_then(|l| kept[l].clone()).map(|r| (i, r)))
                    .collect();
                if !chunk.is_empty() {
                    self.apply(&mut index, chunk, opts, &mut summary, &mut |_| {}).await?;
                }
            }
        }
        let mut errors: HashMap<u64, RowError> = HashMap::new();
        for e in summary.errors {
            errors.entry(e.line).or_insert(e);
        }
        let items = (0..kept.len() as u64)
            .map(|line| {
                let entry = entry_of.get(&line).map(|&i| &index.entries[i]);
                let person_id = match entry.map(|e| e.state) {
                    Some(State::Done(id)) => Some(id),
                    _ => None,
                };
                ItemOutcome {
                    kind: entry.and_then(|e| e.kind).filter(|_| person_id.is_some()),
                    person_id,
                    error: errors.remove(&line).map(|e| SyncError {
                        field: e.column.unwrap_or(field::EXTERNAL_ID),
                        code: e.code,
                        message: e.message,
                    }),
                }
            })
            .collect();
        Ok(Upserted {
            items,
            position: summary.position,
            events: summary.events,
            replayed: summary.events == 0 && summary.replays > 0,
        })
    }

    /// Plans and runs one chunk of rows of one depth; returns the rows done.
    async fn apply(
        &self,
        index: &mut Index,
        chunk: Vec<ChunkRow>,
        opts: &ImportOptions,
        summary: &mut ImportSummary,
        on_event: &mut impl FnMut(ImportEvent<'_>),
    ) -> Result<u64, ImportError> {
        let n = chunk.len() as u64;
        let on = opts.effective_on;
        let ids: Vec<String> = chunk.iter().map(|(_, r)| r.external_id.as_str().to_owned()).collect();
        let current = people_by_keys(&self.pool, &ids, on).await?;
        // Managers outside the file, in one query.
        let outside: Vec<String> = chunk
            .iter()
            .filter_map(|(_, r)| r.manager_key())
            .filter(|m| !index.known(m))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let managers: HashMap<String, queries::PersonView> =
            if outside.is_empty() { HashMap::new() } else { people_by_keys(&self.pool, &outside, on).await? };
        let mut plans: Vec<(usize, Planned)> = Vec::new();
        for (i, record) in chunk {
            let line = index.entries[i].line;
            let manager = match resolve_manager(index, &managers, &record) {
                Ok(m) => m,
                Err(e) => {
                    index.entries[i].state = State::Failed;
                    summary.errors.push(row_error(line, e));
                    continue;
                }
            };
            match plan(&record, current.get(&record.key()), manager, on) {
                Ok(p) => {
                    if p.kind != SyncKind::Unchanged {
                        on_event(ImportEvent::Row { line, external_id: record.external_id.as_str(), planned: &p });
                    }
                    if opts.dry_run || p.commands.is_empty() {
                        index.entries[i].state = State::Done(p.person_id);
                        index.entries[i].kind = Some(p.kind);
                        summary.count(p.kind);
                    } else {
                        plans.push((i, p));
                    }
                }
                Err(e) => {
                    index.entries[i].state = State::Failed;
                    summary.errors.push(row_error(line, e));
                }
            }
        }
        let syncer = &self.syncer;
        let salt = opts.salt.as_str();
        let mut results = futures::stream::iter(plans)
            .map(|(i, p)| async move {
                let r = syncer.execute(&p, salt).await;
                (i, p.kind, r)
            })
            .buffer_unordered(opts.concurrency.max(1));
        while let Some((i, kind, result)) = results.next().await {
            let line = index.entries[i].line;
            match result {
                Ok(done) => {
                    index.entries[i].state = State::Done(done.person_id);
                    index.entries[i].kind = Some(kind);
                    summary.replays += u64::from(done.replayed);
                    summary.count(kind);
                    summary.events += done.events as u64;
                    summary.position = summary.position.max(done.position);
                }
                Err(partial) => {
                    if let Some(done) = partial.committed {
                        // The person exists: their reports can be placed.
                        index.entries[i].state = State::Done(done.person_id);
                        index.entries[i].kind = Some(kind);
                        summary.events += done.events as u64;
                        summary.position = summary.position.max(done.position);
                    } else {
                        index.entries[i].state = State::Failed;
                    }
                    summary.errors.push(row_error(line, partial.error));
                }
            }
        }
        Ok(n)
    }

    /// Records people absent from the file as left, within the allowed share.
    async fn leavers(
        &self,
        index: &Index,
        opts: &ImportOptions,
        summary: &mut ImportSummary,
        on_event: &mut impl FnMut(ImportEvent<'_>),
    ) -> Result<(), ImportError> {
        if index.unreadable_ids {
            summary.leavers_refused = Some(
                "some rows could not be read far enough to know whose they are, so nobody absent was marked as left"
                    .into(),
            );
            return Ok(());
        }
        let active = queries::count_people_here(&self.pool).await.map_err(db)?;
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
        let allowed = (opts.max_leavers.clamp(0.0, 1.0) * active as f64).floor() as u64;
        let mut absent: Vec<(PersonId, i32, String)> = Vec::new();
        let mut after: Option<PersonId> = None;
        loop {
            let page = queries::people_here_after(&self.pool, after, 5_000).await.map_err(db)?;
            let Some(last) = page.last() else { break };
            after = Some(last.0);
            for (id, external_id, version) in page {
                if !index.known(&external_id.to_lowercase()) {
                    absent.push((id, version, external_id));
                    if absent.len() as u64 > allowed {
                        summary.leavers_refused = Some(format!(
                            "more than {allowed} of the {active} people in the organisation are absent from the file \
                             (the most one run may mark as left); nobody was marked as left"
                        ));
                        return Ok(());
                    }
                }
            }
        }
        let plans: Vec<(String, Planned)> =
            absent.into_iter().map(|(id, version, ext)| (ext, plan_absent(id, version, opts.effective_on))).collect();
        for (ext, p) in &plans {
            on_event(ImportEvent::Absent { external_id: ext, planned: p });
        }
        if opts.dry_run {
            summary.left += plans.len() as u64;
            return Ok(());
        }
        let syncer = &self.syncer;
        let mut results = futures::stream::iter(plans)
            .map(|(_, p)| async move { syncer.execute(&p, "absent").await })
            .buffer_unordered(opts.concurrency.max(1));
        while let Some(result) = results.next().await {
            match result {
                Ok(done) => {
                    summary.left += 1;
                    summary.events += done.events as u64;
                    summary.position = summary.position.max(done.position);
                }
                Err(partial) => {
                    tracing::warn!(error = %partial.error, "recording an absent person as left failed");
                    summary.leavers_refused.get_or_insert_with(|| {
                        format!("some absent people could not be marked as left: {}", partial.error.message)
                    });
                }
            }
        }
        Ok(())
    }
}

/// The people holding `external_ids` (in any case), by lower-cased
/// external id, with org facts as of `on`. The command side's register of
/// external ids has an index on `lower(external_id)`, so this is one index
/// look-up per id, then one primary-key look-up per person.
async fn people_by_keys(
    pool: &PgPool,
    external_ids: &[String],
    on: NaiveDate,
) -> Result<HashMap<String, queries::PersonView>, ImportError> {
    let lowered: Vec<String> = external_ids.iter().map(|s| s.to_lowercase()).collect();
    let held: Vec<(String, uuid::Uuid)> = sqlx::query_as(
        "SELECT lower(g.external_id), g.person_id
           FROM unnest($1::text[]) AS w(asked)
           JOIN person_external_ids g ON lower(g.external_id) = w.asked",
    )
    .bind(&lowered)
    .fetch_all(pool)
    .await
    .map_err(db)?;
    let ids: Vec<PersonId> = held.iter().map(|(_, id)| PersonId::from_uuid(*id)).collect();
    let mut views: HashMap<PersonId, queries::PersonView> =
        queries::people_by_ids(pool, &ids, on).await.map_err(db)?.into_iter().map(|p| (p.person_id, p)).collect();
    Ok(held.into_iter().filter_map(|(k, id)| views.remove(&PersonId::from_uuid(id)).map(|v| (k, v))).collect())
}

/// The manager a record names, resolved: from the rows of this run, or
/// from Tandem.
fn resolve_manager(
    index: &Index,
    outside: &HashMap<String, queries::PersonView>,
    record: &PersonRecord,
) -> Result<Option<Option<PersonId>>, SyncError> {
    let Some(m) = &record.manager else { return Ok(None) };
    let Some(m) = m else { return Ok(Some(None)) };
    let key = m.as_str().to_lowercase();
    if let Some(&j) = index.by_key.get(key.as_str()) {
        let e = &index.entries[j];
        return match e.state {
            State::Done(id) => Ok(Some(Some(id))),
            _ => Err(SyncError::new(
                field::MANAGER_EXTERNAL_ID,
                SyncCode::ManagerFailed,
                format!("the manager's row ({}) was refused", (index.label)(e.line)),
            )),
        };
    }
    if let Some(&line) = index.refused_keys.get(&key) {
        return Err(SyncError::new(
            field::MANAGER_EXTERNAL_ID,
            SyncCode::ManagerFailed,
            format!("the manager's row ({}) was refused", (index.label)(line)),
        ));
    }
    match outside.get(&key) {
        Some(p) if !p.erased => Ok(Some(Some(p.person_id))),
        _ => Err(SyncError::new(
            field::MANAGER_EXTERNAL_ID,
            SyncCode::UnknownManager,
            "no row of the file and no person in Tandem has this external id",
        )),
    }
}
