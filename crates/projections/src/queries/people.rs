//! Reads of people and their org history.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use sqlx::types::Json;
use tandem_domain::values::LeaveReason;
use tandem_domain::{PersonId, ProgramId};
use uuid::Uuid;

use super::{Page, page, page_size};
use crate::error::{ProjectionError, Result};
use crate::read_models::people::OrgRangeRow;
use crate::sql::unjson;

/// A person with their org facts as of the date asked for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PersonView {
    pub person_id: PersonId,
    pub external_id: Option<String>,
    /// `None` once erased.
    pub name: Option<String>,
    pub email: Option<String>,
    pub location: Option<String>,
    pub hired_on: NaiveDate,
    pub left_on: Option<NaiveDate>,
    pub leave_reason: Option<LeaveReason>,
    pub rejoined_on: Option<NaiveDate>,
    pub erased: bool,
    /// Org facts on the date asked for.
    pub manager_id: Option<PersonId>,
    pub department: String,
    pub title: String,
    pub level: i16,
    /// The list's sort key (lower-cased name), for cursors.
    pub sort_name: String,
    pub updated_at: DateTime<Utc>,
    pub version: i32,
}

/// Org facts of a person on a date.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgFacts {
    pub person_id: PersonId,
    pub manager_id: Option<PersonId>,
    pub department: String,
    pub title: String,
    pub level: i16,
}

/// Filters of the people list; `None` / `false` filters nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeopleFilter {
    /// In this department on the date asked for.
    pub department: Option<String>,
    /// At this level on the date asked for.
    pub level: Option<i16>,
    /// Currently enrolled in this program.
    pub program: Option<ProgramId>,
    /// `Some(true)`: only people who have left; `Some(false)`: only people
    /// still here.
    pub left: Option<bool>,
    /// Case-insensitive substring of the name.
    pub name_contains: Option<String>,
    /// Whether erased people (nameless) are listed.
    pub include_erased: bool,
}

/// The position in the people list: after this person.
///
/// The cursor carries the person's id only, never their name: the sort
/// key of the position, (name, id), is read back from the read model when
/// the next page is asked for. If the person was renamed in between, the
/// next page continues from where the new name sorts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeopleCursor {
    pub person_id: Uuid,
}

impl PeopleCursor {
    /// The cursor right after `person`.
    #[must_use]
    pub fn after(person: &PersonView) -> Self {
        Self { person_id: person.person_id.as_uuid() }
    }

    /// The opaque text form: the person's id.
    #[must_use]
    pub fn encode(&self) -> String {
        self.person_id.to_string()
    }

    /// Parses [`PeopleCursor::encode`]'s form.
    pub fn decode(s: &str) -> Result<Self> {
        let person_id = Uuid::parse_str(s).map_err(|_| ProjectionError::InvalidCursor("expected a people cursor"))?;
        Ok(Self { person_id })
    }
}

/// The sort key (name, id) a cursor stands for; an id that is no person
/// is not a cursor of this list.
async fn people_anchor(pool: &PgPool, cursor: &PeopleCursor) -> Result<(String, Uuid)> {
    let sort_name: Option<String> = sqlx::query_scalar("SELECT sort_name FROM read.people WHERE person_id = $1")
        .bind(cursor.person_id)
        .fetch_optional(pool)
        .await?;
    let sort_name = sort_name.ok_or(ProjectionError::InvalidCursor("not a cursor of this list"))?;
    Ok((sort_name, cursor.person_id))
}

/// The columns of a [`PersonView`]: the profile joined with the history
/// range that holds on `$2` (ranges cover every date, so exactly one).
/// The columns of a [`PersonView`], from `read.people p` and the org
/// history row `h` valid on the day.
macro_rules! person_view_columns {
    () => {
        "p.person_id, p.external_id, p.name, p.email, p.location, p.hired_on, p.left_on,
         p.leave_reason, p.rejoined_on, p.erased, p.sort_name, p.updated_at, p.version,
         h.manager_id, h.department, h.title, h.level"
    };
}

macro_rules! person_view_sql {
    ($where:literal, $tail:literal) => {
        concat!(
            "SELECT to_jsonb(x) FROM (
                SELECT ",
            person_view_columns!(),
            "
                  FROM read.people p
                  JOIN read.person_org_history h
                    ON h.person_id = p.person_id
                   AND (h.valid_from IS NULL OR h.valid_from <= $2::date)
                   AND (h.valid_to IS NULL OR h.valid_to > $2::date)
                 WHERE ",
            $where,
            " ",
            $tail,
            ") x"
        )
    };
}

/// One person, with org facts as of `on`.
pub async fn person(pool: &PgPool, id: PersonId, on: NaiveDate) -> Result<Option<PersonView>> {
    Ok(people_by_ids(pool, &[id], on).await?.into_iter().next())
}

