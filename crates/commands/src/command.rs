//! What a command is: [`Command`] (any command of the domain), the
//! [`CommandMeta`] that travels with it, and [`Committed`], what the service
//! answers. Plain values; nothing here does I/O.

use tandem_domain::pair::PairCommand;
use tandem_domain::person::PersonCommand;
use tandem_domain::program::ProgramCommand;
use tandem_domain::webhook::WebhookCommand;
use tandem_store::{Actor, Cursor, RecordedEvent};
use uuid::Uuid;

/// Any command of the domain.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    Person(PersonCommand),
    Program(ProgramCommand),
    Pair(PairCommand),
    Webhook(WebhookCommand),
}

impl Command {
    /// The command's name, for logs and metrics.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::Person(c) => match c {
                PersonCommand::Register(_) => "RegisterPerson",
                PersonCommand::Update(_) => "UpdatePerson",
                PersonCommand::RecordLeft { .. } => "RecordPersonLeft",
                PersonCommand::Rejoin { .. } => "RejoinPerson",
                PersonCommand::Erase { .. } => "ErasePerson",
            },
            Self::Program(c) => match c {
                ProgramCommand::Launch(_) => "LaunchProgram",
                ProgramCommand::Update { .. } => "UpdateProgram",
                ProgramCommand::Enrol(_) => "EnrolParticipant",
                ProgramCommand::Withdraw { .. } => "WithdrawParticipant",
                ProgramCommand::Close { .. } => "CloseProgram",
            },
            Self::Pair(c) => match c {
                PairCommand::Form(_) => "FormPair",
                PairCommand::ScheduleSession { .. } => "ScheduleSession",
                PairCommand::HoldSession { .. } => "HoldSession",
                PairCommand::CancelSession { .. } => "CancelSession",
                PairCommand::GiveFeedback { .. } => "GiveFeedback",
                PairCommand::SetGoal { .. } => "SetGoal",
                PairCommand::RecordGoalProgress { .. } => "RecordGoalProgress",
                PairCommand::CompleteGoal { .. } => "CompleteGoal",
                PairCommand::AbandonGoal { .. } => "AbandonGoal",
                PairCommand::Pause { .. } => "PausePair",
                PairCommand::Resume { .. } => "ResumePair",
                PairCommand::Dissolve { .. } => "DissolvePair",
            },
            Self::Webhook(c) => match c {
                WebhookCommand::Create(_) => "CreateWebhookEndpoint",
                WebhookCommand::Update { .. } => "UpdateWebhookEndpoint",
                WebhookCommand::RotateSecret { .. } => "RotateWebhookSecret",
                WebhookCommand::Disable { .. } => "DisableWebhookEndpoint",
                WebhookCommand::Redeliver { .. } => "RedeliverWebhooks",
            },
        }
    }
}

/// Who sends a command and how it relates to others.
#[derive(Clone, Debug)]
pub struct CommandMeta {
    pub actor: Actor,
    /// The same key again, from the same actor (subject), returns the first
    /// result and appends nothing. Keys of different subjects never meet.
    pub idempotency_key: Option<String>,
    /// What identifies "the same request" for the key. A transport sets it
    /// from the client's input (before it mints ids); by default it is the
    /// command itself. Only its keyed digest is stored.
    pub request_fingerprint: Option<String>,
    pub correlation_id: Option<Uuid>,
    pub causation_id: Option<Uuid>,
    pub trace_id: Option<String>,
}

impl CommandMeta {
    /// Metadata for `actor` with nothing else set.
    #[must_use]
    pub fn new(actor: Actor) -> Self {
        Self {
            actor,
            idempotency_key: None,
            request_fingerprint: None,
            correlation_id: None,
            causation_id: None,
            trace_id: None,
        }
    }

    /// Sets the idempotency key.
    #[must_use]
    pub fn with_idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }
}

/// What a command committed.
#[derive(Clone, Debug, PartialEq)]
pub struct Committed {
    /// Every event the command appended, over all streams, in log order.
    /// Empty when the command changed nothing (e.g. an update to the same
    /// values).
    pub events: Vec<RecordedEvent>,
    /// Wait until readers reach this position to see the command's effects.
    pub position: Cursor,
    /// Whether this is the first result of an earlier call with the same
    /// idempotency key.
    pub replayed: bool,
}
