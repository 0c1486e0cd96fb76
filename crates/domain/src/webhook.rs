//! The webhook stream: one endpoint that Tandem pushes events to, and every
//! change made to it (created, updated, secret rotated, disabled,
//! redelivery asked for).
//!
//! The signing secret itself is never part of an event: events name it by
//! a `secret_id`, and the secret is kept sealed outside the log (see
//! `migrations/0012_webhooks.sql`). What is checked here is what can be
//! checked without I/O: the shape of the URL (an absolute `http` or `https`
//! URL of bounded length; which addresses it may reach depends on the
//! deployment and is checked by the caller), the event types (known ones,
//! of the person, program and pair streams) and the lifecycle.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::DomainError;
use crate::event::{EVENT_TYPES, StreamType, event_type_info};
use crate::ids::WebhookEndpointId;
use crate::values::LongText;

/// The longest endpoint URL accepted.
pub const URL_MAX: usize = 2048;

/// Most event types one endpoint may subscribe to (every deliverable type).
pub const MAX_EVENT_TYPES: usize = 64;

/// An endpoint URL: absolute, `http` or `https`, at most [`URL_MAX`]
/// characters, no whitespace or control characters.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EndpointUrl(String);

impl EndpointUrl {
    /// Checks the URL's shape.
    pub fn parse(field: &'static str, input: &str) -> Result<Self, DomainError> {
        if input.is_empty() {
            return Err(DomainError::invalid(field, "must not be empty"));
        }
        if input.chars().count() > URL_MAX {
            return Err(DomainError::invalid(field, format!("must be at most {URL_MAX} characters")));
        }
        if input.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(DomainError::invalid(field, "must not contain spaces or control characters"));
        }
        let lower = input.to_ascii_lowercase();
        let rest = lower
            .strip_prefix("https://")
            .or_else(|| lower.strip_prefix("http://"))
            .ok_or_else(|| DomainError::invalid(field, "must be an absolute http or https URL"))?;
        if rest.is_empty() || rest.starts_with('/') {
            return Err(DomainError::invalid(field, "must name a host"));
        }
        Ok(Self(input.to_owned()))
    }

    /// The URL.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for EndpointUrl {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse("url", &s)
    }
}

impl From<EndpointUrl> for String {
    fn from(u: EndpointUrl) -> Self {
        u.0
    }
}

/// The role an endpoint receives events as: what it sees of each event is
/// what the event feed shows a caller of that role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EndpointRole {
    /// Every event, whole.
    Admin,
    /// The events of person streams.
    Integrator,
    /// Every event, pseudonymously (no names, e-mails, external ids,
    /// locations, feedback texts, session notes or goal texts).
    Analyst,
}

impl EndpointRole {
    /// The role's name, as auth tokens spell it.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Integrator => "integrator",
            Self::Analyst => "analyst",
        }
    }

    /// Parses a role name.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "admin" => Some(Self::Admin),
            "integrator" => Some(Self::Integrator),
            "analyst" => Some(Self::Analyst),
            _ => None,
        }
    }
}

/// Checks a list of event types: non-empty, known, of the person, program
/// or pair streams; returned sorted and without duplicates.
pub fn event_types(field: &'static str, types: &[String]) -> Result<Vec<String>, DomainError> {
    if types.is_empty() {
        return Err(DomainError::invalid(field, "must name at least one event type"));
    }
    if types.len() > MAX_EVENT_TYPES {
        return Err(DomainError::invalid(field, format!("at most {MAX_EVENT_TYPES} entries")));
    }
    let mut out = BTreeSet::new();
    for (i, t) in types.iter().enumerate() {
        match event_type_info(t) {
            Some((StreamType::Webhook, _)) | None => {
                let known: Vec<&str> =
                    EVENT_TYPES.iter().filter(|(_, s, _)| *s != StreamType::Webhook).map(|(n, _, _)| *n).collect();
                return Err(DomainError::invalid(
                    field,
                    format!("entry {i} is not a deliverable event type; known types: {}", known.join(", ")),
                ));
            }
            Some(_) => {
                out.insert(t.clone());
            }
        }
    }
    Ok(out.into_iter().collect())
}

