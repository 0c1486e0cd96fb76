//! The event types of the domain: [`DomainEvent`], the kinds of streams,
//! every event type's current schema version ([`EVENT_TYPES`]), and
//! [`CodecError`], why a stored event could not be read.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;
use uuid::Uuid;

use crate::pair::PairEvent;
use crate::person::PersonEvent;
use crate::program::ProgramEvent;
use crate::webhook::WebhookEvent;

/// The kinds of streams.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StreamType {
    Person,
    Program,
    Pair,
    /// A webhook endpoint.
    Webhook,
}

impl StreamType {
    /// The name stored in the `stream_type` column.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Person => "person",
            Self::Program => "program",
            Self::Pair => "pair",
            Self::Webhook => "webhook",
        }
    }

    /// Parses a stored stream type.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "person" => Some(Self::Person),
            "program" => Some(Self::Program),
            "pair" => Some(Self::Pair),
            "webhook" => Some(Self::Webhook),
            _ => None,
        }
    }
}

/// Every event of the domain, and the events of a newer version that this
/// build cannot interpret.
#[derive(Clone, Debug, PartialEq)]
pub enum DomainEvent {
    Person(PersonEvent),
    Program(ProgramEvent),
    Pair(PairEvent),
    Webhook(WebhookEvent),
    /// A stored event this build does not understand: an event type it does
    /// not know, or a newer schema version whose payload does not read as
    /// today's. Readers pass over it (it changes no state and is delivered
    /// to nobody); the command service refuses to decide on a stream that
    /// holds one, since it cannot know what the event changed.
    Unrecognised(UnrecognisedEvent),
}

/// A stored event kept as it was stored, because this build cannot
/// interpret it (see [`DomainEvent::Unrecognised`]).
#[derive(Clone, Debug, PartialEq)]
pub struct UnrecognisedEvent {
    /// The stream it was stored in.
    pub stream_id: Uuid,
    /// The stored type name.
    pub event_type: String,
    /// The stored schema version.
    pub schema_version: i16,
    /// The stored payload, untouched.
    pub data: Value,
    /// Why this build cannot interpret it.
    pub reason: Unrecognised,
}

/// Why a stored event is [`DomainEvent::Unrecognised`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unrecognised {
    /// The event type is not one of [`EVENT_TYPES`].
    UnknownType,
    /// The schema version is newer than `known`, the newest this build
    /// knows, and the payload does not read as that version.
    NewerVersion { known: i16 },
}

/// Every event type with the stream it belongs to and its current schema
/// version. Bump a version only together with an upcaster step from the
/// previous one.
pub const EVENT_TYPES: &[(&str, StreamType, i16)] = &[
    ("PersonRegistered", StreamType::Person, 2),
    ("PersonUpdated", StreamType::Person, 1),
    ("PersonLeft", StreamType::Person, 1),
    ("PersonRejoined", StreamType::Person, 1),
    ("PersonErased", StreamType::Person, 1),
    ("ProgramLaunched", StreamType::Program, 1),
    ("ProgramUpdated", StreamType::Program, 1),
    ("ParticipantEnrolled", StreamType::Program, 1),
    ("ParticipantWithdrew", StreamType::Program, 1),
    ("ProgramClosed", StreamType::Program, 1),
    ("PairFormed", StreamType::Pair, 1),
    ("SessionScheduled", StreamType::Pair, 1),
    ("SessionHeld", StreamType::Pair, 1),
    ("SessionCancelled", StreamType::Pair, 1),
    ("FeedbackGiven", StreamType::Pair, 1),
    ("GoalSet", StreamType::Pair, 1),
    ("GoalProgressRecorded", StreamType::Pair, 1),
    ("GoalCompleted", StreamType::Pair, 1),
    ("GoalAbandoned", StreamType::Pair, 1),
    ("PairPaused", StreamType::Pair, 1),
    ("PairResumed", StreamType::Pair, 1),
    ("PairDissolved", StreamType::Pair, 1),
    ("WebhookEndpointCreated", StreamType::Webhook, 1),
    ("WebhookEndpointUpdated", StreamType::Webhook, 1),
    ("WebhookSecretRotated", StreamType::Webhook, 1),
    ("WebhookEndpointDisabled", StreamType::Webhook, 1),
    ("WebhookRedeliveryRequested", StreamType::Webhook, 1),
];

