//! The person stream: registration, dated org changes, leaving, rejoining,
//! erasure; `org_on` and `management_chain`.

use std::collections::BTreeMap;

use tandem_domain::person::{
    ManagerFacts, OrgFacts, Person, PersonChanges, PersonCommand, PersonContext, PersonErased, PersonEvent, PersonLeft,
    PersonRejoined, PersonUpdated, RegisterPerson, UpdatePerson, management_chain,
};
use tandem_domain::values::LeaveReason;
use tandem_domain::{DomainError, ErrorKind, PersonId};

use crate::support::{
    day, email, ext, fold, given, level, manager_changed, person_id, person_registered, person_updated, register,
    registered, st, with_manager,
};

fn ada() -> PersonId {
    person_id(1)
}

fn update(p: PersonId, eff: i64, changes: PersonChanges) -> PersonCommand {
    PersonCommand::Update(UpdatePerson { person_id: p, changes, effective_on: day(eff) })
}

fn left(p: PersonId, on: i64) -> PersonEvent {
    PersonEvent::PersonLeft(PersonLeft { person_id: p, left_on: day(on), reason: LeaveReason::Voluntary })
}

fn erased(p: PersonId) -> PersonEvent {
    PersonEvent::PersonErased(PersonErased { person_id: p })
}

fn rejoined_event(on: i64) -> PersonEvent {
    PersonEvent::PersonRejoined(PersonRejoined { person_id: ada(), rejoined_on: day(on) })
}

fn no_ctx() -> PersonContext {
    PersonContext::default()
}

// ------------------------------------------------------------- register ---

#[test]
fn register_without_manager() {
    let c = register(ada());
    let state =
        given::<PersonEvent>([]).when(PersonCommand::Register(c.clone()), &no_ctx()).then_events([registered(c)]);
    assert!(state.is_registered());
    assert_eq!(state.email.as_ref().map(|e| e.as_str()), Some("ada@example.com"));
    assert_eq!(
        state.org_on(day(0)),
        Some(OrgFacts { manager: None, department: st("Engineering"), title: st("Engineer"), level: level(3) })
    );
}

#[test]
fn register_with_a_manager() {
    let boss = person_id(2);
    let c = RegisterPerson { manager: Some(boss), ..register(ada()) };
    given::<PersonEvent>([])
        .when(PersonCommand::Register(c.clone()), &with_manager(vec![]))
        .then_events([registered(c)]);
}

#[test]
fn register_twice_is_refused() {
    let e = given([person_registered(ada(), 3, None)])
        .when(PersonCommand::Register(register(ada())), &no_ctx())
        .then_error(DomainError::AlreadyExists { entity: "person" });
    assert_eq!(e.code(), "ALREADY_EXISTS");
    assert_eq!(e.kind(), ErrorKind::RuleViolation);
}

#[test]
fn register_with_a_taken_external_id_is_refused() {
    let c = RegisterPerson { external_id: ext("HR-1"), ..register(ada()) };
    let ctx = PersonContext { external_id_taken: true, ..no_ctx() };
    let e = given::<PersonEvent>([])
        .when(PersonCommand::Register(c), &ctx)
        .then_error(DomainError::ExternalIdTaken("HR-1".into()));
    assert_eq!(e.code(), "EXTERNAL_ID_TAKEN");
}

#[test]
fn register_as_ones_own_manager_is_refused() {
    let c = RegisterPerson { manager: Some(ada()), ..register(ada()) };
    given::<PersonEvent>([])
        .when(PersonCommand::Register(c), &with_manager(vec![]))
        .then_error(DomainError::SelfManagement);
}

#[test]
fn register_with_an_unknown_manager_is_refused() {
    let boss = person_id(2);
    let c = RegisterPerson { manager: Some(boss), ..register(ada()) };
    given::<PersonEvent>([])
        .when(PersonCommand::Register(c.clone()), &no_ctx())
        .then_error(DomainError::PersonNotFound(boss));
    let ctx = PersonContext { manager: Some(ManagerFacts::default()), ..no_ctx() };
    let e =
        given::<PersonEvent>([]).when(PersonCommand::Register(c), &ctx).then_error(DomainError::PersonNotFound(boss));
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert_eq!(e.code(), "PERSON_NOT_FOUND");
}

