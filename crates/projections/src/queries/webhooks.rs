//! Reads of webhook endpoints.

use sqlx::PgPool;
use sqlx::types::Json;
use uuid::Uuid;

use crate::error::Result;
use crate::read_models::webhooks::WebhookEndpointRow;
use crate::sql::unjson;

/// One endpoint.
pub async fn webhook_endpoint(pool: &PgPool, id: Uuid) -> Result<Option<WebhookEndpointRow>> {
    let row: Option<Json<WebhookEndpointRow>> =
        sqlx::query_scalar("SELECT to_jsonb(w) FROM read.webhook_endpoints w WHERE endpoint_id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await?;
    Ok(row.map(|r| r.0))
}

/// Every endpoint (of one role, when given), in id (= creation) order.
/// Endpoints are few: an organisation has a handful of integrations.
pub async fn webhook_endpoints(pool: &PgPool, role: Option<&str>) -> Result<Vec<WebhookEndpointRow>> {
    let rows: Vec<Json<WebhookEndpointRow>> = sqlx::query_scalar(
        "SELECT to_jsonb(w) FROM read.webhook_endpoints w WHERE ($1::text IS NULL OR role = $1) ORDER BY endpoint_id",
    )
    .bind(role)
    .fetch_all(pool)
    .await?;
    Ok(unjson(rows))
}
