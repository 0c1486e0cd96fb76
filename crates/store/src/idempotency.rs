//! "The same idempotency key again returns the first result and appends
//! nothing."
//!
//! A command handler runs, in ONE transaction:
//!
//! 1. [`idempotency_lookup_or_lock`]: takes a transaction-scoped advisory
//!    lock on the key, then looks the key up. A concurrent attempt with the
//!    same key blocks on that lock until the first attempt commits or rolls
//!    back, and its lookup (a new statement, hence a new snapshot under READ
//!    COMMITTED) then sees the first attempt's record. Found: return the
//!    stored first result and write nothing (a different request hash is
//!    [`StoreError::IdempotencyKeyReused`]).
//! 2. Not found: decide, write guard rows, [`crate::append_in_tx`].
//! 3. [`idempotency_record`]: store the result and where the events are.
//! 4. Commit. The key row exists if and only if the events do.
//!
//! The advisory lock makes the second attempt wait instead of failing; the
//! primary key of `idempotency_keys` stays the final arbiter. At REPEATABLE
//! READ or SERIALIZABLE the lookup's snapshot may predate the first commit,
//! so the record then hits the primary key and fails with
//! [`StoreError::IdempotencyRace`]: roll back and run the command again.
//!
//! Neither the client's key nor its request is stored: the key is an
//! [`IdempotencyKey`], a keyed digest of the subject (actor) who sent it
//! and the key they chose, so that a key only ever replays for the one who
//! sent it and two clients choosing the same key do not meet; the request
//! is a [`RequestHash`], a keyed digest of its canonical form. Both are
//! HMAC-SHA-256 under the [`ServerSecret`], so that nobody reading the table
//! can confirm a guess of what was sent, and the table's checks refuse
//! anything but such digests.
//!
//! What is stored: the caller's `result` JSON (exactly what it answered the
//! first time, including the commit cursor so a retry can wait for
//! read-your-writes too) and the events' location (stream, first and last
//! position, transaction), enough to re-read the very same events. Callers
//! put ids and positions there, never a name, an e-mail or a text.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use crate::constraint;
use crate::cursor::{Cursor, parse_xid8};
use crate::error::{Result, StoreError, unique_violation};
use crate::event::AppendOutcome;
use crate::secret::ServerSecret;

/// An idempotency key as stored: the keyed digest of who sent it and the
/// key they chose. Only made by [`IdempotencyKey::scoped`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// The key `key` as sent by `subject`.
    #[must_use]
    pub fn scoped(secret: &ServerSecret, subject: &str, key: &str) -> Self {
        Self(secret.mac_hex("idempotency-key", &[subject.as_bytes(), key.as_bytes()]))
    }

    /// The 64 hex digits stored.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A request as stored for its idempotency key: the keyed digest of its
/// canonical form. Only made by [`RequestHash::of`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHash(String);

impl RequestHash {
    /// The digest of `canonical`, the request in a form that is equal for
    /// equal requests (e.g. the operation's name and its input).
    #[must_use]
    pub fn of(secret: &ServerSecret, canonical: &[u8]) -> Self {
        Self(secret.mac_hex("idempotency-request", &[canonical]))
    }

    /// The 64 hex digits stored.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The advisory-lock class (first key of `pg_advisory_xact_lock(int, int)`)
/// of idempotency keys, so that their locks cannot collide with other
/// advisory locks of the application (which must use other classes).
/// The ASCII bytes "TIdm".
pub const IDEMPOTENCY_LOCK_CLASS: i32 = 0x5449_646d;

/// The first result of a command, as recorded for its idempotency key.
#[derive(Debug, Clone, PartialEq)]
pub struct IdempotencyRecord {
    pub key: String,
    pub request_hash: String,
    /// What the command answered the first time.
    pub result: Value,
    /// The stream appended to, when exactly one was.
    pub stream_id: Option<Uuid>,
    /// The first attempt's events lie within these positions, written by
    /// `transaction_id`; `None` when it appended nothing.
    pub first_position: Option<i64>,
    pub last_position: Option<i64>,
    pub transaction_id: Option<u64>,
    pub created_at: DateTime<Utc>,
}

impl IdempotencyRecord {
    /// The cursor the first attempt committed at, for read-your-writes.
    pub fn commit_cursor(&self) -> Option<Cursor> {
        Some(Cursor::new(self.transaction_id?, self.last_position?))
    }
}

/// The result of [`crate::EventStore::append_idempotent`].
#[derive(Debug, Clone, PartialEq)]
pub enum IdempotentAppend {
    /// This call appended the events.
    Appended(AppendOutcome),
    /// An earlier call with the same key did; this is its outcome, re-read.
    Replayed(AppendOutcome),
}

impl IdempotentAppend {
    /// The outcome, whoever appended.
    pub fn outcome(&self) -> &AppendOutcome {
        match self {
            IdempotentAppend::Appended(outcome) | IdempotentAppend::Replayed(outcome) => outcome,
        }
    }

