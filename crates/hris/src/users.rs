//! The `/Users` operations: reads from the people read model, writes as
//! person commands through [`CommandService::handle`] (so every change is an
//! event with its actor, and the dated org history stays right), then a
//! wait until the read models show the write (read-your-writes).
//!
//! A write is planned from the document the client wants (the POST or PUT
//! body, or the current document with the PATCH applied) against the
//! person as they are:
//! - `active` going false records that the person left (on the configured
//!   termination-date attribute's date, else today), after any other change
//!   in the same request; going true records that they rejoined (today),
//!   before any other change;
//! - profile and org changes are one `UpdatePerson` effective today, which
//!   appends nothing when nothing changes (a deactivated user may be
//!   corrected too, and stays deactivated);
//! - an extension object absent from a PUT body leaves its attributes as
//!   they are, so a client that does not know Tandem's extension (or the
//!   Enterprise one) does not wipe what others set;
//! - `userName` and `hireDate` are fixed once the person exists (the domain
//!   has no command to change them): a different value is `mutability`.
//!
//! DELETE erases the person (RFC 7644 3.6: the resource is gone, every later
//! request for it is 404): they are recorded as having left today unless
//! they already had, then their personal data is erased. The pseudonymous
//! history stays for analysts. The userName stays reserved, so a feed cannot
//! re-create an erased person under a new id by accident.

use std::time::Duration;

use chrono::{NaiveDate, Utc};
use serde_json::{Map, Value};
use sqlx::PgPool;
use tandem_commands::{Command, CommandError, CommandMeta, CommandService};
use tandem_domain::person::{PersonChanges, PersonCommand, RegisterPerson, UpdatePerson};
use tandem_domain::values::{Email, ExternalId, LeaveReason, Level, ShortText};
use tandem_domain::{DomainError, PersonId};
use tandem_projections::Waiter;
use tandem_projections::queries::{self, PersonView};
use tandem_store::{Actor, Cursor};

use crate::error::{HrisError, Result};
use crate::input::{self, ManagerInput, UserInput};
use crate::resource::{UNASSIGNED, User, get_ci, user_document};

/// Settings of the SCIM server.
#[derive(Clone, Debug)]
pub struct ScimConfig {
    /// The SCIM base URL clients use (`https://tandem.example.com/scim/v2`),
    /// for `meta.location` and `$ref`. `None`: from the request's `Host`
    /// and `X-Forwarded-Proto`.
    pub public_base_url: Option<String>,
    /// The attribute path whose date says when a deactivated user left,
    /// e.g. `urn:ietf:params:scim:schemas:extension:tandem:2.0:User:terminationDate`.
    pub termination_date_attribute: String,
    /// How long a write waits for the read models before answering.
    pub read_your_writes_timeout: Duration,
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
}

/// The default termination-date attribute.
pub const DEFAULT_TERMINATION_ATTRIBUTE: &str =
    "urn:ietf:params:scim:schemas:extension:tandem:2.0:User:terminationDate";

impl Default for ScimConfig {
    fn default() -> Self {
        Self {
            public_base_url: None,
            termination_date_attribute: DEFAULT_TERMINATION_ATTRIBUTE.to_owned(),
            read_your_writes_timeout: Duration::from_secs(5),
            max_body_bytes: 1024 * 1024,
        }
    }
}

/// What the SCIM handlers share.
#[derive(Clone)]
pub struct ScimState {
    pub pool: PgPool,
    pub commands: CommandService,
    pub waiter: Waiter,
    pub config: ScimConfig,
}

/// Most people a filter is evaluated over; beyond it a list answers with
/// the first ones only (the read model has no index for arbitrary SCIM
/// filters; the common `userName eq` look-up does not scan).
pub const SCAN_LIMIT: i64 = 200_000;

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

fn internal(e: impl std::error::Error + Send + Sync + 'static) -> HrisError {
    HrisError::internal(e)
}

