//! The transaction of a batch, as its commands see it: the advisory locks a
//! command holds ([`Lock`]), the streams it loaded under them ([`Loaded`]),
//! the guard rows it read, and at the end the write of everything accepted
//! ([`write`]: events, guard rows, idempotency records).
//!
//! Locks are taken before a stream is read, so the read (a new statement
//! under READ COMMITTED) sees every command that held the lock before. The
//! stream a command writes is locked exclusively and first; streams it only
//! reads are locked shared. A deadlock between two transactions is detected
//! by PostgreSQL, aborts one of them and counts as a retryable conflict.
//!
//! A [`Unit`] (one command's view of its batch) does no I/O itself: it asks
//! its batch's [`Io`], a queue of [`Request`]s that the batch's writer runs
//! for every command of the batch together (see `batch`).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use chrono::NaiveDate;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use tandem_domain::event::DomainEvent;
use tandem_domain::pair::Pair;
use tandem_domain::person::Person;
use tandem_domain::program::Program;
use tandem_domain::webhook::Endpoint;
use tandem_domain::{PairId, PersonId, ProgramId, WebhookEndpointId};
use tandem_store::{
    AppendOutcome, Cursor, ExpectedVersion, IdempotencyKey, Metadata, NewEvent, RecordedEvent, RequestHash, StoreError,
    StreamAppend, Vault, append_batch_in_tx, idempotency_record,
};
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::cache::{Cached, State, StateCache};
use crate::command::Committed;
use crate::error::CommandError;
use crate::guards;
use crate::plan::{Guard, Key, Plan};

/// How deep a management chain is followed before giving up; deeper than any
/// real organisation, shallow enough to bound a corrupted chart.
const MAX_CHAIN: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Lock {
    Shared,
    Exclusive,
}

/// A loaded stream: its state and the version an append must expect.
#[derive(Clone, Debug)]
pub(crate) struct Loaded<S> {
    pub state: S,
    pub version: i32,
}

impl<S> Loaded<S> {
    pub fn expected(&self) -> ExpectedVersion {
        if self.version == 0 { ExpectedVersion::NoStream } else { ExpectedVersion::Exact(self.version) }
    }
}

/// The advisory-lock key of a stream: its UUID folded to 64 bits. Two streams
/// sharing a key only wait for each other; correctness does not depend on it.
pub(crate) fn lock_key(id: Uuid) -> i64 {
    let (hi, lo) = id.as_u64_pair();
    i64::from_ne_bytes((hi ^ lo).to_ne_bytes())
}

/// The idempotency record's `result`: where the first call's events are.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StoredResult {
    pub position: String,
    pub streams: Vec<StoredRange>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StoredRange {
    pub stream_id: Uuid,
    pub from_version: i32,
    pub to_version: i32,
}

/// A request of one command's planning, run by the writer with those of the
/// other commands of the batch.
pub(crate) enum Request {
    Lock {
        keys: Vec<(i64, Lock)>,
        reply: oneshot::Sender<Result<(), CommandError>>,
    },
    /// Events of each stream after a version.
    Load {
        ids: Vec<(Uuid, i32)>,
        reply: oneshot::Sender<Result<Vec<RecordedEvent>, CommandError>>,
    },
    /// A one-off query; its result goes back through a channel it holds. It
    /// answers whether the transaction is still usable.
    Run(Query),
}

/// A one-off query of a plan (see [`Request::Run`]).
pub(crate) type Query = Box<dyn for<'c> FnOnce(&'c mut PgConnection) -> BoxFuture<'c, bool> + Send>;

/// The planning side of a batch: queues requests for the writer.
#[derive(Clone, Default)]
pub(crate) struct Io {
    queue: Arc<Mutex<Vec<Request>>>,
}

/// What a command hears when its batch was abandoned; it never reaches a
/// caller (the writer reruns the command alone).
pub(crate) fn abandoned() -> CommandError {
    CommandError::Store(StoreError::InvalidAppend { reason: "batch abandoned".to_owned() })
}

