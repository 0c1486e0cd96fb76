//! One mutation per command of the domain.
//!
//! Every mutation takes one input object with an optional `idempotencyKey`
//! and returns a payload with the commit `position` and the affected
//! object, read only after every read model has reached that position
//! (read-your-writes). If the read models do not get there within the
//! configured time the write still stands: `position` is returned and the
//! object field fails with `TIMEOUT`.
//!
//! Access follows the policy matrix; for `Own` access (participants) the
//! acting person is the caller and nobody else.

use async_graphql::{Context, ID, InputObject, Object};
use chrono::{DateTime, NaiveDate, Utc};
use tandem_commands::{Command, CommandMeta, Committed};
use tandem_domain::pair::{Coaching, FormPair, GiveFeedback, HoldSession, PairCommand, SetGoal};
use tandem_domain::person::{PersonChanges, PersonCommand, RegisterPerson, UpdatePerson};
use tandem_domain::program::{EnrolParticipant, LaunchProgram, ProgramChanges, ProgramCommand};
use tandem_domain::values::{
    self as v, CadenceDays, Email, ExternalId, GroupFormat, Level, LevelGap, LongText, MatchScore, Minutes, Percent,
    Rating, Ratings, ShortText,
};
use tandem_domain::{DomainError, FeedbackId, GoalId, PairId, PersonId, ProgramId, SessionId};
use tandem_store::{Actor, Cursor};

use super::types::enums::{Activity, DissolveReason, FormedBy, GroupKind, LeaveReason, Purpose, Visibility};
use super::types::pair::{Feedback, Goal, Session};
use super::types::{Pair, Person, Program, load_error, loaders, me_as_participant, parse_id};
use super::{check, state, viewer};
use crate::error::ApiError;
use crate::policy::Access;

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

