//! One mutation per command of the domain, by area: `people`, `programs`,
//! `pairs`, `sessions`, `goals`, `feedback` and `webhooks`.
//!
//! Every mutation follows the same path, and this module holds the shared
//! pieces of it:
//!
//! 1. the policy check of the operation;
//! 2. the input object becomes a domain command through `TryFrom`, the one
//!    place per input that names the offending field (`BAD_USER_INPUT` with
//!    `extensions.field`), using the value parsers below;
//! 3. [`run`] hands the command to the command service for the caller;
//! 4. the payload (one type per mutation, Relay style) carries the commit
//!    `position`, `replayed`, `consistent` and the affected objects. The
//!    objects are read once the read models reach `position`
//!    (read-your-writes, [`Commit::settle`]); when they do not get there in
//!    time the write still stands and `consistent` is false, so a committed
//!    change is never reported as a failure.
//!
//! Access follows the policy matrix; for `Own` access (participants) the
//! acting person is the caller and nobody else.

mod feedback;
mod goals;
mod pairs;
mod people;
mod programs;
mod sessions;
mod webhooks;

use async_graphql::{Context, ID};
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use tandem_commands::{Command, CommandMeta, Committed};
use tandem_domain::values::{LongText, ShortText};
use tandem_domain::{DomainError, DomainEvent, FeedbackId, GoalId, PairId, PersonId, ProgramId, SessionId};
use tandem_store::{Actor, Cursor, RecordedEvent};
use tokio::sync::OnceCell;

use super::types::pair::{Feedback, Goal, Pair as PairObject, Session, feedback_readable};
use super::types::{Person, Program, load_error, loaders, me_as_participant, parse_id};
use super::{state, viewer};
use crate::error::ApiError;
use crate::policy::Access;

pub use feedback::FeedbackMutation;
pub use goals::GoalMutation;
pub use pairs::PairMutation;
pub use people::PeopleMutation;
pub use programs::ProgramMutation;
pub use sessions::SessionMutation;
pub use webhooks::WebhookMutation;

// ------------------------------------------------------------ value parsers

/// The longest idempotency key the command service accepts.
const MAX_IDEMPOTENCY_KEY_LEN: usize = 200;

/// Today, for the dates an input may leave out.
fn today() -> NaiveDate {
    Utc::now().date_naive()
}

/// A required one-line text.
fn short(field: &'static str, s: &str) -> Result<ShortText, ApiError> {
    ShortText::parse(field, s).map_err(Into::into)
}

/// An optional one-line text.
fn opt_short(field: &'static str, s: Option<&str>) -> Result<Option<ShortText>, ApiError> {
    s.map(|s| short(field, s)).transpose()
}

/// A free text; absent means empty.
fn long(field: &'static str, s: Option<&str>) -> Result<LongText, ApiError> {
    LongText::parse(field, s.unwrap_or_default()).map_err(Into::into)
}

