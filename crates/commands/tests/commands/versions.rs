//! What the command service counts when it commits, and what it does with
//! a stream that holds events a newer version of Tandem wrote.

use prometheus::Registry;
use serde_json::{Value, json};
use sqlx::PgPool;
use tandem_commands::{CommandError, CommandService, EVENTS_APPENDED};
use tandem_domain::PersonId;
use tandem_domain::event::CodecError;
use tandem_domain::values::GroupFormat;

use crate::support::{Org, admin, day};

/// The value of the committed-events counter for `event_type`.
fn appended(registry: &Registry, event_type: &str) -> u64 {
    registry
        .gather()
        .iter()
        .filter(|f| f.name() == EVENTS_APPENDED)
        .flat_map(|f| f.get_metric())
        .filter(|m| m.get_label().iter().any(|l| l.name() == "event_type" && l.value() == event_type))
        .map(|m| m.get_counter().get_value() as u64)
        .sum()
}

#[sqlx::test(migrations = "../../migrations")]
async fn commits_are_counted_and_idempotent_replays_are_not(pool: PgPool) {
    let registry = Registry::new();
    let org = Org { svc: CommandService::from_pool(pool.clone()).with_metrics(&registry).unwrap(), pool };
    let program = org.launch(2, GroupFormat::PAIRS).await;
    let (a, b) = (org.register("Ann", 3, None).await, org.register("Bob", 3, None).await);
    org.enrol(program, a).await;
    org.enrol(program, b).await;
    assert_eq!(appended(&registry, "PersonRegistered"), 2);
    assert_eq!(appended(&registry, "ParticipantEnrolled"), 2);

    let meta = admin().with_idempotency_key("form-once");
    // The retry is the same command (the same pair id), as a client resends it.
    let command = crate::support::Org::form_cmd(program, &[a, b]);
    let first = org.svc.handle(command.clone(), &meta).await.unwrap();
    assert!(!first.replayed);
    assert_eq!(appended(&registry, "PairFormed"), 1);
    let again = org.svc.handle(command, &meta).await.unwrap();
    assert!(again.replayed);
    assert_eq!(again.events, first.events);
    assert_eq!(appended(&registry, "PairFormed"), 1, "a replay appends nothing and counts nothing");

    // A refused command counts nothing either.
    assert!(org.form(program, &[a, b]).await.is_err());
    assert_eq!(appended(&registry, "PairFormed"), 1);

    // One counter per registry: a second service cannot register it again.
    assert!(CommandService::from_pool(org.pool.clone()).with_metrics(&registry).is_err());
}

/// Inserts a row into a person's stream as another version of Tandem would.
async fn insert(pool: &PgPool, person: PersonId, version: i32, event_type: &str, schema_version: i16, data: Value) {
    sqlx::query(
        "INSERT INTO events (stream_id, stream_type, stream_version, event_id, event_type, schema_version, data, metadata) \
         VALUES ($1, 'person', $2, $3, $4, $5, $6, $7)",
    )
    .bind(person.as_uuid())
    .bind(version)
    .bind(uuid::Uuid::now_v7())
    .bind(event_type)
    .bind(schema_version)
    .bind(data)
    .bind(json!({"actor": {"subject": "newer", "role": "admin"}, "correlation_id": uuid::Uuid::now_v7()}))
    .execute(pool)
    .await
    .unwrap();
}

/// A newer version that only added fields is understood: the service
/// decides on the stream as usual. An event it cannot interpret makes it
/// refuse to decide on that stream (it cannot know what the event
/// changed), without writing anything; other streams are unaffected.
#[sqlx::test(migrations = "../../migrations")]
async fn newer_events_in_a_stream(pool: PgPool) {
    let org = Org::new(pool.clone());
    let ann = org.register("Ann", 3, None).await;
    let changes = json!({
        "personId": ann, "changes": {"title": "Lead", "pronouns": "she/her"}, "effectiveOn": "2024-05-01",
        "approvedBy": "hr"
    });
    insert(&pool, ann, 2, "PersonUpdated", 5, changes).await;
    let left = org
        .run(tandem_commands::Command::Person(tandem_domain::person::PersonCommand::RecordLeft {
            person_id: ann,
            left_on: day(2024, 6, 1),
            reason: tandem_domain::values::LeaveReason::Voluntary,
        }))
        .await
        .expect("an additive newer version is understood");
    assert_eq!(left.events.len(), 1);
    assert_eq!(left.events[0].stream_version, 3);

    let bob = org.register("Bob", 3, None).await;
    insert(&pool, bob, 2, "PersonBadgeAwarded", 1, json!({"personId": bob, "badge": "gold"})).await;
    let before = org.event_count().await;
    match org.set_manager(bob, Some(ann), day(2024, 7, 1)).await {
        Err(CommandError::Corrupt(CodecError::UnknownEventType(t))) => assert_eq!(t, "PersonBadgeAwarded"),
        other => panic!("expected a refusal to decide, got {other:?}"),
    }
    assert_eq!(org.event_count().await, before);
    // Another person's stream is not affected.
    let cid = org.register("Cid", 3, None).await;
    org.set_manager(cid, Some(ann), day(2024, 7, 1)).await.expect("other streams decide as usual");
}
