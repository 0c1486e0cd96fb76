//! Mutations of a pair's sessions: planning, recording and cancelling them.

use async_graphql::{Context, ID, InputObject, Object};
use chrono::{DateTime, Utc};
use tandem_commands::Command;
use tandem_domain::pair::{Coaching, HoldSession, PairCommand};
use tandem_domain::values::Minutes;
use tandem_domain::{PairId, SessionId};

use super::{
    Acting, Commit, actor_in_pair, at_most, committed_session, instant, int, long, opt_id, opt_short, pair, payload,
    run, session, short,
};
use crate::error::ApiError;
use crate::schema::check;
use crate::schema::types::enums::Activity;
use crate::schema::types::{Pair, Session, parse_id};

/// The most activities one session records.
const MAX_ACTIVITIES: usize = 32;
/// The most coaching entries one session records.
const MAX_COACHING: usize = 64;

/// Plan a session.
#[derive(InputObject, Debug)]
pub struct ScheduleSessionInput {
    /// Makes retries safe: the same key returns the first result.
    pub idempotency_key: Option<String>,
    /// The pair.
    pub pair_id: ID,
    /// The member planning it (a participant is always themself).
    pub by_id: Option<ID>,
    /// When it will take place.
    pub scheduled_for: DateTime<Utc>,
    /// What it will focus on.
    pub focus: Option<String>,
}

impl TryFrom<Acting<'_, ScheduleSessionInput>> for PairCommand {
    type Error = ApiError;
    fn try_from(a: Acting<'_, ScheduleSessionInput>) -> Result<Self, ApiError> {
        let i = a.input;
        Ok(Self::ScheduleSession {
            pair_id: parse_id("pairId", &i.pair_id)?,
            session_id: SessionId::new(),
            by: a.by,
            scheduled_for: instant("scheduledFor", i.scheduled_for)?,
            focus: opt_short("focus", i.focus.as_deref())?,
        })
    }
}

/// Who coached whom.
#[derive(InputObject, Debug)]
pub struct CoachingInput {
    /// The member who coached.
    pub coach_id: ID,
    /// The member who was coached.
    pub coachee_id: ID,
}

/// Record a session that took place.
#[derive(InputObject, Debug)]
pub struct HoldSessionInput {
    /// Makes retries safe: the same key returns the first result.
    pub idempotency_key: Option<String>,
    /// The pair.
    pub pair_id: ID,
    /// The scheduled session this records; leave out for an unplanned one.
    pub session_id: Option<ID>,
    /// The member recording it (a participant is always themself).
    pub by_id: Option<ID>,
    /// When it took place (default now).
    pub held_at: Option<DateTime<Utc>>,
    /// How long it lasted, in minutes.
    pub minutes: i32,
    /// What it focused on.
    pub focus: String,
    /// What the members did.
    pub activities: Option<Vec<Activity>>,
    /// Who coached whom.
    pub coaching: Option<Vec<CoachingInput>>,
    /// Notes for the members.
    pub notes: Option<String>,
}

/// The pair and the session held in it.
impl TryFrom<Acting<'_, HoldSessionInput>> for (PairId, HoldSession) {
    type Error = ApiError;
    fn try_from(a: Acting<'_, HoldSessionInput>) -> Result<Self, ApiError> {
        let i = a.input;
        let activities = at_most("activities", i.activities.clone().unwrap_or_default(), MAX_ACTIVITIES)?;
        let coaching = at_most("coaching", i.coaching.as_deref().unwrap_or_default().iter().collect(), MAX_COACHING)?
            .into_iter()
            .map(|c| {
                Ok(Coaching {
                    coach: parse_id("coaching.coachId", &c.coach_id)?,
                    coachee: parse_id("coaching.coacheeId", &c.coachee_id)?,
                })
            })
            .collect::<Result<_, ApiError>>()?;
        Ok((
            parse_id("pairId", &i.pair_id)?,
            HoldSession {
                session_id: opt_id("sessionId", i.session_id.as_ref())?.unwrap_or_else(SessionId::new),
                by: a.by,
                held_at: instant("heldAt", i.held_at.unwrap_or_else(Utc::now))?,
                minutes: int(Minutes::parse, "minutes", i.minutes)?,
                focus: short("focus", &i.focus)?,
                activities: activities.into_iter().map(Into::into).collect(),
                coaching,
                notes: long("notes", i.notes.as_deref())?,
            },
        ))
    }
}

/// Cancel a planned session.
#[derive(InputObject, Debug)]
pub struct CancelSessionInput {
    /// Makes retries safe: the same key returns the first result.
    pub idempotency_key: Option<String>,
    /// The pair.
    pub pair_id: ID,
    /// The session.
    pub session_id: ID,
    /// The member cancelling (a participant is always themself).
    pub by_id: Option<ID>,
    /// Why.
    pub reason: Option<String>,
}

