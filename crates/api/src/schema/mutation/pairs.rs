//! Mutations of pairs and circles as a whole: forming, pausing, resuming
//! and dissolving them.

use async_graphql::{Context, ID, InputObject, Object};
use chrono::NaiveDate;
use tandem_commands::Command;
use tandem_domain::PairId;
use tandem_domain::pair::{FormPair, PairCommand};
use tandem_domain::values::{self as v, MatchScore};

use super::{
    Commit, acting_person, at_most, committed_stream, date_or, long, opt_date, pair, payload, require_member_if_own,
    run, today,
};
use crate::error::ApiError;
use crate::policy::Access;
use crate::schema::check;
use crate::schema::types::enums::{DissolveReason, FormedBy};
use crate::schema::types::{Pair, parse_id};

/// Form a pair or circle.
#[derive(InputObject, Debug)]
pub struct FormPairInput {
    /// Makes retries safe: the same key returns the first result.
    pub idempotency_key: Option<String>,
    /// The program.
    pub program_id: ID,
    /// The members (two for a pair).
    pub member_ids: Vec<ID>,
    /// How it came about (a participant always forms SELF_SELECTED).
    pub formed_by: Option<FormedBy>,
    /// The matching score, for a suggestion.
    pub match_score: Option<f64>,
    /// The day it forms (default today).
    pub formed_on: Option<NaiveDate>,
}

impl TryFrom<&FormPairInput> for FormPair {
    type Error = ApiError;
    fn try_from(i: &FormPairInput) -> Result<Self, ApiError> {
        let members = at_most("memberIds", i.member_ids.iter().collect(), usize::from(v::MAX_CIRCLE_SIZE))?;
        Ok(Self {
            pair_id: PairId::new(),
            program_id: parse_id("programId", &i.program_id)?,
            members: members.into_iter().map(|m| parse_id("memberIds", m)).collect::<Result<_, _>>()?,
            formed_by: i.formed_by.map_or(v::FormedBy::Admin, Into::into),
            match_score: i.match_score.map(|s| MatchScore::parse("matchScore", s)).transpose()?,
            formed_on: date_or("formedOn", i.formed_on, today)?,
        })
    }
}

/// Pause a pair.
#[derive(InputObject, Debug)]
pub struct PausePairInput {
    /// Makes retries safe: the same key returns the first result.
    pub idempotency_key: Option<String>,
    /// The pair.
    pub pair_id: ID,
    /// Why.
    pub reason: Option<String>,
    /// The planned end of the pause.
    pub until: Option<NaiveDate>,
}

impl TryFrom<&PausePairInput> for PairCommand {
    type Error = ApiError;
    fn try_from(i: &PausePairInput) -> Result<Self, ApiError> {
        Ok(Self::Pause {
            pair_id: parse_id("pairId", &i.pair_id)?,
            reason: long("reason", i.reason.as_deref())?,
            paused_on: today(),
            until: opt_date("until", i.until)?,
        })
    }
}

/// Resume a paused pair.
#[derive(InputObject, Debug)]
pub struct ResumePairInput {
    /// Makes retries safe: the same key returns the first result.
    pub idempotency_key: Option<String>,
    /// The pair.
    pub pair_id: ID,
}

impl TryFrom<&ResumePairInput> for PairCommand {
    type Error = ApiError;
    fn try_from(i: &ResumePairInput) -> Result<Self, ApiError> {
        Ok(Self::Resume { pair_id: parse_id("pairId", &i.pair_id)?, resumed_on: today() })
    }
}

/// Dissolve a pair.
#[derive(InputObject, Debug)]
pub struct DissolvePairInput {
    /// Makes retries safe: the same key returns the first result.
    pub idempotency_key: Option<String>,
    /// The pair.
    pub pair_id: ID,
    /// Why it ends.
    pub reason: DissolveReason,
    /// A note.
    pub note: Option<String>,
}

impl TryFrom<&DissolvePairInput> for PairCommand {
    type Error = ApiError;
    fn try_from(i: &DissolvePairInput) -> Result<Self, ApiError> {
        Ok(Self::Dissolve {
            pair_id: parse_id("pairId", &i.pair_id)?,
            reason: i.reason.into(),
            note: long("note", i.note.as_deref())?,
            dissolved_on: today(),
        })
    }
}