impl Io {
    fn push(&self, r: Request) {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner).push(r);
    }

    pub fn take(&self) -> Vec<Request> {
        std::mem::take(&mut *self.queue.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Takes transaction-scoped advisory locks.
    pub async fn lock(&self, keys: Vec<(i64, Lock)>) -> Result<(), CommandError> {
        let (reply, rx) = oneshot::channel();
        self.push(Request::Lock { keys, reply });
        rx.await.map_err(|_| abandoned())?
    }

    /// The events of each stream after the version given (upcast), by
    /// stream then version.
    pub async fn load(&self, ids: Vec<(Uuid, i32)>) -> Result<Vec<RecordedEvent>, CommandError> {
        let (reply, rx) = oneshot::channel();
        self.push(Request::Load { ids, reply });
        rx.await.map_err(|_| abandoned())?
    }

    /// Runs a query on the batch's transaction.
    pub async fn run<T, F>(&self, f: F) -> Result<T, CommandError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut PgConnection) -> BoxFuture<'c, Result<T, CommandError>> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        self.push(Request::Run(Box::new(move |conn| {
            Box::pin(async move {
                let result = f(conn).await;
                // Only a failed statement aborts the transaction; e.g. an
                // idempotency key reused for another request does not.
                let usable = !matches!(result, Err(CommandError::Store(StoreError::Database(_))));
                let _ = reply.send(result);
                usable
            })
        })));
        rx.await.map_err(|_| abandoned())?
    }
}

pub(crate) struct Unit {
    pub io: Io,
    cache: Arc<StateCache>,
    locks: HashMap<Uuid, Lock>,
    /// State and version of every stream loaded.
    streams: HashMap<Uuid, (Arc<State>, i32)>,
    /// Everything read (streams, guard rows, keys).
    pub touched: HashSet<Key>,
}

impl Unit {
    pub fn new(io: Io, cache: Arc<StateCache>) -> Self {
        Self { io, cache, locks: HashMap::new(), streams: HashMap::new(), touched: HashSet::new() }
    }

    /// Locks (in one round) and loads (in another) every stream of `ids`
    /// not yet held and loaded, so that the loads that follow cost nothing.
    pub async fn preload(&mut self, ids: &[(Uuid, Lock)]) -> Result<(), CommandError> {
        let wanted: Vec<(Uuid, Lock)> =
            ids.iter().copied().filter(|(id, mode)| self.locks.get(id).is_none_or(|held| held < mode)).collect();
        let mut missing: Vec<Uuid> =
            ids.iter().map(|(id, _)| *id).filter(|id| !self.streams.contains_key(id)).collect();
        missing.sort_unstable();
        missing.dedup();
        let known: Vec<(Uuid, Option<Cached>)> = missing.iter().map(|id| (*id, self.cache.get(*id))).collect();
        let after: Vec<(Uuid, i32)> =
            known.iter().map(|(id, cached)| (*id, cached.as_ref().map_or(0, |c| c.1))).collect();
        // Both requests go into the same round: the batch takes the locks
        // first and reads after them, in one statement.
        let lock_keys: Vec<(i64, Lock)> = wanted.iter().map(|(id, mode)| (lock_key(*id), *mode)).collect();
        let (locked, recorded) = futures::join!(
            async { if lock_keys.is_empty() { Ok(()) } else { self.io.lock(lock_keys).await } },
            async { if after.is_empty() { Ok(Vec::new()) } else { self.io.load(after).await } }
        );
        locked?;
        let recorded = recorded?;
        for (id, mode) in &wanted {
            let held = self.locks.entry(*id).or_insert(*mode);
            *held = (*held).max(*mode);
            self.touched.insert(Key::Stream(*id));
        }
        if missing.is_empty() {
            return Ok(());
        }
        let mut by_stream: HashMap<Uuid, Vec<RecordedEvent>> = HashMap::new();
        for e in recorded {
            by_stream.entry(e.stream_id).or_default().push(e);
        }
        for (id, cached) in known {
            let (mut state, mut version) = cached.unwrap_or_else(|| (Arc::new(State::Empty), 0));
            if let Some(new) = by_stream.remove(&id) {
                let mut folded = Arc::unwrap_or_clone(state);
                for e in new {
                    version = e.stream_version;
                    let event = DomainEvent::decode(&e.event_type, e.schema_version, e.data)?;
                    folded = folded.apply(&event);
                }
                state = Arc::new(folded);
                self.cache.put(id, state.clone(), version);
            }
            self.streams.insert(id, (state, version));
        }
        Ok(())
    }

    /// What the cache last knew of a pair: its program and members, which
    /// never change after formation. A hint for locking and loading them
    /// together with the pair; the pair's own load under its lock is what
    /// decides.
    pub fn cached_pair_streams(&self, id: PairId) -> Vec<Uuid> {
        match self.cache.get(id.as_uuid()).as_ref().map(|(s, _)| &**s) {
            Some(State::Pair(p)) => {
                p.program_id.map(|p| p.as_uuid()).into_iter().chain(p.members.iter().map(|m| m.as_uuid())).collect()
            }
            _ => Vec::new(),
        }
    }

