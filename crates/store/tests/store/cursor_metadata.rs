//! Cursors: parsing is strict; metadata: everything round-trips.

use std::time::Duration;

use chrono::Utc;
use sqlx::PgPool;
use tandem_store::{Cursor, EventStore, ExpectedVersion, Metadata, StoreError};
use uuid::Uuid;

use crate::common::{events, eventually, metadata};

#[test]
fn cursor_parsing_rejects_garbage() {
    for garbage in [
        "",
        "-",
        "abc",
        "12",
        "12-",
        "-12",
        "1-2-3",
        "1--2",
        "+1-2",
        "1-+2",
        " 1-2",
        "1-2 ",
        "1_2",
        "0x1-2",
        "1.5-2",
        "18446744073709551616-1",
        "1-9223372036854775808",
        "１-２",
        "\u{0}-\u{0}",
        &"9".repeat(10_000),
    ] {
        match garbage.parse::<Cursor>() {
            Err(StoreError::InvalidCursor { input, .. }) => {
                assert!(input.chars().count() <= 65, "the error echoes a bounded input");
            }
            other => panic!("{garbage:?} parsed as {other:?}"),
        }
    }
    assert_eq!("0-0".parse::<Cursor>().expect("start"), Cursor::START);
    assert_eq!(
        "18446744073709551615-9223372036854775807".parse::<Cursor>().expect("max"),
        Cursor::new(u64::MAX, i64::MAX)
    );
    assert_eq!(Cursor::new(738, 12).to_string(), "738-12");
}

#[sqlx::test(migrations = "../../migrations")]
async fn metadata_round_trips(pool: PgPool) {
    let store = EventStore::new(pool);
    let stream = Uuid::now_v7();
    let full = Metadata { idempotency_key: Some("key-1".to_owned()), ..metadata() };
    let before = Utc::now();
    let outcome = store.append(stream, "meta", ExpectedVersion::NoStream, &events(2), &full).await.expect("append");
    let read = store.read_stream(stream).await.expect("read");
    for event in &read {
        assert_eq!(event.metadata, full);
        assert_eq!(event.stream_type, "meta");
        // The transaction's start time, by the database's clock.
        let skew = chrono::Duration::seconds(5);
        assert!(event.recorded_at >= before - skew && event.recorded_at <= Utc::now() + skew);
        assert_eq!(event.recorded_at, read[0].recorded_at, "one time per transaction");
    }
    assert_eq!(read, outcome.events);

    // Optional fields may be absent.
    let sparse = Metadata { causation_id: None, idempotency_key: None, trace_id: None, ..metadata() };
    let other = Uuid::now_v7();
    store.append(other, "meta", ExpectedVersion::NoStream, &events(1), &sparse).await.expect("append");
    assert_eq!(store.read_stream(other).await.expect("read")[0].metadata, sparse);
    let raw: serde_json::Value = sqlx::query_scalar("SELECT metadata FROM events WHERE stream_id = $1")
        .bind(other)
        .fetch_one(store.pool())
        .await
        .expect("raw metadata");
    assert_eq!(
        raw.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()),
        Some(vec!["actor".to_owned(), "correlation_id".to_owned()])
    );

    // Cursors from the global read survive their string form.
    let all = eventually(Duration::from_secs(10), "three events", || async {
        let all = store.read_all(Cursor::START, 10).await.expect("read_all");
        (all.len() == 3).then_some(all)
    })
    .await;
    for event in &all {
        let parsed: Cursor = event.cursor().to_string().parse().expect("parse");
        assert_eq!(parsed, event.cursor());
    }
}
