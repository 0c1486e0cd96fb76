//! Reads and writes of the guard tables (see `migrations/0002_command_guards.sql`).
//!
//! Writes run in the command's transaction; a unique violation here means a
//! concurrent command won the race, and the service retries the attempt so
//! that the domain refuses it with its own error.

use std::collections::BTreeSet;

use sqlx::PgConnection;
use tandem_domain::{PairId, PersonId, ProgramId};
use uuid::Uuid;

use crate::error::CommandError;

/// Of `persons`, those in a current pair of `program`.
pub(crate) async fn paired_in_program(
    conn: &mut PgConnection,
    program: ProgramId,
    persons: &[PersonId],
) -> Result<BTreeSet<PersonId>, CommandError> {
    let ids: Vec<Uuid> = persons.iter().map(PersonId::as_uuid).collect();
    let rows: Vec<(Uuid,)> =
        sqlx::query_as("SELECT person_id FROM pair_memberships WHERE program_id = $1 AND person_id = ANY($2)")
            .bind(program.as_uuid())
            .bind(&ids)
            .fetch_all(conn)
            .await?;
    Ok(rows.into_iter().map(|(p,)| PersonId::from_uuid(p)).collect())
}

/// The current pairs `person` is a member of.
pub(crate) async fn pairs_of_person(conn: &mut PgConnection, person: PersonId) -> Result<Vec<PairId>, CommandError> {
    let rows: Vec<(Uuid,)> =
        sqlx::query_as("SELECT DISTINCT pair_id FROM pair_memberships WHERE person_id = $1 ORDER BY pair_id")
            .bind(person.as_uuid())
            .fetch_all(conn)
            .await?;
    Ok(rows.into_iter().map(|(p,)| PairId::from_uuid(p)).collect())
}

/// The current pairs of `program`.
pub(crate) async fn pairs_of_program(conn: &mut PgConnection, program: ProgramId) -> Result<Vec<PairId>, CommandError> {
    let rows: Vec<(Uuid,)> =
        sqlx::query_as("SELECT DISTINCT pair_id FROM pair_memberships WHERE program_id = $1 ORDER BY pair_id")
            .bind(program.as_uuid())
            .fetch_all(conn)
            .await?;
    Ok(rows.into_iter().map(|(p,)| PairId::from_uuid(p)).collect())
}

/// Records the members of a newly formed pair.
pub(crate) async fn insert_memberships(
    conn: &mut PgConnection,
    program: ProgramId,
    pair: PairId,
    members: &[PersonId],
) -> Result<(), CommandError> {
    let ids: Vec<Uuid> = members.iter().map(PersonId::as_uuid).collect();
    sqlx::query(
        "INSERT INTO pair_memberships (program_id, person_id, pair_id) SELECT $1, m, $2 FROM unnest($3::uuid[]) AS m",
    )
    .bind(program.as_uuid())
    .bind(pair.as_uuid())
    .bind(&ids)
    .execute(conn)
    .await?;
    Ok(())
}

/// Forgets the members of a dissolved pair.
pub(crate) async fn delete_memberships(conn: &mut PgConnection, pair: PairId) -> Result<(), CommandError> {
    sqlx::query("DELETE FROM pair_memberships WHERE pair_id = $1").bind(pair.as_uuid()).execute(conn).await?;
    Ok(())
}

/// Whether someone other than `person` holds `external_id`.
pub(crate) async fn external_id_taken(
    conn: &mut PgConnection,
    external_id: &str,
    person: PersonId,
) -> Result<bool, CommandError> {
    // As the unique index compares them: case-insensitively.
    let row: Option<(Uuid,)> =
        sqlx::query_as("SELECT person_id FROM person_external_ids WHERE lower(external_id) = lower($1)")
            .bind(external_id)
            .fetch_optional(conn)
            .await?;
    Ok(row.is_some_and(|(p,)| p != person.as_uuid()))
}

/// Claims `external_id` for `person`.
pub(crate) async fn claim_external_id(
    conn: &mut PgConnection,
    external_id: &str,
    person: PersonId,
) -> Result<(), CommandError> {
    sqlx::query("INSERT INTO person_external_ids (external_id, person_id) VALUES ($1, $2)")
        .bind(external_id)
        .bind(person.as_uuid())
        .execute(conn)
        .await?;
    Ok(())
}

/// Frees the external ids `person` holds (they are being erased): the HRIS
/// id's claim and the SCIM client's `externalId`, both kept in clear beside
/// the events, go in the erasure's transaction.
pub(crate) async fn release_external_id(conn: &mut PgConnection, person: PersonId) -> Result<(), CommandError> {
    sqlx::query("DELETE FROM person_external_ids WHERE person_id = $1")
        .bind(person.as_uuid())
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM scim_external_ids WHERE person_id = $1").bind(person.as_uuid()).execute(conn).await?;
    Ok(())
}
