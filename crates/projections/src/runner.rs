//! The projection runner: one task per projection, one leader per
//! projection across every process.
//!
//! A runner task loops through three states:
//!
//! - **standby**: it tries `pg_try_advisory_lock(RUNNER_LOCK_CLASS,
//!   hashtext(name))` on a dedicated connection (outside any pool, since a
//!   session-level lock must stay with one connection) and, when another
//!   process holds it, tries again every `standby_retry`. When the leader's
//!   process dies its connection closes, PostgreSQL releases the lock and a
//!   standby takes over.
//! - **preparing**: as leader it reads the checkpoint. No checkpoint and no
//!   tables: it creates the tables in `read` and starts from the beginning.
//!   A checkpoint of another version (or missing tables): it rebuilds
//!   ([`mod@crate::rebuild`]) while the old tables keep serving.
//! - **leading**: it reads batches after its cursor (gap-free, from the
//!   store) and applies each with [`apply_batch`]: read-model writes and
//!   checkpoint in one transaction. When nothing is readable it waits for a
//!   wake-up from the process's one `LISTEN tandem_events` connection, or
//!   the poll interval, whichever comes first; after a wake-up that found
//!   nothing (an older transaction still holds the horizon) it re-reads
//!   after a short, growing delay. It checks now and then that its lock
//!   connection is alive and stands down when it is not.
//!
//! Correctness does not rest on the lock: every batch transaction locks the
//! checkpoint row and applies only if the checkpoint is still where the
//! batch was read from. A runner that finds it moved (a rebuild swapped new
//! tables in, or another runner ran during a network partition) continues
//! from the stored position.
//!
//! Errors (the database going away, an event that cannot be decoded) end
//! the leadership: the lock is released, the error logged, and the task
//! tries again after an exponential backoff; an event that cannot be
//! decoded therefore stalls the projection loudly instead of being skipped.
//!
//! Shutdown ([`ProjectionsHandle::shutdown`]) lets the current batch
//! finish, then releases the locks. Dropping the handle without shutting
//! down aborts the tasks (a batch in flight rolls back, nothing is lost).
//!
//! The runners use a small pool of their own, built from the caller's
//! connect options (one connection per projection, plus the listeners), so
//! API load cannot starve them and they cannot starve the API.

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgListener, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};
use tandem_store::{Cursor, EventStore, RecordedEvent};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep};

use crate::checkpoint::{self, BatchOutcome, apply_batch};
use crate::error::{ProjectionError, Result};
use crate::projection::{Projection, READ_SCHEMA, check_name};
use crate::rebuild::{self, Progress};
use crate::registry::read_models;
use crate::sql::use_schema;
use crate::wait::Waiter;
use crate::{RUNNER_LOCK_CLASS, source};

/// The first delay of every backoff.
const MIN_BACKOFF: Duration = Duration::from_millis(100);

/// The first re-read delay after a wake-up that found nothing readable.
const MIN_RECHECK: Duration = Duration::from_millis(5);

/// How the runners read, wait and retry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunnerOptions {
    /// Events per batch transaction while live or catching up.
    pub batch_size: i64,
    /// Events per transaction while rebuilding into scratch tables.
    pub rebuild_batch_size: i64,
    /// The longest wait between two reads when idle, notifications or not.
    pub poll_interval: Duration,
    /// How often a standby tries to become leader.
    pub standby_retry: Duration,
    /// How often a leader checks that its lock connection is alive.
    pub lock_check_interval: Duration,
    /// The longest pause between retries after errors.
    pub max_backoff: Duration,
    /// Whether to LISTEN for commits at all (false: poll only).
    pub notifications: bool,
    /// Whether a leader rebuilds a projection whose stored version differs
    /// from its code's (false: it fails with [`ProjectionError::NeedsRebuild`]
    /// and retries, e.g. until an operator runs `tandem replay`).
    pub auto_rebuild: bool,
}

impl Default for RunnerOptions {
    fn default() -> Self {
        Self {
            batch_size: 500,
            rebuild_batch_size: rebuild::REBUILD_BATCH_SIZE,
            poll_interval: Duration::from_millis(500),
            standby_retry: Duration::from_secs(5),
            lock_check_interval: Duration::from_secs(5),
            max_backoff: Duration::from_secs(30),
            notifications: true,
            auto_rebuild: true,
        }
    }
}

