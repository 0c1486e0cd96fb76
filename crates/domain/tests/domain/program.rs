//! The program stream: launch, settings, enrolment, withdrawal, closing.

use tandem_domain::program::{
    EnrolParticipant, LaunchProgram, MAX_TAGS, ParticipantFacts, ParticipantWithdrew, ProgramChanges, ProgramClosed,
    ProgramCommand, ProgramContext, ProgramEvent, ProgramUpdated,
};
use tandem_domain::values::LongText;
use tandem_domain::{DomainError, ErrorKind, PersonId, ProgramId};

use crate::support::{circles, day, enrolled, gap, given, launch, launched, lt, person_id, program_id, st};

fn prog() -> ProgramId {
    program_id(1)
}

fn ada() -> PersonId {
    person_id(1)
}

fn no_ctx() -> ProgramContext {
    ProgramContext::default()
}

fn present() -> ProgramContext {
    ProgramContext { person: Some(ParticipantFacts { exists: true, ..ParticipantFacts::default() }) }
}

fn launched_default() -> ProgramEvent {
    launched(launch(prog()))
}

fn closed(on: i64) -> ProgramEvent {
    ProgramEvent::ProgramClosed(ProgramClosed { program_id: prog(), closed_on: day(on), reason: lt("done") })
}

fn enrol(p: PersonId, on: i64) -> EnrolParticipant {
    EnrolParticipant {
        program_id: prog(),
        person_id: p,
        enrolled_on: day(on),
        interests: vec![],
        skills: vec![],
        wants_to_work_on: LongText::default(),
    }
}

fn withdraw(p: PersonId, on: i64) -> ProgramCommand {
    ProgramCommand::Withdraw { program_id: prog(), person_id: p, withdrew_on: day(on), reason: lt("busy") }
}

fn withdrew(p: PersonId, on: i64) -> ProgramEvent {
    ProgramEvent::ParticipantWithdrew(ParticipantWithdrew {
        program_id: prog(),
        person_id: p,
        withdrew_on: day(on),
        reason: lt("busy"),
    })
}

fn update(changes: ProgramChanges) -> ProgramCommand {
    ProgramCommand::Update { program_id: prog(), changes }
}

// --------------------------------------------------------------- launch ---

#[test]
fn launch_a_program_of_pairs_or_circles() {
    let c = launch(prog());
    let state = given::<ProgramEvent>([]).when(ProgramCommand::Launch(c.clone()), &no_ctx()).then_events([launched(c)]);
    assert!(state.is_launched() && !state.is_closed());
    let c = LaunchProgram { format: circles(3, 5), ends_on: Some(day(0)), ..launch(prog()) };
    given::<ProgramEvent>([]).when(ProgramCommand::Launch(c.clone()), &no_ctx()).then_events([launched(c)]);
}

#[test]
fn launch_refusals() {
    given([launched_default()])
        .when(ProgramCommand::Launch(launch(prog())), &no_ctx())
        .then_error(DomainError::AlreadyExists { entity: "program" });
    let c = LaunchProgram { ends_on: Some(day(-1)), ..launch(prog()) };
    given::<ProgramEvent>([]).when(ProgramCommand::Launch(c), &no_ctx()).then_invalid("endsOn");
}

// --------------------------------------------------------------- update ---

#[test]
fn update_settings() {
    let changes = ProgramChanges {
        name: Some(st("Peer coaching 2025")),
        max_level_gap: Some(gap(3)),
        ends_on: Some(Some(day(365))),
        ..ProgramChanges::default()
    };
    let state = given([launched_default()])
        .when(update(changes.clone()), &no_ctx())
        .then_events([ProgramEvent::ProgramUpdated(ProgramUpdated { program_id: prog(), changes })]);
    assert_eq!(state.max_level_gap, Some(gap(3)));
    assert_eq!(state.ends_on, Some(day(365)));

    let clear = ProgramChanges { ends_on: Some(None), ..ProgramChanges::default() };
    // Clearing an end date that is not set is no change.
    given([launched_default()]).when(update(clear.clone()), &no_ctx()).then_nothing();
    let with_end = launched(LaunchProgram { ends_on: Some(day(90)), ..launch(prog()) });
    let state = given([with_end])
        .when(update(clear.clone()), &no_ctx())
        .then_events([ProgramEvent::ProgramUpdated(ProgramUpdated { program_id: prog(), changes: clear })]);
    assert_eq!(state.ends_on, None);
}

