//! The `webhooks` projection: every webhook endpoint with its current
//! settings, folded from the webhook streams.
//!
//! Table `webhook_endpoints`: one row per endpoint. It holds no secret,
//! only the ids of the secrets that sign (the sealed secrets are in the
//! `webhook_secrets` table, outside the read models). `created_after` is
//! the cursor of the creation event: delivery starts with the events after
//! it. `redeliveries` counts the redeliveries asked for and
//! `redeliver_after` is the cursor of the latest one; the delivery worker
//! acts on each new count.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use tandem_domain::DomainEvent;
use tandem_domain::webhook::WebhookEvent;
use uuid::Uuid;

use crate::error::Result;
use crate::projection::{Envelope, ReadModel};

/// The projection's name.
pub const NAME: &str = "webhooks";

/// Keeps `webhook_endpoints`.
#[derive(Clone, Copy, Debug, Default)]
pub struct WebhooksProjection;

const TABLES: &[&str] = &["webhook_endpoints"];

const CREATE: &str = r"
CREATE TABLE webhook_endpoints (
    endpoint_id           uuid PRIMARY KEY,
    url                   text NOT NULL,
    event_types           text[] NOT NULL,
    description           text NOT NULL,
    -- admin, integrator or analyst: what the endpoint sees of each event.
    role                  text NOT NULL,
    -- ACTIVE or DISABLED.
    status                text NOT NULL,
    secret_id             uuid NOT NULL,
    previous_secret_id    uuid,
    previous_valid_until  timestamptz,
    redeliveries          integer NOT NULL,
    redeliver_after       text,
    created_after         text NOT NULL,
    created_at            timestamptz NOT NULL,
    updated_at            timestamptz NOT NULL,
    version               integer NOT NULL
);
CREATE INDEX webhook_endpoints_role_idx ON webhook_endpoints (role, endpoint_id);
";

/// Whether an endpoint receives events.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EndpointStatus {
    Active,
    Disabled,
}

/// A row of `webhook_endpoints`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookEndpointRow {
    pub endpoint_id: Uuid,
    pub url: String,
    pub event_types: Vec<String>,
    pub description: String,
    pub role: String,
    pub status: EndpointStatus,
    pub secret_id: Uuid,
    pub previous_secret_id: Option<Uuid>,
    pub previous_valid_until: Option<DateTime<Utc>>,
    pub redeliveries: i32,
    pub redeliver_after: Option<String>,
    pub created_after: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i32,
}

impl ReadModel for WebhooksProjection {
    const NAME: &'static str = NAME;
    const VERSION: i32 = 1;
    const TABLES: &'static [&'static str] = TABLES;
    const CREATE_SQL: &'static str = CREATE;

    async fn apply(&self, conn: &mut PgConnection, events: &[Envelope]) -> Result<()> {
        // Endpoint changes are rare beside the rest of the log: one
        // statement per webhook event, none for the others.
        for (rec, event) in events {
            let DomainEvent::Webhook(e) = event else { continue };
            let id = e.endpoint_id().as_uuid();
            let (at, version) = (rec.recorded_at, rec.stream_version);
            match e {
                WebhookEvent::WebhookEndpointCreated(c) => {
                    sqlx::query(
                        "INSERT INTO webhook_endpoints (endpoint_id, url, event_types, description, role, status,
                             secret_id, redeliveries, created_after, created_at, updated_at, version)
                         VALUES ($1, $2, $3, $4, $5, 'ACTIVE', $6, 0, $7, $8, $8, $9)",
                    )
                    .bind(id)
                    .bind(c.url.as_str())
                    .bind(&c.event_types)
                    .bind(c.description.as_str())
                    .bind(c.role.as_str())
                    .bind(c.secret_id)
                    .bind(rec.cursor().to_string())
                    .bind(at)
                    .bind(version)
                    .execute(&mut *conn)
                    .await?;
                }
                WebhookEvent::WebhookEndpointUpdated(u) => {
                    sqlx::query(
                        "UPDATE webhook_endpoints SET url = coalesce($2, url),
                             event_types = coalesce($3, event_types), description = coalesce($4, description),
                             updated_at = $5, version = $6
                         WHERE endpoint_id = $1",
                    )
                    .bind(id)
                    .bind(u.changes.url.as_ref().map(|u| u.as_str().to_owned()))
                    .bind(u.changes.event_types.as_ref())
                    .bind(u.changes.description.as_ref().map(|d| d.as_str().to_owned()))
                    .bind(at)
                    .bind(version)
                    .execute(&mut *conn)
                    .await?;
                }
                WebhookEvent::WebhookSecretRotated(r) => {
                    sqlx::query(
                        "UPDATE webhook_endpoints SET secret_id = $2, previous_secret_id = $3,
                             previous_valid_until = $4, updated_at = $5, version = $6
                         WHERE endpoint_id = $1",
                    )
                    .bind(id)
                    .bind(r.secret_id)
                    .bind(r.previous_secret_id)
                    .bind(r.previous_valid_until)
                    .bind(at)
                    .bind(version)
                    .execute(&mut *conn)
                    .await?;
                }
                WebhookEvent::WebhookEndpointDisabled(_) => {
                    sqlx::query(
                        "UPDATE webhook_endpoints SET status = 'DISABLED', updated_at = $2, version = $3
                         WHERE endpoint_id = $1",
                    )
                    .bind(id)
                    .bind(at)
                    .bind(version)
                    .execute(&mut *conn)
                    .await?;
                }
                WebhookEvent::WebhookRedeliveryRequested(r) => {
                    sqlx::query(
                        "UPDATE webhook_endpoints SET redeliveries = redeliveries + 1, redeliver_after = $2,
                             updated_at = $3, version = $4
                         WHERE endpoint_id = $1",
                    )
                    .bind(id)
                    .bind(&r.after)
                    .bind(at)
                    .bind(version)
                    .execute(&mut *conn)
                    .await?;
                }
            }
        }
        Ok(())
    }
}
