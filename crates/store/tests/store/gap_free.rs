//! The global read never skips, never repeats and never shows rolled-back
//! events, while writers commit out of position order.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection, PgPool};
use tandem_store::{Cursor, EventStore, ExpectedVersion, RecordedEvent, TailOptions, append_in_tx};
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::common::{Rng, connect, events, eventually, hold_xid, metadata};

const WRITERS: u64 = 16;
const TRANSACTIONS_PER_WRITER: u64 = 80;

/// What one writer did.
#[derive(Default)]
struct Written {
    committed: Vec<Uuid>,
    rolled_back: Vec<Uuid>,
}

/// Appends in many transactions on its own connection: some sleep before
/// committing (so later positions commit first), some roll back. The
/// transactions take their xid in each of the ways a writer can: a plain
/// append, an `Any` append (its insert runs in a savepoint), and an
/// announced transaction that writes another table before its events.
async fn writer(pool: PgPool, seed: u64) -> Written {
    let store = EventStore::new(pool.clone());
    let mut conn = connect(&pool).await;
    let mut rng = Rng::new(seed);
    let stream_id = Uuid::now_v7();
    let mut version = 0;
    let mut written = Written::default();
    for _ in 0..TRANSACTIONS_PER_WRITER {
        let batch = events(1 + rng.below(4) as usize);
        let ids: Vec<Uuid> = batch.iter().map(|e| e.event_id).collect();
        let mut tx = conn.begin().await.expect("begin");
        let expected = match rng.below(4) {
            0 => ExpectedVersion::Any,
            1 => {
                store.lock_and_read_streams_after_in(&mut tx, &[], &[], &[], &[]).await.expect("announce");
                sqlx::query("INSERT INTO race_guard VALUES ($1)")
                    .bind(i64::try_from(seed).expect("small seed"))
                    .execute(&mut *tx)
                    .await
                    .expect("guard row before the events");
                ExpectedVersion::Exact(version)
            }
            _ => ExpectedVersion::Exact(version),
        };
        let outcome = append_in_tx(&mut tx, stream_id, "race", expected, &batch, &metadata())
            .await
            .expect("only this writer appends to its stream");
        if rng.below(3) == 0 {
            // Hold the lower positions while other writers commit higher ones.
            tokio::time::sleep(Duration::from_millis(1 + rng.below(6))).await;
        }
        if rng.below(10) == 0 {
            tx.rollback().await.expect("rollback");
            written.rolled_back.extend(ids);
        } else {
            tx.commit().await.expect("commit");
            version = outcome.next_expected_version;
            written.committed.extend(ids);
        }
    }
    written
}

/// Checks a delivered sequence against what was committed and returns how
/// many events arrived after one with a higher position (a reader by
/// position alone would have skipped those).
fn check_delivery(delivered: &[RecordedEvent], committed: &HashSet<Uuid>, rolled_back: &HashSet<Uuid>) -> usize {
    let ids: HashSet<Uuid> = delivered.iter().map(|e| e.event_id).collect();
    assert_eq!(ids.len(), delivered.len(), "an event was delivered twice");
    assert!(ids.is_disjoint(rolled_back), "a rolled-back event was delivered");
    assert_eq!(&ids, committed, "delivered events differ from committed ones");
    for pair in delivered.windows(2) {
        assert!(
            pair[0].cursor() < pair[1].cursor(),
            "not strictly increasing: {} then {}",
            pair[0].cursor(),
            pair[1].cursor()
        );
    }
    // Every stream's events arrive in version order, without gaps.
    let mut versions: HashMap<Uuid, i32> = HashMap::new();
    for event in delivered {
        let last = versions.entry(event.stream_id).or_default();
        assert_eq!(event.stream_version, *last + 1, "stream order broken");
        *last = event.stream_version;
    }
    let mut max_position = 0;
    let mut late = 0;
    for event in delivered {
        if event.position < max_position {
            late += 1;
        }
        max_position = max_position.max(event.position);
    }
    late
}

/// Where the transaction that holds an xid through a race runs.
#[derive(Debug, Clone, Copy)]
enum UnrelatedIn {
    ThisDatabase,
    AnotherDatabase,
}

