//! Per-program head counts, computed on demand by one SQL statement over the
//! read models rather than maintained incrementally: every figure is "as of
//! a date", and a date-parameterised query answers any date (including the
//! past, for trend charts) from the same rows, with nothing to keep in step.
//!
//! Definitions, all as of the date `D` (inclusive; a session's day is the
//! UTC date of `held_at`):
//! - `enrolled`: people with an enrolment period covering `D`
//!   (`enrolled_on <= D`, not withdrawn on or before `D`).
//! - `matched`: of those, the people who have been a member of a pair of the
//!   program formed on or before `D` ("ever matched", whether or not that
//!   pair still runs); `currently_paired`: of those, the ones in a pair not
//!   dissolved by `D`. `match_rate = matched / enrolled` (None when nobody is
//!   enrolled).
//! - `pairs_formed`: pairs formed on or before `D`; `current_pairs`: of
//!   those, not dissolved by `D` (active or paused).
//! - `active_pairs`: current pairs that held a session in the 30 days
//!   ending on `D` (`D - 29 ..= D`).
//! - `sessions_held`: sessions held on or before `D`.
//! - `goals_set`: goals set on or before `D`; `goals_completed`: completed
//!   on or before `D`.
//! - `median_days_enrolment_to_pair`: over participants first paired on or
//!   before `D`, the days from their first enrolment to their first pair.
//! - `median_days_pair_to_first_session`: over pairs formed on or before `D`
//!   whose first session was held on or before `D`, the days from
//!   formation to that session.

use chrono::NaiveDate;
use sqlx::PgPool;
use tandem_domain::ProgramId;

use crate::error::Result;

/// How many days "recently active" looks back, `D` included.
pub const ACTIVE_WINDOW_DAYS: i32 = 30;

/// The statistics of one program as of a date; see the module docs for the
/// definitions.
#[derive(Clone, Debug, PartialEq)]
pub struct ProgramStats {
    pub program_id: ProgramId,
    pub as_of: NaiveDate,
    pub enrolled: i64,
    pub matched: i64,
    pub currently_paired: i64,
    pub match_rate: Option<f64>,
    pub pairs_formed: i64,
    pub current_pairs: i64,
    pub active_pairs: i64,
    pub sessions_held: i64,
    pub goals_set: i64,
    pub goals_completed: i64,
    pub median_days_enrolment_to_pair: Option<f64>,
    pub median_days_pair_to_first_session: Option<f64>,
}

type StatsRow = (i64, i64, i64, i64, i64, i64, i64, i64, i64, Option<f64>, Option<f64>);

/// The statistics of `program_id` as of `as_of`. A program without any
/// rows gives zeros.
#[tracing::instrument(level = "debug", skip(pool))]
pub async fn program_stats(pool: &PgPool, program_id: ProgramId, as_of: NaiveDate) -> Result<ProgramStats> {
    let row: StatsRow = sqlx::query_as(
        "WITH enrolled AS (
             SELECT DISTINCT person_id FROM read.enrolments
              WHERE program_id = $1 AND enrolled_on <= $2::date AND (withdrew_on IS NULL OR withdrew_on > $2::date)
         ), formed AS (
             SELECT pair_id, formed_on, dissolved_on, first_session_at,
                    dissolved_on IS NULL OR dissolved_on > $2::date AS current
               FROM read.pairs WHERE program_id = $1 AND formed_on <= $2::date
         ), paired AS (
             SELECT m.person_id, bool_or(f.current) AS current
               FROM read.pair_members m JOIN formed f USING (pair_id)
              GROUP BY m.person_id
         )
         SELECT
             (SELECT count(*) FROM enrolled),
             (SELECT count(*) FROM paired JOIN enrolled USING (person_id)),
             (SELECT count(*) FROM paired JOIN enrolled USING (person_id) WHERE paired.current),
             (SELECT count(*) FROM formed),
             (SELECT count(*) FROM formed WHERE current),
             (SELECT count(*) FROM formed f
               WHERE f.current
                 AND EXISTS (SELECT 1 FROM read.sessions s
                              WHERE s.pair_id = f.pair_id AND s.status = 'HELD'
                                AND (s.held_at AT TIME ZONE 'UTC')::date BETWEEN $2::date - ($3 - 1) AND $2::date)),
             (SELECT count(*) FROM read.sessions
               WHERE program_id = $1 AND status = 'HELD' AND (held_at AT TIME ZONE 'UTC')::date <= $2::date),
             (SELECT count(*) FROM read.goals WHERE program_id = $1 AND set_on <= $2::date),
             (SELECT count(*) FROM read.goals
               WHERE program_id = $1 AND status = 'COMPLETED' AND completed_on <= $2::date),
             (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY paired_on - enrolled_on)
                FROM read.participation
               WHERE program_id = $1 AND paired_on <= $2::date AND enrolled_on IS NOT NULL),
             (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY (first_session_at AT TIME ZONE 'UTC')::date - formed_on)
                FROM formed WHERE (first_session_at AT TIME ZONE 'UTC')::date <= $2::date)",
    )
    .bind(program_id.as_uuid())
    .bind(as_of)
    .bind(ACTIVE_WINDOW_DAYS)
    .fetch_one(pool)
    .await?;
    let (
        enrolled,
        matched,
        currently_paired,
        pairs_formed,
        current_pairs,
        active_pairs,
        sessions_held,
        goals_set,
        goals_completed,
        median_days_enrolment_to_pair,
        median_days_pair_to_first_session,
    ) = row;
    // Head counts are far below 2^52, so the conversion is exact.
    let match_rate = (enrolled > 0).then(|| matched as f64 / enrolled as f64);
    Ok(ProgramStats {
        program_id,
        as_of,
        enrolled,
        matched,
        currently_paired,
        match_rate,
        pairs_formed,
        current_pairs,
        active_pairs,
        sessions_held,
        goals_set,
        goals_completed,
        median_days_enrolment_to_pair,
        median_days_pair_to_first_session,
    })
}
