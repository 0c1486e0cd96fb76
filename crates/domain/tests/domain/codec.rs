//! The stored shape of events: type names, stream types and ids, schema
//! versions, the upcaster chain and typed decoding errors.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use tandem_domain::event::{CodecError, DomainEvent, EVENT_TYPES, StreamType, event_type_info, upcast};
use tandem_domain::pair::{
    Coaching, FeedbackGiven, GoalAbandoned, GoalCompleted, GoalProgressRecorded, GoalSet, PairDissolved, PairEvent,
    PairFormed, PairPaused, PairResumed, SessionCancelled, SessionHeld, SessionScheduled,
};
use tandem_domain::person::{PersonChanges, PersonErased, PersonEvent, PersonLeft, PersonRegistered, PersonRejoined};
use tandem_domain::program::{
    ParticipantEnrolled, ParticipantWithdrew, ProgramChanges, ProgramClosed, ProgramEvent, ProgramUpdated,
};
use tandem_domain::values::{
    ACTIVITIES_VERSION, Activity, DissolveReason, FormedBy, GroupKind, LeaveReason, LongText, MatchScore, Ratings,
    Visibility,
};
use tandem_domain::webhook::WebhookEvent;
use uuid::Uuid;

use crate::support::{
    at, circles, day, email, ext, feedback_id, gap, goal_id, launch, launched, level, lt, manager_changed, minutes,
    pair_id, percent, person_id, person_registered, person_updated, program_id, rating, register, registered,
    session_id, st,
};

/// One event of every type, each with most of its optional fields set.
pub(crate) fn one_of_each() -> Vec<DomainEvent> {
    let (ada, bob) = (person_id(1), person_id(2));
    let (g, x) = (program_id(1), pair_id(1));
    let person = [
        registered(tandem_domain::person::RegisterPerson { manager: Some(bob), ..register(ada) }),
        person_updated(
            ada,
            day(30),
            PersonChanges {
                name: Some(st("Ada King")),
                email: Some(email("ada@king.org")),
                department: Some(st("Research")),
                title: Some(st("Lead")),
                level: Some(level(5)),
                manager: Some(None),
                location: Some(None),
            },
        ),
        PersonEvent::PersonLeft(PersonLeft { person_id: ada, left_on: day(60), reason: LeaveReason::Involuntary }),
        PersonEvent::PersonRejoined(PersonRejoined { person_id: ada, rejoined_on: day(90) }),
        PersonEvent::PersonErased(PersonErased { person_id: ada }),
    ];
    let program = [
        launched(tandem_domain::program::LaunchProgram { format: circles(3, 5), ends_on: Some(day(365)), ..launch(g) }),
        ProgramEvent::ProgramUpdated(ProgramUpdated {
            program_id: g,
            changes: ProgramChanges {
                name: Some(st("Renamed")),
                description: Some(lt("Longer\ndescription")),
                max_level_gap: Some(gap(3)),
                cadence_days: None,
                ends_on: Some(None),
            },
        }),
        ProgramEvent::ParticipantEnrolled(ParticipantEnrolled {
            program_id: g,
            person_id: ada,
            enrolled_on: day(1),
            interests: vec![st("Rust")],
            skills: vec![st("Listening"), st("Patience")],
            wants_to_work_on: lt("Feedback"),
        }),
        ProgramEvent::ParticipantWithdrew(ParticipantWithdrew {
            program_id: g,
            person_id: ada,
            withdrew_on: day(9),
            reason: LongText::default(),
        }),
        ProgramEvent::ProgramClosed(ProgramClosed { program_id: g, closed_on: day(100), reason: lt("Over") }),
    ];
    let pair = [
        PairEvent::PairFormed(PairFormed {
            pair_id: x,
            program_id: g,
            kind: GroupKind::Pairs,
            members: vec![ada, bob],
            formed_by: FormedBy::Suggestion,
            match_score: Some(MatchScore::parse("matchScore", 0.734_512_9).unwrap()),
            formed_on: day(2),
        }),
        PairEvent::SessionScheduled(SessionScheduled {
            pair_id: x,
            session_id: session_id(1),
            scheduled_by: ada,
            scheduled_for: at(3),
            focus: None,
        }),
        PairEvent::SessionHeld(SessionHeld {
            pair_id: x,
            session_id: session_id(1),
            recorded_by: bob,
            held_at: at(3) + chrono::Duration::nanoseconds(123_456_789),
            minutes: minutes(50),
            focus: Some(st("Conflict")),
            activities: Activity::ALL.to_vec(),
            activities_version: ACTIVITIES_VERSION,
            coaching: vec![Coaching { coach: ada, coachee: bob }],
            notes: lt("Tabs\tand\nlines"),
        }),
        PairEvent::SessionCancelled(SessionCancelled {
            pair_id: x,
            session_id: session_id(2),
            cancelled_by: bob,
            reason: lt("Ill"),
        }),
        PairEvent::FeedbackGiven(FeedbackGiven {
            pair_id: x,
            feedback_id: feedback_id(1),
            from: ada,
            to: bob,
            session_id: Some(session_id(1)),
            ratings: Ratings {
                empathy: Some(rating(1)),
                active_listening: Some(rating(2)),
                curiosity: Some(rating(3)),
                patience: None,
                growth_mindset: Some(rating(5)),
            },
            strengths: lt("Calm"),
            improvements: lt("Fewer answers"),
            visibility: Visibility::RecipientAndCoordinators,
            given_at: at(4),
        }),
        PairEvent::GoalSet(GoalSet {
            pair_id: x,
            goal_id: goal_id(1),
            owner: ada,
            title: Some(st("Listen")),
            description: LongText::default(),
            due_on: Some(day(50)),
            accountability_partner: Some(bob),
            set_on: day(4),
        }),
        PairEvent::GoalProgressRecorded(GoalProgressRecorded {
            pair_id: x,
            goal_id: goal_id(1),
            by: bob,
            percent: Some(percent(0)),
            note: lt("Started"),
            recorded_on: day(5),
        }),
        PairEvent::GoalCompleted(GoalCompleted {
            pair_id: x,
            goal_id: goal_id(1),
            by: ada,
            note: LongText::default(),
            completed_on: day(40),
        }),
        PairEvent::GoalAbandoned(GoalAbandoned {
            pair_id: x,
            goal_id: goal_id(2),
            by: ada,
            reason: lt("Moot"),
            abandoned_on: day(41),
        }),
        PairEvent::PairPaused(PairPaused { pair_id: x, reason: lt("Leave"), paused_on: day(42), until: Some(day(60)) }),
        PairEvent::PairResumed(PairResumed { pair_id: x, resumed_on: day(61) }),
        PairEvent::PairDissolved(PairDissolved {
            pair_id: x,
            reason: DissolveReason::Mismatch,
            note: lt("Did not click"),
            dissolved_on: day(70),
        }),
    ];
    person
        .into_iter()
        .map(DomainEvent::Person)
        .chain(program.into_iter().map(DomainEvent::Program))
        .chain(pair.into_iter().map(DomainEvent::Pair))
        .chain(webhook_events().into_iter().map(DomainEvent::Webhook))
        .collect()
}

