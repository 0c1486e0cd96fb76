//! What Tandem's test crates share, so that each test file says only what it
//! tests.
//!
//! - [`db`]: the database of a test. Every test gets a fresh, migrated
//!   database from `#[sqlx::test(migrations = "../../migrations")]`; this
//!   module adds the connections a test needs beside its pool (another
//!   "process", a bare connection, the URL for a child process) and the
//!   log's last cursor.
//! - [`values`]: validated domain values and dates from literals.
//! - [`wait`]: polling for a condition with a deadline.
//! - [`rng`]: a small seeded generator for reproducible histories and races.
//! - [`fixtures`]: people, programs, pairs, sessions and feedback written
//!   through the real command service.
//! - [`tokens`]: the test signing secret and a token for every role.
//! - [`server`]: the whole Tandem router on 127.0.0.1:0 with its projection
//!   runners and event hub.
//! - [`client`]: a GraphQL-over-HTTP client.
//! - [`ws`]: a graphql-transport-ws client.
//! - [`org`]: a small organisation built through the API.
//! - [`receiver`]: a webhook receiver that records, fails and goes down
//!   on demand, and the independent signature verifier.
//!
//! This is test code: a helper that cannot do its job panics with a message
//! saying what failed, which is how a test fails.

pub mod client;
pub mod db;
pub mod fixtures;
pub mod org;
pub mod receiver;
pub mod rng;
pub mod server;
pub mod tokens;
pub mod values;
pub mod wait;
pub mod ws;

/// The fixed server secret of tests (the keyed digests of idempotency
/// records and pseudonyms are then the same in every run).
#[must_use]
pub fn test_secret() -> tandem_store::ServerSecret {
    tandem_store::ServerSecret::new(*b"tandem tests' fixed server secret").expect("32 bytes or more")
}
