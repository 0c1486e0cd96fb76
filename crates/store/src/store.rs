//! [`EventStore`]: a connection pool and an upcaster, with every read and
//! the convenience appends.
//!
//! # The gap-free global read
//!
//! [`EventStore::read_all`] returns events after a [`Cursor`] in
//! `(transaction_id, position)` order, but only those written by
//! transactions below the event writers' horizon. One database function,
//! `tandem_read_events` (see `migrations/0010_horizon_by_backend.sql`),
//! reads `pg_locks` first and then, in its next statement (so with a newer
//! snapshot), the rows, below the horizon computed from that statement's
//! own snapshot.
//!
//! The horizon is the oldest running xid of the snapshot that may still
//! write events: the snapshot's in-progress xids, minus those whose backend
//! was seen in the lock table holding the xid without the event writers'
//! lock; the snapshot's xmax when none is left. Every transaction that
//! writes events takes that shared advisory lock before it has an xid (the
//! insert trigger on `events` takes it, and refuses a transaction that
//! already has an xid without it).
//!
//! Why this can never skip an event: every transaction below the horizon is
//! either finished when the read's snapshot was taken (so the snapshot sees
//! its commit, or it rolled back), or was running without the writers' lock
//! after it had an xid, which means it can never write an event. A writer
//! holds its writers' lock from before its xid exists until after its xid
//! lock is released, and the lock table is read as one consistent view, so
//! a writer whose xid lock is seen is seen with its writers' lock (the two
//! are matched by the backend's pid: `pg_locks.virtualtransaction` changes
//! while a committing backend's locks are still listed). Transactions that
//! have not ended, and all future ones, have ids at or above the horizon. So
//! no row can ever appear below the horizon after a read, and the cursor,
//! which is always below it, never passes an event that is not yet visible.
//! Rolled-back rows are never seen.
//!
//! Because the lock table is read before the snapshot, the horizon is also
//! exact and monotonic: a read sees every event committed before it
//! started unless an older writer is still open, and a later read never has
//! a lower horizon than an earlier one. ([`EventStore::head`] is computed
//! the same way, so it never goes back either.)
//!
//! Ordering by `position` alone would skip: positions are taken at insert
//! time, so a transaction holding position 10 can commit after one holding
//! 11, and a reader already past 11 would never return to 10.
//!
//! The cost: an event becomes readable once every older EVENT-WRITING
//! transaction of the database has ended; a slow writer delays the feed (it
//! never loses events). Transactions that write no events, in this database
//! or any other of the cluster, no longer hold it back. Readers must not
//! read from inside their own write transaction: their own uncommitted
//! events are not final for anyone else.

use std::slice;
use std::sync::Arc;

use serde_json::json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::append::{append_in_tx, outcome};
use crate::cursor::{Cursor, parse_xid8};
use crate::error::{Result, StoreError};
use crate::event::{AppendOutcome, EventRow, Metadata, NewEvent, RecordedEvent, decode_rows};
use crate::idempotency::{
    IdempotencyKey, IdempotencyRecord, IdempotentAppend, RequestHash, idempotency_lookup_or_lock, idempotency_record,
};
use crate::upcast::{NoUpcast, Upcaster};
use crate::vault::Vault;
use crate::version::ExpectedVersion;

/// How often [`EventStore::append_idempotent`] runs again after
/// [`StoreError::IdempotencyRace`] (which READ COMMITTED never produces).
const IDEMPOTENT_ATTEMPTS: usize = 3;

/// Optional filters on the global read, for feeds that only want some
/// events. Each `None` means "no filter".
///
/// Filters apply to stored columns, before upcasting: an event type that was
/// renamed by an upcaster must be listed under its stored names too.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadFilter {
    /// Only events of these (stored) types.
    pub event_types: Option<Vec<String>>,
    /// Only events of this stream.
    pub stream_id: Option<Uuid>,
    /// Only events of streams of this type.
    pub stream_type: Option<String>,
}

/// The event store: appends, reads and tails over one PostgreSQL pool.
///
/// Cheap to clone (a pool handle and an `Arc`).
#[derive(Debug, Clone)]
pub struct EventStore {
    pool: PgPool,
    /// Applied to every event read, so readers only see today's shapes.
    upcaster: Arc<dyn Upcaster>,
    /// Seals personal fields on append and opens them on every read.
    vault: Vault,
}

