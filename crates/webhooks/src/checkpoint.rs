//! Each endpoint's place in the log (`webhook_checkpoints`) and the record
//! of every attempt (`webhook_deliveries`), written together.
//!
//! Successful attempts are recorded in small groups ([`advance`]): the
//! checkpoint then moves past all of them at once, in the transaction that
//! records them, so a crash before it costs redeliveries of that group only
//! (at least once), never a lost event. A failed attempt is recorded
//! alone, right away ([`record`]).
//!
//! Every write of a checkpoint names the cursor it was read at and changes
//! nothing when the row has moved since (another worker ran during a
//! partition, or a redelivery reset it): the caller then reloads, so an
//! attempt is never recorded against a position it was not made from.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tandem_store::Cursor;
use uuid::Uuid;

use crate::error::WebhookError;

/// Whether an endpoint's deliveries flow or wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Active,
    /// The last attempt of an event failed; nothing is delivered until a
    /// redelivery is asked for.
    Failing,
}

/// A row of `webhook_checkpoints`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub endpoint_id: Uuid,
    pub cursor: Cursor,
    pub status: Status,
    /// Failed attempts of the next event so far.
    pub attempts: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub redeliveries: i32,
}

type Row = (Uuid, String, i64, String, i32, Option<DateTime<Utc>>, i32);

fn from_row(r: Row) -> Result<Checkpoint, WebhookError> {
    let transaction_id = r.1.parse::<u64>().map_err(|_| WebhookError::Cursor(r.1.clone()))?;
    Ok(Checkpoint {
        endpoint_id: r.0,
        cursor: Cursor::new(transaction_id, r.2),
        status: if r.3 == "failing" { Status::Failing } else { Status::Active },
        attempts: r.4,
        next_attempt_at: r.5,
        redeliveries: r.6,
    })
}

/// The checkpoint of `endpoint`, created at `start` (the cursor of its
/// creation event) the first time.
pub async fn load_or_start(pool: &PgPool, endpoint: Uuid, start: Cursor) -> Result<Checkpoint, WebhookError> {
    sqlx::query(
        "INSERT INTO webhook_checkpoints (endpoint_id, transaction_id, position)
         VALUES ($1, $2::text::xid8, $3) ON CONFLICT (endpoint_id) DO NOTHING",
    )
    .bind(endpoint)
    .bind(start.transaction_id.to_string())
    .bind(start.position)
    .execute(pool)
    .await?;
    load(pool, endpoint).await?.ok_or(WebhookError::Cursor(format!("no checkpoint for {endpoint}")))
}

/// The checkpoint of `endpoint`, if the worker has started on it.
pub async fn load(pool: &PgPool, endpoint: Uuid) -> Result<Option<Checkpoint>, WebhookError> {
    let row: Option<Row> = sqlx::query_as(
        "SELECT endpoint_id, transaction_id::text, position, status, attempts, next_attempt_at, redeliveries
           FROM webhook_checkpoints WHERE endpoint_id = $1",
    )
    .bind(endpoint)
    .fetch_optional(pool)
    .await?;
    row.map(from_row).transpose()
}

/// Acts on the `redeliveries`-th redelivery: back to `after`, active, no
/// attempts pending.
pub async fn redeliver(pool: &PgPool, endpoint: Uuid, after: Cursor, redeliveries: i32) -> Result<(), WebhookError> {
    sqlx::query(
        "UPDATE webhook_checkpoints SET transaction_id = $2::text::xid8, position = $3, status = 'active',
             attempts = 0, next_attempt_at = NULL, redeliveries = $4, updated_at = now()
         WHERE endpoint_id = $1 AND redeliveries < $4",
    )
    .bind(endpoint)
    .bind(after.transaction_id.to_string())
    .bind(after.position)
    .bind(redeliveries)
    .execute(pool)
    .await?;
    Ok(())
}

