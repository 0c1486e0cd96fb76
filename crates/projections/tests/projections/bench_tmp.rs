//! TEMPORARY one-off measurement; not part of the suite.
use crate::support::history::{Scale, generate};
use sqlx::PgPool;
use std::time::Instant;
use tandem_commands::CommandService;
use tandem_projections::rebuild;

#[sqlx::test(migrations = "../../migrations")]
#[ignore = "one-off measurement"]
async fn bench_rebuild_rate(pool: PgPool) {
    let svc = CommandService::from_pool(pool.clone());
    let h = generate(&svc, 42, Scale { people: 140, programs: 5, enrol: 0.35, max_sessions: 12, concurrency: 6 }).await;
    // Copies with every UUID's version nibble changed (-7xxx -> -8xxx …): distinct streams, same shapes.
    for v in ["8", "9", "a", "b", "c", "d", "e", "f"] {
        let sql = format!(
            "INSERT INTO events (stream_id, stream_type, stream_version, event_id, event_type, schema_version, data, metadata)
             SELECT replace(stream_id::text, '-7', '-{v}')::uuid, stream_type, stream_version,
                    replace(event_id::text, '-7', '-{v}')::uuid, event_type, schema_version,
                    replace(data::text, '-7', '-{v}')::jsonb, metadata
               FROM events WHERE event_id::text LIKE '%-7%' ORDER BY position"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&pool).await.expect("copy");
    }
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&pool).await.expect("count");
    eprintln!("log: {n} events ({} generated)", h.events);
    let t = Instant::now();
    let reports = rebuild(&pool, None, |_| {}).await.expect("rebuild");
    for r in &reports {
        eprintln!(
            "rebuilt {:<13} {:>6} events in {:>8.1?} = {:>8.0} events/s",
            r.projection, r.events, r.elapsed, r.events_per_second
        );
    }
    eprintln!("all: {:.0} events/s (events x projections / s)", (n as f64 * 4.0) / t.elapsed().as_secs_f64());
}
