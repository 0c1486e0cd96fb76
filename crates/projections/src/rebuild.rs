//! Rebuilds: replay the whole log into fresh tables while the old ones keep
//! serving, then swap them in.
//!
//! For one projection:
//!
//! 1. Take the projection's rebuild lock (`pg_try_advisory_lock` in
//!    [`crate::REBUILD_LOCK_CLASS`], on a connection of its own): one
//!    rebuild per projection at a time, across processes.
//! 2. Recreate the scratch schema `rebuild_<name>` (a leftover of a crashed
//!    rebuild is dropped) and run the projection's DDL in it.
//! 3. Replay every readable event from the start into the scratch tables, in
//!    short transactions (`synchronous_commit = off`: a crash only loses
//!    scratch work, which restarts from zero anyway; short, because an open
//!    transaction with an id holds back the read horizon of every tail).
//!    Meanwhile the live runner keeps the old tables current.
//! 4. Swap, in ONE transaction: lock the projection's checkpoint row (the
//!    live runner's next batch waits on it; a batch in flight finishes
//!    first), apply the events that arrived since step 3 to the scratch
//!    tables (at least up to the live checkpoint, so the checkpoint never
//!    goes back and read-your-writes stays true), drop the old tables, move
//!    the scratch tables into `read` (`ALTER TABLE … SET SCHEMA`, which moves
//!    their indexes too), set the checkpoint (cursor, version, rebuilt_at),
//!    notify, commit.
//!
//! Why it is safe: readers see either the old tables or the new ones, never
//! a mix (DDL is transactional); the checkpoint moves with the tables it
//! describes; and the live runner, whose next batch transaction locks the
//! checkpoint row first, finds it moved and continues from it (see
//! [`crate::checkpoint`]), so no event is applied twice or skipped. A
//! `lock_timeout` keeps a long-running reader of the old tables from
//! stalling everyone behind the swap: the swap gives up and retries.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{AssertSqlSafe, Connection, PgConnection, PgPool};
use tandem_store::Cursor;
use tokio::sync::watch;
use tokio::time::{Instant, sleep};

use crate::checkpoint::{lock, notify};
use crate::error::{ProjectionError, Result};
use crate::projection::{Projection, READ_SCHEMA, check_name, find, read_models};
use crate::sql::{ident, is_lock_timeout, use_schema};
use crate::{REBUILD_LOCK_CLASS, source};

/// Events per transaction when rebuilding through [`rebuild`].
pub const REBUILD_BATCH_SIZE: i64 = 1000;

/// How often the swap is tried when it cannot get its locks in time.
const SWAP_ATTEMPTS: u32 = 5;

/// Where a rebuild is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Scratch tables created; replay about to start.
    Started,
    /// Replaying into the scratch tables.
    Replaying,
    /// Swapping the scratch tables in.
    Swapping,
    /// Done: the new tables serve.
    Swapped,
}

/// A progress report, sent after every batch and at each phase.
#[derive(Clone, Debug, PartialEq)]
pub struct Progress {
    pub projection: String,
    pub phase: Phase,
    pub events_done: u64,
    /// Readable events when the rebuild started (raised if more arrive).
    pub events_total: u64,
    pub elapsed: Duration,
    pub events_per_second: f64,
}

/// What a finished rebuild did.
#[derive(Clone, Debug, PartialEq)]
pub struct RebuildReport {
    pub projection: String,
    pub events: u64,
    pub elapsed: Duration,
    pub events_per_second: f64,
    /// The checkpoint the new tables start from.
    pub position: Cursor,
}

/// Rebuilds Tandem's read model `name`, or all of them (side by side) for
/// `None`, reporting progress as it goes. Safe while runners are live, in
/// this or other processes. What `tandem replay` calls.
pub async fn rebuild(
    pool: &PgPool,
    name: Option<&str>,
    progress: impl FnMut(Progress) + Send,
) -> Result<Vec<RebuildReport>> {
    let projections = match name {
        Some(name) => vec![find(name)?],
        None => read_models(),
    };
    rebuild_projections(pool, &projections, progress).await
}

