//! One command's view of its batch: the advisory locks it holds, the stream
//! states it loaded under them, and what it touched.
//!
//! Locks are taken before a stream is read, so the read (a new statement
//! under READ COMMITTED) sees every command that held the lock before. The
//! stream a command writes is locked exclusively and first; streams it only
//! reads are locked shared. A deadlock between two transactions is detected
//! by PostgreSQL, aborts one of them and counts as a retryable conflict.
//!
//! A unit does no I/O itself: it asks its batch's [`Io`], which runs the
//! requests of every command of the batch together (see `batch`).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use chrono::NaiveDate;
use tandem_domain::event::DomainEvent;
use tandem_domain::pair::{self, Pair};
use tandem_domain::person::{self, Person};
use tandem_domain::program::{self, Program};
use tandem_domain::{PairId, PersonId, ProgramId};
use tandem_store::{ExpectedVersion, RecordedEvent};
use uuid::Uuid;

use crate::batch::Io;
use crate::error::CommandError;
use crate::guards;

/// How deep a management chain is followed before giving up; deeper than any
/// real organisation, shallow enough to bound a corrupted chart.
const MAX_CHAIN: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Lock {
    Shared,
    Exclusive,
}

/// What a command read or wrote, for telling apart the commands of one
/// batch that may commit together (see `batch`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Key {
    Stream(Uuid),
    /// The guard rows of a person (their current pairs, in any program).
    Memberships(PersonId),
    /// The guard rows of a program (its current pairs).
    ProgramMemberships(ProgramId),
    ExternalId(String),
    Idempotency(String),
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

/// The state of a stream, folded from its events.
#[derive(Clone, Debug)]
pub(crate) enum State {
    /// No events yet.
    Empty,
    Person(Arc<Person>),
    Program(Arc<Program>),
    Pair(Arc<Pair>),
}

impl State {
    /// Applies one stored event. A stream holds one kind of event; an event
    /// of another kind (never written by Tandem) is ignored, as a stream of
    /// the wrong kind reads as empty for the kind asked for.
    fn apply(self, event: &DomainEvent) -> Self {
        match (self, event) {
            (Self::Empty, DomainEvent::Person(e)) => Self::Person(Arc::new(person::evolve(Person::default(), e))),
            (Self::Empty, DomainEvent::Program(e)) => Self::Program(Arc::new(program::evolve(Program::default(), e))),
            (Self::Empty, DomainEvent::Pair(e)) => Self::Pair(Arc::new(pair::evolve(Pair::default(), e))),
            (Self::Person(s), DomainEvent::Person(e)) => {
                Self::Person(Arc::new(person::evolve(Arc::unwrap_or_clone(s), e)))
            }
            (Self::Program(s), DomainEvent::Program(e)) => {
                Self::Program(Arc::new(program::evolve(Arc::unwrap_or_clone(s), e)))
            }
            (Self::Pair(s), DomainEvent::Pair(e)) => Self::Pair(Arc::new(pair::evolve(Arc::unwrap_or_clone(s), e))),
            (other, _) => other,
        }
    }
}

/// Folded stream states kept between commands, so that a command reads only
/// the events appended since (a program stream grows with every enrolment;
/// folding it whole for every session would cost milliseconds).
///
/// Only states read from the database are kept — committed events, which
/// never change — so an entry is never ahead of the log, and a load under
/// the stream's lock that reads the events after the entry's version is
/// exactly a full load. Appends by other processes are picked up the same
/// way. Bounded: past `capacity` entries the least recently used half goes.
#[derive(Debug)]
pub(crate) struct StateCache {
    capacity: usize,
    inner: std::sync::Mutex<CacheInner>,
}

#[derive(Debug, Default)]
struct CacheInner {
    tick: u64,
    entries: HashMap<Uuid, (Arc<State>, i32, u64)>,
}

impl StateCache {
    pub fn new(capacity: usize) -> Self {
        Self { capacity: capacity.max(1), inner: std::sync::Mutex::new(CacheInner::default()) }
    }

    fn get(&self, id: Uuid) -> Option<(Arc<State>, i32)> {
        let mut inner = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        inner.tick += 1;
        let tick = inner.tick;
        inner.entries.get_mut(&id).map(|(state, version, used)| {
            *used = tick;
            (state.clone(), *version)
        })
    }

    fn put(&self, id: Uuid, state: Arc<State>, version: i32) {
        let mut inner = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        inner.tick += 1;
        let tick = inner.tick;
        if inner.entries.get(&id).is_some_and(|(_, v, _)| *v >= version) {
            return;
        }
        inner.entries.insert(id, (state, version, tick));
        if inner.entries.len() > self.capacity {
            let mut ages: Vec<u64> = inner.entries.values().map(|(_, _, used)| *used).collect();
            let cut = ages.len() / 2;
            let (_, median, _) = ages.select_nth_unstable(cut);
            let median = *median;
            inner.entries.retain(|_, (_, _, used)| *used > median);
        }
    }
}

/// A folded state and the version it is at.
type Cached = (Arc<State>, i32);

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
        self.touched.insert(Key::ExternalId(external_id.to_owned()));
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
