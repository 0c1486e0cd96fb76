//! The Tandem command service.
//!
//! [`CommandService::handle`] takes a command of the domain, the actor who
//! sent it and an optional idempotency key, and returns the events it
//! committed with the position a reader must reach to see them. Concurrent
//! commands share transactions (group commit); for each batch a writer:
//!
//! 1. locks and looks up each idempotency key; a key seen before answers
//!    with the first result and writes nothing;
//! 2. locks the streams each decision reads (advisory locks: exclusive on
//!    the stream written, shared on the streams only read, so two commands
//!    on different pairs of one program run side by side while an enrolment
//!    change waits for them) and loads them inside the transaction;
//! 3. runs the pure `decide` of the domain on that state and the context
//!    gathered for it (org chart as of a date, enrolments, guard rows);
//! 4. appends the events with the expected version of each stream, writes
//!    the guard rows (one current pair per person per program, one person
//!    per external id) and the idempotency records, and commits.
//!
//! A version conflict, a guard-row race or a deadlock between two commands
//! rolls the attempt back; the next attempt re-reads and re-decides, which
//! turns a lost race into the domain's own refusal (e.g. `ALREADY_PAIRED`).
//! After [`MAX_ATTEMPTS`] the caller gets [`CommandError::Conflict`].
//!
//! # Layout
//!
//! One module per role; each imports only the modules listed after it, so
//! the imports run one way (no module imports one that imports it):
//!
//! | module | what it holds | imports |
//! |---|---|---|
//! | `service` | [`CommandService`], the entry point: key checks, retries, replays, metrics | `batch`, `cache`, `command`, `io`, `metrics`, `error` |
//! | `batch` | group commit: the writers, planning a batch together, selection, the commit | `decide`, `io`, `plan`, `cache`, `command`, `error` |
//! | `decide` | what each kind of command locks, loads and gathers, `decide`, cascades | `io`, `plan`, `command`, `error` |
//! | `io` | the transaction: locks, loads, guard reads, and the write of events, guard rows and idempotency records | `guards`, `cache`, `plan`, `command`, `error` |
//! | `guards` | the SQL of the guard tables | `error` |
//! | `cache` | folded stream states and their bounded cache | — |
//! | `plan` | what a decided command will write | — |
//! | `command` | [`Command`], [`CommandMeta`], [`Committed`] | — |
//! | `metrics` | the counter of committed events ([`EVENTS_APPENDED`]) | — |
//! | `error` | [`CommandError`] | — |
//!
//! Stored events are read through the store's [`DomainUpcaster`] (the
//! domain's one upcaster chain) and decoded by the domain.

mod batch;
mod cache;
mod command;
mod decide;
mod error;
mod guards;
mod io;
mod metrics;
mod plan;
mod service;

pub use command::{Command, CommandMeta, Committed};
pub use error::CommandError;
pub use metrics::{EVENTS_APPENDED, EventMetrics};
pub use service::{CommandService, DEFAULT_MAX_BATCH, DEFAULT_WRITERS, MAX_ATTEMPTS};
/// The store's adapter of the domain's upcaster chain, which every store the
/// service is given should use.
pub use tandem_store::DomainUpcaster;