/// Many people (unknown ids are absent), ordered by name.
pub async fn people_by_ids(pool: &PgPool, ids: &[PersonId], on: NaiveDate) -> Result<Vec<PersonView>> {
    let ids: Vec<Uuid> = ids.iter().map(PersonId::as_uuid).collect();
    // One primary-key lookup per id, and one org-history lookup per person:
    // a join of `person_id = ANY($1)` against the whole history let the
    // planner hash a sequential scan of it (tens of milliseconds for a
    // page of members on a large organisation).
    let rows: Vec<Json<PersonView>> = sqlx::query_scalar(concat!(
        "SELECT to_jsonb(x) FROM (
            SELECT ",
        person_view_columns!(),
        "
              FROM (SELECT DISTINCT id FROM unnest($1::uuid[]) AS id) w
              JOIN read.people p ON p.person_id = w.id
             CROSS JOIN LATERAL (
                   SELECT o.manager_id, o.department, o.title, o.level
                     FROM read.person_org_history o
                    WHERE o.person_id = p.person_id
                      AND (o.valid_from IS NULL OR o.valid_from <= $2::date)
                      AND (o.valid_to IS NULL OR o.valid_to > $2::date)
                   ) h
             ORDER BY p.sort_name, p.person_id
        ) x"
    ))
    .bind(&ids)
    .bind(on)
    .fetch_all(pool)
    .await?;
    Ok(unjson(rows))
}

/// Escapes LIKE's wildcards so that a search for "50%" means the text.
fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

/// The people list, filtered, ordered by (name, id), one page after
/// `after` (a [`PeopleCursor`] text).
pub async fn people(
    pool: &PgPool,
    filter: &PeopleFilter,
    on: NaiveDate,
    after: Option<&str>,
    limit: i64,
) -> Result<Page<PersonView>> {
    let limit = page_size(limit);
    let after = match after.map(PeopleCursor::decode).transpose()? {
        Some(cursor) => Some(people_anchor(pool, &cursor).await?),
        None => None,
    };
    let search = filter.name_contains.as_deref().map(|s| like_escape(&s.trim().to_lowercase()));
    let rows: Vec<Json<PersonView>> = sqlx::query_scalar(person_view_sql!(
        "($1::uuid IS NULL OR p.person_id = $1)
           AND ($3::text IS NULL OR h.department = $3)
           AND ($4::smallint IS NULL OR h.level = $4)
           AND ($5::uuid IS NULL OR EXISTS (
                 SELECT 1 FROM read.enrolments e
                  WHERE e.program_id = $5 AND e.person_id = p.person_id AND e.withdrew_on IS NULL))
           AND ($6::boolean IS NULL OR (p.left_on IS NOT NULL) = $6)
           AND ($7::text IS NULL OR p.sort_name LIKE '%' || $7 || '%')
           AND ($8 OR NOT p.erased)
           AND ($9::text IS NULL OR (p.sort_name, p.person_id) > ($9, $10::uuid))",
        "ORDER BY p.sort_name, p.person_id LIMIT $11"
    ))
    .bind(Option::<Uuid>::None)
    .bind(on)
    .bind(filter.department.as_deref())
    .bind(filter.level)
    .bind(filter.program.map(|p| p.as_uuid()))
    .bind(filter.left)
    .bind(search)
    .bind(filter.include_erased)
    .bind(after.as_ref().map(|(name, _)| name.clone()))
    .bind(after.as_ref().map(|(_, id)| *id))
    .bind(limit + 1)
    .fetch_all(pool)
    .await?;
    Ok(page(unjson(rows), limit, |p| PeopleCursor::after(p).encode()))
}

/// Org facts of many people as of `on`.
pub async fn org_on(pool: &PgPool, ids: &[PersonId], on: NaiveDate) -> Result<HashMap<PersonId, OrgFacts>> {
    let ids: Vec<Uuid> = ids.iter().map(PersonId::as_uuid).collect();
    let rows: Vec<Json<OrgFacts>> = sqlx::query_scalar(
        "SELECT jsonb_build_object('person_id', person_id, 'manager_id', manager_id, 'department', department,
                                   'title', title, 'level', level)
           FROM read.person_org_history
          WHERE person_id = ANY($1)
            AND (valid_from IS NULL OR valid_from <= $2) AND (valid_to IS NULL OR valid_to > $2)",
    )
    .bind(&ids)
    .bind(on)
    .fetch_all(pool)
    .await?;
    Ok(unjson(rows).into_iter().map(|f| (f.person_id, f)).collect())
}

/// Who managed `person` on `on`: `None` for an unknown person, `Some(None)`
/// for nobody.
pub async fn manager_on(pool: &PgPool, person: PersonId, on: NaiveDate) -> Result<Option<Option<PersonId>>> {
    Ok(org_on(pool, &[person], on).await?.remove(&person).map(|f| f.manager_id))
}

/// The whole dated org history of a person, in date order.
pub async fn org_history(pool: &PgPool, person: PersonId) -> Result<Vec<OrgRangeRow>> {
    let rows: Vec<Json<OrgRangeRow>> =
        sqlx::query_scalar("SELECT to_jsonb(h) FROM read.person_org_history h WHERE person_id = $1 ORDER BY seq")
            .bind(person.as_uuid())
            .fetch_all(pool)
            .await?;
    Ok(unjson(rows))
}

