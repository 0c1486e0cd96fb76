//! Errors as clients see them: every error carries `extensions.code`.
//!
//! [`ApiError`] deliberately does not implement `Display`: async-graphql
//! turns anything `Display` into an error whose message is that text, so a
//! bare `?` on a database error would send its details to the client. The
//! only way out of a resolver is [`ApiError`] → [`async_graphql::Error`]
//! below, which logs internal causes once, here, and sends a generic text.
//! [`ErrorCodes`] is the safety net behind it: an error that reaches the
//! response without a code is replaced by `INTERNAL_SERVER_ERROR`.

use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextExecute};
use async_graphql::{ErrorExtensions, Response, ServerError, Value};
use tandem_commands::CommandError;
use tandem_domain::{DomainError, ErrorKind};

/// The codes of `extensions.code`.
pub mod code {
    pub const UNAUTHENTICATED: &str = "UNAUTHENTICATED";
    pub const FORBIDDEN: &str = "FORBIDDEN";
    pub const NOT_FOUND: &str = "NOT_FOUND";
    pub const BAD_USER_INPUT: &str = "BAD_USER_INPUT";
    pub const CONFLICT: &str = "CONFLICT";
    pub const RATE_LIMITED: &str = "RATE_LIMITED";
    pub const TIMEOUT: &str = "TIMEOUT";
    pub const INTERNAL_SERVER_ERROR: &str = "INTERNAL_SERVER_ERROR";
}

/// An error of the API, before it becomes a GraphQL error.
#[derive(Debug)]
pub enum ApiError {
    Unauthenticated,
    Forbidden,
    NotFound {
        what: String,
    },
    /// The input is invalid; `field` names the offending input field.
    BadUserInput {
        field: Option<String>,
        message: String,
        reason: Option<&'static str>,
    },
    /// The input is valid but the current state refuses it, or a
    /// concurrent change won.
    Conflict {
        message: String,
        reason: &'static str,
    },
    RateLimited,
    /// The read models did not reach the write in time; the write itself
    /// is committed.
    Timeout {
        message: String,
    },
    /// Anything else. The cause is logged, never sent.
    Internal(anyhow::Error),
}

impl ApiError {
    /// Shorthand for an input error on one field.
    pub fn bad_input(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::BadUserInput { field: Some(field.into()), message: message.into(), reason: None }
    }

    /// Shorthand for a missing entity.
    pub fn not_found(what: impl Into<String>) -> Self {
        Self::NotFound { what: what.into() }
    }

    /// Wraps an internal failure.
    pub fn internal(e: impl Into<anyhow::Error>) -> Self {
        Self::Internal(e.into())
    }

