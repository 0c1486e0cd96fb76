//! The pair stream: a pair or small circle inside a program and everything
//! that happens in it — sessions, feedback, goals, pauses, dissolution.
//!
//! Formation is where the cross-stream rules live (enrolment, no authority
//! over one another, level gap, one active pair per person per program); the
//! caller gathers those facts into a [`PairContext`]. Inside a formed pair the
//! rules are the pair's own: only members act, nobody reviews themself, a
//! session is held once, a goal closes once, nothing happens once dissolved.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::error::DomainError;
use crate::ids::{FeedbackId, GoalId, PairId, PersonId, ProgramId, SessionId};
use crate::program::Program;
use crate::values::{
    Activity, DissolveReason, FormedBy, GroupKind, Level, LongText, MatchScore, Minutes, Percent, Ratings, ShortText,
    Visibility,
};

/// Whether a pair is running.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PairStatus {
    Active,
    Paused,
    Dissolved,
}

/// Where a session stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionStatus {
    Scheduled,
    Held,
    Cancelled,
}

/// Where a goal stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GoalStatus {
    Open,
    Completed,
    Abandoned,
}

/// A goal as the pair's rules need it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GoalState {
    pub owner: PersonId,
    pub accountability_partner: Option<PersonId>,
    pub status: GoalStatus,
}

/// The state of a pair stream.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Pair {
    /// `None` until formed.
    pub id: Option<PairId>,
    pub program_id: Option<ProgramId>,
    pub members: Vec<PersonId>,
    pub status: Option<PairStatus>,
    pub formed_on: Option<NaiveDate>,
    pub sessions: BTreeMap<SessionId, SessionStatus>,
    pub goals: BTreeMap<GoalId, GoalState>,
    pub feedback: BTreeSet<FeedbackId>,
}

impl Pair {
    /// Whether `person` is a member.
    #[must_use]
    pub fn is_member(&self, person: PersonId) -> bool {
        self.members.contains(&person)
    }

    /// Whether the pair counts against the one-active-pair rule (active or paused).
    #[must_use]
    pub fn is_current(&self) -> bool {
        matches!(self.status, Some(PairStatus::Active | PairStatus::Paused))
    }
}

/// Facts about a person involved in a pair command, gathered by the caller.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PersonFacts {
    pub exists: bool,
    pub left: bool,
    pub erased: bool,
    /// Their level on the formation date (formation only).
    pub level: Option<Level>,
    /// Their management chain on the formation date, nearest manager first
    /// (formation only).
    pub chain: Vec<PersonId>,
}

/// What a pair command needs from outside its stream.
#[derive(Clone, Debug, Default)]
pub struct PairContext {
    /// The pair's program (for formation, the program named in the command).
    /// Shared, not copied: a program's state grows with its enrolments.
    pub program: std::sync::Arc<Program>,
    /// Facts on the people the command involves (members, and for formation
    /// the would-be members).
    pub people: BTreeMap<PersonId, PersonFacts>,
    /// Of the would-be members, those already in a current pair of the program.
    pub already_paired: BTreeSet<PersonId>,
}

/// Who coached whom in a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Coaching {
    pub coach: PersonId,
    pub coachee: PersonId,
}

/// Form a pair or circle.
#[derive(Clone, Debug, PartialEq)]
pub struct FormPair {
    pub pair_id: PairId,
    pub program_id: ProgramId,
    pub members: Vec<PersonId>,
    pub formed_by: FormedBy,
    pub match_score: Option<MatchScore>,
    pub formed_on: NaiveDate,
}

/// Record a session that took place (a scheduled one or an unplanned one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HoldSession {
    pub session_id: SessionId,
    pub by: PersonId,
    pub held_at: DateTime<Utc>,
    pub minutes: Minutes,
    pub focus: ShortText,
    pub activities: Vec<Activity>,
    pub coaching: Vec<Coaching>,
    pub notes: LongText,
}

/// Give feedback to another member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GiveFeedback {
    pub feedback_id: FeedbackId,
    pub from: PersonId,
    pub to: PersonId,
    pub session_id: Option<SessionId>,
    pub ratings: Ratings,
    pub strengths: LongText,
    pub improvements: LongText,
    pub visibility: Visibility,
    pub given_at: DateTime<Utc>,
}

