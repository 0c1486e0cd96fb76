//! The `export` figure: the whole history to Parquet with
//! `tandem export events` (the analysts' path: the gap-free read, decoding,
//! the analyst-safe payload, pseudonyms, typed columns, Snappy) against a
//! raw `COPY (SELECT …) TO STDOUT` of the same rows in the same order, and
//! the exporter's peak resident memory.
//!
//! The export runs as its own process (the `tandem` binary the suite runs
//! the server from), so its peak RSS (`VmHWM`, sampled from `/proc` while
//! it runs) is its own and not the bench's. The output is checked: the
//! Parquet footer must count every event of the log.

use std::time::Instant;

use anyhow::{Context as _, bail};
use futures::TryStreamExt as _;
use tokio::process::Command;

use crate::child::run_measured;
use crate::{Amount, BenchDb, BenchOptions, Figure, Goal, Report};

/// The columns the export reads, for the baseline.
const COPY_SQL: &str = "COPY (SELECT position, transaction_id, stream_id, stream_type, stream_version, event_id, \
     event_type, schema_version, data, metadata, recorded_at FROM events ORDER BY transaction_id, position) TO STDOUT";

/// Checks that a file is Parquet (the `PAR1` magic at both ends) and
/// returns its size. The rows are counted by the exporter's own report; the
/// export crate's tests read files back with a Parquet reader.
fn check_parquet(path: &std::path::Path) -> anyhow::Result<u64> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if bytes.len() < 12 || &bytes[..4] != b"PAR1" || &bytes[bytes.len() - 4..] != b"PAR1" {
        bail!("{} is not a Parquet file", path.display());
    }
    Ok(bytes.len() as u64)
}

/// Runs the `export` figure.
pub async fn run(opts: &BenchOptions, db: &BenchDb, report: &mut Report) -> anyhow::Result<()> {
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&db.pool).await?;
    let dir = std::env::temp_dir().join(format!("tandem-bench-export-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let out = dir.join("events.parquet");

    // Baseline first (it also warms the cache for the export).
    let pool = db.pool_of(1).await?;
    let mut conn = pool.acquire().await?;
    let started = Instant::now();
    let mut copied = 0u64;
    let mut rows = 0u64;
    {
        let mut stream = conn.copy_out_raw(COPY_SQL).await?;
        while let Some(chunk) = stream.try_next().await? {
            copied += chunk.len() as u64;
            rows += chunk.iter().filter(|b| **b == b'\n').count() as u64;
        }
    }
    let baseline = started.elapsed();
    drop(conn);
    pool.close().await;
    if i64::try_from(rows)? != total {
        bail!("COPY returned {rows} rows for {total} events");
    }

    let mut command = Command::new(&opts.server_exe);
    command
        .args(["export", "events", "--format", "parquet", "--quiet", "--out"])
        .arg(&out)
        .args(["--pseudonymize", "bench-salt-0123456789abcdef"])
        .env("DATABASE_URL", db.url())
        .env("RUST_LOG", "warn");
    let run = run_measured(command, "tandem export").await?;
    let (ours, peak, stderr) = (run.took, run.peak_rss, run.stderr);
    if !run.status.success() {
        bail!("tandem export failed: {stderr}");
    }
    let written: u64 = stderr
        .lines()
        .find_map(|l| l.split_once(" rows in ").and_then(|(n, _)| n.trim().parse().ok()))
        .with_context(|| format!("no row count in the export's report: {stderr}"))?;
    if i64::try_from(written)? != total {
        bail!("the export wrote {written} rows for {total} events");
    }
    let size = check_parquet(&out)?;
    std::fs::remove_dir_all(&dir)?;

    report.push(
        Figure::new("export", "events/s to Parquet, whole log", Amount::per_second(written, ours, "events/s"))
            .against(Amount::per_second(rows, baseline, "rows/s"))
            .goal(Goal::AtLeast(500_000.0))
            .note(format!(
                "{total} events, `tandem export events --format parquet --pseudonymize` ({} MiB file) vs COPY (SELECT …) TO STDOUT ({} MiB of text)",
                size / (1024 * 1024),
                copied / (1024 * 1024)
            )),
    );
    report.push(
        Figure::new("export", "exporter peak RSS (VmHWM)", Amount::mebibytes(peak))
            .goal(Goal::AtMost(256.0))
            .note("the export process's peak, sampled every 20 ms"),
    );
    Ok(())
}
