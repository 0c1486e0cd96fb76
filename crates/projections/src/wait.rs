//! Read-your-writes: [`Waiter::wait_for`] returns once every projection has
//! applied a commit position, so a mutation can answer with fresh data.
//!
//! Where the waiter learns positions from, fastest first:
//! 1. runners of this process publish each committed batch directly (no
//!    database round trip);
//! 2. a listener on `tandem_projections` hears batches committed by runners
//!    in other processes (each batch transaction notifies on commit);
//! 3. while someone waits, the checkpoint table is polled (from 20 ms,
//!    doubling up to the poll interval), because notifications are only a
//!    hint: they are lost while the listener reconnects.
//!
//! The wait is bounded: past the timeout it fails with
//! [`ProjectionError::Timeout`] naming the projections still behind.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tandem_store::Cursor;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, sleep_until};

use crate::NOTIFY_CHANNEL;
use crate::error::{ProjectionError, Result};
use crate::registry::read_models;
use crate::sql::cursor;

/// The first delay between two polls of the checkpoint table during a wait.
const FIRST_POLL: Duration = Duration::from_millis(20);

/// Waits for projections to reach positions. Cheap to clone; clones share
/// what they learned and one listener. Once a wait had to go to the
/// database, the listener keeps one connection of the pool for its `LISTEN`
/// for as long as the waiter lives.
#[derive(Clone, Debug)]
pub struct Waiter {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    pool: PgPool,
    /// The projections a wait waits for: all of them.
    names: Vec<String>,
    /// The highest checkpoint known per projection.
    positions: Arc<watch::Sender<BTreeMap<String, Cursor>>>,
    /// The `LISTEN tandem_projections` task, started by the first wait.
    listener: Mutex<Option<JoinHandle<()>>>,
    /// The longest pause between two polls of the checkpoint table.
    poll_interval: Duration,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Ok(mut listener) = self.listener.lock()
            && let Some(task) = listener.take()
        {
            task.abort();
        }
    }
}

impl Waiter {
    /// A waiter for the projections called `names`, reading checkpoints
    /// through `pool`.
    pub fn new<S: Into<String>>(pool: PgPool, names: impl IntoIterator<Item = S>) -> Self {
        Self::with_poll_interval(pool, names, Duration::from_millis(250))
    }

    /// [`Waiter::new`] with another longest pause between polls.
    pub fn with_poll_interval<S: Into<String>>(
        pool: PgPool,
        names: impl IntoIterator<Item = S>,
        poll_interval: Duration,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                pool,
                names: names.into_iter().map(Into::into).collect(),
                positions: Arc::new(watch::Sender::new(BTreeMap::new())),
                listener: Mutex::new(None),
                poll_interval: poll_interval.max(FIRST_POLL),
            }),
        }
    }

    /// A waiter for Tandem's read models, for a process that does not run
    /// the projections itself (e.g. an API replica).
    #[must_use]
    pub fn for_read_models(pool: PgPool) -> Self {
        Self::new(pool, read_models().iter().map(|p| p.name().to_owned()))
    }

    /// The positions known so far, by projection.
    #[must_use]
    pub fn positions(&self) -> BTreeMap<String, Cursor> {
        self.inner.positions.borrow().clone()
    }

    /// Records that `name` has applied everything up to `at` (positions only
    /// move forward).
    pub(crate) fn publish(&self, name: &str, at: Cursor) {
        publish(&self.inner.positions, name, at);
    }

    /// Returns once every projection's checkpoint is at or past `position`
    /// in the log's order `(transaction_id, position)`, or fails with
    /// [`ProjectionError::Timeout`] after `timeout`. [`Cursor::START`] (a
    /// command that committed nothing) returns at once.
    #[tracing::instrument(level = "debug", skip(self), fields(position = %position))]
    pub async fn wait_for(&self, position: Cursor, timeout: Duration) -> Result<()> {
        if position == Cursor::START || self.inner.names.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        let deadline = started + timeout;
        let mut rx = self.inner.positions.subscribe();
        if self.behind(&rx.borrow_and_update(), position).is_empty() {
            return Ok(());
        }
        self.ensure_listener();
        let mut poll_every = FIRST_POLL;
        let mut next_poll = started;
        loop {
            let behind = self.behind(&rx.borrow_and_update(), position);
            if behind.is_empty() {
                return Ok(());
            }
            let now = Instant::now();
            if now >= next_poll {
                if let Err(error) = self.refresh().await {
                    tracing::debug!(error = %error, "polling projection checkpoints failed");
                }
                next_poll = Instant::now() + poll_every;
                poll_every = (poll_every * 2).min(self.inner.poll_interval);
                continue;
            }
            if now >= deadline {
                return Err(ProjectionError::Timeout { position, waited: now - started, behind });
            }
            tokio::select! {
                _ = rx.changed() => {}
                () = sleep_until(next_poll.min(deadline)) => {}
            }
        }
    }

    fn behind(&self, known: &BTreeMap<String, Cursor>, position: Cursor) -> Vec<String> {
        self.inner.names.iter().filter(|n| known.get(*n).is_none_or(|at| *at < position)).cloned().collect()
    }

    /// Reads every checkpoint of interest from the database.
    async fn refresh(&self) -> Result<()> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT name, transaction_id::text, position FROM projection_checkpoints WHERE name = ANY($1)",
        )
        .bind(&self.inner.names)
        .fetch_all(&self.inner.pool)
        .await?;
        for (name, txid, position) in rows {
            publish(&self.inner.positions, &name, cursor(&txid, position)?);
        }
        Ok(())
    }

    fn ensure_listener(&self) {
        let Ok(mut listener) = self.inner.listener.lock() else { return };
        if listener.as_ref().is_some_and(|t| !t.is_finished()) {
            return;
        }
        let pool = self.inner.pool.clone();
        let positions = Arc::clone(&self.inner.positions);
        *listener = Some(tokio::spawn(listen(pool, positions)));
    }
}

fn publish(positions: &watch::Sender<BTreeMap<String, Cursor>>, name: &str, at: Cursor) {
    positions.send_if_modified(|known| match known.get(name) {
        Some(old) if *old >= at => false,
        _ => {
            known.insert(name.to_owned(), at);
            true
        }
    });
}

/// Follows `tandem_projections` notifications for as long as the waiter
/// lives, reconnecting with backoff.
async fn listen(pool: PgPool, positions: Arc<watch::Sender<BTreeMap<String, Cursor>>>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let connect = async {
            let mut listener = PgListener::connect_with(&pool).await?;
            listener.listen(NOTIFY_CHANNEL).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        match connect.await {
            Ok(mut listener) => {
                backoff = Duration::from_millis(100);
                loop {
                    match listener.try_recv().await {
                        Ok(Some(n)) => {
                            if let Some((name, at)) = parse_payload(n.payload()) {
                                publish(&positions, name, at);
                            }
                        }
                        // Reconnected: what was sent meanwhile is lost; the
                        // waits poll the table anyway.
                        Ok(None) => {}
                        Err(sqlx::Error::PoolClosed) => return,
                        Err(error) => {
                            tracing::debug!(error = %error, "projection listener failed; reconnecting");
                            break;
                        }
                    }
                }
            }
            Err(sqlx::Error::PoolClosed) => return,
            Err(error) => tracing::debug!(error = %error, "cannot listen for projection progress; polling"),
        }
        sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}

/// Parses `"<name> <transaction_id>-<position>"`.
fn parse_payload(payload: &str) -> Option<(&str, Cursor)> {
    let (name, at) = payload.split_once(' ')?;
    Some((name, Cursor::from_str(at).ok()?))
}
