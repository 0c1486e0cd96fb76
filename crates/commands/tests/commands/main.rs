//! Integration tests of the command service against a real PostgreSQL.
#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

mod support;

mod bad_input;
mod cascades;
mod group_commit;
mod idempotency;
mod org_chart;
mod races;
mod vault;
mod versions;
