//! Writing events: [`append_in_tx`].
//!
//! Appends run inside a transaction the caller owns, because a command
//! writes more than events in the same transaction: its own guard rows
//! (e.g. "a person is in one active pair per program") and the idempotency
//! record. A multi-stream command calls [`append_in_tx`] once per stream on
//! the same transaction.
//!
//! # The writers' lock
//!
//! Readers ignore transactions that run without the event writers' lock
//! (see [`crate::store`]), so a transaction must take it before it has an
//! xid. The insert trigger on `events` takes it on the first append; a
//! transaction that writes something else before its first append must
//! call `tandem_event_writer()` (or [`crate::EventStore::lock_and_read_streams_after_in`],
//! which does) first, or its append is refused (SQLSTATE `TA002`,
//! [`crate::WRITER_LOCK_MISSING`]).
//!
//! # Concurrency
//!
//! One `INSERT … SELECT` computes the stream's current version, checks it
//! against the expectation and inserts the events at the following versions.
//! Two writers that both saw version `n` both try to insert `n + 1`; the
//! unique constraint `(stream_id, stream_version)` makes the second wait for
//! the first and then fail with a unique violation, which becomes
//! [`StoreError::Conflict`]. The constraint is the final arbiter: there is no
//! `ON CONFLICT DO NOTHING`, which would silently drop events, and no global
//! lock, so appends to different streams run in parallel.
//!
//! [`ExpectedVersion::Any`] must not fail because of a racing writer. Its
//! appends first take a transaction-scoped advisory lock on the stream, so
//! `Any` writers queue behind each other instead of colliding (optimistic
//! retries alone starve under contention); the insert runs in a savepoint
//! and is retried should a writer that does not take the lock (an `Exact`
//! one) win a race anyway (a new statement sees its commit under READ
//! COMMITTED).

use serde_json::Value;
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use crate::constraint;
use crate::error::{Result, StoreError, unique_violation};
use crate::event::{AppendOutcome, EventRow, Metadata, NewEvent, decode_rows};
use crate::upcast::NoUpcast;
use crate::version::ExpectedVersion;

/// How often an [`ExpectedVersion::Any`] append retries after losing a race
/// before giving up with a conflict. Each retry means another writer
/// committed to the same stream in between, so this is only reached under a
/// pathological write storm on one stream (or at REPEATABLE READ, where a
/// retry cannot see the winner).
const ANY_ATTEMPTS: usize = 16;

/// The advisory-lock class (first key of `pg_advisory_xact_lock(int, int)`)
/// of per-stream locks taken by [`ExpectedVersion::Any`] appends. The ASCII
/// bytes "TStr"; other advisory locks of the application use other classes.
pub const STREAM_LOCK_CLASS: i32 = 0x5453_7472;

