//! The [`Projection`] trait and the registry of Tandem's read models.
//!
//! A projection owns a few tables and turns batches of events into writes
//! on them. It never commits: the runner (or a rebuild) opens the
//! transaction, points `search_path` at the schema being written (the live
//! `read` schema or a rebuild's scratch schema), calls [`Projection::apply`]
//! and moves the checkpoint before committing. That is why projections use
//! unqualified table names and why their DDL is a plain script.

use std::fmt;
use std::sync::Arc;

use futures::future::BoxFuture;
use sqlx::PgConnection;
use tandem_domain::DomainEvent;
use tandem_store::RecordedEvent;

use crate::error::{ProjectionError, Result};
use crate::read_models::{pairs, participation, people, programs};

/// The schema the API reads from.
pub const READ_SCHEMA: &str = "read";

/// A stored event with its decoded domain event. `RecordedEvent::data` is
/// already upcast to today's shape; the domain event is decoded from it.
pub type Envelope = (RecordedEvent, DomainEvent);

/// A read model kept up to date from the event log.
pub trait Projection: Send + Sync + fmt::Debug + 'static {
    /// A stable name: the checkpoint's key and part of the scratch schema's
    /// name during rebuilds (lowercase letters, digits, underscores).
    fn name(&self) -> &str;

    /// The version of the tables' shape and of the logic filling them. Bump
    /// it whenever either changes: runners rebuild a projection whose stored
    /// version differs from their code's.
    fn version(&self) -> i32;

    /// The tables the projection owns, created by [`Projection::create_sql`];
    /// a rebuild swaps exactly these.
    fn tables(&self) -> &'static [&'static str];

    /// DDL creating the tables and their indexes, with unqualified names:
    /// it runs with `search_path` set to the target schema.
    fn create_sql(&self) -> &'static str;

    /// Applies a batch of events, in log order, inside the caller's
    /// transaction (with `search_path` already set). Must be deterministic:
    /// the same events give the same rows, so a rebuild equals the live
    /// tables. Nothing derived from the clock or the applying process.
    fn apply<'a>(&'a self, conn: &'a mut PgConnection, events: &'a [Envelope]) -> BoxFuture<'a, Result<()>>;
}

/// Every read model of Tandem, in the order their runners start.
#[must_use]
pub fn read_models() -> Vec<Arc<dyn Projection>> {
    vec![
        Arc::new(people::PeopleProjection),
        Arc::new(programs::ProgramsProjection),
        Arc::new(pairs::PairsProjection),
        Arc::new(participation::ParticipationProjection),
    ]
}

/// The read model called `name`.
pub fn find(name: &str) -> Result<Arc<dyn Projection>> {
    read_models().into_iter().find(|p| p.name() == name).ok_or_else(|| ProjectionError::UnknownProjection(name.into()))
}

/// Checks that a projection name can be embedded in an identifier.
pub(crate) fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 40
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && name.as_bytes()[0].is_ascii_lowercase();
    if ok { Ok(()) } else { Err(ProjectionError::InvalidName(name.to_owned())) }
}
