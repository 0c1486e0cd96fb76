//! The person stream: someone in the organisation as the HRIS knows them,
//! with a dated org history.
//!
//! Org facts (manager, department, title, level) change with an *effective
//! date*, which may lie in the past (a late HRIS correction) or the future (a
//! promotion announced ahead). [`Person::org_on`] answers what was true on a
//! given day by applying, in date order, every change effective by then; the
//! rule "no authority over one another" is checked with it.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::error::DomainError;
use crate::ids::PersonId;
use crate::values::{Email, ExternalId, LeaveReason, Level, ShortText};

/// What the organisation knows about a person's place on a given day.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrgFacts {
    pub manager: Option<PersonId>,
    pub department: ShortText,
    pub title: ShortText,
    pub level: Level,
}

/// A dated change of org facts; `None` fields are unchanged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrgChange {
    pub effective_on: NaiveDate,
    pub manager: Option<Option<PersonId>>,
    pub department: Option<ShortText>,
    pub title: Option<ShortText>,
    pub level: Option<Level>,
}

/// The state of a person stream.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Person {
    /// `None` until the person is registered.
    pub id: Option<PersonId>,
    pub external_id: Option<ExternalId>,
    pub name: Option<ShortText>,
    pub email: Option<Email>,
    pub location: Option<ShortText>,
    pub hired_on: Option<NaiveDate>,
    /// Org facts at registration, effective from `hired_on`.
    pub initial_org: Option<OrgFacts>,
    /// Later changes in the order they were recorded.
    pub org_changes: Vec<OrgChange>,
    /// Set while the person is gone from the organisation.
    pub left: Option<(NaiveDate, LeaveReason)>,
    pub erased: bool,
}

impl Person {
    /// Whether the stream holds a registered person.
    #[must_use]
    pub fn is_registered(&self) -> bool {
        self.id.is_some()
    }

    /// Whether the person is currently gone from the organisation.
    #[must_use]
    pub fn has_left(&self) -> bool {
        self.left.is_some()
    }

    /// Org facts as of `date`: the registration facts with every change whose
    /// effective date is on or before `date` applied in date order (changes on
    /// the same date in recording order). A date before the hire date answers
    /// with the registration facts, the earliest the organisation knows.
    #[must_use]
    pub fn org_on(&self, date: NaiveDate) -> Option<OrgFacts> {
        let mut facts = self.initial_org.clone()?;
        let mut changes: Vec<&OrgChange> = self.org_changes.iter().filter(|c| c.effective_on <= date).collect();
        // A stable sort keeps recording order among changes of the same day.
        changes.sort_by_key(|c| c.effective_on);
        for c in changes {
            if let Some(m) = c.manager {
                facts.manager = m;
            }
            if let Some(d) = &c.department {
                facts.department = d.clone();
            }
            if let Some(t) = &c.title {
                facts.title = t.clone();
            }
            if let Some(l) = c.level {
                facts.level = l;
            }
        }
        Some(facts)
    }

    /// Org facts with every recorded change applied, whatever its date.
    #[must_use]
    pub fn org_latest(&self) -> Option<OrgFacts> {
        self.org_on(NaiveDate::MAX)
    }

    fn require_active(&self, id: PersonId) -> Result<PersonId, DomainError> {
        let Some(pid) = self.id else {
            return Err(DomainError::PersonNotFound(id));
        };
        if self.erased {
            return Err(DomainError::PersonErased(pid));
        }
        Ok(pid)
    }
}

/// Register a person from the HRIS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegisterPerson {
    pub person_id: PersonId,
    pub external_id: ExternalId,
    pub name: ShortText,
    pub email: Email,
    pub department: ShortText,
    pub title: ShortText,
    pub level: Level,
    pub manager: Option<PersonId>,
    pub location: Option<ShortText>,
    pub hired_on: NaiveDate,
}

/// What an update changes; `None` leaves a field as it is. For `manager` and
/// `location`, `Some(None)` clears the field.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PersonChanges {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<ShortText>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<Email>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<ShortText>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<ShortText>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<Level>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::serde_util::double_option")]
    pub manager: Option<Option<PersonId>>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::serde_util::double_option")]
    pub location: Option<Option<ShortText>>,
}

impl PersonChanges {
    /// Whether nothing changes.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    fn touches_org(&self) -> bool {
        self.manager.is_some() || self.department.is_some() || self.title.is_some() || self.level.is_some()
    }
}

/// Update a person's profile or org facts, effective on a date.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpdatePerson {
    pub person_id: PersonId,
    pub changes: PersonChanges,
    pub effective_on: NaiveDate,
}

