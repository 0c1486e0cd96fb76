//! The tests of the pure domain: given events, when a command, then events or
//! a refusal; the stored event codec; and property tests over a whole
//! in-memory world that check every invariant of the design after every
//! accepted command.

#![expect(clippy::unwrap_used, reason = "tests")]

mod codec;
mod pair;
mod person;
mod personal;
mod program;
mod properties;
mod support;
mod values;
mod webhook;
