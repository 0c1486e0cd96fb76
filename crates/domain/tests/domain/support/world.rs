//! An in-memory stand-in for the command service: it keeps the state of every
//! stream by folding events with `evolve`, gathers the context each command
//! needs the way the real service does, decides, appends, and runs the
//! service's clean-up (dissolving the current pairs of a person who left or of
//! a program that closed).

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use tandem_domain::event::DomainEvent;
use tandem_domain::pair::{self, Pair, PairCommand, PairContext, PersonFacts};
use tandem_domain::person::{self, ManagerFacts, Person, PersonCommand, PersonContext, PersonEvent};
use tandem_domain::program::{self, ParticipantFacts, Program, ProgramCommand, ProgramContext, ProgramEvent};
use tandem_domain::values::DissolveReason;
use tandem_domain::{DomainError, PairId, PersonId, ProgramId};

use super::lt;

/// A command for any stream.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    Person(PersonCommand),
    Program(ProgramCommand),
    Pair(PairCommand),
}

/// Every stream's state and the whole event log, in append order.
#[derive(Clone, Debug, PartialEq)]
pub struct World {
    pub persons: BTreeMap<PersonId, Person>,
    pub programs: BTreeMap<ProgramId, Program>,
    pub pairs: BTreeMap<PairId, Pair>,
    pub log: Vec<DomainEvent>,
    /// Whether the service dissolves pairs when a member leaves or the
    /// program closes. Without it, the pair rules alone must keep a closed
    /// program's pairs and departed members still.
    pub cleanup: bool,
}

impl Default for World {
    fn default() -> Self {
        Self::new(true)
    }
}

impl World {
    /// An empty world, with or without the service's clean-up.
    pub fn new(cleanup: bool) -> Self {
        Self { persons: BTreeMap::new(), programs: BTreeMap::new(), pairs: BTreeMap::new(), log: Vec::new(), cleanup }
    }

    /// The same world rebuilt from its log alone.
    pub fn replayed(&self) -> Self {
        let mut world = Self::new(self.cleanup);
        for e in &self.log {
            world.apply(e.clone());
        }
        world
    }

    /// A registered person.
    pub fn person(&self, id: PersonId) -> Option<&Person> {
        self.persons.get(&id).filter(|p| p.is_registered())
    }

    /// Who managed `id` on `date`.
    pub fn manager_on(&self, id: PersonId, date: NaiveDate) -> Option<PersonId> {
        self.person(id)?.org_on(date)?.manager
    }

    /// The management chain of `id` on `date`, nearest manager first.
    pub fn chain_on(&self, id: PersonId, date: NaiveDate) -> Vec<PersonId> {
        person::management_chain(id, |p| self.manager_on(p, date))
    }

    /// The current (active or paused) pairs of a program.
    pub fn current_pairs_of(&self, program: ProgramId) -> impl Iterator<Item = &Pair> {
        self.pairs.values().filter(move |x| x.is_current() && x.program_id == Some(program))
    }

    /// Whether `person` is in a current pair of `program`.
    pub fn in_current_pair(&self, program: ProgramId, person: PersonId) -> bool {
        self.current_pairs_of(program).any(|x| x.is_member(person))
    }

    pub fn person_context(&self, c: &PersonCommand) -> PersonContext {
        let manager = c.new_manager().map(|m| {
            let date = c.effective_on().expect("a command that sets a manager has an effective date");
            match self.person(m) {
                Some(mp) if !mp.erased => {
                    ManagerFacts { exists: true, left: mp.has_left(), chain: self.chain_on(m, date) }
                }
                _ => ManagerFacts::default(),
            }
        });
        let external_id_taken = match c {
            PersonCommand::Register(r) => self
                .persons
                .values()
                .any(|p| p.id != Some(r.person_id) && p.external_id.as_ref() == Some(&r.external_id)),
            _ => false,
        };
        PersonContext { manager, external_id_taken }
    }

    pub fn program_context(&self, c: &ProgramCommand) -> ProgramContext {
        let person = match c {
            ProgramCommand::Enrol(e) => Some(e.person_id),
            ProgramCommand::Withdraw { person_id, .. } => Some(*person_id),
            _ => None,
        };
        ProgramContext {
            person: person.map(|p| {
                let found = self.person(p);
                ParticipantFacts {
                    exists: found.is_some(),
                    left: found.is_some_and(Person::has_left),
                    erased: found.is_some_and(|x| x.erased),
                    in_active_pair: self.in_current_pair(c.program_id(), p),
                }
            }),
        }
    }

    /// Facts on a person; with a date, their level and chain on that date.
    fn person_facts(&self, id: PersonId, on: Option<NaiveDate>) -> PersonFacts {
        let Some(p) = self.person(id) else { return PersonFacts::default() };
        PersonFacts {
            exists: true,
            left: p.has_left(),
            erased: p.erased,
            level: on.and_then(|d| p.org_on(d)).map(|o| o.level),
            chain: on.map(|d| self.chain_on(id, d)).unwrap_or_default(),
        }
    }

