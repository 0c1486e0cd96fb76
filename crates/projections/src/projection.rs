//! What a projection is: the [`Projection`] trait the runner, rebuilds and
//! tests work with, and [`ReadModel`], the shape Tandem's own read models
//! take (constants for the name, version, tables and DDL, plus `apply`).
//!
//! A projection owns a few tables and turns batches of events into writes
//! on them. It never commits: the runner (or a rebuild) opens the
//! transaction, points `search_path` at the schema being written (the live
//! `read` schema or a rebuild's scratch schema), calls [`Projection::apply`]
//! and moves the checkpoint before committing. That is why projections use
//! unqualified table names and why their DDL is a plain script.
//!
//! This module imports no read model: they import it, and
//! [`crate::registry`] lists them, so imports run one way.

use std::fmt;

use futures::future::BoxFuture;
use sqlx::PgConnection;
use tandem_domain::DomainEvent;
use tandem_store::RecordedEvent;

use crate::error::{ProjectionError, Result};

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
    /// Batches can be large (a rebuild passes thousands of events at once),
    /// so an implementation should fold the batch in memory and write each
    /// table in a few set-based statements.
    fn apply<'a>(&'a self, conn: &'a mut PgConnection, events: &'a [Envelope]) -> BoxFuture<'a, Result<()>>;
}

/// A read model reduced to what is its own: its identity, its DDL and its
/// `apply`. Every `ReadModel` is a [`Projection`]; the runner, checkpoints,
/// batching, transactions, rebuilds and swaps are shared and live elsewhere.
pub trait ReadModel: Send + Sync + fmt::Debug + 'static {
    /// See [`Projection::name`].
    const NAME: &'static str;
    /// See [`Projection::version`].
    const VERSION: i32;
    /// See [`Projection::tables`].
    const TABLES: &'static [&'static str];
    /// See [`Projection::create_sql`].
    const CREATE_SQL: &'static str;

    /// See [`Projection::apply`].
    fn apply<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        events: &'a [Envelope],
    ) -> impl Future<Output = Result<()>> + Send + 'a;
}

impl<T: ReadModel> Projection for T {
    fn name(&self) -> &str {
        T::NAME
    }
    fn version(&self) -> i32 {
        T::VERSION
    }
    fn tables(&self) -> &'static [&'static str] {
        T::TABLES
    }
    fn create_sql(&self) -> &'static str {
        T::CREATE_SQL
    }
    fn apply<'a>(&'a self, conn: &'a mut PgConnection, events: &'a [Envelope]) -> BoxFuture<'a, Result<()>> {
        Box::pin(ReadModel::apply(self, conn, events))
    }
}

/// Checks that a projection name can be embedded in an identifier.
pub(crate) fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 40
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && name.as_bytes()[0].is_ascii_lowercase();
    if ok { Ok(()) } else { Err(ProjectionError::InvalidName(name.to_owned())) }
}
