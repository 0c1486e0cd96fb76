//! Exactly-once application: runners racing for the same projections, a
//! leader killed mid-stream, a batch killed mid-transaction, and batches
//! racing on the checkpoint directly.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use sqlx::PgPool;
use tandem_commands::CommandService;
use tandem_domain::DomainEvent;
use tandem_domain::pair::PairEvent;
use tandem_projections::{BatchOutcome, Projection, Projections, Role, apply_batch, read_models};
use tandem_store::{Cursor, EventStore};
use uuid::Uuid;

use crate::support::audit::Audit;
use crate::support::history::{hold_session, pairs_world};
use crate::support::{all_events, another_pool, caught_up, eventually, fast, last_event};

const NAMES: [&str; 5] = ["people", "programs", "pairs", "participation", "audit"];

fn with_audit(audit: Arc<Audit>) -> Vec<Arc<dyn Projection>> {
    let mut all = read_models();
    all.push(audit);
    all
}

/// Every event is in the audit log exactly once, and the counting read
/// models agree with the log.
async fn assert_applied_once(pool: &PgPool) {
    let events = all_events(pool).await;
    let total = i64::try_from(events.len()).expect("count");
    let (rows, distinct): (i64, i64) = sqlx::query_as("SELECT count(*), count(DISTINCT position) FROM read.audit_log")
        .fetch_one(pool)
        .await
        .expect("audit");
    assert_eq!(distinct, total, "every event applied");
    assert_eq!(rows, total, "no event applied twice");
    let logged: Vec<(i64,)> = sqlx::query_as(
        "SELECT e.position FROM events e LEFT JOIN read.audit_log a ON a.position = e.position WHERE a.position IS NULL",
    )
    .fetch_all(pool)
    .await
    .expect("missing");
    assert!(logged.is_empty(), "events missing from the audit log: {logged:?}");

    // Session counts per pair, and per participant, against the log.
    let mut held: HashMap<Uuid, i32> = HashMap::new();
    for (_, e) in &events {
        if let DomainEvent::Pair(PairEvent::SessionHeld(s)) = e {
            *held.entry(s.pair_id.as_uuid()).or_default() += 1;
        }
    }
    let rows: Vec<(Uuid, i32, Vec<Uuid>)> = sqlx::query_as("SELECT pair_id, sessions_held, member_ids FROM read.pairs")
        .fetch_all(pool)
        .await
        .expect("pairs");
    let mut per_person: HashMap<Uuid, i32> = HashMap::new();
    for (pair, sessions, members) in &rows {
        assert_eq!(*sessions, held.get(pair).copied().unwrap_or(0), "sessions of pair {pair}");
        for m in members {
            *per_person.entry(*m).or_default() += held.get(pair).copied().unwrap_or(0);
        }
    }
    let facts: Vec<(Uuid, i32)> =
        sqlx::query_as("SELECT person_id, sessions FROM read.participation").fetch_all(pool).await.expect("facts");
    for (person, sessions) in facts {
        assert_eq!(sessions, per_person.get(&person).copied().unwrap_or(0), "sessions of participant {person}");
    }
    let sessions: i64 = sqlx::query_scalar("SELECT count(*) FROM read.sessions WHERE status = 'HELD'")
        .fetch_one(pool)
        .await
        .expect("sessions");
    assert_eq!(sessions, i64::from(held.values().sum::<i32>()));
}

