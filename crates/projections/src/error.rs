//! The crate's one error type.
//!
//! Variants a caller acts on are typed: [`ProjectionError::Timeout`] (a
//! read-your-writes wait ran out; the API answers with what it has or asks
//! the client to retry), [`ProjectionError::UnknownProjection`] and
//! [`ProjectionError::RebuildInProgress`] (operator input),
//! [`ProjectionError::InvalidCursor`] (a client's page cursor). Everything
//! else is for logs: the database, the event store, or a stored event this
//! build cannot decode (which stalls a projection on purpose: skipping it
//! would make the read model silently wrong).

use std::time::Duration;

use tandem_domain::event::CodecError;
use tandem_store::{Cursor, StoreError};

/// Shorthand for this crate's results.
pub type Result<T, E = ProjectionError> = std::result::Result<T, E>;

/// Everything that can go wrong in projections and read-model queries.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProjectionError {
    /// `wait_for` gave up: some projections had not reached `position`.
    #[error("read models did not reach {position} within {waited:?} (behind: {})", behind.join(", "))]
    Timeout {
        /// The position waited for.
        position: Cursor,
        /// How long it waited.
        waited: Duration,
        /// The projections still behind when it gave up.
        behind: Vec<String>,
    },

    /// No projection of that name is registered.
    #[error("unknown projection {0:?}")]
    UnknownProjection(String),

    /// Another rebuild of the projection holds its rebuild lock.
    #[error("a rebuild of projection {0:?} is already running")]
    RebuildInProgress(String),

    /// The stored tables were built by another version of the projection
    /// (or are missing) and automatic rebuilds are off.
    #[error("projection {name:?} needs a rebuild: tables of version {stored:?}, code of version {code}")]
    NeedsRebuild { name: String, stored: Option<i32>, code: i32 },

    /// A rebuild was stopped by shutdown before it swapped anything in.
    #[error("rebuild of projection {0:?} was cancelled")]
    Cancelled(String),

    /// A rebuild's swap could not read up to the live checkpoint in time
    /// (an old transaction held the read horizon); nothing was swapped.
    #[error("rebuild of projection {0:?} could not catch up with the live checkpoint; retry")]
    CatchUpStalled(String),

    /// A task of a rebuild ended without an answer (it panicked: a bug).
    #[error("a rebuild task of projection {projection:?} failed")]
    RebuildTask {
        projection: String,
        #[source]
        source: tokio::task::JoinError,
    },

    /// A study (metrics, survival) was asked for with input it cannot use;
    /// `field` names the input at fault.
    #[error("invalid {field}: {reason}")]
    InvalidStudy { field: &'static str, reason: String },

    /// A page cursor that this crate did not produce.
    #[error("invalid page cursor: {0}")]
    InvalidCursor(&'static str),

    /// A stored event cannot be turned into a domain event.
    #[error("cannot decode stored event at {cursor} ({event_type})")]
    Decode {
        cursor: Cursor,
        event_type: String,
        #[source]
        source: CodecError,
    },

    /// A read-model row could not be converted to or from JSON (a bug, or a
    /// table whose shape does not match this build).
    #[error("cannot convert rows of read.{table}")]
    Row {
        table: &'static str,
        #[source]
        source: serde_json::Error,
    },

    /// A projection's name is not usable as part of an SQL identifier.
    #[error("invalid projection name {0:?}: use lowercase letters, digits and underscores")]
    InvalidName(String),

    /// Reading the event log failed.
    #[error("event store failure")]
    Store(#[from] StoreError),

    /// Any other database failure.
    #[error("database error")]
    Database(#[from] sqlx::Error),
}

impl ProjectionError {
    /// True for failures that may go away by retrying later (the database
    /// rather than the data was the problem).
    #[must_use]
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Database(sqlx::Error::PoolClosed) => false,
            Self::Database(_) => true,
            Self::Store(e) => e.is_transient(),
            Self::CatchUpStalled(_) | Self::RebuildInProgress(_) => true,
            _ => false,
        }
    }
}