/// The commands of the person stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PersonCommand {
    Register(RegisterPerson),
    Update(UpdatePerson),
    RecordLeft { person_id: PersonId, left_on: NaiveDate, reason: LeaveReason },
    Rejoin { person_id: PersonId, rejoined_on: NaiveDate },
    Erase { person_id: PersonId },
}

impl PersonCommand {
    /// The stream the command targets.
    #[must_use]
    pub fn person_id(&self) -> PersonId {
        match self {
            Self::Register(c) => c.person_id,
            Self::Update(c) => c.person_id,
            Self::RecordLeft { person_id, .. } | Self::Rejoin { person_id, .. } | Self::Erase { person_id } => {
                *person_id
            }
        }
    }

    /// The manager this command would set, if any; the caller gathers its facts.
    #[must_use]
    pub fn new_manager(&self) -> Option<PersonId> {
        match self {
            Self::Register(c) => c.manager,
            Self::Update(c) => c.changes.manager.flatten(),
            _ => None,
        }
    }

    /// The date on which a new manager would take effect.
    #[must_use]
    pub fn effective_on(&self) -> Option<NaiveDate> {
        match self {
            Self::Register(c) => Some(c.hired_on),
            Self::Update(c) => Some(c.effective_on),
            _ => None,
        }
    }
}

/// Facts about a would-be manager, gathered by the caller.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ManagerFacts {
    pub exists: bool,
    pub left: bool,
    /// The manager's own management chain (their manager, that one's
    /// manager, …) as of the effective date of the change.
    pub chain: Vec<PersonId>,
}

/// What a person command needs from outside its stream.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PersonContext {
    /// Facts on the manager the command sets, when it sets one.
    pub manager: Option<ManagerFacts>,
    /// Whether another person already holds the external id.
    pub external_id_taken: bool,
}

/// A person was registered from the HRIS. Schema version 2 (version 1 named
/// the name field `fullName` and had no location).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PersonRegistered {
    pub person_id: PersonId,
    /// `None` once the person is erased (like `name` and `email`): the
    /// store reads personal fields sealed under a deleted key as absent.
    #[serde(deserialize_with = "crate::serde_util::erasable")]
    pub external_id: Option<ExternalId>,
    #[serde(deserialize_with = "crate::serde_util::erasable")]
    pub name: Option<ShortText>,
    #[serde(deserialize_with = "crate::serde_util::erasable")]
    pub email: Option<Email>,
    pub department: ShortText,
    pub title: ShortText,
    pub level: Level,
    pub manager: Option<PersonId>,
    pub location: Option<ShortText>,
    pub hired_on: NaiveDate,
}

/// Profile or org facts changed, effective on a date.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PersonUpdated {
    pub person_id: PersonId,
    pub changes: PersonChanges,
    pub effective_on: NaiveDate,
}

/// The person left the organisation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PersonLeft {
    pub person_id: PersonId,
    pub left_on: NaiveDate,
    pub reason: LeaveReason,
}

/// A person who had left came back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PersonRejoined {
    pub person_id: PersonId,
    pub rejoined_on: NaiveDate,
}

/// The person's personal data is to be forgotten. The history stays whole;
/// read models drop names and contact details.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PersonErased {
    pub person_id: PersonId,
}

/// The events of the person stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum PersonEvent {
    PersonRegistered(PersonRegistered),
    PersonUpdated(PersonUpdated),
    PersonLeft(PersonLeft),
    PersonRejoined(PersonRejoined),
    PersonErased(PersonErased),
}

fn check_manager(person: PersonId, manager: PersonId, facts: Option<&ManagerFacts>) -> Result<(), DomainError> {
    if manager == person {
        return Err(DomainError::SelfManagement);
    }
    let facts = facts.filter(|f| f.exists).ok_or(DomainError::PersonNotFound(manager))?;
    if facts.left {
        return Err(DomainError::PersonHasLeft(manager));
    }
    if facts.chain.contains(&person) {
        return Err(DomainError::ManagementCycle { person, manager });
    }
    Ok(())
}

