//! Rebuilds: replay the whole log into fresh tables while the old ones keep
//! serving, then swap them in.
//!
//! For a set of projections (one, or all of Tandem's side by side):
//!
//! 1. Take each projection's rebuild lock (`pg_try_advisory_lock` in
//!    [`crate::REBUILD_LOCK_CLASS`], on a connection of its own): one
//!    rebuild per projection at a time, across processes.
//! 2. Recreate each scratch schema `rebuild_<name>` (a leftover of a crashed
//!    rebuild is dropped), run the projection's DDL in it and make its
//!    tables `UNLOGGED`.
//! 3. Replay ([`replay`]): ONE reader pages the log and decodes each page
//!    once; every projection applies the same pages to its scratch tables
//!    in a task of its own, so the projections rebuild in parallel while the
//!    reader already fetches the next page. Pages are large
//!    ([`REBUILD_BATCH_SIZE`]) and each read model folds a page in memory
//!    and writes every table in a few set-based statements. Each page is one
//!    short transaction (`synchronous_commit = off`; short, because an open
//!    transaction with an id holds back the read horizon of every tail).
//!    Meanwhile the live runners keep the old tables current.
//! 4. Make the scratch tables `LOGGED` again, each projection on its own.
//! 5. Swap ([`swap`]), in ONE transaction per projection: lock the
//!    checkpoint row (the live runner's next batch waits on it; a batch in
//!    flight finishes first), apply the events that arrived since step 3
//!    (at least up to the live checkpoint, so the checkpoint never goes back
//!    and read-your-writes stays true), drop the old tables, move the
//!    scratch tables into `read` (`ALTER TABLE … SET SCHEMA`, which moves
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
//!
//! Crash safety of the unlogged scratch tables: writing them skips the WAL
//! (the largest cost of a bulk load after the index updates), and a crash
//! of PostgreSQL truncates them, which loses nothing: they live only in the
//! scratch schema, which the next rebuild drops and refills from the log.
//! Before the swap they are set `LOGGED` (PostgreSQL writes each one into
//! the WAL once, outside the swap's transaction), so the tables that serve
//! are never unlogged: a crash after the swap keeps them, and replicas get
//! them.

mod replay;
mod swap;

use std::sync::Arc;
use std::time::Duration;

use sqlx::{AssertSqlSafe, Connection, PgConnection, PgPool};
use tandem_store::Cursor;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::REBUILD_LOCK_CLASS;
use crate::error::{ProjectionError, Result};
use crate::projection::{Projection, check_name};
use crate::registry::{find, read_models};
use crate::sql::{ident, use_schema};

/// Events per page (and per scratch transaction) when rebuilding.
pub const REBUILD_BATCH_SIZE: i64 = 10_000;

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

/// Rebuilds the given projections side by side from one read of the log
/// (see the module docs). Reports come back in the order given; the first
/// error stops the others (their scratch schemas are dropped).
pub async fn rebuild_projections(
    pool: &PgPool,
    projections: &[Arc<dyn Projection>],
    mut progress: impl FnMut(Progress) + Send,
) -> Result<Vec<RebuildReport>> {
    rebuild_set(pool, projections, REBUILD_BATCH_SIZE, &mut progress, None).await
}

/// Rebuilds one projection (a runner whose tables are of another version);
/// `cancel` stops it between pages (before the swap) with
/// [`ProjectionError::Cancelled`].
pub(crate) async fn rebuild_one(
    pool: &PgPool,
    projection: &Arc<dyn Projection>,
    batch_size: i64,
    progress: &mut (dyn FnMut(Progress) + Send),
    cancel: Option<&watch::Receiver<bool>>,
) -> Result<RebuildReport> {
    let mut reports = rebuild_set(pool, std::slice::from_ref(projection), batch_size, progress, cancel).await?;
    reports.pop().ok_or_else(|| ProjectionError::Cancelled(projection.name().to_owned()))
}

/// One projection being rebuilt: its rebuild-lock session and its scratch
/// schema.
pub(super) struct Target {
    pub projection: Arc<dyn Projection>,
    pub scratch: String,
    lock_conn: PgConnection,
}

/// Where one projection's replay is.
#[derive(Clone, Copy, Debug)]
pub(super) struct State {
    pub cursor: Cursor,
    pub done: u64,
    pub last_recorded_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl State {
    const START: Self = Self { cursor: Cursor::START, done: 0, last_recorded_at: None };
}

/// Sends progress reports, with the rate since the rebuild started.
pub(super) struct Reporter<'p> {
    started: Instant,
    total: u64,
    sink: &'p mut (dyn FnMut(Progress) + Send),
}

impl Reporter<'_> {
    pub(super) fn report(&mut self, projection: &str, phase: Phase, done: u64) {
        let elapsed = self.started.elapsed();
        self.total = self.total.max(done);
        (self.sink)(Progress {
            projection: projection.to_owned(),
            phase,
            events_done: done,
            events_total: self.total,
            elapsed,
            events_per_second: rate(done, elapsed),
        });
    }
}

