//! Folded stream states: [`State`] (a person, program, pair or webhook endpoint folded from
//! its events) and [`StateCache`], the bounded cache that keeps them between
//! commands so a load reads only the events appended since.

use std::collections::HashMap;
use std::sync::Arc;

use tandem_domain::event::DomainEvent;
use tandem_domain::pair::{self, Pair};
use tandem_domain::person::{self, Person};
use tandem_domain::program::{self, Program};
use tandem_domain::webhook::{self, Endpoint};
use uuid::Uuid;

/// The state of a stream, folded from its events.
#[derive(Clone, Debug)]
pub(crate) enum State {
    /// No events yet.
    Empty,
    Person(Arc<Person>),
    Program(Arc<Program>),
    Pair(Arc<Pair>),
    Webhook(Arc<Endpoint>),
}

impl State {
    /// Applies one stored event. A stream holds one kind of event; an event
    /// of another kind (never written by Tandem) is ignored, as a stream of
    /// the wrong kind reads as empty for the kind asked for.
    pub fn apply(self, event: &DomainEvent) -> Self {
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
            (Self::Empty, DomainEvent::Webhook(e)) => Self::Webhook(Arc::new(webhook::evolve(Endpoint::default(), e))),
            (Self::Webhook(s), DomainEvent::Webhook(e)) => {
                Self::Webhook(Arc::new(webhook::evolve(Arc::unwrap_or_clone(s), e)))
            }
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

    pub fn get(&self, id: Uuid) -> Option<(Arc<State>, i32)> {
        let mut inner = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        inner.tick += 1;
        let tick = inner.tick;
        inner.entries.get_mut(&id).map(|(state, version, used)| {
            *used = tick;
            (state.clone(), *version)
        })
    }

    pub fn put(&self, id: Uuid, state: Arc<State>, version: i32) {
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
pub(crate) type Cached = (Arc<State>, i32);
