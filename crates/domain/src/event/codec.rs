//! Encoding domain events to their stored shape and reading them back.
//!
//! Reading separates three questions, so that an event written by a newer
//! version of Tandem never stops an older reader:
//!
//! 1. **Is it ours?** An unknown event type, or a schema version newer than
//!    this build knows whose payload does not read as today's, is
//!    [`DomainEvent::Unrecognised`]: kept as stored, not an error.
//! 2. **Which shape?** Older versions go through the upcaster chain.
//! 3. **Is it valid?** The payload is decoded into the domain's types, whose
//!    parse constructors validate every value. A payload at a version this
//!    build knows that fails here is a [`CodecError::Malformed`]: the log
//!    holds something this build itself could not have written.
//!
//! Fields of a payload that this build does not know (a newer version added
//! them) are kept in [`StoredEvent::unknown_fields`] and written back by
//! [`StoredEvent::encode`], so decoding and encoding again loses nothing.

use serde_json::{Map, Value};
use uuid::Uuid;

use super::types::{
    CodecError, DomainEvent, EVENT_TYPES, StreamType, Unrecognised, UnrecognisedEvent, event_type_info,
};
use super::upcast::upcast;

/// An event ready to be stored.
#[derive(Clone, Debug, PartialEq)]
pub struct EncodedEvent {
    pub event_type: String,
    pub schema_version: i16,
    pub data: Value,
}

fn split_tagged(v: Value) -> Option<(String, Value)> {
    let Value::Object(mut m) = v else { return None };
    let Some(Value::String(t)) = m.remove("type") else { return None };
    Some((t, m.remove("data").unwrap_or(Value::Null)))
}

impl DomainEvent {
    /// The type name and payload of a known event (an unrecognised one has
    /// no encoding of its own: [`StoredEvent::encode`] keeps it as stored).
    pub(super) fn encode_parts(&self) -> (&'static str, Value) {
        let tagged = match self {
            Self::Person(e) => serde_json::to_value(e),
            Self::Program(e) => serde_json::to_value(e),
            Self::Pair(e) => serde_json::to_value(e),
            Self::Webhook(e) => serde_json::to_value(e),
            Self::Unrecognised(_) => return ("Unrecognised", Value::Null),
        };
        // Serializing these plain data types cannot fail: every map key is a
        // string and no custom serializer returns an error.
        let (t, data) = tagged.ok().and_then(split_tagged).unwrap_or_default();
        let name = EVENT_TYPES.iter().find(|(n, _, _)| *n == t).map_or("Unknown", |(n, _, _)| n);
        (name, data)
    }

    /// Encodes the event at its current schema version; an unrecognised
    /// event keeps its stored type, version and payload.
    #[must_use]
    pub fn encode(&self) -> EncodedEvent {
        if let Self::Unrecognised(u) = self {
            return EncodedEvent {
                event_type: u.event_type.clone(),
                schema_version: u.schema_version,
                data: u.data.clone(),
            };
        }
        let (event_type, data) = self.encode_parts();
        let schema_version = event_type_info(event_type).map_or(1, |(_, v)| v);
        EncodedEvent { event_type: event_type.to_owned(), schema_version, data }
    }

    /// Decodes a stored event strictly: upcasts older versions, and refuses
    /// what this build does not understand ([`CodecError::UnknownEventType`],
    /// [`CodecError::FromTheFuture`]) as well as malformed payloads. A newer
    /// version whose payload reads as today's is accepted (its extra fields
    /// dropped). Readers that must get past newer events use
    /// [`StoredEvent::read`].
    pub fn decode(event_type: &str, schema_version: i16, data: Value) -> Result<Self, CodecError> {
        // The stream id only ever reaches an unrecognised event, which is an
        // error here.
        let read = StoredEvent::read(Uuid::nil(), event_type, schema_version, data)?;
        match read.event {
            Self::Unrecognised(u) => Err(match u.reason {
                Unrecognised::UnknownType => CodecError::UnknownEventType(u.event_type),
                Unrecognised::NewerVersion { known } => {
                    CodecError::FromTheFuture { event_type: u.event_type, found: u.schema_version, known }
                }
            }),
            event => Ok(event),
        }
    }
}

/// A stored event as this build reads it: the domain event (perhaps
/// [`DomainEvent::Unrecognised`]) and the fields of its payload this build
/// does not know.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredEvent {
    pub event: DomainEvent,
    /// The payload's fields that the domain's types do not hold (objects
    /// inside known fields included), as stored. Empty for an event this
    /// build wrote, and for an unrecognised one (whose payload is kept
    /// whole).
    pub unknown_fields: Map<String, Value>,
}

