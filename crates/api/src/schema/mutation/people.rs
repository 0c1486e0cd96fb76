//! Mutations of people: registration from the HRIS, dated changes, leaving,
//! rejoining and erasure.

use std::sync::Arc;

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::NaiveDate;
use tandem_commands::Command;
use tandem_domain::PersonId;
use tandem_domain::person::{PersonChanges, PersonCommand, RegisterPerson, UpdatePerson};
use tandem_domain::values::{Email, ExternalId, Level, ShortText};
use tandem_hris::import::{ImportOptions, Importer};
use tandem_hris::sync::{PersonRecord, SyncCode, SyncError, SyncKind, Syncer, camel_case, field};
use tandem_store::Actor;

use super::{
    Commit, committed_stream, date, date_or, idempotency_key, int, opt_id, opt_short, payload, person, run, short,
    today,
};
use crate::error::ApiError;
use crate::schema::check;
use crate::schema::types::enums::LeaveReason;
use crate::schema::types::{Person, parse_id};
use crate::schema::{state, viewer};

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

/// Most people one `upsertPeople` call takes.
pub const MAX_UPSERT: usize = 500;

/// One person as the HRIS has them, keyed by external id. A field left out
/// (or null) stays as it is; a new person needs name, email, department,
/// title and level.
#[derive(InputObject, Debug)]
pub struct PersonUpsertInput {
    /// The HRIS's id of the person (compared without regard to case).
    pub external_id: String,
    /// Full name.
    pub name: Option<String>,
    /// E-mail address.
    pub email: Option<String>,
    /// Job title.
    pub title: Option<String>,
    /// Department.
    pub department: Option<String>,
    /// Career level (1 = most junior).
    pub level: Option<i32>,
    /// The manager's external id: a person of this call (in any order) or
    /// one already in Tandem.
    pub manager_external_id: Option<String>,
    /// Set to true to clear the manager.
    pub clear_manager: Option<bool>,
    /// Where they work.
    pub location: Option<String>,
    /// Set to true to clear the location.
    pub clear_location: Option<bool>,
    /// First day of employment (default: the effective date, for a new
    /// person); it cannot change once the person exists.
    pub hired_on: Option<NaiveDate>,
    /// False: they left (on `leftOn`, else on the effective date); true:
    /// they are in the organisation (they rejoin if they had left).
    pub active: Option<bool>,
    /// The day they left.
    pub left_on: Option<NaiveDate>,
    /// Why they left (default OTHER).
    pub leave_reason: Option<LeaveReason>,
}

/// `upsertPeople`: people keyed by external id, created or brought up to
/// date.
#[derive(InputObject, Debug)]
pub struct UpsertPeopleInput {
    /// At most 500 people, each external id once.
    pub people: Vec<PersonUpsertInput>,
    /// The day the changes take effect (default today); may be in the past
    /// or the future.
    pub effective_on: Option<NaiveDate>,
    /// Mixed into the idempotency keys of the changes: the same call with
    /// the same key appends each change once. A call without one is
    /// idempotent all the same, by content.
    pub idempotency_key: Option<String>,
}

fn sync_text(column: &'static str, s: Option<&str>) -> Result<Option<ShortText>, SyncError> {
    s.map(|s| ShortText::parse(column, s).map_err(|e| SyncError::from_domain(column, &e))).transpose()
}

fn sync_date(column: &'static str, d: Option<NaiveDate>) -> Result<Option<NaiveDate>, SyncError> {
    d.map(|d| {
        date(column, d).map_err(|_| SyncError::new(column, SyncCode::InvalidValue, "must be in the years 0001 to 9999"))
    })
    .transpose()
}

fn both(column: &'static str, other: &str) -> SyncError {
    SyncError::new(column, SyncCode::InvalidValue, format!("give {} or {other}, not both", camel_case(column)))
}

