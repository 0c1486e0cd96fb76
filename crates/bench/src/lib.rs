//! Tandem's benchmark suite (`tandem bench`).
//!
//! Every figure is printed beside a baseline measured in the same run, on the
//! same PostgreSQL server, doing the same work without Tandem: raw
//! single-row INSERTs for appends, raw `SELECT` paging for the global read,
//! a raw sequential scan for replay, hand-written SQL for the dashboard.
//! The run starts from an empty database it creates and drops it at the end.
//!
//! The parts run in this order, each on what the previous ones left:
//!
//! 1. [`append`]: the command path at 1, 4 and 16 clients;
//! 2. [`history`]: a history of `--events` events (not a figure);
//! 3. [`read_all`]: one reader paging the whole log;
//!    [`export`]: the whole log to Parquet by `tandem export events`
//!    against a raw `COPY (SELECT …) TO`, and the exporter's peak memory;
//! 4. [`replay`]: every projection rebuilt from that history;
//! 5. [`api`]: a `tandem serve` process; the dashboard query and GraphQL
//!    mutations end to end;
//! 6. [`subs`]: websocket subscribers of that server, commit to delivery, and
//!    the server's memory;
//! 7. [`stall`]: the store's feed while a transaction that writes no events
//!    holds an xid open (the mutation part measures the same case through
//!    the server);
//! 8. [`import`]: a generated people file through `tandem import people`
//!    against `COPY` of the same file into a plain table, then the same file
//!    again, and the importer's peak memory;
//! 9. [`webhooks`]: a `tandem serve` process of its own delivering to a
//!    receiver of the bench process, against a plain client posting the
//!    same signed bodies to it, and the lag of a live endpoint while
//!    another one is dead.
//!
//! The run ends with every goal as met or missed ([`Report::goals`]).
//!
//! Nothing here is a test: figures are printed, never asserted.

pub mod api;
pub mod append;
mod child;
pub mod db;
pub mod export;
pub mod history;
pub mod import;
pub mod read_all;
pub mod replay;
pub mod report;
pub mod server;
pub mod stall;
pub mod subs;
pub mod webhooks;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;

pub use db::BenchDb;
pub use report::{Amount, Figure, Goal, Latencies, Report};

/// How big a run is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Size {
    /// Seconds in all: keeps the suite from rotting; its figures mean nothing.
    Smoke,
    /// The figures of `BENCHMARKS.md`.
    Full,
}

/// The parts of the suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Part {
    Append,
    ReadAll,
    Replay,
    Query,
    Mutation,
    Subscriptions,
    Stall,
    Export,
    Import,
    Webhooks,
}

impl Part {
    pub const ALL: [Part; 10] = [
        Part::Append,
        Part::ReadAll,
        Part::Replay,
        Part::Query,
        Part::Mutation,
        Part::Subscriptions,
        Part::Stall,
        Part::Export,
        Part::Import,
        Part::Webhooks,
    ];

    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Part::Append => "append",
            Part::ReadAll => "read-all",
            Part::Replay => "replay",
            Part::Query => "query",
            Part::Mutation => "mutation",
            Part::Subscriptions => "subscriptions",
            Part::Stall => "stall",
            Part::Export => "export",
            Part::Import => "import",
            Part::Webhooks => "webhooks",
        }
    }

    /// Parses a part's name.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == s)
    }
}

/// What to run.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// A database on the server to measure; the bench database is created
    /// beside it.
    pub database_url: String,
    pub size: Size,
    /// The `tandem` binary, started as `tandem serve` for the API parts.
    pub server_exe: PathBuf,
    pub parts: Vec<Part>,
    /// Events in the generated history (read-all, replay, dashboard).
    pub events: u64,
    /// How long each throughput measurement runs.
    pub duration: Duration,
    /// Websocket subscribers.
    pub subscribers: usize,
    /// Keep the bench database instead of dropping it.
    pub keep_database: bool,
}

impl BenchOptions {
    /// The sizes of `size`.
    #[must_use]
    pub fn sized(database_url: String, server_exe: PathBuf, size: Size) -> Self {
        let (events, duration, subscribers) = match size {
            Size::Smoke => (20_000, Duration::from_millis(500), 20),
            Size::Full => (1_000_000, Duration::from_secs(10), 1_000),
        };
        Self {
            database_url,
            size,
            server_exe,
            parts: Part::ALL.to_vec(),
            events,
            duration,
            subscribers,
            keep_database: false,
        }
    }

