//! The group-commit primitives: many streams appended in one statement, and
//! locks taken and streams read in one statement with a snapshot taken
//! after the locks.

#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

use std::time::Duration;

use sqlx::{Connection, PgPool};
use tandem_store::{EventStore, ExpectedVersion, StoreError, StreamAppend, append_batch_in_tx, append_in_tx};
use uuid::Uuid;

use crate::common::{connect, events, metadata};

/// One stream's part of a batch.
fn part<'a>(
    stream_id: Uuid,
    expected: ExpectedVersion,
    events: &'a [tandem_store::NewEvent],
    metadata: &'a tandem_store::Metadata,
) -> StreamAppend<'a> {
    StreamAppend { stream_id, stream_type: "thing", expected, events, metadata }
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_batch_appends_many_streams_at_their_versions(pool: PgPool) {
    let store = EventStore::new(pool.clone());
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    store.append(a, "thing", ExpectedVersion::NoStream, &events(2), &metadata()).await.unwrap();
    let (ea, eb) = (events(3), events(1));
    let meta = metadata();
    let mut conn = connect(&pool).await;
    let mut tx = conn.begin().await.unwrap();
    let outcomes = append_batch_in_tx(
        &mut tx,
        &[part(a, ExpectedVersion::Exact(2), &ea, &meta), part(b, ExpectedVersion::NoStream, &eb, &meta)],
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(outcomes.len(), 2);
    assert_eq!(outcomes[0].events.iter().map(|e| e.stream_version).collect::<Vec<_>>(), vec![3, 4, 5]);
    assert_eq!(outcomes[1].events.iter().map(|e| e.stream_version).collect::<Vec<_>>(), vec![1]);
    // Positions follow the order given.
    assert!(outcomes[0].last_position < outcomes[1].first_position);
    assert_eq!(store.read_stream(a).await.unwrap().len(), 5);
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_batch_that_overlaps_another_writer_appends_nothing(pool: PgPool) {
    let store = EventStore::new(pool.clone());
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    store.append(a, "thing", ExpectedVersion::NoStream, &events(1), &metadata()).await.unwrap();
    let (ea, eb) = (events(1), events(1));
    let meta = metadata();
    let mut conn = connect(&pool).await;
    let mut tx = conn.begin().await.unwrap();
    // `a` is at version 1, not 0: the batch must fail whole.
    let result = append_batch_in_tx(
        &mut tx,
        &[part(b, ExpectedVersion::NoStream, &eb, &meta), part(a, ExpectedVersion::NoStream, &ea, &meta)],
    )
    .await;
    assert!(matches!(result, Err(StoreError::Conflict { .. })), "{result:?}");
    tx.rollback().await.unwrap();
    assert!(store.read_stream(b).await.unwrap().is_empty());
    // A stream twice, or `Any`, is refused before anything is sent.
    let mut tx = conn.begin().await.unwrap();
    let twice = append_batch_in_tx(
        &mut tx,
        &[part(b, ExpectedVersion::NoStream, &eb, &meta), part(b, ExpectedVersion::Exact(1), &ea, &meta)],
    )
    .await;
    assert!(matches!(twice, Err(StoreError::InvalidAppend { .. })), "{twice:?}");
    let any = append_batch_in_tx(&mut tx, &[part(b, ExpectedVersion::Any, &eb, &meta)]).await;
    assert!(matches!(any, Err(StoreError::InvalidAppend { .. })), "{any:?}");
}

/// The read of `lock_and_read_streams_after_in` sees what the previous
/// holder of the lock committed while the call waited for it: the snapshot
/// is taken after the lock, not when the statement started.
#[sqlx::test(migrations = "../../migrations")]
async fn locking_and_reading_sees_what_the_lock_holder_committed(pool: PgPool) {
    let store = EventStore::new(pool.clone());
    let stream = Uuid::now_v7();
    store.append(stream, "thing", ExpectedVersion::NoStream, &events(1), &metadata()).await.unwrap();
    let key = 42_i64;

    // A writer holds the lock and appends, then commits after a while.
    let mut holder = connect(&pool).await;
    let mut htx = holder.begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(key).execute(&mut *htx).await.unwrap();
    append_in_tx(&mut htx, stream, "thing", ExpectedVersion::Exact(1), &events(2), &metadata()).await.unwrap();

    let reader = {
        let store = store.clone();
        let pool = pool.clone();
        tokio::spawn(async move {
            let mut conn = connect(&pool).await;
            let mut tx = conn.begin().await.unwrap();
            let read = store.lock_and_read_streams_after_in(&mut tx, &[key], &[false], &[stream], &[0]).await.unwrap();
            tx.commit().await.unwrap();
            read
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!reader.is_finished(), "the reader waits for the lock");
    htx.commit().await.unwrap();
    let read = reader.await.unwrap();
    assert_eq!(read.iter().map(|e| e.stream_version).collect::<Vec<_>>(), vec![1, 2, 3]);

    // After a version, only what follows it.
    let mut conn = connect(&pool).await;
    let mut tx = conn.begin().await.unwrap();
    let later = store.lock_and_read_streams_after_in(&mut tx, &[key], &[true], &[stream], &[2]).await.unwrap();
    assert_eq!(later.iter().map(|e| e.stream_version).collect::<Vec<_>>(), vec![3]);
}
