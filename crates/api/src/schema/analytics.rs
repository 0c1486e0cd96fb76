//! The analysts' queries: the metrics of the field per program and cohort
//! (`programMetrics`) and employment retention with Kaplan–Meier curves and
//! the log-rank test (`retention`).
//!
//! Both read the event log up to `asOf` (a settled instant; default now)
//! through [`tandem_projections::stats::Study`], so the same question gives
//! the same answer later; definitions and the suppression rules are in
//! `tandem_projections::stats` and `docs/ANALYSTS.md`. Groups under five
//! people are `suppressed` with null figures. No person appears in any
//! answer, not even as a pseudonym.

use async_graphql::{Context, Enum, ID, Object, SimpleObject};
use chrono::{DateTime, NaiveDate, Utc};
use tandem_domain::ProgramId;
use tandem_projections::ProjectionError;
use tandem_projections::stats::{self, CiTransform, RetentionQuery, Study};
use uuid::Uuid;

use super::types::parse_id;
use super::{check, state};
use crate::error::ApiError;

/// The analysts' queries.
#[derive(Default)]
pub struct AnalyticsQuery;

/// How the confidence interval of a survival curve is built.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq, Default)]
#[graphql(name = "SurvivalCiTransform")]
pub enum SurvivalCiTransform {
    /// On log(-log S), as Python's lifelines does (the default).
    #[default]
    LogLog,
    /// On log S, as R's survival package does by default.
    Log,
    /// On S itself (the plain Greenwood interval), clipped to [0, 1].
    Plain,
}

impl From<SurvivalCiTransform> for CiTransform {
    fn from(t: SurvivalCiTransform) -> Self {
        match t {
            SurvivalCiTransform::LogLog => Self::LogLog,
            SurvivalCiTransform::Log => Self::Log,
            SurvivalCiTransform::Plain => Self::Plain,
        }
    }
}

/// Early closures for one reason.
#[derive(SimpleObject)]
pub struct ReasonCount {
    /// A `DissolveReason` value.
    pub reason: String,
    /// How many early closures gave it.
    pub count: i64,
}

/// The figures of one group of participants: the whole program or one
/// enrolment cohort. Every figure is null when `suppressed`.
#[derive(SimpleObject)]
pub struct MetricsCell {
    /// The cohort (`YYYY-MM`, the month of first enrolment); null for the
    /// whole program.
    pub cohort: Option<String>,
    /// True when the group has fewer than five people, or would give a
    /// suppressed group away by subtraction; the figures are then null.
    pub suppressed: bool,
    /// Participants: people with an enrolment in the program.
    pub people: Option<i64>,
    /// Participants ever in a pair of the program.
    pub matched: Option<i64>,
    /// matched / people.
    pub match_rate: Option<f64>,
    /// Median days from enrolment to the first pair.
    pub median_days_to_match: Option<f64>,
    /// Median days from the first pair's formation to its first session.
    pub median_days_to_first_session: Option<f64>,
    /// Median days between consecutive sessions of a participant.
    pub median_session_gap_days: Option<f64>,
    /// Of the matched: the share in a current pair with a session in the
    /// last 30 days.
    pub active_pair_rate: Option<f64>,
    /// Matched participants whose first pair ended within 90 days.
    pub early_closures: Option<i64>,
    /// earlyClosures / matched.
    pub early_closure_rate: Option<f64>,
    /// The early closures by reason.
    pub early_closure_reasons: Option<Vec<ReasonCount>>,
    /// Goals the participants own in the program's pairs.
    pub goals_set: Option<i64>,
    /// Of those, the goals completed.
    pub goals_completed: Option<i64>,
    /// goalsCompleted / goalsSet.
    pub goal_completion_rate: Option<f64>,
}

fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl From<stats::Cell> for MetricsCell {
    fn from(c: stats::Cell) -> Self {
        let f = c.figures;
        Self {
            cohort: c.cohort,
            suppressed: c.suppressed,
            people: f.as_ref().map(|f| count(f.people)),
            matched: f.as_ref().map(|f| count(f.matched)),
            match_rate: f.as_ref().and_then(|f| f.match_rate),
            median_days_to_match: f.as_ref().and_then(|f| f.median_days_to_match),
            median_days_to_first_session: f.as_ref().and_then(|f| f.median_days_to_first_session),
            median_session_gap_days: f.as_ref().and_then(|f| f.median_session_gap_days),
            active_pair_rate: f.as_ref().and_then(|f| f.active_pair_rate),
            early_closures: f.as_ref().map(|f| count(f.early_closures)),
            early_closure_rate: f.as_ref().and_then(|f| f.early_closure_rate),
            early_closure_reasons: f.as_ref().map(|f| {
                f.early_closure_reasons
                    .iter()
                    .map(|(r, n)| ReasonCount { reason: r.clone(), count: count(*n) })
                    .collect()
            }),
            goals_set: f.as_ref().map(|f| count(f.goals_set)),
            goals_completed: f.as_ref().map(|f| count(f.goals_completed)),
            goal_completion_rate: f.as_ref().and_then(|f| f.goal_completion_rate),
        }
    }
}

/// A program's metrics as of an instant.
#[derive(SimpleObject)]
pub struct ProgramMetrics {
    /// The program.
    pub program_id: ID,
    /// The instant the figures are computed at.
    pub as_of: DateTime<Utc>,
    /// The cursor of the last event read (null for an empty log).
    pub cursor: Option<String>,
    /// The whole program.
    pub total: MetricsCell,
    /// One cell per enrolment month, oldest first.
    pub cohorts: Vec<MetricsCell>,
}

/// One step of a survival curve.
#[derive(SimpleObject)]
pub struct SurvivalPoint {
    /// Days since the origin.
    pub time: f64,
    /// People still observed just before `time`.
    pub at_risk: i64,
    /// Departures at `time`.
    pub events: i64,
    /// Observations censored at `time`.
    pub censored: i64,
    /// The Kaplan–Meier estimate of still being employed.
    pub survival: f64,
    /// The lower end of the confidence interval.
    pub lower: f64,
    /// The upper end of the confidence interval.
    pub upper: f64,
}

/// One group of a retention study.
#[derive(SimpleObject)]
pub struct SurvivalGroup {
    /// True when the group has fewer than five people: nothing else is given.
    pub suppressed: bool,
    /// People observed.
    pub people: Option<i64>,
    /// Departures observed before the end of the study.
    pub events: Option<i64>,
    /// The first time at which survival is at most 0.5; null if never.
    pub median_survival_days: Option<f64>,
    /// The curve: one point per distinct time, from time 0.
    pub points: Option<Vec<SurvivalPoint>>,
}

impl From<stats::RetentionGroup> for SurvivalGroup {
    fn from(g: stats::RetentionGroup) -> Self {
        let as_i64 = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        Self {
            suppressed: g.suppressed,
            people: g.people.map(as_i64),
            events: g.events.map(as_i64),
            median_survival_days: g.curve.as_ref().and_then(|c| c.median),
            points: g.curve.map(|c| {
                c.points
                    .into_iter()
                    .map(|p| SurvivalPoint {
                        time: p.time,
                        at_risk: count(p.at_risk),
                        events: count(p.events),
                        censored: count(p.censored),
                        survival: p.survival,
                        lower: p.lower,
                        upper: p.upper,
                    })
                    .collect()
            }),
        }
    }
}

/// The log-rank test of participants against non-participants.
#[derive(SimpleObject)]
pub struct LogRankTest {
    /// The chi-square statistic.
    pub statistic: f64,
    /// The chi-square p-value.
    pub p_value: f64,
    /// Always 1 (two groups).
    pub degrees_of_freedom: i32,
    /// Departures observed: participants, then non-participants.
    pub observed: Vec<i64>,
    /// Departures expected under one common hazard, in the same order.
    pub expected: Vec<f64>,
}