impl ScimState {
    /// The person behind a SCIM id, unless unknown or erased.
    ///
    /// # Errors
    /// [`HrisError::NotFound`].
    pub async fn get(&self, id: &str) -> Result<User> {
        let not_found = || HrisError::NotFound(format!("no User with id {id:?}"));
        let pid: PersonId = id.parse().map_err(|_| not_found())?;
        let view = queries::person(&self.pool, pid, today()).await.map_err(internal)?;
        let view = view.filter(|p| !p.erased).ok_or_else(not_found)?;
        self.with_external_ids(vec![view]).await?.into_iter().next().ok_or_else(not_found)
    }

    /// The users of `people`, with their externalIds (one query).
    async fn with_external_ids(&self, people: Vec<PersonView>) -> Result<Vec<User>> {
        let ids: Vec<uuid::Uuid> = people.iter().map(|p| p.person_id.as_uuid()).collect();
        let rows: Vec<(uuid::Uuid, Option<String>, i32)> =
            sqlx::query_as("SELECT person_id, external_id, revision FROM scim_external_ids WHERE person_id = ANY($1)")
                .bind(&ids)
                .fetch_all(&self.pool)
                .await
                .map_err(internal)?;
        let mut by_id: std::collections::HashMap<uuid::Uuid, (Option<String>, i32)> =
            rows.into_iter().map(|(id, e, r)| (id, (e, r))).collect();
        Ok(people
            .into_iter()
            .map(|p| {
                let (external_id, revision) = by_id.remove(&p.person_id.as_uuid()).unwrap_or((None, 0));
                User { person: p, external_id, revision }
            })
            .collect())
    }

    /// Records the client's externalId of a person when it differs from
    /// what is kept (`None` removes it); each change bumps the revision.
    async fn set_external_id(&self, person: PersonId, current: &User, wanted: Option<&str>) -> Result<()> {
        if current.external_id.as_deref() == wanted {
            return Ok(());
        }
        sqlx::query(
            // Only for a person not erased: the claim row is held while the
            // value is written, so an erasure (which deletes both) either
            // waits for this write or is seen by it.
            "INSERT INTO scim_external_ids (person_id, external_id)
             SELECT $1, $2 WHERE EXISTS (SELECT 1 FROM person_external_ids WHERE person_id = $1 FOR SHARE)
             ON CONFLICT (person_id) DO UPDATE
                SET external_id = EXCLUDED.external_id, revision = scim_external_ids.revision + 1, updated_at = now()",
        )
        .bind(person.as_uuid())
        .bind(wanted)
        .execute(&self.pool)
        .await
        .map_err(internal)?;
        Ok(())
    }

    /// Every person a filter may match (one indexed look-up for `userName eq`).
    ///
    /// # Errors
    /// Database failures.
    pub async fn candidates(&self, user_name: Option<&str>) -> Result<Vec<User>> {
        let people = match user_name {
            Some(u) => {
                queries::person_by_external_id(&self.pool, u, today()).await.map_err(internal)?.into_iter().collect()
            }
            None => queries::all_people(&self.pool, today(), SCAN_LIMIT).await.map_err(internal)?,
        };
        self.with_external_ids(people.into_iter().filter(|p| !p.erased).collect()).await
    }

    async fn resolve_manager(&self, m: &ManagerInput) -> Result<Option<PersonId>> {
        let ManagerInput::Ref(r) = m else { return Ok(None) };
        if let Ok(id) = r.parse::<PersonId>()
            && let Some(p) = queries::person(&self.pool, id, today()).await.map_err(internal)?
            && !p.erased
        {
            return Ok(Some(p.person_id));
        }
        match queries::person_by_external_id(&self.pool, r, today()).await.map_err(internal)? {
            Some(p) if !p.erased => Ok(Some(p.person_id)),
            _ => Err(HrisError::invalid("manager", format!("no User has the id or userName {r:?}"))),
        }
    }

