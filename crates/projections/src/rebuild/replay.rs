//! The replay of a rebuild (step 3 of the [module docs](super)): one reader
//! task pages the log and decodes each page once; one applier task per
//! projection writes the page to that projection's scratch tables. Pages
//! are shared (`Arc`), so N projections cost one read and one decode; the
//! bounded channels let the reader fetch the next page while the appliers
//! write the current one, and keep memory to a few pages.

use std::sync::Arc;

use sqlx::PgPool;
use tandem_store::Cursor;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use super::{Phase, Reporter, State, Target};
use crate::error::{ProjectionError, Result};
use crate::projection::{Envelope, Projection};
use crate::source;
use crate::sql::use_schema;

/// A decoded page of the log, shared by every applier.
type Page = Arc<Vec<Envelope>>;

/// Pages the reader may be ahead of the slowest applier.
const PAGES_AHEAD: usize = 2;

/// Replays the whole readable log into every target's scratch tables;
/// returns where each one ended (all at the same cursor).
pub(super) async fn replay(
    pool: &PgPool,
    targets: &[Target],
    batch_size: i64,
    reporter: &mut Reporter<'_>,
    cancel: Option<&watch::Receiver<bool>>,
) -> Result<Vec<State>> {
    let names: Vec<String> = targets.iter().map(|t| t.projection.name().to_owned()).collect();
    let (progress_tx, mut progress_rx) = mpsc::unbounded_channel::<(usize, u64)>();
    // A JoinSet aborts its tasks when dropped, so an early return (an
    // error, or the caller dropping this future) leaves no task writing.
    let mut appliers = JoinSet::new();
    let mut senders = Vec::with_capacity(targets.len());
    for (i, t) in targets.iter().enumerate() {
        let (tx, rx) = mpsc::channel::<Page>(PAGES_AHEAD);
        senders.push(tx);
        let job = Applier {
            pool: pool.clone(),
            projection: Arc::clone(&t.projection),
            scratch: t.scratch.clone(),
            index: i,
            progress: progress_tx.clone(),
        };
        appliers.spawn(async move { (i, job.run(rx).await) });
    }
    drop(progress_tx);
    let mut reader = JoinSet::new();
    let store = source::store(pool.clone());
    let cancel = cancel.cloned();
    let all = names.join(", ");
    reader.spawn(read(store, batch_size, senders, cancel, all.clone()));

    // Progress until every applier has finished (each holds a sender).
    while let Some((i, done)) = progress_rx.recv().await {
        reporter.report(&names[i], Phase::Replaying, done);
    }

    let read_outcome = match reader.join_next().await {
        Some(Ok(outcome)) => outcome,
        Some(Err(source)) => Err(ProjectionError::RebuildTask { projection: all.clone(), source }),
        None => Ok(()),
    };
    let mut states = vec![State::START; targets.len()];
    let mut first_error = None;
    while let Some(joined) = appliers.join_next().await {
        match joined {
            Ok((i, Ok(state))) => states[i] = state,
            Ok((_, Err(error))) => {
                first_error.get_or_insert(error);
            }
            Err(source) => {
                first_error.get_or_insert(ProjectionError::RebuildTask { projection: all.clone(), source });
            }
        }
    }
    // A reader failure ends the appliers early but cleanly, so it comes
    // first; an applier failure ends the reader cleanly.
    read_outcome?;
    if let Some(error) = first_error {
        return Err(error);
    }
    Ok(states)
}

/// The reader task: pages the log from the start, decodes each page once
/// and hands it to every applier. Ends when the log has no more readable
/// events, when an applier has gone (its error is reported by the caller),
/// or on cancellation.
async fn read(
    store: tandem_store::EventStore,
    batch_size: i64,
    senders: Vec<mpsc::Sender<Page>>,
    cancel: Option<watch::Receiver<bool>>,
    names: String,
) -> Result<()> {
    let mut cursor = Cursor::START;
    loop {
        if cancel.as_ref().is_some_and(|c| *c.borrow()) {
            return Err(ProjectionError::Cancelled(names));
        }
        let events = store.read_all(cursor, batch_size).await?;
        let Some(last) = events.last() else { return Ok(()) };
        cursor = last.cursor();
        let page: Page = Arc::new(source::decode(events)?);
        for tx in &senders {
            if tx.send(Arc::clone(&page)).await.is_err() {
                return Ok(());
            }
        }
    }
}

/// One projection's applier task.
struct Applier {
    pool: PgPool,
    projection: Arc<dyn Projection>,
    scratch: String,
    index: usize,
    progress: mpsc::UnboundedSender<(usize, u64)>,
}

impl Applier {
    async fn run(self, mut pages: mpsc::Receiver<Page>) -> Result<State> {
        let mut s = State::START;
        while let Some(page) = pages.recv().await {
            let Some((last, _)) = page.last() else { continue };
            let mut tx = self.pool.begin().await?;
            // Losing the last pages to a crash only loses scratch work,
            // which a rebuild redoes from the start anyway.
            sqlx::query("SET LOCAL synchronous_commit = off").execute(&mut *tx).await?;
            use_schema(&mut tx, &self.scratch).await?;
            self.projection.apply(&mut tx, &page).await?;
            tx.commit().await?;
            s.cursor = last.cursor();
            s.last_recorded_at = Some(last.recorded_at);
            s.done += page.len() as u64;
            // The receiver only goes away with the rebuild itself.
            let _ = self.progress.send((self.index, s.done));
        }
        Ok(s)
    }
}
