//! Helpers shared by the tests: values, dates, pools, runners, snapshots.

pub mod audit;
pub mod history;

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use serde_json::Value;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tandem_commands::{Command, CommandError, CommandMeta, CommandService, Committed};
use tandem_domain::DomainEvent;
use tandem_domain::values::{Email, ExternalId, Level, LongText, ShortText};
use tandem_projections::{Projection, RunnerOptions, lag};
use tandem_store::{Actor, Cursor, EventStore, RecordedEvent};

pub fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
}

pub fn plus(date: NaiveDate, days: u64) -> NaiveDate {
    date.checked_add_days(chrono::Days::new(days)).expect("date in range")
}

pub fn at(date: NaiveDate, hour: u32) -> DateTime<Utc> {
    Utc.from_utc_datetime(&date.and_hms_opt(hour, 0, 0).expect("valid time"))
}

pub fn st(s: &str) -> ShortText {
    ShortText::parse("text", s).expect("valid short text")
}

pub fn lt(s: &str) -> LongText {
    LongText::parse("text", s).expect("valid long text")
}

pub fn email(s: &str) -> Email {
    Email::parse("email", s).expect("valid email")
}

pub fn ext(s: &str) -> ExternalId {
    ExternalId::parse("externalId", s).expect("valid external id")
}

pub fn level(n: i64) -> Level {
    Level::parse("level", n).expect("valid level")
}

pub fn meta() -> CommandMeta {
    CommandMeta::new(Actor { subject: "admin-1".to_owned(), role: "admin".to_owned() })
}

/// Runs a command; a domain refusal is `None` (generators try things the
/// rules may refuse), anything else fails the test.
pub async fn exec(svc: &CommandService, command: Command) -> Option<Committed> {
    match svc.handle(command, &meta()).await {
        Ok(c) => Some(c),
        Err(CommandError::Domain(_)) => None,
        Err(e) => panic!("command failed: {e:?}"),
    }
}

/// Runner options for tests: short waits so handovers happen within the
/// test's patience.
pub fn fast() -> RunnerOptions {
    RunnerOptions {
        batch_size: 200,
        poll_interval: Duration::from_millis(100),
        standby_retry: Duration::from_millis(100),
        lock_check_interval: Duration::from_millis(200),
        max_backoff: Duration::from_millis(400),
        ..RunnerOptions::default()
    }
}

/// A pool of its own on the test database, like another process would have.
pub async fn another_pool(pool: &PgPool) -> PgPool {
    PgPoolOptions::new()
        .max_connections(6)
        .connect_with((*pool.connect_options()).clone())
        .await
        .expect("connect to the test database")
}

/// Polls `check` until it returns `Some`, failing the test after `limit`.
pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out after {limit:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The cursor of the last event stored, committed or not, horizon or not.
/// Called once the test's writes are done, it is what the projections must
/// reach. (The store's head only shows events below the transaction
/// horizon, which any open transaction in the cluster, e.g. another test's,
/// holds back for a while.)
pub async fn last_event(pool: &PgPool) -> Cursor {
    let row: Option<(String, i64)> = sqlx::query_as(
        "SELECT transaction_id::text, position FROM events ORDER BY transaction_id DESC, position DESC LIMIT 1",
    )
    .fetch_optional(pool)
    .await
    .expect("last event");
    row.map_or(Cursor::START, |(t, p)| Cursor::new(t.parse().expect("xid8"), p))
}

/// Waits until every named projection (Tandem's read models when empty) has
/// applied every event written so far.
pub async fn caught_up(pool: &PgPool, names: &[&str]) {
    let target = last_event(pool).await;
    let names: Vec<String> = if names.is_empty() {
        tandem_projections::read_models().iter().map(|p| p.name().to_owned()).collect()
    } else {
        names.iter().map(|n| (*n).to_owned()).collect()
    };
    eventually(Duration::from_secs(40), "projections to catch up", || async {
        let checkpoints = tandem_projections::checkpoints(pool).await.expect("checkpoints");
        names.iter().all(|n| checkpoints.iter().any(|c| &c.name == n && c.cursor >= target)).then_some(())
    })
    .await;
    // Whatever else they report, lag agrees once the horizon has passed.
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    eventually(Duration::from_secs(40), "lag to reach zero", || async {
        lag(pool, &names).await.expect("lag").iter().all(tandem_projections::ProjectionLag::caught_up).then_some(())
    })
    .await;
}

/// Every event of the log, decoded, in log order.
pub async fn all_events(pool: &PgPool) -> Vec<(RecordedEvent, DomainEvent)> {
    let store = EventStore::new(pool.clone());
    let mut out = Vec::new();
    let mut cursor = Cursor::START;
    loop {
        let batch = store.read_all(cursor, 1000).await.expect("read the log");
        let Some(last) = batch.last() else { break };
        cursor = last.cursor();
        for e in batch {
            let d = DomainEvent::decode(&e.event_type, e.schema_version, e.data.clone()).expect("decode");
            out.push((e, d));
        }
    }
    out
}

/// Every row of every table of the projections in `schema`, as JSON,
/// sorted: two snapshots are equal iff the tables hold the same rows.
pub async fn snapshot(
    pool: &PgPool,
    schema: &str,
    projections: &[std::sync::Arc<dyn Projection>],
) -> BTreeMap<String, Vec<Value>> {
    let mut out = BTreeMap::new();
    for p in projections {
        for table in p.tables() {
            let sql = format!("SELECT to_jsonb(t) FROM \"{schema}\".\"{table}\" t ORDER BY to_jsonb(t)::text");
            let rows: Vec<Value> =
                sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_all(pool).await.expect("snapshot a table");
            out.insert((*table).to_owned(), rows);
        }
    }
    out
}

/// Asserts two snapshots are equal, table by table, naming the first
/// differing row.
pub fn assert_same_tables(left: &BTreeMap<String, Vec<Value>>, right: &BTreeMap<String, Vec<Value>>) {
    assert_eq!(left.keys().collect::<Vec<_>>(), right.keys().collect::<Vec<_>>(), "same tables");
    for (table, rows) in left {
        let other = &right[table];
        assert_eq!(rows.len(), other.len(), "row count of {table}");
        for (a, b) in rows.iter().zip(other) {
            assert_eq!(a, b, "first differing row of {table}");
        }
    }
}

/// A small deterministic generator (xorshift64*), so histories are the
/// same for a seed without a dependency.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1_u64 << 53) as f64 <= p
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[usize::try_from(self.below(items.len() as u64)).expect("index")]
    }

    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = usize::try_from(self.below(i as u64 + 1)).expect("index");
            items.swap(i, j);
        }
    }
}
