//! The bridge between the transport and the schema: turns a request's
//! bearer token into the caller ([`Viewer`]) and gives every operation its
//! own DataLoaders.
//!
//! A request without a token runs anonymously and every operation then
//! answers `UNAUTHENTICATED` (the policy allows nothing to anonymous
//! callers); a request with a token that does not verify is refused before
//! anything runs.

use std::sync::Arc;

use async_graphql::Data;
use axum::http::HeaderMap;
use futures::future::BoxFuture;
use sqlx::PgPool;

use crate::auth::{Principal, Verifier};
use crate::schema::Viewer;
use crate::schema::loaders::Loaders;
use crate::transport::{ContextError, RequestContext, RequestData};

/// The [`RequestContext`] of the Tandem API.
pub struct ApiContext {
    verifier: Arc<Verifier>,
    pool: PgPool,
}

impl std::fmt::Debug for ApiContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiContext")
    }
}

impl ApiContext {
    /// A context verifying tokens with `verifier` and loading from `pool`.
    #[must_use]
    pub fn new(verifier: Arc<Verifier>, pool: PgPool) -> Self {
        Self { verifier, pool }
    }

    fn principal(&self, token: Option<&str>) -> Result<Option<Principal>, ContextError> {
        match token {
            None => Ok(None),
            Some(t) => self.verifier.verify(t).map(Some).map_err(|e| {
                tracing::debug!(error = %e, "token refused");
                ContextError::unauthenticated(format!("invalid token: {e}"))
            }),
        }
    }

    fn data(&self, principal: Option<Principal>) -> RequestData {
        let expires = principal.as_ref().map(Principal::expires_at);
        let mut data = Data::default();
        data.insert(Viewer(principal));
        data.insert(Loaders::new(&self.pool));
        let rd = RequestData::new(data);
        match expires {
            Some(e) => rd.expires_at(e),
            None => rd,
        }
    }
}

/// The token of an `Authorization: Bearer …` value.
fn bearer(value: &str) -> Result<&str, ContextError> {
    let (scheme, token) =
        value.trim().split_once(' ').ok_or_else(|| ContextError::unauthenticated("expected `Bearer <token>`"))?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(ContextError::unauthenticated("expected `Bearer <token>`"));
    }
    Ok(token.trim())
}

impl RequestContext for ApiContext {
    fn http<'a>(&'a self, headers: &'a HeaderMap) -> BoxFuture<'a, Result<RequestData, ContextError>> {
        Box::pin(async move {
            let token = match headers.get(axum::http::header::AUTHORIZATION) {
                None => None,
                Some(v) => Some(bearer(
                    v.to_str().map_err(|_| ContextError::unauthenticated("malformed Authorization header"))?,
                )?),
            };
            Ok(self.data(self.principal(token)?))
        })
    }

    fn websocket(&self, init_payload: Option<serde_json::Value>) -> BoxFuture<'_, Result<RequestData, ContextError>> {
        Box::pin(async move {
            let payload = init_payload.unwrap_or(serde_json::Value::Null);
            let field = |k: &str| payload.get(k).and_then(serde_json::Value::as_str);
            let token = match (field("authorization").or_else(|| field("Authorization")), field("token")) {
                (Some(h), _) => Some(bearer(h)?),
                (None, Some(t)) => Some(t),
                (None, None) => None,
            };
            Ok(self.data(self.principal(token)?))
        })
    }

    fn operation_data(&self, _connection: &Data) -> Data {
        let mut data = Data::default();
        data.insert(Loaders::new(&self.pool));
        data
    }
}

/// Shared handle type for [`ApiContext`].
pub type SharedContext = Arc<dyn RequestContext>;
