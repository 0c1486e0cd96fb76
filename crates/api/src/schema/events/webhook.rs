//! The feed's rendering for webhook deliveries: what an endpoint receives
//! as `data` is exactly what the `events` feed shows a caller of the
//! endpoint's role (analyst-safe for an analyst endpoint), serialized as a
//! GraphQL response holds it, with its feed cursor in `envelope.cursor`.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use serde_json::Value;
use tandem_domain::webhook::EndpointRole;
use tandem_store::{EventStore, RecordedEvent};
use tandem_webhooks::Renderer;

use super::render::{Audience, decode, erased_among, render};
use crate::auth::{Principal, Role};

/// The [`Renderer`] of the webhook worker, over the event feed's rendering.
#[derive(Clone, Debug)]
pub struct FeedRenderer {
    store: EventStore,
}

impl FeedRenderer {
    /// Renders events of `store` (read for erasures).
    #[must_use]
    pub fn new(store: EventStore) -> Self {
        Self { store }
    }
}

/// The caller an endpoint of `role` stands for: a machine subject with
/// that one role.
fn principal(role: EndpointRole) -> anyhow::Result<Principal> {
    let role = match role {
        EndpointRole::Admin => Role::Admin,
        EndpointRole::Integrator => Role::Integrator,
        EndpointRole::Analyst => Role::Analyst,
    };
    Ok(Principal::new("webhook-endpoint", [role], DateTime::<Utc>::MAX_UTC, None)?)
}

impl Renderer for FeedRenderer {
    fn render<'a>(
        &'a self,
        role: EndpointRole,
        events: &'a [RecordedEvent],
    ) -> BoxFuture<'a, anyhow::Result<Vec<Option<Value>>>> {
        Box::pin(async move {
            let audience = Audience { viewer: Some(principal(role)?), member_of: HashSet::new() };
            let mut decoded = Vec::with_capacity(events.len());
            for rec in events {
                decoded.push(decode(rec).map_err(|e| anyhow::anyhow!("{e:?}"))?);
            }
            let erased = erased_among(&self.store, decoded.iter().filter_map(|e| audience.personal_data_of(e)))
                .await
                .map_err(|e| anyhow::anyhow!("{e:?}"))?;
            let mut out = Vec::with_capacity(events.len());
            for (rec, event) in events.iter().zip(&decoded) {
                out.push(render(rec, event, &audience, &erased).map(serde_json::to_value).transpose()?);
            }
            Ok(out)
        })
    }
}
