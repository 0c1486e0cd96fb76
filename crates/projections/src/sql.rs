//! Small SQL helpers shared by the projections and queries.
//!
//! Rows travel between Rust and PostgreSQL as JSON: a batch of rows is one
//! `jsonb` parameter expanded by `jsonb_populate_recordset(NULL::<table>, $1)`
//! (so a batch of any size is one statement and the column list is the
//! table's own), and rows are read back with `to_jsonb(t)`. The Rust row
//! types derive serde with field names equal to the column names.

use serde::Serialize;
use sqlx::PgConnection;
use sqlx::types::Json;
use tandem_store::Cursor;

use crate::error::{ProjectionError, Result};

/// Points unqualified names at `schema` until the end of the transaction
/// (the schema goes in front of the current path, so everything else, e.g.
/// `projection_checkpoints`, still resolves).
pub(crate) async fn use_schema(conn: &mut PgConnection, schema: &str) -> Result<()> {
    sqlx::query("SELECT set_config('search_path', quote_ident($1) || ', ' || current_setting('search_path'), true)")
        .bind(schema)
        .execute(conn)
        .await?;
    Ok(())
}

/// Replaces rows by primary key: `delete` removes the rows whose keys are in
/// the JSON batch, `insert` inserts the batch. Both take the batch as `$1`.
/// Two statements rather than an upsert, so no column list has to be
/// repeated (and silently forgotten) in an `ON CONFLICT … SET`.
pub(crate) async fn replace<T: Serialize>(
    conn: &mut PgConnection,
    delete: &'static str,
    insert: &'static str,
    rows: &[T],
) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    sqlx::query(delete).bind(Json(rows)).execute(&mut *conn).await?;
    sqlx::query(insert).bind(Json(rows)).execute(conn).await?;
    Ok(())
}

/// Inserts a JSON batch with `insert` (which takes it as `$1`).
pub(crate) async fn insert<T: Serialize>(conn: &mut PgConnection, insert: &'static str, rows: &[T]) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    sqlx::query(insert).bind(Json(rows)).execute(conn).await?;
    Ok(())
}

/// Unwraps rows read as `to_jsonb(…)`.
pub(crate) fn unjson<T>(rows: Vec<Json<T>>) -> Vec<T> {
    rows.into_iter().map(|Json(r)| r).collect()
}

/// Parses an `xid8` selected as text.
pub(crate) fn parse_xid8(text: &str) -> Result<u64> {
    text.parse().map_err(|_| ProjectionError::InvalidCursor("transaction id is not an xid8"))
}

/// A cursor from `transaction_id::text` and `position` columns.
pub(crate) fn cursor(transaction_id: &str, position: i64) -> Result<Cursor> {
    Ok(Cursor::new(parse_xid8(transaction_id)?, position))
}

/// Double-quotes an identifier this crate built from a checked name.
pub(crate) fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Whether an error is PostgreSQL's `lock_not_available` (a `lock_timeout`
/// ran out).
pub(crate) fn is_lock_timeout(error: &ProjectionError) -> bool {
    match error {
        ProjectionError::Database(e) => {
            e.as_database_error().and_then(sqlx::error::DatabaseError::code).is_some_and(|c| c == "55P03")
        }
        _ => false,
    }
}
