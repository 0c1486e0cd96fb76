//! Group commit: many concurrent commands decided and written in one
//! transaction, with one WAL flush, without giving up per-stream optimistic
//! concurrency, the cross-stream guards or idempotency.
//!
//! Commands queue for a few writer tasks. A writer takes every command
//! queued (up to a batch size) and runs them together in one transaction:
//!
//! 1. **Plan.** Each command runs its planning (idempotency lookup, locks,
//!    loads, guard reads, `decide`) as a future against an [`Io`] that only
//!    queues requests. When every future waits, the writer runs the queued
//!    requests in rounds: all advisory locks of the round in one statement
//!    (in key order, so two writers cannot deadlock within a round), all
//!    stream loads in one statement, then the rare one-off queries. Ten
//!    commands that each need four streams cost a handful of statements, not
//!    eighty.
//! 2. **Select.** All planning read the state before the batch. Commands are
//!    taken in arrival order; one that read or writes anything an earlier
//!    accepted command of the batch writes (a stream, a person's or
//!    program's guard rows, an external id, an idempotency key) is deferred
//!    to the next batch and planned again, so the accepted commands are
//!    equivalent to running one after the other. Refusals and idempotent
//!    replays only read, and answer at once. The first command of a batch is
//!    never deferred, so every batch makes progress.
//! 3. **Write.** One multi-row INSERT appends every accepted event at the
//!    versions planned (the unique `(stream_id, stream_version)` constraint
//!    still refuses an overlap with any other writer), then the guard rows
//!    and idempotency records, then one COMMIT.
//!
//! If anything fails at the database before the commit (a lost race with
//! another process, a deadlock, a guard violation) the transaction rolls
//! back and each command of the batch runs again alone, so an error reaches
//! only the command that caused it; the service's retry loop then re-decides
//! as before. A failed COMMIT is reported to every command of the batch and
//! nothing is run again, since whether it kept anything can be unknown. A
//! batch of one is the plain path: one command, one transaction.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use futures::FutureExt as _;
use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt as _};
use serde_json::Value;
use sqlx::{PgConnection, Postgres, Transaction};
use tandem_store::{EventStore, IdempotencyKey, Metadata, RequestHash, StoreError};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::cache::StateCache;
use crate::command::{Command, Committed};
use crate::decide::{Prepared, prepare};
use crate::error::CommandError;
use crate::io::{Appending, Io, Lock, Request, Unit, abandoned, write};
use crate::plan::{Key, Plan};

/// What a caller gets back from a writer.
pub(crate) enum Outcome {
    Committed(Committed),
    /// An earlier call with the same idempotency key: its stored result.
    Replay(Value),
}

/// One command waiting for a writer.
pub(crate) struct Job {
    pub command: Command,
    /// The scoped key and the request's digest, for a keyed request.
    pub idempotency: Option<(IdempotencyKey, RequestHash)>,
    pub metadata: Metadata,
    pub reply: oneshot::Sender<Result<Outcome, CommandError>>,
}

/// The queue and its writers.
pub(crate) struct Group {
    sender: mpsc::Sender<Job>,
}

impl Group {
    /// Starts `writers` writer tasks on the current runtime.
    pub fn start(store: EventStore, cache: Arc<StateCache>, writers: usize, max_batch: usize) -> Self {
        let (sender, receiver) = mpsc::channel(4096);
        let receiver = Arc::new(tokio::sync::Mutex::new(receiver));
        for _ in 0..writers.max(1) {
            tokio::spawn(writer(store.clone(), cache.clone(), receiver.clone(), max_batch.max(1)));
        }
        Self { sender }
    }

    /// Queues a job; `None` when the writers are gone (runtime shutting down).
    pub async fn submit(&self, job: Job) -> Option<()> {
        self.sender.send(job).await.ok()
    }
}

