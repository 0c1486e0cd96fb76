//! Builders, fixtures and the given/when/then helper shared by every module.

pub mod world;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::{DateTime, Days, NaiveDate, TimeZone, Utc};
use tandem_domain::pair::{self, FormPair, Pair, PairCommand, PairContext, PairEvent, PairFormed, PersonFacts};
use tandem_domain::person::{
    self, ManagerFacts, Person, PersonChanges, PersonCommand, PersonContext, PersonEvent, PersonRegistered,
    PersonUpdated, RegisterPerson,
};
use tandem_domain::program::{
    self, LaunchProgram, ParticipantEnrolled, Program, ProgramCommand, ProgramContext, ProgramEvent, ProgramLaunched,
};
use tandem_domain::values::{CadenceDays, FormedBy, GroupFormat, LongText, Purpose};
use tandem_domain::{DomainError, FeedbackId, GoalId, PairId, PersonId, ProgramId, SessionId};
use uuid::Uuid;

// ---------------------------------------------------------------- dates ---

/// Day `n` of the test calendar (day 0 is 2024-01-01; negative days are before).
pub fn day(n: i64) -> NaiveDate {
    let base = NaiveDate::from_ymd_opt(2024, 1, 1).expect("valid base date");
    let shifted = if n >= 0 {
        base.checked_add_days(Days::new(n.unsigned_abs()))
    } else {
        base.checked_sub_days(Days::new(n.unsigned_abs()))
    };
    shifted.expect("date in range")
}

/// Noon (UTC) of day `n`.
pub fn at(n: i64) -> DateTime<Utc> {
    Utc.from_utc_datetime(&day(n).and_hms_opt(12, 0, 0).expect("valid time"))
}

// --------------------------------------------------------------- values ---

pub use tandem_testkit::values::{email, ext, gap, level, lt, minutes, percent, rating, st};

pub fn circles(min: i64, max: i64) -> GroupFormat {
    GroupFormat::circles(min, max).expect("valid circle format")
}

// ------------------------------------------------------------------ ids ---

pub fn person_id(n: u128) -> PersonId {
    PersonId::from_uuid(Uuid::from_u128(0x1000 + n))
}

pub fn program_id(n: u128) -> ProgramId {
    ProgramId::from_uuid(Uuid::from_u128(0x2000 + n))
}

pub fn pair_id(n: u128) -> PairId {
    PairId::from_uuid(Uuid::from_u128(0x3000 + n))
}

pub fn session_id(n: u128) -> SessionId {
    SessionId::from_uuid(Uuid::from_u128(0x4000 + n))
}

pub fn goal_id(n: u128) -> GoalId {
    GoalId::from_uuid(Uuid::from_u128(0x5000 + n))
}

pub fn feedback_id(n: u128) -> FeedbackId {
    FeedbackId::from_uuid(Uuid::from_u128(0x6000 + n))
}

// ---------------------------------------------------- given / when / then ---

/// An event type of one stream, with the aggregate functions of that stream.
pub trait Stream: Clone + fmt::Debug + PartialEq + Sized {
    type State: Default + Clone + fmt::Debug + PartialEq;
    type Command;
    type Context;
    fn decide(state: &Self::State, command: Self::Command, ctx: &Self::Context) -> Result<Vec<Self>, DomainError>;
    fn evolve(state: Self::State, event: &Self) -> Self::State;
}

/// Each stream's event type is a [`Stream`] through its module's `decide`
/// and `evolve`.
macro_rules! stream {
    ($event:ty, $state:ty, $command:ty, $context:ty, $module:ident) => {
        impl Stream for $event {
            type State = $state;
            type Command = $command;
            type Context = $context;
            fn decide(state: &$state, command: $command, ctx: &$context) -> Result<Vec<Self>, DomainError> {
                $module::decide(state, command, ctx)
            }
            fn evolve(state: $state, event: &Self) -> $state {
                $module::evolve(state, event)
            }
        }
    };
}

