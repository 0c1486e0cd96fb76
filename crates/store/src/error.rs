//! The crate's one error type.
//!
//! Variants a caller is expected to act on (a conflict to re-decide, a
//! reused idempotency key, a bad cursor from a client) are typed; everything
//! the caller can only log is [`StoreError::Database`], with the sqlx error
//! as its source.

use uuid::Uuid;

use crate::upcast::UpcastError;
use crate::version::ExpectedVersion;

/// Shorthand for this crate's results.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Everything that can go wrong in the event store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The stream is not at the version the append expected. The command
    /// handler should reload the stream, decide again and retry.
    ///
    /// `actual` is the version the store saw (`None`: no such stream, or
    /// unknown after an `Any` append lost every retry). When
    /// the conflict was detected by the unique constraint after a racing
    /// writer committed first, `actual` is the version that writer stored,
    /// a lower bound of the stream's version.
    #[error("version conflict on stream {stream_id}: expected {expected}, found {}", fmt_version(*.actual))]
    Conflict { stream_id: Uuid, expected: ExpectedVersion, actual: Option<i32> },

    /// An event with one of these `event_id`s is already stored.
    #[error("an event id of this append is already stored")]
    DuplicateEventId,

    /// The idempotency key was first used with a different request. `key`
    /// is the stored (keyed, scoped) digest, never the client's key.
    #[error("idempotency key {key} was already used for a different request")]
    IdempotencyKeyReused { key: String },

    /// Another transaction recorded the same idempotency key first. Only
    /// happens when the lookup could not see it (REPEATABLE READ or
    /// SERIALIZABLE snapshot taken before the other commit). Roll back and
    /// retry in a fresh transaction: the lookup will return the first result.
    #[error("idempotency key {key} was recorded by a concurrent transaction; retry")]
    IdempotencyRace { key: String },

    /// The operation must run inside a transaction (begun through sqlx) and
    /// was given a connection outside one.
    #[error("{operation} must run inside a transaction")]
    NotInTransaction { operation: &'static str },

    /// The append was rejected before reaching the database.
    #[error("invalid append: {reason}")]
    InvalidAppend { reason: String },

    /// A cursor string that this store did not produce.
    #[error("invalid cursor {input:?}: {reason}")]
    InvalidCursor { input: String, reason: &'static str },

    /// A stored row could not be turned into a [`crate::RecordedEvent`].
    #[error("cannot decode stored event at position {position}: {reason}")]
    Decode { position: i64, reason: String },

    /// The upcaster refused a stored event.
    #[error("cannot upcast stored event at position {position} ({event_type} v{schema_version})")]
    Upcast {
        position: i64,
        event_type: String,
        schema_version: i16,
        #[source]
        source: UpcastError,
    },

    /// Metadata or a result could not be serialised to JSON.
    #[error("cannot encode {what} as JSON")]
    Encode {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },

    /// A server secret shorter than [`crate::secret::MIN_SECRET_LEN`] bytes.
    #[error("the server secret must be at least 32 bytes, got {len}")]
    InvalidSecret { len: usize },

    /// Any other database failure (connection, timeout, SQL error).
    /// The master key or the data keys cannot do what was asked: the
    /// configured master key is not the one that wrapped the stored keys,
    /// or personal data concerns nobody who still has a key (see
    /// [`crate::vault`]). The reason names ids, never data.
    #[error("personal data keys: {reason}")]
    Vault { reason: String },

    /// A sealed field does not open under a key that exists: the log or
    /// the key table was altered. Never read as an erasure.
    #[error("integrity of sealed personal data: {reason}")]
    Integrity { reason: String },

    #[error("database error")]
    Database(#[source] sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        StoreError::Database(error)
    }
}

impl StoreError {
    /// True for failures that may go away by retrying the same operation
    /// later: the database, not the data, was the problem (a closed pool
    /// stays closed, so it is not transient).
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Database(sqlx::Error::PoolClosed) => false,
            StoreError::Database(_) => true,
            _ => false,
        }
    }
}

fn fmt_version(version: Option<i32>) -> String {
    match version {
        Some(v) => format!("version {v}"),
        None => "no stream".to_owned(),
    }
}

/// The constraint a unique violation (SQLSTATE 23505) was raised on, if the
/// error is one.
pub(crate) fn unique_violation(error: &sqlx::Error) -> Option<&str> {
    let db = error.as_database_error()?;
    if db.code().as_deref() == Some("23505") { db.constraint() } else { None }
}