/// The people `manager` managed directly on `on`, by id.
pub async fn reports_on(pool: &PgPool, manager: PersonId, on: NaiveDate) -> Result<Vec<PersonId>> {
    let rows: Vec<(Uuid,)> = sqlx::query_as(
        "SELECT person_id FROM read.person_org_history
          WHERE manager_id = $1
            AND (valid_from IS NULL OR valid_from <= $2) AND (valid_to IS NULL OR valid_to > $2)
          ORDER BY person_id",
    )
    .bind(manager.as_uuid())
    .bind(on)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|(id,)| PersonId::from_uuid(id)).collect())
}

/// The person whose HRIS external id is `external_id`, with org facts as of
/// `on`, or `None`. External ids are compared without regard to case, as
/// identity providers compare user names (`Alice@x` and `alice@x` are one
/// account; the command side keeps them unique that way). Should old data
/// hold two case variants, the one not erased wins. Erased people are not
/// found: their external id is forgotten with the rest of their personal
/// data (a later sync that sends it again registers a new person).
///
/// This is the shared look-up of people sync: SCIM (`userName`), the CSV
/// import and the bulk upsert key people by it.
pub async fn person_by_external_id(pool: &PgPool, external_id: &str, on: NaiveDate) -> Result<Option<PersonView>> {
    Ok(people_by_external_ids(pool, &[external_id.to_owned()], on).await?.into_iter().next().map(|(_, p)| p))
}

/// Many people by external id (see [`person_by_external_id`] for the
/// matching rule), as `(the id asked for, the person)` pairs; ids that match
/// nobody are absent. One query for the whole batch.
pub async fn people_by_external_ids(
    pool: &PgPool,
    external_ids: &[String],
    on: NaiveDate,
) -> Result<Vec<(String, PersonView)>> {
    let lowered: Vec<String> = external_ids.iter().map(|s| s.trim().to_lowercase()).collect();
    // DISTINCT ON keeps one person per id asked for, preferring one not
    // erased.
    let rows: Vec<(String, Json<PersonView>)> = sqlx::query_as(concat!(
        "SELECT x.asked, to_jsonb(x) - 'asked' FROM (
            SELECT DISTINCT ON (w.asked) w.asked, ",
        person_view_columns!(),
        "
              FROM unnest($1::text[]) AS w(asked)
              JOIN read.people p ON lower(p.external_id) = w.asked
             CROSS JOIN LATERAL (
                   SELECT o.manager_id, o.department, o.title, o.level
                     FROM read.person_org_history o
                    WHERE o.person_id = p.person_id
                      AND (o.valid_from IS NULL OR o.valid_from <= $2::date)
                      AND (o.valid_to IS NULL OR o.valid_to > $2::date)
                   ) h
             ORDER BY w.asked, p.erased, p.person_id
        ) x"
    ))
    .bind(&lowered)
    .bind(on)
    .fetch_all(pool)
    .await?;
    let by_lower: HashMap<String, PersonView> = rows.into_iter().map(|(k, Json(v))| (k, v)).collect();
    Ok(external_ids
        .iter()
        .filter_map(|id| by_lower.get(&id.trim().to_lowercase()).map(|p| (id.clone(), p.clone())))
        .collect())
}

/// Every person not erased, with org facts as of `on`, in registration
/// order (person ids are UUID v7, so by id), up to `limit`. For clients that
/// filter on attributes the read model has no index for (SCIM filters): the
/// caller evaluates the filter over this set.
pub async fn all_people(pool: &PgPool, on: NaiveDate, limit: i64) -> Result<Vec<PersonView>> {
    let rows: Vec<Json<PersonView>> =
        sqlx::query_scalar(person_view_sql!("NOT p.erased", "ORDER BY p.person_id LIMIT $1"))
            .bind(limit)
            .bind(on)
            .fetch_all(pool)
            .await?;
    Ok(unjson(rows))
}

/// How many people are in the organisation now (registered, not left, not
/// erased).
pub async fn count_people_here(pool: &PgPool) -> Result<u64> {
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM read.people WHERE NOT erased AND left_on IS NULL")
        .fetch_one(pool)
        .await?;
    Ok(u64::try_from(n).unwrap_or_default())
}

/// The people in the organisation now as `(id, external id, stream
/// version)`, by id, one page after `after`: for a full-file feed to find
/// who it no longer lists.
pub async fn people_here_after(
    pool: &PgPool,
    after: Option<PersonId>,
    limit: i64,
) -> Result<Vec<(PersonId, String, i32)>> {
    let rows: Vec<(Uuid, String, i32)> = sqlx::query_as(
        "SELECT person_id, external_id, version FROM read.people
          WHERE NOT erased AND left_on IS NULL AND ($1::uuid IS NULL OR person_id > $1)
          ORDER BY person_id LIMIT $2",
    )
    .bind(after.map(|a| a.as_uuid()))
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|(id, ext, v)| (PersonId::from_uuid(id), ext, v)).collect())
}
