//! The `import` figure: a generated people file of N rows (100,000 at full
//! size) through `tandem import people` (parsing, checks, the comparison
//! with the read model, managers in dependency order, one registration
//! command per row through the command path with its idempotency key, and
//! the read models caught up at the end), against `COPY … FROM STDIN` of the
//! same file into a plain table with the same columns; then the same file
//! again, which must append nothing; and the importer's peak resident
//! memory.
//!
//! The import runs as its own process (the `tandem` binary of the suite),
//! so its peak RSS (`VmHWM`, sampled from `/proc` while it runs) is its own.
//! The result is checked: every row's external id is registered once, and
//! the second run appends no event.

use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::bail;
use tokio::process::Command;

use crate::child::run_measured;
use crate::{Amount, BenchDb, BenchOptions, Figure, Goal, Report, Size};

const HEADER: &str = "external_id,name,email,title,department,level,manager_external_id,location,hired_on\n";

/// Writes `rows` people in a ten-wide management tree, each report before
/// its manager (the importer orders them).
fn generate(path: &Path, rows: usize) -> anyhow::Result<u64> {
    let mut w = std::io::BufWriter::new(std::fs::File::create(path)?);
    w.write_all(HEADER.as_bytes())?;
    for i in (0..rows).rev() {
        let manager = if i == 0 { String::new() } else { format!("bench-{}", (i - 1) / 10) };
        let level = 30 - i.max(1).ilog10().min(5) * 5;
        writeln!(
            w,
            "bench-{i},Person {i},person{i}@example.com,Engineer,Department {},{level},{manager},Site {},2020-01-01",
            i % 50,
            i % 7
        )?;
    }
    w.flush()?;
    Ok(std::fs::metadata(path)?.len())
}

/// Runs `tandem import people` on `file`; returns the time it took and its
/// peak RSS.
async fn import(opts: &BenchOptions, db: &BenchDb, file: &Path) -> anyhow::Result<(Duration, u64, String)> {
    let mut command = Command::new(&opts.server_exe);
    command
        .args(["import", "people", "--quiet", "--effective", "2026-01-01", "--file"])
        .arg(file)
        .env("DATABASE_URL", db.url())
        .env("TANDEM_SERVER_SECRET", "bench server secret, thirty-two bytes or more")
        .env("TANDEM_MASTER_KEY", tandem_store::Vault::installed().master().to_base64())
        .env("RUST_LOG", "warn");
    let run = run_measured(command, "tandem import").await?;
    let (took, peak, out) = (run.took, run.peak_rss, run.stdout);
    if !run.status.success() {
        bail!("tandem import failed: {out}\n{}", run.stderr);
    }
    Ok((took, peak, out.lines().last().unwrap_or_default().to_owned()))
}

/// Runs the `import` figure.
pub async fn run(opts: &BenchOptions, db: &BenchDb, report: &mut Report) -> anyhow::Result<()> {
    let rows = match opts.size {
        Size::Smoke => 2_000,
        Size::Full => 100_000,
    };
    let dir = std::env::temp_dir().join(format!("tandem-bench-import-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("people.csv");
    let bytes = generate(&file, rows)?;

    // Baseline: the same file into a plain table.
    sqlx::query(
        "CREATE TABLE bench_import_copy (external_id text, name text, email text, title text, department text,
            level int, manager_external_id text, location text, hired_on date)",
    )
    .execute(&db.pool)
    .await?;
    let content = std::fs::read(&file)?;
    let mut conn = db.pool.acquire().await?;
    let started = Instant::now();
    let mut copy = conn.copy_in_raw("COPY bench_import_copy FROM STDIN WITH (FORMAT csv, HEADER true)").await?;
    copy.send(content.as_slice()).await?;
    let copied = copy.finish().await?;
    let baseline = started.elapsed();
    drop(conn);
    drop(content);
    if copied != rows as u64 {
        bail!("COPY loaded {copied} rows of {rows}");
    }

    let events_before: i64 = sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&db.pool).await?;
    let (first, peak_first, summary) = import(opts, db, &file).await?;
    let registered: i64 =
        sqlx::query_scalar("SELECT count(*) FROM person_external_ids WHERE external_id LIKE 'bench-%'")
            .fetch_one(&db.pool)
            .await?;
    if registered != rows as i64 {
        bail!("the import registered {registered} of {rows} rows: {summary}");
    }
    let events_mid: i64 = sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&db.pool).await?;
    let (second, peak_second, again) = import(opts, db, &file).await?;
    let events_after: i64 = sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&db.pool).await?;
    if events_after != events_mid {
        bail!("the same file again appended {} events: {again}", events_after - events_mid);
    }
    std::fs::remove_dir_all(&dir)?;

    let n = rows as u64;
    report.push(
        Figure::new("import", format!("rows/s, {rows} new people from CSV"), Amount::per_second(n, first, "rows/s"))
            .against(Amount::per_second(copied, baseline, "rows/s"))
            .note(format!(
                "`tandem import people` ({} events, read models caught up) vs COPY … FROM STDIN (FORMAT csv) of the same {} KiB file into a plain table",
                events_mid - events_before,
                bytes / 1024
            )),
    );
    report.push(
        Figure::new("import", format!("rows/s, the same {rows} rows again"), Amount::per_second(n, second, "rows/s"))
            .against(Amount::per_second(copied, baseline, "rows/s"))
            .note("every row compared with the read model; 0 events appended (checked)"),
    );
    report.push(
        Figure::new("import", "importer peak RSS (VmHWM)", Amount::mebibytes(peak_first.max(peak_second)))
            .goal(Goal::AtMost(256.0))
            .note(format!("the import process's peak over both runs, sampled every 20 ms ({rows} rows)")),
    );
    Ok(())
}
