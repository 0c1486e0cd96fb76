//! Old stored shapes are read in today's shape on every read path, the
//! stored rows stay as they were written, and what a newer version wrote
//! never fails a read.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};
use sqlx::PgPool;
use tandem_store::{
    Cursor, DomainUpcaster, EventStore, ExpectedVersion, NewEvent, RecordedEvent, StoreError, TailOptions,
};
use uuid::Uuid;

use crate::common::{eventually, metadata};

/// The domain's chain: `PersonRegistered` v1 called the name `fullName`
/// and knew no location; v2 calls it `name` and has one.
fn store(pool: PgPool) -> EventStore {
    EventStore::with_upcaster(pool, Arc::new(DomainUpcaster))
}

/// Inserts a row as another version of the code would have.
async fn insert_row(pool: &PgPool, stream: Uuid, version: i32, event_type: &str, schema_version: i16, data: Value) {
    sqlx::query(
        "INSERT INTO events (stream_id, stream_type, stream_version, event_id, event_type, \
                             schema_version, data, metadata) \
         VALUES ($1, 'person', $2, $3, $4, $5, $6, $7)",
    )
    .bind(stream)
    .bind(version)
    .bind(Uuid::now_v7())
    .bind(event_type)
    .bind(schema_version)
    .bind(data)
    .bind(serde_json::to_value(metadata()).expect("metadata"))
    .execute(pool)
    .await
    .expect("insert row");
}

/// Inserts a v1 row as an old version of the code would have.
async fn insert_v1(pool: &PgPool, stream: Uuid, data: Value) {
    insert_row(pool, stream, 1, "PersonRegistered", 1, data).await;
}

fn v1() -> Value {
    json!({ "fullName": "Ada Lovelace", "email": "ada@example.org" })
}

fn v2() -> Value {
    json!({ "name": "Ada Lovelace", "email": "ada@example.org", "location": null })
}

fn assert_v2(event: &RecordedEvent) {
    assert_eq!(event.event_type, "PersonRegistered");
    assert_eq!(event.schema_version, 2);
    assert_eq!(event.data, v2());
}

#[sqlx::test(migrations = "../../migrations")]
async fn v1_events_are_read_as_v2_everywhere(pool: PgPool) {
    let store = store(pool.clone());
    let stream = Uuid::now_v7();
    insert_v1(&pool, stream, v1()).await;
    // A current event in the same stream passes through untouched.
    let current = NewEvent::new("PersonRegistered", 2, v2());
    store.append(stream, "person", ExpectedVersion::Exact(1), &[current], &metadata()).await.expect("append v2");

    let read = store.read_stream(stream).await.expect("read_stream");
    assert_eq!(read.len(), 2);
    read.iter().for_each(assert_v2);

    let all = eventually(Duration::from_secs(10), "both events", || async {
        let all = store.read_all(Cursor::START, 10).await.expect("read_all");
        (all.len() == 2).then_some(all)
    })
    .await;
    all.iter().for_each(assert_v2);

    let mut tail = Box::pin(
        store
            .tail_with(
                Cursor::START,
                TailOptions { poll_interval: Duration::from_millis(50), ..TailOptions::default() },
            )
            .into_stream(),
    );
    for _ in 0..2 {
        let event = tokio::time::timeout(Duration::from_secs(5), tail.next())
            .await
            .expect("in time")
            .expect("not ended")
            .expect("tail");
        assert_v2(&event);
    }

    // The stored row was never rewritten.
    let stored: (i16, Value) =
        sqlx::query_as("SELECT schema_version, data FROM events WHERE stream_id = $1 AND stream_version = 1")
            .bind(stream)
            .fetch_one(&pool)
            .await
            .expect("raw row");
    assert_eq!(stored, (1, v1()));
}

#[sqlx::test(migrations = "../../migrations")]
async fn an_event_the_chain_cannot_upcast_is_a_typed_error(pool: PgPool) {
    let store = store(pool.clone());
    let stream = Uuid::now_v7();
    insert_v1(&pool, stream, json!({ "email": "no-name@example.org" })).await;
    match store.read_stream(stream).await {
        Err(StoreError::Upcast { event_type, schema_version, source, .. }) => {
            assert_eq!((event_type.as_str(), schema_version), ("PersonRegistered", 1));
            assert!(source.message().contains("missing fullName"), "{source}");
        }
        other => panic!("expected an upcast error, got {other:?}"),
    }
    // The tail yields the error and ends instead of skipping the event.
    let mut tail = Box::pin(store.tail(Cursor::START).into_stream());
    let item = tokio::time::timeout(Duration::from_secs(10), tail.next()).await.expect("in time").expect("an item");
    assert!(matches!(item, Err(StoreError::Upcast { .. })), "{item:?}");
    assert!(tail.next().await.is_none(), "the tail ends after a permanent error");
}

#[sqlx::test(migrations = "../../migrations")]
async fn rows_a_newer_version_wrote_are_read_as_stored(pool: PgPool) {
    let store = store(pool.clone());
    let stream = Uuid::now_v7();
    // An unknown event type, a schema version from the future, and today's
    // version with a field this build does not know.
    let unknown = json!({ "personId": stream, "badge": "gold" });
    let future = json!({ "personId": stream, "leftOn": "2025-01-01", "reason": "VOLUNTARY", "exitInterview": true });
    let mut extra = v2();
    extra["pronouns"] = json!("she/her");
    insert_row(&pool, stream, 1, "PersonRegistered", 2, extra.clone()).await;
    insert_row(&pool, stream, 2, "PersonBadgeAwarded", 1, unknown.clone()).await;
    insert_row(&pool, stream, 3, "PersonLeft", 9, future.clone()).await;
    let expect = [("PersonRegistered", 2, extra), ("PersonBadgeAwarded", 1, unknown), ("PersonLeft", 9, future)];
    let check = |read: &[RecordedEvent]| {
        let got: Vec<(&str, i16, Value)> =
            read.iter().map(|e| (e.event_type.as_str(), e.schema_version, e.data.clone())).collect();
        let want: Vec<(&str, i16, Value)> = expect.iter().map(|(t, v, d)| (*t, *v, d.clone())).collect();
        assert_eq!(got, want);
    };
    check(&store.read_stream(stream).await.expect("read_stream over newer rows"));
    let all = eventually(Duration::from_secs(10), "the three rows", || async {
        let all = store.read_all(Cursor::START, 10).await.expect("read_all over newer rows");
        (all.len() == 3).then_some(all)
    })
    .await;
    check(&all);
}
