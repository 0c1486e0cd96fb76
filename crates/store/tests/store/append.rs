//! Appending: optimistic concurrency, races, atomicity, validation.

use std::collections::HashSet;
use std::sync::Arc;

use sqlx::{Connection, PgPool};
use tandem_store::{AppendOutcome, EventStore, ExpectedVersion, NewEvent, StoreError, append_in_tx};
use tokio::sync::Barrier;
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::common::{connect, events, metadata};

fn ids(events: &[NewEvent]) -> Vec<Uuid> {
    events.iter().map(|e| e.event_id).collect()
}

#[sqlx::test(migrations = "../../migrations")]
async fn expected_version_semantics(pool: PgPool) {
    let store = EventStore::new(pool);
    let stream = Uuid::now_v7();
    let append = |expected, count| {
        let store = store.clone();
        async move { store.append(stream, "thing", expected, &events(count), &metadata()).await }
    };

    // Exact(n) on a missing stream is a conflict that reports "no stream".
    match append(ExpectedVersion::Exact(3), 1).await {
        Err(StoreError::Conflict { actual: None, expected, stream_id }) => {
            assert_eq!(expected, ExpectedVersion::Exact(3));
            assert_eq!(stream_id, stream);
        }
        other => panic!("expected a conflict, got {other:?}"),
    }

    let first = append(ExpectedVersion::NoStream, 2).await.expect("new stream");
    assert_eq!(first.next_expected_version, 2);
    assert_eq!(first.events.iter().map(|e| e.stream_version).collect::<Vec<_>>(), [1, 2]);
    assert!(matches!(append(ExpectedVersion::NoStream, 1).await, Err(StoreError::Conflict { actual: Some(2), .. })));
    assert!(matches!(append(ExpectedVersion::Exact(1), 1).await, Err(StoreError::Conflict { actual: Some(2), .. })));
    assert!(matches!(append(ExpectedVersion::Exact(0), 1).await, Err(StoreError::Conflict { actual: Some(2), .. })));

    let second = append(ExpectedVersion::Exact(2), 3).await.expect("exact");
    assert_eq!(second.next_expected_version, 5);
    let third = append(ExpectedVersion::Any, 1).await.expect("any");
    assert_eq!(third.next_expected_version, 6);

    // Conflicts stored nothing.
    let stored = store.read_stream(stream).await.expect("read");
    assert_eq!(stored.iter().map(|e| e.stream_version).collect::<Vec<_>>(), [1, 2, 3, 4, 5, 6]);
    assert_eq!(store.stream_version(stream).await.expect("version"), Some(6));
    assert_eq!(store.stream_version(Uuid::now_v7()).await.expect("version"), None);
    let tail = store.read_stream_from(stream, 4).await.expect("read from");
    assert_eq!(tail.iter().map(|e| e.stream_version).collect::<Vec<_>>(), [5, 6]);
    // Any on a new stream starts it at version 1.
    let fresh = store
        .append(Uuid::now_v7(), "thing", ExpectedVersion::Any, &events(1), &metadata())
        .await
        .expect("any on a new stream");
    assert_eq!(fresh.next_expected_version, 1);
}

#[sqlx::test(migrations = "../../migrations")]
async fn outcome_describes_what_was_stored(pool: PgPool) {
    let store = EventStore::new(pool);
    let stream = Uuid::now_v7();
    let batch = events(3);
    let outcome = store.append(stream, "thing", ExpectedVersion::NoStream, &batch, &metadata()).await.expect("append");
    assert_eq!(outcome.stream_id, stream);
    assert_eq!(outcome.events.iter().map(|e| e.event_id).collect::<Vec<_>>(), ids(&batch));
    // Positions follow versions within an append, so the global order
    // shows a stream's events in version order.
    let positions: Vec<i64> = outcome.events.iter().map(|e| e.position).collect();
    assert!(positions.windows(2).all(|p| p[0] < p[1]), "{positions:?}");
    assert_eq!(outcome.first_position, positions[0]);
    assert_eq!(outcome.last_position, positions[2]);
    assert!(outcome.events.iter().all(|e| e.transaction_id == outcome.transaction_id));
    assert_eq!(outcome.commit_cursor(), outcome.events[2].cursor());
    assert_eq!(store.read_stream(stream).await.expect("read"), outcome.events);
}

