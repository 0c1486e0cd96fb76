//! The GraphQL request parameters — `query`, `operationName`, `variables`,
//! `extensions` — read from a POST body, a GET query string or a websocket
//! `subscribe`/`start` payload, validated strictly and the same way for all.
//!
//! Strict because the GraphQL-over-HTTP spec makes a wrong type a bad request
//! (400), where async-graphql's serde decoding would quietly default it. After
//! decoding, [`prepare`] parses the document once (the executor reuses the
//! parse), finds the operation it selects — the transport must know whether it
//! is a mutation or a subscription before running it — and checks that no
//! non-null variable is null, a request error the spec wants reported before
//! execution.

use async_graphql::{
    ErrorExtensionValues, Request, ServerError, Value, Variables,
    parser::types::{DocumentOperations, ExecutableDocument, OperationType},
};

use super::codes;

/// Why request parameters are malformed (a 400 on HTTP).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ParamsError {
    /// The JSON body is an array: batching is not supported.
    #[error("batched requests (a JSON array) are not supported: send one operation per request")]
    Batch,
    /// The JSON body (or payload) is not an object.
    #[error("the GraphQL request must be a JSON object")]
    NotAnObject,
    /// No `query`.
    #[error("the `query` parameter is required")]
    MissingQuery,
    /// A parameter of the wrong JSON type.
    #[error("the `{name}` parameter must be {expected}")]
    WrongType { name: &'static str, expected: &'static str },
    /// A GET parameter that should hold JSON does not.
    #[error("the `{name}` parameter must be JSON-encoded: {reason}")]
    NotJson { name: &'static str, reason: String },
    /// A GET parameter given twice: which one counts would be a guess.
    #[error("the `{0}` parameter is given more than once")]
    Duplicate(&'static str),
}

/// Reads the parameters from a POST body or a websocket payload.
pub(crate) fn from_json(value: serde_json::Value) -> Result<Request, ParamsError> {
    match value {
        serde_json::Value::Object(object) => from_object(object),
        serde_json::Value::Array(_) => Err(ParamsError::Batch),
        _ => Err(ParamsError::NotAnObject),
    }
}

fn from_object(mut object: serde_json::Map<String, serde_json::Value>) -> Result<Request, ParamsError> {
    let query = match object.remove("query") {
        None | Some(serde_json::Value::Null) => return Err(ParamsError::MissingQuery),
        Some(serde_json::Value::String(query)) => query,
        Some(_) => {
            return Err(ParamsError::WrongType { name: "query", expected: "a string" });
        }
    };
    let operation_name = match object.remove("operationName") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(name)) => Some(name),
        Some(_) => {
            return Err(ParamsError::WrongType { name: "operationName", expected: "a string or null" });
        }
    };
    let variables = object_param("variables", object.remove("variables"))?;
    let extensions = object_param("extensions", object.remove("extensions"))?;
    Ok(build(query, operation_name, variables, extensions))
}

/// A parameter that must be a JSON object when present and not null.
fn object_param(
    name: &'static str,
    value: Option<serde_json::Value>,
) -> Result<serde_json::Map<String, serde_json::Value>, ParamsError> {
    match value {
        None | Some(serde_json::Value::Null) => Ok(serde_json::Map::new()),
        Some(serde_json::Value::Object(object)) => Ok(object),
        Some(_) => Err(ParamsError::WrongType { name, expected: "an object or null" }),
    }
}

/// Reads the parameters from a GET query string's decoded pairs, where
/// `variables` and `extensions` are JSON-encoded.
pub(crate) fn from_query_pairs(pairs: Vec<(String, String)>) -> Result<Request, ParamsError> {
    fn set(slot: &mut Option<String>, name: &'static str, value: String) -> Result<(), ParamsError> {
        if slot.replace(value).is_some() {
            return Err(ParamsError::Duplicate(name));
        }
        Ok(())
    }
    let (mut query, mut operation_name, mut variables, mut extensions) = (None, None, None, None);
    for (key, value) in pairs {
        match key.as_str() {
            "query" => set(&mut query, "query", value)?,
            "operationName" => set(&mut operation_name, "operationName", value)?,
            "variables" => set(&mut variables, "variables", value)?,
            "extensions" => set(&mut extensions, "extensions", value)?,
            // Other parameters (cache busters, tracing ids) are not ours.
            _ => {}
        }
    }
    let query = query.ok_or(ParamsError::MissingQuery)?;
    let decode = |name: &'static str, value: Option<String>| match value {
        None => Ok(None),
        Some(text) => serde_json::from_str::<serde_json::Value>(&text)
            .map(Some)
            .map_err(|error| ParamsError::NotJson { name, reason: error.to_string() }),
    };
    let variables = object_param("variables", decode("variables", variables)?)?;
    let extensions = object_param("extensions", decode("extensions", extensions)?)?;
    // An empty operationName is how forms say "none".
    let operation_name = operation_name.filter(|name| !name.is_empty());
    Ok(build(query, operation_name, variables, extensions))
}

