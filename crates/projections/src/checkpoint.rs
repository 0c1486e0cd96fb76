//! Checkpoints: where each projection stands, and [`apply_batch`], the one
//! transaction that applies a batch and moves the checkpoint together.
//!
//! The batch transaction locks the projection's checkpoint row first and
//! checks that it still holds the cursor the batch was read after. Every
//! writer of a projection's tables (runners in any process, a rebuild's swap)
//! goes through that row lock in the same order (row, then tables), so they
//! take turns without deadlocks, and a writer whose idea of the cursor is
//! stale gets [`BatchOutcome::Stale`] instead of applying events twice. This
//! is what makes the effect exactly-once; the runner's advisory lock only
//! keeps the losers from doing the work in vain.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use tandem_store::Cursor;

use crate::NOTIFY_CHANNEL;
use crate::error::Result;
use crate::projection::{Envelope, Projection, READ_SCHEMA};
use crate::sql::{cursor, use_schema};

/// A projection's checkpoint row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub name: String,
    /// The last event applied ([`Cursor::START`] before the first).
    pub cursor: Cursor,
    /// The projection version that built the tables.
    pub version: i32,
    /// Events applied since the tables were last built.
    pub events_applied: i64,
    /// `recorded_at` of the last event applied.
    pub last_recorded_at: Option<DateTime<Utc>>,
    pub rebuilt_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

type CheckpointRow = (String, String, i64, i32, i64, Option<DateTime<Utc>>, Option<DateTime<Utc>>, DateTime<Utc>);

fn from_row(row: CheckpointRow) -> Result<Checkpoint> {
    let (name, txid, position, version, events_applied, last_recorded_at, rebuilt_at, updated_at) = row;
    Ok(Checkpoint {
        name,
        cursor: cursor(&txid, position)?,
        version,
        events_applied,
        last_recorded_at,
        rebuilt_at,
        updated_at,
    })
}

/// Every checkpoint, by name.
pub async fn checkpoints(pool: &PgPool) -> Result<Vec<Checkpoint>> {
    let rows: Vec<CheckpointRow> = sqlx::query_as(
        "SELECT name, transaction_id::text, position, version, events_applied, last_recorded_at, \
         rebuilt_at, updated_at FROM projection_checkpoints ORDER BY name",
    )
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(from_row).collect()
}

/// The checkpoint of one projection, if it has one.
pub(crate) async fn get(conn: &mut PgConnection, name: &str) -> Result<Option<Checkpoint>> {
    let row: Option<CheckpointRow> = sqlx::query_as(
        "SELECT name, transaction_id::text, position, version, events_applied, last_recorded_at, \
         rebuilt_at, updated_at FROM projection_checkpoints WHERE name = $1",
    )
    .bind(name)
    .fetch_optional(conn)
    .await?;
    row.map(from_row).transpose()
}

/// Locks the checkpoint row for the rest of the transaction and returns its
/// cursor and version.
pub(crate) async fn lock(conn: &mut PgConnection, name: &str) -> Result<Option<(Cursor, i32)>> {
    let row: Option<(String, i64, i32)> = sqlx::query_as(
        "SELECT transaction_id::text, position, version FROM projection_checkpoints WHERE name = $1 FOR UPDATE",
    )
    .bind(name)
    .fetch_optional(conn)
    .await?;
    row.map(|(t, p, v)| Ok((cursor(&t, p)?, v))).transpose()
}

/// Moves the checkpoint (the row must be locked by this transaction) and
/// queues the notification for waiters, sent when the transaction commits.
pub(crate) async fn advance(
    conn: &mut PgConnection,
    name: &str,
    to: Cursor,
    applied: i64,
    last_recorded_at: Option<DateTime<Utc>>,
) -> Result<()> {
    sqlx::query(
        "UPDATE projection_checkpoints \
            SET transaction_id = $2::text::xid8, position = $3, events_applied = events_applied + $4, \
                last_recorded_at = COALESCE($5, last_recorded_at), updated_at = now() \
          WHERE name = $1",
    )
    .bind(name)
    .bind(to.transaction_id.to_string())
    .bind(to.position)
    .bind(applied)
    .bind(last_recorded_at)
    .execute(&mut *conn)
    .await?;
    notify(conn, name, to).await
}

/// Queues `NOTIFY tandem_projections, '<name> <cursor>'`.
pub(crate) async fn notify(conn: &mut PgConnection, name: &str, at: Cursor) -> Result<()> {
    sqlx::query("SELECT pg_notify($1, $2)").bind(NOTIFY_CHANNEL).bind(format!("{name} {at}")).execute(conn).await?;
    Ok(())
}

/// What [`apply_batch`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchOutcome {
    /// The batch was applied; the checkpoint is now at this cursor.
    Applied(Cursor),
    /// Nothing was applied: the checkpoint was not at the cursor the batch
    /// was read after (another runner or a rebuild moved it), or it belongs
    /// to another version of the projection. Re-read from `stored`.
    Stale { stored: Cursor, version: i32 },
    /// Nothing was applied: the projection has no checkpoint row.
    Missing,
}

/// Applies `events`, read after `after`, to the live tables of `projection`
/// and moves its checkpoint to the last event, in one transaction, if and
/// only if the checkpoint is still at `after` with this projection's
/// version. The runner's inner step, public for tools and tests.
#[tracing::instrument(
    level = "debug",
    skip_all,
    fields(projection = projection.name(), after = %after, events = events.len()),
    err(level = "debug")
)]
pub async fn apply_batch(
    pool: &PgPool,
    projection: &dyn Projection,
    after: Cursor,
    events: &[Envelope],
) -> Result<BatchOutcome> {
    let Some((last, _)) = events.last() else {
        return Ok(BatchOutcome::Applied(after));
    };
    let name = projection.name();
    let mut tx = pool.begin().await?;
    let Some((stored, version)) = lock(&mut tx, name).await? else {
        return Ok(BatchOutcome::Missing);
    };
    if stored != after || version != projection.version() {
        return Ok(BatchOutcome::Stale { stored, version });
    }
    use_schema(&mut tx, READ_SCHEMA).await?;
    projection.apply(&mut tx, events).await?;
    let to = last.cursor();
    let applied = i64::try_from(events.len()).unwrap_or(i64::MAX);
    advance(&mut tx, name, to, applied, Some(last.recorded_at)).await?;
    tx.commit().await?;
    Ok(BatchOutcome::Applied(to))
}
