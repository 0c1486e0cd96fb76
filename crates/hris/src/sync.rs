//! People sync keyed by external id, shared by the CSV full-file import
//! ([`crate::import`]) and the bulk upsert of the GraphQL API: a
//! [`PersonRecord`] (what the feed says about one person) is compared with
//! the person as the read model has them on the effective date, and the
//! difference is planned as person commands ([`plan`]), which
//! [`Syncer::execute`] runs through the command service.
//!
//! A field a record leaves out (`None`) is not managed by the feed and stays
//! as it is. What the record says is compared field by field, so a record
//! that matches the person plans nothing and appends nothing.
//!
//! Every command carries an idempotency key derived from the record's
//! content, the person's stream version the plan was made against and the
//! effective date: a run interrupted after a commit and started again, or
//! two runs of one file racing, append each change once.

use chrono::NaiveDate;
use serde::Serialize;
use tandem_commands::{Command, CommandError, CommandMeta, CommandService};
use tandem_domain::person::{PersonChanges, PersonCommand, RegisterPerson, UpdatePerson};
use tandem_domain::values::{Email, ExternalId, LeaveReason, Level, ShortText};
use tandem_domain::{DomainError, PersonId};
use tandem_projections::queries::PersonView;
use tandem_store::{Actor, Cursor};

/// Why a record was refused, as a stable code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SyncCode {
    /// A value is malformed (bad e-mail, control character, out of range).
    InvalidValue,
    /// A value a new person needs is missing.
    Required,
    /// The external id appears more than once in the input, or belongs to
    /// another person in another case.
    DuplicateExternalId,
    /// The manager's external id is neither in the input nor a person.
    UnknownManager,
    /// The manager has left the organisation.
    ManagerLeft,
    /// The manager references form a cycle (or name the person themself).
    ManagementCycle,
    /// The manager's own record was refused, so this one cannot be placed.
    ManagerFailed,
    /// The value cannot change once the person exists (`hired_on`).
    Immutable,
    /// The person was erased; their external id stays reserved.
    Erased,
    /// A rule of the domain refused the change in the person's state.
    Refused,
    /// The person was changed concurrently too often; try again.
    Busy,
    /// The database failed; nothing of this record was written.
    Internal,
}

impl SyncCode {
    /// The code as clients see it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidValue => "INVALID_VALUE",
            Self::Required => "REQUIRED",
            Self::DuplicateExternalId => "DUPLICATE_EXTERNAL_ID",
            Self::UnknownManager => "UNKNOWN_MANAGER",
            Self::ManagerLeft => "MANAGER_LEFT",
            Self::ManagementCycle => "MANAGEMENT_CYCLE",
            Self::ManagerFailed => "MANAGER_FAILED",
            Self::Immutable => "IMMUTABLE",
            Self::Erased => "ERASED",
            Self::Refused => "REFUSED",
            Self::Busy => "BUSY",
            Self::Internal => "INTERNAL",
        }
    }
}

impl std::fmt::Display for SyncCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused record: the field (in the CSV's column names, e.g.
/// `manager_external_id`), the code, and a message that quotes no value of
/// the input (messages may reach logs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncError {
    pub field: &'static str,
    pub code: SyncCode,
    pub message: String,
}

impl SyncError {
    #[must_use]
    pub fn new(field: &'static str, code: SyncCode, message: impl Into<String>) -> Self {
        Self { field, code, message: message.into() }
    }

    /// A malformed value of the domain's parsers, at `field`.
    #[must_use]
    pub fn from_domain(field: &'static str, e: &DomainError) -> Self {
        match e {
            DomainError::InvalidInput { reason, .. } => Self::new(field, SyncCode::InvalidValue, reason.clone()),
            other => Self::new(field, SyncCode::InvalidValue, other.code()),
        }
    }
}

impl std::fmt::Display for SyncError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} ({})", self.field, self.message, self.code)
    }
}

