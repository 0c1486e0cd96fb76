//! The `Person` type: a profile with dated org facts.

use std::collections::HashSet;

use async_graphql::{ComplexObject, Context, ID, Object, SimpleObject};
use chrono::NaiveDate;
use tandem_domain::PersonId;
use tandem_projections::queries::{self, PersonView};

use super::enums::LeaveReason;
use super::pair::{Pair, PairConnection};
use super::program::Enrolment;
use super::{PageInfo, can_see_pair, load_error, loaders, me_as_participant, my_circle, page_in_memory, page_size};
use crate::error::ApiError;
use crate::policy::{self, Access};
use crate::schema::{state, viewer};

/// A person of the organisation, as the HRIS knows them. Personal data
/// (name, e-mail, external id, location) is null for callers who may not
/// see it, e.g. analysts.
pub struct Person {
    view: PersonView,
    personal: bool,
}

impl Person {
    /// Wraps a read-model row, deciding once what the caller may see of it.
    /// `None` when the caller may not see the person at all.
    pub(crate) async fn visible(ctx: &Context<'_>, view: PersonView) -> Result<Option<Self>, ApiError> {
        let circle = my_circle(ctx).await?;
        Ok(Self::visible_in(ctx, view, &circle))
    }

    /// [`Person::visible`] with the caller's circle already loaded, for
    /// lists: one load for the whole list instead of one per person.
    pub(crate) fn visible_in(ctx: &Context<'_>, view: PersonView, circle: &HashSet<PersonId>) -> Option<Self> {
        let in_circle = circle.contains(&view.person_id);
        let seen = match policy::access(viewer(ctx), "person") {
            Access::All => true,
            Access::Own => in_circle,
            Access::Deny => false,
        };
        if !seen {
            return None;
        }
        let personal = policy::can_read_personal_data(viewer(ctx), view.person_id, in_circle) && !view.erased;
        Some(Self { view, personal })
    }

    /// Loads one person through the request's loader and applies visibility.
    pub(crate) async fn load(ctx: &Context<'_>, id: PersonId) -> Result<Option<Self>, ApiError> {
        match loaders(ctx)?.people.load_one(id).await.map_err(load_error)? {
            Some(view) => Self::visible(ctx, view).await,
            None => Ok(None),
        }
    }

    fn personal<T>(&self, v: T) -> Option<T> {
        self.personal.then_some(v)
    }
}

/// Org facts of a person for a period.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct OrgPeriod {
    /// First day the facts held; null for "since the earliest record".
    pub valid_from: Option<NaiveDate>,
    /// First day they no longer held; null while they still hold.
    pub valid_to: Option<NaiveDate>,
    #[graphql(skip)]
    pub manager_id: Option<PersonId>,
    /// Department.
    pub department: String,
    /// Job title.
    pub title: String,
    /// Career level.
    pub level: i32,
}

#[ComplexObject]
impl OrgPeriod {
    /// The manager during the period, when the caller may see them.
    async fn manager(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Person>> {
        match self.manager_id {
            Some(id) => Ok(Person::load(ctx, id).await?),
            None => Ok(None),
        }
    }
}

/// A person's org facts on one date.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct OrgFactsOn {
    /// The date asked about.
    pub date: NaiveDate,
    #[graphql(skip)]
    pub manager_id: Option<PersonId>,
    /// Department on that date.
    pub department: String,
    /// Job title on that date.
    pub title: String,
    /// Career level on that date.
    pub level: i32,
}

