//! Webhook endpoints and their deliveries over GraphQL: the object types,
//! and the `webhookEndpoints` and `webhookDeliveries` queries. The
//! mutations are in `mutation::webhooks`.
//!
//! Admins manage every endpoint; integrators manage the endpoints of the
//! integrator role (which receive person events only). An endpoint the
//! caller may not manage does not exist for them (`NOT_FOUND`).

use async_graphql::{Context, Enum, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};
use tandem_domain::webhook::EndpointRole;
use tandem_projections::read_models::webhooks::{EndpointStatus, WebhookEndpointRow};
use tandem_webhooks::checkpoint;
use uuid::Uuid;

use super::types::{PageInfo, parse_id};
use super::{check, state};
use crate::error::ApiError;
use crate::policy::Access;

/// What an endpoint sees of each event: what the event feed shows a
/// caller of this role.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum WebhookRole {
    /// Every event, whole.
    Admin,
    /// The events of person streams.
    Integrator,
    /// Every event, pseudonymously (no names, e-mails, external ids,
    /// locations, feedback texts, session notes or goal texts).
    Analyst,
}

impl From<WebhookRole> for EndpointRole {
    fn from(r: WebhookRole) -> Self {
        match r {
            WebhookRole::Admin => Self::Admin,
            WebhookRole::Integrator => Self::Integrator,
            WebhookRole::Analyst => Self::Analyst,
        }
    }
}

impl From<EndpointRole> for WebhookRole {
    fn from(r: EndpointRole) -> Self {
        match r {
            EndpointRole::Admin => Self::Admin,
            EndpointRole::Integrator => Self::Integrator,
            EndpointRole::Analyst => Self::Analyst,
        }
    }
}

/// Whether an endpoint receives events.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum WebhookEndpointStatus {
    /// Events are delivered (and retried on failure).
    Active,
    /// The last attempt of an event failed: deliveries wait until
    /// `redeliverWebhooks` is called.
    Failing,
    /// Disabled for good.
    Disabled,
}

/// The outcome of one delivery attempt.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum WebhookDeliveryStatus {
    /// The receiver answered 2xx.
    Delivered,
    /// It failed; another attempt is scheduled (`nextAttemptAt`).
    Retrying,
    /// It failed and no attempt follows: the endpoint is failing.
    Failed,
}

impl WebhookDeliveryStatus {
    fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Retrying => "retrying",
            Self::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "delivered" => Self::Delivered,
            "retrying" => Self::Retrying,
            _ => Self::Failed,
        }
    }
}

/// An endpoint Tandem pushes events to, signed by the Standard Webhooks
/// specification. Its secret is never shown again after creation or
/// rotation.
pub struct WebhookEndpoint {
    pub(crate) row: WebhookEndpointRow,
}

/// An endpoint Tandem pushes events to, signed by the Standard Webhooks
/// specification. Its secret is never shown again after creation or
/// rotation.
#[Object]
impl WebhookEndpoint {
    /// The endpoint's id.
    async fn id(&self) -> ID {
        ID(self.row.endpoint_id.to_string())
    }
    /// Where events are posted.
    async fn url(&self) -> &str {
        &self.row.url
    }
    /// The event types delivered, e.g. `PairFormed`.
    async fn event_types(&self) -> &[String] {
        &self.row.event_types
    }
    /// What it is for.
    async fn description(&self) -> &str {
        &self.row.description
    }
    /// What it sees of each event.
    async fn role(&self) -> WebhookRole {
        EndpointRole::parse(&self.row.role).map_or(WebhookRole::Analyst, WebhookRole::from)
    }
    /// Active, failing or disabled.
    async fn status(&self, ctx: &Context<'_>) -> async_graphql::Result<WebhookEndpointStatus> {
        if self.row.status == EndpointStatus::Disabled {
            return Ok(WebhookEndpointStatus::Disabled);
        }
        let cp = checkpoint::load(&state(ctx).pool, self.row.endpoint_id).await.map_err(ApiError::internal)?;
        Ok(match cp.map(|c| c.status) {
            Some(checkpoint::Status::Failing) => WebhookEndpointStatus::Failing,
            _ => WebhookEndpointStatus::Active,
        })
    }
    /// The cursor of the last event done for this endpoint (delivered, or
    /// not one it sees); deliveries continue after it. Null before the
    /// first delivery round.
    async fn delivered_through(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<String>> {
        let cp = checkpoint::load(&state(ctx).pool, self.row.endpoint_id).await.map_err(ApiError::internal)?;
        Ok(cp.map(|c| c.cursor.to_string()))
    }
    /// Until when the secret replaced by the last rotation still signs
    /// (beside the current one); null when no rotation is in progress.
    async fn previous_secret_valid_until(&self) -> Option<DateTime<Utc>> {
        self.row.previous_valid_until.filter(|t| *t > Utc::now())
    }
    /// When it was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.row.created_at
    }
    /// When it last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.row.updated_at
    }
}