    /// Creates a user from a POST body.
    ///
    /// # Errors
    /// `uniqueness` for a userName already held (in any case), the input
    /// refusals of [`input::read`], and the domain's refusals.
    pub async fn create(&self, body: Value, actor: &Actor) -> Result<User> {
        let mut doc = object(body)?;
        input::normalize(&mut doc);
        let input = input::read(&doc, &self.config.termination_date_attribute)?;
        if let Some(existing) =
            queries::person_by_external_id(&self.pool, &input.user_name, today()).await.map_err(internal)?
        {
            return Err(taken(&input.user_name, existing.erased));
        }
        let manager = self.resolve_manager(&input.manager).await?;
        let id = PersonId::new();
        let mut commands = vec![register(id, &input, manager)?];
        if input.active == Some(false) {
            commands.push(PersonCommand::RecordLeft {
                person_id: id,
                left_on: input.termination_date.unwrap_or_else(today),
                reason: LeaveReason::Other,
            });
        }
        match self.run(commands, actor).await {
            Err(HrisError::Busy) => {
                // A racing create of the same userName in another case wins
                // the unique guard; the loser is told so.
                match queries::person_by_external_id(&self.pool, &input.user_name, today()).await {
                    Ok(Some(p)) => return Err(taken(&input.user_name, p.erased)),
                    _ => return Err(HrisError::Busy),
                }
            }
            other => other?,
        }
        let created = self.get(&id.to_string()).await?;
        self.set_external_id(id, &created, input.external_id.as_deref()).await?;
        self.get(&id.to_string()).await
    }

    /// Replaces a user with a PUT body.
    ///
    /// # Errors
    /// As [`ScimState::create`], plus `mutability` for a changed userName
    /// or hireDate, and 412 for a stale `If-Match`.
    pub async fn replace(&self, current: &User, body: Value, actor: &Actor) -> Result<User> {
        let mut doc = object(body)?;
        input::normalize(&mut doc);
        // Extensions the client left out keep their values.
        let now = user_document(current, "");
        if let Value::Object(now) = now {
            for urn in crate::resource::EXTENSIONS {
                if get_ci(&doc, urn).is_none()
                    && let Some(v) = now.get(urn)
                {
                    doc.insert(urn.to_owned(), v.clone());
                }
            }
        }
        self.write(current, &doc, actor).await
    }

    /// Applies a PatchOp body to a user.
    ///
    /// # Errors
    /// As [`ScimState::replace`], plus the PATCH refusals of [`crate::patch::apply`].
    pub async fn patch(&self, current: &User, body: &Value, actor: &Actor) -> Result<User> {
        let mut doc = object(user_document(current, ""))?;
        enrich(&mut doc);
        crate::patch::apply(&mut doc, body)?;
        input::normalize(&mut doc);
        self.write(current, &doc, actor).await
    }

    async fn write(&self, current: &User, doc: &Map<String, Value>, actor: &Actor) -> Result<User> {
        let input = input::read(doc, &self.config.termination_date_attribute)?;
        let manager = self.resolve_manager(&input.manager).await?;
        let commands = plan_update(current, &input, manager, today())?;
        self.run(commands, actor).await?;
        self.set_external_id(current.person_id, current, input.external_id.as_deref()).await?;
        self.get(&current.person_id.to_string()).await
    }

    /// Deletes a user: they leave (unless they have) and are erased.
    ///
    /// # Errors
    /// Database and domain failures.
    pub async fn delete(&self, current: &User, actor: &Actor) -> Result<()> {
        let id = current.person_id;
        let mut commands = Vec::new();
        if current.left_on.is_none() {
            let left_on = today().max(current.hired_on);
            commands.push(PersonCommand::RecordLeft { person_id: id, left_on, reason: LeaveReason::Other });
        }
        commands.push(PersonCommand::Erase { person_id: id });
        self.run(commands, actor).await?;
        // The client's id goes with the User.
        sqlx::query("DELETE FROM scim_external_ids WHERE person_id = $1")
            .bind(id.as_uuid())
            .execute(&self.pool)
            .await
            .map_err(internal)?;
        Ok(())
    }

