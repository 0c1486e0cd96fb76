//! Dated org history: "who was X's manager on date D" across changes
//! recorded out of date order (a back-dated correction, a future-dated
//! change, two changes of one date), checked against the domain's own
//! `Person::org_on` folded from the same events.

use chrono::NaiveDate;
use sqlx::PgPool;
use tandem_commands::{Command, CommandService};
use tandem_domain::person::{self, Person, PersonChanges, PersonCommand, RegisterPerson, UpdatePerson};
use tandem_domain::{DomainEvent, PersonId};
use tandem_projections::Projections;
use tandem_projections::queries::{self, PeopleFilter};

use crate::support::{all_events, caught_up, day, email, exec, ext, fast, level, plus, st};

async fn register(
    svc: &CommandService,
    name: &str,
    lvl: i64,
    manager: Option<PersonId>,
    hired_on: NaiveDate,
) -> PersonId {
    let id = PersonId::new();
    let cmd = Command::Person(PersonCommand::Register(RegisterPerson {
        person_id: id,
        external_id: ext(&format!("H-{name}")),
        name: st(name),
        email: email(&format!("{}@example.com", name.to_lowercase())),
        department: st("Engineering"),
        title: st("Engineer"),
        level: level(lvl),
        manager,
        location: None,
        hired_on,
    }));
    exec(svc, cmd).await.expect("register");
    id
}

async fn update(svc: &CommandService, person: PersonId, changes: PersonChanges, effective_on: NaiveDate) {
    let cmd = Command::Person(PersonCommand::Update(UpdatePerson { person_id: person, changes, effective_on }));
    let committed = exec(svc, cmd).await.expect("update");
    assert_eq!(committed.events.len(), 1, "the change is recorded");
}

fn manager(m: PersonId) -> PersonChanges {
    PersonChanges { manager: Some(Some(m)), ..PersonChanges::default() }
}

#[sqlx::test(migrations = "../../migrations")]
async fn manager_as_of_a_date_follows_back_dated_and_future_changes(pool: PgPool) {
    let svc = CommandService::from_pool(pool.clone());
    let hired = day(2020, 1, 1);
    let ann = register(&svc, "Ann", 10, None, day(2010, 1, 1)).await;
    let bob = register(&svc, "Bob", 10, None, day(2010, 1, 1)).await;
    let cat = register(&svc, "Cat", 10, None, day(2010, 1, 1)).await;
    let dan = register(&svc, "Dan", 10, None, day(2010, 1, 1)).await;
    let eve = register(&svc, "Eve", 10, None, day(2010, 1, 1)).await;
    let fay = register(&svc, "Fay", 10, None, day(2010, 1, 1)).await;
    let xia = register(&svc, "Xia", 4, Some(ann), hired).await;

    // Recorded in this order:
    update(&svc, xia, manager(bob), day(2022, 1, 1)).await;
    update(&svc, xia, manager(cat), day(2030, 1, 1)).await; // future-dated
    update(&svc, xia, manager(dan), day(2021, 6, 1)).await; // back-dated correction, between earlier ones
    update(&svc, xia, manager(eve), day(2023, 3, 1)).await;
    update(&svc, xia, manager(fay), day(2023, 3, 1)).await; // same date: recording order wins
    update(&svc, xia, PersonChanges { level: Some(level(5)), ..PersonChanges::default() }, day(2022, 1, 1)).await;
    update(
        &svc,
        xia,
        PersonChanges { department: Some(st("Sales")), manager: Some(None), ..PersonChanges::default() },
        day(2031, 1, 1),
    )
    .await;

    let runner = Projections::new(pool.clone()).options(fast()).spawn().expect("spawn");
    caught_up(&pool, &["people"]).await;

    let expected = [
        (day(2015, 5, 5), Some(ann)), // before the hire date: the registration facts, as the domain answers
        (hired, Some(ann)),
        (day(2021, 5, 31), Some(ann)),
        (day(2021, 6, 1), Some(dan)),
        (day(2021, 12, 31), Some(dan)),
        (day(2022, 1, 1), Some(bob)),
        (day(2023, 2, 28), Some(bob)),
        (day(2023, 3, 1), Some(fay)),
        (day(2029, 12, 31), Some(fay)),
        (day(2030, 1, 1), Some(cat)),
        (day(2031, 1, 1), None),
        (day(2099, 1, 1), None),
    ];
    for (date, want) in expected {
        assert_eq!(queries::manager_on(&pool, xia, date).await.expect("manager"), Some(want), "manager on {date}");
    }

    // Every date across the range agrees with the domain's reference.
    let state: Person = all_events(&pool)
        .await
        .into_iter()
        .filter_map(|(_, e)| match e {
            DomainEvent::Person(p) if p_id(&p) == xia => Some(p),
            _ => None,
        })
        .fold(Person::default(), |s, e| person::evolve(s, &e));
    let mut date = day(2019, 12, 25);
    while date < day(2031, 1, 10) {
        let facts = state.org_on(date).expect("registered");
        let got = queries::org_on(&pool, &[xia], date).await.expect("org").remove(&xia).expect("facts");
        assert_eq!(got.manager_id, facts.manager, "manager on {date}");
        assert_eq!(got.level, i16::from(facts.level.get()), "level on {date}");
        assert_eq!(got.department, facts.department.as_str(), "department on {date}");
        date = plus(date, 17);
    }

    // One range per distinct effective date, plus the first.
    let history = queries::org_history(&pool, xia).await.expect("history");
    let froms: Vec<Option<NaiveDate>> = history.iter().map(|h| h.valid_from).collect();
    assert_eq!(
        froms,
        vec![
            None,
            Some(day(2021, 6, 1)),
            Some(day(2022, 1, 1)),
            Some(day(2023, 3, 1)),
            Some(day(2030, 1, 1)),
            Some(day(2031, 1, 1))
        ]
    );
    assert!(history.windows(2).all(|w| w[0].valid_to == w[1].valid_from), "ranges are contiguous");

    // Reports and filters as of a date.
    assert_eq!(queries::reports_on(&pool, dan, day(2021, 7, 1)).await.expect("reports"), vec![xia]);
    assert!(queries::reports_on(&pool, dan, day(2022, 7, 1)).await.expect("reports").is_empty());
    let level5 = PeopleFilter { level: Some(5), ..PeopleFilter::default() };
    assert!(queries::people(&pool, &level5, day(2021, 1, 1), None, 50).await.expect("people").items.is_empty());
    let page = queries::people(&pool, &level5, day(2022, 1, 1), None, 50).await.expect("people");
    assert_eq!(page.items.iter().map(|p| p.person_id).collect::<Vec<_>>(), vec![xia]);
    // The profile holds the latest recorded facts, future ones included.
    let profile: (String, Option<uuid::Uuid>) =
        sqlx::query_as("SELECT department, manager_id FROM read.people WHERE person_id = $1")
            .bind(xia.as_uuid())
            .fetch_one(&pool)
            .await
            .expect("profile");
    assert_eq!(profile, ("Sales".to_owned(), None));
    runner.shutdown().await;
}

fn p_id(e: &person::PersonEvent) -> PersonId {
    match e {
        person::PersonEvent::PersonRegistered(e) => e.person_id,
        person::PersonEvent::PersonUpdated(e) => e.person_id,
        person::PersonEvent::PersonLeft(e) => e.person_id,
        person::PersonEvent::PersonRejoined(e) => e.person_id,
        person::PersonEvent::PersonErased(e) => e.person_id,
    }
}
