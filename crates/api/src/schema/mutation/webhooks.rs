//! Mutations of webhook endpoints. Each is a command of the endpoint's
//! webhook stream, so every change is an event of the log.
//!
//! The URL is checked by the SSRF guard before anything is written
//! (`BAD_USER_INPUT` on `url`): `https` only unless
//! `TANDEM_WEBHOOKS_ALLOW_HTTP=1`, and no literal internal address (nor
//! `localhost`) unless `TANDEM_WEBHOOKS_ALLOW_PRIVATE=1`. A secret is made
//! and stored sealed before the command that names it runs; the payload
//! shows it once (a replay of the same request shows the same secret).

use async_graphql::{Context, ID, InputObject, Object};
use chrono::{Duration, Utc};
use tandem_commands::{Command, Committed};
use tandem_domain::event::{StreamType, event_type_info};
use tandem_domain::webhook::{
    CreateEndpoint, EndpointChanges, EndpointRole, EndpointUrl, WebhookCommand, WebhookEvent,
};
use tandem_domain::{DomainEvent, WebhookEndpointId};
use tandem_store::Cursor;
use tandem_webhooks::{SecretBox, SigningSecret};
use uuid::Uuid;

use super::{Commit, decode, long, payload, run};
use crate::error::ApiError;
use crate::policy::Access;
use crate::schema::types::parse_id;
use crate::schema::webhooks::{WebhookEndpoint, WebhookRole, endpoint_for};
use crate::schema::{check, state};

/// How long the previous secret still signs after a rotation.
pub const ROTATION_OVERLAP_HOURS: i64 = 24;

/// Create a webhook endpoint.
#[derive(InputObject, Debug)]
pub struct CreateWebhookEndpointInput {
    /// Makes retries safe: the same key returns the first result (and the same secret).
    pub idempotency_key: Option<String>,
    /// Where to post events: an `https` URL of a public host.
    pub url: String,
    /// The event types to deliver, e.g. `["PairFormed", "PersonLeft"]`.
    pub event_types: Vec<String>,
    /// What it is for.
    pub description: Option<String>,
    /// What it sees of each event; the caller's role when omitted (an
    /// integrator creates integrator endpoints only).
    pub role: Option<WebhookRole>,
}

/// Change a webhook endpoint; omitted fields stay as they are.
#[derive(InputObject, Debug)]
pub struct UpdateWebhookEndpointInput {
    /// Makes retries safe: the same key returns the first result.
    pub idempotency_key: Option<String>,
    /// The endpoint.
    pub endpoint_id: ID,
    /// New URL.
    pub url: Option<String>,
    /// New event types.
    pub event_types: Option<Vec<String>>,
    /// New description.
    pub description: Option<String>,
}

/// Sign with a new secret; the current one keeps signing too for 24 hours.
#[derive(InputObject, Debug)]
pub struct RotateWebhookSecretInput {
    /// Makes retries safe: the same key returns the first result (and the same secret).
    pub idempotency_key: Option<String>,
    /// The endpoint.
    pub endpoint_id: ID,
}

/// Disable a webhook endpoint for good.
#[derive(InputObject, Debug)]
pub struct DisableWebhookEndpointInput {
    /// Makes retries safe: the same key returns the first result.
    pub idempotency_key: Option<String>,
    /// The endpoint.
    pub endpoint_id: ID,
}

/// Deliver again every event after a cursor, and resume a failing endpoint.
#[derive(InputObject, Debug)]
pub struct RedeliverWebhooksInput {
    /// Makes retries safe: the same key returns the first result.
    pub idempotency_key: Option<String>,
    /// The endpoint.
    pub endpoint_id: ID,
    /// A cursor of the event log (an event's `envelope.cursor`, a
    /// delivery's `cursor`, or the endpoint's `deliveredThrough`): every
    /// event of the endpoint after it is delivered again, in order.
    pub after: String,
}

payload!(
    /// The result of `createWebhookEndpoint`.
    CreateWebhookEndpointPayload { endpoint_id: Uuid, secret: Option<String> }
    /// The endpoint created.
    endpoint: WebhookEndpoint = |self, ctx| endpoint(ctx, self.endpoint_id).await?;
    /// The signing secret, `whsec_` and base64 (Standard Webhooks): shown
    /// here only; keep it safe.
    secret: String = |self, _ctx| self.secret.clone();
);
payload!(
    /// The result of `updateWebhookEndpoint`.
    UpdateWebhookEndpointPayload { endpoint_id: Uuid }
    /// The endpoint after the change.
    endpoint: WebhookEndpoint = |self, ctx| endpoint(ctx, self.endpoint_id).await?;
);
payload!(
    /// The result of `rotateWebhookSecret`.
    RotateWebhookSecretPayload { endpoint_id: Uuid, secret: Option<String> }
    /// The endpoint after the rotation.
    endpoint: WebhookEndpoint = |self, ctx| endpoint(ctx, self.endpoint_id).await?;
    /// The new signing secret, shown here only; the previous one signs
    /// too until `endpoint.previousSecretValidUntil`.
    secret: String = |self, _ctx| self.secret.clone();
);
payload!(
    /// The result of `disableWebhookEndpoint`.
    DisableWebhookEndpointPayload { endpoint_id: Uuid }
    /// The endpoint disabled.
    endpoint: WebhookEndpoint = |self, ctx| endpoint(ctx, self.endpoint_id).await?;
);
payload!(
    /// The result of `redeliverWebhooks`.
    RedeliverWebhooksPayload { endpoint_id: Uuid }
    /// The endpoint.
    endpoint: WebhookEndpoint = |self, ctx| endpoint(ctx, self.endpoint_id).await?;
);

