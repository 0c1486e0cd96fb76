//! Mutations of programs and their enrolments.

use async_graphql::{Context, ID, InputObject, Object};
use chrono::NaiveDate;
use tandem_commands::Command;
use tandem_domain::program::{EnrolParticipant, LaunchProgram, MAX_TAGS, ProgramChanges, ProgramCommand};
use tandem_domain::values::{CadenceDays, GroupFormat, LevelGap, ShortText};
use tandem_domain::{DomainError, PersonId, ProgramId};

use super::{
    Acting, Commit, actor, at_most, committed_stream, date_or, int, long, opt_date, opt_short, payload, person,
    program, run, short, today,
};
use crate::error::ApiError;
use crate::schema::check;
use crate::schema::types::enums::{GroupKind, Purpose};
use crate::schema::types::{Person, Program, parse_id};

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

/// The group format of a launch, with the domain's refusals named after
/// the input's fields (`minSize`, `maxSize`).
fn format(i: &LaunchProgramInput) -> Result<GroupFormat, ApiError> {
    match i.kind {
        GroupKind::Pairs => match (i.min_size, i.max_size) {
            (Some(m), _) if m != 2 => Err(ApiError::bad_input("minSize", "pairs always have two members")),
            (_, Some(m)) if m != 2 => Err(ApiError::bad_input("maxSize", "pairs always have two members")),
            _ => Ok(GroupFormat::PAIRS),
        },
        GroupKind::Circles => {
            GroupFormat::circles(i64::from(i.min_size.unwrap_or(3)), i64::from(i.max_size.unwrap_or(6))).map_err(|e| {
                let field = if e.field() == Some("format.minSize") { "minSize" } else { "maxSize" };
                match e {
                    DomainError::InvalidInput { reason, .. } => ApiError::bad_input(field, format!("{field} {reason}")),
                    other => other.into(),
                }
            })
        }
    }
}

impl TryFrom<&LaunchProgramInput> for LaunchProgram {
    type Error = ApiError;
    fn try_from(i: &LaunchProgramInput) -> Result<Self, ApiError> {
        Ok(Self {
            program_id: ProgramId::new(),
            name: short("name", &i.name)?,
            description: long("description", i.description.as_deref())?,
            purpose: i.purpose.into(),
            format: format(i)?,
            max_level_gap: int(LevelGap::parse, "maxLevelGap", i.max_level_gap)?,
            cadence_days: int(CadenceDays::parse, "cadenceDays", i.cadence_days)?,
            starts_on: date_or("startsOn", i.starts_on, today)?,
            ends_on: opt_date("endsOn", i.ends_on)?,
        })
    }
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

impl TryFrom<&UpdateProgramInput> for ProgramCommand {
    type Error = ApiError;
    fn try_from(i: &UpdateProgramInput) -> Result<Self, ApiError> {
        let ends_on = match (opt_date("endsOn", i.ends_on)?, i.clear_ends_on.unwrap_or(false)) {
            (Some(_), true) => return Err(ApiError::bad_input("clearEndsOn", "give endsOn or clearEndsOn, not both")),
            (Some(d), false) => Some(Some(d)),
            (None, true) => Some(None),
            (None, false) => None,
        };
        let changes = ProgramChanges {
            name: opt_short("name", i.name.as_deref())?,
            description: i.description.as_deref().map(|s| long("description", Some(s))).transpose()?,
            max_level_gap: i.max_level_gap.map(|g| int(LevelGap::parse, "maxLevelGap", g)).transpose()?,
            cadence_days: i.cadence_days.map(|d| int(CadenceDays::parse, "cadenceDays", d)).transpose()?,
            ends_on,
        };
        Ok(Self::Update { program_id: parse_id("programId", &i.program_id)?, changes })
    }
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

impl TryFrom<&CloseProgramInput> for ProgramCommand {
    type Error = ApiError;
    fn try_from(i: &CloseProgramInput) -> Result<Self, ApiError> {
        Ok(Self::Close {
            program_id: parse_id("programId", &i.program_id)?,
            closed_on: date_or("closedOn", i.closed_on, today)?,
            reason: long("reason", i.reason.as_deref())?,
        })
    }
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

/// A list of tags of an enrolment.
fn tags(field: &'static str, list: Option<&Vec<String>>) -> Result<Vec<ShortText>, ApiError> {
    at_most(field, list.map_or(&[][..], Vec::as_slice).iter().collect(), MAX_TAGS)?
        .into_iter()
        .map(|t| short(field, t))
        .collect()
}

impl TryFrom<Acting<'_, EnrolParticipantInput>> for EnrolParticipant {
    type Error = ApiError;
    fn try_from(a: Acting<'_, EnrolParticipantInput>) -> Result<Self, ApiError> {
        let i = a.input;
        Ok(Self {
            program_id: parse_id("programId", &i.program_id)?,
            person_id: a.by,
            enrolled_on: date_or("enrolledOn", i.enrolled_on, today)?,
            interests: tags("interests", i.interests.as_ref())?,
            skills: tags("skills", i.skills.as_ref())?,
            wants_to_work_on: long("wantsToWorkOn", i.wants_to_work_on.as_deref())?,
        })
    }
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

impl TryFrom<Acting<'_, WithdrawParticipantInput>> for ProgramCommand {
    type Error = ApiError;
    fn try_from(a: Acting<'_, WithdrawParticipantInput>) -> Result<Self, ApiError> {
        let i = a.input;
        Ok(Self::Withdraw {
            program_id: parse_id("programId", &i.program_id)?,
            person_id: a.by,
            withdrew_on: date_or("withdrewOn", i.withdrew_on, today)?,
            reason: long("reason", i.reason.as_deref())?,
        })
    }
}

payload!(
    /// The result of `launchProgram`.
    LaunchProgramPayload { program_id: ProgramId }
    /// The program launched.
    program: Program = |self, ctx| program(ctx, self.program_id).await?;
);
payload!(
    /// The result of `updateProgram`.
    UpdateProgramPayload { program_id: ProgramId }
    /// The program after the change.
    program: Program = |self, ctx| program(ctx, self.program_id).await?;
);
payload!(
    /// The result of `closeProgram`.
    CloseProgramPayload { program_id: ProgramId }
    /// The program closed.
    program: Program = |self, ctx| program(ctx, self.program_id).await?;
);
payload!(
    /// The result of `enrolParticipant`.
    EnrolParticipantPayload { program_id: ProgramId, person_id: PersonId }
    /// The program enrolled in.
    program: Program = |self, ctx| program(ctx, self.program_id).await?;
    /// The person enrolled, as the caller may see them.
    person: Person = |self, ctx| person(ctx, self.person_id).await?;
);
payload!(
    /// The result of `withdrawParticipant`.
    WithdrawParticipantPayload { program_id: ProgramId, person_id: PersonId }
    /// The program withdrawn from.
    program: Program = |self, ctx| program(ctx, self.program_id).await?;
    /// The person withdrawn, as the caller may see them.
    person: Person = |self, ctx| person(ctx, self.person_id).await?;
);

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
    ) -> async_graphql::Result<LaunchProgramPayload> {
        check(ctx, "launchProgram")?;
        let c = LaunchProgram::try_from(&input)?;
        let minted = c.program_id;
        let key = input.idempotency_key.as_deref();
        let done = run(ctx, "launchProgram", Command::Program(ProgramCommand::Launch(c)), key, &input).await?;
        let program_id = committed_stream(&done).map_or(minted, ProgramId::from_uuid);
        Ok(LaunchProgramPayload { commit: Commit::new(&done), program_id })
    }