/// One side of a race: begin, wait for the other side, append, end.
async fn race(
    conn: &mut sqlx::PgConnection,
    barrier: &Barrier,
    stream: Uuid,
    expected: ExpectedVersion,
    batch: &[NewEvent],
) -> Result<AppendOutcome, StoreError> {
    let mut tx = conn.begin().await.expect("begin");
    barrier.wait().await;
    let result = append_in_tx(&mut tx, stream, "race", expected, batch, &metadata()).await;
    match result {
        Ok(outcome) => {
            tx.commit().await.expect("commit");
            Ok(outcome)
        }
        Err(error) => {
            tx.rollback().await.expect("rollback");
            Err(error)
        }
    }
}

/// Two writers, same stream, same expected version, truly at once: exactly
/// one wins, the loser gets a conflict and none of its events are stored.
#[sqlx::test(migrations = "../../migrations")]
async fn racing_appends_with_the_same_expected_version_have_one_winner(pool: PgPool) {
    const ROUNDS: usize = 100;
    let store = EventStore::new(pool.clone());
    let mut conns = [connect(&pool).await, connect(&pool).await];
    let stream = Uuid::now_v7();
    let mut version = 0;
    for round in 0..ROUNDS {
        let barrier = Barrier::new(2);
        let batches = [events(2), events(2)];
        let expected = if version == 0 { ExpectedVersion::NoStream } else { ExpectedVersion::Exact(version) };
        let [c0, c1] = &mut conns;
        let (r0, r1) = tokio::join!(
            race(c0, &barrier, stream, expected, &batches[0]),
            race(c1, &barrier, stream, expected, &batches[1]),
        );
        let (winner, loser): (AppendOutcome, StoreError) = match (r0, r1) {
            (Ok(w), Err(l)) | (Err(l), Ok(w)) => (w, l),
            (r0, r1) => panic!("round {round}: expected one winner, got {r0:?} and {r1:?}"),
        };
        match loser {
            StoreError::Conflict { stream_id, expected: e, actual } => {
                assert_eq!(stream_id, stream);
                assert_eq!(e, expected);
                assert!(actual.is_some_and(|a| a > version), "{actual:?}");
            }
            other => panic!("round {round}: loser got {other:?}"),
        }
        assert_eq!(winner.next_expected_version, version + 2);
        let winner_ids: Vec<Uuid> = winner.events.iter().map(|e| e.event_id).collect();
        let stored = store.read_stream_from(stream, version).await.expect("read");
        assert_eq!(
            stored.iter().map(|e| e.event_id).collect::<Vec<_>>(),
            winner_ids,
            "round {round}: exactly the winner's events"
        );
        version = winner.next_expected_version;
    }
    let all = store.read_stream(stream).await.expect("read");
    assert_eq!(all.len(), ROUNDS * 2);
}

/// `Any` never fails because of a racing writer: concurrent appends all
/// land, at distinct consecutive versions.
#[sqlx::test(migrations = "../../migrations")]
async fn racing_any_appends_all_land(pool: PgPool) {
    const WRITERS: usize = 8;
    const APPENDS: usize = 25;
    let store = EventStore::new(pool.clone());
    let stream = Uuid::now_v7();
    let barrier = Arc::new(Barrier::new(WRITERS));
    let mut tasks = JoinSet::new();
    for _ in 0..WRITERS {
        let pool = pool.clone();
        let barrier = Arc::clone(&barrier);
        tasks.spawn(async move {
            let mut conn = connect(&pool).await;
            barrier.wait().await;
            let mut written = Vec::new();
            for _ in 0..APPENDS {
                let batch = events(2);
                let mut tx = conn.begin().await.expect("begin");
                append_in_tx(&mut tx, stream, "any", ExpectedVersion::Any, &batch, &metadata())
                    .await
                    .expect("any append never conflicts");
                tx.commit().await.expect("commit");
                written.extend(ids(&batch));
            }
            written
        });
    }
    let mut written = HashSet::new();
    while let Some(ids) = tasks.join_next().await {
        written.extend(ids.expect("writer"));
    }
    let stored = store.read_stream(stream).await.expect("read");
    assert_eq!(stored.len(), WRITERS * APPENDS * 2);
    assert!(stored.iter().enumerate().all(|(i, e)| e.stream_version == i as i32 + 1));
    assert_eq!(stored.iter().map(|e| e.event_id).collect::<HashSet<_>>(), written);
}

