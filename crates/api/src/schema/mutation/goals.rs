//! Mutations of goals inside a pair: setting one, recording progress,
//! completing and abandoning it.

use async_graphql::{Context, ID, InputObject, Object};
use chrono::NaiveDate;
use tandem_commands::Command;
use tandem_domain::pair::{PairCommand, SetGoal};
use tandem_domain::values::Percent;
use tandem_domain::{GoalId, PairId};

use super::{
    Acting, Commit, actor_in_pair, committed_goal, goal, int, long, opt_date, opt_id, payload, run, short, today,
};
use crate::error::ApiError;
use crate::schema::check;
use crate::schema::types::{Goal, parse_id};

/// Set a goal.
#[derive(InputObject, Debug)]
pub struct SetGoalInput {
    /// Makes retries safe: the same key returns the first result.
    pub idempotency_key: Option<String>,
    /// The pair.
    pub pair_id: ID,
    /// Its title.
    pub title: String,
    /// Its description.
    pub description: Option<String>,
    /// When it is due.
    pub due_on: Option<NaiveDate>,
    /// Another member who keeps the owner accountable.
    pub accountability_partner_id: Option<ID>,
}

/// The pair and the goal set in it.
impl TryFrom<Acting<'_, SetGoalInput>> for (PairId, SetGoal) {
    type Error = ApiError;
    fn try_from(a: Acting<'_, SetGoalInput>) -> Result<Self, ApiError> {
        let i = a.input;
        Ok((
            parse_id("pairId", &i.pair_id)?,
            SetGoal {
                goal_id: GoalId::new(),
                owner: a.by,
                title: short("title", &i.title)?,
                description: long("description", i.description.as_deref())?,
                due_on: opt_date("dueOn", i.due_on)?,
                accountability_partner: opt_id("accountabilityPartnerId", i.accountability_partner_id.as_ref())?,
                set_on: today(),
            },
        ))
    }
}

/// Record progress on a goal.
#[derive(InputObject, Debug)]
pub struct RecordGoalProgressInput {
    /// Makes retries safe: the same key returns the first result.
    pub idempotency_key: Option<String>,
    /// The pair.
    pub pair_id: ID,
    /// The goal.
    pub goal_id: ID,
    /// Progress in percent.
    pub percent: Option<i32>,
    /// A note.
    pub note: Option<String>,
}

impl TryFrom<Acting<'_, RecordGoalProgressInput>> for PairCommand {
    type Error = ApiError;
    fn try_from(a: Acting<'_, RecordGoalProgressInput>) -> Result<Self, ApiError> {
        let i = a.input;
        Ok(Self::RecordGoalProgress {
            pair_id: parse_id("pairId", &i.pair_id)?,
            goal_id: parse_id("goalId", &i.goal_id)?,
            by: a.by,
            percent: i.percent.map(|p| int(Percent::parse, "percent", p)).transpose()?,
            note: long("note", i.note.as_deref())?,
            recorded_on: today(),
        })
    }
}

/// Complete or abandon a goal.
#[derive(InputObject, Debug)]
pub struct CloseGoalInput {
    /// Makes retries safe: the same key returns the first result.
    pub idempotency_key: Option<String>,
    /// The pair.
    pub pair_id: ID,
    /// The goal.
    pub goal_id: ID,
    /// A note on the outcome.
    pub note: Option<String>,
}

/// How a goal is closed.
#[derive(Clone, Copy)]
enum Close {
    Complete,
    Abandon,
}