/// Moves past events that are not for the endpoint (nothing to deliver);
/// false when the checkpoint moved since `from`.
pub async fn skip(
    pool: &PgPool,
    endpoint: Uuid,
    from: Cursor,
    to: Cursor,
    recorded_at: DateTime<Utc>,
) -> Result<bool, WebhookError> {
    let done = sqlx::query(
        "UPDATE webhook_checkpoints SET transaction_id = $4::text::xid8, position = $5, attempts = 0,
             next_attempt_at = NULL, last_recorded_at = $6, updated_at = now()
         WHERE endpoint_id = $1 AND transaction_id = $2::text::xid8 AND position = $3",
    )
    .bind(endpoint)
    .bind(from.transaction_id.to_string())
    .bind(from.position)
    .bind(to.transaction_id.to_string())
    .bind(to.position)
    .bind(recorded_at)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// One attempt to deliver the event right after the checkpoint.
#[derive(Clone, Debug)]
pub struct Attempt {
    pub message_id: String,
    pub event_id: Uuid,
    pub event_type: String,
    pub cursor: Cursor,
    pub recorded_at: DateTime<Utc>,
    /// 1 for the first.
    pub number: i32,
    pub http_status: Option<u16>,
    pub error: Option<String>,
    pub duration_ms: i32,
}

/// What the attempt leads to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Delivered: the checkpoint moves to the event.
    Done,
    /// Failed; try again at this time.
    RetryAt(DateTime<Utc>),
    /// Failed for good: the endpoint is failing.
    Fail,
}

impl Next {
    /// The `status` recorded for the attempt.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::Done => "delivered",
            Self::RetryAt(_) => "retrying",
            Self::Fail => "failed",
        }
    }
}

/// Records an attempt and moves the checkpoint accordingly, in one
/// transaction; false (and nothing written) when the checkpoint moved since
/// `from`.
pub async fn record(
    pool: &PgPool,
    endpoint: Uuid,
    from: Cursor,
    attempt: &Attempt,
    next: Next,
) -> Result<bool, WebhookError> {
    let mut tx = pool.begin().await?;
    let (status, cursor, attempts, next_at, recorded_at) = match next {
        Next::Done => ("active", attempt.cursor, 0, None, Some(attempt.recorded_at)),
        Next::RetryAt(at) => ("active", from, attempt.number, Some(at), None),
        Next::Fail => ("failing", from, attempt.number, None, None),
    };
    let moved = sqlx::query(
        "UPDATE webhook_checkpoints SET transaction_id = $4::text::xid8, position = $5, status = $6,
             attempts = $7, next_attempt_at = $8, last_recorded_at = coalesce($9, last_recorded_at),
             updated_at = now()
         WHERE endpoint_id = $1 AND transaction_id = $2::text::xid8 AND position = $3",
    )
    .bind(endpoint)
    .bind(from.transaction_id.to_string())
    .bind(from.position)
    .bind(cursor.transaction_id.to_string())
    .bind(cursor.position)
    .bind(status)
    .bind(attempts)
    .bind(next_at)
    .bind(recorded_at)
    .execute(&mut *tx)
    .await?;
    if moved.rows_affected() != 1 {
        tx.rollback().await?;
        return Ok(false);
    }
    insert(&mut tx, endpoint, attempt, next, next_at).await?;
    tx.commit().await?;
    Ok(true)
}