/// Set a goal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetGoal {
    pub goal_id: GoalId,
    pub owner: PersonId,
    pub title: ShortText,
    pub description: LongText,
    pub due_on: Option<NaiveDate>,
    pub accountability_partner: Option<PersonId>,
    pub set_on: NaiveDate,
}

/// The commands of the pair stream. Every command but `Form` names the pair.
#[derive(Clone, Debug, PartialEq)]
pub enum PairCommand {
    Form(FormPair),
    ScheduleSession {
        pair_id: PairId,
        session_id: SessionId,
        by: PersonId,
        scheduled_for: DateTime<Utc>,
        focus: Option<ShortText>,
    },
    HoldSession {
        pair_id: PairId,
        session: HoldSession,
    },
    CancelSession {
        pair_id: PairId,
        session_id: SessionId,
        by: PersonId,
        reason: LongText,
    },
    GiveFeedback {
        pair_id: PairId,
        feedback: GiveFeedback,
    },
    SetGoal {
        pair_id: PairId,
        goal: SetGoal,
    },
    RecordGoalProgress {
        pair_id: PairId,
        goal_id: GoalId,
        by: PersonId,
        percent: Option<Percent>,
        note: LongText,
        recorded_on: NaiveDate,
    },
    CompleteGoal {
        pair_id: PairId,
        goal_id: GoalId,
        by: PersonId,
        note: LongText,
        completed_on: NaiveDate,
    },
    AbandonGoal {
        pair_id: PairId,
        goal_id: GoalId,
        by: PersonId,
        reason: LongText,
        abandoned_on: NaiveDate,
    },
    Pause {
        pair_id: PairId,
        reason: LongText,
        paused_on: NaiveDate,
        until: Option<NaiveDate>,
    },
    Resume {
        pair_id: PairId,
        resumed_on: NaiveDate,
    },
    Dissolve {
        pair_id: PairId,
        reason: DissolveReason,
        note: LongText,
        dissolved_on: NaiveDate,
    },
}

impl PairCommand {
    /// The stream the command targets.
    #[must_use]
    pub fn pair_id(&self) -> PairId {
        match self {
            Self::Form(c) => c.pair_id,
            Self::ScheduleSession { pair_id, .. }
            | Self::HoldSession { pair_id, .. }
            | Self::CancelSession { pair_id, .. }
            | Self::GiveFeedback { pair_id, .. }
            | Self::SetGoal { pair_id, .. }
            | Self::RecordGoalProgress { pair_id, .. }
            | Self::CompleteGoal { pair_id, .. }
            | Self::AbandonGoal { pair_id, .. }
            | Self::Pause { pair_id, .. }
            | Self::Resume { pair_id, .. }
            | Self::Dissolve { pair_id, .. } => *pair_id,
        }
    }
}

/// A pair or circle was formed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PairFormed {
    pub pair_id: PairId,
    pub program_id: ProgramId,
    pub kind: GroupKind,
    pub members: Vec<PersonId>,
    pub formed_by: FormedBy,
    pub match_score: Option<MatchScore>,
    pub formed_on: NaiveDate,
}

/// A session was planned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionScheduled {
    pub pair_id: PairId,
    pub session_id: SessionId,
    pub scheduled_by: PersonId,
    pub scheduled_for: DateTime<Utc>,
    pub focus: Option<ShortText>,
}

/// A session took place.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionHeld {
    pub pair_id: PairId,
    pub session_id: SessionId,
    pub recorded_by: PersonId,
    pub held_at: DateTime<Utc>,
    pub minutes: Minutes,
    /// `None` once erased (see [`crate::personal`]).
    #[serde(deserialize_with = "crate::serde_util::erasable")]
    pub focus: Option<ShortText>,
    pub activities: Vec<Activity>,
    /// Version of the activity list the activities come from.
    pub activities_version: u16,
    pub coaching: Vec<Coaching>,
    #[serde(deserialize_with = "crate::serde_util::erased_as_default")]
    pub notes: LongText,
}

/// A planned session will not take place.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionCancelled {
    pub pair_id: PairId,
    pub session_id: SessionId,
    pub cancelled_by: PersonId,
    #[serde(deserialize_with = "crate::serde_util::erased_as_default")]
    pub reason: LongText,
}