/// A command may append to several streams in one transaction: all or none.
#[sqlx::test(migrations = "../../migrations")]
async fn multi_stream_append_is_atomic(pool: PgPool) {
    let store = EventStore::new(pool.clone());
    let (s1, s2) = (Uuid::now_v7(), Uuid::now_v7());

    let mut tx = pool.begin().await.expect("begin");
    let o1 =
        append_in_tx(&mut tx, s1, "a", ExpectedVersion::NoStream, &events(1), &metadata()).await.expect("first stream");
    let o2 = append_in_tx(&mut tx, s2, "b", ExpectedVersion::NoStream, &events(2), &metadata())
        .await
        .expect("second stream");
    tx.commit().await.expect("commit");
    assert_eq!(o1.transaction_id, o2.transaction_id);
    assert_eq!(store.stream_version(s1).await.expect("v"), Some(1));
    assert_eq!(store.stream_version(s2).await.expect("v"), Some(2));

    // The second append conflicts: the whole transaction is rolled back.
    let s3 = Uuid::now_v7();
    let mut tx = pool.begin().await.expect("begin");
    append_in_tx(&mut tx, s3, "a", ExpectedVersion::NoStream, &events(1), &metadata()).await.expect("third stream");
    let conflict = append_in_tx(&mut tx, s1, "a", ExpectedVersion::NoStream, &events(1), &metadata()).await;
    assert!(matches!(conflict, Err(StoreError::Conflict { .. })));
    tx.rollback().await.expect("rollback");
    assert_eq!(store.stream_version(s3).await.expect("v"), None);
    assert_eq!(store.stream_version(s1).await.expect("v"), Some(1));

    // Two appends to the same stream in one transaction see each other.
    let mut tx = pool.begin().await.expect("begin");
    append_in_tx(&mut tx, s1, "a", ExpectedVersion::Exact(1), &events(1), &metadata()).await.expect("v2");
    let o = append_in_tx(&mut tx, s1, "a", ExpectedVersion::Exact(2), &events(1), &metadata()).await.expect("v3");
    tx.commit().await.expect("commit");
    assert_eq!(o.next_expected_version, 3);
}

#[sqlx::test(migrations = "../../migrations")]
async fn duplicate_event_ids_and_bad_batches_are_refused(pool: PgPool) {
    let store = EventStore::new(pool);
    let batch = events(1);
    store.append(Uuid::now_v7(), "a", ExpectedVersion::Any, &batch, &metadata()).await.expect("first");
    let again = store.append(Uuid::now_v7(), "a", ExpectedVersion::Any, &batch, &metadata()).await;
    assert!(matches!(again, Err(StoreError::DuplicateEventId)), "{again:?}");

    let stream = Uuid::now_v7();
    let mut bad_type = events(1);
    bad_type[0].event_type.clear();
    let mut bad_version = events(1);
    bad_version[0].schema_version = 0;
    for (stream_type, batch) in [("a", vec![]), ("", events(1)), ("a", bad_type), ("a", bad_version)] {
        let result = store.append(stream, stream_type, ExpectedVersion::Any, &batch, &metadata()).await;
        assert!(matches!(result, Err(StoreError::InvalidAppend { .. })), "{result:?}");
    }
    assert!(store.read_stream(stream).await.expect("read").is_empty());
}
