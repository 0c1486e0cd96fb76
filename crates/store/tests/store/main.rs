//! Integration tests of the event store against a real PostgreSQL.
//!
//! One test binary (modules below) keeps link time down. Every test gets a
//! fresh database with the workspace migrations applied (`#[sqlx::test]`),
//! so tests can run in parallel; the readers' horizon only waits for event
//! writers of its own database, so tests do not delay one another's reads.
//!
//! Run with `DATABASE_URL=postgres://… cargo test -p tandem-store`.

mod append;
mod append_only;
mod batch;
mod common;
mod cursor_metadata;
mod gap_free;
mod horizon;
mod idempotency;
mod tail;
mod upcast;
