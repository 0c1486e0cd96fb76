#![expect(clippy::unwrap_used, reason = "tests")]

mod support;

mod api;
mod auth;
mod events;
mod matrix;
mod mutations;
mod ops;
mod schema;
mod story;
mod transport;
