//! Response bodies: GraphQL responses from the executor, and the errors the
//! transport raises itself, both in the GraphQL response shape
//! (`{"data"?, "errors"?, "extensions"?}`).
//!
//! A *request error* (the document does not parse or validate, a variable
//! cannot be coerced, no operation is selected) happens before execution, and
//! the GraphQL spec then forbids the `data` entry; async-graphql serializes
//! `"data": null` regardless, so responses are serialized here. The
//! distinction also drives the HTTP status under
//! `application/graphql-response+json` and the websocket message type.

use std::collections::BTreeMap;

use async_graphql::{Response, ServerError, Value};
use serde::Serialize;

use super::{codes, params::with_code};

/// Whether the executor ran the operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Refused before execution: no `data`.
    RequestError,
    /// Executed, perhaps with field errors: `data` is present (maybe null).
    Executed,
}

/// Classifies an executor response, giving request errors without a code
/// `GRAPHQL_VALIDATION_FAILED`.
///
/// async-graphql returns request errors as `data: null` and errors without a
/// `path`; an executed operation's errors always carry the path of the field
/// that raised them (a failing non-null root field nulls `data` but still has
/// a path).
pub(crate) fn classify(response: &mut Response) -> Outcome {
    let request_error = response.data == Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|error| error.path.is_empty());
    if !request_error {
        return Outcome::Executed;
    }
    for error in &mut response.errors {
        let has_code = error.extensions.as_ref().is_some_and(|extensions| extensions.get("code").is_some());
        if !has_code {
            *error = with_code(error.clone(), codes::GRAPHQL_VALIDATION_FAILED);
        }
    }
    Outcome::RequestError
}

/// The serialized shape of a GraphQL response.
#[derive(Debug, Serialize)]
pub(crate) struct Body<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a Value>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    errors: &'a [ServerError],
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    extensions: &'a BTreeMap<String, Value>,
}

impl<'a> Body<'a> {
    /// The body of a classified executor response.
    pub(crate) fn of(response: &'a Response, outcome: Outcome) -> Self {
        Self {
            data: (outcome == Outcome::Executed).then_some(&response.data),
            errors: &response.errors,
            extensions: &response.extensions,
        }
    }

    /// The body of request errors the transport raised itself.
    pub(crate) fn errors(errors: &'a [ServerError]) -> Self {
        static NO_EXTENSIONS: BTreeMap<String, Value> = BTreeMap::new();
        Self { data: None, errors, extensions: &NO_EXTENSIONS }
    }
}

/// One transport error (`{"message", "extensions": {"code"}}`).
pub(crate) fn error(code: &str, message: impl Into<String>) -> ServerError {
    with_code(ServerError::new(message, None), code)
}

/// A JSON document holding one transport error.
pub(crate) fn error_json(code: &str, message: impl Into<String>) -> Vec<u8> {
    to_json(&Body::errors(&[error(code, message)]))
}

/// Serializes a body. Serializing a GraphQL value cannot fail (every key is a
/// string, every number finite); should it ever, the client still gets a
/// well-formed error instead of a torn body, and the failure is logged.
pub(crate) fn to_json(body: &Body<'_>) -> Vec<u8> {
    match serde_json::to_vec(body) {
        Ok(bytes) => bytes,
        Err(cause) => {
            tracing::error!(%cause, "could not serialize a GraphQL response");
            br#"{"errors":[{"message":"internal server error","extensions":{"code":"INTERNAL_SERVER_ERROR"}}]}"#
                .to_vec()
        }
    }
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "a test fails by panicking")]
mod tests {
    use async_graphql::{PathSegment, Pos};
    use serde_json::json;

    use super::*;

    #[test]
    fn request_errors_lose_data_and_gain_a_code() {
        let mut response =
            Response::from_errors(vec![ServerError::new("Unknown field \"nope\"", Some(Pos { line: 1, column: 3 }))]);
        assert_eq!(classify(&mut response), Outcome::RequestError);
        let body: serde_json::Value =
            serde_json::from_slice(&to_json(&Body::of(&response, Outcome::RequestError))).unwrap();
        assert_eq!(
            body,
            json!({"errors": [{
                "message": "Unknown field \"nope\"",
                "locations": [{"line": 1, "column": 3}],
                "extensions": {"code": "GRAPHQL_VALIDATION_FAILED"},
            }]})
        );
    }

    #[test]
    fn field_errors_keep_data_even_when_null() {
        let mut error = ServerError::new("boom", None);
        error.path = vec![PathSegment::Field("a".to_owned())];
        let mut response = Response::from_errors(vec![error]);
        assert_eq!(classify(&mut response), Outcome::Executed);
        let body: serde_json::Value =
            serde_json::from_slice(&to_json(&Body::of(&response, Outcome::Executed))).unwrap();
        assert_eq!(body["data"], json!(null));
        assert_eq!(body["errors"][0]["path"], json!(["a"]));

        let mut ok = Response::new(Value::from_json(json!({"a": 1})).unwrap());
        assert_eq!(classify(&mut ok), Outcome::Executed);
    }

    #[test]
    fn existing_codes_are_kept() {
        let mut response = Response::from_errors(vec![error(codes::FORBIDDEN, "not for you")]);
        assert_eq!(classify(&mut response), Outcome::RequestError);
        let code = response.errors[0].extensions.as_ref().unwrap().get("code");
        assert_eq!(code, Some(&Value::from(codes::FORBIDDEN)));
    }
}