/// Rebuilds the given projections side by side: each reads the log and
/// writes its own scratch schema on its own connections, so one waits on
/// the database while another decodes or applies. Reports come back in the
/// order given; the first error stops the others (their scratch schemas are
/// dropped).
pub async fn rebuild_projections(
    pool: &PgPool,
    projections: &[Arc<dyn Projection>],
    progress: impl FnMut(Progress) + Send,
) -> Result<Vec<RebuildReport>> {
    let progress = std::sync::Mutex::new(progress);
    let report = |p: Progress| {
        let mut f = progress.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        f(p);
    };
    futures::future::try_join_all(projections.iter().map(|p| {
        let mut report = &report;
        async move { rebuild_one(pool, p.as_ref(), REBUILD_BATCH_SIZE, &mut report, None).await }
    }))
    .await
}

/// Rebuilds one projection; `cancel` stops it between batches (before the
/// swap) with [`ProjectionError::Cancelled`].
#[tracing::instrument(level = "info", skip_all, fields(projection = projection.name(), version = projection.version()))]
pub(crate) async fn rebuild_one(
    pool: &PgPool,
    projection: &dyn Projection,
    batch_size: i64,
    progress: &mut (dyn FnMut(Progress) + Send),
    cancel: Option<&mut watch::Receiver<bool>>,
) -> Result<RebuildReport> {
    let name = projection.name();
    check_name(name)?;
    let options = (*pool.connect_options()).clone().application_name("tandem projection rebuild");
    let mut lock_conn = PgConnection::connect_with(&options).await?;
    let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, hashtext($2))")
        .bind(REBUILD_LOCK_CLASS)
        .bind(name)
        .fetch_one(&mut lock_conn)
        .await?;
    if !got {
        return Err(ProjectionError::RebuildInProgress(name.to_owned()));
    }
    let scratch = format!("rebuild_{name}");
    let outcome = Rebuild { pool, projection, scratch: &scratch, batch_size: batch_size.max(1), progress, cancel }
        .run(&mut lock_conn)
        .await;
    if outcome.is_err() {
        // Leave nothing half-built behind; a failure here is harmless (the
        // next rebuild drops the schema first).
        let _ = drop_schema(&mut lock_conn, &scratch).await;
    }
    // Closing the session releases the rebuild lock.
    let _ = lock_conn.close().await;
    outcome
}

async fn drop_schema(conn: &mut PgConnection, schema: &str) -> Result<()> {
    sqlx::raw_sql(AssertSqlSafe(format!("DROP SCHEMA IF EXISTS {} CASCADE", ident(schema)))).execute(conn).await?;
    Ok(())
}

struct Rebuild<'a, 'c> {
    pool: &'a PgPool,
    projection: &'a dyn Projection,
    scratch: &'a str,
    batch_size: i64,
    progress: &'a mut (dyn FnMut(Progress) + Send),
    cancel: Option<&'c mut watch::Receiver<bool>>,
}

/// Where the replay is.
struct State {
    started: Instant,
    cursor: Cursor,
    done: u64,
    total: u64,
    last_recorded_at: Option<DateTime<Utc>>,
}

impl Rebuild<'_, '_> {
    fn report(&mut self, phase: Phase, s: &State) {
        let elapsed = s.started.elapsed();
        (self.progress)(Progress {
            projection: self.projection.name().to_owned(),
            phase,
            events_done: s.done,
            events_total: s.total.max(s.done),
            elapsed,
            events_per_second: rate(s.done, elapsed),
        });
    }

