//! The analyst-safe payload of an event.
//!
//! Built field by field from the decoded domain event (an allowlist, so a
//! field added to an event later stays out until it is added here on
//! purpose), never by copying the stored JSON: whatever the store holds —
//! clear text today, encrypted personal fields later — only these values
//! leave. Left out everywhere:
//!
//! - names, e-mails, external ids, locations and job titles of people;
//! - every free text, since it may name people: program descriptions,
//!   enrolment interests, skills and wishes, session focus and notes,
//!   feedback strengths and improvements, goal titles, descriptions and
//!   progress notes, and every reason or note given in words.
//!
//! Person ids (in any role: member, coach, owner, author, manager, …) go
//! through the export's [`Pseudonymizer`]. What stays: ids of programs,
//! pairs, sessions, goals and feedback, dates and instants, closed-list
//! values (purpose, format, activities, reasons as codes, visibility),
//! numbers (minutes, ratings, percent, match score), department and level.
//! A changed field that is left out is still named, in `changed`, so that
//! "the title changed on D" stays countable.

use serde::Serialize;
use serde_json::{Value, json};
use tandem_domain::pair::PairEvent;
use tandem_domain::person::PersonEvent;
use tandem_domain::program::ProgramEvent;
use tandem_domain::{DomainEvent, PersonId};

use crate::pseudonym::Pseudonymizer;

fn v<T: Serialize>(x: &T) -> Value {
    // The domain's values serialise to JSON without fail (plain data with
    // string keys).
    serde_json::to_value(x).unwrap_or(Value::Null)
}

/// The payload `event` shows an analyst.
#[must_use]
pub fn analyst_payload(event: &DomainEvent, ids: &Pseudonymizer) -> Value {
    let p = |id: &PersonId| Value::String(ids.person(id.as_uuid()));
    let opt_p = |id: &Option<PersonId>| id.as_ref().map_or(Value::Null, p);
    match event {
        DomainEvent::Person(e) => match e {
            PersonEvent::PersonRegistered(x) => json!({
                "person": p(&x.person_id),
                "department": v(&x.department),
                "level": v(&x.level),
                "manager": opt_p(&x.manager),
                "hiredOn": v(&x.hired_on),
            }),
            PersonEvent::PersonUpdated(x) => {
                let c = &x.changes;
                let mut changed = Vec::new();
                for (name, is) in [
                    ("name", c.name.is_some()),
                    ("email", c.email.is_some()),
                    ("department", c.department.is_some()),
                    ("title", c.title.is_some()),
                    ("level", c.level.is_some()),
                    ("manager", c.manager.is_some()),
                    ("location", c.location.is_some()),
                ] {
                    if is {
                        changed.push(name);
                    }
                }
                let mut out = json!({
                    "person": p(&x.person_id),
                    "effectiveOn": v(&x.effective_on),
                    "changed": changed,
                });
                if let Some(d) = &c.department {
                    out["department"] = v(d);
                }
                if let Some(l) = &c.level {
                    out["level"] = v(l);
                }
                if let Some(m) = &c.manager {
                    out["manager"] = opt_p(m);
                }
                out
            }
            PersonEvent::PersonLeft(x) => json!({
                "person": p(&x.person_id),
                "leftOn": v(&x.left_on),
                "reason": v(&x.reason),
            }),
            PersonEvent::PersonRejoined(x) => json!({ "person": p(&x.person_id), "rejoinedOn": v(&x.rejoined_on) }),
            PersonEvent::PersonErased(x) => json!({ "person": p(&x.person_id) }),
        },
        DomainEvent::Program(e) => match e {
            ProgramEvent::ProgramLaunched(x) => json!({
                "programId": v(&x.program_id),
                "purpose": v(&x.purpose),
                "format": v(&x.format),
                "maxLevelGap": v(&x.max_level_gap),
                "cadenceDays": v(&x.cadence_days),
                "startsOn": v(&x.starts_on),
                "endsOn": v(&x.ends_on),
            }),
            ProgramEvent::ProgramUpdated(x) => {
                let c = &x.changes;
                let mut changed = Vec::new();
                for (name, is) in [
                    ("name", c.name.is_some()),
                    ("description", c.description.is_some()),
                    ("maxLevelGap", c.max_level_gap.is_some()),
                    ("cadenceDays", c.cadence_days.is_some()),
                    ("endsOn", c.ends_on.is_some()),
                ] {
                    if is {
                        changed.push(name);
                    }
                }
                let mut out = json!({ "programId": v(&x.program_id), "changed": changed });
                if let Some(g) = &c.max_level_gap {
                    out["maxLevelGap"] = v(g);
                }
                if let Some(d) = &c.cadence_days {
                    out["cadenceDays"] = v(d);
                }
                if let Some(e) = &c.ends_on {
                    out["endsOn"] = v(e);
                }
                out
            }
            ProgramEvent::ParticipantEnrolled(x) => json!({
                "programId": v(&x.program_id),
                "person": p(&x.person_id),
                "enrolledOn": v(&x.enrolled_on),
                "interestCount": x.interests.len(),
                "skillCount": x.skills.len(),
            }),
            ProgramEvent::ParticipantWithdrew(x) => json!({
                "programId": v(&x.program_id),
                "person": p(&x.person_id),
                "withdrewOn": v(&x.withdrew_on),
            }),
            ProgramEvent::ProgramClosed(x) => json!({ "programId": v(&x.program_id), "closedOn": v(&x.closed_on) }),
        },
        DomainEvent::Pair(e) => pair_payload(e, ids),
        // An endpoint's settings (its URL among them) are not study data:
        // only which endpoint changed.
        DomainEvent::Webhook(e) => json!({ "endpointId": e.endpoint_id().to_string() }),
        // Written by a newer version: nothing of it is known to be safe to
        // show (the payload is an allowlist), so only the envelope goes out.
        DomainEvent::Unrecognised(_) => json!({}),
    }
}