    #[must_use]
    pub fn runs(&self, part: Part) -> bool {
        self.parts.contains(&part)
    }
}

/// Runs the suite and returns its report (also printed line by line).
pub async fn run(opts: &BenchOptions) -> anyhow::Result<Report> {
    let started = Instant::now();
    let db = BenchDb::create(&opts.database_url).await?;
    eprintln!("bench: database {} created", db.name);
    let result = run_parts(opts, &db).await;
    if opts.keep_database {
        eprintln!("bench: database {} kept", db.name);
    } else {
        db.drop_database().await.context("dropping the bench database")?;
    }
    let mut report = result?;
    report.environment.push(("wall time".into(), format!("{:.0} s", started.elapsed().as_secs_f64())));
    Ok(report)
}

async fn run_parts(opts: &BenchOptions, db: &BenchDb) -> anyhow::Result<Report> {
    let mut report = Report { environment: environment(db).await?, ..Report::default() };
    for (k, v) in &report.environment {
        eprintln!("bench: {k}: {v}");
    }
    if opts.runs(Part::Append) {
        append::run(opts, db, &mut report).await.context("append")?;
    }
    let needs_history = [Part::ReadAll, Part::Replay, Part::Query, Part::Mutation, Part::Subscriptions, Part::Export]
        .iter()
        .any(|p| opts.runs(*p));
    if needs_history {
        history::generate(opts, db).await.context("generating the history")?;
    }
    if opts.runs(Part::ReadAll) {
        read_all::run(opts, db, &mut report).await.context("read-all")?;
    }
    if opts.runs(Part::Export) {
        export::run(opts, db, &mut report).await.context("export")?;
    }
    if opts.runs(Part::Replay) || opts.runs(Part::Query) || opts.runs(Part::Mutation) || opts.runs(Part::Subscriptions)
    {
        // The read models must be built before the server answers queries;
        // replay builds them (and is measured when asked for).
        replay::run(opts, db, &mut report, opts.runs(Part::Replay)).await.context("replay")?;
    }
    if opts.runs(Part::Query) || opts.runs(Part::Mutation) || opts.runs(Part::Subscriptions) {
        let server = server::Server::start(opts, db).await.context("starting tandem serve")?;
        let result = async {
            if opts.runs(Part::Query) {
                api::dashboard(opts, db, &server, &mut report).await.context("query")?;
            }
            if opts.runs(Part::Mutation) {
                api::mutations(opts, db, &server, &mut report).await.context("mutation")?;
            }
            if opts.runs(Part::Subscriptions) {
                subs::run(opts, db, &server, &mut report).await.context("subscriptions")?;
            }
            anyhow::Ok(())
        }
        .await;
        server.stop().await?;
        result?;
    }
    if opts.runs(Part::Stall) {
        stall::run(opts, db, &mut report).await.context("stall")?;
    }
    if opts.runs(Part::Import) {
        import::run(opts, db, &mut report).await.context("import")?;
    }
    if opts.runs(Part::Webhooks) {
        webhooks::run(opts, db, &mut report).await.context("webhooks")?;
    }
    for line in report.goals() {
        println!("{line}");
    }
    Ok(report)
}

/// What the run ran on.
async fn environment(db: &BenchDb) -> anyhow::Result<Vec<(String, String)>> {
    let version: String = sqlx::query_scalar("SELECT version()").fetch_one(&db.pool).await?;
    let settings: Vec<(String, String)> = sqlx::query_as(
        "SELECT name, setting FROM pg_settings \
         WHERE name IN ('synchronous_commit', 'fsync', 'shared_buffers', 'max_connections', 'commit_delay') \
         ORDER BY name",
    )
    .fetch_all(&db.pool)
    .await?;
    let cpus = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| s.lines().next().map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_owned()))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or_else(|| "unknown".to_owned(), |kb| format!("{:.1} GiB", kb as f64 / 1024.0 / 1024.0));
    Ok(vec![
        ("cpu".into(), format!("{cpus} × {cpu_model}")),
        ("memory".into(), mem),
        ("postgresql".into(), version),
        ("postgresql settings".into(), settings.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")),
        ("build".into(), if cfg!(debug_assertions) { "debug".into() } else { "release".into() }),
    ])
}
