//! One attempt of a command: a transaction, the advisory locks it holds and
//! the stream states it loaded under them.
//!
//! Locks are taken before a stream is read, so the read (a new statement
//! under READ COMMITTED) sees every command that held the lock before. The
//! stream a command writes is locked exclusively and first; streams it only
//! reads are locked shared. A deadlock between two commands is detected by
//! PostgreSQL, aborts one of them and counts as a retryable conflict.

use std::collections::HashMap;

use chrono::NaiveDate;
use sqlx::{PgConnection, Postgres, Transaction};
use tandem_domain::event::DomainEvent;
use tandem_domain::pair::{self, Pair, PairEvent};
use tandem_domain::person::{self, Person, PersonEvent};
use tandem_domain::program::{self, Program, ProgramEvent};
use tandem_domain::{PairId, PersonId, ProgramId};
use tandem_store::{EventStore, ExpectedVersion, RecordedEvent};
use uuid::Uuid;

use crate::error::CommandError;

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
fn lock_key(id: Uuid) -> i64 {
    let (hi, lo) = id.as_u64_pair();
    i64::from_ne_bytes((hi ^ lo).to_ne_bytes())
}

pub(crate) struct Unit<'a> {
    pub tx: Transaction<'static, Postgres>,
    store: &'a EventStore,
    locks: HashMap<Uuid, Lock>,
    persons: HashMap<PersonId, Loaded<Person>>,
}

impl<'a> Unit<'a> {
    pub fn new(tx: Transaction<'static, Postgres>, store: &'a EventStore) -> Self {
        Self { tx, store, locks: HashMap::new(), persons: HashMap::new() }
    }

    pub fn conn(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    /// Takes an advisory lock on a stream for the rest of the transaction.
    pub async fn lock(&mut self, id: Uuid, mode: Lock) -> Result<(), CommandError> {
        if self.locks.get(&id).is_some_and(|held| *held >= mode) {
            return Ok(());
        }
        let sql = match mode {
            Lock::Shared => "SELECT pg_advisory_xact_lock_shared($1)",
            Lock::Exclusive => "SELECT pg_advisory_xact_lock($1)",
        };
        sqlx::query(sql).bind(lock_key(id)).execute(&mut *self.tx).await?;
        self.locks.insert(id, mode);
        Ok(())
    }

    async fn events(&mut self, id: Uuid) -> Result<(Vec<DomainEvent>, i32), CommandError> {
        let recorded: Vec<RecordedEvent> = self.store.read_stream_in(&mut self.tx, id, 0).await?;
        let version = recorded.last().map_or(0, |e| e.stream_version);
        let events = recorded
            .into_iter()
            .map(|e| DomainEvent::decode(&e.event_type, e.schema_version, e.data))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((events, version))
    }

    /// Locks and loads a person stream (cached for the attempt).
    pub async fn person(&mut self, id: PersonId, mode: Lock) -> Result<Loaded<Person>, CommandError> {
        self.lock(id.as_uuid(), mode).await?;
        if let Some(p) = self.persons.get(&id) {
            return Ok(p.clone());
        }
        let (events, version) = self.events(id.as_uuid()).await?;
        let state = events
            .iter()
            .filter_map(|e| match e {
                DomainEvent::Person(p) => Some(p),
                _ => None,
            })
            .fold(Person::default(), |s, e: &PersonEvent| person::evolve(s, e));
        let loaded = Loaded { state, version };
        self.persons.insert(id, loaded.clone());
        Ok(loaded)
    }

    /// Locks and loads a program stream.
    pub async fn program(&mut self, id: ProgramId, mode: Lock) -> Result<Loaded<Program>, CommandError> {
        self.lock(id.as_uuid(), mode).await?;
        let (events, version) = self.events(id.as_uuid()).await?;
        let state = events
            .iter()
            .filter_map(|e| match e {
                DomainEvent::Program(p) => Some(p),
                _ => None,
            })
            .fold(Program::default(), |s, e: &ProgramEvent| program::evolve(s, e));
        Ok(Loaded { state, version })
    }

    /// Locks and loads a pair stream.
    pub async fn pair(&mut self, id: PairId, mode: Lock) -> Result<Loaded<Pair>, CommandError> {
        self.lock(id.as_uuid(), mode).await?;
        let (events, version) = self.events(id.as_uuid()).await?;
        let state = events
            .iter()
            .filter_map(|e| match e {
                DomainEvent::Pair(p) => Some(p),
                _ => None,
            })
            .fold(Pair::default(), |s, e: &PairEvent| pair::evolve(s, e));
        Ok(Loaded { state, version })
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
