//! The GraphQL shape of the event log: the [`Event`] union with one object
//! type per domain event type, the [`EventEnvelope`] every one of them
//! carries, and the Relay edge and connection of the feed.
//!
//! They also serialize (serde) to the JSON a GraphQL response would hold
//! for them, field names in camelCase and enum values as GraphQL spells
//! them: that is the `data` of a webhook delivery.
//!
//! These are plain values: [`super::render`] builds them from a stored
//! event once it has decided what the caller may see, and a `null` in a
//! payload field that the event has a value for is listed in
//! [`EventEnvelope::redacted_fields`]. Enums and small objects shared with
//! the query types (`Activity`, `Visibility`, `Ratings`, `GroupFormat`, …)
//! come from [`crate::schema::types`], so each exists once in the schema.

use async_graphql::{Enum, ID, SimpleObject, Union};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::schema::types::PageInfo;
use crate::schema::types::enums::{Activity, DissolveReason, FormedBy, GroupKind, LeaveReason, Purpose, Visibility};
use crate::schema::types::pair::Ratings;
use crate::schema::types::program::GroupFormat;

/// The kind of stream an event belongs to.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StreamType {
    /// A person of the organisation; the stream id is the person's id.
    Person,
    /// A coaching program; the stream id is the program's id.
    Program,
    /// A pair or circle; the stream id is the pair's id.
    Pair,
    /// A webhook endpoint; the stream id is the endpoint's id. Its events
    /// are not part of the feed.
    Webhook,
}

impl From<tandem_domain::event::StreamType> for StreamType {
    fn from(s: tandem_domain::event::StreamType) -> Self {
        use tandem_domain::event::StreamType as S;
        match s {
            S::Person => Self::Person,
            S::Program => Self::Program,
            S::Pair => Self::Pair,
            S::Webhook => Self::Webhook,
        }
    }
}

/// What every event carries besides its payload: where it sits in the log,
/// which stream it belongs to, and who caused it.
#[derive(SimpleObject, Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventEnvelope {
    /// The event's place in the log's global order as an opaque cursor:
    /// pass it as `after` to the `events` query or to a subscription to
    /// resume right after this event.
    pub cursor: String,
    /// The event's insertion number in the log. Informative only: it is not
    /// the delivery order (see `cursor`).
    pub position: i64,
    /// The event's own id, unique across the log.
    pub event_id: ID,
    /// The id of the stream the event belongs to (a person, program or pair id).
    pub stream_id: ID,
    /// The kind of stream the event belongs to.
    pub stream_type: StreamType,
    /// The event's number within its stream: 1, 2, 3, …
    pub stream_version: i32,
    /// The event's type name, e.g. `PairFormed`; the object type is this
    /// name followed by `Event`.
    pub event_type: String,
    /// The version of the payload's schema. Events are always delivered in
    /// today's shape (older ones are upcast when read); this is today's version.
    pub schema_version: i32,
    /// When the event was recorded, by the database's clock (all events of
    /// one transaction share it).
    pub recorded_at: DateTime<Utc>,
    /// The role the actor who caused the event acted in, e.g. `admin`.
    pub actor_role: String,
    /// Groups every event one client request caused, across streams.
    pub correlation_id: ID,
    /// The event or command that directly caused this one, when known.
    pub causation_id: Option<ID>,
    /// The payload fields withheld from the caller: they are null in this
    /// event although it has a value for them.
    pub redacted_fields: Vec<String>,
}

