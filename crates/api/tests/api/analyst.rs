//! The analyst's view: people registered with marker names, e-mails and
//! external ids, then every surface an analyst can reach (each query, the
//! event feed over HTTP and over a websocket subscription, and errors) is
//! read as an analyst, and every string received is scanned for the
//! markers. Searching people by name is refused before it runs.

use serde_json::{Value, json};
use tandem_api::auth::Role;
use tandem_testkit::ws;

use crate::support::{FORM, LAUNCH, TestServer};

/// A marker every personal value of the test carries (names, e-mails and
/// external ids, in any case).
const MARK: &str = "qz8m";

const PERSON_FIELDS: &str = "id name email externalId location department title level erased hiredOn";
const EVENT_FIELDS: &str = "cursor node { __typename \
     ... on PersonRegisteredEvent { envelope { eventType streamId cursor redactedFields } name email externalId location } \
     ... on PersonUpdatedEvent { envelope { streamId redactedFields } name email location changedFields } \
     ... on FeedbackGivenEvent { strengths improvements } \
     ... on SessionHeldEvent { notes } ... on GoalSetEvent { title description } }";

/// Fails when `body` holds a marker anywhere (keys, values, errors).
fn assert_clean(surface: &str, body: &Value) {
    let text = body.to_string().to_lowercase();
    assert!(!text.contains(MARK), "{surface} shows personal data to an analyst: {body:#}");
}

struct World {
    s: TestServer,
    program: String,
    people: Vec<String>,
    pair: String,
}

async fn world(pool: sqlx::PgPool) -> World {
    let s = TestServer::start(pool).await;
    let admin = s.admin();
    let d = s
        .ok(
            &admin,
            LAUNCH,
            json!({"i": {"name": "Buddies", "purpose": "ONBOARDING", "kind": "PAIRS", "maxLevelGap": 2,
                "cadenceDays": 14, "startsOn": "2024-01-01"}}),
        )
        .await;
    let program = d["launchProgram"]["program"]["id"].as_str().unwrap().to_owned();
    let register = "mutation($i: RegisterPersonInput!) { registerPerson(input: $i) { person { id } } }";
    let enrol = "mutation($i: EnrolParticipantInput!) { enrolParticipant(input: $i) { position } }";
    let mut people = Vec::new();
    for n in 0..3 {
        let d = s
            .ok(
                &admin,
                register,
                json!({"i": {"externalId": format!("QZ8M-EXT-{n}"), "name": format!("Qz8m Person{n}"),
                    "email": format!("qz8m.{n}@qz8m.example"), "location": format!("Qz8m City {n}"),
                    "department": "Engineering", "title": "Engineer", "level": 3, "hiredOn": "2021-03-01"}}),
            )
            .await;
        let id = d["registerPerson"]["person"]["id"].as_str().unwrap().to_owned();
        s.ok(&admin, enrol, json!({"i": {"programId": program, "personId": id, "enrolledOn": "2024-01-02"}})).await;
        people.push(id);
    }
    let update = "mutation($i: UpdatePersonInput!) { updatePerson(input: $i) { position } }";
    s.ok(&admin, update, json!({"i": {"personId": people[2], "name": "Qz8m Renamed", "email": "qz8m.r@qz8m.example"}}))
        .await;
    let d = s
        .ok(
            &admin,
            FORM,
            json!({"i": {"programId": program, "memberIds": [people[0], people[1]], "formedOn": "2024-01-10"}}),
        )
        .await;
    let pair = d["formPair"]["pair"]["id"].as_str().unwrap().to_owned();
    World { s, program, people, pair }
}