fn pair_payload(e: &PairEvent, ids: &Pseudonymizer) -> Value {
    let p = |id: &PersonId| Value::String(ids.person(id.as_uuid()));
    match e {
        PairEvent::PairFormed(x) => json!({
            "pairId": v(&x.pair_id),
            "programId": v(&x.program_id),
            "kind": v(&x.kind),
            "members": x.members.iter().map(p).collect::<Vec<_>>(),
            "formedBy": v(&x.formed_by),
            "matchScore": v(&x.match_score),
            "formedOn": v(&x.formed_on),
        }),
        PairEvent::SessionScheduled(x) => json!({
            "pairId": v(&x.pair_id),
            "sessionId": v(&x.session_id),
            "scheduledBy": p(&x.scheduled_by),
            "scheduledFor": v(&x.scheduled_for),
        }),
        PairEvent::SessionHeld(x) => json!({
            "pairId": v(&x.pair_id),
            "sessionId": v(&x.session_id),
            "recordedBy": p(&x.recorded_by),
            "heldAt": v(&x.held_at),
            "minutes": v(&x.minutes),
            "activities": v(&x.activities),
            "activitiesVersion": x.activities_version,
            "coaching": x.coaching.iter().map(|c| json!({ "coach": p(&c.coach), "coachee": p(&c.coachee) })).collect::<Vec<_>>(),
        }),
        PairEvent::SessionCancelled(x) => json!({
            "pairId": v(&x.pair_id),
            "sessionId": v(&x.session_id),
            "cancelledBy": p(&x.cancelled_by),
        }),
        PairEvent::FeedbackGiven(x) => json!({
            "pairId": v(&x.pair_id),
            "feedbackId": v(&x.feedback_id),
            "from": p(&x.from),
            "to": p(&x.to),
            "sessionId": v(&x.session_id),
            "ratings": v(&x.ratings),
            "visibility": v(&x.visibility),
            "givenAt": v(&x.given_at),
        }),
        PairEvent::GoalSet(x) => json!({
            "pairId": v(&x.pair_id),
            "goalId": v(&x.goal_id),
            "owner": p(&x.owner),
            "accountabilityPartner": x.accountability_partner.as_ref().map_or(Value::Null, p),
            "dueOn": v(&x.due_on),
            "setOn": v(&x.set_on),
        }),
        PairEvent::GoalProgressRecorded(x) => json!({
            "pairId": v(&x.pair_id),
            "goalId": v(&x.goal_id),
            "by": p(&x.by),
            "percent": v(&x.percent),
            "recordedOn": v(&x.recorded_on),
        }),
        PairEvent::GoalCompleted(x) => json!({
            "pairId": v(&x.pair_id),
            "goalId": v(&x.goal_id),
            "by": p(&x.by),
            "completedOn": v(&x.completed_on),
        }),
        PairEvent::GoalAbandoned(x) => json!({
            "pairId": v(&x.pair_id),
            "goalId": v(&x.goal_id),
            "by": p(&x.by),
            "abandonedOn": v(&x.abandoned_on),
        }),
        PairEvent::PairPaused(x) => json!({
            "pairId": v(&x.pair_id),
            "pausedOn": v(&x.paused_on),
            "until": v(&x.until),
        }),
        PairEvent::PairResumed(x) => json!({ "pairId": v(&x.pair_id), "resumedOn": v(&x.resumed_on) }),
        PairEvent::PairDissolved(x) => json!({
            "pairId": v(&x.pair_id),
            "reason": v(&x.reason),
            "dissolvedOn": v(&x.dissolved_on),
        }),
    }
}