/// Decides a person command.
pub fn decide(state: &Person, command: PersonCommand, ctx: &PersonContext) -> Result<Vec<PersonEvent>, DomainError> {
    match command {
        PersonCommand::Register(c) => {
            if state.is_registered() {
                return Err(DomainError::AlreadyExists { entity: "person" });
            }
            if ctx.external_id_taken {
                return Err(DomainError::ExternalIdTaken(c.external_id.as_str().to_owned()));
            }
            if let Some(m) = c.manager {
                check_manager(c.person_id, m, ctx.manager.as_ref())?;
            }
            Ok(vec![PersonEvent::PersonRegistered(PersonRegistered {
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
            })])
        }
        PersonCommand::Update(c) => {
            // A person who left may still be corrected: the HRIS fixes a
            // leaver's title or manager after the fact, and the org history
            // analysts read should hold the correction. Nothing else happens
            // to them (no pairs, no enrolments, no sessions).
            let id = state.require_active(c.person_id)?;
            // Drop what would not change, so a repeated HRIS sync appends nothing.
            let mut changes = c.changes;
            if changes.name.as_ref() == state.name.as_ref() {
                changes.name = None;
            }
            if changes.email.as_ref() == state.email.as_ref() {
                changes.email = None;
            }
            if changes.location.as_ref() == Some(&state.location) {
                changes.location = None;
            }
            if changes.touches_org()
                && let Some(now) = state.org_on(c.effective_on)
            {
                if changes.manager == Some(now.manager) {
                    changes.manager = None;
                }
                if changes.department.as_ref() == Some(&now.department) {
                    changes.department = None;
                }
                if changes.title.as_ref() == Some(&now.title) {
                    changes.title = None;
                }
                if changes.level == Some(now.level) {
                    changes.level = None;
                }
            }
            // Only a manager that actually changes is checked: a repeated sync
            // naming the same manager, who may have left since, is no change.
            if let Some(Some(m)) = changes.manager {
                check_manager(id, m, ctx.manager.as_ref())?;
            }
            if changes.is_empty() {
                return Ok(vec![]);
            }
            Ok(vec![PersonEvent::PersonUpdated(PersonUpdated { person_id: id, changes, effective_on: c.effective_on })])
        }
        PersonCommand::RecordLeft { person_id, left_on, reason } => {
            let id = state.require_active(person_id)?;
            if state.has_left() {
                return Err(DomainError::PersonHasLeft(id));
            }
            if state.hired_on.is_some_and(|h| left_on < h) {
                return Err(DomainError::invalid("leftOn", "must not be before the hire date"));
            }
            Ok(vec![PersonEvent::PersonLeft(PersonLeft { person_id: id, left_on, reason })])
        }
        PersonCommand::Rejoin { person_id, rejoined_on } => {
            let id = state.require_active(person_id)?;
            match state.left {
                None => Err(DomainError::PersonHasNotLeft(id)),
                Some((left_on, _)) if rejoined_on < left_on => {
                    Err(DomainError::invalid("rejoinedOn", "must not be before the leave date"))
                }
                Some(_) => Ok(vec![PersonEvent::PersonRejoined(PersonRejoined { person_id: id, rejoined_on })]),
            }
        }
        PersonCommand::Erase { person_id } => {
            let id = state.require_active(person_id)?;
            Ok(vec![PersonEvent::PersonErased(PersonErased { person_id: id })])
        }
    }
}

/// Folds one event into the state.
#[must_use]
pub fn evolve(mut state: Person, event: &PersonEvent) -> Person {
    match event {
        PersonEvent::PersonRegistered(e) => {
            state.id = Some(e.person_id);
            state.external_id.clone_from(&e.external_id);
            state.name.clone_from(&e.name);
            state.email.clone_from(&e.email);
            state.location.clone_from(&e.location);
            state.hired_on = Some(e.hired_on);
            state.initial_org = Some(OrgFacts {
                manager: e.manager,
                department: e.department.clone(),
                title: e.title.clone(),
                level: e.level,
            });
        }
        PersonEvent::PersonUpdated(e) => {
            let c = &e.changes;
            if let Some(n) = &c.name {
                state.name = Some(n.clone());
            }
            if let Some(m) = &c.email {
                state.email = Some(m.clone());
            }
            if let Some(l) = &c.location {
                state.location.clone_from(l);
            }
            if c.touches_org() {
                state.org_changes.push(OrgChange {
                    effective_on: e.effective_on,
                    manager: c.manager,
                    department: c.department.clone(),
                    title: c.title.clone(),
                    level: c.level,
                });
            }
        }
        PersonEvent::PersonLeft(e) => state.left = Some((e.left_on, e.reason)),
        PersonEvent::PersonRejoined(_) => state.left = None,
        PersonEvent::PersonErased(_) => {
            state.erased = true;
            state.name = None;
            state.email = None;
            state.location = None;
        }
    }
    state
}

/// Walks a management chain upwards from `start` (exclusive) as of a date,
/// using `lookup` to read each person's manager on that day. Stops at the
/// top, at an unknown person, or — defensively, since cycles are refused when
/// recorded but back-dated changes could still produce one — at a repeat.
pub fn management_chain(start: PersonId, mut manager_of: impl FnMut(PersonId) -> Option<PersonId>) -> Vec<PersonId> {
    let mut chain = Vec::new();
    let mut seen = BTreeSet::from([start]);
    let mut current = start;
    while let Some(m) = manager_of(current) {
        if !seen.insert(m) {
            break;
        }
        chain.push(m);
        current = m;
    }
    chain
}
