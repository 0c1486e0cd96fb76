//! The access policy: who may run which operation and read which sensitive
//! field. This is the one place where access is decided; resolvers ask it
//! and never decide on their own.
//!
//! [`MATRIX`] lists every query, mutation, subscription and sensitive field
//! with the access each audience gets:
//!
//! * `All` — everything the operation can return;
//! * `Own` — only what concerns the caller: for a participant, their own
//!   profile, their pairs (and those pairs' members, sessions and goals),
//!   feedback they gave, and feedback given to them that is shared with
//!   them; the resolver applies the scope;
//! * `Deny` — refused with `FORBIDDEN` (or `UNAUTHENTICATED` when anonymous).
//!
//! A caller with several roles gets the widest access of any of them. The
//! README's access matrix is generated from this table by a test, and a
//! table-driven test runs every operation as every audience against it.
//!
//! Feedback is the most sensitive data: nobody, admins included, reads a
//! piece of feedback unless they wrote it, it is shared with them as its
//! recipient, or it is shared with coordinators and they are a coordinator
//! or admin ([`can_read_feedback`]).

use tandem_domain::PersonId;
use tandem_domain::values::Visibility;

use crate::auth::{Principal, Role};
use crate::error::ApiError;

/// How much of an operation an audience may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    Deny,
    Own,
    All,
}

impl Access {
    /// The word used in the documented matrix.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::Deny => "—",
            Self::Own => "own",
            Self::All => "all",
        }
    }
}

/// Whether a matrix row is an operation or a field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Query,
    Mutation,
    Subscription,
    Field,
}

impl Kind {
    /// The word used in the documented matrix.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::Query => "query",
            Self::Mutation => "mutation",
            Self::Subscription => "subscription",
            Self::Field => "field",
        }
    }
}

/// The audiences of the matrix, in column order.
pub const AUDIENCES: [&str; 6] = ["anonymous", "admin", "coordinator", "participant", "integrator", "analyst"];

/// One row of the matrix.
#[derive(Clone, Copy, Debug)]
pub struct Rule {
    pub name: &'static str,
    pub kind: Kind,
    /// Access per audience, in [`AUDIENCES`] order.
    pub access: [Access; 6],
    pub note: &'static str,
}

use Access::{All, Deny, Own};

const fn q(name: &'static str, access: [Access; 6], note: &'static str) -> Rule {
    Rule { name, kind: Kind::Query, access, note }
}
const fn m(name: &'static str, access: [Access; 6], note: &'static str) -> Rule {
    Rule { name, kind: Kind::Mutation, access, note }
}
const fn s(name: &'static str, access: [Access; 6], note: &'static str) -> Rule {
    Rule { name, kind: Kind::Subscription, access, note }
}
const fn f(name: &'static str, access: [Access; 6], note: &'static str) -> Rule {
    Rule { name, kind: Kind::Field, access, note }
}

//                         anonymous admin coordinator participant integrator analyst
const PEOPLE_ADMIN: [Access; 6] = [Deny, All, Deny, Deny, All, Deny];
const PROGRAM_ADMIN: [Access; 6] = [Deny, All, All, Deny, Deny, Deny];
const PAIR_MEMBER: [Access; 6] = [Deny, Deny, Deny, Own, Deny, Deny];
const PAIR_RUN: [Access; 6] = [Deny, All, All, Own, Deny, Deny];
const WEBHOOKS: [Access; 6] = [Deny, All, Deny, Deny, Own, Deny];