    pub fn pair_context(&self, c: &PairCommand) -> PairContext {
        match c {
            PairCommand::Form(f) => PairContext {
                program: std::sync::Arc::new(self.programs.get(&f.program_id).cloned().unwrap_or_default()),
                people: f.members.iter().map(|m| (*m, self.person_facts(*m, Some(f.formed_on)))).collect(),
                already_paired: f
                    .members
                    .iter()
                    .copied()
                    .filter(|m| self.in_current_pair(f.program_id, *m))
                    .collect::<BTreeSet<_>>(),
            },
            _ => {
                let pair = self.pairs.get(&c.pair_id());
                let program =
                    pair.and_then(|x| x.program_id).and_then(|g| self.programs.get(&g)).cloned().unwrap_or_default();
                let people = pair
                    .map(|x| x.members.iter().map(|m| (*m, self.person_facts(*m, None))).collect())
                    .unwrap_or_default();
                PairContext { program: std::sync::Arc::new(program), people, already_paired: BTreeSet::new() }
            }
        }
    }

    /// Decides a command against the world; on success appends its events
    /// and the clean-up they trigger, and returns everything appended.
    pub fn execute(&mut self, command: Command) -> Result<Vec<DomainEvent>, DomainError> {
        let events: Vec<DomainEvent> = match command {
            Command::Person(c) => {
                let ctx = self.person_context(&c);
                let state = self.persons.get(&c.person_id()).cloned().unwrap_or_default();
                person::decide(&state, c, &ctx)?.into_iter().map(DomainEvent::Person).collect()
            }
            Command::Program(c) => {
                let ctx = self.program_context(&c);
                let state = self.programs.get(&c.program_id()).cloned().unwrap_or_default();
                program::decide(&state, c, &ctx)?.into_iter().map(DomainEvent::Program).collect()
            }
            Command::Pair(c) => {
                let ctx = self.pair_context(&c);
                let state = self.pairs.get(&c.pair_id()).cloned().unwrap_or_default();
                pair::decide(&state, c, &ctx)?.into_iter().map(DomainEvent::Pair).collect()
            }
        };
        let mut appended = Vec::with_capacity(events.len());
        for e in events {
            self.apply(e.clone());
            appended.push(e.clone());
            for cleanup in self.cleanup_after(&e) {
                self.apply(cleanup.clone());
                appended.push(cleanup);
            }
        }
        Ok(appended)
    }

    /// What the service appends after `e`: dissolving the current pairs of
    /// a person who left, or of a program that closed.
    fn cleanup_after(&self, e: &DomainEvent) -> Vec<DomainEvent> {
        if !self.cleanup {
            return vec![];
        }
        let (reason, note, on, affected): (_, _, _, Vec<&Pair>) = match e {
            DomainEvent::Person(PersonEvent::PersonLeft(l)) => (
                DissolveReason::MemberLeft,
                "a member left the organisation",
                l.left_on,
                self.pairs.values().filter(|x| x.is_current() && x.is_member(l.person_id)).collect(),
            ),
            DomainEvent::Program(ProgramEvent::ProgramClosed(c)) => (
                DissolveReason::ProgramClosed,
                "the program closed",
                c.closed_on,
                self.current_pairs_of(c.program_id).collect(),
            ),
            _ => return vec![],
        };
        affected
            .into_iter()
            .filter_map(|x| pair::dissolve_for_cleanup(x, reason, lt(note), on))
            .map(DomainEvent::Pair)
            .collect()
    }

    /// Folds one event into its stream and appends it to the log.
    pub fn apply(&mut self, e: DomainEvent) {
        let id = e.stream_id();
        match &e {
            DomainEvent::Person(ev) => {
                let id = PersonId::from_uuid(id);
                let s = self.persons.remove(&id).unwrap_or_default();
                self.persons.insert(id, person::evolve(s, ev));
            }
            DomainEvent::Program(ev) => {
                let id = ProgramId::from_uuid(id);
                let s = self.programs.remove(&id).unwrap_or_default();
                self.programs.insert(id, program::evolve(s, ev));
            }
            DomainEvent::Pair(ev) => {
                let id = PairId::from_uuid(id);
                let s = self.pairs.remove(&id).unwrap_or_default();
                self.pairs.insert(id, pair::evolve(s, ev));
            }
            DomainEvent::Webhook(ev) => panic!("the world holds no webhook endpoint: {ev:?}"),
            DomainEvent::Unrecognised(u) => panic!("decide never produces an unrecognised event: {u:?}"),
        }
        self.log.push(e);
    }
}
