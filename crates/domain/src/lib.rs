//! The pure domain of Tandem, an event-sourced backend for peer-coaching programs.
//!
//! Four kinds of streams make up the domain, one module each:
//!
//! * [`person`] — someone in the organisation, synced from the HRIS, with a dated
//!   org history (manager, department, title, level) so that rules can ask
//!   "who managed X on date D".
//! * [`program`] — a coaching program: its format, rules (maximum level gap,
//!   cadence) and who is enrolled.
//! * [`pair`] — a pair or small circle inside a program, and everything that
//!   happens in it: sessions, feedback, goals, pauses, dissolution.
//! * [`webhook`] — an endpoint Tandem pushes events to, and every change
//!   made to it.
//!
//! Every aggregate is synchronous and pure: `decide(&state, command, &context)`
//! returns the events a command produces or a [`DomainError`], and `evolve`
//! folds an event into the state. Whatever a decision needs from other streams
//! (the org chart, enrolments, who is already paired) is gathered by the
//! caller and passed in as a context value, so the rules stay testable without
//! a database. [`event`] holds the stored shape of events (type names, schema
//! versions), the one upcaster chain that turns old stored shapes into
//! today's, and the lenient reading that lets an older build pass over
//! what a newer one wrote.

pub mod error;
pub mod event;
pub mod ids;
pub mod pair;
pub mod person;
pub mod personal;
pub mod program;
mod serde_util;
pub mod values;
pub mod webhook;

pub use error::{DomainError, ErrorKind};
pub use event::DomainEvent;
pub use ids::{FeedbackId, GoalId, PairId, PersonId, ProgramId, SessionId, WebhookEndpointId};
