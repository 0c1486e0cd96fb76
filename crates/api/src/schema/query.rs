//! The root queries over the read models. Each checks the policy matrix
//! first, then scopes what it returns to what the caller may see.

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use chrono::{NaiveDate, Utc};
use tandem_domain::{PairId, PersonId, ProgramId};
use tandem_projections::queries::{self, PeopleFilter};

use super::types::enums::{PairStatus, ProgramStatus};
use super::types::pair::{FeedbackConnection, GoalConnection, PairConnection, SessionConnection};
use super::types::person::PersonConnection;
use super::types::program::{ProgramConnection, program_pairs, projection_error, stats};
use super::types::{
    PageInfo, Pair, Person, Program, ProgramStats, can_see_pair, load_error, loaders, me_as_participant, page_size,
    parse_id,
};
use super::{check, state, viewer};
use crate::error::ApiError;
use crate::policy::Access;

/// The root queries.
#[derive(Default)]
pub struct RootQuery;

/// Who is calling.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Me {
    /// The token's subject.
    pub subject: String,
    /// The roles the caller holds.
    pub roles: Vec<String>,
    #[graphql(skip)]
    pub person_id: Option<PersonId>,
}

#[async_graphql::ComplexObject]
impl Me {
    /// The caller's own person, when they are a person of the organisation.
    async fn person(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Person>> {
        match self.person_id {
            Some(id) => Ok(Person::load(ctx, id).await?),
            None => Ok(None),
        }
    }
}

/// Filters of the people list.
#[derive(InputObject, Default)]
pub struct PeopleFilterInput {
    /// Only people in this department (as of `asOf`).
    pub department: Option<String>,
    /// Only people at this level (as of `asOf`).
    pub level: Option<i32>,
    /// Only people currently enrolled in this program.
    pub program_id: Option<ID>,
    /// true: only people who left; false: only people still here.
    pub left: Option<bool>,
    /// Only people whose name contains this text (case-insensitive).
    pub search: Option<String>,
}

fn limit_of(first: usize) -> i64 {
    i64::try_from(first).unwrap_or(i64::MAX)
}

fn check_len(field: &str, value: &Option<String>, max: usize) -> Result<(), ApiError> {
    if value.as_ref().is_some_and(|v| v.chars().count() > max) {
        return Err(ApiError::bad_input(field, format!("{field} must be at most {max} characters")));
    }
    Ok(())
}

/// Reads over the read models.
#[Object]
impl RootQuery {
    /// The caller.
    async fn me(&self, ctx: &Context<'_>) -> async_graphql::Result<Me> {
        check(ctx, "me")?;
        let p = viewer(ctx).ok_or(ApiError::Unauthenticated)?;
        Ok(Me {
            subject: p.subject().to_owned(),
            roles: p.roles().iter().map(ToString::to_string).collect(),
            person_id: me_as_participant(ctx),
        })
    }