#[test]
fn update_that_changes_nothing_appends_nothing() {
    let c = launch(prog());
    let same = ProgramChanges {
        name: Some(c.name.clone()),
        description: Some(c.description.clone()),
        max_level_gap: Some(c.max_level_gap),
        cadence_days: Some(c.cadence_days),
        ends_on: Some(None),
    };
    given([launched(c)]).when(update(same), &no_ctx()).then_nothing();
    given([launched_default()]).when(update(ProgramChanges::default()), &no_ctx()).then_nothing();
}

#[test]
fn update_keeps_only_what_changes() {
    let c = launch(prog());
    let changes =
        ProgramChanges { name: Some(c.name.clone()), description: Some(lt("New text")), ..ProgramChanges::default() };
    given([launched(c)]).when(update(changes), &no_ctx()).then_events([ProgramEvent::ProgramUpdated(ProgramUpdated {
        program_id: prog(),
        changes: ProgramChanges { description: Some(lt("New text")), ..ProgramChanges::default() },
    })]);
}

#[test]
fn update_refusals() {
    let end_before_start = ProgramChanges { ends_on: Some(Some(day(-1))), ..ProgramChanges::default() };
    given([launched_default()]).when(update(end_before_start), &no_ctx()).then_invalid("endsOn");
    let rename = || ProgramChanges { name: Some(st("Renamed")), ..ProgramChanges::default() };
    let e =
        given::<ProgramEvent>([]).when(update(rename()), &no_ctx()).then_error(DomainError::ProgramNotFound(prog()));
    assert_eq!((e.code(), e.kind()), ("PROGRAM_NOT_FOUND", ErrorKind::NotFound));
    let e = given([launched_default(), closed(10)])
        .when(update(rename()), &no_ctx())
        .then_error(DomainError::ProgramClosed(prog()));
    assert_eq!((e.code(), e.kind()), ("PROGRAM_CLOSED", ErrorKind::RuleViolation));
}

// ---------------------------------------------------------------- enrol ---

#[test]
fn enrol_a_participant() {
    let c = enrol(ada(), 3);
    let state = given([launched_default()]).when(ProgramCommand::Enrol(c), &present()).then_events([enrolled(
        prog(),
        ada(),
        day(3),
    )]);
    assert!(state.is_enrolled(ada()));
    assert_eq!(state.participants[&ada()].enrolled_on, day(3));
}

#[test]
fn enrol_deduplicates_tags_ignoring_case() {
    let c = EnrolParticipant {
        interests: vec![st("Rust"), st("rust"), st("Go")],
        skills: vec![st("Listening")],
        wants_to_work_on: lt("Giving feedback"),
        ..enrol(ada(), 3)
    };
    let events = given([launched_default()]).when(ProgramCommand::Enrol(c), &present()).events();
    let [ProgramEvent::ParticipantEnrolled(e)] = events.as_slice() else { panic!("one enrolment: {events:?}") };
    assert_eq!(e.interests, vec![st("Rust"), st("Go")]);
    assert_eq!(e.skills, vec![st("Listening")]);
}

#[test]
fn enrol_refuses_too_many_tags() {
    let many: Vec<_> = (0..=MAX_TAGS).map(|i| st(&format!("tag {i}"))).collect();
    let c = EnrolParticipant { interests: many.clone(), ..enrol(ada(), 3) };
    given([launched_default()]).when(ProgramCommand::Enrol(c), &present()).then_invalid("interests");
    let c = EnrolParticipant { skills: many, ..enrol(ada(), 3) };
    given([launched_default()]).when(ProgramCommand::Enrol(c), &present()).then_invalid("skills");
}

