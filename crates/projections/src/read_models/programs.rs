//! The `programs` projection: programs with their settings and status, and
//! their enrolments.
//!
//! Tables:
//! - `programs`: one row per program; `participants` is the number of
//!   current enrolments.
//! - `enrolments`: one row per enrolment *period*: a person who withdraws
//!   and enrols again has two rows, so "enrolled on date D" can be answered
//!   (`enrolled_on <= D AND (withdrew_on IS NULL OR withdrew_on > D)`). The
//!   current enrolment is the row with `withdrew_on IS NULL`.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use sqlx::types::Json;
use tandem_domain::DomainEvent;
use tandem_domain::program::ProgramEvent;
use tandem_domain::values::{GroupKind, Purpose};
use uuid::Uuid;

use crate::error::Result;
use crate::projection::{Envelope, ReadModel};
use crate::sql::{replace, unjson};

/// The projection's name.
pub const NAME: &str = "programs";

/// Keeps `programs` and `enrolments`.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProgramsProjection;

const TABLES: &[&str] = &["programs", "enrolments"];

const CREATE: &str = r"
CREATE TABLE programs (
    program_id     uuid PRIMARY KEY,
    name           text NOT NULL,
    description    text NOT NULL,
    purpose        text NOT NULL,
    -- PAIRS or CIRCLES, with the group size bounds.
    kind           text NOT NULL,
    min_size       smallint NOT NULL,
    max_size       smallint NOT NULL,
    max_level_gap  smallint NOT NULL,
    cadence_days   integer NOT NULL,
    starts_on      date NOT NULL,
    ends_on        date,
    -- OPEN or CLOSED.
    status         text NOT NULL,
    closed_on      date,
    close_reason   text,
    -- Current enrolments.
    participants   integer NOT NULL,
    launched_at    timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    version        integer NOT NULL
);
CREATE INDEX programs_status_idx ON programs (status, program_id);

CREATE TABLE enrolments (
    program_id        uuid NOT NULL,
    person_id         uuid NOT NULL,
    -- Stream version of the ParticipantEnrolled event: tells enrolment
    -- periods of one person apart.
    seq               integer NOT NULL,
    enrolled_on       date NOT NULL,
    interests         text[] NOT NULL,
    skills            text[] NOT NULL,
    wants_to_work_on  text NOT NULL,
    withdrew_on       date,
    withdraw_reason   text,
    enrolled_at       timestamptz NOT NULL,
    PRIMARY KEY (program_id, person_id, seq)
);
-- A person's programs; and the current participants of a program.
CREATE INDEX enrolments_person_idx ON enrolments (person_id);
CREATE UNIQUE INDEX enrolments_current_idx ON enrolments (program_id, person_id) WHERE withdrew_on IS NULL;
";

/// Whether a program runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ProgramStatus {
    Open,
    Closed,
}

/// A row of `programs`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProgramRow {
    pub program_id: Uuid,
    pub name: String,
    pub description: String,
    pub purpose: Purpose,
    pub kind: GroupKind,
    pub min_size: i16,
    pub max_size: i16,
    pub max_level_gap: i16,
    pub cadence_days: i32,
    pub starts_on: NaiveDate,
    pub ends_on: Option<NaiveDate>,
    pub status: ProgramStatus,
    pub closed_on: Option<NaiveDate>,
    pub close_reason: Option<String>,
    pub participants: i32,
    pub launched_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i32,
}

/// A row of `enrolments`: one enrolment period.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrolmentRow {
    pub program_id: Uuid,
    pub person_id: Uuid,
    pub seq: i32,
    pub enrolled_on: NaiveDate,
    pub interests: Vec<String>,
    pub skills: Vec<String>,
    pub wants_to_work_on: String,
    pub withdrew_on: Option<NaiveDate>,
    pub withdraw_reason: Option<String>,
    pub enrolled_at: DateTime<Utc>,
}