fn short(field: &'static str, s: &str) -> Result<ShortText, ApiError> {
    ShortText::parse(field, s).map_err(Into::into)
}
fn long(field: &'static str, s: Option<&str>) -> Result<LongText, ApiError> {
    LongText::parse(field, s.unwrap_or_default()).map_err(Into::into)
}
fn int<T>(parse: fn(&'static str, i64) -> Result<T, DomainError>, field: &'static str, v: i32) -> Result<T, ApiError> {
    parse(field, i64::from(v)).map_err(Into::into)
}

/// Runs a command for the caller and returns what it committed.
async fn run(
    ctx: &Context<'_>,
    name: &str,
    command: Command,
    key: Option<String>,
    fingerprint: String,
) -> Result<Committed, ApiError> {
    let principal = viewer(ctx).ok_or(ApiError::Unauthenticated)?;
    let mut meta =
        CommandMeta::new(Actor { subject: principal.subject().to_owned(), role: principal.actor_role().to_owned() });
    meta.idempotency_key = key;
    // The same key means the same request only for the same caller and mutation.
    meta.request_fingerprint = Some(format!("{}|{}|{}", principal.subject(), name, fingerprint));
    let done = state(ctx).commands.handle(command, &meta).await.map_err(ApiError::from)?;
    Ok(done)
}

/// Waits until the read models reach `position`.
async fn caught_up(ctx: &Context<'_>, position: Cursor) -> Result<(), ApiError> {
    let st = state(ctx);
    st.waiter.wait_for(position, st.limits.read_your_writes_timeout).await.map_err(|e| match e {
        tandem_projections::ProjectionError::Timeout { .. } => ApiError::Timeout {
            message: format!(
                "the change is committed at position {position} but the read models did not reach it in time; read again shortly"
            ),
        },
        other => ApiError::internal(other),
    })
}

/// The caller's person when they act with `Own` access; `None` for `All`.
fn acting_person(ctx: &Context<'_>, access: Access) -> Result<Option<PersonId>, ApiError> {
    match access {
        Access::All => Ok(None),
        _ => me_as_participant(ctx).map(Some).ok_or(ApiError::Forbidden),
    }
}

/// Resolves who acts: a participant acts as themself (and may not name
/// anyone else); others must name the person they act for in `field`.
fn actor_in_pair(ctx: &Context<'_>, access: Access, by: Option<&ID>, field: &str) -> Result<PersonId, ApiError> {
    match acting_person(ctx, access)? {
        Some(me) => match by {
            Some(b) if parse_id::<PersonId>(field, b)? != me => Err(ApiError::Forbidden),
            _ => Ok(me),
        },
        None => by
            .map(|b| parse_id(field, b))
            .transpose()?
            .ok_or_else(|| ApiError::bad_input(field, format!("{field} is required"))),
    }
}

/// The members of a pair, from its stream (authoritative even before the
/// read models have it).
async fn pair_members(ctx: &Context<'_>, pair: PairId) -> Result<Vec<PersonId>, ApiError> {
    let events = state(ctx).store.read_stream(pair.as_uuid()).await.map_err(ApiError::internal)?;
    let first = events.into_iter().next().ok_or_else(|| ApiError::not_found("pair"))?;
    let decoded = tandem_domain::DomainEvent::decode(&first.event_type, first.schema_version, first.data)
        .map_err(ApiError::internal)?;
    match decoded {
        tandem_domain::DomainEvent::Pair(tandem_domain::pair::PairEvent::PairFormed(f)) => Ok(f.members),
        _ => Err(ApiError::not_found("pair")),
    }
}

/// Refuses a participant acting on a pair they are not in, with
/// `FORBIDDEN` whether or not the pair exists: a participant learns nothing
/// about pairs they are not in.
async fn require_member_if_own(ctx: &Context<'_>, access: Access, pair: PairId) -> Result<(), ApiError> {
    if let Some(me) = acting_person(ctx, access)? {
        let members = match pair_members(ctx, pair).await {
            Err(ApiError::NotFound { .. }) => Vec::new(),
            other => other?,
        };
        if !members.contains(&me) {
            return Err(ApiError::Forbidden);
        }
    }
    Ok(())
}

macro_rules! payload {
    ($(#[$doc:meta])* $name:ident { $($(#[$fdoc:meta])* $field:ident : $ty:ty),* $(,)? } => $(#[$odoc:meta])* $obj:ident : $objty:ty = |$self_:ident, $ctx:ident| $load:expr) => {
        $(#[$doc])*
        pub struct $name {
            position: Cursor,
            replayed: bool,
            $($field: $ty),*
        }

        $(#[$doc])*
        #[Object]
        impl $name {
            /// The commit position of the change; pass it as `after` to subscriptions or the event feed.
            async fn position(&self) -> String {
                self.position.to_string()
            }
            /// True when this is the first result of an earlier request with the same idempotency key.
            async fn replayed(&self) -> bool {
                self.replayed
            }
            $(#[$odoc])*
            async fn $obj(&$self_, $ctx: &Context<'_>) -> async_graphql::Result<Option<$objty>> {
                caught_up($ctx, $self_.position).await?;
                Ok($load)
            }
        }
    };
}

payload!(
    /// The result of a change to a person.
    PersonPayload { person_id: PersonId } =>
    /// The person as the read models show it after the change.
    person: Person = |self, ctx| Person::load(ctx, self.person_id).await?
);
payload!(
    /// The result of a change to a program or an enrolment.
    ProgramPayload { program_id: ProgramId } =>
    /// The program as the read models show it after the change.
    program: Program = |self, ctx| loaders(ctx)?.programs.load_one(self.program_id).await.map_err(load_error)?.map(Program)
);
payload!(
    /// The result of a change to a pair.
    PairPayload { pair_id: PairId } =>
    /// The pair as the read models show it after the change.
    pair: Pair = |self, ctx| loaders(ctx)?.pairs.load_one(self.pair_id).await.map_err(load_error)?.map(Pair)
);
payload!(
    /// The result of a change to a session.
    SessionPayload { pair_id: PairId, session_id: SessionId } =>
    /// The session as the read models show it after the change.
    session: Session = |self, ctx| {
        let sessions = loaders(ctx)?.sessions.load_one(self.pair_id).await.map_err(load_error)?.unwrap_or_default();
        let members = loaders(ctx)?.pairs.load_one(self.pair_id).await.map_err(load_error)?.map(|p| p.member_ids).unwrap_or_default();
        sessions.into_iter().find(|s| s.session.session_id == self.session_id.as_uuid()).map(|s| Session { view: s, members })
    }
);
payload!(
    /// The result of giving feedback.
    FeedbackPayload { pair_id: PairId, feedback_id: FeedbackId } =>
    /// The feedback as the read models show it.
    feedback: Feedback = |self, ctx| {
        let all = loaders(ctx)?.feedback.load_one(self.pair_id).await.map_err(load_error)?.unwrap_or_default();
        all.into_iter()
            .find(|f| f.feedback_id == self.feedback_id.as_uuid())
            .filter(|f| super::types::pair::feedback_readable(ctx, f))
            .map(Feedback)
    }
);
payload!(
    /// The result of a change to a goal.
    GoalPayload { pair_id: PairId, goal_id: GoalId } =>
    /// The goal as the read models show it after the change.
    goal: Goal = |self, ctx| {
        let goals = loaders(ctx)?.goals.load_one(self.pair_id).await.map_err(load_error)?.unwrap_or_default();
        let members = loaders(ctx)?.pairs.load_one(self.pair_id).await.map_err(load_error)?.map(|p| p.member_ids).unwrap_or_default();
        goals.into_iter().find(|g| g.goal_id == self.goal_id.as_uuid()).map(|g| Goal { row: g, members })
    }
);

// ---------------------------------------------------------------- people

/// Register a person from the HRIS.
#[derive(InputObject, Debug)]
pub struct RegisterPersonInput {
    /// Makes retries safe: the same key returns the first result.
    pub idempotency_key: Option<String>,
    /// The HRIS's id of the person (unique).
    pub external_id: String,
    /// Full name.
    pub name: String,
    /// E-mail address.
    pub email: String,
    /// Department.
    pub department: String,
    /// Job title.
    pub title: String,
    /// Career level (1 = most junior).
    pub level: i32,
    /// Their manager's id.
    pub manager_id: Option<ID>,
    /// Where they work.
    pub location: Option<String>,
    /// First day of employment (default today).
    pub hired_on: Option<NaiveDate>,
}

/// Change a person's profile or org facts, effective on a date.
#[derive(InputObject, Debug)]
pub struct UpdatePersonInput {
    /// Makes retries safe: the same key returns the first result.
    pub idempotency_key: Option<String>,
    /// The person.
    pub person_id: ID,
    /// New full name.
    pub name: Option<String>,
    /// New e-mail address.
    pub email: Option<String>,
    /// New department.
    pub department: Option<String>,
    /// New job title.
    pub title: Option<String>,
    /// New level.
    pub level: Option<i32>,
    /// New manager.
    pub manager_id: Option<ID>,
    /// Set to true to clear the manager.
    pub clear_manager: Option<bool>,
    /// New location.
    pub location: Option<String>,
    /// The day the change takes effect (default today); may be in the past or future.
    pub effective_on: Option<NaiveDate>,
}

/// Record that a person left the organisation.
#[derive(InputObject, Debug)]
pub struct RecordPersonLeftInput {
    /// Makes retries safe: the same key returns the first result.
    pub idempotency_key: Option<String>,
    /// The person.
    pub person_id: ID,
    /// Their last day (default today).
    pub left_on: Option<NaiveDate>,
    /// Why they left.
    pub reason: LeaveReason,
}

/// Record that a person who had left came back.
#[derive(InputObject, Debug)]
pub struct RejoinPersonInput {
    /// Makes retries safe: the same key returns the first result.
    pub idempotency_key: Option<String>,
    /// The person.
    pub person_id: ID,
    /// The day they came back (default today).
    pub rejoined_on: Option<NaiveDate>,
}

/// Erase a person's personal data.
#[derive(InputObject, Debug)]
pub struct ErasePersonInput {
    /// Makes retries safe: the same key returns the first result.
    pub idempotency_key: Option<String>,
    /// The person.
    pub person_id: ID,
}

/// Mutations of people.
#[derive(Default)]
pub struct PeopleMutation;

/// Changes to people.
#[Object]
impl PeopleMutation {
    /// Register a person.
    async fn register_person(
        &self,
        ctx: &Context<'_>,
        input: RegisterPersonInput,
    ) -> async_graphql::Result<PersonPayload> {
        check(ctx, "registerPerson")?;
        let fp = format!("{input:?}");
        let person_id = PersonId::new();
        let c = RegisterPerson {
            person_id,
            external_id: ExternalId::parse("externalId", &input.external_id)?,
            name: short("name", &input.name)?,
            email: Email::parse("email", &input.email)?,
            department: short("department", &input.department)?,
            title: short("title", &input.title)?,
            level: int(Level::parse, "level", input.level)?,
            manager: input.manager_id.as_ref().map(|m| parse_id("managerId", m)).transpose()?,
            location: input.location.as_deref().map(|l| short("location", l)).transpose()?,
            hired_on: input.hired_on.unwrap_or_else(today),
        };
        let done =
            run(ctx, "registerPerson", Command::Person(PersonCommand::Register(c)), input.idempotency_key, fp).await?;
        let person_id = done.events.first().map_or(person_id, |e| PersonId::from_uuid(e.stream_id));
        Ok(PersonPayload { position: done.position, replayed: done.replayed, person_id })
    }

    /// Update a person.
    async fn update_person(&self, ctx: &Context<'_>, input: UpdatePersonInput) -> async_graphql::Result<PersonPayload> {
        check(ctx, "updatePerson")?;
        let fp = format!("{input:?}");
        let person_id: PersonId = parse_id("personId", &input.person_id)?;
        let manager = match (input.manager_id.as_ref(), input.clear_manager.unwrap_or(false)) {
            (Some(_), true) => {
                return Err(ApiError::bad_input("clearManager", "give managerId or clearManager, not both").into());
            }
            (Some(m), false) => Some(Some(parse_id("managerId", m)?)),
            (None, true) => Some(None),
            (None, false) => None,
        };
        let changes = PersonChanges {
            name: input.name.as_deref().map(|s| short("name", s)).transpose()?,
            email: input.email.as_deref().map(|s| Email::parse("email", s)).transpose()?,
            department: input.department.as_deref().map(|s| short("department", s)).transpose()?,
            title: input.title.as_deref().map(|s| short("title", s)).transpose()?,
            level: input.level.map(|l| int(Level::parse, "level", l)).transpose()?,
            manager,
            location: input.location.as_deref().map(|s| short("location", s).map(Some)).transpose()?,
        };
        let c = UpdatePerson { person_id, changes, effective_on: input.effective_on.unwrap_or_else(today) };
        let done =
            run(ctx, "updatePerson", Command::Person(PersonCommand::Update(c)), input.idempotency_key, fp).await?;
        Ok(PersonPayload { position: done.position, replayed: done.replayed, person_id })
    }

    /// Record that a person left; their pairs are dissolved.
    async fn record_person_left(
        &self,
        ctx: &Context<'_>,
        input: RecordPersonLeftInput,
    ) -> async_graphql::Result<PersonPayload> {
        check(ctx, "recordPersonLeft")?;
        let fp = format!("{input:?}");
        let person_id: PersonId = parse_id("personId", &input.person_id)?;
        let c = PersonCommand::RecordLeft {
            person_id,
            left_on: input.left_on.unwrap_or_else(today),
            reason: input.reason.into(),
        };
        let done = run(ctx, "recordPersonLeft", Command::Person(c), input.idempotency_key, fp).await?;
        Ok(PersonPayload { position: done.position, replayed: done.replayed, person_id })
    }

    /// Record that a person came back.
    async fn rejoin_person(&self, ctx: &Context<'_>, input: RejoinPersonInput) -> async_graphql::Result<PersonPayload> {
        check(ctx, "rejoinPerson")?;
        let fp = format!("{input:?}");
        let person_id: PersonId = parse_id("personId", &input.person_id)?;
        let c = PersonCommand::Rejoin { person_id, rejoined_on: input.rejoined_on.unwrap_or_else(today) };
        let done = run(ctx, "rejoinPerson", Command::Person(c), input.idempotency_key, fp).await?;
        Ok(PersonPayload { position: done.position, replayed: done.replayed, person_id })
    }

    /// Erase a person's personal data from the read models.
    async fn erase_person(&self, ctx: &Context<'_>, input: ErasePersonInput) -> async_graphql::Result<PersonPayload> {
        check(ctx, "erasePerson")?;
        let fp = format!("{input:?}");
        let person_id: PersonId = parse_id("personId", &input.person_id)?;
        let done =
            run(ctx, "erasePerson", Command::Person(PersonCommand::Erase { person_id }), input.idempotency_key, fp)
                .await?;
        Ok(PersonPayload { position: done.position, replayed: done.replayed, person_id })
    }
}

// ---------------------------------------------------------------- programs

/// Launch a program.
#[derive(InputObject, Debug)]
pub struct LaunchProgramInput {
    /// Makes retries safe: the same key returns the first result.
    pub idempotency_key: Option<String>,
    /// Its name.
    pub name: String,
    /// What it is about.
    pub description: Option<String>,
    /// Why it exists.
    pub purpose: Purpose,
    /// Pairs or circles.
    pub kind: GroupKind,
    /// For circles: fewest members (at least 3).
    pub min_size: Option<i32>,
    /// For circles: most members (at most 12).
    pub max_size: Option<i32>,
    /// The largest level difference inside one group.
    pub max_level_gap: i32,
    /// Expected days between sessions.
    pub cadence_days: i32,
    /// First day (default today).
    pub starts_on: Option<NaiveDate>,
    /// Planned last day.
    pub ends_on: Option<NaiveDate>,
}

/// Change a program's settings.
#[derive(InputObject, Debug)]
pub struct UpdateProgramInput {
    /// Makes retries safe: the same key returns the first result.
    pub idempotency_key: Option<String>,
    /// The program.
    pub program_id: ID,
    /// New name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New largest level gap.
    pub max_level_gap: Option<i32>,
    /// New cadence in days.
    pub cadence_days: Option<i32>,
    /// New planned last day.
    pub ends_on: Option<NaiveDate>,
    /// Set to true to remove the planned last day.
    pub clear_ends_on: Option<bool>,
}

/// Close a program; its pairs are dissolved.
#[derive(InputObject, Debug)]
pub struct CloseProgramInput {
    /// Makes retries safe: the same key returns the first result.
    pub idempotency_key: Option<String>,
    /// The program.
    pub program_id: ID,
    /// The last day (default today).
    pub closed_on: Option<NaiveDate>,
    /// Why it closed.
    pub reason: Option<String>,
}

/// Enrol a person in a program.
#[derive(InputObject, Debug)]
pub struct EnrolParticipantInput {
    /// Makes retries safe: the same key returns the first result.
    pub idempotency_key: Option<String>,
    /// The program.
    pub program_id: ID,
    /// The person (a participant enrols themself and may leave this out).
    pub person_id: Option<ID>,
    /// The day they join (default today).
    pub enrolled_on: Option<NaiveDate>,
    /// What they are interested in.
    pub interests: Option<Vec<String>>,
    /// Skills they bring.
    pub skills: Option<Vec<String>>,
    /// What they want to work on.
    pub wants_to_work_on: Option<String>,
}

/// Withdraw a person from a program.
#[derive(InputObject, Debug)]
pub struct WithdrawParticipantInput {
    /// Makes retries safe: the same key returns the first result.
    pub idempotency_key: Option<String>,
    /// The program.
    pub program_id: ID,
    /// The person (a participant withdraws themself and may leave this out).
    pub person_id: Option<ID>,
    /// The day they leave the program (default today).
    pub withdrew_on: Option<NaiveDate>,
    /// Why.
    pub reason: Option<String>,
}

fn tags(field: &'static str, list: Option<Vec<String>>) -> Result<Vec<ShortText>, ApiError> {
    let list = list.unwrap_or_default();
    if list.len() > tandem_domain::program::MAX_TAGS {
        return Err(ApiError::bad_input(field, format!("at most {} entries", tandem_domain::program::MAX_TAGS)));
    }
    list.iter().map(|t| short(field, t)).collect()
}

/// Mutations of programs and enrolments.
#[derive(Default)]
pub struct ProgramMutation;

/// Changes to programs and enrolments.
#[Object]
impl ProgramMutation {
    /// Launch a program.
    async fn launch_program(
        &self,
        ctx: &Context<'_>,
        input: LaunchProgramInput,
    ) -> async_graphql::Result<ProgramPayload> {
        check(ctx, "launchProgram")?;
        let fp = format!("{input:?}");
        let program_id = ProgramId::new();
        let format = match input.kind {
            GroupKind::Pairs => {
                if input.min_size.is_some_and(|m| m != 2) || input.max_size.is_some_and(|m| m != 2) {
                    return Err(ApiError::bad_input("minSize", "pairs always have two members").into());
                }
                GroupFormat::PAIRS
            }
            GroupKind::Circles => {
                GroupFormat::circles(i64::from(input.min_size.unwrap_or(3)), i64::from(input.max_size.unwrap_or(6)))?
            }
        };
        let c = LaunchProgram {
            program_id,
            name: short("name", &input.name)?,
            description: long("description", input.description.as_deref())?,
            purpose: input.purpose.into(),
            format,
            max_level_gap: int(LevelGap::parse, "maxLevelGap", input.max_level_gap)?,
            cadence_days: int(CadenceDays::parse, "cadenceDays", input.cadence_days)?,
            starts_on: input.starts_on.unwrap_or_else(today),
            ends_on: input.ends_on,
        };
        let done =
            run(ctx, "launchProgram", Command::Program(ProgramCommand::Launch(c)), input.idempotency_key, fp).await?;
        let program_id = done.events.first().map_or(program_id, |e| ProgramId::from_uuid(e.stream_id));
        Ok(ProgramPayload { position: done.position, replayed: done.replayed, program_id })
    }

    /// Change a program's settings.
    async fn update_program(
        &self,
        ctx: &Context<'_>,
        input: UpdateProgramInput,
    ) -> async_graphql::Result<ProgramPayload> {
        check(ctx, "updateProgram")?;
        let fp = format!("{input:?}");
        let program_id: ProgramId = parse_id("programId", &input.program_id)?;
        let ends_on = match (input.ends_on, input.clear_ends_on.unwrap_or(false)) {
            (Some(_), true) => {
                return Err(ApiError::bad_input("clearEndsOn", "give endsOn or clearEndsOn, not both").into());
            }
            (Some(d), false) => Some(Some(d)),
            (None, true) => Some(None),
            (None, false) => None,
        };
        let changes = ProgramChanges {
            name: input.name.as_deref().map(|s| short("name", s)).transpose()?,
            description: input.description.as_deref().map(|s| long("description", Some(s))).transpose()?,
            max_level_gap: input.max_level_gap.map(|g| int(LevelGap::parse, "maxLevelGap", g)).transpose()?,
            cadence_days: input.cadence_days.map(|d| int(CadenceDays::parse, "cadenceDays", d)).transpose()?,
            ends_on,
        };
        let done = run(
            ctx,
            "updateProgram",
            Command::Program(ProgramCommand::Update { program_id, changes }),
            input.idempotency_key,
            fp,
        )
        .await?;
        Ok(ProgramPayload { position: done.position, replayed: done.replayed, program_id })
    }

    /// Close a program; its pairs are dissolved.
    async fn close_program(
        &self,
        ctx: &Context<'_>,
        input: CloseProgramInput,
    ) -> async_graphql::Result<ProgramPayload> {
        check(ctx, "closeProgram")?;
        let fp = format!("{input:?}");
        let program_id: ProgramId = parse_id("programId", &input.program_id)?;
        let c = ProgramCommand::Close {
            program_id,
            closed_on: input.closed_on.unwrap_or_else(today),
            reason: long("reason", input.reason.as_deref())?,
        };
        let done = run(ctx, "closeProgram", Command::Program(c), input.idempotency_key, fp).await?;
        Ok(ProgramPayload { position: done.position, replayed: done.replayed, program_id })
    }

    /// Enrol a person in a program.
    async fn enrol_participant(
        &self,
        ctx: &Context<'_>,
        input: EnrolParticipantInput,
    ) -> async_graphql::Result<ProgramPayload> {
        let access = check(ctx, "enrolParticipant")?;
        let fp = format!("{input:?}");
        let program_id: ProgramId = parse_id("programId", &input.program_id)?;
        let person_id = actor_in_pair(ctx, access, input.person_id.as_ref(), "personId")?;
        let c = EnrolParticipant {
            program_id,
            person_id,
            enrolled_on: input.enrolled_on.unwrap_or_else(today),
            interests: tags("interests", input.interests)?,
            skills: tags("skills", input.skills)?,
            wants_to_work_on: long("wantsToWorkOn", input.wants_to_work_on.as_deref())?,
        };
        let done =
            run(ctx, "enrolParticipant", Command::Program(ProgramCommand::Enrol(c)), input.idempotency_key, fp).await?;
        Ok(ProgramPayload { position: done.position, replayed: done.replayed, program_id })
    }

    /// Withdraw a person from a program.
    async fn withdraw_participant(
        &self,
        ctx: &Context<'_>,
        input: WithdrawParticipantInput,
    ) -> async_graphql::Result<ProgramPayload> {
        let access = check(ctx, "withdrawParticipant")?;
        let fp = format!("{input:?}");
        let program_id: ProgramId = parse_id("programId", &input.program_id)?;
        let person_id = actor_in_pair(ctx, access, input.person_id.as_ref(), "personId")?;
        let c = ProgramCommand::Withdraw {
            program_id,
            person_id,
            withdrew_on: input.withdrew_on.unwrap_or_else(today),
            reason: long("reason", input.reason.as_deref())?,
        };
        let done = run(ctx, "withdrawParticipant", Command::Program(c), input.idempotency_key, fp).await?;
        Ok(ProgramPayload { position: done.position, replayed: done.replayed, program_id })
    }
}

// ---------------------------------------------------------------- pairs

/// Form a pair or circle.
#[derive(InputObject, Debug)]
pub struct FormPairInput {
    /// Makes retries safe: the same key returns the first result.
    pub idempotency_key: Option<String>,
    /// The program.
    pub program_id: ID,
    /// The members (two for a pair).
    pub member_ids: Vec<ID>,
    /// How it came about (a participant always forms SELF_SELECTED).
    pub formed_by: Option<FormedBy>,
    /// The matching score, for a suggestion.
    pub match_score: Option<f64>,
    /// The day it forms (default today).
    pub formed_on: Option<NaiveDate>,
}

/// Plan a session.
#[derive(InputObject, Debug)]
pub struct ScheduleSessionInput {
    /// Makes retries safe: the same key returns the first result.
    pub idempotency_key: Option<String>,
    /// The pair.
    pub pair_id: ID,
    /// The member planning it (a participant is always themself).
    pub by_id: Option<ID>,
    /// When it will take place.
    pub scheduled_for: DateTime<Utc>,
    /// What it will focus on.
    pub focus: Option<String>,
}

/// Who coached whom.
#[derive(InputObject, Debug)]
pub struct CoachingInput {
    /// The member who coached.
    pub coach_id: ID,
    /// The member who was coached.
    pub coachee_id: ID,
}

/// Record a session that took place.
#[derive(InputObject, Debug)]
pub struct HoldSessionInput {
    /// Makes retries safe: the same key returns the first result.
    pub idempotency_key: Option<String>,
    /// The pair.
    pub pair_id: ID,
    /// The scheduled session this records; leave out for an unplanned one.
    pub session_id: Option<ID>,
    /// The member recording it (a participant is always themself).
    pub by_id: Option<ID>,
    /// When it took place (default now).
    pub held_at: Option<DateTime<Utc>>,
    /// How long it lasted, in minutes.
    pub minutes: i32,
    /// What it focused on.
    pub focus: String,
    /// What the members did.
    pub activities: Option<Vec<Activity>>,
    /// Who coached whom.
    pub coaching: Option<Vec<CoachingInput>>,
    /// Notes for the members.
    pub notes: Option<String>,
}

/// Cancel a planned session.
#[derive(InputObject, Debug)]
pub struct CancelSessionInput {
    /// Makes retries safe: the same key returns the first result.
    pub idempotency_key: Option<String>,
    /// The pair.
    pub pair_id: ID,
    /// The session.
    pub session_id: ID,
    /// The member cancelling (a participant is always themself).
    pub by_id: Option<ID>,
    /// Why.
    pub reason: Option<String>,
}

/// Ratings of the five coach traits, 1 to 5, each optional.
#[derive(InputObject, Debug, Default)]
pub struct RatingsInput {
    /// Understands and shares the other's feelings.
    pub empathy: Option<i32>,
    /// Listens to understand and reflects back.
    pub active_listening: Option<i32>,
    /// Asks open questions.
    pub curiosity: Option<i32>,
    /// Gives the other room and time.
    pub patience: Option<i32>,
    /// Treats setbacks as things to learn from.
    pub growth_mindset: Option<i32>,
}

/// Give feedback to another member.
#[derive(InputObject, Debug)]
pub struct GiveFeedbackInput {
    /// Makes retries safe: the same key returns the first result.
    pub idempotency_key: Option<String>,
    /// The pair.
    pub pair_id: ID,
    /// The recipient.
    pub to_id: ID,
    /// The session it is about.
    pub session_id: Option<ID>,
    /// Trait ratings.
    pub ratings: Option<RatingsInput>,
    /// What went well.
    pub strengths: Option<String>,
    /// What could improve.
    pub improvements: Option<String>,
    /// Who may read it besides the author.
    pub visibility: Visibility,
}

/// Set a goal.
#[derive(InputObject, Debug)]
pub struct SetGoalInput {
    /// Makes retries safe: the same key returns the first result.
    pub idempotency_key: Option<String>,
    /// The pair.
    pub pair_id: ID,
    /// Its title.
    pub title: String,
    /// Its description.
    pub description: Option<String>,
    /// When it is due.
    pub due_on: Option<NaiveDate>,
    /// Another member who keeps the owner accountable.
    pub accountability_partner_id: Option<ID>,
}

/// Record progress on a goal.
#[derive(InputObject, Debug)]
pub struct RecordGoalProgressInput {
    /// Makes retries safe: the same key returns the first result.
    pub idempotency_key: Option<String>,
    /// The pair.
    pub pair_id: ID,
    /// The goal.
    pub goal_id: ID,
    /// Progress in percent.
    pub percent: Option<i32>,
    /// A note.
    pub note: Option<String>,
}

/// Complete or abandon a goal.
#[derive(InputObject, Debug)]
pub struct CloseGoalInput {
    /// Makes retries safe: the same key returns the first result.
    pub idempotency_key: Option<String>,
    /// The pair.
    pub pair_id: ID,
    /// The goal.
    pub goal_id: ID,
    /// A note on the outcome.
    pub note: Option<String>,
}

/// Pause a pair.
#[derive(InputObject, Debug)]
pub struct PausePairInput {
    /// Makes retries safe: the same key returns the first result.
    pub idempotency_key: Option<String>,
    /// The pair.
    pub pair_id: ID,
    /// Why.
    pub reason: Option<String>,
    /// The planned end of the pause.
    pub until: Option<NaiveDate>,
}

/// Resume a paused pair.
#[derive(InputObject, Debug)]
pub struct ResumePairInput {
    /// Makes retries safe: the same key returns the first result.
    pub idempotency_key: Option<String>,
    /// The pair.
    pub pair_id: ID,
}

/// Dissolve a pair.
#[derive(InputObject, Debug)]
pub struct DissolvePairInput {
    /// Makes retries safe: the same key returns the first result.
    pub idempotency_key: Option<String>,
    /// The pair.
    pub pair_id: ID,
    /// Why it ends.
    pub reason: DissolveReason,
    /// A note.
    pub note: Option<String>,
}

/// Mutations inside pairs.
#[derive(Default)]
pub struct PairMutation;

async fn pair_command(
    ctx: &Context<'_>,
    name: &str,
    c: PairCommand,
    key: Option<String>,
    fp: String,
) -> Result<Committed, ApiError> {
    run(ctx, name, Command::Pair(c), key, fp).await
}

fn pair_payload(done: &Committed, pair_id: PairId) -> PairPayload {
    PairPayload { position: done.position, replayed: done.replayed, pair_id }
}

/// Changes inside pairs and circles.
#[Object]
impl PairMutation {
    /// Form a pair or circle.
    async fn form_pair(&self, ctx: &Context<'_>, input: FormPairInput) -> async_graphql::Result<PairPayload> {
        let access = check(ctx, "formPair")?;
        let fp = format!("{input:?}");
        let program_id: ProgramId = parse_id("programId", &input.program_id)?;
        if input.member_ids.len() > usize::from(v::MAX_CIRCLE_SIZE) {
            return Err(ApiError::bad_input("memberIds", format!("at most {} members", v::MAX_CIRCLE_SIZE)).into());
        }
        let members =
            input.member_ids.iter().map(|m| parse_id("memberIds", m)).collect::<Result<Vec<PersonId>, _>>()?;
        let formed_by = match acting_person(ctx, access)? {
            Some(me) if !members.contains(&me) => return Err(ApiError::Forbidden.into()),
            Some(_) => v::FormedBy::SelfSelected,
            None => input.formed_by.map_or(v::FormedBy::Admin, Into::into),
        };
        let pair_id = PairId::new();
        let c = FormPair {
            pair_id,
            program_id,
            members,
            formed_by,
            match_score: input.match_score.map(|s| MatchScore::parse("matchScore", s)).transpose()?,
            formed_on: input.formed_on.unwrap_or_else(today),
        };
        let done = pair_command(ctx, "formPair", PairCommand::Form(c), input.idempotency_key, fp).await?;
        let pair_id = done.events.first().map_or(pair_id, |e| PairId::from_uuid(e.stream_id));
        Ok(pair_payload(&done, pair_id))
    }

    /// Plan a session.
    async fn schedule_session(
        &self,
        ctx: &Context<'_>,
        input: ScheduleSessionInput,
    ) -> async_graphql::Result<SessionPayload> {
        let access = check(ctx, "scheduleSession")?;
        let fp = format!("{input:?}");
        let pair_id: PairId = parse_id("pairId", &input.pair_id)?;
        require_member_if_own(ctx, access, pair_id).await?;
        let by = actor_in_pair(ctx, access, input.by_id.as_ref(), "byId")?;
        let session_id = SessionId::new();
        let c = PairCommand::ScheduleSession {
            pair_id,
            session_id,
            by,
            scheduled_for: input.scheduled_for,
            focus: input.focus.as_deref().map(|f| short("focus", f)).transpose()?,
        };
        let done = pair_command(ctx, "scheduleSession", c, input.idempotency_key, fp).await?;
        let session_id = replayed_id(&done, "sessionId").map_or(session_id, SessionId::from_uuid);
        Ok(SessionPayload { position: done.position, replayed: done.replayed, pair_id, session_id })
    }

    /// Record a session that took place.
    async fn hold_session(&self, ctx: &Context<'_>, input: HoldSessionInput) -> async_graphql::Result<SessionPayload> {
        let access = check(ctx, "holdSession")?;
        let fp = format!("{input:?}");
        let pair_id: PairId = parse_id("pairId", &input.pair_id)?;
        require_member_if_own(ctx, access, pair_id).await?;
        let by = actor_in_pair(ctx, access, input.by_id.as_ref(), "byId")?;
        let session_id =
            input.session_id.as_ref().map(|s| parse_id("sessionId", s)).transpose()?.unwrap_or_else(SessionId::new);
        let activities = input.activities.unwrap_or_default();
        if activities.len() > 32 {
            return Err(ApiError::bad_input("activities", "at most 32 activities").into());
        }
        let coaching_in = input.coaching.unwrap_or_default();
        if coaching_in.len() > 64 {
            return Err(ApiError::bad_input("coaching", "at most 64 entries").into());
        }
        let coaching = coaching_in
            .iter()
            .map(|c| {
                Ok(Coaching {
                    coach: parse_id("coaching.coachId", &c.coach_id)?,
                    coachee: parse_id("coaching.coacheeId", &c.coachee_id)?,
                })
            })
            .collect::<Result<Vec<_>, ApiError>>()?;
        let c = PairCommand::HoldSession {
            pair_id,
            session: HoldSession {
                session_id,
                by,
                held_at: input.held_at.unwrap_or_else(Utc::now),
                minutes: int(Minutes::parse, "minutes", input.minutes)?,
                focus: short("focus", &input.focus)?,
                activities: activities.into_iter().map(Into::into).collect(),
                coaching,
                notes: long("notes", input.notes.as_deref())?,
            },
        };
        let done = pair_command(ctx, "holdSession", c, input.idempotency_key, fp).await?;
        let session_id = replayed_id(&done, "sessionId").map_or(session_id, SessionId::from_uuid);
        Ok(SessionPayload { position: done.position, replayed: done.replayed, pair_id, session_id })
    }

    /// Cancel a planned session.
    async fn cancel_session(
        &self,
        ctx: &Context<'_>,
        input: CancelSessionInput,
    ) -> async_graphql::Result<SessionPayload> {
        let access = check(ctx, "cancelSession")?;
        let fp = format!("{input:?}");
        let pair_id: PairId = parse_id("pairId", &input.pair_id)?;
        require_member_if_own(ctx, access, pair_id).await?;
        let session_id: SessionId = parse_id("sessionId", &input.session_id)?;
        let by = actor_in_pair(ctx, access, input.by_id.as_ref(), "byId")?;
        let c =
            PairCommand::CancelSession { pair_id, session_id, by, reason: long("reason", input.reason.as_deref())? };
        let done = pair_command(ctx, "cancelSession", c, input.idempotency_key, fp).await?;
        Ok(SessionPayload { position: done.position, replayed: done.replayed, pair_id, session_id })
    }

    /// Give feedback to another member of the pair.
    async fn give_feedback(
        &self,
        ctx: &Context<'_>,
        input: GiveFeedbackInput,
    ) -> async_graphql::Result<FeedbackPayload> {
        let access = check(ctx, "giveFeedback")?;
        let fp = format!("{input:?}");
        let pair_id: PairId = parse_id("pairId", &input.pair_id)?;
        require_member_if_own(ctx, access, pair_id).await?;
        let from = actor_in_pair(ctx, access, None, "fromId")?;
        let r = input.ratings.unwrap_or_default();
        let rating = |field: &'static str, v: Option<i32>| v.map(|v| int(Rating::parse, field, v)).transpose();
        let feedback_id = FeedbackId::new();
        let c = PairCommand::GiveFeedback {
            pair_id,
            feedback: GiveFeedback {
                feedback_id,
                from,
                to: parse_id("toId", &input.to_id)?,
                session_id: input.session_id.as_ref().map(|s| parse_id("sessionId", s)).transpose()?,
                ratings: Ratings {
                    empathy: rating("ratings.empathy", r.empathy)?,
                    active_listening: rating("ratings.activeListening", r.active_listening)?,
                    curiosity: rating("ratings.curiosity", r.curiosity)?,
                    patience: rating("ratings.patience", r.patience)?,
                    growth_mindset: rating("ratings.growthMindset", r.growth_mindset)?,
                },
                strengths: long("strengths", input.strengths.as_deref())?,
                improvements: long("improvements", input.improvements.as_deref())?,
                visibility: input.visibility.into(),
                given_at: Utc::now(),
            },
        };
        let done = pair_command(ctx, "giveFeedback", c, input.idempotency_key, fp).await?;
        let feedback_id = replayed_id(&done, "feedbackId").map_or(feedback_id, FeedbackId::from_uuid);
        Ok(FeedbackPayload { position: done.position, replayed: done.replayed, pair_id, feedback_id })
    }

    /// Set a goal for oneself.
    async fn set_goal(&self, ctx: &Context<'_>, input: SetGoalInput) -> async_graphql::Result<GoalPayload> {
        let access = check(ctx, "setGoal")?;
        let fp = format!("{input:?}");
        let pair_id: PairId = parse_id("pairId", &input.pair_id)?;
        require_member_if_own(ctx, access, pair_id).await?;
        let owner = actor_in_pair(ctx, access, None, "ownerId")?;
        let goal_id = GoalId::new();
        let c = PairCommand::SetGoal {
            pair_id,
            goal: SetGoal {
                goal_id,
                owner,
                title: short("title", &input.title)?,
                description: long("description", input.description.as_deref())?,
                due_on: input.due_on,
                accountability_partner: input
                    .accountability_partner_id
                    .as_ref()
                    .map(|p| parse_id("accountabilityPartnerId", p))
                    .transpose()?,
                set_on: today(),
            },
        };
        let done = pair_command(ctx, "setGoal", c, input.idempotency_key, fp).await?;
        let goal_id = replayed_id(&done, "goalId").map_or(goal_id, GoalId::from_uuid);
        Ok(GoalPayload { position: done.position, replayed: done.replayed, pair_id, goal_id })
    }

    /// Record progress on a goal (its owner or accountability partner).
    async fn record_goal_progress(
        &self,
        ctx: &Context<'_>,
        input: RecordGoalProgressInput,
    ) -> async_graphql::Result<GoalPayload> {
        let access = check(ctx, "recordGoalProgress")?;
        let fp = format!("{input:?}");
        let pair_id: PairId = parse_id("pairId", &input.pair_id)?;
        require_member_if_own(ctx, access, pair_id).await?;
        let goal_id: GoalId = parse_id("goalId", &input.goal_id)?;
        let by = actor_in_pair(ctx, access, None, "byId")?;
        let c = PairCommand::RecordGoalProgress {
            pair_id,
            goal_id,
            by,
            percent: input.percent.map(|p| int(Percent::parse, "percent", p)).transpose()?,
            note: long("note", input.note.as_deref())?,
            recorded_on: today(),
        };
        let done = pair_command(ctx, "recordGoalProgress", c, input.idempotency_key, fp).await?;
        Ok(GoalPayload { position: done.position, replayed: done.replayed, pair_id, goal_id })
    }

    /// Complete one's goal.
    async fn complete_goal(&self, ctx: &Context<'_>, input: CloseGoalInput) -> async_graphql::Result<GoalPayload> {
        let access = check(ctx, "completeGoal")?;
        let fp = format!("{input:?}");
        let pair_id: PairId = parse_id("pairId", &input.pair_id)?;
        require_member_if_own(ctx, access, pair_id).await?;
        let goal_id: GoalId = parse_id("goalId", &input.goal_id)?;
        let by = actor_in_pair(ctx, access, None, "byId")?;
        let c = PairCommand::CompleteGoal {
            pair_id,
            goal_id,
            by,
            note: long("note", input.note.as_deref())?,
            completed_on: today(),
        };
        let done = pair_command(ctx, "completeGoal", c, input.idempotency_key, fp).await?;
        Ok(GoalPayload { position: done.position, replayed: done.replayed, pair_id, goal_id })
    }

    /// Abandon one's goal.
    async fn abandon_goal(&self, ctx: &Context<'_>, input: CloseGoalInput) -> async_graphql::Result<GoalPayload> {
        let access = check(ctx, "abandonGoal")?;
        let fp = format!("{input:?}");
        let pair_id: PairId = parse_id("pairId", &input.pair_id)?;
        require_member_if_own(ctx, access, pair_id).await?;
        let goal_id: GoalId = parse_id("goalId", &input.goal_id)?;
        let by = actor_in_pair(ctx, access, None, "byId")?;
        let c = PairCommand::AbandonGoal {
            pair_id,
            goal_id,
            by,
            reason: long("note", input.note.as_deref())?,
            abandoned_on: today(),
        };
        let done = pair_command(ctx, "abandonGoal", c, input.idempotency_key, fp).await?;
        Ok(GoalPayload { position: done.position, replayed: done.replayed, pair_id, goal_id })
    }

    /// Pause a pair.
    async fn pause_pair(&self, ctx: &Context<'_>, input: PausePairInput) -> async_graphql::Result<PairPayload> {
        let access = check(ctx, "pausePair")?;
        let fp = format!("{input:?}");
        let pair_id: PairId = parse_id("pairId", &input.pair_id)?;
        require_member_if_own(ctx, access, pair_id).await?;
        let c = PairCommand::Pause {
            pair_id,
            reason: long("reason", input.reason.as_deref())?,
            paused_on: today(),
            until: input.until,
        };
        let done = pair_command(ctx, "pausePair", c, input.idempotency_key, fp).await?;
        Ok(pair_payload(&done, pair_id))
    }

    /// Resume a paused pair.
    async fn resume_pair(&self, ctx: &Context<'_>, input: ResumePairInput) -> async_graphql::Result<PairPayload> {
        let access = check(ctx, "resumePair")?;
        let fp = format!("{input:?}");
        let pair_id: PairId = parse_id("pairId", &input.pair_id)?;
        require_member_if_own(ctx, access, pair_id).await?;
        let done = pair_command(
            ctx,
            "resumePair",
            PairCommand::Resume { pair_id, resumed_on: today() },
            input.idempotency_key,
            fp,
        )
        .await?;
        Ok(pair_payload(&done, pair_id))
    }

    /// Dissolve a pair.
    async fn dissolve_pair(&self, ctx: &Context<'_>, input: DissolvePairInput) -> async_graphql::Result<PairPayload> {
        let access = check(ctx, "dissolvePair")?;
        let fp = format!("{input:?}");
        let pair_id: PairId = parse_id("pairId", &input.pair_id)?;
        require_member_if_own(ctx, access, pair_id).await?;
        let c = PairCommand::Dissolve {
            pair_id,
            reason: input.reason.into(),
            note: long("note", input.note.as_deref())?,
            dissolved_on: today(),
        };
        let done = pair_command(ctx, "dissolvePair", c, input.idempotency_key, fp).await?;
        Ok(pair_payload(&done, pair_id))
    }
}

/// The id field of the first committed event (a replay returns the first
/// call's ids, not the ones minted for this call).
fn replayed_id(done: &Committed, field: &str) -> Option<uuid::Uuid> {
    done.events.first()?.data.get(field)?.as_str()?.parse().ok()
}