/// The field names of a record, as the CSV columns name them.
pub mod field {
    pub const EXTERNAL_ID: &str = "external_id";
    pub const NAME: &str = "name";
    pub const EMAIL: &str = "email";
    pub const TITLE: &str = "title";
    pub const DEPARTMENT: &str = "department";
    pub const LEVEL: &str = "level";
    pub const MANAGER_EXTERNAL_ID: &str = "manager_external_id";
    pub const LOCATION: &str = "location";
    pub const HIRED_ON: &str = "hired_on";
    pub const LEFT_ON: &str = "left_on";
    pub const LEAVE_REASON: &str = "leave_reason";
}

/// The camelCase name of a record field, as the GraphQL input names it.
#[must_use]
pub fn camel_case(field: &str) -> &'static str {
    match field {
        field::EXTERNAL_ID => "externalId",
        field::NAME => "name",
        field::EMAIL => "email",
        field::TITLE => "title",
        field::DEPARTMENT => "department",
        field::LEVEL => "level",
        field::MANAGER_EXTERNAL_ID => "managerExternalId",
        field::LOCATION => "location",
        field::HIRED_ON => "hiredOn",
        field::LEFT_ON => "leftOn",
        field::LEAVE_REASON => "leaveReason",
        _ => "person",
    }
}

/// What a feed says about one person; `None` fields are not managed by the
/// feed and stay as they are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersonRecord {
    pub external_id: ExternalId,
    pub name: Option<ShortText>,
    pub email: Option<Email>,
    pub title: Option<ShortText>,
    pub department: Option<ShortText>,
    pub level: Option<Level>,
    /// `Some(None)`: nobody manages them; `Some(Some(id))`: the manager's
    /// external id.
    pub manager: Option<Option<ExternalId>>,
    /// `Some(None)` clears the location.
    pub location: Option<Option<ShortText>>,
    pub hired_on: Option<NaiveDate>,
    /// `Some(None)`: in the organisation (rejoins if they had left);
    /// `Some(Some(..))`: left on that day for that reason.
    pub left: Option<Option<(NaiveDate, LeaveReason)>>,
}

impl PersonRecord {
    /// A record that manages nothing but the external id.
    #[must_use]
    pub fn new(external_id: ExternalId) -> Self {
        Self {
            external_id,
            name: None,
            email: None,
            title: None,
            department: None,
            level: None,
            manager: None,
            location: None,
            hired_on: None,
            left: None,
        }
    }

    /// The lower-cased external id: external ids compare without regard
    /// to case.
    #[must_use]
    pub fn key(&self) -> String {
        self.external_id.as_str().to_lowercase()
    }

    /// The manager's key, when the record names one.
    #[must_use]
    pub fn manager_key(&self) -> Option<String> {
        self.manager.as_ref().and_then(|m| m.as_ref()).map(|m| m.as_str().to_lowercase())
    }
}

/// What a record does to its person, by the most telling change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SyncKind {
    Created,
    Updated,
    Left,
    Rejoined,
    Unchanged,
}

impl SyncKind {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Updated => "updated",
            Self::Left => "left",
            Self::Rejoined => "rejoined",
            Self::Unchanged => "unchanged",
        }
    }
}

/// One field that changes: its name and the values before and after
/// (`None`: empty).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldChange {
    pub field: &'static str,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// The commands that bring one person in line with a record.
#[derive(Clone, Debug)]
pub struct Planned {
    /// The person (minted for a new one).
    pub person_id: PersonId,
    pub kind: SyncKind,
    pub commands: Vec<PersonCommand>,
    /// What changes, for a dry run's report.
    pub changes: Vec<FieldChange>,
    /// The idempotency material: the record, the version planned against
    /// and the effective date.
    key_base: String,
}

fn required<T: Clone>(v: Option<&T>, field: &'static str) -> Result<T, SyncError> {
    v.cloned().ok_or_else(|| SyncError::new(field, SyncCode::Required, format!("a new person needs {field}")))
}

fn show<T: std::fmt::Display>(v: Option<T>) -> Option<String> {
    v.map(|v| v.to_string())
}