/// One delivery attempt.
#[derive(SimpleObject, Clone, Debug)]
pub struct WebhookDelivery {
    /// The attempt's id (also its cursor in `webhookDeliveries`).
    pub id: ID,
    /// The `webhook-id` header: one per event, the same for every attempt.
    pub message_id: String,
    /// The event delivered.
    pub event_id: ID,
    /// Its type.
    pub event_type: String,
    /// Its cursor in the event log.
    pub cursor: String,
    /// 1 for the first attempt of the event.
    pub attempt: i32,
    /// What it came to.
    pub status: WebhookDeliveryStatus,
    /// The receiver's HTTP status, when it answered.
    pub http_status: Option<i32>,
    /// Why it failed (never the receiver's answer itself).
    pub error: Option<String>,
    /// How long it took.
    pub duration_ms: i32,
    /// When it was made.
    pub attempted_at: DateTime<Utc>,
    /// When the next attempt is due, for a `RETRYING` one.
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// An attempt with its cursor.
#[derive(SimpleObject, Clone, Debug)]
pub struct WebhookDeliveryEdge {
    /// The attempt's cursor: pass it as `after` for the attempts after it.
    pub cursor: String,
    /// The attempt.
    pub node: WebhookDelivery,
}

/// Attempts, oldest first.
#[derive(SimpleObject, Clone, Debug)]
pub struct WebhookDeliveryConnection {
    /// The attempts of this page, oldest first.
    pub edges: Vec<WebhookDeliveryEdge>,
    /// Where this page lies.
    pub page_info: PageInfo,
}

/// An endpoint with its cursor.
#[derive(SimpleObject)]
pub struct WebhookEndpointEdge {
    /// The endpoint's cursor: pass it as `after` for the endpoints after it.
    pub cursor: String,
    /// The endpoint.
    pub node: WebhookEndpoint,
}

/// Endpoints, in creation order.
#[derive(SimpleObject)]
pub struct WebhookEndpointConnection {
    /// The endpoints of this page.
    pub edges: Vec<WebhookEndpointEdge>,
    /// Where this page lies.
    pub page_info: PageInfo,
}

/// The role filter of a caller with `access`: integrators see integrator
/// endpoints only.
fn role_scope(access: Access) -> Option<&'static str> {
    (access != Access::All).then_some(EndpointRole::Integrator.as_str())
}

/// An endpoint the caller may manage, or `NOT_FOUND`.
pub(crate) async fn endpoint_for(ctx: &Context<'_>, access: Access, id: Uuid) -> Result<WebhookEndpointRow, ApiError> {
    let row = tandem_projections::queries::webhook_endpoint(&state(ctx).pool, id)
        .await
        .map_err(ApiError::internal)?
        .filter(|r| role_scope(access).is_none_or(|role| r.role == role));
    row.ok_or_else(|| ApiError::not_found("webhook endpoint"))
}

fn page_size(first: Option<i32>, max: usize) -> Result<usize, ApiError> {
    match first {
        None => Ok(max.min(50)),
        Some(n) => match usize::try_from(n) {
            Err(_) => Err(ApiError::bad_input("first", "first must not be negative")),
            Ok(n) if n > max => Err(ApiError::bad_input("first", format!("first must be at most {max}"))),
            Ok(n) => Ok(n),
        },
    }
}

/// The webhook queries.
#[derive(Default, Debug)]
pub struct WebhookQuery;