impl TryFrom<&PersonUpsertInput> for PersonRecord {
    type Error = SyncError;
    fn try_from(i: &PersonUpsertInput) -> Result<Self, SyncError> {
        let ext = |column: &'static str, s: &str| {
            ExternalId::parse(column, s).map_err(|e| SyncError::from_domain(column, &e))
        };
        let mut r = PersonRecord::new(ext(field::EXTERNAL_ID, &i.external_id)?);
        r.name = sync_text(field::NAME, i.name.as_deref())?;
        r.email = i
            .email
            .as_deref()
            .map(|s| Email::parse(field::EMAIL, s).map_err(|e| SyncError::from_domain(field::EMAIL, &e)))
            .transpose()?;
        r.title = sync_text(field::TITLE, i.title.as_deref())?;
        r.department = sync_text(field::DEPARTMENT, i.department.as_deref())?;
        r.level = i
            .level
            .map(|l| Level::parse(field::LEVEL, i64::from(l)).map_err(|e| SyncError::from_domain(field::LEVEL, &e)))
            .transpose()?;
        r.manager = match (i.manager_external_id.as_deref(), i.clear_manager.unwrap_or(false)) {
            (Some(_), true) => return Err(both(field::MANAGER_EXTERNAL_ID, "clearManager")),
            (Some(m), false) => Some(Some(ext(field::MANAGER_EXTERNAL_ID, m)?)),
            (None, true) => Some(None),
            (None, false) => None,
        };
        if r.manager_key().is_some_and(|m| m == r.key()) {
            return Err(SyncError::new(
                field::MANAGER_EXTERNAL_ID,
                SyncCode::ManagementCycle,
                "a person cannot manage themself",
            ));
        }
        r.location = match (i.location.as_deref(), i.clear_location.unwrap_or(false)) {
            (Some(_), true) => return Err(both(field::LOCATION, "clearLocation")),
            (Some(l), false) => Some(sync_text(field::LOCATION, Some(l))?),
            (None, true) => Some(None),
            (None, false) => None,
        };
        r.hired_on = sync_date(field::HIRED_ON, i.hired_on)?;
        let left_on = sync_date(field::LEFT_ON, i.left_on)?;
        let reason = i.leave_reason.map_or(tandem_domain::values::LeaveReason::Other, Into::into);
        r.left = match (i.active, left_on) {
            (Some(true), Some(_)) => {
                return Err(SyncError::new(field::LEFT_ON, SyncCode::InvalidValue, "an active person has no leftOn"));
            }
            (Some(true), None) => Some(None),
            (_, Some(d)) => Some(Some((d, reason))),
            // Left on the effective date, filled in below.
            (Some(false), None) => Some(Some((NaiveDate::MIN, reason))),
            (None, None) => None,
        };
        if let (Some(h), Some(Some((l, _)))) = (r.hired_on, r.left)
            && l != NaiveDate::MIN
            && l < h
        {
            return Err(SyncError::new(field::LEFT_ON, SyncCode::InvalidValue, "must not be before hiredOn"));
        }
        Ok(r)
    }
}

/// What `upsertPeople` did with one person.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpsertStatus {
    /// Registered.
    Created,
    /// Profile or org facts changed on the effective date.
    Updated,
    /// Recorded as having left.
    Left,
    /// Back in the organisation.
    Rejoined,
    /// Already as given: nothing appended.
    Unchanged,
    /// Refused: see `error`; nothing of this person was written.
    Failed,
}

impl From<SyncKind> for UpsertStatus {
    fn from(k: SyncKind) -> Self {
        match k {
            SyncKind::Created => Self::Created,
            SyncKind::Updated => Self::Updated,
            SyncKind::Left => Self::Left,
            SyncKind::Rejoined => Self::Rejoined,
            SyncKind::Unchanged => Self::Unchanged,
        }
    }
}

/// Why a person of `upsertPeople` was refused.
#[derive(SimpleObject, Clone, Debug)]
pub struct UpsertError {
    /// INVALID_VALUE, REQUIRED, DUPLICATE_EXTERNAL_ID, UNKNOWN_MANAGER,
    /// MANAGER_LEFT, MANAGEMENT_CYCLE, MANAGER_FAILED, IMMUTABLE, ERASED,
    /// REFUSED, BUSY or INTERNAL (see docs/INTEGRATORS.md).
    pub code: String,
    /// The input field at fault, as a path: `people.3.email`.
    pub field: String,
    /// What is wrong (never quoting the value).
    pub message: String,
}

/// One person's result of `upsertPeople`, in input order.
pub struct PersonUpsertResult {
    commit: Arc<Commit>,
    index: usize,
    status: UpsertStatus,
    person_id: Option<PersonId>,
    error: Option<UpsertError>,
}

