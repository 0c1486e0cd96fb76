//! The `Program` type with its enrolments and statistics.

use async_graphql::{Context, ID, Object, SimpleObject};
use chrono::{DateTime, NaiveDate, Utc};
use tandem_domain::{PersonId, ProgramId};
use tandem_projections::queries;
use tandem_projections::read_models::programs::{EnrolmentRow, ProgramRow};

use super::enums::{GroupKind, PairStatus, ProgramStatus, Purpose};
use super::pair::{Pair, PairConnection};
use super::person::Person;
use super::{PageInfo, can_see_pair, me_as_participant, page_size};
use crate::error::ApiError;
use crate::policy::{self, Access};
use crate::schema::{state, viewer};

/// A peer-coaching program.
pub struct Program(pub ProgramRow);

/// The group shape of a program.
#[derive(SimpleObject, Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupFormat {
    /// Pairs or circles.
    pub kind: GroupKind,
    /// Fewest members of a group.
    pub min_size: i32,
    /// Most members of a group.
    pub max_size: i32,
}

/// A peer-coaching program: its rules, enrolments, pairs and statistics.
#[Object]
impl Program {
    /// The program's id.
    async fn id(&self) -> ID {
        ID(self.0.program_id.to_string())
    }
    /// Its name.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// What it is about.
    async fn description(&self) -> &str {
        &self.0.description
    }
    /// Why it exists.
    async fn purpose(&self) -> Purpose {
        self.0.purpose.into()
    }
    /// Pairs or circles, and their sizes.
    async fn format(&self) -> GroupFormat {
        GroupFormat {
            kind: self.0.kind.into(),
            min_size: i32::from(self.0.min_size),
            max_size: i32::from(self.0.max_size),
        }
    }
    /// The largest level difference allowed inside one group.
    async fn max_level_gap(&self) -> i32 {
        i32::from(self.0.max_level_gap)
    }
    /// Expected days between sessions.
    async fn cadence_days(&self) -> i32 {
        self.0.cadence_days
    }
    /// First day of the program.
    async fn starts_on(&self) -> NaiveDate {
        self.0.starts_on
    }
    /// Planned last day, if any.
    async fn ends_on(&self) -> Option<NaiveDate> {
        self.0.ends_on
    }
    /// Open or closed.
    async fn status(&self) -> ProgramStatus {
        self.0.status.into()
    }
    /// The day it closed.
    async fn closed_on(&self) -> Option<NaiveDate> {
        self.0.closed_on
    }
    /// How many people are currently enrolled.
    async fn participant_count(&self) -> i32 {
        self.0.participants
    }
    /// When it was launched.
    async fn launched_at(&self) -> DateTime<Utc> {
        self.0.launched_at
    }
    /// Enrolments, by person; a participant sees only their own.
    async fn enrolments(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only current enrolments (default) or also withdrawn ones.")] current_only: Option<bool>,
        #[graphql(desc = "How many to return.")] first: Option<i32>,
        #[graphql(desc = "Continue after this cursor.")] after: Option<String>,
    ) -> async_graphql::Result<EnrolmentConnection> {
        let first = page_size(ctx, first)?;
        let id = ProgramId::from_uuid(self.0.program_id);
        let page = queries::enrolments_of_program(
            &state(ctx).pool,
            id,
            current_only.unwrap_or(true),
            after.as_deref(),
            i64::try_from(first).unwrap_or(i64::MAX),
        )
        .await
        .map_err(projection_error)?;
        let own = match policy::access(viewer(ctx), "program") {
            Access::All => None,
            _ => Some(me_as_participant(ctx)),
        };
        let items: Vec<(String, Enrolment)> = page
            .items
            .into_iter()
            .filter(|e| own.is_none_or(|me| me.is_some_and(|me| me.as_uuid() == e.person_id)))
            .map(|e| (e.person_id.to_string(), Enrolment(e)))
            .collect();
        let info = PageInfo {
            has_next_page: page.next.is_some(),
            has_previous_page: after.is_some(),
            start_cursor: items.first().map(|(c, _)| c.clone()),
            end_cursor: page.next.clone().or_else(|| items.last().map(|(c, _)| c.clone())),
        };
        Ok(EnrolmentConnection::new(items, info))
    }
    /// Pairs and circles of the program the caller may see, in formation order.
    async fn pairs(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only pairs in this status.")] status: Option<PairStatus>,
        #[graphql(desc = "How many to return.")] first: Option<i32>,
        #[graphql(desc = "Continue after this cursor.")] after: Option<String>,
    ) -> async_graphql::Result<PairConnection> {
        program_pairs(ctx, ProgramId::from_uuid(self.0.program_id), status, first, after).await
    }
    /// Statistics of the program as of a date (default today).
    async fn stats(&self, ctx: &Context<'_>, as_of: Option<NaiveDate>) -> async_graphql::Result<ProgramStats> {
        crate::schema::check(ctx, "programStats")?;
        stats(ctx, ProgramId::from_uuid(self.0.program_id), as_of).await
    }
}

