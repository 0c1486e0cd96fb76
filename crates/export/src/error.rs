//! The crate's one error type.

use tandem_projections::ProjectionError;
use tandem_store::StoreError;

/// Shorthand for this crate's results.
pub type Result<T, E = ExportError> = std::result::Result<T, E>;

/// Everything that can go wrong in an export.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// The request itself is wrong (an unknown event type or format, an
    /// `until` that is not settled, a bad cursor); `field` names the input.
    #[error("invalid {field}: {reason}")]
    InvalidInput { field: &'static str, reason: String },

    /// A stored event this build cannot decode.
    #[error("cannot decode stored event at {cursor} ({event_type}): {reason}")]
    Decode { cursor: String, event_type: String, reason: String },

    /// A field of an event's analyst payload has no typed column, or its
    /// value does not fit the column (a bug: [`crate::typed`] and
    /// [`crate::render`] disagree).
    #[error("the {field} field of {event_type} cannot be written as a typed column: {reason}")]
    Unmapped { event_type: String, field: String, reason: String },

    /// Writing the output failed.
    #[error("cannot write the export")]
    Io(#[from] std::io::Error),

    /// The CSV writer failed.
    #[error("cannot write CSV")]
    Csv(#[from] csv::Error),

    /// The Parquet writer failed.
    #[error("cannot write Parquet")]
    Parquet(#[from] parquet::errors::ParquetError),

    /// Building an Arrow batch failed (a bug: columns and rows disagree).
    #[error("cannot build an Arrow batch")]
    Arrow(#[from] arrow_schema::ArrowError),

    /// Reading the log failed.
    #[error("event store failure")]
    Store(#[from] StoreError),

    /// Folding the study failed.
    #[error("study failure")]
    Study(#[source] ProjectionError),
}

impl From<ProjectionError> for ExportError {
    fn from(e: ProjectionError) -> Self {
        match e {
            ProjectionError::InvalidStudy { field, reason } => Self::InvalidInput { field, reason },
            ProjectionError::Store(s) => Self::Store(s),
            other => Self::Study(other),
        }
    }
}
