//! The Tandem event store on PostgreSQL.
//!
//! An append-only log of JSON events grouped in streams. It does not
//! interpret payloads: the domain crate serialises its events into
//! [`NewEvent`]s and decodes [`RecordedEvent`]s, which an [`Upcaster`] (in
//! Tandem, [`DomainUpcaster`], the domain's one chain) has already brought
//! to today's schema.
//!
//! Layout, in import order (a module imports only those listed before it):
//! - [`version`]: [`ExpectedVersion`], the optimistic-concurrency check.
//! - [`upcast`]: the [`Upcaster`] trait, the boundary where reads are
//!   upcast, and [`DomainUpcaster`], the domain's chain behind it.
//! - [`error`]: [`StoreError`], the crate's one error type.
//! - [`cursor`]: [`Cursor`], a position in the global order
//!   `(transaction_id, position)`.
//! - [`event`]: the values that go in and come out ([`NewEvent`],
//!   [`Metadata`], [`RecordedEvent`], [`AppendOutcome`]).
//! - [`append`]: [`append_in_tx`] and [`append_batch_in_tx`], the ways
//!   events are written, inside a transaction the caller owns, with
//!   optimistic concurrency per stream.
//! - [`idempotency`]: the "same key, same first result" record, written in
//!   the same transaction as the events.
//! - [`store`]: [`EventStore`], a pool plus an upcaster, with convenience
//!   appends and every read: one stream, and the gap-free global read below
//!   the event writers' horizon.
//! - [`vault`]: [`Vault`], the sealing of personal fields under per-person
//!   data keys (crypto-shredding): [`EventStore`] seals on append and opens
//!   on every read.
//! - [`tail`]: [`Tail`], catch-up then live delivery of the global log, woken
//!   by `NOTIFY` and kept honest by polling; it adds [`EventStore::tail`].
//!
//! The schema lives in `migrations/` at the workspace root and is embedded
//! here as [`MIGRATOR`], so the binary can migrate without the files.

/// The columns every read selects, in the order `event::EventRow` expects.
/// A macro rather than a const so that `concat!` can build `&'static str`
/// queries from it. `xid8` has no sqlx decoder, so the transaction id
/// travels as text and is parsed into a `u64`. The alias must differ from
/// the column name: `ORDER BY transaction_id` would otherwise sort by the
/// text (where "10" < "9"); queries also qualify `events.transaction_id`.
macro_rules! event_columns {
    () => {
        "position, transaction_id::text AS transaction_id_text, stream_id, stream_type, \
         stream_version, event_id, event_type, schema_version, data, metadata, recorded_at"
    };
}

pub mod append;
pub mod cursor;
pub mod error;
pub mod event;
pub mod idempotency;
pub mod secret;
pub mod store;
pub mod tail;
pub mod upcast;
pub mod vault;
pub mod version;

pub use append::{StreamAppend, append_batch_in_tx, append_in_tx};
pub use cursor::Cursor;
pub use error::{Result, StoreError};
pub use event::{Actor, AppendOutcome, Metadata, NewEvent, RecordedEvent};
pub use idempotency::{
    IdempotencyKey, IdempotencyRecord, IdempotentAppend, RequestHash, idempotency_lookup_or_lock, idempotency_record,
};
pub use secret::ServerSecret;
pub use store::{EventStore, ReadFilter};
pub use tail::{Tail, TailOptions};
pub use upcast::{DomainUpcaster, UpcastError, Upcaster};
pub use vault::{MasterKey, Vault};
pub use version::ExpectedVersion;

/// The workspace's migrations, embedded at compile time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

/// The channel the `events` insert trigger notifies (once per transaction).
pub const NOTIFY_CHANNEL: &str = "tandem_events";

/// The SQLSTATE the append-only triggers raise on UPDATE, DELETE and TRUNCATE
/// of `events`, so callers can tell that refusal from any other error.
pub const APPEND_ONLY_VIOLATION: &str = "TA001";

/// The SQLSTATE of an append refused because its transaction wrote
/// something before announcing itself as an event writer (see
/// [`append`]): a bug of the calling code, not of the input.
pub const WRITER_LOCK_MISSING: &str = "TA002";

/// Constraint names the code maps to typed errors; they must match the
/// migration.
pub(crate) mod constraint {
    /// Unique (stream_id, stream_version): a lost optimistic-concurrency race.
    pub const STREAM_VERSION: &str = "events_stream_version_key";
    /// Unique event_id: the same event stored twice.
    pub const EVENT_ID: &str = "events_event_id_key";
    /// Primary key of idempotency_keys: two attempts recorded the same key.
    pub const IDEMPOTENCY_KEY: &str = "idempotency_keys_pkey";
}
