//! Personal data in the log is sealed under per-person keys: keys are made
//! with the registration and shredded with the erasure, in the same
//! transaction as the event; a wrong master key is refused; a rotation
//! rewraps keys and reads go on; an erasure racing writes loses nothing
//! and leaves nothing in clear.

use std::sync::Arc;

use sqlx::PgPool;
use tandem_commands::{Command, CommandError, CommandService};
use tandem_domain::DomainEvent;
use tandem_domain::event::StoredEvent;
use tandem_domain::person::{PersonChanges, PersonCommand, UpdatePerson};
use tandem_domain::values::{GroupFormat, Visibility};
use tandem_domain::{PairId, PersonId};
use tandem_store::{DomainUpcaster, EventStore, MasterKey, StoreError, Vault};
use tandem_testkit::fixtures::{feedback_cmd, form_cmd, register_cmd};

use crate::support::{Org, admin, day, text};

const MARK: &str = "mk4w";

/// Every stored payload of the log, as text.
async fn raw_log(pool: &PgPool) -> String {
    let rows: Vec<String> =
        sqlx::query_scalar("SELECT data::text FROM events ORDER BY position").fetch_all(pool).await.unwrap();
    rows.join("\n").to_lowercase()
}

fn service(pool: &PgPool, vault: &Vault) -> CommandService {
    CommandService::new(EventStore::with_upcaster(pool.clone(), Arc::new(DomainUpcaster)).with_vault(vault.clone()))
}

fn store(pool: &PgPool, vault: &Vault) -> EventStore {
    EventStore::with_upcaster(pool.clone(), Arc::new(DomainUpcaster)).with_vault(vault.clone())
}

async fn name_of(store: &EventStore, person: PersonId) -> Result<Option<String>, StoreError> {
    let events = store.read_stream(person.as_uuid()).await?;
    let first = events.first().expect("registered");
    let read =
        StoredEvent::read(first.stream_id, &first.event_type, first.schema_version, first.data.clone()).expect("reads");
    match read.event {
        DomainEvent::Person(tandem_domain::person::PersonEvent::PersonRegistered(e)) => {
            Ok(e.name.map(|n| n.as_str().to_owned()))
        }
        other => panic!("{other:?}"),
    }
}

fn erase(person: PersonId) -> Command {
    Command::Person(PersonCommand::Erase { person_id: person })
}

