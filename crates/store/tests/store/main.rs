//! Integration tests of the event store against a real PostgreSQL.
//!
//! One test binary (modules below) keeps link time down. Every test gets a
//! fresh database with the workspace migrations applied (`#[sqlx::test]`),
//! so tests can run in parallel; note that the transaction horizon is
//! cluster-wide, so a test's open transactions may briefly delay another
//! test's global reads (never change what they return).
//!
//! Run with `DATABASE_URL=postgres://… cargo test -p tandem-store`.

mod append;
mod append_only;
mod batch;
mod common;
mod cursor_metadata;
mod gap_free;
mod idempotency;
mod tail;
mod upcast;
