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

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextPrepareRequest, NextValidation,
};
use async_graphql::registry::{MetaType, Registry};
use async_graphql::{
    ErrorExtensions, Request, Response, ScalarType, ServerError, ServerResult, ValidationResult, Value,
};
use tandem_commands::CommandError;
use tandem_domain::DomainError;

/// The codes of `extensions.code`.
pub mod code {
    pub const UNAUTHENTICATED: &str = "UNAUTHENTICATED";
    pub const FORBIDDEN: &str = "FORBIDDEN";
    pub const NOT_FOUND: &str = "NOT_FOUND";
    pub const BAD_USER_INPUT: &str = "BAD_USER_INPUT";
    pub const CONFLICT: &str = "CONFLICT";
    pub const RATE_LIMITED: &str = "RATE_LIMITED";
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

/// How the API answers a refusal of the domain.
///
/// The domain's own [`tandem_domain::ErrorKind`] has no notion of a
/// conflict, so the API decides here, once, variant by variant: the match
/// has no wildcard, and a new refusal of the domain does not compile until
/// it is given its kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The input is malformed, or a rule refuses it whatever the state:
    /// `BAD_USER_INPUT`.
    BadUserInput,
    /// A referenced entity does not exist: `NOT_FOUND`.
    NotFound,
    /// The input is valid but the current state refuses it (already
    /// paired, dissolved, closed…): `CONFLICT`.
    Conflict,
}