fn webhook_events() -> Vec<WebhookEvent> {
    use tandem_domain::webhook::{
        EndpointChanges, EndpointRole, EndpointUrl, WebhookEndpointCreated, WebhookEndpointDisabled,
        WebhookEndpointUpdated, WebhookRedeliveryRequested, WebhookSecretRotated,
    };
    let id = tandem_domain::WebhookEndpointId::from_uuid(Uuid::from_u128(0x77));
    let url = |u: &str| EndpointUrl::parse("url", u).unwrap();
    vec![
        WebhookEvent::WebhookEndpointCreated(WebhookEndpointCreated {
            endpoint_id: id,
            url: url("https://hooks.example.com/a"),
            event_types: vec!["PairFormed".into(), "PersonLeft".into()],
            description: lt("HR sync"),
            role: EndpointRole::Integrator,
            secret_id: Uuid::from_u128(1),
        }),
        WebhookEvent::WebhookEndpointUpdated(WebhookEndpointUpdated {
            endpoint_id: id,
            changes: EndpointChanges { url: Some(url("https://hooks.example.com/b")), ..EndpointChanges::default() },
        }),
        WebhookEvent::WebhookSecretRotated(WebhookSecretRotated {
            endpoint_id: id,
            secret_id: Uuid::from_u128(2),
            previous_secret_id: Uuid::from_u128(1),
            previous_valid_until: chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
        }),
        WebhookEvent::WebhookEndpointDisabled(WebhookEndpointDisabled { endpoint_id: id }),
        WebhookEvent::WebhookRedeliveryRequested(WebhookRedeliveryRequested { endpoint_id: id, after: "12-34".into() }),
    ]
}