#[tracing::instrument(level = "info", skip_all, fields(projections = projections.len(), batch_size = batch_size))]
async fn rebuild_set(
    pool: &PgPool,
    projections: &[Arc<dyn Projection>],
    batch_size: i64,
    progress: &mut (dyn FnMut(Progress) + Send),
    cancel: Option<&watch::Receiver<bool>>,
) -> Result<Vec<RebuildReport>> {
    let mut targets = Vec::with_capacity(projections.len());
    for projection in projections {
        match lock(pool, projection).await {
            Ok(target) => targets.push(target),
            Err(error) => {
                release(targets, false).await;
                return Err(error);
            }
        }
    }
    let outcome = run(pool, &mut targets, batch_size.max(1), progress, cancel).await;
    release(targets, outcome.is_err()).await;
    outcome
}

/// Takes the rebuild lock of `projection` on a session of its own.
async fn lock(pool: &PgPool, projection: &Arc<dyn Projection>) -> Result<Target> {
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
    Ok(Target { projection: Arc::clone(projection), scratch: format!("rebuild_{name}"), lock_conn })
}

/// Ends the rebuild sessions (which releases their locks), dropping the
/// scratch schemas first after a failure so that nothing half-built stays.
async fn release(targets: Vec<Target>, failed: bool) {
    for mut t in targets {
        if failed {
            // Harmless if it fails: the next rebuild drops the schema first.
            let _ = drop_schema(&mut t.lock_conn, &t.scratch).await;
        }
        let _ = t.lock_conn.close().await;
    }
}

async fn run(
    pool: &PgPool,
    targets: &mut [Target],
    batch_size: i64,
    progress: &mut (dyn FnMut(Progress) + Send),
    cancel: Option<&watch::Receiver<bool>>,
) -> Result<Vec<RebuildReport>> {
    let started = Instant::now();
    for t in targets.iter_mut() {
        create_scratch(pool, t).await?;
    }
    let total: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE transaction_id < (SELECT tandem_event_horizon())")
            .fetch_one(pool)
            .await?;
    let mut reporter = Reporter { started, total: u64::try_from(total).unwrap_or_default(), sink: progress };
    for t in targets.iter() {
        reporter.report(t.projection.name(), Phase::Started, 0);
    }

    let states = replay::replay(pool, targets, batch_size, &mut reporter, cancel).await?;

    // Swaps one projection at a time: each is one short transaction, and
    // doing them in turn keeps a swap's catch-up reads from competing.
    let mut reports = Vec::with_capacity(targets.len());
    for (t, mut s) in targets.iter_mut().zip(states) {
        let name = t.projection.name().to_owned();
        reporter.report(&name, Phase::Swapping, s.done);
        set_logged(pool, t).await?;
        swap::swap_with_retries(pool, t, batch_size, &mut s).await?;
        drop_schema(&mut t.lock_conn, &t.scratch).await?;
        reporter.report(&name, Phase::Swapped, s.done);
        let elapsed = started.elapsed();
        reports.push(RebuildReport {
            projection: name,
            events: s.done,
            elapsed,
            events_per_second: rate(s.done, elapsed),
            position: s.cursor,
        });
    }
    Ok(reports)
}

/// Recreates the scratch schema with the projection's tables, unlogged.
async fn create_scratch(pool: &PgPool, t: &mut Target) -> Result<()> {
    drop_schema(&mut t.lock_conn, &t.scratch).await?;
    sqlx::raw_sql(AssertSqlSafe(format!("CREATE SCHEMA {}", ident(&t.scratch)))).execute(&mut t.lock_conn).await?;
    let mut tx = pool.begin().await?;
    use_schema(&mut tx, &t.scratch).await?;
    sqlx::raw_sql(t.projection.create_sql()).execute(&mut *tx).await?;
    for table in t.projection.tables() {
        // Empty tables: switching now costs nothing (see the module docs).
        sqlx::raw_sql(AssertSqlSafe(format!("ALTER TABLE {}.{} SET UNLOGGED", ident(&t.scratch), ident(table))))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Makes the filled scratch tables durable before they serve.
async fn set_logged(pool: &PgPool, t: &Target) -> Result<()> {
    let mut conn = pool.acquire().await?;
    for table in t.projection.tables() {
        sqlx::raw_sql(AssertSqlSafe(format!("ALTER TABLE {}.{} SET LOGGED", ident(&t.scratch), ident(table))))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

async fn drop_schema(conn: &mut PgConnection, schema: &str) -> Result<()> {
    sqlx::raw_sql(AssertSqlSafe(format!("DROP SCHEMA IF EXISTS {} CASCADE", ident(schema)))).execute(conn).await?;
    Ok(())
}

fn rate(events: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    // Event counts stay far below 2^52, so the conversion is exact.
    if secs > 0.0 { events as f64 / secs } else { 0.0 }
}