/// Employment retention of participants against non-participants.
#[derive(SimpleObject)]
pub struct Retention {
    /// The instant the study is computed at.
    pub as_of: DateTime<Utc>,
    /// The last day observed; later departures are censored.
    pub study_end: NaiveDate,
    /// The origin of non-participants; null when there is no program.
    pub index_date: Option<NaiveDate>,
    /// How the intervals are built.
    pub transform: SurvivalCiTransform,
    /// The confidence level of the intervals.
    pub confidence: f64,
    /// People enrolled by the end of the study, from their first enrolment.
    pub participants: SurvivalGroup,
    /// Everyone else employed on the index date, from that date.
    pub non_participants: SurvivalGroup,
    /// Null when either group is suppressed or empty.
    pub log_rank: Option<LogRankTest>,
}

fn study_error(e: ProjectionError) -> ApiError {
    match e {
        ProjectionError::InvalidStudy { field, reason } => ApiError::bad_input(field, format!("{field} {reason}")),
        other => ApiError::internal(other),
    }
}

async fn load(ctx: &Context<'_>, as_of: Option<DateTime<Utc>>) -> Result<Study, ApiError> {
    Study::load(&state(ctx).store, as_of).await.map_err(study_error)
}

#[Object]
impl AnalyticsQuery {
    /// The metrics of the field for a program, in total and per enrolment
    /// cohort, computed from the events recorded up to `asOf` (a settled
    /// instant in the past; default now). Groups under five people are
    /// suppressed.
    async fn program_metrics(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The program.")] program_id: ID,
        #[graphql(desc = "A settled instant in the past; default now.")] as_of: Option<DateTime<Utc>>,
    ) -> async_graphql::Result<ProgramMetrics> {
        check(ctx, "programMetrics")?;
        let id: ProgramId = parse_id("programId", &program_id)?;
        let study = load(ctx, as_of).await?;
        let m = stats::program_metrics(&study, id.as_uuid()).ok_or_else(|| ApiError::not_found("program"))?;
        Ok(ProgramMetrics {
            program_id,
            as_of: study.as_of,
            cursor: study.last_cursor.map(|c| c.to_string()),
            total: m.total.into(),
            cohorts: m.cohorts.into_iter().map(Into::into).collect(),
        })
    }

    /// Kaplan–Meier survival of employment for participants (from their
    /// first enrolment) against non-participants (from `indexDate`, by
    /// default the program's launch), censored at `studyEnd` or the day of
    /// `asOf`, with the log-rank test between them.
    #[expect(clippy::too_many_arguments, reason = "one parameter per GraphQL argument")]
    async fn retention(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Participants of this program; default: of any program.")] program_id: Option<ID>,
        #[graphql(desc = "A settled instant in the past; default now.")] as_of: Option<DateTime<Utc>>,
        #[graphql(desc = "The last day observed; default the day of asOf.")] study_end: Option<NaiveDate>,
        #[graphql(desc = "The origin of non-participants; default the program's launch.")] index_date: Option<
            NaiveDate,
        >,
        #[graphql(default, desc = "How the intervals are built.")] transform: SurvivalCiTransform,
        #[graphql(default = 0.95, desc = "The confidence level of the intervals.")] confidence: f64,
    ) -> async_graphql::Result<Retention> {
        check(ctx, "retention")?;
        let program: Option<Uuid> = match &program_id {
            Some(id) => Some(parse_id::<ProgramId>("programId", id)?.as_uuid()),
            None => None,
        };
        let study = load(ctx, as_of).await?;
        let query =
            RetentionQuery { program_id: program, study_end, index_date, transform: transform.into(), confidence };
        let r = stats::retention(&study, &query).map_err(study_error)?;
        Ok(Retention {
            as_of: study.as_of,
            study_end: r.end,
            index_date: r.index_date,
            transform,
            confidence,
            participants: r.participants.into(),
            non_participants: r.non_participants.into(),
            log_rank: r.log_rank.map(|l| LogRankTest {
                statistic: l.statistic,
                p_value: l.p_value,
                degrees_of_freedom: i32::try_from(l.degrees_of_freedom).unwrap_or(i32::MAX),
                observed: l.observed.iter().map(|n| count(*n)).collect(),
                expected: l.expected.to_vec(),
            }),
        })
    }
}