#[test]
fn register_with_a_manager_who_left_is_refused() {
    let boss = person_id(2);
    let c = RegisterPerson { manager: Some(boss), ..register(ada()) };
    let ctx = PersonContext { manager: Some(ManagerFacts { exists: true, left: true, chain: vec![] }), ..no_ctx() };
    given::<PersonEvent>([]).when(PersonCommand::Register(c), &ctx).then_error(DomainError::PersonHasLeft(boss));
}

#[test]
fn register_closing_a_management_cycle_is_refused() {
    // The would-be manager is (indirectly) managed by the newcomer.
    let boss = person_id(2);
    let c = RegisterPerson { manager: Some(boss), ..register(ada()) };
    let e = given::<PersonEvent>([])
        .when(PersonCommand::Register(c), &with_manager(vec![person_id(3), ada()]))
        .then_error(DomainError::ManagementCycle { person: ada(), manager: boss });
    assert_eq!(e.code(), "MANAGEMENT_CYCLE");
}

// --------------------------------------------------------------- update ---

#[test]
fn update_profile_fields() {
    let changes = PersonChanges {
        name: Some(st("Ada King")),
        email: Some(email("ada@lovelace.org")),
        location: Some(None),
        ..PersonChanges::default()
    };
    let state = given([person_registered(ada(), 3, None)])
        .when(update(ada(), 10, changes.clone()), &no_ctx())
        .then_events([person_updated(ada(), day(10), changes)]);
    assert_eq!(state.name, Some(st("Ada King")));
    assert_eq!(state.location, None);
    assert!(state.org_changes.is_empty(), "profile changes are not org changes");
}

#[test]
fn update_that_changes_nothing_appends_nothing() {
    let history = [person_registered(ada(), 3, Some(person_id(2)))];
    let same = PersonChanges {
        name: Some(st("Ada Lovelace")),
        email: Some(email("ada@EXAMPLE.com")),
        department: Some(st("Engineering")),
        title: Some(st("Engineer")),
        level: Some(level(3)),
        manager: Some(Some(person_id(2))),
        location: Some(Some(st("Berlin"))),
    };
    given(history.clone()).when(update(ada(), 5, same), &with_manager(vec![])).then_nothing();
    given(history).when(update(ada(), 5, PersonChanges::default()), &no_ctx()).then_nothing();
}

#[test]
fn update_keeps_only_what_changes() {
    let changes = PersonChanges { name: Some(st("Ada Lovelace")), level: Some(level(4)), ..PersonChanges::default() };
    given([person_registered(ada(), 3, None)]).when(update(ada(), 30, changes), &no_ctx()).then_events([
        person_updated(ada(), day(30), PersonChanges { level: Some(level(4)), ..PersonChanges::default() }),
    ]);
}

#[test]
fn an_unchanged_manager_is_not_checked_again() {
    // A repeated HRIS sync names the same manager, who has since left:
    // nothing changes, so nothing is refused.
    let boss = person_id(2);
    let ctx = PersonContext { manager: Some(ManagerFacts { exists: true, left: true, chain: vec![] }), ..no_ctx() };
    let same = PersonChanges { manager: Some(Some(boss)), ..PersonChanges::default() };
    given([person_registered(ada(), 3, Some(boss))]).when(update(ada(), 40, same), &ctx).then_nothing();
}

#[test]
fn back_dated_org_change() {
    let (boss, later_boss) = (person_id(2), person_id(3));
    // Recorded after a change effective on day 60, effective on day 20.
    let history = [person_registered(ada(), 3, None), manager_changed(ada(), day(60), Some(later_boss))];
    let changes = PersonChanges { manager: Some(Some(boss)), ..PersonChanges::default() };
    let state = given(history)
        .when(update(ada(), 20, changes.clone()), &with_manager(vec![]))
        .then_events([person_updated(ada(), day(20), changes)]);
    assert_eq!(state.org_on(day(19)).unwrap().manager, None);
    assert_eq!(state.org_on(day(20)).unwrap().manager, Some(boss));
    assert_eq!(state.org_on(day(59)).unwrap().manager, Some(boss));
    assert_eq!(state.org_on(day(60)).unwrap().manager, Some(later_boss));
}

#[test]
fn future_dated_org_change() {
    let changes =
        PersonChanges { level: Some(level(5)), title: Some(st("Staff Engineer")), ..PersonChanges::default() };
    let state = given([person_registered(ada(), 3, None)])
        .when(update(ada(), 400, changes.clone()), &no_ctx())
        .then_events([person_updated(ada(), day(400), changes)]);
    assert_eq!(state.org_on(day(399)).unwrap().level, level(3));
    assert_eq!(state.org_on(day(400)).unwrap().level, level(5));
    assert_eq!(state.org_latest().unwrap().title, st("Staff Engineer"));
}