    /// Runs commands in order, then waits for the read models to show them.
    async fn run(&self, commands: Vec<PersonCommand>, actor: &Actor) -> Result<()> {
        let meta = CommandMeta::new(actor.clone());
        let mut last = Cursor::START;
        for c in commands {
            let person = c.person_id();
            let done = self.commands.handle(Command::Person(c), &meta).await.map_err(|e| command_error(e, person))?;
            last = last.max(done.position);
        }
        self.waiter.wait_for(last, self.config.read_your_writes_timeout).await.map_err(internal)
    }
}

fn object(v: Value) -> Result<Map<String, Value>> {
    match v {
        Value::Object(o) => Ok(o),
        _ => Err(HrisError::InvalidSyntax("the body must be a JSON object".into())),
    }
}

/// Tandem keeps one address, its primary work address: the document a
/// PATCH filter (`emails[type eq "work"]`) or a list filter sees says so.
pub fn enrich(doc: &mut Map<String, Value>) {
    if let Some(Value::Array(emails)) = doc.get_mut("emails") {
        for e in emails.iter_mut() {
            if let Value::Object(o) = e {
                o.entry("type").or_insert_with(|| Value::String("work".into()));
                o.entry("primary").or_insert(Value::Bool(true));
            }
        }
    }
}

fn taken(user_name: &str, erased: bool) -> HrisError {
    if erased {
        HrisError::Uniqueness(format!("userName {user_name:?} belonged to a deleted User and stays reserved"))
    } else {
        HrisError::Uniqueness(format!("another User already has userName {user_name:?}"))
    }
}

fn domain(e: DomainError) -> HrisError {
    match e {
        DomainError::InvalidInput { field, reason } => HrisError::invalid(field, reason),
        other => HrisError::invalid("User", other.to_string()),
    }
}

fn text(field: &'static str, v: &str) -> Result<ShortText> {
    ShortText::parse(field, v).map_err(domain)
}

fn email_of(input: &UserInput) -> Result<Email> {
    match &input.email {
        Some(e) => Email::parse("emails", e).map_err(domain),
        // Identity providers' user names are often the address itself.
        None => Email::parse("emails", &input.user_name)
            .map_err(|_| HrisError::invalid("emails", "Tandem needs an e-mail address for every person")),
    }
}

fn name_of(input: &UserInput) -> Result<ShortText> {
    text("displayName", input.display_name.as_deref().unwrap_or(&input.user_name))
}

fn or_unassigned(field: &'static str, v: Option<&String>) -> Result<ShortText> {
    text(field, v.map_or(UNASSIGNED, String::as_str))
}

fn level_of(v: Option<i64>, default: u8) -> Result<Level> {
    Level::parse("level", v.unwrap_or(i64::from(default))).map_err(|_| HrisError::invalid("level", "must be 1 to 30"))
}

fn register(id: PersonId, input: &UserInput, manager: Option<PersonId>) -> Result<PersonCommand> {
    Ok(PersonCommand::Register(RegisterPerson {
        person_id: id,
        external_id: ExternalId::parse("userName", &input.user_name).map_err(domain)?,
        name: name_of(input)?,
        email: email_of(input)?,
        department: or_unassigned("department", input.department.as_ref())?,
        title: or_unassigned("title", input.title.as_ref())?,
        level: level_of(input.level, 1)?,
        manager,
        location: input.location.as_deref().map(|l| text("location", l)).transpose()?,
        hired_on: input.hire_date.unwrap_or_else(today),
    }))
}