/// Records delivered attempts and moves the checkpoint from `from` to
/// `to` (the last event done, delivered or passed over), in one
/// transaction; false (and nothing written) when the checkpoint moved since
/// `from`.
pub async fn advance(
    pool: &PgPool,
    endpoint: Uuid,
    from: Cursor,
    to: Cursor,
    recorded_at: DateTime<Utc>,
    delivered: &[Attempt],
) -> Result<bool, WebhookError> {
    let mut tx = pool.begin().await?;
    let moved = sqlx::query(
        "UPDATE webhook_checkpoints SET transaction_id = $4::text::xid8, position = $5, status = 'active',
             attempts = 0, next_attempt_at = NULL, last_recorded_at = $6, updated_at = now()
         WHERE endpoint_id = $1 AND transaction_id = $2::text::xid8 AND position = $3",
    )
    .bind(endpoint)
    .bind(from.transaction_id.to_string())
    .bind(from.position)
    .bind(to.transaction_id.to_string())
    .bind(to.position)
    .bind(recorded_at)
    .execute(&mut *tx)
    .await?;
    if moved.rows_affected() != 1 {
        tx.rollback().await?;
        return Ok(false);
    }
    for a in delivered {
        insert(&mut tx, endpoint, a, Next::Done, None).await?;
    }
    tx.commit().await?;
    Ok(true)
}

async fn insert(
    tx: &mut sqlx::PgConnection,
    endpoint: Uuid,
    attempt: &Attempt,
    next: Next,
    next_at: Option<DateTime<Utc>>,
) -> Result<(), WebhookError> {
    sqlx::query(
        "INSERT INTO webhook_deliveries (endpoint_id, message_id, event_id, event_type, cursor, attempt, status,
             http_status, error, duration_ms, next_attempt_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(endpoint)
    .bind(&attempt.message_id)
    .bind(attempt.event_id)
    .bind(&attempt.event_type)
    .bind(attempt.cursor.to_string())
    .bind(attempt.number)
    .bind(next.label())
    .bind(attempt.http_status.map(i32::from))
    .bind(attempt.error.as_deref())
    .bind(attempt.duration_ms)
    .bind(next_at)
    .execute(tx)
    .await?;
    Ok(())
}

/// A row of `webhook_deliveries`.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct DeliveryRow {
    pub seq: i64,
    pub endpoint_id: Uuid,
    pub message_id: String,
    pub event_id: Uuid,
    pub event_type: String,
    pub cursor: String,
    pub attempt: i32,
    pub status: String,
    pub http_status: Option<i32>,
    pub error: Option<String>,
    pub duration_ms: i32,
    pub attempted_at: DateTime<Utc>,
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// The attempts of `endpoint` after `after_seq` (oldest first), of one
/// status when given; at most `limit`.
pub async fn deliveries(
    pool: &PgPool,
    endpoint: Uuid,
    status: Option<&str>,
    after_seq: i64,
    limit: i64,
) -> Result<Vec<DeliveryRow>, WebhookError> {
    Ok(sqlx::query_as(
        "SELECT seq, endpoint_id, message_id, event_id, event_type, cursor, attempt, status, http_status, error,
                duration_ms, attempted_at, next_attempt_at
           FROM webhook_deliveries
          WHERE endpoint_id = $1 AND seq > $2 AND ($3::text IS NULL OR status = $3)
          ORDER BY seq LIMIT $4",
    )
    .bind(endpoint)
    .bind(after_seq)
    .bind(status)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// The lag of an endpoint at `cursor`: the readable events of `types` (and
/// of `stream_type`, when given) after it, counted up to `cap`, and the
/// time the oldest of them was recorded.
pub async fn lag(
    pool: &PgPool,
    cursor: Cursor,
    types: &[String],
    stream_type: Option<&str>,
    cap: i64,
) -> Result<(i64, Option<DateTime<Utc>>), WebhookError> {
    Ok(sqlx::query_as(
        "SELECT count(*), min(recorded_at) FROM (
             SELECT recorded_at FROM events
              WHERE transaction_id < (SELECT tandem_event_horizon())
                AND (transaction_id, position) > ($1::text::xid8, $2)
                AND event_type = ANY($3) AND ($4::text IS NULL OR stream_type = $4)
              ORDER BY transaction_id, position LIMIT $5) waiting",
    )
    .bind(cursor.transaction_id.to_string())
    .bind(cursor.position)
    .bind(types)
    .bind(stream_type)
    .bind(cap)
    .fetch_one(pool)
    .await?)
}
