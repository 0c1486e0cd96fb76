//! The typed columns of each event type's analyst payload, for exports
//! split by event type (`--split-by-type`): one table per type, the
//! envelope's columns followed by one typed column per payload field,
//! instead of the one JSON `data` column of [`crate::events::EVENT_COLUMNS`].
//!
//! The payload is [`crate::render::analyst_payload`]'s allowlist; this
//! module only gives each of its fields a type (and flattens the ratings of
//! feedback into one column per trait). A payload field that is not mapped
//! here is refused ([`ExportError::Unmapped`]) rather than dropped, and the
//! tests render every event type to keep the two in step.

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value as Json;

use crate::error::{ExportError, Result};
use crate::events::EVENT_COLUMNS;
use crate::table::{Column, ColumnType as T, Value, col};

/// A payload column: its table column and where its value sits in the
/// payload (a JSON pointer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PayloadColumn {
    pub column: Column,
    pub pointer: &'static str,
}

const fn f(name: &'static str, ty: T) -> PayloadColumn {
    // Every payload field sits at the top level under its own name, except
    // the flattened ones below.
    PayloadColumn { column: col(name, ty), pointer: "" }
}

const fn at(name: &'static str, pointer: &'static str, ty: T) -> PayloadColumn {
    PayloadColumn { column: col(name, ty), pointer }
}

const PERSON: PayloadColumn = f("person", T::Text);
const PROGRAM: PayloadColumn = f("programId", T::Text);
const PAIR: PayloadColumn = f("pairId", T::Text);
const SESSION: PayloadColumn = f("sessionId", T::Text);
const GOAL: PayloadColumn = f("goalId", T::Text);
const BY: PayloadColumn = f("by", T::Text);
const ENDPOINT: PayloadColumn = f("endpointId", T::Text);

/// Every event type's payload columns, in the catalogue's order.
pub const PAYLOAD_COLUMNS: &[(&str, &[PayloadColumn])] = &[
    (
        "PersonRegistered",
        &[PERSON, f("department", T::Text), f("level", T::Int16), f("manager", T::Text), f("hiredOn", T::Date)],
    ),
    (
        "PersonUpdated",
        &[
            PERSON,
            f("effectiveOn", T::Date),
            f("changed", T::TextList),
            f("department", T::Text),
            f("level", T::Int16),
            f("manager", T::Text),
        ],
    ),
    ("PersonLeft", &[PERSON, f("leftOn", T::Date), f("reason", T::Text)]),
    ("PersonRejoined", &[PERSON, f("rejoinedOn", T::Date)]),
    ("PersonErased", &[PERSON]),
    (
        "ProgramLaunched",
        &[
            PROGRAM,
            f("purpose", T::Text),
            at("formatKind", "/format/kind", T::Text),
            at("formatMinSize", "/format/minSize", T::Int16),
            at("formatMaxSize", "/format/maxSize", T::Int16),
            f("maxLevelGap", T::Int16),
            f("cadenceDays", T::Int32),
            f("startsOn", T::Date),
            f("endsOn", T::Date),
        ],
    ),
    (
        "ProgramUpdated",
        &[
            PROGRAM,
            f("changed", T::TextList),
            f("maxLevelGap", T::Int16),
            f("cadenceDays", T::Int32),
            f("endsOn", T::Date),
        ],
    ),
    (
        "ParticipantEnrolled",
        &[PROGRAM, PERSON, f("enrolledOn", T::Date), f("interestCount", T::Int32), f("skillCount", T::Int32)],
    ),
    ("ParticipantWithdrew", &[PROGRAM, PERSON, f("withdrewOn", T::Date)]),
    ("ProgramClosed", &[PROGRAM, f("closedOn", T::Date)]),
    (
        "PairFormed",
        &[
            PAIR,
            PROGRAM,
            f("kind", T::Text),
            f("members", T::TextList),
            f("formedBy", T::Text),
            f("matchScore", T::Float64),
            f("formedOn", T::Date),
        ],
    ),
    ("SessionScheduled", &[PAIR, SESSION, f("scheduledBy", T::Text), f("scheduledFor", T::Timestamp)]),
    (
        "SessionHeld",
        &[
            PAIR,
            SESSION,
            f("recordedBy", T::Text),
            f("heldAt", T::Timestamp),
            f("minutes", T::Int32),
            f("activities", T::TextList),
            f("activitiesVersion", T::Int32),
            // A list of {coach, coachee} pseudonym pairs.
            f("coaching", T::Json),
        ],
    ),
    ("SessionCancelled", &[PAIR, SESSION, f("cancelledBy", T::Text)]),
    (
        "FeedbackGiven",
        &[
            PAIR,
            f("feedbackId", T::Text),
            f("from", T::Text),
            f("to", T::Text),
            SESSION,
            at("ratingEmpathy", "/ratings/empathy", T::Int16),
            at("ratingActiveListening", "/ratings/activeListening", T::Int16),
            at("ratingCuriosity", "/ratings/curiosity", T::Int16),
            at("ratingPatience", "/ratings/patience", T::Int16),
            at("ratingGrowthMindset", "/ratings/growthMindset", T::Int16),
            f("visibility", T::Text),
            f("givenAt", T::Timestamp),
        ],
    ),
    (
        "GoalSet",
        &[
            PAIR,
            GOAL,
            f("owner", T::Text),
            f("accountabilityPartner", T::Text),
            f("dueOn", T::Date),
            f("setOn", T::Date),
        ],
    ),
    ("GoalProgressRecorded", &[PAIR, GOAL, BY, f("percent", T::Int16), f("recordedOn", T::Date)]),
    ("GoalCompleted", &[PAIR, GOAL, BY, f("completedOn", T::Date)]),
    ("GoalAbandoned", &[PAIR, GOAL, BY, f("abandonedOn", T::Date)]),
    ("PairPaused", &[PAIR, f("pausedOn", T::Date), f("until", T::Date)]),
    ("PairResumed", &[PAIR, f("resumedOn", T::Date)]),
    ("PairDissolved", &[PAIR, f("reason", T::Text), f("dissolvedOn", T::Date)]),
    // Of a webhook endpoint's events, analysts see which endpoint changed.
    ("WebhookEndpointCreated", &[ENDPOINT]),
    ("WebhookEndpointUpdated", &[ENDPOINT]),
    ("WebhookSecretRotated", &[ENDPOINT]),
    ("WebhookEndpointDisabled", &[ENDPOINT]),
    ("WebhookRedeliveryRequested", &[ENDPOINT]),
];