#[test]
fn the_samples_cover_every_event_type_once() {
    let events = one_of_each();
    let samples: Vec<&str> = events.iter().map(DomainEvent::event_type).collect();
    let known: Vec<&str> = EVENT_TYPES.iter().map(|(t, _, _)| *t).collect();
    assert_eq!(samples, known);
    assert_eq!(known.iter().collect::<BTreeSet<_>>().len(), known.len(), "event type names are unique");
}

#[test]
fn every_event_round_trips() {
    for event in one_of_each() {
        let encoded = event.encode();
        let (stream, version) = event_type_info(&encoded.event_type).expect("a known type");
        assert_eq!(encoded.event_type, event.event_type());
        assert_eq!(encoded.schema_version, version, "{}", encoded.event_type);
        assert_eq!(event.stream_type(), Some(stream), "{}", encoded.event_type);
        assert!(encoded.data.is_object(), "{} is stored as an object", encoded.event_type);
        // The stream id is the id the payload names for its stream.
        let id_field = match stream {
            StreamType::Person => "personId",
            StreamType::Program => "programId",
            StreamType::Pair => "pairId",
            StreamType::Webhook => "endpointId",
        };
        let stored_id: Uuid = serde_json::from_value(encoded.data[id_field].clone()).expect("a stream id field");
        assert_eq!(event.stream_id(), stored_id, "{}", encoded.event_type);

        let decoded = DomainEvent::decode(&encoded.event_type, encoded.schema_version, encoded.data.clone())
            .unwrap_or_else(|e| panic!("{} does not decode: {e}", encoded.event_type));
        assert_eq!(decoded, event);
        // Through text too, as the store keeps it.
        let text = serde_json::to_string(&encoded.data).unwrap();
        let reparsed: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(DomainEvent::decode(&encoded.event_type, encoded.schema_version, reparsed).unwrap(), event);
    }
}

#[test]
fn stream_ids_follow_the_stream() {
    let events = one_of_each();
    let ids: BTreeSet<(&str, Uuid)> =
        events.iter().map(|e| (e.stream_type().unwrap().as_str(), e.stream_id())).collect();
    assert_eq!(
        ids,
        BTreeSet::from([
            ("person", person_id(1).as_uuid()),
            ("program", program_id(1).as_uuid()),
            ("pair", pair_id(1).as_uuid()),
            ("webhook", Uuid::from_u128(0x77)),
        ])
    );
}

#[test]
fn stream_type_names() {
    for s in [StreamType::Person, StreamType::Program, StreamType::Pair] {
        assert_eq!(StreamType::parse(s.as_str()), Some(s));
    }
    assert_eq!(StreamType::parse("Person"), None);
    assert_eq!(event_type_info("PersonRegistered"), Some((StreamType::Person, 2)));
    assert_eq!(event_type_info("Nope"), None);
}

#[test]
fn the_stored_shape_is_camel_case_with_screaming_enums() {
    let formed = one_of_each().into_iter().find(|e| e.event_type() == "PairFormed").unwrap();
    let data = formed.encode().data;
    assert_eq!(data["formedBy"], json!("SUGGESTION"));
    assert_eq!(data["kind"], json!("PAIRS"));
    assert_eq!(data["formedOn"], json!("2024-01-03"));
    assert!(data.get("pair_id").is_none());
}

#[test]
fn change_sets_distinguish_unchanged_from_cleared() {
    let ada = person_id(1);
    let cleared = DomainEvent::Person(manager_changed(ada, day(3), None)).encode().data;
    assert_eq!(cleared["changes"], json!({ "manager": null }));
    let set = DomainEvent::Person(manager_changed(ada, day(3), Some(person_id(2)))).encode().data;
    assert_eq!(set["changes"], json!({ "manager": person_id(2).to_string() }));
    let untouched =
        DomainEvent::Person(person_updated(ada, day(3), PersonChanges { level: Some(level(4)), ..Default::default() }));
    assert_eq!(untouched.encode().data["changes"], json!({ "level": 4 }));
    for e in [cleared, set] {
        let DomainEvent::Person(PersonEvent::PersonUpdated(u)) = DomainEvent::decode("PersonUpdated", 1, e).unwrap()
        else {
            panic!("a person update")
        };
        assert!(u.changes.manager.is_some(), "present means changed");
        assert!(u.changes.location.is_none(), "absent means unchanged");
    }
}