/// What a runner task is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Not yet tried to lead.
    Starting,
    /// Another process leads this projection; retrying periodically.
    Standby,
    /// Applying events.
    Leader,
    /// Leading, and rebuilding the tables before applying.
    Rebuilding,
    /// Shut down.
    Stopped,
}

/// A set of projections to run. [`Projections::spawn`] starts them.
#[derive(Debug)]
pub struct Projections {
    pool: PgPool,
    projections: Vec<Arc<dyn Projection>>,
    options: RunnerOptions,
}

impl Projections {
    /// Tandem's read models over `pool` (whose connect options the runners
    /// copy for their own connections).
    #[must_use]
    pub fn new(pool: PgPool) -> Self {
        Self::with_projections(pool, read_models())
    }

    /// Other projections (e.g. a subset, or test projections).
    #[must_use]
    pub fn with_projections(pool: PgPool, projections: Vec<Arc<dyn Projection>>) -> Self {
        Self { pool, projections, options: RunnerOptions::default() }
    }

    /// Replaces the options.
    #[must_use]
    pub fn options(mut self, options: RunnerOptions) -> Self {
        self.options = options;
        self
    }

    /// Starts one runner task per projection (on the current tokio
    /// runtime) and returns the handle that stops them.
    pub fn spawn(self) -> Result<ProjectionsHandle> {
        let mut names = HashSet::new();
        for p in &self.projections {
            check_name(p.name())?;
            if !names.insert(p.name().to_owned()) {
                return Err(ProjectionError::InvalidName(format!("{} (twice)", p.name())));
            }
        }
        let connect = (*self.pool.connect_options()).clone().application_name("tandem projections");
        // One connection per runner, the wake-up listener, and a spare for a
        // rebuild's swap (which reads while holding its transaction).
        let size = u32::try_from(self.projections.len()).unwrap_or(u32::MAX).saturating_add(3);
        let pool = PgPoolOptions::new().max_connections(size).min_connections(0).connect_lazy_with(connect);
        // The waiter polls through the caller's pool, so that it keeps working
        // (for runners elsewhere) after these runners shut down.
        let waiter = Waiter::new(self.pool.clone(), self.projections.iter().map(|p| p.name().to_owned()));
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let (waker_tx, waker_rx) = watch::channel(0_u64);
        // The listener task owns the waker's sender; without notifications
        // the context keeps it, so that waiting on the waker just pends.
        let (listener_waker, kept_waker) =
            if self.options.notifications { (Some(waker_tx), None) } else { (None, Some(waker_tx)) };
        let roles = watch::Sender::new(
            self.projections.iter().map(|p| (p.name().to_owned(), Role::Starting)).collect::<BTreeMap<_, _>>(),
        );
        let ctx = Arc::new(Ctx {
            pool: pool.clone(),
            store: source::store(pool.clone()),
            options: self.options.clone(),
            waker: waker_rx,
            waiter: waiter.clone(),
            roles: roles.clone(),
            _waker_tx: kept_waker,
        });
        let mut tasks = Vec::with_capacity(self.projections.len() + 1);
        if let Some(waker_tx) = listener_waker {
            tasks.push(tokio::spawn(wake_on_commits(
                pool.clone(),
                waker_tx,
                shutdown_rx.clone(),
                self.options.max_backoff,
            )));
        }
        for p in self.projections {
            tasks.push(tokio::spawn(run(Arc::clone(&ctx), p, shutdown_rx.clone())));
        }
        Ok(ProjectionsHandle { shutdown: shutdown_tx, tasks, waiter, roles: roles.subscribe(), pool })
    }
}

/// Runs the projections until shut down. Dropping it without
/// [`ProjectionsHandle::shutdown`] aborts the runners.
#[derive(Debug)]
pub struct ProjectionsHandle {
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    waiter: Waiter,
    roles: watch::Receiver<BTreeMap<String, Role>>,
    pool: PgPool,
}

