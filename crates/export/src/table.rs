//! Typed tables written as NDJSON, CSV or Parquet, a batch of rows at a
//! time, so that an export of any size needs only one batch in memory (and,
//! for Parquet, one row group, bounded in rows and bytes).
//!
//! Every export (the event log and the fact tables) is a [`Column`] list
//! and rows of [`Value`]s; this module alone knows the formats:
//!
//! - NDJSON: one object per row, keys in column order, dates as
//!   `YYYY-MM-DD`, instants as RFC 3339 in UTC with microseconds, JSON
//!   columns embedded as JSON, nulls as `null`.
//! - CSV (RFC 4180): a header row (left out when appending to a file that
//!   has one), the same text forms, JSON columns as JSON text, nulls empty.
//! - Parquet: one typed column each (UTF-8, 16/32/64-bit integers, unsigned
//!   64-bit, doubles, booleans, `DATE`, `TIMESTAMP(MICROS, UTC)`, lists of
//!   UTF-8; JSON as UTF-8 text), Snappy-compressed, row groups of at most
//!   [`TableOptions::row_group_rows`] rows and [`TableOptions::row_group_bytes`]
//!   bytes.
//!
//! Output is deterministic: the same rows give the same bytes.

use std::io::Write;
use std::str::FromStr;
use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Date32Builder, Float64Builder, Int16Builder, Int32Builder, Int64Builder, ListBuilder,
    StringBuilder, TimestampMicrosecondBuilder, UInt64Builder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef, TimeUnit};
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use serde_json::Value as Json;

use crate::error::{ExportError, Result};

/// An export format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    Ndjson,
    Csv,
    Parquet,
}

impl Format {
    /// The usual file extension.
    #[must_use]
    pub const fn extension(self) -> &'static str {
        match self {
            Self::Ndjson => "ndjson",
            Self::Csv => "csv",
            Self::Parquet => "parquet",
        }
    }

    /// The media type of an HTTP response.
    #[must_use]
    pub const fn media_type(self) -> &'static str {
        match self {
            Self::Ndjson => "application/x-ndjson",
            Self::Csv => "text/csv; charset=utf-8; header=present",
            Self::Parquet => "application/vnd.apache.parquet",
        }
    }
}

impl FromStr for Format {
    type Err = ExportError;

    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "ndjson" | "jsonl" => Ok(Self::Ndjson),
            "csv" => Ok(Self::Csv),
            "parquet" => Ok(Self::Parquet),
            _ => Err(ExportError::InvalidInput {
                field: "format",
                reason: format!("expected ndjson, csv or parquet, got {:?}", s.chars().take(32).collect::<String>()),
            }),
        }
    }
}

/// The type of a column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColumnType {
    Text,
    Int16,
    Int32,
    Int64,
    UInt64,
    Float64,
    Bool,
    Date,
    Timestamp,
    /// A JSON document: embedded in NDJSON, text in CSV and Parquet.
    Json,
    /// A list of texts: a JSON array in NDJSON, JSON text in CSV, a
    /// `LIST<UTF8>` in Parquet.
    TextList,
}

/// A column of a table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    pub ty: ColumnType,
}

/// Shorthand for a column.
#[must_use]
pub const fn col(name: &'static str, ty: ColumnType) -> Column {
    Column { name, ty }
}

