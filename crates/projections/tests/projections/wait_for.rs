//! Read-your-writes: waiting for a commit position.

use std::time::{Duration, Instant};

use chrono::Utc;
use sqlx::PgPool;
use tandem_commands::{Command, CommandService};
use tandem_domain::PersonId;
use tandem_domain::person::{PersonCommand, RegisterPerson};
use tandem_projections::{ProjectionError, Projections, Waiter, queries};
use tandem_store::Cursor;

use crate::support::{another_pool, caught_up, day, email, exec, ext, fast, level, st};

async fn register(svc: &CommandService, n: u32) -> (PersonId, Cursor) {
    let id = PersonId::new();
    let cmd = Command::Person(PersonCommand::Register(RegisterPerson {
        person_id: id,
        external_id: ext(&format!("W-{n}")),
        name: st(&format!("Waiter {n}")),
        email: email(&format!("w{n}@example.com")),
        department: st("Sales"),
        title: st("Rep"),
        level: level(3),
        manager: None,
        location: None,
        hired_on: day(2021, 1, 1),
    }));
    let committed = exec(svc, cmd).await.expect("register");
    (id, committed.position)
}

#[sqlx::test(migrations = "../../migrations")]
async fn wait_for_returns_once_the_runners_applied_the_position(pool: PgPool) {
    let svc = CommandService::from_pool(pool.clone());
    register(&svc, 0).await;
    let runner = Projections::new(pool.clone()).options(fast()).spawn().expect("spawn");
    caught_up(&pool, &[]).await;
    let today = Utc::now().date_naive();

    // In-process: the runners publish to the handle's waiter.
    for n in 1..=5 {
        let (id, position) = register(&svc, n).await;
        let started = Instant::now();
        runner.wait_for(position, Duration::from_secs(5)).await.expect("caught up in time");
        eprintln!("read-your-writes wait (in process): {:?}", started.elapsed());
        let person = queries::person(&pool, id, today).await.expect("query");
        assert!(person.is_some(), "the write is visible once wait_for returns");
    }

    // Another process (its own pool, no runners): notifications and polling.
    let remote = Waiter::for_read_models(another_pool(&pool).await);
    let (id, position) = register(&svc, 9).await;
    let started = Instant::now();
    remote.wait_for(position, Duration::from_secs(5)).await.expect("caught up in time");
    eprintln!("read-your-writes wait (other process): {:?}", started.elapsed());
    assert!(queries::person(&pool, id, today).await.expect("query").is_some());
    assert!(remote.positions().values().all(|c| *c >= position));

    // Nothing committed: nothing to wait for.
    remote.wait_for(Cursor::START, Duration::from_millis(1)).await.expect("immediate");
    runner.shutdown().await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn wait_for_times_out_with_a_typed_error_when_no_runner_runs(pool: PgPool) {
    let svc = CommandService::from_pool(pool.clone());
    let (_, position) = register(&svc, 1).await;
    let waiter = Waiter::for_read_models(pool.clone());
    let started = Instant::now();
    let error = waiter.wait_for(position, Duration::from_millis(300)).await.expect_err("nobody applies it");
    let waited = started.elapsed();
    match error {
        ProjectionError::Timeout { position: p, behind, .. } => {
            assert_eq!(p, position);
            assert_eq!(behind, vec!["people", "programs", "pairs", "participation", "webhooks"]);
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(waited >= Duration::from_millis(300) && waited < Duration::from_secs(3), "bounded: {waited:?}");

    // Once a runner applies it, the same wait succeeds.
    let runner = Projections::new(pool.clone()).options(fast()).spawn().expect("spawn");
    waiter.wait_for(position, Duration::from_secs(10)).await.expect("applied");
    runner.shutdown().await;
}
