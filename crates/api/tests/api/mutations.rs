//! Mutations through the real HTTP server: every refusal of a value is
//! `BAD_USER_INPUT` naming its field and writes nothing; every error kind
//! reaches the client with its code and HTTP status; a committed change is
//! never reported as a failure, even when the read models lag behind it;
//! replays return the first call's objects.

use std::time::Duration;

use serde_json::{Value, json};
use sqlx::PgPool;
use tandem_api::auth::Role;
use tandem_api::schema::Limits;

use crate::support::{self, HOLD, Options, TestServer};

const UPDATE_PERSON: &str = "mutation($i: UpdatePersonInput!) { updatePerson(input: $i) { position } }";
const SET_GOAL: &str = "mutation($i: SetGoalInput!) { setGoal(input: $i) { position goal { id } } }";

async fn event_count(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(pool).await.unwrap()
}

/// A valid registration, with `field` set to `value` (`null` removes it).
fn person_with(field: &str, value: Value) -> Value {
    let mut i = json!({"externalId": "E-new", "name": "New Person", "email": "new@example.com",
        "department": "Engineering", "title": "Engineer", "level": 3, "hiredOn": "2021-03-01"});
    i[field] = value;
    json!({ "i": i })
}

/// A valid circles launch, with `field` set to `value`.
fn program_with(field: &str, value: Value) -> Value {
    let mut i = json!({"name": "Circles", "purpose": "ONBOARDING", "kind": "CIRCLES", "minSize": 3, "maxSize": 5,
        "maxLevelGap": 2, "cadenceDays": 14, "startsOn": "2024-01-01"});
    i[field] = value;
    json!({ "i": i })
}