/// Maps a read-model error: a bad cursor is the client's, anything else ours.
pub(crate) fn projection_error(e: tandem_projections::ProjectionError) -> ApiError {
    match e {
        tandem_projections::ProjectionError::InvalidCursor(_) => ApiError::bad_input("after", "invalid cursor"),
        other => ApiError::internal(other),
    }
}

/// The pairs of a program the caller may see.
pub(crate) async fn program_pairs(
    ctx: &Context<'_>,
    program: ProgramId,
    status: Option<PairStatus>,
    first: Option<i32>,
    after: Option<String>,
) -> async_graphql::Result<PairConnection> {
    let first = page_size(ctx, first)?;
    let page = queries::pairs_of_program(
        &state(ctx).pool,
        program,
        status.map(Into::into),
        after.as_deref(),
        i64::try_from(first).unwrap_or(i64::MAX),
    )
    .await
    .map_err(projection_error)?;
    let items: Vec<(String, Pair)> = page
        .items
        .into_iter()
        .filter(|p| can_see_pair(ctx, "pairs", &p.member_ids))
        .map(|p| (p.pair_id.to_string(), Pair(p)))
        .collect();
    let info = PageInfo {
        has_next_page: page.next.is_some(),
        has_previous_page: after.is_some(),
        start_cursor: items.first().map(|(c, _)| c.clone()),
        end_cursor: page.next.clone().or_else(|| items.last().map(|(c, _)| c.clone())),
    };
    Ok(PairConnection::new(items, info))
}

/// The statistics of a program.
pub(crate) async fn stats(
    ctx: &Context<'_>,
    program: ProgramId,
    as_of: Option<NaiveDate>,
) -> async_graphql::Result<ProgramStats> {
    let as_of = as_of.unwrap_or_else(|| Utc::now().date_naive());
    let s = tandem_projections::program_stats(&state(ctx).pool, program, as_of).await.map_err(ApiError::internal)?;
    Ok(ProgramStats {
        as_of: s.as_of,
        enrolled: s.enrolled,
        matched: s.matched,
        currently_paired: s.currently_paired,
        match_rate: s.match_rate,
        pairs_formed: s.pairs_formed,
        current_pairs: s.current_pairs,
        active_pairs: s.active_pairs,
        sessions_held: s.sessions_held,
        goals_set: s.goals_set,
        goals_completed: s.goals_completed,
        median_days_enrolment_to_pair: s.median_days_enrolment_to_pair,
        median_days_pair_to_first_session: s.median_days_pair_to_first_session,
    })
}

/// Statistics of a program as of a date.
#[derive(SimpleObject, Clone, Debug)]
pub struct ProgramStats {
    /// The date the figures are for.
    pub as_of: NaiveDate,
    /// People enrolled on that date.
    pub enrolled: i64,
    /// Enrolled people who were ever in a pair of the program.
    pub matched: i64,
    /// Enrolled people in a current (active or paused) pair.
    pub currently_paired: i64,
    /// matched / enrolled; null when nobody is enrolled.
    pub match_rate: Option<f64>,
    /// Pairs and circles ever formed.
    pub pairs_formed: i64,
    /// Pairs not dissolved on that date.
    pub current_pairs: i64,
    /// Current pairs with a session held in the 30 days up to that date.
    pub active_pairs: i64,
    /// Sessions held up to that date.
    pub sessions_held: i64,
    /// Goals set up to that date.
    pub goals_set: i64,
    /// Goals completed up to that date.
    pub goals_completed: i64,
    /// Median days from enrolment to first pair.
    pub median_days_enrolment_to_pair: Option<f64>,
    /// Median days from pair formation to its first session.
    pub median_days_pair_to_first_session: Option<f64>,
}

/// One enrolment period of a person in a program.
pub struct Enrolment(pub EnrolmentRow);

/// One enrolment period of a person in a program.
#[Object]
impl Enrolment {
    /// The enrolled person, when the caller may see them.
    async fn person(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Person>> {
        Ok(Person::load(ctx, PersonId::from_uuid(self.0.person_id)).await?)
    }
    /// The program.
    async fn program(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Program>> {
        let row = super::loaders(ctx)?
            .programs
            .load_one(ProgramId::from_uuid(self.0.program_id))
            .await
            .map_err(super::load_error)?;
        Ok(row.map(Program))
    }
    /// The day they joined.
    async fn enrolled_on(&self) -> NaiveDate {
        self.0.enrolled_on
    }
    /// The day they withdrew; null while enrolled.
    async fn withdrew_on(&self) -> Option<NaiveDate> {
        self.0.withdrew_on
    }
    /// What they are interested in.
    async fn interests(&self) -> &[String] {
        &self.0.interests
    }
    /// Skills they bring.
    async fn skills(&self) -> &[String] {
        &self.0.skills
    }
    /// What they want to work on.
    async fn wants_to_work_on(&self) -> &str {
        &self.0.wants_to_work_on
    }
}

super::connection!(ProgramConnection, ProgramEdge, Program, "programs");
super::connection!(EnrolmentConnection, EnrolmentEdge, Enrolment, "enrolments");