/// The envelope's columns: every column of an event export but `data`.
#[must_use]
pub fn envelope_columns() -> &'static [Column] {
    &EVENT_COLUMNS[..EVENT_COLUMNS.len() - 1]
}

/// The payload columns of an event type; an event type this build does not
/// know (stored by a newer version) has none: its table holds the envelope.
#[must_use]
pub fn payload_columns(event_type: &str) -> &'static [PayloadColumn] {
    PAYLOAD_COLUMNS.iter().find(|(t, _)| *t == event_type).map_or(&[], |(_, c)| c)
}

/// The columns of an event type's table: the envelope, then its payload.
#[must_use]
pub fn table_columns(event_type: &str) -> Vec<Column> {
    envelope_columns().iter().copied().chain(payload_columns(event_type).iter().map(|c| c.column)).collect()
}

fn pointer(c: &PayloadColumn) -> String {
    if c.pointer.is_empty() { format!("/{}", c.column.name) } else { c.pointer.to_owned() }
}

fn cell(event_type: &str, c: &PayloadColumn, v: Option<&Json>) -> Result<Value> {
    let bad = || ExportError::Unmapped {
        event_type: event_type.to_owned(),
        field: c.column.name.to_owned(),
        reason: format!("a {:?} column cannot hold {}", c.column.ty, v.map_or_else(String::new, Json::to_string)),
    };
    let Some(v) = v.filter(|v| !v.is_null()) else { return Ok(Value::Null) };
    Ok(match c.column.ty {
        T::Text => Value::Text(v.as_str().ok_or_else(bad)?.to_owned()),
        T::Int16 | T::Int32 | T::Int64 => Value::Int(v.as_i64().ok_or_else(bad)?),
        T::UInt64 => Value::UInt(v.as_u64().ok_or_else(bad)?),
        T::Float64 => Value::Float(v.as_f64().ok_or_else(bad)?),
        T::Bool => Value::Bool(v.as_bool().ok_or_else(bad)?),
        T::Date => Value::Date(v.as_str().and_then(|s| s.parse::<NaiveDate>().ok()).ok_or_else(bad)?),
        T::Timestamp => Value::Timestamp(
            v.as_str()
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .map(|t| t.with_timezone(&Utc))
                .ok_or_else(bad)?,
        ),
        T::Json => Value::Json(v.clone()),
        T::TextList => Value::TextList(
            v.as_array()
                .ok_or_else(bad)?
                .iter()
                .map(|x| x.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(bad)?,
        ),
    })
}

/// The payload cells of one event, in [`payload_columns`] order. Every
/// field of the payload must be mapped by a column.
pub fn payload_cells(event_type: &str, payload: &Json) -> Result<Vec<Value>> {
    let columns = payload_columns(event_type);
    if let Some(obj) = payload.as_object() {
        for (key, value) in obj {
            let covered = columns.iter().any(|c| {
                let p = pointer(c);
                let first = p[1..].split('/').next().unwrap_or_default();
                first == key
            });
            // An empty nested object (no ratings given) needs no column.
            if !covered && !value.as_object().is_some_and(serde_json::Map::is_empty) {
                return Err(ExportError::Unmapped {
                    event_type: event_type.to_owned(),
                    field: key.clone(),
                    reason: "the payload field has no typed column".into(),
                });
            }
        }
    }
    columns.iter().map(|c| cell(event_type, c, payload.pointer(&pointer(c)))).collect()
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;
    use serde_json::json;
    use tandem_domain::event::EVENT_TYPES;

    #[test]
    fn every_event_type_has_its_columns_and_no_name_twice() {
        for (t, _, _) in EVENT_TYPES {
            assert!(PAYLOAD_COLUMNS.iter().any(|(p, _)| p == t), "{t} has no payload columns");
            let cols = table_columns(t);
            let mut names: Vec<_> = cols.iter().map(|c| c.name).collect();
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), cols.len(), "{t} names a column twice");
        }
        assert_eq!(PAYLOAD_COLUMNS.len(), EVENT_TYPES.len());
        assert!(envelope_columns().iter().all(|c| c.name != "data"));
    }

    #[test]
    fn cells_follow_the_column_types() {
        let payload = json!({
            "pairId": "p", "feedbackId": "f", "from": "a", "to": "b", "sessionId": null,
            "ratings": { "empathy": 4, "patience": 5 }, "visibility": "shared",
            "givenAt": "2026-01-02T03:04:05.000006Z",
        });
        let cells = payload_cells("FeedbackGiven", &payload).unwrap();
        assert_eq!(cells[5], Value::Int(4));
        assert_eq!(cells[6], Value::Null);
        assert_eq!(cells[8], Value::Int(5));
        assert!(matches!(cells[11], Value::Timestamp(t) if t.timestamp_subsec_micros() == 6));
        let formed = json!({
            "pairId": "p", "programId": "g", "kind": "pair", "members": ["a", "b"],
            "formedBy": "admin", "matchScore": 0.5, "formedOn": "2026-01-02",
        });
        let cells = payload_cells("PairFormed", &formed).unwrap();
        assert_eq!(cells[3], Value::TextList(vec!["a".into(), "b".into()]));
        assert_eq!(cells[6], Value::Date(NaiveDate::from_ymd_opt(2026, 1, 2).unwrap()));
    }

    #[test]
    fn an_unmapped_or_mistyped_field_is_refused_not_dropped() {
        let extra = json!({ "person": "x", "name": "Ada" });
        assert!(matches!(
            payload_cells("PersonErased", &extra),
            Err(ExportError::Unmapped { field, .. }) if field == "name"
        ));
        let wrong = json!({ "person": "x", "rejoinedOn": "not a date" });
        assert!(matches!(
            payload_cells("PersonRejoined", &wrong),
            Err(ExportError::Unmapped { field, .. }) if field == "rejoinedOn"
        ));
        // An unknown event type has only the envelope, and an empty payload.
        assert!(payload_cells("FromTheFuture", &json!({})).unwrap().is_empty());
    }
}