#[sqlx::test(migrations = "../../migrations")]
async fn two_runners_race_and_every_event_applies_once(pool: PgPool) {
    let svc = CommandService::from_pool(pool.clone());
    let (_, pairs) = pairs_world(&svc, 4).await;

    // Two "processes": separate pools, separate runner sets, same database.
    let a = Projections::with_projections(another_pool(&pool).await, with_audit(Arc::new(Audit::new("a"))))
        .options(fast())
        .spawn()
        .expect("spawn a");
    assert!(a.wait_for_roles(Role::Leader, Duration::from_secs(10)).await, "a leads: {:?}", a.roles());
    let b = Projections::with_projections(another_pool(&pool).await, with_audit(Arc::new(Audit::new("b"))))
        .options(fast())
        .spawn()
        .expect("spawn b");
    assert!(b.wait_for_roles(Role::Standby, Duration::from_secs(10)).await, "b stands by: {:?}", b.roles());

    // A steady stream of writes; the leader dies in the middle of it.
    let done = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (svc, done) = (svc.clone(), Arc::clone(&done));
        tokio::spawn(async move {
            for n in 0..90_u64 {
                let (pair, x, y) = pairs[usize::try_from(n).expect("small") % pairs.len()];
                hold_session(&svc, pair, x, y, n).await;
                done.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    eventually(Duration::from_secs(30), "some writes", || async { (done.load(Ordering::SeqCst) >= 30).then_some(()) })
        .await;
    eventually(Duration::from_secs(30), "a to have applied a share", || async {
        let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM read.audit_log WHERE runner = 'a'")
            .fetch_one(&pool)
            .await
            .expect("count");
        (rows > 0).then_some(())
    })
    .await;
    drop(a); // the process dies: tasks aborted, connections closed, locks released
    writer.await.expect("writer");

    assert!(b.wait_for_roles(Role::Leader, Duration::from_secs(10)).await, "b took over: {:?}", b.roles());
    caught_up(&pool, &NAMES).await;
    assert_applied_once(&pool).await;
    let runners: Vec<(String,)> = sqlx::query_as("SELECT DISTINCT runner FROM read.audit_log ORDER BY 1")
        .fetch_all(&pool)
        .await
        .expect("runners");
    assert_eq!(runners, vec![("a".to_owned(),), ("b".to_owned(),)], "both runners applied a share");
    b.shutdown().await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn runner_killed_mid_batch_resumes_without_loss_or_double_application(pool: PgPool) {
    let svc = CommandService::from_pool(pool.clone());
    let (_, pairs) = pairs_world(&svc, 2).await;

    // A's audit batch writes its rows, then hangs inside the transaction.
    let first = Arc::new(Audit::new("a"));
    first.gate.hang.store(true, Ordering::SeqCst);
    let a = Projections::with_projections(another_pool(&pool).await, with_audit(Arc::clone(&first)))
        .options(fast())
        .spawn()
        .expect("spawn a");
    tokio::time::timeout(Duration::from_secs(10), first.gate.hanging.notified()).await.expect("a batch hangs");
    let committed: i64 =
        sqlx::query_scalar("SELECT count(*) FROM read.audit_log").fetch_one(&pool).await.expect("count");
    assert_eq!(committed, 0, "uncommitted writes are invisible");
    drop(a); // killed while applying: the transaction rolls back with the connection

    // B's first audit batch fails after writing (rolled back), then it retries.
    let second = Arc::new(Audit::new("b"));
    second.gate.fail_next.store(true, Ordering::SeqCst);
    let b = Projections::with_projections(another_pool(&pool).await, with_audit(Arc::clone(&second)))
        .options(fast())
        .spawn()
        .expect("spawn b");
    for n in 0..30_u64 {
        let (pair, x, y) = pairs[usize::try_from(n).expect("small") % pairs.len()];
        hold_session(&svc, pair, x, y, n).await;
    }
    caught_up(&pool, &NAMES).await;
    assert!(second.gate.batches.load(Ordering::SeqCst) >= 2, "the failed batch was retried");
    assert_applied_once(&pool).await;
    let runners: Vec<(String,)> =
        sqlx::query_as("SELECT DISTINCT runner FROM read.audit_log").fetch_all(&pool).await.expect("runners");
    assert_eq!(runners, vec![("b".to_owned(),)], "nothing of the killed batch survived");
    b.shutdown().await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn batches_racing_on_the_checkpoint_apply_once(pool: PgPool) {
    let svc = CommandService::from_pool(pool.clone());
    let (_, pairs) = pairs_world(&svc, 1).await;
    let audit = Arc::new(Audit::new("x"));
    // Create the tables and checkpoint, then stop the runner.
    let runner = Projections::with_projections(pool.clone(), vec![audit.clone() as Arc<dyn Projection>])
        .options(fast())
        .spawn()
        .expect("spawn");
    caught_up(&pool, &["audit"]).await;
    runner.shutdown().await;

    let (p1, p2) = (another_pool(&pool).await, another_pool(&pool).await);
    let store = EventStore::new(pool.clone());
    let (pair, x, y) = pairs[0];
    for round in 0..10_u64 {
        hold_session(&svc, pair, x, y, round).await;
        let at: Cursor = tandem_projections::checkpoints(&pool).await.expect("checkpoints")[0].cursor;
        // Readable once the transaction horizon (cluster-wide) has passed
        // them; wait for all of this round's events.
        let last = last_event(&pool).await;
        let recorded = eventually(Duration::from_secs(20), "the new events to be readable", || async {
            Some(store.read_all(at, 100).await.expect("read")).filter(|e| e.last().is_some_and(|e| e.cursor() == last))
        })
        .await;
        let events: Vec<_> = recorded
            .into_iter()
            .map(|e| {
                let d = DomainEvent::decode(&e.event_type, e.schema_version, e.data.clone()).expect("decode");
                (e, d)
            })
            .collect();
        let (r1, r2) =
            tokio::join!(apply_batch(&p1, audit.as_ref(), at, &events), apply_batch(&p2, audit.as_ref(), at, &events));
        let outcomes = [r1.expect("first"), r2.expect("second")];
        let applied = outcomes.iter().filter(|o| matches!(o, BatchOutcome::Applied(_))).count();
        let stale = outcomes.iter().filter(|o| matches!(o, BatchOutcome::Stale { .. })).count();
        assert_eq!((applied, stale), (1, 1), "round {round}: {outcomes:?}");
    }
    let (rows, distinct): (i64, i64) = sqlx::query_as("SELECT count(*), count(DISTINCT position) FROM read.audit_log")
        .fetch_one(&pool)
        .await
        .expect("audit");
    assert_eq!(rows, distinct);
    assert_eq!(usize::try_from(rows).expect("count"), all_events(&pool).await.len());
}
