//! Bringing stored events to today's schema on the way out.
//!
//! Stored rows are never rewritten: an event written as `PersonRegistered`
//! v1 stays v1 in the table forever. Every read path (a stream, the global
//! read, the tail) passes each row through an [`Upcaster`], so readers only
//! ever see the current shape and the domain needs no code for old ones.
//!
//! [`UpcasterChain`] is the usual implementation: a table of pure steps
//! keyed by `(event_type, from_version)`, applied one after another until no
//! step matches. Steps are plain functions of the JSON, so they are trivial
//! to test and cannot do IO.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use serde_json::Value;

/// Why an upcast failed: a stored event the current code cannot understand.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct UpcastError {
    message: String,
}

impl UpcastError {
    /// An error with the given explanation, for use in upcast steps.
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

/// The identity: for stores whose events are all current.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoUpcast;

impl Upcaster for NoUpcast {
    fn upcast(&self, event_type: &str, schema_version: i16, data: Value) -> Result<(String, i16, Value), UpcastError> {
        Ok((event_type.to_owned(), schema_version, data))
    }
}

/// A pure transformation of one stored shape into the next.
pub type UpcastFn = dyn Fn(Value) -> Result<Value, UpcastError> + Send + Sync;

struct Step {
    to_type: String,
    to_version: i16,
    transform: Arc<UpcastFn>,
}

/// Composes single-version steps into an [`Upcaster`].
///
/// ```
/// use serde_json::Value;
/// use tandem_store::{UpcastError, Upcaster, UpcasterChain};
///
/// // v1 called the field `full_name`; v2 calls it `name`.
/// fn rename_full_name(mut data: Value) -> Result<Value, UpcastError> {
///     let object = data
///         .as_object_mut()
///         .ok_or_else(|| UpcastError::new("expected an object"))?;
///     let name = object
///         .remove("full_name")
///         .ok_or_else(|| UpcastError::new("missing full_name"))?;
///     object.insert("name".to_owned(), name);
///     Ok(data)
/// }
///
/// let chain = UpcasterChain::new().step("PersonRegistered", 1, rename_full_name);
/// let (ty, version, data) = chain
///     .upcast("PersonRegistered", 1, serde_json::json!({"full_name": "Ada"}))
///     .expect("upcasts");
/// assert_eq!((ty.as_str(), version), ("PersonRegistered", 2));
/// assert_eq!(data, serde_json::json!({"name": "Ada"}));
/// ```
#[derive(Default, Clone)]
pub struct UpcasterChain {
    steps: HashMap<(String, i16), Arc<Step>>,
}

impl UpcasterChain {
    /// Guards against a chain whose steps lead back to where they started
    /// (possible with renames), which would otherwise loop forever on read.
    const MAX_STEPS: usize = 256;

    /// A chain with no steps (the identity).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the step from `event_type` v`from_version` to v`from_version + 1`
    /// of the same type. A later step for the same key replaces an earlier one.
    pub fn step<F>(self, event_type: &str, from_version: i16, transform: F) -> Self
    where
        F: Fn(Value) -> Result<Value, UpcastError> + Send + Sync + 'static,
    {
        let to_version = from_version.saturating_add(1);
        self.step_to(event_type, from_version, event_type, to_version, transform)
    }

    /// Adds a step that may also rename the type, e.g. when an event was
    /// split or renamed: `event_type` v`from_version` becomes `to_type`
    /// v`to_version`.
    pub fn step_to<F>(
        mut self,
        event_type: &str,
        from_version: i16,
        to_type: &str,
        to_version: i16,
        transform: F,
    ) -> Self
    where
        F: Fn(Value) -> Result<Value, UpcastError> + Send + Sync + 'static,
    {
        self.steps.insert(
            (event_type.to_owned(), from_version),
            Arc::new(Step { to_type: to_type.to_owned(), to_version, transform: Arc::new(transform) }),
        );
        self
    }
}

impl Upcaster for UpcasterChain {
    fn upcast(&self, event_type: &str, schema_version: i16, data: Value) -> Result<(String, i16, Value), UpcastError> {
        let mut current = (event_type.to_owned(), schema_version, data);
        for _ in 0..Self::MAX_STEPS {
            // The map is keyed by owned strings; the lookup allocates only
            // once per step, which is cheap next to the JSON transform.
            let Some(step) = self.steps.get(&(current.0.clone(), current.1)) else {
                return Ok(current);
            };
            let data = (step.transform)(current.2).map_err(|error| {
                UpcastError::new(format!(
                    "{} v{} -> {} v{}: {}",
                    current.0, current.1, step.to_type, step.to_version, error.message
                ))
            })?;
            current = (step.to_type.clone(), step.to_version, data);
        }
        Err(UpcastError::new(format!(
            "upcasting {event_type} v{schema_version} did not finish after {} steps (a cycle?)",
            Self::MAX_STEPS
        )))
    }
}

impl fmt::Debug for UpcasterChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut steps: Vec<_> = self
            .steps
            .iter()
            .map(|((ty, version), step)| format!("{ty} v{version} -> {} v{}", step.to_type, step.to_version))
            .collect();
        steps.sort();
        f.debug_struct("UpcasterChain").field("steps", &steps).finish()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn add_field(field: &'static str) -> impl Fn(Value) -> Result<Value, UpcastError> {
        move |mut data| {
            data.as_object_mut()
                .ok_or_else(|| UpcastError::new("not an object"))?
                .insert(field.to_owned(), json!(true));
            Ok(data)
        }
    }

    #[test]
    fn applies_steps_until_none_matches() {
        let chain = UpcasterChain::new().step("E", 1, add_field("v2")).step("E", 2, add_field("v3"));
        let out = chain.upcast("E", 1, json!({})).expect("upcasts");
        assert_eq!(out, ("E".to_owned(), 3, json!({"v2": true, "v3": true})));
        // Current events pass through untouched.
        let out = chain.upcast("E", 3, json!({"x": 1})).expect("upcasts");
        assert_eq!(out, ("E".to_owned(), 3, json!({"x": 1})));
        let out = chain.upcast("Other", 1, json!(1)).expect("upcasts");
        assert_eq!(out, ("Other".to_owned(), 1, json!(1)));
    }

    #[test]
    fn renames_types() {
        let chain = UpcasterChain::new().step_to("Old", 3, "New", 1, Ok).step("New", 1, add_field("renamed"));
        let out = chain.upcast("Old", 3, json!({})).expect("upcasts");
        assert_eq!(out, ("New".to_owned(), 2, json!({"renamed": true})));
    }

    #[test]
    fn stops_on_cycles_and_reports_failures() {
        let cycle = UpcasterChain::new().step_to("A", 1, "B", 1, Ok).step_to("B", 1, "A", 1, Ok);
        let error = cycle.upcast("A", 1, json!({})).expect_err("cycle");
        assert!(error.message().contains("did not finish"), "{error}");

        let failing = UpcasterChain::new().step("E", 1, add_field("x"));
        let error = failing.upcast("E", 1, json!([])).expect_err("not an object");
        assert!(error.message().contains("E v1 -> E v2"), "{error}");
    }
}
