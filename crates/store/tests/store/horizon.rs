//! The readers' horizon is set by event writers only: a transaction that
//! holds an xid and writes no events (in this database or another one of
//! the cluster) does not hold back the feed, while a writer that is slow to
//! commit still does, and is never skipped.

use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection, PgPool};
use tandem_store::{Cursor, EventStore, ExpectedVersion, StoreError, TailOptions, WRITER_LOCK_MISSING, append_in_tx};
use uuid::Uuid;

use crate::common::{connect, events, hold_xid, metadata};

/// How long a tail may take to deliver an event that is readable: far more
/// than a notification needs, less than the 5 s a stalled horizon used to
/// cost a read-your-writes wait.
const PROMPT: Duration = Duration::from_secs(2);

/// The snapshot's xmin now: proof that the open transaction is in the way
/// of a reader that used the plain xmin.
async fn xmin(pool: &PgPool) -> u64 {
    let xmin: String =
        sqlx::query_scalar("SELECT pg_snapshot_xmin(pg_current_snapshot())::text").fetch_one(pool).await.expect("xmin");
    xmin.parse().expect("xid8 as text")
}

/// Appends one event in its own transaction and checks that the very next
/// read returns it, and that a tail following the log delivers it promptly.
async fn assert_feed_flows(store: &EventStore, pool: &PgPool) {
    let from = store.head().await.expect("head");
    let mut tail = store.tail_with(
        from,
        TailOptions { poll_interval: Duration::from_millis(200), batch_size: 10, ..TailOptions::default() },
    );
    let outcome = store
        .append(Uuid::now_v7(), "horizon", ExpectedVersion::NoStream, &events(1), &metadata())
        .await
        .expect("append");
    let read = store.read_all(from, 10).await.expect("read");
    assert_eq!(read.len(), 1, "the committed event is not readable at once (horizon {})", xmin(pool).await);
    assert_eq!(read[0].event_id, outcome.events[0].event_id);
    assert_eq!(store.head().await.expect("head"), outcome.commit_cursor());
    let tailed = tokio::time::timeout(PROMPT, tail.next_batch()).await.expect("the tail delivers promptly");
    assert_eq!(tailed.expect("tail read")[0].event_id, outcome.events[0].event_id);
}

#[sqlx::test(migrations = "../../migrations")]
async fn an_open_transaction_of_the_same_database_that_writes_no_events_does_not_stall_the_feed(pool: PgPool) {
    let store = EventStore::new(pool.clone());
    let mut other = connect(&pool).await;
    let xid = hold_xid(&mut other).await;
    assert!(xmin(&pool).await <= xid, "the open transaction is in every snapshot");
    for _ in 0..3 {
        assert_feed_flows(&store, &pool).await;
    }
    sqlx::query("ROLLBACK").execute(&mut other).await.expect("rollback");
}

#[sqlx::test(migrations = "../../migrations")]
async fn an_open_transaction_of_another_database_does_not_stall_the_feed(pool: PgPool) {
    let store = EventStore::new(pool.clone());
    let name = format!("tandem_other_{}", Uuid::now_v7().simple());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&pool).await.expect("create database");
    let options: PgConnectOptions = pool.connect_options().as_ref().clone().database(&name);
    let mut other = PgConnection::connect_with(&options).await.expect("connect to the other database");
    let xid = hold_xid(&mut other).await;
    assert!(xmin(&pool).await <= xid, "the other database's transaction is in every snapshot");
    for _ in 0..3 {
        assert_feed_flows(&store, &pool).await;
    }
    sqlx::query("ROLLBACK").execute(&mut other).await.expect("rollback");
    other.close().await.expect("close");
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE {name}"))).execute(&pool).await.expect("drop database");
}

