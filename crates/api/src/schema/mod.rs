//! The GraphQL schema, built in a library: [`build`] assembles queries,
//! mutations and subscriptions from the parts below into [`TandemSchema`].
//!
//! * `types` — object types over the read models (people, programs, pairs,
//!   sessions, goals, feedback, statistics), Relay connections, and
//!   `types::enums`: the GraphQL enums of the domain's closed lists
//!   (Activity, Visibility, Purpose, GroupKind, FormedBy, LeaveReason,
//!   DissolveReason, PairStatus, SessionStatus, GoalStatus, ProgramStatus),
//!   defined once and used by the event feed too;
//! * `query` — the root queries;
//! * `analytics` — the analysts' metrics per cohort and retention curves;
//! * `mutation` — one mutation per command of the domain;
//! * `events` — the event feed's union of typed events, the process-wide
//!   [`EventHub`] and the subscriptions;
//! * `depth` — the depth limit, with introspection under a cap of its own.
//!
//! Per-request data: the caller's [`Viewer`] and a fresh set of DataLoaders
//! ([`loaders::Loaders`]) — never shared across requests, since loaders
//! cache what one caller may see.

pub mod analytics;
pub mod depth;
pub mod events;
pub mod loaders;
pub mod mutation;
pub mod query;
pub mod types;
pub mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use async_graphql::{Context, MergedObject, MergedSubscription, Schema};
use sqlx::PgPool;
use tandem_commands::CommandService;
use tandem_projections::Waiter;
use tandem_store::EventStore;

use crate::auth::Principal;
use crate::error::{ApiError, ErrorCodes};
pub use events::EventHub;

/// Limits of the schema; see the README for defaults.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Deepest selection set accepted.
    pub max_depth: usize,
    /// Largest complexity (fields, with list fields weighted by `first`).
    pub max_complexity: usize,
    /// Largest page a connection returns.
    pub max_page_size: usize,
    /// How long a mutation waits for the read models to reach its write.
    pub read_your_writes_timeout: Duration,
    /// Whether `__schema` and `__type` answer (off in a production that
    /// ships its schema to clients some other way).
    pub introspection: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_depth: 12,
            max_complexity: 5_000,
            max_page_size: 100,
            read_your_writes_timeout: Duration::from_secs(5),
            introspection: true,
        }
    }
}

/// What every resolver can reach: shared, long-lived services.
#[derive(Clone, Debug)]
pub struct ApiState {
    pub pool: PgPool,
    pub store: EventStore,
    pub commands: CommandService,
    pub waiter: Waiter,
    pub hub: EventHub,
    pub limits: Limits,
    /// Where operations and appended events are counted.
    pub metrics: crate::metrics::Metrics,
}

/// The caller of one request or websocket connection; `None` when anonymous.
#[derive(Clone, Debug, Default)]
pub struct Viewer(pub Option<Principal>);

/// The shared state.
pub(crate) fn state<'a>(ctx: &Context<'a>) -> &'a ApiState {
    // The schema is only ever built by `build`, which puts the state in.
    ctx.data_unchecked::<Arc<ApiState>>()
}

/// The caller, if authenticated.
pub(crate) fn viewer<'a>(ctx: &Context<'a>) -> Option<&'a Principal> {
    ctx.data_opt::<Viewer>().and_then(|v| v.0.as_ref())
}

/// Checks an operation against the policy matrix.
pub(crate) fn check(ctx: &Context<'_>, operation: &str) -> Result<crate::policy::Access, ApiError> {
    crate::policy::check(viewer(ctx), operation)
}

/// The root query.
#[derive(MergedObject, Default)]
pub struct Query(query::RootQuery, events::FeedQuery, analytics::AnalyticsQuery, webhooks::WebhookQuery);

/// The root mutation.
#[derive(MergedObject, Default)]
pub struct Mutation(
    mutation::PeopleMutation,
    mutation::ProgramMutation,
    mutation::PairMutation,
    mutation::SessionMutation,
    mutation::GoalMutation,
    mutation::FeedbackMutation,
    mutation::WebhookMutation,
);

/// The root subscription.
#[derive(MergedSubscription, Default)]
pub struct Subscription(events::EventSubscription);

/// The schema type.
pub type TandemSchema = Schema<Query, Mutation, Subscription>;

/// Builds the schema over `state`.
#[must_use]
pub fn build(state: ApiState) -> TandemSchema {
    let limits = state.limits.clone();
    let metrics = state.metrics.graphql_extension();
    let builder = Schema::build(Query::default(), Mutation::default(), Subscription::default())
        .data(Arc::new(state))
        // The data's depth limit leaves introspection out (`depth`); this
        // is the cap of a whole document.
        .limit_depth(depth::INTROSPECTION_MAX_DEPTH.max(limits.max_depth))
        .extension(depth::DepthLimit { max_depth: limits.max_depth, introspection: limits.introspection })
        .limit_complexity(limits.max_complexity)
        .limit_recursive_depth(64)
        .limit_directives(50)
        .extension(ErrorCodes)
        .extension(metrics);
    if limits.introspection { builder.finish() } else { builder.disable_introspection().finish() }
}

/// The schema without any state: for introspection and the SDL only;
/// executing an operation on it fails.
#[must_use]
pub fn stateless() -> TandemSchema {
    Schema::build(Query::default(), Mutation::default(), Subscription::default()).finish()
}

/// The SDL of the schema, as checked in at `schema/schema.graphql`.
#[must_use]
pub fn sdl() -> String {
    stateless().sdl_with_options(
        async_graphql::SDLExportOptions::new().sorted_fields().sorted_enum_items().include_specified_by(),
    )
}