fn v1_registered() -> Value {
    json!({
        "personId": person_id(1),
        "externalId": "HR-1",
        "fullName": "Ada Lovelace",
        "email": "ada@example.com",
        "department": "Engineering",
        "title": "Engineer",
        "level": 3,
        "manager": null,
        "hiredOn": "2024-01-01",
    })
}

#[test]
fn person_registered_v1_is_upcast() {
    let decoded = DomainEvent::decode("PersonRegistered", 1, v1_registered()).unwrap();
    let expected = PersonRegistered {
        person_id: person_id(1),
        external_id: Some(ext("HR-1")),
        name: Some(st("Ada Lovelace")),
        email: Some(email("ada@example.com")),
        department: st("Engineering"),
        title: st("Engineer"),
        level: level(3),
        manager: None,
        location: None,
        hired_on: day(0),
    };
    assert_eq!(decoded, DomainEvent::Person(PersonEvent::PersonRegistered(expected)));
    let upcast_data = upcast("PersonRegistered", 1, v1_registered()).unwrap();
    assert_eq!(upcast_data["name"], json!("Ada Lovelace"));
    assert_eq!(upcast_data["location"], Value::Null);
    assert!(upcast_data.get("fullName").is_none());
    // Today's version passes through untouched.
    let v2 = DomainEvent::Person(person_registered(person_id(1), 3, None)).encode();
    assert_eq!(upcast("PersonRegistered", 2, v2.data.clone()).unwrap(), v2.data);
}

#[test]
fn a_v1_payload_without_its_name_is_malformed() {
    let mut data = v1_registered();
    data.as_object_mut().unwrap().remove("fullName");
    let err = DomainEvent::decode("PersonRegistered", 1, data).unwrap_err();
    assert!(
        matches!(err, CodecError::Malformed { ref event_type, version: 1, .. } if event_type == "PersonRegistered"),
        "{err}"
    );
    let err = DomainEvent::decode("PersonRegistered", 1, json!([1, 2])).unwrap_err();
    assert!(matches!(err, CodecError::Malformed { version: 1, .. }), "{err}");
}

#[test]
fn an_unknown_event_type_is_refused() {
    let err = DomainEvent::decode("PairMerged", 1, json!({})).unwrap_err();
    assert!(matches!(err, CodecError::UnknownEventType(ref t) if t == "PairMerged"), "{err}");
    assert!(matches!(upcast("PairMerged", 1, json!({})), Err(CodecError::UnknownEventType(_))));
}

#[test]
fn a_version_from_the_future_is_refused_by_strict_decoding_unless_it_reads_as_today() {
    // v3 that still reads as v2 (a newer version that only added fields).
    let event = DomainEvent::Person(person_registered(person_id(1), 3, None));
    let mut data = event.encode().data;
    data["pronouns"] = json!("she/her");
    assert_eq!(DomainEvent::decode("PersonRegistered", 3, data).unwrap(), event);
    // v3 whose payload does not read as v2.
    let mut data = event.encode().data;
    data.as_object_mut().unwrap().remove("name");
    let err = DomainEvent::decode("PersonRegistered", 3, data).unwrap_err();
    assert!(
        matches!(err, CodecError::FromTheFuture { ref event_type, found: 3, known: 2 } if event_type == "PersonRegistered"),
        "{err}"
    );
    let err = DomainEvent::decode("PairPaused", 2, json!({})).unwrap_err();
    assert!(matches!(err, CodecError::FromTheFuture { found: 2, known: 1, .. }), "{err}");
}

#[track_caller]
fn assert_malformed(event_type: &str, data: Value) {
    let (_, version) = event_type_info(event_type).unwrap();
    match DomainEvent::decode(event_type, version, data) {
        Err(CodecError::Malformed { event_type: t, version: v, .. }) => {
            assert_eq!((t.as_str(), v), (event_type, version))
        }
        other => panic!("expected a malformed {event_type}, got {other:?}"),
    }
}

