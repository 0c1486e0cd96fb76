//! Rebuilds: from zero they reproduce exactly what the live runner built;
//! swapped in while a runner is live and writes go on, nothing is lost or
//! doubled; and a version change rebuilds by itself at start-up.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use sqlx::{PgConnection, PgPool};
use tandem_commands::CommandService;
use tandem_projections::{
    Envelope, Phase, Projection, Projections, Role, checkpoints, read_models, rebuild, rebuild_projections,
};

use crate::support::history::{Scale, generate, hold_session, pairs_world};
use crate::support::{assert_same_tables, caught_up, eventually, fast, snapshot};

fn names() -> Vec<&'static str> {
    vec!["people", "programs", "pairs", "participation"]
}

async fn scratch_schemas(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'rebuild\\_%'")
        .fetch_one(pool)
        .await
        .expect("schemas")
}

#[sqlx::test(migrations = "../../migrations")]
async fn rebuild_reproduces_the_live_tables_row_for_row(pool: PgPool) {
    let svc = CommandService::from_pool(pool.clone());
    let started = Instant::now();
    let history =
        generate(&svc, 42, Scale { people: 140, programs: 5, enrol: 0.35, max_sessions: 12, concurrency: 6 }).await;
    eprintln!(
        "generated {} events ({} people, {} pairs) through the command service in {:.1?}",
        history.events,
        history.people.len(),
        history.pairs.len(),
        started.elapsed()
    );
    assert!(history.events >= 2000, "a realistic history: {} events", history.events);

    let models = read_models();
    let runner = Projections::new(pool.clone()).options(fast()).spawn().expect("spawn");
    caught_up(&pool, &names()).await;
    let live = snapshot(&pool, "read", &models).await;
    for table in [
        "people",
        "person_org_history",
        "enrolments",
        "pairs",
        "sessions",
        "session_coaching",
        "feedback",
        "goals",
        "goal_progress",
        "participation",
    ] {
        assert!(!live[table].is_empty(), "{table} has rows");
    }
    runner.shutdown().await;

    // Projections rebuild side by side: each one's progress only grows.
    let mut phases = Vec::new();
    let mut last_done = std::collections::HashMap::new();
    let reports = rebuild(&pool, None, |p| {
        let last = last_done.entry(p.projection.clone()).or_insert(0);
        assert!(p.events_done >= *last || p.phase == Phase::Started, "progress only grows");
        *last = if p.phase == Phase::Started { 0 } else { p.events_done };
        phases.push((p.projection.clone(), p.phase));
    })
    .await
    .expect("rebuild");
    for r in &reports {
        eprintln!(
            "rebuilt {:<13} {:>6} events in {:>8.1?} = {:>8.0} events/s",
            r.projection, r.events, r.elapsed, r.events_per_second
        );
        assert_eq!(r.events as usize, history.events);
    }
    let secs: f64 = reports.iter().map(|r| r.elapsed.as_secs_f64()).fold(0.0, f64::max);
    eprintln!("rebuild rate of all read models together: {:.0} events/s", history.events as f64 / secs);
    for name in names() {
        assert!(phases.contains(&(name.to_owned(), Phase::Swapped)), "{name} swapped");
    }

    let rebuilt = snapshot(&pool, "read", &models).await;
    assert_same_tables(&live, &rebuilt);
    assert_eq!(scratch_schemas(&pool).await, 0, "scratch schemas are dropped");
    for c in checkpoints(&pool).await.expect("checkpoints") {
        assert!(c.rebuilt_at.is_some(), "{} rebuilt", c.name);
        assert_eq!(c.events_applied as usize, history.events);
    }
}

#[sqlx::test(migrations = "../../migrations")]
async fn rebuild_swaps_in_while_the_runner_is_live(pool: PgPool) {
    let svc = CommandService::from_pool(pool.clone());
    let (_, pairs) = pairs_world(&svc, 3).await;
    for n in 0..30_u64 {
        let (pair, a, b) = pairs[usize::try_from(n).expect("small") % pairs.len()];
        hold_session(&svc, pair, a, b, n).await;
    }
    let models = read_models();
    let runner = Projections::new(pool.clone()).options(fast()).spawn().expect("spawn");
    caught_up(&pool, &names()).await;

    // Writes go on while every projection is rebuilt and swapped.
    let writer = {
        let svc = svc.clone();
        let pairs = pairs.clone();
        tokio::spawn(async move {
            for n in 30..70_u64 {
                let (pair, a, b) = pairs[usize::try_from(n).expect("small") % pairs.len()];
                hold_session(&svc, pair, a, b, n).await;
            }
        })
    };
    let mut swapped = 0;
    rebuild_projections(&pool, &models, |p| swapped += usize::from(p.phase == Phase::Swapped)).await.expect("rebuild");
    assert_eq!(swapped, models.len());
    writer.await.expect("writer");
    assert!(runner.wait_for_roles(Role::Leader, Duration::from_secs(5)).await);
    caught_up(&pool, &names()).await;
    let after_swap = snapshot(&pool, "read", &models).await;
    runner.shutdown().await;

    // The reference: everything rebuilt once more, with nothing running.
    rebuild(&pool, None, |_| {}).await.expect("rebuild again");
    let reference = snapshot(&pool, "read", &models).await;
    assert_same_tables(&reference, &after_swap);
    let held: i64 =
        sqlx::query_scalar("SELECT sum(sessions_held) FROM read.pairs").fetch_one(&pool).await.expect("sum");
    assert_eq!(held, 70);
}

/// A projection under another version number.
#[derive(Debug)]
struct Bumped(Arc<dyn Projection>, i32);

