//! The database of a test.
//!
//! `#[sqlx::test(migrations = "../../migrations")]` gives every test a
//! database of its own with the workspace migrations applied, so tests run
//! in parallel on one cluster; the pool it hands over is small. This module
//! adds what a test needs beside that pool: a pool of its own like another
//! process would have, a bare connection, the URL of the database for a
//! child process, and the log's last cursor.

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection as _, PgConnection, PgPool};
use tandem_store::Cursor;

/// The connect options of the test database, as the test pool has them.
pub fn options(pool: &PgPool) -> PgConnectOptions {
    (*pool.connect_options()).clone()
}

/// A pool of its own on the test database, like another process would have.
pub async fn another_pool(pool: &PgPool) -> PgPool {
    PgPoolOptions::new().max_connections(6).connect_with(options(pool)).await.expect("connect to the test database")
}

/// A connection of its own (not from the test pool), to the test database.
pub async fn connect(pool: &PgPool) -> PgConnection {
    PgConnection::connect_with(&options(pool)).await.expect("connect to the test database")
}

/// The URL of the test database, for a child process: `DATABASE_URL` (the
/// server the tests run on) with the test's own database name.
pub fn database_url(pool: &PgPool) -> String {
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL names the test server");
    let db = pool.connect_options().get_database().expect("the test pool names its database").to_owned();
    let (server, _) = base.rsplit_once('/').expect("DATABASE_URL ends in /database");
    format!("{server}/{db}")
}

/// How many events the log holds.
pub async fn event_count(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(pool).await.expect("count the events")
}

/// The cursor of the last event stored, committed or not, horizon or not.
/// Called once the test's writes are done, it is what the projections must
/// reach. (The store's head only shows events below the event writers'
/// horizon, which a writer that is still open holds back.)
pub async fn last_event(pool: &PgPool) -> Cursor {
    let row: Option<(String, i64)> = sqlx::query_as(
        // `events.`: the bare name would sort by the text output column,
        // which puts "99999" after "100000".
        "SELECT transaction_id::text, position FROM events \
         ORDER BY events.transaction_id DESC, events.position DESC LIMIT 1",
    )
    .fetch_optional(pool)
    .await
    .expect("last event");
    row.map_or(Cursor::START, |(t, p)| Cursor::new(t.parse().expect("xid8"), p))
}
