//! From a stored event to what one caller sees of it.
//!
//! [`render`] decodes nothing and decides nothing on its own: it takes the
//! decoded domain event and asks [`crate::policy`] about every sensitive
//! value, exactly as the query types do for the same facts:
//!
//! * `FeedbackGiven` goes through [`policy::feedback_disclosure`]: hidden
//!   (the event is not delivered), ratings only, or whole;
//! * names, e-mails, external ids and locations through
//!   [`policy::can_read_personal_data`], and never for an erased person;
//! * department, title, level and manager through
//!   [`policy::can_read_org_history`];
//! * session notes and goal texts through [`policy::can_read_pair_field`]
//!   with the rows `Session.notes` and `Goal.title/description/progress
//!   notes` (a goal's completion note and abandon reason count as goal
//!   texts).
//!
//! Every value withheld is named in the envelope's `redactedFields`.

use std::collections::HashSet;

use async_graphql::ID;
use futures::{StreamExt, TryStreamExt, stream};
use tandem_domain::event::StoredEvent;
use tandem_domain::pair::PairEvent;
use tandem_domain::person::PersonEvent;
use tandem_domain::program::ProgramEvent;
use tandem_domain::values::{LongText, ShortText};
use tandem_domain::{DomainEvent, PersonId};
use tandem_store::{EventStore, RecordedEvent};
use uuid::Uuid;

use super::types::{
    Event, EventEnvelope, FeedbackGivenEvent, GoalAbandonedEvent, GoalCompletedEvent, GoalProgressRecordedEvent,
    GoalSetEvent, PairDissolvedEvent, PairFormedEvent, PairPausedEvent, PairResumedEvent, ParticipantEnrolledEvent,
    ParticipantWithdrewEvent, PersonErasedEvent, PersonLeftEvent, PersonRegisteredEvent, PersonRejoinedEvent,
    PersonUpdatedEvent, ProgramClosedEvent, ProgramLaunchedEvent, ProgramUpdatedEvent, SessionCancelledEvent,
    SessionCoachingIds, SessionHeldEvent, SessionScheduledEvent, StreamType,
};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::policy::{self, FeedbackDisclosure};
use crate::schema::types::pair::Ratings;
use crate::schema::types::program::GroupFormat;

/// The matrix row of session notes.
const SESSION_NOTES: &str = "Session.notes";
/// The matrix row of goal texts.
const GOAL_TEXTS: &str = "Goal.title/description/progress notes";

/// Who an event is rendered for.
#[derive(Clone, Debug, Default)]
pub(crate) struct Audience {
    /// The caller; `None` when anonymous (then nothing is ever delivered,
    /// since every event operation refuses anonymous callers first).
    pub viewer: Option<Principal>,
    /// The pairs the caller is known to be a member of. Subscriptions track
    /// them; the feed, which participants cannot use, leaves it empty.
    pub member_of: HashSet<Uuid>,
}

impl Audience {
    /// An audience with no known pair memberships.
    pub fn new(viewer: Option<Principal>) -> Self {
        Self { viewer, member_of: HashSet::new() }
    }

    fn viewer(&self) -> Option<&Principal> {
        self.viewer.as_ref()
    }

    /// The person whose personal data rendering `event` would show this
    /// audience, if any: the caller must then tell [`render`] whether that
    /// person is erased.
    pub fn personal_data_of(&self, event: &DomainEvent) -> Option<PersonId> {
        let person = match event {
            DomainEvent::Person(PersonEvent::PersonRegistered(e)) => e.person_id,
            DomainEvent::Person(PersonEvent::PersonUpdated(e))
                if e.changes.name.is_some() || e.changes.email.is_some() || e.changes.location.is_some() =>
            {
                e.person_id
            }
            _ => return None,
        };
        policy::can_read_personal_data(self.viewer(), person, false).then_some(person)
    }
}

/// Reads a stored event as today's domain event, leniently: an event a
/// newer version of Tandem wrote and this build cannot interpret is
/// [`DomainEvent::Unrecognised`], which [`render`] delivers to nobody, so the
/// feed and subscriptions move past it. A failure is internal: an event of a
/// version this build knows that does not decode is not one it wrote.
pub(crate) fn decode(rec: &RecordedEvent) -> Result<DomainEvent, ApiError> {
    StoredEvent::read(rec.stream_id, &rec.event_type, rec.schema_version, rec.data.clone())
        .map(|read| read.event)
        .map_err(|e| {
            ApiError::internal(anyhow::Error::new(e).context(format!("decoding the stored event at {}", rec.cursor())))
        })
}

