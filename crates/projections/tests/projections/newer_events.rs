//! A log that holds events a newer version of Tandem wrote (an unknown
//! event type, a higher schema version, fields this build does not know)
//! neither stops the live runner nor a rebuild: the events this build
//! understands are applied, the others passed over, and every checkpoint
//! moves past them.

use serde_json::{Value, json};
use sqlx::PgPool;
use tandem_commands::CommandService;
use tandem_projections::{Projections, checkpoints, read_models, rebuild};

use crate::support::history::{hold_session, pairs_world};
use crate::support::{assert_same_tables, caught_up, fast, last_event, snapshot};

/// Appends a row to `stream` (after its last version) as a newer build would.
async fn insert_newer(
    pool: &PgPool,
    stream: uuid::Uuid,
    stream_type: &str,
    event_type: &str,
    version: i16,
    data: Value,
) {
    sqlx::query(
        "INSERT INTO events (stream_id, stream_type, stream_version, event_id, event_type, schema_version, data, metadata) \
         SELECT $1, $2, coalesce(max(stream_version), 0) + 1, $3, $4, $5, $6, $7 FROM events WHERE stream_id = $1",
    )
    .bind(stream)
    .bind(stream_type)
    .bind(uuid::Uuid::now_v7())
    .bind(event_type)
    .bind(version)
    .bind(data)
    .bind(json!({"actor": {"subject": "newer", "role": "admin"}, "correlation_id": uuid::Uuid::now_v7()}))
    .execute(pool)
    .await
    .expect("insert a newer row");
}

#[sqlx::test(migrations = "../../migrations")]
async fn newer_events_are_passed_over_by_the_runner_and_a_rebuild(pool: PgPool) {
    let svc = CommandService::from_pool(pool.clone());
    let (_, pairs) = pairs_world(&svc, 2).await;
    let (pair, a, b) = pairs[0];
    hold_session(&svc, pair, a, b, 1).await;
    // An unknown type in a pair stream, a pair event of a newer version
    // that does not read as today's, and a stream kind this build has never
    // heard of.
    insert_newer(&pool, pair.as_uuid(), "pair", "PairMerged", 1, json!({"pairId": pair, "into": pairs[1].0})).await;
    insert_newer(
        &pool,
        pair.as_uuid(),
        "pair",
        "PairPaused",
        4,
        json!({"pairId": pair, "pause": {"kind": "SABBATICAL"}}),
    )
    .await;
    insert_newer(&pool, uuid::Uuid::now_v7(), "badge", "BadgeAwarded", 1, json!({"to": a})).await;
    // Today's events keep coming after them, on another pair: the command
    // service refuses to decide on a stream holding an event it cannot read.
    let (other, c, d) = pairs[1];
    hold_session(&svc, other, c, d, 2).await;
    let last = last_event(&pool).await;

    let runner = Projections::new(pool.clone()).options(fast()).spawn().expect("spawn");
    caught_up(&pool, &[]).await;
    for c in checkpoints(&pool).await.expect("checkpoints") {
        assert!(c.cursor >= last, "{} moved past every event", c.name);
    }
    let sessions: Vec<(uuid::Uuid, i64)> = sqlx::query_as(
        "SELECT pair_id, count(*) FROM read.sessions WHERE pair_id = ANY($1) GROUP BY pair_id ORDER BY pair_id",
    )
    .bind(vec![pair.as_uuid(), other.as_uuid()])
    .fetch_all(&pool)
    .await
    .expect("sessions");
    let mut expected = vec![(pair.as_uuid(), 1), (other.as_uuid(), 1)];
    expected.sort();
    assert_eq!(sessions, expected, "the sessions on either side of the newer events are applied");
    let status: String = sqlx::query_scalar("SELECT status FROM read.pairs WHERE pair_id = $1")
        .bind(pair.as_uuid())
        .fetch_one(&pool)
        .await
        .expect("pair");
    assert_eq!(status, "ACTIVE", "an event this build cannot read changes nothing");
    let models = read_models();
    let live = snapshot(&pool, "read", &models).await;
    runner.shutdown().await;

    // A replay from zero gets past them too, and builds the same tables.
    rebuild(&pool, None, |_| {}).await.expect("a rebuild over newer events");
    assert_same_tables(&live, &snapshot(&pool, "read", &models).await);
}
