//! Domain events and their stored shape.
//!
//! A stored event is `(stream_type, event_type, schema_version, data)`. This
//! module names the streams and gives every event type its current schema
//! version ([`EVENT_TYPES`]), in `types`. Its two other parts:
//!
//! * `upcast`: the one upcaster chain ([`upcast()`], [`upcast_stored`]),
//!   pure steps that turn an older stored payload into the next version
//!   until it reaches today's. Stored events
//!   are never rewritten; old shapes are upgraded each time they are read.
//! * `codec`: encoding to the stored shape and reading it back. Reading is
//!   lenient towards what a newer version of Tandem wrote (see
//!   [`StoredEvent::read`]): unknown fields are kept, and an event this build
//!   cannot interpret becomes [`DomainEvent::Unrecognised`] instead of an
//!   error, so a replay, a projection or the feed never stops on it.
//!
//! Inside: `types` (the event types and [`CodecError`]) imports nothing of
//! the module, `upcast` imports `types`, `codec` imports both.

mod codec;
mod types;
mod upcast;

pub use codec::{EncodedEvent, StoredEvent};
pub use types::{CodecError, DomainEvent, EVENT_TYPES, StreamType, Unrecognised, UnrecognisedEvent, event_type_info};
pub use upcast::{upcast, upcast_stored};