/// Plans the commands that turn `current` (the person holding the record's
/// external id, with org facts as of `effective_on`; `None` when nobody
/// does) into what `record` says. `manager` is the record's manager
/// resolved to a person (`None` when the record does not manage it).
///
/// # Errors
/// [`SyncCode::Required`] for a new person missing a value,
/// [`SyncCode::Immutable`] for a changed hire date, [`SyncCode::Erased`]
/// for an erased person, [`SyncCode::ManagementCycle`] for a person named
/// as their own manager.
pub fn plan(
    record: &PersonRecord,
    current: Option<&PersonView>,
    manager: Option<Option<PersonId>>,
    effective_on: NaiveDate,
) -> Result<Planned, SyncError> {
    let fingerprint = format!("{record:?}|{effective_on}");
    let Some(p) = current else {
        return plan_new(record, manager, effective_on, fingerprint);
    };
    if p.erased {
        return Err(SyncError::new(
            field::EXTERNAL_ID,
            SyncCode::Erased,
            "the person with this external id was erased; the id stays reserved",
        ));
    }
    if manager == Some(Some(p.person_id)) {
        return Err(SyncError::new(
            field::MANAGER_EXTERNAL_ID,
            SyncCode::ManagementCycle,
            "a person cannot manage themself",
        ));
    }
    if record.hired_on.is_some_and(|h| h != p.hired_on) {
        return Err(SyncError::new(
            field::HIRED_ON,
            SyncCode::Immutable,
            "the hire date cannot change once the person exists",
        ));
    }
    let id = p.person_id;
    let mut changes = PersonChanges::default();
    let mut shown = Vec::new();
    let mut diff = |field: &'static str, before: Option<String>, after: Option<String>| {
        shown.push(FieldChange { field, before, after });
    };
    if let Some(n) = record.name.as_ref().filter(|n| Some(n.as_str()) != p.name.as_deref()) {
        diff(field::NAME, p.name.clone(), Some(n.to_string()));
        changes.name = Some(n.clone());
    }
    if let Some(e) = record.email.as_ref().filter(|e| Some(e.as_str()) != p.email.as_deref()) {
        diff(field::EMAIL, p.email.clone(), Some(e.as_str().to_owned()));
        changes.email = Some(e.clone());
    }
    if let Some(t) = record.title.as_ref().filter(|t| t.as_str() != p.title) {
        diff(field::TITLE, Some(p.title.clone()), Some(t.to_string()));
        changes.title = Some(t.clone());
    }
    if let Some(d) = record.department.as_ref().filter(|d| d.as_str() != p.department) {
        diff(field::DEPARTMENT, Some(p.department.clone()), Some(d.to_string()));
        changes.department = Some(d.clone());
    }
    if let Some(l) = record.level.filter(|l| i16::from(l.get()) != p.level) {
        diff(field::LEVEL, Some(p.level.to_string()), Some(l.get().to_string()));
        changes.level = Some(l);
    }
    if let Some(m) = manager.filter(|m| *m != p.manager_id) {
        diff(field::MANAGER_EXTERNAL_ID, show(p.manager_id), show(m));
        changes.manager = Some(m);
    }
    if let Some(l) = record.location.as_ref().filter(|l| l.as_ref().map(ShortText::as_str) != p.location.as_deref()) {
        diff(field::LOCATION, p.location.clone(), l.as_ref().map(ToString::to_string));
        changes.location = Some(l.clone());
    }
    let mut commands = Vec::new();
    let mut kind = if changes.is_empty() { SyncKind::Unchanged } else { SyncKind::Updated };
    let rejoin = matches!(record.left, Some(None)) && p.left_on.is_some();
    if rejoin {
        let rejoined_on = effective_on.max(p.left_on.unwrap_or(effective_on));
        diff(field::LEFT_ON, show(p.left_on), None);
        commands.push(PersonCommand::Rejoin { person_id: id, rejoined_on });
        kind = SyncKind::Rejoined;
    }
    if !changes.is_empty() {
        commands.push(PersonCommand::Update(UpdatePerson { person_id: id, changes, effective_on }));
    }
    if let Some(Some((left_on, reason))) = record.left
        && p.left_on.is_none()
    {
        diff(field::LEFT_ON, None, Some(left_on.to_string()));
        commands.push(PersonCommand::RecordLeft { person_id: id, left_on, reason });
        kind = SyncKind::Left;
    }
    Ok(Planned { person_id: id, kind, commands, changes: shown, key_base: format!("{fingerprint}|{id}|{}", p.version) })
}