    /// The `extensions.code`.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthenticated => code::UNAUTHENTICATED,
            Self::Forbidden => code::FORBIDDEN,
            Self::NotFound { .. } => code::NOT_FOUND,
            Self::BadUserInput { .. } => code::BAD_USER_INPUT,
            Self::Conflict { .. } => code::CONFLICT,
            Self::RateLimited => code::RATE_LIMITED,
            Self::Timeout { .. } => code::TIMEOUT,
            Self::Internal(_) => code::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<ApiError> for async_graphql::Error {
    fn from(e: ApiError) -> Self {
        let code = e.code();
        let (message, field, reason) = match e {
            ApiError::Unauthenticated => ("authentication required: send a valid bearer token".to_owned(), None, None),
            ApiError::Forbidden => ("not allowed for the caller's role".to_owned(), None, None),
            ApiError::NotFound { what } => (format!("{what} not found"), None, None),
            ApiError::BadUserInput { field, message, reason } => (message, field, reason),
            ApiError::Conflict { message, reason } => (message, None, Some(reason)),
            ApiError::RateLimited => ("too many requests; slow down".to_owned(), None, None),
            ApiError::Timeout { message } => (message, None, None),
            ApiError::Internal(cause) => {
                tracing::error!(error = %format!("{cause:#}"), "internal error");
                ("internal server error".to_owned(), None, None)
            }
        };
        async_graphql::Error::new(message).extend_with(|_, ext| {
            ext.set("code", code);
            if let Some(f) = field {
                ext.set("field", f);
            }
            if let Some(r) = reason {
                ext.set("reason", r);
            }
        })
    }
}

fn is_state_conflict(e: &DomainError) -> bool {
    use DomainError as E;
    matches!(
        e,
        E::AlreadyExists { .. }
            | E::ExternalIdTaken(_)
            | E::PersonHasLeft(_)
            | E::PersonHasNotLeft(_)
            | E::PersonErased(_)
            | E::ProgramClosed(_)
            | E::AlreadyEnrolled(_)
            | E::InActivePair(_)
            | E::AlreadyPaired(_)
            | E::PairDissolved(_)
            | E::PairPaused(_)
            | E::PairNotPaused(_)
            | E::SessionAlreadyHeld(_)
            | E::SessionCancelled(_)
            | E::SessionNotHeld(_)
            | E::GoalClosed(_)
    )
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        let reason = e.code();
        match e.kind() {
            ErrorKind::InvalidInput => {
                Self::BadUserInput { field: e.field().map(str::to_owned), message: e.to_string(), reason: Some(reason) }
            }
            ErrorKind::NotFound => Self::NotFound { what: e.to_string().trim_end_matches(" not found").to_owned() },
            ErrorKind::RuleViolation if is_state_conflict(&e) => Self::Conflict { message: e.to_string(), reason },
            ErrorKind::RuleViolation => {
                Self::BadUserInput { field: None, message: e.to_string(), reason: Some(reason) }
            }
        }
    }
}

impl From<CommandError> for ApiError {
    fn from(e: CommandError) -> Self {
        match e {
            CommandError::Domain(d) => d.into(),
            CommandError::Conflict { attempts } => Self::Conflict {
                message: format!("concurrent changes kept conflicting after {attempts} attempts; retry"),
                reason: "CONCURRENT_MODIFICATION",
            },
            CommandError::IdempotencyKeyReused { .. } => Self::Conflict {
                message: "this idempotency key was already used for a different request".to_owned(),
                reason: "IDEMPOTENCY_KEY_REUSED",
            },
            CommandError::InvalidIdempotencyKey => {
                Self::bad_input("idempotencyKey", "an idempotency key must be 1 to 200 characters")
            }
            other => Self::Internal(anyhow::Error::new(other)),
        }
    }
}

/// The safety net: gives every execution error a code. An error without
/// one did not come through [`ApiError`]; if it is async-graphql's own
/// input-coercion error it is the client's (`BAD_USER_INPUT`), otherwise it
/// is replaced by a generic `INTERNAL_SERVER_ERROR` and logged.
#[derive(Clone, Copy, Debug, Default)]
pub struct ErrorCodes;

impl ExtensionFactory for ErrorCodes {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ErrorCodesExtension)
    }
}

struct ErrorCodesExtension;

fn has_code(e: &ServerError) -> bool {
    e.extensions.as_ref().is_some_and(|x| x.get("code").is_some())
}

fn is_input_coercion(message: &str) -> bool {
    message.starts_with("Failed to parse")
        || message.starts_with("Invalid value for argument")
        || message.starts_with("Invalid value for")
        || message.starts_with("Unknown field")
}

#[async_graphql::async_trait::async_trait]
impl Extension for ErrorCodesExtension {
    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let mut response = next.run(ctx, operation_name).await;
        for e in &mut response.errors {
            if has_code(e) {
                continue;
            }
            let code = if is_input_coercion(&e.message) {
                code::BAD_USER_INPUT
            } else {
                tracing::error!(message = %e.message, "uncoded error replaced before reaching the client");
                e.message = "internal server error".to_owned();
                code::INTERNAL_SERVER_ERROR
            };
            e.extensions.get_or_insert_with(Default::default).set("code", Value::from(code));
        }
        response
    }
}