/// A bounded number of the domain from a GraphQL `Int`.
fn int<T>(parse: fn(&'static str, i64) -> Result<T, DomainError>, field: &'static str, v: i32) -> Result<T, ApiError> {
    parse(field, i64::from(v)).map_err(Into::into)
}

/// An optional typed id.
fn opt_id<T: From<uuid::Uuid>>(field: &str, id: Option<&ID>) -> Result<Option<T>, ApiError> {
    id.map(|i| parse_id(field, i)).transpose()
}

/// The years every client and the read models' `date` columns agree on:
/// ISO 8601's four-digit years. chrono accepts far more (year -262144), and
/// such a date would be committed and then refused by PostgreSQL when the
/// read models apply it.
const YEARS: std::ops::RangeInclusive<i32> = 1..=9999;

/// A calendar date within [`YEARS`].
fn date(field: &'static str, d: NaiveDate) -> Result<NaiveDate, ApiError> {
    if YEARS.contains(&d.year()) {
        Ok(d)
    } else {
        Err(ApiError::bad_input(field, format!("{field} must be a date in the years 0001 to 9999")))
    }
}

/// An optional date within [`YEARS`], or `default` when absent.
fn date_or(field: &'static str, d: Option<NaiveDate>, default: fn() -> NaiveDate) -> Result<NaiveDate, ApiError> {
    date(field, d.unwrap_or_else(default))
}

/// An optional date within [`YEARS`].
fn opt_date(field: &'static str, d: Option<NaiveDate>) -> Result<Option<NaiveDate>, ApiError> {
    d.map(|d| date(field, d)).transpose()
}

/// An instant within [`YEARS`].
fn instant(field: &'static str, t: DateTime<Utc>) -> Result<DateTime<Utc>, ApiError> {
    date(field, t.date_naive()).map(|_| t)
}

/// A list of at most `max` entries.
fn at_most<T>(field: &'static str, list: Vec<T>, max: usize) -> Result<Vec<T>, ApiError> {
    if list.len() > max {
        return Err(ApiError::bad_input(field, format!("{field} takes at most {max} entries")));
    }
    Ok(list)
}

/// Checks an idempotency key before it reaches the database: PostgreSQL
/// text refuses NUL, and control characters are never part of a key a
/// client means to send.
fn idempotency_key(key: Option<&str>) -> Result<Option<&str>, ApiError> {
    match key {
        Some(k)
            if k.is_empty() || k.chars().count() > MAX_IDEMPOTENCY_KEY_LEN || k.len() > 4 * MAX_IDEMPOTENCY_KEY_LEN =>
        {
            Err(ApiError::bad_input("idempotencyKey", "an idempotency key must be 1 to 200 characters"))
        }
        Some(k) if k.chars().any(char::is_control) => {
            Err(ApiError::bad_input("idempotencyKey", "an idempotency key must not contain control characters"))
        }
        other => Ok(other),
    }
}

// ------------------------------------------------------------ who acts

/// An input together with the person who acts on it, resolved from the
/// caller before the input becomes a command.
pub(super) struct Acting<'a, I> {
    pub input: &'a I,
    pub by: PersonId,
}

/// The caller's person when they act with `Own` access; `None` for `All`.
fn acting_person(ctx: &Context<'_>, access: Access) -> Result<Option<PersonId>, ApiError> {
    match access {
        Access::All => Ok(None),
        _ => me_as_participant(ctx).map(Some).ok_or(ApiError::Forbidden),
    }
}

/// Resolves who acts: a participant acts as themself (and may not name
/// anyone else); others must name the person they act for in `field`.
fn actor(ctx: &Context<'_>, access: Access, by: Option<&ID>, field: &'static str) -> Result<PersonId, ApiError> {
    match acting_person(ctx, access)? {
        Some(me) => match by {
            Some(b) if parse_id::<PersonId>(field, b)? != me => Err(ApiError::Forbidden),
            _ => Ok(me),
        },
        None => opt_id(field, by)?.ok_or_else(|| ApiError::bad_input(field, format!("{field} is required"))),
    }
}

/// Decodes a committed event through the domain's event types.
fn decode(e: &RecordedEvent) -> Result<DomainEvent, ApiError> {
    DomainEvent::decode(&e.event_type, e.schema_version, e.data.clone()).map_err(ApiError::internal)
}

/// The members of a pair, from its stream (authoritative even before the
/// read models have it).
async fn pair_members(ctx: &Context<'_>, pair: PairId) -> Result<Vec<PersonId>, ApiError> {
    let events = state(ctx).store.read_stream(pair.as_uuid()).await.map_err(ApiError::internal)?;
    let first = events.first().ok_or_else(|| ApiError::not_found("pair"))?;
    match decode(first)? {
        DomainEvent::Pair(tandem_domain::pair::PairEvent::PairFormed(f)) => Ok(f.members),
        _ => Err(ApiError::not_found("pair")),
    }
}

/// Resolves who acts in a pair and, for a participant, refuses a pair they
/// are not in, with `FORBIDDEN` whether or not the pair exists: a
/// participant learns nothing about pairs they are not in.
async fn actor_in_pair(
    ctx: &Context<'_>,
    access: Access,
    pair: &ID,
    by: Option<&ID>,
    field: &'static str,
) -> Result<PersonId, ApiError> {
    let pair: PairId = parse_id("pairId", pair)?;
    require_member_if_own(ctx, access, pair).await?;
    actor(ctx, access, by, field)
}

/// Refuses a participant acting on a pair they are not in.
async fn require_member_if_own(ctx: &Context<'_>, access: Access, pair: PairId) -> Result<(), ApiError> {
    if let Some(me) = acting_person(ctx, access)? {
        let members = match pair_members(ctx, pair).await {
            Err(ApiError::NotFound { .. }) => Vec::new(),
            other => other?,
        };
        if !members.contains(&me) {
            return Err(ApiError::Forbidden);
        }
    }
    Ok(())
}