#[sqlx::test(migrations = "../../migrations")]
async fn no_query_or_error_shows_an_analyst_a_name_an_email_or_an_external_id(pool: sqlx::PgPool) {
    let w = world(pool).await;
    let analyst = w.s.token(&[Role::Analyst], "analyst-1");
    let (program, pair, person) = (&w.program, &w.pair, &w.people[0]);
    let queries = [
        (
            "people",
            format!(
                "{{ people(first: 50) {{ edges {{ cursor node {{ {PERSON_FIELDS} }} }} pageInfo {{ endCursor }} }} }}"
            ),
        ),
        (
            "person",
            format!(
                "{{ person(id: \"{person}\") {{ {PERSON_FIELDS} manager {{ name }} pairs {{ edges {{ cursor }} }} }} }}"
            ),
        ),
        ("programs", "{ programs { edges { cursor node { id name } } } }".to_owned()),
        (
            "program",
            format!(
                "{{ program(id: \"{program}\") {{ id enrolments(first: 50) {{ edges {{ cursor node {{ person {{ {PERSON_FIELDS} }} }} }} }} \
                 pairs {{ edges {{ cursor node {{ id memberIds members {{ {PERSON_FIELDS} }} }} }} }} }} }}"
            ),
        ),
        ("pair", format!("{{ pair(id: \"{pair}\") {{ id memberIds members {{ {PERSON_FIELDS} }} }} }}")),
        (
            "pairs",
            format!(
                "{{ pairs(programId: \"{program}\") {{ edges {{ cursor node {{ id members {{ name email }} }} }} }} }}"
            ),
        ),
        ("sessions", format!("{{ sessions(pairId: \"{pair}\") {{ edges {{ cursor }} }} }}")),
        ("goals", format!("{{ goals(pairId: \"{pair}\") {{ edges {{ cursor }} }} }}")),
        ("programStats", format!("{{ programStats(programId: \"{program}\") {{ enrolled matched currentPairs }} }}")),
        ("me", "{ me { subject } }".to_owned()),
        ("events", format!("{{ events(first: 100) {{ edges {{ {EVENT_FIELDS} }} pageInfo {{ endCursor }} }} }}")),
    ];
    for (surface, query) in &queries {
        let (status, body) = w.s.post(Some(&analyst), query, json!({})).await;
        assert_eq!(status, 200, "{surface}: {body:#}");
        assert!(body["data"].is_object(), "{surface} answers the analyst: {body:#}");
        assert_clean(surface, &body);
    }
    // The feed answered every event, so the scan above covered them.
    let (_, feed) = w.s.post(Some(&analyst), &queries[10].1, json!({})).await;
    let types: Vec<&str> = feed["data"]["events"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["__typename"].as_str().unwrap())
        .collect();
    assert!(types.contains(&"PersonRegisteredEvent") && types.contains(&"PersonUpdatedEvent"), "{types:?}");

    // Searching by name is refused, whatever is searched, and the refusal
    // echoes nothing.
    for search in ["Qz8m", "qz8m person0", "zz-not-a-name"] {
        let query = "query($s: String) { people(filter: {search: $s}) { edges { node { id } } } }";
        let (_, body) = w.s.post(Some(&analyst), query, json!({"s": search})).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "FORBIDDEN", "{body:#}");
        assert!(body["data"].is_null() || body["data"]["people"].is_null(), "{body:#}");
        assert_clean("people(search)", &body);
    }
    // Admins still search.
    let admin = w.s.admin();
    let found =
        w.s.ok(&admin, "{ people(filter: {search: \"qz8m person1\"}) { edges { node { name } } } }", json!({})).await;
    assert_eq!(found["people"]["edges"][0]["node"]["name"], "Qz8m Person1");

    // Errors echo no input value: bad ids, cursors and filters made of
    // personal values.
    let errors = [
        ("person(id)", "query($v: ID!) { person(id: $v) { id } }"),
        ("pair(id)", "query($v: ID!) { pair(id: $v) { id } }"),
        ("people(after)", "query($v: String) { people(after: $v) { edges { cursor } } }"),
        ("events(after)", "query($v: String) { events(after: $v) { edges { cursor } } }"),
        ("events(streamId)", "query($v: ID) { events(streamId: $v) { edges { cursor } } }"),
        ("events(types)", "query($v: String!) { events(types: [$v]) { edges { cursor } } }"),
        ("programStats(programId)", "query($v: ID!) { programStats(programId: $v) { enrolled } }"),
        ("sessions(pairId)", "query($v: ID!) { sessions(pairId: $v) { edges { cursor } } }"),
    ];
    for (surface, query) in errors {
        for value in ["Qz8m Person0", "qz8m.0@qz8m.example", "QZ8M-EXT-0"] {
            let (_, body) = w.s.post(Some(&analyst), query, json!({"v": value})).await;
            assert!(body["errors"].is_array(), "{surface} refuses {value:?}: {body:#}");
            assert_clean(surface, &body);
        }
    }
    w.s.stop().await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn subscriptions_show_an_analyst_no_personal_data(pool: sqlx::PgPool) {
    let w = world(pool).await;
    let analyst = w.s.token(&[Role::Analyst], "analyst-1");
    // From the start of the log ("0-0"): each subscription replays it.
    let subscriptions = [
        (
            "programEvents",
            format!(
                "subscription {{ programEvents(programId: \"{}\", after: \"0-0\") {{ {EVENT_FIELDS} }} }}",
                w.program
            ),
        ),
        (
            "pairEvents",
            format!("subscription {{ pairEvents(pairId: \"{}\", after: \"0-0\") {{ {EVENT_FIELDS} }} }}", w.pair),
        ),
    ];
    for (surface, query) in subscriptions {
        let mut socket = ws::acked(&w.s.ws_url(), json!({"token": analyst})).await;
        ws::send(&mut socket, ws::subscribe("1", &query)).await;
        let mut received = 0;
        // The program's events: its launch, three enrolments and the pair's
        // formation; the pair's: its formation.
        let wanted = if surface == "programEvents" { 5 } else { 1 };
        while received < wanted {
            let frame = ws::recv(&mut socket).await;
            assert_eq!(frame["type"], "next", "{surface}: {frame:#}");
            assert_clean(surface, &frame);
            received += 1;
        }
        // A subscription given a personal value as its cursor is refused
        // without echoing it.
        ws::send(&mut socket, ws::subscribe("2", &query.replace("0-0", "Qz8m Person0"))).await;
        let frame = ws::recv(&mut socket).await;
        assert_clean(surface, &frame);
    }
    w.s.stop().await;
}
