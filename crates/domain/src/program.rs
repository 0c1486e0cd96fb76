//! The program stream: a coaching program, its rules and its enrolments.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::error::DomainError;
use crate::ids::{PersonId, ProgramId};
use crate::values::{CadenceDays, GroupFormat, LevelGap, LongText, Purpose, ShortText};

/// Most interests or skills one enrolment may list.
pub const MAX_TAGS: usize = 20;

/// One participant's enrolment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Enrolment {
    pub enrolled_on: NaiveDate,
    pub interests: Vec<ShortText>,
    pub skills: Vec<ShortText>,
    pub wants_to_work_on: LongText,
}

/// The state of a program stream.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Program {
    /// `None` until launched.
    pub id: Option<ProgramId>,
    pub name: Option<ShortText>,
    pub description: LongText,
    pub purpose: Option<Purpose>,
    pub format: Option<GroupFormat>,
    pub max_level_gap: Option<LevelGap>,
    pub cadence_days: Option<CadenceDays>,
    pub starts_on: Option<NaiveDate>,
    pub ends_on: Option<NaiveDate>,
    pub closed_on: Option<NaiveDate>,
    /// Current participants (withdrawn ones are removed).
    pub participants: BTreeMap<PersonId, Enrolment>,
}

impl Program {
    /// Whether the program exists.
    #[must_use]
    pub fn is_launched(&self) -> bool {
        self.id.is_some()
    }

    /// Whether the program is closed.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.closed_on.is_some()
    }

    /// Whether `person` is currently enrolled.
    #[must_use]
    pub fn is_enrolled(&self, person: PersonId) -> bool {
        self.participants.contains_key(&person)
    }

    /// The id of a launched, open program, or the refusal.
    pub fn require_open(&self, asked: ProgramId) -> Result<ProgramId, DomainError> {
        let id = self.id.ok_or(DomainError::ProgramNotFound(asked))?;
        if self.is_closed() {
            return Err(DomainError::ProgramClosed(id));
        }
        Ok(id)
    }
}

/// Launch a program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LaunchProgram {
    pub program_id: ProgramId,
    pub name: ShortText,
    pub description: LongText,
    pub purpose: Purpose,
    pub format: GroupFormat,
    pub max_level_gap: LevelGap,
    pub cadence_days: CadenceDays,
    pub starts_on: NaiveDate,
    pub ends_on: Option<NaiveDate>,
}

/// Change a program's settings; `None` leaves a field as it is; for
/// `ends_on`, `Some(None)` removes the end date.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProgramChanges {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<ShortText>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<LongText>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_level_gap: Option<LevelGap>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cadence_days: Option<CadenceDays>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::serde_util::double_option")]
    pub ends_on: Option<Option<NaiveDate>>,
}

/// Enrol a person.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnrolParticipant {
    pub program_id: ProgramId,
    pub person_id: PersonId,
    pub enrolled_on: NaiveDate,
    pub interests: Vec<ShortText>,
    pub skills: Vec<ShortText>,
    pub wants_to_work_on: LongText,
}

/// The commands of the program stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProgramCommand {
    Launch(LaunchProgram),
    Update { program_id: ProgramId, changes: ProgramChanges },
    Enrol(EnrolParticipant),
    Withdraw { program_id: ProgramId, person_id: PersonId, withdrew_on: NaiveDate, reason: LongText },
    Close { program_id: ProgramId, closed_on: NaiveDate, reason: LongText },
}

impl ProgramCommand {
    /// The stream the command targets.
    #[must_use]
    pub fn program_id(&self) -> ProgramId {
        match self {
            Self::Launch(c) => c.program_id,
            Self::Enrol(c) => c.program_id,
            Self::Update { program_id, .. } | Self::Withdraw { program_id, .. } | Self::Close { program_id, .. } => {
                *program_id
            }
        }
    }
}

/// Facts about the person a program command is about.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ParticipantFacts {
    pub exists: bool,
    pub left: bool,
    pub erased: bool,
    /// Whether they are in an active pair of this program.
    pub in_active_pair: bool,
}