impl StoredEvent {
    /// Reads a stored event of `stream_id` leniently (see the module docs):
    ///
    /// * an unknown event type is [`DomainEvent::Unrecognised`];
    /// * a version newer than this build knows is read as today's version
    ///   when its payload allows it (a newer version that only added fields),
    ///   else it is [`DomainEvent::Unrecognised`];
    /// * today's version or an older one is upcast and decoded; a payload
    ///   that does not decode is [`CodecError::Malformed`], and an older one
    ///   the chain cannot upcast is [`CodecError::MissingUpcaster`] or
    ///   [`CodecError::Malformed`].
    pub fn read(stream_id: Uuid, event_type: &str, schema_version: i16, data: Value) -> Result<Self, CodecError> {
        let unrecognised = |data: Value, reason: Unrecognised| Self {
            event: DomainEvent::Unrecognised(UnrecognisedEvent {
                stream_id,
                event_type: event_type.to_owned(),
                schema_version,
                data,
                reason,
            }),
            unknown_fields: Map::new(),
        };
        let Some((stream, current)) = event_type_info(event_type) else {
            return Ok(unrecognised(data, Unrecognised::UnknownType));
        };
        if schema_version > current {
            return Ok(match typed(stream, event_type, &data) {
                Ok(event) => Self::known(event, &data),
                Err(_) => unrecognised(data, Unrecognised::NewerVersion { known: current }),
            });
        }
        let data = upcast(event_type, schema_version, data)?;
        let event = typed(stream, event_type, &data).map_err(|e| CodecError::Malformed {
            event_type: event_type.to_owned(),
            version: current,
            reason: e.to_string(),
        })?;
        Ok(Self::known(event, &data))
    }

    /// A decoded event with the fields of `data` it does not hold.
    fn known(event: DomainEvent, data: &Value) -> Self {
        let unknown_fields = match (data, event.encode_parts().1) {
            (Value::Object(stored), Value::Object(ours)) => residual(stored, &ours),
            _ => Map::new(),
        };
        Self { event, unknown_fields }
    }

    /// The event in its stored shape at today's version, with the unknown
    /// fields put back (an unrecognised event exactly as stored).
    #[must_use]
    pub fn encode(&self) -> EncodedEvent {
        let mut encoded = self.event.encode();
        if let Value::Object(ours) = &mut encoded.data {
            merge(ours, &self.unknown_fields);
        }
        encoded
    }
}

/// Decodes today's payload of a known event type.
fn typed(stream: StreamType, event_type: &str, data: &Value) -> Result<DomainEvent, serde_json::Error> {
    let mut tagged = Map::new();
    tagged.insert("type".into(), Value::String(event_type.to_owned()));
    tagged.insert("data".into(), data.clone());
    let tagged = Value::Object(tagged);
    Ok(match stream {
        StreamType::Person => DomainEvent::Person(serde_json::from_value(tagged)?),
        StreamType::Program => DomainEvent::Program(serde_json::from_value(tagged)?),
        StreamType::Pair => DomainEvent::Pair(serde_json::from_value(tagged)?),
        StreamType::Webhook => DomainEvent::Webhook(serde_json::from_value(tagged)?),
    })
}

/// What `stored` holds that `ours` (the same event encoded by this build)
/// does not, descending into objects both have.
fn residual(stored: &Map<String, Value>, ours: &Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::new();
    for (key, value) in stored {
        match (ours.get(key), value) {
            (None, _) => {
                out.insert(key.clone(), value.clone());
            }
            (Some(Value::Object(ours)), Value::Object(stored)) => {
                let inner = residual(stored, ours);
                if !inner.is_empty() {
                    out.insert(key.clone(), Value::Object(inner));
                }
            }
            (Some(_), _) => {}
        }
    }
    out
}

/// Puts `extra` back into `ours`; what `ours` holds wins.
fn merge(ours: &mut Map<String, Value>, extra: &Map<String, Value>) {
    for (key, value) in extra {
        match (ours.get_mut(key), value) {
            (None, _) => {
                ours.insert(key.clone(), value.clone());
            }
            (Some(Value::Object(ours)), Value::Object(extra)) => merge(ours, extra),
            (Some(_), _) => {}
        }
    }
}
