//! People, programs, pairs, sessions and feedback written through the real
//! command service, so that what a test reads is exactly what production
//! writes.
//!
//! The `*_cmd` functions build one command with the usual test values;
//! [`Org`] runs them as the admin and hands back the new ids.

use chrono::{NaiveDate, TimeZone as _, Utc};
use sqlx::PgPool;
use tandem_commands::{Command, CommandError, CommandMeta, CommandService, Committed};
use tandem_domain::pair::{FormPair, GiveFeedback, HoldSession, PairCommand};
use tandem_domain::person::{PersonChanges, PersonCommand, RegisterPerson, UpdatePerson};
use tandem_domain::program::{EnrolParticipant, LaunchProgram, ProgramCommand};
use tandem_domain::values::{CadenceDays, FormedBy, GroupFormat, LongText, Purpose, Ratings, Visibility};
use tandem_domain::{FeedbackId, PairId, PersonId, ProgramId, SessionId};
use tandem_store::Actor;

use crate::values::{day, email_of, ext, gap, level, long, minutes, rating, text};

/// The metadata of a command run by the admin `admin-1`.
pub fn admin() -> CommandMeta {
    CommandMeta::new(Actor { subject: "admin-1".into(), role: "admin".into() })
}

/// Runs a command as the admin; a domain refusal is `None` (generators try
/// things the rules may refuse), anything else fails the test.
pub async fn exec(svc: &CommandService, command: Command) -> Option<Committed> {
    match svc.handle(command, &admin()).await {
        Ok(c) => Some(c),
        Err(CommandError::Domain(_)) => None,
        Err(e) => panic!("command failed: {e:?}"),
    }
}

/// Registers `name` (an engineer hired on 2020-01-01, external id from the
/// person id, address from the name).
pub fn register_cmd(
    person: PersonId,
    name: &str,
    at_level: i64,
    manager: Option<PersonId>,
    location: Option<&str>,
) -> Command {
    Command::Person(PersonCommand::Register(RegisterPerson {
        person_id: person,
        external_id: ext(&format!("E-{person}")),
        name: text(name),
        email: email_of(name),
        department: text("Engineering"),
        title: text("Engineer"),
        level: level(at_level),
        manager,
        location: location.map(text),
        hired_on: day(2020, 1, 1),
    }))
}

/// Moves `person` under `manager` (or to the top) from `on`.
pub fn set_manager_cmd(person: PersonId, manager: Option<PersonId>, on: NaiveDate) -> Command {
    Command::Person(PersonCommand::Update(UpdatePerson {
        person_id: person,
        changes: PersonChanges { manager: Some(manager), ..Default::default() },
        effective_on: on,
    }))
}

/// Launches "Peer coaching" (skill building, every 14 days, from
/// 2024-01-01).
pub fn launch_cmd(program: ProgramId, max_gap: i64, format: GroupFormat) -> Command {
    Command::Program(ProgramCommand::Launch(LaunchProgram {
        program_id: program,
        name: text("Peer coaching"),
        description: LongText::default(),
        purpose: Purpose::SkillBuilding,
        format,
        max_level_gap: gap(max_gap),
        cadence_days: CadenceDays::parse("cadence", 14).expect("valid cadence"),
        starts_on: day(2024, 1, 1),
        ends_on: None,
    }))
}

/// Enrols `person` in `program` on 2024-01-02.
pub fn enrol_cmd(program: ProgramId, person: PersonId) -> Command {
    Command::Program(ProgramCommand::Enrol(EnrolParticipant {
        program_id: program,
        person_id: person,
        enrolled_on: day(2024, 1, 2),
        interests: vec![],
        skills: vec![],
        wants_to_work_on: LongText::default(),
    }))
}

/// Forms pair `pair` of `members` in `program` on 2024-02-01, by the admin.
pub fn form_cmd(pair: PairId, program: ProgramId, members: &[PersonId]) -> Command {
    form_on_cmd(pair, program, members, day(2024, 2, 1))
}