#[sqlx::test(migrations = "../../migrations")]
async fn the_log_holds_personal_fields_sealed_and_reads_them_back(pool: PgPool) {
    let vault = Vault::new(MasterKey::generate().unwrap());
    let svc = service(&pool, &vault);
    let p = PersonId::new();
    let committed = svc.handle(register_cmd(p, "Mk4w Ada", 3, None, Some("Mk4w Town")), &admin()).await.unwrap();
    // What the command returns is in clear; what the log holds is not.
    assert!(committed.events[0].data.to_string().contains("Mk4w Ada"));
    assert!(!raw_log(&pool).await.contains(MARK), "{}", raw_log(&pool).await);
    assert_eq!(name_of(&store(&pool, &vault), p).await.unwrap().as_deref(), Some("Mk4w Ada"));
    let (master, wrapped): (Option<String>, Option<Vec<u8>>) =
        sqlx::query_as("SELECT master_key_id, wrapped FROM person_keys WHERE person_id = $1")
            .bind(p.as_uuid())
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(master.as_deref(), Some(vault.master().id()));
    assert_eq!(wrapped.map(|w| w.len()), Some(72));

    // Erasure shreds the key with the event: the name reads as erased.
    svc.handle(erase(p), &admin()).await.unwrap();
    let wrapped: Option<Vec<u8>> = sqlx::query_scalar("SELECT wrapped FROM person_keys WHERE person_id = $1")
        .bind(p.as_uuid())
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(wrapped, None);
    assert_eq!(name_of(&store(&pool, &vault), p).await.unwrap(), None);
    // Nothing can be written about them any more.
    let update = Command::Person(PersonCommand::Update(UpdatePerson {
        person_id: p,
        changes: PersonChanges { name: Some(text("Mk4w Again")), ..PersonChanges::default() },
        effective_on: day(2024, 1, 1),
    }));
    assert!(matches!(svc.handle(update, &admin()).await, Err(CommandError::Domain(_))));
    let mut conn = pool.acquire().await.unwrap();
    let err = vault
        .seal(
            &mut conn,
            p.as_uuid(),
            &[tandem_store::NewEvent::new(
                "PersonUpdated",
                1,
                serde_json::json!({
                    "personId": p, "changes": {"name": "Mk4w Again"}, "effectiveOn": "2024-01-01"
                }),
            )],
            &[],
        )
        .await;
    assert!(matches!(err, Err(StoreError::Vault { .. })), "{err:?}");
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_wrong_master_key_is_refused_and_a_rotation_keeps_every_key_readable(pool: PgPool) {
    let old = Vault::new(MasterKey::generate().unwrap());
    let svc = service(&pool, &old);
    let people: Vec<PersonId> = (0..3).map(|_| PersonId::new()).collect();
    for (i, p) in people.iter().enumerate() {
        svc.handle(register_cmd(*p, &format!("Mk4w P{i}"), 3, None, None), &admin()).await.unwrap();
    }
    let mut conn = pool.acquire().await.unwrap();
    assert_eq!(old.check(&mut conn).await.unwrap(), 3);

    // Another master key is refused at the check, naming both key ids,
    // and a read with it fails rather than reading as erased.
    let wrong = Vault::new(MasterKey::generate().unwrap());
    let refused = wrong.check(&mut conn).await.unwrap_err();
    let message = refused.to_string();
    assert!(message.contains(old.master().id()) && message.contains(wrong.master().id()), "{message}");
    assert!(matches!(name_of(&store(&pool, &wrong), people[0]).await, Err(StoreError::Vault { .. })));

    // Rotate: every key is rewrapped, the events are untouched.
    let log_before = raw_log(&pool).await;
    let new_key = MasterKey::generate().unwrap();
    assert_eq!(old.rotate(&mut conn, &new_key).await.unwrap(), 3);
    assert_eq!(raw_log(&pool).await, log_before);
    let new = Vault::new(new_key.clone());
    assert_eq!(new.check(&mut conn).await.unwrap(), 3);
    assert!(old.check(&mut conn).await.is_err(), "the old key alone no longer opens the keys");
    for (i, p) in people.iter().enumerate() {
        assert_eq!(name_of(&store(&pool, &new), *p).await.unwrap(), Some(format!("Mk4w P{i}")));
    }
    // A rotation run again has nothing left to do.
    assert_eq!(new.rotate(&mut conn, &new_key).await.unwrap(), 0);

    // During a rolling rotation a server holds both keys: keys wrapped by
    // either open, and new ones are wrapped by the current key.
    let rolling = Vault::new(MasterKey::generate().unwrap()).with_previous(vec![new_key]);
    let later = PersonId::new();
    service(&pool, &rolling).handle(register_cmd(later, "Mk4w Later", 3, None, None), &admin()).await.unwrap();
    assert_eq!(rolling.check(&mut conn).await.unwrap(), 4);
    assert_eq!(name_of(&store(&pool, &rolling), people[0]).await.unwrap().as_deref(), Some("Mk4w P0"));
    assert_eq!(name_of(&store(&pool, &rolling), later).await.unwrap().as_deref(), Some("Mk4w Later"));
    assert!(new.check(&mut conn).await.is_err(), "the key wrapped by the newest master needs it");
}

/// Erasures raced by writes about the same person (updates of their name,
/// feedback to them from their partner), many rounds: every write either
/// commits (and its events are in the log) or is refused; nothing of them
/// is readable afterwards and nothing is in clear.
#[sqlx::test(migrations = "../../migrations")]
async fn an_erasure_racing_writes_loses_nothing_and_leaves_no_clear_text(pool: PgPool) {
    let org = Arc::new(Org::new(pool.clone()));
    let program = org.launch(2, GroupFormat::PAIRS).await;
    for round in 0..8 {
        let (p, q) = (PersonId::new(), PersonId::new());
        org.run(register_cmd(p, &format!("Mk4w Target{round}"), 3, None, None)).await.unwrap();
        org.run(register_cmd(q, &format!("Partner{round}"), 3, None, None)).await.unwrap();
        org.enrol(program, p).await;
        org.enrol(program, q).await;
        let pair = PairId::new();
        org.run(form_cmd(pair, program, &[p, q])).await.unwrap();
        let before = org.event_count().await;
        let mut tasks = Vec::new();
        for i in 0..4 {
            let o = org.clone();
            tasks.push(tokio::spawn(async move {
                let update = Command::Person(PersonCommand::Update(UpdatePerson {
                    person_id: p,
                    changes: PersonChanges { name: Some(text(&format!("Mk4w Name{i}"))), ..PersonChanges::default() },
                    effective_on: day(2024, 1, 1),
                }));
                o.run(update).await
            }));
            let o = org.clone();
            tasks.push(tokio::spawn(async move {
                o.run(feedback_cmd(pair, q, p, Visibility::Recipient, &format!("mk4w kind words {i}"))).await
            }));
        }
        let o = org.clone();
        let erased = tokio::spawn(async move { o.run(erase(p)).await });
        let mut appended = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(c) => appended += c.events.len() as i64,
                Err(CommandError::Domain(_)) => {}
                Err(other) => panic!("round {round}: {other:?}"),
            }
        }
        let erasure = erased.await.unwrap().unwrap();
        appended += erasure.events.len() as i64;
        assert_eq!(org.event_count().await, before + appended, "round {round}: every committed event is in the log");
    }
    assert!(!raw_log(&pool).await.contains(MARK), "personal data in clear in the log");
    // Every erased person reads as erased, their partner's feedback too.
    let store = org.svc.store().clone();
    let all = store.read_all(tandem_store::Cursor::START, 10_000).await.unwrap();
    for e in &all {
        let read = StoredEvent::read(e.stream_id, &e.event_type, e.schema_version, e.data.clone()).unwrap();
        let text = format!("{:?}", read.event).to_lowercase();
        assert!(!text.contains(MARK), "readable after erasure: {text}");
    }
}