/// The stream type and current schema version of an event type.
#[must_use]
pub fn event_type_info(event_type: &str) -> Option<(StreamType, i16)> {
    EVENT_TYPES.iter().find(|(t, _, _)| *t == event_type).map(|(_, s, v)| (*s, *v))
}

impl DomainEvent {
    /// The event type name, e.g. `PairFormed` (as stored, for an
    /// unrecognised event).
    #[must_use]
    pub fn event_type(&self) -> &str {
        match self {
            Self::Unrecognised(u) => &u.event_type,
            known => known.encode_parts().0,
        }
    }

    /// The stream type the event belongs to; `None` for an unrecognised
    /// event, whose payload this build cannot read.
    #[must_use]
    pub fn stream_type(&self) -> Option<StreamType> {
        match self {
            Self::Person(_) => Some(StreamType::Person),
            Self::Program(_) => Some(StreamType::Program),
            Self::Pair(_) => Some(StreamType::Pair),
            Self::Webhook(_) => Some(StreamType::Webhook),
            Self::Unrecognised(_) => None,
        }
    }

    /// The id of the stream the event belongs to (for an unrecognised
    /// event, the stored record's).
    #[must_use]
    pub fn stream_id(&self) -> Uuid {
        use crate::pair::PairEvent as P;
        use crate::person::PersonEvent as H;
        use crate::program::ProgramEvent as G;
        match self {
            Self::Unrecognised(u) => u.stream_id,
            Self::Person(e) => match e {
                H::PersonRegistered(e) => e.person_id,
                H::PersonUpdated(e) => e.person_id,
                H::PersonLeft(e) => e.person_id,
                H::PersonRejoined(e) => e.person_id,
                H::PersonErased(e) => e.person_id,
            }
            .as_uuid(),
            Self::Program(e) => match e {
                G::ProgramLaunched(e) => e.program_id,
                G::ProgramUpdated(e) => e.program_id,
                G::ParticipantEnrolled(e) => e.program_id,
                G::ParticipantWithdrew(e) => e.program_id,
                G::ProgramClosed(e) => e.program_id,
            }
            .as_uuid(),
            Self::Pair(e) => match e {
                P::PairFormed(e) => e.pair_id,
                P::SessionScheduled(e) => e.pair_id,
                P::SessionHeld(e) => e.pair_id,
                P::SessionCancelled(e) => e.pair_id,
                P::FeedbackGiven(e) => e.pair_id,
                P::GoalSet(e) => e.pair_id,
                P::GoalProgressRecorded(e) => e.pair_id,
                P::GoalCompleted(e) => e.pair_id,
                P::GoalAbandoned(e) => e.pair_id,
                P::PairPaused(e) => e.pair_id,
                P::PairResumed(e) => e.pair_id,
                P::PairDissolved(e) => e.pair_id,
            }
            .as_uuid(),
            Self::Webhook(e) => e.endpoint_id().as_uuid(),
        }
    }
}

/// Why a stored event could not be read.
#[derive(Debug, Error)]
pub enum CodecError {
    #[error("unknown event type {0:?}")]
    UnknownEventType(String),
    #[error("event type {event_type} has schema version {found}, newer than this build knows ({known})")]
    FromTheFuture { event_type: String, found: i16, known: i16 },
    #[error("no upcaster from {event_type} v{from}")]
    MissingUpcaster { event_type: String, from: i16 },
    #[error("payload of {event_type} v{version} is malformed: {reason}")]
    Malformed { event_type: String, version: i16, reason: String },
}