impl EventStore {
    /// A store whose events need no upcasting.
    pub fn new(pool: PgPool) -> Self {
        Self::with_upcaster(pool, Arc::new(NoUpcast))
    }

    /// A store that upcasts every event it reads with `upcaster`.
    pub fn with_upcaster(pool: PgPool, upcaster: Arc<dyn Upcaster>) -> Self {
        EventStore { pool, upcaster, vault: Vault::installed() }
    }

    /// The same store sealing and opening personal data with `vault`
    /// instead of the process's (see [`crate::vault`]).
    #[must_use]
    pub fn with_vault(self, vault: Vault) -> Self {
        EventStore { vault, ..self }
    }

    /// The vault personal data is sealed with.
    pub fn vault(&self) -> &Vault {
        &self.vault
    }

    /// Opens the sealed fields of `rows` (on `conn`, so that a read inside
    /// a transaction sees its own keys), then decodes and upcasts them.
    async fn decode(&self, conn: &mut PgConnection, mut rows: Vec<EventRow>) -> Result<Vec<RecordedEvent>> {
        let mut parts: Vec<(Uuid, &str, i16, &mut serde_json::Value)> =
            rows.iter_mut().map(|r| (r.stream_id, r.event_type.as_str(), r.schema_version, &mut r.data)).collect();
        self.vault.unseal(conn, &mut parts).await?;
        decode_rows(rows, self.upcaster.as_ref())
    }

    /// Seals `events` for `stream_id` and appends them, in `conn`'s
    /// transaction; the outcome holds the events as given (in clear).
    async fn sealed_append(
        &self,
        conn: &mut PgConnection,
        stream_id: Uuid,
        stream_type: &str,
        expected: ExpectedVersion,
        events: &[NewEvent],
        metadata: &Metadata,
    ) -> Result<AppendOutcome> {
        let sealed = self.vault.seal(conn, stream_id, events, &[]).await?;
        let mut outcome = append_in_tx(conn, stream_id, stream_type, expected, &sealed, metadata).await?;
        for (stored, clear) in outcome.events.iter_mut().zip(events) {
            stored.data = clear.data.clone();
        }
        Ok(outcome)
    }

    /// The pool, for callers that run their own transactions around
    /// [`crate::append_in_tx`].
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The upcaster applied on reads.
    pub fn upcaster(&self) -> &Arc<dyn Upcaster> {
        &self.upcaster
    }