    /// Change a program's settings.
    async fn update_program(
        &self,
        ctx: &Context<'_>,
        input: UpdateProgramInput,
    ) -> async_graphql::Result<UpdateProgramPayload> {
        check(ctx, "updateProgram")?;
        let c = ProgramCommand::try_from(&input)?;
        let program_id = c.program_id();
        let done = run(ctx, "updateProgram", Command::Program(c), input.idempotency_key.as_deref(), &input).await?;
        Ok(UpdateProgramPayload { commit: Commit::new(&done), program_id })
    }

    /// Close a program; its pairs are dissolved.
    async fn close_program(
        &self,
        ctx: &Context<'_>,
        input: CloseProgramInput,
    ) -> async_graphql::Result<CloseProgramPayload> {
        check(ctx, "closeProgram")?;
        let c = ProgramCommand::try_from(&input)?;
        let program_id = c.program_id();
        let done = run(ctx, "closeProgram", Command::Program(c), input.idempotency_key.as_deref(), &input).await?;
        Ok(CloseProgramPayload { commit: Commit::new(&done), program_id })
    }

    /// Enrol a person in a program.
    async fn enrol_participant(
        &self,
        ctx: &Context<'_>,
        input: EnrolParticipantInput,
    ) -> async_graphql::Result<EnrolParticipantPayload> {
        let access = check(ctx, "enrolParticipant")?;
        let by = actor(ctx, access, input.person_id.as_ref(), "personId")?;
        let c = EnrolParticipant::try_from(Acting { input: &input, by })?;
        let (program_id, person_id) = (c.program_id, c.person_id);
        let key = input.idempotency_key.as_deref();
        let done = run(ctx, "enrolParticipant", Command::Program(ProgramCommand::Enrol(c)), key, &input).await?;
        Ok(EnrolParticipantPayload { commit: Commit::new(&done), program_id, person_id })
    }

    /// Withdraw a person from a program.
    async fn withdraw_participant(
        &self,
        ctx: &Context<'_>,
        input: WithdrawParticipantInput,
    ) -> async_graphql::Result<WithdrawParticipantPayload> {
        let access = check(ctx, "withdrawParticipant")?;
        let by = actor(ctx, access, input.person_id.as_ref(), "personId")?;
        let c = ProgramCommand::try_from(Acting { input: &input, by })?;
        let program_id = c.program_id();
        let key = input.idempotency_key.as_deref();
        let done = run(ctx, "withdrawParticipant", Command::Program(c), key, &input).await?;
        Ok(WithdrawParticipantPayload { commit: Commit::new(&done), program_id, person_id: by })
    }
}