fn build(
    query: String,
    operation_name: Option<String>,
    variables: serde_json::Map<String, serde_json::Value>,
    extensions: serde_json::Map<String, serde_json::Value>,
) -> Request {
    let mut request = Request::new(query).variables(Variables::from_json(serde_json::Value::Object(variables)));
    if let Some(name) = operation_name {
        request = request.operation_name(name);
    }
    for (key, value) in extensions {
        // A JSON value always converts to a GraphQL value (numbers, strings,
        // lists and maps all have counterparts); `Null` is the fallback the
        // conversion's signature asks for.
        let value = Value::from_json(value).unwrap_or(Value::Null);
        request.extensions.insert(key, value);
    }
    request
}

/// A request that parsed, with what the transport needs to know about the
/// operation it selects.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub(crate) request: Request,
    /// `None` when the document selects no operation (e.g. several operations
    /// and no `operationName`): the executor reports that as a request error.
    pub(crate) operation_type: Option<OperationType>,
    /// The selected operation's name, for spans and logs.
    pub(crate) operation_name: Option<String>,
}

/// Why a request was refused before execution.
#[derive(Debug)]
pub(crate) enum Refused {
    /// The document is longer than the limit.
    QueryTooLarge { limit: usize },
    /// A GraphQL request error: the document does not parse, or a variable
    /// cannot be coerced. Carries `extensions.code`.
    RequestError(ServerError),
}

/// Parses the document, finds the selected operation and checks non-null
/// variables.
pub(crate) fn prepare(mut request: Request, max_query_bytes: usize) -> Result<Prepared, Refused> {
    if request.query.len() > max_query_bytes {
        return Err(Refused::QueryTooLarge { limit: max_query_bytes });
    }
    // Parsed here rather than through `Request::parsed_query`, whose mutable
    // borrow would outlive the look at the variables; handed back below so
    // the executor does not parse again.
    let document = match async_graphql::parser::parse_query(&request.query) {
        Ok(document) => document,
        Err(error) => {
            return Err(Refused::RequestError(with_code(error.into(), codes::GRAPHQL_PARSE_FAILED)));
        }
    };
    let (operation_type, operation_name) = match select(&document, request.operation_name.as_deref()) {
        Some((name, operation)) => {
            check_variables(operation, &request.variables).map_err(Refused::RequestError)?;
            (Some(operation.ty), name)
        }
        None => (None, request.operation_name.clone()),
    };
    request.set_parsed_query(document);
    Ok(Prepared { request, operation_type, operation_name })
}

/// The operation a document and an operation name select, with its name —
/// the same rule the executor applies.
fn select<'a>(
    document: &'a ExecutableDocument,
    name: Option<&str>,
) -> Option<(Option<String>, &'a async_graphql::parser::types::OperationDefinition)> {
    match (&document.operations, name) {
        (DocumentOperations::Single(operation), None) => Some((None, &operation.node)),
        (DocumentOperations::Single(_), Some(_)) => None,
        (DocumentOperations::Multiple(operations), Some(name)) => operations
            .iter()
            .find(|(candidate, _)| candidate.as_str() == name)
            .map(|(name, operation)| (Some(name.to_string()), &operation.node)),
        (DocumentOperations::Multiple(operations), None) if operations.len() == 1 => {
            operations.iter().next().map(|(name, operation)| (Some(name.to_string()), &operation.node))
        }
        (DocumentOperations::Multiple(_), None) => None,
    }
}

/// A non-null variable without a default must have a non-null value
/// (GraphQL spec, CoerceVariableValues). Deeper coercion is the executor's.
fn check_variables(
    operation: &async_graphql::parser::types::OperationDefinition,
    variables: &Variables,
) -> Result<(), ServerError> {
    for definition in &operation.variable_definitions {
        let definition = &definition.node;
        if definition.var_type.node.nullable || definition.default_value.is_some() {
            continue;
        }
        let name = &definition.name.node;
        if matches!(variables.get(name), None | Some(Value::Null)) {
            let error = ServerError::new(
                format!("Variable \"${name}\" of non-null type \"{}\" must not be null.", definition.var_type.node),
                Some(definition.name.pos),
            );
            return Err(with_code(error, codes::BAD_USER_INPUT));
        }
    }
    Ok(())
}

