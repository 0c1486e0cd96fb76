//! "No authority over one another", checked against the org chart as it was
//! on the formation date, loaded from the person streams.

use sqlx::PgPool;
use tandem_commands::{Command, CommandError};
use tandem_domain::values::GroupFormat;
use tandem_domain::{DomainError, PairId, PersonId, ProgramId};

use tandem_testkit::fixtures;

use crate::support::{Org, day};

fn form_on(program: ProgramId, members: &[PersonId], on: chrono::NaiveDate) -> Command {
    fixtures::form_on_cmd(PairId::new(), program, members, on)
}

#[sqlx::test(migrations = "../../migrations")]
async fn skip_level_manager_cannot_pair_with_report(pool: PgPool) {
    let org = Org::new(pool);
    let program = org.launch(5, GroupFormat::PAIRS).await;
    let top = org.register("Top", 5, None).await;
    let mid = org.register("Mid", 4, Some(top)).await;
    let low = org.register("Low", 3, Some(mid)).await;
    for p in [top, mid, low] {
        org.enrol(program, p).await;
    }
    for members in [[top, low], [low, top]] {
        let r = org.run(form_on(program, &members, day(2024, 2, 1))).await;
        assert!(
            matches!(r, Err(CommandError::Domain(DomainError::AuthorityRelation { manager, report })) if manager == top && report == low),
            "{r:?}"
        );
    }
    let r = org.run(form_on(program, &[mid, low], day(2024, 2, 1))).await;
    assert!(matches!(r, Err(CommandError::Domain(DomainError::AuthorityRelation { .. }))), "{r:?}");
}

/// The chart as of the formation date decides: after a reorganisation the
/// former manager may pair with their former report, but a pair formed
/// (back-dated) before the change may not.
#[sqlx::test(migrations = "../../migrations")]
async fn authority_is_judged_on_the_formation_date(pool: PgPool) {
    let org = Org::new(pool);
    let program = org.launch(5, GroupFormat::PAIRS).await;
    let boss = org.register("Boss", 4, None).await;
    let other_boss = org.register("Other boss", 4, None).await;
    let dev = org.register("Dev", 3, Some(boss)).await;
    for p in [boss, dev] {
        org.enrol(program, p).await;
    }
    org.set_manager(dev, Some(other_boss), day(2024, 6, 1)).await.unwrap();
    let before = org.run(form_on(program, &[boss, dev], day(2024, 5, 31))).await;
    assert!(matches!(before, Err(CommandError::Domain(DomainError::AuthorityRelation { .. }))), "{before:?}");
    org.run(form_on(program, &[boss, dev], day(2024, 6, 1))).await.unwrap();
}

#[sqlx::test(migrations = "../../migrations")]
async fn management_cycles_are_refused(pool: PgPool) {
    let org = Org::new(pool);
    let a = org.register("A", 5, None).await;
    let b = org.register("B", 4, Some(a)).await;
    let c = org.register("C", 3, Some(b)).await;
    let before = org.event_count().await;
    let r = org.set_manager(a, Some(c), day(2024, 1, 1)).await;
    assert!(matches!(r, Err(CommandError::Domain(DomainError::ManagementCycle { .. }))), "{r:?}");
    let r = org.set_manager(a, Some(a), day(2024, 1, 1)).await;
    assert!(matches!(r, Err(CommandError::Domain(DomainError::SelfManagement))), "{r:?}");
    let ghost = PersonId::new();
    let r = org.set_manager(a, Some(ghost), day(2024, 1, 1)).await;
    assert!(matches!(r, Err(CommandError::Domain(DomainError::PersonNotFound(p))) if p == ghost), "{r:?}");
    assert_eq!(org.event_count().await, before);
    // Re-stating the same manager is a no-op that appends nothing.
    let same = org.set_manager(c, Some(b), day(2024, 1, 1)).await.unwrap();
    assert!(same.events.is_empty());
    assert_eq!(org.event_count().await, before);
}

/// A person registered with a v1 `PersonRegistered` (stored before the
/// schema changed) still loads through the upcaster chain.
#[sqlx::test(migrations = "../../migrations")]
async fn old_schema_versions_load_through_the_upcaster(pool: PgPool) {
    let org = Org::new(pool);
    let id = PersonId::new();
    sqlx::query(
        "INSERT INTO events (stream_id, stream_type, stream_version, event_id, event_type, schema_version, data, metadata) \
         VALUES ($1, 'person', 1, $2, 'PersonRegistered', 1, $3, $4)",
    )
    .bind(id.as_uuid())
    .bind(uuid::Uuid::now_v7())
    .bind(serde_json::json!({
        "personId": id, "externalId": "OLD-1", "fullName": "Old Timer", "email": "old@example.com",
        "department": "Ops", "title": "Operator", "level": 3, "manager": null, "hiredOn": "2010-01-01"
    }))
    .bind(serde_json::json!({"actor": {"subject": "import", "role": "integrator"}, "correlation_id": uuid::Uuid::now_v7()}))
    .execute(&org.pool)
    .await
    .unwrap();
    let boss = org.register("Boss", 5, None).await;
    let r = org.set_manager(id, Some(boss), day(2024, 1, 1)).await.unwrap();
    assert_eq!(r.events.len(), 1);
    assert_eq!(r.events[0].event_type, "PersonUpdated");
}