fn id(u: impl Into<Uuid>) -> ID {
    ID(u.into().to_string())
}

fn short(t: &ShortText) -> String {
    t.as_str().to_owned()
}

fn long(t: &LongText) -> String {
    t.as_str().to_owned()
}

/// Collects the names of withheld values while a payload is built.
#[derive(Default)]
struct Redactions(Vec<String>);

impl Redactions {
    /// `value` when `allowed`; otherwise `None`, noting `field` when there
    /// was a value to withhold.
    fn keep<T>(&mut self, allowed: bool, field: &str, value: Option<T>) -> Option<T> {
        if allowed {
            return value;
        }
        if value.is_some() {
            self.0.push(field.to_owned());
        }
        None
    }
}

fn envelope(rec: &RecordedEvent, stream: tandem_domain::event::StreamType, redacted: Redactions) -> EventEnvelope {
    EventEnvelope {
        cursor: rec.cursor().to_string(),
        position: rec.position,
        event_id: id(rec.event_id),
        stream_id: id(rec.stream_id),
        stream_type: StreamType::from(stream),
        stream_version: rec.stream_version,
        event_type: rec.event_type.clone(),
        schema_version: i32::from(rec.schema_version),
        recorded_at: rec.recorded_at,
        actor_role: rec.metadata.actor.role.clone(),
        correlation_id: id(rec.metadata.correlation_id),
        causation_id: rec.metadata.causation_id.map(id),
        redacted_fields: redacted.0,
    }
}