    async fn run(mut self, lock_conn: &mut PgConnection) -> Result<RebuildReport> {
        let name = self.projection.name().to_owned();
        let store = source::store(self.pool.clone());
        let mut s = State { started: Instant::now(), cursor: Cursor::START, done: 0, total: 0, last_recorded_at: None };

        drop_schema(lock_conn, self.scratch).await?;
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE SCHEMA {}", ident(self.scratch)))).execute(&mut *lock_conn).await?;
        let mut tx = self.pool.begin().await?;
        use_schema(&mut tx, self.scratch).await?;
        sqlx::raw_sql(self.projection.create_sql()).execute(&mut *tx).await?;
        tx.commit().await?;

        let total: i64 =
            sqlx::query_scalar("SELECT count(*) FROM events WHERE transaction_id < (SELECT tandem_event_horizon())")
                .fetch_one(self.pool)
                .await?;
        s.total = u64::try_from(total).unwrap_or_default();
        self.report(Phase::Started, &s);

        loop {
            if self.cancel.as_ref().is_some_and(|c| *c.borrow()) {
                return Err(ProjectionError::Cancelled(name));
            }
            let events = store.read_all(s.cursor, self.batch_size).await?;
            let Some(last) = events.last() else { break };
            let (to, at, n) = (last.cursor(), last.recorded_at, events.len());
            let envelopes = source::decode(events)?;
            let mut tx = self.pool.begin().await?;
            sqlx::query("SET LOCAL synchronous_commit = off").execute(&mut *tx).await?;
            use_schema(&mut tx, self.scratch).await?;
            self.projection.apply(&mut tx, &envelopes).await?;
            tx.commit().await?;
            s.cursor = to;
            s.last_recorded_at = Some(at);
            s.done += n as u64;
            self.report(Phase::Replaying, &s);
        }

        self.report(Phase::Swapping, &s);
        let mut attempt = 1;
        loop {
            match self.swap(&store, &mut s).await {
                Ok(()) => break,
                Err(error) if is_lock_timeout(&error) && attempt < SWAP_ATTEMPTS => {
                    tracing::warn!(projection = %name, attempt, "rebuild swap timed out waiting for locks; retrying");
                    attempt += 1;
                    sleep(Duration::from_millis(200) * attempt).await;
                }
                Err(error) => return Err(error),
            }
        }
        drop_schema(lock_conn, self.scratch).await?;
        self.report(Phase::Swapped, &s);
        let elapsed = s.started.elapsed();
        Ok(RebuildReport {
            projection: name,
            events: s.done,
            elapsed,
            events_per_second: rate(s.done, elapsed),
            position: s.cursor,
        })
    }

    /// The swap transaction (see the module docs). On failure nothing of it
    /// stays, and `s` only moves when it commits.
    async fn swap(&mut self, store: &tandem_store::EventStore, s: &mut State) -> Result<()> {
        let name = self.projection.name();
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET LOCAL lock_timeout = '5s'").execute(&mut *tx).await?;
        sqlx::query("INSERT INTO projection_checkpoints (name, version) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .bind(self.projection.version())
            .execute(&mut *tx)
            .await?;
        let live = lock(&mut tx, name).await?.map_or(Cursor::START, |(c, _)| c);
        use_schema(&mut tx, self.scratch).await?;

        // Catch up. The events are read through the pool (reading inside
        // this transaction, which has an id, would hide what it waits for);
        // events written after this transaction began are not readable until
        // it ends, so this ends, and the live runner applies them after.
        let (mut cursor, mut done, mut last_at) = (s.cursor, s.done, s.last_recorded_at);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let events = store.read_all(cursor, self.batch_size).await?;
            let Some(last) = events.last() else {
                if cursor >= live {
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
            let (to, at, n) = (last.cursor(), last.recorded_at, events.len());
            let envelopes = source::decode(events)?;
            self.projection.apply(&mut tx, &envelopes).await?;
            cursor = to;
            last_at = Some(at);
            done += n as u64;
        }

        let read = ident(READ_SCHEMA);
        let scratch = ident(self.scratch);
        for table in self.projection.tables() {
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
        .bind(cursor.transaction_id.to_string())
        .bind(cursor.position)
        .bind(self.projection.version())
        .bind(i64::try_from(done).unwrap_or(i64::MAX))
        .bind(last_at)
        .execute(&mut *tx)
        .await?;
        notify(&mut tx, name, cursor).await?;
        tx.commit().await?;
        tracing::info!(projection = %name, checkpoint = %cursor, events = done, "rebuilt tables swapped in");
        s.cursor = cursor;
        s.done = done;
        s.last_recorded_at = last_at;
        Ok(())
    }
}

fn rate(events: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    // Event counts stay far below 2^52, so the conversion is exact.
    if secs > 0.0 { events as f64 / secs } else { 0.0 }
}
