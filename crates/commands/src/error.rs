//! The error of the command service.

use tandem_domain::DomainError;
use tandem_domain::event::CodecError;
use tandem_store::StoreError;
use thiserror::Error;

/// Why a command was not carried out. In every case nothing was appended.
#[derive(Debug, Error)]
pub enum CommandError {
    /// A rule of the domain refused the command.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// Concurrent commands kept changing the same streams; the caller may retry.
    #[error("the command kept conflicting with concurrent changes after {attempts} attempts")]
    Conflict { attempts: usize },
    /// The idempotency key was used before, by the same subject, for a
    /// different request. `key` is the key the caller sent.
    #[error("idempotency key {key:?} was already used for a different request")]
    IdempotencyKeyReused { key: String },
    /// The idempotency key is empty or too long.
    #[error("idempotency key must be 1 to 200 characters")]
    InvalidIdempotencyKey,
    /// A stored event could not be decoded: the log holds something this
    /// build does not understand. An operator must look.
    #[error("stored event could not be decoded")]
    Corrupt(#[source] CodecError),
    /// The database failed.
    #[error("event store failure")]
    Store(#[source] StoreError),
}

impl From<StoreError> for CommandError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::IdempotencyKeyReused { key, .. } => Self::IdempotencyKeyReused { key },
            other => Self::Store(other),
        }
    }
}

impl From<sqlx::Error> for CommandError {
    fn from(e: sqlx::Error) -> Self {
        Self::Store(StoreError::from(e))
    }
}

impl From<CodecError> for CommandError {
    fn from(e: CodecError) -> Self {
        Self::Corrupt(e)
    }
}