/// The commands that turn `current` into what `input` describes.
///
/// # Errors
/// `mutability` for a changed userName or hireDate; `invalidValue` for bad
/// values.
pub fn plan_update(
    current: &PersonView,
    input: &UserInput,
    manager: Option<PersonId>,
    today: NaiveDate,
) -> Result<Vec<PersonCommand>> {
    let id = current.person_id;
    if !current.external_id.as_deref().is_some_and(|x| input.user_name.eq_ignore_ascii_case(x)) {
        return Err(HrisError::Mutability("userName is the person's external id in Tandem and cannot change".into()));
    }
    if input.hire_date.is_some_and(|d| d != current.hired_on) {
        return Err(HrisError::Mutability("hireDate cannot change once the person exists".into()));
    }
    let level = level_of(input.level, u8::try_from(current.level).unwrap_or(1))?;
    let location = input.location.as_deref().map(|l| text("location", l)).transpose()?;
    let changes = PersonChanges {
        name: Some(name_of(input)?),
        email: Some(email_of(input)?),
        department: Some(or_unassigned("department", input.department.as_ref())?),
        title: Some(or_unassigned("title", input.title.as_ref())?),
        level: Some(level),
        manager: Some(manager),
        location: Some(location),
    };
    let changes = without_no_ops(current, changes);
    let was_active = current.left_on.is_none();
    let active = input.active.unwrap_or(was_active);
    let mut commands = Vec::new();
    if !was_active && active {
        let rejoined_on = today.max(current.left_on.unwrap_or(today));
        commands.push(PersonCommand::Rejoin { person_id: id, rejoined_on });
    }
    if !changes.is_empty() {
        commands.push(PersonCommand::Update(UpdatePerson { person_id: id, changes, effective_on: today }));
    }
    if was_active && !active {
        let left_on = input.termination_date.unwrap_or(today);
        commands.push(PersonCommand::RecordLeft { person_id: id, left_on, reason: LeaveReason::Other });
    }
    Ok(commands)
}

/// Drops what equals the current value, so a request that changes nothing
/// plans no command (the domain would append nothing either).
fn without_no_ops(p: &PersonView, mut c: PersonChanges) -> PersonChanges {
    if c.name.as_ref().is_some_and(|n| Some(n.as_str()) == p.name.as_deref()) {
        c.name = None;
    }
    if c.email.as_ref().is_some_and(|e| Some(e.as_str()) == p.email.as_deref()) {
        c.email = None;
    }
    if c.department.as_ref().is_some_and(|d| d.as_str() == p.department) {
        c.department = None;
    }
    if c.title.as_ref().is_some_and(|t| t.as_str() == p.title) {
        c.title = None;
    }
    if c.level.is_some_and(|l| i16::from(l.get()) == p.level) {
        c.level = None;
    }
    if c.manager == Some(p.manager_id) {
        c.manager = None;
    }
    if c.location.as_ref().is_some_and(|l| l.as_ref().map(ShortText::as_str) == p.location.as_deref()) {
        c.location = None;
    }
    c
}

fn command_error(e: CommandError, person: PersonId) -> HrisError {
    match e {
        CommandError::Domain(d) => match d {
            DomainError::InvalidInput { field, reason } => HrisError::invalid(field, reason),
            DomainError::ExternalIdTaken(id) => taken(&id, false),
            DomainError::AlreadyExists { .. } => HrisError::Uniqueness("the User already exists".into()),
            DomainError::PersonErased(_) => HrisError::NotFound("the User was deleted".into()),
            DomainError::PersonNotFound(p) if p != person => HrisError::invalid("manager", "no such User"),
            DomainError::PersonNotFound(_) => HrisError::NotFound("no such User".into()),
            DomainError::PersonHasLeft(p) if p != person => {
                HrisError::invalid("manager", "the manager is deactivated (has left)")
            }
            DomainError::PersonHasLeft(_) => HrisError::Mutability("the User is deactivated".into()),
            d @ (DomainError::SelfManagement | DomainError::ManagementCycle { .. }) => {
                HrisError::invalid("manager", d.to_string())
            }
            other => HrisError::invalid("User", other.to_string()),
        },
        CommandError::Conflict { .. } => HrisError::Busy,
        other => HrisError::internal(other),
    }
}

/// The current version of a person as an ETag.
#[must_use]
pub fn version_of(u: &User) -> String {
    u.etag()
}