#[test]
fn enrol_refusals() {
    let c = || ProgramCommand::Enrol(enrol(ada(), 3));
    given::<ProgramEvent>([]).when(c(), &present()).then_error(DomainError::ProgramNotFound(prog()));
    given([launched_default(), closed(5)]).when(c(), &present()).then_error(DomainError::ProgramClosed(prog()));
    given([launched_default()]).when(c(), &no_ctx()).then_error(DomainError::PersonNotFound(ada()));
    let facts = |f: ParticipantFacts| ProgramContext { person: Some(f) };
    given([launched_default()])
        .when(c(), &facts(ParticipantFacts::default()))
        .then_error(DomainError::PersonNotFound(ada()));
    given([launched_default()])
        .when(c(), &facts(ParticipantFacts { exists: true, erased: true, left: true, ..ParticipantFacts::default() }))
        .then_error(DomainError::PersonErased(ada()));
    given([launched_default()])
        .when(c(), &facts(ParticipantFacts { exists: true, left: true, ..ParticipantFacts::default() }))
        .then_error(DomainError::PersonHasLeft(ada()));
    let e = given([launched_default(), enrolled(prog(), ada(), day(1))])
        .when(c(), &present())
        .then_error(DomainError::AlreadyEnrolled(ada()));
    assert_eq!(e.code(), "ALREADY_ENROLLED");
}

#[test]
fn enrol_again_after_withdrawing() {
    given([launched_default(), enrolled(prog(), ada(), day(1)), withdrew(ada(), 5)])
        .when(ProgramCommand::Enrol(enrol(ada(), 9)), &present())
        .then_events([enrolled(prog(), ada(), day(9))]);
}

// ------------------------------------------------------------- withdraw ---

#[test]
fn withdraw_a_participant() {
    let state = given([launched_default(), enrolled(prog(), ada(), day(1))])
        .when(withdraw(ada(), 5), &present())
        .then_events([withdrew(ada(), 5)]);
    assert!(!state.is_enrolled(ada()));
    // On the enrolment day itself is fine.
    given([launched_default(), enrolled(prog(), ada(), day(1))])
        .when(withdraw(ada(), 1), &present())
        .then_events([withdrew(ada(), 1)]);
}

#[test]
fn withdraw_refusals() {
    let history = [launched_default(), enrolled(prog(), ada(), day(3))];
    let e =
        given([launched_default()]).when(withdraw(ada(), 5), &present()).then_error(DomainError::NotEnrolled(ada()));
    assert_eq!(e.code(), "NOT_ENROLLED");
    given([launched_default(), enrolled(prog(), ada(), day(3)), withdrew(ada(), 4)])
        .when(withdraw(ada(), 5), &present())
        .then_error(DomainError::NotEnrolled(ada()));
    let paired = ProgramContext {
        person: Some(ParticipantFacts { exists: true, in_active_pair: true, ..ParticipantFacts::default() }),
    };
    let e = given(history.clone()).when(withdraw(ada(), 5), &paired).then_error(DomainError::InActivePair(ada()));
    assert_eq!(e.code(), "IN_ACTIVE_PAIR");
    given(history.clone()).when(withdraw(ada(), 2), &present()).then_invalid("withdrewOn");
    given([history[0].clone(), history[1].clone(), closed(9)])
        .when(withdraw(ada(), 10), &present())
        .then_error(DomainError::ProgramClosed(prog()));
    given::<ProgramEvent>([]).when(withdraw(ada(), 5), &present()).then_error(DomainError::ProgramNotFound(prog()));
}

// ---------------------------------------------------------------- close ---

#[test]
fn close_a_program() {
    let state = given([launched_default()])
        .when(ProgramCommand::Close { program_id: prog(), closed_on: day(10), reason: lt("done") }, &no_ctx())
        .then_events([closed(10)]);
    assert!(state.is_closed());
    assert_eq!(state.require_open(prog()), Err(DomainError::ProgramClosed(prog())));
}

#[test]
fn close_refusals() {
    let close = |on| ProgramCommand::Close { program_id: prog(), closed_on: day(on), reason: LongText::default() };
    given([launched_default(), closed(10)]).when(close(11), &no_ctx()).then_error(DomainError::ProgramClosed(prog()));
    given([launched_default()]).when(close(-1), &no_ctx()).then_invalid("closedOn");
    given::<ProgramEvent>([]).when(close(1), &no_ctx()).then_error(DomainError::ProgramNotFound(prog()));
}

#[test]
fn command_targets_its_program() {
    let other = program_id(2);
    assert_eq!(ProgramCommand::Launch(launch(other)).program_id(), other);
    assert_eq!(ProgramCommand::Enrol(enrol(ada(), 1)).program_id(), prog());
    assert_eq!(withdraw(ada(), 1).program_id(), prog());
}
