//! The facts of a study, folded from the event log up to an instant.
//!
//! A study must be reproducible byte for byte: the same question asked
//! `asOf` the same instant must give the same answer next year. The read
//! models cannot promise that (they hold today's state, and dates inside
//! events may be back-dated), so a study reads the log itself through the
//! store's gap-free read and keeps only the events *recorded* at or before
//! `as_of` (the `recorded_at` of the writing transaction). [`check_as_of`]
//! refuses an instant that is not settled yet, i.e. while a transaction
//! that started at or before it is still open and could still commit
//! events stamped with an earlier time.
//!
//! The fold keeps only what the analyst tables need, per entity: people
//! (hire, leave, department and level), enrolments, pairs, sessions and
//! goals. No name, e-mail, external id or free text is kept.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use tandem_domain::DomainEvent;
use tandem_domain::pair::PairEvent;
use tandem_domain::person::{self, Person, PersonEvent};
use tandem_domain::program::ProgramEvent;
use tandem_store::{Cursor, EventStore, ReadFilter, RecordedEvent};
use uuid::Uuid;

use crate::error::{ProjectionError, Result};

/// How many events one read of the log returns.
const PAGE: i64 = 2_000;

/// A person as a study sees them.
#[derive(Clone, Debug, Default)]
pub struct PersonFacts {
    pub person_id: Uuid,
    /// The folded person stream (org history included); personal fields in
    /// it are never read by the study.
    pub state: Person,
    /// Every spell away from the organisation, in order: `(left on, reason,
    /// rejoined on)`.
    pub departures: Vec<(NaiveDate, String, Option<NaiveDate>)>,
}

impl PersonFacts {
    /// The first departure on or after `from` (the end of the employment
    /// spell that `from` lies in), with its reason.
    #[must_use]
    pub fn left_after(&self, from: NaiveDate) -> Option<(NaiveDate, &str)> {
        self.departures.iter().find(|(on, _, _)| *on >= from).map(|(on, r, _)| (*on, r.as_str()))
    }

    /// Whether the person was employed on `day`: hired by then and not in a
    /// spell away.
    #[must_use]
    pub fn employed_on(&self, day: NaiveDate) -> bool {
        let hired = self.state.hired_on.is_some_and(|h| h <= day);
        let away = self.departures.iter().any(|(on, _, back)| *on <= day && back.is_none_or(|b| b > day));
        hired && !away
    }
}

/// A person's participation in a program.
#[derive(Clone, Debug, Default)]
pub struct EnrolmentFacts {
    pub program_id: Uuid,
    pub person_id: Uuid,
    /// The first enrolment.
    pub enrolled_on: Option<NaiveDate>,
    /// The last withdrawal, cleared by a re-enrolment.
    pub withdrew_on: Option<NaiveDate>,
}

/// A pair or circle.
#[derive(Clone, Debug)]
pub struct PairFacts {
    pub pair_id: Uuid,
    pub program_id: Uuid,
    pub kind: String,
    pub formed_by: String,
    pub members: Vec<Uuid>,
    pub formed_on: NaiveDate,
    pub dissolved_on: Option<NaiveDate>,
    pub dissolve_reason: Option<String>,
    /// Held sessions' instants, in the order they were recorded.
    pub sessions_held: Vec<DateTime<Utc>>,
}

impl PairFacts {
    /// The earliest held session.
    #[must_use]
    pub fn first_session(&self) -> Option<DateTime<Utc>> {
        self.sessions_held.iter().min().copied()
    }
}

/// A session (scheduled, held or cancelled).
#[derive(Clone, Debug)]
pub struct SessionFacts {
    pub session_id: Uuid,
    pub pair_id: Uuid,
    pub program_id: Uuid,
    pub status: &'static str,
    pub scheduled_for: Option<DateTime<Utc>>,
    pub held_at: Option<DateTime<Utc>>,
    pub minutes: Option<i64>,
    pub activities: Vec<String>,
}

/// A goal.
#[derive(Clone, Debug)]
pub struct GoalFacts {
    pub goal_id: Uuid,
    pub pair_id: Uuid,
    pub program_id: Uuid,
    pub owner: Uuid,
    pub status: &'static str,
    pub set_on: NaiveDate,
    pub due_on: Option<NaiveDate>,
    pub completed_on: Option<NaiveDate>,
    pub abandoned_on: Option<NaiveDate>,
}

/// Everything a study knows, as of [`Study::as_of`].
#[derive(Clone, Debug, Default)]
pub struct Study {
    pub as_of: DateTime<Utc>,
    /// The last event folded in (`None` for an empty log).
    pub last_cursor: Option<Cursor>,
    pub events: u64,
    pub people: BTreeMap<Uuid, PersonFacts>,
    /// Programs with their launch date.
    pub programs: BTreeMap<Uuid, NaiveDate>,
    /// By `(program, person)`.
    pub enrolments: BTreeMap<(Uuid, Uuid), EnrolmentFacts>,
    pub pairs: BTreeMap<Uuid, PairFacts>,
    pub sessions: BTreeMap<Uuid, SessionFacts>,
    pub goals: BTreeMap<Uuid, GoalFacts>,
}