/// What a program command needs from outside its stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProgramContext {
    /// For enrol and withdraw: the person.
    pub person: Option<ParticipantFacts>,
}

/// A program was launched.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProgramLaunched {
    pub program_id: ProgramId,
    pub name: ShortText,
    pub description: LongText,
    pub purpose: Purpose,
    pub format: GroupFormat,
    pub max_level_gap: LevelGap,
    pub cadence_days: CadenceDays,
    pub starts_on: NaiveDate,
    pub ends_on: Option<NaiveDate>,
}

/// A program's settings changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProgramUpdated {
    pub program_id: ProgramId,
    pub changes: ProgramChanges,
}

/// A person joined a program.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParticipantEnrolled {
    pub program_id: ProgramId,
    pub person_id: PersonId,
    pub enrolled_on: NaiveDate,
    #[serde(deserialize_with = "crate::serde_util::erased_as_default")]
    pub interests: Vec<ShortText>,
    #[serde(deserialize_with = "crate::serde_util::erased_as_default")]
    pub skills: Vec<ShortText>,
    #[serde(deserialize_with = "crate::serde_util::erased_as_default")]
    pub wants_to_work_on: LongText,
}

/// A person left a program.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParticipantWithdrew {
    pub program_id: ProgramId,
    pub person_id: PersonId,
    pub withdrew_on: NaiveDate,
    #[serde(deserialize_with = "crate::serde_util::erased_as_default")]
    pub reason: LongText,
}

/// A program ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProgramClosed {
    pub program_id: ProgramId,
    pub closed_on: NaiveDate,
    pub reason: LongText,
}

/// The events of the program stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum ProgramEvent {
    ProgramLaunched(ProgramLaunched),
    ProgramUpdated(ProgramUpdated),
    ParticipantEnrolled(ParticipantEnrolled),
    ParticipantWithdrew(ParticipantWithdrew),
    ProgramClosed(ProgramClosed),
}

fn check_tags(field: &'static str, tags: &[ShortText]) -> Result<Vec<ShortText>, DomainError> {
    if tags.len() > MAX_TAGS {
        return Err(DomainError::invalid(field, format!("at most {MAX_TAGS} entries")));
    }
    let mut out: Vec<ShortText> = Vec::with_capacity(tags.len());
    for t in tags {
        if !out.iter().any(|o| o.as_str().eq_ignore_ascii_case(t.as_str())) {
            out.push(t.clone());
        }
    }
    Ok(out)
}