stream!(PersonEvent, Person, PersonCommand, PersonContext, person);
stream!(ProgramEvent, Program, ProgramCommand, ProgramContext, program);
stream!(PairEvent, Pair, PairCommand, PairContext, pair);

/// Folds events into the state of their stream.
pub fn fold<E: Stream>(events: impl IntoIterator<Item = E>) -> E::State {
    events.into_iter().fold(E::State::default(), |s, e| E::evolve(s, &e))
}

/// The history a command is decided against.
#[derive(Debug)]
pub struct Given<E: Stream> {
    state: E::State,
}

/// Starts a scenario from a stream's history.
pub fn given<E: Stream>(events: impl IntoIterator<Item = E>) -> Given<E> {
    Given { state: fold(events) }
}

impl<E: Stream> Given<E> {
    /// Decides `command` against the history.
    pub fn when(self, command: E::Command, ctx: &E::Context) -> Then<E> {
        let result = E::decide(&self.state, command, ctx);
        Then { before: self.state, result }
    }
}

/// The outcome of a decision.
#[derive(Debug)]
pub struct Then<E: Stream> {
    before: E::State,
    result: Result<Vec<E>, DomainError>,
}

impl<E: Stream> Then<E> {
    /// Asserts the command was accepted with exactly `expected`; returns the state after them.
    #[track_caller]
    pub fn then_events(self, expected: impl IntoIterator<Item = E>) -> E::State {
        let expected: Vec<E> = expected.into_iter().collect();
        match self.result {
            Ok(events) => {
                assert_eq!(events, expected, "unexpected events");
                events.iter().fold(self.before, E::evolve)
            }
            Err(e) => panic!("expected events {expected:?}, got refusal {e:?}"),
        }
    }

    /// Asserts the command was accepted and appends nothing.
    #[track_caller]
    pub fn then_nothing(self) {
        self.then_events([]);
    }

    /// Asserts the command was accepted; returns its events.
    #[track_caller]
    pub fn events(self) -> Vec<E> {
        match self.result {
            Ok(events) => events,
            Err(e) => panic!("expected success, got refusal {e:?}"),
        }
    }

    /// Asserts the command was refused with exactly `expected`; returns it.
    #[track_caller]
    pub fn then_error(self, expected: DomainError) -> DomainError {
        match self.result {
            Ok(events) => panic!("expected refusal {expected:?}, got events {events:?}"),
            Err(e) => {
                assert_eq!(e, expected, "unexpected refusal");
                e
            }
        }
    }

    /// Asserts the command was refused as invalid input on `field`.
    #[track_caller]
    pub fn then_invalid(self, field: &str) -> DomainError {
        match self.result {
            Ok(events) => panic!("expected invalid {field}, got events {events:?}"),
            Err(e) => {
                assert_eq!(e.field(), Some(field), "unexpected refusal {e:?}");
                e
            }
        }
    }
}

// --------------------------------------------------------------- person ---

/// A registration with plausible defaults.
pub fn register(p: PersonId) -> RegisterPerson {
    RegisterPerson {
        person_id: p,
        external_id: ext(&format!("E-{p}")),
        name: st("Ada Lovelace"),
        email: email("ada@Example.com"),
        department: st("Engineering"),
        title: st("Engineer"),
        level: level(3),
        manager: None,
        location: Some(st("Berlin")),
        hired_on: day(0),
    }
}

/// The event a registration produces.
pub fn registered(c: RegisterPerson) -> PersonEvent {
    PersonEvent::PersonRegistered(PersonRegistered {
        person_id: c.person_id,
        external_id: Some(c.external_id),
        name: Some(c.name),
        email: Some(c.email),
        department: c.department,
        title: c.title,
        level: c.level,
        manager: c.manager,
        location: c.location,
        hired_on: c.hired_on,
    })
}

/// A registered person with a level and a manager, hired on day 0.
pub fn person_registered(p: PersonId, lvl: i64, manager: Option<PersonId>) -> PersonEvent {
    registered(RegisterPerson { level: level(lvl), manager, ..register(p) })
}

