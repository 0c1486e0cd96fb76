//! What the projection tests share beyond [`tandem_testkit`]: runner
//! options, waiting for the projections to catch up, the decoded log, and
//! table snapshots to compare read models.

pub mod audit;
pub mod history;

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;
use sqlx::PgPool;
use tandem_domain::DomainEvent;
use tandem_projections::{Projection, RunnerOptions, lag};
use tandem_store::{Cursor, EventStore, RecordedEvent};
pub use tandem_testkit::db::{another_pool, last_event};
pub use tandem_testkit::fixtures::exec;
pub use tandem_testkit::rng::Rng;
pub use tandem_testkit::values::{at, day, email, ext, level, lt, plus, st};
pub use tandem_testkit::wait::eventually;

/// Runner options for tests: short waits so handovers happen within the
/// test's patience.
pub fn fast() -> RunnerOptions {
    RunnerOptions {
        batch_size: 200,
        poll_interval: Duration::from_millis(100),
        standby_retry: Duration::from_millis(100),
        lock_check_interval: Duration::from_millis(200),
        max_backoff: Duration::from_millis(400),
        ..RunnerOptions::default()
    }
}

/// Waits until every named projection (Tandem's read models when empty) has
/// applied every event written so far.
pub async fn caught_up(pool: &PgPool, names: &[&str]) {
    let target = last_event(pool).await;
    let names: Vec<String> = if names.is_empty() {
        tandem_projections::read_models().iter().map(|p| p.name().to_owned()).collect()
    } else {
        names.iter().map(|n| (*n).to_owned()).collect()
    };
    eventually(Duration::from_secs(40), "projections to catch up", || async {
        let checkpoints = tandem_projections::checkpoints(pool).await.expect("checkpoints");
        names.iter().all(|n| checkpoints.iter().any(|c| &c.name == n && c.cursor >= target)).then_some(())
    })
    .await;
    // Whatever else they report, lag agrees once the horizon has passed.
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    eventually(Duration::from_secs(40), "lag to reach zero", || async {
        lag(pool, &names).await.expect("lag").iter().all(tandem_projections::ProjectionLag::caught_up).then_some(())
    })
    .await;
}

/// Every event of the log, decoded, in log order.
pub async fn all_events(pool: &PgPool) -> Vec<(RecordedEvent, DomainEvent)> {
    let store = EventStore::new(pool.clone());
    let mut out = Vec::new();
    let mut cursor = Cursor::START;
    loop {
        let batch = store.read_all(cursor, 1000).await.expect("read the log");
        let Some(last) = batch.last() else { break };
        cursor = last.cursor();
        for e in batch {
            let d = DomainEvent::decode(&e.event_type, e.schema_version, e.data.clone()).expect("decode");
            out.push((e, d));
        }
    }
    out
}

/// Every row of every table of the projections in `schema`, as JSON,
/// sorted: two snapshots are equal iff the tables hold the same rows.
pub async fn snapshot(
    pool: &PgPool,
    schema: &str,
    projections: &[std::sync::Arc<dyn Projection>],
) -> BTreeMap<String, Vec<Value>> {
    let mut out = BTreeMap::new();
    for p in projections {
        for table in p.tables() {
            let sql = format!("SELECT to_jsonb(t) FROM \"{schema}\".\"{table}\" t ORDER BY to_jsonb(t)::text");
            let rows: Vec<Value> =
                sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_all(pool).await.expect("snapshot a table");
            out.insert((*table).to_owned(), rows);
        }
    }
    out
}

/// Asserts two snapshots are equal, table by table, naming the first
/// differing row.
pub fn assert_same_tables(left: &BTreeMap<String, Vec<Value>>, right: &BTreeMap<String, Vec<Value>>) {
    assert_eq!(left.keys().collect::<Vec<_>>(), right.keys().collect::<Vec<_>>(), "same tables");
    for (table, rows) in left {
        let other = &right[table];
        assert_eq!(rows.len(), other.len(), "row count of {table}");
        for (a, b) in rows.iter().zip(other) {
            assert_eq!(a, b, "first differing row of {table}");
        }
    }
}
