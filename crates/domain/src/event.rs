//! The stored shape of domain events.
//!
//! A stored event is `(stream_type, event_type, schema_version, data)`. This
//! module names the streams, gives every event type its current schema
//! version, encodes events to that shape and decodes them back, and holds the
//! upcaster chain: pure steps that turn an older stored payload into the next
//! version until it reaches today's. Stored events are never rewritten; old
//! shapes are upgraded each time they are read.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use thiserror::Error;
use uuid::Uuid;

use crate::pair::PairEvent;
use crate::person::PersonEvent;
use crate::program::ProgramEvent;

/// The kinds of streams.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StreamType {
    Person,
    Program,
    Pair,
}

impl StreamType {
    /// The name stored in the `stream_type` column.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Person => "person",
            Self::Program => "program",
            Self::Pair => "pair",
        }
    }

    /// Parses a stored stream type.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "person" => Some(Self::Person),
            "program" => Some(Self::Program),
            "pair" => Some(Self::Pair),
            _ => None,
        }
    }
}

/// Every event of the domain.
#[derive(Clone, Debug, PartialEq)]
pub enum DomainEvent {
    Person(PersonEvent),
    Program(ProgramEvent),
    Pair(PairEvent),
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
];

/// The stream type and current schema version of an event type.
#[must_use]
pub fn event_type_info(event_type: &str) -> Option<(StreamType, i16)> {
    EVENT_TYPES.iter().find(|(t, _, _)| *t == event_type).map(|(_, s, v)| (*s, *v))
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

/// An event ready to be stored.
#[derive(Clone, Debug, PartialEq)]
pub struct EncodedEvent {
    pub event_type: &'static str,
    pub schema_version: i16,
    pub data: Value,
}

fn split_tagged(v: Value) -> Option<(String, Value)> {
    let Value::Object(mut m) = v else { return None };
    let Some(Value::String(t)) = m.remove("type") else { return None };
    Some((t, m.remove("data").unwrap_or(Value::Null)))
}

impl DomainEvent {
    /// The event type name, e.g. `PairFormed`.
    #[must_use]
    pub fn event_type(&self) -> &'static str {
        self.encode_parts().0
    }

    /// The stream type the event belongs to.
    #[must_use]
    pub fn stream_type(&self) -> StreamType {
        match self {
            Self::Person(_) => StreamType::Person,
            Self::Program(_) => StreamType::Program,
            Self::Pair(_) => StreamType::Pair,
        }
    }

    /// The id of the stream the event belongs to.
    #[must_use]
    pub fn stream_id(&self) -> Uuid {
        use crate::pair::PairEvent as P;
        use crate::person::PersonEvent as H;
        use crate::program::ProgramEvent as G;
        match self {
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
        }
    }

    fn encode_parts(&self) -> (&'static str, Value) {
        let tagged = match self {
            Self::Person(e) => serde_json::to_value(e),
            Self::Program(e) => serde_json::to_value(e),
            Self::Pair(e) => serde_json::to_value(e),
        };
        // Serializing these plain data types cannot fail: every map key is a
        // string and no custom serializer returns an error.
        let (t, data) = tagged.ok().and_then(split_tagged).unwrap_or_default();
        let name = EVENT_TYPES.iter().find(|(n, _, _)| *n == t).map_or("Unknown", |(n, _, _)| n);
        (name, data)
    }

    /// Encodes the event at its current schema version.
    #[must_use]
    pub fn encode(&self) -> EncodedEvent {
        let (event_type, data) = self.encode_parts();
        let schema_version = event_type_info(event_type).map_or(1, |(_, v)| v);
        EncodedEvent { event_type, schema_version, data }
    }

    /// Decodes a stored event, upcasting older schema versions first.
    pub fn decode(event_type: &str, schema_version: i16, data: Value) -> Result<Self, CodecError> {
        let (stream, current) =
            event_type_info(event_type).ok_or_else(|| CodecError::UnknownEventType(event_type.to_owned()))?;
        let data = upcast(event_type, schema_version, data)?;
        let mut tagged = Map::new();
        tagged.insert("type".into(), Value::String(event_type.to_owned()));
        tagged.insert("data".into(), data);
        let tagged = Value::Object(tagged);
        let malformed = |e: serde_json::Error| CodecError::Malformed {
            event_type: event_type.to_owned(),
            version: current,
            reason: e.to_string(),
        };
        Ok(match stream {
            StreamType::Person => Self::Person(serde_json::from_value(tagged).map_err(malformed)?),
            StreamType::Program => Self::Program(serde_json::from_value(tagged).map_err(malformed)?),
            StreamType::Pair => Self::Pair(serde_json::from_value(tagged).map_err(malformed)?),
        })
    }
}

/// One upcaster step: turns `event_type` at `from` into version `from + 1`.
type Step = (&'static str, i16, fn(Value) -> Result<Value, String>);

/// The upcaster chain. Each step is pure and moves one version forward.
const STEPS: &[Step] = &[("PersonRegistered", 1, person_registered_v1_to_v2)];

/// PersonRegistered v1 called the name `fullName` and knew no location.
fn person_registered_v1_to_v2(data: Value) -> Result<Value, String> {
    let Value::Object(mut m) = data else {
        return Err("expected an object".into());
    };
    let name = m.remove("fullName").ok_or("missing fullName")?;
    m.insert("name".into(), name);
    m.entry("location").or_insert(Value::Null);
    Ok(Value::Object(m))
}

/// Brings a stored payload from `schema_version` to the current version of
/// its event type by applying the chain's steps in turn.
pub fn upcast(event_type: &str, schema_version: i16, mut data: Value) -> Result<Value, CodecError> {
    let (_, current) =
        event_type_info(event_type).ok_or_else(|| CodecError::UnknownEventType(event_type.to_owned()))?;
    if schema_version > current {
        return Err(CodecError::FromTheFuture {
            event_type: event_type.to_owned(),
            found: schema_version,
            known: current,
        });
    }
    let mut version = schema_version.max(1);
    while version < current {
        let step = STEPS
            .iter()
            .find(|(t, from, _)| *t == event_type && *from == version)
            .ok_or_else(|| CodecError::MissingUpcaster { event_type: event_type.to_owned(), from: version })?;
        data = (step.2)(data).map_err(|reason| CodecError::Malformed {
            event_type: event_type.to_owned(),
            version,
            reason,
        })?;
        version += 1;
    }
    Ok(data)
}