/// The encoded payload of the sample of `event_type`, with `edit` applied.
fn sample_with(event_type: &str, edit: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Value {
    let event = one_of_each().into_iter().find(|e| e.event_type() == event_type).unwrap();
    let mut data = event.encode().data;
    edit(data.as_object_mut().unwrap());
    data
}

#[test]
fn malformed_payloads_are_typed_errors() {
    assert_malformed("FeedbackGiven", sample_with("FeedbackGiven", |m| m["ratings"]["empathy"] = json!(9)));
    assert_malformed("PersonRegistered", sample_with("PersonRegistered", |m| m["name"] = json!("   ")));
    assert_malformed("PersonRegistered", sample_with("PersonRegistered", |m| m["email"] = json!("nope")));
    assert_malformed("PersonRegistered", sample_with("PersonRegistered", |m| m["level"] = json!(0)));
    assert_malformed("PersonRegistered", sample_with("PersonRegistered", |m| m["name"] = json!("a\u{0}b")));
    assert_malformed("SessionHeld", sample_with("SessionHeld", |m| m["minutes"] = json!(601)));
    assert_malformed("SessionHeld", sample_with("SessionHeld", |m| m["activities"] = json!(["JUGGLING"])));
    assert_malformed("GoalProgressRecorded", sample_with("GoalProgressRecorded", |m| m["percent"] = json!(101)));
    assert_malformed("PairFormed", sample_with("PairFormed", |m| m["matchScore"] = json!(1.5)));
    assert_malformed("PairFormed", sample_with("PairFormed", |m| m["pairId"] = json!("not-a-uuid")));
    assert_malformed("PairFormed", sample_with("PairFormed", |m| drop(m.remove("members"))));
    assert_malformed("PairDissolved", sample_with("PairDissolved", |m| m["dissolvedOn"] = json!("2024-02-30")));
    assert_malformed("ProgramLaunched", sample_with("ProgramLaunched", |m| m["maxLevelGap"] = json!(31)));
    assert_malformed("PairPaused", json!("not an object"));
    assert_malformed("PersonErased", Value::Null);
}

#[test]
fn a_stored_group_format_is_validated_like_a_new_one() {
    let bad_formats = [
        json!({ "kind": "PAIRS", "minSize": 3, "maxSize": 3 }),
        json!({ "kind": "CIRCLES", "minSize": 2, "maxSize": 4 }),
        json!({ "kind": "CIRCLES", "minSize": 5, "maxSize": 4 }),
        json!({ "kind": "CIRCLES", "minSize": 3, "maxSize": 40 }),
    ];
    for format in bad_formats {
        assert_malformed("ProgramLaunched", sample_with("ProgramLaunched", |m| m["format"] = format));
    }
    let pairs =
        sample_with("ProgramLaunched", |m| m["format"] = json!({ "kind": "PAIRS", "minSize": 2, "maxSize": 2 }));
    assert!(DomainEvent::decode("ProgramLaunched", 1, pairs).is_ok());
}

// ------------------------------------------------ lenient reading

use tandem_domain::event::{StoredEvent, Unrecognised, UnrecognisedEvent, upcast_stored};

fn stream() -> Uuid {
    Uuid::from_u128(42)
}

/// Unknown fields, at the top and inside known objects, survive a read and
/// an encode of every event type; the event itself reads as without them.
#[test]
fn unknown_fields_are_kept_through_a_read_and_an_encode() {
    for event in one_of_each() {
        let encoded = event.encode();
        let mut data = encoded.data.clone();
        let object = data.as_object_mut().unwrap();
        // Inside a known object, where the event has one.
        let inner = object.iter_mut().find_map(|(k, v)| v.as_object_mut().map(|o| (k.clone(), o)));
        let inner_key = inner.map(|(k, o)| {
            o.insert("alsoLater".into(), json!(true));
            k
        });
        object.insert("addedLater".into(), json!({ "nested": [1, 2, 3] }));
        let read = StoredEvent::read(stream(), &encoded.event_type, encoded.schema_version, data.clone())
            .unwrap_or_else(|e| panic!("{}: {e}", encoded.event_type));
        assert_eq!(read.event, event, "{}", encoded.event_type);
        assert_eq!(read.unknown_fields["addedLater"], json!({ "nested": [1, 2, 3] }));
        if let Some(k) = &inner_key {
            assert_eq!(read.unknown_fields[k.as_str()], json!({ "alsoLater": true }), "{}", encoded.event_type);
        }
        let again = read.encode();
        assert_eq!(
            (again.event_type.as_str(), again.schema_version),
            (encoded.event_type.as_str(), encoded.schema_version)
        );
        assert_eq!(again.data, data, "{}: nothing is lost", encoded.event_type);
        // An event this build wrote has none.
        let plain = StoredEvent::read(stream(), &encoded.event_type, encoded.schema_version, encoded.data).unwrap();
        assert!(plain.unknown_fields.is_empty(), "{}", encoded.event_type);
    }
}

/// A newer version that reads as today's is the domain event, its extra
/// fields kept; one that does not is unrecognised, kept whole, not an error.
#[test]
fn a_newer_version_is_read_when_it_can_be_and_kept_when_it_cannot() {
    let event = DomainEvent::Person(person_registered(person_id(1), 3, None));
    let mut data = event.encode().data;
    data["pronouns"] = json!("she/her");
    let read = StoredEvent::read(stream(), "PersonRegistered", 7, data).unwrap();
    assert_eq!(read.event, event);
    assert_eq!(read.unknown_fields["pronouns"], json!("she/her"));

    let reshaped = json!({ "personId": person_id(1), "names": { "given": "Ada" } });
    let read = StoredEvent::read(stream(), "PersonRegistered", 7, reshaped.clone()).unwrap();
    let expected = UnrecognisedEvent {
        stream_id: stream(),
        event_type: "PersonRegistered".into(),
        schema_version: 7,
        data: reshaped.clone(),
        reason: Unrecognised::NewerVersion { known: 2 },
    };
    assert_eq!(read.event, DomainEvent::Unrecognised(expected));
    assert!(read.unknown_fields.is_empty());
    // Encoding it again gives back exactly what was stored.
    let again = read.encode();
    assert_eq!((again.event_type.as_str(), again.schema_version, again.data), ("PersonRegistered", 7, reshaped));
}

/// An unknown event type is unrecognised, with its stream, and encodes back
/// as stored; it names no stream type this build knows.
#[test]
fn an_unknown_event_type_is_kept_as_stored() {
    let data = json!({ "pairId": pair_id(1), "into": pair_id(2) });
    let read = StoredEvent::read(stream(), "PairMerged", 1, data.clone()).unwrap();
    let DomainEvent::Unrecognised(u) = &read.event else { panic!("{read:?}") };
    assert_eq!(u.reason, Unrecognised::UnknownType);
    assert_eq!(
        (read.event.event_type(), read.event.stream_id(), read.event.stream_type()),
        ("PairMerged", stream(), None)
    );
    let again = read.encode();
    assert_eq!((again.event_type.as_str(), again.schema_version, again.data), ("PairMerged", 1, data));
}

/// Validation still refuses what this build should understand: a payload
/// at a version it knows that breaks a rule, or an old one the chain
/// cannot upcast. Only what a newer build wrote is passed over.
#[test]
fn a_malformed_payload_of_a_known_version_is_still_an_error() {
    let bad = sample_with("SessionHeld", |m| m["minutes"] = json!(601));
    let (_, version) = event_type_info("SessionHeld").unwrap();
    assert!(matches!(
        StoredEvent::read(stream(), "SessionHeld", version, bad.clone()),
        Err(CodecError::Malformed { .. })
    ));
    // The same payload from a newer version is passed over, not an error.
    let read = StoredEvent::read(stream(), "SessionHeld", version + 1, bad).unwrap();
    assert!(matches!(
        read.event,
        DomainEvent::Unrecognised(UnrecognisedEvent { reason: Unrecognised::NewerVersion { .. }, .. })
    ));
    let mut old = v1_registered();
    old.as_object_mut().unwrap().remove("fullName");
    assert!(matches!(
        StoredEvent::read(stream(), "PersonRegistered", 1, old),
        Err(CodecError::Malformed { version: 1, .. })
    ));
}

/// The store's form of the chain: older versions upcast, newer ones and
/// unknown types returned as stored.
#[test]
fn the_chain_as_the_store_runs_it() {
    let (version, data) = upcast_stored("PersonRegistered", 1, v1_registered()).unwrap();
    assert_eq!((version, data), (2, upcast("PersonRegistered", 1, v1_registered()).unwrap()));
    assert_eq!(upcast_stored("PersonRegistered", 9, json!({"x": 1})).unwrap(), (9, json!({"x": 1})));
    assert_eq!(upcast_stored("PairMerged", 1, json!({"x": 1})).unwrap(), (1, json!({"x": 1})));
    assert!(upcast_stored("PersonRegistered", 1, json!([])).is_err());
}