    /// Appends to one stream in a transaction of its own; see
    /// [`crate::append_in_tx`] for the semantics and errors.
    pub async fn append(
        &self,
        stream_id: Uuid,
        stream_type: &str,
        expected: ExpectedVersion,
        events: &[NewEvent],
        metadata: &Metadata,
    ) -> Result<AppendOutcome> {
        let mut tx = self.pool.begin().await?;
        let outcome = self.sealed_append(&mut tx, stream_id, stream_type, expected, events, metadata).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    /// Appends to one stream at most once per idempotency `key`.
    ///
    /// The first call appends and records the outcome; every later call with
    /// the same key and `request_hash` (also one racing the first) appends
    /// nothing and returns an equal outcome, re-read from the store. The same
    /// key with another `request_hash` (or another stream) is
    /// [`StoreError::IdempotencyKeyReused`]. `request_hash` is the caller's
    /// digest of the request (e.g. of the command as received), not of the
    /// events, whose ids differ between attempts.
    ///
    /// The metadata's `idempotency_key` is set to `key` (the digest) when
    /// empty.
    #[expect(
        clippy::too_many_arguments,
        reason = "the arguments of append plus the key pair; a builder would only rename them"
    )]
    pub async fn append_idempotent(
        &self,
        key: &IdempotencyKey,
        request_hash: &RequestHash,
        stream_id: Uuid,
        stream_type: &str,
        expected: ExpectedVersion,
        events: &[NewEvent],
        metadata: &Metadata,
    ) -> Result<IdempotentAppend> {
        let mut metadata = metadata.clone();
        metadata.idempotency_key.get_or_insert_with(|| key.as_str().to_owned());
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut tx = self.pool.begin().await?;
            if let Some(record) = idempotency_lookup_or_lock(&mut tx, key, request_hash).await? {
                // Nothing was written; ending the transaction releases the lock.
                tx.rollback().await?;
                if record.stream_id != Some(stream_id) {
                    return Err(StoreError::IdempotencyKeyReused { key: key.as_str().to_owned() });
                }
                return Ok(IdempotentAppend::Replayed(self.replay(&record).await?));
            }
            let outcome = self.sealed_append(&mut tx, stream_id, stream_type, expected, events, &metadata).await?;
            let result = json!({
                "stream_id": outcome.stream_id,
                "first_position": outcome.first_position,
                "last_position": outcome.last_position,
                // A string: JSON numbers are not safe for u64 in every client.
                "transaction_id": outcome.transaction_id.to_string(),
                "next_expected_version": outcome.next_expected_version,
                "commit_cursor": outcome.commit_cursor().to_string(),
            });
            match idempotency_record(&mut tx, key, request_hash, &result, slice::from_ref(&outcome)).await {
                Ok(()) => {}
                Err(StoreError::IdempotencyRace { .. }) if attempt < IDEMPOTENT_ATTEMPTS => {
                    tx.rollback().await?;
                    continue;
                }
                Err(error) => return Err(error),
            }
            tx.commit().await?;
            return Ok(IdempotentAppend::Appended(outcome));
        }
    }

    /// Rebuilds the outcome of the append recorded for an idempotency key
    /// from the events themselves (immutable, so equal to the first answer).
    async fn replay(&self, record: &IdempotencyRecord) -> Result<AppendOutcome> {
        let missing = || StoreError::Decode {
            position: record.last_position.unwrap_or_default(),
            reason: format!("idempotency key {} records no single-stream append", record.key),
        };
        let (Some(stream_id), Some(first), Some(last), Some(transaction_id)) =
            (record.stream_id, record.first_position, record.last_position, record.transaction_id)
        else {
            return Err(missing());
        };
        // Decoded without upcasting, like the outcome of the first append.
        let mut conn = self.pool.acquire().await?;
        let mut rows: Vec<EventRow> = sqlx::query_as(concat!(
            "SELECT ",
            event_columns!(),
            " FROM events \
              WHERE stream_id = $1 AND position BETWEEN $2 AND $3 \
                AND transaction_id = $4::text::xid8 \
              ORDER BY stream_version"
        ))
        .bind(stream_id)
        .bind(first)
        .bind(last)
        .bind(transaction_id.to_string())
        .fetch_all(&mut *conn)
        .await?;
        let mut parts: Vec<(Uuid, &str, i16, &mut serde_json::Value)> =
            rows.iter_mut().map(|r| (r.stream_id, r.event_type.as_str(), r.schema_version, &mut r.data)).collect();
        self.vault.unseal(&mut conn, &mut parts).await?;
        outcome(stream_id, decode_rows(rows, &NoUpcast)?).map_err(|_| missing())
    }

    /// Every event of a stream, in version order.
    pub async fn read_stream(&self, stream_id: Uuid) -> Result<Vec<RecordedEvent>> {
        self.read_stream_from(stream_id, 0).await
    }

    /// The events of a stream after `after_version`, in version order (e.g.
    /// to bring a cached aggregate up to date).
    pub async fn read_stream_from(&self, stream_id: Uuid, after_version: i32) -> Result<Vec<RecordedEvent>> {
        let mut conn = self.pool.acquire().await?;
        self.read_stream_in(&mut conn, stream_id, after_version).await
    }

    /// [`EventStore::read_stream_from`] on a given connection, e.g. inside
    /// the command's transaction.
    #[tracing::instrument(level = "debug", skip(self, conn), err(level = "debug"))]
    pub async fn read_stream_in(
        &self,
        conn: &mut PgConnection,
        stream_id: Uuid,
        after_version: i32,
    ) -> Result<Vec<RecordedEvent>> {
        let rows: Vec<EventRow> = sqlx::query_as(concat!(
            "SELECT ",
            event_columns!(),
            " FROM events WHERE stream_id = $1 AND stream_version > $2 ORDER BY stream_version"
        ))
        .bind(stream_id)
        .bind(after_version)
        .fetch_all(&mut *conn)
        .await?;
        self.decode(conn, rows).await
    }

    /// Takes transaction-scoped advisory locks (`lock_keys` in the order
    /// given, `exclusive[i]` for each), then reads the events of each of
    /// `stream_ids` after the matching version of `after_versions` (0: all),
    /// ordered by stream then version, with a snapshot taken after the
    /// locks were granted: one statement where a command would otherwise
    /// need two (see `migrations/0004_lock_and_read.sql`). Either list may
    /// be empty.
    ///
    /// Before its locks, the statement announces the transaction as an
    /// event writer (see [`crate::append`]): called first in a command's
    /// transaction, it lets the command write guard rows before its events.
    #[tracing::instrument(level = "debug", skip_all, fields(locks = lock_keys.len(), streams = stream_ids.len()), err(level = "debug"))]
    pub async fn lock_and_read_streams_after_in(
        &self,
        conn: &mut PgConnection,
        lock_keys: &[i64],
        exclusive: &[bool],
        stream_ids: &[Uuid],
        after_versions: &[i32],
    ) -> Result<Vec<RecordedEvent>> {
        if stream_ids.len() != after_versions.len() || lock_keys.len() != exclusive.len() {
            return Err(StoreError::InvalidAppend {
                reason: "one version per stream and one mode per lock".to_owned(),
            });
        }
        let rows: Vec<EventRow> = sqlx::query_as(concat!(
            "SELECT ",
            event_columns!(),
            " FROM tandem_lock_and_read($1::int8[], $2::bool[], $3::uuid[], $4::int4[])"
        ))
        .bind(lock_keys)
        .bind(exclusive)
        .bind(stream_ids)
        .bind(after_versions)
        .fetch_all(&mut *conn)
        .await?;
        self.decode(conn, rows).await
    }

    /// The stream's last version, `None` when it has no events.
    pub async fn stream_version(&self, stream_id: Uuid) -> Result<Option<i32>> {
        let mut conn = self.pool.acquire().await?;
        crate::append::current_version(&mut conn, stream_id).await
    }

    /// Up to `limit` events after `after`, in global order, gap-free (see the
    /// module docs). An empty result means "nothing more is readable yet".
    /// Continue from the last event's [`RecordedEvent::cursor`].
    pub async fn read_all(&self, after: Cursor, limit: i64) -> Result<Vec<RecordedEvent>> {
        self.read_all_filtered(after, limit, &ReadFilter::default()).await
    }

    /// [`EventStore::read_all`] restricted by `filter`.
    #[tracing::instrument(level = "trace", skip(self), err(level = "debug"))]
    pub async fn read_all_filtered(
        &self,
        after: Cursor,
        limit: i64,
        filter: &ReadFilter,
    ) -> Result<Vec<RecordedEvent>> {
        // One function: it reads the lock table, then the rows with a
        // snapshot taken after that, compared with a horizon computed from
        // that very snapshot (see the module docs).
        let mut conn = self.pool.acquire().await?;
        let rows: Vec<EventRow> = sqlx::query_as(concat!(
            "SELECT ",
            event_columns!(),
            " FROM tandem_read_events($1::text::xid8, $2, $3, $4::text[], $5::uuid, $6::text)"
        ))
        .bind(after.transaction_id.to_string())
        .bind(after.position)
        .bind(limit.max(0))
        .bind(filter.event_types.as_deref())
        .bind(filter.stream_id)
        .bind(filter.stream_type.as_deref())
        .fetch_all(&mut *conn)
        .await?;
        self.decode(&mut conn, rows).await
    }

    /// The cursor of the last readable event ([`Cursor::START`] when none):
    /// a reader at this cursor has caught up. For lag metrics and readiness.
    pub async fn head(&self) -> Result<Cursor> {
        let row: Option<(String, i64)> =
            sqlx::query_as("SELECT head_transaction_id::text, head_position FROM tandem_event_head()")
                .fetch_optional(&self.pool)
                .await?;
        let Some((transaction_id, position)) = row else {
            return Ok(Cursor::START);
        };
        let transaction_id = parse_xid8(&transaction_id).ok_or_else(|| StoreError::Decode {
            position,
            reason: format!("transaction id {transaction_id:?} is not an xid8"),
        })?;
        Ok(Cursor::new(transaction_id, position))
    }
}