#[test]
fn no_op_detection_uses_the_facts_of_the_effective_date() {
    // Promoted to 5 from day 100: "level 5 from day 50" is a change, "level 5 from day 150" is not.
    let history = [person_registered(ada(), 3, None), person_updated(ada(), day(100), lvl_change(5))];
    given(history.clone()).when(update(ada(), 150, lvl_change(5)), &no_ctx()).then_nothing();
    given(history).when(update(ada(), 50, lvl_change(5)), &no_ctx()).then_events([person_updated(
        ada(),
        day(50),
        lvl_change(5),
    )]);
}

fn lvl_change(n: i64) -> PersonChanges {
    PersonChanges { level: Some(level(n)), ..PersonChanges::default() }
}

#[test]
fn update_can_clear_the_manager() {
    let boss = person_id(2);
    let changes = PersonChanges { manager: Some(None), ..PersonChanges::default() };
    let state = given([person_registered(ada(), 3, Some(boss))])
        .when(update(ada(), 10, changes.clone()), &no_ctx())
        .then_events([person_updated(ada(), day(10), changes)]);
    assert_eq!(state.org_on(day(9)).unwrap().manager, Some(boss));
    assert_eq!(state.org_on(day(10)).unwrap().manager, None);
}

#[test]
fn update_refusals_about_the_manager() {
    let history = [person_registered(ada(), 3, None)];
    let to = |m| PersonChanges { manager: Some(Some(m)), ..PersonChanges::default() };
    let boss = person_id(2);
    given(history.clone())
        .when(update(ada(), 1, to(ada())), &with_manager(vec![]))
        .then_error(DomainError::SelfManagement);
    given(history.clone()).when(update(ada(), 1, to(boss)), &no_ctx()).then_error(DomainError::PersonNotFound(boss));
    let gone = PersonContext { manager: Some(ManagerFacts { exists: true, left: true, chain: vec![] }), ..no_ctx() };
    given(history.clone()).when(update(ada(), 1, to(boss)), &gone).then_error(DomainError::PersonHasLeft(boss));
    // boss is managed by ada: ada cannot report to boss.
    given(history)
        .when(update(ada(), 1, to(boss)), &with_manager(vec![ada()]))
        .then_error(DomainError::ManagementCycle { person: ada(), manager: boss });
}

#[test]
fn update_refused_for_unknown_or_erased() {
    let c = || update(ada(), 1, PersonChanges { title: Some(st("Lead")), ..PersonChanges::default() });
    given::<PersonEvent>([]).when(c(), &no_ctx()).then_error(DomainError::PersonNotFound(ada()));
    let e = given([person_registered(ada(), 3, None), erased(ada())])
        .when(c(), &no_ctx())
        .then_error(DomainError::PersonErased(ada()));
    assert_eq!(e.code(), "PERSON_ERASED");
}

// ------------------------------------------------------ leave and rejoin ---

#[test]
fn record_left() {
    let state = given([person_registered(ada(), 3, None)])
        .when(
            PersonCommand::RecordLeft { person_id: ada(), left_on: day(30), reason: LeaveReason::Voluntary },
            &no_ctx(),
        )
        .then_events([left(ada(), 30)]);
    assert!(state.has_left());
}

#[test]
fn record_left_refusals() {
    let cmd = |on| PersonCommand::RecordLeft { person_id: ada(), left_on: day(on), reason: LeaveReason::Other };
    given::<PersonEvent>([]).when(cmd(5), &no_ctx()).then_error(DomainError::PersonNotFound(ada()));
    given([person_registered(ada(), 3, None), left(ada(), 3)])
        .when(cmd(5), &no_ctx())
        .then_error(DomainError::PersonHasLeft(ada()));
    given([person_registered(ada(), 3, None)]).when(cmd(-1), &no_ctx()).then_invalid("leftOn");
    given([person_registered(ada(), 3, None)]).when(cmd(0), &no_ctx()).then_events([PersonEvent::PersonLeft(
        PersonLeft { person_id: ada(), left_on: day(0), reason: LeaveReason::Other },
    )]);
}