payload!(
    /// The result of `formPair`.
    FormPairPayload { pair_id: PairId }
    /// The pair or circle formed.
    pair: Pair = |self, ctx| pair(ctx, self.pair_id).await?;
);
payload!(
    /// The result of `pausePair`.
    PausePairPayload { pair_id: PairId }
    /// The pair, paused.
    pair: Pair = |self, ctx| pair(ctx, self.pair_id).await?;
);
payload!(
    /// The result of `resumePair`.
    ResumePairPayload { pair_id: PairId }
    /// The pair, active again.
    pair: Pair = |self, ctx| pair(ctx, self.pair_id).await?;
);
payload!(
    /// The result of `dissolvePair`.
    DissolvePairPayload { pair_id: PairId }
    /// The pair, dissolved.
    pair: Pair = |self, ctx| pair(ctx, self.pair_id).await?;
);

/// Runs a command on an existing pair: a participant must be one of its
/// members.
async fn on_pair(
    ctx: &Context<'_>,
    access: Access,
    name: &str,
    c: PairCommand,
    key: Option<&str>,
    input: &(dyn std::fmt::Debug + Sync),
) -> Result<(Commit, PairId), ApiError> {
    let pair_id = c.pair_id();
    require_member_if_own(ctx, access, pair_id).await?;
    let done = run(ctx, name, Command::Pair(c), key, input).await?;
    Ok((Commit::new(&done), pair_id))
}

/// Mutations of pairs as a whole.
#[derive(Default)]
pub struct PairMutation;

/// Changes to pairs and circles as a whole.
#[Object]
impl PairMutation {
    /// Form a pair or circle.
    async fn form_pair(&self, ctx: &Context<'_>, input: FormPairInput) -> async_graphql::Result<FormPairPayload> {
        let access = check(ctx, "formPair")?;
        let mut c = FormPair::try_from(&input)?;
        if let Some(me) = acting_person(ctx, access)? {
            // A participant forms only a group they are in, and it is their own choice.
            if !c.members.contains(&me) {
                return Err(ApiError::Forbidden.into());
            }
            c.formed_by = v::FormedBy::SelfSelected;
        }
        let minted = c.pair_id;
        let key = input.idempotency_key.as_deref();
        let done = run(ctx, "formPair", Command::Pair(PairCommand::Form(c)), key, &input).await?;
        let pair_id = committed_stream(&done).map_or(minted, PairId::from_uuid);
        Ok(FormPairPayload { commit: Commit::new(&done), pair_id })
    }

    /// Pause a pair.
    async fn pause_pair(&self, ctx: &Context<'_>, input: PausePairInput) -> async_graphql::Result<PausePairPayload> {
        let access = check(ctx, "pausePair")?;
        let c = PairCommand::try_from(&input)?;
        let (commit, pair_id) = on_pair(ctx, access, "pausePair", c, input.idempotency_key.as_deref(), &input).await?;
        Ok(PausePairPayload { commit, pair_id })
    }

    /// Resume a paused pair.
    async fn resume_pair(&self, ctx: &Context<'_>, input: ResumePairInput) -> async_graphql::Result<ResumePairPayload> {
        let access = check(ctx, "resumePair")?;
        let c = PairCommand::try_from(&input)?;
        let (commit, pair_id) = on_pair(ctx, access, "resumePair", c, input.idempotency_key.as_deref(), &input).await?;
        Ok(ResumePairPayload { commit, pair_id })
    }

    /// Dissolve a pair.
    async fn dissolve_pair(
        &self,
        ctx: &Context<'_>,
        input: DissolvePairInput,
    ) -> async_graphql::Result<DissolvePairPayload> {
        let access = check(ctx, "dissolvePair")?;
        let c = PairCommand::try_from(&input)?;
        let (commit, pair_id) =
            on_pair(ctx, access, "dissolvePair", c, input.idempotency_key.as_deref(), &input).await?;
        Ok(DissolvePairPayload { commit, pair_id })
    }
}
