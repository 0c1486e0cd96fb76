//! The table of personal fields covers every text an event can hold.

use std::collections::BTreeSet;

use serde_json::Value;
use tandem_domain::event::EVENT_TYPES;
use tandem_domain::personal::{PERSONAL_FIELDS, personal_fields};

use crate::codec::one_of_each;

/// The text fields of each event type that hold no personal data, and
/// why. Everything else an event holds is ids, dates, numbers and closed
/// lists of codes. A new text field must be listed either here or in
/// `PERSONAL_FIELDS`, or this test fails.
const NOT_PERSONAL: &[(&str, &[&str])] = &[
    // Org facts: what analysts study; they name no one on their own.
    ("PersonRegistered", &["department", "title"]),
    ("PersonUpdated", &["changes.department", "changes.title"]),
    // The program's own texts, written by its coordinators for everyone.
    ("ProgramLaunched", &["name", "description"]),
    ("ProgramUpdated", &["changes.name", "changes.description"]),
    ("ProgramClosed", &["reason"]),
];

/// Whether a string is an id, a date, a time or a code (SCREAMING_CASE).
fn not_text(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok()
        || chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok()
        || chrono::DateTime::parse_from_rfc3339(s).is_ok()
        || (!s.is_empty() && s.chars().all(|c| c.is_ascii_uppercase() || c == '_' || c.is_ascii_digit()))
}

fn text_paths(prefix: &str, v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::String(s) if !not_text(s) => {
            out.insert(prefix.to_owned());
        }
        Value::Array(items) => items.iter().for_each(|item| text_paths(prefix, item, out)),
        Value::Object(map) => {
            for (k, v) in map {
                let path = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                text_paths(&path, v, out);
            }
        }
        _ => {}
    }
}

#[test]
fn every_text_of_every_event_type_is_personal_or_known_not_to_be() {
    let samples: Vec<_> = one_of_each().iter().map(tandem_domain::DomainEvent::encode).collect();
    for (t, _, _) in EVENT_TYPES {
        assert!(samples.iter().any(|s| s.event_type == *t), "no sample of {t}");
    }
    for sample in &samples {
        let mut found = BTreeSet::new();
        text_paths("", &sample.data, &mut found);
        let personal: BTreeSet<&str> = personal_fields(&sample.event_type).iter().map(|f| f.path).collect();
        let other: BTreeSet<&str> =
            NOT_PERSONAL.iter().filter(|(t, _)| *t == sample.event_type).flat_map(|(_, f)| f.iter().copied()).collect();
        for path in &found {
            assert!(
                personal.contains(path.as_str()) || other.contains(path.as_str()),
                "{}.{path} holds text: list it as personal or say why it is not",
                sample.event_type
            );
        }
    }
}

#[test]
fn personal_paths_exist_in_the_payloads_they_name() {
    let samples: Vec<_> = one_of_each().iter().map(tandem_domain::DomainEvent::encode).collect();
    for (event_type, fields) in PERSONAL_FIELDS {
        let sample = samples.iter().find(|s| s.event_type == *event_type).expect("a sample of each type");
        for f in *fields {
            let mut at = &sample.data;
            for step in f.path.split('.') {
                at = at.get(step).unwrap_or_else(|| panic!("{event_type} has no {}", f.path));
            }
            for c in f.concerns {
                let first = c.split('.').next().unwrap_or_default();
                assert!(sample.data.get(first).is_some(), "{event_type} has no {c}");
            }
        }
    }
}
