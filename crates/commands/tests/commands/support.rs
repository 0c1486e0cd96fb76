//! Builders for a small organisation driven through the real command path.

use chrono::{NaiveDate, TimeZone, Utc};
use sqlx::PgPool;
use tandem_commands::{Command, CommandError, CommandMeta, CommandService, Committed};
use tandem_domain::pair::{FormPair, HoldSession, PairCommand};
use tandem_domain::person::{PersonChanges, PersonCommand, RegisterPerson, UpdatePerson};
use tandem_domain::program::{EnrolParticipant, LaunchProgram, ProgramCommand};
use tandem_domain::values::{
    CadenceDays, Email, ExternalId, FormedBy, GroupFormat, Level, LevelGap, LongText, Minutes, Purpose, ShortText,
};
use tandem_domain::{PairId, PersonId, ProgramId, SessionId};
use tandem_store::Actor;

pub fn admin() -> CommandMeta {
    CommandMeta::new(Actor { subject: "admin-1".into(), role: "admin".into() })
}

pub fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

pub fn text(s: &str) -> ShortText {
    ShortText::parse("text", s).unwrap()
}

pub struct Org {
    pub svc: CommandService,
    pub pool: PgPool,
}

impl Org {
    pub fn new(pool: PgPool) -> Self {
        Self { svc: CommandService::from_pool(pool.clone()), pool }
    }

    pub async fn run(&self, c: Command) -> Result<Committed, CommandError> {
        self.svc.handle(c, &admin()).await
    }

    pub async fn event_count(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&self.pool).await.unwrap()
    }

    pub async fn register(&self, name: &str, level: i64, manager: Option<PersonId>) -> PersonId {
        let id = PersonId::new();
        self.run(Command::Person(PersonCommand::Register(RegisterPerson {
            person_id: id,
            external_id: ExternalId::parse("externalId", &format!("E-{id}")).unwrap(),
            name: text(name),
            email: Email::parse("email", &format!("{}@example.com", name.to_lowercase().replace(' ', "."))).unwrap(),
            department: text("Engineering"),
            title: text("Engineer"),
            level: Level::parse("level", level).unwrap(),
            manager,
            location: None,
            hired_on: day(2020, 1, 1),
        })))
        .await
        .unwrap();
        id
    }

    pub async fn set_manager(
        &self,
        person: PersonId,
        manager: Option<PersonId>,
        on: NaiveDate,
    ) -> Result<Committed, CommandError> {
        self.run(Command::Person(PersonCommand::Update(UpdatePerson {
            person_id: person,
            changes: PersonChanges { manager: Some(manager), ..Default::default() },
            effective_on: on,
        })))
        .await
    }

    pub async fn launch(&self, gap: i64, format: GroupFormat) -> ProgramId {
        let id = ProgramId::new();
        self.run(Command::Program(ProgramCommand::Launch(LaunchProgram {
            program_id: id,
            name: text("Peer coaching"),
            description: LongText::default(),
            purpose: Purpose::SkillBuilding,
            format,
            max_level_gap: LevelGap::parse("gap", gap).unwrap(),
            cadence_days: CadenceDays::parse("cadence", 14).unwrap(),
            starts_on: day(2024, 1, 1),
            ends_on: None,
        })))
        .await
        .unwrap();
        id
    }

    pub async fn enrol(&self, program: ProgramId, person: PersonId) {
        self.run(Command::Program(ProgramCommand::Enrol(EnrolParticipant {
            program_id: program,
            person_id: person,
            enrolled_on: day(2024, 1, 2),
            interests: vec![],
            skills: vec![],
            wants_to_work_on: LongText::default(),
        })))
        .await
        .unwrap();
    }

    pub fn form_cmd(program: ProgramId, members: &[PersonId]) -> Command {
        Command::Pair(PairCommand::Form(FormPair {
            pair_id: PairId::new(),
            program_id: program,
            members: members.to_vec(),
            formed_by: FormedBy::Admin,
            match_score: None,
            formed_on: day(2024, 2, 1),
        }))
    }

    pub async fn form(&self, program: ProgramId, members: &[PersonId]) -> Result<PairId, CommandError> {
        let c = Self::form_cmd(program, members);
        let Command::Pair(PairCommand::Form(f)) = &c else { unreachable!() };
        let id = f.pair_id;
        self.run(c).await.map(|_| id)
    }

    pub fn hold_cmd(pair: PairId, by: PersonId) -> Command {
        Command::Pair(PairCommand::HoldSession {
            pair_id: pair,
            session: HoldSession {
                session_id: SessionId::new(),
                by,
                held_at: Utc.with_ymd_and_hms(2024, 2, 10, 9, 0, 0).unwrap(),
                minutes: Minutes::parse("minutes", 45).unwrap(),
                focus: text("Giving feedback"),
                activities: vec![],
                coaching: vec![],
                notes: LongText::default(),
            },
        })
    }
}