/// One cell. A value must fit its column's type (a text cell in a text
/// column, an integer in an integer column, …) or be [`Value::Null`].
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Text(String),
    Int(i64),
    UInt(u64),
    Float(f64),
    Bool(bool),
    Date(NaiveDate),
    Timestamp(DateTime<Utc>),
    Json(Json),
    TextList(Vec<String>),
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_owned())
    }
}
impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}
impl From<u64> for Value {
    fn from(v: u64) -> Self {
        Value::UInt(v)
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Float(v)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}
impl From<NaiveDate> for Value {
    fn from(v: NaiveDate) -> Self {
        Value::Date(v)
    }
}
impl From<DateTime<Utc>> for Value {
    fn from(v: DateTime<Utc>) -> Self {
        Value::Timestamp(v)
    }
}

/// The RFC 3339 form of an instant used by the text formats.
#[must_use]
pub fn instant_text(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Writer settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableOptions {
    /// Parquet: the most rows in one row group.
    pub row_group_rows: usize,
    /// Parquet: the most bytes one row group may hold in memory before it
    /// is written out.
    pub row_group_bytes: usize,
    /// CSV: write the header row (off when appending to a file that has one).
    pub csv_header: bool,
}

impl Default for TableOptions {
    fn default() -> Self {
        Self { row_group_rows: 100_000, row_group_bytes: 64 * 1024 * 1024, csv_header: true }
    }
}

enum Inner<W: Write + Send> {
    Ndjson(W),
    Csv(Box<csv::Writer<W>>),
    Parquet(Box<ArrowWriter<W>>, SchemaRef),
}

/// Writes rows of a fixed set of columns in one format.
pub struct TableWriter<W: Write + Send> {
    columns: Vec<Column>,
    inner: Inner<W>,
    rows: u64,
}

fn arrow_type(ty: ColumnType) -> DataType {
    match ty {
        ColumnType::Text | ColumnType::Json => DataType::Utf8,
        ColumnType::Int16 => DataType::Int16,
        ColumnType::Int32 => DataType::Int32,
        ColumnType::Int64 => DataType::Int64,
        ColumnType::UInt64 => DataType::UInt64,
        ColumnType::Float64 => DataType::Float64,
        ColumnType::Bool => DataType::Boolean,
        ColumnType::Date => DataType::Date32,
        ColumnType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        ColumnType::TextList => DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
    }
}

/// The Arrow schema of a table (every column nullable).
#[must_use]
pub fn arrow_schema(columns: &[Column]) -> SchemaRef {
    Arc::new(Schema::new(columns.iter().map(|c| Field::new(c.name, arrow_type(c.ty), true)).collect::<Vec<_>>()))
}

impl<W: Write + Send> TableWriter<W> {
    /// A writer of `columns` in `format` into `out`.
    pub fn new(format: Format, columns: &[Column], out: W, options: TableOptions) -> Result<Self> {
        let inner = match format {
            Format::Ndjson => Inner::Ndjson(out),
            Format::Csv => {
                let mut w = csv::WriterBuilder::new().has_headers(false).from_writer(out);
                if options.csv_header {
                    w.write_record(columns.iter().map(|c| c.name))?;
                }
                Inner::Csv(Box::new(w))
            }
            Format::Parquet => {
                let schema = arrow_schema(columns);
                let props = WriterProperties::builder()
                    .set_compression(Compression::SNAPPY)
                    .set_max_row_group_row_count(Some(options.row_group_rows.max(1)))
                    .set_max_row_group_bytes(Some(options.row_group_bytes.max(1024 * 1024)))
                    .set_created_by(format!("tandem {}", env!("CARGO_PKG_VERSION")))
                    .build();
                let w = ArrowWriter::try_new(out, schema.clone(), Some(props))?;
                Inner::Parquet(Box::new(w), schema)
            }
        };
        Ok(Self { columns: columns.to_vec(), inner, rows: 0 })
    }

    /// Rows written so far.
    #[must_use]
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Writes a batch of rows, each with one value per column.
    pub fn write(&mut self, rows: &[Vec<Value>]) -> Result<()> {
        if let Some(bad) = rows.iter().find(|r| r.len() != self.columns.len()) {
            return Err(ArrowError::InvalidArgumentError(format!(
                "a row has {} values for {} columns",
                bad.len(),
                self.columns.len()
            ))
            .into());
        }
        match &mut self.inner {
            Inner::Ndjson(w) => {
                let mut line = Vec::with_capacity(512);
                for row in rows {
                    line.clear();
                    ndjson_row(&mut line, &self.columns, row)?;
                    w.write_all(&line)?;
                }
            }
            Inner::Csv(w) => {
                for row in rows {
                    w.write_record(row.iter().map(csv_cell))?;
                }
            }
            Inner::Parquet(w, schema) => {
                if !rows.is_empty() {
                    let batch = batch(schema.clone(), &self.columns, rows)?;
                    w.write(&batch)?;
                }
            }
        }
        self.rows += rows.len() as u64;
        Ok(())
    }

    /// Pushes whatever the text formats buffer to the output (Parquet
    /// writes whole row groups only, by itself).
    pub fn flush(&mut self) -> Result<()> {
        match &mut self.inner {
            Inner::Ndjson(w) => w.flush()?,
            Inner::Csv(w) => w.flush()?,
            Inner::Parquet(..) => {}
        }
        Ok(())
    }

    /// Ends the table (Parquet writes its last row group and footer) and
    /// gives the output back.
    pub fn finish(self) -> Result<W> {
        match self.inner {
            Inner::Ndjson(mut w) => {
                w.flush()?;
                Ok(w)
            }
            Inner::Csv(w) => w.into_inner().map_err(|e| ExportError::Io(e.into_error())),
            Inner::Parquet(w, _) => Ok(w.into_inner()?),
        }
    }
}

fn ndjson_row(out: &mut Vec<u8>, columns: &[Column], row: &[Value]) -> Result<()> {
    out.push(b'{');
    for (i, (c, v)) in columns.iter().zip(row).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        serde_json::to_writer(&mut *out, c.name).map_err(std::io::Error::other)?;
        out.push(b':');
        let json = match v {
            Value::Null => Json::Null,
            Value::Text(s) => Json::from(s.as_str()),
            Value::Int(n) => Json::from(*n),
            Value::UInt(n) => Json::from(*n),
            Value::Float(x) => serde_json::Number::from_f64(*x).map_or(Json::Null, Json::Number),
            Value::Bool(b) => Json::Bool(*b),
            Value::Date(d) => Json::from(d.to_string()),
            Value::Timestamp(t) => Json::from(instant_text(t)),
            Value::TextList(l) => Json::from(l.as_slice()),
            Value::Json(j) => {
                serde_json::to_writer(&mut *out, j).map_err(std::io::Error::other)?;
                continue;
            }
        };
        serde_json::to_writer(&mut *out, &json).map_err(std::io::Error::other)?;
    }
    out.extend_from_slice(b"}\n");
    Ok(())
}

fn csv_cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::Text(s) => s.clone(),
        Value::Int(n) => n.to_string(),
        Value::UInt(n) => n.to_string(),
        Value::Float(x) => x.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Date(d) => d.to_string(),
        Value::Timestamp(t) => instant_text(t),
        Value::Json(j) => j.to_string(),
        Value::TextList(l) => Json::from(l.as_slice()).to_string(),
    }
}