// ------------------------------------------------------------ running

/// Runs a command for the caller and returns what it committed.
///
/// `name` is the mutation and `input` the request as received: the
/// same idempotency key means the same request only for the same mutation
/// and input. Keys are scoped to the caller by the command service, and
/// only a keyed digest of this canonical form is stored.
async fn run(
    ctx: &Context<'_>,
    name: &str,
    command: Command,
    key: Option<&str>,
    input: &(dyn std::fmt::Debug + Sync),
) -> Result<Committed, ApiError> {
    let principal = viewer(ctx).ok_or(ApiError::Unauthenticated)?;
    let mut meta =
        CommandMeta::new(Actor { subject: principal.subject().to_owned(), role: principal.actor_role().to_owned() });
    meta.idempotency_key = idempotency_key(key)?.map(str::to_owned);
    meta.request_fingerprint = Some(format!("{name}|{input:?}"));
    state(ctx).commands.handle(command, &meta).await.map_err(ApiError::from)
}

/// The first committed event, decoded: a replay returns the first call's
/// events, whose ids are not the ones minted for this call.
fn first_event(done: &Committed) -> Result<Option<DomainEvent>, ApiError> {
    done.events.first().map(decode).transpose()
}

/// The id of the session the first committed event is about.
fn committed_session(done: &Committed) -> Result<Option<SessionId>, ApiError> {
    use tandem_domain::pair::PairEvent as E;
    Ok(match first_event(done)? {
        Some(DomainEvent::Pair(E::SessionScheduled(e))) => Some(e.session_id),
        Some(DomainEvent::Pair(E::SessionHeld(e))) => Some(e.session_id),
        _ => None,
    })
}

/// The id of the feedback the first committed event gave.
fn committed_feedback(done: &Committed) -> Result<Option<FeedbackId>, ApiError> {
    use tandem_domain::pair::PairEvent as E;
    Ok(match first_event(done)? {
        Some(DomainEvent::Pair(E::FeedbackGiven(e))) => Some(e.feedback_id),
        _ => None,
    })
}

/// The id of the goal the first committed event set.
fn committed_goal(done: &Committed) -> Result<Option<GoalId>, ApiError> {
    use tandem_domain::pair::PairEvent as E;
    Ok(match first_event(done)? {
        Some(DomainEvent::Pair(E::GoalSet(e))) => Some(e.goal_id),
        _ => None,
    })
}

/// The stream of the first committed event (the new entity's id on a
/// creation, the first call's on a replay).
fn committed_stream(done: &Committed) -> Option<uuid::Uuid> {
    done.events.first().map(|e| e.stream_id)
}

/// A committed change, and whether the read models have reached it.
pub(super) struct Commit {
    position: Cursor,
    replayed: bool,
    /// Waited for at most once, by the first payload field that needs it.
    consistent: OnceCell<bool>,
}

impl Commit {
    fn new(done: &Committed) -> Self {
        Self { position: done.position, replayed: done.replayed, consistent: OnceCell::new() }
    }

    /// Waits until the read models reach the commit, for at most the
    /// configured read-your-writes time; true when they did.
    ///
    /// Not getting there is not an error: the change is committed, and a
    /// client told otherwise would retry a write that stands. A failure of
    /// the wait itself (the database is unreachable) is logged and counts
    /// as not consistent, for the same reason.
    async fn settle(&self, ctx: &Context<'_>) -> bool {
        *self
            .consistent
            .get_or_init(|| async {
                let st = state(ctx);
                match st.waiter.wait_for(self.position, st.limits.read_your_writes_timeout).await {
                    Ok(_) => true,
                    Err(tandem_projections::ProjectionError::Timeout { .. }) => {
                        tracing::warn!(position = %self.position, "read models did not reach a committed mutation in time");
                        false
                    }
                    Err(e) => {
                        tracing::error!(position = %self.position, error = %format!("{e:#}"), "waiting for the read models failed");
                        false
                    }
                }
            })
            .await
    }
}

