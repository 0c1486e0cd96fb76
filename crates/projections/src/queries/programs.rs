//! Reads of programs, enrolments and participation facts.

use std::collections::HashMap;

use sqlx::PgPool;
use sqlx::types::Json;
use tandem_domain::{PersonId, ProgramId};
use uuid::Uuid;

use super::{Page, group, page, page_size, parse_id_cursor};
use crate::error::Result;
use crate::read_models::participation::ParticipationRow;
use crate::read_models::programs::{EnrolmentRow, ProgramRow, ProgramStatus};
use crate::sql::unjson;

/// One program.
pub async fn program(pool: &PgPool, id: ProgramId) -> Result<Option<ProgramRow>> {
    Ok(programs_by_ids(pool, &[id]).await?.into_iter().next())
}

/// Many programs (unknown ids are absent), by id.
pub async fn programs_by_ids(pool: &PgPool, ids: &[ProgramId]) -> Result<Vec<ProgramRow>> {
    let ids: Vec<Uuid> = ids.iter().map(ProgramId::as_uuid).collect();
    let rows: Vec<Json<ProgramRow>> =
        sqlx::query_scalar("SELECT to_jsonb(p) FROM read.programs p WHERE program_id = ANY($1) ORDER BY program_id")
            .bind(&ids)
            .fetch_all(pool)
            .await?;
    Ok(unjson(rows))
}

/// Programs, optionally of one status, in id (= creation) order, one page
/// after the cursor.
pub async fn programs(
    pool: &PgPool,
    status: Option<ProgramStatus>,
    after: Option<&str>,
    limit: i64,
) -> Result<Page<ProgramRow>> {
    let limit = page_size(limit);
    let after = parse_id_cursor(after)?;
    let status = status.map(|s| match s {
        ProgramStatus::Open => "OPEN",
        ProgramStatus::Closed => "CLOSED",
    });
    let rows: Vec<Json<ProgramRow>> = sqlx::query_scalar(
        "SELECT to_jsonb(p) FROM read.programs p
          WHERE ($1::text IS NULL OR status = $1) AND ($2::uuid IS NULL OR program_id > $2)
          ORDER BY program_id LIMIT $3",
    )
    .bind(status)
    .bind(after)
    .bind(limit + 1)
    .fetch_all(pool)
    .await?;
    Ok(page(unjson(rows), limit, |p| p.program_id.to_string()))
}

/// The enrolments of a program (only current ones when `current_only`),
/// ordered by person, one page after the cursor (a person id).
pub async fn enrolments_of_program(
    pool: &PgPool,
    program: ProgramId,
    current_only: bool,
    after: Option<&str>,
    limit: i64,
) -> Result<Page<EnrolmentRow>> {
    let limit = page_size(limit);
    let after = parse_id_cursor(after)?;
    // Page by person: all periods of one person stay on one page.
    let rows: Vec<Json<EnrolmentRow>> = sqlx::query_scalar(
        "WITH persons AS (
             SELECT DISTINCT person_id FROM read.enrolments
              WHERE program_id = $1 AND (NOT $2 OR withdrew_on IS NULL) AND ($3::uuid IS NULL OR person_id > $3)
              ORDER BY person_id LIMIT $4)
         SELECT to_jsonb(e) FROM read.enrolments e JOIN persons USING (person_id)
          WHERE e.program_id = $1 AND (NOT $2 OR e.withdrew_on IS NULL)
          ORDER BY e.person_id, e.seq",
    )
    .bind(program.as_uuid())
    .bind(current_only)
    .bind(after)
    .bind(limit + 1)
    .fetch_all(pool)
    .await?;
    let rows = unjson(rows);
    // `limit + 1` persons were fetched; cut at the limit-th person.
    let mut persons: Vec<Uuid> = rows.iter().map(|r| r.person_id).collect();
    persons.dedup();
    let limit_usize = usize::try_from(limit).unwrap_or(usize::MAX);
    if persons.len() > limit_usize
        && let Some(&last) = persons.get(limit_usize - 1)
    {
        let items: Vec<EnrolmentRow> = rows.into_iter().filter(|r| r.person_id <= last).collect();
        return Ok(Page { items, next: Some(last.to_string()) });
    }
    Ok(Page { items: rows, next: None })
}

/// Every enrolment period of many people, grouped by person, in program
/// and date order.
pub async fn enrolments_of_people(pool: &PgPool, ids: &[PersonId]) -> Result<HashMap<PersonId, Vec<EnrolmentRow>>> {
    let ids: Vec<Uuid> = ids.iter().map(PersonId::as_uuid).collect();
    let rows: Vec<Json<EnrolmentRow>> = sqlx::query_scalar(
        "SELECT to_jsonb(e) FROM read.enrolments e WHERE person_id = ANY($1) ORDER BY person_id, program_id, seq",
    )
    .bind(&ids)
    .fetch_all(pool)
    .await?;
    Ok(group(unjson(rows), |r| PersonId::from_uuid(r.person_id)))
}

/// The participation facts of a program, by person.
pub async fn participation_of_program(pool: &PgPool, program: ProgramId) -> Result<Vec<ParticipationRow>> {
    let rows: Vec<Json<ParticipationRow>> =
        sqlx::query_scalar("SELECT to_jsonb(p) FROM read.participation p WHERE program_id = $1 ORDER BY person_id")
            .bind(program.as_uuid())
            .fetch_all(pool)
            .await?;
    Ok(unjson(rows))
}

/// The participation facts of many people, grouped by person.
pub async fn participation_of_people(
    pool: &PgPool,
    ids: &[PersonId],
) -> Result<HashMap<PersonId, Vec<ParticipationRow>>> {
    let ids: Vec<Uuid> = ids.iter().map(PersonId::as_uuid).collect();
    let rows: Vec<Json<ParticipationRow>> = sqlx::query_scalar(
        "SELECT to_jsonb(p) FROM read.participation p WHERE person_id = ANY($1) ORDER BY person_id, program_id",
    )
    .bind(&ids)
    .fetch_all(pool)
    .await?;
    Ok(group(unjson(rows), |r| PersonId::from_uuid(r.person_id)))
}