/// Forms pair `pair` of `members` in `program` on `on`, by the admin.
pub fn form_on_cmd(pair: PairId, program: ProgramId, members: &[PersonId], on: NaiveDate) -> Command {
    Command::Pair(PairCommand::Form(FormPair {
        pair_id: pair,
        program_id: program,
        members: members.to_vec(),
        formed_by: FormedBy::Admin,
        match_score: None,
        formed_on: on,
    }))
}

/// A 45-minute session of `pair` on 2024-02-10 at 09:00, logged by `by`.
pub fn hold_cmd(pair: PairId, by: PersonId, notes: &str) -> Command {
    Command::Pair(PairCommand::HoldSession {
        pair_id: pair,
        session: HoldSession {
            session_id: SessionId::new(),
            by,
            held_at: Utc.with_ymd_and_hms(2024, 2, 10, 9, 0, 0).single().expect("valid time"),
            minutes: minutes(45),
            focus: text("Giving feedback"),
            activities: vec![],
            coaching: vec![],
            notes: if notes.is_empty() { LongText::default() } else { long(notes) },
        },
    })
}

/// Feedback from `from` to `to` in `pair`, given now.
pub fn feedback_cmd(pair: PairId, from: PersonId, to: PersonId, visibility: Visibility, strengths: &str) -> Command {
    Command::Pair(PairCommand::GiveFeedback {
        pair_id: pair,
        feedback: GiveFeedback {
            feedback_id: FeedbackId::new(),
            from,
            to,
            session_id: None,
            ratings: Ratings { empathy: Some(rating(4)), ..Ratings::default() },
            strengths: long(strengths),
            improvements: long("Could listen more"),
            visibility,
            given_at: Utc::now(),
        },
    })
}

/// An organisation built command by command as the admin.
pub struct Org {
    pub svc: CommandService,
    pub pool: PgPool,
}

impl Org {
    pub fn new(pool: PgPool) -> Self {
        Self { svc: CommandService::from_pool(pool.clone()).with_secret(crate::test_secret()), pool }
    }

    pub async fn run(&self, c: Command) -> Result<Committed, CommandError> {
        self.svc.handle(c, &admin()).await
    }

    pub async fn event_count(&self) -> i64 {
        crate::db::event_count(&self.pool).await
    }

    /// Registers `name` at `level` (no location); returns the new id.
    pub async fn register(&self, name: &str, level: i64, manager: Option<PersonId>) -> PersonId {
        let id = PersonId::new();
        self.run(register_cmd(id, name, level, manager, None)).await.expect("register a person");
        id
    }

    pub async fn set_manager(
        &self,
        person: PersonId,
        manager: Option<PersonId>,
        on: NaiveDate,
    ) -> Result<Committed, CommandError> {
        self.run(set_manager_cmd(person, manager, on)).await
    }

    pub async fn launch(&self, gap: i64, format: GroupFormat) -> ProgramId {
        let id = ProgramId::new();
        self.run(launch_cmd(id, gap, format)).await.expect("launch a program");
        id
    }

    pub async fn enrol(&self, program: ProgramId, person: PersonId) {
        self.run(enrol_cmd(program, person)).await.expect("enrol a participant");
    }

    /// The command forming a new pair of `members`.
    pub fn form_cmd(program: ProgramId, members: &[PersonId]) -> Command {
        form_cmd(PairId::new(), program, members)
    }

    pub async fn form(&self, program: ProgramId, members: &[PersonId]) -> Result<PairId, CommandError> {
        let id = PairId::new();
        self.run(form_cmd(id, program, members)).await.map(|_| id)
    }

    /// The command logging a session of `pair` without notes.
    pub fn hold_cmd(pair: PairId, by: PersonId) -> Command {
        hold_cmd(pair, by, "")
    }
}