impl ProjectionsHandle {
    /// The waiter fed by these runners (and by the database for runners
    /// elsewhere); clone it into the API's state.
    #[must_use]
    pub fn waiter(&self) -> Waiter {
        self.waiter.clone()
    }

    /// [`Waiter::wait_for`] on [`ProjectionsHandle::waiter`].
    pub async fn wait_for(&self, position: Cursor, timeout: Duration) -> Result<()> {
        self.waiter.wait_for(position, timeout).await
    }

    /// What each runner is doing now.
    #[must_use]
    pub fn roles(&self) -> BTreeMap<String, Role> {
        self.roles.borrow().clone()
    }

    /// Waits until every runner has the role `role` (or `timeout` passes;
    /// then returns false). For readiness checks and tests.
    pub async fn wait_for_roles(&self, role: Role, timeout: Duration) -> bool {
        let mut rx = self.roles.clone();
        let check = async {
            loop {
                if rx.borrow_and_update().values().all(|r| *r == role) {
                    return true;
                }
                if rx.changed().await.is_err() {
                    return false;
                }
            }
        };
        tokio::time::timeout(timeout, check).await.unwrap_or(false)
    }

    /// Asks the runners to stop after their current batch; does not wait.
    pub fn stop(&self) {
        self.shutdown.send_replace(true);
    }

    /// Stops the runners when `signal` completes (e.g. the service's
    /// shutdown signal).
    pub fn stop_on(&self, signal: impl Future<Output = ()> + Send + 'static) {
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            signal.await;
            shutdown.send_replace(true);
        });
    }

    /// Stops the runners gracefully: each finishes the batch it is applying,
    /// releases its lock and ends. Returns when all have ended.
    pub async fn shutdown(mut self) {
        self.stop();
        for task in self.tasks.drain(..) {
            if let Err(error) = task.await
                && error.is_panic()
            {
                tracing::error!(error = %error, "projection runner panicked");
            }
        }
        self.pool.close().await;
    }
}

impl Drop for ProjectionsHandle {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// What the runner tasks of one [`Projections`] share.
#[derive(Debug)]
struct Ctx {
    pool: PgPool,
    store: EventStore,
    options: RunnerOptions,
    /// Bumped on every `tandem_events` notification.
    waker: watch::Receiver<u64>,
    waiter: Waiter,
    roles: watch::Sender<BTreeMap<String, Role>>,
    /// Keeps the waker's sender alive when no listener task owns it, so
    /// that waiting on the waker pends instead of failing.
    _waker_tx: Option<watch::Sender<u64>>,
}

impl Ctx {
    fn set_role(&self, name: &str, role: Role) {
        self.roles.send_if_modified(|roles| roles.insert(name.to_owned(), role) != Some(role));
    }
}

/// Sleeps for `duration` unless shutdown is asked first; true on shutdown.
async fn sleep_or_shutdown(shutdown: &mut watch::Receiver<bool>, duration: Duration) -> bool {
    if *shutdown.borrow() {
        return true;
    }
    tokio::select! {
        changed = shutdown.changed() => changed.is_err() || *shutdown.borrow(),
        () = sleep(duration) => *shutdown.borrow(),
    }
}

/// The leader lock of one projection, on a connection of its own.
struct LeaderLock {
    name: String,
    conn: Option<PgConnection>,
    held: bool,
}

impl LeaderLock {
    fn new(name: &str) -> Self {
        Self { name: name.to_owned(), conn: None, held: false }
    }

    /// Tries to take the lock (connecting first if needed).
    async fn try_acquire(&mut self, pool: &PgPool) -> Result<bool> {
        let conn = match &mut self.conn {
            Some(conn) => conn,
            None => {
                let options = (*pool.connect_options()).clone().application_name("tandem projection lock");
                self.conn.insert(PgConnection::connect_with(&options).await?)
            }
        };
        let got = sqlx::query_scalar::<_, bool>("SELECT pg_try_advisory_lock($1, hashtext($2))")
            .bind(RUNNER_LOCK_CLASS)
            .bind(&self.name)
            .fetch_one(&mut *conn)
            .await;
        match got {
            Ok(got) => {
                self.held = got;
                Ok(got)
            }
            Err(error) => {
                self.conn = None;
                self.held = false;
                Err(error.into())
            }
        }
    }

