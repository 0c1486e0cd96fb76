//! The tail: catch-up then live, woken by NOTIFY, kept alive by polling.

use std::pin::Pin;
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use sqlx::PgPool;
use tandem_store::{Cursor, EventStore, ExpectedVersion, RecordedEvent, StoreError, TailOptions};
use uuid::Uuid;

use crate::common::{events, eventually, metadata};

type EventStream = Pin<Box<dyn Stream<Item = Result<RecordedEvent, StoreError>> + Send>>;

fn tail(store: &EventStore, from: Cursor, options: TailOptions) -> EventStream {
    Box::pin(store.tail_with(from, options).into_stream())
}

/// The next event, failing the test if none arrives within `limit`.
async fn next_within(stream: &mut EventStream, limit: Duration) -> RecordedEvent {
    tokio::time::timeout(limit, stream.next())
        .await
        .expect("an event in time")
        .expect("the tail does not end")
        .expect("no error")
}

async fn append(store: &EventStore, count: usize) -> Vec<Uuid> {
    let outcome = store
        .append(Uuid::now_v7(), "tail", ExpectedVersion::NoStream, &events(count), &metadata())
        .await
        .expect("append");
    outcome.events.iter().map(|e| e.event_id).collect()
}

/// Starts the stream so that it reaches its idle wait (listener open).
async fn start_idle(stream: &mut EventStream) {
    let idle = tokio::time::timeout(Duration::from_millis(300), stream.next()).await;
    assert!(idle.is_err(), "nothing to deliver yet: {idle:?}");
}

/// With a poll interval far beyond the test's patience, only the
/// notification can deliver the event.
#[sqlx::test(migrations = "../../migrations")]
async fn a_notification_wakes_the_tail(pool: PgPool) {
    let store = EventStore::new(pool);
    let options = TailOptions { poll_interval: Duration::from_secs(60), ..TailOptions::default() };
    let mut stream = tail(&store, Cursor::START, options);
    start_idle(&mut stream).await;
    for _ in 0..3 {
        let ids = append(&store, 2).await;
        let sent = Instant::now();
        let first = next_within(&mut stream, Duration::from_secs(5)).await;
        let latency = sent.elapsed();
        let second = next_within(&mut stream, Duration::from_secs(1)).await;
        assert_eq!([first.event_id, second.event_id], [ids[0], ids[1]]);
        assert!(latency < Duration::from_secs(2), "woken after {latency:?}");
    }
}

/// Notifications off, or on a channel nobody notifies: polling alone
/// delivers every event.
#[sqlx::test(migrations = "../../migrations")]
async fn polling_delivers_without_notifications(pool: PgPool) {
    let store = EventStore::new(pool);
    let poll = Duration::from_millis(100);
    let mut off = tail(
        &store,
        Cursor::START,
        TailOptions { poll_interval: poll, notifications: false, ..TailOptions::default() },
    );
    let mut dead_channel = tail(
        &store,
        Cursor::START,
        TailOptions { poll_interval: poll, channel: "nobody_notifies_this".to_owned(), ..TailOptions::default() },
    );
    start_idle(&mut off).await;
    start_idle(&mut dead_channel).await;
    let ids = append(&store, 3).await;
    for stream in [&mut off, &mut dead_channel] {
        let mut got = Vec::new();
        for _ in 0..3 {
            got.push(next_within(stream, Duration::from_secs(3)).await.event_id);
        }
        assert_eq!(got, ids);
    }
}

/// Killing the listening connection neither loses events nor leaves the
/// tail deaf: it reconnects and notifications wake it again.
#[sqlx::test(migrations = "../../migrations")]
async fn the_tail_survives_losing_its_listener(pool: PgPool) {
    let store = EventStore::new(pool.clone());
    let options = TailOptions { poll_interval: Duration::from_secs(60), ..TailOptions::default() };
    let mut stream = tail(&store, Cursor::START, options);
    start_idle(&mut stream).await;

    let killed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM ( \
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND query ILIKE 'LISTEN%' \
         ) AS t",
    )
    .fetch_one(&pool)
    .await
    .expect("terminate the listener");
    assert_eq!(killed, 1, "one listening connection");

    // Let the tail notice and reconnect (it is idle in its wait).
    let reconnected = tokio::time::timeout(Duration::from_millis(300), stream.next()).await;
    assert!(reconnected.is_err(), "nothing to deliver: {reconnected:?}");
    eventually(Duration::from_secs(5), "a new listener", || {
        let pool = pool.clone();
        async move {
            let listeners: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE datname = current_database() AND query ILIKE 'LISTEN%'",
            )
            .fetch_one(&pool)
            .await
            .expect("count listeners");
            (listeners == 1).then_some(())
        }
    })
    .await;

    let ids = append(&store, 1).await;
    let event = next_within(&mut stream, Duration::from_secs(5)).await;
    assert_eq!(event.event_id, ids[0]);
}

/// A tail resumes strictly after its cursor, then follows live, exactly once.
#[sqlx::test(migrations = "../../migrations")]
async fn a_tail_resumes_after_its_cursor(pool: PgPool) {
    let store = EventStore::new(pool);
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.extend(append(&store, 2).await);
    }
    let all = eventually(Duration::from_secs(10), "ten events", || async {
        let all = store.read_all(Cursor::START, 100).await.expect("read");
        (all.len() == 10).then_some(all)
    })
    .await;
    let resume_at: Cursor = all[3].cursor().to_string().parse().expect("cursor");

    let mut batches = store.tail_with(
        resume_at,
        TailOptions { batch_size: 4, poll_interval: Duration::from_millis(50), ..TailOptions::default() },
    );
    let first = batches.next_batch().await.expect("batch");
    assert_eq!(first.len(), 4, "batches are capped at batch_size");
    assert_eq!(first[0].event_id, ids[4]);
    let second = batches.next_batch().await.expect("batch");
    assert_eq!(second.len(), 2);
    assert_eq!(batches.cursor(), all[9].cursor());
    assert_eq!(store.head().await.expect("head"), all[9].cursor());

    let live = append(&store, 1).await;
    let third =
        tokio::time::timeout(Duration::from_secs(5), batches.next_batch()).await.expect("in time").expect("batch");
    assert_eq!(third.iter().map(|e| e.event_id).collect::<Vec<_>>(), live);
    let delivered: Vec<Uuid> = first.iter().chain(&second).map(|e| e.event_id).collect();
    assert_eq!(delivered, ids[4..]);
}
