//! Idempotency keys: the same key again returns the first result and
//! appends nothing, also when both attempts run at once; keys are scoped
//! per subject and only keyed digests are stored.

use std::sync::Arc;

use serde_json::json;
use sqlx::{Connection, PgPool};
use tandem_store::{
    EventStore, ExpectedVersion, IdempotencyKey, IdempotentAppend, RequestHash, StoreError, append_in_tx,
    idempotency_lookup_or_lock, idempotency_record,
};
use tokio::sync::Barrier;
use uuid::Uuid;

use crate::common::{connect, events, metadata};

/// The key `name` as the subject of the test metadata sends it.
fn k(name: &str) -> IdempotencyKey {
    IdempotencyKey::scoped(&tandem_testkit::test_secret(), &metadata().actor.subject, name)
}

/// The digest of request `name`.
fn h(name: &str) -> RequestHash {
    RequestHash::of(&tandem_testkit::test_secret(), name.as_bytes())
}

async fn key_rows(pool: &PgPool, key: &IdempotencyKey) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM idempotency_keys WHERE key = $1")
        .bind(key.as_str())
        .fetch_one(pool)
        .await
        .expect("count")
}

#[sqlx::test(migrations = "../../migrations")]
async fn concurrent_attempts_with_one_key_append_once(pool: PgPool) {
    const ROUNDS: usize = 50;
    let store = EventStore::new(pool.clone());
    for round in 0..ROUNDS {
        let key = k(&format!("key-{round}-{}", Uuid::now_v7()));
        let stream = Uuid::now_v7();
        let barrier = Arc::new(Barrier::new(2));
        // Two retries of one command: same key and request, but each
        // attempt minted its own event ids.
        let attempt = || {
            let (store, key, barrier) = (store.clone(), key.clone(), Arc::clone(&barrier));
            tokio::spawn(async move {
                let batch = events(2);
                barrier.wait().await;
                store
                    .append_idempotent(
                        &key,
                        &h("hash-1"),
                        stream,
                        "idem",
                        ExpectedVersion::NoStream,
                        &batch,
                        &metadata(),
                    )
                    .await
            })
        };
        let (a, b) = tokio::join!(attempt(), attempt());
        let a = a.expect("task a").expect("attempt a");
        let b = b.expect("task b").expect("attempt b");
        assert_eq!(
            [a.was_replayed(), b.was_replayed()].iter().filter(|r| **r).count(),
            1,
            "round {round}: exactly one attempt appended"
        );
        assert_eq!(a.outcome(), b.outcome(), "round {round}: same first result");
        let stored = store.read_stream(stream).await.expect("read");
        assert_eq!(stored, a.outcome().events, "round {round}: one set of events");
        assert_eq!(key_rows(&pool, &key).await, 1);
    }
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_retry_gets_the_first_result(pool: PgPool) {
    let store = EventStore::new(pool.clone());
    let stream = Uuid::now_v7();
    let first = store
        .append_idempotent(&k("k"), &h("h"), stream, "idem", ExpectedVersion::NoStream, &events(2), &metadata())
        .await
        .expect("first");
    let IdempotentAppend::Appended(first) = first else {
        panic!("the first attempt appends");
    };
    assert_eq!(first.events[0].metadata.idempotency_key.as_deref(), Some(k("k").as_str()));
    // The retry would conflict (NoStream) if it appended; it must not.
    let retry = store
        .append_idempotent(&k("k"), &h("h"), stream, "idem", ExpectedVersion::NoStream, &events(2), &metadata())
        .await
        .expect("retry");
    assert!(retry.was_replayed());
    assert_eq!(retry.into_outcome(), first);
    assert_eq!(store.read_stream(stream).await.expect("read").len(), 2);
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_key_reused_for_another_request_is_refused(pool: PgPool) {
    let store = EventStore::new(pool.clone());
    let (s1, s2) = (Uuid::now_v7(), Uuid::now_v7());
    store
        .append_idempotent(&k("k"), &h("h1"), s1, "idem", ExpectedVersion::Any, &events(1), &metadata())
        .await
        .expect("first");
    for (hash, stream) in [("h2", s2), ("h2", s1), ("h1", s2)] {
        let reused = store
            .append_idempotent(&k("k"), &h(hash), stream, "idem", ExpectedVersion::Any, &events(1), &metadata())
            .await;
        assert!(
            matches!(&reused, Err(StoreError::IdempotencyKeyReused { key }) if key == k("k").as_str()),
            "{reused:?}"
        );
    }
    assert!(store.read_stream(s2).await.expect("read").is_empty());
    assert_eq!(store.read_stream(s1).await.expect("read").len(), 1);
}

/// The building blocks, as a command service uses them: its own result
/// JSON, recorded in the same transaction as the events.
#[sqlx::test(migrations = "../../migrations")]
async fn lookup_and_record_in_the_callers_transaction(pool: PgPool) {
    let stream = Uuid::now_v7();
    let mut tx = pool.begin().await.expect("begin");
    assert_eq!(idempotency_lookup_or_lock(&mut tx, &k("cmd-1"), &h("h")).await.expect("lookup"), None);
    let outcome = append_in_tx(&mut tx, stream, "idem", ExpectedVersion::NoStream, &events(1), &metadata())
        .await
        .expect("append");
    let result = json!({ "pair": { "id": stream }, "cursor": outcome.commit_cursor().to_string() });
    idempotency_record(&mut tx, &k("cmd-1"), &h("h"), &result, std::slice::from_ref(&outcome)).await.expect("record");
    tx.commit().await.expect("commit");

    let mut tx = pool.begin().await.expect("begin");
    let record = idempotency_lookup_or_lock(&mut tx, &k("cmd-1"), &h("h")).await.expect("lookup").expect("recorded");
    tx.rollback().await.expect("rollback");
    assert_eq!(record.result, result);
    assert_eq!(record.stream_id, Some(stream));
    assert_eq!(record.commit_cursor(), Some(outcome.commit_cursor()));
    assert_eq!(record.first_position, Some(outcome.first_position));

    // A command that appended nothing can be recorded too.
    let mut tx = pool.begin().await.expect("begin");
    assert!(idempotency_lookup_or_lock(&mut tx, &k("cmd-2"), &h("h")).await.expect("lookup").is_none());
    idempotency_record(&mut tx, &k("cmd-2"), &h("h"), &json!({"ok": true}), &[]).await.expect("record");
    tx.commit().await.expect("commit");
    let mut tx = pool.begin().await.expect("begin");
    let record = idempotency_lookup_or_lock(&mut tx, &k("cmd-2"), &h("h")).await.expect("lookup").expect("recorded");
    assert_eq!(record.commit_cursor(), None);

    // Outside a transaction the lock would be released at once.
    let mut bare = connect(&pool).await;
    assert!(matches!(
        idempotency_lookup_or_lock(&mut bare, &k("cmd-3"), &h("h")).await,
        Err(StoreError::NotInTransaction { .. })
    ));
}

/// At REPEATABLE READ the lookup's snapshot can predate the first attempt's
/// commit; the primary key then refuses the second record with a typed error.
#[sqlx::test(migrations = "../../migrations")]
async fn a_stale_snapshot_race_is_a_typed_error(pool: PgPool) {
    let mut late = connect(&pool).await;
    let mut late_tx = late.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ").await.expect("begin");
    // Take the snapshot now, before the other attempt commits.
    sqlx::query("SELECT 1").execute(&mut *late_tx).await.expect("snapshot");

    let store = EventStore::new(pool.clone());
    store
        .append_idempotent(&k("k"), &h("h"), Uuid::now_v7(), "idem", ExpectedVersion::Any, &events(1), &metadata())
        .await
        .expect("first attempt");

    assert!(
        idempotency_lookup_or_lock(&mut late_tx, &k("k"), &h("h")).await.expect("lookup").is_none(),
        "the stale snapshot cannot see the record"
    );
    let raced = idempotency_record(&mut late_tx, &k("k"), &h("h"), &json!({}), &[]).await;
    assert!(matches!(raced, Err(StoreError::IdempotencyRace { .. })), "{raced:?}");
    late_tx.rollback().await.expect("rollback");
    assert_eq!(key_rows(&pool, &k("k")).await, 1);
}

/// Two subjects choosing one key do not meet: each gets its own first
/// result, and neither replays the other's.
#[sqlx::test(migrations = "../../migrations")]
async fn one_key_of_two_subjects_is_two_keys(pool: PgPool) {
    let store = EventStore::new(pool.clone());
    let secret = tandem_testkit::test_secret();
    let (alice, bob) = (IdempotencyKey::scoped(&secret, "alice", "k"), IdempotencyKey::scoped(&secret, "bob", "k"));
    assert_ne!(alice, bob);
    let (s1, s2) = (Uuid::now_v7(), Uuid::now_v7());
    let first =
        store.append_idempotent(&alice, &h("h"), s1, "idem", ExpectedVersion::NoStream, &events(1), &metadata()).await;
    let second =
        store.append_idempotent(&bob, &h("h"), s2, "idem", ExpectedVersion::NoStream, &events(1), &metadata()).await;
    assert!(!first.expect("alice").was_replayed());
    assert!(!second.expect("bob").was_replayed(), "bob's key is not alice's");
    assert_eq!(store.read_stream(s2).await.expect("read").len(), 1);
    // Boundaries of subject and key do not shift: ("ab", "c") is not ("a", "bc").
    assert_ne!(IdempotencyKey::scoped(&secret, "ab", "c"), IdempotencyKey::scoped(&secret, "a", "bc"));
}

/// The table takes digests only: a key or a request in clear is refused
/// by its checks, and the rows written hold nothing of what was sent.
#[sqlx::test(migrations = "../../migrations")]
async fn the_table_holds_digests_only(pool: PgPool) {
    let store = EventStore::new(pool.clone());
    store
        .append_idempotent(
            &k("marker-key-7f3a"),
            &h("marker request 7f3a"),
            Uuid::now_v7(),
            "idem",
            ExpectedVersion::Any,
            &events(1),
            &metadata(),
        )
        .await
        .expect("append");
    let dump: Vec<String> =
        sqlx::query_scalar("SELECT row_to_json(i)::text FROM idempotency_keys i").fetch_all(&pool).await.expect("rows");
    assert_eq!(dump.len(), 1);
    assert!(!dump[0].contains("marker"), "{}", dump[0]);
    assert!(!dump[0].contains(&metadata().actor.subject), "{}", dump[0]);
    for (key, hash) in [("clear-key".to_owned(), "a".repeat(64)), ("b".repeat(64), "a request".to_owned())] {
        let refused = sqlx::query("INSERT INTO idempotency_keys (key, request_hash, result) VALUES ($1, $2, '{}')")
            .bind(&key)
            .bind(&hash)
            .execute(&pool)
            .await;
        let code = refused.expect_err("refused").as_database_error().and_then(|d| d.code()).map(|c| c.into_owned());
        assert_eq!(code.as_deref(), Some("23514"), "a check violation");
    }
}