/// What `audience` sees of one event, or `None` when the event is not
/// delivered to them at all. `erased` must hold the person of
/// [`Audience::personal_data_of`] when that person is erased.
#[expect(clippy::too_many_lines, reason = "one arm per event type reads best as one match")]
pub(crate) fn render(
    rec: &RecordedEvent,
    event: &DomainEvent,
    audience: &Audience,
    erased: &HashSet<PersonId>,
) -> Option<Event> {
    // An event this build cannot interpret has no shape to render: it is
    // delivered to nobody (see [`decode`]).
    let stream = event.stream_type()?;
    // Changes to webhook endpoints are for their own queries, not the feed.
    if matches!(event, DomainEvent::Webhook(_)) {
        return None;
    }
    let viewer = audience.viewer();
    let mut r = Redactions::default();
    let personal =
        |person: PersonId| policy::can_read_personal_data(viewer, person, false) && !erased.contains(&person);
    let org = |person: PersonId| policy::can_read_org_history(viewer, person);
    let in_pair =
        |pair: Uuid, field: &str| policy::can_read_pair_field(viewer, field, audience.member_of.contains(&pair));
    let node = match event {
        DomainEvent::Person(e) => match e {
            PersonEvent::PersonRegistered(e) => {
                let (p, o) = (personal(e.person_id), org(e.person_id));
                Event::PersonRegistered(PersonRegisteredEvent {
                    person_id: id(e.person_id),
                    external_id: r.keep(p, "externalId", e.external_id.as_ref().map(|x| x.as_str().to_owned())),
                    name: r.keep(p, "name", e.name.as_ref().map(short)),
                    email: r.keep(p, "email", e.email.as_ref().map(|m| m.as_str().to_owned())),
                    location: r.keep(p, "location", e.location.as_ref().map(short)),
                    department: r.keep(o, "department", Some(short(&e.department))),
                    title: r.keep(o, "title", Some(short(&e.title))),
                    level: r.keep(o, "level", Some(i32::from(e.level.get()))),
                    manager_id: r.keep(o, "managerId", e.manager.map(id)),
                    hired_on: e.hired_on,
                    envelope: envelope(rec, stream, std::mem::take(&mut r)),
                })
            }
            PersonEvent::PersonUpdated(e) => {
                let (p, o) = (personal(e.person_id), org(e.person_id));
                let c = &e.changes;
                let changed: Vec<String> = [
                    ("name", c.name.is_some()),
                    ("email", c.email.is_some()),
                    ("location", c.location.is_some()),
                    ("department", c.department.is_some()),
                    ("title", c.title.is_some()),
                    ("level", c.level.is_some()),
                    ("managerId", c.manager.is_some()),
                ]
                .into_iter()
                .filter(|(_, changed)| *changed)
                .map(|(name, _)| name.to_owned())
                .collect();
                Event::PersonUpdated(PersonUpdatedEvent {
                    person_id: id(e.person_id),
                    effective_on: e.effective_on,
                    changed_fields: changed,
                    name: r.keep(p, "name", c.name.as_ref().map(short)),
                    email: r.keep(p, "email", c.email.as_ref().map(|m| m.as_str().to_owned())),
                    location: r.keep(p, "location", c.location.as_ref().and_then(|l| l.as_ref().map(short))),
                    department: r.keep(o, "department", c.department.as_ref().map(short)),
                    title: r.keep(o, "title", c.title.as_ref().map(short)),
                    level: r.keep(o, "level", c.level.map(|l| i32::from(l.get()))),
                    manager_id: r.keep(o, "managerId", c.manager.flatten().map(id)),
                    envelope: envelope(rec, stream, std::mem::take(&mut r)),
                })
            }
            PersonEvent::PersonLeft(e) => Event::PersonLeft(PersonLeftEvent {
                person_id: id(e.person_id),
                left_on: e.left_on,
                reason: e.reason.into(),
                envelope: envelope(rec, stream, std::mem::take(&mut r)),
            }),
            PersonEvent::PersonRejoined(e) => Event::PersonRejoined(PersonRejoinedEvent {
                person_id: id(e.person_id),
                rejoined_on: e.rejoined_on,
                envelope: envelope(rec, stream, std::mem::take(&mut r)),
            }),
            PersonEvent::PersonErased(e) => Event::PersonErased(PersonErasedEvent {
                person_id: id(e.person_id),
                envelope: envelope(rec, stream, std::mem::take(&mut r)),
            }),
        },
        DomainEvent::Program(e) => match e {
            ProgramEvent::ProgramLaunched(e) => Event::ProgramLaunched(ProgramLaunchedEvent {
                program_id: id(e.program_id),
                name: short(&e.name),
                description: long(&e.description),
                purpose: e.purpose.into(),
                format: GroupFormat {
                    kind: e.format.kind.into(),
                    min_size: i32::from(e.format.min_size),
                    max_size: i32::from(e.format.max_size),
                },
                max_level_gap: i32::from(e.max_level_gap.get()),
                cadence_days: i32::from(e.cadence_days.get()),
                starts_on: e.starts_on,
                ends_on: e.ends_on,
                envelope: envelope(rec, stream, std::mem::take(&mut r)),
            }),
            ProgramEvent::ProgramUpdated(e) => {
                let c = &e.changes;
                let changed: Vec<String> = [
                    ("name", c.name.is_some()),
                    ("description", c.description.is_some()),
                    ("maxLevelGap", c.max_level_gap.is_some()),
                    ("cadenceDays", c.cadence_days.is_some()),
                    ("endsOn", c.ends_on.is_some()),
                ]
                .into_iter()
                .filter(|(_, changed)| *changed)
                .map(|(name, _)| name.to_owned())
                .collect();
                Event::ProgramUpdated(ProgramUpdatedEvent {
                    program_id: id(e.program_id),
                    changed_fields: changed,
                    name: c.name.as_ref().map(short),
                    description: c.description.as_ref().map(long),
                    max_level_gap: c.max_level_gap.map(|g| i32::from(g.get())),
                    cadence_days: c.cadence_days.map(|d| i32::from(d.get())),
                    ends_on: c.ends_on.flatten(),
                    envelope: envelope(rec, stream, std::mem::take(&mut r)),
                })
            }
            ProgramEvent::ParticipantEnrolled(e) => Event::ParticipantEnrolled(ParticipantEnrolledEvent {
                program_id: id(e.program_id),
                person_id: id(e.person_id),
                enrolled_on: e.enrolled_on,
                interests: e.interests.iter().map(short).collect(),
                skills: e.skills.iter().map(short).collect(),
                wants_to_work_on: long(&e.wants_to_work_on),
                envelope: envelope(rec, stream, std::mem::take(&mut r)),
            }),
            ProgramEvent::ParticipantWithdrew(e) => Event::ParticipantWithdrew(ParticipantWithdrewEvent {
                program_id: id(e.program_id),
                person_id: id(e.person_id),
                withdrew_on: e.withdrew_on,
                reason: long(&e.reason),
                envelope: envelope(rec, stream, std::mem::take(&mut r)),
            }),
            ProgramEvent::ProgramClosed(e) => Event::ProgramClosed(ProgramClosedEvent {
                program_id: id(e.program_id),
                closed_on: e.closed_on,
                reason: long(&e.reason),
                envelope: envelope(rec, stream, std::mem::take(&mut r)),
            }),
        },
        DomainEvent::Pair(e) => match e {
            PairEvent::PairFormed(e) => Event::PairFormed(PairFormedEvent {
                pair_id: id(e.pair_id),
                program_id: id(e.program_id),
                kind: e.kind.into(),
                member_ids: e.members.iter().copied().map(id).collect(),
                formed_by: e.formed_by.into(),
                match_score: e.match_score.map(|s| s.get()),
                formed_on: e.formed_on,
                envelope: envelope(rec, stream, std::mem::take(&mut r)),
            }),
            PairEvent::SessionScheduled(e) => Event::SessionScheduled(SessionScheduledEvent {
                pair_id: id(e.pair_id),
                session_id: id(e.session_id),
                scheduled_by_id: id(e.scheduled_by),
                scheduled_for: e.scheduled_for,
                focus: e.focus.as_ref().map(short),
                envelope: envelope(rec, stream, std::mem::take(&mut r)),
            }),
            PairEvent::SessionHeld(e) => {
                let notes = in_pair(e.pair_id.as_uuid(), SESSION_NOTES);
                Event::SessionHeld(SessionHeldEvent {
                    pair_id: id(e.pair_id),
                    session_id: id(e.session_id),
                    recorded_by_id: id(e.recorded_by),
                    held_at: e.held_at,
                    minutes: i32::from(e.minutes.get()),
                    // Empty once erased, like the notes.
                    focus: e.focus.as_ref().map(short).unwrap_or_default(),
                    activities: e.activities.iter().map(|a| (*a).into()).collect(),
                    activities_version: i32::from(e.activities_version),
                    coaching: e
                        .coaching
                        .iter()
                        .map(|c| SessionCoachingIds { coach_id: id(c.coach), coachee_id: id(c.coachee) })
                        .collect(),
                    notes: r.keep(notes, "notes", Some(long(&e.notes))),
                    envelope: envelope(rec, stream, std::mem::take(&mut r)),
                })
            }
            PairEvent::SessionCancelled(e) => Event::SessionCancelled(SessionCancelledEvent {
                pair_id: id(e.pair_id),
                session_id: id(e.session_id),
                cancelled_by_id: id(e.cancelled_by),
                reason: long(&e.reason),
                envelope: envelope(rec, stream, std::mem::take(&mut r)),
            }),
            PairEvent::FeedbackGiven(e) => {
                let texts = match policy::feedback_disclosure(viewer, e.from, e.to, e.visibility) {
                    FeedbackDisclosure::Hidden => return None,
                    FeedbackDisclosure::RatingsOnly => false,
                    FeedbackDisclosure::Full => true,
                };
                let rating = |v: Option<tandem_domain::values::Rating>| v.map(|v| i32::from(v.get()));
                Event::FeedbackGiven(FeedbackGivenEvent {
                    pair_id: id(e.pair_id),
                    feedback_id: id(e.feedback_id),
                    from_id: id(e.from),
                    to_id: id(e.to),
                    session_id: e.session_id.map(id),
                    ratings: Ratings {
                        empathy: rating(e.ratings.empathy),
                        active_listening: rating(e.ratings.active_listening),
                        curiosity: rating(e.ratings.curiosity),
                        patience: rating(e.ratings.patience),
                        growth_mindset: rating(e.ratings.growth_mindset),
                    },
                    strengths: r.keep(texts, "strengths", Some(long(&e.strengths))),
                    improvements: r.keep(texts, "improvements", Some(long(&e.improvements))),
                    visibility: e.visibility.into(),
                    given_at: e.given_at,
                    envelope: envelope(rec, stream, std::mem::take(&mut r)),
                })
            }
            PairEvent::GoalSet(e) => {
                let texts = in_pair(e.pair_id.as_uuid(), GOAL_TEXTS);
                Event::GoalSet(GoalSetEvent {
                    pair_id: id(e.pair_id),
                    goal_id: id(e.goal_id),
                    owner_id: id(e.owner),
                    title: r.keep(texts, "title", e.title.as_ref().map(short)),
                    description: r.keep(texts, "description", Some(long(&e.description))),
                    due_on: e.due_on,
                    accountability_partner_id: e.accountability_partner.map(id),
                    set_on: e.set_on,
                    envelope: envelope(rec, stream, std::mem::take(&mut r)),
                })
            }
            PairEvent::GoalProgressRecorded(e) => {
                let texts = in_pair(e.pair_id.as_uuid(), GOAL_TEXTS);
                Event::GoalProgressRecorded(GoalProgressRecordedEvent {
                    pair_id: id(e.pair_id),
                    goal_id: id(e.goal_id),
                    by_id: id(e.by),
                    percent: e.percent.map(|p| i32::from(p.get())),
                    note: r.keep(texts, "note", Some(long(&e.note))),
                    recorded_on: e.recorded_on,
                    envelope: envelope(rec, stream, std::mem::take(&mut r)),
                })
            }
            PairEvent::GoalCompleted(e) => {
                let texts = in_pair(e.pair_id.as_uuid(), GOAL_TEXTS);
                Event::GoalCompleted(GoalCompletedEvent {
                    pair_id: id(e.pair_id),
                    goal_id: id(e.goal_id),
                    by_id: id(e.by),
                    note: r.keep(texts, "note", Some(long(&e.note))),
                    completed_on: e.completed_on,
                    envelope: envelope(rec, stream, std::mem::take(&mut r)),
                })
            }
            PairEvent::GoalAbandoned(e) => {
                let texts = in_pair(e.pair_id.as_uuid(), GOAL_TEXTS);
                Event::GoalAbandoned(GoalAbandonedEvent {
                    pair_id: id(e.pair_id),
                    goal_id: id(e.goal_id),
                    by_id: id(e.by),
                    reason: r.keep(texts, "reason", Some(long(&e.reason))),
                    abandoned_on: e.abandoned_on,
                    envelope: envelope(rec, stream, std::mem::take(&mut r)),
                })
            }
            PairEvent::PairPaused(e) => Event::PairPaused(PairPausedEvent {
                pair_id: id(e.pair_id),
                reason: long(&e.reason),
                paused_on: e.paused_on,
                until: e.until,
                envelope: envelope(rec, stream, std::mem::take(&mut r)),
            }),
            PairEvent::PairResumed(e) => Event::PairResumed(PairResumedEvent {
                pair_id: id(e.pair_id),
                resumed_on: e.resumed_on,
                envelope: envelope(rec, stream, std::mem::take(&mut r)),
            }),
            PairEvent::PairDissolved(e) => Event::PairDissolved(PairDissolvedEvent {
                pair_id: id(e.pair_id),
                reason: e.reason.into(),
                note: long(&e.note),
                dissolved_on: e.dissolved_on,
                envelope: envelope(rec, stream, std::mem::take(&mut r)),
            }),
        },
        DomainEvent::Webhook(_) | DomainEvent::Unrecognised(_) => return None,
    };
    Some(node)
}

/// The people among `people` who have been erased, read from their own
/// streams (short, and read by their index), so an erasure counts as soon
/// as it is committed.
pub(crate) async fn erased_among(
    store: &EventStore,
    people: impl IntoIterator<Item = PersonId>,
) -> Result<HashSet<PersonId>, ApiError> {
    let distinct: HashSet<PersonId> = people.into_iter().collect();
    let checks = distinct.into_iter().map(|person| async move {
        let events = store
            .read_stream(person.as_uuid())
            .await
            .map_err(|e| ApiError::internal(anyhow::Error::new(e).context("reading a person's stream for erasure")))?;
        let mut erased = false;
        for e in &events {
            erased |= matches!(decode(e)?, DomainEvent::Person(PersonEvent::PersonErased(_)));
        }
        Ok::<_, ApiError>(erased.then_some(person))
    });
    // A few at a time: a page of person events names many people.
    let found: Vec<Option<PersonId>> = stream::iter(checks).buffer_unordered(4).try_collect().await?;
    Ok(found.into_iter().flatten().collect())
}