    /// The outcome, whoever appended.
    pub fn into_outcome(self) -> AppendOutcome {
        match self {
            IdempotentAppend::Appended(outcome) | IdempotentAppend::Replayed(outcome) => outcome,
        }
    }

    /// True when an earlier call had already appended.
    pub fn was_replayed(&self) -> bool {
        matches!(self, IdempotentAppend::Replayed(_))
    }
}

#[derive(sqlx::FromRow)]
struct KeyRow {
    key: String,
    request_hash: String,
    result: Value,
    stream_id: Option<Uuid>,
    first_position: Option<i64>,
    last_position: Option<i64>,
    transaction_id_text: Option<String>,
    created_at: DateTime<Utc>,
}

/// Locks `key` for the rest of the transaction and returns its first result
/// if it was already used.
///
/// `None`: the key is new; this transaction now owns it until it ends, so
/// it should do the work and call [`idempotency_record`] before committing.
/// `Some`: the command already ran; answer with the record and write nothing.
///
/// Must run inside a transaction begun through sqlx (a transaction-scoped
/// lock on a bare connection would be released at once).
#[tracing::instrument(level = "debug", skip(conn, request_hash), err(level = "debug"))]
pub async fn idempotency_lookup_or_lock(
    conn: &mut PgConnection,
    key: &IdempotencyKey,
    request_hash: &RequestHash,
) -> Result<Option<IdempotencyRecord>> {
    let (key, request_hash) = (key.as_str(), request_hash.as_str());
    if !conn.is_in_transaction() {
        return Err(StoreError::NotInTransaction { operation: "idempotency_lookup_or_lock" });
    }
    // hashtext collisions only make two different keys wait for each other.
    sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
        .bind(IDEMPOTENCY_LOCK_CLASS)
        .bind(key)
        .execute(&mut *conn)
        .await?;
    // A separate statement, so that under READ COMMITTED its snapshot is
    // taken after the lock was granted and sees the previous holder's commit.
    let row: Option<KeyRow> = sqlx::query_as(
        "SELECT key, request_hash, result, stream_id, first_position, last_position, \
                transaction_id::text AS transaction_id_text, created_at \
         FROM idempotency_keys WHERE key = $1",
    )
    .bind(key)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    if row.request_hash != request_hash {
        return Err(StoreError::IdempotencyKeyReused { key: key.to_owned() });
    }
    let transaction_id = match row.transaction_id_text.as_deref() {
        None => None,
        Some(text) => Some(parse_xid8(text).ok_or_else(|| StoreError::Decode {
            position: row.last_position.unwrap_or_default(),
            reason: format!("idempotency key {key}: bad transaction id {text:?}"),
        })?),
    };
    Ok(Some(IdempotencyRecord {
        key: row.key,
        request_hash: row.request_hash,
        result: row.result,
        stream_id: row.stream_id,
        first_position: row.first_position,
        last_position: row.last_position,
        transaction_id,
        created_at: row.created_at,
    }))
}

/// Records the first result of the command run under `key`, in the same
/// transaction as its events. `outcomes` are the appends it made (none, one,
/// or one per stream).
///
/// Fails with [`StoreError::IdempotencyRace`] when another transaction
/// recorded the key first (see the module docs).
#[tracing::instrument(level = "debug", skip(conn, request_hash, result, outcomes), err(level = "debug"))]
pub async fn idempotency_record(
    conn: &mut PgConnection,
    key: &IdempotencyKey,
    request_hash: &RequestHash,
    result: &Value,
    outcomes: &[AppendOutcome],
) -> Result<()> {
    let (key, request_hash) = (key.as_str(), request_hash.as_str());
    let stream_id = match outcomes {
        [only] => Some(only.stream_id),
        _ => None,
    };
    let first_position = outcomes.iter().map(|o| o.first_position).min();
    let last_position = outcomes.iter().map(|o| o.last_position).max();
    let transaction_id = outcomes.first().map(|o| o.transaction_id.to_string());
    sqlx::query(
        "INSERT INTO idempotency_keys \
             (key, request_hash, result, stream_id, first_position, last_position, transaction_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7::text::xid8)",
    )
    .bind(key)
    .bind(request_hash)
    .bind(result)
    .bind(stream_id)
    .bind(first_position)
    .bind(last_position)
    .bind(transaction_id)
    .execute(conn)
    .await
    .map_err(|error| match unique_violation(&error) {
        Some(constraint::IDEMPOTENCY_KEY) => StoreError::IdempotencyRace { key: key.to_owned() },
        _ => StoreError::Database(error),
    })?;
    Ok(())
}