/// Declares a mutation's payload: `position`, `replayed`, `consistent`, and
/// one field per affected object, each read once [`Commit::settle`] is done.
macro_rules! payload {
    (
        $(#[$doc:meta])* $name:ident { $($field:ident : $ty:ty),* $(,)? }
        $( $(#[$odoc:meta])* $obj:ident : $objty:ty = |$self_:ident, $ctx:ident| $load:expr; )+
    ) => {
        $(#[$doc])*
        pub struct $name {
            commit: $crate::schema::mutation::Commit,
            $($field: $ty),*
        }

        $(#[$doc])*
        #[async_graphql::Object]
        impl $name {
            /// The commit position of the change; pass it as `after` to subscriptions or the event feed.
            async fn position(&self) -> String {
                self.commit.position.to_string()
            }
            /// True when this is the first result of an earlier request with the same idempotency key.
            async fn replayed(&self) -> bool {
                self.commit.replayed
            }
            /// True when the objects of this payload were read after every read model reached
            /// `position` (read-your-writes). False when the read models did not get there within
            /// the server's read-your-writes time: the change is committed all the same (do not
            /// retry it), and the objects are read from the read models as they are now, so they
            /// may not show the change yet, and are null when the read models do not know the
            /// object yet (a person, program, pair, session, goal or feedback just created). The
            /// current read model is returned rather than nothing because for a change to an
            /// existing object it is still the best answer available; read it again later, or
            /// follow the event feed or a subscription from `position`.
            async fn consistent(&self, ctx: &async_graphql::Context<'_>) -> bool {
                self.commit.settle(ctx).await
            }
            $(
                $(#[$odoc])*
                async fn $obj(&$self_, $ctx: &async_graphql::Context<'_>) -> async_graphql::Result<Option<$objty>> {
                    $self_.commit.settle($ctx).await;
                    Ok($load)
                }
            )+
        }
    };
}
use payload;

// ------------------------------------------------------------ objects

/// A person as the caller may see them.
async fn person(ctx: &Context<'_>, id: PersonId) -> Result<Option<Person>, ApiError> {
    Person::load(ctx, id).await
}

/// A program.
async fn program(ctx: &Context<'_>, id: ProgramId) -> Result<Option<Program>, ApiError> {
    Ok(loaders(ctx)?.programs.load_one(id).await.map_err(load_error)?.map(Program))
}

/// A pair.
async fn pair(ctx: &Context<'_>, id: PairId) -> Result<Option<PairObject>, ApiError> {
    Ok(loaders(ctx)?.pairs.load_one(id).await.map_err(load_error)?.map(PairObject))
}

/// The members of a pair as the read models have them, for the visibility
/// of texts inside it.
async fn read_members(ctx: &Context<'_>, id: PairId) -> Result<Vec<uuid::Uuid>, ApiError> {
    Ok(loaders(ctx)?.pairs.load_one(id).await.map_err(load_error)?.map(|p| p.member_ids).unwrap_or_default())
}

/// A session of a pair.
async fn session(ctx: &Context<'_>, pair: PairId, id: SessionId) -> Result<Option<Session>, ApiError> {
    let sessions = loaders(ctx)?.sessions.load_one(pair).await.map_err(load_error)?.unwrap_or_default();
    let Some(view) = sessions.into_iter().find(|s| s.session.session_id == id.as_uuid()) else {
        return Ok(None);
    };
    Ok(Some(Session { view, members: read_members(ctx, pair).await? }))
}

/// A goal of a pair.
async fn goal(ctx: &Context<'_>, pair: PairId, id: GoalId) -> Result<Option<Goal>, ApiError> {
    let goals = loaders(ctx)?.goals.load_one(pair).await.map_err(load_error)?.unwrap_or_default();
    let Some(row) = goals.into_iter().find(|g| g.goal_id == id.as_uuid()) else {
        return Ok(None);
    };
    Ok(Some(Goal { row, members: read_members(ctx, pair).await? }))
}

/// A feedback, when the caller may read it.
async fn feedback(ctx: &Context<'_>, pair: PairId, id: FeedbackId) -> Result<Option<Feedback>, ApiError> {
    let all = loaders(ctx)?.feedback.load_one(pair).await.map_err(load_error)?.unwrap_or_default();
    Ok(all.into_iter().find(|f| f.feedback_id == id.as_uuid()).filter(|f| feedback_readable(ctx, f)).map(Feedback))
}