/// Appends `events` to one stream inside the caller's transaction.
///
/// `conn` should be a transaction (`&mut *tx`); the events are only visible
/// to others once the caller commits. On a bare connection the append is
/// still atomic (one statement). After an error other than
/// [`StoreError::InvalidAppend`] the transaction is aborted and must be
/// rolled back, except for a conflict of an [`ExpectedVersion::Any`] append,
/// whose failed attempts are rolled back to a savepoint.
///
/// Errors: [`StoreError::Conflict`] when the stream is not at `expected`
/// (or a racing writer took the version first), [`StoreError::DuplicateEventId`],
/// [`StoreError::InvalidAppend`] for an empty or malformed batch.
#[tracing::instrument(
    level = "debug",
    skip(conn, events, metadata),
    fields(events = events.len()),
    err(level = "debug")
)]
pub async fn append_in_tx(
    conn: &mut PgConnection,
    stream_id: Uuid,
    stream_type: &str,
    expected: ExpectedVersion,
    events: &[NewEvent],
    metadata: &Metadata,
) -> Result<AppendOutcome> {
    validate(stream_type, events)?;
    let batch = Batch::new(stream_id, stream_type, events, metadata)?;

    if expected != ExpectedVersion::Any {
        return batch.insert(conn, expected).await;
    }
    if conn.is_in_transaction() {
        // Held until the caller's transaction ends, which is when the
        // version this append takes becomes visible to the next `Any`
        // writer. (On a bare connection it would be released at once.)
        // The writers' lock is taken first, in the same statement and
        // outside the savepoints below: a lock taken inside a savepoint
        // that is rolled back would be released with it, while the xid the
        // attempt got stays.
        sqlx::query("SELECT tandem_event_writer(), pg_advisory_xact_lock($1, hashtext($2::text))")
            .bind(STREAM_LOCK_CLASS)
            .bind(stream_id)
            .execute(&mut *conn)
            .await?;
    }
    for _ in 0..ANY_ATTEMPTS {
        // A savepoint inside the caller's transaction (or a transaction of
        // its own on a bare connection), so that a lost race can be undone
        // without aborting everything else the caller wrote.
        let mut savepoint = conn.begin().await?;
        match batch.insert(&mut savepoint, expected).await {
            Err(StoreError::Conflict { .. }) => {
                savepoint.rollback().await?;
                tracing::debug!(%stream_id, "lost an append race, retrying");
            }
            Ok(outcome) => {
                savepoint.commit().await?;
                return Ok(outcome);
            }
            Err(other) => return Err(other),
        }
    }
    Err(StoreError::Conflict { stream_id, expected, actual: None })
}

fn validate(stream_type: &str, events: &[NewEvent]) -> Result<()> {
    let invalid = |reason: String| Err(StoreError::InvalidAppend { reason });
    if events.is_empty() {
        return invalid("no events to append".to_owned());
    }
    if stream_type.is_empty() {
        return invalid("empty stream type".to_owned());
    }
    if events.len() > i32::MAX as usize {
        return invalid("too many events".to_owned());
    }
    for event in events {
        if event.event_type.is_empty() {
            return invalid(format!("event {} has an empty type", event.event_id));
        }
        if event.schema_version < 1 {
            return invalid(format!(
                "event {} has schema version {} (must be >= 1)",
                event.event_id, event.schema_version
            ));
        }
    }
    Ok(())
}

/// The binds of one append, prepared once so that retries do not re-encode.
struct Batch<'a> {
    stream_id: Uuid,
    stream_type: &'a str,
    event_ids: Vec<Uuid>,
    event_types: Vec<&'a str>,
    schema_versions: Vec<i16>,
    data: Vec<&'a Value>,
    metadata: Value,
}

impl<'a> Batch<'a> {
    fn new(stream_id: Uuid, stream_type: &'a str, events: &'a [NewEvent], metadata: &Metadata) -> Result<Self> {
        let metadata =
            serde_json::to_value(metadata).map_err(|source| StoreError::Encode { what: "metadata", source })?;
        Ok(Batch {
            stream_id,
            stream_type,
            event_ids: events.iter().map(|e| e.event_id).collect(),
            event_types: events.iter().map(|e| e.event_type.as_str()).collect(),
            schema_versions: events.iter().map(|e| e.schema_version).collect(),
            data: events.iter().map(|e| &e.data).collect(),
            metadata,
        })
    }