#[ComplexObject]
impl OrgFactsOn {
    /// The manager on that date, when the caller may see them.
    async fn manager(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Person>> {
        match self.manager_id {
            Some(id) => Ok(Person::load(ctx, id).await?),
            None => Ok(None),
        }
    }
}

fn own_history_allowed(ctx: &Context<'_>, id: PersonId) -> bool {
    policy::can_read_org_history(viewer(ctx), id)
}

/// A person of the organisation, as the HRIS knows them. Personal data
/// (name, e-mail, external id, location) is null for callers who may not
/// see it, e.g. analysts.
#[Object]
impl Person {
    /// The person's id.
    async fn id(&self) -> ID {
        ID(self.view.person_id.to_string())
    }
    /// The id the HRIS knows them by; null when erased or hidden from the
    /// caller.
    async fn external_id(&self) -> Option<&str> {
        self.personal(()).and(self.view.external_id.as_deref())
    }
    /// Full name; null when erased or hidden from the caller.
    async fn name(&self) -> Option<&str> {
        self.personal(()).and(self.view.name.as_deref())
    }
    /// E-mail address; null when erased or hidden from the caller.
    async fn email(&self) -> Option<&str> {
        self.personal(()).and(self.view.email.as_deref())
    }
    /// Where they work; null when unknown, erased or hidden from the caller.
    async fn location(&self) -> Option<&str> {
        self.personal(()).and(self.view.location.as_deref())
    }
    /// Current department.
    async fn department(&self) -> &str {
        &self.view.department
    }
    /// Current job title.
    async fn title(&self) -> &str {
        &self.view.title
    }
    /// Current career level.
    async fn level(&self) -> i32 {
        i32::from(self.view.level)
    }
    /// Current manager, when the caller may see them.
    async fn manager(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Person>> {
        match self.view.manager_id {
            Some(id) => Ok(Person::load(ctx, id).await?),
            None => Ok(None),
        }
    }
    /// First day of employment.
    async fn hired_on(&self) -> NaiveDate {
        self.view.hired_on
    }
    /// The day they left the organisation; null while employed.
    async fn left_on(&self) -> Option<NaiveDate> {
        self.view.left_on
    }
    /// Why they left; null while employed.
    async fn leave_reason(&self) -> Option<LeaveReason> {
        self.view.leave_reason.map(Into::into)
    }
    /// Whether their personal data was erased.
    async fn erased(&self) -> bool {
        self.view.erased
    }
    /// Org facts (manager, department, title, level) as of a date.
    async fn org_on(&self, ctx: &Context<'_>, date: NaiveDate) -> async_graphql::Result<Option<OrgFactsOn>> {
        if !own_history_allowed(ctx, self.view.person_id) {
            return Err(ApiError::Forbidden.into());
        }
        let facts = queries::org_on(&state(ctx).pool, &[self.view.person_id], date)
            .await
            .map_err(ApiError::internal)?
            .remove(&self.view.person_id);
        Ok(facts.map(|f| OrgFactsOn {
            date,
            manager_id: f.manager_id,
            department: f.department,
            title: f.title,
            level: i32::from(f.level),
        }))
    }
    /// The whole dated org history, oldest first.
    async fn org_history(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<OrgPeriod>> {
        if !own_history_allowed(ctx, self.view.person_id) {
            return Err(ApiError::Forbidden.into());
        }
        let rows = queries::org_history(&state(ctx).pool, self.view.person_id).await.map_err(ApiError::internal)?;
        Ok(rows
            .into_iter()
            .map(|r| OrgPeriod {
                valid_from: r.valid_from,
                valid_to: r.valid_to,
                manager_id: r.manager_id.map(PersonId::from_uuid),
                department: r.department,
                title: r.title,
                level: i32::from(r.level),
            })
            .collect())
    }
    /// Their enrolments in programs, oldest first.
    async fn enrolments(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Enrolment>> {
        let allowed = match policy::access(viewer(ctx), "program") {
            Access::All => true,
            Access::Own => me_as_participant(ctx) == Some(self.view.person_id),
            Access::Deny => false,
        };
        if !allowed {
            return Ok(Vec::new());
        }
        let rows = loaders(ctx)?.enrolments.load_one(self.view.person_id).await.map_err(load_error)?;
        Ok(rows.unwrap_or_default().into_iter().map(Enrolment).collect())
    }
    /// The pairs and circles they are or were in that the caller may see, newest first.
    async fn pairs(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many to return.")] first: Option<i32>,
        #[graphql(desc = "Continue after this cursor.")] after: Option<String>,
    ) -> async_graphql::Result<PairConnection> {
        let first = page_size(ctx, first)?;
        let rows = loaders(ctx)?.pairs_of_person.load_one(self.view.person_id).await.map_err(load_error)?;
        let rows: Vec<_> =
            rows.unwrap_or_default().into_iter().filter(|p| can_see_pair(ctx, "pairs", &p.member_ids)).collect();
        let (items, info): (Vec<_>, PageInfo) =
            page_in_memory(rows, first, after.as_deref(), |p| p.pair_id.to_string())?;
        Ok(PairConnection::new(items.into_iter().map(|(c, p)| (c, Pair(p))).collect(), info))
    }
}

super::connection!(PersonConnection, PersonEdge, Person, "people");
