//! The event subscriptions: `pairEvents`, `programEvents` and `myEvents`.
//!
//! Each checks access and its arguments up front (errors arrive before any
//! event), works out its [`Scope`], and hands over to [`Follow`], which
//! delivers catch-up from `after` and then live events, filtered by the
//! same rules as the queries.

use async_graphql::futures_util::stream::BoxStream;
use async_graphql::{Context, ID, Subscription};
use futures::StreamExt;
use tandem_domain::pair::PairEvent;
use tandem_domain::{DomainEvent, PersonId};
use uuid::Uuid;

use super::feed::parse_after;
use super::render::{Audience, decode};
use super::scope::Scope;
use super::stream::Follow;
use super::types::EventEdge;
use crate::auth::{Principal, Role};
use crate::error::ApiError;
use crate::policy::Access;
use crate::schema::types::parse_id;
use crate::schema::{check, state, viewer};

/// A stream of event edges, as every subscription returns.
pub type EventStream = BoxStream<'static, async_graphql::Result<EventEdge>>;

/// The root subscription fields over the event log.
#[derive(Default, Debug)]
pub struct EventSubscription;

#[Subscription]
impl EventSubscription {
    /// The events of one pair or circle: with `after`, every event after
    /// that cursor and then live ones; without, live ones from now on.
    /// Participants may follow only pairs they are a member of; feedback
    /// arrives only for those who may read it.
    async fn pair_events(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The pair or circle to follow.")] pair_id: ID,
        #[graphql(desc = "Resume after this cursor (the last edge's `cursor` received); omit to start live.")]
        after: Option<String>,
    ) -> async_graphql::Result<EventStream> {
        Ok(pair_events(ctx, &pair_id, after.as_deref()).await?)
    }

    /// The events of one program: the program's own (launch, updates,
    /// enrolments, withdrawals, closing) and those of every pair formed in
    /// it, including pairs formed while subscribed. With `after`, every
    /// event after that cursor and then live ones; without, live ones from
    /// now on.
    async fn program_events(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The program to follow.")] program_id: ID,
        #[graphql(desc = "Resume after this cursor (the last edge's `cursor` received); omit to start live.")]
        after: Option<String>,
    ) -> async_graphql::Result<EventStream> {
        Ok(program_events(ctx, &program_id, after.as_deref()).await?)
    }

    /// The events that concern the caller as a person: their own person
    /// stream, every event of the pairs they are a member of (including
    /// pairs formed while subscribed) and their own enrolments in and
    /// withdrawals from programs. Completes at once for a caller who is not
    /// a person. With `after`, every event after that cursor and then live
    /// ones; without, live ones from now on.
    async fn my_events(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Resume after this cursor (the last edge's `cursor` received); omit to start live.")]
        after: Option<String>,
    ) -> async_graphql::Result<EventStream> {
        Ok(my_events(ctx, after.as_deref()).await?)
    }
}

fn follow(ctx: &Context<'_>, scope: Scope, audience: Audience, after: Option<&str>) -> Result<Follow, ApiError> {
    let state = state(ctx);
    Ok(Follow {
        store: state.store.clone(),
        hub: state.hub.clone(),
        expires_at: audience.viewer.as_ref().map(Principal::expires_at),
        scope,
        audience,
        after: parse_after(after)?,
        pairs_known_to: None,
    })
}

/// The members of a pair, from its first event; `None` when no such pair.
async fn members(ctx: &Context<'_>, pair: Uuid) -> Result<Option<Vec<PersonId>>, ApiError> {
    let events = state(ctx)
        .store
        .read_stream(pair)
        .await
        .map_err(|e| ApiError::internal(anyhow::Error::new(e).context("reading a pair's stream")))?;
    let Some(first) = events.first() else {
        return Ok(None);
    };
    match decode(first)? {
        DomainEvent::Pair(PairEvent::PairFormed(f)) => Ok(Some(f.members)),
        _ => Ok(None),
    }
}

async fn pair_events(ctx: &Context<'_>, pair_id: &ID, after: Option<&str>) -> Result<EventStream, ApiError> {
    let access = check(ctx, "pairEvents")?;
    let pair: Uuid = parse_id("pairId", pair_id)?;
    parse_after(after)?;
    let viewer = viewer(ctx);
    let members = members(ctx, pair).await?;
    let me = viewer.filter(|p| p.has(Role::Participant)).and_then(Principal::person_id);
    let is_member = me.is_some_and(|me| members.as_ref().is_some_and(|m| m.contains(&me)));
    match access {
        Access::All if members.is_none() => return Err(ApiError::not_found("pair")),
        Access::All => {}
        // A participant learns nothing about pairs they are not in, not
        // even whether they exist.
        Access::Own if is_member => {}
        Access::Own | Access::Deny => return Err(ApiError::Forbidden),
    }
    let mut audience = Audience::new(viewer.cloned());
    if is_member {
        audience.member_of.insert(pair);
    }
    Ok(follow(ctx, Scope::Pair(pair), audience, after)?.run())
}

async fn program_events(ctx: &Context<'_>, program_id: &ID, after: Option<&str>) -> Result<EventStream, ApiError> {
    // No `Own` scope is defined for programs: only `All` may follow one.
    if check(ctx, "programEvents")? != Access::All {
        return Err(ApiError::Forbidden);
    }
    let program: Uuid = parse_id("programId", program_id)?;
    parse_after(after)?;
    let state = state(ctx);
    let exists = state
        .store
        .stream_version(program)
        .await
        .map_err(|e| ApiError::internal(anyhow::Error::new(e).context("looking up a program's stream")))?
        .is_some();
    if !exists {
        return Err(ApiError::not_found("program"));
    }
    let mut scope = Scope::Program { program, pairs: Default::default() };
    let known_to = scope.load_pairs(&state.pool).await?;
    let mut follow = follow(ctx, scope, Audience::new(viewer(ctx).cloned()), after)?;
    follow.pairs_known_to = Some(known_to);
    Ok(follow.run())
}

async fn my_events(ctx: &Context<'_>, after: Option<&str>) -> Result<EventStream, ApiError> {
    check(ctx, "myEvents")?;
    parse_after(after)?;
    let viewer = viewer(ctx);
    let Some(me) = viewer.and_then(Principal::person_id) else {
        // Nothing in the log is about a caller who is not a person.
        return Ok(futures::stream::empty().boxed());
    };
    let state = state(ctx);
    let mut scope = Scope::Person { person: me.as_uuid(), pairs: Default::default() };
    let known_to = scope.load_pairs(&state.pool).await?;
    let mut audience = Audience::new(viewer.cloned());
    audience.member_of = scope.pairs();
    let mut follow = follow(ctx, scope, audience, after)?;
    follow.pairs_known_to = Some(known_to);
    Ok(follow.run())
}
