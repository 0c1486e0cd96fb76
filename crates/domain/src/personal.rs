//! Which parts of each stored event are personal data, and whose.
//!
//! The event store seals every field listed here (see `tandem_store::vault`)
//! under the data keys of the people it concerns, and erasing a person
//! deletes their key, so what they said, wrote or were called becomes
//! unreadable everywhere at once while the rest of the history (ids,
//! dates, ratings, statuses) stays whole for analysts.
//!
//! A field's value is sealed whole (a string, a list of strings). It
//! concerns the people found at its `concerns` paths in the same payload
//! and, for the free text of a pair, every member of the pair: a note or a
//! feedback comment between colleagues can name any of them, so erasing
//! any one of them makes it unreadable. What the writer of a pair event
//! passes as the pair's members is added to the people named in the
//! payload (see `tandem_store::Vault::seal`).
//!
//! Program names and descriptions are not listed: they describe the
//! program, are written by its coordinators and are shown to every
//! participant. Org facts (department, title, level, manager) are not
//! listed either: they are what analysts study, and they name no one on
//! their own. An empty text carries nothing and is stored as it is.
//!
//! When a field reads back erased, the domain reads it as absent
//! (`Option` fields) or empty (free text, lists); see
//! [`crate::serde_util::erased_as_default`].

/// A personal field of an event type's stored payload, and whom it
/// concerns: the people at `concerns`, the stream's person (`stream`), the
/// pair's members (`members`), together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PersonalField {
    /// Where the field is: object keys from the payload's root, joined by
    /// `.` (e.g. `changes.name`).
    pub path: &'static str,
    /// Paths of the payload holding the ids of the people the field is
    /// about: a string (one id), or a list of ids; `*` steps into each
    /// element of a list (e.g. `coaching.*.coach`).
    pub concerns: &'static [&'static str],
    /// Whether the field also concerns every member of the pair whose
    /// stream the event is in, as passed by its writer.
    pub members: bool,
    /// Whether the field concerns the person whose stream the event is in
    /// (a person stream's id is the person's id).
    pub stream: bool,
}

/// A field of a person's own stream.
const fn own(path: &'static str) -> PersonalField {
    PersonalField { path, concerns: &[], members: false, stream: true }
}

/// A field about the participant of a program event.
const fn participant(path: &'static str) -> PersonalField {
    PersonalField { path, concerns: &["personId"], members: false, stream: false }
}

const fn pair_text(path: &'static str, concerns: &'static [&'static str]) -> PersonalField {
    PersonalField { path, concerns, members: true, stream: false }
}

/// Every event type's personal fields. Event types not listed hold none.
/// Paths are those of the event type's current schema version: events are
/// sealed as they are written, at today's version, and read back (unsealed)
/// before upcasting.
pub const PERSONAL_FIELDS: &[(&str, &[PersonalField])] = &[
    ("PersonRegistered", &[own("externalId"), own("name"), own("email"), own("location")]),
    ("PersonUpdated", &[own("changes.name"), own("changes.email"), own("changes.location")]),
    ("ParticipantEnrolled", &[participant("interests"), participant("skills"), participant("wantsToWorkOn")]),
    ("ParticipantWithdrew", &[participant("reason")]),
    ("SessionScheduled", &[pair_text("focus", &["scheduledBy"])]),
    (
        "SessionHeld",
        &[
            pair_text("focus", &["recordedBy", "coaching.*.coach", "coaching.*.coachee"]),
            pair_text("notes", &["recordedBy", "coaching.*.coach", "coaching.*.coachee"]),
        ],
    ),
    ("SessionCancelled", &[pair_text("reason", &["cancelledBy"])]),
    ("FeedbackGiven", &[pair_text("strengths", &["from", "to"]), pair_text("improvements", &["from", "to"])]),
    (
        "GoalSet",
        &[
            pair_text("title", &["owner", "accountabilityPartner"]),
            pair_text("description", &["owner", "accountabilityPartner"]),
        ],
    ),
    ("GoalProgressRecorded", &[pair_text("note", &["by"])]),
    ("GoalCompleted", &[pair_text("note", &["by"])]),
    ("GoalAbandoned", &[pair_text("reason", &["by"])]),
    ("PairPaused", &[pair_text("reason", &[])]),
    ("PairDissolved", &[pair_text("note", &[])]),
];

/// The personal fields of `event_type` (none for a type not listed).
#[must_use]
pub fn personal_fields(event_type: &str) -> &'static [PersonalField] {
    PERSONAL_FIELDS.iter().find(|(t, _)| *t == event_type).map_or(&[], |(_, fields)| fields)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EVENT_TYPES;

    #[test]
    fn personal_fields_name_whom_they_concern() {
        for (event_type, fields) in PERSONAL_FIELDS {
            assert!(EVENT_TYPES.iter().any(|(t, _, _)| t == event_type), "{event_type} is not an event type");
            for f in *fields {
                assert!(f.members || f.stream || !f.concerns.is_empty(), "{event_type}.{} concerns nobody", f.path);
            }
        }
    }
}
