//! The `Pair` type (a pair or a circle) and what happens in it: sessions,
//! feedback and goals.

use async_graphql::{Context, ID, Object, SimpleObject};
use chrono::{DateTime, NaiveDate, Utc};
use tandem_domain::values::Visibility as DomainVisibility;
use tandem_domain::{GoalId, PairId, PersonId, ProgramId};
use tandem_projections::queries::SessionView;
use tandem_projections::read_models::pairs::{FeedbackRow, GoalProgressRow, GoalRow, PairRow};
use uuid::Uuid;

use super::enums::{Activity, DissolveReason, FormedBy, GoalStatus, GroupKind, PairStatus, SessionStatus, Visibility};
use super::person::Person;
use super::program::Program;
use super::{PageInfo, load_error, loaders, page_in_memory, page_size};
use crate::policy;
use crate::schema::viewer;

/// A pair or circle of colleagues coaching each other.
pub struct Pair(pub PairRow);

/// Whether the caller may read a guarded field of something in a pair with these members.
fn field_allowed(ctx: &Context<'_>, field: &str, members: &[Uuid]) -> bool {
    super::can_see_pair(ctx, field, members)
}

/// A pair or circle of colleagues coaching each other.
#[Object]
impl Pair {
    /// The pair's id.
    async fn id(&self) -> ID {
        ID(self.0.pair_id.to_string())
    }
    /// The program it belongs to.
    async fn program(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Program>> {
        let row = loaders(ctx)?.programs.load_one(ProgramId::from_uuid(self.0.program_id)).await.map_err(load_error)?;
        Ok(row.map(Program))
    }
    /// A pair or a circle.
    async fn kind(&self) -> GroupKind {
        self.0.kind.into()
    }
    /// Its members (those the caller may see).
    async fn members(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Person>> {
        let ids: Vec<PersonId> = self.0.member_ids.iter().copied().map(PersonId::from_uuid).collect();
        let views = loaders(ctx)?.people.load_many(ids.iter().copied()).await.map_err(load_error)?;
        let circle = super::my_circle(ctx).await?;
        Ok(ids
            .iter()
            .filter_map(|id| views.get(id).cloned())
            .filter_map(|v| Person::visible_in(ctx, v, &circle))
            .collect())
    }
    /// The members' ids, in formation order.
    async fn member_ids(&self) -> Vec<ID> {
        self.0.member_ids.iter().map(|m| ID(m.to_string())).collect()
    }
    /// Active, paused or dissolved.
    async fn status(&self) -> PairStatus {
        self.0.status.into()
    }
    /// How it was formed.
    async fn formed_by(&self) -> FormedBy {
        self.0.formed_by.into()
    }
    /// The matching score, when it came from a suggestion.
    async fn match_score(&self) -> Option<f64> {
        self.0.match_score
    }
    /// The day it was formed.
    async fn formed_on(&self) -> NaiveDate {
        self.0.formed_on
    }
    /// The day its current pause started.
    async fn paused_on(&self) -> Option<NaiveDate> {
        self.0.paused_on
    }
    /// The day the current pause is planned to end.
    async fn paused_until(&self) -> Option<NaiveDate> {
        self.0.paused_until
    }
    /// The day it was dissolved.
    async fn dissolved_on(&self) -> Option<NaiveDate> {
        self.0.dissolved_on
    }
    /// Why it was dissolved.
    async fn dissolve_reason(&self) -> Option<DissolveReason> {
        self.0.dissolve_reason.map(Into::into)
    }
    /// How many sessions were held.
    async fn sessions_held(&self) -> i32 {
        self.0.sessions_held
    }
    /// When the last session was held.
    async fn last_session_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_session_at
    }
    /// Its sessions (scheduled, held and cancelled), oldest first.
    pub(crate) async fn sessions(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many to return.")] first: Option<i32>,
        #[graphql(desc = "Continue after this cursor.")] after: Option<String>,
    ) -> async_graphql::Result<SessionConnection> {
        let first = page_size(ctx, first)?;
        if !super::can_see_pair(ctx, "sessions", &self.0.member_ids) {
            return Ok(SessionConnection::new(Vec::new(), PageInfo::default()));
        }
        let rows = loaders(ctx)?.sessions.load_one(PairId::from_uuid(self.0.pair_id)).await.map_err(load_error)?;
        let (items, info) =
            page_in_memory(rows.unwrap_or_default(), first, after.as_deref(), |s| s.session.session_id.to_string())?;
        let members = self.0.member_ids.clone();
        Ok(SessionConnection::new(
            items.into_iter().map(|(c, s)| (c, Session { view: s, members: members.clone() })).collect(),
            info,
        ))
    }
    /// Its goals, oldest first.
    pub(crate) async fn goals(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many to return.")] first: Option<i32>,
        #[graphql(desc = "Continue after this cursor.")] after: Option<String>,
    ) -> async_graphql::Result<GoalConnection> {
        let first = page_size(ctx, first)?;
        if !super::can_see_pair(ctx, "goals", &self.0.member_ids) {
            return Ok(GoalConnection::new(Vec::new(), PageInfo::default()));
        }
        let rows = loaders(ctx)?.goals.load_one(PairId::from_uuid(self.0.pair_id)).await.map_err(load_error)?;
        let (items, info) =
            page_in_memory(rows.unwrap_or_default(), first, after.as_deref(), |g| g.goal_id.to_string())?;
        let members = self.0.member_ids.clone();
        Ok(GoalConnection::new(
            items.into_iter().map(|(c, g)| (c, Goal { row: g, members: members.clone() })).collect(),
            info,
        ))
    }
    /// The feedback exchanged in it that the caller may read, oldest first.
    pub(crate) async fn feedback(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many to return.")] first: Option<i32>,
        #[graphql(desc = "Continue after this cursor.")] after: Option<String>,
    ) -> async_graphql::Result<FeedbackConnection> {
        let first = page_size(ctx, first)?;
        let rows = loaders(ctx)?.feedback.load_one(PairId::from_uuid(self.0.pair_id)).await.map_err(load_error)?;
        let readable: Vec<FeedbackRow> =
            rows.unwrap_or_default().into_iter().filter(|f| feedback_readable(ctx, f)).collect();
        let (items, info) = page_in_memory(readable, first, after.as_deref(), |f| f.feedback_id.to_string())?;
        Ok(FeedbackConnection::new(items.into_iter().map(|(c, f)| (c, Feedback(f))).collect(), info))
    }
}

/// Whether the caller may read a piece of feedback (the policy's rule).
pub(crate) fn feedback_readable(ctx: &Context<'_>, f: &FeedbackRow) -> bool {
    let visibility: DomainVisibility = f.visibility;
    policy::can_read_feedback(viewer(ctx), PersonId::from_uuid(f.from_id), PersonId::from_uuid(f.to_id), visibility)
}

/// A coaching session.
pub struct Session {
    pub view: SessionView,
    /// The pair's members, for the notes' visibility.
    pub members: Vec<Uuid>,
}

/// Who coached whom in a session.
pub struct Coaching {
    coach: Uuid,
    coachee: Uuid,
}

/// Who coached whom in a session.
#[Object]
impl Coaching {
    /// The member who coached.
    async fn coach(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Person>> {
        Ok(Person::load(ctx, PersonId::from_uuid(self.coach)).await?)
    }
    /// The member who was coached.
    async fn coachee(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Person>> {
        Ok(Person::load(ctx, PersonId::from_uuid(self.coachee)).await?)
    }
    /// The coach's id.
    async fn coach_id(&self) -> ID {
        ID(self.coach.to_string())
    }
    /// The coachee's id.
    async fn coachee_id(&self) -> ID {
        ID(self.coachee.to_string())
    }
}

/// A coaching session of a pair: scheduled, held or cancelled.
#[Object]
impl Session {
    /// The session's id.
    async fn id(&self) -> ID {
        ID(self.view.session.session_id.to_string())
    }
    /// The pair it belongs to.
    async fn pair(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Pair>> {
        let row =
            loaders(ctx)?.pairs.load_one(PairId::from_uuid(self.view.session.pair_id)).await.map_err(load_error)?;
        Ok(row.map(Pair))
    }
    /// Scheduled, held or cancelled.
    async fn status(&self) -> SessionStatus {
        self.view.session.status.into()
    }
    /// When it is planned for.
    async fn scheduled_for(&self) -> Option<DateTime<Utc>> {
        self.view.session.scheduled_for
    }
    /// When it took place.
    async fn held_at(&self) -> Option<DateTime<Utc>> {
        self.view.session.held_at
    }
    /// How long it lasted, in minutes.
    async fn minutes(&self) -> Option<i32> {
        self.view.session.minutes
    }
    /// What it focused on.
    async fn focus(&self) -> Option<&str> {
        self.view.session.focus.as_deref()
    }
    /// What the members did.
    async fn activities(&self) -> Vec<Activity> {
        self.view.session.activities.iter().map(|a| (*a).into()).collect()
    }
    /// Who coached whom.
    async fn coaching(&self) -> Vec<Coaching> {
        self.view.coaching.iter().map(|c| Coaching { coach: c.coach_id, coachee: c.coachee_id }).collect()
    }
    /// The members' notes; only the pair's members (and admins) read them.
    async fn notes(&self, ctx: &Context<'_>) -> Option<&str> {
        field_allowed(ctx, "Session.notes", &self.members).then_some(()).and(self.view.session.notes.as_deref())
    }
    /// Why it was cancelled.
    async fn cancel_reason(&self) -> Option<&str> {
        self.view.session.cancel_reason.as_deref()
    }
}

/// Ratings of the five traits of a good peer coach, 1 to 5, each optional.
#[derive(SimpleObject, Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Ratings {
    /// Understands and shares the other's feelings.
    pub empathy: Option<i32>,
    /// Listens to understand and reflects back.
    pub active_listening: Option<i32>,
    /// Asks open questions instead of giving answers.
    pub curiosity: Option<i32>,
    /// Gives the other room and time.
    pub patience: Option<i32>,
    /// Treats setbacks as things to learn from.
    pub growth_mindset: Option<i32>,
}

/// Feedback from one member to another. Only its author, its recipient
/// (when shared with them) and coordinators (when shared with them) read it.
pub struct Feedback(pub FeedbackRow);

/// Feedback from one member to another. Only its author, its recipient
/// (when shared with them) and coordinators (when shared with them) read it.
#[Object]
impl Feedback {
    /// The feedback's id.
    async fn id(&self) -> ID {
        ID(self.0.feedback_id.to_string())
    }
    /// The author.
    async fn from(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Person>> {
        Ok(Person::load(ctx, PersonId::from_uuid(self.0.from_id)).await?)
    }
    /// The recipient.
    async fn to(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Person>> {
        Ok(Person::load(ctx, PersonId::from_uuid(self.0.to_id)).await?)
    }
    /// The pair it was given in.
    async fn pair_id(&self) -> ID {
        ID(self.0.pair_id.to_string())
    }
    /// The session it is about, if any.
    async fn session_id(&self) -> Option<ID> {
        self.0.session_id.map(|s| ID(s.to_string()))
    }
    /// Trait ratings.
    async fn ratings(&self) -> Ratings {
        Ratings {
            empathy: self.0.empathy.map(i32::from),
            active_listening: self.0.active_listening.map(i32::from),
            curiosity: self.0.curiosity.map(i32::from),
            patience: self.0.patience.map(i32::from),
            growth_mindset: self.0.growth_mindset.map(i32::from),
        }
    }
    /// What went well.
    async fn strengths(&self) -> &str {
        &self.0.strengths
    }
    /// What could improve.
    async fn improvements(&self) -> &str {
        &self.0.improvements
    }
    /// Who may read it.
    async fn visibility(&self) -> Visibility {
        self.0.visibility.into()
    }
    /// When it was given.
    async fn given_at(&self) -> DateTime<Utc> {
        self.0.given_at
    }
}

/// A goal one member set, with an optional accountability partner.
pub struct Goal {
    pub row: GoalRow,
    /// The pair's members, for the texts' visibility.
    pub members: Vec<Uuid>,
}

/// One progress entry of a goal.
pub struct GoalProgress {
    row: GoalProgressRow,
    show_text: bool,
}

/// One progress entry of a goal.
#[Object]
impl GoalProgress {
    /// Who recorded it.
    async fn by_id(&self) -> ID {
        ID(self.row.by_id.to_string())
    }
    /// Progress in percent, if given.
    async fn percent(&self) -> Option<i32> {
        self.row.percent.map(i32::from)
    }
    /// The note; null for callers who may not read goal texts.
    async fn note(&self) -> Option<&str> {
        self.show_text.then_some(self.row.note.as_str())
    }
    /// The day it was recorded for.
    async fn recorded_on(&self) -> NaiveDate {
        self.row.recorded_on
    }
}

/// A goal one member set, with an optional accountability partner.
#[Object]
impl Goal {
    /// The goal's id.
    async fn id(&self) -> ID {
        ID(self.row.goal_id.to_string())
    }
    /// The pair it belongs to.
    async fn pair_id(&self) -> ID {
        ID(self.row.pair_id.to_string())
    }
    /// The member who owns it.
    async fn owner(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Person>> {
        Ok(Person::load(ctx, PersonId::from_uuid(self.row.owner_id)).await?)
    }
    /// The member who keeps the owner accountable.
    async fn accountability_partner(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Person>> {
        match self.row.accountability_partner_id {
            Some(p) => Ok(Person::load(ctx, PersonId::from_uuid(p)).await?),
            None => Ok(None),
        }
    }
    /// Its title; null for callers who may not read goal texts.
    async fn title(&self, ctx: &Context<'_>) -> Option<&str> {
        field_allowed(ctx, "Goal.title/description/progress notes", &self.members).then_some(self.row.title.as_str())
    }
    /// Its description; null for callers who may not read goal texts.
    async fn description(&self, ctx: &Context<'_>) -> Option<&str> {
        field_allowed(ctx, "Goal.title/description/progress notes", &self.members)
            .then_some(self.row.description.as_str())
    }
    /// When it is due.
    async fn due_on(&self) -> Option<NaiveDate> {
        self.row.due_on
    }
    /// The day it was set.
    async fn set_on(&self) -> NaiveDate {
        self.row.set_on
    }
    /// Open, completed or abandoned.
    async fn status(&self) -> GoalStatus {
        self.row.status.into()
    }
    /// The latest progress percentage.
    async fn latest_percent(&self) -> Option<i32> {
        self.row.latest_percent.map(i32::from)
    }
    /// The day it was completed.
    async fn completed_on(&self) -> Option<NaiveDate> {
        self.row.completed_on
    }
    /// The day it was abandoned.
    async fn abandoned_on(&self) -> Option<NaiveDate> {
        self.row.abandoned_on
    }
    /// Its progress entries, oldest first.
    async fn progress(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<GoalProgress>> {
        let show_text = field_allowed(ctx, "Goal.title/description/progress notes", &self.members);
        let rows = loaders(ctx)?.progress.load_one(GoalId::from_uuid(self.row.goal_id)).await.map_err(load_error)?;
        Ok(rows.unwrap_or_default().into_iter().map(|row| GoalProgress { row, show_text }).collect())
    }
}

super::connection!(PairConnection, PairEdge, Pair, "pairs and circles");
super::connection!(SessionConnection, SessionEdge, Session, "sessions");
super::connection!(GoalConnection, GoalEdge, Goal, "goals");
super::connection!(FeedbackConnection, FeedbackEdge, Feedback, "feedback");
