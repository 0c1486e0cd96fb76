//! The SCIM 2.0 server of `tandem-hris`, behind Tandem's authentication.
//!
//! Every SCIM request carries a bearer token that passes the same checks as
//! a GraphQL request ([`ApiContext::authenticate`]: signature and claims,
//! the deny list of revoked tokens, the per-subject rate limit) and holds
//! the `integrator` or `admin` role. The caller becomes the actor of the
//! events the request writes. Refusals are SCIM error messages; a 429
//! carries `Retry-After` and the RateLimit fields like GraphQL's.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tandem_hris::{HrisError, ScimState};
use tandem_store::Actor;

use crate::auth::Role;
use crate::context::ApiContext;
use crate::transport::codes;

/// The SCIM router, to nest at `/scim/v2`.
pub fn router(context: Arc<ApiContext>, state: ScimState) -> Router {
    tandem_hris::router(state).layer(middleware::from_fn_with_state(context, authenticate))
}

async fn authenticate(State(context): State<Arc<ApiContext>>, mut request: Request, next: Next) -> Response {
    let mut headers = Vec::new();
    let refusal = match context.authenticate(request.headers()).await {
        Ok(Some(p)) if p.is_admin() || p.has(Role::Integrator) => {
            request.extensions_mut().insert(Actor { subject: p.subject().to_owned(), role: p.actor_role().to_owned() });
            return next.run(request).await;
        }
        Ok(Some(_)) => HrisError::Forbidden("SCIM needs a token with the integrator or admin role".into()),
        Ok(None) => HrisError::Unauthorized("a bearer token is required".into()),
        Err(e) => {
            // `Retry-After` and the RateLimit fields of a 429, as on GraphQL.
            headers = e.headers;
            match e.code {
                codes::UNAUTHENTICATED => HrisError::Unauthorized(e.message),
                codes::FORBIDDEN => HrisError::Forbidden(e.message),
                codes::RATE_LIMITED => HrisError::RateLimited(e.message),
                _ => HrisError::Unavailable(e.message),
            }
        }
    };
    let mut response = refusal.into_response();
    response.headers_mut().extend(headers);
    response
}