/// An event of the log, in today's shape, as far as the caller may see it.
#[derive(Union, Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum Event {
    PersonRegistered(PersonRegisteredEvent),
    PersonUpdated(PersonUpdatedEvent),
    PersonLeft(PersonLeftEvent),
    PersonRejoined(PersonRejoinedEvent),
    PersonErased(PersonErasedEvent),
    ProgramLaunched(ProgramLaunchedEvent),
    ProgramUpdated(ProgramUpdatedEvent),
    ParticipantEnrolled(ParticipantEnrolledEvent),
    ParticipantWithdrew(ParticipantWithdrewEvent),
    ProgramClosed(ProgramClosedEvent),
    PairFormed(PairFormedEvent),
    SessionScheduled(SessionScheduledEvent),
    SessionHeld(SessionHeldEvent),
    SessionCancelled(SessionCancelledEvent),
    FeedbackGiven(FeedbackGivenEvent),
    GoalSet(GoalSetEvent),
    GoalProgressRecorded(GoalProgressRecordedEvent),
    GoalCompleted(GoalCompletedEvent),
    GoalAbandoned(GoalAbandonedEvent),
    PairPaused(PairPausedEvent),
    PairResumed(PairResumedEvent),
    PairDissolved(PairDissolvedEvent),
}

impl Event {
    /// The envelope of whichever event this is.
    #[must_use]
    pub fn envelope(&self) -> &EventEnvelope {
        match self {
            Self::PersonRegistered(e) => &e.envelope,
            Self::PersonUpdated(e) => &e.envelope,
            Self::PersonLeft(e) => &e.envelope,
            Self::PersonRejoined(e) => &e.envelope,
            Self::PersonErased(e) => &e.envelope,
            Self::ProgramLaunched(e) => &e.envelope,
            Self::ProgramUpdated(e) => &e.envelope,
            Self::ParticipantEnrolled(e) => &e.envelope,
            Self::ParticipantWithdrew(e) => &e.envelope,
            Self::ProgramClosed(e) => &e.envelope,
            Self::PairFormed(e) => &e.envelope,
            Self::SessionScheduled(e) => &e.envelope,
            Self::SessionHeld(e) => &e.envelope,
            Self::SessionCancelled(e) => &e.envelope,
            Self::FeedbackGiven(e) => &e.envelope,
            Self::GoalSet(e) => &e.envelope,
            Self::GoalProgressRecorded(e) => &e.envelope,
            Self::GoalCompleted(e) => &e.envelope,
            Self::GoalAbandoned(e) => &e.envelope,
            Self::PairPaused(e) => &e.envelope,
            Self::PairResumed(e) => &e.envelope,
            Self::PairDissolved(e) => &e.envelope,
        }
    }
}

/// An event with its cursor: an item of the `events` feed and of every
/// event subscription.
#[derive(SimpleObject, Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventEdge {
    /// The event's cursor (the same as `node.envelope.cursor`): pass it as
    /// `after` to resume right after this event.
    pub cursor: String,
    /// The event.
    pub node: Event,
}

/// A page of the event log (a Relay connection), in the log's global order.
#[derive(SimpleObject, Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventConnection {
    /// The events of this page with their cursors, oldest first.
    pub edges: Vec<EventEdge>,
    /// Where this page lies in the log. `endCursor` is null on an empty
    /// page: keep the cursor you have and ask again later.
    pub page_info: PageInfo,
}

// ---------------------------------------------------------------------------
// The person stream
// ---------------------------------------------------------------------------

/// A person was registered from the HR system.
#[derive(SimpleObject, Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PersonRegisteredEvent {
    /// Where and when the event happened.
    pub envelope: EventEnvelope,
    /// The person.
    pub person_id: ID,
    /// The id the HR system knows them by; personal data, null unless the
    /// caller may read it.
    pub external_id: Option<String>,
    /// Full name; personal data, null unless the caller may read it.
    pub name: Option<String>,
    /// E-mail address; personal data, null unless the caller may read it.
    pub email: Option<String>,
    /// Where they work; personal data, null when unknown or unless the
    /// caller may read it.
    pub location: Option<String>,
    /// Department at registration; null unless the caller may read the
    /// person's org history.
    pub department: Option<String>,
    /// Job title at registration; null unless the caller may read the
    /// person's org history.
    pub title: Option<String>,
    /// Career level at registration (1 = most junior); null unless the
    /// caller may read the person's org history.
    pub level: Option<i32>,
    /// Their manager at registration, if any; null also unless the caller
    /// may read the person's org history.
    pub manager_id: Option<ID>,
    /// The day they were hired; their org facts hold from then.
    pub hired_on: NaiveDate,
}

