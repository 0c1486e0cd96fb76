//! The store's view of the domain's upcaster chain.

use serde_json::Value;
use tandem_domain::event::{event_type_info, upcast};
use tandem_store::{UpcastError, Upcaster};

/// Brings stored events of the Tandem domain to today's schema versions,
/// using the pure chain in [`tandem_domain::event`].
#[derive(Clone, Copy, Debug, Default)]
pub struct DomainUpcaster;

impl Upcaster for DomainUpcaster {
    fn upcast(&self, event_type: &str, schema_version: i16, data: Value) -> Result<(String, i16, Value), UpcastError> {
        let Some((_, current)) = event_type_info(event_type) else {
            return Err(UpcastError::new(format!("unknown event type {event_type:?}")));
        };
        let data = upcast(event_type, schema_version, data).map_err(|e| UpcastError::new(e.to_string()))?;
        Ok((event_type.to_owned(), current, data))
    }
}