/// The endpoint as the read models have it.
async fn endpoint(ctx: &Context<'_>, id: Uuid) -> Result<Option<WebhookEndpoint>, ApiError> {
    let row = tandem_projections::queries::webhook_endpoint(&state(ctx).pool, id).await.map_err(ApiError::internal)?;
    Ok(row.map(|row| WebhookEndpoint { row }))
}

fn secrets(ctx: &Context<'_>) -> SecretBox {
    SecretBox::new(state(ctx).commands.secret())
}

/// Checks a URL: its shape (the domain's rule) and the SSRF guard.
fn url(raw: &str) -> Result<EndpointUrl, ApiError> {
    let u = EndpointUrl::parse("url", raw)?;
    tandem_webhooks::Safety::from_env().check_url(raw).map_err(|r| ApiError::bad_input("url", r.to_string()))?;
    Ok(u)
}

/// The role of a new endpoint: the one asked for, or the caller's.
fn role(access: Access, ctx: &Context<'_>, asked: Option<WebhookRole>) -> Result<EndpointRole, ApiError> {
    match (access, asked) {
        (Access::All, Some(r)) => Ok(r.into()),
        (Access::All, None) => {
            let admin = super::viewer(ctx).is_some_and(crate::auth::Principal::is_admin);
            Ok(if admin { EndpointRole::Admin } else { EndpointRole::Integrator })
        }
        (_, None | Some(WebhookRole::Integrator)) => Ok(EndpointRole::Integrator),
        (_, Some(_)) => Err(ApiError::bad_input("role", "an integrator creates endpoints of the integrator role only")),
    }
}

/// The event types of an endpoint of `role`: known, deliverable, and for
/// an integrator endpoint of person streams only (all it is shown).
fn event_types(role: EndpointRole, types: &[String]) -> Result<Vec<String>, ApiError> {
    let types = tandem_domain::webhook::event_types("eventTypes", types)?;
    if role == EndpointRole::Integrator
        && types.iter().any(|t| event_type_info(t).is_none_or(|(s, _)| s != StreamType::Person))
    {
        return Err(ApiError::bad_input(
            "eventTypes",
            "an integrator endpoint receives the events of person streams only",
        ));
    }
    Ok(types)
}

/// The secret the committed event names (the first call's on a replay).
async fn committed_secret(ctx: &Context<'_>, done: &Committed) -> Result<Option<String>, ApiError> {
    let Some(rec) = done.events.first() else { return Ok(None) };
    let secret_id = match decode(rec)? {
        DomainEvent::Webhook(WebhookEvent::WebhookEndpointCreated(e)) => e.secret_id,
        DomainEvent::Webhook(WebhookEvent::WebhookSecretRotated(e)) => e.secret_id,
        _ => return Ok(None),
    };
    let secret: Option<SigningSecret> =
        secrets(ctx).load(&state(ctx).pool, rec.stream_id, secret_id).await.map_err(ApiError::internal)?;
    Ok(secret.map(|s| s.reveal()))
}

/// The endpoint of an input, when the caller may manage it.
async fn target(ctx: &Context<'_>, access: Access, id: &ID) -> Result<WebhookEndpointId, ApiError> {
    let id: Uuid = parse_id("endpointId", id)?;
    endpoint_for(ctx, access, id).await?;
    Ok(WebhookEndpointId::from_uuid(id))
}

/// Mutations of webhook endpoints.
#[derive(Default)]
pub struct WebhookMutation;