    async fn state(&mut self, id: Uuid, mode: Lock) -> Result<(Arc<State>, i32), CommandError> {
        self.preload(&[(id, mode)]).await?;
        self.streams.get(&id).cloned().ok_or_else(|| CommandError::Store(missing_stream(id)))
    }

    /// Locks and loads a person stream.
    pub async fn person(&mut self, id: PersonId, mode: Lock) -> Result<Loaded<Arc<Person>>, CommandError> {
        let (state, version) = self.state(id.as_uuid(), mode).await?;
        let state = match &*state {
            State::Person(p) => p.clone(),
            _ => Arc::default(),
        };
        Ok(Loaded { state, version })
    }

    /// Locks and loads a program stream.
    pub async fn program(&mut self, id: ProgramId, mode: Lock) -> Result<Loaded<Arc<Program>>, CommandError> {
        let (state, version) = self.state(id.as_uuid(), mode).await?;
        let state = match &*state {
            State::Program(p) => p.clone(),
            _ => Arc::default(),
        };
        Ok(Loaded { state, version })
    }

    /// Locks and loads a pair stream.
    pub async fn pair(&mut self, id: PairId, mode: Lock) -> Result<Loaded<Arc<Pair>>, CommandError> {
        let (state, version) = self.state(id.as_uuid(), mode).await?;
        let state = match &*state {
            State::Pair(p) => p.clone(),
            _ => Arc::default(),
        };
        Ok(Loaded { state, version })
    }

    /// Locks and loads a webhook stream.
    pub async fn webhook(&mut self, id: WebhookEndpointId, mode: Lock) -> Result<Loaded<Arc<Endpoint>>, CommandError> {
        let (state, version) = self.state(id.as_uuid(), mode).await?;
        let state = match &*state {
            State::Webhook(p) => p.clone(),
            _ => Arc::default(),
        };
        Ok(Loaded { state, version })
    }

    /// Of `persons`, those in a current pair of `program` (guard rows).
    pub async fn paired_in_program(
        &mut self,
        program: ProgramId,
        persons: &[PersonId],
    ) -> Result<BTreeSet<PersonId>, CommandError> {
        self.touched.extend(persons.iter().map(|p| Key::Memberships(*p)));
        let persons = persons.to_vec();
        self.io.run(move |conn| Box::pin(async move { guards::paired_in_program(conn, program, &persons).await })).await
    }

    /// The current pairs of `person` in any program (guard rows).
    pub async fn pairs_of_person(&mut self, person: PersonId) -> Result<Vec<PairId>, CommandError> {
        self.touched.insert(Key::Memberships(person));
        self.io.run(move |conn| Box::pin(guards::pairs_of_person(conn, person))).await
    }

    /// The current pairs of `program` (guard rows).
    pub async fn pairs_of_program(&mut self, program: ProgramId) -> Result<Vec<PairId>, CommandError> {
        self.touched.insert(Key::ProgramMemberships(program));
        self.io.run(move |conn| Box::pin(guards::pairs_of_program(conn, program))).await
    }

    /// Whether another person holds `external_id`.
    pub async fn external_id_taken(&mut self, external_id: &str, person: PersonId) -> Result<bool, CommandError> {
        // Keyed as the uniqueness is: case-insensitively.
        self.touched.insert(Key::ExternalId(external_id.to_lowercase()));
        let external_id = external_id.to_owned();
        self.io
            .run(move |conn| Box::pin(async move { guards::external_id_taken(conn, &external_id, person).await }))
            .await
    }

    /// The management chain of `id` as of `date`, nearest manager first,
    /// locking every person on it shared (a concurrent manager change on the
    /// chain waits for this command).
    pub async fn chain(&mut self, id: PersonId, date: NaiveDate) -> Result<Vec<PersonId>, CommandError> {
        // Walking the managers while loading them yields the chain itself;
        // a repeat (a cycle from back-dated changes) ends it defensively.
        let mut chain = Vec::new();
        let mut current = id;
        for _ in 0..MAX_CHAIN {
            let p = self.person(current, Lock::Shared).await?;
            match p.state.org_on(date).and_then(|o| o.manager) {
                Some(m) if m != id && !chain.contains(&m) => {
                    chain.push(m);
                    current = m;
                }
                _ => break,
            }
        }
        Ok(chain)
    }
}

fn missing_stream(id: Uuid) -> tandem_store::StoreError {
    tandem_store::StoreError::InvalidAppend { reason: format!("stream {id} was not loaded") }
}