    /// Whether the lock connection still answers (the lock lives exactly as
    /// long as the connection's session).
    async fn check(&mut self) -> bool {
        let alive = match &mut self.conn {
            Some(conn) => conn.ping().await.is_ok(),
            None => false,
        };
        if !alive {
            self.conn = None;
            self.held = false;
        }
        alive
    }

    /// Gives the lock up (a standby can take over at once).
    async fn release(&mut self) {
        if !self.held {
            return;
        }
        self.held = false;
        if let Some(conn) = &mut self.conn {
            let unlocked = sqlx::query("SELECT pg_advisory_unlock($1, hashtext($2))")
                .bind(RUNNER_LOCK_CLASS)
                .bind(&self.name)
                .execute(&mut *conn)
                .await;
            if unlocked.is_err() {
                // Closing the session releases it as well.
                self.conn = None;
            }
        }
    }
}

/// Why a leader stopped leading without an error.
enum Stop {
    Shutdown,
    LostLock,
}

/// One projection's task: standby until leader, lead, repeat on errors.
async fn run(ctx: Arc<Ctx>, projection: Arc<dyn Projection>, mut shutdown: watch::Receiver<bool>) {
    let name = projection.name().to_owned();
    let mut lock = LeaderLock::new(&name);
    let mut backoff = MIN_BACKOFF;
    loop {
        if *shutdown.borrow() {
            break;
        }
        match lock.try_acquire(&ctx.pool).await {
            Ok(true) => {}
            Ok(false) => {
                ctx.set_role(&name, Role::Standby);
                if sleep_or_shutdown(&mut shutdown, ctx.options.standby_retry).await {
                    break;
                }
                continue;
            }
            Err(error) => {
                tracing::warn!(projection = %name, error = %error, retry_in = ?backoff, "cannot try the projection lock");
                ctx.set_role(&name, Role::Standby);
                if sleep_or_shutdown(&mut shutdown, backoff).await {
                    break;
                }
                backoff = (backoff * 2).min(ctx.options.max_backoff);
                continue;
            }
        }
        tracing::info!(projection = %name, "leading projection");
        ctx.set_role(&name, Role::Leader);
        let outcome = lead(&ctx, &projection, &mut lock, &mut shutdown, &mut backoff).await;
        lock.release().await;
        match outcome {
            Ok(Stop::Shutdown) => break,
            Ok(Stop::LostLock) => {
                tracing::warn!(projection = %name, "projection lock connection lost; standing by");
                ctx.set_role(&name, Role::Standby);
            }
            Err(error) => {
                tracing::error!(
                    projection = %name,
                    error = %error,
                    cause = ?std::error::Error::source(&error),
                    retry_in = ?backoff,
                    "projection runner failed; retrying"
                );
                ctx.set_role(&name, Role::Standby);
                if sleep_or_shutdown(&mut shutdown, backoff).await {
                    break;
                }
                backoff = (backoff * 2).min(ctx.options.max_backoff);
            }
        }
    }
    lock.release().await;
    ctx.set_role(&name, Role::Stopped);
}

/// Leads one projection until shutdown, loss of the lock, or an error.
async fn lead(
    ctx: &Ctx,
    projection: &Arc<dyn Projection>,
    lock: &mut LeaderLock,
    shutdown: &mut watch::Receiver<bool>,
    backoff: &mut Duration,
) -> Result<Stop> {
    let name = projection.name();
    let Some(mut cursor) = prepare(ctx, projection, shutdown).await? else {
        return Ok(Stop::Shutdown);
    };
    ctx.waiter.publish(name, cursor);
    let mut reader = Reader::new(ctx);
    let mut last_check = Instant::now();
    loop {
        if *shutdown.borrow() {
            return Ok(Stop::Shutdown);
        }
        if last_check.elapsed() >= ctx.options.lock_check_interval {
            if !lock.check().await {
                return Ok(Stop::LostLock);
            }
            last_check = Instant::now();
        }
        let events = tokio::select! {
            biased;
            changed = shutdown.changed() => {
                if changed.is_err() {
                    return Ok(Stop::Shutdown);
                }
                continue;
            }
            events = reader.next(cursor) => events?,
        };
        let Some(events) = events else { continue };
        let count = events.len();
        let envelopes = source::decode(events)?;
        // Not raced with shutdown: a batch that started is finished.
        match apply_batch(&ctx.pool, projection.as_ref(), cursor, &envelopes).await? {
            BatchOutcome::Applied(to) => {
                tracing::debug!(projection = %name, events = count, checkpoint = %to, "applied batch");
                cursor = to;
                *backoff = MIN_BACKOFF;
            }
            BatchOutcome::Stale { stored, version } if version == projection.version() => {
                tracing::info!(projection = %name, ours = %cursor, stored = %stored, "checkpoint moved elsewhere; continuing from it");
                cursor = stored;
                if !lock.check().await {
                    return Ok(Stop::LostLock);
                }
            }
            BatchOutcome::Stale { .. } | BatchOutcome::Missing => {
                let Some(at) = prepare(ctx, projection, shutdown).await? else {
                    return Ok(Stop::Shutdown);
                };
                cursor = at;
            }
        }
        ctx.waiter.publish(name, cursor);
    }
}

/// Makes the live tables ready for this version of the projection and
/// returns the cursor to continue after; `None` when shut down meanwhile.
async fn prepare(
    ctx: &Ctx,
    projection: &Arc<dyn Projection>,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<Option<Cursor>> {
    let name = projection.name();
    let mut conn = ctx.pool.acquire().await?;
    let stored = checkpoint::get(&mut conn, name).await?;
    let present = tables_present(&mut conn, READ_SCHEMA, projection.tables()).await?;
    drop(conn);
    let all = present == projection.tables().len();
    match &stored {
        Some(c) if c.version == projection.version() && all => return Ok(Some(c.cursor)),
        None if present == 0 => {
            // First start: nothing to keep serving, so build in place.
            let mut tx = ctx.pool.begin().await?;
            use_schema(&mut tx, READ_SCHEMA).await?;
            sqlx::raw_sql(projection.create_sql()).execute(&mut *tx).await?;
            let created = sqlx::query(
                "INSERT INTO projection_checkpoints (name, version) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
            )
            .bind(name)
            .bind(projection.version())
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if created == 1 {
                tx.commit().await?;
                tracing::info!(projection = %name, version = projection.version(), "created read-model tables");
                return Ok(Some(Cursor::START));
            }
            // A rebuild elsewhere got there first: take what it built.
            tx.rollback().await?;
            let mut conn = ctx.pool.acquire().await?;
            if let Some(c) = checkpoint::get(&mut conn, name).await?
                && c.version == projection.version()
            {
                return Ok(Some(c.cursor));
            }
        }
        _ => {}
    }
    if !ctx.options.auto_rebuild {
        return Err(ProjectionError::NeedsRebuild {
            name: name.to_owned(),
            stored: stored.map(|c| c.version),
            code: projection.version(),
        });
    }
    tracing::info!(
        projection = %name,
        stored_version = ?stored.as_ref().map(|c| c.version),
        code_version = projection.version(),
        tables_present = present,
        "rebuilding projection before serving it"
    );
    ctx.set_role(name, Role::Rebuilding);
    // One line per phase change and at most one every five seconds between.
    let mut last_log: Option<(Instant, crate::rebuild::Phase)> = None;
    let mut log_progress = |p: Progress| {
        if last_log.is_some_and(|(at, phase)| phase == p.phase && at.elapsed() < Duration::from_secs(5)) {
            return;
        }
        last_log = Some((Instant::now(), p.phase));
        tracing::info!(
            projection = %p.projection,
            phase = ?p.phase,
            done = p.events_done,
            total = p.events_total,
            rate = p.events_per_second,
            "rebuild progress"
        );
    };
    let outcome = rebuild::rebuild_one(
        &ctx.pool,
        projection,
        ctx.options.rebuild_batch_size,
        &mut log_progress,
        Some(&*shutdown),
    )
    .await;
    ctx.set_role(name, Role::Leader);
    match outcome {
        Ok(report) => Ok(Some(report.position)),
        Err(ProjectionError::Cancelled(_)) => Ok(None),
        Err(error) => Err(error),
    }
}

/// How many of `tables` exist in `schema`.
pub(crate) async fn tables_present(conn: &mut PgConnection, schema: &str, tables: &[&str]) -> Result<usize> {
    let present: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM unnest($2::text[]) AS t(name)
          WHERE to_regclass(quote_ident($1) || '.' || quote_ident(t.name)) IS NOT NULL",
    )
    .bind(schema)
    .bind(tables)
    .fetch_one(conn)
    .await?;
    Ok(usize::try_from(present).unwrap_or_default())
}

/// Reads batches for a leader, waiting when there is nothing to read.
struct Reader {
    store: EventStore,
    waker: watch::Receiver<u64>,
    batch_size: i64,
    poll_interval: Duration,
    /// Set after a wake-up that found nothing readable yet.
    recheck: Option<Duration>,
}

impl Reader {
    fn new(ctx: &Ctx) -> Self {
        Self {
            store: ctx.store.clone(),
            waker: ctx.waker.clone(),
            batch_size: ctx.options.batch_size.max(1),
            poll_interval: ctx.options.poll_interval,
            recheck: None,
        }
    }

