//! Pseudonymous exports for analysts: the event log and the fact tables,
//! as NDJSON, CSV or Parquet.
//!
//! - [`events`]: [`EventExport`], the log after a cursor in its gap-free
//!   order, page by page, bounded by the head of the log when it starts,
//!   optionally only up to a settled instant (`until`) and only some event
//!   types. Every row carries its cursor.
//! - [`facts`]: the tables analysts join (people, participants, pairs,
//!   sessions, goals), from a study folded up to an instant.
//! - [`render`]: what an analyst sees of an event's payload (an allowlist:
//!   no names, e-mails, external ids or free text).
//! - [`pseudonym`]: person ids replaced by keyed hashes, stable per salt.
//! - [`table`]: the typed table writers of the three formats.
//! - [`typed`]: each event type's payload as typed columns, for exports
//!   split by event type ([`SplitExport`]).
//! - [`error`]: [`ExportError`], the crate's one error type.

pub mod error;
pub mod events;
pub mod facts;
pub mod pseudonym;
pub mod render;
pub mod table;
pub mod typed;

pub use error::{ExportError, Result};
pub use events::{EVENT_COLUMNS, EventExport, EventQuery, Progress, SplitExport, parse_types};
pub use pseudonym::Pseudonymizer;
pub use table::{Format, TableOptions};