/// A person's profile or org facts changed, effective on a date.
#[derive(SimpleObject, Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PersonUpdatedEvent {
    /// Where and when the event happened.
    pub envelope: EventEnvelope,
    /// The person.
    pub person_id: ID,
    /// The day the change takes effect (may be in the past or the future).
    pub effective_on: NaiveDate,
    /// The fields that changed, by name (`name`, `email`, `location`,
    /// `department`, `title`, `level`, `managerId`). A changed field that
    /// is null was cleared, or is withheld (see `envelope.redactedFields`).
    pub changed_fields: Vec<String>,
    /// The new name; personal data.
    pub name: Option<String>,
    /// The new e-mail address; personal data.
    pub email: Option<String>,
    /// The new location; personal data.
    pub location: Option<String>,
    /// The new department; part of the org history.
    pub department: Option<String>,
    /// The new job title; part of the org history.
    pub title: Option<String>,
    /// The new career level; part of the org history.
    pub level: Option<i32>,
    /// The new manager; part of the org history.
    pub manager_id: Option<ID>,
}

/// A person left the organisation.
#[derive(SimpleObject, Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PersonLeftEvent {
    /// Where and when the event happened.
    pub envelope: EventEnvelope,
    /// The person.
    pub person_id: ID,
    /// Their last day.
    pub left_on: NaiveDate,
    /// Why they left.
    pub reason: LeaveReason,
}

/// A person who had left came back.
#[derive(SimpleObject, Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PersonRejoinedEvent {
    /// Where and when the event happened.
    pub envelope: EventEnvelope,
    /// The person.
    pub person_id: ID,
    /// The day they came back.
    pub rejoined_on: NaiveDate,
}

/// A person's personal data is to be forgotten; their history stays whole,
/// without names or contact details.
#[derive(SimpleObject, Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PersonErasedEvent {
    /// Where and when the event happened.
    pub envelope: EventEnvelope,
    /// The person.
    pub person_id: ID,
}

// ---------------------------------------------------------------------------
// The program stream
// ---------------------------------------------------------------------------

/// A coaching program was launched.
#[derive(SimpleObject, Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProgramLaunchedEvent {
    /// Where and when the event happened.
    pub envelope: EventEnvelope,
    /// The program.
    pub program_id: ID,
    /// Its name.
    pub name: String,
    /// What it is about.
    pub description: String,
    /// Why it exists.
    pub purpose: Purpose,
    /// Pairs or circles, and their sizes.
    pub format: GroupFormat,
    /// The largest level difference it accepts inside one pair or circle.
    pub max_level_gap: i32,
    /// Expected days between sessions.
    pub cadence_days: i32,
    /// Its first day.
    pub starts_on: NaiveDate,
    /// Its planned last day, if any.
    pub ends_on: Option<NaiveDate>,
}

/// A program's settings changed.
#[derive(SimpleObject, Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProgramUpdatedEvent {
    /// Where and when the event happened.
    pub envelope: EventEnvelope,
    /// The program.
    pub program_id: ID,
    /// The fields that changed, by name (`name`, `description`,
    /// `maxLevelGap`, `cadenceDays`, `endsOn`). A changed `endsOn` that is
    /// null was removed.
    pub changed_fields: Vec<String>,
    /// The new name.
    pub name: Option<String>,
    /// The new description.
    pub description: Option<String>,
    /// The new largest level gap.
    pub max_level_gap: Option<i32>,
    /// The new cadence in days.
    pub cadence_days: Option<i32>,
    /// The new planned last day.
    pub ends_on: Option<NaiveDate>,
}

/// A person joined a program.
#[derive(SimpleObject, Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ParticipantEnrolledEvent {
    /// Where and when the event happened.
    pub envelope: EventEnvelope,
    /// The program.
    pub program_id: ID,
    /// The person who joined.
    pub person_id: ID,
    /// The day they joined.
    pub enrolled_on: NaiveDate,
    /// What they are interested in.
    pub interests: Vec<String>,
    /// What they are good at.
    pub skills: Vec<String>,
    /// What they want to work on.
    pub wants_to_work_on: String,
}