impl ReadModel for ProgramsProjection {
    const NAME: &'static str = NAME;
    // 2: free text blanked on erasure.
    const VERSION: i32 = 2;
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

async fn apply(conn: &mut PgConnection, events: &[Envelope]) -> Result<()> {
    apply_program_events(conn, events).await?;
    let erased = super::erased(events);
    if !erased.is_empty() {
        // What an erased participant said about themself goes with them.
        sqlx::query(
            "UPDATE enrolments SET interests = '{}', skills = '{}', wants_to_work_on = '', \
             withdraw_reason = CASE WHEN withdraw_reason IS NULL THEN NULL ELSE '' END WHERE person_id = ANY($1)",
        )
        .bind(&erased)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

async fn apply_program_events(conn: &mut PgConnection, events: &[Envelope]) -> Result<()> {
    let mut program_ids: HashSet<Uuid> = HashSet::new();
    let (mut wd_programs, mut wd_people) = (Vec::new(), Vec::new());
    for (_, e) in events {
        let DomainEvent::Program(p) = e else { continue };
        program_ids.insert(e.stream_id());
        if let ProgramEvent::ParticipantWithdrew(w) = p {
            wd_programs.push(w.program_id.as_uuid());
            wd_people.push(w.person_id.as_uuid());
        }
    }
    if program_ids.is_empty() {
        return Ok(());
    }
    let program_ids: Vec<Uuid> = program_ids.into_iter().collect();
    let loaded: Vec<Json<ProgramRow>> =
        sqlx::query_scalar("SELECT to_jsonb(p) FROM programs p WHERE program_id = ANY($1)")
            .bind(&program_ids)
            .fetch_all(&mut *conn)
            .await?;
    let mut programs: HashMap<Uuid, ProgramRow> = unjson(loaded).into_iter().map(|r| (r.program_id, r)).collect();
    // Only withdrawals touch stored enrolments: load the current ones.
    let loaded: Vec<Json<EnrolmentRow>> = if wd_people.is_empty() {
        Vec::new()
    } else {
        sqlx::query_scalar(
            "SELECT to_jsonb(e) FROM enrolments e \
              WHERE withdrew_on IS NULL \
                AND (program_id, person_id) IN (SELECT * FROM unnest($1::uuid[], $2::uuid[]))",
        )
        .bind(&wd_programs)
        .bind(&wd_people)
        .fetch_all(&mut *conn)
        .await?
    };
    let mut enrolments: HashMap<(Uuid, Uuid, i32), EnrolmentRow> =
        unjson(loaded).into_iter().map(|r| ((r.program_id, r.person_id, r.seq), r)).collect();
    let mut current: HashMap<(Uuid, Uuid), i32> =
        enrolments.values().map(|r| ((r.program_id, r.person_id), r.seq)).collect();
    let mut dirty_programs: HashSet<Uuid> = HashSet::new();
    let mut dirty_enrolments: HashSet<(Uuid, Uuid, i32)> = HashSet::new();

    for (rec, event) in events {
        let DomainEvent::Program(event) = event else { continue };
        if let ProgramEvent::ProgramLaunched(e) = event {
            let id = e.program_id.as_uuid();
            programs.insert(
                id,
                ProgramRow {
                    program_id: id,
                    name: e.name.as_str().to_owned(),
                    description: e.description.as_str().to_owned(),
                    purpose: e.purpose,
                    kind: e.format.kind,
                    min_size: i16::from(e.format.min_size),
                    max_size: i16::from(e.format.max_size),
                    max_level_gap: i16::from(e.max_level_gap.get()),
                    cadence_days: i32::from(e.cadence_days.get()),
                    starts_on: e.starts_on,
                    ends_on: e.ends_on,
                    status: ProgramStatus::Open,
                    closed_on: None,
                    close_reason: None,
                    participants: 0,
                    launched_at: rec.recorded_at,
                    updated_at: rec.recorded_at,
                    version: rec.stream_version,
                },
            );
            dirty_programs.insert(id);
            continue;
        }
        let id = rec.stream_id;
        let Some(program) = programs.get_mut(&id) else {
            tracing::warn!(program = %id, event = %rec.event_type, "program event for an unknown program; skipped");
            continue;
        };
        program.updated_at = rec.recorded_at;
        program.version = rec.stream_version;
        dirty_programs.insert(id);
        match event {
            ProgramEvent::ProgramLaunched(_) => {}
            ProgramEvent::ProgramUpdated(e) => {
                let c = &e.changes;
                if let Some(n) = &c.name {
                    program.name = n.as_str().to_owned();
                }
                if let Some(d) = &c.description {
                    program.description = d.as_str().to_owned();
                }
                if let Some(g) = c.max_level_gap {
                    program.max_level_gap = i16::from(g.get());
                }
                if let Some(d) = c.cadence_days {
                    program.cadence_days = i32::from(d.get());
                }
                if let Some(e) = c.ends_on {
                    program.ends_on = e;
                }
            }
            ProgramEvent::ParticipantEnrolled(e) => {
                let key = (id, e.person_id.as_uuid(), rec.stream_version);
                enrolments.insert(
                    key,
                    EnrolmentRow {
                        program_id: id,
                        person_id: key.1,
                        seq: key.2,
                        enrolled_on: e.enrolled_on,
                        interests: e.interests.iter().map(|t| t.as_str().to_owned()).collect(),
                        skills: e.skills.iter().map(|t| t.as_str().to_owned()).collect(),
                        wants_to_work_on: e.wants_to_work_on.as_str().to_owned(),
                        withdrew_on: None,
                        withdraw_reason: None,
                        enrolled_at: rec.recorded_at,
                    },
                );
                current.insert((key.0, key.1), key.2);
                dirty_enrolments.insert(key);
                program.participants += 1;
            }
            ProgramEvent::ParticipantWithdrew(e) => {
                let person = e.person_id.as_uuid();
                if let Some(seq) = current.remove(&(id, person))
                    && let Some(row) = enrolments.get_mut(&(id, person, seq))
                {
                    row.withdrew_on = Some(e.withdrew_on);
                    row.withdraw_reason = Some(e.reason.as_str().to_owned());
                    dirty_enrolments.insert((id, person, seq));
                    program.participants -= 1;
                }
            }
            ProgramEvent::ProgramClosed(e) => {
                program.status = ProgramStatus::Closed;
                program.closed_on = Some(e.closed_on);
                program.close_reason = Some(e.reason.as_str().to_owned());
            }
        }
    }

    let changed: Vec<&ProgramRow> = programs.values().filter(|r| dirty_programs.contains(&r.program_id)).collect();
    replace(
        conn,
        "DELETE FROM programs t USING jsonb_populate_recordset(NULL::programs, $1) r WHERE t.program_id = r.program_id",
        "INSERT INTO programs SELECT * FROM jsonb_populate_recordset(NULL::programs, $1)",
        &changed,
    )
    .await?;
    let changed: Vec<&EnrolmentRow> =
        enrolments.values().filter(|r| dirty_enrolments.contains(&(r.program_id, r.person_id, r.seq))).collect();
    replace(
        conn,
        "DELETE FROM enrolments t USING jsonb_populate_recordset(NULL::enrolments, $1) r \
          WHERE t.program_id = r.program_id AND t.person_id = r.person_id AND t.seq = r.seq",
        "INSERT INTO enrolments SELECT * FROM jsonb_populate_recordset(NULL::enrolments, $1)",
        &changed,
    )
    .await?;
    Ok(())
}