/// Sets `extensions.code` on an error.
pub(crate) fn with_code(mut error: ServerError, code: &str) -> ServerError {
    error.extensions.get_or_insert_with(ErrorExtensionValues::default).set("code", code);
    error
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "a test fails by panicking")]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn json_parameters_are_checked_strictly() {
        assert_eq!(from_json(json!([])).unwrap_err(), ParamsError::Batch);
        assert_eq!(from_json(json!("{}")).unwrap_err(), ParamsError::NotAnObject);
        assert_eq!(from_json(json!({})).unwrap_err(), ParamsError::MissingQuery);
        assert!(matches!(from_json(json!({"query": 1})).unwrap_err(), ParamsError::WrongType { name: "query", .. }));
        assert!(matches!(
            from_json(json!({"query": "{a}", "operationName": false})).unwrap_err(),
            ParamsError::WrongType { name: "operationName", .. }
        ));
        assert!(matches!(
            from_json(json!({"query": "{a}", "variables": []})).unwrap_err(),
            ParamsError::WrongType { name: "variables", .. }
        ));
        assert!(matches!(
            from_json(json!({"query": "{a}", "extensions": "x"})).unwrap_err(),
            ParamsError::WrongType { name: "extensions", .. }
        ));
        let request = from_json(json!({
            "query": "query Q($n: Int) { a }",
            "operationName": "Q",
            "variables": {"n": 3},
            "extensions": {"trace": true},
        }))
        .unwrap();
        assert_eq!(request.operation_name.as_deref(), Some("Q"));
        assert_eq!(request.variables.get("n"), Some(&Value::from(3)));
        assert_eq!(request.extensions.get("trace"), Some(&Value::from(true)));
        let nulls = from_json(json!({
            "query": "{a}", "operationName": null, "variables": null, "extensions": null
        }))
        .unwrap();
        assert_eq!(nulls.operation_name, None);
    }

    #[test]
    fn query_string_parameters_decode_json() {
        let pairs = |p: &[(&str, &str)]| p.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect::<Vec<_>>();
        let request = from_query_pairs(pairs(&[
            ("query", "{a}"),
            ("variables", r#"{"n":1}"#),
            ("operationName", ""),
            ("_", "cachebuster"),
        ]))
        .unwrap();
        assert_eq!(request.variables.get("n"), Some(&Value::from(1)));
        assert_eq!(request.operation_name, None);
        assert!(matches!(
            from_query_pairs(pairs(&[("query", "{a}"), ("variables", "{")])).unwrap_err(),
            ParamsError::NotJson { name: "variables", .. }
        ));
        assert!(matches!(
            from_query_pairs(pairs(&[("query", "{a}"), ("variables", "[1]")])).unwrap_err(),
            ParamsError::WrongType { name: "variables", .. }
        ));
        assert_eq!(
            from_query_pairs(pairs(&[("query", "{a}"), ("query", "{b}")])).unwrap_err(),
            ParamsError::Duplicate("query")
        );
        assert_eq!(from_query_pairs(pairs(&[])).unwrap_err(), ParamsError::MissingQuery);
    }

    #[test]
    fn prepare_finds_the_operation_and_its_type() {
        let prepared = prepare(Request::new("mutation M { a } query Q { a }").operation_name("M"), 100).unwrap();
        assert_eq!(prepared.operation_type, Some(OperationType::Mutation));
        assert_eq!(prepared.operation_name.as_deref(), Some("M"));
        let prepared = prepare(Request::new("subscription { a }"), 100).unwrap();
        assert_eq!(prepared.operation_type, Some(OperationType::Subscription));
        let prepared = prepare(Request::new("query A { a } query B { a }"), 100).unwrap();
        assert_eq!(prepared.operation_type, None, "ambiguous: the executor says so");
    }

    #[test]
    fn prepare_refuses_large_unparsable_and_null_variables() {
        assert!(matches!(prepare(Request::new("{ a }"), 3), Err(Refused::QueryTooLarge { limit: 3 })));
        let Err(Refused::RequestError(error)) = prepare(Request::new("{"), 100) else { panic!("a parse error") };
        assert_eq!(error.extensions.unwrap().get("code"), Some(&Value::from(codes::GRAPHQL_PARSE_FAILED)));
        let request = Request::new("query Q($id: ID!) { a }").variables(Variables::from_json(json!({"id": null})));
        let Err(Refused::RequestError(error)) = prepare(request, 100) else { panic!("a coercion error") };
        assert!(error.message.contains("$id"), "{}", error.message);
        assert_eq!(error.extensions.unwrap().get("code"), Some(&Value::from(codes::BAD_USER_INPUT)));
        assert!(prepare(Request::new("query Q($id: ID! = 1) { a }"), 100).is_ok());
        assert!(prepare(Request::new("query Q($id: ID) { a }"), 100).is_ok());
    }
}