async fn writer(
    store: EventStore,
    cache: Arc<StateCache>,
    receiver: Arc<tokio::sync::Mutex<mpsc::Receiver<Job>>>,
    max_batch: usize,
) {
    let mut carry: Vec<Job> = Vec::new();
    loop {
        let mut batch = std::mem::take(&mut carry);
        // With deferred commands in hand, never wait for the queue: another
        // writer may be parked on it, waiting for commands whose callers wait
        // for these.
        let queue = if batch.is_empty() { Some(receiver.lock().await) } else { receiver.try_lock().ok() };
        if let Some(mut rx) = queue {
            if batch.is_empty() {
                match rx.recv().await {
                    Some(job) => batch.push(job),
                    None => return,
                }
            }
            while batch.len() < max_batch {
                match rx.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
        }
        // A caller that gave up (e.g. its request timed out) wants nothing written.
        batch.retain(|job| !job.reply.is_closed());
        if !batch.is_empty() {
            carry = run_batch(&store, &cache, batch).await;
        }
    }
}

/// Runs one batch; returns the commands deferred to the next.
fn run_batch<'a>(store: &'a EventStore, cache: &'a Arc<StateCache>, jobs: Vec<Job>) -> BoxFuture<'a, Vec<Job>> {
    Box::pin(async move {
        let batch_size = jobs.len();
        let mut tx = match store.pool().begin().await {
            Ok(tx) => tx,
            Err(e) => {
                let message = e.to_string();
                for job in jobs {
                    let _ = job.reply.send(Err(unavailable(&message)));
                }
                return Vec::new();
            }
        };
        let prepared = match plan_all(store, cache, &mut tx, &jobs).await {
            Ok(prepared) => prepared,
            Err(e) => return abandon(store, cache, tx, jobs, e).await,
        };

        // Select: refusals and replays answer now; the rest commit together
        // unless they depend on what an earlier command of the batch writes.
        let mut written: HashSet<Key> = HashSet::new();
        let mut accepted: Vec<(Job, Plan)> = Vec::new();
        let mut deferred: Vec<Job> = Vec::new();
        for (job, (result, touched)) in jobs.into_iter().zip(prepared) {
            match result {
                Err(e) => {
                    let _ = job.reply.send(Err(e));
                }
                Ok(Prepared::Replay(stored)) => {
                    let _ = job.reply.send(Ok(Outcome::Replay(stored)));
                }
                Ok(Prepared::Plan(plan)) => {
                    let writes = plan.keys(job.idempotency.as_ref().map(|(k, _)| k));
                    if touched.iter().chain(&writes).any(|k| written.contains(k)) {
                        deferred.push(job);
                    } else {
                        written.extend(writes);
                        accepted.push((job, plan));
                    }
                }
            }
        }
        if accepted.is_empty() {
            let _ = tx.rollback().await;
            return deferred;
        }
        tracing::debug!(batch_size, accepted = accepted.len(), deferred = deferred.len(), "group commit");
        let appending: Vec<(Appending<'_>, &Plan)> = accepted
            .iter()
            .map(|(job, plan)| {
                let job = Appending { idempotency: job.idempotency.as_ref(), metadata: &job.metadata };
                (job, plan)
            })
            .collect();
        let written = write(&mut tx, store.vault(), &appending).await;
        drop(appending);
        let written = match written {
            Ok(w) => w,
            Err(e) => {
                let jobs = accepted.into_iter().map(|(job, _)| job).collect();
                deferred.extend(abandon(store, cache, tx, jobs, e).await);
                return deferred;
            }
        };
        if let Err(e) = tx.commit().await {
            // Whether a failed COMMIT kept anything is unknown when the
            // connection broke on the way, so nothing is run again: each
            // command reports the failure (a retry with its idempotency key
            // is what makes a second attempt safe).
            let message = e.to_string();
            tracing::warn!(error = %message, commands = accepted.len(), "group commit failed");
            for (job, _) in accepted {
                let _ = job.reply.send(Err(unavailable(&format!("the commit failed: {message}"))));
            }
            return deferred;
        }
        for ((job, _), committed) in accepted.into_iter().zip(written) {
            let _ = job.reply.send(Ok(Outcome::Committed(committed)));
        }
        deferred
    })
}

/// A batch failed at the database: roll back, and run each command alone so
/// that the error reaches only its own command (a batch of one answers it).
async fn abandon(
    store: &EventStore,
    cache: &Arc<StateCache>,
    tx: Transaction<'static, Postgres>,
    jobs: Vec<Job>,
    error: CommandError,
) -> Vec<Job> {
    let _ = tx.rollback().await;
    if jobs.len() == 1 {
        if let Some(job) = jobs.into_iter().next() {
            let _ = job.reply.send(Err(error));
        }
        return Vec::new();
    }
    tracing::debug!(error = %error, commands = jobs.len(), "batch failed; running its commands alone");
    let mut deferred = Vec::new();
    for job in jobs {
        deferred.extend(run_batch(store, cache, vec![job]).await);
    }
    deferred
}

fn unavailable(message: &str) -> CommandError {
    CommandError::Store(StoreError::Database(sqlx::Error::Protocol(format!("database unavailable: {message}"))))
}

type PlanResult = (Result<Prepared, CommandError>, HashSet<Key>);

/// Raised by the waker of the plans.
struct Flag(AtomicBool);

impl futures::task::ArcWake for Flag {
    fn wake_by_ref(arc_self: &Arc<Self>) {
        arc_self.0.store(true, Ordering::SeqCst);
    }
}

/// Plans every job of the batch together (see the module docs); an error is
/// a failure of the transaction, which the batch cannot survive.
async fn plan_all(
    store: &EventStore,
    cache: &Arc<StateCache>,
    tx: &mut Transaction<'static, Postgres>,
    jobs: &[Job],
) -> Result<Vec<PlanResult>, CommandError> {
    let io = Io::default();
    let mut pending: FuturesUnordered<BoxFuture<'static, (usize, PlanResult)>> = FuturesUnordered::new();
    for (i, job) in jobs.iter().enumerate() {
        let io = io.clone();
        let cache = cache.clone();
        let command = job.command.clone();
        let keyed = job.idempotency.clone();
        pending.push(
            async move {
                let mut unit = Unit::new(io, cache);
                let result = prepare(&mut unit, command, keyed).await;
                (i, (result, unit.touched))
            }
            .boxed(),
        );
    }
    let mut results: Vec<Option<PlanResult>> = (0..jobs.len()).map(|_| None).collect();
    // Plans are polled by hand with a waker that only raises a flag: a wake
    // (an answer arrived, or the set yielded to be fair) means "poll again";
    // no wake means every plan waits for the database.
    let flag = Arc::new(Flag(AtomicBool::new(false)));
    let waker = futures::task::waker(flag.clone());
    loop {
        flag.0.store(false, Ordering::SeqCst);
        let polled = pending.poll_next_unpin(&mut Context::from_waker(&waker));
        match polled {
            Poll::Ready(Some((i, r))) => {
                results[i] = Some(r);
                continue;
            }
            Poll::Ready(None) => break,
            Poll::Pending if flag.0.load(Ordering::SeqCst) => continue,
            Poll::Pending => {}
        }
        let requests = io.take();
        if requests.is_empty() {
            // Cannot happen (plans only wait on the batch); never spin hot.
            tokio::task::yield_now().await;
            continue;
        }
        flush(store, tx, requests).await?;
    }
    Ok(results.into_iter().map(|r| r.unwrap_or_else(|| (Err(abandoned()), HashSet::new()))).collect())
}

/// Runs one round of requests: locks, then loads, then one-off queries.
async fn flush(store: &EventStore, conn: &mut PgConnection, requests: Vec<Request>) -> Result<(), CommandError> {
    let mut locks = Vec::new();
    let mut loads = Vec::new();
    let mut runs = Vec::new();
    for r in requests {
        match r {
            Request::Lock { keys, reply } => locks.push((keys, reply)),
            Request::Load { ids, reply } => loads.push((ids, reply)),
            Request::Run(f) => runs.push(f),
        }
    }
    // The strongest mode asked for each key, in key order.
    let mut wanted: std::collections::BTreeMap<i64, Lock> = std::collections::BTreeMap::new();
    for (keys, _) in &locks {
        for (k, mode) in keys {
            let e = wanted.entry(*k).or_insert(*mode);
            *e = (*e).max(*mode);
        }
    }
    let (keys, exclusive): (Vec<i64>, Vec<bool>) =
        wanted.into_iter().map(|(k, mode)| (k, mode == Lock::Exclusive)).unzip();
    // The lowest version asked for each stream (two commands of the batch
    // may know a stream at different versions).
    let mut after: std::collections::BTreeMap<Uuid, i32> = std::collections::BTreeMap::new();
    for (id, version) in loads.iter().flat_map(|(ids, _)| ids.iter().copied()) {
        let e = after.entry(id).or_insert(version);
        *e = (*e).min(version);
    }
    let (ids, versions): (Vec<Uuid>, Vec<i32>) = after.into_iter().unzip();
    // Locks are always taken before the reads of the same round, in one
    // statement (see `migrations/0004_lock_and_read.sql`).
    let events = if keys.is_empty() && ids.is_empty() {
        Vec::new()
    } else {
        store.lock_and_read_streams_after_in(conn, &keys, &exclusive, &ids, &versions).await?
    };
    for (_, reply) in locks {
        let _ = reply.send(Ok(()));
    }
    for (wanted, reply) in loads {
        let wanted: std::collections::HashMap<Uuid, i32> = wanted.into_iter().collect();
        let mine = events
            .iter()
            .filter(|e| wanted.get(&e.stream_id).is_some_and(|after| e.stream_version > *after))
            .cloned()
            .collect();
        let _ = reply.send(Ok(mine));
    }
    for f in runs {
        if !f(conn).await {
            return Err(abandoned());
        }
    }
    Ok(())
}
