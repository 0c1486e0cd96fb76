//! The feedback mutation: one member of a pair rates and comments on
//! another.

use async_graphql::{Context, ID, InputObject, Object};
use chrono::Utc;
use tandem_commands::Command;
use tandem_domain::pair::{GiveFeedback, PairCommand};
use tandem_domain::values::{Rating, Ratings};
use tandem_domain::{FeedbackId, PairId};

use super::{Acting, Commit, actor_in_pair, committed_feedback, feedback, int, long, opt_id, payload, run};
use crate::error::ApiError;
use crate::schema::check;
use crate::schema::types::enums::Visibility;
use crate::schema::types::{Feedback, parse_id};

/// Ratings of the five coach traits, 1 to 5, each optional.
#[derive(InputObject, Debug, Default, Clone, Copy)]
pub struct RatingsInput {
    /// Understands and shares the other's feelings.
    pub empathy: Option<i32>,
    /// Listens to understand and reflects back.
    pub active_listening: Option<i32>,
    /// Asks open questions.
    pub curiosity: Option<i32>,
    /// Gives the other room and time.
    pub patience: Option<i32>,
    /// Treats setbacks as things to learn from.
    pub growth_mindset: Option<i32>,
}

impl TryFrom<RatingsInput> for Ratings {
    type Error = ApiError;
    fn try_from(r: RatingsInput) -> Result<Self, ApiError> {
        let rating = |field: &'static str, v: Option<i32>| v.map(|v| int(Rating::parse, field, v)).transpose();
        Ok(Self {
            empathy: rating("ratings.empathy", r.empathy)?,
            active_listening: rating("ratings.activeListening", r.active_listening)?,
            curiosity: rating("ratings.curiosity", r.curiosity)?,
            patience: rating("ratings.patience", r.patience)?,
            growth_mindset: rating("ratings.growthMindset", r.growth_mindset)?,
        })
    }
}

/// Give feedback to another member.
#[derive(InputObject, Debug)]
pub struct GiveFeedbackInput {
    /// Makes retries safe: the same key returns the first result.
    pub idempotency_key: Option<String>,
    /// The pair.
    pub pair_id: ID,
    /// The recipient.
    pub to_id: ID,
    /// The session it is about.
    pub session_id: Option<ID>,
    /// Trait ratings.
    pub ratings: Option<RatingsInput>,
    /// What went well.
    pub strengths: Option<String>,
    /// What could improve.
    pub improvements: Option<String>,
    /// Who may read it besides the author.
    pub visibility: Visibility,
}

/// The pair and the feedback given in it.
impl TryFrom<Acting<'_, GiveFeedbackInput>> for (PairId, GiveFeedback) {
    type Error = ApiError;
    fn try_from(a: Acting<'_, GiveFeedbackInput>) -> Result<Self, ApiError> {
        let i = a.input;
        Ok((
            parse_id("pairId", &i.pair_id)?,
            GiveFeedback {
                feedback_id: FeedbackId::new(),
                from: a.by,
                to: parse_id("toId", &i.to_id)?,
                session_id: opt_id("sessionId", i.session_id.as_ref())?,
                ratings: i.ratings.unwrap_or_default().try_into()?,
                strengths: long("strengths", i.strengths.as_deref())?,
                improvements: long("improvements", i.improvements.as_deref())?,
                visibility: i.visibility.into(),
                given_at: Utc::now(),
            },
        ))
    }
}

payload!(
    /// The result of `giveFeedback`.
    GiveFeedbackPayload { pair_id: PairId, feedback_id: FeedbackId }
    /// The feedback given, as the caller may read it.
    feedback: Feedback = |self, ctx| feedback(ctx, self.pair_id, self.feedback_id).await?;
);

/// The feedback mutation.
#[derive(Default)]
pub struct FeedbackMutation;

/// Feedback between members of a pair.
#[Object]
impl FeedbackMutation {
    /// Give feedback to another member of the pair.
    async fn give_feedback(
        &self,
        ctx: &Context<'_>,
        input: GiveFeedbackInput,
    ) -> async_graphql::Result<GiveFeedbackPayload> {
        let access = check(ctx, "giveFeedback")?;
        let by = actor_in_pair(ctx, access, &input.pair_id, None, "fromId").await?;
        let (pair_id, feedback) = <(PairId, GiveFeedback)>::try_from(Acting { input: &input, by })?;
        let minted = feedback.feedback_id;
        let c = Command::Pair(PairCommand::GiveFeedback { pair_id, feedback });
        let done = run(ctx, "giveFeedback", c, input.idempotency_key.as_deref(), &input).await?;
        let feedback_id = committed_feedback(&done)?.unwrap_or(minted);
        Ok(GiveFeedbackPayload { commit: Commit::new(&done), pair_id, feedback_id })
    }
}