/// The state of a webhook stream.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Endpoint {
    /// `None` until created.
    pub id: Option<WebhookEndpointId>,
    pub url: Option<EndpointUrl>,
    pub event_types: Vec<String>,
    pub description: LongText,
    pub role: Option<EndpointRole>,
    /// The secret that signs now.
    pub secret_id: Option<Uuid>,
    /// The secret replaced by the last rotation, and until when it still signs.
    pub previous_secret: Option<(Uuid, DateTime<Utc>)>,
    pub disabled: bool,
    /// How many redeliveries were asked for.
    pub redeliveries: u32,
}

impl Endpoint {
    /// Whether the endpoint exists.
    #[must_use]
    pub fn is_created(&self) -> bool {
        self.id.is_some()
    }

    fn require_active(&self, asked: WebhookEndpointId) -> Result<WebhookEndpointId, DomainError> {
        let id = self.id.ok_or(DomainError::WebhookEndpointNotFound(asked))?;
        if self.disabled {
            return Err(DomainError::WebhookEndpointDisabled(id));
        }
        Ok(id)
    }
}

/// Create an endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateEndpoint {
    pub endpoint_id: WebhookEndpointId,
    pub url: EndpointUrl,
    pub event_types: Vec<String>,
    pub description: LongText,
    pub role: EndpointRole,
    /// The sealed secret, already stored under this id.
    pub secret_id: Uuid,
}

/// Change an endpoint; `None` leaves a field as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointChanges {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<EndpointUrl>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_types: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<LongText>,
}

/// The commands of the webhook stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WebhookCommand {
    Create(CreateEndpoint),
    Update {
        endpoint_id: WebhookEndpointId,
        changes: EndpointChanges,
    },
    /// Sign with a new secret from now on; the current one keeps signing
    /// too until `previous_valid_until`.
    RotateSecret {
        endpoint_id: WebhookEndpointId,
        secret_id: Uuid,
        previous_valid_until: DateTime<Utc>,
    },
    Disable {
        endpoint_id: WebhookEndpointId,
    },
    /// Deliver again every event after a cursor of the log (and resume
    /// an endpoint that was failing).
    Redeliver {
        endpoint_id: WebhookEndpointId,
        after: String,
    },
}

impl WebhookCommand {
    /// The stream the command targets.
    #[must_use]
    pub fn endpoint_id(&self) -> WebhookEndpointId {
        match self {
            Self::Create(c) => c.endpoint_id,
            Self::Update { endpoint_id, .. }
            | Self::RotateSecret { endpoint_id, .. }
            | Self::Disable { endpoint_id }
            | Self::Redeliver { endpoint_id, .. } => *endpoint_id,
        }
    }
}

/// An endpoint was created.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookEndpointCreated {
    pub endpoint_id: WebhookEndpointId,
    pub url: EndpointUrl,
    pub event_types: Vec<String>,
    pub description: LongText,
    pub role: EndpointRole,
    pub secret_id: Uuid,
}

/// An endpoint's URL, event types or description changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookEndpointUpdated {
    pub endpoint_id: WebhookEndpointId,
    pub changes: EndpointChanges,
}

/// An endpoint signs with a new secret; the previous one still signs until
/// `previous_valid_until`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookSecretRotated {
    pub endpoint_id: WebhookEndpointId,
    pub secret_id: Uuid,
    pub previous_secret_id: Uuid,
    pub previous_valid_until: DateTime<Utc>,
}

/// An endpoint was disabled for good: nothing is delivered to it any more.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookEndpointDisabled {
    pub endpoint_id: WebhookEndpointId,
}

/// Every event after `after` (a cursor of the log) is to be delivered again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookRedeliveryRequested {
    pub endpoint_id: WebhookEndpointId,
    pub after: String,
}

/// The events of the webhook stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum WebhookEvent {
    WebhookEndpointCreated(WebhookEndpointCreated),
    WebhookEndpointUpdated(WebhookEndpointUpdated),
    WebhookSecretRotated(WebhookSecretRotated),
    WebhookEndpointDisabled(WebhookEndpointDisabled),
    WebhookRedeliveryRequested(WebhookRedeliveryRequested),
}