/// Decides a program command.
pub fn decide(
    state: &Program,
    command: ProgramCommand,
    ctx: &ProgramContext,
) -> Result<Vec<ProgramEvent>, DomainError> {
    match command {
        ProgramCommand::Launch(c) => {
            if state.is_launched() {
                return Err(DomainError::AlreadyExists { entity: "program" });
            }
            if c.ends_on.is_some_and(|e| e < c.starts_on) {
                return Err(DomainError::invalid("endsOn", "must not be before startsOn"));
            }
            Ok(vec![ProgramEvent::ProgramLaunched(ProgramLaunched {
                program_id: c.program_id,
                name: c.name,
                description: c.description,
                purpose: c.purpose,
                format: c.format,
                max_level_gap: c.max_level_gap,
                cadence_days: c.cadence_days,
                starts_on: c.starts_on,
                ends_on: c.ends_on,
            })])
        }
        ProgramCommand::Update { program_id, mut changes } => {
            let id = state.require_open(program_id)?;
            if let (Some(Some(end)), Some(start)) = (changes.ends_on, state.starts_on)
                && end < start
            {
                return Err(DomainError::invalid("endsOn", "must not be before startsOn"));
            }
            if changes.name.as_ref() == state.name.as_ref() {
                changes.name = None;
            }
            if changes.description.as_ref() == Some(&state.description) {
                changes.description = None;
            }
            if changes.max_level_gap == state.max_level_gap {
                changes.max_level_gap = None;
            }
            if changes.cadence_days == state.cadence_days {
                changes.cadence_days = None;
            }
            if changes.ends_on == Some(state.ends_on) {
                changes.ends_on = None;
            }
            if changes == ProgramChanges::default() {
                return Ok(vec![]);
            }
            Ok(vec![ProgramEvent::ProgramUpdated(ProgramUpdated { program_id: id, changes })])
        }
        ProgramCommand::Enrol(c) => {
            let id = state.require_open(c.program_id)?;
            let person = ctx.person.filter(|p| p.exists).ok_or(DomainError::PersonNotFound(c.person_id))?;
            if person.erased {
                return Err(DomainError::PersonErased(c.person_id));
            }
            if person.left {
                return Err(DomainError::PersonHasLeft(c.person_id));
            }
            if state.is_enrolled(c.person_id) {
                return Err(DomainError::AlreadyEnrolled(c.person_id));
            }
            let interests = check_tags("interests", &c.interests)?;
            let skills = check_tags("skills", &c.skills)?;
            Ok(vec![ProgramEvent::ParticipantEnrolled(ParticipantEnrolled {
                program_id: id,
                person_id: c.person_id,
                enrolled_on: c.enrolled_on,
                interests,
                skills,
                wants_to_work_on: c.wants_to_work_on,
            })])
        }
        ProgramCommand::Withdraw { program_id, person_id, withdrew_on, reason } => {
            let id = state.require_open(program_id)?;
            let Some(enrolment) = state.participants.get(&person_id) else {
                return Err(DomainError::NotEnrolled(person_id));
            };
            if ctx.person.is_some_and(|p| p.in_active_pair) {
                return Err(DomainError::InActivePair(person_id));
            }
            if withdrew_on < enrolment.enrolled_on {
                return Err(DomainError::invalid("withdrewOn", "must not be before the enrolment date"));
            }
            Ok(vec![ProgramEvent::ParticipantWithdrew(ParticipantWithdrew {
                program_id: id,
                person_id,
                withdrew_on,
                reason,
            })])
        }
        ProgramCommand::Close { program_id, closed_on, reason } => {
            let id = state.require_open(program_id)?;
            if state.starts_on.is_some_and(|s| closed_on < s) {
                return Err(DomainError::invalid("closedOn", "must not be before the start date"));
            }
            Ok(vec![ProgramEvent::ProgramClosed(ProgramClosed { program_id: id, closed_on, reason })])
        }
    }
}

/// Folds one event into the state.
#[must_use]
pub fn evolve(mut state: Program, event: &ProgramEvent) -> Program {
    match event {
        ProgramEvent::ProgramLaunched(e) => {
            state.id = Some(e.program_id);
            state.name = Some(e.name.clone());
            state.description = e.description.clone();
            state.purpose = Some(e.purpose);
            state.format = Some(e.format);
            state.max_level_gap = Some(e.max_level_gap);
            state.cadence_days = Some(e.cadence_days);
            state.starts_on = Some(e.starts_on);
            state.ends_on = e.ends_on;
        }
        ProgramEvent::ProgramUpdated(e) => {
            let c = &e.changes;
            if let Some(n) = &c.name {
                state.name = Some(n.clone());
            }
            if let Some(d) = &c.description {
                state.description = d.clone();
            }
            if let Some(g) = c.max_level_gap {
                state.max_level_gap = Some(g);
            }
            if let Some(d) = c.cadence_days {
                state.cadence_days = Some(d);
            }
            if let Some(e) = c.ends_on {
                state.ends_on = e;
            }
        }
        ProgramEvent::ParticipantEnrolled(e) => {
            state.participants.insert(
                e.person_id,
                Enrolment {
                    enrolled_on: e.enrolled_on,
                    interests: e.interests.clone(),
                    skills: e.skills.clone(),
                    wants_to_work_on: e.wants_to_work_on.clone(),
                },
            );
        }
        ProgramEvent::ParticipantWithdrew(e) => {
            state.participants.remove(&e.person_id);
        }
        ProgramEvent::ProgramClosed(e) => state.closed_on = Some(e.closed_on),
    }
    state
}
