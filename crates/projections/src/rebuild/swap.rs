//! The swap transaction of a rebuild (step 5 of the [module docs](super)):
//! catch up, drop the old tables, move the new ones in, move the
//! checkpoint, all or nothing.

use std::time::Duration;

use sqlx::{AssertSqlSafe, PgPool};
use tandem_store::{Cursor, EventStore};
use tokio::time::{Instant, sleep};

use super::{State, Target};
use crate::checkpoint::{lock, notify};
use crate::error::{ProjectionError, Result};
use crate::projection::READ_SCHEMA;
use crate::source;
use crate::sql::{ident, is_lock_timeout, use_schema};

/// How often the swap is tried when it cannot get its locks in time.
const SWAP_ATTEMPTS: u32 = 5;

/// How long the swap waits for the events up to the live checkpoint to
/// become readable.
const CATCH_UP_DEADLINE: Duration = Duration::from_secs(30);

/// Swaps `t`'s scratch tables in, retrying when its locks time out.
pub(super) async fn swap_with_retries(pool: &PgPool, t: &Target, batch_size: i64, s: &mut State) -> Result<()> {
    let store = source::store(pool.clone());
    let mut attempt = 1;
    loop {
        match swap(pool, &store, t, batch_size, s).await {
            Ok(()) => return Ok(()),
            Err(error) if is_lock_timeout(&error) && attempt < SWAP_ATTEMPTS => {
                tracing::warn!(
                    projection = %t.projection.name(),
                    attempt,
                    "rebuild swap timed out waiting for locks; retrying"
                );
                attempt += 1;
                sleep(Duration::from_millis(200) * attempt).await;
            }
            Err(error) => return Err(error),
        }
    }
}

/// The swap transaction. On failure nothing of it stays, and `s` only moves
/// when it commits.
async fn swap(pool: &PgPool, store: &EventStore, t: &Target, batch_size: i64, s: &mut State) -> Result<()> {
    let projection = t.projection.as_ref();
    let name = projection.name();
    let mut tx = pool.begin().await?;
    sqlx::query("SET LOCAL lock_timeout = '5s'").execute(&mut *tx).await?;
    sqlx::query("INSERT INTO projection_checkpoints (name, version) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
        .bind(name)
        .bind(projection.version())
        .execute(&mut *tx)
        .await?;
    let live = lock(&mut tx, name).await?.map_or(Cursor::START, |(c, _)| c);
    use_schema(&mut tx, &t.scratch).await?;

    // Catch up. The events are read through the pool (reading inside this
    // transaction, which has an id, would hide what it waits for); events
    // written after this transaction began are not readable until it ends,
    // so this ends, and the live runner applies them after.
    let mut next = *s;
    let deadline = Instant::now() + CATCH_UP_DEADLINE;
    loop {
        let events = store.read_all(next.cursor, batch_size).await?;
        let Some(last) = events.last() else {
            if next.cursor >= live {
                break;
            }
            // The live checkpoint is readable by construction; an older
            // transaction still holding the horizon only delays it.
            if Instant::now() > deadline {
                return Err(ProjectionError::CatchUpStalled(name.to_owned()));
            }
            sleep(Duration::from_millis(10)).await;
            continue;
        };
        next.cursor = last.cursor();
        next.last_recorded_at = Some(last.recorded_at);
        next.done += events.len() as u64;
        let envelopes = source::decode(events)?;
        projection.apply(&mut tx, &envelopes).await?;
    }

    let read = ident(READ_SCHEMA);
    let scratch = ident(&t.scratch);
    for table in projection.tables() {
        let table = ident(table);
        sqlx::raw_sql(AssertSqlSafe(format!(
            "DROP TABLE IF EXISTS {read}.{table}; ALTER TABLE {scratch}.{table} SET SCHEMA {read};"
        )))
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query(
        "UPDATE projection_checkpoints
            SET transaction_id = $2::text::xid8, position = $3, version = $4, events_applied = $5,
                last_recorded_at = $6, rebuilt_at = now(), updated_at = now()
          WHERE name = $1",
    )
    .bind(name)
    .bind(next.cursor.transaction_id.to_string())
    .bind(next.cursor.position)
    .bind(projection.version())
    .bind(i64::try_from(next.done).unwrap_or(i64::MAX))
    .bind(next.last_recorded_at)
    .execute(&mut *tx)
    .await?;
    notify(&mut tx, name, next.cursor).await?;
    tx.commit().await?;
    tracing::info!(projection = %name, checkpoint = %next.cursor, events = next.done, "rebuilt tables swapped in");
    *s = next;
    Ok(())
}