impl WebhookEvent {
    /// The endpoint the event is about.
    #[must_use]
    pub fn endpoint_id(&self) -> WebhookEndpointId {
        match self {
            Self::WebhookEndpointCreated(e) => e.endpoint_id,
            Self::WebhookEndpointUpdated(e) => e.endpoint_id,
            Self::WebhookSecretRotated(e) => e.endpoint_id,
            Self::WebhookEndpointDisabled(e) => e.endpoint_id,
            Self::WebhookRedeliveryRequested(e) => e.endpoint_id,
        }
    }
}

/// Decides a webhook command.
pub fn decide(state: &Endpoint, command: WebhookCommand) -> Result<Vec<WebhookEvent>, DomainError> {
    match command {
        WebhookCommand::Create(c) => {
            if state.is_created() {
                return Err(DomainError::AlreadyExists { entity: "webhook endpoint" });
            }
            let event_types = event_types("eventTypes", &c.event_types)?;
            Ok(vec![WebhookEvent::WebhookEndpointCreated(WebhookEndpointCreated {
                endpoint_id: c.endpoint_id,
                url: c.url,
                event_types,
                description: c.description,
                role: c.role,
                secret_id: c.secret_id,
            })])
        }
        WebhookCommand::Update { endpoint_id, mut changes } => {
            let id = state.require_active(endpoint_id)?;
            if let Some(types) = &changes.event_types {
                changes.event_types = Some(event_types("eventTypes", types)?);
            }
            if changes.url.as_ref() == state.url.as_ref() {
                changes.url = None;
            }
            if changes.event_types.as_ref() == Some(&state.event_types) {
                changes.event_types = None;
            }
            if changes.description.as_ref() == Some(&state.description) {
                changes.description = None;
            }
            if changes == EndpointChanges::default() {
                return Ok(Vec::new());
            }
            Ok(vec![WebhookEvent::WebhookEndpointUpdated(WebhookEndpointUpdated { endpoint_id: id, changes })])
        }
        WebhookCommand::RotateSecret { endpoint_id, secret_id, previous_valid_until } => {
            let id = state.require_active(endpoint_id)?;
            let previous = state.secret_id.ok_or(DomainError::WebhookEndpointNotFound(endpoint_id))?;
            if previous == secret_id {
                return Err(DomainError::invalid("secretId", "must differ from the current secret"));
            }
            Ok(vec![WebhookEvent::WebhookSecretRotated(WebhookSecretRotated {
                endpoint_id: id,
                secret_id,
                previous_secret_id: previous,
                previous_valid_until,
            })])
        }
        WebhookCommand::Disable { endpoint_id } => {
            let id = state.id.ok_or(DomainError::WebhookEndpointNotFound(endpoint_id))?;
            if state.disabled {
                return Ok(Vec::new());
            }
            Ok(vec![WebhookEvent::WebhookEndpointDisabled(WebhookEndpointDisabled { endpoint_id: id })])
        }
        WebhookCommand::Redeliver { endpoint_id, after } => {
            let id = state.require_active(endpoint_id)?;
            if after.is_empty() || after.len() > 64 || !after.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                return Err(DomainError::invalid("after", "must be a cursor of the event log"));
            }
            Ok(vec![WebhookEvent::WebhookRedeliveryRequested(WebhookRedeliveryRequested { endpoint_id: id, after })])
        }
    }
}

/// Folds one event into the state.
#[must_use]
pub fn evolve(mut state: Endpoint, event: &WebhookEvent) -> Endpoint {
    match event {
        WebhookEvent::WebhookEndpointCreated(e) => {
            state.id = Some(e.endpoint_id);
            state.url = Some(e.url.clone());
            state.event_types.clone_from(&e.event_types);
            state.description = e.description.clone();
            state.role = Some(e.role);
            state.secret_id = Some(e.secret_id);
        }
        WebhookEvent::WebhookEndpointUpdated(e) => {
            if let Some(u) = &e.changes.url {
                state.url = Some(u.clone());
            }
            if let Some(t) = &e.changes.event_types {
                state.event_types.clone_from(t);
            }
            if let Some(d) = &e.changes.description {
                state.description = d.clone();
            }
        }
        WebhookEvent::WebhookSecretRotated(e) => {
            state.previous_secret = Some((e.previous_secret_id, e.previous_valid_until));
            state.secret_id = Some(e.secret_id);
        }
        WebhookEvent::WebhookEndpointDisabled(_) => state.disabled = true,
        WebhookEvent::WebhookRedeliveryRequested(_) => state.redeliveries += 1,
    }
    state
}