/// A person left a program.
#[derive(SimpleObject, Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ParticipantWithdrewEvent {
    /// Where and when the event happened.
    pub envelope: EventEnvelope,
    /// The program.
    pub program_id: ID,
    /// The person who withdrew.
    pub person_id: ID,
    /// The day they withdrew.
    pub withdrew_on: NaiveDate,
    /// Why, in their words (may be empty).
    pub reason: String,
}

/// A program ended.
#[derive(SimpleObject, Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProgramClosedEvent {
    /// Where and when the event happened.
    pub envelope: EventEnvelope,
    /// The program.
    pub program_id: ID,
    /// Its last day.
    pub closed_on: NaiveDate,
    /// Why it closed (may be empty).
    pub reason: String,
}

// ---------------------------------------------------------------------------
// The pair stream
// ---------------------------------------------------------------------------

/// A pair or circle was formed.
#[derive(SimpleObject, Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PairFormedEvent {
    /// Where and when the event happened.
    pub envelope: EventEnvelope,
    /// The pair.
    pub pair_id: ID,
    /// The program it belongs to.
    pub program_id: ID,
    /// A pair or a circle.
    pub kind: GroupKind,
    /// Its members, in the order the formation listed them.
    pub member_ids: Vec<ID>,
    /// How it came to be.
    pub formed_by: FormedBy,
    /// The matching score (0 to 1), when it came from a suggestion.
    pub match_score: Option<f64>,
    /// The day it was formed.
    pub formed_on: NaiveDate,
}

/// A session was planned.
#[derive(SimpleObject, Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionScheduledEvent {
    /// Where and when the event happened.
    pub envelope: EventEnvelope,
    /// The pair.
    pub pair_id: ID,
    /// The session.
    pub session_id: ID,
    /// The member who planned it.
    pub scheduled_by_id: ID,
    /// When it is planned for.
    pub scheduled_for: DateTime<Utc>,
    /// What it is to focus on, if said.
    pub focus: Option<String>,
}

/// Who coached whom in a held session, by person id.
#[derive(SimpleObject, Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionCoachingIds {
    /// The member who coached.
    pub coach_id: ID,
    /// The member who was coached.
    pub coachee_id: ID,
}

/// A session took place.
#[derive(SimpleObject, Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionHeldEvent {
    /// Where and when the event happened.
    pub envelope: EventEnvelope,
    /// The pair.
    pub pair_id: ID,
    /// The session.
    pub session_id: ID,
    /// The member who recorded it.
    pub recorded_by_id: ID,
    /// When it took place.
    pub held_at: DateTime<Utc>,
    /// How long it lasted, in minutes.
    pub minutes: i32,
    /// What it focused on.
    pub focus: String,
    /// What the members did.
    pub activities: Vec<Activity>,
    /// The version of the closed activity list the activities come from.
    pub activities_version: i32,
    /// Who coached whom.
    pub coaching: Vec<SessionCoachingIds>,
    /// The members' notes; null unless the caller may read session notes
    /// (the pair's members and admins).
    pub notes: Option<String>,
}

/// A planned session will not take place.
#[derive(SimpleObject, Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionCancelledEvent {
    /// Where and when the event happened.
    pub envelope: EventEnvelope,
    /// The pair.
    pub pair_id: ID,
    /// The session.
    pub session_id: ID,
    /// The member who cancelled it.
    pub cancelled_by_id: ID,
    /// Why (may be empty).
    pub reason: String,
}

