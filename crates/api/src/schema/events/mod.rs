//! The event log over GraphQL: the `events` feed, the event subscriptions,
//! and the process-wide [`EventHub`] that feeds them.
//!
//! Layout:
//! * [`types`] — the `Event` union (one object type per domain event type,
//!   each with an `envelope: EventEnvelope!` and its typed payload), the
//!   edge and the connection;
//! * `render` — what one caller sees of a stored event: the policy's field
//!   rules applied to the payload, and feedback withheld from those who may
//!   not read it;
//! * [`hub`] — [`EventHub`], one tail of the log per process, broadcast to
//!   every subscription;
//! * [`feed`] — [`FeedQuery`], the `events` query (a Relay connection over
//!   the gap-free log);
//! * `scope` and `stream` — which events a subscription is about, and the
//!   catch-up-then-live engine that delivers them without gap or duplicate;
//! * [`subscription`] — [`EventSubscription`]: `pairEvents`,
//!   `programEvents`, `myEvents`;
//! * [`webhook`] — [`webhook::FeedRenderer`], the same rendering for
//!   webhook deliveries.
//!
//! Cursors are the store's `(transaction_id, position)` cursors in their
//! string form; the feed and every subscription accept any cursor either
//! of them handed out.

pub mod feed;
pub mod hub;
mod render;
mod scope;
mod stream;
pub mod subscription;
pub mod types;
pub mod webhook;

pub use feed::{DEFAULT_PAGE, FeedQuery};
pub use hub::EventHub;
pub use subscription::{EventStream, EventSubscription};
pub use types::{Event, EventConnection, EventEdge, EventEnvelope, StreamType};
