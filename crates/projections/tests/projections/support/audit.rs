//! A test projection that logs every event it applies (no key, so a double
//! application shows as a duplicate row), with a gate to fail or hang a
//! batch on demand after its writes, to kill a runner mid-batch.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use futures::future::BoxFuture;
use sqlx::PgConnection;
use tandem_projections::{Envelope, Projection, ProjectionError};
use tokio::sync::Notify;

#[derive(Debug, Default)]
pub struct Gate {
    /// The next batch fails (after writing) and rolls back.
    pub fail_next: AtomicBool,
    /// Batches hang (after writing) until the task is killed.
    pub hang: AtomicBool,
    /// Told when a batch starts hanging.
    pub hanging: Notify,
    pub batches: AtomicUsize,
}

#[derive(Debug)]
pub struct Audit {
    /// Which runner applied a row.
    pub runner: &'static str,
    pub gate: Arc<Gate>,
    pub version: i32,
}

impl Audit {
    pub fn new(runner: &'static str) -> Self {
        Self { runner, gate: Arc::new(Gate::default()), version: 1 }
    }
}

impl Projection for Audit {
    fn name(&self) -> &str {
        "audit"
    }
    fn version(&self) -> i32 {
        self.version
    }
    fn tables(&self) -> &'static [&'static str] {
        &["audit_log"]
    }
    fn create_sql(&self) -> &'static str {
        "CREATE TABLE audit_log (position bigint NOT NULL, transaction_id text NOT NULL, \
         event_type text NOT NULL, stream_id uuid NOT NULL, runner text NOT NULL)"
    }
    fn apply<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        events: &'a [Envelope],
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        Box::pin(async move {
            let positions: Vec<i64> = events.iter().map(|(r, _)| r.position).collect();
            let txids: Vec<String> = events.iter().map(|(r, _)| r.transaction_id.to_string()).collect();
            let types: Vec<String> = events.iter().map(|(r, _)| r.event_type.clone()).collect();
            let streams: Vec<uuid::Uuid> = events.iter().map(|(r, _)| r.stream_id).collect();
            sqlx::query(
                "INSERT INTO audit_log SELECT p, t, e, s, $5 FROM unnest($1::bigint[], $2::text[], $3::text[], $4::uuid[]) AS x(p, t, e, s)",
            )
            .bind(&positions)
            .bind(&txids)
            .bind(&types)
            .bind(&streams)
            .bind(self.runner)
            .execute(&mut *conn)
            .await?;
            self.gate.batches.fetch_add(1, Ordering::SeqCst);
            if self.gate.hang.load(Ordering::SeqCst) {
                self.gate.hanging.notify_one();
                std::future::pending::<()>().await;
            }
            if self.gate.fail_next.swap(false, Ordering::SeqCst) {
                return Err(ProjectionError::Database(sqlx::Error::Protocol("injected failure".into())));
            }
            Ok(())
        })
    }
}