/// A member gave feedback to another.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FeedbackGiven {
    pub pair_id: PairId,
    pub feedback_id: FeedbackId,
    pub from: PersonId,
    pub to: PersonId,
    pub session_id: Option<SessionId>,
    pub ratings: Ratings,
    #[serde(deserialize_with = "crate::serde_util::erased_as_default")]
    pub strengths: LongText,
    #[serde(deserialize_with = "crate::serde_util::erased_as_default")]
    pub improvements: LongText,
    pub visibility: Visibility,
    pub given_at: DateTime<Utc>,
}

/// A member set a goal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GoalSet {
    pub pair_id: PairId,
    pub goal_id: GoalId,
    pub owner: PersonId,
    /// `None` once erased (see [`crate::personal`]).
    #[serde(deserialize_with = "crate::serde_util::erasable")]
    pub title: Option<ShortText>,
    #[serde(deserialize_with = "crate::serde_util::erased_as_default")]
    pub description: LongText,
    pub due_on: Option<NaiveDate>,
    pub accountability_partner: Option<PersonId>,
    pub set_on: NaiveDate,
}

/// Progress on a goal was recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GoalProgressRecorded {
    pub pair_id: PairId,
    pub goal_id: GoalId,
    pub by: PersonId,
    pub percent: Option<Percent>,
    #[serde(deserialize_with = "crate::serde_util::erased_as_default")]
    pub note: LongText,
    pub recorded_on: NaiveDate,
}

/// A goal was reached.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GoalCompleted {
    pub pair_id: PairId,
    pub goal_id: GoalId,
    pub by: PersonId,
    #[serde(deserialize_with = "crate::serde_util::erased_as_default")]
    pub note: LongText,
    pub completed_on: NaiveDate,
}

/// A goal was given up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GoalAbandoned {
    pub pair_id: PairId,
    pub goal_id: GoalId,
    pub by: PersonId,
    #[serde(deserialize_with = "crate::serde_util::erased_as_default")]
    pub reason: LongText,
    pub abandoned_on: NaiveDate,
}

/// The pair takes a break.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PairPaused {
    pub pair_id: PairId,
    #[serde(deserialize_with = "crate::serde_util::erased_as_default")]
    pub reason: LongText,
    pub paused_on: NaiveDate,
    pub until: Option<NaiveDate>,
}

/// The pair is back from a break.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PairResumed {
    pub pair_id: PairId,
    pub resumed_on: NaiveDate,
}

/// The pair ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PairDissolved {
    pub pair_id: PairId,
    pub reason: DissolveReason,
    #[serde(deserialize_with = "crate::serde_util::erased_as_default")]
    pub note: LongText,
    pub dissolved_on: NaiveDate,
}

/// The events of the pair stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum PairEvent {
    PairFormed(PairFormed),
    SessionScheduled(SessionScheduled),
    SessionHeld(SessionHeld),
    SessionCancelled(SessionCancelled),
    FeedbackGiven(FeedbackGiven),
    GoalSet(GoalSet),
    GoalProgressRecorded(GoalProgressRecorded),
    GoalCompleted(GoalCompleted),
    GoalAbandoned(GoalAbandoned),
    PairPaused(PairPaused),
    PairResumed(PairResumed),
    PairDissolved(PairDissolved),
}

