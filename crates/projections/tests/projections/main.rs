//! Integration tests of the projections against a real PostgreSQL.
//!
//! One test binary (modules below) keeps link time down. Every test gets a
//! fresh database with the workspace migrations applied (`#[sqlx::test]`);
//! histories are generated through the real command path
//! ([`tandem_commands::CommandService`]), so the projections see exactly
//! what production writes.
//!
//! Run with `DATABASE_URL=postgres://… cargo test -p tandem-projections`.

mod exactly_once;
mod lag;
mod newer_events;
mod org_history;
mod queries;
mod rebuild;
mod stats;
mod support;
mod survival;
mod wait_for;