/// Changes to webhook endpoints.
#[Object]
impl WebhookMutation {
    /// Create a webhook endpoint; the payload shows its signing secret, once.
    async fn create_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        input: CreateWebhookEndpointInput,
    ) -> async_graphql::Result<CreateWebhookEndpointPayload> {
        let access = check(ctx, "createWebhookEndpoint")?;
        let url = url(&input.url)?;
        let role = role(access, ctx, input.role)?;
        let event_types = event_types(role, &input.event_types)?;
        let description = long("description", input.description.as_deref())?;
        let endpoint_id = WebhookEndpointId::new();
        let (secret_id, _) =
            secrets(ctx).issue(&state(ctx).pool, endpoint_id.as_uuid()).await.map_err(ApiError::internal)?;
        let c = CreateEndpoint { endpoint_id, url, event_types, description, role, secret_id };
        let key = input.idempotency_key.as_deref();
        let done = run(ctx, "createWebhookEndpoint", Command::Webhook(WebhookCommand::Create(c)), key, &input).await?;
        let endpoint_id = done.events.first().map_or(endpoint_id.as_uuid(), |e| e.stream_id);
        let secret = committed_secret(ctx, &done).await?;
        Ok(CreateWebhookEndpointPayload { commit: Commit::new(&done), endpoint_id, secret })
    }

    /// Change a webhook endpoint's URL, event types or description.
    async fn update_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        input: UpdateWebhookEndpointInput,
    ) -> async_graphql::Result<UpdateWebhookEndpointPayload> {
        let access = check(ctx, "updateWebhookEndpoint")?;
        let endpoint_id = target(ctx, access, &input.endpoint_id).await?;
        let role = endpoint_for(ctx, access, endpoint_id.as_uuid())
            .await
            .map(|row| EndpointRole::parse(&row.role).unwrap_or(EndpointRole::Analyst))?;
        let changes = EndpointChanges {
            url: input.url.as_deref().map(url).transpose()?,
            event_types: input.event_types.as_deref().map(|t| event_types(role, t)).transpose()?,
            description: input.description.as_deref().map(|d| long("description", Some(d))).transpose()?,
        };
        let c = WebhookCommand::Update { endpoint_id, changes };
        let key = input.idempotency_key.as_deref();
        let done = run(ctx, "updateWebhookEndpoint", Command::Webhook(c), key, &input).await?;
        Ok(UpdateWebhookEndpointPayload { commit: Commit::new(&done), endpoint_id: endpoint_id.as_uuid() })
    }

    /// Sign with a new secret (shown once); the current one keeps signing
    /// too for 24 hours, so receivers can switch without losing a delivery.
    async fn rotate_webhook_secret(
        &self,
        ctx: &Context<'_>,
        input: RotateWebhookSecretInput,
    ) -> async_graphql::Result<RotateWebhookSecretPayload> {
        let access = check(ctx, "rotateWebhookSecret")?;
        let endpoint_id = target(ctx, access, &input.endpoint_id).await?;
        let (secret_id, _) =
            secrets(ctx).issue(&state(ctx).pool, endpoint_id.as_uuid()).await.map_err(ApiError::internal)?;
        let previous_valid_until = Utc::now() + Duration::hours(ROTATION_OVERLAP_HOURS);
        let c = WebhookCommand::RotateSecret { endpoint_id, secret_id, previous_valid_until };
        let key = input.idempotency_key.as_deref();
        let done = run(ctx, "rotateWebhookSecret", Command::Webhook(c), key, &input).await?;
        let secret = committed_secret(ctx, &done).await?;
        Ok(RotateWebhookSecretPayload { commit: Commit::new(&done), endpoint_id: endpoint_id.as_uuid(), secret })
    }

    /// Disable a webhook endpoint for good: nothing more is delivered to it.
    async fn disable_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        input: DisableWebhookEndpointInput,
    ) -> async_graphql::Result<DisableWebhookEndpointPayload> {
        let access = check(ctx, "disableWebhookEndpoint")?;
        let endpoint_id = target(ctx, access, &input.endpoint_id).await?;
        let c = WebhookCommand::Disable { endpoint_id };
        let key = input.idempotency_key.as_deref();
        let done = run(ctx, "disableWebhookEndpoint", Command::Webhook(c), key, &input).await?;
        Ok(DisableWebhookEndpointPayload { commit: Commit::new(&done), endpoint_id: endpoint_id.as_uuid() })
    }

    /// Deliver again, in order, every event of the endpoint after a cursor
    /// of the log; a failing endpoint resumes from there.
    async fn redeliver_webhooks(
        &self,
        ctx: &Context<'_>,
        input: RedeliverWebhooksInput,
    ) -> async_graphql::Result<RedeliverWebhooksPayload> {
        let access = check(ctx, "redeliverWebhooks")?;
        let endpoint_id = target(ctx, access, &input.endpoint_id).await?;
        let after: Cursor =
            input.after.parse().map_err(|_| ApiError::bad_input("after", "after is not a cursor of the event log"))?;
        let c = WebhookCommand::Redeliver { endpoint_id, after: after.to_string() };
        let key = input.idempotency_key.as_deref();
        let done = run(ctx, "redeliverWebhooks", Command::Webhook(c), key, &input).await?;
        Ok(RedeliverWebhooksPayload { commit: Commit::new(&done), endpoint_id: endpoint_id.as_uuid() })
    }
}