fn mismatch(column: &Column, v: &Value) -> ExportError {
    ArrowError::InvalidArgumentError(format!("column {} ({:?}) cannot hold {v:?}", column.name, column.ty)).into()
}

/// The days from 1970-01-01 of a date, as Arrow's `Date32` counts them.
fn epoch_days(d: NaiveDate) -> i32 {
    // Dates of the domain lie within ±5.8 million years of 1970.
    i32::try_from((d - NaiveDate::default()).num_days()).unwrap_or(i32::MAX)
}

fn batch(schema: SchemaRef, columns: &[Column], rows: &[Vec<Value>]) -> Result<RecordBatch> {
    let n = rows.len();
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(columns.len());
    for (i, c) in columns.iter().enumerate() {
        let cells = rows.iter().map(|r| &r[i]);
        let array: ArrayRef = match c.ty {
            ColumnType::Text | ColumnType::Json => {
                let mut b = StringBuilder::with_capacity(n, n * 16);
                for v in cells {
                    match v {
                        Value::Null => b.append_null(),
                        Value::Text(s) => b.append_value(s),
                        Value::Json(j) => b.append_value(j.to_string()),
                        other => return Err(mismatch(c, other)),
                    }
                }
                Arc::new(b.finish())
            }
            ColumnType::Int16 => {
                let mut b = Int16Builder::with_capacity(n);
                for v in cells {
                    match v {
                        Value::Null => b.append_null(),
                        Value::Int(x) => b.append_value(i16::try_from(*x).map_err(|_| mismatch(c, v))?),
                        other => return Err(mismatch(c, other)),
                    }
                }
                Arc::new(b.finish())
            }
            ColumnType::Int32 => {
                let mut b = Int32Builder::with_capacity(n);
                for v in cells {
                    match v {
                        Value::Null => b.append_null(),
                        Value::Int(x) => b.append_value(i32::try_from(*x).map_err(|_| mismatch(c, v))?),
                        other => return Err(mismatch(c, other)),
                    }
                }
                Arc::new(b.finish())
            }
            ColumnType::Int64 => {
                let mut b = Int64Builder::with_capacity(n);
                for v in cells {
                    match v {
                        Value::Null => b.append_null(),
                        Value::Int(x) => b.append_value(*x),
                        other => return Err(mismatch(c, other)),
                    }
                }
                Arc::new(b.finish())
            }
            ColumnType::UInt64 => {
                let mut b = UInt64Builder::with_capacity(n);
                for v in cells {
                    match v {
                        Value::Null => b.append_null(),
                        Value::UInt(x) => b.append_value(*x),
                        other => return Err(mismatch(c, other)),
                    }
                }
                Arc::new(b.finish())
            }
            ColumnType::Float64 => {
                let mut b = Float64Builder::with_capacity(n);
                for v in cells {
                    match v {
                        Value::Null => b.append_null(),
                        Value::Float(x) => b.append_value(*x),
                        other => return Err(mismatch(c, other)),
                    }
                }
                Arc::new(b.finish())
            }
            ColumnType::Bool => {
                let mut b = BooleanBuilder::with_capacity(n);
                for v in cells {
                    match v {
                        Value::Null => b.append_null(),
                        Value::Bool(x) => b.append_value(*x),
                        other => return Err(mismatch(c, other)),
                    }
                }
                Arc::new(b.finish())
            }
            ColumnType::Date => {
                let mut b = Date32Builder::with_capacity(n);
                for v in cells {
                    match v {
                        Value::Null => b.append_null(),
                        Value::Date(d) => b.append_value(epoch_days(*d)),
                        other => return Err(mismatch(c, other)),
                    }
                }
                Arc::new(b.finish())
            }
            ColumnType::Timestamp => {
                let mut b = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
                for v in cells {
                    match v {
                        Value::Null => b.append_null(),
                        Value::Timestamp(t) => b.append_value(t.timestamp_micros()),
                        other => return Err(mismatch(c, other)),
                    }
                }
                Arc::new(b.finish())
            }
            ColumnType::TextList => {
                let mut b = ListBuilder::with_capacity(StringBuilder::new(), n);
                for v in cells {
                    match v {
                        Value::Null => b.append_null(),
                        Value::TextList(l) => {
                            for t in l {
                                b.values().append_value(t);
                            }
                            b.append(true);
                        }
                        other => return Err(mismatch(c, other)),
                    }
                }
                Arc::new(b.finish())
            }
        };
        arrays.push(array);
    }
    Ok(RecordBatch::try_new(schema, arrays)?)
}