    async fn insert(&self, conn: &mut PgConnection, expected: ExpectedVersion) -> Result<AppendOutcome> {
        // The current version comes from the (stream_id, stream_version)
        // index; the WHERE makes a version mismatch insert nothing, which we
        // tell apart from success by the number of rows returned. ORDER BY
        // makes the identity hand out positions in stream order, so that the
        // global read sees a stream's events of one append in version order.
        const SQL: &str = concat!(
            "WITH current_version AS ( \
                 SELECT coalesce(max(stream_version), 0) AS version \
                 FROM events WHERE stream_id = $1 \
             ), input AS ( \
                 SELECT * FROM unnest($4::uuid[], $5::text[], $6::int2[], $7::jsonb[]) \
                     WITH ORDINALITY AS i(event_id, event_type, schema_version, data, n) \
             ) \
             INSERT INTO events (stream_id, stream_type, stream_version, event_id, \
                                 event_type, schema_version, data, metadata) \
             SELECT $1, $2, c.version + i.n::int, i.event_id, i.event_type, \
                    i.schema_version, i.data, $8 \
             FROM current_version c CROSS JOIN input i \
             WHERE $3::int IS NULL OR c.version = $3 \
             ORDER BY i.n \
             RETURNING ",
            event_columns!()
        );
        let rows: Vec<EventRow> = sqlx::query_as(SQL)
            .bind(self.stream_id)
            .bind(self.stream_type)
            .bind(expected.required())
            .bind(&self.event_ids)
            .bind(&self.event_types)
            .bind(&self.schema_versions)
            .bind(&self.data)
            .bind(&self.metadata)
            .fetch_all(&mut *conn)
            .await
            .map_err(|error| self.map_insert_error(error, expected))?;

        if rows.is_empty() {
            // Only the version check can make the insert produce no rows.
            let actual = current_version(conn, self.stream_id).await?;
            return Err(StoreError::Conflict { stream_id: self.stream_id, expected, actual });
        }
        // What was stored is returned as stored (jsonb-normalised), so that a
        // later re-read (e.g. an idempotent replay) gives an equal outcome.
        let mut events = decode_rows(rows, &NoUpcast)?;
        events.sort_by_key(|event| event.stream_version);
        outcome(self.stream_id, events)
    }

    fn map_insert_error(&self, error: sqlx::Error, expected: ExpectedVersion) -> StoreError {
        match unique_violation(&error) {
            Some(constraint::STREAM_VERSION) => StoreError::Conflict {
                stream_id: self.stream_id,
                expected,
                // The racing writer stored at least the version after the
                // one we expected.
                actual: expected.required().map(|version| version.saturating_add(1)),
            },
            Some(constraint::EVENT_ID) => StoreError::DuplicateEventId,
            _ => StoreError::Database(error),
        }
    }
}

/// Builds the outcome from the stored events (in stream order, non-empty).
pub(crate) fn outcome(stream_id: Uuid, events: Vec<crate::RecordedEvent>) -> Result<AppendOutcome> {
    let (Some(first), Some(last)) = (events.first(), events.last()) else {
        return Err(StoreError::InvalidAppend { reason: "no events".to_owned() });
    };
    Ok(AppendOutcome {
        stream_id,
        first_position: events.iter().map(|e| e.position).min().unwrap_or(first.position),
        last_position: events.iter().map(|e| e.position).max().unwrap_or(last.position),
        transaction_id: last.transaction_id,
        next_expected_version: last.stream_version,
        events,
    })
}

/// The stream's last version, `None` when it has no events.
pub(crate) async fn current_version(conn: &mut PgConnection, stream_id: Uuid) -> Result<Option<i32>> {
    let version: Option<i32> = sqlx::query_scalar("SELECT max(stream_version) FROM events WHERE stream_id = $1")
        .bind(stream_id)
        .fetch_one(conn)
        .await?;
    Ok(version)
}

/// One stream's part of [`append_batch_in_tx`].
#[derive(Debug, Clone, Copy)]
pub struct StreamAppend<'a> {
    pub stream_id: Uuid,
    pub stream_type: &'a str,
    /// [`ExpectedVersion::NoStream`] or [`ExpectedVersion::Exact`]: a batch
    /// computes every version up front, so it cannot take `Any`.
    pub expected: ExpectedVersion,
    pub events: &'a [NewEvent],
    pub metadata: &'a Metadata,
}