/// What the write needs of an accepted command besides its plan.
pub(crate) struct Appending<'a> {
    /// The scoped key and the request's digest, for a keyed request.
    pub idempotency: Option<&'a (IdempotencyKey, RequestHash)>,
    pub metadata: &'a Metadata,
}

/// Appends every accepted command's events in one statement, then writes
/// their guard rows and idempotency records. Returns each command's result.
pub(crate) async fn write(
    tx: &mut PgConnection,
    vault: &Vault,
    accepted: &[(Appending<'_>, &Plan)],
) -> Result<Vec<Committed>, CommandError> {
    let encoded: Vec<Vec<Vec<NewEvent>>> = accepted
        .iter()
        .map(|(_, plan)| {
            plan.writes
                .iter()
                .map(|w| {
                    w.events
                        .iter()
                        .map(|e| {
                            let enc = e.encode();
                            NewEvent {
                                event_id: Uuid::now_v7(),
                                event_type: enc.event_type.to_owned(),
                                schema_version: enc.schema_version,
                                data: enc.data,
                            }
                        })
                        .collect()
                })
                .collect()
        })
        .collect();
    // Personal fields are sealed (and data keys made or shredded) in this
    // transaction, before the append, with one read of the keys for the
    // whole batch.
    let parts: Vec<(Uuid, &[NewEvent], &[Uuid])> = accepted
        .iter()
        .zip(&encoded)
        .flat_map(|((_, plan), events)| {
            plan.writes.iter().zip(events).map(|(w, events)| (w.stream_id, events.as_slice(), w.members.as_slice()))
        })
        .collect();
    let mut sealed = vault.seal_batch(tx, &parts).await?.into_iter();
    let sealed: Vec<Vec<Vec<NewEvent>>> =
        accepted.iter().map(|(_, plan)| sealed.by_ref().take(plan.writes.len()).collect()).collect();
    let mut appends = Vec::new();
    for ((job, plan), events) in accepted.iter().zip(&sealed) {
        for (w, events) in plan.writes.iter().zip(events) {
            appends.push(StreamAppend {
                stream_id: w.stream_id,
                stream_type: w.stream_type.as_str(),
                expected: w.expected,
                events,
                metadata: job.metadata,
            });
        }
    }
    let mut outcomes =
        if appends.is_empty() { Vec::new() } else { append_batch_in_tx(tx, &appends).await? }.into_iter();
    let mut results = Vec::with_capacity(accepted.len());
    for ((job, plan), clear) in accepted.iter().zip(&encoded) {
        let mut mine: Vec<AppendOutcome> = outcomes.by_ref().take(plan.writes.len()).collect();
        // The outcome holds what was stored; the command's result (and the
        // states cached from it) hold the events as decided, in clear.
        for (outcome, clear) in mine.iter_mut().zip(clear) {
            for (stored, clear) in outcome.events.iter_mut().zip(clear) {
                stored.data = clear.data.clone();
            }
        }
        for g in &plan.guards {
            match g {
                Guard::Memberships { program, pair, members } => {
                    guards::insert_memberships(tx, *program, *pair, members).await?;
                }
                Guard::Release { pair, .. } => guards::delete_memberships(tx, *pair).await?,
                Guard::ExternalId { external_id, person } => {
                    guards::claim_external_id(tx, external_id, *person).await?;
                }
                Guard::ReleaseExternalId { person, .. } => guards::release_external_id(tx, *person).await?,
            }
        }
        let position = mine.iter().map(AppendOutcome::commit_cursor).max().unwrap_or(Cursor::START);
        if let Some((key, fingerprint)) = job.idempotency {
            let stored = StoredResult {
                position: position.to_string(),
                streams: mine
                    .iter()
                    .map(|o| StoredRange {
                        stream_id: o.stream_id,
                        from_version: o.events.first().map_or(0, |e| e.stream_version),
                        to_version: o.events.last().map_or(0, |e| e.stream_version),
                    })
                    .collect(),
            };
            let json = serde_json::to_value(&stored)
                .map_err(|e| CommandError::Store(StoreError::Encode { what: "command result", source: e }))?;
            idempotency_record(tx, key, fingerprint, &json, &mine).await?;
        }
        let mut events: Vec<RecordedEvent> = mine.into_iter().flat_map(|o| o.events).collect();
        events.sort_by_key(RecordedEvent::cursor);
        results.push(Committed { events, position, replayed: false });
    }
    Ok(results)
}
