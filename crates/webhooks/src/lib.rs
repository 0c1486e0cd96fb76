//! Signed webhooks by the Standard Webhooks specification (v1): the push
//! side of the event log.
//!
//! * [`secret`] — signing secrets: made at random, shown once as
//!   `whsec_…`, kept sealed in `webhook_secrets` (never in the log);
//! * [`sign`] — the `webhook-signature` header (one `v1,` signature per
//!   secret that signs, so both secrets sign for a day after a rotation);
//! * [`guard`] — the SSRF guard: `https` only, no internal addresses,
//!   checked at creation and again at every delivery, and the HTTP client's
//!   resolver that connects only to checked addresses;
//! * [`schedule`] — the retry schedule and the verdict on each answer;
//! * [`checkpoint`] — each endpoint's place in the log and every attempt,
//!   written in one transaction;
//! * [`metrics`] — deliveries by endpoint and outcome, and queue lag;
//! * [`worker`] — [`Webhooks`]: one leader across processes (the projection
//!   runners' advisory-lock class), one task per endpoint.
//!
//! Endpoints are streams of the log (see `tandem_domain::webhook`); their
//! current settings are the `webhooks` read model. What an endpoint
//! receives as `data` is the event as the feed renders it for the
//! endpoint's role, through a [`Renderer`] that the API provides.

pub mod checkpoint;
pub mod error;
pub mod guard;
pub mod metrics;
pub mod schedule;
pub mod secret;
pub mod sign;
pub mod worker;

pub use error::WebhookError;
pub use guard::{Refusal, Safety};
pub use metrics::WebhookMetrics;
pub use schedule::RetrySchedule;
pub use secret::{SecretBox, SigningSecret};
pub use worker::{DeliveryOptions, Renderer, Webhooks, WebhooksHandle};
