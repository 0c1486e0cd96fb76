//! What can go wrong in the webhooks crate.

use thiserror::Error;

/// A failure of the webhooks machinery (not of a delivery: a receiver that
/// fails is an outcome, recorded and retried, not an error).
#[derive(Debug, Error)]
pub enum WebhookError {
    #[error("the operating system's random generator failed: {0}")]
    Random(String),
    #[error("a webhook secret could not be sealed or opened (is the server secret the one that created it?)")]
    Sealing,
    #[error("the signing secret {0} of an endpoint is missing")]
    MissingSecret(uuid::Uuid),
    #[error("signing failed: {0}")]
    Signing(String),
    #[error("rendering events failed: {0:#}")]
    Render(anyhow::Error),
    #[error("the HTTP client could not be built: {0}")]
    Client(String),
    #[error("a stored cursor is not a cursor of the log: {0:?}")]
    Cursor(String),
    #[error(transparent)]
    Store(#[from] tandem_store::StoreError),
    #[error(transparent)]
    Projection(#[from] tandem_projections::ProjectionError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Metrics(#[from] prometheus::Error),
}
