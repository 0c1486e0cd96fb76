//! Tandem's projections: the read models the API queries, and the machinery
//! that keeps them up to date with the event log.
//!
//! How it fits together:
//!
//! - [`projection`]: the [`Projection`] trait (a name, a version, the DDL of
//!   its tables and `apply` for a batch of events) and [`ReadModel`], the
//!   same as constants plus `apply`, which every read model implements.
//! - [`registry`]: [`read_models()`], the set Tandem runs. Imports go one
//!   way: read models import [`projection`], the registry imports the read
//!   models, and the runner, rebuilds, waits and lag import the registry.
//! - [`runner`]: [`Projections`] spawns one runner task per projection. A
//!   runner becomes leader by taking a session-level advisory lock (one
//!   leader per projection across every process; the others stand by and
//!   retry), catches up from its checkpoint in batches and then follows the
//!   log live, woken by `NOTIFY` and polling as a fallback. Each batch and
//!   the checkpoint move in one transaction ([`checkpoint`]), so every event
//!   takes effect exactly once.
//! - [`mod@rebuild`]: replays the log into fresh (unlogged) tables in a
//!   scratch schema while the old ones keep serving, one read of the log
//!   feeding every projection in parallel, then swaps them in atomically. A
//!   runner does this by itself when its code's version differs from the
//!   one that built the tables.
//! - [`wait`]: read-your-writes. [`Waiter::wait_for`] returns once every
//!   projection has applied a commit position, or fails with
//!   [`ProjectionError::Timeout`].
//! - [`mod@lag`]: how far each projection is behind the head of the log.
//! - [`mod@read_models`]: people with dated org history, programs and
//!   enrolments, pairs with sessions, feedback and goals, per-person
//!   participation facts; [`stats`] computes per-program statistics over
//!   them; [`queries`] holds the typed reads the API uses.
//!
//! Read models live in the `read` schema. Their DDL is Rust (each
//! projection's `create_sql`), written with unqualified names and run with
//! `search_path` pointing at the target schema, so the same statements build
//! the live tables and a rebuild's scratch copy.

pub mod checkpoint;
pub mod error;
pub mod lag;
pub mod projection;
pub mod queries;
pub mod read_models;
pub mod rebuild;
pub mod registry;
pub mod runner;
mod source;
mod sql;
pub mod stats;
pub mod wait;

pub use checkpoint::{BatchOutcome, Checkpoint, apply_batch, checkpoints};
pub use error::{ProjectionError, Result};
pub use lag::{ProjectionLag, lag};
pub use projection::{Envelope, Projection, READ_SCHEMA, ReadModel};
pub use rebuild::{Phase, Progress, RebuildReport, rebuild, rebuild_projections};
pub use registry::{find, read_models};
pub use runner::{Projections, ProjectionsHandle, Role, RunnerOptions};
pub use stats::{ProgramStats, program_stats};
pub use wait::Waiter;

/// The channel every committed batch notifies, with the payload
/// `"<projection> <transaction_id>-<position>"`.
pub const NOTIFY_CHANNEL: &str = "tandem_projections";

/// Advisory-lock class (first key of the two-key form) of the runner lock,
/// so it never collides with the command service's single-key stream locks
/// or the store's idempotency class. The ASCII bytes "TPrj".
pub const RUNNER_LOCK_CLASS: i32 = 0x5450_726a;

/// Advisory-lock class of the rebuild lock (one rebuild per projection at a
/// time). The ASCII bytes "TPrb".
pub const REBUILD_LOCK_CLASS: i32 = 0x5450_7262;
