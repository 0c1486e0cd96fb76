//! Figure 3: one reader paging the whole log in its gap-free global order
//! from the start — `EventStore::read_all`, the path of projections,
//! subscriptions and analysts — against raw `SELECT` paging of the same rows
//! by position, same page size, same columns decoded.
//!
//! The store's read is checked while it runs: every event exactly once
//! (positions counted and deduplicated against the table's row count).

use std::time::Instant;

use anyhow::Context as _;
use serde_json::Value;
use tandem_commands::DomainUpcaster;
use tandem_store::{Cursor, EventStore};
use uuid::Uuid;

use crate::{Amount, BenchDb, BenchOptions, Figure, Goal, Report};

/// Events per page, for both readers.
pub const PAGE: i64 = 1_000;

/// The raw reader's row: the same columns the store reads.
/// The columns a reader decodes, as the store reads them.
pub(crate) const RAW_COLUMNS: &str = "position, transaction_id::text AS transaction_id, stream_id, stream_type, \
     stream_version, event_id, event_type, schema_version, data, metadata, recorded_at";

#[derive(sqlx::FromRow)]
#[allow(dead_code, reason = "decoded to do the same work as the store; not every reader uses every column")]
pub(crate) struct RawRow {
    pub position: i64,
    pub transaction_id: String,
    pub stream_id: Uuid,
    pub stream_type: String,
    pub stream_version: i32,
    pub event_id: Uuid,
    pub event_type: String,
    pub schema_version: i16,
    pub data: Value,
    pub metadata: Value,
    pub recorded_at: chrono::DateTime<chrono::Utc>,
}

/// Runs figure 3.
pub async fn run(_opts: &BenchOptions, db: &BenchDb, report: &mut Report) -> anyhow::Result<()> {
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&db.pool).await?;
    let pool = db.pool_of(2).await?;
    // Warm the cache the same way for both: one untimed pass of each.
    let store = EventStore::with_upcaster(pool.clone(), std::sync::Arc::new(DomainUpcaster));
    let _ = raw_pass(&pool).await?;
    let _ = store_pass(&store).await?;

    let started = Instant::now();
    let positions = store_pass(&store).await?;
    let ours = started.elapsed();
    let started = Instant::now();
    let raw = raw_pass(&pool).await?;
    let baseline = started.elapsed();

    let n = positions.len();
    let mut unique = positions;
    unique.sort_unstable();
    unique.dedup();
    if unique.len() != n || i64::try_from(n)? != total || raw != total {
        anyhow::bail!(
            "read-all is wrong: {n} events read, {} distinct, {total} in the table, {raw} by the raw reader",
            unique.len()
        );
    }
    report.push(
        Figure::new("read-all", "events/s, one reader, whole log", Amount::per_second(n as u64, ours, "events/s"))
            .against(Amount::per_second(u64::try_from(raw)?, baseline, "rows/s"))
            .goal(Goal::RatioAtLeast(0.8))
            .note(format!("{total} events, pages of {PAGE}; each event once, checked")),
    );
    pool.close().await;
    Ok(())
}

/// Pages the log through the store; returns every position read.
async fn store_pass(store: &EventStore) -> anyhow::Result<Vec<i64>> {
    let mut cursor = Cursor::START;
    let mut positions = Vec::new();
    loop {
        let page = store.read_all(cursor, PAGE).await.context("read_all")?;
        let Some(last) = page.last() else { break };
        cursor = last.cursor();
        positions.extend(page.iter().map(|e| e.position));
    }
    Ok(positions)
}

/// Pages the table by position with plain SQL; returns the rows read.
async fn raw_pass(pool: &sqlx::PgPool) -> anyhow::Result<i64> {
    let mut after = 0i64;
    let mut n = 0i64;
    loop {
        let sql = format!("SELECT {RAW_COLUMNS} FROM events WHERE position > $1 ORDER BY position LIMIT $2");
        let page: Vec<RawRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(after).bind(PAGE).fetch_all(pool).await?;
        let Some(last) = page.last() else { break };
        after = last.position;
        n += i64::try_from(page.len())?;
    }
    Ok(n)
}
