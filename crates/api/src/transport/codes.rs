//! The `extensions.code` values of the errors the transport itself emits.
//!
//! Clients branch on codes, not on messages, so each failure the transport
//! can report has one. The application codes of the design (`FORBIDDEN`,
//! `NOT_FOUND`, …) are shared with the schema; the rest name transport
//! failures. A request error from the executor that carries no code gets
//! [`GRAPHQL_VALIDATION_FAILED`].

/// Missing, malformed or expired credentials.
pub const UNAUTHENTICATED: &str = "UNAUTHENTICATED";
/// Credentials that do not allow this.
pub const FORBIDDEN: &str = "FORBIDDEN";
/// Too many requests from this client.
pub const RATE_LIMITED: &str = "RATE_LIMITED";
/// The credentials cannot be checked yet: the identity provider's signing
/// keys have not arrived (HTTP 503 with `Retry-After`; retry).
pub const AUTH_UNAVAILABLE: &str = "AUTH_UNAVAILABLE";
/// A failure inside the server; details are logged, never sent.
pub const INTERNAL_SERVER_ERROR: &str = "INTERNAL_SERVER_ERROR";
/// A variable value that cannot be coerced (e.g. `null` for a non-null type).
pub const BAD_USER_INPUT: &str = "BAD_USER_INPUT";

/// The HTTP request is malformed: body not JSON, parameters of the wrong type,
/// `query` missing, a batch (JSON array) body.
pub const BAD_REQUEST: &str = "BAD_REQUEST";
/// The GraphQL document does not parse.
pub const GRAPHQL_PARSE_FAILED: &str = "GRAPHQL_PARSE_FAILED";
/// The GraphQL document is not valid against the schema (or selects no
/// operation), or the executor refused it before execution for another reason.
pub const GRAPHQL_VALIDATION_FAILED: &str = "GRAPHQL_VALIDATION_FAILED";
/// A mutation over GET (405), or a subscription over plain HTTP.
pub const OPERATION_NOT_SUPPORTED: &str = "OPERATION_NOT_SUPPORTED";
/// A method other than GET and POST (405).
pub const METHOD_NOT_ALLOWED: &str = "METHOD_NOT_ALLOWED";
/// A POST body that is not `application/json` (415).
pub const UNSUPPORTED_MEDIA_TYPE: &str = "UNSUPPORTED_MEDIA_TYPE";
/// An `Accept` header that admits neither response media type (406).
pub const NOT_ACCEPTABLE: &str = "NOT_ACCEPTABLE";
/// A body, message or `query` over its limit (413, 414).
pub const PAYLOAD_TOO_LARGE: &str = "PAYLOAD_TOO_LARGE";
/// The request did not finish within its time (408 while receiving, 503
/// while executing: the outcome of a timed-out mutation is unknown).
pub const TIMEOUT: &str = "TIMEOUT";
/// A websocket already runs as many operations as it may.
pub const TOO_MANY_OPERATIONS: &str = "TOO_MANY_OPERATIONS";