/// One person's result of `upsertPeople`, in input order.
#[Object]
impl PersonUpsertResult {
    /// The position of the person in `people` (0-based).
    async fn index(&self) -> i32 {
        i32::try_from(self.index).unwrap_or(i32::MAX)
    }
    /// What happened.
    async fn status(&self) -> UpsertStatus {
        self.status
    }
    /// Why it was refused; with another status, what failed after the
    /// change of that status was committed (the committed part stands).
    async fn error(&self) -> Option<&UpsertError> {
        self.error.as_ref()
    }
    /// The person's id, once they exist.
    async fn person_id(&self) -> Option<ID> {
        self.person_id.map(|p| ID(p.to_string()))
    }
    /// The person after the call (read once the read models reach
    /// `position`).
    async fn person(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Person>> {
        let Some(id) = self.person_id else { return Ok(None) };
        self.commit.settle(ctx).await;
        Ok(person(ctx, id).await?)
    }
}

/// The result of `upsertPeople`.
pub struct UpsertPeoplePayload {
    commit: Arc<Commit>,
    results: Vec<PersonUpsertResult>,
}

/// The result of `upsertPeople`.
#[Object]
impl UpsertPeoplePayload {
    /// The commit position of the last change; pass it as `after` to subscriptions or the event feed.
    async fn position(&self) -> String {
        self.commit.position.to_string()
    }
    /// True when every change was the first result of an earlier call with the same idempotency key.
    async fn replayed(&self) -> bool {
        self.commit.replayed
    }
    /// True when the people of this payload were read after every read model reached `position`
    /// (read-your-writes); false when they did not get there in time (the changes are committed
    /// all the same: do not retry).
    async fn consistent(&self, ctx: &Context<'_>) -> bool {
        self.commit.settle(ctx).await
    }
    /// One result per person, in input order.
    async fn results(&self) -> &[PersonUpsertResult] {
        &self.results
    }
    /// How many people had each status.
    async fn created(&self) -> i32 {
        self.count(UpsertStatus::Created)
    }
    /// People updated.
    async fn updated(&self) -> i32 {
        self.count(UpsertStatus::Updated)
    }
    /// People recorded as having left.
    async fn left(&self) -> i32 {
        self.count(UpsertStatus::Left)
    }
    /// People back in the organisation.
    async fn rejoined(&self) -> i32 {
        self.count(UpsertStatus::Rejoined)
    }
    /// People already as given.
    async fn unchanged(&self) -> i32 {
        self.count(UpsertStatus::Unchanged)
    }
    /// People refused.
    async fn failed(&self) -> i32 {
        self.count(UpsertStatus::Failed)
    }
}

impl UpsertPeoplePayload {
    fn count(&self, status: UpsertStatus) -> i32 {
        i32::try_from(self.results.iter().filter(|r| r.status == status).count()).unwrap_or(i32::MAX)
    }
}

fn upsert_error(index: usize, e: SyncError) -> UpsertError {
    UpsertError {
        code: e.code.as_str().to_owned(),
        field: format!("people.{index}.{}", camel_case(e.field)),
        message: e.message,
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

    /// Create or bring up to date up to 500 people keyed by external id,
    /// with a result per person (one refused person does not stop the
    /// others). Re-sending the same people appends nothing.
    async fn upsert_people(
        &self,
        ctx: &Context<'_>,
        input: UpsertPeopleInput,
    ) -> async_graphql::Result<UpsertPeoplePayload> {
        check(ctx, "upsertPeople")?;
        if input.people.len() > MAX_UPSERT {
            return Err(ApiError::bad_input("people", format!("people takes at most {MAX_UPSERT} entries")).into());
        }
        let key = idempotency_key(input.idempotency_key.as_deref())?;
        let effective_on = date_or("effectiveOn", input.effective_on, today)?;
        let records = input
            .people
            .iter()
            .map(|p| {
                PersonRecord::try_from(p).map(|mut r| {
                    if let Some(Some((d, _))) = &mut r.left
                        && *d == NaiveDate::MIN
                    {
                        *d = effective_on;
                    }
                    r
                })
            })
            .collect();
        let principal = viewer(ctx).ok_or(ApiError::Unauthenticated)?;
        let actor = Actor { subject: principal.subject().to_owned(), role: principal.actor_role().to_owned() };
        let st = state(ctx);
        let importer = Importer::new(st.pool.clone(), Syncer::new(st.commands.clone(), actor), st.waiter.clone());
        let mut opts = ImportOptions::new(effective_on);
        opts.salt = format!("upsertPeople|{}", key.unwrap_or_default());
        opts.concurrency = 64;
        opts.chunk = MAX_UPSERT;
        let done = importer.upsert(records, &opts).await.map_err(ApiError::internal)?;
        let commit = Arc::new(Commit {
            position: done.position,
            replayed: done.replayed,
            consistent: tokio::sync::OnceCell::new(),
        });
        let results = done
            .items
            .into_iter()
            .enumerate()
            .map(|(index, item)| PersonUpsertResult {
                commit: commit.clone(),
                index,
                status: item.kind.map_or(UpsertStatus::Failed, Into::into),
                person_id: item.person_id,
                error: item.error.map(|e| upsert_error(index, e)),
            })
            .collect();
        Ok(UpsertPeoplePayload { commit, results })
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