/// A member gave feedback to another. Delivered only to those who may read
/// it (its author; its recipient when shared with them; coordinators and
/// admins when shared with coordinators) and, without its texts, to
/// pseudonymous readers of the feed (analysts).
#[derive(SimpleObject, Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FeedbackGivenEvent {
    /// Where and when the event happened.
    pub envelope: EventEnvelope,
    /// The pair.
    pub pair_id: ID,
    /// The piece of feedback.
    pub feedback_id: ID,
    /// Its author.
    pub from_id: ID,
    /// Its recipient.
    pub to_id: ID,
    /// The session it is about, if any.
    pub session_id: Option<ID>,
    /// Trait ratings, 1 to 5, each optional.
    pub ratings: Ratings,
    /// What went well; null unless the caller may read the feedback's texts.
    pub strengths: Option<String>,
    /// What could improve; null unless the caller may read the feedback's texts.
    pub improvements: Option<String>,
    /// Who may read it besides its author.
    pub visibility: Visibility,
    /// When it was given.
    pub given_at: DateTime<Utc>,
}

/// A member set a goal.
#[derive(SimpleObject, Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GoalSetEvent {
    /// Where and when the event happened.
    pub envelope: EventEnvelope,
    /// The pair.
    pub pair_id: ID,
    /// The goal.
    pub goal_id: ID,
    /// The member whose goal it is.
    pub owner_id: ID,
    /// Its title; null unless the caller may read goal texts.
    pub title: Option<String>,
    /// Its description; null unless the caller may read goal texts.
    pub description: Option<String>,
    /// When it is due, if set.
    pub due_on: Option<NaiveDate>,
    /// The member who holds the owner accountable, if any.
    pub accountability_partner_id: Option<ID>,
    /// The day it was set.
    pub set_on: NaiveDate,
}

/// Progress on a goal was recorded.
#[derive(SimpleObject, Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GoalProgressRecordedEvent {
    /// Where and when the event happened.
    pub envelope: EventEnvelope,
    /// The pair.
    pub pair_id: ID,
    /// The goal.
    pub goal_id: ID,
    /// The member who recorded it.
    pub by_id: ID,
    /// How far the goal is, in percent, if said.
    pub percent: Option<i32>,
    /// The progress note; null unless the caller may read goal texts.
    pub note: Option<String>,
    /// The day it was recorded for.
    pub recorded_on: NaiveDate,
}

/// A goal was reached.
#[derive(SimpleObject, Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GoalCompletedEvent {
    /// Where and when the event happened.
    pub envelope: EventEnvelope,
    /// The pair.
    pub pair_id: ID,
    /// The goal.
    pub goal_id: ID,
    /// The member who completed it (its owner).
    pub by_id: ID,
    /// The closing note; null unless the caller may read goal texts.
    pub note: Option<String>,
    /// The day it was reached.
    pub completed_on: NaiveDate,
}

/// A goal was given up.
#[derive(SimpleObject, Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GoalAbandonedEvent {
    /// Where and when the event happened.
    pub envelope: EventEnvelope,
    /// The pair.
    pub pair_id: ID,
    /// The goal.
    pub goal_id: ID,
    /// The member who gave it up (its owner).
    pub by_id: ID,
    /// Why; null unless the caller may read goal texts.
    pub reason: Option<String>,
    /// The day it was given up.
    pub abandoned_on: NaiveDate,
}

/// A pair took a break.
#[derive(SimpleObject, Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PairPausedEvent {
    /// Where and when the event happened.
    pub envelope: EventEnvelope,
    /// The pair.
    pub pair_id: ID,
    /// Why (may be empty).
    pub reason: String,
    /// The first day of the break.
    pub paused_on: NaiveDate,
    /// The planned last day of the break, if any.
    pub until: Option<NaiveDate>,
}

/// A pair is back from a break.
#[derive(SimpleObject, Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PairResumedEvent {
    /// Where and when the event happened.
    pub envelope: EventEnvelope,
    /// The pair.
    pub pair_id: ID,
    /// The day it resumed.
    pub resumed_on: NaiveDate,
}

/// A pair ended.
#[derive(SimpleObject, Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PairDissolvedEvent {
    /// Where and when the event happened.
    pub envelope: EventEnvelope,
    /// The pair.
    pub pair_id: ID,
    /// Why it ended.
    pub reason: DissolveReason,
    /// A note on why (may be empty).
    pub note: String,
    /// Its last day.
    pub dissolved_on: NaiveDate,
}
