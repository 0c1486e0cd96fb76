//! The `participation` projection: one fact row per person per program, the
//! grain analytics (retention, time to first session, goal completion)
//! builds on.
//!
//! Definitions (dates are calendar dates; `held_at` is a UTC instant):
//! - `enrolled_on`: the person's *first* enrolment in the program;
//!   `withdrew_on`: the date of their last withdrawal, NULL while enrolled
//!   (a re-enrolment clears it).
//! - `paired_on`: the earliest `formed_on` of a pair of the program the
//!   person was a member of; `first_pair_id` is that pair.
//! - `first_session_at`, `last_session_at`, `sessions`: over sessions held
//!   in any pair of the program the person was a member of.
//! - `goals_set`, `goals_completed`: goals the person owned in the
//!   program's pairs.
//! - `left_on`: set while the person is gone from the organisation (the
//!   latest `PersonLeft`), cleared when they rejoin.
//!
//! `participation_pairs` is this projection's own copy of which pair
//! belongs to which program and who its members are: projections are
//! independent (each may be rebuilt alone), so it cannot read `pairs`.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use sqlx::types::Json;
use tandem_domain::DomainEvent;
use tandem_domain::pair::PairEvent;
use tandem_domain::person::PersonEvent;
use tandem_domain::program::ProgramEvent;
use uuid::Uuid;

use crate::error::Result;
use crate::projection::{Envelope, ReadModel};
use crate::sql::{insert, replace, unjson};

/// The projection's name.
pub const NAME: &str = "participation";

/// Keeps `participation` (and its lookup `participation_pairs`).
#[derive(Clone, Copy, Debug, Default)]
pub struct ParticipationProjection;

const TABLES: &[&str] = &["participation", "participation_pairs"];

const CREATE: &str = r"
CREATE TABLE participation (
    program_id        uuid NOT NULL,
    person_id         uuid NOT NULL,
    enrolled_on       date,
    withdrew_on       date,
    paired_on         date,
    first_pair_id     uuid,
    first_session_at  timestamptz,
    last_session_at   timestamptz,
    sessions          integer NOT NULL,
    goals_set         integer NOT NULL,
    goals_completed   integer NOT NULL,
    left_on           date,
    PRIMARY KEY (program_id, person_id)
);
CREATE INDEX participation_person_idx ON participation (person_id);

CREATE TABLE participation_pairs (
    pair_id     uuid PRIMARY KEY,
    program_id  uuid NOT NULL,
    member_ids  uuid[] NOT NULL
);
";

/// A row of `participation`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParticipationRow {
    pub program_id: Uuid,
    pub person_id: Uuid,
    pub enrolled_on: Option<NaiveDate>,
    pub withdrew_on: Option<NaiveDate>,
    pub paired_on: Option<NaiveDate>,
    pub first_pair_id: Option<Uuid>,
    pub first_session_at: Option<DateTime<Utc>>,
    pub last_session_at: Option<DateTime<Utc>>,
    pub sessions: i32,
    pub goals_set: i32,
    pub goals_completed: i32,
    pub left_on: Option<NaiveDate>,
}

impl ParticipationRow {
    fn new(program_id: Uuid, person_id: Uuid) -> Self {
        Self {
            program_id,
            person_id,
            enrolled_on: None,
            withdrew_on: None,
            paired_on: None,
            first_pair_id: None,
            first_session_at: None,
            last_session_at: None,
            sessions: 0,
            goals_set: 0,
            goals_completed: 0,
            left_on: None,
        }
    }
}

/// A row of `participation_pairs`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct PairLookup {
    pair_id: Uuid,
    program_id: Uuid,
    member_ids: Vec<Uuid>,
}

impl ReadModel for ParticipationProjection {
    const NAME: &'static str = NAME;
    const VERSION: i32 = 1;
    const TABLES: &'static [&'static str] = TABLES;
    const CREATE_SQL: &'static str = CREATE;

    fn apply<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        events: &'a [Envelope],
    ) -> impl Future<Output = Result<()>> + Send + 'a {
        apply(conn, events)
    }
}

type Key = (Uuid, Uuid);

