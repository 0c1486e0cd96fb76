//! [`HrisError`], the one error type of the crate, and its SCIM form: the
//! error message of RFC 7644 3.12 (`status`, `scimType`, `detail`) with the
//! HTTP status it names, served as `application/scim+json`.
//!
//! Refusals of the input say which attribute is at fault in `detail`;
//! internal failures are logged here, once, and the client only learns that
//! the server failed.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use thiserror::Error;

/// The SCIM media type of every response body.
pub const SCIM_CONTENT_TYPE: &str = "application/scim+json";

/// The schema URN of SCIM error messages.
pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// Why a SCIM request was refused or failed. Nothing was written in any case
/// except [`HrisError::Internal`] after a partial write (see its doc).
#[derive(Debug, Error)]
pub enum HrisError {
    /// A value is not acceptable for its attribute (`invalidValue`).
    #[error("{attribute}: {reason}")]
    InvalidValue { attribute: String, reason: String },
    /// The body is not the JSON the operation needs (`invalidSyntax`).
    #[error("{0}")]
    InvalidSyntax(String),
    /// The `filter` cannot be parsed or names what cannot be filtered (`invalidFilter`).
    #[error("invalid filter: {0}")]
    InvalidFilter(String),
    /// A PATCH `path` cannot be parsed or names no attribute (`invalidPath`).
    #[error("invalid path: {0}")]
    InvalidPath(String),
    /// A PATCH path with a filter matched nothing to work on (`noTarget`).
    #[error("no target: {0}")]
    NoTarget(String),
    /// The request changes what may not change (`mutability`).
    #[error("{0}")]
    Mutability(String),
    /// Another resource already has the value (`uniqueness`, 409).
    #[error("{0}")]
    Uniqueness(String),
    /// No resource at this address (404).
    #[error("{0}")]
    NotFound(String),
    /// `If-Match` names a version that is no longer current (412).
    #[error("the resource changed: its version is {current}")]
    PreconditionFailed { current: String },
    /// The endpoint exists in SCIM but Tandem does not serve it (501).
    #[error("{0}")]
    NotImplemented(String),
    /// The HTTP method is not served at this address (405).
    #[error("method not allowed here")]
    MethodNotAllowed,
    /// The body is not SCIM JSON (415).
    #[error("request bodies must be application/scim+json or application/json")]
    UnsupportedMediaType,
    /// Missing or invalid credentials (401).
    #[error("{0}")]
    Unauthorized(String),
    /// Valid credentials without the integrator or admin role (403).
    #[error("{0}")]
    Forbidden(String),
    /// Concurrent changes kept winning; the client may retry (503).
    #[error("the person kept changing concurrently; retry")]
    Busy,
    /// The caller's request budget is spent (429).
    #[error("{0}")]
    RateLimited(String),
    /// A dependency is briefly unavailable (503); the client may retry.
    #[error("{0}")]
    Unavailable(String),
    /// The server failed. Logged with its cause; the client sees no detail.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl HrisError {
    /// A refusal of `attribute`'s value.
    pub fn invalid(attribute: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidValue { attribute: attribute.into(), reason: reason.into() }
    }

    /// An internal failure with its cause.
    pub fn internal(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Internal(Box::new(e))
    }

    /// The HTTP status of the error.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        match self {
            Self::InvalidValue { .. }
            | Self::InvalidSyntax(_)
            | Self::InvalidFilter(_)
            | Self::InvalidPath(_)
            | Self::NoTarget(_)
            | Self::Mutability(_) => StatusCode::BAD_REQUEST,
            Self::Uniqueness(_) => StatusCode::CONFLICT,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::PreconditionFailed { .. } => StatusCode::PRECONDITION_FAILED,
            Self::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::Busy | Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The `scimType` of RFC 7644 3.12, for the errors that have one.
    #[must_use]
    pub fn scim_type(&self) -> Option<&'static str> {
        match self {
            Self::InvalidValue { .. } => Some("invalidValue"),
            Self::InvalidSyntax(_) => Some("invalidSyntax"),
            Self::InvalidFilter(_) => Some("invalidFilter"),
            Self::InvalidPath(_) => Some("invalidPath"),
            Self::NoTarget(_) => Some("noTarget"),
            Self::Mutability(_) => Some("mutability"),
            Self::Uniqueness(_) => Some("uniqueness"),
            _ => None,
        }
    }
}

impl IntoResponse for HrisError {
    fn into_response(self) -> Response {
        let status = self.status();
        if let Self::Internal(cause) = &self {
            tracing::error!(error = %cause, cause = ?cause, "SCIM request failed");
        }
        let mut body = json!({
            "schemas": [ERROR_SCHEMA],
            "status": status.as_u16().to_string(),
            "detail": self.to_string(),
        });
        if let Some(t) = self.scim_type() {
            body["scimType"] = json!(t);
        }
        let mut response = (status, body.to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(SCIM_CONTENT_TYPE));
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"scim\""));
        }
        response
    }
}

/// The crate's result type.
pub type Result<T, E = HrisError> = std::result::Result<T, E>;