#[sqlx::test(migrations = "../../migrations")]
async fn every_refused_value_is_bad_user_input_naming_its_field_and_writes_nothing(pool: PgPool) {
    let s = TestServer::start(pool.clone()).await;
    let org = support::org(&s).await;
    let admin = s.admin();
    let ada = s.token(&[Role::Participant], &org.people[0]);
    let pair = &org.pairs[0];
    let hold = |field: &str, value: Value| {
        let mut i = json!({"pairId": pair, "minutes": 30, "focus": "Listening"});
        i[field] = value;
        json!({ "i": i })
    };
    let feedback = |ratings: Value| json!({"i": {"pairId": pair, "toId": org.people[1], "ratings": ratings, "visibility": "RECIPIENT"}});
    let thirteen: Vec<String> = (0..13).map(|_| uuid::Uuid::now_v7().to_string()).collect();
    let many_tags: Vec<String> = (0..21).map(|n| format!("tag{n}")).collect();
    let cases: Vec<(&str, &str, Value, &str)> = vec![
        // Text PostgreSQL would refuse (NUL), and malformed text.
        ("admin", support::REGISTER, person_with("name", json!("Ada\u{0}Lovelace")), "name"),
        ("admin", support::REGISTER, person_with("externalId", json!("")), "externalId"),
        ("admin", support::REGISTER, person_with("externalId", json!("E\u{0}1")), "externalId"),
        ("admin", support::REGISTER, person_with("email", json!("not-an-email")), "email"),
        ("admin", support::REGISTER, person_with("email", json!("a\u{0}@example.com")), "email"),
        ("admin", support::REGISTER, person_with("department", json!("x".repeat(201))), "department"),
        ("admin", support::REGISTER, person_with("location", json!("Berlin\u{0}")), "location"),
        ("admin", support::REGISTER, person_with("managerId", json!("not-an-id")), "managerId"),
        // Numbers outside the domain's range, and outside a GraphQL Int.
        ("admin", support::REGISTER, person_with("level", json!(0)), "level"),
        ("admin", support::REGISTER, person_with("level", json!(2_147_483_647)), "level"),
        ("admin", support::REGISTER, person_with("level", json!(99_999_999_999_i64)), "level"),
        ("admin", support::REGISTER, person_with("level", json!(1e300)), "level"),
        ("admin", support::REGISTER, person_with("level", json!("three")), "level"),
        // Dates beyond four-digit years.
        ("admin", support::REGISTER, person_with("hiredOn", json!("0000-06-01")), "hiredOn"),
        // Idempotency keys.
        ("admin", support::REGISTER, person_with("idempotencyKey", json!("key\u{0}")), "idempotencyKey"),
        ("admin", support::REGISTER, person_with("idempotencyKey", json!("")), "idempotencyKey"),
        ("admin", support::REGISTER, person_with("idempotencyKey", json!("k".repeat(201))), "idempotencyKey"),
        ("admin", UPDATE_PERSON, json!({"i": {"personId": org.people[0], "level": -1}}), "level"),
        ("admin", UPDATE_PERSON, json!({"i": {"personId": org.people[0], "title": "\u{0}"}}), "title"),
        (
            "admin",
            UPDATE_PERSON,
            json!({"i": {"personId": org.people[0], "managerId": org.people[1], "clearManager": true}}),
            "clearManager",
        ),
        // Program launches.
        ("admin", support::LAUNCH, program_with("maxSize", json!(13)), "maxSize"),
        ("admin", support::LAUNCH, program_with("maxSize", json!(2)), "maxSize"),
        ("admin", support::LAUNCH, program_with("maxSize", json!(4_294_967_296_i64)), "maxSize"),
        ("admin", support::LAUNCH, program_with("minSize", json!(2)), "minSize"),
        ("admin", support::LAUNCH, program_with("minSize", json!(-2_147_483_648_i64)), "minSize"),
        ("admin", support::LAUNCH, program_with("maxLevelGap", json!(-1)), "maxLevelGap"),
        ("admin", support::LAUNCH, program_with("cadenceDays", json!(0)), "cadenceDays"),
        ("admin", support::LAUNCH, program_with("name", json!("Circles\u{0}")), "name"),
        ("admin", support::LAUNCH, program_with("endsOn", json!("0000-01-01")), "endsOn"),
        (
            "admin",
            support::LAUNCH,
            json!({"i": {"name": "Pairs", "purpose": "ONBOARDING", "kind": "PAIRS", "maxSize": 3, "maxLevelGap": 2,
                "cadenceDays": 14}}),
            "maxSize",
        ),
        (
            "admin",
            support::ENROL,
            json!({"i": {"programId": org.program, "personId": org.people[0], "interests": many_tags}}),
            "interests",
        ),
        (
            "admin",
            support::ENROL,
            json!({"i": {"programId": org.program, "personId": org.people[0], "skills": ["ok", "bad\u{0}"]}}),
            "skills",
        ),
        // Pairs.
        ("admin", support::FORM, json!({"i": {"programId": org.program, "memberIds": thirteen}}), "memberIds"),
        ("admin", support::FORM, json!({"i": {"programId": org.program, "memberIds": ["x", "y"]}}), "memberIds"),
        (
            "admin",
            support::FORM,
            json!({"i": {"programId": org.program, "memberIds": [org.people[0], org.people[2]], "matchScore": 1e300}}),
            "matchScore",
        ),
        // Sessions, feedback and goals, as a member of the pair.
        ("ada", HOLD, hold("minutes", json!(-5)), "minutes"),
        ("ada", HOLD, hold("minutes", json!(3_000_000_000_i64)), "minutes"),
        ("ada", HOLD, hold("focus", json!("Listen\u{0}")), "focus"),
        ("ada", HOLD, hold("notes", json!("a\u{0}b")), "notes"),
        ("ada", HOLD, hold("heldAt", json!("0000-01-01T10:00:00Z")), "heldAt"),
        ("ada", HOLD, hold("coaching", json!([{"coachId": "x", "coacheeId": org.people[1]}])), "coaching.coachId"),
        ("ada", HOLD, hold("activities", json!(["NOT_AN_ACTIVITY"])), "activities"),
        ("ada", support::FEEDBACK, feedback(json!({"empathy": 6})), "ratings.empathy"),
        ("ada", support::FEEDBACK, feedback(json!({"curiosity": 2_147_483_648_i64})), "ratings.curiosity"),
        ("ada", SET_GOAL, json!({"i": {"pairId": pair, "title": "Goal\u{0}"}}), "title"),
        ("ada", SET_GOAL, json!({"i": {"pairId": pair, "title": "Goal", "dueOn": "0000-12-31"}}), "dueOn"),
    ];
    let before = event_count(&pool).await;
    for (who, query, variables, field) in cases {
        let token = if who == "ada" { &ada } else { &admin };
        let (status, body) = s.post(Some(token), query, variables.clone()).await;
        let error = &body["errors"][0];
        assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT", "{variables}: {status} {body:#}");
        assert_eq!(error["extensions"]["field"], field, "{variables}: {body:#}");
        assert!(status == 200 || status == 400, "{variables}: {status}");
    }
    assert_eq!(event_count(&pool).await, before, "a refused input writes nothing");
    s.stop().await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn every_error_kind_reaches_the_client_with_its_code_and_status(pool: PgPool) {
    let s = TestServer::start(pool.clone()).await;
    let org = support::org(&s).await;
    let admin = s.admin();
    let ada = s.token(&[Role::Participant], &org.people[0]);
    let ghost = uuid::Uuid::now_v7().to_string();
    let complete = "mutation($i: CloseGoalInput!) { completeGoal(input: $i) { position } }";
    let d = s.ok(&ada, SET_GOAL, json!({"i": {"pairId": org.pairs[0], "title": "Speak up"}})).await;
    let goal = d["setGoal"]["goal"]["id"].as_str().unwrap().to_owned();
    s.ok(&ada, complete, json!({"i": {"pairId": org.pairs[0], "goalId": goal}})).await;
    let table: Vec<(Option<&str>, &str, Value, &str, u16)> = vec![
        (None, UPDATE_PERSON, json!({"i": {"personId": org.people[0], "title": "Lead"}}), "UNAUTHENTICATED", 200),
        (Some(&ada), UPDATE_PERSON, json!({"i": {"personId": org.people[0], "title": "Lead"}}), "FORBIDDEN", 200),
        (Some(&admin), UPDATE_PERSON, json!({"i": {"personId": ghost, "title": "Lead"}}), "NOT_FOUND", 200),
        (Some(&admin), UPDATE_PERSON, json!({"i": {"personId": org.people[0], "level": 0}}), "BAD_USER_INPUT", 200),
        (Some(&admin), UPDATE_PERSON, json!({"i": {"personId": org.people[0], "level": 1e12}}), "BAD_USER_INPUT", 400),
        (Some(&ada), complete, json!({"i": {"pairId": org.pairs[0], "goalId": goal}}), "CONFLICT", 200),
    ];
    for (token, query, variables, code, status) in table {
        let (got, body) = s.post(token, query, variables.clone()).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], code, "{variables}: {body:#}");
        assert_eq!(got, status, "{code}: {body:#}");
    }
    // A state refusal names its stable reason.
    let (_, body) = s.post(Some(&ada), complete, json!({"i": {"pairId": org.pairs[0], "goalId": goal}})).await;
    assert_eq!(body["errors"][0]["extensions"]["reason"], "GOAL_CLOSED", "{body:#}");
    s.stop().await;
    // Rate limiting is answered before the operation runs.
    let s = TestServer::start_with(pool, Options { rate_limit_per_minute: 1, ..Options::default() }).await;
    let admin = s.admin();
    s.ok(&admin, "{ me { subject } }", json!({})).await;
    let (status, body) = s.post(Some(&admin), UPDATE_PERSON, json!({"i": {"personId": ghost, "title": "x"}})).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "RATE_LIMITED", "{body:#}");
    assert_eq!(status, 429);
    s.stop().await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_committed_mutation_is_never_reported_as_a_failure_when_the_read_models_lag(pool: PgPool) {
    // Build the read models once, then serve without running them: every
    // write commits, and no read model ever reaches it.
    let s = TestServer::start(pool.clone()).await;
    let org = support::org(&s).await;
    s.stop().await;
    let limits = Limits { read_your_writes_timeout: Duration::from_millis(300), ..Limits::default() };
    let s = TestServer::start_with(
        pool.clone(),
        Options { no_projections: true, limits: Some(limits), ..Options::default() },
    )
    .await;
    let admin = s.admin();
    let before = event_count(&pool).await;

    // A new object: committed, not consistent, and null since the read
    // models do not know it yet.
    let register = "mutation($i: RegisterPersonInput!) {
        registerPerson(input: $i) { position replayed consistent person { id name } } }";
    let (status, body) = s.post(Some(&admin), register, person_with("idempotencyKey", json!("lag-1"))).await;
    assert_eq!(status, 200, "{body:#}");
    assert!(body.get("errors").is_none(), "a committed write is no error: {body:#}");
    let p = &body["data"]["registerPerson"];
    assert_eq!(p["consistent"], false);
    assert_eq!(p["replayed"], false);
    assert!(p["person"].is_null(), "{body:#}");
    let position = p["position"].as_str().unwrap().to_owned();
    assert_eq!(event_count(&pool).await, before + 1, "the write is committed");

    // The same request again is a replay of that commit, not a second write.
    let (_, body) = s.post(Some(&admin), register, person_with("idempotencyKey", json!("lag-1"))).await;
    assert_eq!(body["data"]["registerPerson"]["replayed"], true, "{body:#}");
    assert_eq!(body["data"]["registerPerson"]["position"], position.as_str());
    assert_eq!(event_count(&pool).await, before + 1);

    // A change to a known object: the object is the current read model, which
    // does not show the change yet.
    let update = "mutation($i: UpdatePersonInput!) { updatePerson(input: $i) { consistent person { title } } }";
    let (status, body) =
        s.post(Some(&admin), update, json!({"i": {"personId": org.people[0], "title": "Principal"}})).await;
    assert_eq!(status, 200, "{body:#}");
    assert!(body.get("errors").is_none(), "{body:#}");
    assert_eq!(body["data"]["updatePerson"]["consistent"], false);
    assert_eq!(body["data"]["updatePerson"]["person"]["title"], "Engineer", "the read model as it is now");
    assert_eq!(event_count(&pool).await, before + 2);

    // A session: committed, flagged, and its pair read as it stands.
    let hold = "mutation($i: HoldSessionInput!) {
        holdSession(input: $i) { position consistent session { id } pair { sessionsHeld } } }";
    let ada = s.token(&[Role::Participant], &org.people[0]);
    let (status, body) =
        s.post(Some(&ada), hold, json!({"i": {"pairId": org.pairs[0], "minutes": 30, "focus": "Lag"}})).await;
    assert_eq!(status, 200, "{body:#}");
    assert!(body.get("errors").is_none(), "{body:#}");
    assert_eq!(body["data"]["holdSession"]["consistent"], false);
    assert!(body["data"]["holdSession"]["session"].is_null());
    assert_eq!(body["data"]["holdSession"]["pair"]["sessionsHeld"], 0);
    s.stop().await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn payloads_are_consistent_and_replays_return_the_first_objects(pool: PgPool) {
    let s = TestServer::start(pool).await;
    let org = support::org(&s).await;
    let ada = s.token(&[Role::Participant], &org.people[0]);
    let hold = "mutation($i: HoldSessionInput!) {
        holdSession(input: $i) { position replayed consistent session { id status } pair { sessionsHeld } } }";
    let vars = json!({"i": {"idempotencyKey": "hold-1", "pairId": org.pairs[0], "minutes": 30, "focus": "Listening"}});
    let first = s.ok(&ada, hold, vars.clone()).await;
    let p = &first["holdSession"];
    assert_eq!(p["consistent"], true);
    assert_eq!(p["replayed"], false);
    assert_eq!(p["session"]["status"], "HELD");
    assert_eq!(p["pair"]["sessionsHeld"], 1);
    let again = s.ok(&ada, hold, vars).await;
    assert_eq!(again["holdSession"]["replayed"], true);
    assert_eq!(again["holdSession"]["session"]["id"], p["session"]["id"], "the first call's session");
    assert_eq!(again["holdSession"]["position"], p["position"]);
    assert_eq!(again["holdSession"]["pair"]["sessionsHeld"], 1, "no second session");

    let feedback = "mutation($i: GiveFeedbackInput!) {
        giveFeedback(input: $i) { replayed consistent feedback { id } } }";
    let vars = json!({"i": {"idempotencyKey": "fb-1", "pairId": org.pairs[0], "toId": org.people[1],
        "strengths": "Clear", "visibility": "RECIPIENT"}});
    let first = s.ok(&ada, feedback, vars.clone()).await;
    let again = s.ok(&ada, feedback, vars).await;
    assert_eq!(again["giveFeedback"]["replayed"], true);
    assert_eq!(again["giveFeedback"]["feedback"]["id"], first["giveFeedback"]["feedback"]["id"]);

    let vars = json!({"i": {"idempotencyKey": "goal-1", "pairId": org.pairs[0], "title": "Ask more"}});
    let first = s.ok(&ada, SET_GOAL, vars.clone()).await;
    let again = s.ok(&ada, SET_GOAL, vars).await;
    assert_eq!(again["setGoal"]["goal"]["id"], first["setGoal"]["goal"]["id"]);

    let enrol = "mutation($i: EnrolParticipantInput!) {
        enrolParticipant(input: $i) { consistent program { participantCount } person { id } } }";
    let eve = support::register(&s, "Eve Online", 3, None).await;
    let d = s.ok(&s.admin(), enrol, json!({"i": {"programId": org.program, "personId": eve}})).await;
    assert_eq!(d["enrolParticipant"]["consistent"], true);
    assert_eq!(d["enrolParticipant"]["program"]["participantCount"], 5);
    assert_eq!(d["enrolParticipant"]["person"]["id"], eve.as_str());
    s.stop().await;
}

