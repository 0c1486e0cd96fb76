//! How far each projection trails the log, for metrics and readiness.
//!
//! - `events_behind`: readable events after the checkpoint (counted up to
//!   [`LAG_COUNT_CAP`], so a projection far behind costs a bounded scan).
//! - `seconds_behind`: how long the oldest event not yet applied has been
//!   waiting (`now() - recorded_at`), 0 when caught up. This is the
//!   staleness a reader sees; the gap between the recording times of the
//!   head and of the checkpoint would overstate it after a quiet period.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tandem_store::Cursor;

use crate::error::Result;
use crate::registry::read_models;
use crate::sql::cursor;

/// The most events [`lag`] counts per projection.
pub const LAG_COUNT_CAP: i64 = 1_000_000;

/// The lag of one projection.
#[derive(Clone, Debug, PartialEq)]
pub struct ProjectionLag {
    pub name: String,
    /// `None` when the projection never started (no checkpoint row).
    pub checkpoint: Option<Cursor>,
    /// The version of the projection that built the tables.
    pub version: Option<i32>,
    /// The last readable event of the log.
    pub head: Cursor,
    pub events_behind: i64,
    pub seconds_behind: f64,
    /// When the checkpoint last moved.
    pub updated_at: Option<DateTime<Utc>>,
}

impl ProjectionLag {
    /// Whether the projection has applied everything readable.
    #[must_use]
    pub fn caught_up(&self) -> bool {
        self.events_behind == 0 && self.checkpoint.is_some()
    }
}

type LagRow = (
    String,
    Option<String>,
    Option<i64>,
    Option<i32>,
    Option<DateTime<Utc>>,
    Option<String>,
    Option<i64>,
    i64,
    Option<f64>,
);

/// The lag of the named projections (Tandem's read models when `names` is
/// empty), in the order asked.
#[tracing::instrument(level = "debug", skip(pool))]
pub async fn lag(pool: &PgPool, names: &[&str]) -> Result<Vec<ProjectionLag>> {
    let names: Vec<String> = if names.is_empty() {
        read_models().iter().map(|p| p.name().to_owned()).collect()
    } else {
        names.iter().map(|n| (*n).to_owned()).collect()
    };
    // One statement, hence one snapshot and one horizon for every figure.
    let rows: Vec<LagRow> = sqlx::query_as(
        "WITH h AS (SELECT tandem_event_horizon() AS horizon),
              head AS (SELECT e.transaction_id, e.position FROM events e, h
                        WHERE e.transaction_id < h.horizon
                        ORDER BY e.transaction_id DESC, e.position DESC LIMIT 1)
         SELECT n.name, c.transaction_id::text, c.position, c.version, c.updated_at,
                (SELECT transaction_id::text FROM head), (SELECT position FROM head),
                (SELECT count(*) FROM (
                     SELECT 1 FROM events e, h
                      WHERE e.transaction_id < h.horizon
                        AND (e.transaction_id, e.position) > (COALESCE(c.transaction_id, '0'::xid8), COALESCE(c.position, 0))
                      LIMIT $2) x),
                (SELECT extract(epoch FROM now() - e.recorded_at)::float8 FROM events e, h
                  WHERE e.transaction_id < h.horizon
                    AND (e.transaction_id, e.position) > (COALESCE(c.transaction_id, '0'::xid8), COALESCE(c.position, 0))
                  ORDER BY e.transaction_id, e.position LIMIT 1)
           FROM unnest($1::text[]) WITH ORDINALITY AS n(name, ord)
           LEFT JOIN projection_checkpoints c USING (name)
          ORDER BY n.ord",
    )
    .bind(&names)
    .bind(LAG_COUNT_CAP)
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|(name, txid, position, version, updated_at, head_txid, head_position, behind, seconds)| {
            let checkpoint = match (txid, position) {
                (Some(t), Some(p)) => Some(cursor(&t, p)?),
                _ => None,
            };
            let head = match (head_txid, head_position) {
                (Some(t), Some(p)) => cursor(&t, p)?,
                _ => Cursor::START,
            };
            Ok(ProjectionLag {
                name,
                checkpoint,
                version,
                head,
                events_behind: behind,
                seconds_behind: seconds.unwrap_or(0.0).max(0.0),
                updated_at,
            })
        })
        .collect()
}

/// [`lag`] of all of Tandem's read models.
pub async fn lag_of_read_models(pool: &PgPool) -> Result<Vec<ProjectionLag>> {
    lag(pool, &[]).await
}