/// The access matrix. Every operation of the schema has a row (a test
/// checks it against the schema).
pub const MATRIX: &[Rule] = &[
    q("me", [Deny, All, All, All, All, All], "the caller's identity; a participant also gets their person"),
    q("person", [Deny, All, All, Own, All, All], "participant: themself and members of their pairs"),
    q("people", [Deny, All, All, Deny, All, All], ""),
    f("people.search", [Deny, All, All, Deny, All, Deny], "search by name; analysts never look people up by name"),
    q("program", [Deny, All, All, All, Deny, All], ""),
    q("programs", [Deny, All, All, All, Deny, All], ""),
    q("pair", [Deny, All, All, Own, Deny, All], "participant: pairs they are in"),
    q("pairs", [Deny, All, All, Own, Deny, All], "participant: pairs they are in"),
    q("sessions", [Deny, All, All, Own, Deny, All], "participant: sessions of their pairs"),
    q("goals", [Deny, All, All, Own, Deny, All], "participant: goals of their pairs"),
    q("feedback", [Deny, Own, Own, Own, Deny, Deny], "see the feedback rule below"),
    q("programStats", [Deny, All, All, Deny, Deny, All], ""),
    q("events", [Deny, All, Deny, Deny, Own, All], "integrator: person events only; analyst: pseudonymous"),
    q("programMetrics", [Deny, All, All, Deny, Deny, All], "aggregates only; groups under 5 people suppressed"),
    q("retention", [Deny, All, All, Deny, Deny, All], "aggregates only; groups under 5 people suppressed"),
    q("webhookEndpoints", WEBHOOKS, "integrator: endpoints of the integrator role"),
    q("webhookDeliveries", WEBHOOKS, "integrator: endpoints of the integrator role"),
    m("registerPerson", PEOPLE_ADMIN, ""),
    m("updatePerson", PEOPLE_ADMIN, ""),
    m("recordPersonLeft", PEOPLE_ADMIN, "also dissolves the leaver's pairs"),
    m("rejoinPerson", PEOPLE_ADMIN, ""),
    m("upsertPeople", PEOPLE_ADMIN, "at most 500 people a call, keyed by external id"),
    m("erasePerson", [Deny, All, Deny, Deny, Deny, Deny], "blanks personal data in the read models"),
    m("launchProgram", PROGRAM_ADMIN, ""),
    m("updateProgram", PROGRAM_ADMIN, ""),
    m("closeProgram", PROGRAM_ADMIN, "also dissolves the program's pairs"),
    m("enrolParticipant", [Deny, All, All, Own, Deny, Deny], "participant: enrols themself"),
    m("withdrawParticipant", [Deny, All, All, Own, Deny, Deny], "participant: withdraws themself"),
    m("formPair", [Deny, All, All, Own, Deny, Deny], "participant: a self-selected pair they are in"),
    m("scheduleSession", PAIR_RUN, "participant: in their pairs, as themself"),
    m("holdSession", PAIR_RUN, "participant: in their pairs, as themself"),
    m("cancelSession", PAIR_RUN, "participant: in their pairs, as themself"),
    m("giveFeedback", PAIR_MEMBER, "only members, as themselves"),
    m("setGoal", PAIR_MEMBER, "only members, for themselves"),
    m("recordGoalProgress", PAIR_MEMBER, "the goal's owner or accountability partner"),
    m("completeGoal", PAIR_MEMBER, "the goal's owner"),
    m("abandonGoal", PAIR_MEMBER, "the goal's owner"),
    m("pausePair", PAIR_RUN, "participant: pairs they are in"),
    m("resumePair", PAIR_RUN, "participant: pairs they are in"),
    m("dissolvePair", PAIR_RUN, "participant: pairs they are in"),
    m("createWebhookEndpoint", WEBHOOKS, "integrator: integrator endpoints (person events) only"),
    m("updateWebhookEndpoint", WEBHOOKS, "integrator: endpoints of the integrator role"),
    m("rotateWebhookSecret", WEBHOOKS, "integrator: endpoints of the integrator role"),
    m("disableWebhookEndpoint", WEBHOOKS, "integrator: endpoints of the integrator role"),
    m("redeliverWebhooks", WEBHOOKS, "integrator: endpoints of the integrator role"),
    s("pairEvents", [Deny, All, All, Own, Deny, All], "filtered by the same rules as queries"),
    s("programEvents", [Deny, All, All, Deny, Deny, All], "filtered by the same rules as queries"),
    s("myEvents", [Deny, All, All, All, All, All], "events of the caller's person and pairs"),
    f("Person.name/email/externalId/location", [Deny, All, All, Own, All, Deny], "analysts never see names or emails"),
    f("Person.orgHistory", [Deny, All, All, Own, All, All], "participant: their own"),
    f("Session.notes", [Deny, All, Deny, Own, Deny, Deny], "members of the pair"),
    f("Goal.title/description/progress notes", [Deny, All, All, Own, Deny, Deny], ""),
    f(
        "Feedback (any field)",
        [Deny, Own, Own, Own, Deny, Deny],
        "its author; its recipient when shared with them; coordinators and admins when shared with coordinators",
    ),
];

/// The matrix row of `name`.
#[must_use]
pub fn rule(name: &str) -> Option<&'static Rule> {
    MATRIX.iter().find(|r| r.name == name)
}

fn column(role: Role) -> usize {
    match role {
        Role::Admin => 1,
        Role::Coordinator => 2,
        Role::Participant => 3,
        Role::Integrator => 4,
        Role::Analyst => 5,
    }
}

/// The access `viewer` has to the row `name`: the widest over their roles.
/// A name missing from the matrix is denied to everybody.
#[must_use]
pub fn access(viewer: Option<&Principal>, name: &str) -> Access {
    let Some(rule) = rule(name) else {
        return Deny;
    };
    match viewer {
        None => rule.access[0],
        Some(p) => p.roles().iter().map(|r| rule.access[column(*r)]).max().unwrap_or(Deny),
    }
}