fn decide_form(state: &Pair, c: FormPair, ctx: &PairContext) -> Result<Vec<PairEvent>, DomainError> {
    if state.id.is_some() {
        return Err(DomainError::AlreadyExists { entity: "pair" });
    }
    let program = &ctx.program;
    let program_id = program.require_open(c.program_id)?;
    let format = program.format.ok_or(DomainError::ProgramNotFound(c.program_id))?;

    let mut seen = BTreeSet::new();
    for m in &c.members {
        if !seen.insert(*m) {
            return Err(DomainError::DuplicateMember(*m));
        }
    }
    let n = c.members.len();
    if n < usize::from(format.min_size) || n > usize::from(format.max_size) {
        return Err(DomainError::WrongGroupSize {
            format: format.noun(),
            min: format.min_size,
            max: format.max_size,
            got: n,
        });
    }
    let mut levels = Vec::with_capacity(n);
    for m in &c.members {
        let facts = ctx.people.get(m).filter(|f| f.exists).ok_or(DomainError::PersonNotFound(*m))?;
        if facts.erased {
            return Err(DomainError::PersonErased(*m));
        }
        if facts.left {
            return Err(DomainError::PersonHasLeft(*m));
        }
        if !program.is_enrolled(*m) {
            return Err(DomainError::NotEnrolled(*m));
        }
        if ctx.already_paired.contains(m) {
            return Err(DomainError::AlreadyPaired(*m));
        }
        levels.push(facts.level.ok_or(DomainError::PersonNotFound(*m))?);
    }
    // No authority over one another: nobody may sit in another member's
    // management chain on the formation date, in either direction.
    for a in &c.members {
        for b in &c.members {
            if a != b && ctx.people.get(b).is_some_and(|f| f.chain.contains(a)) {
                return Err(DomainError::AuthorityRelation { manager: *a, report: *b });
            }
        }
    }
    let (lo, hi) = levels.iter().fold((u8::MAX, u8::MIN), |(lo, hi), l| (lo.min(l.get()), hi.max(l.get())));
    let gap = hi.saturating_sub(lo);
    let max_gap = program.max_level_gap.map_or(0, |g| g.get());
    if gap > max_gap {
        return Err(DomainError::LevelGapTooLarge { gap, max_gap });
    }
    Ok(vec![PairEvent::PairFormed(PairFormed {
        pair_id: c.pair_id,
        program_id,
        kind: format.kind,
        members: c.members,
        formed_by: c.formed_by,
        match_score: c.match_score,
        formed_on: c.formed_on,
    })])
}

/// Refuses anything in a pair that is unknown or dissolved, or whose program
/// is closed; returns the pair's id.
fn require_live(state: &Pair, asked: PairId, ctx: &PairContext) -> Result<PairId, DomainError> {
    let id = state.id.ok_or(DomainError::PairNotFound(asked))?;
    if state.status == Some(PairStatus::Dissolved) {
        return Err(DomainError::PairDissolved(id));
    }
    if let Some(pid) = state.program_id {
        ctx.program.require_open(pid)?;
    }
    Ok(id)
}

/// Refuses a person who is not a member, or who left or was erased.
fn require_member(state: &Pair, person: PersonId, ctx: &PairContext) -> Result<(), DomainError> {
    if !state.is_member(person) {
        return Err(DomainError::NotAMember(person));
    }
    if let Some(f) = ctx.people.get(&person) {
        if f.erased {
            return Err(DomainError::PersonErased(person));
        }
        if f.left {
            return Err(DomainError::PersonHasLeft(person));
        }
    }
    Ok(())
}

fn require_unpaused(state: &Pair, id: PairId) -> Result<(), DomainError> {
    if state.status == Some(PairStatus::Paused) {
        return Err(DomainError::PairPaused(id));
    }
    Ok(())
}

fn open_goal(state: &Pair, goal_id: GoalId) -> Result<GoalState, DomainError> {
    let goal = state.goals.get(&goal_id).copied().ok_or(DomainError::GoalNotFound(goal_id))?;
    if goal.status != GoalStatus::Open {
        return Err(DomainError::GoalClosed(goal_id));
    }
    Ok(goal)
}

