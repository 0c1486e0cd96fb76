//! The access matrix, table-driven: every operation of the schema (each
//! Query, Mutation and Subscription field) run as every audience, compared
//! with [`policy::MATRIX`]; then the field rows (personal data, session
//! notes, goal texts, feedback), and a scan of every response for texts the
//! audience may not read. A root field without a row here fails the test.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use async_graphql::{Request, Variables};
use futures::StreamExt;
use serde_json::{Value, json};
use sqlx::PgPool;
use tandem_api::auth::{Principal, Role, Verifier};
use tandem_api::policy::{self, Access, Kind};
use tandem_api::schema::{self, TandemSchema, Viewer, loaders::Loaders};

use crate::support::{self, FEEDBACK, HOLD, Org, TestServer};

/// The audiences: the six columns of the matrix, with the participant split
/// into a member of `pairs[0]` and an outsider. `Recipient` (people[1], the
/// other member of `pairs[0]`) only reads the field rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Aud {
    Anonymous,
    Admin,
    Coordinator,
    Member,
    Outsider,
    Integrator,
    Analyst,
    Recipient,
}

/// The audiences every operation runs as; mutations run in this order, so
/// that the pair's member acts before callers with `All` access change it.
const OPERATION_AUDIENCES: [Aud; 7] =
    [Aud::Anonymous, Aud::Integrator, Aud::Analyst, Aud::Outsider, Aud::Member, Aud::Coordinator, Aud::Admin];

const FIELD_AUDIENCES: [Aud; 8] = [
    Aud::Anonymous,
    Aud::Admin,
    Aud::Coordinator,
    Aud::Member,
    Aud::Outsider,
    Aud::Integrator,
    Aud::Analyst,
    Aud::Recipient,
];

// Texts planted in the organisation; each may appear only in responses to
// the audiences allowed to read it.
const FB_PRIVATE: &str = "FBPRIV1";
const FB_RECIPIENT: &str = "FBRECIP2";
const FB_COORD: &str = "FBCOORD3";
const FB_TO_ADA: &str = "FBTOADA4";
const NOTES: &str = "NOTESX5";
const GOAL: &str = "GOALX6";
const ADA: &str = "Lovelace";

const PERSONAL: &str = "Person.name/email/externalId/location";
const ORG_HISTORY: &str = "Person.orgHistory";
const SESSION_NOTES: &str = "Session.notes";
const GOAL_TEXTS: &str = "Goal.title/description/progress notes";

const EVENT_FIELDS: &str = "cursor node { __typename ... on FeedbackGivenEvent { strengths improvements } \
     ... on SessionHeldEvent { notes } ... on GoalSetEvent { title description } \
     ... on PersonRegisteredEvent { name email } }";

struct World {
    s: TestServer,
    schema: TandemSchema,
    org: Org,
    tokens: HashMap<Aud, String>,
    principals: HashMap<Aud, Principal>,
    /// The cursor of the first event of the log: subscriptions catch up from it.
    first_cursor: String,
    scheduled: String,
    goal_a: String,
    goal_b: String,
    program2: String,
    program3: String,
    leaver: String,
    erased: String,
    /// (operation, audience, outcome) of every run.
    ran: Vec<(String, Aud, String)>,
}

fn code_of(body: &Value) -> Option<String> {
    body["errors"][0]["extensions"]["code"].as_str().map(str::to_owned)
}

