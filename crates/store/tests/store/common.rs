//! Helpers shared by the tests: events, metadata, connections, waiting.

use std::future::Future;
use std::time::Duration;

use serde_json::json;
use sqlx::{Connection, PgConnection, PgPool};
use tandem_store::{Actor, Metadata, NewEvent};
use uuid::Uuid;

/// Metadata with every field set.
pub fn metadata() -> Metadata {
    Metadata {
        actor: Actor { subject: "person-1".to_owned(), role: "admin".to_owned() },
        correlation_id: Uuid::now_v7(),
        causation_id: Some(Uuid::now_v7()),
        idempotency_key: None,
        trace_id: Some("4bf92f3577b34da6a3ce929d0e0e4736".to_owned()),
    }
}

/// `count` distinct events, numbered in their data.
pub fn events(count: usize) -> Vec<NewEvent> {
    (0..count).map(|n| NewEvent::new("Something", 1, json!({ "n": n }))).collect()
}

/// A connection of its own (not from the test pool), to the test database.
pub async fn connect(pool: &PgPool) -> PgConnection {
    PgConnection::connect_with(&pool.connect_options()).await.expect("connect to the test database")
}

/// Begins a transaction on `conn` that gets an xid by writing a row of a
/// table of its own, and returns the xid.
pub async fn hold_xid(conn: &mut PgConnection) -> u64 {
    sqlx::query("CREATE TABLE IF NOT EXISTS unrelated (n int)").execute(&mut *conn).await.expect("create unrelated");
    sqlx::query("BEGIN").execute(&mut *conn).await.expect("begin");
    sqlx::query("INSERT INTO unrelated VALUES (1)").execute(&mut *conn).await.expect("write unrelated");
    let xid: String = sqlx::query_scalar("SELECT pg_current_xact_id()::text").fetch_one(&mut *conn).await.expect("xid");
    xid.parse().expect("xid8 as text")
}

/// Polls `check` until it returns `Some`, failing the test after `limit`.
pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out after {limit:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A small deterministic pseudo-random generator (xorshift), so that racing
/// tests vary their timing without a dependency and reproducibly per seed.
#[derive(Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// A number in `0..bound`.
    pub fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound
    }
}
