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

pub mod pairs;
pub mod participation;
pub mod people;
pub mod programs;
pub mod webhooks;
