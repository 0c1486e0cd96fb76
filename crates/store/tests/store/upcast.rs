//! Old stored shapes are read in today's shape on every read path, and the
//! stored rows stay as they were written.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};
use sqlx::PgPool;
use tandem_store::{
    Cursor, EventStore, ExpectedVersion, NewEvent, RecordedEvent, StoreError, TailOptions, UpcastError, UpcasterChain,
};
use uuid::Uuid;

use crate::common::{eventually, metadata};

/// `PersonRegistered` v1 called the field `full_name`; v2 calls it `name`.
fn rename_full_name(mut data: Value) -> Result<Value, UpcastError> {
    let object = data.as_object_mut().ok_or_else(|| UpcastError::new("expected an object"))?;
    let name = object.remove("full_name").ok_or_else(|| UpcastError::new("missing full_name"))?;
    object.insert("name".to_owned(), name);
    Ok(data)
}

fn store(pool: PgPool) -> EventStore {
    let chain = UpcasterChain::new().step("PersonRegistered", 1, rename_full_name);
    EventStore::with_upcaster(pool, Arc::new(chain))
}

/// Inserts a v1 row as an old version of the code would have.
async fn insert_v1(pool: &PgPool, stream: Uuid, data: Value) {
    sqlx::query(
        "INSERT INTO events (stream_id, stream_type, stream_version, event_id, event_type, \
                             schema_version, data, metadata) \
         VALUES ($1, 'person', 1, $2, 'PersonRegistered', 1, $3, $4)",
    )
    .bind(stream)
    .bind(Uuid::now_v7())
    .bind(data)
    .bind(serde_json::to_value(metadata()).expect("metadata"))
    .execute(pool)
    .await
    .expect("insert v1");
}

fn assert_v2(event: &RecordedEvent) {
    assert_eq!(event.event_type, "PersonRegistered");
    assert_eq!(event.schema_version, 2);
    assert_eq!(event.data, json!({ "name": "Ada Lovelace", "email": "ada@example.org" }));
}

#[sqlx::test(migrations = "../../migrations")]
async fn v1_events_are_read_as_v2_everywhere(pool: PgPool) {
    let store = store(pool.clone());
    let stream = Uuid::now_v7();
    insert_v1(&pool, stream, json!({ "full_name": "Ada Lovelace", "email": "ada@example.org" })).await;
    // A current event in the same stream passes through untouched.
    let v2 = NewEvent::new("PersonRegistered", 2, json!({ "name": "Ada Lovelace", "email": "ada@example.org" }));
    store.append(stream, "person", ExpectedVersion::Exact(1), &[v2], &metadata()).await.expect("append v2");

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
    assert_eq!(stored, (1, json!({ "full_name": "Ada Lovelace", "email": "ada@example.org" })));
}

#[sqlx::test(migrations = "../../migrations")]
async fn an_event_the_chain_cannot_upcast_is_a_typed_error(pool: PgPool) {
    let store = store(pool.clone());
    let stream = Uuid::now_v7();
    insert_v1(&pool, stream, json!({ "email": "no-name@example.org" })).await;
    match store.read_stream(stream).await {
        Err(StoreError::Upcast { event_type, schema_version, source, .. }) => {
            assert_eq!((event_type.as_str(), schema_version), ("PersonRegistered", 1));
            assert!(source.message().contains("missing full_name"), "{source}");
        }
        other => panic!("expected an upcast error, got {other:?}"),
    }
    // The tail yields the error and ends instead of skipping the event.
    let mut tail = Box::pin(store.tail(Cursor::START).into_stream());
    let item = tokio::time::timeout(Duration::from_secs(10), tail.next()).await.expect("in time").expect("an item");
    assert!(matches!(item, Err(StoreError::Upcast { .. })), "{item:?}");
    assert!(tail.next().await.is_none(), "the tail ends after a permanent error");
}
