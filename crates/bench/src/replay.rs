//! Figure 4: a full rebuild of every projection (`tandem replay`) from the
//! generated history, in events per second of history, against a raw
//! sequential read of the same events table (every column decoded, one
//! streaming `SELECT … ORDER BY position`).

use std::time::Instant;

use crate::read_all::{RAW_COLUMNS, RawRow};
use crate::{Amount, BenchDb, BenchOptions, Figure, Goal, Report};
use futures::TryStreamExt as _;

/// Rebuilds every read model; with `measure`, reports figure 4.
pub async fn run(_opts: &BenchOptions, db: &BenchDb, report: &mut Report, measure: bool) -> anyhow::Result<()> {
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&db.pool).await?;
    let mut last_print = Instant::now();
    let started = Instant::now();
    let reports = tandem_projections::rebuild(&db.pool, None, |p| {
        if last_print.elapsed().as_secs() >= 5 {
            last_print = Instant::now();
            eprintln!(
                "bench: replay: {} {}/{} events ({:.0}/s)",
                p.projection, p.events_done, p.events_total, p.events_per_second
            );
        }
    })
    .await?;
    let ours = started.elapsed();
    if !measure {
        return Ok(());
    }
    let started = Instant::now();
    let sql = format!("SELECT {RAW_COLUMNS} FROM events ORDER BY position");
    let mut rows = sqlx::query_as::<_, RawRow>(sqlx::AssertSqlSafe(sql)).fetch(&db.pool);
    let mut raw = 0u64;
    while rows.try_next().await?.is_some() {
        raw += 1;
    }
    drop(rows);
    let baseline = started.elapsed();
    let per_projection =
        reports.iter().map(|r| format!("{} {:.0}/s", r.projection, r.events_per_second)).collect::<Vec<_>>().join(", ");
    report.push(
        Figure::new(
            "replay",
            format!("events/s, all {} projections rebuilt", reports.len()),
            Amount::per_second(u64::try_from(total)?, ours, "events/s"),
        )
        .against(Amount::per_second(raw, baseline, "rows/s"))
        .goal(Goal::RatioAtLeast(0.5))
        .note(format!("{total} events in {:.1} s; {per_projection}", ours.as_secs_f64())),
    );
    Ok(())
}
