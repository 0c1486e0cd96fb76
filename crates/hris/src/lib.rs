//! People sync for Tandem: the SCIM 2.0 server (RFC 7643, RFC 7644) that
//! identity providers such as Okta and Microsoft Entra ID provision people
//! through, the CSV full-file import, and the planning the bulk upsert of
//! the GraphQL API shares with it.
//!
//! Every write goes through the command service as person commands, so
//! each change is an event with its actor and the dated org history
//! (manager, department, title, level as of a date) stays right; reads come
//! from the people read model.
//!
//! Layout:
//! * [`routes`] — the axum router to nest at `/scim/v2`, and the HTTP rules
//!   (media type, ETags, `If-Match`/`If-None-Match`, status codes);
//! * [`users`] — the operations on `/Users`, planned as person commands;
//! * [`input`] — reading what clients send, leniently where real clients
//!   differ (string booleans, manager as a bare string);
//! * [`patch`] — PATCH operations applied to a User document;
//! * [`filter`] — filter expressions evaluated over User documents (the
//!   grammar is the `scim_v2` crate's);
//! * [`list`] — paging, sorting and attribute selection of queries;
//! * [`resource`] — the User document of a person;
//! * [`sync`] — a person record keyed by external id compared with the
//!   person as they are, planned as commands with content-derived
//!   idempotency keys (shared by the import and the bulk upsert);
//! * [`import`] — the CSV full-file import: streaming passes, manager
//!   references in dependency order, row errors, leavers;
//! * [`discovery`] — `ServiceProviderConfig`, `ResourceTypes`, `Schemas`;
//! * [`error`] — [`HrisError`] and the SCIM error message.

pub mod discovery;
pub mod error;
pub mod filter;
pub mod import;
pub mod input;
pub mod list;
pub mod patch;
pub mod resource;
pub mod routes;
pub mod sync;
pub mod users;

pub use error::{HrisError, SCIM_CONTENT_TYPE};
pub use routes::router;
pub use users::{DEFAULT_TERMINATION_ATTRIBUTE, ScimConfig, ScimState};