fn plan_new(
    record: &PersonRecord,
    manager: Option<Option<PersonId>>,
    effective_on: NaiveDate,
    fingerprint: String,
) -> Result<Planned, SyncError> {
    let id = PersonId::new();
    let register = RegisterPerson {
        person_id: id,
        external_id: record.external_id.clone(),
        name: required(record.name.as_ref(), field::NAME)?,
        email: required(record.email.as_ref(), field::EMAIL)?,
        department: required(record.department.as_ref(), field::DEPARTMENT)?,
        title: required(record.title.as_ref(), field::TITLE)?,
        level: required(record.level.as_ref(), field::LEVEL)?,
        manager: manager.flatten(),
        location: record.location.clone().flatten(),
        hired_on: record.hired_on.unwrap_or(effective_on),
    };
    let mut commands = vec![PersonCommand::Register(register)];
    // A feed may bring in someone who has already left (a late hire record).
    if let Some(Some((left_on, reason))) = record.left {
        commands.push(PersonCommand::RecordLeft { person_id: id, left_on, reason });
    }
    Ok(Planned {
        person_id: id,
        kind: SyncKind::Created,
        commands,
        changes: Vec::new(),
        key_base: format!("{fingerprint}|new"),
    })
}

/// Plans that a person absent from a full-file feed left on `left_on`.
#[must_use]
pub fn plan_absent(person_id: PersonId, version: i32, left_on: NaiveDate) -> Planned {
    Planned {
        person_id,
        kind: SyncKind::Left,
        commands: vec![PersonCommand::RecordLeft { person_id, left_on, reason: LeaveReason::Other }],
        changes: vec![FieldChange { field: field::LEFT_ON, before: None, after: Some(left_on.to_string()) }],
        key_base: format!("absent|{person_id}|{version}|{left_on}"),
    }
}

/// The result of running a plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Executed {
    /// The person (on a replayed registration, the id of the first run).
    pub person_id: PersonId,
    /// The highest commit position, for read-your-writes.
    pub position: Cursor,
    /// Events appended (0 when every command was a replay or a no-op).
    pub events: usize,
    /// Whether every command was answered from the idempotency record of
    /// an earlier call.
    pub replayed: bool,
}

/// A plan that failed part of the way: the error, and what was committed
/// before it (a committed write is never reported as a failure).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partial {
    pub error: SyncError,
    /// `Some` when at least one command committed.
    pub committed: Option<Executed>,
}

/// Runs plans through the command service for one actor.
#[derive(Clone, Debug)]
pub struct Syncer {
    commands: CommandService,
    actor: Actor,
}

impl Syncer {
    #[must_use]
    pub fn new(commands: CommandService, actor: Actor) -> Self {
        Self { commands, actor }
    }

    /// The store the commands write to.
    #[must_use]
    pub fn store(&self) -> &tandem_store::EventStore {
        self.commands.store()
    }

    /// Runs the commands of `planned` in order, each with its idempotency
    /// key, stopping at the first refusal.
    ///
    /// # Errors
    /// The refusal, with what committed before it.
    pub async fn execute(&self, planned: &Planned, salt: &str) -> Result<Executed, Partial> {
        let mut done = Executed {
            person_id: planned.person_id,
            position: Cursor::START,
            events: 0,
            replayed: !planned.commands.is_empty(),
        };
        let mut committed_any = false;
        for (i, command) in planned.commands.iter().enumerate() {
            let mut command = command.clone();
            // A replayed registration named the first run's id; what follows
            // targets that person.
            retarget(&mut command, done.person_id);
            let material = format!("{salt}|{}|{i}", planned.key_base);
            // The material holds the record's values: the key, kept with
            // the events, is keyed by the server secret so that nobody can
            // confirm a guessed value from it (even after an erasure).
            let key = format!("sync:{}", self.commands.secret().mac_hex("people-sync", &[material.as_bytes()]));
            let mut meta = CommandMeta::new(self.actor.clone()).with_idempotency_key(key);
            meta.request_fingerprint = Some(material);
            let is_register = matches!(command, PersonCommand::Register(_));
            match self.commands.handle(Command::Person(command), &meta).await {
                Ok(c) => {
                    if is_register && let Some(e) = c.events.first() {
                        done.person_id = PersonId::from_uuid(e.stream_id);
                    }
                    if c.replayed {
                        // Nothing new; the first call's events.
                    } else {
                        done.events += c.events.len();
                        done.replayed = false;
                    }
                    done.position = done.position.max(c.position);
                    committed_any = true;
                }
                Err(e) => {
                    return Err(Partial {
                        error: command_error(&e, done.person_id),
                        committed: committed_any.then_some(done),
                    });
                }
            }
        }
        Ok(done)
    }
}