    /// The next batch after `after`, or `None` after waiting once without
    /// finding one (so the caller can look at shutdown and its lock).
    /// Cancel-safe: nothing moves until a batch is returned.
    async fn next(&mut self, after: Cursor) -> Result<Option<Vec<RecordedEvent>>> {
        let events = self.store.read_all(after, self.batch_size).await?;
        if !events.is_empty() {
            self.recheck = None;
            return Ok(Some(events));
        }
        let poll = self.poll_interval;
        let delay = self.recheck.map_or(poll, |r| r.min(poll));
        let woken = tokio::select! {
            changed = self.waker.changed() => match changed {
                Ok(()) => true,
                // The listener is gone (shutting down): plain polling.
                Err(_) => {
                    sleep(delay).await;
                    false
                }
            },
            () = sleep(delay) => false,
        };
        self.recheck = if woken {
            Some(MIN_RECHECK)
        } else {
            // Back off towards plain polling while the horizon stays held.
            self.recheck.map(|r| r * 2).filter(|r| *r < poll)
        };
        Ok(None)
    }
}

/// The process's one `LISTEN tandem_events`: bumps the waker on every
/// notification, and once after every (re)connection since notifications
/// sent meanwhile are lost.
async fn wake_on_commits(
    pool: PgPool,
    waker: watch::Sender<u64>,
    mut shutdown: watch::Receiver<bool>,
    max_backoff: Duration,
) {
    let wake = |w: &watch::Sender<u64>| w.send_modify(|n| *n = n.wrapping_add(1));
    let mut backoff = MIN_BACKOFF;
    loop {
        if *shutdown.borrow() {
            return;
        }
        let connect = async {
            let mut listener = PgListener::connect_with(&pool).await?;
            listener.listen(tandem_store::NOTIFY_CHANNEL).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        match connect.await {
            Ok(mut listener) => {
                backoff = MIN_BACKOFF;
                wake(&waker);
                loop {
                    tokio::select! {
                        changed = shutdown.changed() => {
                            if changed.is_err() || *shutdown.borrow() {
                                return;
                            }
                        }
                        received = listener.try_recv() => match received {
                            Ok(Some(_)) => {
                                // One read covers every commit notified so far.
                                while listener.next_buffered().is_some() {}
                                wake(&waker);
                            }
                            Ok(None) => wake(&waker),
                            Err(error) => {
                                tracing::warn!(error = %error, "projection wake-up listener failed; polling meanwhile");
                                break;
                            }
                        },
                    }
                }
            }
            Err(error) => {
                tracing::warn!(error = %error, retry_in = ?backoff, "cannot listen for commits; polling meanwhile")
            }
        }
        if sleep_or_shutdown(&mut shutdown, backoff).await {
            return;
        }
        backoff = (backoff * 2).min(max_backoff);
    }
}
