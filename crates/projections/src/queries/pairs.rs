//! Reads of pairs and what happens in them, batched by pair for the API's
//! DataLoaders.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use sqlx::types::Json;
use tandem_domain::pair::PairStatus;
use tandem_domain::{GoalId, PairId, PersonId, ProgramId};
use uuid::Uuid;

use super::{Page, group, page, page_size, parse_id_cursor};
use crate::error::Result;
use crate::read_models::pairs::{FeedbackRow, GoalProgressRow, GoalRow, PairRow, SessionRow};
use crate::sql::unjson;

/// Who coached whom in a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CoachingPair {
    pub coach_id: Uuid,
    pub coachee_id: Uuid,
}

/// A session with who coached whom in it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionView {
    #[serde(flatten)]
    pub session: SessionRow,
    pub coaching: Vec<CoachingPair>,
}

fn status_text(s: PairStatus) -> &'static str {
    match s {
        PairStatus::Active => "ACTIVE",
        PairStatus::Paused => "PAUSED",
        PairStatus::Dissolved => "DISSOLVED",
    }
}

/// Many pairs (unknown ids are absent), by id.
pub async fn pairs_by_ids(pool: &PgPool, ids: &[PairId]) -> Result<Vec<PairRow>> {
    let ids: Vec<Uuid> = ids.iter().map(PairId::as_uuid).collect();
    let rows: Vec<Json<PairRow>> =
        sqlx::query_scalar("SELECT to_jsonb(p) FROM read.pairs p WHERE pair_id = ANY($1) ORDER BY pair_id")
            .bind(&ids)
            .fetch_all(pool)
            .await?;
    Ok(unjson(rows))
}

/// The pairs of a program, optionally of one status, in id (= formation)
/// order, one page after the cursor.
pub async fn pairs_of_program(
    pool: &PgPool,
    program: ProgramId,
    status: Option<PairStatus>,
    after: Option<&str>,
    limit: i64,
) -> Result<Page<PairRow>> {
    let limit = page_size(limit);
    let after = parse_id_cursor(after)?;
    let rows: Vec<Json<PairRow>> = sqlx::query_scalar(
        "SELECT to_jsonb(p) FROM read.pairs p
          WHERE program_id = $1 AND ($2::text IS NULL OR status = $2) AND ($3::uuid IS NULL OR pair_id > $3)
          ORDER BY pair_id LIMIT $4",
    )
    .bind(program.as_uuid())
    .bind(status.map(status_text))
    .bind(after)
    .bind(limit + 1)
    .fetch_all(pool)
    .await?;
    Ok(page(unjson(rows), limit, |p| p.pair_id.to_string()))
}

/// The pairs many people are or were members of (optionally in one
/// program), grouped by person, newest first.
pub async fn pairs_of_people(
    pool: &PgPool,
    people: &[PersonId],
    program: Option<ProgramId>,
) -> Result<HashMap<PersonId, Vec<PairRow>>> {
    let ids: Vec<Uuid> = people.iter().map(PersonId::as_uuid).collect();
    let rows: Vec<(Uuid, Json<PairRow>)> = sqlx::query_as(
        "SELECT m.person_id, to_jsonb(p) FROM read.pair_members m JOIN read.pairs p USING (pair_id)
          WHERE m.person_id = ANY($1) AND ($2::uuid IS NULL OR m.program_id = $2)
          ORDER BY m.person_id, p.formed_on DESC, p.pair_id DESC",
    )
    .bind(&ids)
    .bind(program.map(|p| p.as_uuid()))
    .fetch_all(pool)
    .await?;
    let mut map: HashMap<PersonId, Vec<PairRow>> = HashMap::new();
    for (person, Json(pair)) in rows {
        map.entry(PersonId::from_uuid(person)).or_default().push(pair);
    }
    Ok(map)
}

/// The sessions of many pairs with their coaching rows, grouped by pair,
/// in time order (held, else planned, else recorded).
pub async fn sessions_of_pairs(pool: &PgPool, pairs: &[PairId]) -> Result<HashMap<PairId, Vec<SessionView>>> {
    let ids: Vec<Uuid> = pairs.iter().map(PairId::as_uuid).collect();
    let rows: Vec<Json<SessionView>> = sqlx::query_scalar(
        "SELECT to_jsonb(s) || jsonb_build_object('coaching', COALESCE(
                    (SELECT jsonb_agg(jsonb_build_object('coach_id', c.coach_id, 'coachee_id', c.coachee_id)
                                      ORDER BY c.coach_id, c.coachee_id)
                       FROM read.session_coaching c WHERE c.session_id = s.session_id), '[]'::jsonb))
           FROM read.sessions s
          WHERE s.pair_id = ANY($1)
          ORDER BY s.pair_id, COALESCE(s.held_at, s.scheduled_for, s.created_at), s.session_id",
    )
    .bind(&ids)
    .fetch_all(pool)
    .await?;
    Ok(group(unjson(rows), |s| PairId::from_uuid(s.session.pair_id)))
}

/// The goals of many pairs, grouped by pair, in the order they were set.
pub async fn goals_of_pairs(pool: &PgPool, pairs: &[PairId]) -> Result<HashMap<PairId, Vec<GoalRow>>> {
    let ids: Vec<Uuid> = pairs.iter().map(PairId::as_uuid).collect();
    let rows: Vec<Json<GoalRow>> = sqlx::query_scalar(
        "SELECT to_jsonb(g) FROM read.goals g WHERE pair_id = ANY($1) ORDER BY pair_id, set_on, goal_id",
    )
    .bind(&ids)
    .fetch_all(pool)
    .await?;
    Ok(group(unjson(rows), |g| PairId::from_uuid(g.pair_id)))
}

/// The progress entries of many goals, grouped by goal, in recording order.
pub async fn goal_progress(pool: &PgPool, goals: &[GoalId]) -> Result<HashMap<GoalId, Vec<GoalProgressRow>>> {
    let ids: Vec<Uuid> = goals.iter().map(GoalId::as_uuid).collect();
    let rows: Vec<Json<GoalProgressRow>> = sqlx::query_scalar(
        "SELECT to_jsonb(g) FROM read.goal_progress g WHERE goal_id = ANY($1) ORDER BY goal_id, seq",
    )
    .bind(&ids)
    .fetch_all(pool)
    .await?;
    Ok(group(unjson(rows), |g| GoalId::from_uuid(g.goal_id)))
}

/// All feedback of many pairs, grouped by pair, in the order given. The
/// caller filters by visibility ([`FeedbackRow::readable_by`]).
pub async fn feedback_of_pairs(pool: &PgPool, pairs: &[PairId]) -> Result<HashMap<PairId, Vec<FeedbackRow>>> {
    let ids: Vec<Uuid> = pairs.iter().map(PairId::as_uuid).collect();
    let rows: Vec<Json<FeedbackRow>> = sqlx::query_scalar(
        "SELECT to_jsonb(f) FROM read.feedback f WHERE pair_id = ANY($1) ORDER BY pair_id, given_at, feedback_id",
    )
    .bind(&ids)
    .fetch_all(pool)
    .await?;
    Ok(group(unjson(rows), |f| PairId::from_uuid(f.pair_id)))
}