/// The serde name of a closed-list value (e.g. `MEMBER_LEFT`).
pub(crate) fn label<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        // The closed lists all serialise to strings; anything else would be
        // a change of the domain that the tests of this module catch.
        other => format!("{other:?}"),
    }
}

/// Refuses an `as_of` that is in the future or not settled: a transaction
/// that started at or before it is still open, so events stamped with an
/// earlier time could still appear and a second read would differ.
/// Only client sessions count (autovacuum cannot append events).
/// Transactions of other roles are invisible to this check (their start
/// time is hidden); Tandem's writers all run as the service's role.
pub async fn check_as_of(store: &EventStore, as_of: DateTime<Utc>) -> Result<()> {
    let (now, oldest): (DateTime<Utc>, Option<DateTime<Utc>>) = sqlx::query_as(
        "SELECT now(), (SELECT min(xact_start) FROM pg_stat_activity
                         WHERE datname = current_database() AND pid <> pg_backend_pid()
                           AND backend_type = 'client backend' AND xact_start IS NOT NULL)",
    )
    .fetch_one(store.pool())
    .await?;
    if as_of > now {
        return Err(ProjectionError::InvalidStudy { field: "asOf", reason: "lies in the future".into() });
    }
    if oldest.is_some_and(|o| o <= as_of) {
        return Err(ProjectionError::InvalidStudy {
            field: "asOf",
            reason: "is not settled yet: a transaction that started before it is still open; retry in a moment".into(),
        });
    }
    Ok(())
}

impl Study {
    /// Reads the log up to `as_of` (or up to now, without it) and folds it.
    pub async fn load(store: &EventStore, as_of: Option<DateTime<Utc>>) -> Result<Self> {
        if let Some(t) = as_of {
            check_as_of(store, t).await?;
        }
        let head = store.head().await?;
        let as_of = match as_of {
            Some(t) => t,
            None => sqlx::query_scalar("SELECT now()").fetch_one(store.pool()).await?,
        };
        let mut study = Study { as_of, ..Study::default() };
        let mut after = Cursor::START;
        while after < head {
            let page = store.read_all_filtered(after, PAGE, &ReadFilter::default()).await?;
            let Some(last) = page.last() else { break };
            after = last.cursor();
            for e in page {
                if e.cursor() > head {
                    break;
                }
                if e.recorded_at <= as_of {
                    study.fold(&e)?;
                }
            }
        }
        Ok(study)
    }

    /// Folds one recorded event in.
    pub fn fold(&mut self, recorded: &RecordedEvent) -> Result<()> {
        let event = DomainEvent::decode(&recorded.event_type, recorded.schema_version, recorded.data.clone()).map_err(
            |source| ProjectionError::Decode {
                cursor: recorded.cursor(),
                event_type: recorded.event_type.clone(),
                source,
            },
        )?;
        self.apply(&event);
        self.events += 1;
        self.last_cursor = Some(recorded.cursor());
        Ok(())
    }

    /// Applies one decoded event.
    pub fn apply(&mut self, event: &DomainEvent) {
        match event {
            DomainEvent::Person(e) => self.apply_person(e),
            DomainEvent::Program(e) => self.apply_program(e),
            DomainEvent::Pair(e) => self.apply_pair(e),
            // Webhook endpoints are not facts of the study.
            DomainEvent::Webhook(_) => {}
            // Written by a newer version and not understood here: it changes
            // no fact this build knows, as for the projections.
            DomainEvent::Unrecognised(_) => {}
        }
    }

    fn apply_person(&mut self, e: &PersonEvent) {
        let id = match e {
            PersonEvent::PersonRegistered(x) => x.person_id,
            PersonEvent::PersonUpdated(x) => x.person_id,
            PersonEvent::PersonLeft(x) => x.person_id,
            PersonEvent::PersonRejoined(x) => x.person_id,
            PersonEvent::PersonErased(x) => x.person_id,
        }
        .as_uuid();
        let facts = self.people.entry(id).or_insert_with(|| PersonFacts { person_id: id, ..PersonFacts::default() });
        facts.state = person::evolve(std::mem::take(&mut facts.state), e);
        match e {
            PersonEvent::PersonLeft(x) => facts.departures.push((x.left_on, label(&x.reason), None)),
            PersonEvent::PersonRejoined(x) => {
                if let Some(last) = facts.departures.last_mut() {
                    last.2 = Some(x.rejoined_on);
                }
            }
            _ => {}
        }
    }