/// An update event.
pub fn person_updated(p: PersonId, effective_on: NaiveDate, changes: PersonChanges) -> PersonEvent {
    PersonEvent::PersonUpdated(PersonUpdated { person_id: p, changes, effective_on })
}

/// A manager change effective on a date.
pub fn manager_changed(p: PersonId, effective_on: NaiveDate, manager: Option<PersonId>) -> PersonEvent {
    person_updated(p, effective_on, PersonChanges { manager: Some(manager), ..PersonChanges::default() })
}

/// A person context for a command that sets a manager with the given chain.
pub fn with_manager(chain: Vec<PersonId>) -> PersonContext {
    PersonContext { manager: Some(ManagerFacts { exists: true, left: false, chain }), external_id_taken: false }
}

// -------------------------------------------------------------- program ---

/// A launch with plausible defaults: pairs, max level gap 2, from day 0.
pub fn launch(g: ProgramId) -> LaunchProgram {
    LaunchProgram {
        program_id: g,
        name: st("Peer coaching 2024"),
        description: lt("Colleagues coach each other."),
        purpose: Purpose::SkillBuilding,
        format: GroupFormat::PAIRS,
        max_level_gap: gap(2),
        cadence_days: CadenceDays::parse("cadenceDays", 14).expect("valid cadence"),
        starts_on: day(0),
        ends_on: None,
    }
}

/// The event a launch produces.
pub fn launched(c: LaunchProgram) -> ProgramEvent {
    ProgramEvent::ProgramLaunched(ProgramLaunched {
        program_id: c.program_id,
        name: c.name,
        description: c.description,
        purpose: c.purpose,
        format: c.format,
        max_level_gap: c.max_level_gap,
        cadence_days: c.cadence_days,
        starts_on: c.starts_on,
        ends_on: c.ends_on,
    })
}

/// An enrolment without tags, on a date.
pub fn enrolled(g: ProgramId, p: PersonId, on: NaiveDate) -> ProgramEvent {
    ProgramEvent::ParticipantEnrolled(ParticipantEnrolled {
        program_id: g,
        person_id: p,
        enrolled_on: on,
        interests: vec![],
        skills: vec![],
        wants_to_work_on: LongText::default(),
    })
}

/// A launched program with a format, a level gap and participants enrolled on day 0.
pub fn program_with(g: ProgramId, format: GroupFormat, max_gap: i64, participants: &[PersonId]) -> Program {
    let mut events = vec![launched(LaunchProgram { format, max_level_gap: gap(max_gap), ..launch(g) })];
    events.extend(participants.iter().map(|p| enrolled(g, *p, day(0))));
    fold(events)
}

// ----------------------------------------------------------------- pair ---

/// Facts on a present person at a level, with their management chain.
pub fn facts(lvl: i64, chain: Vec<PersonId>) -> PersonFacts {
    PersonFacts { exists: true, left: false, erased: false, level: Some(level(lvl)), chain }
}

/// A pair context over a program and people facts.
pub fn pair_ctx(program: Program, people: impl IntoIterator<Item = (PersonId, PersonFacts)>) -> PairContext {
    PairContext {
        program: std::sync::Arc::new(program),
        people: people.into_iter().collect::<BTreeMap<_, _>>(),
        already_paired: BTreeSet::new(),
    }
}

/// A formation command by an admin.
pub fn form(x: PairId, g: ProgramId, members: &[PersonId], on: NaiveDate) -> FormPair {
    FormPair {
        pair_id: x,
        program_id: g,
        members: members.to_vec(),
        formed_by: FormedBy::Admin,
        match_score: None,
        formed_on: on,
    }
}

/// The event a formation produces, for a program of `format`.
pub fn formed(c: &FormPair, format: GroupFormat) -> PairEvent {
    PairEvent::PairFormed(PairFormed {
        pair_id: c.pair_id,
        program_id: c.program_id,
        kind: format.kind,
        members: c.members.clone(),
        formed_by: c.formed_by,
        match_score: c.match_score,
        formed_on: c.formed_on,
    })
}