fn codes(body: &Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .map(|es| es.iter().filter_map(|e| e["extensions"]["code"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

fn id_of(v: &Value) -> String {
    v.as_str().unwrap_or_else(|| panic!("no id in {v}")).to_owned()
}

fn edge_values(conn: &Value, field: &str) -> Vec<Value> {
    conn["edges"].as_array().map(|es| es.iter().map(|e| e["node"][field].clone()).collect()).unwrap_or_default()
}

impl World {
    fn principal(&self, aud: Aud) -> Option<&Principal> {
        self.principals.get(&aud)
    }

    fn access(&self, aud: Aud, row: &str) -> Access {
        policy::access(self.principal(aud), row)
    }

    fn token(&self, aud: Aud) -> Option<&str> {
        self.tokens.get(&aud).map(String::as_str)
    }

    /// Whether `aud` is a member of `pairs[0]`.
    fn in_pair0(aud: Aud) -> bool {
        matches!(aud, Aud::Member | Aud::Recipient)
    }

    /// Whether `aud` reads a guarded field of `pairs[0]` under `row`.
    fn reads_pair0_field(&self, aud: Aud, row: &str) -> bool {
        match self.access(aud, row) {
            Access::All => true,
            Access::Own => Self::in_pair0(aud),
            Access::Deny => false,
        }
    }

    /// The planted texts `aud` may read.
    fn allowed_texts(&self, aud: Aud) -> BTreeSet<&'static str> {
        let mut out: BTreeSet<&'static str> = expected_feedback(aud).into_iter().collect();
        if self.reads_pair0_field(aud, SESSION_NOTES) {
            out.insert(NOTES);
        }
        if self.reads_pair0_field(aud, GOAL_TEXTS) {
            out.insert(GOAL);
        }
        // Ada's circle is pairs[0].
        if self.reads_pair0_field(aud, PERSONAL) {
            out.insert(ADA);
        }
        out
    }

    /// Fails when `body` holds a planted text `aud` may not read.
    fn scan(&self, aud: Aud, what: &str, body: &Value) {
        let text = body.to_string();
        let allowed = self.allowed_texts(aud);
        for secret in [FB_PRIVATE, FB_RECIPIENT, FB_COORD, FB_TO_ADA, NOTES, GOAL, ADA] {
            assert!(
                allowed.contains(secret) || !text.contains(secret),
                "LEAK: {aud:?} read {secret:?} through {what}: {body:#}"
            );
        }
    }

    async fn post(&self, aud: Aud, query: &str, vars: Value) -> Value {
        let (status, body) = self.s.post(self.token(aud), query, vars).await;
        assert!(body.is_object(), "{aud:?}: HTTP {status} without a GraphQL body");
        self.scan(aud, query, &body);
        body
    }

    /// A subscription's responses: up to the first error, the end of the
    /// stream, or a short quiet spell (catch-up from `first_cursor` is fast).
    async fn subscribe(&self, aud: Aud, query: &str, vars: Value) -> Vec<Value> {
        let request = Request::new(query)
            .variables(Variables::from_json(vars))
            .data(Viewer(self.principal(aud).cloned()))
            .data(Loaders::new(&self.s.pool));
        let mut stream = self.schema.execute_stream(request);
        let mut out = Vec::new();
        while out.len() < 200 {
            match tokio::time::timeout(Duration::from_millis(300), stream.next()).await {
                Ok(Some(r)) => {
                    let v = serde_json::to_value(&r).unwrap();
                    let failed = v.get("errors").is_some();
                    out.push(v);
                    if failed {
                        break;
                    }
                }
                Ok(None) | Err(_) => break,
            }
        }
        let all = Value::Array(out.clone());
        self.scan(aud, query, &all);
        out
    }

    /// Checks the access decision of one run against the matrix; returns
    /// the effective access.
    fn decide(&mut self, op: &str, aud: Aud, body: &Value, outsider_refused: bool) -> Access {
        let access = self.access(aud, op);
        let code = code_of(body).unwrap_or_else(|| "OK".to_owned());
        assert_ne!(code, "INTERNAL_SERVER_ERROR", "{op} as {aud:?}: {body:#}");
        self.ran.push((op.to_owned(), aud, code.clone()));
        match access {
            Access::Deny => {
                let want = if aud == Aud::Anonymous { "UNAUTHENTICATED" } else { "FORBIDDEN" };
                assert_eq!(code, want, "{op} as {aud:?} is denied by the matrix: {body:#}");
            }
            Access::Own if aud == Aud::Outsider && outsider_refused => {
                assert_eq!(code, "FORBIDDEN", "{op} as a participant outside pairs[0] must be refused: {body:#}");
            }
            Access::Own | Access::All => {
                let cs = codes(body);
                assert!(
                    !cs.iter().any(|c| c == "FORBIDDEN" || c == "UNAUTHENTICATED"),
                    "OVER-REFUSAL: {op} as {aud:?} has {access:?} access but got {cs:?}: {body:#}"
                );
            }
        }
        access
    }
}

/// The feedback in pairs[0] `aud` may read: its author; its recipient when
/// shared with them; coordinators and admins when shared with coordinators.
fn expected_feedback(aud: Aud) -> BTreeSet<&'static str> {
    match aud {
        // people[0] wrote the first three; FB_TO_ADA is private to its author people[1].
        Aud::Member => [FB_PRIVATE, FB_RECIPIENT, FB_COORD].into(),
        Aud::Recipient => [FB_RECIPIENT, FB_TO_ADA].into(),
        Aud::Admin | Aud::Coordinator => [FB_COORD].into(),
        Aud::Anonymous | Aud::Outsider | Aud::Integrator | Aud::Analyst => BTreeSet::new(),
    }
}

async fn setup(s: TestServer) -> World {
    let org = support::org(&s).await;
    let admin = s.admin();
    let verifier = Verifier::new(&support::auth_config()).unwrap();
    let mut tokens = HashMap::new();
    tokens.insert(Aud::Admin, admin.clone());
    tokens.insert(Aud::Coordinator, s.token(&[Role::Coordinator], "coordinator-1"));
    tokens.insert(Aud::Member, s.token(&[Role::Participant], &org.people[0]));
    tokens.insert(Aud::Outsider, s.token(&[Role::Participant], &org.people[2]));
    tokens.insert(Aud::Integrator, s.token(&[Role::Integrator], "integrator-1"));
    tokens.insert(Aud::Analyst, s.token(&[Role::Analyst], "analyst-1"));
    tokens.insert(Aud::Recipient, s.token(&[Role::Participant], &org.people[1]));
    let principals: HashMap<Aud, Principal> = tokens.iter().map(|(a, t)| (*a, verifier.verify(t).unwrap())).collect();
    let ada = &tokens[&Aud::Member];
    let bob = &tokens[&Aud::Recipient];
    let p0 = &org.pairs[0];

    s.ok(
        ada,
        HOLD,
        json!({"i": {"pairId": p0, "minutes": 45, "focus": "Hard conversations", "notes": format!("{NOTES} notes"),
            "activities": ["ROLE_PLAY"], "coaching": [{"coachId": org.people[0], "coacheeId": org.people[1]}]}}),
    )
    .await;
    let d = s
        .ok(
            ada,
            "mutation($i: ScheduleSessionInput!) { scheduleSession(input: $i) { session { id } } }",
            json!({"i": {"pairId": p0, "scheduledFor": "2030-01-01T10:00:00Z", "focus": "Later"}}),
        )
        .await;
    let scheduled = id_of(&d["scheduleSession"]["session"]["id"]);
    for (token, to, text, visibility) in [
        (ada, &org.people[1], FB_PRIVATE, "PRIVATE"),
        (ada, &org.people[1], FB_RECIPIENT, "RECIPIENT"),
        (ada, &org.people[1], FB_COORD, "COORDINATORS"),
        (bob, &org.people[0], FB_TO_ADA, "PRIVATE"),
    ] {
        s.ok(
            token,
            FEEDBACK,
            json!({"i": {"pairId": p0, "toId": to, "ratings": {"empathy": 4}, "strengths": text,
                "improvements": format!("{text} more"), "visibility": visibility}}),
        )
        .await;
    }
    let set_goal = "mutation($i: SetGoalInput!) { setGoal(input: $i) { goal { id } } }";
    let mut goals = Vec::new();
    for suffix in ["a", "b"] {
        let d = s
            .ok(
                ada,
                set_goal,
                json!({"i": {"pairId": p0, "title": format!("{GOAL} {suffix}"), "description": format!("{GOAL} why"),
                    "accountabilityPartnerId": org.people[1]}}),
            )
            .await;
        goals.push(id_of(&d["setGoal"]["goal"]["id"]));
    }
    let launch = |name: &str| {
        json!({"i": {"name": name, "purpose": "SKILL_BUILDING", "kind": "PAIRS", "maxLevelGap": 2, "cadenceDays": 14,
            "startsOn": "2024-01-01"}})
    };
    let d = s.ok(&admin, support::LAUNCH, launch("Second")).await;
    let program2 = id_of(&d["launchProgram"]["program"]["id"]);
    let d = s.ok(&admin, support::LAUNCH, launch("Third")).await;
    let program3 = id_of(&d["launchProgram"]["program"]["id"]);
    let leaver = support::register(&s, "Lee Ver", 3, None).await;
    let erased = support::register(&s, "Era Sed", 3, None).await;
    let d = s.ok(&admin, "{ events(first: 1) { edges { cursor } } }", json!({})).await;
    let first_cursor = id_of(&d["events"]["edges"][0]["cursor"]);
    let schema = schema::build(s.state.clone());
    World {
        s,
        schema,
        org,
        tokens,
        principals,
        first_cursor,
        scheduled,
        goal_a: goals[0].clone(),
        goal_b: goals[1].clone(),
        program2,
        program3,
        leaver,
        erased,
        ran: Vec::new(),
    }
}

/// The root fields of the schema, by kind, from introspection.
async fn root_fields() -> BTreeSet<(String, String)> {
    let q = "{ __schema { queryType { fields { name } } mutationType { fields { name } } \
             subscriptionType { fields { name } } } }";
    let r = schema::stateless().execute(q).await;
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let d = r.data.into_json().unwrap();
    let mut out = BTreeSet::new();
    for (key, kind) in [("queryType", "query"), ("mutationType", "mutation"), ("subscriptionType", "subscription")] {
        for f in d["__schema"][key]["fields"].as_array().unwrap() {
            out.insert((kind.to_owned(), id_of(&f["name"])));
        }
    }
    out
}

#[sqlx::test(migrations = "../../migrations")]
async fn every_operation_as_every_audience_follows_the_matrix(pool: PgPool) {
    let started = Instant::now();
    let mut w = setup(TestServer::start(pool).await).await;
    let (p0, p1) = (w.org.pairs[0].clone(), w.org.pairs[1].clone());
    let people = w.org.people.clone();
    let program = w.org.program.clone();
    // An endpoint of the integrator role, which admins and integrators manage.
    let created = w
        .post(
            Aud::Admin,
            "mutation($i: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $i) { endpoint { id } } }",
            json!({"i": {"url": "https://hooks.example.com/tandem", "eventTypes": ["PersonLeft"], "role": "INTEGRATOR"}}),
        )
        .await;
    let hook = created["data"]["createWebhookEndpoint"]["endpoint"]["id"].as_str().unwrap().to_owned();

    // ---- queries ------------------------------------------------------------
    // (operation, query, variables, outsider refused with FORBIDDEN)
    let queries: Vec<(&str, &str, Value, bool)> = vec![
        ("me", "{ me { subject roles } }", json!({}), false),
        ("person", "query($id: ID!) { person(id: $id) { id } }", json!({"id": people[0]}), false),
        ("people", "{ people { edges { node { id } } } }", json!({}), false),
        ("program", "query($id: ID!) { program(id: $id) { id } }", json!({"id": program}), false),
        ("programs", "{ programs { edges { node { id } } } }", json!({}), false),
        ("pair", "query($id: ID!) { pair(id: $id) { id } }", json!({"id": p0}), false),
        ("pairs", "query($p: ID!) { pairs(programId: $p) { edges { node { id } } } }", json!({"p": program}), false),
        ("sessions", "query($id: ID!) { sessions(pairId: $id) { edges { node { id } } } }", json!({"id": p0}), true),
        ("goals", "query($id: ID!) { goals(pairId: $id) { edges { node { id } } } }", json!({"id": p0}), true),
        (
            "feedback",
            "query($id: ID) { feedback(pairId: $id) { edges { node { id strengths } } } }",
            json!({"id": p0}),
            false,
        ),
        ("programStats", "query($p: ID!) { programStats(programId: $p) { enrolled } }", json!({"p": program}), false),
        ("events", "{ events(first: 100) { edges { node { __typename } } } }", json!({}), false),
        (
            "programMetrics",
            "query($p: ID!) { programMetrics(programId: $p) { total { suppressed } } }",
            json!({"p": program}),
            false,
        ),
        ("retention", "{ retention { participants { suppressed } } }", json!({}), false),
        ("webhookEndpoints", "{ webhookEndpoints { edges { node { id role } } } }", json!({}), false),
        (
            "webhookDeliveries",
            "query($id: ID!) { webhookDeliveries(endpointId: $id) { edges { node { id } } } }",
            json!({"id": hook}),
            false,
        ),
    ];
    for (op, query, vars, outsider_refused) in &queries {
        for aud in OPERATION_AUDIENCES {
            let body = w.post(aud, query, vars.clone()).await;
            let access = w.decide(op, aud, &body, *outsider_refused);
            if access == Access::Deny || (aud == Aud::Outsider && *outsider_refused) {
                continue;
            }
            let d = &body["data"];
            // The scoping of `Own`.
            match *op {
                "person" => {
                    assert_eq!(d["person"].is_null(), aud == Aud::Outsider, "person(people[0]) as {aud:?}: {body:#}")
                }
                "pair" => {
                    assert_eq!(d["pair"].is_null(), aud == Aud::Outsider, "pair(pairs[0]) as {aud:?}: {body:#}");
                }
                "pairs" => {
                    let ids: BTreeSet<String> = edge_values(&d["pairs"], "id").iter().map(id_of).collect();
                    let want: BTreeSet<String> = match (access, aud) {
                        (Access::Own, Aud::Member) => [p0.clone()].into(),
                        (Access::Own, _) => [p1.clone()].into(),
                        _ => [p0.clone(), p1.clone()].into(),
                    };
                    assert_eq!(ids, want, "pairs as {aud:?}");
                }
                "sessions" | "goals" => assert_eq!(edge_values(&d[*op], "id").len(), 2, "{op} as {aud:?}: {body:#}"),
                "events" if access == Access::Own => {
                    for t in edge_values(&d["events"], "__typename") {
                        assert!(t.as_str().unwrap().starts_with("Person"), "{aud:?} read {t} in the person feed");
                    }
                }
                _ => {}
            }
        }
    }

    // ---- subscriptions ------------------------------------------------------
    let after = w.first_cursor.clone();
    let subscriptions: Vec<(&str, String, Value, bool)> = vec![
        (
            "pairEvents",
            format!(
                "subscription($id: ID!, $after: String) {{ pairEvents(pairId: $id, after: $after) {{ {EVENT_FIELDS} }} }}"
            ),
            json!({"id": p0, "after": after}),
            true,
        ),
        (
            "programEvents",
            format!(
                "subscription($id: ID!, $after: String) {{ programEvents(programId: $id, after: $after) {{ {EVENT_FIELDS} }} }}"
            ),
            json!({"id": program, "after": after}),
            false,
        ),
        (
            "myEvents",
            format!("subscription($after: String) {{ myEvents(after: $after) {{ {EVENT_FIELDS} }} }}"),
            json!({"after": after}),
            false,
        ),
    ];
    for (op, query, vars, outsider_refused) in &subscriptions {
        for aud in OPERATION_AUDIENCES {
            let items = w.subscribe(aud, query, vars.clone()).await;
            let first = items.first().cloned().unwrap_or_else(|| json!({}));
            let access = w.decide(op, aud, &first, *outsider_refused);
            if access == Access::Deny || (aud == Aud::Outsider && *outsider_refused) {
                continue;
            }
            for item in &items {
                assert!(codes(item).is_empty(), "{op} as {aud:?}: {item:#}");
            }
            // Callers who are people get their events; the others an empty stream.
            let person = matches!(aud, Aud::Member | Aud::Outsider);
            if *op != "myEvents" || person {
                assert!(!items.is_empty(), "{op} as {aud:?} delivered nothing");
            }
        }
    }

    // ---- field rows -----------------------------------------------------------
    for aud in FIELD_AUDIENCES {
        let anonymous = aud == Aud::Anonymous;
        // Personal data and org history of people[0] and people[1].
        let q = "query($a: ID!, $b: ID!) { a: person(id: $a) { id name email externalId location } \
                 b: person(id: $b) { id name email externalId location } }";
        let body = w.post(aud, q, json!({"a": people[0], "b": people[1]})).await;
        if w.access(aud, "person") == Access::Deny {
            let want = if anonymous { "UNAUTHENTICATED" } else { "FORBIDDEN" };
            assert!(codes(&body).iter().any(|c| c == want), "person as {aud:?}: {body:#}");
        } else {
            assert!(codes(&body).is_empty(), "{aud:?}: {body:#}");
            for key in ["a", "b"] {
                let p = &body["data"][key];
                let seen = w.access(aud, "person") == Access::All || World::in_pair0(aud);
                assert_eq!(!p.is_null(), seen, "person {key} as {aud:?}: {body:#}");
                if seen {
                    let personal = w.reads_pair0_field(aud, PERSONAL);
                    for f in ["name", "email", "externalId"] {
                        assert_eq!(!p[f].is_null(), personal, "Person.{f} of {key} as {aud:?}: {body:#}");
                    }
                }
            }
        }
        let q = "query($a: ID!, $b: ID!) { a: person(id: $a) { orgHistory { level } } \
                 b: person(id: $b) { orgHistory { level } } }";
        let body = w.post(aud, q, json!({"a": people[0], "b": people[1]})).await;
        if w.access(aud, "person") != Access::Deny {
            for (key, own) in [("a", aud == Aud::Member), ("b", aud == Aud::Recipient)] {
                let person_seen = w.access(aud, "person") == Access::All || World::in_pair0(aud);
                if !person_seen {
                    continue;
                }
                let allowed = match w.access(aud, ORG_HISTORY) {
                    Access::All => true,
                    Access::Own => own,
                    Access::Deny => false,
                };
                let refused = body["errors"]
                    .as_array()
                    .is_some_and(|es| es.iter().any(|e| e["path"][0] == key && e["extensions"]["code"] == "FORBIDDEN"));
                assert_eq!(!refused, allowed, "Person.orgHistory of {key} as {aud:?}: {body:#}");
            }
        }
        // The people list: personal data per audience (analysts see none).
        if w.access(aud, "people") != Access::Deny {
            let body = w.post(aud, "{ people(first: 100) { edges { node { id name email } } } }", json!({})).await;
            let names = edge_values(&body["data"]["people"], "name");
            assert!(!names.is_empty());
            let personal = w.access(aud, PERSONAL) == Access::All;
            assert!(names.iter().all(|n| n.is_null() != personal), "people.name as {aud:?}: {body:#}");
        }

        // Session notes and goal texts, through the root lists and the pair.
        let q = "query($id: ID!) { sessions(pairId: $id) { edges { node { notes } } } \
                 goals(pairId: $id) { edges { node { title description progress { note } } } } }";
        let body = w.post(aud, q, json!({"id": p0})).await;
        let q2 = "query($id: ID!) { pair(id: $id) { sessions { edges { node { notes } } } \
                  goals { edges { node { title description } } } } }";
        let body2 = w.post(aud, q2, json!({"id": p0})).await;
        if w.access(aud, "sessions") != Access::Deny && (aud != Aud::Outsider) {
            let notes: Vec<Value> = edge_values(&body["data"]["sessions"], "notes");
            let held: Vec<&Value> = notes.iter().filter(|n| !n.is_null()).collect();
            let want = w.reads_pair0_field(aud, SESSION_NOTES);
            assert_eq!(held.len(), usize::from(want), "Session.notes as {aud:?}: {body:#}");
            let titles = edge_values(&body["data"]["goals"], "title");
            assert_eq!(titles.len(), 2);
            let want = w.reads_pair0_field(aud, GOAL_TEXTS);
            assert!(titles.iter().all(|t| t.is_null() != want), "Goal.title as {aud:?}: {body:#}");
            let pair_notes = edge_values(&body2["data"]["pair"]["sessions"], "notes");
            assert_eq!(
                pair_notes.iter().filter(|n| !n.is_null()).count(),
                usize::from(w.reads_pair0_field(aud, SESSION_NOTES))
            );
        }

        // Feedback: through the pair, the root query with pairId, and without.
        let want = expected_feedback(aud);
        let strengths = |conn: &Value| -> BTreeSet<String> {
            edge_values(conn, "strengths").iter().map(|s| s.as_str().unwrap_or_default().to_owned()).collect()
        };
        let want_strings: BTreeSet<String> = want.iter().map(|s| (*s).to_owned()).collect();
        let body = w
            .post(
                aud,
                "query($id: ID!) { pair(id: $id) { feedback { edges { node { id strengths } } } } }",
                json!({"id": p0}),
            )
            .await;
        if w.access(aud, "pair") != Access::Deny {
            assert_eq!(
                strengths(&body["data"]["pair"]["feedback"]),
                want_strings,
                "pair.feedback as {aud:?}: {body:#}"
            );
        }
        let body = w
            .post(
                aud,
                "query($id: ID) { feedback(pairId: $id) { edges { node { id strengths } } } }",
                json!({"id": p0}),
            )
            .await;
        if w.access(aud, "feedback") == Access::Deny {
            assert_eq!(code_of(&body).unwrap(), if anonymous { "UNAUTHENTICATED" } else { "FORBIDDEN" });
        } else {
            assert_eq!(strengths(&body["data"]["feedback"]), want_strings, "feedback(pairId) as {aud:?}: {body:#}");
        }
        if matches!(aud, Aud::Member | Aud::Recipient | Aud::Outsider) {
            let body = w.post(aud, "{ feedback { edges { node { id strengths } } } }", json!({})).await;
            assert_eq!(strengths(&body["data"]["feedback"]), want_strings, "feedback as {aud:?}: {body:#}");
        }
        // The feed and subscriptions go through the same scan; so does `me`.
        w.post(aud, "{ me { person { name email pairs { edges { node { id members { name } } } } } } }", json!({}))
            .await;
        if !matches!(aud, Aud::Recipient) {
            w.post(aud, &format!("{{ events(first: 100) {{ edges {{ {EVENT_FIELDS} }} }} }}"), json!({})).await;
        }
        if aud == Aud::Recipient {
            let q = format!(
                "subscription($id: ID!, $after: String) {{ pairEvents(pairId: $id, after: $after) {{ {EVENT_FIELDS} }} }}"
            );
            let items = w.subscribe(aud, &q, json!({"id": p0, "after": w.first_cursor})).await;
            assert!(!items.is_empty() && codes(&items[0]).is_empty(), "{items:#?}");
        }
    }

    // ---- mutations ----------------------------------------------------------
    // Participants act as themselves; others name the member they record for.
    let by = |aud: Aud| if matches!(aud, Aud::Member | Aud::Outsider) { Value::Null } else { json!(people[0]) };
    let itself = |aud: Aud| if matches!(aud, Aud::Member | Aud::Outsider) { Value::Null } else { json!(people[1]) };
    let m = |name: &str, input: &str| format!("mutation($i: {input}!) {{ {name}(input: $i) {{ position }} }}");
    type Vars<'a> = Box<dyn Fn(Aud) -> Value + 'a>;
    let (scheduled, goal_a, goal_b) = (w.scheduled.clone(), w.goal_a.clone(), w.goal_b.clone());
    let (program2, program3, leaver, erased) =
        (w.program2.clone(), w.program3.clone(), w.leaver.clone(), w.erased.clone());
    let mutations: Vec<(&str, String, Vars<'_>, bool)> = vec![
        (
            "registerPerson",
            m("registerPerson", "RegisterPersonInput"),
            Box::new(|a| {
                json!({"i": {"externalId": format!("REG-{a:?}"), "name": format!("Reg {a:?}"),
                    "email": format!("reg.{a:?}@example.org").to_lowercase(), "department": "D", "title": "T", "level": 3}})
            }),
            false,
        ),
        (
            "updatePerson",
            m("updatePerson", "UpdatePersonInput"),
            Box::new(|a| json!({"i": {"personId": people[3], "title": format!("Senior {a:?}")}})),
            false,
        ),
        (
            "recordPersonLeft",
            m("recordPersonLeft", "RecordPersonLeftInput"),
            Box::new(|_| json!({"i": {"personId": leaver, "reason": "VOLUNTARY"}})),
            false,
        ),
        (
            "rejoinPerson",
            m("rejoinPerson", "RejoinPersonInput"),
            Box::new(|_| json!({"i": {"personId": leaver}})),
            false,
        ),
        (
            "upsertPeople",
            m("upsertPeople", "UpsertPeopleInput"),
            Box::new(|a| {
                json!({"i": {"people": [{"externalId": format!("UPS-{a:?}"), "name": format!("Ups {a:?}"),
                    "email": format!("ups.{a:?}@example.org").to_lowercase(), "department": "D", "title": "T", "level": 3}]}})
            }),
            false,
        ),
        ("erasePerson", m("erasePerson", "ErasePersonInput"), Box::new(|_| json!({"i": {"personId": erased}})), false),
        (
            "launchProgram",
            m("launchProgram", "LaunchProgramInput"),
            Box::new(|a| {
                json!({"i": {"name": format!("Launched by {a:?}"), "purpose": "ONBOARDING", "kind": "PAIRS",
                    "maxLevelGap": 2, "cadenceDays": 14}})
            }),
            false,
        ),
        (
            "updateProgram",
            m("updateProgram", "UpdateProgramInput"),
            Box::new(|a| json!({"i": {"programId": program, "description": format!("Updated by {a:?}")}})),
            false,
        ),
        (
            "closeProgram",
            m("closeProgram", "CloseProgramInput"),
            Box::new(|_| json!({"i": {"programId": program3}})),
            false,
        ),
        (
            "enrolParticipant",
            m("enrolParticipant", "EnrolParticipantInput"),
            Box::new(|a| json!({"i": {"programId": program2, "personId": itself(a)}})),
            false,
        ),
        (
            "withdrawParticipant",
            m("withdrawParticipant", "WithdrawParticipantInput"),
            Box::new(|a| json!({"i": {"programId": program2, "personId": itself(a)}})),
            false,
        ),
        (
            "formPair",
            m("formPair", "FormPairInput"),
            Box::new(|_| json!({"i": {"programId": program, "memberIds": [people[0], people[2]]}})),
            false,
        ),
        (
            "scheduleSession",
            m("scheduleSession", "ScheduleSessionInput"),
            Box::new(|a| json!({"i": {"pairId": p0, "byId": by(a), "scheduledFor": "2031-01-01T10:00:00Z"}})),
            true,
        ),
        (
            "holdSession",
            m("holdSession", "HoldSessionInput"),
            Box::new(|a| json!({"i": {"pairId": p0, "byId": by(a), "minutes": 30, "focus": "Listening"}})),
            true,
        ),
        (
            "cancelSession",
            m("cancelSession", "CancelSessionInput"),
            Box::new(|a| json!({"i": {"pairId": p0, "sessionId": scheduled, "byId": by(a)}})),
            true,
        ),
        (
            "giveFeedback",
            m("giveFeedback", "GiveFeedbackInput"),
            Box::new(
                |_| json!({"i": {"pairId": p0, "toId": people[1], "strengths": "Clear", "visibility": "PRIVATE"}}),
            ),
            true,
        ),
        (
            "setGoal",
            m("setGoal", "SetGoalInput"),
            Box::new(|_| json!({"i": {"pairId": p0, "title": "Another goal"}})),
            true,
        ),
        (
            "recordGoalProgress",
            m("recordGoalProgress", "RecordGoalProgressInput"),
            Box::new(|_| json!({"i": {"pairId": p0, "goalId": goal_a, "percent": 50}})),
            true,
        ),
        (
            "completeGoal",
            m("completeGoal", "CloseGoalInput"),
            Box::new(|_| json!({"i": {"pairId": p0, "goalId": goal_a}})),
            true,
        ),
        (
            "abandonGoal",
            m("abandonGoal", "CloseGoalInput"),
            Box::new(|_| json!({"i": {"pairId": p0, "goalId": goal_b}})),
            true,
        ),
        ("pausePair", m("pausePair", "PausePairInput"), Box::new(|_| json!({"i": {"pairId": p0}})), true),
        ("resumePair", m("resumePair", "ResumePairInput"), Box::new(|_| json!({"i": {"pairId": p0}})), true),
        (
            "dissolvePair",
            m("dissolvePair", "DissolvePairInput"),
            Box::new(|_| json!({"i": {"pairId": p0, "reason": "COMPLETED"}})),
            true,
        ),
        (
            "createWebhookEndpoint",
            m("createWebhookEndpoint", "CreateWebhookEndpointInput"),
            Box::new(|_| json!({"i": {"url": "https://hooks.example.com/new", "eventTypes": ["PersonRegistered"]}})),
            false,
        ),
        (
            "updateWebhookEndpoint",
            m("updateWebhookEndpoint", "UpdateWebhookEndpointInput"),
            Box::new(|a| json!({"i": {"endpointId": hook, "description": format!("by {a:?}")}})),
            false,
        ),
        (
            "rotateWebhookSecret",
            m("rotateWebhookSecret", "RotateWebhookSecretInput"),
            Box::new(|_| json!({"i": {"endpointId": hook}})),
            false,
        ),
        (
            "redeliverWebhooks",
            m("redeliverWebhooks", "RedeliverWebhooksInput"),
            Box::new(|_| json!({"i": {"endpointId": hook, "after": "0-0"}})),
            false,
        ),
        (
            "disableWebhookEndpoint",
            m("disableWebhookEndpoint", "DisableWebhookEndpointInput"),
            Box::new(|_| json!({"i": {"endpointId": hook}})),
            false,
        ),
    ];
    for (op, query, vars, outsider_refused) in &mutations {
        for aud in OPERATION_AUDIENCES {
            let body = w.post(aud, query, vars(aud)).await;
            let access = w.decide(op, aud, &body, *outsider_refused);
            // The pair's member, acting first, must get through the domain too.
            if access == Access::Own && aud == Aud::Member && *outsider_refused {
                assert!(codes(&body).is_empty(), "{op} as the member of pairs[0]: {body:#}");
            }
        }
    }

    // ---- coverage -------------------------------------------------------------
    let exercised: BTreeSet<(String, String)> = w
        .ran
        .iter()
        .map(|(op, _, _)| {
            let rule = policy::rule(op).unwrap_or_else(|| panic!("{op} has no row in policy::MATRIX"));
            (rule.kind.label().to_owned(), op.clone())
        })
        .collect();
    assert_eq!(exercised, root_fields().await, "every root field needs a row in this test (and in the matrix)");
    for op in &exercised {
        let runs: BTreeSet<Aud> = w.ran.iter().filter(|(o, _, _)| *o == op.1).map(|(_, a, _)| *a).collect();
        assert_eq!(runs.len(), OPERATION_AUDIENCES.len(), "{op:?} did not run as every audience");
    }
    let matrix_ops: BTreeSet<&str> = policy::MATRIX.iter().filter(|r| r.kind != Kind::Field).map(|r| r.name).collect();
    assert_eq!(matrix_ops, exercised.iter().map(|(_, o)| o.as_str()).collect(), "matrix rows without an operation");
    for op in &exercised {
        let row: Vec<String> =
            w.ran.iter().filter(|(o, _, _)| *o == op.1).map(|(_, a, c)| format!("{a:?}={c}")).collect();
        eprintln!("{:>20}: {}", op.1, row.join(" "));
    }
    eprintln!(
        "matrix: {} operations x {} audiences = {} runs in {:?}",
        exercised.len(),
        OPERATION_AUDIENCES.len(),
        w.ran.len(),
        started.elapsed()
    );
    w.s.stop().await;
}
