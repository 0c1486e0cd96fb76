//! Bringing stored events to today's schema on the way out.
//!
//! Stored rows are never rewritten: an event written as `PersonRegistered`
//! v1 stays v1 in the table forever. Every read path (a stream, the global
//! read, the tail) passes each row through the store's [`Upcaster`], so
//! readers see today's shape.
//!
//! The store holds only this boundary. The chain itself, the pure steps
//! from one version to the next, is the domain's
//! ([`tandem_domain::event::upcast_stored`]); [`DomainUpcaster`] is the one
//! adapter between the two. An event a newer version of Tandem wrote (an
//! unknown type, a higher schema version) passes through as stored: the
//! domain's lenient reading decides what an older build makes of it, and
//! the read does not fail on it.

use std::fmt;

use serde_json::Value;

/// Why an upcast failed: a stored event of an older shape that the chain
/// refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct UpcastError {
    message: String,
}

impl UpcastError {
    /// An error with the given explanation.
    pub fn new(message: impl Into<String>) -> Self {
        UpcastError { message: message.into() }
    }

    /// The explanation.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// Brings one stored event to today's `(event_type, schema_version, data)`.
pub trait Upcaster: Send + Sync + fmt::Debug {
    /// Returns the event as today's code expects it; events already current
    /// come back unchanged.
    fn upcast(&self, event_type: &str, schema_version: i16, data: Value) -> Result<(String, i16, Value), UpcastError>;
}

/// Returns events as stored: the upcaster of [`crate::EventStore::new`] and
/// of the idempotency replay, which must answer exactly what was written.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct NoUpcast;

impl Upcaster for NoUpcast {
    fn upcast(&self, event_type: &str, schema_version: i16, data: Value) -> Result<(String, i16, Value), UpcastError> {
        Ok((event_type.to_owned(), schema_version, data))
    }
}

/// The domain's upcaster chain as the store's [`Upcaster`]: what every
/// store of Tandem reads with.
#[derive(Debug, Clone, Copy, Default)]
pub struct DomainUpcaster;

impl Upcaster for DomainUpcaster {
    fn upcast(&self, event_type: &str, schema_version: i16, data: Value) -> Result<(String, i16, Value), UpcastError> {
        let (version, data) = tandem_domain::event::upcast_stored(event_type, schema_version, data)
            .map_err(|e| UpcastError::new(e.to_string()))?;
        Ok((event_type.to_owned(), version, data))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn v1() -> Value {
        json!({
            "personId": "01890a5d-ac96-774b-bcce-b302099a8057", "externalId": "HR-1",
            "fullName": "Ada", "email": "ada@example.org", "department": "Eng", "title": "Engineer",
            "level": 3, "manager": null, "hiredOn": "2024-01-01"
        })
    }

    #[test]
    fn older_versions_come_out_at_todays_version() {
        let (ty, version, data) = DomainUpcaster.upcast("PersonRegistered", 1, v1()).expect("upcasts");
        assert_eq!((ty.as_str(), version), ("PersonRegistered", 2));
        assert_eq!(data["name"], json!("Ada"));
        assert!(data.get("fullName").is_none());
    }

    #[test]
    fn what_a_newer_version_wrote_passes_through_as_stored() {
        let future = json!({ "pairId": "x", "mergedInto": "y" });
        let out = DomainUpcaster.upcast("PairMerged", 1, future.clone()).expect("an unknown type is not an error");
        assert_eq!(out, ("PairMerged".to_owned(), 1, future.clone()));
        let out = DomainUpcaster.upcast("PairPaused", 7, future.clone()).expect("a newer version is not an error");
        assert_eq!(out, ("PairPaused".to_owned(), 7, future));
    }

    #[test]
    fn an_older_payload_the_chain_refuses_is_an_error() {
        let mut data = v1();
        data.as_object_mut().expect("object").remove("fullName");
        let error = DomainUpcaster.upcast("PersonRegistered", 1, data).expect_err("no name to carry over");
        assert!(error.message().contains("fullName"), "{error}");
    }
}