/// The kind of a refusal of the domain.
#[must_use]
pub fn kind_of(e: &DomainError) -> ErrorKind {
    use DomainError as E;
    use ErrorKind as K;
    match e {
        E::InvalidInput { .. }
        | E::SelfManagement
        | E::ManagementCycle { .. }
        | E::NotEnrolled(_)
        | E::DuplicateMember(_)
        | E::WrongGroupSize { .. }
        | E::AuthorityRelation { .. }
        | E::LevelGapTooLarge { .. }
        | E::NotAMember(_)
        | E::SelfFeedback
        | E::NotGoalOwner { .. }
        | E::NotGoalParticipant => K::BadUserInput,
        E::PersonNotFound(_)
        | E::ProgramNotFound(_)
        | E::PairNotFound(_)
        | E::SessionNotFound(_)
        | E::GoalNotFound(_)
        | E::WebhookEndpointNotFound(_) => K::NotFound,
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
        | E::WebhookEndpointDisabled(_) => K::Conflict,
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        let reason = e.code();
        match kind_of(&e) {
            ErrorKind::BadUserInput => {
                Self::BadUserInput { field: e.field().map(str::to_owned), message: e.to_string(), reason: Some(reason) }
            }
            ErrorKind::NotFound => Self::NotFound { what: e.to_string().trim_end_matches(" not found").to_owned() },
            ErrorKind::Conflict => Self::Conflict { message: e.to_string(), reason },
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
                message: "you already used this idempotency key for a different request; \
                          send a new key for a new request, or the same request to get its first result"
                    .to_owned(),
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
///
/// It also codes the one kind of validation error that is about a value,
/// not the document: an argument or variable value of the wrong type (an
/// `Int` beyond 32 bits, a string for a number, an unknown enum value). The
/// document is fine; the client sent a bad value, so it is
/// `BAD_USER_INPUT` with `extensions.field` naming the input field, as
/// when the API itself refuses a value. Other validation errors keep the
/// transport's `GRAPHQL_VALIDATION_FAILED`.
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

/// The prefix of async-graphql's error for an argument value of the wrong
/// type; the quoted path follows (`"input.level"`).
const INVALID_VALUE: &str = "Invalid value for argument \"";

/// The input field an invalid-value error is about, in the API's own
/// notation: the path below the argument `input` without list indices
/// (`input.coaching.0.coachId` is `coaching.coachId`), or the argument
/// itself when it is not an input object (`id`).
fn invalid_value_field(message: &str) -> Option<String> {
    let path = message.strip_prefix(INVALID_VALUE)?.split('"').next()?;
    let mut segments = path.split('.').filter(|s| s.parse::<usize>().is_err());
    let argument = segments.next()?;
    let rest: Vec<&str> = segments.collect();
    Some(if rest.is_empty() { argument.to_owned() } else { rest.join(".") })
}

/// The request's variables, kept for naming the field of a coercion error.
#[derive(Clone)]
struct RequestVariables(async_graphql::Variables);

/// The input type and scalar of async-graphql's coercion error
/// (`Failed to parse "Int": … (occurred while parsing "RegisterPersonInput")`).
fn coercion_types(message: &str) -> Option<(&str, &str)> {
    let scalar = message.strip_prefix("Failed to parse \"")?.split('"').next()?;
    let (_, rest) = message.rsplit_once("(occurred while parsing \"")?;
    Some((rest.split('"').next()?, scalar))
}

/// Whether `v` is a value async-graphql's scalar `name` refuses.
fn refused_scalar(name: &str, v: &Value) -> bool {
    fn bad<T: ScalarType>(v: &Value) -> bool {
        T::parse(v.clone()).is_err()
    }
    match name {
        "Int" => bad::<i32>(v),
        "Float" => bad::<f64>(v),
        "String" => bad::<String>(v),
        "Boolean" => bad::<bool>(v),
        "ID" => bad::<async_graphql::ID>(v),
        "NaiveDate" => bad::<chrono::NaiveDate>(v),
        "DateTime" => bad::<chrono::DateTime<chrono::Utc>>(v),
        _ => false,
    }
}

/// The path (field names, no list indices) of the first value under `v`,
/// of GraphQL type `ty`, that async-graphql refuses.
fn refused_path(registry: &Registry, ty: &str, v: &Value) -> Option<Vec<String>> {
    let ty = ty.trim_end_matches('!');
    if v == &Value::Null {
        return None;
    }
    if let Some(inner) = ty.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        return match v {
            Value::List(items) => items.iter().find_map(|item| refused_path(registry, inner, item)),
            single => refused_path(registry, inner, single),
        };
    }
    match registry.types.get(ty)? {
        MetaType::InputObject { input_fields, .. } => {
            let Value::Object(fields) = v else { return Some(Vec::new()) };
            input_fields.values().find_map(|f| {
                let mut path = refused_path(registry, &f.ty, fields.get(f.name.as_str())?)?;
                path.insert(0, f.name.clone());
                Some(path)
            })
        }
        MetaType::Enum { enum_values, .. } => {
            let name = match v {
                Value::Enum(n) => n.as_str(),
                Value::String(s) => s.as_str(),
                _ => return Some(Vec::new()),
            };
            (!enum_values.contains_key(name)).then(Vec::new)
        }
        MetaType::Scalar { name, .. } => refused_scalar(name, v).then(Vec::new),
        _ => None,
    }
}

/// The input field a coercion error is about: async-graphql names only the
/// input type, so the request's variables are searched for the value of
/// that type it refuses.
fn coercion_field(ctx: &ExtensionContext<'_>, message: &str) -> Option<String> {
    let (input_type, _) = coercion_types(message)?;
    let variables = ctx.data_opt::<RequestVariables>()?;
    variables.0.values().find_map(|v| {
        let path = refused_path(&ctx.schema_env.registry, input_type, v)?;
        (!path.is_empty()).then(|| path.join("."))
    })
}

#[async_graphql::async_trait::async_trait]
impl Extension for ErrorCodesExtension {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        let variables = RequestVariables(request.variables.clone());
        next.run(ctx, request.data(variables)).await
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        next.run(ctx).await.map_err(|mut errors| {
            for e in errors.iter_mut().filter(|e| !has_code(e)) {
                if let Some(field) = invalid_value_field(&e.message) {
                    let ext = e.extensions.get_or_insert_with(Default::default);
                    ext.set("code", Value::from(code::BAD_USER_INPUT));
                    ext.set("field", Value::from(field));
                }
            }
            errors
        })
    }

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
                if let Some(field) = coercion_field(ctx, &e.message) {
                    e.extensions.get_or_insert_with(Default::default).set("field", Value::from(field));
                }
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

#[cfg(test)]
mod tests {
    use tandem_domain::{GoalId, PairId, PersonId, ProgramId, SessionId};

    use super::*;

    /// One of every refusal of the domain. The match below has no
    /// wildcard: a new variant does not compile until it is listed here.
    fn every_domain_error() -> Vec<DomainError> {
        let (person, program, pair) = (PersonId::new(), ProgramId::new(), PairId::new());
        let (session, goal) = (SessionId::new(), GoalId::new());
        let all = vec![
            DomainError::invalid("name", "must not be empty"),
            DomainError::PersonNotFound(person),
            DomainError::ProgramNotFound(program),
            DomainError::PairNotFound(pair),
            DomainError::SessionNotFound(session),
            DomainError::GoalNotFound(goal),
            DomainError::AlreadyExists { entity: "pair" },
            DomainError::ExternalIdTaken("E-1".into()),
            DomainError::PersonHasLeft(person),
            DomainError::PersonHasNotLeft(person),
            DomainError::PersonErased(person),
            DomainError::SelfManagement,
            DomainError::ManagementCycle { person, manager: PersonId::new() },
            DomainError::ProgramClosed(program),
            DomainError::AlreadyEnrolled(person),
            DomainError::NotEnrolled(person),
            DomainError::InActivePair(person),
            DomainError::DuplicateMember(person),
            DomainError::WrongGroupSize { format: "pair", min: 2, max: 2, got: 3 },
            DomainError::AuthorityRelation { manager: person, report: PersonId::new() },
            DomainError::LevelGapTooLarge { gap: 4, max_gap: 2 },
            DomainError::AlreadyPaired(person),
            DomainError::PairDissolved(pair),
            DomainError::PairPaused(pair),
            DomainError::PairNotPaused(pair),
            DomainError::NotAMember(person),
            DomainError::SelfFeedback,
            DomainError::SessionAlreadyHeld(session),
            DomainError::SessionCancelled(session),
            DomainError::SessionNotHeld(session),
            DomainError::GoalClosed(goal),
            DomainError::NotGoalOwner { owner: person },
            DomainError::NotGoalParticipant,
            DomainError::WebhookEndpointNotFound(tandem_domain::WebhookEndpointId::new()),
            DomainError::WebhookEndpointDisabled(tandem_domain::WebhookEndpointId::new()),
        ];
        for e in &all {
            // Exhaustive on purpose; see above.
            match e {
                DomainError::InvalidInput { .. }
                | DomainError::PersonNotFound(_)
                | DomainError::ProgramNotFound(_)
                | DomainError::PairNotFound(_)
                | DomainError::SessionNotFound(_)
                | DomainError::GoalNotFound(_)
                | DomainError::AlreadyExists { .. }
                | DomainError::ExternalIdTaken(_)
                | DomainError::PersonHasLeft(_)
                | DomainError::PersonHasNotLeft(_)
                | DomainError::PersonErased(_)
                | DomainError::SelfManagement
                | DomainError::ManagementCycle { .. }
                | DomainError::ProgramClosed(_)
                | DomainError::AlreadyEnrolled(_)
                | DomainError::NotEnrolled(_)
                | DomainError::InActivePair(_)
                | DomainError::DuplicateMember(_)
                | DomainError::WrongGroupSize { .. }
                | DomainError::AuthorityRelation { .. }
                | DomainError::LevelGapTooLarge { .. }
                | DomainError::AlreadyPaired(_)
                | DomainError::PairDissolved(_)
                | DomainError::PairPaused(_)
                | DomainError::PairNotPaused(_)
                | DomainError::NotAMember(_)
                | DomainError::SelfFeedback
                | DomainError::SessionAlreadyHeld(_)
                | DomainError::SessionCancelled(_)
                | DomainError::SessionNotHeld(_)
                | DomainError::GoalClosed(_)
                | DomainError::NotGoalOwner { .. }
                | DomainError::NotGoalParticipant
                | DomainError::WebhookEndpointNotFound(_)
                | DomainError::WebhookEndpointDisabled(_) => {}
            }
        }
        all
    }

    /// The extensions of the GraphQL error an [`ApiError`] becomes.
    fn extensions(e: ApiError) -> (String, async_graphql::ErrorExtensionValues) {
        let e = async_graphql::Error::from(e);
        (e.message.clone(), e.extensions.unwrap_or_default())
    }

    fn text(ext: &async_graphql::ErrorExtensionValues, key: &str) -> Option<String> {
        match ext.get(key) {
            Some(Value::String(s)) => Some(s.clone()),
            _ => None,
        }
    }

    #[test]
    fn every_domain_refusal_is_a_coded_client_error() {
        let all = every_domain_error();
        let codes: std::collections::BTreeSet<_> = all.iter().map(DomainError::code).collect();
        assert_eq!(codes.len(), all.len(), "each variant has its own reason");
        for d in all {
            let (reason, field, kind) = (d.code(), d.field(), kind_of(&d));
            let (message, ext) = extensions(ApiError::from(d.clone()));
            let code = text(&ext, "code");
            let expected = match kind {
                ErrorKind::BadUserInput => code::BAD_USER_INPUT,
                ErrorKind::NotFound => code::NOT_FOUND,
                ErrorKind::Conflict => code::CONFLICT,
            };
            assert_eq!(code.as_deref(), Some(expected), "{d:?}");
            assert_ne!(code.as_deref(), Some(code::INTERNAL_SERVER_ERROR), "{d:?}");
            assert_eq!(text(&ext, "field").as_deref(), field, "{d:?}: the field travels when there is one");
            if kind != ErrorKind::NotFound {
                assert_eq!(text(&ext, "reason").as_deref(), Some(reason), "{d:?}");
            }
            assert!(!message.is_empty() && message != "internal server error", "{d:?}");
        }
    }

    #[test]
    fn the_invalid_input_variant_names_its_field() {
        let (_, ext) = extensions(DomainError::invalid("ratings.empathy", "must be 1 to 5").into());
        assert_eq!(text(&ext, "code").as_deref(), Some(code::BAD_USER_INPUT));
        assert_eq!(text(&ext, "field").as_deref(), Some("ratings.empathy"));
    }

    #[test]
    fn every_api_error_has_its_code_and_leaks_nothing() {
        let table: Vec<(ApiError, &str, Option<&str>, Option<&str>)> = vec![
            (ApiError::Unauthenticated, code::UNAUTHENTICATED, None, None),
            (ApiError::Forbidden, code::FORBIDDEN, None, None),
            (ApiError::not_found("pair"), code::NOT_FOUND, None, None),
            (ApiError::bad_input("level", "out of range"), code::BAD_USER_INPUT, Some("level"), None),
            (
                ApiError::Conflict { message: "taken".into(), reason: "ALREADY_PAIRED" },
                code::CONFLICT,
                None,
                Some("ALREADY_PAIRED"),
            ),
            (ApiError::RateLimited, code::RATE_LIMITED, None, None),
            (
                ApiError::internal(anyhow::anyhow!("relation read.people does not exist")),
                code::INTERNAL_SERVER_ERROR,
                None,
                None,
            ),
        ];
        for (e, code, field, reason) in table {
            // Exhaustive on purpose: a new variant needs a row above.
            match &e {
                ApiError::Unauthenticated
                | ApiError::Forbidden
                | ApiError::NotFound { .. }
                | ApiError::BadUserInput { .. }
                | ApiError::Conflict { .. }
                | ApiError::RateLimited
                | ApiError::Internal(_) => {}
            }
            assert_eq!(e.code(), code);
            let (message, ext) = extensions(e);
            assert_eq!(text(&ext, "code").as_deref(), Some(code));
            assert_eq!(text(&ext, "field").as_deref(), field);
            assert_eq!(text(&ext, "reason").as_deref(), reason);
            assert!(!message.contains("read.people"), "internal causes are never sent: {message}");
        }
    }

    #[test]
    fn command_errors_are_coded() {
        let table: Vec<(CommandError, &str, Option<&str>)> = vec![
            (CommandError::Domain(DomainError::SelfFeedback), code::BAD_USER_INPUT, None),
            (CommandError::Conflict { attempts: 5 }, code::CONFLICT, None),
            (CommandError::IdempotencyKeyReused { key: "k".into() }, code::CONFLICT, None),
            (CommandError::InvalidIdempotencyKey, code::BAD_USER_INPUT, Some("idempotencyKey")),
        ];
        for (e, code, field) in table {
            let (_, ext) = extensions(e.into());
            assert_eq!(text(&ext, "code").as_deref(), Some(code));
            assert_eq!(text(&ext, "field").as_deref(), field);
        }
    }

    #[test]
    fn invalid_values_name_the_input_field() {
        let cases = [
            ("Invalid value for argument \"input.level\", expected type \"Int\"", Some("level")),
            ("Invalid value for argument \"input.ratings.empathy\", expected type \"Int\"", Some("ratings.empathy")),
            ("Invalid value for argument \"input.coaching.0.coachId\", expected type \"ID\"", Some("coaching.coachId")),
            ("Invalid value for argument \"id\", expected type \"ID\"", Some("id")),
            ("Unknown field \"nope\" on type \"Query\"", None),
        ];
        for (message, field) in cases {
            assert_eq!(invalid_value_field(message).as_deref(), field, "{message}");
        }
    }
}
