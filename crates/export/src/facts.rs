//! The fact tables analysts join, one row per fact, built from a
//! [`Study`] (the log folded up to an instant, so they too can be asked
//! `asOf` a time and come out the same byte for byte).
//!
//! | table | one row per | columns |
//! |---|---|---|
//! | `people` | person in the HRIS | see [`PEOPLE`] |
//! | `participants` | person enrolled in a program | see [`PARTICIPANTS`] |
//! | `pairs` | pair or circle | see [`PAIRS`] |
//! | `sessions` | session (scheduled, held or cancelled) | see [`SESSIONS`] |
//! | `goals` | goal | see [`GOALS`] |
//!
//! People appear only as pseudonyms; no name, e-mail, external id, title,
//! location or free text is in any table.

use std::io::Write;

use serde_json::Value as Json;
use tandem_projections::stats::Study;
use tandem_projections::stats::cohorts::cohort_of;

use crate::error::{ExportError, Result};
use crate::pseudonym::Pseudonymizer;
use crate::table::{Column, ColumnType as T, Format, TableOptions, TableWriter, Value, col};

/// `people`: the HRIS population. Department and level are the latest
/// known as of the study; `left_on`/`left_reason` the latest departure
/// (`NULL` when the person is employed as of the study).
pub const PEOPLE: &[Column] = &[
    col("person", T::Text),
    col("hired_on", T::Date),
    col("department", T::Text),
    col("level", T::Int32),
    col("left_on", T::Date),
    col("left_reason", T::Text),
    col("departures", T::Int32),
    col("erased", T::Bool),
];

/// `participants`: one row per person and program. `cohort` is the month
/// of the first enrolment; department and level are as of that day;
/// `left_on`/`left_reason` the first departure after it.
pub const PARTICIPANTS: &[Column] = &[
    col("person", T::Text),
    col("program_id", T::Text),
    col("cohort", T::Text),
    col("enrolled_on", T::Date),
    col("withdrew_on", T::Date),
    col("department", T::Text),
    col("level", T::Int32),
    col("hired_on", T::Date),
    col("left_on", T::Date),
    col("left_reason", T::Text),
    col("first_paired_on", T::Date),
];

/// `pairs`: members as a JSON array of pseudonyms.
pub const PAIRS: &[Column] = &[
    col("pair_id", T::Text),
    col("program_id", T::Text),
    col("kind", T::Text),
    col("formed_by", T::Text),
    col("members", T::Json),
    col("member_count", T::Int32),
    col("formed_on", T::Date),
    col("dissolved_on", T::Date),
    col("dissolve_reason", T::Text),
    col("sessions_held", T::Int64),
    col("first_session_at", T::Timestamp),
];

/// `sessions`: activities as a JSON array of codes.
pub const SESSIONS: &[Column] = &[
    col("session_id", T::Text),
    col("pair_id", T::Text),
    col("program_id", T::Text),
    col("status", T::Text),
    col("scheduled_for", T::Timestamp),
    col("held_at", T::Timestamp),
    col("minutes", T::Int32),
    col("activities", T::Json),
];

/// `goals`.
pub const GOALS: &[Column] = &[
    col("goal_id", T::Text),
    col("pair_id", T::Text),
    col("program_id", T::Text),
    col("owner", T::Text),
    col("status", T::Text),
    col("set_on", T::Date),
    col("due_on", T::Date),
    col("completed_on", T::Date),
    col("abandoned_on", T::Date),
];

/// The fact tables, by name.
pub const TABLES: &[(&str, &[Column])] =
    &[("people", PEOPLE), ("participants", PARTICIPANTS), ("pairs", PAIRS), ("sessions", SESSIONS), ("goals", GOALS)];

fn level(x: Option<i64>) -> Value {
    x.map_or(Value::Null, Value::Int)
}

