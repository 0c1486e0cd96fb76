//! The one error type of the domain. Every refusal a rule can produce is a
//! variant here, with a stable machine-readable [`DomainError::code`] and a
//! coarse [`ErrorKind`] that the transport maps to its own codes.

use thiserror::Error;

use crate::ids::{GoalId, PairId, PersonId, ProgramId, SessionId, WebhookEndpointId};

/// How a transport should classify a domain refusal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The input itself is malformed (bad value, missing field).
    InvalidInput,
    /// A referenced entity does not exist.
    NotFound,
    /// The input is well formed but a rule of the domain refuses it in the
    /// current state (dissolved pair, already enrolled, authority relation…).
    RuleViolation,
}

/// A command refused by the domain. Nothing is appended when this is returned.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum DomainError {
    #[error("invalid {field}: {reason}")]
    InvalidInput { field: &'static str, reason: String },

    #[error("person {0} not found")]
    PersonNotFound(PersonId),
    #[error("program {0} not found")]
    ProgramNotFound(ProgramId),
    #[error("pair {0} not found")]
    PairNotFound(PairId),
    #[error("session {0} not found in this pair")]
    SessionNotFound(SessionId),
    #[error("goal {0} not found in this pair")]
    GoalNotFound(GoalId),

    #[error("{entity} already exists")]
    AlreadyExists { entity: &'static str },
    #[error("another person already has external id {0:?}")]
    ExternalIdTaken(String),
    #[error("person {0} has left the organisation")]
    PersonHasLeft(PersonId),
    #[error("person {0} has not left the organisation")]
    PersonHasNotLeft(PersonId),
    #[error("person {0} has been erased")]
    PersonErased(PersonId),
    #[error("a person cannot be their own manager")]
    SelfManagement,
    #[error("making {manager} the manager of {person} would create a cycle in the management chain")]
    ManagementCycle { person: PersonId, manager: PersonId },

    #[error("program {0} is closed")]
    ProgramClosed(ProgramId),
    #[error("person {0} is already enrolled in this program")]
    AlreadyEnrolled(PersonId),
    #[error("person {0} is not enrolled in this program")]
    NotEnrolled(PersonId),
    #[error("person {0} is in an active pair of this program; dissolve it first")]
    InActivePair(PersonId),

    #[error("members must be distinct; {0} appears twice")]
    DuplicateMember(PersonId),
    #[error("a {format} needs between {min} and {max} members, got {got}")]
    WrongGroupSize { format: &'static str, min: u8, max: u8, got: usize },
    #[error("{manager} is in the management chain of {report}: no authority over one another is allowed")]
    AuthorityRelation { manager: PersonId, report: PersonId },
    #[error("levels differ by {gap}, more than the program allows ({max_gap})")]
    LevelGapTooLarge { gap: u8, max_gap: u8 },
    #[error("person {0} is already in an active pair of this program")]
    AlreadyPaired(PersonId),

    #[error("pair {0} is dissolved")]
    PairDissolved(PairId),
    #[error("pair {0} is paused")]
    PairPaused(PairId),
    #[error("pair {0} is not paused")]
    PairNotPaused(PairId),
    #[error("person {0} is not a member of this pair")]
    NotAMember(PersonId),
    #[error("a member cannot give feedback to themself")]
    SelfFeedback,
    #[error("session {0} has already been held")]
    SessionAlreadyHeld(SessionId),
    #[error("session {0} was cancelled")]
    SessionCancelled(SessionId),
    #[error("session {0} has not been held yet")]
    SessionNotHeld(SessionId),
    #[error("goal {0} is already completed or abandoned")]
    GoalClosed(GoalId),
    #[error("only the goal's owner {owner} may do this")]
    NotGoalOwner { owner: PersonId },
    #[error("only the goal's owner or accountability partner may record progress")]
    NotGoalParticipant,

    #[error("webhook endpoint {0} not found")]
    WebhookEndpointNotFound(WebhookEndpointId),
    #[error("webhook endpoint {0} is disabled")]
    WebhookEndpointDisabled(WebhookEndpointId),
}

impl DomainError {
    /// Shorthand for an [`DomainError::InvalidInput`].
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidInput { field, reason: reason.into() }
    }

    /// The coarse class of the refusal.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        use DomainError as E;
        match self {
            E::InvalidInput { .. } => ErrorKind::InvalidInput,
            E::PersonNotFound(_)
            | E::ProgramNotFound(_)
            | E::PairNotFound(_)
            | E::SessionNotFound(_)
            | E::GoalNotFound(_)
            | E::WebhookEndpointNotFound(_) => ErrorKind::NotFound,
            _ => ErrorKind::RuleViolation,
        }
    }

    /// The offending input field, when the refusal is about one.
    #[must_use]
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Self::InvalidInput { field, .. } => Some(field),
            _ => None,
        }
    }

    /// A stable, machine-readable reason, e.g. `PAIR_DISSOLVED`. Clients may
    /// branch on it; it never changes meaning once published.
    #[must_use]
    pub fn code(&self) -> &'static str {
        use DomainError as E;
        match self {
            E::InvalidInput { .. } => "INVALID_INPUT",
            E::PersonNotFound(_) => "PERSON_NOT_FOUND",
            E::ProgramNotFound(_) => "PROGRAM_NOT_FOUND",
            E::PairNotFound(_) => "PAIR_NOT_FOUND",
            E::SessionNotFound(_) => "SESSION_NOT_FOUND",
            E::GoalNotFound(_) => "GOAL_NOT_FOUND",
            E::AlreadyExists { .. } => "ALREADY_EXISTS",
            E::ExternalIdTaken(_) => "EXTERNAL_ID_TAKEN",
            E::PersonHasLeft(_) => "PERSON_HAS_LEFT",
            E::PersonHasNotLeft(_) => "PERSON_HAS_NOT_LEFT",
            E::PersonErased(_) => "PERSON_ERASED",
            E::SelfManagement => "SELF_MANAGEMENT",
            E::ManagementCycle { .. } => "MANAGEMENT_CYCLE",
            E::ProgramClosed(_) => "PROGRAM_CLOSED",
            E::AlreadyEnrolled(_) => "ALREADY_ENROLLED",
            E::NotEnrolled(_) => "NOT_ENROLLED",
            E::InActivePair(_) => "IN_ACTIVE_PAIR",
            E::DuplicateMember(_) => "DUPLICATE_MEMBER",
            E::WrongGroupSize { .. } => "WRONG_GROUP_SIZE",
            E::AuthorityRelation { .. } => "AUTHORITY_RELATION",
            E::LevelGapTooLarge { .. } => "LEVEL_GAP_TOO_LARGE",
            E::AlreadyPaired(_) => "ALREADY_PAIRED",
            E::PairDissolved(_) => "PAIR_DISSOLVED",
            E::PairPaused(_) => "PAIR_PAUSED",
            E::PairNotPaused(_) => "PAIR_NOT_PAUSED",
            E::NotAMember(_) => "NOT_A_MEMBER",
            E::SelfFeedback => "SELF_FEEDBACK",
            E::SessionAlreadyHeld(_) => "SESSION_ALREADY_HELD",
            E::SessionCancelled(_) => "SESSION_CANCELLED",
            E::SessionNotHeld(_) => "SESSION_NOT_HELD",
            E::GoalClosed(_) => "GOAL_CLOSED",
            E::NotGoalOwner { .. } => "NOT_GOAL_OWNER",
            E::NotGoalParticipant => "NOT_GOAL_PARTICIPANT",
            E::WebhookEndpointNotFound(_) => "WEBHOOK_ENDPOINT_NOT_FOUND",
            E::WebhookEndpointDisabled(_) => "WEBHOOK_ENDPOINT_DISABLED",
        }
    }
}