/// The external ids kept in clear beside the events (the HRIS id's claim
/// and a SCIM client's `externalId`) go in the erasure's transaction,
/// whichever way the person is erased.
#[sqlx::test(migrations = "../../migrations")]
async fn an_erasure_removes_the_external_ids_kept_beside_the_events(pool: PgPool) {
    let vault = Vault::new(MasterKey::generate().unwrap());
    let svc = service(&pool, &vault);
    let p = PersonId::new();
    svc.handle(register_cmd(p, "Mk4w Grace", 3, None, None), &admin()).await.unwrap();
    sqlx::query("INSERT INTO scim_external_ids (person_id, external_id) VALUES ($1, 'okta-00u1mk4w')")
        .bind(p.as_uuid())
        .execute(&pool)
        .await
        .unwrap();
    let held = |table: &'static str| {
        let pool = pool.clone();
        async move {
            let sql = format!("SELECT count(*) FROM {table} WHERE person_id = $1");
            sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql)).bind(p.as_uuid()).fetch_one(&pool).await.unwrap()
        }
    };
    assert_eq!((held("person_external_ids").await, held("scim_external_ids").await), (1, 1));
    svc.handle(erase(p), &admin()).await.unwrap();
    assert_eq!((held("person_external_ids").await, held("scim_external_ids").await), (0, 0));
}