impl TryFrom<(Acting<'_, CloseGoalInput>, Close)> for Closing {
    type Error = ApiError;
    fn try_from((a, how): (Acting<'_, CloseGoalInput>, Close)) -> Result<Self, ApiError> {
        let i = a.input;
        let (pair_id, goal_id, by) = (parse_id("pairId", &i.pair_id)?, parse_id("goalId", &i.goal_id)?, a.by);
        let note = long("note", i.note.as_deref())?;
        Ok(Self(match how {
            Close::Complete => PairCommand::CompleteGoal { pair_id, goal_id, by, note, completed_on: today() },
            Close::Abandon => PairCommand::AbandonGoal { pair_id, goal_id, by, reason: note, abandoned_on: today() },
        }))
    }
}

/// The command that completes or abandons a goal.
struct Closing(PairCommand);

payload!(
    /// The result of `setGoal`.
    SetGoalPayload { pair_id: PairId, goal_id: GoalId }
    /// The goal set.
    goal: Goal = |self, ctx| goal(ctx, self.pair_id, self.goal_id).await?;
);
payload!(
    /// The result of `recordGoalProgress`.
    RecordGoalProgressPayload { pair_id: PairId, goal_id: GoalId }
    /// The goal with the progress recorded.
    goal: Goal = |self, ctx| goal(ctx, self.pair_id, self.goal_id).await?;
);
payload!(
    /// The result of `completeGoal`.
    CompleteGoalPayload { pair_id: PairId, goal_id: GoalId }
    /// The goal, completed.
    goal: Goal = |self, ctx| goal(ctx, self.pair_id, self.goal_id).await?;
);
payload!(
    /// The result of `abandonGoal`.
    AbandonGoalPayload { pair_id: PairId, goal_id: GoalId }
    /// The goal, abandoned.
    goal: Goal = |self, ctx| goal(ctx, self.pair_id, self.goal_id).await?;
);

/// Runs a command on an existing goal; the goal's id was validated when
/// the input became the command.
async fn on_goal(
    ctx: &Context<'_>,
    name: &str,
    c: PairCommand,
    goal: &ID,
    key: Option<&str>,
    input: &(dyn std::fmt::Debug + Sync),
) -> Result<(Commit, PairId, GoalId), ApiError> {
    let (pair_id, goal_id) = (c.pair_id(), parse_id("goalId", goal)?);
    let done = run(ctx, name, Command::Pair(c), key, input).await?;
    Ok((Commit::new(&done), pair_id, goal_id))
}

/// Mutations of goals.
#[derive(Default)]
pub struct GoalMutation;

/// Changes to goals inside a pair.
#[Object]
impl GoalMutation {
    /// Set a goal for oneself.
    async fn set_goal(&self, ctx: &Context<'_>, input: SetGoalInput) -> async_graphql::Result<SetGoalPayload> {
        let access = check(ctx, "setGoal")?;
        let by = actor_in_pair(ctx, access, &input.pair_id, None, "ownerId").await?;
        let (pair_id, goal) = <(PairId, SetGoal)>::try_from(Acting { input: &input, by })?;
        let minted = goal.goal_id;
        let c = Command::Pair(PairCommand::SetGoal { pair_id, goal });
        let done = run(ctx, "setGoal", c, input.idempotency_key.as_deref(), &input).await?;
        let goal_id = committed_goal(&done)?.unwrap_or(minted);
        Ok(SetGoalPayload { commit: Commit::new(&done), pair_id, goal_id })
    }

    /// Record progress on a goal (its owner or accountability partner).
    async fn record_goal_progress(
        &self,
        ctx: &Context<'_>,
        input: RecordGoalProgressInput,
    ) -> async_graphql::Result<RecordGoalProgressPayload> {
        let access = check(ctx, "recordGoalProgress")?;
        let by = actor_in_pair(ctx, access, &input.pair_id, None, "byId").await?;
        let c = PairCommand::try_from(Acting { input: &input, by })?;
        let key = input.idempotency_key.as_deref();
        let (commit, pair_id, goal_id) = on_goal(ctx, "recordGoalProgress", c, &input.goal_id, key, &input).await?;
        Ok(RecordGoalProgressPayload { commit, pair_id, goal_id })
    }

    /// Complete one's goal.
    async fn complete_goal(
        &self,
        ctx: &Context<'_>,
        input: CloseGoalInput,
    ) -> async_graphql::Result<CompleteGoalPayload> {
        let access = check(ctx, "completeGoal")?;
        let by = actor_in_pair(ctx, access, &input.pair_id, None, "byId").await?;
        let Closing(c) = Closing::try_from((Acting { input: &input, by }, Close::Complete))?;
        let key = input.idempotency_key.as_deref();
        let (commit, pair_id, goal_id) = on_goal(ctx, "completeGoal", c, &input.goal_id, key, &input).await?;
        Ok(CompleteGoalPayload { commit, pair_id, goal_id })
    }

    /// Abandon one's goal.
    async fn abandon_goal(
        &self,
        ctx: &Context<'_>,
        input: CloseGoalInput,
    ) -> async_graphql::Result<AbandonGoalPayload> {
        let access = check(ctx, "abandonGoal")?;
        let by = actor_in_pair(ctx, access, &input.pair_id, None, "byId").await?;
        let Closing(c) = Closing::try_from((Acting { input: &input, by }, Close::Abandon))?;
        let key = input.idempotency_key.as_deref();
        let (commit, pair_id, goal_id) = on_goal(ctx, "abandonGoal", c, &input.goal_id, key, &input).await?;
        Ok(AbandonGoalPayload { commit, pair_id, goal_id })
    }
}