/// Decides a pair command.
#[expect(clippy::too_many_lines, reason = "one arm per command reads best as one match")]
pub fn decide(state: &Pair, command: PairCommand, ctx: &PairContext) -> Result<Vec<PairEvent>, DomainError> {
    if let PairCommand::Form(c) = command {
        return decide_form(state, c, ctx);
    }
    let pair_id = require_live(state, command.pair_id(), ctx)?;
    let event = match command {
        PairCommand::Form(_) => unreachable!("handled above"),
        PairCommand::ScheduleSession { session_id, by, scheduled_for, focus, .. } => {
            require_member(state, by, ctx)?;
            require_unpaused(state, pair_id)?;
            if state.sessions.contains_key(&session_id) {
                return Err(DomainError::AlreadyExists { entity: "session" });
            }
            PairEvent::SessionScheduled(SessionScheduled {
                pair_id,
                session_id,
                scheduled_by: by,
                scheduled_for,
                focus,
            })
        }
        PairCommand::HoldSession { session: s, .. } => {
            require_member(state, s.by, ctx)?;
            require_unpaused(state, pair_id)?;
            match state.sessions.get(&s.session_id) {
                Some(SessionStatus::Held) => return Err(DomainError::SessionAlreadyHeld(s.session_id)),
                Some(SessionStatus::Cancelled) => return Err(DomainError::SessionCancelled(s.session_id)),
                Some(SessionStatus::Scheduled) | None => {}
            }
            let mut coaching: Vec<Coaching> = Vec::with_capacity(s.coaching.len());
            for c in &s.coaching {
                if c.coach == c.coachee {
                    return Err(DomainError::invalid("coaching", "a member cannot coach themself"));
                }
                for p in [c.coach, c.coachee] {
                    if !state.is_member(p) {
                        return Err(DomainError::NotAMember(p));
                    }
                }
                if !coaching.contains(c) {
                    coaching.push(*c);
                }
            }
            let mut activities = s.activities.clone();
            activities.sort();
            activities.dedup();
            PairEvent::SessionHeld(SessionHeld {
                pair_id,
                session_id: s.session_id,
                recorded_by: s.by,
                held_at: s.held_at,
                minutes: s.minutes,
                focus: Some(s.focus),
                activities,
                activities_version: crate::values::ACTIVITIES_VERSION,
                coaching,
                notes: s.notes,
            })
        }
        PairCommand::CancelSession { session_id, by, reason, .. } => {
            require_member(state, by, ctx)?;
            match state.sessions.get(&session_id) {
                None => return Err(DomainError::SessionNotFound(session_id)),
                Some(SessionStatus::Held) => return Err(DomainError::SessionAlreadyHeld(session_id)),
                Some(SessionStatus::Cancelled) => return Err(DomainError::SessionCancelled(session_id)),
                Some(SessionStatus::Scheduled) => {}
            }
            PairEvent::SessionCancelled(SessionCancelled { pair_id, session_id, cancelled_by: by, reason })
        }
        PairCommand::GiveFeedback { feedback: f, .. } => {
            require_member(state, f.from, ctx)?;
            if f.from == f.to {
                return Err(DomainError::SelfFeedback);
            }
            require_member(state, f.to, ctx)?;
            if state.feedback.contains(&f.feedback_id) {
                return Err(DomainError::AlreadyExists { entity: "feedback" });
            }
            if let Some(sid) = f.session_id {
                match state.sessions.get(&sid) {
                    None => return Err(DomainError::SessionNotFound(sid)),
                    Some(SessionStatus::Held) => {}
                    Some(_) => return Err(DomainError::SessionNotHeld(sid)),
                }
            }
            if f.ratings.is_empty() && f.strengths.is_empty() && f.improvements.is_empty() {
                return Err(DomainError::invalid("ratings", "feedback needs at least one rating or some text"));
            }
            PairEvent::FeedbackGiven(FeedbackGiven {
                pair_id,
                feedback_id: f.feedback_id,
                from: f.from,
                to: f.to,
                session_id: f.session_id,
                ratings: f.ratings,
                strengths: f.strengths,
                improvements: f.improvements,
                visibility: f.visibility,
                given_at: f.given_at,
            })
        }
        PairCommand::SetGoal { goal: g, .. } => {
            require_member(state, g.owner, ctx)?;
            if state.goals.contains_key(&g.goal_id) {
                return Err(DomainError::AlreadyExists { entity: "goal" });
            }
            if let Some(p) = g.accountability_partner {
                if p == g.owner {
                    return Err(DomainError::invalid(
                        "accountabilityPartner",
                        "must be another member than the goal's owner",
                    ));
                }
                require_member(state, p, ctx)?;
            }
            if g.due_on.is_some_and(|d| d < g.set_on) {
                return Err(DomainError::invalid("dueOn", "must not be before the day the goal is set"));
            }
            PairEvent::GoalSet(GoalSet {
                pair_id,
                goal_id: g.goal_id,
                owner: g.owner,
                title: Some(g.title),
                description: g.description,
                due_on: g.due_on,
                accountability_partner: g.accountability_partner,
                set_on: g.set_on,
            })
        }
        PairCommand::RecordGoalProgress { goal_id, by, percent, note, recorded_on, .. } => {
            require_member(state, by, ctx)?;
            let goal = open_goal(state, goal_id)?;
            if by != goal.owner && Some(by) != goal.accountability_partner {
                return Err(DomainError::NotGoalParticipant);
            }
            if percent.is_none() && note.is_empty() {
                return Err(DomainError::invalid("note", "progress needs a percentage or a note"));
            }
            PairEvent::GoalProgressRecorded(GoalProgressRecorded { pair_id, goal_id, by, percent, note, recorded_on })
        }
        PairCommand::CompleteGoal { goal_id, by, note, completed_on, .. } => {
            require_member(state, by, ctx)?;
            let goal = open_goal(state, goal_id)?;
            if by != goal.owner {
                return Err(DomainError::NotGoalOwner { owner: goal.owner });
            }
            PairEvent::GoalCompleted(GoalCompleted { pair_id, goal_id, by, note, completed_on })
        }
        PairCommand::AbandonGoal { goal_id, by, reason, abandoned_on, .. } => {
            require_member(state, by, ctx)?;
            let goal = open_goal(state, goal_id)?;
            if by != goal.owner {
                return Err(DomainError::NotGoalOwner { owner: goal.owner });
            }
            PairEvent::GoalAbandoned(GoalAbandoned { pair_id, goal_id, by, reason, abandoned_on })
        }
        PairCommand::Pause { reason, paused_on, until, .. } => {
            require_unpaused(state, pair_id)?;
            if until.is_some_and(|u| u < paused_on) {
                return Err(DomainError::invalid("until", "must not be before the pause starts"));
            }
            PairEvent::PairPaused(PairPaused { pair_id, reason, paused_on, until })
        }
        PairCommand::Resume { resumed_on, .. } => {
            if state.status != Some(PairStatus::Paused) {
                return Err(DomainError::PairNotPaused(pair_id));
            }
            PairEvent::PairResumed(PairResumed { pair_id, resumed_on })
        }
        PairCommand::Dissolve { reason, note, dissolved_on, .. } => {
            if state.formed_on.is_some_and(|f| dissolved_on < f) {
                return Err(DomainError::invalid("dissolvedOn", "must not be before the formation date"));
            }
            PairEvent::PairDissolved(PairDissolved { pair_id, reason, note, dissolved_on })
        }
    };
    Ok(vec![event])
}