/// The rows of table `name` (one of [`TABLES`]).
#[must_use]
pub fn rows(study: &Study, name: &str, ids: &Pseudonymizer) -> Vec<Vec<Value>> {
    match name {
        "people" => study
            .people
            .values()
            .filter(|p| p.state.is_registered())
            .map(|p| {
                let org = p.state.org_on(study.as_of_day());
                let last = p.departures.last().filter(|(_, _, back)| back.is_none());
                vec![
                    ids.person(p.person_id).into(),
                    p.state.hired_on.into(),
                    org.as_ref().map(|o| o.department.as_str().to_owned()).into(),
                    level(org.as_ref().map(|o| i64::from(o.level.get()))),
                    last.map(|d| d.0).into(),
                    last.map(|d| d.1.clone()).into(),
                    Value::Int(p.departures.len() as i64),
                    p.state.erased.into(),
                ]
            })
            .collect(),
        "participants" => study
            .enrolments
            .values()
            .filter_map(|e| {
                let enrolled_on = e.enrolled_on?;
                let person = study.people.get(&e.person_id);
                let org = person.and_then(|p| p.state.org_on(enrolled_on));
                let left = person.and_then(|p| p.left_after(enrolled_on));
                let first_paired = study
                    .pairs
                    .values()
                    .filter(|p| p.program_id == e.program_id && p.members.contains(&e.person_id))
                    .map(|p| p.formed_on)
                    .min();
                Some(vec![
                    ids.person(e.person_id).into(),
                    e.program_id.to_string().into(),
                    cohort_of(enrolled_on).into(),
                    enrolled_on.into(),
                    e.withdrew_on.into(),
                    org.as_ref().map(|o| o.department.as_str().to_owned()).into(),
                    level(org.as_ref().map(|o| i64::from(o.level.get()))),
                    person.and_then(|p| p.state.hired_on).into(),
                    left.map(|l| l.0).into(),
                    left.map(|l| l.1.to_owned()).into(),
                    first_paired.into(),
                ])
            })
            .collect(),
        "pairs" => study
            .pairs
            .values()
            .map(|p| {
                vec![
                    p.pair_id.to_string().into(),
                    p.program_id.to_string().into(),
                    p.kind.clone().into(),
                    p.formed_by.clone().into(),
                    Value::Json(Json::Array(p.members.iter().map(|m| Json::String(ids.person(*m))).collect())),
                    Value::Int(p.members.len() as i64),
                    p.formed_on.into(),
                    p.dissolved_on.into(),
                    p.dissolve_reason.clone().into(),
                    Value::Int(p.sessions_held.len() as i64),
                    p.first_session().into(),
                ]
            })
            .collect(),
        "sessions" => study
            .sessions
            .values()
            .map(|s| {
                vec![
                    s.session_id.to_string().into(),
                    s.pair_id.to_string().into(),
                    s.program_id.to_string().into(),
                    s.status.into(),
                    s.scheduled_for.into(),
                    s.held_at.into(),
                    s.minutes.into(),
                    Value::Json(Json::Array(s.activities.iter().map(|a| Json::String(a.clone())).collect())),
                ]
            })
            .collect(),
        "goals" => study
            .goals
            .values()
            .map(|g| {
                vec![
                    g.goal_id.to_string().into(),
                    g.pair_id.to_string().into(),
                    g.program_id.to_string().into(),
                    ids.person(g.owner).into(),
                    g.status.into(),
                    g.set_on.into(),
                    g.due_on.into(),
                    g.completed_on.into(),
                    g.abandoned_on.into(),
                ]
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Writes table `name` of `study` into `out`; returns the rows written.
pub fn write_table<W: Write + Send>(
    study: &Study,
    name: &str,
    ids: &Pseudonymizer,
    format: Format,
    options: TableOptions,
    out: W,
) -> Result<(W, u64)> {
    let Some((_, columns)) = TABLES.iter().find(|(n, _)| *n == name) else {
        return Err(ExportError::InvalidInput { field: "table", reason: format!("no fact table {name:?}") });
    };
    let all = rows(study, name, ids);
    let mut w = TableWriter::new(format, columns, out, options)?;
    // Write in slices so that a Parquet row group limit holds for big tables.
    for chunk in all.chunks(options.row_group_rows.max(1)) {
        w.write(chunk)?;
    }
    let n = w.rows();
    Ok((w.finish()?, n))
}