    /// One person.
    async fn person(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Person>> {
        check(ctx, "person")?;
        let id: PersonId = parse_id("id", &id)?;
        Ok(Person::load(ctx, id).await?)
    }

    /// People, ordered by name, with filters.
    async fn people(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Filters; all optional.")] filter: Option<PeopleFilterInput>,
        #[graphql(desc = "The date org facts are taken from (default today).")] as_of: Option<NaiveDate>,
        #[graphql(desc = "How many to return.")] first: Option<i32>,
        #[graphql(desc = "Continue after this cursor.")] after: Option<String>,
    ) -> async_graphql::Result<PersonConnection> {
        check(ctx, "people")?;
        let first = page_size(ctx, first)?;
        let f = filter.unwrap_or_default();
        if f.search.is_some() {
            // Searching by name finds a person by their name: refused to
            // those who may not read names (analysts), before the value is
            // looked at, so the refusal says nothing about it.
            check(ctx, "people.search")?;
        }
        check_len("filter.department", &f.department, 200)?;
        check_len("filter.search", &f.search, 200)?;
        let level = f
            .level
            .map(|l| i16::try_from(l).map_err(|_| ApiError::bad_input("filter.level", "out of range")))
            .transpose()?;
        let program = f.program_id.as_ref().map(|p| parse_id::<ProgramId>("filter.programId", p)).transpose()?;
        let filter = PeopleFilter {
            department: f.department,
            level,
            program,
            left: f.left,
            name_contains: f.search,
            include_erased: false,
        };
        let on = as_of.unwrap_or_else(|| Utc::now().date_naive());
        let page = queries::people(&state(ctx).pool, &filter, on, after.as_deref(), limit_of(first))
            .await
            .map_err(projection_error)?;
        let circle = super::types::my_circle(ctx).await?;
        let items: Vec<(String, Person)> = page
            .items
            .into_iter()
            .filter_map(|v| {
                let cursor = queries::PeopleCursor::after(&v).encode();
                Person::visible_in(ctx, v, &circle).map(|p| (cursor, p))
            })
            .collect();
        let info = PageInfo {
            has_next_page: page.next.is_some(),
            has_previous_page: after.is_some(),
            start_cursor: items.first().map(|(c, _)| c.clone()),
            end_cursor: items.last().map(|(c, _)| c.clone()),
        };
        Ok(PersonConnection::new(items, info))
    }

    /// One program.
    async fn program(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Program>> {
        check(ctx, "program")?;
        let id: ProgramId = parse_id("id", &id)?;
        Ok(loaders(ctx)?.programs.load_one(id).await.map_err(load_error)?.map(Program))
    }

    /// Programs, oldest first.
    async fn programs(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only programs in this status.")] status: Option<ProgramStatus>,
        #[graphql(desc = "How many to return.")] first: Option<i32>,
        #[graphql(desc = "Continue after this cursor.")] after: Option<String>,
    ) -> async_graphql::Result<ProgramConnection> {
        check(ctx, "programs")?;
        let first = page_size(ctx, first)?;
        let page = queries::programs(&state(ctx).pool, status.map(Into::into), after.as_deref(), limit_of(first))
            .await
            .map_err(projection_error)?;
        let items: Vec<_> = page.items.into_iter().map(|p| (p.program_id.to_string(), Program(p))).collect();
        let info = PageInfo {
            has_next_page: page.next.is_some(),
            has_previous_page: after.is_some(),
            start_cursor: items.first().map(|(c, _)| c.clone()),
            end_cursor: items.last().map(|(c, _)| c.clone()),
        };
        Ok(ProgramConnection::new(items, info))
    }

    /// One pair or circle.
    async fn pair(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Pair>> {
        check(ctx, "pair")?;
        let id: PairId = parse_id("id", &id)?;
        let row = loaders(ctx)?.pairs.load_one(id).await.map_err(load_error)?;
        Ok(row.filter(|p| can_see_pair(ctx, "pair", &p.member_ids)).map(Pair))
    }

    /// Pairs and circles of a program or of a person. A participant who
    /// gives neither gets their own.
    async fn pairs(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Pairs of this program.")] program_id: Option<ID>,
        #[graphql(desc = "Pairs this person is or was in.")] person_id: Option<ID>,
        #[graphql(desc = "Only pairs in this status.")] status: Option<PairStatus>,
        #[graphql(desc = "How many to return.")] first: Option<i32>,
        #[graphql(desc = "Continue after this cursor.")] after: Option<String>,
    ) -> async_graphql::Result<PairConnection> {
        let access = check(ctx, "pairs")?;
        if let Some(program) = program_id {
            let program: ProgramId = parse_id("programId", &program)?;
            return program_pairs(ctx, program, status, first, after).await;
        }
        let person = match person_id {
            Some(p) => parse_id::<PersonId>("personId", &p)?,
            None if access == Access::Own => me_as_participant(ctx).ok_or(ApiError::Forbidden)?,
            None => return Err(ApiError::bad_input("programId", "give programId or personId").into()),
        };
        let first = page_size(ctx, first)?;
        let rows = loaders(ctx)?.pairs_of_person.load_one(person).await.map_err(load_error)?.unwrap_or_default();
        let wanted: Option<tandem_domain::pair::PairStatus> = status.map(Into::into);
        let rows: Vec<_> = rows
            .into_iter()
            .filter(|p| wanted.is_none_or(|s| p.status == s) && can_see_pair(ctx, "pairs", &p.member_ids))
            .collect();
        let (items, info) = super::types::page_in_memory(rows, first, after.as_deref(), |p| p.pair_id.to_string())?;
        Ok(PairConnection::new(items.into_iter().map(|(c, p)| (c, Pair(p))).collect(), info))
    }

    /// The sessions of a pair.
    async fn sessions(
        &self,
        ctx: &Context<'_>,
        pair_id: ID,
        #[graphql(desc = "How many to return.")] first: Option<i32>,
        #[graphql(desc = "Continue after this cursor.")] after: Option<String>,
    ) -> async_graphql::Result<SessionConnection> {
        check(ctx, "sessions")?;
        let pair = visible_pair(ctx, "sessions", &pair_id).await?;
        pair.sessions(ctx, first, after).await
    }

    /// The goals of a pair.
    async fn goals(
        &self,
        ctx: &Context<'_>,
        pair_id: ID,
        #[graphql(desc = "How many to return.")] first: Option<i32>,
        #[graphql(desc = "Continue after this cursor.")] after: Option<String>,
    ) -> async_graphql::Result<GoalConnection> {
        check(ctx, "goals")?;
        let pair = visible_pair(ctx, "goals", &pair_id).await?;
        pair.goals(ctx, first, after).await
    }

    /// Feedback the caller may read: of one pair, or (for a participant
    /// giving no pair) of all their pairs.
    async fn feedback(
        &self,
        ctx: &Context<'_>,
        pair_id: Option<ID>,
        #[graphql(desc = "How many to return.")] first: Option<i32>,
        #[graphql(desc = "Continue after this cursor.")] after: Option<String>,
    ) -> async_graphql::Result<FeedbackConnection> {
        check(ctx, "feedback")?;
        if let Some(pair_id) = pair_id {
            let id: PairId = parse_id("pairId", &pair_id)?;
            let row = loaders(ctx)?.pairs.load_one(id).await.map_err(load_error)?;
            let Some(row) = row else { return Err(ApiError::not_found("pair").into()) };
            return Pair(row).feedback(ctx, first, after).await;
        }
        let me = me_as_participant(ctx).ok_or_else(|| ApiError::bad_input("pairId", "pairId is required"))?;
        let pairs = loaders(ctx)?.pairs_of_person.load_one(me).await.map_err(load_error)?.unwrap_or_default();
        let ids: Vec<PairId> = pairs.iter().map(|p| PairId::from_uuid(p.pair_id)).collect();
        let all = loaders(ctx)?.feedback.load_many(ids.iter().copied()).await.map_err(load_error)?;
        let mut rows: Vec<_> =
            all.into_values().flatten().filter(|f| super::types::pair::feedback_readable(ctx, f)).collect();
        rows.sort_by_key(|f| (f.given_at, f.feedback_id));
        let first = page_size(ctx, first)?;
        let (items, info) = super::types::page_in_memory(rows, first, after.as_deref(), |f| f.feedback_id.to_string())?;
        Ok(FeedbackConnection::new(items.into_iter().map(|(c, f)| (c, super::types::Feedback(f))).collect(), info))
    }

    /// Statistics of a program as of a date (default today).
    async fn program_stats(
        &self,
        ctx: &Context<'_>,
        program_id: ID,
        as_of: Option<NaiveDate>,
    ) -> async_graphql::Result<ProgramStats> {
        check(ctx, "programStats")?;
        let id: ProgramId = parse_id("programId", &program_id)?;
        if loaders(ctx)?.programs.load_one(id).await.map_err(load_error)?.is_none() {
            return Err(ApiError::not_found("program").into());
        }
        stats(ctx, id, as_of).await
    }
}

/// A pair the caller may see, or NOT_FOUND / FORBIDDEN.
async fn visible_pair(ctx: &Context<'_>, operation: &str, id: &ID) -> Result<Pair, ApiError> {
    let id: PairId = parse_id("pairId", id)?;
    let row = loaders(ctx)?.pairs.load_one(id).await.map_err(load_error)?.ok_or_else(|| ApiError::not_found("pair"))?;
    if !can_see_pair(ctx, operation, &row.member_ids) {
        return Err(ApiError::Forbidden);
    }
    Ok(Pair(row))
}