impl Projection for Bumped {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn version(&self) -> i32 {
        self.1
    }
    fn tables(&self) -> &'static [&'static str] {
        self.0.tables()
    }
    fn create_sql(&self) -> &'static str {
        self.0.create_sql()
    }
    fn apply<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        events: &'a [Envelope],
    ) -> BoxFuture<'a, tandem_projections::Result<()>> {
        self.0.apply(conn, events)
    }
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_new_version_rebuilds_at_start(pool: PgPool) {
    let svc = CommandService::from_pool(pool.clone());
    generate(&svc, 9, Scale { people: 20, programs: 3, enrol: 0.8, max_sessions: 2, concurrency: 2 }).await;
    let people = tandem_projections::find("people").expect("people");
    let v1 =
        Projections::with_projections(pool.clone(), vec![Arc::clone(&people)]).options(fast()).spawn().expect("spawn");
    caught_up(&pool, &["people"]).await;
    let before = snapshot(&pool, "read", std::slice::from_ref(&people)).await;
    v1.shutdown().await;

    let next = people.version() + 1;
    let bumped: Arc<dyn Projection> = Arc::new(Bumped(Arc::clone(&people), next));
    let v2 = Projections::with_projections(pool.clone(), vec![bumped]).options(fast()).spawn().expect("spawn");
    let checkpoint = eventually(Duration::from_secs(20), "the rebuild to the next version", || async {
        checkpoints(&pool).await.expect("checkpoints").into_iter().find(|c| c.name == "people" && c.version == next)
    })
    .await;
    assert!(checkpoint.rebuilt_at.is_some(), "rebuilt, not just relabelled");
    assert_same_tables(&before, &snapshot(&pool, "read", &[people]).await);
    v2.shutdown().await;
}

/// Tables of `schema` whose storage is not permanent (`relpersistence`
/// other than 'p'), e.g. unlogged ones.
async fn non_permanent_tables(pool: &PgPool, schema: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = $1 AND c.relkind IN ('r', 'i') AND c.relpersistence <> 'p' ORDER BY 1",
    )
    .bind(schema)
    .fetch_all(pool)
    .await
    .expect("persistence")
}

#[sqlx::test(migrations = "../../migrations")]
async fn rebuilt_tables_are_logged_when_they_serve(pool: PgPool) {
    let svc = CommandService::from_pool(pool.clone());
    generate(&svc, 5, Scale { people: 20, programs: 2, enrol: 0.8, max_sessions: 3, concurrency: 2 }).await;
    rebuild(&pool, None, |_| {}).await.expect("rebuild");
    let tables: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_tables WHERE schemaname = 'read'")
        .fetch_one(&pool)
        .await
        .expect("tables");
    let expected: usize = read_models().iter().map(|m| m.tables().len()).sum();
    assert_eq!(tables as usize, expected, "every table swapped in");
    // Built unlogged for speed, but never serving unlogged: a crash after
    // the swap must not truncate the read models.
    assert_eq!(non_permanent_tables(&pool, "read").await, Vec::<String>::new());
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_second_rebuild_of_a_projection_is_refused(pool: PgPool) {
    let svc = CommandService::from_pool(pool.clone());
    generate(&svc, 6, Scale { people: 10, programs: 1, enrol: 0.8, max_sessions: 2, concurrency: 2 }).await;
    // Hold the rebuild lock of `pairs` as a concurrent rebuild would.
    let mut holder = pool.acquire().await.expect("conn");
    let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, hashtext('pairs'))")
        .bind(tandem_projections::REBUILD_LOCK_CLASS)
        .fetch_one(&mut *holder)
        .await
        .expect("lock");
    assert!(got);
    let error = rebuild(&pool, None, |_| {}).await.expect_err("refused");
    assert!(
        matches!(error, tandem_projections::ProjectionError::RebuildInProgress(ref n) if n == "pairs"),
        "{error:?}"
    );
    // Refused before anything was built or swapped.
    assert_eq!(scratch_schemas(&pool).await, 0);
    assert!(checkpoints(&pool).await.expect("checkpoints").is_empty(), "nothing swapped in");
    sqlx::query("SELECT pg_advisory_unlock_all()").execute(&mut *holder).await.expect("unlock");
    drop(holder);
    rebuild(&pool, None, |_| {}).await.expect("free again");
}

#[sqlx::test(migrations = "../../migrations")]
async fn one_failing_projection_stops_the_set_and_leaves_the_old_tables(pool: PgPool) {
    use std::sync::atomic::Ordering;

    use crate::support::audit::Audit;

    let svc = CommandService::from_pool(pool.clone());
    generate(&svc, 8, Scale { people: 20, programs: 2, enrol: 0.8, max_sessions: 3, concurrency: 2 }).await;
    let people = tandem_projections::find("people").expect("people");
    rebuild_projections(&pool, std::slice::from_ref(&people), |_| {}).await.expect("first build");
    let before = snapshot(&pool, "read", std::slice::from_ref(&people)).await;
    let before_checkpoint = checkpoints(&pool).await.expect("checkpoints");

    let audit = Arc::new(Audit::new("rebuild"));
    audit.gate.fail_next.store(true, Ordering::SeqCst);
    let set: Vec<Arc<dyn Projection>> = vec![Arc::clone(&people), audit];
    rebuild_projections(&pool, &set, |_| {}).await.expect_err("the audit projection fails");

    assert_eq!(scratch_schemas(&pool).await, 0, "scratch schemas are dropped");
    assert_same_tables(&before, &snapshot(&pool, "read", std::slice::from_ref(&people)).await);
    assert_eq!(checkpoints(&pool).await.expect("checkpoints"), before_checkpoint, "no checkpoint moved");
}