/// Idempotency keys over HTTP: a key replays only for the subject who
/// sent it (two admins choosing one key, at once, each register their
/// person), the same key with another input is a CONFLICT whose message
/// echoes nothing sent, and the records hold nothing sent in clear.
#[sqlx::test(migrations = "../../migrations")]
async fn idempotency_keys_are_scoped_per_subject_and_stored_as_digests(pool: PgPool) {
    let s = TestServer::start(pool.clone()).await;
    let register = "mutation($i: RegisterPersonInput!) { registerPerson(input: $i) { replayed person { id } } }";
    let one = s.token(&[Role::Admin], "admin-one");
    let two = s.token(&[Role::Admin], "admin-two");
    let input = |n: &str| {
        json!({"i": {"idempotencyKey": "Mk9-shared-key", "externalId": format!("Mk9-ext-{n}"),
            "name": format!("Mk9 Name {n}"), "email": format!("mk9-{n}@example.com"), "department": "Engineering",
            "title": "Engineer", "level": 3, "hiredOn": "2021-03-01"}})
    };
    let before = event_count(&pool).await;
    let (a, b) = tokio::join!(s.post(Some(&one), register, input("a")), s.post(Some(&two), register, input("b")));
    for (_, body) in [&a, &b] {
        assert!(body.get("errors").is_none(), "{body:#}");
        assert_eq!(body["data"]["registerPerson"]["replayed"], false, "{body:#}");
    }
    assert_ne!(a.1["data"]["registerPerson"]["person"]["id"], b.1["data"]["registerPerson"]["person"]["id"]);
    assert_eq!(event_count(&pool).await, before + 2);

    // Each subject's retry replays their own result.
    let (_, again) = s.post(Some(&two), register, input("b")).await;
    assert_eq!(again["data"]["registerPerson"]["replayed"], true, "{again:#}");
    assert_eq!(again["data"]["registerPerson"]["person"]["id"], b.1["data"]["registerPerson"]["person"]["id"]);

    // The same key with another input.
    let (status, body) = s.post(Some(&one), register, input("c")).await;
    assert_eq!(status, 200);
    assert_eq!(body["errors"][0]["extensions"]["code"], "CONFLICT", "{body:#}");
    assert_eq!(body["errors"][0]["extensions"]["reason"], "IDEMPOTENCY_KEY_REUSED", "{body:#}");
    assert!(!body.to_string().contains("Mk9"), "the refusal echoes nothing sent: {body:#}");
    assert_eq!(event_count(&pool).await, before + 2);

    let rows: Vec<String> =
        sqlx::query_scalar("SELECT row_to_json(i)::text FROM idempotency_keys i").fetch_all(&pool).await.unwrap();
    assert_eq!(rows.len(), 2);
    for row in &rows {
        for needle in ["Mk9", "mk9", "admin-one", "admin-two", "example.com"] {
            assert!(!row.contains(needle), "{needle:?} in {row}");
        }
    }
    s.stop().await;
}