async fn apply(conn: &mut PgConnection, events: &[Envelope]) -> Result<()> {
    // 1. Which pairs does the batch need to know about?
    let pair_ids: Vec<Uuid> = events
        .iter()
        .filter(|(_, e)| {
            matches!(
                e,
                DomainEvent::Pair(PairEvent::SessionHeld(_) | PairEvent::GoalSet(_) | PairEvent::GoalCompleted(_))
            )
        })
        .map(|(_, e)| e.stream_id())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let mut pairs: HashMap<Uuid, PairLookup> = if pair_ids.is_empty() {
        HashMap::new()
    } else {
        let rows: Vec<Json<PairLookup>> =
            sqlx::query_scalar("SELECT to_jsonb(p) FROM participation_pairs p WHERE pair_id = ANY($1)")
                .bind(&pair_ids)
                .fetch_all(&mut *conn)
                .await?;
        unjson(rows).into_iter().map(|p| (p.pair_id, p)).collect()
    };
    let mut new_pairs: Vec<PairLookup> = Vec::new();

    // 2. Which fact rows? Collected in a dry pass (pairs formed in this
    // batch are known from their events), then loaded in one query.
    let mut keys: HashSet<Key> = HashSet::new();
    let mut people: HashSet<Uuid> = HashSet::new();
    let mut formed: HashMap<Uuid, (Uuid, Vec<Uuid>)> = HashMap::new();
    for (_, e) in events {
        match e {
            DomainEvent::Program(ProgramEvent::ParticipantEnrolled(x)) => {
                keys.insert((x.program_id.as_uuid(), x.person_id.as_uuid()));
            }
            DomainEvent::Program(ProgramEvent::ParticipantWithdrew(x)) => {
                keys.insert((x.program_id.as_uuid(), x.person_id.as_uuid()));
            }
            DomainEvent::Person(PersonEvent::PersonLeft(x)) => {
                people.insert(x.person_id.as_uuid());
            }
            DomainEvent::Person(PersonEvent::PersonRejoined(x)) => {
                people.insert(x.person_id.as_uuid());
            }
            DomainEvent::Pair(p) => {
                let pair_id = e.stream_id();
                let (program, members): (Uuid, Vec<Uuid>) = match p {
                    PairEvent::PairFormed(f) => {
                        let entry = (f.program_id.as_uuid(), f.members.iter().map(|m| m.as_uuid()).collect());
                        formed.insert(pair_id, entry.clone());
                        entry
                    }
                    PairEvent::SessionHeld(_) => match formed.get(&pair_id).cloned() {
                        Some(f) => f,
                        None => pairs.get(&pair_id).map(|p| (p.program_id, p.member_ids.clone())).unwrap_or_default(),
                    },
                    PairEvent::GoalSet(g) => (program_of(&formed, &pairs, pair_id), vec![g.owner.as_uuid()]),
                    PairEvent::GoalCompleted(g) => (program_of(&formed, &pairs, pair_id), vec![g.by.as_uuid()]),
                    _ => continue,
                };
                keys.extend(members.into_iter().map(|m| (program, m)));
            }
            _ => {}
        }
    }
    if keys.is_empty() && people.is_empty() {
        return Ok(());
    }
    let (programs, persons): (Vec<Uuid>, Vec<Uuid>) = keys.iter().copied().unzip();
    let people: Vec<Uuid> = people.into_iter().collect();
    let rows: Vec<Json<ParticipationRow>> = sqlx::query_scalar(
        "SELECT to_jsonb(p) FROM participation p \
          WHERE (program_id, person_id) IN (SELECT * FROM unnest($1::uuid[], $2::uuid[])) \
             OR person_id = ANY($3)",
    )
    .bind(&programs)
    .bind(&persons)
    .bind(&people)
    .fetch_all(&mut *conn)
    .await?;
    let mut facts: HashMap<Key, ParticipationRow> =
        unjson(rows).into_iter().map(|r| ((r.program_id, r.person_id), r)).collect();
    let mut dirty: HashSet<Key> = HashSet::new();

    // 3. Fold.
    for (_, e) in events {
        match e {
            DomainEvent::Program(ProgramEvent::ParticipantEnrolled(x)) => {
                let key = (x.program_id.as_uuid(), x.person_id.as_uuid());
                let row = facts.entry(key).or_insert_with(|| ParticipationRow::new(key.0, key.1));
                row.enrolled_on = Some(row.enrolled_on.map_or(x.enrolled_on, |d| d.min(x.enrolled_on)));
                row.withdrew_on = None;
                dirty.insert(key);
            }
            DomainEvent::Program(ProgramEvent::ParticipantWithdrew(x)) => {
                let key = (x.program_id.as_uuid(), x.person_id.as_uuid());
                let row = facts.entry(key).or_insert_with(|| ParticipationRow::new(key.0, key.1));
                row.withdrew_on = Some(x.withdrew_on);
                dirty.insert(key);
            }
            DomainEvent::Person(PersonEvent::PersonLeft(x)) => {
                let person = x.person_id.as_uuid();
                for (key, row) in facts.iter_mut().filter(|(k, _)| k.1 == person) {
                    row.left_on = Some(x.left_on);
                    dirty.insert(*key);
                }
            }
            DomainEvent::Person(PersonEvent::PersonRejoined(x)) => {
                let person = x.person_id.as_uuid();
                for (key, row) in facts.iter_mut().filter(|(k, _)| k.1 == person) {
                    row.left_on = None;
                    dirty.insert(*key);
                }
            }
            DomainEvent::Pair(PairEvent::PairFormed(f)) => {
                let lookup = PairLookup {
                    pair_id: f.pair_id.as_uuid(),
                    program_id: f.program_id.as_uuid(),
                    member_ids: f.members.iter().map(|m| m.as_uuid()).collect(),
                };
                for m in &lookup.member_ids {
                    let key = (lookup.program_id, *m);
                    let row = facts.entry(key).or_insert_with(|| ParticipationRow::new(key.0, key.1));
                    // The earliest formation date wins; on a tie, the first recorded.
                    if row.paired_on.is_none_or(|d| f.formed_on < d) {
                        row.paired_on = Some(f.formed_on);
                        row.first_pair_id = Some(lookup.pair_id);
                    }
                    dirty.insert(key);
                }
                pairs.insert(lookup.pair_id, lookup.clone());
                new_pairs.push(lookup);
            }
            DomainEvent::Pair(PairEvent::SessionHeld(s)) => {
                let Some(pair) = pairs.get(&s.pair_id.as_uuid()) else { continue };
                for m in &pair.member_ids {
                    let key = (pair.program_id, *m);
                    let row = facts.entry(key).or_insert_with(|| ParticipationRow::new(key.0, key.1));
                    row.sessions += 1;
                    row.first_session_at = Some(row.first_session_at.map_or(s.held_at, |f| f.min(s.held_at)));
                    row.last_session_at = Some(row.last_session_at.map_or(s.held_at, |l| l.max(s.held_at)));
                    dirty.insert(key);
                }
            }
            DomainEvent::Pair(PairEvent::GoalSet(g)) => {
                let Some(pair) = pairs.get(&g.pair_id.as_uuid()) else { continue };
                let key = (pair.program_id, g.owner.as_uuid());
                facts.entry(key).or_insert_with(|| ParticipationRow::new(key.0, key.1)).goals_set += 1;
                dirty.insert(key);
            }
            DomainEvent::Pair(PairEvent::GoalCompleted(g)) => {
                let Some(pair) = pairs.get(&g.pair_id.as_uuid()) else { continue };
                // Only the owner completes a goal, so `by` is the owner.
                let key = (pair.program_id, g.by.as_uuid());
                facts.entry(key).or_insert_with(|| ParticipationRow::new(key.0, key.1)).goals_completed += 1;
                dirty.insert(key);
            }
            _ => {}
        }
    }

    insert(
        conn,
        "INSERT INTO participation_pairs SELECT * FROM jsonb_populate_recordset(NULL::participation_pairs, $1)",
        &new_pairs,
    )
    .await?;
    let changed: Vec<&ParticipationRow> =
        facts.values().filter(|r| dirty.contains(&(r.program_id, r.person_id))).collect();
    replace(
        conn,
        "DELETE FROM participation t USING jsonb_populate_recordset(NULL::participation, $1) r \
          WHERE t.program_id = r.program_id AND t.person_id = r.person_id",
        "INSERT INTO participation SELECT * FROM jsonb_populate_recordset(NULL::participation, $1)",
        &changed,
    )
    .await?;
    Ok(())
}

fn program_of(formed: &HashMap<Uuid, (Uuid, Vec<Uuid>)>, pairs: &HashMap<Uuid, PairLookup>, pair: Uuid) -> Uuid {
    formed.get(&pair).map(|f| f.0).or_else(|| pairs.get(&pair).map(|p| p.program_id)).unwrap_or_default()
}
