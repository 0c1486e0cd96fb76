//! What the store tests build by hand: events and metadata. Connections,
//! waiting and the seeded generator come from [`tandem_testkit`].

use serde_json::json;
use tandem_store::{Actor, Metadata, NewEvent};
use uuid::Uuid;

pub use tandem_testkit::db::connect;
pub use tandem_testkit::rng::Rng;
pub use tandem_testkit::wait::eventually;

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

/// Begins a transaction on `conn` that gets an xid by writing a row of a
/// table of its own, and returns the xid.
pub async fn hold_xid(conn: &mut sqlx::PgConnection) -> u64 {
    sqlx::query("CREATE TABLE IF NOT EXISTS unrelated (n int)").execute(&mut *conn).await.expect("create unrelated");
    sqlx::query("BEGIN").execute(&mut *conn).await.expect("begin");
    sqlx::query("INSERT INTO unrelated VALUES (1)").execute(&mut *conn).await.expect("write unrelated");
    let xid: String = sqlx::query_scalar("SELECT pg_current_xact_id()::text").fetch_one(&mut *conn).await.expect("xid");
    xid.parse().expect("xid8 as text")
}