#[test]
fn rejoin() {
    let state = given([person_registered(ada(), 3, None), left(ada(), 30)])
        .when(PersonCommand::Rejoin { person_id: ada(), rejoined_on: day(90) }, &no_ctx())
        .then_events([rejoined_event(90)]);
    assert!(!state.has_left());
    // Back at work, the person can be updated again.
    let title = PersonChanges { title: Some(st("Lead")), ..PersonChanges::default() };
    given([person_registered(ada(), 3, None), left(ada(), 30), rejoined_event(90)])
        .when(update(ada(), 95, title.clone()), &no_ctx())
        .then_events([person_updated(ada(), day(95), title)]);
    // Rejoining on the day of leaving is fine.
    given([person_registered(ada(), 3, None), left(ada(), 30)])
        .when(PersonCommand::Rejoin { person_id: ada(), rejoined_on: day(30) }, &no_ctx())
        .then_events([rejoined_event(30)]);
}

#[test]
fn rejoin_refusals() {
    let cmd = |on| PersonCommand::Rejoin { person_id: ada(), rejoined_on: day(on) };
    let e = given([person_registered(ada(), 3, None)])
        .when(cmd(5), &no_ctx())
        .then_error(DomainError::PersonHasNotLeft(ada()));
    assert_eq!(e.code(), "PERSON_HAS_NOT_LEFT");
    given([person_registered(ada(), 3, None), left(ada(), 30)]).when(cmd(29), &no_ctx()).then_invalid("rejoinedOn");
    given::<PersonEvent>([]).when(cmd(5), &no_ctx()).then_error(DomainError::PersonNotFound(ada()));
}

// ---------------------------------------------------------------- erase ---

#[test]
fn erase_forgets_personal_data() {
    let state = given([person_registered(ada(), 3, None)])
        .when(PersonCommand::Erase { person_id: ada() }, &no_ctx())
        .then_events([erased(ada())]);
    assert!(state.erased);
    assert_eq!((state.name, state.email, state.location), (None, None, None));
    // A person who left may be erased too.
    given([person_registered(ada(), 3, None), left(ada(), 3)])
        .when(PersonCommand::Erase { person_id: ada() }, &no_ctx())
        .then_events([erased(ada())]);
}

#[test]
fn an_erased_person_accepts_no_command() {
    let history = [person_registered(ada(), 3, None), left(ada(), 3), erased(ada())];
    let commands = [
        update(ada(), 5, PersonChanges { name: Some(st("X")), ..PersonChanges::default() }),
        PersonCommand::RecordLeft { person_id: ada(), left_on: day(5), reason: LeaveReason::Involuntary },
        PersonCommand::Rejoin { person_id: ada(), rejoined_on: day(5) },
        PersonCommand::Erase { person_id: ada() },
    ];
    for c in commands {
        given(history.clone()).when(c, &no_ctx()).then_error(DomainError::PersonErased(ada()));
    }
    given(history)
        .when(PersonCommand::Register(register(ada())), &no_ctx())
        .then_error(DomainError::AlreadyExists { entity: "person" });
    given::<PersonEvent>([])
        .when(PersonCommand::Erase { person_id: ada() }, &no_ctx())
        .then_error(DomainError::PersonNotFound(ada()));
}

#[test]
fn command_accessors() {
    let boss = person_id(2);
    let reg = PersonCommand::Register(RegisterPerson { manager: Some(boss), hired_on: day(7), ..register(ada()) });
    assert_eq!((reg.person_id(), reg.new_manager(), reg.effective_on()), (ada(), Some(boss), Some(day(7))));
    let clear = update(ada(), 9, PersonChanges { manager: Some(None), ..PersonChanges::default() });
    assert_eq!((clear.new_manager(), clear.effective_on()), (None, Some(day(9))));
    let erase = PersonCommand::Erase { person_id: ada() };
    assert_eq!((erase.person_id(), erase.new_manager(), erase.effective_on()), (ada(), None, None));
}

// ------------------------------------------------------- org_on / chain ---

