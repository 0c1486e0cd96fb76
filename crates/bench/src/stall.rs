//! The stall case: how the feed behaves while a transaction that writes no
//! events holds an xid open, in the bench database and in another database
//! of the cluster (an operator's `psql`, another application's migration).
//!
//! [`Unrelated`] opens such transactions; [`run`] measures commit→delivery
//! of the store's tail (the path subscriptions and projections follow)
//! without and then with them open, at a steady commit rate. The mutation
//! part measures its own latency the same way (see [`crate::api`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use sqlx::{Connection as _, Executor as _, PgConnection};
use tandem_commands::CommandService;
use tandem_store::Cursor;

use crate::append::{fixture, progress_command};
use crate::{Amount, BenchDb, BenchOptions, Figure, Goal, Latencies, Report, Size};

/// Commits per second while measuring the feed.
const COMMITS_PER_SECOND: u64 = 50;

/// Where an unrelated transaction runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnrelatedIn {
    /// The bench database, beside the event writers.
    ThisDatabase,
    /// The database the run was pointed at: another database of the cluster.
    AnotherDatabase,
}

impl UnrelatedIn {
    /// Both cases, in the order the parts measure them.
    pub const ALL: [UnrelatedIn; 2] = [UnrelatedIn::ThisDatabase, UnrelatedIn::AnotherDatabase];

    /// The figure label's words for the case.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            UnrelatedIn::ThisDatabase => "unrelated xid open in the same database",
            UnrelatedIn::AnotherDatabase => "unrelated xid open in another database",
        }
    }
}

/// A transaction that holds an xid and writes nothing to the event log.
pub struct Unrelated {
    connection: PgConnection,
    at: UnrelatedIn,
    /// The xid held, for the report's note.
    pub xid: String,
}

impl Unrelated {
    /// Opens the transaction; it takes an xid at once.
    pub async fn open(db: &BenchDb, at: UnrelatedIn) -> anyhow::Result<Self> {
        let options = match at {
            UnrelatedIn::ThisDatabase => db.options.clone(),
            UnrelatedIn::AnotherDatabase => db.admin_options().clone(),
        };
        let mut connection = PgConnection::connect_with(&options).await.context("connecting an unrelated session")?;
        connection.execute("BEGIN").await?;
        let xid: String = sqlx::query_scalar("SELECT pg_current_xact_id()::text").fetch_one(&mut connection).await?;
        Ok(Self { connection, at, xid })
    }

    /// Rolls the transaction back and closes its connection.
    pub async fn close(mut self) -> anyhow::Result<()> {
        self.connection.execute("ROLLBACK").await?;
        self.connection.close().await?;
        Ok(())
    }

    /// What the report says about it.
    #[must_use]
    pub fn describe(&self) -> String {
        let place = match self.at {
            UnrelatedIn::ThisDatabase => "in the bench database",
            UnrelatedIn::AnotherDatabase => "in another database of the cluster",
        };
        format!("with a transaction {place} holding xid {} for the whole measurement, writing no events", self.xid)
    }
}

/// Commit→delivery of the store's tail, without and then with an
/// [`Unrelated`] transaction in each place.
pub async fn run(opts: &BenchOptions, db: &BenchDb, report: &mut Report) -> anyhow::Result<()> {
    let pool = db.pool_of(8).await?;
    let svc = CommandService::from_pool(pool.clone());
    let targets = fixture(&svc, 2, 2).await?;
    let duration = if opts.size == Size::Smoke { opts.duration } else { opts.duration.min(Duration::from_secs(5)) };

    let mut normal = feed_latencies(&svc, &targets, duration).await?;
    let normal_p50 = Amount::millis(normal.percentile(50.0));
    let normal_p99 = Amount::millis(normal.percentile(99.0));
    report.push(
        Figure::new("stall", "feed commit→delivery p50, no open transaction", normal_p50.clone())
            .note(format!("store tail, {} events at {COMMITS_PER_SECOND}/s, each delivered once", normal.len())),
    );
    report.push(Figure::new("stall", "feed commit→delivery p99, no open transaction", normal_p99.clone()));
    for at in UnrelatedIn::ALL {
        let unrelated = Unrelated::open(db, at).await?;
        let stalled = feed_latencies(&svc, &targets, duration).await;
        let described = unrelated.describe();
        unrelated.close().await?;
        let mut stalled = stalled?;
        report.push(
            Figure::new(
                "stall",
                format!("feed commit→delivery p50, {}", at.label()),
                Amount::millis(stalled.percentile(50.0)),
            )
            .against(normal_p50.clone())
            .note("baseline: the same without the open transaction"),
        );
        report.push(
            Figure::new(
                "stall",
                format!("feed commit→delivery p99, {}", at.label()),
                Amount::millis(stalled.percentile(99.0)),
            )
            .against(normal_p99.clone())
            .goal(Goal::AtMost(50.0))
            .note(format!("{} events, {described}; baseline: the same without it", stalled.len())),
        );
    }
    pool.close().await;
    Ok(())
}

/// Commits progress entries at a steady rate for `duration` and returns,
/// for each, the time from the command's answer to the tail's delivery.
async fn feed_latencies(
    svc: &CommandService,
    targets: &[crate::append::Target],
    duration: Duration,
) -> anyhow::Result<Latencies> {
    let store = svc.store().clone();
    let from = store.head().await?;
    let delivered: Arc<Mutex<HashMap<Cursor, Instant>>> = Arc::default();
    let mut tail = store.tail(from);
    let sink = delivered.clone();
    // Ends only with the reason it stopped following.
    let follower = tokio::spawn(async move {
        loop {
            let batch = match tail.next_batch().await {
                Ok(batch) => batch,
                Err(e) => return anyhow::Error::from(e),
            };
            let at = Instant::now();
            let mut seen = sink.lock().unwrap_or_else(PoisonError::into_inner);
            for event in batch {
                if seen.insert(event.cursor(), at).is_some() {
                    return anyhow::anyhow!("the tail delivered {} twice", event.cursor());
                }
            }
        }
    });
    let result = async {
        let mut committed = Vec::new();
        let started = Instant::now();
        let period = Duration::from_micros(1_000_000 / COMMITS_PER_SECOND);
        let mut n = 0usize;
        while started.elapsed() < duration {
            let target = &targets[n % targets.len()];
            let done = svc.handle(progress_command(target, n)?, &crate::append::meta()).await?;
            let at = Instant::now();
            committed.extend(done.events.iter().map(|e| (e.cursor(), at)));
            n += 1;
            tokio::time::sleep_until((started + period * u32::try_from(n)?).into()).await;
        }
        // Every commit must arrive; a stalled horizon shows up here.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            // The guard lives only inside this block, never across the sleep below.
            let done = {
                let seen = delivered.lock().unwrap_or_else(PoisonError::into_inner);
                committed.iter().all(|(c, _)| seen.contains_key(c)).then(|| {
                    let mut latencies = Latencies::with_capacity(committed.len());
                    for (cursor, at) in &committed {
                        latencies.record(seen[cursor].saturating_duration_since(*at));
                    }
                    latencies
                })
            };
            if let Some(latencies) = done {
                return anyhow::Ok(latencies);
            }
            if Instant::now() > deadline {
                anyhow::bail!("the tail did not deliver every committed event within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    .await;
    if follower.is_finished() {
        if let Ok(e) = follower.await {
            return Err(e.context("following the log"));
        }
    } else {
        follower.abort();
    }
    result
}
