#![expect(clippy::unwrap_used, reason = "tests")]

mod support;

mod analyst;
mod api;
mod auth;
mod browser;
mod cursors;
mod events;
mod idp;
mod limits;
mod matrix;
mod mutations;
mod ops;
mod privacy;
mod schema;
mod story;
mod transport;
mod upsert;
mod webhooks;