#[sqlx::test(migrations = "../../migrations")]
async fn racing_writers_are_read_exactly_once_in_order(pool: PgPool) {
    race(pool, UnrelatedIn::ThisDatabase).await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn racing_writers_are_read_exactly_once_in_order_past_another_databases_xid(pool: PgPool) {
    race(pool, UnrelatedIn::AnotherDatabase).await;
}

/// Sixteen writers race while a transaction that writes no events holds an
/// xid in `unrelated_in`; a tail, a pager and a watcher of the head follow
/// the log meanwhile.
async fn race(pool: PgPool, unrelated_in: UnrelatedIn) {
    let started = Instant::now();
    let store = EventStore::new(pool.clone());
    sqlx::query("CREATE TABLE race_guard (writer bigint)").execute(&pool).await.expect("create the guard table");

    // Reader 1: the tail, live from the start while the writers run.
    let tailed = Arc::new(Mutex::new(Vec::<RecordedEvent>::new()));
    let mut readers = JoinSet::new();
    {
        let tailed = Arc::clone(&tailed);
        let options =
            TailOptions { batch_size: 100, poll_interval: Duration::from_millis(50), ..TailOptions::default() };
        let mut stream = Box::pin(store.tail_with(Cursor::START, options).into_stream());
        readers.spawn(async move {
            while let Some(event) = stream.next().await {
                let event = event.expect("tail delivers");
                tailed.lock().expect("not poisoned").push(event);
            }
        });
    }
    // Reader 2: plain read_all in small pages, polling.
    let paged = Arc::new(Mutex::new(Vec::<RecordedEvent>::new()));
    {
        let paged = Arc::clone(&paged);
        let store = store.clone();
        readers.spawn(async move {
            let mut cursor = Cursor::START;
            loop {
                let page = store.read_all(cursor, 37).await.expect("read_all");
                match page.last() {
                    Some(last) => cursor = last.cursor(),
                    None => tokio::time::sleep(Duration::from_millis(5)).await,
                }
                paged.lock().expect("not poisoned").extend(page);
            }
        });
    }
    // Reader 3: the head, read again and again; it must never go back.
    let heads = Arc::new(Mutex::new(Vec::<Cursor>::new()));
    {
        let heads = Arc::clone(&heads);
        let store = store.clone();
        readers.spawn(async move {
            loop {
                let head = store.head().await.expect("head");
                heads.lock().expect("not poisoned").push(head);
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        });
    }

    // A transaction that holds an xid for the whole race and writes no
    // events: it must not hold the readers back (they have deadlines).
    let other_database = match unrelated_in {
        UnrelatedIn::ThisDatabase => None,
        UnrelatedIn::AnotherDatabase => {
            let name = format!("tandem_race_{}", Uuid::now_v7().simple());
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&pool)
                .await
                .expect("create database");
            Some(name)
        }
    };
    let mut unrelated = match &other_database {
        None => connect(&pool).await,
        Some(name) => {
            let options: PgConnectOptions = pool.connect_options().as_ref().clone().database(name);
            PgConnection::connect_with(&options).await.expect("connect to the other database")
        }
    };
    let unrelated_xid = hold_xid(&mut unrelated).await;

    let mut writers = JoinSet::new();
    for seed in 0..WRITERS {
        writers.spawn(writer(pool.clone(), seed + 1));
    }
    let mut committed = HashSet::new();
    let mut rolled_back = HashSet::new();
    while let Some(written) = writers.join_next().await {
        let written = written.expect("writer finished");
        committed.extend(written.committed);
        rolled_back.extend(written.rolled_back);
    }
    assert!(committed.len() > 2000, "only {} events", committed.len());
    assert!(!rolled_back.is_empty());
    // With every writer done, one reading of the head is the last event.
    assert_eq!(store.head().await.expect("head"), tandem_testkit::db::last_event(&pool).await);

    for (name, delivered) in [("tail", &tailed), ("read_all", &paged)] {
        eventually(Duration::from_secs(10), name, || async {
            (delivered.lock().expect("not poisoned").len() >= committed.len()).then_some(())
        })
        .await;
    }
    // Give the readers a moment to deliver anything extra (they must not).
    tokio::time::sleep(Duration::from_millis(200)).await;
    readers.abort_all();
    let still_open: String =
        sqlx::query_scalar("SELECT pg_current_xact_id()::text").fetch_one(&mut unrelated).await.expect("xid");
    assert_eq!(still_open, unrelated_xid.to_string(), "the unrelated transaction stayed open through the race");
    sqlx::query("ROLLBACK").execute(&mut unrelated).await.expect("rollback the unrelated transaction");
    if let Some(name) = other_database {
        unrelated.close().await.expect("close");
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE {name}"))).execute(&pool).await.expect("drop database");
    }

    let tailed = tailed.lock().expect("not poisoned").clone();
    let paged = paged.lock().expect("not poisoned").clone();
    let heads = heads.lock().expect("not poisoned").clone();
    let late = check_delivery(&tailed, &committed, &rolled_back);
    check_delivery(&paged, &committed, &rolled_back);
    assert_eq!(tailed, paged, "both readers see the same order");
    assert_eq!(store.head().await.expect("head"), tailed[tailed.len() - 1].cursor());
    for pair in heads.windows(2) {
        assert!(pair[0] <= pair[1], "the head went back from {} to {}", pair[0], pair[1]);
    }
    assert!(heads.len() > 10, "the head was read {} times", heads.len());
    // The scenario must actually have happened: events committed after
    // events with higher positions had been delivered.
    assert!(late > 0, "no event committed out of position order");
    println!(
        "{unrelated_in:?}: {} committed, {} rolled back, {late} delivered out of position order, {} head readings, \
         {:?}",
        committed.len(),
        rolled_back.len(),
        heads.len(),
        started.elapsed()
    );
}

#[sqlx::test(migrations = "../../migrations")]
async fn an_open_older_transaction_holds_back_later_commits(pool: PgPool) {
    let store = EventStore::new(pool.clone());
    let mut a = connect(&pool).await;
    let mut b = connect(&pool).await;

    let mut tx_a = a.begin().await.expect("begin a");
    let outcome_a =
        append_in_tx(&mut tx_a, Uuid::now_v7(), "horizon", ExpectedVersion::NoStream, &events(1), &metadata())
            .await
            .expect("append a");
    let mut tx_b = b.begin().await.expect("begin b");
    let outcome_b =
        append_in_tx(&mut tx_b, Uuid::now_v7(), "horizon", ExpectedVersion::NoStream, &events(1), &metadata())
            .await
            .expect("append b");
    tx_b.commit().await.expect("commit b");
    assert!(outcome_a.last_position < outcome_b.first_position);
    assert!(outcome_a.transaction_id < outcome_b.transaction_id);

    // B is committed, but A (older) is still open: B must not be readable,
    // or a reader would move past A's lower position and never see it.
    let seen = store.read_all(Cursor::START, 100).await.expect("read");
    assert!(seen.is_empty(), "read past an open transaction: {seen:?}");
    assert_eq!(store.head().await.expect("head"), Cursor::START);

    tx_a.commit().await.expect("commit a");
    let seen = eventually(Duration::from_secs(10), "both events", || async {
        let seen = store.read_all(Cursor::START, 100).await.expect("read");
        (seen.len() == 2).then_some(seen)
    })
    .await;
    assert_eq!(seen[0].event_id, outcome_a.events[0].event_id);
    assert_eq!(seen[1].event_id, outcome_b.events[0].event_id);
    let after = store.read_all(seen[1].cursor(), 100).await.expect("read");
    assert!(after.is_empty());
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_rolled_back_older_transaction_is_never_read(pool: PgPool) {
    let store = EventStore::new(pool.clone());
    let mut a = connect(&pool).await;
    let mut tx_a = a.begin().await.expect("begin a");
    append_in_tx(&mut tx_a, Uuid::now_v7(), "horizon", ExpectedVersion::NoStream, &events(2), &metadata())
        .await
        .expect("append a");
    let outcome_b = store
        .append(Uuid::now_v7(), "horizon", ExpectedVersion::NoStream, &events(1), &metadata())
        .await
        .expect("append b");
    assert!(store.read_all(Cursor::START, 10).await.expect("read").is_empty());

    tx_a.rollback().await.expect("rollback a");
    let seen = eventually(Duration::from_secs(10), "b", || async {
        let seen = store.read_all(Cursor::START, 10).await.expect("read");
        (!seen.is_empty()).then_some(seen)
    })
    .await;
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].event_id, outcome_b.events[0].event_id);
}