fn retarget(command: &mut PersonCommand, id: PersonId) {
    match command {
        PersonCommand::Register(c) => c.person_id = id,
        PersonCommand::Update(c) => c.person_id = id,
        PersonCommand::RecordLeft { person_id, .. }
        | PersonCommand::Rejoin { person_id, .. }
        | PersonCommand::Erase { person_id } => *person_id = id,
    }
}

/// The record field a domain field name stands for.
fn record_field(domain_field: &str) -> &'static str {
    match domain_field {
        "leftOn" => field::LEFT_ON,
        "rejoinedOn" | "effectiveOn" => field::LEFT_ON,
        "hiredOn" => field::HIRED_ON,
        "externalId" => field::EXTERNAL_ID,
        "email" => field::EMAIL,
        "name" => field::NAME,
        "title" => field::TITLE,
        "department" => field::DEPARTMENT,
        "level" => field::LEVEL,
        "location" => field::LOCATION,
        "manager" | "managerId" => field::MANAGER_EXTERNAL_ID,
        _ => field::EXTERNAL_ID,
    }
}

/// A refusal of the command service as a [`SyncError`], quoting no value.
#[must_use]
pub fn command_error(e: &CommandError, person: PersonId) -> SyncError {
    use SyncCode as C;
    let manager = field::MANAGER_EXTERNAL_ID;
    match e {
        CommandError::Domain(d) => match d {
            DomainError::InvalidInput { field, reason } => {
                SyncError::new(record_field(field), C::InvalidValue, reason.clone())
            }
            DomainError::ExternalIdTaken(_) | DomainError::AlreadyExists { .. } => SyncError::new(
                field::EXTERNAL_ID,
                C::DuplicateExternalId,
                "another person already holds this external id (external ids compare without regard to case)",
            ),
            DomainError::PersonErased(p) if *p == person => {
                SyncError::new(field::EXTERNAL_ID, C::Erased, "the person was erased")
            }
            DomainError::PersonNotFound(p) if *p == person => {
                SyncError::new(field::EXTERNAL_ID, C::Refused, "the person is not in Tandem")
            }
            DomainError::PersonErased(_) | DomainError::PersonNotFound(_) => {
                SyncError::new(manager, C::UnknownManager, "the manager is not a person in Tandem")
            }
            DomainError::PersonHasLeft(p) if *p != person => {
                SyncError::new(manager, C::ManagerLeft, "the manager has left the organisation")
            }
            DomainError::SelfManagement | DomainError::ManagementCycle { .. } => {
                SyncError::new(manager, C::ManagementCycle, "this manager would make the management chain a cycle")
            }
            other => SyncError::new(field::EXTERNAL_ID, C::Refused, format!("refused: {}", other.code())),
        },
        CommandError::Conflict { .. } => {
            SyncError::new(field::EXTERNAL_ID, C::Busy, "the person was changed concurrently; try again")
        }
        CommandError::InvalidIdempotencyKey | CommandError::IdempotencyKeyReused { .. } => {
            SyncError::new(field::EXTERNAL_ID, C::Internal, "the idempotency key was refused")
        }
        other => {
            tracing::warn!(error = %other, "a people sync command failed");
            SyncError::new(field::EXTERNAL_ID, C::Internal, "the database failed; nothing of this record was written")
        }
    }
}
