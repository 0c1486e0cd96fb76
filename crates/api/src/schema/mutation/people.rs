//! Mutations of people: registration from the HRIS, dated changes, leaving,
//! rejoining and erasure.

use async_graphql::{Context, ID, InputObject, Object};
use chrono::NaiveDate;
use tandem_commands::Command;
use tandem_domain::PersonId;
use tandem_domain::person::{PersonChanges, PersonCommand, RegisterPerson, UpdatePerson};
use tandem_domain::values::{Email, ExternalId, Level};

use super::{Commit, committed_stream, date_or, int, opt_id, opt_short, payload, person, run, short, today};
use crate::error::ApiError;
use crate::schema::check;
use crate::schema::types::enums::LeaveReason;
use crate::schema::types::{Person, parse_id};

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

impl TryFrom<&RegisterPersonInput> for RegisterPerson {
    type Error = ApiError;
    fn try_from(i: &RegisterPersonInput) -> Result<Self, ApiError> {
        Ok(Self {
            person_id: PersonId::new(),
            external_id: ExternalId::parse("externalId", &i.external_id)?,
            name: short("name", &i.name)?,
            email: Email::parse("email", &i.email)?,
            department: short("department", &i.department)?,
            title: short("title", &i.title)?,
            level: int(Level::parse, "level", i.level)?,
            manager: opt_id("managerId", i.manager_id.as_ref())?,
            location: opt_short("location", i.location.as_deref())?,
            hired_on: date_or("hiredOn", i.hired_on, today)?,
        })
    }
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

impl TryFrom<&UpdatePersonInput> for UpdatePerson {
    type Error = ApiError;
    fn try_from(i: &UpdatePersonInput) -> Result<Self, ApiError> {
        let manager = match (i.manager_id.as_ref(), i.clear_manager.unwrap_or(false)) {
            (Some(_), true) => {
                return Err(ApiError::bad_input("clearManager", "give managerId or clearManager, not both"));
            }
            (Some(m), false) => Some(Some(parse_id("managerId", m)?)),
            (None, true) => Some(None),
            (None, false) => None,
        };
        let changes = PersonChanges {
            name: opt_short("name", i.name.as_deref())?,
            email: i.email.as_deref().map(|s| Email::parse("email", s)).transpose()?,
            department: opt_short("department", i.department.as_deref())?,
            title: opt_short("title", i.title.as_deref())?,
            level: i.level.map(|l| int(Level::parse, "level", l)).transpose()?,
            manager,
            location: opt_short("location", i.location.as_deref())?.map(Some),
        };
        Ok(Self {
            person_id: parse_id("personId", &i.person_id)?,
            changes,
            effective_on: date_or("effectiveOn", i.effective_on, today)?,
        })
    }
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

impl TryFrom<&RecordPersonLeftInput> for PersonCommand {
    type Error = ApiError;
    fn try_from(i: &RecordPersonLeftInput) -> Result<Self, ApiError> {
        Ok(Self::RecordLeft {
            person_id: parse_id("personId", &i.person_id)?,
            left_on: date_or("leftOn", i.left_on, today)?,
            reason: i.reason.into(),
        })
    }
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

impl TryFrom<&RejoinPersonInput> for PersonCommand {
    type Error = ApiError;
    fn try_from(i: &RejoinPersonInput) -> Result<Self, ApiError> {
        Ok(Self::Rejoin {
            person_id: parse_id("personId", &i.person_id)?,
            rejoined_on: date_or("rejoinedOn", i.rejoined_on, today)?,
        })
    }
}

/// Erase a person's personal data.
#[derive(InputObject, Debug)]
pub struct ErasePersonInput {
    /// Makes retries safe: the same key returns the first result.
    pub idempotency_key: Option<String>,
    /// The person.
    pub person_id: ID,
}

impl TryFrom<&ErasePersonInput> for PersonCommand {
    type Error = ApiError;
    fn try_from(i: &ErasePersonInput) -> Result<Self, ApiError> {
        Ok(Self::Erase { person_id: parse_id("personId", &i.person_id)? })
    }
}

payload!(
    /// The result of `registerPerson`.
    RegisterPersonPayload { person_id: PersonId }
    /// The person registered.
    person: Person = |self, ctx| person(ctx, self.person_id).await?;
);
payload!(
    /// The result of `updatePerson`.
    UpdatePersonPayload { person_id: PersonId }
    /// The person after the change.
    person: Person = |self, ctx| person(ctx, self.person_id).await?;
);
payload!(
    /// The result of `recordPersonLeft`.
    RecordPersonLeftPayload { person_id: PersonId }
    /// The person who left.
    person: Person = |self, ctx| person(ctx, self.person_id).await?;
);
payload!(
    /// The result of `rejoinPerson`.
    RejoinPersonPayload { person_id: PersonId }
    /// The person who came back.
    person: Person = |self, ctx| person(ctx, self.person_id).await?;
);
payload!(
    /// The result of `erasePerson`.
    ErasePersonPayload { person_id: PersonId }
    /// The person, with their personal data erased.
    person: Person = |self, ctx| person(ctx, self.person_id).await?;
);

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
    ) -> async_graphql::Result<RegisterPersonPayload> {
        check(ctx, "registerPerson")?;
        let c = RegisterPerson::try_from(&input)?;
        let minted = c.person_id;
        let key = input.idempotency_key.as_deref();
        let done = run(ctx, "registerPerson", Command::Person(PersonCommand::Register(c)), key, &input).await?;
        let person_id = committed_stream(&done).map_or(minted, PersonId::from_uuid);
        Ok(RegisterPersonPayload { commit: Commit::new(&done), person_id })
    }