/// Appends to many streams with one statement, inside the caller's
/// transaction: the write of a group commit, where many commands share one
/// transaction and one WAL flush.
///
/// Each stream's events take the versions after its `expected` version, in
/// the order given, and positions follow the order of `appends`. The caller
/// must know the expected versions are current (the command service loads
/// them under advisory locks); the unique constraint `(stream_id,
/// stream_version)` still refuses a batch that overlaps any other writer, as
/// [`StoreError::Conflict`] naming one of the streams. On any error the
/// transaction is aborted. A stream may appear only once.
///
/// Returns one outcome per entry of `appends`, in the same order.
#[tracing::instrument(level = "debug", skip_all, fields(streams = appends.len()), err(level = "debug"))]
pub async fn append_batch_in_tx(conn: &mut PgConnection, appends: &[StreamAppend<'_>]) -> Result<Vec<AppendOutcome>> {
    let mut seen = std::collections::HashSet::with_capacity(appends.len());
    let rows = appends.iter().map(|a| a.events.len()).sum::<usize>();
    let mut stream_ids = Vec::with_capacity(rows);
    let mut stream_types = Vec::with_capacity(rows);
    let mut versions = Vec::with_capacity(rows);
    let mut event_ids = Vec::with_capacity(rows);
    let mut event_types = Vec::with_capacity(rows);
    let mut schema_versions = Vec::with_capacity(rows);
    let mut data = Vec::with_capacity(rows);
    let mut metadata = Vec::with_capacity(rows);
    for a in appends {
        validate(a.stream_type, a.events)?;
        if !seen.insert(a.stream_id) {
            return Err(StoreError::InvalidAppend {
                reason: format!("stream {} appears twice in a batch", a.stream_id),
            });
        }
        let Some(base) = a.expected.required() else {
            return Err(StoreError::InvalidAppend { reason: "a batch append needs an exact expected version".into() });
        };
        let meta =
            serde_json::to_value(a.metadata).map_err(|source| StoreError::Encode { what: "metadata", source })?;
        for (i, e) in a.events.iter().enumerate() {
            stream_ids.push(a.stream_id);
            stream_types.push(a.stream_type);
            let offset =
                i32::try_from(i + 1).map_err(|_| StoreError::InvalidAppend { reason: "too many events".into() })?;
            versions.push(
                base.checked_add(offset)
                    .ok_or_else(|| StoreError::InvalidAppend { reason: format!("stream {} is full", a.stream_id) })?,
            );
            event_ids.push(e.event_id);
            event_types.push(e.event_type.as_str());
            schema_versions.push(e.schema_version);
            data.push(&e.data);
            metadata.push(meta.clone());
        }
    }
    const SQL: &str = concat!(
        "INSERT INTO events (stream_id, stream_type, stream_version, event_id, \
                             event_type, schema_version, data, metadata) \
         SELECT i.stream_id, i.stream_type, i.stream_version, i.event_id, i.event_type, \
                i.schema_version, i.data, i.metadata \
         FROM unnest($1::uuid[], $2::text[], $3::int4[], $4::uuid[], $5::text[], $6::int2[], $7::jsonb[], \
                     $8::jsonb[]) \
             WITH ORDINALITY AS i(stream_id, stream_type, stream_version, event_id, event_type, \
                                  schema_version, data, metadata, n) \
         ORDER BY i.n \
         RETURNING ",
        event_columns!()
    );
    let stored: Vec<EventRow> = sqlx::query_as(SQL)
        .bind(&stream_ids)
        .bind(&stream_types)
        .bind(&versions)
        .bind(&event_ids)
        .bind(&event_types)
        .bind(&schema_versions)
        .bind(&data)
        .bind(&metadata)
        .fetch_all(&mut *conn)
        .await
        .map_err(|error| match unique_violation(&error) {
            Some(constraint::STREAM_VERSION) => StoreError::Conflict {
                stream_id: appends.first().map_or(Uuid::nil(), |a| a.stream_id),
                expected: appends.first().map_or(ExpectedVersion::Any, |a| a.expected),
                actual: None,
            },
            Some(constraint::EVENT_ID) => StoreError::DuplicateEventId,
            _ => StoreError::Database(error),
        })?;
    let mut by_stream: std::collections::HashMap<Uuid, Vec<crate::RecordedEvent>> =
        std::collections::HashMap::with_capacity(appends.len());
    for e in decode_rows(stored, &NoUpcast)? {
        by_stream.entry(e.stream_id).or_default().push(e);
    }
    appends
        .iter()
        .map(|a| {
            let mut events = by_stream.remove(&a.stream_id).unwrap_or_default();
            events.sort_by_key(|e| e.stream_version);
            outcome(a.stream_id, events)
        })
        .collect()
}