/// A writer that is slow to commit holds the horizon even while unrelated
/// transactions are open around it, and nothing after it is skipped.
#[sqlx::test(migrations = "../../migrations")]
async fn a_slow_writer_still_holds_the_horizon_among_unrelated_transactions(pool: PgPool) {
    let store = EventStore::new(pool.clone());
    let mut before = connect(&pool).await;
    hold_xid(&mut before).await;

    let mut a = connect(&pool).await;
    let mut tx_a = a.begin().await.expect("begin a");
    let outcome_a =
        append_in_tx(&mut tx_a, Uuid::now_v7(), "horizon", ExpectedVersion::NoStream, &events(2), &metadata())
            .await
            .expect("append a");
    let mut after = connect(&pool).await;
    hold_xid(&mut after).await;
    let outcome_b = store
        .append(Uuid::now_v7(), "horizon", ExpectedVersion::NoStream, &events(1), &metadata())
        .await
        .expect("append b");
    assert!(outcome_a.transaction_id < outcome_b.transaction_id);

    let seen = store.read_all(Cursor::START, 10).await.expect("read");
    assert!(seen.is_empty(), "read past an open writer: {seen:?}");
    assert_eq!(store.head().await.expect("head"), Cursor::START);

    tx_a.commit().await.expect("commit a");
    let seen = store.read_all(Cursor::START, 10).await.expect("read");
    let ids: Vec<Uuid> = seen.iter().map(|e| e.event_id).collect();
    let expected: Vec<Uuid> = outcome_a.events.iter().chain(&outcome_b.events).map(|e| e.event_id).collect();
    assert_eq!(ids, expected, "every event once, in order, right after the writer commits");
    sqlx::query("ROLLBACK").execute(&mut before).await.expect("rollback");
    sqlx::query("ROLLBACK").execute(&mut after).await.expect("rollback");
}

/// A transaction that announced itself (the command service's lock-and-read
/// statement does) and then wrote something else first holds the horizon
/// from its first write, so its events, appended last, are never skipped.
#[sqlx::test(migrations = "../../migrations")]
async fn an_announced_writer_holds_the_horizon_from_its_first_write(pool: PgPool) {
    let store = EventStore::new(pool.clone());
    let mut a = connect(&pool).await;
    sqlx::query("CREATE TABLE guard (n int)").execute(&mut a).await.expect("create guard");
    let mut tx_a = a.begin().await.expect("begin a");
    store.lock_and_read_streams_after_in(&mut tx_a, &[], &[], &[], &[]).await.expect("announce");
    sqlx::query("INSERT INTO guard VALUES (1)").execute(&mut *tx_a).await.expect("guard row");

    let outcome_b = store
        .append(Uuid::now_v7(), "horizon", ExpectedVersion::NoStream, &events(1), &metadata())
        .await
        .expect("append b");
    assert!(store.read_all(Cursor::START, 10).await.expect("read").is_empty(), "read past an announced writer");

    let outcome_a =
        append_in_tx(&mut tx_a, Uuid::now_v7(), "horizon", ExpectedVersion::NoStream, &events(1), &metadata())
            .await
            .expect("append a after its guard row");
    tx_a.commit().await.expect("commit a");
    let seen = store.read_all(Cursor::START, 10).await.expect("read");
    let ids: Vec<Uuid> = seen.iter().map(|e| e.event_id).collect();
    assert_eq!(ids, [outcome_a.events[0].event_id, outcome_b.events[0].event_id]);
}

/// An append in a transaction that already has an xid without the writers'
/// lock is refused: readers may have ignored that xid and moved past it.
#[sqlx::test(migrations = "../../migrations")]
async fn an_append_after_an_unannounced_write_is_refused(pool: PgPool) {
    let store = EventStore::new(pool.clone());
    let mut a = connect(&pool).await;
    sqlx::query("CREATE TABLE guard (n int)").execute(&mut a).await.expect("create guard");
    for expected in [ExpectedVersion::NoStream, ExpectedVersion::Any] {
        let mut tx = a.begin().await.expect("begin");
        sqlx::query("INSERT INTO guard VALUES (1)").execute(&mut *tx).await.expect("guard row");
        let refused = append_in_tx(&mut tx, Uuid::now_v7(), "horizon", expected, &events(1), &metadata()).await;
        match refused {
            Err(StoreError::Database(error)) => {
                let code = error.as_database_error().and_then(|db| db.code()).map(|c| c.into_owned());
                assert_eq!(code.as_deref(), Some(WRITER_LOCK_MISSING), "{error}");
            }
            other => panic!("{expected:?}: expected the writers' lock refusal, got {other:?}"),
        }
        tx.rollback().await.expect("rollback");
    }
    assert!(store.read_all(Cursor::START, 10).await.expect("read").is_empty());
    // An append that announces itself by writing events first works.
    let mut tx = a.begin().await.expect("begin");
    append_in_tx(&mut tx, Uuid::now_v7(), "horizon", ExpectedVersion::Any, &events(1), &metadata())
        .await
        .expect("append first");
    sqlx::query("INSERT INTO guard VALUES (2)").execute(&mut *tx).await.expect("guard row after the append");
    tx.commit().await.expect("commit");
    assert_eq!(store.read_all(Cursor::START, 10).await.expect("read").len(), 1);
}