/// Checks an operation: `UNAUTHENTICATED` for an anonymous caller it is
/// denied to, `FORBIDDEN` for an authenticated one.
pub fn check(viewer: Option<&Principal>, name: &str) -> Result<Access, ApiError> {
    match access(viewer, name) {
        Deny if viewer.is_none() => Err(ApiError::Unauthenticated),
        Deny => Err(ApiError::Forbidden),
        a => Ok(a),
    }
}

/// Whether `viewer` may read a piece of feedback.
#[must_use]
pub fn can_read_feedback(viewer: Option<&Principal>, from: PersonId, to: PersonId, visibility: Visibility) -> bool {
    let Some(p) = viewer else { return false };
    if p.person_id() == Some(from) && p.has(Role::Participant) {
        return true;
    }
    if p.person_id() == Some(to) && p.has(Role::Participant) && visibility.shared_with_recipient() {
        return true;
    }
    visibility.shared_with_coordinators() && (p.has(Role::Coordinator) || p.has(Role::Admin))
}

/// Whether `viewer` sees personal data (name, e-mail, external id,
/// location) of `person`, given whether they share a pair.
#[must_use]
pub fn can_read_personal_data(viewer: Option<&Principal>, person: PersonId, shares_a_pair: bool) -> bool {
    match access(viewer, "Person.name/email/externalId/location") {
        All => true,
        Own => viewer.and_then(|p| p.person_id()).is_some_and(|me| me == person || shares_a_pair),
        Deny => false,
    }
}

/// The documented matrix as a Markdown table.
#[must_use]
pub fn markdown() -> String {
    let mut out = String::from("| operation | kind |");
    for a in AUDIENCES {
        out.push_str(&format!(" {a} |"));
    }
    out.push_str(" note |\n|---|---|");
    for _ in AUDIENCES {
        out.push_str("---|");
    }
    out.push_str("---|\n");
    for r in MATRIX {
        out.push_str(&format!("| `{}` | {} |", r.name, r.kind.label()));
        for a in r.access {
            out.push_str(&format!(" {} |", a.label()));
        }
        out.push_str(&format!(" {} |\n", r.note));
    }
    out
}

// ---------------------------------------------------------------------------
// Events (added for `schema::events`: the feed and the subscriptions).
//
// An event carries the same sensitive values as the read models. These
// helpers apply the field rows of [`MATRIX`] to event payloads, so that an
// event and a query over the same fact show the same things.
// ---------------------------------------------------------------------------

/// The matrix row of personal data.
const PERSONAL_DATA: &str = "Person.name/email/externalId/location";

/// How much of one piece of feedback an event delivered to a viewer carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FeedbackDisclosure {
    /// Nothing: the `FeedbackGiven` event is not delivered at all.
    Hidden,
    /// Ids, ratings, visibility and time, without the texts (strengths,
    /// improvements).
    RatingsOnly,
    /// Everything.
    Full,
}

/// What a `FeedbackGiven` event shows `viewer`: everything when
/// [`can_read_feedback`] allows it; ratings without texts to a pseudonymous
/// reader of the whole feed (`events` is `All` to them and personal data is
/// `Deny`: analysts, who need ratings for the metrics but never learn who
/// is who); otherwise nothing. Admins are not pseudonymous, so they get
/// only the feedback [`can_read_feedback`] grants them.
#[must_use]
pub fn feedback_disclosure(
    viewer: Option<&Principal>,
    from: PersonId,
    to: PersonId,
    visibility: Visibility,
) -> FeedbackDisclosure {
    if can_read_feedback(viewer, from, to, visibility) {
        FeedbackDisclosure::Full
    } else if access(viewer, "events") == All && access(viewer, PERSONAL_DATA) == Deny {
        FeedbackDisclosure::RatingsOnly
    } else {
        FeedbackDisclosure::Hidden
    }
}

/// Whether `viewer` may read a guarded field of something inside a pair,
/// named by its matrix row (`Session.notes`, `Goal.title/description/progress
/// notes`): `All` reads it; `Own` only as a participant who is a member of
/// the pair (`is_member`: the viewer's person is one of its members).
#[must_use]
pub fn can_read_pair_field(viewer: Option<&Principal>, field: &str, is_member: bool) -> bool {
    match access(viewer, field) {
        All => true,
        Own => is_member && viewer.is_some_and(|p| p.has(Role::Participant)),
        Deny => false,
    }
}

/// Whether `viewer` may read `person`'s org facts (department, title,
/// level, manager: the row `Person.orgHistory`); `Own` is their own.
#[must_use]
pub fn can_read_org_history(viewer: Option<&Principal>, person: PersonId) -> bool {
    match access(viewer, "Person.orgHistory") {
        All => true,
        Own => viewer.and_then(Principal::person_id) == Some(person),
        Deny => false,
    }
}