#[Object]
impl WebhookQuery {
    /// Webhook endpoints in creation order: every one for admins, those of
    /// the integrator role for integrators.
    async fn webhook_endpoints(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Start after this cursor (an endpoint id).")] after: Option<String>,
        #[graphql(desc = "How many: 0 to maxPageSize, 50 when omitted.")] first: Option<i32>,
    ) -> async_graphql::Result<WebhookEndpointConnection> {
        let access = check(ctx, "webhookEndpoints")?;
        let st = state(ctx);
        let first = page_size(first, st.limits.max_page_size)?;
        let after = after
            .map(|a| {
                Uuid::parse_str(&a).map_err(|_| ApiError::bad_input("after", "after is not a cursor of this list"))
            })
            .transpose()?;
        let rows = tandem_projections::queries::webhook_endpoints(&st.pool, role_scope(access))
            .await
            .map_err(ApiError::internal)?;
        let mut rows: Vec<WebhookEndpointRow> =
            rows.into_iter().filter(|r| after.is_none_or(|a| r.endpoint_id > a)).collect();
        let has_next_page = rows.len() > first;
        rows.truncate(first);
        let edges: Vec<WebhookEndpointEdge> = rows
            .into_iter()
            .map(|row| WebhookEndpointEdge { cursor: row.endpoint_id.to_string(), node: WebhookEndpoint { row } })
            .collect();
        let page_info = PageInfo {
            has_next_page,
            has_previous_page: after.is_some(),
            start_cursor: edges.first().map(|e| e.cursor.clone()),
            end_cursor: edges.last().map(|e| e.cursor.clone()),
        };
        Ok(WebhookEndpointConnection { edges, page_info })
    }

    /// The delivery attempts of an endpoint, oldest first.
    async fn webhook_deliveries(
        &self,
        ctx: &Context<'_>,
        endpoint_id: ID,
        #[graphql(desc = "Only attempts with this outcome.")] status: Option<WebhookDeliveryStatus>,
        #[graphql(desc = "Start after this cursor (an attempt's cursor).")] after: Option<String>,
        #[graphql(desc = "How many: 0 to maxPageSize, 50 when omitted.")] first: Option<i32>,
    ) -> async_graphql::Result<WebhookDeliveryConnection> {
        let access = check(ctx, "webhookDeliveries")?;
        let st = state(ctx);
        let id: Uuid = parse_id("endpointId", &endpoint_id)?;
        let first = page_size(first, st.limits.max_page_size)?;
        let after_seq = match after {
            None => 0,
            Some(a) => a
                .parse::<i64>()
                .ok()
                .filter(|s| *s >= 0)
                .ok_or_else(|| ApiError::bad_input("after", "after is not a cursor of this list"))?,
        };
        endpoint_for(ctx, access, id).await?;
        let limit = i64::try_from(first).unwrap_or(i64::MAX).saturating_add(1);
        let mut rows =
            checkpoint::deliveries(&st.pool, id, status.map(WebhookDeliveryStatus::as_str), after_seq, limit)
                .await
                .map_err(ApiError::internal)?;
        let has_next_page = rows.len() > first;
        rows.truncate(first);
        let edges: Vec<WebhookDeliveryEdge> = rows
            .into_iter()
            .map(|r| WebhookDeliveryEdge {
                cursor: r.seq.to_string(),
                node: WebhookDelivery {
                    id: ID(r.seq.to_string()),
                    message_id: r.message_id,
                    event_id: ID(r.event_id.to_string()),
                    event_type: r.event_type,
                    cursor: r.cursor,
                    attempt: r.attempt,
                    status: WebhookDeliveryStatus::parse(&r.status),
                    http_status: r.http_status,
                    error: r.error,
                    duration_ms: r.duration_ms,
                    attempted_at: r.attempted_at,
                    next_attempt_at: r.next_attempt_at,
                },
            })
            .collect();
        let page_info = PageInfo {
            has_next_page,
            has_previous_page: after_seq > 0,
            start_cursor: edges.first().map(|e| e.cursor.clone()),
            end_cursor: edges.last().map(|e| e.cursor.clone()),
        };
        Ok(WebhookDeliveryConnection { edges, page_info })
    }
}
