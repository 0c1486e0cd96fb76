//! The Tandem command service.
//!
//! [`CommandService::handle`] takes a command of the domain, the actor who
//! sent it and an optional idempotency key, and returns the events it
//! committed with the position a reader must reach to see them. For each
//! attempt it runs one transaction:
//!
//! 1. the idempotency key is locked and looked up; a key seen before answers
//!    with the first result and writes nothing;
//! 2. the streams the decision reads are locked (advisory locks: exclusive on
//!    the stream written, shared on the streams only read, so two commands on
//!    different pairs of one program run side by side while an enrolment
//!    change waits for them) and loaded inside the transaction;
//! 3. the pure `decide` of the domain runs on that state and the context
//!    gathered for it (org chart as of a date, enrolments, guard rows);
//! 4. the events are appended with the expected version of each stream, the
//!    guard rows (one current pair per person per program, one person per
//!    external id) are written, the idempotency record too, and it commits.
//!
//! A version conflict, a guard-row race or a deadlock between two commands
//! rolls the attempt back; the next attempt re-reads and re-decides, which
//! turns a lost race into the domain's own refusal (e.g. `ALREADY_PAIRED`).
//! After [`MAX_ATTEMPTS`] the caller gets [`CommandError::Conflict`].

mod batch;
mod error;
mod guards;
mod service;
mod unit;
mod upcast;

pub use error::CommandError;
pub use service::{Command, CommandMeta, CommandService, Committed, DEFAULT_MAX_BATCH, DEFAULT_WRITERS, MAX_ATTEMPTS};
pub use upcast::DomainUpcaster;