/// The dissolution the command service appends when the program closes or a
/// member leaves the organisation: it bypasses the closed-program rule, since
/// ending a pair is the one thing still allowed then.
pub fn dissolve_for_cleanup(
    state: &Pair,
    reason: DissolveReason,
    note: LongText,
    dissolved_on: NaiveDate,
) -> Option<PairEvent> {
    let pair_id = state.id?;
    if !state.is_current() {
        return None;
    }
    let dissolved_on = state.formed_on.map_or(dissolved_on, |f| dissolved_on.max(f));
    Some(PairEvent::PairDissolved(PairDissolved { pair_id, reason, note, dissolved_on }))
}

/// Folds one event into the state.
#[must_use]
pub fn evolve(mut state: Pair, event: &PairEvent) -> Pair {
    match event {
        PairEvent::PairFormed(e) => {
            state.id = Some(e.pair_id);
            state.program_id = Some(e.program_id);
            state.members.clone_from(&e.members);
            state.status = Some(PairStatus::Active);
            state.formed_on = Some(e.formed_on);
        }
        PairEvent::SessionScheduled(e) => {
            state.sessions.insert(e.session_id, SessionStatus::Scheduled);
        }
        PairEvent::SessionHeld(e) => {
            state.sessions.insert(e.session_id, SessionStatus::Held);
        }
        PairEvent::SessionCancelled(e) => {
            state.sessions.insert(e.session_id, SessionStatus::Cancelled);
        }
        PairEvent::FeedbackGiven(e) => {
            state.feedback.insert(e.feedback_id);
        }
        PairEvent::GoalSet(e) => {
            state.goals.insert(
                e.goal_id,
                GoalState {
                    owner: e.owner,
                    accountability_partner: e.accountability_partner,
                    status: GoalStatus::Open,
                },
            );
        }
        PairEvent::GoalProgressRecorded(_) => {}
        PairEvent::GoalCompleted(e) => {
            if let Some(g) = state.goals.get_mut(&e.goal_id) {
                g.status = GoalStatus::Completed;
            }
        }
        PairEvent::GoalAbandoned(e) => {
            if let Some(g) = state.goals.get_mut(&e.goal_id) {
                g.status = GoalStatus::Abandoned;
            }
        }
        PairEvent::PairPaused(_) => state.status = Some(PairStatus::Paused),
        PairEvent::PairResumed(_) => state.status = Some(PairStatus::Active),
        PairEvent::PairDissolved(_) => state.status = Some(PairStatus::Dissolved),
    }
    state
}