    /// Update a person.
    async fn update_person(
        &self,
        ctx: &Context<'_>,
        input: UpdatePersonInput,
    ) -> async_graphql::Result<UpdatePersonPayload> {
        check(ctx, "updatePerson")?;
        let c = UpdatePerson::try_from(&input)?;
        let person_id = c.person_id;
        let key = input.idempotency_key.as_deref();
        let done = run(ctx, "updatePerson", Command::Person(PersonCommand::Update(c)), key, &input).await?;
        Ok(UpdatePersonPayload { commit: Commit::new(&done), person_id })
    }

    /// Record that a person left; their pairs are dissolved.
    async fn record_person_left(
        &self,
        ctx: &Context<'_>,
        input: RecordPersonLeftInput,
    ) -> async_graphql::Result<RecordPersonLeftPayload> {
        check(ctx, "recordPersonLeft")?;
        let c = PersonCommand::try_from(&input)?;
        let person_id = c.person_id();
        let done = run(ctx, "recordPersonLeft", Command::Person(c), input.idempotency_key.as_deref(), &input).await?;
        Ok(RecordPersonLeftPayload { commit: Commit::new(&done), person_id })
    }

    /// Record that a person came back.
    async fn rejoin_person(
        &self,
        ctx: &Context<'_>,
        input: RejoinPersonInput,
    ) -> async_graphql::Result<RejoinPersonPayload> {
        check(ctx, "rejoinPerson")?;
        let c = PersonCommand::try_from(&input)?;
        let person_id = c.person_id();
        let done = run(ctx, "rejoinPerson", Command::Person(c), input.idempotency_key.as_deref(), &input).await?;
        Ok(RejoinPersonPayload { commit: Commit::new(&done), person_id })
    }

    /// Erase a person's personal data from the read models.
    async fn erase_person(
        &self,
        ctx: &Context<'_>,
        input: ErasePersonInput,
    ) -> async_graphql::Result<ErasePersonPayload> {
        check(ctx, "erasePerson")?;
        let c = PersonCommand::try_from(&input)?;
        let person_id = c.person_id();
        let done = run(ctx, "erasePerson", Command::Person(c), input.idempotency_key.as_deref(), &input).await?;
        Ok(ErasePersonPayload { commit: Commit::new(&done), person_id })
    }
}
