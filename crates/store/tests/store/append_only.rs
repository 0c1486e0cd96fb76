//! The database itself refuses to change or remove stored events.

use sqlx::PgPool;
use tandem_store::{APPEND_ONLY_VIOLATION, EventStore, ExpectedVersion};
use uuid::Uuid;

use crate::common::{events, metadata};

async fn refused(pool: &PgPool, sql: &str, operation: &str) {
    let error = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned())).execute(pool).await.expect_err(sql);
    let db = error.as_database_error().expect("a database error");
    assert_eq!(db.code().as_deref(), Some(APPEND_ONLY_VIOLATION), "{sql}: {db}");
    assert!(db.message().contains(&format!("{operation} is not allowed")), "{sql}: {}", db.message());
}

#[sqlx::test(migrations = "../../migrations")]
async fn update_delete_and_truncate_are_refused(pool: PgPool) {
    let store = EventStore::new(pool.clone());
    let stream = Uuid::now_v7();
    store.append(stream, "kept", ExpectedVersion::NoStream, &events(3), &metadata()).await.expect("append");
    let before = store.read_stream(stream).await.expect("read");

    refused(&pool, "UPDATE events SET data = '{}'", "UPDATE").await;
    refused(&pool, "UPDATE events SET stream_version = stream_version + 10", "UPDATE").await;
    refused(&pool, "DELETE FROM events WHERE stream_version = 2", "DELETE").await;
    refused(&pool, "DELETE FROM events", "DELETE").await;
    refused(&pool, "TRUNCATE events", "TRUNCATE").await;
    refused(&pool, "TRUNCATE events CASCADE", "TRUNCATE").await;

    assert_eq!(store.read_stream(stream).await.expect("read"), before);
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&pool).await.expect("count");
    assert_eq!(count, 3);
}

#[sqlx::test(migrations = "../../migrations")]
async fn roles_other_than_the_owner_have_no_such_privilege(pool: PgPool) {
    let privileges: (bool, bool, bool, bool) = sqlx::query_as(
        "SELECT has_table_privilege('public', 'events', 'UPDATE'), \
                has_table_privilege('public', 'events', 'DELETE'), \
                has_table_privilege('public', 'events', 'TRUNCATE'), \
                has_table_privilege('public', 'events', 'INSERT')",
    )
    .fetch_one(&pool)
    .await
    .expect("privileges");
    assert_eq!(privileges, (false, false, false, false));
}