impl TryFrom<Acting<'_, CancelSessionInput>> for PairCommand {
    type Error = ApiError;
    fn try_from(a: Acting<'_, CancelSessionInput>) -> Result<Self, ApiError> {
        let i = a.input;
        Ok(Self::CancelSession {
            pair_id: parse_id("pairId", &i.pair_id)?,
            session_id: parse_id("sessionId", &i.session_id)?,
            by: a.by,
            reason: long("reason", i.reason.as_deref())?,
        })
    }
}

payload!(
    /// The result of `scheduleSession`.
    ScheduleSessionPayload { pair_id: PairId, session_id: SessionId }
    /// The session planned.
    session: Session = |self, ctx| session(ctx, self.pair_id, self.session_id).await?;
);
payload!(
    /// The result of `holdSession`.
    HoldSessionPayload { pair_id: PairId, session_id: SessionId }
    /// The session recorded.
    session: Session = |self, ctx| session(ctx, self.pair_id, self.session_id).await?;
    /// The pair, with the session counted.
    pair: Pair = |self, ctx| pair(ctx, self.pair_id).await?;
);
payload!(
    /// The result of `cancelSession`.
    CancelSessionPayload { pair_id: PairId, session_id: SessionId }
    /// The session cancelled.
    session: Session = |self, ctx| session(ctx, self.pair_id, self.session_id).await?;
);

/// Runs a session command; `session` is the session it is about, unless
/// this is a replay, which returns the first call's session.
async fn submit(
    ctx: &Context<'_>,
    name: &str,
    c: PairCommand,
    session: SessionId,
    key: Option<&str>,
    input: &(dyn std::fmt::Debug + Sync),
) -> Result<(Commit, PairId, SessionId), ApiError> {
    let pair_id = c.pair_id();
    let done = run(ctx, name, Command::Pair(c), key, input).await?;
    let session_id = committed_session(&done)?.unwrap_or(session);
    Ok((Commit::new(&done), pair_id, session_id))
}

/// Mutations of sessions.
#[derive(Default)]
pub struct SessionMutation;

/// Changes to a pair's sessions.
#[Object]
impl SessionMutation {
    /// Plan a session.
    async fn schedule_session(
        &self,
        ctx: &Context<'_>,
        input: ScheduleSessionInput,
    ) -> async_graphql::Result<ScheduleSessionPayload> {
        let access = check(ctx, "scheduleSession")?;
        let by = actor_in_pair(ctx, access, &input.pair_id, input.by_id.as_ref(), "byId").await?;
        let c = PairCommand::try_from(Acting { input: &input, by })?;
        let PairCommand::ScheduleSession { session_id: minted, .. } = c else {
            return Err(ApiError::internal(anyhow::anyhow!("scheduleSession built another command")).into());
        };
        let key = input.idempotency_key.as_deref();
        let (commit, pair_id, session_id) = submit(ctx, "scheduleSession", c, minted, key, &input).await?;
        Ok(ScheduleSessionPayload { commit, pair_id, session_id })
    }

    /// Record a session that took place.
    async fn hold_session(
        &self,
        ctx: &Context<'_>,
        input: HoldSessionInput,
    ) -> async_graphql::Result<HoldSessionPayload> {
        let access = check(ctx, "holdSession")?;
        let by = actor_in_pair(ctx, access, &input.pair_id, input.by_id.as_ref(), "byId").await?;
        let (pair_id, session) = <(PairId, HoldSession)>::try_from(Acting { input: &input, by })?;
        let minted = session.session_id;
        let c = PairCommand::HoldSession { pair_id, session };
        let key = input.idempotency_key.as_deref();
        let (commit, pair_id, session_id) = submit(ctx, "holdSession", c, minted, key, &input).await?;
        Ok(HoldSessionPayload { commit, pair_id, session_id })
    }

    /// Cancel a planned session.
    async fn cancel_session(
        &self,
        ctx: &Context<'_>,
        input: CancelSessionInput,
    ) -> async_graphql::Result<CancelSessionPayload> {
        let access = check(ctx, "cancelSession")?;
        let by = actor_in_pair(ctx, access, &input.pair_id, input.by_id.as_ref(), "byId").await?;
        let c = PairCommand::try_from(Acting { input: &input, by })?;
        let session = parse_id("sessionId", &input.session_id)?;
        let key = input.idempotency_key.as_deref();
        let (commit, pair_id, session_id) = submit(ctx, "cancelSession", c, session, key, &input).await?;
        Ok(CancelSessionPayload { commit, pair_id, session_id })
    }
}