#[test]
fn org_on_answers_who_managed_whom_on_a_date() {
    let (m1, m2, m3, m4) = (person_id(11), person_id(12), person_id(13), person_id(14));
    let p = fold([
        person_registered(ada(), 3, Some(m1)),
        manager_changed(ada(), day(100), Some(m2)),
        manager_changed(ada(), day(200), Some(m3)),
        // Recorded last, effective before the change of day 200.
        manager_changed(ada(), day(150), Some(m4)),
        person_updated(ada(), day(120), lvl_change(4)),
    ]);
    let manager_on = |d| p.org_on(day(d)).unwrap().manager;
    assert_eq!(manager_on(-30), Some(m1), "before the hire date: the registration facts");
    assert_eq!(manager_on(0), Some(m1));
    assert_eq!(manager_on(99), Some(m1));
    assert_eq!(manager_on(100), Some(m2));
    assert_eq!(manager_on(149), Some(m2));
    assert_eq!(manager_on(150), Some(m4));
    assert_eq!(manager_on(199), Some(m4));
    assert_eq!(manager_on(200), Some(m3));
    assert_eq!(p.org_latest().unwrap().manager, Some(m3));
    // Unrelated fields keep their own history.
    assert_eq!(p.org_on(day(119)).unwrap().level, level(3));
    assert_eq!(p.org_on(day(150)).unwrap().level, level(4));
    assert_eq!(p.org_on(day(150)).unwrap().department, st("Engineering"));
}

#[test]
fn org_on_same_day_changes_the_later_recorded_wins() {
    let (m1, m2) = (person_id(11), person_id(12));
    let p = fold([
        person_registered(ada(), 3, None),
        manager_changed(ada(), day(50), Some(m1)),
        manager_changed(ada(), day(80), None),
        manager_changed(ada(), day(50), Some(m2)),
    ]);
    assert_eq!(p.org_on(day(50)).unwrap().manager, Some(m2));
    assert_eq!(p.org_on(day(79)).unwrap().manager, Some(m2));
    assert_eq!(p.org_on(day(80)).unwrap().manager, None);
}

#[test]
fn org_on_of_an_unregistered_person_is_none() {
    assert_eq!(Person::default().org_on(day(0)), None);
    assert_eq!(Person::default().org_latest(), None);
}

#[test]
fn management_chain_walks_up_to_the_top() {
    let [a, b, c, d] = [1, 2, 3, 4].map(person_id);
    let managers = BTreeMap::from([(a, b), (b, c), (c, d)]);
    assert_eq!(management_chain(a, |p| managers.get(&p).copied()), vec![b, c, d]);
    assert_eq!(management_chain(c, |p| managers.get(&p).copied()), vec![d]);
    assert_eq!(management_chain(d, |p| managers.get(&p).copied()), Vec::<PersonId>::new());
}

#[test]
fn management_chain_stops_on_a_cycle() {
    let [a, b, c, d] = [1, 2, 3, 4].map(person_id);
    let managers = BTreeMap::from([(a, b), (b, c), (c, a), (d, a)]);
    assert_eq!(management_chain(a, |p| managers.get(&p).copied()), vec![b, c]);
    assert_eq!(management_chain(d, |p| managers.get(&p).copied()), vec![a, b, c]);
    let me = BTreeMap::from([(a, a)]);
    assert_eq!(management_chain(a, |p| me.get(&p).copied()), Vec::<PersonId>::new());
}

#[test]
fn management_chain_with_dated_org_history() {
    let [a, b, c, d] = [1, 2, 3, 4].map(person_id);
    let people: BTreeMap<PersonId, Person> = [
        (a, fold([person_registered(a, 2, Some(b)), manager_changed(a, day(100), Some(d))])),
        (b, fold([person_registered(b, 3, Some(c))])),
        (c, fold([person_registered(c, 4, None)])),
        (d, fold([person_registered(d, 5, None), manager_changed(d, day(50), Some(c))])),
    ]
    .into();
    let chain_on = |p: PersonId, on| {
        management_chain(p, |x| people.get(&x).and_then(|q| q.org_on(day(on))).and_then(|o| o.manager))
    };
    assert_eq!(chain_on(a, 10), vec![b, c]);
    assert_eq!(chain_on(a, 100), vec![d, c]);
    assert_eq!(chain_on(d, 10), Vec::<PersonId>::new());
}

#[test]
fn a_leaver_may_be_corrected() {
    // The HRIS corrects a leaver's title after the fact; the correction is
    // recorded and they stay gone.
    let c = update(ada(), 1, PersonChanges { title: Some(st("Lead")), ..PersonChanges::default() });
    let state = given([person_registered(ada(), 3, None), left(ada(), 10)]).when(c, &no_ctx()).then_events([
        PersonEvent::PersonUpdated(PersonUpdated {
            person_id: ada(),
            changes: PersonChanges { title: Some(st("Lead")), ..PersonChanges::default() },
            effective_on: day(1),
        }),
    ]);
    assert!(state.has_left());
}
