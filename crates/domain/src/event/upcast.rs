//! The upcaster chain: the one place that knows the older stored shapes of
//! events. Each step is a pure function of the JSON payload that moves one
//! event type one schema version forward; [`upcast`] applies them in turn
//! up to today's version, and [`upcast_stored`] is the lenient form the
//! store runs on every read.

use serde_json::Value;

use super::types::{CodecError, event_type_info};

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

/// The chain as the store runs it on every read: an event of a known type
/// at today's version or older comes back as `(event_type, today's version,
/// today's payload)`. An event this build cannot upcast because a newer
/// version wrote it (an unknown type, a higher version) comes back as
/// stored, for `StoredEvent::read` to judge: that is not a failure of
/// the read. Only an older payload that the chain's own steps refuse is an
/// error.
pub fn upcast_stored(event_type: &str, schema_version: i16, data: Value) -> Result<(i16, Value), CodecError> {
    match event_type_info(event_type) {
        Some((_, current)) if schema_version <= current => Ok((current, upcast(event_type, schema_version, data)?)),
        _ => Ok((schema_version, data)),
    }
}