/// The order is numeric in the transaction id (a text comparison would put
/// "10" before "9"), whatever the positions say.
#[sqlx::test(migrations = "../../migrations")]
async fn the_global_order_compares_transaction_ids_as_numbers(pool: PgPool) {
    let store = EventStore::new(pool.clone());
    // Rows with explicit old transaction ids, as a copied log would have;
    // inserted so that positions disagree with transaction order.
    for transaction_id in ["10", "9", "100", "9"] {
        sqlx::query(
            "INSERT INTO events (transaction_id, stream_id, stream_type, stream_version, event_id, \
                                 event_type, schema_version, data, metadata) \
             VALUES ($1::text::xid8, $2, 'old', 1, $3, 'Old', 1, '{}', $4)",
        )
        .bind(transaction_id)
        .bind(Uuid::now_v7())
        .bind(Uuid::now_v7())
        .bind(serde_json::to_value(metadata()).expect("metadata"))
        .execute(&pool)
        .await
        .expect("insert");
    }
    let all = store.read_all(Cursor::START, 10).await.expect("read");
    let order: Vec<(u64, i64)> = all.iter().map(|e| (e.transaction_id, e.position)).collect();
    assert_eq!(order, [(9, 2), (9, 4), (10, 1), (100, 3)]);
    assert_eq!(store.head().await.expect("head"), Cursor::new(100, 3));
    // Paging one by one gives the same order.
    let mut cursor = Cursor::START;
    let mut paged = Vec::new();
    while let Some(event) = store.read_all(cursor, 1).await.expect("page").pop() {
        cursor = event.cursor();
        paged.push((event.transaction_id, event.position));
    }
    assert_eq!(paged, order);
}
