//! The Tandem GraphQL API.
//!
//! * `auth` — JWT validation, roles, and the visibility policy.
//! * `transport` — GraphQL over HTTP (POST/GET, content negotiation) and
//!   over websockets (`graphql-transport-ws` and legacy `graphql-ws`).
//! * `schema` — queries, mutations and subscriptions over the read models,
//!   the command service and the event store.
//! * `export` — `GET /export/events`: the pseudonymous event log for
//!   analysts, streamed as NDJSON, CSV or Parquet.
//! * `scim` — the SCIM 2.0 server of `tandem-hris` behind the same
//!   authentication, for integrators' identity providers.

pub mod app;
pub mod auth;
pub mod context;
pub mod error;
pub mod export;
pub mod metrics;
pub mod ops;
pub mod policy;
pub mod schema;
pub mod scim;
pub mod transport;