    fn apply_program(&mut self, e: &ProgramEvent) {
        match e {
            ProgramEvent::ProgramLaunched(x) => {
                self.programs.insert(x.program_id.as_uuid(), x.starts_on);
            }
            ProgramEvent::ParticipantEnrolled(x) => {
                let key = (x.program_id.as_uuid(), x.person_id.as_uuid());
                let row = self.enrolments.entry(key).or_insert_with(|| EnrolmentFacts {
                    program_id: key.0,
                    person_id: key.1,
                    ..EnrolmentFacts::default()
                });
                row.enrolled_on = Some(row.enrolled_on.map_or(x.enrolled_on, |d| d.min(x.enrolled_on)));
                row.withdrew_on = None;
            }
            ProgramEvent::ParticipantWithdrew(x) => {
                if let Some(row) = self.enrolments.get_mut(&(x.program_id.as_uuid(), x.person_id.as_uuid())) {
                    row.withdrew_on = Some(x.withdrew_on);
                }
            }
            ProgramEvent::ProgramUpdated(_) | ProgramEvent::ProgramClosed(_) => {}
        }
    }

    fn apply_pair(&mut self, e: &PairEvent) {
        match e {
            PairEvent::PairFormed(x) => {
                self.pairs.insert(
                    x.pair_id.as_uuid(),
                    PairFacts {
                        pair_id: x.pair_id.as_uuid(),
                        program_id: x.program_id.as_uuid(),
                        kind: label(&x.kind),
                        formed_by: label(&x.formed_by),
                        members: x.members.iter().map(|m| m.as_uuid()).collect(),
                        formed_on: x.formed_on,
                        dissolved_on: None,
                        dissolve_reason: None,
                        sessions_held: Vec::new(),
                    },
                );
            }
            PairEvent::PairDissolved(x) => {
                if let Some(p) = self.pairs.get_mut(&x.pair_id.as_uuid()) {
                    p.dissolved_on = Some(x.dissolved_on);
                    p.dissolve_reason = Some(label(&x.reason));
                }
            }
            PairEvent::SessionScheduled(x) => {
                let program_id = self.program_of(x.pair_id.as_uuid());
                let s = self.session(x.session_id.as_uuid(), x.pair_id.as_uuid(), program_id);
                s.scheduled_for = Some(x.scheduled_for);
            }
            PairEvent::SessionHeld(x) => {
                let pair = x.pair_id.as_uuid();
                let program_id = self.program_of(pair);
                let s = self.session(x.session_id.as_uuid(), pair, program_id);
                s.status = "HELD";
                s.held_at = Some(x.held_at);
                s.minutes = Some(i64::from(x.minutes.get()));
                s.activities = x.activities.iter().map(label).collect();
                if let Some(p) = self.pairs.get_mut(&pair) {
                    p.sessions_held.push(x.held_at);
                }
            }
            PairEvent::SessionCancelled(x) => {
                let program_id = self.program_of(x.pair_id.as_uuid());
                self.session(x.session_id.as_uuid(), x.pair_id.as_uuid(), program_id).status = "CANCELLED";
            }
            PairEvent::GoalSet(x) => {
                let program_id = self.program_of(x.pair_id.as_uuid());
                self.goals.insert(
                    x.goal_id.as_uuid(),
                    GoalFacts {
                        goal_id: x.goal_id.as_uuid(),
                        pair_id: x.pair_id.as_uuid(),
                        program_id,
                        owner: x.owner.as_uuid(),
                        status: "OPEN",
                        set_on: x.set_on,
                        due_on: x.due_on,
                        completed_on: None,
                        abandoned_on: None,
                    },
                );
            }
            PairEvent::GoalCompleted(x) => {
                if let Some(g) = self.goals.get_mut(&x.goal_id.as_uuid()) {
                    g.status = "COMPLETED";
                    g.completed_on = Some(x.completed_on);
                }
            }
            PairEvent::GoalAbandoned(x) => {
                if let Some(g) = self.goals.get_mut(&x.goal_id.as_uuid()) {
                    g.status = "ABANDONED";
                    g.abandoned_on = Some(x.abandoned_on);
                }
            }
            PairEvent::FeedbackGiven(_)
            | PairEvent::GoalProgressRecorded(_)
            | PairEvent::PairPaused(_)
            | PairEvent::PairResumed(_) => {}
        }
    }

    fn program_of(&self, pair: Uuid) -> Uuid {
        self.pairs.get(&pair).map_or(Uuid::nil(), |p| p.program_id)
    }

    fn session(&mut self, id: Uuid, pair_id: Uuid, program_id: Uuid) -> &mut SessionFacts {
        self.sessions.entry(id).or_insert_with(|| SessionFacts {
            session_id: id,
            pair_id,
            program_id,
            status: "SCHEDULED",
            scheduled_for: None,
            held_at: None,
            minutes: None,
            activities: Vec::new(),
        })
    }

    /// The day of `as_of` (UTC): the study's "today".
    #[must_use]
    pub fn as_of_day(&self) -> NaiveDate {
        self.as_of.date_naive()
    }
}
