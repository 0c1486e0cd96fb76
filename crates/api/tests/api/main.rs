#![expect(clippy::unwrap_used, reason = "tests")]

mod auth;
